//! Per-partition log configuration, named after Kafka's topic settings.

use crate::batch::TimestampType;
use crate::compaction::CompactionLags;
use crate::error::{LogError, Result};
use crate::retention::RetentionLimits;

/// Log settings. Field docs give the Kafka topic-config name.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment when it would exceed this
    /// size. Default 1 GiB.
    pub segment_bytes: u64,
    /// `segment.ms`: roll the active segment once it is this old (since it
    /// was created or the log opened), on append or, for a quiet partition,
    /// on the broker's retention timer. Default 7 days.
    pub segment_ms: u64,
    /// `index.interval.bytes`: bytes of log between sparse offset-index
    /// entries. Default 4096.
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`: maximum size of a segment's offset index; a
    /// full index rolls the segment. Default 10 MiB.
    pub segment_index_bytes: u64,
    /// `max.message.bytes`: largest batch a leader accepts. Default 1 MiB.
    pub max_message_bytes: usize,
    /// `flush.messages`: fsync after this many messages (offsets) since the
    /// last flush ([`flush_due`](crate::PartitionLog::flush_due) tells the
    /// appender, which runs the fsync). `None` (Kafka's `Long.MAX_VALUE`)
    /// leaves flushing to [`flush_until`](crate::PartitionLog::flush_until)
    /// and the OS.
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync when the last flush is older than this, checked
    /// after appends and by
    /// [`flush_if_due`](crate::PartitionLog::flush_if_due). `None` disables
    /// it; 0 fsyncs after every append, as in Kafka.
    pub flush_ms: Option<u64>,
    /// `message.timestamp.type`: with `LogAppendTime` the leader stamps its
    /// append time into every batch, whatever the producer set (Kafka's
    /// topic setting); with `CreateTime` only batches the producer marked
    /// LogAppendTime are stamped.
    pub message_timestamp_type: TimestampType,
    /// `retention.ms`: closed segments whose largest record timestamp is
    /// older than this are deleted. `None` (Kafka's -1): no time limit.
    /// Default 7 days.
    pub retention_ms: Option<u64>,
    /// `retention.bytes`: the oldest closed segments are deleted while the
    /// partition's log is larger than this. `None` (Kafka's -1, the
    /// default): no size limit.
    pub retention_bytes: Option<u64>,
    /// `cleanup.policy`: retention applies only with `delete`, the log
    /// cleaner only with `compact`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long a tombstone stays after the cleaning
    /// pass that first kept it (its batch's delete horizon). Default 1 day.
    pub delete_retention_ms: u64,
    /// `min.compaction.lag.ms`: records younger than this (by their
    /// segment's largest timestamp) are not cleaned. Default 0.
    pub min_compaction_lag_ms: u64,
    /// `max.compaction.lag.ms`: a compacted log whose oldest dirty record is
    /// older than this is cleaned whatever its dirty ratio, and its active
    /// segment rolls at least this often. `None` (Kafka's
    /// `Long.MAX_VALUE`, the default): no bound.
    pub max_compaction_lag_ms: Option<u64>,
    /// `min.cleanable.dirty.ratio`: the cleaner takes a compacted log once
    /// this share of its cleanable bytes is dirty. Default 0.5.
    pub min_cleanable_dirty_ratio: f64,
    /// `producer.id.expiration.ms` (a broker setting in Kafka): an
    /// idempotent producer whose last batch is older than this is
    /// forgotten (checked on appends, at most every minute, and before
    /// snapshots). Default 1 day.
    pub producer_id_expiration_ms: u64,
}

/// `cleanup.policy`: a list of `delete` and `compact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `delete`: old segments go by `retention.ms` / `retention.bytes`, and
    /// `DeleteRecords` may move the log start.
    pub delete: bool,
    /// `compact`: the log cleaner keeps the newest record per key
    /// (`log/compact.rs`).
    pub compact: bool,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

