//! [`ConsumerConfig`]: Kafka's consumer settings, group membership and
//! commits included, their defaults, and their parsing from `key=value`
//! properties.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use strom_proto::v1 as pb;

use crate::config::{
    ClientConfig, ConfigError, Properties, parse_bool, parse_bytes, parse_ms, parse_number,
    set_common,
};

/// Which records a fetch may return (Kafka's `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// `read_uncommitted` (default): everything below the high watermark.
    #[default]
    ReadUncommitted,
    /// `read_committed`: everything below the last stable offset (the first
    /// offset of the earliest open transaction), without the records of
    /// aborted transactions; lag counts up to the last stable offset.
    ReadCommitted,
}

impl FromStr for IsolationLevel {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim() {
            "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
            "read_committed" => Ok(IsolationLevel::ReadCommitted),
            _ => Err(ConfigError::invalid(
                "isolation.level",
                s,
                "expected read_uncommitted or read_committed",
            )),
        }
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        })
    }
}

impl From<IsolationLevel> for pb::IsolationLevel {
    fn from(level: IsolationLevel) -> Self {
        match level {
            IsolationLevel::ReadUncommitted => pb::IsolationLevel::ReadUncommitted,
            IsolationLevel::ReadCommitted => pb::IsolationLevel::ReadCommitted,
        }
    }
}

/// Where a partition without a valid position starts (Kafka's
/// `auto.offset.reset`): when first assigned, and when its position falls
/// outside the log (OFFSET_OUT_OF_RANGE, e.g. after retention deleted it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OffsetReset {
    /// `earliest`: the log start offset.
    Earliest,
    /// `latest` (default): the high watermark, i.e. only new records.
    #[default]
    Latest,
    /// `none`: no reset; `poll` fails with the error instead.
    None,
}

impl FromStr for OffsetReset {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim() {
            "earliest" => Ok(OffsetReset::Earliest),
            "latest" => Ok(OffsetReset::Latest),
            "none" => Ok(OffsetReset::None),
            _ => Err(ConfigError::invalid(
                "auto.offset.reset",
                s,
                "expected earliest, latest or none",
            )),
        }
    }
}

impl fmt::Display for OffsetReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::None => "none",
        })
    }
}

/// A consumer's settings, named and defaulted as Kafka's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// `bootstrap.servers`, `request.timeout.ms` (default 30 s: the wait for
    /// one answer beyond `fetch.max.wait.ms`, and the bound of the calls
    /// that retry, such as [`Consumer::end_offsets`](super::Consumer::end_offsets)),
    /// `retry.backoff.ms` (100) and `retry.backoff.max.ms` (1000).
    pub client: ClientConfig,
    /// `client.id`: a name for this consumer in the client's logs.
    pub client_id: String,
    /// `fetch.min.bytes` (default 1): a broker answers a fetch once it has
    /// this many bytes, or after `fetch.max.wait.ms`.
    pub fetch_min_bytes: usize,
    /// `fetch.max.wait.ms` (default 500 ms).
    pub fetch_max_wait: Duration,
    /// `fetch.max.bytes` (default 50 MiB): bound of one fetch answer (at
    /// least one batch is returned even if larger).
    pub fetch_max_bytes: usize,
    /// `max.partition.fetch.bytes` (default 1 MiB): bound per partition in
    /// one fetch answer (at least one batch, as above).
    pub max_partition_fetch_bytes: usize,
    /// `isolation.level` (default `read_uncommitted`).
    pub isolation_level: IsolationLevel,
    /// `auto.offset.reset` (default `latest`).
    pub auto_offset_reset: OffsetReset,
    /// `max.poll.records` (default 500): most records one `poll` returns.
    pub max_poll_records: usize,
    /// `metadata.max.age.ms` (default 5 min).
    pub metadata_max_age: Duration,
    /// `check.crcs` (default true): verify every fetched batch's CRC32C.
    pub check_crcs: bool,
    /// `group.id` (default none): the consumer group whose offsets this
    /// consumer commits and fetches, and which `subscribe` joins.
    pub group_id: Option<String>,
    /// `group.instance.id` (default none): static membership; the member
    /// leaves with epoch -2 on close and gets its partitions back when it
    /// rejoins within `session.timeout.ms`.
    pub group_instance_id: Option<String>,
    /// `partition.assignment.strategy` (default `range,cooperative-sticky`;
    /// `group.remote.assignor` sets a single one): the assignors this
    /// member supports, in preference order. Kafka's class names
    /// (`org.apache.kafka.clients.consumer.RangeAssignor`, ...) are accepted.
    pub assignors: Vec<String>,
    /// `session.timeout.ms` (default 45 s): the coordinator removes the
    /// member when no heartbeat arrives for this long.
    pub session_timeout: Duration,
    /// `max.poll.interval.ms` (default 5 min): the member leaves the group
    /// when `poll` is not called for this long, and rejoins on the next
    /// poll. Also its rebalance timeout.
    pub max_poll_interval: Duration,
    /// `enable.auto.commit` (default true; only with a `group.id`): commit
    /// the positions every `auto.commit.interval.ms`, before partitions are
    /// revoked, and on close.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (default 5 s).
    pub auto_commit_interval: Duration,
    /// `client.rack` (default none): sent to the coordinator.
    pub client_rack: Option<String>,
}

