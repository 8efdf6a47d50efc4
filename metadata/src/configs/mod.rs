//! Live configuration: which config keys exist ([`keys`]), what a
//! `DescribeConfigs` answers ([`describe_configs`]) and what an
//! `IncrementalAlterConfigs` commits ([`incremental_alter_configs`]), as
//! Kafka's kafka-configs. Pure: image in, entries or `ConfigRecord`s out.
//!
//! * [`keys`]: the tables of topic configs and broker settings (types,
//!   defaults, which broker settings change live), value checks.
//! * `describe`: each config's value in force and its source, with the
//!   precedence topic > per-broker > cluster-wide default > static > default.
//! * `alter`: validation of a change and its records, all or nothing per
//!   resource.
//!
//! Where each key takes effect: docs/configs.md.

mod alter;
mod describe;
pub mod keys;

pub use alter::incremental_alter_configs;
pub use describe::{default_min_isr, describe_configs, dynamic_broker_configs};
pub use keys::{
    BROKER_CONFIGS, BrokerConfigDef, ConfigType, TOPIC_CONFIGS, TopicConfigDef, Update,
    broker_config, topic_config, topic_config_names, validate_topic_config,
};

/// What configs belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A topic, by name.
    Topic(String),
    /// One broker, by id.
    Broker(i32),
    /// The cluster-wide default of every broker (Kafka's `--entity-default`).
    BrokerDefault,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Topic(t) => write!(f, "topic {t}"),
            Resource::Broker(id) => write!(f, "broker {id}"),
            Resource::BrokerDefault => f.write_str("the cluster-wide broker default"),
        }
    }
}

/// Where a value in force comes from, highest precedence first (Kafka's
/// `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic,
    /// Set live on one broker.
    DynamicBroker,
    /// Set live as the cluster-wide broker default.
    DynamicDefaultBroker,
    /// Given to the broker at startup (file, environment, `--set`).
    StaticBroker,
    /// Built-in default.
    Default,
}

impl ConfigSource {
    /// Kafka's name, e.g. `DYNAMIC_TOPIC_CONFIG`.
    pub fn kafka_name(self) -> &'static str {
        match self {
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
        }
    }
}

/// One level that sets a config (Kafka's synonym).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The key at that level (a topic config's broker default has the
    /// broker setting's name).
    pub name: String,
    /// The value; `None` for sensitive configs.
    pub value: Option<String>,
    /// The level.
    pub source: ConfigSource,
}

/// A config as `DescribeConfigs` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Key.
    pub name: String,
    /// Value in force; `None` for sensitive configs.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Cannot be changed live at this resource.
    pub read_only: bool,
    /// A secret, never returned.
    pub sensitive: bool,
    /// Every level that sets it, in precedence order, the one in force first.
    pub synonyms: Vec<ConfigSynonym>,
}

/// How a change alters one config (Kafka's `AlterConfigOp.OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    /// Set the value.
    Set,
    /// Remove it at this level: the next level's value applies.
    Delete,
    /// Add comma-separated items to a list config.
    Append,
    /// Remove comma-separated items from a list config.
    Subtract,
}

/// One change of an `IncrementalAlterConfigs` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfig {
    /// Key.
    pub name: String,
    /// What to do.
    pub op: AlterOp,
    /// The value (`Set`) or items (`Append`, `Subtract`); ignored by `Delete`.
    pub value: Option<String>,
}

impl AlterConfig {
    /// Sets `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfig {
            name: name.into(),
            op: AlterOp::Set,
            value: Some(value.into()),
        }
    }

    /// Deletes `name` at this level.
    pub fn delete(name: impl Into<String>) -> Self {
        AlterConfig {
            name: name.into(),
            op: AlterOp::Delete,
            value: None,
        }
    }
}
