//! [`ProducerConfig`]: Kafka's producer settings, their defaults, and their
//! parsing from `key=value` properties.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use strom_log::Compression;

use crate::config::{
    ClientConfig, ConfigError, Properties, parse_bool, parse_bytes, parse_ms, parse_number,
    set_common,
};

/// How many replicas must have a batch before the leader acknowledges it
/// (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `all` / `-1`: every in-sync replica, and at least
    /// `min.insync.replicas` of them. The default; no acknowledged record is
    /// lost while one in-sync replica survives.
    #[default]
    All,
    /// `1`: the leader wrote it; lost if the leader fails before followers copy it.
    Leader,
    /// `0`: fire and forget; the record's offset is reported as -1,
    /// delivery failures go unnoticed and nothing is retried, and since
    /// answers are not awaited, successive requests of a partition may
    /// overlap (no ordering guarantee).
    None,
}

impl Acks {
    /// The wire value: -1, 1 or 0.
    pub fn as_i32(self) -> i32 {
        match self {
            Acks::All => -1,
            Acks::Leader => 1,
            Acks::None => 0,
        }
    }
}

impl FromStr for Acks {
    type Err = ConfigError;

    /// Accepts `all`, `-1`, `1` and `0`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim() {
            "all" | "-1" => Ok(Acks::All),
            "1" => Ok(Acks::Leader),
            "0" => Ok(Acks::None),
            _ => Err(ConfigError::invalid("acks", s, "expected all, -1, 1 or 0")),
        }
    }
}

impl fmt::Display for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        })
    }
}

/// Parses a `compression.type`: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
pub fn parse_compression(value: &str) -> Result<Compression, ConfigError> {
    match value.trim() {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        _ => Err(ConfigError::invalid(
            "compression.type",
            value,
            "expected none, gzip, snappy, lz4 or zstd",
        )),
    }
}

/// The name of a codec as `compression.type` spells it.
pub fn compression_name(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

/// A producer's settings, named and defaulted as Kafka's.
///
/// Ordering: up to `max.in.flight.requests.per.connection` (default 5)
/// requests per partition are out at a time; one request may carry several
/// batches of the same partition (concatenated in its `records`), up to
/// `max.request.size`, and requests to different partitions and brokers run
/// concurrently. After a failed request the partition waits until every
/// request sent after it is back, then resends them one at a time in their
/// first order. With idempotence (at most 5 in flight) records of a
/// partition are written once and in send order; without it, a request
/// sent after one that failed may be written first (as in Kafka: set 1 to
/// keep order).
///
/// Idempotence (`enable.idempotence`, on by default as in Kafka 3): every
/// batch carries the producer id, epoch and sequence numbers, so the
/// partition leader writes a retried batch only once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `bootstrap.servers`, `request.timeout.ms` (default 30 s: the broker's
    /// wait for acks and the client's wait for one produce or metadata
    /// answer), `retry.backoff.ms` (100) and `retry.backoff.max.ms` (1000).
    pub client: ClientConfig,
    /// `client.id`: a name for this producer in the client's logs.
    pub client_id: String,
    /// `acks` (default `all`).
    pub acks: Acks,
    /// `linger.ms` (default 5 ms): how long a batch waits for more records
    /// before it is sent, unless it fills up first.
    pub linger: Duration,
    /// `batch.size` (default 16384): the uncompressed size at which a
    /// partition's batch is full and sent at once. A record larger than
    /// this goes alone into a batch of its own.
    pub batch_size: usize,
    /// `compression.type` (default `none`): the codec of every batch.
    pub compression: Compression,
    /// `retries` (default `i32::MAX`): how often a batch is resent after a
    /// retriable error; `delivery.timeout.ms` bounds it in time.
    pub retries: u32,
    /// `delivery.timeout.ms` (default 120 s): the longest a record may wait
    /// from `send` to its acknowledgement, retries included; must be at
    /// least `linger.ms` + `request.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `max.request.size` (default 1 MiB): the largest produce request, and
    /// so the largest record.
    pub max_request_size: usize,
    /// `buffer.memory` (default 32 MiB): records waiting to be sent or
    /// acknowledged; `send` waits while it is full.
    pub buffer_memory: usize,
    /// `max.block.ms` (default 60 s): the longest `send` waits for buffer
    /// memory or for the topic's metadata.
    pub max_block: Duration,
    /// `metadata.max.age.ms` (default 5 min): metadata is refreshed at least
    /// this often even without errors.
    pub metadata_max_age: Duration,
    /// `enable.idempotence`: `None` (not set) means on unless `acks` is not
    /// `all` or `retries` is 0, as in Kafka; set to `true` with either of
    /// those, the configuration is refused. See [`Self::idempotence`].
    pub enable_idempotence: Option<bool>,
    /// `max.in.flight.requests.per.connection` (default 5): produce
    /// requests per partition out at once. Idempotence needs at most 5:
    /// refused above with `enable.idempotence=true`, and idempotence is off
    /// by default above it, as in Kafka.
    pub max_in_flight: usize,
    /// `transactional.id` (default none): makes the producer transactional
    /// (`Producer::init_transactions` and the calls after it). Requires
    /// idempotence; must not be empty.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms` (default 60 s): how long the coordinator
    /// lets a transaction stay open before aborting it (at most the
    /// broker's `transaction.max.timeout.ms`).
    pub transaction_timeout: Duration,
}

