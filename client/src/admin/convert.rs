//! Conversions between the protobuf messages and the admin domain types,
//! all in one place.

use strom_proto::v1 as pb;

use super::types::{
    AlterConfigOp, BrokerDescription, BrokerState, ClusterDescription, ConfigEntry, ConfigResource,
    ConfigSource, ConfigSynonym, ControllerQuorum, CreateTopicResult, DeleteTopicResult,
    ElectionResult, ElectionType, Metadata, NewTopic, PartitionDescription, TopicDescription,
    TopicId, TopicPartition, VoterDescription,
};
use crate::error::{error_code, item_error};

/// `-1` (and any negative id) means "none" on the wire.
fn id(value: i32) -> Option<i32> {
    (value >= 0).then_some(value)
}

impl From<NewTopic> for pb::CreatableTopic {
    fn from(t: NewTopic) -> Self {
        let assignments = t
            .replica_assignment
            .into_iter()
            .zip(0..)
            .map(|(replicas, partition)| pb::ReplicaAssignment {
                partition,
                replicas,
            })
            .collect();
        Self {
            name: t.name,
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments,
            configs: t.configs.into_iter().collect(),
        }
    }
}

impl From<pb::CreateTopicResult> for CreateTopicResult {
    fn from(r: pb::CreateTopicResult) -> Self {
        Self {
            error: item_error(r.error_code, &r.error_message),
            topic_id: TopicId::from_bytes(&r.topic_id),
            name: r.name,
            num_partitions: r.num_partitions,
            replication_factor: r.replication_factor,
        }
    }
}

impl From<pb::DeleteTopicResult> for DeleteTopicResult {
    fn from(r: pb::DeleteTopicResult) -> Self {
        Self {
            error: item_error(r.error_code, &r.error_message),
            topic_id: TopicId::from_bytes(&r.topic_id),
            name: r.name,
        }
    }
}

impl From<pb::BrokerState> for BrokerState {
    fn from(s: pb::BrokerState) -> Self {
        match s {
            pb::BrokerState::Unfenced => BrokerState::Unfenced,
            pb::BrokerState::ControlledShutdown => BrokerState::ControlledShutdown,
            // A state the server did not fill in is treated as "cannot lead".
            pb::BrokerState::Fenced | pb::BrokerState::Unspecified => BrokerState::Fenced,
        }
    }
}

impl From<pb::BrokerDescription> for BrokerDescription {
    fn from(b: pb::BrokerDescription) -> Self {
        Self {
            id: b.id,
            state: b.state().into(),
            address: b.address,
            rack: Some(b.rack).filter(|r| !r.is_empty()),
            epoch: b.epoch,
            incarnation_id: b.incarnation_id,
            replicas: u32::try_from(b.replicas).unwrap_or(0),
            leaders: u32::try_from(b.leaders).unwrap_or(0),
            bytes: u64::try_from(b.bytes).ok(),
            decommissioning: b.decommissioning,
            disk: match (
                u64::try_from(b.disk_used_bytes),
                u64::try_from(b.disk_total_bytes),
            ) {
                (Ok(used), Ok(total)) if total > 0 => Some((used, total)),
                _ => None,
            },
        }
    }
}

impl From<pb::VoterDescription> for VoterDescription {
    fn from(v: pb::VoterDescription) -> Self {
        Self {
            id: v.id,
            address: v.address,
            lag: (v.lag >= 0).then_some(v.lag),
        }
    }
}

impl From<pb::ControllerQuorum> for ControllerQuorum {
    fn from(q: pb::ControllerQuorum) -> Self {
        let mut voters: Vec<VoterDescription> = q.voters.into_iter().map(Into::into).collect();
        voters.sort_by_key(|v| v.id);
        Self {
            leader_id: id(q.leader_id),
            leader_epoch: q.leader_epoch,
            voters,
        }
    }
}

fn brokers(brokers: Vec<pb::BrokerDescription>) -> Vec<BrokerDescription> {
    let mut brokers: Vec<BrokerDescription> = brokers.into_iter().map(Into::into).collect();
    brokers.sort_by_key(|b| b.id);
    brokers
}

impl From<pb::DescribeClusterResponse> for ClusterDescription {
    fn from(r: pb::DescribeClusterResponse) -> Self {
        let controller = r.controller.map(Into::into).unwrap_or(ControllerQuorum {
            leader_id: None,
            leader_epoch: 0,
            voters: Vec::new(),
        });
        Self {
            cluster_id: r.cluster_id,
            controller,
            brokers: brokers(r.brokers),
            metadata_offset: r.metadata_offset,
        }
    }
}

impl From<pb::PartitionMetadata> for PartitionDescription {
    fn from(p: pb::PartitionMetadata) -> Self {
        Self {
            partition: p.partition,
            leader: id(p.leader),
            leader_epoch: p.leader_epoch,
            replicas: p.replicas,
            isr: p.isr,
            elr: p.elr,
            partition_epoch: p.partition_epoch,
            offline_replicas: p.offline_replicas,
        }
    }
}

