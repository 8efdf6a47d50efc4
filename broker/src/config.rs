//! Broker settings, with Kafka's names where Kafka has one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use strom_controller_client::ConfigError;

use crate::group::GroupsConfig;
use crate::replica::ReplicationConfig;
use crate::txn::TxnsConfig;

/// The name of the Kafka wire-protocol listener's endpoint in a broker's
/// registration (the gRPC client port's is `client`, always first).
pub const KAFKA_ENDPOINT: &str = "kafka";

/// Settings of a broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Node id (`--node-id`).
    pub node_id: i32,
    /// Host and port clients and peers are told (`--advertised-address`).
    pub advertised_host: String,
    /// Port of the advertised address.
    pub advertised_port: u16,
    /// Host and port Kafka clients are told for this broker's Kafka
    /// listener (`--kafka-advertised-address`), registered as the
    /// [`KAFKA_ENDPOINT`] endpoint; `None` when the listener is off.
    pub kafka_advertised: Option<(String, u16)>,
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
    /// `connections.max.idle.ms`: the Kafka listener closes a connection
    /// that has sent nothing and has nothing unanswered for this long.
    pub connections_max_idle: Duration,
    /// `max.incremental.fetch.session.cache.slots`: how many incremental
    /// fetch sessions (KIP-227) the Kafka listener holds; 0 creates none.
    pub max_incremental_fetch_session_cache_slots: usize,
    /// Replication and log defaults.
    pub replication: ReplicationConfig,
    /// The group coordinator's settings.
    pub groups: GroupsConfig,
    /// The transaction coordinator's settings.
    pub transactions: TxnsConfig,
    /// The settings this node was started with (config file, environment,
    /// `--set`) by Kafka name, sensitive values empty: reported when
    /// registering, so `DescribeConfigs` shows them as STATIC_BROKER_CONFIG.
    pub static_configs: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            kafka_advertised: None,
            rack: None,
            data_dir: PathBuf::from("data"),
            session_timeout: Duration::from_millis(9000),
            heartbeat_interval: Duration::from_millis(2000),
            controlled_shutdown_timeout: Duration::from_secs(30),
            controller_request_timeout: Duration::from_secs(10),
            socket_request_max_bytes: 100 << 20,
            connections_max_idle: Duration::from_millis(600_000),
            max_incremental_fetch_session_cache_slots: 1000,
            replication: ReplicationConfig::default(),
            groups: GroupsConfig::default(),
            transactions: TxnsConfig::default(),
            static_configs: BTreeMap::new(),
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
        match key {
            "broker.heartbeat.interval.ms" => self.heartbeat_interval = ms(value)?,
            "broker.session.timeout.ms" => self.session_timeout = ms(value)?,
            "controlled.shutdown.timeout.ms" => self.controlled_shutdown_timeout = ms(value)?,
            "controller.request.timeout.ms" => self.controller_request_timeout = ms(value)?,
            "socket.request.max.bytes" => self.socket_request_max_bytes = num(value)?,
            "connections.max.idle.ms" => self.connections_max_idle = ms(value)?,
            "max.incremental.fetch.session.cache.slots" => {
                self.max_incremental_fetch_session_cache_slots = num(value)?
            }
            _ if self.groups.set(key, value)? => {}
            _ if self.transactions.set(key, value)? => {}
            _ => return self.replication.set(key, value),
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
        if self.connections_max_idle.is_zero() {
            return Err(ConfigError(
                "connections.max.idle.ms must be positive".into(),
            ));
        }
        self.groups.validate()?;
        self.transactions.validate()?;
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
    fn retention_settings_take_kafka_names() {
        // (settings, retention.ms, retention.bytes)
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<u64>, Option<u64>);
        let cases: &[Case<'_>] = &[
            (&[], Some(604_800_000), None),
            (&[("log.retention.ms", "500")], Some(500), None),
            (&[("log.retention.ms", "-1")], None, None),
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
        // Kafka's coarser units are not settings here: log.retention.ms is.
        let mut c = BrokerConfig::default();
        assert!(!c.set("log.retention.hours", "1").expect("not an error"));
        assert!(!c.set("log.retention.minutes", "1").expect("not an error"));
    }

    #[test]
    fn bad_retention_settings_are_refused_by_name() {
        let cases: &[(&str, &str)] = &[
            ("log.retention.ms", "-2"),
            ("log.retention.ms", "x"),
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