/// The assignors Strom's coordinator knows.
pub const ASSIGNORS: [&str; 4] = ["range", "roundrobin", "sticky", "cooperative-sticky"];

/// An assignor's Strom name from its Strom or Kafka (class) name.
fn assignor_name(name: &str) -> Option<&'static str> {
    let short = name.trim().rsplit('.').next().unwrap_or_default();
    match short {
        "range" | "RangeAssignor" => Some("range"),
        "roundrobin" | "RoundRobinAssignor" => Some("roundrobin"),
        "sticky" | "StickyAssignor" => Some("sticky"),
        "cooperative-sticky" | "CooperativeStickyAssignor" => Some("cooperative-sticky"),
        _ => None,
    }
}

fn parse_assignors(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(known) = assignor_name(name) else {
            return Err(ConfigError::invalid(
                key,
                value,
                format!(
                    "unknown assignor {name:?}; expected one of {}",
                    ASSIGNORS.join(", ")
                ),
            ));
        };
        if !out.iter().any(|o| o == known) {
            out.push(known.to_owned());
        }
    }
    if out.is_empty() {
        return Err(ConfigError::invalid(
            key,
            value,
            "expected at least one assignor",
        ));
    }
    Ok(out)
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            client: ClientConfig::default(),
            client_id: String::new(),
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            isolation_level: IsolationLevel::ReadUncommitted,
            auto_offset_reset: OffsetReset::Latest,
            max_poll_records: 500,
            metadata_max_age: Duration::from_millis(300_000),
            check_crcs: true,
            group_id: None,
            group_instance_id: None,
            assignors: vec!["range".to_owned(), "cooperative-sticky".to_owned()],
            session_timeout: Duration::from_millis(45_000),
            max_poll_interval: Duration::from_millis(300_000),
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_millis(5_000),
            client_rack: None,
        }
    }
}

impl ConsumerConfig {
    /// The defaults with these bootstrap servers (`host:port,host:port`).
    pub fn new(bootstrap_servers: &str) -> crate::Result<Self> {
        Ok(Self {
            client: ClientConfig::new(bootstrap_servers)?,
            ..Self::default()
        })
    }
}

