//! The config keys Strom knows, as data: [`TOPIC_CONFIGS`] and
//! [`BROKER_CONFIGS`], with their value types, defaults and (for broker
//! settings) whether and where they can change live. Kafka's names,
//! defaults and bounds, except where Strom's log needs tighter bounds.
//!
//! The project rule (docs/configs.md): a key is either in these tables and
//! takes effect, or it is refused with `INVALID_CONFIG` naming it — never
//! accepted and ignored. To add a key, add its row here and make it take
//! effect (docs/configs.md lists where each one does).

use crate::error::{Result, bail};

/// The value type of a config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConfigType {
    /// A 32-bit integer of at least `min`.
    Int {
        /// Smallest accepted value.
        min: i64,
    },
    /// A 32-bit integer in `min..=max`.
    IntRange {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A 64-bit integer of at least `min`.
    Long {
        /// Smallest accepted value.
        min: i64,
    },
    /// A finite number in `min..=max`.
    Double {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// `true` or `false` (any case).
    Bool,
    /// One of the values, exactly.
    Choice(&'static [&'static str]),
    /// A non-empty comma-separated list of the values.
    List(&'static [&'static str]),
    /// Kafka's throttled replica list: `*`, or comma-separated
    /// `partition:broker` pairs, or empty
    /// ([`ThrottledReplicas`](crate::throttle::ThrottledReplicas)).
    ThrottledReplicas,
}

/// A topic config.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    /// Kafka's name, e.g. `segment.bytes`.
    pub name: &'static str,
    /// Value type and bounds.
    pub ty: ConfigType,
    /// Strom's built-in default.
    pub default: &'static str,
    /// The broker setting that supplies the default when the topic does not
    /// set it (Kafka's synonym, e.g. `log.segment.bytes`). Only consulted
    /// when it is in [`BROKER_CONFIGS`]; otherwise the default is fixed.
    pub broker_synonym: Option<&'static str>,
}

/// When a broker setting can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Only at startup (config file, environment, `--set`): a change needs
    /// a restart. Kafka's "read-only".
    ReadOnly,
    /// Live, on one broker or as the cluster-wide default of every broker.
    PerBroker,
    /// Live, only as the cluster-wide default: controllers and every broker
    /// must use the same value.
    ClusterWide,
}

/// A broker (node) setting, `stromd --set KEY=VALUE`.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    /// Kafka's name, e.g. `log.segment.bytes`.
    pub name: &'static str,
    /// Value type and bounds (checked for live changes; `stromd` checks
    /// static values when it starts).
    pub ty: ConfigType,
    /// Strom's built-in default.
    pub default: &'static str,
    /// Whether and where it can change live.
    pub update: Update,
    /// A secret: its value is never reported or returned.
    pub sensitive: bool,
}

const fn topic(
    name: &'static str,
    ty: ConfigType,
    default: &'static str,
    broker_synonym: Option<&'static str>,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        ty,
        default,
        broker_synonym,
    }
}

const fn broker(
    name: &'static str,
    ty: ConfigType,
    default: &'static str,
    update: Update,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        ty,
        default,
        update,
        sensitive: false,
    }
}

/// Kafka's `Long.MAX_VALUE`: "never" for the flush settings.
pub const NEVER: &str = "9223372036854775807";

