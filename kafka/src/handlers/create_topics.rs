//! CreateTopics: forwarded to the controller quorum's CreateTopics (the
//! call `strom topics create` makes), which validates and decides.

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use strom_proto::v1::{CreatableTopic, CreateTopicsRequest as ProtoRequest, ReplicaAssignment};
use uuid::Uuid;

use super::{Broker, text};
use crate::errors::{kafka_code, kafka_code_i32};

/// Answers one CreateTopics request.
pub async fn answer(
    broker: &Broker,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let names: Vec<TopicName> = req.topics.iter().map(|t| t.name.clone()).collect();
    let proto = ProtoRequest {
        topics: req
            .topics
            .into_iter()
            .map(|t| CreatableTopic {
                name: t.name.0.to_string(),
                num_partitions: t.num_partitions,
                replication_factor: i32::from(t.replication_factor),
                assignments: t
                    .assignments
                    .into_iter()
                    .map(|a| ReplicaAssignment {
                        partition: a.partition_index,
                        replicas: a.broker_ids.into_iter().map(|b| b.0).collect(),
                    })
                    .collect(),
                // A null value asks for the default: the key is left out.
                configs: t
                    .configs
                    .into_iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value?.to_string())))
                    .collect(),
            })
            .collect(),
        validate_only: req.validate_only,
    };
    let answer = broker
        .controller
        .call(broker.controller_timeout, async |mut c| {
            c.create_topics(proto.clone()).await
        })
        .await;
    let topics = match answer {
        Ok(resp) => resp
            .topics
            .into_iter()
            .map(|r| {
                let mut out = CreatableTopicResult::default()
                    .with_name(TopicName(text(r.name)))
                    .with_error_code(kafka_code_i32(r.error_code));
                if !r.error_message.is_empty() {
                    out = out.with_error_message(Some(text(r.error_message)));
                }
                if version >= 5 && r.error_code == 0 {
                    out = out
                        .with_num_partitions(r.num_partitions)
                        .with_replication_factor(i16::try_from(r.replication_factor).unwrap_or(-1));
                }
                if version >= 7 {
                    out = out.with_topic_id(Uuid::from_slice(&r.topic_id).unwrap_or(Uuid::nil()));
                }
                out
            })
            .collect(),
        Err(e) => names
            .into_iter()
            .map(|name| {
                CreatableTopicResult::default()
                    .with_name(name)
                    .with_error_code(kafka_code(e.code))
                    .with_error_message(Some(text(e.message.clone())))
            })
            .collect(),
    };
    CreateTopicsResponse::default().with_topics(topics)
}
