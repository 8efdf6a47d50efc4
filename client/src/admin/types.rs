//! The admin API's domain types. Those that the CLI prints derive serde with
//! exactly the JSON shape documented in docs/cli.md; fields outside that
//! contract are `#[serde(skip)]` so the JSON only ever grows additively.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;
use uuid::Uuid;

use crate::error::{Error, Result};

/// A topic's id: a UUID, unique forever (a re-created topic gets a new one).
/// Displayed and serialized in its hyphenated text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TopicId(pub Uuid);

impl TopicId {
    /// Decodes the 16 wire bytes; `None` when absent or malformed.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Uuid::from_slice(bytes)
            .ok()
            .filter(|u| !u.is_nil())
            .map(TopicId)
    }

    /// The 16 wire bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TopicId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s)
            .map(TopicId)
            .map_err(|e| Error::InvalidArgument(format!("invalid topic id '{s}': {e}")))
    }
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name: `[a-zA-Z0-9._-]`, at most 249 characters, not "." or "..".
    pub name: String,
    /// Number of partitions; ignored when `replica_assignment` is given.
    pub num_partitions: i32,
    /// Replication factor; ignored when `replica_assignment` is given.
    pub replication_factor: i32,
    /// Explicit replicas per partition: entry `i` is partition `i`'s broker
    /// ids, the first being the preferred leader. Empty: the controller places them.
    pub replica_assignment: Vec<Vec<i32>>,
    /// Topic configs, e.g. `min.insync.replicas` = `2`.
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `num_partitions` partitions of `replication_factor` replicas.
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i32) -> Self {
        Self {
            name: name.into(),
            num_partitions,
            replication_factor,
            replica_assignment: Vec::new(),
            configs: BTreeMap::new(),
        }
    }

    /// Sets an explicit replica assignment (one replica list per partition).
    pub fn with_replica_assignment(mut self, assignment: Vec<Vec<i32>>) -> Self {
        self.replica_assignment = assignment;
        self
    }

    /// Adds a topic config.
    pub fn with_config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(name.into(), value.into());
        self
    }
}

/// The outcome of creating one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicResult {
    /// The topic name.
    pub name: String,
    /// The new topic's id, when created.
    pub topic_id: Option<TopicId>,
    /// The partition count the topic got.
    pub num_partitions: i32,
    /// The replication factor the topic got.
    pub replication_factor: i32,
    /// Why this topic was not created.
    pub error: Option<StromError>,
}

impl CreateTopicResult {
    /// The topic id, or this topic's error.
    pub fn into_result(self) -> Result<TopicId> {
        match (self.error, self.topic_id) {
            (Some(e), _) => Err(Error::Strom(e)),
            (None, Some(id)) => Ok(id),
            (None, None) => Err(Error::strom(
                ErrorCode::UnknownServerError,
                format!("topic '{}' created without a topic id", self.name),
            )),
        }
    }
}

/// The outcome of deleting one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicResult {
    /// The topic name.
    pub name: String,
    /// The deleted topic's id, when known.
    pub topic_id: Option<TopicId>,
    /// Why this topic was not deleted.
    pub error: Option<StromError>,
}

/// The controller quorum and the registered brokers
/// (JSON: `{"cluster_id", "controller", "brokers"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterDescription {
    /// The cluster id (UUID text).
    pub cluster_id: String,
    /// The controller quorum.
    pub controller: ControllerQuorum,
    /// Registered brokers, by id.
    pub brokers: Vec<BrokerDescription>,
    /// Highest committed metadata offset known to the answering node.
    #[serde(skip)]
    pub metadata_offset: i64,
}

impl ClusterDescription {
    /// Whether a controller leader is known and at least `brokers` brokers
    /// are registered, all unfenced.
    pub fn is_ready(&self, brokers: usize) -> bool {
        self.controller.leader_id.is_some()
            && self.brokers.len() >= brokers
            && self
                .brokers
                .iter()
                .all(|b| b.state == BrokerState::Unfenced)
    }
}

/// The Raft quorum of controllers (JSON: `{"leader_id", "leader_epoch", "voters"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerQuorum {
    /// The active controller's node id; `null` while no leader is known.
    pub leader_id: Option<i32>,
    /// The leader's Raft term.
    pub leader_epoch: i64,
    /// The voters, by id.
    pub voters: Vec<VoterDescription>,
}

/// One controller voter (JSON: `{"id", "address", "lag"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoterDescription {
    /// Node id.
    pub id: i32,
    /// Controller address (host:port).
    pub address: String,
    /// Log entries behind the leader; `null` when unknown.
    pub lag: Option<i64>,
}

/// A broker's registration state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerState {
    /// Holds a lease and may lead partitions.
    Unfenced,
    /// Registered but without a lease or not caught up; leads nothing.
    Fenced,
    /// Shutting down; its leaderships are being moved away.
    ControlledShutdown,
}

