//! Client configuration shared by the admin client, the producer and the
//! consumer (whose configs embed a [`ClientConfig`]), and the parsing of
//! Kafka-style `key=value` properties into them.

use std::time::Duration;

use crate::error::{Error, Result};

/// The default bootstrap server, a node on this machine.
pub const DEFAULT_BOOTSTRAP_SERVER: &str = "127.0.0.1:9092";

/// How a client reaches and talks to a Strom cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Any nodes of the cluster as `host:port` (their client port). Every
    /// node answers metadata and forwards controller writes, so one live
    /// node is enough; the client rotates through them on transport errors.
    pub bootstrap_servers: Vec<String>,
    /// Upper bound for one logical request, retries included
    /// (Kafka's `default.api.timeout.ms`). Default 30 s.
    pub request_timeout: Duration,
    /// First wait before a retry; doubled per attempt up to
    /// [`ClientConfig::retry_backoff_max`] (Kafka's `retry.backoff.ms`). Default 100 ms.
    pub retry_backoff: Duration,
    /// Cap of the exponential retry backoff (`retry.backoff.max.ms`). Default 1 s.
    pub retry_backoff_max: Duration,
    /// Timeout of establishing one TCP/HTTP2 connection. Default 5 s.
    pub connect_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: vec![DEFAULT_BOOTSTRAP_SERVER.to_owned()],
            request_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl ClientConfig {
    /// A default config for the given bootstrap list (`host:port,host:port`).
    pub fn new(bootstrap_servers: &str) -> Result<Self> {
        Ok(Self {
            bootstrap_servers: parse_bootstrap_servers(bootstrap_servers)?,
            ..Self::default()
        })
    }

    /// Sets the request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Checks the config; every client calls it on construction.
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap_servers.is_empty() {
            return Err(Error::InvalidArgument(
                "no bootstrap servers given".to_owned(),
            ));
        }
        for server in &self.bootstrap_servers {
            parse_address(server)?;
        }
        if self.request_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "request timeout must be positive".to_owned(),
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "connect timeout must be positive".to_owned(),
            ));
        }
        if self.retry_backoff > self.retry_backoff_max {
            return Err(Error::InvalidArgument(format!(
                "retry backoff {:?} exceeds its maximum {:?}",
                self.retry_backoff, self.retry_backoff_max
            )));
        }
        Ok(())
    }
}

/// Parses `host:port[,host:port…]`; whitespace around entries and empty
/// entries (a trailing comma) are ignored. IPv6 hosts are written `[::1]:9092`.
pub fn parse_bootstrap_servers(list: &str) -> Result<Vec<String>> {
    let servers = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_address(s).map(|()| s.to_owned()))
        .collect::<Result<Vec<_>>>()?;
    if servers.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no bootstrap servers in '{list}'"
        )));
    }
    Ok(servers)
}

/// Checks that `address` is `host:port` with a non-empty host and a port in 1..=65535.
fn parse_address(address: &str) -> Result<()> {
    let bad = |why: &str| Error::InvalidArgument(format!("invalid address '{address}': {why}"));
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
        return Err(bad("missing or malformed host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad(
            "IPv6 hosts must be written in brackets, e.g. [::1]:9092",
        ));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad("port must be a number in 1..=65535")),
        Ok(_) => Ok(()),
    }
}

/// Why a `key=value` property could not be applied to a producer or
/// consumer config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The property is not `key=value`.
    #[error("malformed property '{0}': expected KEY=VALUE")]
    Malformed(String),
    /// No setting has this name.
    #[error("unknown config '{0}'")]
    UnknownKey(String),
    /// The setting exists but the value is not acceptable.
    #[error("invalid value '{value}' for {key}: {reason}")]
    InvalidValue {
        /// The setting's dotted name, e.g. `linger.ms`.
        key: String,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The settings are valid one by one but not together.
    #[error("{0}")]
    Inconsistent(String),
}