const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Every topic config Strom accepts.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic(
        "min.insync.replicas",
        ConfigType::Int { min: 1 },
        "1",
        Some("min.insync.replicas"),
    ),
    topic(
        "unclean.leader.election.enable",
        ConfigType::Bool,
        "false",
        None,
    ),
    topic(
        "retention.ms",
        ConfigType::Long { min: -1 },
        "604800000",
        Some("log.retention.ms"),
    ),
    topic(
        "retention.bytes",
        ConfigType::Long { min: -1 },
        "-1",
        Some("log.retention.bytes"),
    ),
    // The log's offset index needs at least 64 bytes per segment (Kafka: 14).
    topic(
        "segment.bytes",
        ConfigType::Int { min: 64 },
        "1073741824",
        Some("log.segment.bytes"),
    ),
    topic(
        "segment.ms",
        ConfigType::Long { min: 1 },
        "604800000",
        Some("log.roll.ms"),
    ),
    // At least one batch header (61 bytes; Kafka: 0).
    topic(
        "max.message.bytes",
        ConfigType::Int { min: 61 },
        "1048576",
        Some("message.max.bytes"),
    ),
    topic(
        "cleanup.policy",
        ConfigType::List(&["delete", "compact"]),
        "delete",
        Some("log.cleanup.policy"),
    ),
    // The broker stores batches as the producer compressed them; recompressing
    // to a topic codec is not implemented, so only `producer` is accepted.
    topic(
        "compression.type",
        ConfigType::Choice(&["producer"]),
        "producer",
        None,
    ),
    topic(
        "flush.messages",
        ConfigType::Long { min: 1 },
        NEVER,
        Some("log.flush.interval.messages"),
    ),
    topic(
        "flush.ms",
        ConfigType::Long { min: 0 },
        NEVER,
        Some("log.flush.interval.ms"),
    ),
    topic(
        "message.timestamp.type",
        ConfigType::Choice(TIMESTAMP_TYPES),
        "CreateTime",
        Some("log.message.timestamp.type"),
    ),
    // Compaction (`cleanup.policy=compact`): the broker's log cleaner.
    topic(
        "delete.retention.ms",
        ConfigType::Long { min: 0 },
        "86400000",
        Some("log.cleaner.delete.retention.ms"),
    ),
    topic(
        "min.compaction.lag.ms",
        ConfigType::Long { min: 0 },
        "0",
        Some("log.cleaner.min.compaction.lag.ms"),
    ),
    topic(
        "max.compaction.lag.ms",
        ConfigType::Long { min: 1 },
        NEVER,
        Some("log.cleaner.max.compaction.lag.ms"),
    ),
    topic(
        "min.cleanable.dirty.ratio",
        ConfigType::Double { min: 0.0, max: 1.0 },
        "0.5",
        Some("log.cleaner.min.cleanable.ratio"),
    ),
    // Redpanda's name: `false` acknowledges acks=all writes only once every
    // ISR member fsynced them (docs/replication.md, "Durable
    // acknowledgements").
    topic(
        "write.caching",
        ConfigType::Bool,
        "true",
        Some("log.write.caching"),
    ),
    // Replication throttles (docs/reassignment.md, "Throttles"): which
    // replicas count against the brokers' throttled rates while they move.
    topic(
        crate::throttle::LEADER_THROTTLED_REPLICAS,
        ConfigType::ThrottledReplicas,
        "",
        None,
    ),
    topic(
        crate::throttle::FOLLOWER_THROTTLED_REPLICAS,
        ConfigType::ThrottledReplicas,
        "",
        None,
    ),
];