impl BrokerState {
    /// `unfenced`, `fenced` or `controlled_shutdown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BrokerState::Unfenced => "unfenced",
            BrokerState::Fenced => "fenced",
            BrokerState::ControlledShutdown => "controlled_shutdown",
        }
    }
}

/// One registered broker (JSON: `{"id", "address", "rack", "state"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerDescription {
    /// Node id.
    pub id: i32,
    /// Client address (host:port).
    pub address: String,
    /// Rack; `null` when none.
    pub rack: Option<String>,
    /// Registration state.
    pub state: BrokerState,
    /// The broker epoch of its current registration.
    #[serde(skip)]
    pub epoch: i64,
    /// The broker process's random id.
    #[serde(skip)]
    pub incarnation_id: String,
    /// Partitions it is a replica of (moves in flight included; 0 from
    /// `metadata`, which does not count them).
    #[serde(skip)]
    pub replicas: u32,
    /// Partitions it leads (as `replicas`).
    #[serde(skip)]
    pub leaders: u32,
    /// Bytes of its replicas' logs as it last reported them.
    #[serde(skip)]
    pub bytes: Option<u64>,
    /// Its replicas are being moved away (`strom brokers decommission`).
    #[serde(skip)]
    pub decommissioning: bool,
    /// Its data directory's file system as it last reported it: (bytes in
    /// use, size); `None` when unknown.
    #[serde(skip)]
    pub disk: Option<(u64, u64)>,
}

/// A topic and its partitions
/// (JSON: `{"name", "topic_id", "configs", "partitions"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub topic_id: TopicId,
    /// Topic-level configs that differ from the defaults.
    pub configs: BTreeMap<String, String>,
    /// Partitions, by index.
    pub partitions: Vec<PartitionDescription>,
    /// Written only by the brokers' coordinators (`__consumer_offsets`,
    /// `__transaction_state`); in JSON only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_internal: bool,
}

impl TopicDescription {
    /// The replication factor: the replica count of partition 0 (as kafka-topics).
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// One partition's replicas and leader
/// (JSON: `{"partition", "leader", "leader_epoch", "replicas", "isr", "elr"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionDescription {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id; `null` when the partition is offline.
    pub leader: Option<i32>,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Assigned replicas; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Eligible leader replicas (KIP-966): outside the ISR, but holding every
    /// record below the high watermark; empty unless the ISR is smaller than
    /// `min.insync.replicas`.
    pub elr: Vec<i32>,
    /// Bumped on every change of the partition.
    #[serde(skip)]
    pub partition_epoch: i32,
    /// Replicas on fenced brokers.
    #[serde(skip)]
    pub offline_replicas: Vec<i32>,
}

impl PartitionDescription {
    /// Fewer in-sync replicas than assigned ones.
    pub fn is_under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len()
    }

    /// No leader: the partition can be neither written nor read.
    pub fn is_unavailable(&self) -> bool {
        self.leader.is_none()
    }
}

/// A topic's name and id (JSON of `strom topics list`: `{"name", "topic_id"}`,
/// and `"is_internal": true` for an internal topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicListing {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub topic_id: TopicId,
    /// Written only by the brokers' coordinators (`__consumer_offsets`,
    /// `__transaction_state`); in JSON only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_internal: bool,
}

/// A node's view of the cluster, as answered by `MetadataService.Metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The cluster id.
    pub cluster_id: String,
    /// The active controller's id, when known.
    pub controller_id: Option<i32>,
    /// Registered brokers.
    pub brokers: Vec<BrokerDescription>,
    /// The requested (or all) topics that exist, by name.
    pub topics: Vec<TopicDescription>,
    /// Requested topics that could not be described (e.g. UNKNOWN_TOPIC_OR_PARTITION).
    pub topic_errors: BTreeMap<String, StromError>,
    /// The metadata offset the answer reflects.
    pub metadata_offset: i64,
}

/// A partition of a topic, by name (JSON: `{"topic", "partition"}`, the
/// entries of Kafka's election and reassignment files).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// The partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A partition's records deleted: its new low watermark (log start
/// offset). JSON: `{"topic", "partition", "low_watermark"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletedRecords {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The first offset still readable.
    pub low_watermark: i64,
}

/// Which replicas a leader election may pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElectionType {
    /// The first assigned replica, when alive and in the ISR.
    Preferred,
    /// Any alive replica, even outside the ISR (may lose data).
    Unclean,
}

impl fmt::Display for ElectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElectionType::Preferred => "PREFERRED",
            ElectionType::Unclean => "UNCLEAN",
        })
    }
}

