//! Node configuration: TOML file, then `STROM_*` environment, then flags
//! (flag > env > file > default), validated before anything starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;
use strom_broker::BrokerConfig;
use strom_controller::{ControllerConfig, parse_voters};

/// Command line of `stromd`. Every flag also reads `STROM_<NAME>`.
#[derive(Debug, Parser, Default)]
#[command(
    name = "stromd",
    version,
    about = "Strom node: controller, broker, or both"
)]
pub(crate) struct Args {
    /// TOML file with any of the settings below (keys as the flag names).
    #[arg(long, env = "STROM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Unique node id, never reused.
    #[arg(long, env = "STROM_NODE_ID")]
    pub node_id: Option<i32>,
    /// Take the node id from the host name's trailing number ("strom-2" → 2).
    #[arg(long, env = "STROM_NODE_ID_FROM_HOSTNAME")]
    pub node_id_from_hostname: bool,
    /// Added to the number taken from the host name.
    #[arg(long, env = "STROM_NODE_ID_OFFSET")]
    pub node_id_offset: Option<i32>,
    /// Roles of this node: controller, broker, or both (default).
    #[arg(long, env = "STROM_ROLES")]
    pub roles: Option<String>,
    /// The static controller quorum: id@host:port,...
    #[arg(long, env = "STROM_CONTROLLER_QUORUM_VOTERS")]
    pub controller_quorum_voters: Option<String>,
    /// Client and broker gRPC address (default 0.0.0.0:9092).
    #[arg(long, env = "STROM_LISTEN")]
    pub listen: Option<String>,
    /// host:port clients and peers are told (default: the listen address, with
    /// 127.0.0.1 for an unspecified host).
    #[arg(long, env = "STROM_ADVERTISED_ADDRESS")]
    pub advertised_address: Option<String>,
    /// Kafka wire-protocol listener address (off unless given).
    #[arg(long, env = "STROM_KAFKA_LISTEN")]
    pub kafka_listen: Option<String>,
    /// host:port Kafka clients are told (default: the Kafka listen address,
    /// with 127.0.0.1 for an unspecified host).
    #[arg(long, env = "STROM_KAFKA_ADVERTISED_ADDRESS")]
    pub kafka_advertised_address: Option<String>,
    /// Raft and controller gRPC address (default 0.0.0.0:9093).
    #[arg(long, env = "STROM_CONTROLLER_LISTEN")]
    pub controller_listen: Option<String>,
    /// HTTP admin address for /metrics, /healthz, /readyz (default 0.0.0.0:9644).
    #[arg(long, env = "STROM_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Data directory.
    #[arg(long, env = "STROM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Rack (failure domain) of this node.
    #[arg(long, env = "STROM_RACK")]
    pub rack: Option<String>,
    /// Any broker or controller setting by its dotted name: KEY=VALUE (repeatable).
    #[arg(
        long = "set",
        value_name = "KEY=VALUE",
        env = "STROM_SET",
        value_delimiter = ';'
    )]
    pub set: Vec<String>,
    /// Log format on stderr: human or json (one object per line). The
    /// filter is RUST_LOG (or STROM_LOG), e.g. "info,strom_broker=debug".
    #[arg(long, env = "STROM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, ignore_case = true)]
    pub log_format: LogFormat,
}

/// How `stromd` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line (with the span fields of each request).
    Json,
}

/// The settings file: flag names as keys, plus a `[settings]` table.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    node_id: Option<i32>,
    node_id_from_hostname: Option<bool>,
    node_id_offset: Option<i32>,
    roles: Option<String>,
    controller_quorum_voters: Option<String>,
    listen: Option<String>,
    advertised_address: Option<String>,
    kafka_listen: Option<String>,
    kafka_advertised_address: Option<String>,
    controller_listen: Option<String>,
    admin_listen: Option<String>,
    data_dir: Option<PathBuf>,
    rack: Option<String>,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
}

