//! Broker settings, with Kafka's names where Kafka has one.

use std::path::PathBuf;
use std::time::Duration;

use strom_controller_client::ConfigError;

use crate::replica::ReplicationConfig;

/// Settings of a broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Node id (`--node-id`).
    pub node_id: i32,
    /// Host and port clients and peers are told (`--advertised-address`).
    pub advertised_host: String,
    /// Port of the advertised address.
    pub advertised_port: u16,
    /// Rack (`--rack`).
    pub rack: Option<String>,
    /// Node data directory.
    pub data_dir: PathBuf,
    /// `broker.session.timeout.ms`: how long the controller keeps a lease.
    pub session_timeout: Duration,
    /// `broker.heartbeat.interval.ms` until the controller says otherwise.
    pub heartbeat_interval: Duration,
    /// `controlled.shutdown.timeout.ms`: how long SIGTERM waits for leaderships to move.
    pub controlled_shutdown_timeout: Duration,
    /// `controller.request.timeout.ms`: bound on one request to the controller quorum.
    pub controller_request_timeout: Duration,
    /// `socket.request.max.bytes`: largest gRPC request accepted on the
    /// client port (a larger one fails with `RESOURCE_EXHAUSTED` before
    /// anything is read). Default 100 MiB.
    pub socket_request_max_bytes: usize,
    /// Replication and log defaults.
    pub replication: ReplicationConfig,
    /// `log.retention.ms`, `log.retention.minutes` and `log.retention.hours`
    /// as set; [`set`](Self::set) resolves them into
    /// `replication.log.retention_ms`.
    pub log_retention: RetentionTime,
}

/// The broker's default `retention.ms`, settable in three units as in
/// Kafka: the finest one set wins (`ms` over `minutes` over `hours`),
/// whatever the order they were given in; -1 is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionTime {
    /// `log.retention.ms`.
    pub ms: Option<i64>,
    /// `log.retention.minutes`.
    pub minutes: Option<i64>,
    /// `log.retention.hours` (Kafka's default: 168).
    pub hours: Option<i64>,
}

impl RetentionTime {
    /// The retention in milliseconds: `None` when nothing is set (keep the
    /// default), `Some(None)` for unlimited.
    fn resolve(&self) -> Result<Option<Option<u64>>, ConfigError> {
        let (value, unit, name) = match (self.ms, self.minutes, self.hours) {
            (Some(v), _, _) => (v, 1, "log.retention.ms"),
            (None, Some(v), _) => (v, 60_000, "log.retention.minutes"),
            (None, None, Some(v)) => (v, 3_600_000, "log.retention.hours"),
            (None, None, None) => return Ok(None),
        };
        if value == -1 {
            return Ok(Some(None));
        }
        let ms = u64::try_from(value)
            .ok()
            .and_then(|v| v.checked_mul(unit))
            .filter(|ms| i64::try_from(*ms).is_ok())
            .ok_or_else(|| {
                ConfigError(format!(
                    "{name} must be -1 (unlimited) or a non-negative number that fits in milliseconds, got {value}"
                ))
            })?;
        Ok(Some(Some(ms)))
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            rack: None,
            data_dir: PathBuf::from("data"),
            session_timeout: Duration::from_millis(9000),
            heartbeat_interval: Duration::from_millis(2000),
            controlled_shutdown_timeout: Duration::from_secs(30),
            controller_request_timeout: Duration::from_secs(10),
            socket_request_max_bytes: 100 << 20,
            replication: ReplicationConfig::default(),
            log_retention: RetentionTime::default(),
        }
    }
}

