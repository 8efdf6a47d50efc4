//! Metadata: brokers (at their Kafka listeners), topics, partitions,
//! leaders, ISR and leader epochs, from this broker's replayed image.
//! Topics are never created by a Metadata request (auto-creation is off in
//! Strom): an unknown one is UNKNOWN_TOPIC_OR_PARTITION.
//!
//! Admin requests go to the node named controller; Strom names the
//! answering broker itself (it forwards them to the quorum), as a KRaft
//! broker names a random broker.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use strom_broker::ReplicaManager;
use strom_metadata::ClusterImage;
use strom_metadata::image::TopicImage;
use strom_proto::v1::ErrorCode;
use uuid::Uuid;

use super::{broker_id, kafka_endpoint, text};
use crate::errors::kafka_code;

/// Topics whose `is_internal` is set.
const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// Answers one Metadata request.
pub fn answer(rm: &ReplicaManager, req: MetadataRequest, version: i16) -> MetadataResponse {
    let node_id = rm.node_id();
    rm.cache().with_image(|image| {
        let brokers = image
            .brokers()
            .filter(|b| !b.fenced)
            .filter_map(|b| {
                let (host, port) = kafka_endpoint(image, b.id)?;
                Some(
                    MetadataResponseBroker::default()
                        .with_node_id(broker_id(b.id))
                        .with_host(host)
                        .with_port(port)
                        .with_rack(b.rack.clone().map(text)),
                )
            })
            .collect();
        let topics = match req.topics {
            // Null (v1+): every topic.
            None => image.topics().map(|t| topic(image, t, version)).collect(),
            Some(wanted) => wanted
                .iter()
                .map(|w| {
                    let found = match &w.name {
                        Some(name) => image.topic_by_name(name),
                        None => image.topic_by_id(&w.topic_id),
                    };
                    match found {
                        Some(t) => topic(image, t, version),
                        None => missing(w.name.clone(), w.topic_id),
                    }
                })
                .collect(),
        };
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_cluster_id(image.cluster_id().map(text))
            .with_controller_id(broker_id(node_id))
            .with_topics(topics)
    })
}

fn missing(name: Option<TopicName>, id: Uuid) -> MetadataResponseTopic {
    let code = if name.is_some() {
        ErrorCode::UnknownTopicOrPartition
    } else {
        ErrorCode::UnknownTopicId
    };
    MetadataResponseTopic::default()
        .with_error_code(kafka_code(code))
        .with_name(name)
        .with_topic_id(id)
}

fn topic(image: &ClusterImage, t: &TopicImage, version: i16) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .map(|(&index, p)| {
            let error = if p.leader < 0 {
                ErrorCode::LeaderNotAvailable
            } else {
                ErrorCode::None
            };
            let mut out = MetadataResponsePartition::default()
                .with_error_code(kafka_code(error))
                .with_partition_index(index)
                .with_leader_id(broker_id(p.leader))
                .with_replica_nodes(p.replicas.iter().copied().map(broker_id).collect())
                .with_isr_nodes(p.isr.iter().copied().map(broker_id).collect());
            if version >= 7 {
                out = out.with_leader_epoch(p.leader_epoch);
            }
            if version >= 5 {
                out = out.with_offline_replicas(
                    image
                        .offline_replicas_of(p)
                        .into_iter()
                        .map(broker_id)
                        .collect(),
                );
            }
            out
        })
        .collect();
    let mut out = MetadataResponseTopic::default()
        .with_name(Some(TopicName(text(t.name.clone()))))
        .with_is_internal(INTERNAL_TOPICS.contains(&t.name.as_str()))
        .with_partitions(partitions);
    if version >= 10 {
        out = out.with_topic_id(t.id);
    }
    out
}