impl ConfigError {
    /// An [`InvalidValue`](Self::InvalidValue) error.
    pub fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Splits `key=value` properties (as given to `--producer-props`) at their
/// first `=`; keys are trimmed, values kept as given (they may contain `=`).
pub fn parse_properties<I, S>(properties: I) -> Result<Vec<(String, String)>, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    properties
        .into_iter()
        .map(|p| {
            let p = p.as_ref();
            match p.split_once('=') {
                Some((key, value)) if !key.trim().is_empty() => {
                    Ok((key.trim().to_owned(), value.to_owned()))
                }
                _ => Err(ConfigError::Malformed(p.to_owned())),
            }
        })
        .collect()
}

/// Settings set by their Kafka names from `key=value` properties: the
/// producer's and the consumer's configs. Each names its own keys in
/// [`set`](Properties::set) and checks them together in
/// [`validate`](Properties::validate); the rest is shared.
pub trait Properties: Default {
    /// Sets one setting by its Kafka name.
    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError>;

    /// Checks the settings together, as Kafka does.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Applies `key=value` properties in order (no check across keys; call
    /// [`validate`](Properties::validate) afterwards).
    fn set_all<I, S>(&mut self, properties: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for (key, value) in parse_properties(properties)? {
            self.set(&key, &value)?;
        }
        Ok(())
    }

    /// The defaults overridden by `key=value` properties (as
    /// kafka-producer-perf-test's `--producer-props`), then validated.
    fn from_properties<I, S>(properties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut config = Self::default();
        config.set_all(properties)?;
        config.validate()?;
        Ok(config)
    }
}

