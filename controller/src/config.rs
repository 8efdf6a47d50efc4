//! Controller configuration, with Kafka's setting names where Kafka has one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use strom_controller_client::{ConfigError, parse_voters};

/// Settings of a controller node.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This controller's node id; must be one of the voters.
    pub node_id: u64,
    /// The static quorum: voter id → controller address (host:port).
    pub voters: BTreeMap<u64, String>,
    /// Node data directory; the controller keeps its database in `controller/` below it.
    pub data_dir: PathBuf,
    /// `broker.session.timeout.ms`: a broker without heartbeat this long is fenced.
    pub broker_session_timeout: Duration,
    /// `broker.heartbeat.interval.ms`: told to brokers.
    pub broker_heartbeat_interval: Duration,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: f64,
    /// `leader.imbalance.check.interval.seconds` (fractions allowed for tests).
    pub leader_imbalance_check_interval: Duration,
    /// `reassignment.max.concurrent.moves.per.broker`: most reassignments
    /// in flight per decommissioning broker, and per broker a balancer
    /// round starts.
    pub max_concurrent_moves_per_broker: usize,
    /// `balancer.mode`: `off`, `node-add` or `continuous`
    /// (`strom_metadata::balancer`).
    pub balancer_mode: strom_metadata::balancer::BalancerMode,
    /// `balancer.node.unavailable.timeout.ms`: in `continuous` mode, how
    /// long a broker stays unavailable before its replicas move away.
    pub balancer_node_unavailable_timeout: Duration,
    /// `balancer.disk.threshold.percent` (1..=100): in `continuous` mode,
    /// replicas move off a broker whose data directory's file system is
    /// fuller than this; no balancer move takes a broker over it.
    pub balancer_disk_threshold_percent: u8,
    /// `controller.quorum.election.timeout.ms`: minimum election timeout; the maximum is twice it.
    pub election_timeout: Duration,
    /// `controller.quorum.heartbeat.interval.ms`: leader heartbeat to voters.
    pub raft_heartbeat_interval: Duration,
    /// `metadata.snapshot.interval.entries`: build a snapshot after this many entries.
    pub snapshot_interval_entries: u64,
    /// `metadata.log.retained.entries`: entries kept in the log after a snapshot.
    pub log_retained_entries: u64,
    /// `metadata.feed.batches`: recent batches kept in memory for resuming watchers.
    pub feed_batches: usize,
    /// `controller.request.timeout.ms`: bound on one metadata write.
    pub request_timeout: Duration,
    /// `min.insync.replicas` for topics that do not set it: decides which
    /// replicas become eligible leaders when an ISR shrinks below it. Must
    /// equal the brokers' setting (a combined node shares one value).
    pub min_insync_replicas: usize,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            voters: BTreeMap::new(),
            data_dir: PathBuf::from("data"),
            broker_session_timeout: Duration::from_millis(9000),
            broker_heartbeat_interval: Duration::from_millis(2000),
            auto_leader_rebalance_enable: true,
            leader_imbalance_per_broker_percentage: 10.0,
            leader_imbalance_check_interval: Duration::from_secs(300),
            max_concurrent_moves_per_broker: 5,
            balancer_mode: strom_metadata::balancer::BalancerMode::Off,
            balancer_node_unavailable_timeout: Duration::from_millis(900_000),
            balancer_disk_threshold_percent:
                strom_metadata::balancer::DEFAULT_DISK_THRESHOLD_PERCENT,
            election_timeout: Duration::from_millis(100),
            raft_heartbeat_interval: Duration::from_millis(30),
            snapshot_interval_entries: 20_000,
            log_retained_entries: 1_000,
            feed_batches: 10_000,
            request_timeout: Duration::from_secs(30),
            min_insync_replicas: strom_metadata::DEFAULT_MIN_INSYNC_REPLICAS,
        }
    }
}

impl ControllerConfig {
    /// The identity every Raft request of this quorum carries
    /// ([`crate::raft::quorum_fingerprint`] of the voters).
    pub fn quorum_fingerprint(&self) -> u64 {
        crate::raft::quorum_fingerprint(self.voters.iter().map(|(id, a)| (*id, a.as_str())))
    }

