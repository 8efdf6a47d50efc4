//! [`ConsumerConfig`]: Kafka's consumer settings (those that apply without
//! consumer groups), their defaults, and their parsing from `key=value`
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
    /// `read_committed`: everything below the last stable offset (the same
    /// as the high watermark until Strom has transactions).
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
    /// `socket.connection.setup.timeout.ms`. `group.id` is refused:
    /// consumer groups are not supported yet.
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
            "group.id" => {
                return Err(ConfigError::invalid(
                    key,
                    value,
                    "consumer groups are not supported yet",
                ));
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
                "group.id=g",
                |e| matches!(e, ConfigError::InvalidValue { reason, .. } if reason.contains("not supported")),
            ),
            ("enable.auto.commit=false", |e| {
                *e == ConfigError::UnknownKey("enable.auto.commit".into())
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
