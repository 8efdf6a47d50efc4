//! Conversions between `strom-metadata` domain types and `strom.v1`
//! messages — the only place they are written.

use strom_metadata::configs::{AlterConfig, AlterOp, ConfigEntry, ConfigSource, Resource};
use strom_metadata::image::{BrokerRegistration, ClusterImage, PartitionState, TopicImage};
use strom_metadata::{ErrorKind, MetadataError};

use crate::StromError;
use crate::v1;
use crate::v1::{
    BrokerDescription, BrokerState, ErrorCode, MetadataResponse, PartitionMetadata, TopicMetadata,
};

impl From<ErrorKind> for ErrorCode {
    fn from(kind: ErrorKind) -> Self {
        ErrorCode::from_str_name(kind.code_name()).unwrap_or(ErrorCode::UnknownServerError)
    }
}

impl From<&MetadataError> for StromError {
    fn from(e: &MetadataError) -> Self {
        StromError::new(ErrorCode::from(e.code), e.message.clone())
    }
}

impl From<MetadataError> for StromError {
    fn from(e: MetadataError) -> Self {
        StromError::from(&e)
    }
}

/// `host:port` of a broker's first endpoint.
pub fn broker_address(b: &BrokerRegistration) -> String {
    b.endpoints
        .first()
        .map(|e| format!("{}:{}", e.host, e.port))
        .unwrap_or_default()
}

impl From<&BrokerRegistration> for BrokerDescription {
    fn from(b: &BrokerRegistration) -> Self {
        let state = if b.fenced {
            BrokerState::Fenced
        } else if b.in_controlled_shutdown {
            BrokerState::ControlledShutdown
        } else {
            BrokerState::Unfenced
        };
        BrokerDescription {
            id: b.id,
            address: broker_address(b),
            rack: b.rack.clone().unwrap_or_default(),
            state: state as i32,
            epoch: b.epoch,
            incarnation_id: b.incarnation_id.clone(),
            bytes: -1,
            ..Default::default()
        }
    }
}

/// A partition as clients see it; `offline_replicas` from the image.
pub fn partition_metadata(
    image: &ClusterImage,
    partition: i32,
    p: &PartitionState,
) -> PartitionMetadata {
    PartitionMetadata {
        partition,
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        replicas: p.replicas.clone(),
        isr: p.isr.clone(),
        offline_replicas: image.offline_replicas_of(p),
        elr: p.elr.clone(),
    }
}

/// A topic as clients see it.
pub fn topic_metadata(image: &ClusterImage, t: &TopicImage) -> TopicMetadata {
    TopicMetadata {
        name: t.name.clone(),
        topic_id: t.id.as_bytes().to_vec(),
        error_code: ErrorCode::None as i32,
        configs: t
            .configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        partitions: t
            .partitions
            .iter()
            .map(|(i, p)| partition_metadata(image, *i, p))
            .collect(),
        is_internal: strom_metadata::is_internal_topic(&t.name),
    }
}

/// Answers a metadata request from an image: every topic when `topics` is
/// empty, else the named ones (UNKNOWN_TOPIC_OR_PARTITION for a missing one).
pub fn metadata_response(
    image: &ClusterImage,
    topics: &[String],
    controller_id: i32,
) -> MetadataResponse {
    let topics = if topics.is_empty() {
        image.topics().map(|t| topic_metadata(image, t)).collect()
    } else {
        topics
            .iter()
            .map(|name| match image.topic_by_name(name) {
                Some(t) => topic_metadata(image, t),
                None => TopicMetadata {
                    name: name.clone(),
                    error_code: ErrorCode::UnknownTopicOrPartition as i32,
                    ..Default::default()
                },
            })
            .collect()
    };
    MetadataResponse {
        cluster_id: image.cluster_id().unwrap_or_default().to_owned(),
        controller_id,
        brokers: image.brokers().map(BrokerDescription::from).collect(),
        topics,
        metadata_offset: image.offset(),
    }
}