/// The most requests per partition an idempotent producer keeps in flight
/// (the broker remembers the last 5 batches of each producer).
pub(crate) const MAX_IDEMPOTENT_IN_FLIGHT: usize = 5;

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            client: ClientConfig::default(),
            client_id: String::new(),
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            compression: Compression::None,
            retries: i32::MAX as u32,
            delivery_timeout: Duration::from_millis(120_000),
            max_request_size: 1_048_576,
            buffer_memory: 33_554_432,
            max_block: Duration::from_millis(60_000),
            metadata_max_age: Duration::from_millis(300_000),
            enable_idempotence: None,
            max_in_flight: MAX_IDEMPOTENT_IN_FLIGHT,
            transactional_id: None,
            transaction_timeout: Duration::from_millis(60_000),
        }
    }
}

impl ProducerConfig {
    /// Whether the producer is idempotent: `enable.idempotence` when set,
    /// else whether `acks=all`, `retries` > 0 and at most 5 requests in
    /// flight (Kafka's default).
    pub fn idempotence(&self) -> bool {
        self.enable_idempotence.unwrap_or(
            self.acks == Acks::All
                && self.retries > 0
                && self.max_in_flight <= MAX_IDEMPOTENT_IN_FLIGHT,
        )
    }

    /// The defaults with these bootstrap servers (`host:port,host:port`).
    pub fn new(bootstrap_servers: &str) -> crate::Result<Self> {
        Ok(Self {
            client: ClientConfig::new(bootstrap_servers)?,
            ..Self::default()
        })
    }
}

