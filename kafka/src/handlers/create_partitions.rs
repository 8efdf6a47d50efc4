//! CreatePartitions: forwarded to the controller quorum's
//! CreatePartitions (the call `strom topics alter --partitions` makes).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, TopicName};
use strom_proto::v1::{
    CreatePartitionsRequest as ProtoRequest, CreatePartitionsTopic, ReplicaAssignment,
};

use super::{Broker, text};
use crate::errors::{kafka_code, kafka_code_i32};

/// Answers one CreatePartitions request.
pub async fn answer(broker: &Broker, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let names: Vec<TopicName> = req.topics.iter().map(|t| t.name.clone()).collect();
    let proto = ProtoRequest {
        topics: req
            .topics
            .into_iter()
            .map(|t| CreatePartitionsTopic {
                name: t.name.0.to_string(),
                count: t.count,
                // The new partitions' replicas, in partition order.
                assignments: t
                    .assignments
                    .unwrap_or_default()
                    .into_iter()
                    .zip(0..)
                    .map(|(a, i)| ReplicaAssignment {
                        partition: i,
                        replicas: a.broker_ids.into_iter().map(|b| b.0).collect(),
                    })
                    .collect(),
            })
            .collect(),
        validate_only: req.validate_only,
    };
    let answer = broker
        .controller
        .call(broker.controller_timeout, async |mut c| {
            c.create_partitions(proto.clone()).await
        })
        .await;
    let results = match answer {
        Ok(resp) => resp
            .topics
            .into_iter()
            .map(|r| {
                let out = CreatePartitionsTopicResult::default()
                    .with_name(TopicName(text(r.name)))
                    .with_error_code(kafka_code_i32(r.error_code));
                if r.error_message.is_empty() {
                    out
                } else {
                    out.with_error_message(Some(text(r.error_message)))
                }
            })
            .collect(),
        Err(e) => names
            .into_iter()
            .map(|name| {
                CreatePartitionsTopicResult::default()
                    .with_name(name)
                    .with_error_code(kafka_code(e.code))
                    .with_error_message(Some(text(e.message.clone())))
            })
            .collect(),
    };
    CreatePartitionsResponse::default().with_results(results)
}