/// A config owner from the wire: a topic by name, a broker by id, or (an
/// empty broker name) the cluster-wide broker default.
pub fn config_resource(r: &v1::ConfigResource) -> Result<Resource, MetadataError> {
    match v1::ConfigResourceType::try_from(r.r#type) {
        Ok(v1::ConfigResourceType::Topic) => Ok(Resource::Topic(r.name.clone())),
        Ok(v1::ConfigResourceType::Broker) if r.name.is_empty() => Ok(Resource::BrokerDefault),
        Ok(v1::ConfigResourceType::Broker) => match r.name.trim().parse::<i32>() {
            Ok(id) if id >= 0 => Ok(Resource::Broker(id)),
            _ => Err(MetadataError::new(
                ErrorKind::InvalidRequest,
                format!("broker {:?} is not a broker id", r.name),
            )),
        },
        _ => Err(MetadataError::new(
            ErrorKind::InvalidRequest,
            format!("config resource type {} is not supported", r.r#type),
        )),
    }
}

impl From<&Resource> for v1::ConfigResource {
    fn from(r: &Resource) -> Self {
        let (ty, name) = match r {
            Resource::Topic(t) => (v1::ConfigResourceType::Topic, t.clone()),
            Resource::Broker(id) => (v1::ConfigResourceType::Broker, id.to_string()),
            Resource::BrokerDefault => (v1::ConfigResourceType::Broker, String::new()),
        };
        v1::ConfigResource {
            r#type: ty as i32,
            name,
        }
    }
}

impl From<ConfigSource> for v1::ConfigSource {
    fn from(s: ConfigSource) -> Self {
        match s {
            ConfigSource::DynamicTopic => v1::ConfigSource::DynamicTopicConfig,
            ConfigSource::DynamicBroker => v1::ConfigSource::DynamicBrokerConfig,
            ConfigSource::DynamicDefaultBroker => v1::ConfigSource::DynamicDefaultBrokerConfig,
            ConfigSource::StaticBroker => v1::ConfigSource::StaticBrokerConfig,
            ConfigSource::Default => v1::ConfigSource::DefaultConfig,
        }
    }
}

impl From<&ConfigEntry> for v1::ConfigEntry {
    fn from(e: &ConfigEntry) -> Self {
        v1::ConfigEntry {
            name: e.name.clone(),
            value: e.value.clone(),
            source: v1::ConfigSource::from(e.source) as i32,
            read_only: e.read_only,
            sensitive: e.sensitive,
            synonyms: e
                .synonyms
                .iter()
                .map(|s| v1::ConfigSynonym {
                    name: s.name.clone(),
                    value: s.value.clone(),
                    source: v1::ConfigSource::from(s.source) as i32,
                })
                .collect(),
        }
    }
}

/// One change of an `IncrementalAlterConfigs` resource from the wire.
pub fn alter_config(c: &v1::AlterableConfig) -> Result<AlterConfig, MetadataError> {
    let op = match v1::AlterConfigOpType::try_from(c.op) {
        Ok(v1::AlterConfigOpType::Set) => AlterOp::Set,
        Ok(v1::AlterConfigOpType::Delete) => AlterOp::Delete,
        Ok(v1::AlterConfigOpType::Append) => AlterOp::Append,
        Ok(v1::AlterConfigOpType::Subtract) => AlterOp::Subtract,
        Err(_) => {
            return Err(MetadataError::new(
                ErrorKind::InvalidRequest,
                format!("config {} has an unknown operation {}", c.name, c.op),
            ));
        }
    };
    Ok(AlterConfig {
        name: c.name.clone(),
        op,
        value: c.value.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_resources_round_trip() {
        for r in [
            Resource::Topic("t".into()),
            Resource::Broker(3),
            Resource::BrokerDefault,
        ] {
            assert_eq!(config_resource(&v1::ConfigResource::from(&r)), Ok(r));
        }
        for bad in [
            v1::ConfigResource {
                r#type: v1::ConfigResourceType::Broker as i32,
                name: "b1".into(),
            },
            v1::ConfigResource {
                r#type: v1::ConfigResourceType::Unspecified as i32,
                name: "t".into(),
            },
        ] {
            assert_eq!(
                config_resource(&bad).unwrap_err().code,
                ErrorKind::InvalidRequest
            );
        }
    }

    #[test]
    fn every_error_kind_has_a_wire_code() {
        use ErrorKind as K;
        let kinds = [
            K::InvalidTopicException,
            K::TopicAlreadyExists,
            K::UnknownTopicOrPartition,
            K::UnknownTopicId,
            K::InvalidPartitions,
            K::InvalidReplicationFactor,
            K::InvalidReplicaAssignment,
            K::InvalidConfig,
            K::InvalidRequest,
            K::StaleBrokerEpoch,
            K::BrokerIdNotRegistered,
            K::DuplicateBrokerRegistration,
            K::InvalidUpdateVersion,
            K::FencedLeaderEpoch,
            K::IneligibleReplica,
            K::NotLeaderOrFollower,
            K::PreferredLeaderNotAvailable,
            K::EligibleLeadersNotAvailable,
            K::ElectionNotNeeded,
            K::CorruptMessage,
            K::ReassignmentInProgress,
            K::NoReassignmentInProgress,
        ];
        for kind in kinds {
            assert_ne!(
                ErrorCode::from(kind),
                ErrorCode::UnknownServerError,
                "{kind:?}"
            );
        }
    }
}