/// Applies the settings every client shares (`bootstrap.servers`,
/// `client.id`, `request.timeout.ms`, `retry.backoff.ms`,
/// `retry.backoff.max.ms`, `socket.connection.setup.timeout.ms`) to
/// `config`. Returns `Ok(false)` when `key` is not one of them.
pub(crate) fn set_common(
    config: &mut ClientConfig,
    client_id: &mut String,
    key: &str,
    value: &str,
) -> Result<bool, ConfigError> {
    match key {
        "bootstrap.servers" => {
            config.bootstrap_servers = parse_bootstrap_servers(value)
                .map_err(|e| ConfigError::invalid(key, value, e.to_string()))?;
        }
        "client.id" => *client_id = value.to_owned(),
        "request.timeout.ms" => config.request_timeout = parse_ms(key, value, 1)?,
        "retry.backoff.ms" => config.retry_backoff = parse_ms(key, value, 0)?,
        "retry.backoff.max.ms" => config.retry_backoff_max = parse_ms(key, value, 0)?,
        "socket.connection.setup.timeout.ms" => config.connect_timeout = parse_ms(key, value, 1)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Parses a non-negative integer of at least `min`.
pub(crate) fn parse_number<T>(key: &str, value: &str, min: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let parsed: T = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(key, value, "expected a whole number"))?;
    if parsed < min {
        return Err(ConfigError::invalid(
            key,
            value,
            format!("must be at least {min}"),
        ));
    }
    Ok(parsed)
}

/// Parses milliseconds (at least `min`) into a [`Duration`].
pub(crate) fn parse_ms(key: &str, value: &str, min: u64) -> Result<Duration, ConfigError> {
    parse_number::<u64>(key, value, min).map(Duration::from_millis)
}

/// Parses a byte count (at least `min`) that must fit an `i32`, as every
/// size on the wire does.
pub(crate) fn parse_bytes(key: &str, value: &str, min: usize) -> Result<usize, ConfigError> {
    let bytes = parse_number::<usize>(key, value, min)?;
    if bytes > i32::MAX as usize {
        return Err(ConfigError::invalid(
            key,
            value,
            format!("must be at most {}", i32::MAX),
        ));
    }
    Ok(bytes)
}

/// Parses `true` or `false`.
pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::invalid(key, value, "expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_split_at_the_first_equals_sign() {
        let parsed =
            parse_properties(["acks=all", " linger.ms =5", "sasl.jaas=a=b", "x="]).unwrap();
        assert_eq!(
            parsed,
            [
                ("acks".to_owned(), "all".to_owned()),
                ("linger.ms".to_owned(), "5".to_owned()),
                ("sasl.jaas".to_owned(), "a=b".to_owned()),
                ("x".to_owned(), String::new()),
            ]
        );
        for bad in ["acks", "=1", " =1", ""] {
            assert_eq!(
                parse_properties([bad]),
                Err(ConfigError::Malformed(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn common_settings_apply_to_the_client_config() {
        let mut config = ClientConfig::default();
        let mut client_id = String::new();
        let table = [
            ("bootstrap.servers", "a:1,b:2", true),
            ("client.id", "perf", true),
            ("request.timeout.ms", "500", true),
            ("retry.backoff.ms", "10", true),
            ("retry.backoff.max.ms", "20", true),
            ("socket.connection.setup.timeout.ms", "300", true),
            ("linger.ms", "5", false),
        ];
        for (key, value, known) in table {
            assert_eq!(
                set_common(&mut config, &mut client_id, key, value),
                Ok(known),
                "{key}"
            );
        }
        assert_eq!(config.bootstrap_servers, ["a:1", "b:2"]);
        assert_eq!(client_id, "perf");
        assert_eq!(config.request_timeout, Duration::from_millis(500));
        assert_eq!(config.retry_backoff, Duration::from_millis(10));
        assert_eq!(config.retry_backoff_max, Duration::from_millis(20));
        assert_eq!(config.connect_timeout, Duration::from_millis(300));
    }

    #[test]
    fn bad_common_values_name_the_key() {
        let mut config = ClientConfig::default();
        let mut client_id = String::new();
        for (key, value) in [
            ("bootstrap.servers", "nohost"),
            ("request.timeout.ms", "0"),
            ("request.timeout.ms", "-1"),
            ("retry.backoff.ms", "fast"),
        ] {
            let err = set_common(&mut config, &mut client_id, key, value).unwrap_err();
            assert!(
                matches!(&err, ConfigError::InvalidValue { key: k, .. } if k == key),
                "{key}={value}: {err}"
            );
        }
        assert!(parse_bytes("batch.size", "4294967296", 0).is_err());
        assert_eq!(parse_bool("enable.idempotence", "false"), Ok(false));
        assert!(parse_bool("enable.idempotence", "no").is_err());
    }

    #[test]
    fn bootstrap_list_parses_hosts_and_ports() {
        let table: &[(&str, &[&str])] = &[
            ("127.0.0.1:9092", &["127.0.0.1:9092"]),
            ("a:1,b:2", &["a:1", "b:2"]),
            (" a:1 , b:2 ,", &["a:1", "b:2"]),
            ("[::1]:9092", &["[::1]:9092"]),
            ("strom-0.strom.svc:9092", &["strom-0.strom.svc:9092"]),
        ];
        for (input, want) in table {
            assert_eq!(
                parse_bootstrap_servers(input).unwrap(),
                *want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn bootstrap_list_rejects_malformed_entries() {
        for input in [
            "", ",", "host", "host:", ":9092", "h:0", "h:65536", "h:x", "::1:9092", "h 1:2",
        ] {
            let err = parse_bootstrap_servers(input).unwrap_err();
            assert!(
                matches!(err, Error::InvalidArgument(_)),
                "input {input:?}: {err}"
            );
        }
    }

    #[test]
    fn default_config_is_valid_and_matches_kafka_defaults() {
        let config = ClientConfig::default();
        config.validate().unwrap();
        assert_eq!(config.request_timeout, Duration::from_secs(30));
        assert_eq!(config.retry_backoff, Duration::from_millis(100));
        assert_eq!(config.retry_backoff_max, Duration::from_secs(1));
    }

    #[test]
    fn validate_rejects_empty_bootstrap_and_zero_timeouts() {
        let empty = ClientConfig {
            bootstrap_servers: vec![],
            ..ClientConfig::default()
        };
        assert!(empty.validate().is_err());
        let zero = ClientConfig::default().with_request_timeout(Duration::ZERO);
        assert!(zero.validate().is_err());
    }
}
