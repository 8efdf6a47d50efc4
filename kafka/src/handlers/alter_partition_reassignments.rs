//! AlterPartitionReassignments: forwarded to the controller quorum's
//! AlterPartitionReassignments (the call `strom reassign execute` makes),
//! which checks the request as a whole. Null replicas cancels a
//! partition's reassignment. Only v0 is served: v1's
//! `allow_replication_factor_change = false` would need a rule the core
//! does not have.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, TopicName,
};
use strom_proto::v1::{
    AlterPartitionReassignmentsRequest as ProtoRequest, ReassignablePartition, TargetReplicas,
};

use super::{Broker, text};
use crate::errors::{kafka_code, kafka_code_i32};

/// Answers one AlterPartitionReassignments request.
pub async fn answer(
    broker: &Broker,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let proto = ProtoRequest {
        partitions: req
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| ReassignablePartition {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    replicas: p.replicas.as_ref().map(|r| TargetReplicas {
                        ids: r.iter().map(|b| b.0).collect(),
                    }),
                })
            })
            .collect(),
    };
    let answer = broker
        .controller
        .call(broker.controller_timeout, async |mut c| {
            c.alter_partition_reassignments(proto.clone()).await
        })
        .await;
    let resp = match answer {
        Ok(resp) => resp,
        // Refused as a whole: nothing changed.
        Err(e) => {
            return AlterPartitionReassignmentsResponse::default()
                .with_error_code(kafka_code(e.code))
                .with_error_message(Some(text(e.message)));
        }
    };
    // topic → its partitions' results, in topic name order.
    let mut by_topic: BTreeMap<String, Vec<ReassignablePartitionResponse>> = BTreeMap::new();
    for r in resp.results {
        by_topic.entry(r.topic).or_default().push(
            ReassignablePartitionResponse::default()
                .with_partition_index(r.partition)
                .with_error_code(kafka_code_i32(r.error_code))
                .with_error_message((!r.error_message.is_empty()).then(|| text(r.error_message))),
        );
    }
    let responses = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            ReassignableTopicResponse::default()
                .with_name(TopicName(text(name)))
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default().with_responses(responses)
}
