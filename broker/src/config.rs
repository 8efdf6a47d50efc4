//! Broker settings, with Kafka's names where Kafka has one.

use std::path::PathBuf;
use std::time::Duration;

use strom_controller::ConfigError;

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
        match key {
            "broker.heartbeat.interval.ms" => self.heartbeat_interval = ms(value)?,
            "broker.session.timeout.ms" => self.session_timeout = ms(value)?,
            "controlled.shutdown.timeout.ms" => self.controlled_shutdown_timeout = ms(value)?,
            "controller.request.timeout.ms" => self.controller_request_timeout = ms(value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}
