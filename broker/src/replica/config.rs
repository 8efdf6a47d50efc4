//! [`ReplicationConfig`]: the replica core's settings, apart from the
//! manager and the fetchers that both read them.

use std::time::Duration;

use strom_controller_client::ConfigError;
use strom_log::{CleanupPolicy, LogConfig, TimestampType};

use super::cleaner::CleanerConfig;

/// Replication settings (Kafka's broker setting names).
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms`: a follower not caught up for this long
    /// leaves the ISR.
    pub replica_lag_time_max: Duration,
    /// `replica.fetch.wait.max.ms`: a follower fetch's long-poll bound.
    pub replica_fetch_wait_max: Duration,
    /// `replica.fetch.max.bytes`: per-partition bytes in a follower fetch.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: bytes in a follower fetch response.
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`: pause after a failed follower fetch.
    pub replica_fetch_backoff: Duration,
    /// `min.insync.replicas`: default for topics that do not set it.
    pub min_insync_replicas: usize,
    /// `replica.high.watermark.checkpoint.interval.ms`.
    pub checkpoint_interval: Duration,
    /// `log.retention.check.interval.ms`: how often retention runs (and a
    /// quiet partition's active segment is rolled by `segment.ms`).
    pub retention_check_interval: Duration,
    /// Log settings for topics that do not override them (`log.segment.bytes`,
    /// `log.roll.ms`, `message.max.bytes`, `log.flush.interval.messages`,
    /// `log.flush.interval.ms`, `log.message.timestamp.type`,
    /// `log.retention.ms`, `log.retention.bytes`, `log.cleanup.policy`,
    /// `producer.id.expiration.ms`).
    pub log: LogConfig,
    /// `log.cache.drop.behind.bytes`: drop written-back log pages from the
    /// page cache once they are this far behind the appends
    /// ([`strom_log::set_cache_drop_behind`]); 0, the default, keeps them
    /// cached as Kafka does.
    pub cache_drop_behind_bytes: u64,
    /// The log cleaner (`log.cleaner.threads`,
    /// `log.cleaner.dedupe.buffer.size`,
    /// `log.cleaner.io.max.bytes.per.second`, `log.cleaner.backoff.ms`).
    pub cleaner: CleanerConfig,
    /// `log.write.caching`: default of the topic config `write.caching`.
    /// `true` (Kafka's behaviour) acknowledges acks=all writes once every
    /// ISR member has them in its page cache; `false` once every ISR member
    /// fsynced them, so they survive a power cut of every node.
    pub write_caching: bool,
    /// `leader.replication.throttled.rate`: bytes/s this broker serves to
    /// throttled followers (replicas being added, out of the ISR, listed
    /// in `leader.replication.throttled.replicas`); `None` (Kafka's
    /// `Long.MAX_VALUE`): unthrottled.
    pub leader_throttled_rate: Option<u64>,
    /// `follower.replication.throttled.rate`: bytes/s this broker fetches
    /// for its throttled replicas; `None`: unthrottled.
    pub follower_throttled_rate: Option<u64>,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            replica_lag_time_max: Duration::from_millis(30_000),
            replica_fetch_wait_max: Duration::from_millis(500),
            replica_fetch_max_bytes: 1 << 20,
            replica_fetch_response_max_bytes: 10 << 20,
            replica_fetch_backoff: Duration::from_millis(100),
            min_insync_replicas: 1,
            checkpoint_interval: Duration::from_millis(5000),
            retention_check_interval: Duration::from_millis(300_000),
            log: LogConfig::default(),
            cache_drop_behind_bytes: 0,
            cleaner: CleanerConfig::default(),
            write_caching: true,
            leader_throttled_rate: None,
            follower_throttled_rate: None,
        }
    }
}

/// Kafka's `Long.MAX_VALUE` for the flush settings: never.
const NEVER: u64 = i64::MAX as u64;

