//! [`ReplicationConfig`]: the replica core's settings, apart from the
//! manager and the fetchers that both read them.

use std::time::Duration;

use strom_log::LogConfig;

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
    /// `log.flush.interval.ms`, `log.retention.ms` (or `.minutes`, `.hours`),
    /// `log.retention.bytes`, `log.cleanup.policy`).
    pub log: LogConfig,
    /// `log.cache.drop.behind.bytes`: drop written-back log pages from the
    /// page cache once they are this far behind the appends
    /// ([`strom_log::set_cache_drop_behind`]); 0, the default, keeps them
    /// cached as Kafka does.
    pub cache_drop_behind_bytes: u64,
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
        }
    }
}
