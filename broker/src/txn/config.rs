//! The transaction coordinator's broker settings (Kafka's names).

use std::time::Duration;

use strom_controller_client::ConfigError;
use strom_txn::TxnConfig;

/// Transaction coordinator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnsConfig {
    /// `transaction.state.log.num.partitions` (50).
    pub state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor` (3), capped by the live
    /// brokers when the topic is created.
    pub state_log_replication_factor: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    /// (10000): how often transactions past their timeout are aborted.
    pub abort_timed_out_interval: Duration,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`
    /// (3600000): how often idle transactional ids are expired.
    pub remove_expired_interval: Duration,
    /// The pure core's settings (`transaction.max.timeout.ms`,
    /// `transactional.id.expiration.ms`).
    pub txn: TxnConfig,
}

/// How long a write to the transaction log, and one WriteTxnMarkers
/// round, waits for the ISR (Kafka uses `request.timeout.ms`).
pub const WRITE_TIMEOUT_MS: i32 = 5000;

impl Default for TxnsConfig {
    fn default() -> Self {
        TxnsConfig {
            state_log_num_partitions: strom_txn::DEFAULT_TRANSACTION_STATE_PARTITIONS,
            state_log_replication_factor: 3,
            abort_timed_out_interval: Duration::from_secs(10),
            remove_expired_interval: Duration::from_secs(3600),
            txn: TxnConfig::default(),
        }
    }
}

impl TxnsConfig {
    /// Applies one setting; `Ok(false)` when `key` is not a coordinator setting.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        fn int<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
            v.parse::<T>()
                .map_err(|_| ConfigError(format!("{key} must be a number, got '{v}'")))
        }
        match key {
            "transaction.state.log.num.partitions" => {
                self.state_log_num_partitions = int(key, value)?
            }
            "transaction.state.log.replication.factor" => {
                self.state_log_replication_factor = int(key, value)?
            }
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                self.abort_timed_out_interval = Duration::from_millis(int(key, value)?)
            }
            "transaction.remove.expired.transaction.cleanup.interval.ms" => {
                self.remove_expired_interval = Duration::from_millis(int(key, value)?)
            }
            "transaction.max.timeout.ms" => self.txn.max_timeout_ms = int(key, value)?,
            "transactional.id.expiration.ms" => {
                self.txn.transactional_id_expiration_ms = int(key, value)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the settings are coherent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.state_log_num_partitions < 1 {
            return Err(ConfigError(
                "transaction.state.log.num.partitions must be at least 1".into(),
            ));
        }
        if self.state_log_replication_factor < 1 {
            return Err(ConfigError(
                "transaction.state.log.replication.factor must be at least 1".into(),
            ));
        }
        if self.abort_timed_out_interval.is_zero() {
            return Err(ConfigError(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms must be positive"
                    .into(),
            ));
        }
        if self.remove_expired_interval.is_zero() {
            return Err(ConfigError(
                "transaction.remove.expired.transaction.cleanup.interval.ms must be positive"
                    .into(),
            ));
        }
        self.txn.validate().map_err(|e| ConfigError(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_bad_values_are_refused() {
        // (key, value, accepted by set, valid afterwards)
        let table = [
            ("transaction.state.log.num.partitions", "3", true, true),
            ("transaction.state.log.num.partitions", "0", true, false),
            ("transaction.state.log.num.partitions", "x", false, true),
            ("transaction.state.log.replication.factor", "1", true, true),
            ("transaction.state.log.replication.factor", "0", true, false),
            ("transaction.max.timeout.ms", "1000", true, true),
            ("transaction.max.timeout.ms", "0", true, false),
            ("transactional.id.expiration.ms", "-1", true, false),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                "500",
                true,
                true,
            ),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                "0",
                true,
                false,
            ),
            (
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                "0",
                true,
                false,
            ),
        ];
        for (key, value, parses, valid) in table {
            let mut c = TxnsConfig::default();
            match c.set(key, value) {
                Ok(known) => {
                    assert!(parses, "{key}={value} parsed");
                    assert!(known, "{key} is known");
                    assert_eq!(c.validate().is_ok(), valid, "{key}={value}");
                }
                Err(_) => assert!(!parses, "{key}={value} refused"),
            }
        }
        let mut c = TxnsConfig::default();
        assert!(
            !c.set("offsets.topic.num.partitions", "1")
                .expect("not ours")
        );
        assert_eq!(c, TxnsConfig::default());
    }
}
