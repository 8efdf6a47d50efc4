//! The coordinator's broker settings.

use strom_controller_client::ConfigError;
use strom_group::GroupConfig;

/// Group coordinator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupsConfig {
    /// `offsets.topic.num.partitions` (50).
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` (3), capped by the live brokers
    /// when the topic is created.
    pub offsets_topic_replication_factor: i32,
    /// `offsets.commit.timeout.ms` (5000): how long a write waits for the ISR.
    pub offsets_commit_timeout_ms: i32,
    /// `group.consumer.lag.interval.ms` (30000, Strom's own): how often the
    /// coordinator reads the end offsets of its groups' partitions for the
    /// consumer-lag metric.
    pub consumer_lag_interval_ms: i64,
    /// The pure core's settings (session bounds, retention, metadata size).
    pub group: GroupConfig,
}

impl Default for GroupsConfig {
    fn default() -> Self {
        GroupsConfig {
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_commit_timeout_ms: 5000,
            consumer_lag_interval_ms: 30_000,
            group: GroupConfig::default(),
        }
    }
}

impl GroupsConfig {
    /// Applies one setting; `Ok(false)` when `key` is not a coordinator setting.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        fn int<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
            v.parse::<T>()
                .map_err(|_| ConfigError(format!("{key} must be a number, got '{v}'")))
        }
        match key {
            "offsets.topic.num.partitions" => self.offsets_topic_num_partitions = int(key, value)?,
            "offsets.topic.replication.factor" => {
                self.offsets_topic_replication_factor = int(key, value)?
            }
            "offsets.commit.timeout.ms" => self.offsets_commit_timeout_ms = int(key, value)?,
            "group.consumer.lag.interval.ms" => self.consumer_lag_interval_ms = int(key, value)?,
            "offsets.retention.minutes" => {
                let minutes: i64 = int(key, value)?;
                self.group.offsets_retention_ms = minutes.saturating_mul(60_000);
            }
            "offset.metadata.max.bytes" => self.group.offset_metadata_max_bytes = int(key, value)?,
            "group.min.session.timeout.ms" => self.group.min_session_timeout_ms = int(key, value)?,
            "group.max.session.timeout.ms" => self.group.max_session_timeout_ms = int(key, value)?,
            "group.consumer.heartbeat.interval.ms" => {
                self.group.heartbeat_interval_ms = int(key, value)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the settings are coherent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.offsets_topic_num_partitions < 1 {
            return Err(ConfigError(
                "offsets.topic.num.partitions must be at least 1".into(),
            ));
        }
        if self.offsets_topic_replication_factor < 1 {
            return Err(ConfigError(
                "offsets.topic.replication.factor must be at least 1".into(),
            ));
        }
        if self.offsets_commit_timeout_ms < 1 {
            return Err(ConfigError(
                "offsets.commit.timeout.ms must be positive".into(),
            ));
        }
        if self.consumer_lag_interval_ms < 100 {
            return Err(ConfigError(
                "group.consumer.lag.interval.ms must be at least 100".into(),
            ));
        }
        self.group.validate().map_err(|e| ConfigError(e.message))
    }
}
