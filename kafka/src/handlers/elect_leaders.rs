//! ElectLeaders: forwarded to the controller quorum's ElectLeaders (the
//! call `strom leader-election` makes). Kafka's election types are
//! Strom's: 0 preferred, 1 unclean; v0 is always preferred. Null
//! partitions means every partition, as an empty list does in Strom.

use std::collections::BTreeMap;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use strom_proto::v1::{ElectLeadersRequest as ProtoRequest, ElectionType, TopicPartition};

use super::{Broker, text};
use crate::errors::{kafka_code, kafka_code_i32};

/// Answers one ElectLeaders request.
pub async fn answer(
    broker: &Broker,
    req: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let election_type = if version == 0 {
        ElectionType::Preferred as i32
    } else {
        i32::from(req.election_type)
    };
    let asked: Vec<(TopicName, i32)> = req
        .topic_partitions
        .iter()
        .flatten()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
        .collect();
    // An empty list (not null) asks for nothing.
    if req.topic_partitions.is_some() && asked.is_empty() {
        return ElectLeadersResponse::default();
    }
    let proto = ProtoRequest {
        election_type,
        partitions: asked
            .iter()
            .map(|(t, p)| TopicPartition {
                topic: t.to_string(),
                partition: *p,
            })
            .collect(),
    };
    let answer = broker
        .controller
        .call(broker.controller_timeout, async |mut c| {
            c.elect_leaders(proto.clone()).await
        })
        .await;
    // topic → its partitions' results, in topic name order.
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    match answer {
        Ok(resp) => {
            for r in resp.results {
                let out = PartitionResult::default()
                    .with_partition_id(r.partition)
                    .with_error_code(kafka_code_i32(r.error_code))
                    .with_error_message(
                        (!r.error_message.is_empty()).then(|| text(r.error_message)),
                    );
                by_topic.entry(r.topic).or_default().push(out);
            }
        }
        Err(e) if asked.is_empty() => {
            // Every partition, unknown: the whole request failed (v1+
            // carries that; v0 answers no partition).
            let out = ElectLeadersResponse::default();
            return if version >= 1 {
                out.with_error_code(kafka_code(e.code))
            } else {
                out
            };
        }
        Err(e) => {
            for (t, p) in &asked {
                by_topic.entry(t.to_string()).or_default().push(
                    PartitionResult::default()
                        .with_partition_id(*p)
                        .with_error_code(kafka_code(e.code))
                        .with_error_message(Some(text(e.message.clone()))),
                );
            }
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                ReplicaElectionResult::default()
                    .with_topic(TopicName(text(topic)))
                    .with_partition_result(partitions)
            })
            .collect(),
    )
}