/// Every broker and controller setting `stromd --set` accepts, and whether
/// it can change live (IncrementalAlterConfigs on a broker or the
/// cluster-wide default). The single table of dynamic broker settings:
/// a new live setting is a row here with [`Update::PerBroker`] or
/// [`Update::ClusterWide`] plus the code that reads its live value (the
/// broker's `replica::plan::defaults` for log and replication defaults).
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    // Defaults of the topic configs above: live.
    broker(
        "log.segment.bytes",
        ConfigType::Int { min: 64 },
        "1073741824",
        Update::PerBroker,
    ),
    broker(
        "log.roll.ms",
        ConfigType::Long { min: 1 },
        "604800000",
        Update::PerBroker,
    ),
    broker(
        "message.max.bytes",
        ConfigType::Int { min: 61 },
        "1048576",
        Update::PerBroker,
    ),
    broker(
        "log.flush.interval.messages",
        ConfigType::Long { min: 1 },
        NEVER,
        Update::PerBroker,
    ),
    broker(
        "log.flush.interval.ms",
        ConfigType::Long { min: 0 },
        NEVER,
        Update::PerBroker,
    ),
    broker(
        "log.message.timestamp.type",
        ConfigType::Choice(TIMESTAMP_TYPES),
        "CreateTime",
        Update::PerBroker,
    ),
    broker(
        "log.write.caching",
        ConfigType::Bool,
        "true",
        Update::PerBroker,
    ),
    broker(
        "log.retention.ms",
        ConfigType::Long { min: -1 },
        "604800000",
        Update::PerBroker,
    ),
    broker(
        "log.retention.bytes",
        ConfigType::Long { min: -1 },
        "-1",
        Update::PerBroker,
    ),
    broker(
        "log.cleanup.policy",
        ConfigType::List(&["delete", "compact"]),
        "delete",
        Update::PerBroker,
    ),
    broker(
        "log.cleaner.delete.retention.ms",
        ConfigType::Long { min: 0 },
        "86400000",
        Update::PerBroker,
    ),
    broker(
        "log.cleaner.min.compaction.lag.ms",
        ConfigType::Long { min: 0 },
        "0",
        Update::PerBroker,
    ),
    broker(
        "log.cleaner.max.compaction.lag.ms",
        ConfigType::Long { min: 1 },
        NEVER,
        Update::PerBroker,
    ),
    broker(
        "log.cleaner.min.cleanable.ratio",
        ConfigType::Double { min: 0.0, max: 1.0 },
        "0.5",
        Update::PerBroker,
    ),
    // Replication throttles: bytes/s of moving replicas' traffic, per side;
    // Kafka's Long.MAX_VALUE default is unthrottled.
    broker(
        crate::throttle::LEADER_THROTTLED_RATE,
        ConfigType::Long { min: 1 },
        NEVER,
        Update::PerBroker,
    ),
    broker(
        crate::throttle::FOLLOWER_THROTTLED_RATE,
        ConfigType::Long { min: 1 },
        NEVER,
        Update::PerBroker,
    ),
    // How long a partition remembers an idle idempotent producer; cluster-wide
    // in Kafka.
    broker(
        "producer.id.expiration.ms",
        ConfigType::Long { min: 1 },
        "86400000",
        Update::ClusterWide,
    ),
    // Controllers decide eligible leader replicas with it, so it changes
    // only cluster-wide (as KIP-966 requires).
    broker(
        "min.insync.replicas",
        ConfigType::Int { min: 1 },
        "1",
        Update::ClusterWide,
    ),
    // Replication and storage: at startup only.
    broker(
        "replica.lag.time.max.ms",
        ConfigType::Long { min: 1 },
        "30000",
        Update::ReadOnly,
    ),
    broker(
        "replica.fetch.wait.max.ms",
        ConfigType::Long { min: 0 },
        "500",
        Update::ReadOnly,
    ),
    broker(
        "replica.fetch.max.bytes",
        ConfigType::Int { min: 1 },
        "1048576",
        Update::ReadOnly,
    ),
    broker(
        "replica.fetch.response.max.bytes",
        ConfigType::Int { min: 1 },
        "10485760",
        Update::ReadOnly,
    ),
    broker(
        "replica.fetch.backoff.ms",
        ConfigType::Long { min: 0 },
        "100",
        Update::ReadOnly,
    ),
    broker(
        "replica.high.watermark.checkpoint.interval.ms",
        ConfigType::Long { min: 1 },
        "5000",
        Update::ReadOnly,
    ),
    broker(
        "log.cache.drop.behind.bytes",
        ConfigType::Long { min: 0 },
        "0",
        Update::ReadOnly,
    ),
    // The log cleaner's threads and buffers: set at start.
    broker(
        "log.cleaner.threads",
        ConfigType::Int { min: 0 },
        "1",
        Update::ReadOnly,
    ),
    broker(
        "log.cleaner.dedupe.buffer.size",
        ConfigType::Long { min: 1024 },
        "134217728",
        Update::ReadOnly,
    ),
    broker(
        "log.cleaner.io.max.bytes.per.second",
        ConfigType::Double {
            min: 1.0,
            max: f64::MAX,
        },
        "1.7976931348623157E308",
        Update::ReadOnly,
    ),
    broker(
        "log.cleaner.backoff.ms",
        ConfigType::Long { min: 0 },
        "15000",
        Update::ReadOnly,
    ),
    // How often retention runs: the replica manager's timer, set at start.
    broker(
        "log.retention.check.interval.ms",
        ConfigType::Long { min: 1 },
        "300000",
        Update::ReadOnly,
    ),
    // Broker lifecycle and requests: at startup only.
    broker(
        "broker.heartbeat.interval.ms",
        ConfigType::Long { min: 1 },
        "2000",
        Update::ReadOnly,
    ),
    broker(
        "broker.session.timeout.ms",
        ConfigType::Long { min: 1 },
        "9000",
        Update::ReadOnly,
    ),
    broker(
        "controlled.shutdown.timeout.ms",
        ConfigType::Long { min: 0 },
        "30000",
        Update::ReadOnly,
    ),
    // The broker's bound on a request to the controllers (a controller
    // bounds its metadata writes by the same name, default 30000).
    broker(
        "controller.request.timeout.ms",
        ConfigType::Long { min: 1 },
        "10000",
        Update::ReadOnly,
    ),
    broker(
        "socket.request.max.bytes",
        ConfigType::Int { min: 1 },
        "104857600",
        Update::ReadOnly,
    ),
    broker(
        "connections.max.idle.ms",
        ConfigType::Long { min: 1 },
        "600000",
        Update::ReadOnly,
    ),
    broker(
        "max.incremental.fetch.session.cache.slots",
        ConfigType::Int { min: 0 },
        "1000",
        Update::ReadOnly,
    ),
    // Controller settings: at startup only.
    broker(
        "auto.leader.rebalance.enable",
        ConfigType::Bool,
        "true",
        Update::ReadOnly,
    ),
    broker(
        "leader.imbalance.per.broker.percentage",
        ConfigType::Double {
            min: 0.0,
            max: 100.0,
        },
        "10",
        Update::ReadOnly,
    ),
    broker(
        "leader.imbalance.check.interval.seconds",
        ConfigType::Double {
            min: f64::MIN_POSITIVE,
            max: f64::MAX,
        },
        "300",
        Update::ReadOnly,
    ),
    broker(
        "reassignment.max.concurrent.moves.per.broker",
        ConfigType::Int { min: 1 },
        "5",
        Update::ReadOnly,
    ),
    // The built-in balancer (strom_metadata::balancer).
    broker(
        crate::balancer::BALANCER_MODE,
        ConfigType::Choice(&["off", "node-add", "continuous"]),
        "off",
        Update::ReadOnly,
    ),
    broker(
        crate::balancer::NODE_UNAVAILABLE_TIMEOUT,
        ConfigType::Long { min: 1 },
        "900000",
        Update::ReadOnly,
    ),
    broker(
        crate::balancer::DISK_THRESHOLD_PERCENT,
        ConfigType::IntRange { min: 1, max: 100 },
        "80",
        Update::ReadOnly,
    ),
    broker(
        "controller.quorum.election.timeout.ms",
        ConfigType::Long { min: 1 },
        "100",
        Update::ReadOnly,
    ),
    broker(
        "controller.quorum.heartbeat.interval.ms",
        ConfigType::Long { min: 1 },
        "30",
        Update::ReadOnly,
    ),
    broker(
        "metadata.snapshot.interval.entries",
        ConfigType::Long { min: 1 },
        "20000",
        Update::ReadOnly,
    ),
    broker(
        "metadata.log.retained.entries",
        ConfigType::Long { min: 0 },
        "1000",
        Update::ReadOnly,
    ),
    broker(
        "metadata.feed.batches",
        ConfigType::Long { min: 0 },
        "10000",
        Update::ReadOnly,
    ),
    // The group coordinator (docs/groups.md): at startup only.
    broker(
        "offsets.topic.num.partitions",
        ConfigType::Int { min: 1 },
        "50",
        Update::ReadOnly,
    ),
    broker(
        "offsets.topic.replication.factor",
        ConfigType::Int { min: 1 },
        "3",
        Update::ReadOnly,
    ),
    broker(
        "offsets.commit.timeout.ms",
        ConfigType::Int { min: 1 },
        "5000",
        Update::ReadOnly,
    ),
    broker(
        "offsets.retention.minutes",
        ConfigType::Int { min: 1 },
        "10080",
        Update::ReadOnly,
    ),
    broker(
        "offset.metadata.max.bytes",
        ConfigType::Int { min: 0 },
        "4096",
        Update::ReadOnly,
    ),
    broker(
        "group.min.session.timeout.ms",
        ConfigType::Int { min: 1 },
        "6000",
        Update::ReadOnly,
    ),
    broker(
        "group.max.session.timeout.ms",
        ConfigType::Int { min: 1 },
        "1800000",
        Update::ReadOnly,
    ),
    broker(
        "group.consumer.heartbeat.interval.ms",
        ConfigType::Int { min: 1 },
        "5000",
        Update::ReadOnly,
    ),
    broker(
        "group.consumer.lag.interval.ms",
        ConfigType::Long { min: 100 },
        "30000",
        Update::ReadOnly,
    ),
    // The transaction coordinator (docs/transactions.md): at startup only.
    broker(
        "transaction.state.log.num.partitions",
        ConfigType::Int { min: 1 },
        "50",
        Update::ReadOnly,
    ),
    broker(
        "transaction.state.log.replication.factor",
        ConfigType::Int { min: 1 },
        "3",
        Update::ReadOnly,
    ),
    broker(
        "transaction.max.timeout.ms",
        ConfigType::Int { min: 1 },
        "900000",
        Update::ReadOnly,
    ),
    broker(
        "transactional.id.expiration.ms",
        ConfigType::Long { min: 1 },
        "604800000",
        Update::ReadOnly,
    ),
    broker(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        ConfigType::Long { min: 1 },
        "10000",
        Update::ReadOnly,
    ),
    broker(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        ConfigType::Long { min: 1 },
        "3600000",
        Update::ReadOnly,
    ),
];