impl CleanupPolicy {
    /// Parses Kafka's comma-separated list (`delete`, `compact`,
    /// `compact,delete`); `None` for anything else or an empty list.
    pub fn parse(value: &str) -> Option<Self> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for item in value.split(',').map(str::trim) {
            match item {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        Some(policy)
    }
}

/// 1 GiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
/// 7 days.
pub const DEFAULT_SEGMENT_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// 4 KiB.
pub const DEFAULT_INDEX_INTERVAL_BYTES: u64 = 4096;
/// 10 MiB.
pub const DEFAULT_SEGMENT_INDEX_BYTES: u64 = 10 << 20;
/// 1 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;
/// 7 days.
pub const DEFAULT_RETENTION_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// 1 day.
pub const DEFAULT_DELETE_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;
/// 1 day.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: u64 = 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: DEFAULT_SEGMENT_MS,
            index_interval_bytes: DEFAULT_INDEX_INTERVAL_BYTES,
            segment_index_bytes: DEFAULT_SEGMENT_INDEX_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            flush_messages: None,
            flush_ms: None,
            retention_ms: Some(DEFAULT_RETENTION_MS),
            retention_bytes: None,
            cleanup_policy: CleanupPolicy::default(),
            message_timestamp_type: TimestampType::CreateTime,
            delete_retention_ms: DEFAULT_DELETE_RETENTION_MS,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: None,
            min_cleanable_dirty_ratio: 0.5,
            producer_id_expiration_ms: DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        }
    }
}

impl LogConfig {
    /// Check ranges; [`PartitionLog::open`](crate::PartitionLog::open) calls it.
    pub fn validate(&self) -> Result<()> {
        fn invalid(name: &'static str, reason: &str) -> Result<()> {
            Err(LogError::InvalidConfig {
                name,
                reason: reason.to_owned(),
            })
        }
        // Positions in the offset index are u32 and a segment may exceed
        // segment.bytes by one batch, so keep segment.bytes within i32 as Kafka.
        if self.segment_bytes < 64 || self.segment_bytes > i32::MAX as u64 {
            return invalid("segment.bytes", "must be in [64, 2147483647]");
        }
        if self.segment_ms == 0 {
            return invalid("segment.ms", "must be positive");
        }
        if self.index_interval_bytes == 0 {
            return invalid("index.interval.bytes", "must be positive");
        }
        if self.segment_index_bytes < 8 || self.segment_index_bytes > i32::MAX as u64 {
            return invalid("segment.index.bytes", "must be in [8, 2147483647]");
        }
        if self.max_message_bytes < crate::batch::HEADER_LEN
            || self.max_message_bytes > i32::MAX as usize
        {
            return invalid("max.message.bytes", "must be in [61, 2147483647]");
        }
        if self.flush_messages == Some(0) {
            return invalid("flush.messages", "must be positive");
        }
        if self.producer_id_expiration_ms == 0 || self.producer_id_expiration_ms > i64::MAX as u64 {
            return invalid("producer.id.expiration.ms", "must be positive");
        }
        if !self.cleanup_policy.delete && !self.cleanup_policy.compact {
            return invalid("cleanup.policy", "must list delete, compact or both");
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return invalid("min.cleanable.dirty.ratio", "must be in [0, 1]");
        }
        if self.max_compaction_lag_ms == Some(0) {
            return invalid("max.compaction.lag.ms", "must be positive");
        }
        Ok(())
    }

    /// How old the active segment may get before it rolls: `segment.ms`,
    /// or `max.compaction.lag.ms` when lower on a compacted log (a record
    /// in the active segment cannot be cleaned), as Kafka's
    /// `LogConfig.maxSegmentMs`.
    pub fn roll_ms(&self) -> u64 {
        match self.max_compaction_lag_ms {
            Some(max) if self.cleanup_policy.compact => self.segment_ms.min(max),
            _ => self.segment_ms,
        }
    }

    /// `min.compaction.lag.ms` and `max.compaction.lag.ms`.
    pub fn compaction_lags(&self) -> CompactionLags {
        CompactionLags {
            min_compaction_lag_ms: self.min_compaction_lag_ms,
            max_compaction_lag_ms: self.max_compaction_lag_ms,
        }
    }

    /// What retention deletes by: the configured limits when
    /// `cleanup.policy` includes `delete`, none otherwise.
    pub fn retention_limits(&self) -> RetentionLimits {
        if !self.cleanup_policy.delete {
            return RetentionLimits::default();
        }
        RetentionLimits {
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
        }
    }

