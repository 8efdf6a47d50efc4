//! ListPartitionReassignments: forwarded to the controller quorum's
//! ListPartitionReassignments (the call `strom reassign verify` makes).
//! Null topics means every reassignment in progress.

use std::collections::BTreeMap;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use strom_proto::v1::{ListPartitionReassignmentsRequest as ProtoRequest, TopicPartition};

use super::{Broker, broker_id, text};
use crate::errors::kafka_code;

/// Answers one ListPartitionReassignments request.
pub async fn answer(
    broker: &Broker,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let partitions: Vec<TopicPartition> = req
        .topics
        .iter()
        .flatten()
        .flat_map(|t| {
            t.partition_indexes.iter().map(|p| TopicPartition {
                topic: t.name.to_string(),
                partition: *p,
            })
        })
        .collect();
    if req.topics.is_some() && partitions.is_empty() {
        return ListPartitionReassignmentsResponse::default();
    }
    let proto = ProtoRequest { partitions };
    let answer = broker
        .controller
        .call(broker.controller_timeout, async |mut c| {
            c.list_partition_reassignments(proto.clone()).await
        })
        .await;
    let resp = match answer {
        Ok(resp) => resp,
        Err(e) => {
            return ListPartitionReassignmentsResponse::default()
                .with_error_code(kafka_code(e.code))
                .with_error_message(Some(text(e.message)));
        }
    };
    let ids = |v: Vec<i32>| v.into_iter().map(broker_id).collect::<Vec<_>>();
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for r in resp.reassignments {
        by_topic.entry(r.topic).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(r.partition)
                .with_replicas(ids(r.replicas))
                .with_adding_replicas(ids(r.adding_replicas))
                .with_removing_replicas(ids(r.removing_replicas)),
        );
    }
    ListPartitionReassignmentsResponse::default().with_topics(
        by_topic
            .into_iter()
            .map(|(name, partitions)| {
                OngoingTopicReassignment::default()
                    .with_name(TopicName(text(name)))
                    .with_partitions(partitions)
            })
            .collect(),
    )
}
