//! Client configuration shared by the admin client (and, later, the producer
//! and consumer, whose configs embed a [`ClientConfig`]).

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

#[cfg(test)]
mod tests {
    use super::*;

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