    /// Maximum number of entries in a segment's offset index.
    pub(crate) fn max_index_entries(&self) -> usize {
        (self.segment_index_bytes / 8) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_matches_kafka() {
        let config = LogConfig::default();
        config.validate().expect("default config is valid");
        assert_eq!(config.segment_bytes, 1_073_741_824);
        assert_eq!(config.index_interval_bytes, 4096);
        assert_eq!(config.max_message_bytes, 1_048_576);
        assert_eq!(config.flush_messages, None);
        assert_eq!(config.retention_ms, Some(604_800_000));
        assert_eq!(config.retention_bytes, None);
        assert_eq!(config.cleanup_policy, CleanupPolicy::default());
        assert_eq!(
            config.retention_limits(),
            RetentionLimits {
                retention_ms: Some(604_800_000),
                retention_bytes: None
            }
        );
    }

    #[test]
    fn a_compacted_log_rolls_by_max_compaction_lag() {
        let compact = CleanupPolicy {
            delete: false,
            compact: true,
        };
        let cases = [
            (CleanupPolicy::default(), Some(1_000), 604_800_000),
            (compact, None, 604_800_000),
            (compact, Some(1_000), 1_000),
            (compact, Some(u64::MAX), 604_800_000),
        ];
        for (cleanup_policy, max_compaction_lag_ms, expected) in cases {
            let config = LogConfig {
                segment_ms: 604_800_000,
                cleanup_policy,
                max_compaction_lag_ms,
                ..LogConfig::default()
            };
            assert_eq!(
                config.roll_ms(),
                expected,
                "{cleanup_policy:?} {max_compaction_lag_ms:?}"
            );
        }
    }

    #[test]
    fn cleanup_policy_parses_kafka_lists_and_gates_retention() {
        let policy = |delete, compact| Some(CleanupPolicy { delete, compact });
        let cases = [
            ("delete", policy(true, false)),
            ("compact", policy(false, true)),
            ("compact,delete", policy(true, true)),
            ("delete, compact", policy(true, true)),
            ("", None),
            ("delete,", None),
            ("remove", None),
        ];
        for (text, expected) in cases {
            assert_eq!(CleanupPolicy::parse(text), expected, "{text:?}");
        }
        let compact_only = LogConfig {
            retention_bytes: Some(1),
            cleanup_policy: CleanupPolicy {
                delete: false,
                compact: true,
            },
            ..LogConfig::default()
        };
        assert_eq!(compact_only.retention_limits(), RetentionLimits::default());
    }

    #[test]
    fn out_of_range_values_are_rejected_by_name() {
        let cases: Vec<(&str, LogConfig)> = vec![
            (
                "segment.bytes",
                LogConfig {
                    segment_bytes: 10,
                    ..Default::default()
                },
            ),
            (
                "segment.ms",
                LogConfig {
                    segment_ms: 0,
                    ..Default::default()
                },
            ),
            (
                "index.interval.bytes",
                LogConfig {
                    index_interval_bytes: 0,
                    ..Default::default()
                },
            ),
            (
                "segment.index.bytes",
                LogConfig {
                    segment_index_bytes: 4,
                    ..Default::default()
                },
            ),
            (
                "max.message.bytes",
                LogConfig {
                    max_message_bytes: 10,
                    ..Default::default()
                },
            ),
            (
                "flush.messages",
                LogConfig {
                    flush_messages: Some(0),
                    ..Default::default()
                },
            ),
            (
                "cleanup.policy",
                LogConfig {
                    cleanup_policy: CleanupPolicy {
                        delete: false,
                        compact: false,
                    },
                    ..Default::default()
                },
            ),
            (
                "max.compaction.lag.ms",
                LogConfig {
                    max_compaction_lag_ms: Some(0),
                    ..Default::default()
                },
            ),
        ];
        for (expected, config) in cases {
            match config.validate() {
                Err(LogError::InvalidConfig { name, .. }) => assert_eq!(name, expected),
                other => panic!("{expected}: expected InvalidConfig, got {other:?}"),
            }
        }
    }
}