impl ReplicationConfig {
    /// Applies one setting by its Kafka name; `Ok(false)` when the key is
    /// not a replication or log setting. Used for `--set` at startup and
    /// for the live (dynamic) values of the settings that can change
    /// ([`strom_metadata::configs::BROKER_CONFIGS`]).
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let ms = |v: &str| {
            v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                ConfigError(format!("{key} must be a number of milliseconds, got '{v}'"))
            })
        };
        let num = |v: &str| {
            v.parse::<u64>().map_err(|_| {
                ConfigError(format!("{key}: expected a non-negative number, got '{v}'"))
            })
        };
        // `Long.MAX_VALUE`, Kafka's default of the flush settings, is "never".
        let flush = |v: &str| num(v).map(|n| (n != NEVER).then_some(n));
        match key {
            "replica.lag.time.max.ms" => self.replica_lag_time_max = ms(value)?,
            "replica.fetch.wait.max.ms" => self.replica_fetch_wait_max = ms(value)?,
            "replica.fetch.max.bytes" => self.replica_fetch_max_bytes = int(key, value)?,
            "replica.fetch.response.max.bytes" => {
                self.replica_fetch_response_max_bytes = int(key, value)?
            }
            "replica.fetch.backoff.ms" => self.replica_fetch_backoff = ms(value)?,
            "replica.high.watermark.checkpoint.interval.ms" => {
                self.checkpoint_interval = ms(value)?
            }
            "min.insync.replicas" => self.min_insync_replicas = int(key, value)?,
            "log.segment.bytes" => self.log.segment_bytes = num(value)?,
            "log.cache.drop.behind.bytes" => self.cache_drop_behind_bytes = num(value)?,
            "log.roll.ms" => self.log.segment_ms = num(value)?,
            "message.max.bytes" => self.log.max_message_bytes = int(key, value)?,
            "log.flush.interval.messages" => self.log.flush_messages = flush(value)?,
            "log.flush.interval.ms" => self.log.flush_ms = flush(value)?,
            "log.message.timestamp.type" => {
                self.log.message_timestamp_type = timestamp_type(value).ok_or_else(|| {
                    ConfigError(format!(
                        "{key} must be CreateTime or LogAppendTime, got '{value}'"
                    ))
                })?
            }
            "log.retention.check.interval.ms" => self.retention_check_interval = ms(value)?,
            "producer.id.expiration.ms" => {
                self.log.producer_id_expiration_ms = match num(value)? {
                    0 => return Err(ConfigError(format!("{key} must be positive, got 0"))),
                    n => n,
                }
            }
            "log.retention.ms" => self.log.retention_ms = limit(key, value)?,
            "log.retention.bytes" => self.log.retention_bytes = limit(key, value)?,
            "log.cleanup.policy" => {
                self.log.cleanup_policy = CleanupPolicy::parse(value).ok_or_else(|| {
                    ConfigError(format!(
                        "log.cleanup.policy must be delete, compact or compact,delete, got '{value}'"
                    ))
                })?
            }
            "log.cleaner.threads" => self.cleaner.threads = int(key, value)?,
            "log.cleaner.dedupe.buffer.size" => self.cleaner.dedupe_buffer_size = num(value)?,
            "log.cleaner.io.max.bytes.per.second" => {
                self.cleaner.io_max_bytes_per_second = ratio(key, value, f64::MAX)?
            }
            "log.cleaner.backoff.ms" => self.cleaner.backoff = ms(value)?,
            "log.cleaner.delete.retention.ms" => self.log.delete_retention_ms = num(value)?,
            "log.cleaner.min.compaction.lag.ms" => self.log.min_compaction_lag_ms = num(value)?,
            "log.cleaner.max.compaction.lag.ms" => self.log.max_compaction_lag_ms = flush(value)?,
            "log.cleaner.min.cleanable.ratio" => {
                self.log.min_cleanable_dirty_ratio = ratio(key, value, 1.0)?
            }
            "leader.replication.throttled.rate" => {
                self.leader_throttled_rate = rate(key, value)?
            }
            "follower.replication.throttled.rate" => {
                self.follower_throttled_rate = rate(key, value)?
            }
            "log.write.caching" => {
                self.write_caching = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ConfigError(format!(
                            "log.write.caching must be true or false, got '{value}'"
                        )));
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `CreateTime` or `LogAppendTime` (Kafka's `message.timestamp.type`).
pub(crate) fn timestamp_type(value: &str) -> Option<TimestampType> {
    match value {
        "CreateTime" => Some(TimestampType::CreateTime),
        "LogAppendTime" => Some(TimestampType::LogAppendTime),
        _ => None,
    }
}

/// A retention limit: Kafka's -1 is unlimited (`None`).
fn limit(key: &str, v: &str) -> Result<Option<u64>, ConfigError> {
    let refused = || {
        ConfigError(format!(
            "{key} must be -1 (unlimited) or a non-negative number, got '{v}'"
        ))
    };
    match v.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) => u64::try_from(n).map(Some).map_err(|_| refused()),
        Err(_) => Err(refused()),
    }
}

/// A replication throttle in bytes/s: at least 1; Kafka's
/// `Long.MAX_VALUE` (the default) is unthrottled (`None`).
fn rate(key: &str, v: &str) -> Result<Option<u64>, ConfigError> {
    match v.parse::<u64>() {
        Ok(NEVER) => Ok(None),
        Ok(n) if (1..NEVER).contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError(format!(
            "{key} must be a number of bytes per second of at least 1, got '{v}'"
        ))),
    }
}

/// A number in `[0, max]`.
pub(crate) fn ratio(key: &str, v: &str, max: f64) -> Result<f64, ConfigError> {
    match v.parse::<f64>() {
        Ok(n) if (0.0..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError(format!(
            "{key} must be a number from 0 to {max}, got '{v}'"
        ))),
    }
}

fn int<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.parse::<T>()
        .map_err(|_| ConfigError(format!("{key}: expected a non-negative number, got '{v}'")))
}