impl From<pb::TopicMetadata> for TopicDescription {
    fn from(t: pb::TopicMetadata) -> Self {
        let mut partitions: Vec<PartitionDescription> =
            t.partitions.into_iter().map(Into::into).collect();
        partitions.sort_by_key(|p| p.partition);
        Self {
            topic_id: TopicId::from_bytes(&t.topic_id).unwrap_or(TopicId(uuid::Uuid::nil())),
            name: t.name,
            configs: t.configs.into_iter().collect(),
            partitions,
            is_internal: t.is_internal,
        }
    }
}

/// The message for a per-topic metadata error (the proto carries no text).
fn topic_error_message(name: &str, code: pb::ErrorCode) -> String {
    match code {
        pb::ErrorCode::UnknownTopicOrPartition => format!("topic '{name}' does not exist"),
        other => format!("cannot describe topic '{name}' ({})", other.as_str_name()),
    }
}

impl From<pb::MetadataResponse> for Metadata {
    fn from(r: pb::MetadataResponse) -> Self {
        let mut topics = Vec::new();
        let mut topic_errors = std::collections::BTreeMap::new();
        for topic in r.topics {
            match item_error(topic.error_code, "") {
                None => topics.push(TopicDescription::from(topic)),
                Some(mut e) => {
                    e.message = topic_error_message(&topic.name, e.code);
                    topic_errors.insert(topic.name, e);
                }
            }
        }
        topics.sort_by(|a: &TopicDescription, b| a.name.cmp(&b.name));
        Self {
            cluster_id: r.cluster_id,
            controller_id: id(r.controller_id),
            brokers: brokers(r.brokers),
            topics,
            topic_errors,
            metadata_offset: r.metadata_offset,
        }
    }
}

impl From<ElectionType> for pb::ElectionType {
    fn from(t: ElectionType) -> Self {
        match t {
            ElectionType::Preferred => pb::ElectionType::Preferred,
            ElectionType::Unclean => pb::ElectionType::Unclean,
        }
    }
}

impl From<TopicPartition> for pb::TopicPartition {
    fn from(tp: TopicPartition) -> Self {
        Self {
            topic: tp.topic,
            partition: tp.partition,
        }
    }
}

impl From<pb::ElectLeaderResult> for ElectionResult {
    fn from(r: pb::ElectLeaderResult) -> Self {
        let error = match error_code(r.error_code) {
            pb::ErrorCode::None => None,
            code => Some(code),
        };
        Self {
            topic: r.topic,
            partition: r.partition,
            error,
            error_message: r.error_message,
            leader: id(r.leader),
        }
    }
}

impl From<&ConfigResource> for pb::ConfigResource {
    fn from(r: &ConfigResource) -> Self {
        let (ty, name) = match r {
            ConfigResource::Topic(t) => (pb::ConfigResourceType::Topic, t.clone()),
            ConfigResource::Broker(id) => (pb::ConfigResourceType::Broker, id.to_string()),
            ConfigResource::BrokerDefault => (pb::ConfigResourceType::Broker, String::new()),
        };
        Self {
            r#type: ty as i32,
            name,
        }
    }
}

impl From<pb::ConfigSource> for ConfigSource {
    fn from(s: pb::ConfigSource) -> Self {
        match s {
            pb::ConfigSource::DynamicTopicConfig => ConfigSource::DynamicTopicConfig,
            pb::ConfigSource::DynamicBrokerConfig => ConfigSource::DynamicBrokerConfig,
            pb::ConfigSource::DynamicDefaultBrokerConfig => {
                ConfigSource::DynamicDefaultBrokerConfig
            }
            pb::ConfigSource::StaticBrokerConfig => ConfigSource::StaticBrokerConfig,
            pb::ConfigSource::DefaultConfig => ConfigSource::DefaultConfig,
            pb::ConfigSource::Unknown => ConfigSource::Unknown,
        }
    }
}

impl From<pb::ConfigEntry> for ConfigEntry {
    fn from(e: pb::ConfigEntry) -> Self {
        Self {
            source: e.source().into(),
            synonyms: e
                .synonyms
                .into_iter()
                .map(|s| ConfigSynonym {
                    source: s.source().into(),
                    name: s.name,
                    value: s.value,
                })
                .collect(),
            name: e.name,
            value: e.value,
            read_only: e.read_only,
            sensitive: e.sensitive,
        }
    }
}

impl From<AlterConfigOp> for pb::AlterableConfig {
    fn from(op: AlterConfigOp) -> Self {
        let (name, op, value) = match op {
            AlterConfigOp::Set { name, value } => (name, pb::AlterConfigOpType::Set, Some(value)),
            AlterConfigOp::Delete { name } => (name, pb::AlterConfigOpType::Delete, None),
            AlterConfigOp::Append { name, items } => {
                (name, pb::AlterConfigOpType::Append, Some(items))
            }
            AlterConfigOp::Subtract { name, items } => {
                (name, pb::AlterConfigOpType::Subtract, Some(items))
            }
        };
        Self {
            name,
            op: op as i32,
            value,
        }
    }
}
