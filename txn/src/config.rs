//! The coordinator's settings, with Kafka's names and defaults.

use crate::error::{Result, bail};

/// Kafka's default `transaction.timeout.ms` (producer side).
pub const DEFAULT_TRANSACTION_TIMEOUT_MS: i32 = 60_000;
/// Longest accepted transactional id, in bytes (Kafka has no bound; Strom
/// keeps keys of the transaction log small, as for group ids).
pub const MAX_TRANSACTIONAL_ID_BYTES: usize = 255;

/// Broker-side transaction coordinator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms` (900000): the longest
    /// `transaction.timeout.ms` a producer may ask for.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000, 7 days): how long an
    /// idle transactional id without an open transaction is kept.
    pub transactional_id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 7 * 24 * 3_600_000,
        }
    }
}

impl TxnConfig {
    /// Checks the settings are coherent.
    pub fn validate(&self) -> Result<()> {
        if self.max_timeout_ms <= 0 {
            bail!(
                InvalidRequest,
                "transaction.max.timeout.ms must be positive"
            );
        }
        if self.transactional_id_expiration_ms <= 0 {
            bail!(
                InvalidRequest,
                "transactional.id.expiration.ms must be positive"
            );
        }
        Ok(())
    }
}