impl Properties for ProducerConfig {
    /// Sets one setting by its Kafka name.
    ///
    /// Known: `bootstrap.servers`, `client.id`, `acks`, `linger.ms`,
    /// `batch.size`, `compression.type`, `retries`, `retry.backoff.ms`,
    /// `retry.backoff.max.ms`, `delivery.timeout.ms`, `request.timeout.ms`,
    /// `max.request.size`, `buffer.memory`, `max.block.ms`,
    /// `metadata.max.age.ms`, `socket.connection.setup.timeout.ms`,
    /// `enable.idempotence`, `max.in.flight.requests.per.connection`,
    /// `transactional.id`, `transaction.timeout.ms`.
    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        if set_common(&mut self.client, &mut self.client_id, key, value)? {
            return Ok(());
        }
        match key {
            "acks" => self.acks = value.parse()?,
            "linger.ms" => self.linger = parse_ms(key, value, 0)?,
            "batch.size" => self.batch_size = parse_bytes(key, value, 0)?,
            "compression.type" => self.compression = parse_compression(value)?,
            "retries" => {
                self.retries = parse_number::<i64>(key, value, 0)?.min(i64::from(i32::MAX)) as u32
            }
            "delivery.timeout.ms" => self.delivery_timeout = parse_ms(key, value, 1)?,
            "max.request.size" => self.max_request_size = parse_bytes(key, value, 1)?,
            "buffer.memory" => self.buffer_memory = parse_bytes(key, value, 1)?,
            "max.block.ms" => self.max_block = parse_ms(key, value, 0)?,
            "metadata.max.age.ms" => self.metadata_max_age = parse_ms(key, value, 1)?,
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight = parse_number::<u32>(key, value, 1)? as usize
            }
            "enable.idempotence" => self.enable_idempotence = Some(parse_bool(key, value)?),
            "transactional.id" => {
                if value.is_empty() {
                    return Err(ConfigError::invalid(key, value, "must not be empty"));
                }
                self.transactional_id = Some(value.to_owned());
            }
            "transaction.timeout.ms" => {
                let timeout = parse_ms(key, value, 1)?;
                if timeout.as_millis() > i32::MAX as u128 {
                    return Err(ConfigError::invalid(key, value, "must fit in an int32"));
                }
                self.transaction_timeout = timeout;
            }
            _ => return Err(ConfigError::UnknownKey(key.to_owned())),
        }
        Ok(())
    }

    /// Checks the settings together, as Kafka does.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.enable_idempotence == Some(true) {
            if self.acks != Acks::All {
                return Err(ConfigError::Inconsistent(format!(
                    "enable.idempotence=true requires acks=all, not acks={}",
                    self.acks
                )));
            }
            if self.retries == 0 {
                return Err(ConfigError::Inconsistent(
                    "enable.idempotence=true requires retries > 0".into(),
                ));
            }
            if self.max_in_flight > MAX_IDEMPOTENT_IN_FLIGHT {
                return Err(ConfigError::Inconsistent(format!(
                    "enable.idempotence=true requires max.in.flight.requests.per.connection \
                     of at most {MAX_IDEMPOTENT_IN_FLIGHT}, not {}",
                    self.max_in_flight
                )));
            }
        }
        if let Some(id) = &self.transactional_id {
            if id.is_empty() {
                return Err(ConfigError::invalid(
                    "transactional.id",
                    "",
                    "must not be empty",
                ));
            }
            if !self.idempotence() {
                return Err(ConfigError::Inconsistent(
                    "transactional.id requires an idempotent producer (enable.idempotence, \
                     acks=all, retries > 0, max.in.flight.requests.per.connection <= 5)"
                        .into(),
                ));
            }
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                "max.in.flight.requests.per.connection",
                "0",
                "must be at least 1",
            ));
        }
        self.client
            .validate()
            .map_err(|e| ConfigError::Inconsistent(e.to_string()))?;
        let floor = self.linger + self.client.request_timeout;
        if self.delivery_timeout < floor {
            return Err(ConfigError::Inconsistent(format!(
                "delivery.timeout.ms ({} ms) must be at least linger.ms + request.timeout.ms ({} ms)",
                self.delivery_timeout.as_millis(),
                floor.as_millis()
            )));
        }
        if self.buffer_memory > u32::MAX as usize {
            return Err(ConfigError::invalid(
                "buffer.memory",
                &self.buffer_memory.to_string(),
                format!("must be at most {}", u32::MAX),
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
        let c = ProducerConfig::default();
        c.validate().unwrap();
        assert_eq!(c.acks, Acks::All);
        assert_eq!(c.linger, Duration::from_millis(5));
        assert_eq!(c.batch_size, 16_384);
        assert_eq!(c.compression, Compression::None);
        assert_eq!(c.retries, i32::MAX as u32);
        assert_eq!(c.client.retry_backoff, Duration::from_millis(100));
        assert_eq!(c.client.retry_backoff_max, Duration::from_millis(1000));
        assert_eq!(c.delivery_timeout, Duration::from_millis(120_000));
        assert_eq!(c.client.request_timeout, Duration::from_millis(30_000));
        assert_eq!(c.max_request_size, 1 << 20);
        assert_eq!(c.buffer_memory, 32 << 20);
        assert_eq!(c.max_in_flight, 5);
        assert!(c.idempotence(), "idempotent by default, as Kafka 3");
    }

    #[test]
    fn idempotence_follows_kafkas_rules() {
        let cases: &[(&[&str], Result<bool, &str>)] = &[
            (&[], Ok(true)),
            (&["acks=1"], Ok(false)),
            (&["acks=0"], Ok(false)),
            (&["retries=0"], Ok(false)),
            (&["enable.idempotence=false"], Ok(false)),
            (&["enable.idempotence=true"], Ok(true)),
            (
                &["enable.idempotence=true", "acks=1"],
                Err("requires acks=all"),
            ),
            (
                &["enable.idempotence=true", "retries=0"],
                Err("requires retries"),
            ),
            (&["enable.idempotence=maybe"], Err("enable.idempotence")),
            (&["max.in.flight.requests.per.connection=5"], Ok(true)),
            (&["max.in.flight.requests.per.connection=1"], Ok(true)),
            (&["max.in.flight.requests.per.connection=6"], Ok(false)),
            (
                &[
                    "enable.idempotence=true",
                    "max.in.flight.requests.per.connection=6",
                ],
                Err("at most 5"),
            ),
            (
                &[
                    "enable.idempotence=false",
                    "max.in.flight.requests.per.connection=100",
                ],
                Ok(false),
            ),
            (&["transactional.id=t"], Ok(true)),
            (
                &["transactional.id=t", "enable.idempotence=false"],
                Err("requires an idempotent producer"),
            ),
            (
                &["transactional.id=t", "acks=1"],
                Err("requires an idempotent producer"),
            ),
            (&["transactional.id="], Err("must not be empty")),
            (&["transaction.timeout.ms=0"], Err("transaction.timeout.ms")),
            (
                &["transaction.timeout.ms=3000000000"],
                Err("must fit in an int32"),
            ),
        ];
        for (props, want) in cases {
            let mut all = vec!["bootstrap.servers=h:1"];
            all.extend_from_slice(props);
            match (ProducerConfig::from_properties(all), want) {
                (Ok(c), Ok(on)) => assert_eq!(c.idempotence(), *on, "{props:?}"),
                (Err(e), Err(needle)) => {
                    assert!(e.to_string().contains(needle), "{props:?}: {e}")
                }
                (got, want) => panic!("{props:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn properties_set_each_setting() {
        let c = ProducerConfig::from_properties([
            "bootstrap.servers=h:1",
            "acks=1",
            "linger.ms=0",
            "batch.size=65536",
            "compression.type=zstd",
            "retries=3",
            "retry.backoff.ms=50",
            "retry.backoff.max.ms=500",
            "delivery.timeout.ms=40000",
            "request.timeout.ms=10000",
            "max.request.size=2097152",
            "buffer.memory=1000000",
            "max.block.ms=100",
            "metadata.max.age.ms=1000",
            "max.in.flight.requests.per.connection=3",
            "enable.idempotence=false",
            "client.id=perf",
        ])
        .unwrap();
        assert_eq!(c.client.bootstrap_servers, ["h:1"]);
        assert_eq!(c.acks, Acks::Leader);
        assert_eq!(c.linger, Duration::ZERO);
        assert_eq!(c.batch_size, 65_536);
        assert_eq!(c.compression, Compression::Zstd);
        assert_eq!(c.retries, 3);
        assert_eq!(c.client.retry_backoff, Duration::from_millis(50));
        assert_eq!(c.client.retry_backoff_max, Duration::from_millis(500));
        assert_eq!(c.delivery_timeout, Duration::from_millis(40_000));
        assert_eq!(c.client.request_timeout, Duration::from_millis(10_000));
        assert_eq!(c.max_request_size, 2 << 20);
        assert_eq!(c.buffer_memory, 1_000_000);
        assert_eq!(c.max_block, Duration::from_millis(100));
        assert_eq!(c.metadata_max_age, Duration::from_millis(1000));
        assert_eq!(c.max_in_flight, 3);
        assert_eq!(c.client_id, "perf");
        let c = ProducerConfig::from_properties([
            "bootstrap.servers=h:1",
            "transactional.id=tx-1",
            "transaction.timeout.ms=15000",
        ])
        .unwrap();
        assert_eq!(c.transactional_id.as_deref(), Some("tx-1"));
        assert_eq!(c.transaction_timeout, Duration::from_millis(15_000));
        assert_eq!(
            ProducerConfig::default().transaction_timeout,
            Duration::from_millis(60_000)
        );
    }

    #[test]
    fn acks_accept_kafkas_spellings() {
        let table = [
            ("all", Acks::All),
            ("-1", Acks::All),
            ("1", Acks::Leader),
            ("0", Acks::None),
        ];
        for (text, acks) in table {
            assert_eq!(text.parse::<Acks>(), Ok(acks));
        }
        assert_eq!(Acks::All.as_i32(), -1);
        assert_eq!(Acks::Leader.as_i32(), 1);
        assert_eq!(Acks::None.as_i32(), 0);
        assert!("2".parse::<Acks>().is_err());
    }

    #[test]
    fn compression_names_round_trip() {
        for codec in Compression::ALL {
            assert_eq!(parse_compression(compression_name(codec)), Ok(codec));
        }
        assert!(parse_compression("brotli").is_err());
    }

    #[test]
    fn bad_properties_are_typed_errors() {
        type Check = fn(&ConfigError) -> bool;
        let table: &[(&str, Check)] = &[
            (
                "acks=2",
                |e| matches!(e, ConfigError::InvalidValue { key, .. } if key == "acks"),
            ),
            (
                "linger.ms=-1",
                |e| matches!(e, ConfigError::InvalidValue { key, .. } if key == "linger.ms"),
            ),
            ("batch.size=big", |e| {
                matches!(e, ConfigError::InvalidValue { .. })
            }),
            ("compression.type=brotli", |e| {
                matches!(e, ConfigError::InvalidValue { .. })
            }),
            ("max.in.flight.requests.per.connection=0", |e| {
                matches!(e, ConfigError::InvalidValue { .. })
            }),
            ("max.in.flight.requests.per.connection=many", |e| {
                matches!(e, ConfigError::InvalidValue { .. })
            }),
            ("enable.idempotence=yes", |e| {
                matches!(e, ConfigError::InvalidValue { .. })
            }),
            ("key.serializer=x", |e| {
                *e == ConfigError::UnknownKey("key.serializer".into())
            }),
            ("linger", |e| matches!(e, ConfigError::Malformed(_))),
            ("delivery.timeout.ms=1000", |e| {
                matches!(e, ConfigError::Inconsistent(_))
            }),
        ];
        for (property, check) in table {
            let err = ProducerConfig::from_properties([*property]).unwrap_err();
            assert!(check(&err), "{property}: {err}");
        }
    }
}