/// Which parts a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Roles {
    /// Raft voter and (when leading) active controller.
    pub controller: bool,
    /// Hosts partitions and serves clients.
    pub broker: bool,
}

/// Validated node configuration.
#[derive(Debug, Clone)]
pub(crate) struct NodeConfig {
    /// Node id.
    pub node_id: i32,
    /// Roles.
    pub roles: Roles,
    /// Client port address.
    pub listen: SocketAddr,
    /// Kafka listener address, when the listener is on.
    pub kafka_listen: Option<SocketAddr>,
    /// Controller port address.
    pub controller_listen: SocketAddr,
    /// Admin HTTP address.
    pub admin_listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Controller settings (always parsed: brokers need the voters).
    pub controller: ControllerConfig,
    /// Broker settings.
    pub broker: BrokerConfig,
}

fn parse_roles(s: &str) -> anyhow::Result<Roles> {
    let mut roles = Roles {
        controller: false,
        broker: false,
    };
    for r in s.split(',').map(str::trim) {
        match r {
            "controller" => roles.controller = true,
            "broker" => roles.broker = true,
            other => {
                bail!("unknown role '{other}'; expected controller, broker or controller,broker")
            }
        }
    }
    Ok(roles)
}

fn parse_addr(flag: &str, s: &str) -> anyhow::Result<SocketAddr> {
    s.parse()
        .with_context(|| format!("--{flag} '{s}' is not an address of the form ip:port"))
}

/// `listen` as clients should dial it: 127.0.0.1 for an unspecified host.
fn default_advertised(listen: SocketAddr) -> String {
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        listen.ip().to_string()
    };
    format!("{host}:{}", listen.port())
}

/// Kafka's listener keys, refused by name with the flags to use instead.
const KAFKA_LISTENER_KEYS: &[&str] = &[
    "listeners",
    "advertised.listeners",
    "kafka.listeners",
    "kafka.advertised.listeners",
];

/// `host:port` with a non-empty host and a port above 0.
fn host_port(flag: &str, s: &str) -> anyhow::Result<(String, u16)> {
    s.rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .filter(|(h, p)| !h.is_empty() && *p > 0)
        .with_context(|| format!("--{flag} '{s}' is not host:port"))
}

/// Node id from a host name's trailing number: "strom-2" → 2.
pub(crate) fn id_from_hostname(hostname: &str) -> anyhow::Result<i32> {
    let digits: String = hostname
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        bail!("host name '{hostname}' does not end in a number; cannot derive the node id");
    }
    let digits: String = digits.chars().rev().collect();
    digits
        .parse()
        .with_context(|| format!("host name '{hostname}' ends in a number too large for a node id"))
}

fn hostname() -> anyhow::Result<String> {
    if let Ok(h) = std::env::var("HOSTNAME")
        && !h.is_empty()
    {
        return Ok(h);
    }
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").context("read host name")?;
    Ok(h.trim().to_owned())
}