/// The outcome of one partition's election
/// (JSON: `{"topic", "partition", "error", "leader"}`; `error` is the
/// ErrorCode name or `null`, `leader` is `null` when there is none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionResult {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// NONE (`null`), ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION.
    #[serde(with = "error_code_name")]
    pub error: Option<ErrorCode>,
    /// The server's explanation of `error`.
    #[serde(skip)]
    pub error_message: String,
    /// The leader after the election.
    pub leader: Option<i32>,
}

impl ElectionResult {
    /// The partition this result is for.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }

    /// A real failure: an error other than ELECTION_NOT_NEEDED.
    pub fn failed(&self) -> bool {
        !matches!(self.error, None | Some(ErrorCode::ElectionNotNeeded))
    }
}

/// Serializes an optional [`ErrorCode`] as its name (`"NOT_CONTROLLER"`) or `null`.
pub mod error_code_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use strom_proto::v1::ErrorCode;

    /// Writes the code's name, or `null` for `None`.
    pub fn serialize<S: Serializer>(code: &Option<ErrorCode>, s: S) -> Result<S::Ok, S::Error> {
        match code {
            Some(code) => s.serialize_str(code.as_str_name()),
            None => s.serialize_none(),
        }
    }

    /// Reads a code name or `null` (`"NONE"` reads as `None`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ErrorCode>, D::Error> {
        let Some(name) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        match ErrorCode::from_str_name(&name) {
            Some(ErrorCode::None) => Ok(None),
            Some(code) => Ok(Some(code)),
            None => Err(serde::de::Error::custom(format!(
                "unknown error code '{name}'"
            ))),
        }
    }
}

/// What configs belong to, as kafka-configs' `--entity-type` and
/// `--entity-name`/`--entity-default`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// One broker, by id.
    Broker(i32),
    /// The cluster-wide default of every broker.
    BrokerDefault,
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigResource::Topic(t) => write!(f, "topic {t}"),
            ConfigResource::Broker(id) => write!(f, "broker {id}"),
            ConfigResource::BrokerDefault => f.write_str("the cluster-wide broker default"),
        }
    }
}

/// Where a config's value in force comes from, highest precedence first;
/// serialized by Kafka's name (`"DYNAMIC_TOPIC_CONFIG"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopicConfig,
    /// Set live on this one broker.
    DynamicBrokerConfig,
    /// Set live as the cluster-wide broker default.
    DynamicDefaultBrokerConfig,
    /// Given to the broker at startup (config file, environment, `--set`).
    StaticBrokerConfig,
    /// Built-in default.
    DefaultConfig,
    /// A source this client does not know.
    Unknown,
}

impl ConfigSource {
    /// Kafka's name, e.g. `DYNAMIC_TOPIC_CONFIG`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConfigSource::DynamicTopicConfig => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBrokerConfig => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBrokerConfig => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBrokerConfig => "STATIC_BROKER_CONFIG",
            ConfigSource::DefaultConfig => "DEFAULT_CONFIG",
            ConfigSource::Unknown => "UNKNOWN",
        }
    }
}

/// One level that sets a config (Kafka's synonym).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The key at that level (a topic config's broker default has the
    /// broker setting's name, e.g. `log.segment.bytes`).
    pub name: String,
    /// The value; `None` for sensitive configs.
    pub value: Option<String>,
    /// The level.
    pub source: ConfigSource,
}

/// A config and its value in force
/// (JSON: `{"name", "value", "source", "read_only", "sensitive"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntry {
    /// Key (Kafka's name).
    pub name: String,
    /// Value in force; `null` for sensitive configs.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Cannot be changed live at this resource (a broker setting that needs
    /// a restart, or one only changeable cluster-wide).
    pub read_only: bool,
    /// A secret; its value is never returned.
    pub sensitive: bool,
    /// Every level that sets it, in precedence order, the one in force first.
    #[serde(skip)]
    pub synonyms: Vec<ConfigSynonym>,
}

/// One change of `incremental_alter_configs` (Kafka's `AlterConfigOp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Set `name` to `value` (`--add-config`).
    Set {
        /// Key.
        name: String,
        /// New value.
        value: String,
    },
    /// Remove `name` at this level, back to the next level's value
    /// (`--delete-config`).
    Delete {
        /// Key.
        name: String,
    },
    /// Add comma-separated items to a list config (e.g. `cleanup.policy`).
    Append {
        /// Key.
        name: String,
        /// Items to add.
        items: String,
    },
    /// Remove comma-separated items from a list config.
    Subtract {
        /// Key.
        name: String,
        /// Items to remove.
        items: String,
    },
}

impl AlterConfigOp {
    /// Sets `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp::Set {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Deletes `name` at this level.
    pub fn delete(name: impl Into<String>) -> Self {
        AlterConfigOp::Delete { name: name.into() }
    }
}