/// The topic config `name`.
pub fn topic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The broker setting `name`.
pub fn broker_config(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// Names of the topic configs Strom accepts.
pub fn topic_config_names() -> impl Iterator<Item = &'static str> {
    TOPIC_CONFIGS.iter().map(|d| d.name)
}

/// Checks `value` against the type of config `name`: `INVALID_CONFIG`
/// naming the key when it does not parse or is out of bounds.
pub fn check_value(name: &str, ty: ConfigType, value: &str) -> Result<()> {
    match ty {
        ConfigType::Int { min } | ConfigType::Long { min } => {
            let parsed = if matches!(ty, ConfigType::Int { .. }) {
                value.trim().parse::<i32>().map(i64::from).ok()
            } else {
                value.trim().parse::<i64>().ok()
            };
            let Some(v) = parsed else {
                bail!(
                    InvalidConfig,
                    "config {name} value {value:?} is not an integer in range"
                );
            };
            if v < min {
                bail!(
                    InvalidConfig,
                    "config {name} value {v} is below the minimum {min}"
                );
            }
        }
        ConfigType::IntRange { min, max } => {
            let Some(v) = value.trim().parse::<i32>().ok().map(i64::from) else {
                bail!(
                    InvalidConfig,
                    "config {name} value {value:?} is not an integer in range"
                );
            };
            if v < min || v > max {
                bail!(
                    InvalidConfig,
                    "config {name} value {v} is outside [{min}, {max}]"
                );
            }
        }
        ConfigType::Double { min, max } => {
            let Some(v) = value.trim().parse::<f64>().ok().filter(|v| v.is_finite()) else {
                bail!(
                    InvalidConfig,
                    "config {name} value {value:?} is not a number"
                );
            };
            if v < min || v > max {
                bail!(
                    InvalidConfig,
                    "config {name} value {v} is outside [{min}, {max}]"
                );
            }
        }
        ConfigType::Bool => {
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                bail!(
                    InvalidConfig,
                    "config {name} value {value:?} is not true or false"
                );
            }
        }
        ConfigType::Choice(allowed) => {
            if !allowed.contains(&value) {
                bail!(
                    InvalidConfig,
                    "config {name} value {value:?} is not supported; allowed: {}",
                    allowed.join(", ")
                );
            }
        }
        ConfigType::ThrottledReplicas => {
            if let Err(why) = crate::throttle::ThrottledReplicas::parse(value) {
                bail!(InvalidConfig, "config {name} value {value:?}: {why}");
            }
        }
        ConfigType::List(allowed) => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            if let Some(bad) = items.iter().find(|i| !allowed.contains(i)) {
                bail!(
                    InvalidConfig,
                    "config {name} item {bad:?} is not one of {}",
                    allowed.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// Checks one topic config: the name is known and the value parses as its
/// type within bounds; `min.insync.replicas` must not exceed
/// `replication_factor`.
pub fn validate_topic_config(name: &str, value: &str, replication_factor: usize) -> Result<()> {
    let Some(def) = topic_config(name) else {
        bail!(InvalidConfig, "unknown topic config {name:?}");
    };
    check_value(name, def.ty, value)?;
    if name == crate::image::MIN_INSYNC_REPLICAS
        && value
            .trim()
            .parse::<usize>()
            .is_ok_and(|v| v > replication_factor)
    {
        bail!(
            InvalidConfig,
            "config min.insync.replicas {} is larger than the replication factor {replication_factor}",
            value.trim()
        );
    }
    Ok(())
}

#[cfg(test)]
#[path = "keys_test.rs"]
mod tests;