    /// Applies one `--set key=value` setting. Returns `Ok(false)` for a key
    /// that is not a controller setting.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        fn ms(key: &str, v: &str) -> Result<Duration, ConfigError> {
            v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                ConfigError(format!("{key} must be a number of milliseconds, got '{v}'"))
            })
        }
        match key {
            "broker.session.timeout.ms" => self.broker_session_timeout = ms(key, value)?,
            "broker.heartbeat.interval.ms" => self.broker_heartbeat_interval = ms(key, value)?,
            "auto.leader.rebalance.enable" => {
                self.auto_leader_rebalance_enable = value.parse().map_err(|_| {
                    ConfigError(format!("{key} must be true or false, got '{value}'"))
                })?
            }
            "leader.imbalance.per.broker.percentage" => {
                self.leader_imbalance_per_broker_percentage = value
                    .parse()
                    .map_err(|_| ConfigError(format!("{key} must be a number, got '{value}'")))?
            }
            "leader.imbalance.check.interval.seconds" => {
                let secs: f64 = value
                    .parse()
                    .map_err(|_| ConfigError(format!("{key} must be a number, got '{value}'")))?;
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err(ConfigError(format!(
                        "{key} must be positive, got '{value}'"
                    )));
                }
                self.leader_imbalance_check_interval = Duration::from_secs_f64(secs);
            }
            "reassignment.max.concurrent.moves.per.broker" => {
                self.max_concurrent_moves_per_broker = match value.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        return Err(ConfigError(format!(
                            "{key} must be a number of at least 1, got '{value}'"
                        )));
                    }
                }
            }
            "balancer.mode" => {
                self.balancer_mode = strom_metadata::balancer::BalancerMode::parse(value)
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "{key} must be off, node-add or continuous, got '{value}'"
                        ))
                    })?
            }
            "balancer.node.unavailable.timeout.ms" => {
                self.balancer_node_unavailable_timeout = ms(key, value)?
            }
            "balancer.disk.threshold.percent" => {
                self.balancer_disk_threshold_percent = match value.parse::<u8>() {
                    Ok(n) if (1..=100).contains(&n) => n,
                    _ => {
                        return Err(ConfigError(format!(
                            "INVALID_CONFIG: {key} must be a whole number from 1 to 100, got '{value}'"
                        )));
                    }
                }
            }
            "controller.quorum.election.timeout.ms" => self.election_timeout = ms(key, value)?,
            "controller.quorum.heartbeat.interval.ms" => {
                self.raft_heartbeat_interval = ms(key, value)?
            }
            "controller.request.timeout.ms" => self.request_timeout = ms(key, value)?,
            "metadata.snapshot.interval.entries" => {
                self.snapshot_interval_entries = value
                    .parse()
                    .map_err(|_| ConfigError(format!("{key} must be a number, got '{value}'")))?
            }
            "metadata.log.retained.entries" => {
                self.log_retained_entries = value
                    .parse()
                    .map_err(|_| ConfigError(format!("{key} must be a number, got '{value}'")))?
            }
            "min.insync.replicas" => {
                self.min_insync_replicas = match value.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        return Err(ConfigError(format!(
                            "{key} must be a number of at least 1, got '{value}'"
                        )));
                    }
                }
            }
            "metadata.feed.batches" => {
                self.feed_batches = value
                    .parse()
                    .map_err(|_| ConfigError(format!("{key} must be a number, got '{value}'")))?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the settings together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.voters.is_empty() {
            return Err(ConfigError("controller.quorum.voters is empty".into()));
        }
        if !self.voters.contains_key(&self.node_id) {
            let ids: Vec<String> = self.voters.keys().map(|k| k.to_string()).collect();
            return Err(ConfigError(format!(
                "node id {} is not among the controller quorum voters ({})",
                self.node_id,
                ids.join(",")
            )));
        }
        if self.broker_heartbeat_interval >= self.broker_session_timeout {
            return Err(ConfigError(
                "broker.heartbeat.interval.ms must be smaller than broker.session.timeout.ms"
                    .into(),
            ));
        }
        if self.raft_heartbeat_interval * 2 > self.election_timeout {
            return Err(ConfigError(
                "controller.quorum.heartbeat.interval.ms must be at most half of controller.quorum.election.timeout.ms"
                    .into(),
            ));
        }
        if self.snapshot_interval_entries == 0 {
            return Err(ConfigError(
                "metadata.snapshot.interval.entries must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_must_be_a_voter() {
        let mut c = ControllerConfig {
            voters: parse_voters("1@a:1,2@b:2").expect("valid"),
            ..Default::default()
        };
        c.node_id = 3;
        assert!(
            c.validate()
                .expect_err("not a voter")
                .0
                .contains("not among")
        );
        c.node_id = 2;
        c.validate().expect("valid");
    }

    #[test]
    fn settings_are_typed() {
        let mut c = ControllerConfig::default();
        assert!(c.set("broker.session.timeout.ms", "3000").expect("ok"));
        assert_eq!(c.broker_session_timeout, Duration::from_secs(3));
        assert!(c.set("broker.session.timeout.ms", "soon").is_err());
        assert!(
            c.set("leader.imbalance.check.interval.seconds", "0.5")
                .expect("ok")
        );
        assert!(
            !c.set("no.such.key", "1")
                .expect("unknown is not an error here")
        );
    }

    #[test]
    fn disk_threshold_is_a_percentage() {
        let mut c = ControllerConfig::default();
        assert_eq!(c.balancer_disk_threshold_percent, 80);
        for (value, ok) in [
            ("1", true),
            ("100", true),
            ("75", true),
            ("0", false),
            ("101", false),
            ("-5", false),
            ("80.5", false),
            ("full", false),
        ] {
            let before = c.balancer_disk_threshold_percent;
            match c.set("balancer.disk.threshold.percent", value) {
                Ok(known) => {
                    assert!(ok && known, "{value} accepted");
                    assert_eq!(c.balancer_disk_threshold_percent.to_string(), value);
                }
                Err(e) => {
                    assert!(!ok, "{value} refused: {e}");
                    assert!(e.0.starts_with("INVALID_CONFIG"), "{e}");
                    assert_eq!(c.balancer_disk_threshold_percent, before, "unchanged");
                }
            }
        }
    }
}
