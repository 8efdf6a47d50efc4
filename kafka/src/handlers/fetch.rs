//! Fetch (consumers): the replica manager's one read path
//! ([`ReplicaManager::fetch`]) with the request's isolation level, max
//! wait and min bytes (the same delayed fetch as gRPC), answering the
//! aborted transactions a read_committed consumer needs.
//!
//! Strom creates no incremental fetch sessions (KIP-227): every answer
//! carries session id 0, which tells a client to keep sending full
//! requests; a request naming a session is FETCH_SESSION_ID_NOT_FOUND.
//! Only consumers fetch here (replicas fetch over gRPC): a request with a
//! replica id is INVALID_REQUEST.

use std::collections::BTreeSet;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use strom_broker::ReplicaManager;
use strom_broker::grpc::leader_hint_for;
use strom_broker::replica::{FetchParams, FetchPartition, FetchedPartition, Isolation};
use strom_proto::v1::ErrorCode;
use uuid::Uuid;

use super::{broker_id, kafka_endpoint, text};
use crate::errors::{FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, kafka_code};

/// One requested topic: its name and id as answered, and per partition
/// either a fetch (by index into the core's answer) or an error code.
struct Topic {
    name: TopicName,
    id: Uuid,
    partitions: Vec<(i32, Result<usize, i16>)>,
}

/// Answers one Fetch request.
pub async fn answer(rm: &ReplicaManager, req: FetchRequest, version: i16) -> FetchResponse {
    let by_id = version >= 13;
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let refused = if req.session_id != 0 {
        Some(FETCH_SESSION_ID_NOT_FOUND)
    } else if req.session_epoch != 0 && req.session_epoch != -1 {
        Some(INVALID_FETCH_SESSION_EPOCH)
    } else if replica_id >= 0 || !(0..=1).contains(&req.isolation_level) {
        Some(kafka_code(ErrorCode::InvalidRequest))
    } else {
        None
    };
    let isolation = if req.isolation_level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    // Resolve the topics (by id from v13) and lay the answer out.
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut partitions = Vec::new();
    rm.cache().with_image(|image| {
        for t in &req.topics {
            let (name, id) = if by_id {
                let found = image.topic_by_id(&t.topic_id).map(|x| x.name.clone());
                (found, t.topic_id)
            } else {
                (Some(t.topic.0.to_string()), Uuid::nil())
            };
            let mut topic = Topic {
                name: t.topic.clone(),
                id,
                partitions: Vec::with_capacity(t.partitions.len()),
            };
            for p in &t.partitions {
                let slot = match (&name, refused) {
                    (_, Some(code)) => Err(code),
                    (None, None) => Err(kafka_code(ErrorCode::UnknownTopicId)),
                    (Some(name), None) => {
                        partitions.push(FetchPartition {
                            topic: name.clone(),
                            topic_id: by_id.then_some(id),
                            partition: p.partition,
                            fetch_offset: p.fetch_offset,
                            current_leader_epoch: p.current_leader_epoch,
                            last_fetched_epoch: p.last_fetched_epoch,
                            durable_offset: -1,
                            max_bytes: p.partition_max_bytes,
                        });
                        Ok(partitions.len() - 1)
                    }
                };
                topic.partitions.push((p.partition, slot));
            }
            topics.push(topic);
        }
    });
    let mut top_error = refused.unwrap_or(0);
    let fetched: Vec<FetchedPartition> = if partitions.is_empty() {
        Vec::new()
    } else {
        match rm
            .fetch(FetchParams {
                replica_id: -1,
                max_wait_ms: req.max_wait_ms,
                min_bytes: req.min_bytes,
                max_bytes: req.max_bytes,
                isolation,
                partitions,
            })
            .await
        {
            Ok(f) => f,
            Err(e) => {
                top_error = kafka_code(e.code);
                Vec::new()
            }
        }
    };
    let mut leaders = BTreeSet::new();
    let responses = topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|(index, slot)| {
                    let found = slot.ok().and_then(|i| fetched.get(i));
                    match found {
                        Some(f) => partition(rm, f, isolation, version, &mut leaders),
                        None => PartitionData::default()
                            .with_partition_index(index)
                            .with_error_code(match slot {
                                Err(code) => code,
                                Ok(_) => top_error,
                            })
                            .with_high_watermark(-1),
                    }
                })
                .collect();
            let out = FetchableTopicResponse::default().with_partitions(partitions);
            if by_id {
                out.with_topic_id(t.id)
            } else {
                out.with_topic(t.name)
            }
        })
        .collect();
    let mut out = FetchResponse::default().with_responses(responses);
    if version >= 7 {
        out = out.with_error_code(top_error);
    }
    if version >= 16 {
        out = out.with_node_endpoints(node_endpoints(rm, leaders));
    }
    out
}

fn partition(
    rm: &ReplicaManager,
    f: &FetchedPartition,
    isolation: Isolation,
    version: i16,
    leaders: &mut BTreeSet<i32>,
) -> PartitionData {
    let mut out = PartitionData::default()
        .with_partition_index(f.partition)
        .with_high_watermark(f.high_watermark)
        .with_last_stable_offset(f.last_stable_offset)
        .with_log_start_offset(f.log_start_offset)
        .with_records(Some(f.records.clone()))
        .with_aborted_transactions(match isolation {
            Isolation::ReadCommitted => Some(
                f.aborted_transactions
                    .iter()
                    .map(|a| {
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(a.producer_id))
                            .with_first_offset(a.first_offset)
                    })
                    .collect(),
            ),
            Isolation::ReadUncommitted => None,
        });
    if let Some(e) = &f.error {
        out = out.with_error_code(kafka_code(e.code));
        if version >= 12
            && let Some(hint) = leader_hint_for(rm, &f.topic, f.partition, e.code)
            && hint.leader_id >= 0
        {
            leaders.insert(hint.leader_id);
            out = out.with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(broker_id(hint.leader_id))
                    .with_leader_epoch(hint.leader_epoch),
            );
        }
    }
    out
}

fn node_endpoints(rm: &ReplicaManager, ids: BTreeSet<i32>) -> Vec<NodeEndpoint> {
    rm.cache().with_image(|image| {
        ids.into_iter()
            .filter_map(|id| {
                let (host, port) = kafka_endpoint(image, id)?;
                let rack = image.broker(id).and_then(|b| b.rack.clone()).map(text);
                Some(
                    NodeEndpoint::default()
                        .with_node_id(broker_id(id))
                        .with_host(host)
                        .with_port(port)
                        .with_rack(rack),
                )
            })
            .collect()
    })
}