impl BrokerConfig {
    /// Applies one `--set key=value`; `Ok(false)` when the key is not a broker setting.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let ms = |v: &str| {
            v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                ConfigError(format!("{key} must be a number of milliseconds, got '{v}'"))
            })
        };
        fn num<T: std::str::FromStr>(v: &str) -> Result<T, ConfigError> {
            v.parse::<T>()
                .map_err(|_| ConfigError(format!("expected a non-negative number, got '{v}'")))
        }
        fn long(key: &str, v: &str) -> Result<i64, ConfigError> {
            v.parse::<i64>()
                .map_err(|_| ConfigError(format!("{key} must be a number, got '{v}'")))
        }
        match key {
            "broker.heartbeat.interval.ms" => self.heartbeat_interval = ms(value)?,
            "broker.session.timeout.ms" => self.session_timeout = ms(value)?,
            "controlled.shutdown.timeout.ms" => self.controlled_shutdown_timeout = ms(value)?,
            "controller.request.timeout.ms" => self.controller_request_timeout = ms(value)?,
            "socket.request.max.bytes" => self.socket_request_max_bytes = num(value)?,
            "replica.lag.time.max.ms" => self.replication.replica_lag_time_max = ms(value)?,
            "replica.fetch.wait.max.ms" => self.replication.replica_fetch_wait_max = ms(value)?,
            "replica.fetch.max.bytes" => self.replication.replica_fetch_max_bytes = num(value)?,
            "replica.fetch.response.max.bytes" => {
                self.replication.replica_fetch_response_max_bytes = num(value)?
            }
            "replica.fetch.backoff.ms" => self.replication.replica_fetch_backoff = ms(value)?,
            "replica.high.watermark.checkpoint.interval.ms" => {
                self.replication.checkpoint_interval = ms(value)?
            }
            "min.insync.replicas" => self.replication.min_insync_replicas = num(value)?,
            "log.segment.bytes" => self.replication.log.segment_bytes = num(value)?,
            "log.cache.drop.behind.bytes" => self.replication.cache_drop_behind_bytes = num(value)?,
            "log.roll.ms" => self.replication.log.segment_ms = num(value)?,
            "message.max.bytes" => self.replication.log.max_message_bytes = num(value)?,
            "log.flush.interval.messages" => {
                self.replication.log.flush_messages = Some(num(value)?)
            }
            "log.flush.interval.ms" => self.replication.log.flush_ms = Some(num(value)?),
            "log.retention.check.interval.ms" => {
                self.replication.retention_check_interval = ms(value)?
            }
            "log.retention.ms" => self.log_retention.ms = Some(long(key, value)?),
            "log.retention.minutes" => self.log_retention.minutes = Some(long(key, value)?),
            "log.retention.hours" => self.log_retention.hours = Some(long(key, value)?),
            "log.retention.bytes" => {
                let v = long(key, value)?;
                self.replication.log.retention_bytes = match v {
                    -1 => None,
                    v => Some(u64::try_from(v).map_err(|_| {
                        ConfigError(format!(
                            "log.retention.bytes must be -1 (unlimited) or non-negative, got {v}"
                        ))
                    })?),
                };
            }
            "log.cleanup.policy" => {
                self.replication.log.cleanup_policy =
                    strom_log::CleanupPolicy::parse(value).ok_or_else(|| {
                        ConfigError(format!(
                            "log.cleanup.policy must be delete, compact or compact,delete, got '{value}'"
                        ))
                    })?
            }
            _ => return Ok(false),
        }
        if let Some(ms) = self.log_retention.resolve()? {
            self.replication.log.retention_ms = ms;
        }
        Ok(true)
    }

    /// Checks ranges the settings above cannot express in their types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = &self.replication;
        if r.min_insync_replicas == 0 {
            return Err(ConfigError("min.insync.replicas must be at least 1".into()));
        }
        if r.replica_fetch_max_bytes <= 0 || r.replica_fetch_response_max_bytes <= 0 {
            return Err(ConfigError(
                "replica.fetch.max.bytes and replica.fetch.response.max.bytes must be positive"
                    .into(),
            ));
        }
        // Closer than one writeback chunk (4 MiB) the pages are still dirty
        // and would never be dropped.
        if r.cache_drop_behind_bytes != 0 && r.cache_drop_behind_bytes < 4 << 20 {
            return Err(ConfigError(format!(
                "log.cache.drop.behind.bytes must be 0 (off) or at least 4194304, got {}",
                r.cache_drop_behind_bytes
            )));
        }
        if r.replica_lag_time_max.is_zero() {
            return Err(ConfigError(
                "replica.lag.time.max.ms must be positive".into(),
            ));
        }
        if r.retention_check_interval.is_zero() {
            return Err(ConfigError(
                "log.retention.check.interval.ms must be positive".into(),
            ));
        }
        r.log.validate().map_err(|e| ConfigError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(settings: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let mut c = BrokerConfig::default();
        for (k, v) in settings {
            assert!(c.set(k, v)?, "{k} is a broker setting");
        }
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn retention_settings_take_kafka_names_and_precedence() {
        // (settings, retention.ms, retention.bytes)
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<u64>, Option<u64>);
        let cases: &[Case<'_>] = &[
            (&[], Some(604_800_000), None),
            (&[("log.retention.hours", "1")], Some(3_600_000), None),
            (&[("log.retention.minutes", "2")], Some(120_000), None),
            (&[("log.retention.ms", "-1")], None, None),
            (
                &[("log.retention.ms", "500"), ("log.retention.hours", "1")],
                Some(500),
                None,
            ),
            (
                &[("log.retention.hours", "1"), ("log.retention.minutes", "3")],
                Some(180_000),
                None,
            ),
            (
                &[("log.retention.bytes", "1048576")],
                Some(604_800_000),
                Some(1 << 20),
            ),
            (&[("log.retention.bytes", "-1")], Some(604_800_000), None),
        ];
        for (settings, ms, bytes) in cases {
            let c = with(settings).expect("valid");
            let log = &c.replication.log;
            assert_eq!(
                (log.retention_ms, log.retention_bytes),
                (*ms, *bytes),
                "{settings:?}"
            );
        }
        let c = with(&[
            ("log.retention.check.interval.ms", "250"),
            ("log.cleanup.policy", "compact"),
        ])
        .expect("valid");
        assert_eq!(c.replication.retention_check_interval.as_millis(), 250);
        assert!(!c.replication.log.cleanup_policy.delete);
    }

    #[test]
    fn bad_retention_settings_are_refused_by_name() {
        let cases: &[(&str, &str)] = &[
            ("log.retention.ms", "-2"),
            ("log.retention.hours", "x"),
            ("log.retention.hours", "9223372036854775807"),
            ("log.retention.bytes", "-5"),
            ("log.cleanup.policy", "remove"),
            ("log.retention.check.interval.ms", "0"),
        ];
        for (k, v) in cases {
            let err = with(&[(k, v)]).expect_err(k);
            assert!(err.0.contains(k), "{k}={v}: {}", err.0);
        }
    }
}