impl Properties for ConsumerConfig {
    /// Sets one setting by its Kafka name.
    ///
    /// Known: `bootstrap.servers`, `client.id`, `fetch.min.bytes`,
    /// `fetch.max.wait.ms`, `fetch.max.bytes`, `max.partition.fetch.bytes`,
    /// `isolation.level`, `auto.offset.reset`, `max.poll.records`,
    /// `request.timeout.ms`, `retry.backoff.ms`, `retry.backoff.max.ms`,
    /// `metadata.max.age.ms`, `check.crcs`,
    /// `socket.connection.setup.timeout.ms`, `group.id`,
    /// `group.instance.id`, `partition.assignment.strategy`,
    /// `group.remote.assignor`, `session.timeout.ms`,
    /// `max.poll.interval.ms`, `enable.auto.commit`,
    /// `auto.commit.interval.ms`, `client.rack`, `group.protocol`
    /// (`consumer` only: the classic protocol is refused).
    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        if set_common(&mut self.client, &mut self.client_id, key, value)? {
            return Ok(());
        }
        match key {
            "fetch.min.bytes" => self.fetch_min_bytes = parse_bytes(key, value, 0)?,
            "fetch.max.wait.ms" => self.fetch_max_wait = parse_ms(key, value, 0)?,
            "fetch.max.bytes" => self.fetch_max_bytes = parse_bytes(key, value, 1)?,
            "max.partition.fetch.bytes" => {
                self.max_partition_fetch_bytes = parse_bytes(key, value, 1)?;
            }
            "isolation.level" => self.isolation_level = value.parse()?,
            "auto.offset.reset" => self.auto_offset_reset = value.parse()?,
            "max.poll.records" => self.max_poll_records = parse_number(key, value, 1)?,
            "metadata.max.age.ms" => self.metadata_max_age = parse_ms(key, value, 1)?,
            "check.crcs" => self.check_crcs = parse_bool(key, value)?,
            "group.id" => self.group_id = Some(value.to_owned()),
            "group.instance.id" => self.group_instance_id = Some(value.to_owned()),
            "partition.assignment.strategy" | "group.remote.assignor" => {
                self.assignors = parse_assignors(key, value)?;
            }
            "session.timeout.ms" => self.session_timeout = parse_ms(key, value, 1)?,
            "max.poll.interval.ms" => self.max_poll_interval = parse_ms(key, value, 1)?,
            "enable.auto.commit" => self.enable_auto_commit = parse_bool(key, value)?,
            "auto.commit.interval.ms" => self.auto_commit_interval = parse_ms(key, value, 1)?,
            "client.rack" => self.client_rack = Some(value.to_owned()),
            "group.protocol" => {
                if !value.trim().eq_ignore_ascii_case("consumer") {
                    return Err(ConfigError::invalid(
                        key,
                        value,
                        "only the consumer protocol (KIP-848) is supported",
                    ));
                }
            }
            _ => return Err(ConfigError::UnknownKey(key.to_owned())),
        }
        Ok(())
    }

    /// Checks the settings together.
    fn validate(&self) -> Result<(), ConfigError> {
        self.client
            .validate()
            .map_err(|e| ConfigError::Inconsistent(e.to_string()))?;
        if self.fetch_max_wait > Duration::from_millis(i32::MAX as u64) {
            return Err(ConfigError::invalid(
                "fetch.max.wait.ms",
                &self.fetch_max_wait.as_millis().to_string(),
                format!("must be at most {}", i32::MAX),
            ));
        }
        for (key, value) in [
            ("session.timeout.ms", self.session_timeout),
            ("max.poll.interval.ms", self.max_poll_interval),
        ] {
            if value.is_zero() || value > Duration::from_millis(i32::MAX as u64) {
                return Err(ConfigError::invalid(
                    key,
                    &value.as_millis().to_string(),
                    format!("must be between 1 and {}", i32::MAX),
                ));
            }
        }
        if let Some(id) = &self.group_id
            && (id.is_empty() || id.len() > 255)
        {
            return Err(ConfigError::invalid(
                "group.id",
                id,
                "must be 1 to 255 bytes",
            ));
        }
        if let Some(id) = &self.group_instance_id {
            if self.group_id.is_none() {
                return Err(ConfigError::Inconsistent(
                    "group.instance.id needs a group.id".into(),
                ));
            }
            if id.is_empty() || id.len() > 255 {
                return Err(ConfigError::invalid(
                    "group.instance.id",
                    id,
                    "must be 1 to 255 bytes",
                ));
            }
        }
        if let Some(bad) = self.assignors.iter().find(|a| assignor_name(a).is_none()) {
            return Err(ConfigError::invalid(
                "partition.assignment.strategy",
                bad,
                format!("unknown assignor; expected one of {}", ASSIGNORS.join(", ")),
            ));
        }
        if self.assignors.is_empty() {
            return Err(ConfigError::invalid(
                "partition.assignment.strategy",
                "",
                "expected at least one assignor",
            ));
        }
        if self.max_poll_records == 0 {
            return Err(ConfigError::invalid(
                "max.poll.records",
                "0",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let c = ConsumerConfig::default();
        c.validate().unwrap();
        assert_eq!(c.fetch_min_bytes, 1);
        assert_eq!(c.fetch_max_wait, Duration::from_millis(500));
        assert_eq!(c.fetch_max_bytes, 50 << 20);
        assert_eq!(c.max_partition_fetch_bytes, 1 << 20);
        assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.client.request_timeout, Duration::from_secs(30));
        assert_eq!(c.max_poll_records, 500);
        assert_eq!(c.group_id, None);
        assert_eq!(c.assignors, ["range", "cooperative-sticky"]);
        assert_eq!(c.session_timeout, Duration::from_secs(45));
        assert_eq!(c.max_poll_interval, Duration::from_secs(300));
        assert!(c.enable_auto_commit);
        assert_eq!(c.auto_commit_interval, Duration::from_secs(5));
    }

    #[test]
    fn group_properties_set_each_setting() {
        let c = ConsumerConfig::from_properties([
            "group.id=g",
            "group.instance.id=i-1",
            "partition.assignment.strategy=org.apache.kafka.clients.consumer.RoundRobinAssignor, sticky",
            "session.timeout.ms=6000",
            "max.poll.interval.ms=1000",
            "enable.auto.commit=false",
            "auto.commit.interval.ms=250",
            "client.rack=r1",
            "group.protocol=consumer",
        ])
        .unwrap();
        assert_eq!(c.group_id.as_deref(), Some("g"));
        assert_eq!(c.group_instance_id.as_deref(), Some("i-1"));
        assert_eq!(c.assignors, ["roundrobin", "sticky"]);
        assert_eq!(c.session_timeout, Duration::from_secs(6));
        assert_eq!(c.max_poll_interval, Duration::from_secs(1));
        assert!(!c.enable_auto_commit);
        assert_eq!(c.auto_commit_interval, Duration::from_millis(250));
        assert_eq!(c.client_rack.as_deref(), Some("r1"));
        let c =
            ConsumerConfig::from_properties(["group.remote.assignor=cooperative-sticky"]).unwrap();
        assert_eq!(c.assignors, ["cooperative-sticky"]);
    }

    #[test]
    fn properties_set_each_setting() {
        let c = ConsumerConfig::from_properties([
            "bootstrap.servers=h:1,h:2",
            "fetch.min.bytes=1024",
            "fetch.max.wait.ms=100",
            "fetch.max.bytes=1000000",
            "max.partition.fetch.bytes=65536",
            "isolation.level=read_committed",
            "auto.offset.reset=earliest",
            "max.poll.records=10",
            "request.timeout.ms=5000",
            "check.crcs=false",
        ])
        .unwrap();
        assert_eq!(c.client.bootstrap_servers, ["h:1", "h:2"]);
        assert_eq!(c.fetch_min_bytes, 1024);
        assert_eq!(c.fetch_max_wait, Duration::from_millis(100));
        assert_eq!(c.fetch_max_bytes, 1_000_000);
        assert_eq!(c.max_partition_fetch_bytes, 65_536);
        assert_eq!(c.isolation_level, IsolationLevel::ReadCommitted);
        assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
        assert_eq!(c.max_poll_records, 10);
        assert_eq!(c.client.request_timeout, Duration::from_millis(5000));
        assert!(!c.check_crcs);
    }

    #[test]
    fn bad_properties_are_typed_errors() {
        type Check = fn(&ConfigError) -> bool;
        let table: &[(&str, Check)] = &[
            (
                "auto.offset.reset=smallest",
                |e| matches!(e, ConfigError::InvalidValue { key, .. } if key == "auto.offset.reset"),
            ),
            ("isolation.level=serializable", |e| {
                matches!(e, ConfigError::InvalidValue { .. })
            }),
            ("max.poll.records=0", |e| {
                matches!(e, ConfigError::InvalidValue { .. })
            }),
            (
                "partition.assignment.strategy=range,fair",
                |e| matches!(e, ConfigError::InvalidValue { reason, .. } if reason.contains("unknown assignor \"fair\"")),
            ),
            (
                "group.remote.assignor=uniform",
                |e| matches!(e, ConfigError::InvalidValue { key, .. } if key == "group.remote.assignor"),
            ),
            ("enable.auto.commit=yes", |e| {
                matches!(e, ConfigError::InvalidValue { .. })
            }),
            ("session.timeout.ms=0", |e| {
                matches!(e, ConfigError::InvalidValue { .. })
            }),
            (
                "session.timeout.ms=99999999999",
                |e| matches!(e, ConfigError::InvalidValue { key, .. } if key == "session.timeout.ms"),
            ),
            (
                "group.id=",
                |e| matches!(e, ConfigError::InvalidValue { key, .. } if key == "group.id"),
            ),
            (
                "group.instance.id=i",
                |e| matches!(e, ConfigError::Inconsistent(m) if m.contains("group.id")),
            ),
            ("group.protocol=classic", |e| {
                matches!(e, ConfigError::InvalidValue { .. })
            }),
            ("heartbeat.interval.ms=100", |e| {
                *e == ConfigError::UnknownKey("heartbeat.interval.ms".into())
            }),
        ];
        for (property, check) in table {
            let err = ConsumerConfig::from_properties([*property]).unwrap_err();
            assert!(check(&err), "{property}: {err}");
        }
    }

    #[test]
    fn enum_names_round_trip() {
        for level in [
            IsolationLevel::ReadUncommitted,
            IsolationLevel::ReadCommitted,
        ] {
            assert_eq!(level.to_string().parse::<IsolationLevel>(), Ok(level));
        }
        for reset in [
            OffsetReset::Earliest,
            OffsetReset::Latest,
            OffsetReset::None,
        ] {
            assert_eq!(reset.to_string().parse::<OffsetReset>(), Ok(reset));
        }
    }
}