fn toml_value_string(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl NodeConfig {
    /// Merges file, environment and flags, and validates.
    pub(crate) fn load(args: Args) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let from_hostname =
            args.node_id_from_hostname || file.node_id_from_hostname.unwrap_or(false);
        let node_id = match args.node_id.or(file.node_id) {
            Some(id) => id,
            None if from_hostname => {
                id_from_hostname(&hostname()?)?
                    + args.node_id_offset.or(file.node_id_offset).unwrap_or(0)
            }
            None => bail!("--node-id is required (or --node-id-from-hostname)"),
        };
        if node_id < 0 {
            bail!("--node-id must be ≥ 0, got {node_id}");
        }
        let roles = parse_roles(
            &args
                .roles
                .or(file.roles)
                .unwrap_or_else(|| "controller,broker".into()),
        )?;
        let voters_str = args
            .controller_quorum_voters
            .or(file.controller_quorum_voters)
            .context("--controller-quorum-voters is required (id@host:port,...)")?;
        let voters = parse_voters(&voters_str)
            .map_err(|e| anyhow::anyhow!("--controller-quorum-voters: {e}"))?;
        let listen = parse_addr(
            "listen",
            &args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "0.0.0.0:9092".into()),
        )?;
        let controller_listen = parse_addr(
            "controller-listen",
            &args
                .controller_listen
                .or(file.controller_listen)
                .unwrap_or_else(|| "0.0.0.0:9093".into()),
        )?;
        let admin_listen = parse_addr(
            "admin-listen",
            &args
                .admin_listen
                .or(file.admin_listen)
                .unwrap_or_else(|| "0.0.0.0:9644".into()),
        )?;
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let rack = args.rack.or(file.rack).filter(|r| !r.is_empty());
        let advertised = args
            .advertised_address
            .or(file.advertised_address)
            .unwrap_or_else(|| default_advertised(listen));
        let (adv_host, adv_port) = host_port("advertised-address", &advertised)?;
        let kafka_listen = args
            .kafka_listen
            .or(file.kafka_listen)
            .map(|a| parse_addr("kafka-listen", &a))
            .transpose()?;
        let kafka_advertised = args
            .kafka_advertised_address
            .or(file.kafka_advertised_address);
        let kafka_advertised = match (kafka_listen, kafka_advertised) {
            (None, None) => None,
            (None, Some(_)) => bail!("--kafka-advertised-address needs --kafka-listen"),
            (Some(listen), advertised) => Some(host_port(
                "kafka-advertised-address",
                &advertised.unwrap_or_else(|| default_advertised(listen)),
            )?),
        };

        let mut controller = ControllerConfig {
            node_id: u64::try_from(node_id).context("node id")?,
            voters,
            data_dir: data_dir.clone(),
            ..Default::default()
        };
        let mut broker = BrokerConfig {
            node_id,
            advertised_host: adv_host,
            advertised_port: adv_port,
            kafka_advertised,
            rack,
            data_dir: data_dir.clone(),
            ..Default::default()
        };
        let mut settings: Vec<(String, String)> = file
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), toml_value_string(v)))
            .collect();
        // Empty entries come from an empty STROM_SET or a trailing ';'.
        for kv in args.set.iter().filter(|kv| !kv.trim().is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--set '{kv}' is not KEY=VALUE"))?;
            settings.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        for (k, v) in &settings {
            // Kafka's listener settings name protocols and several listeners;
            // Strom has one plaintext Kafka listener, set by its flags.
            if KAFKA_LISTENER_KEYS.contains(&k.as_str()) {
                bail!(
                    "INVALID_CONFIG: '{k}' is not a setting: the Kafka listener binds \
                     --kafka-listen ADDR and tells clients --kafka-advertised-address HOST:PORT"
                );
            }
            let known_c = controller.set(k, v).map_err(|e| anyhow::anyhow!("{e}"))?;
            let known_b = broker.set(k, v).map_err(|e| anyhow::anyhow!("{e}"))?;
            if !known_c && !known_b {
                bail!("unknown setting '{k}'");
            }
            // Every setting is in the table DescribeConfigs and live
            // changes use (the project's config rule, docs/configs.md).
            let Some(def) = strom_metadata::configs::broker_config(k) else {
                bail!("setting '{k}' is missing from strom_metadata::configs::BROKER_CONFIGS");
            };
            let shown = if def.sensitive {
                String::new()
            } else {
                v.clone()
            };
            broker.static_configs.insert(k.clone(), shown);
        }
        if roles.broker {
            broker
                .validate()
                .map_err(|e| anyhow::anyhow!("INVALID_CONFIG: {e}"))?;
        }
        if roles.controller {
            controller.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
            let own = &controller.voters[&controller.node_id];
            let own_port = own
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok());
            if own_port != Some(controller_listen.port()) {
                bail!(
                    "node {node_id} is voter {own} but --controller-listen is {controller_listen}: \
                     the ports differ (is another node using id {node_id}?)"
                );
            }
        }
        Ok(Self {
            node_id,
            roles,
            listen,
            kafka_listen,
            controller_listen,
            admin_listen,
            data_dir,
            controller,
            broker,
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parse config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(voters: &str) -> Args {
        Args {
            node_id: Some(1),
            controller_quorum_voters: Some(voters.into()),
            controller_listen: Some("127.0.0.1:9093".into()),
            ..Default::default()
        }
    }

    #[test]
    fn hostname_gives_the_node_id() {
        assert_eq!(id_from_hostname("strom-2").expect("ok"), 2);
        assert_eq!(id_from_hostname("node10").expect("ok"), 10);
        assert!(id_from_hostname("strom").is_err());
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let cases: Vec<(Args, &str)> = vec![
            (args("1@127.0.0.1:9093,x@h:1"), "invalid node id"),
            (
                Args {
                    node_id: Some(4),
                    ..args("1@127.0.0.1:9093")
                },
                "not among",
            ),
            (args("1@127.0.0.1:9999"), "ports differ"),
            (
                Args {
                    roles: Some("leader".into()),
                    ..args("1@127.0.0.1:9093")
                },
                "unknown role",
            ),
            (
                Args {
                    set: vec!["nope".into()],
                    ..args("1@127.0.0.1:9093")
                },
                "not KEY=VALUE",
            ),
            (
                Args {
                    set: vec!["x.y=1".into()],
                    ..args("1@127.0.0.1:9093")
                },
                "unknown setting",
            ),
            (
                Args {
                    listen: Some("localhost".into()),
                    ..args("1@127.0.0.1:9093")
                },
                "not an address",
            ),
            (
                Args {
                    node_id: None,
                    ..args("1@127.0.0.1:9093")
                },
                "--node-id is required",
            ),
            (
                Args {
                    kafka_listen: Some("0.0.0.0:9094".into()),
                    set: vec!["kafka.advertised.listeners=PLAINTEXT://h:9094".into()],
                    ..args("1@127.0.0.1:9093")
                },
                "'kafka.advertised.listeners' is not a setting",
            ),
            (
                Args {
                    set: vec!["advertised.listeners=PLAINTEXT://h:9094".into()],
                    ..args("1@127.0.0.1:9093")
                },
                "--kafka-advertised-address HOST:PORT",
            ),
            (
                Args {
                    kafka_advertised_address: Some("h:1".into()),
                    ..args("1@127.0.0.1:9093")
                },
                "--kafka-advertised-address needs --kafka-listen",
            ),
            (
                Args {
                    kafka_listen: Some("127.0.0.1:x".into()),
                    ..args("1@127.0.0.1:9093")
                },
                "--kafka-listen '127.0.0.1:x' is not an address",
            ),
            (
                Args {
                    kafka_listen: Some("0.0.0.0:9094".into()),
                    kafka_advertised_address: Some("kafka-1".into()),
                    ..args("1@127.0.0.1:9093")
                },
                "--kafka-advertised-address 'kafka-1' is not host:port",
            ),
            (
                Args {
                    set: vec!["log.cache.drop.behind.bytes=4096".into()],
                    ..args("1@127.0.0.1:9093")
                },
                "log.cache.drop.behind.bytes must be 0 (off) or at least 4194304",
            ),
            (
                Args {
                    set: vec!["log.cache.drop.behind.bytes=-1".into()],
                    ..args("1@127.0.0.1:9093")
                },
                "non-negative number",
            ),
        ];
        for (a, want) in cases {
            let err = NodeConfig::load(a).expect_err(want).to_string();
            assert!(err.contains(want), "want '{want}' in '{err}'");
        }
    }

    #[test]
    fn empty_settings_are_ignored() {
        let a = Args {
            set: vec![
                String::new(),
                "broker.session.timeout.ms=4000".into(),
                " ".into(),
            ],
            ..args("1@127.0.0.1:9093")
        };
        let c = NodeConfig::load(a).expect("valid");
        assert_eq!(c.broker.session_timeout.as_millis(), 4000);
        assert_eq!(
            c.broker.replication.cache_drop_behind_bytes, 0,
            "the page cache is kept by default"
        );
        let a = Args {
            set: vec!["log.cache.drop.behind.bytes=16777216".into()],
            ..args("1@127.0.0.1:9093")
        };
        let c = NodeConfig::load(a).expect("valid");
        assert_eq!(c.broker.replication.cache_drop_behind_bytes, 16 << 20);
    }

    #[test]
    fn the_config_table_matches_the_settings_and_their_defaults() {
        use strom_metadata::configs::BROKER_CONFIGS;
        for def in BROKER_CONFIGS {
            // Setting the table's default changes nothing: the defaults agree.
            let (mut b, mut c) = (BrokerConfig::default(), ControllerConfig::default());
            let known_b = b.set(def.name, def.default).expect(def.name);
            let known_c = !known_b && c.set(def.name, def.default).expect(def.name);
            assert!(known_b || known_c, "{} is not a setting", def.name);
            if known_b {
                assert_eq!(
                    format!("{b:?}"),
                    format!("{:?}", BrokerConfig::default()),
                    "default of {}",
                    def.name
                );
            } else {
                assert_eq!(
                    format!("{c:?}"),
                    format!("{:?}", ControllerConfig::default()),
                    "default of {}",
                    def.name
                );
            }
        }
        // Settings given at startup are reported for DescribeConfigs.
        let a = Args {
            set: vec![
                "log.segment.bytes=1048576".into(),
                "auto.leader.rebalance.enable=false".into(),
            ],
            ..args("1@127.0.0.1:9093")
        };
        let c = NodeConfig::load(a).expect("valid");
        assert_eq!(
            c.broker.static_configs,
            BTreeMap::from([
                (
                    "auto.leader.rebalance.enable".to_owned(),
                    "false".to_owned()
                ),
                ("log.segment.bytes".to_owned(), "1048576".to_owned()),
            ])
        );
    }

    #[test]
    fn the_kafka_listener_is_off_unless_given() {
        let c = NodeConfig::load(args("1@127.0.0.1:9093")).expect("valid");
        assert_eq!((c.kafka_listen, c.broker.kafka_advertised), (None, None));
        let cases = [
            ("0.0.0.0:9094", None, ("127.0.0.1", 9094)),
            ("10.0.0.5:9094", None, ("10.0.0.5", 9094)),
            (
                "0.0.0.0:9094",
                Some("kafka-1.example:19094"),
                ("kafka-1.example", 19094),
            ),
        ];
        for (listen, advertised, (host, port)) in cases {
            let a = Args {
                kafka_listen: Some(listen.into()),
                kafka_advertised_address: advertised.map(Into::into),
                ..args("1@127.0.0.1:9093")
            };
            let c = NodeConfig::load(a).expect("valid");
            assert_eq!(c.kafka_listen, Some(listen.parse().expect("an address")));
            assert_eq!(c.broker.kafka_advertised, Some((host.to_owned(), port)));
        }
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("strom.toml");
        std::fs::write(
            &path,
            "node-id = 7\nrack = \"r1\"\ncontroller-quorum-voters = \"1@127.0.0.1:9093\"\n[settings]\n\"broker.session.timeout.ms\" = 4000\n",
        )
        .expect("write");
        let a = Args {
            config: Some(path),
            node_id: Some(1),
            controller_listen: Some("127.0.0.1:9093".into()),
            ..Default::default()
        };
        let c = NodeConfig::load(a).expect("valid");
        assert_eq!(c.node_id, 1);
        assert_eq!(c.broker.rack.as_deref(), Some("r1"));
        assert_eq!(c.controller.broker_session_timeout.as_millis(), 4000);
    }
}
