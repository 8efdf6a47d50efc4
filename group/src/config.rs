//! The coordinator's settings, with Kafka's names and defaults.

use crate::error::{Result, bail};

/// Kafka's default `session.timeout.ms` (consumer side).
pub const DEFAULT_SESSION_TIMEOUT_MS: i32 = 45_000;
/// Kafka's default `max.poll.interval.ms` (the rebalance timeout).
pub const DEFAULT_REBALANCE_TIMEOUT_MS: i32 = 300_000;
/// Longest accepted group id, in bytes (Kafka has no bound; Strom keeps
/// keys of the offsets topic small).
pub const MAX_GROUP_ID_BYTES: usize = 255;
/// Longest accepted member id or instance id, in bytes.
pub const MAX_MEMBER_ID_BYTES: usize = 255;

/// Broker-side group coordinator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms` (6000).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub max_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (5000): how often members heartbeat.
    pub heartbeat_interval_ms: i32,
    /// `offsets.retention.minutes` (10080): how long an empty group's
    /// offsets are kept after their last commit.
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes` (4096).
    pub offset_metadata_max_bytes: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            heartbeat_interval_ms: 5_000,
            offsets_retention_ms: 10_080 * 60_000,
            offset_metadata_max_bytes: 4096,
        }
    }
}

impl GroupConfig {
    /// Checks the settings are coherent.
    pub fn validate(&self) -> Result<()> {
        if self.min_session_timeout_ms <= 0
            || self.min_session_timeout_ms > self.max_session_timeout_ms
        {
            bail!(
                InvalidRequest,
                "group.min.session.timeout.ms {} must be positive and at most group.max.session.timeout.ms {}",
                self.min_session_timeout_ms,
                self.max_session_timeout_ms
            );
        }
        if self.heartbeat_interval_ms <= 0 {
            bail!(
                InvalidRequest,
                "group.consumer.heartbeat.interval.ms must be positive"
            );
        }
        if self.offsets_retention_ms <= 0 {
            bail!(InvalidRequest, "offsets.retention.minutes must be positive");
        }
        Ok(())
    }
}
