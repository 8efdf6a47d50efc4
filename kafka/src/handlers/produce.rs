//! Produce: the batches pass through as bytes to the replica manager's one
//! write path ([`ReplicaManager::append`]), which holds every rule
//! (validation, idempotence and transactions, min ISR, the acks=all wait).
//! With acks=0 nothing is answered, as Kafka does.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use strom_broker::ReplicaManager;
use strom_broker::grpc::leader_hint_for;
use strom_broker::replica::{
    AppendOrigin, AppendRequest, Appended, PartitionAppend, PartitionResult,
};

use super::{Pending, broker_id, kafka_endpoint, text};
use crate::errors::kafka_code;
use crate::response::Response;

/// Appends `req` (in the order requests arrive) and returns the wait for
/// its answer.
pub async fn start(rm: &Arc<ReplicaManager>, req: ProduceRequest, version: i16) -> Pending {
    let mut topics = Vec::with_capacity(req.topic_data.len());
    let mut partitions = Vec::new();
    for t in req.topic_data {
        let name = t.name.0.to_string();
        topics.push((t.name, t.partition_data.len()));
        partitions.extend(t.partition_data.into_iter().map(|p| PartitionAppend {
            topic: name.clone(),
            partition: p.index,
            records: p.records.unwrap_or_default(),
        }));
    }
    let acks = req.acks;
    let appending = rm
        .append(AppendRequest {
            acks: i32::from(acks),
            timeout_ms: req.timeout_ms,
            transactional_id: req.transactional_id.map(|t| t.0.to_string()),
            origin: AppendOrigin::Client,
            partitions,
        })
        .await;
    if acks == 0 {
        return Box::pin(std::future::ready(None));
    }
    let rm = rm.clone();
    Box::pin(async move {
        let results = appending.wait().await;
        Some(Response::Produce(response(&rm, topics, results, version)))
    })
}

fn response(
    rm: &ReplicaManager,
    topics: Vec<(TopicName, usize)>,
    results: Vec<PartitionResult<Appended>>,
    version: i16,
) -> ProduceResponse {
    let mut results = results.into_iter();
    // Leaders named in errors, with their Kafka endpoints (v10+).
    let mut leaders = BTreeMap::new();
    let responses = topics
        .into_iter()
        .map(|(name, count)| {
            let partitions = results
                .by_ref()
                .take(count)
                .map(|r| partition(rm, r, version, &mut leaders))
                .collect();
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partitions)
        })
        .collect();
    let mut out = ProduceResponse::default().with_responses(responses);
    if version >= 10 {
        out = out.with_node_endpoints(node_endpoints(rm, leaders.into_keys()));
    }
    out
}

fn partition(
    rm: &ReplicaManager,
    r: PartitionResult<Appended>,
    version: i16,
    leaders: &mut BTreeMap<i32, ()>,
) -> PartitionProduceResponse {
    let out = PartitionProduceResponse::default().with_index(r.partition);
    match r.result {
        Ok(a) => out
            .with_base_offset(a.base_offset)
            .with_log_append_time_ms(a.log_append_time.unwrap_or(-1))
            .with_log_start_offset(a.log_start_offset),
        Err(e) => {
            let mut out = out
                .with_error_code(kafka_code(e.code))
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            if version >= 8 {
                out = out.with_error_message(Some(text(e.message)));
            }
            if version >= 10
                && let Some(hint) = leader_hint_for(rm, &r.topic, r.partition, e.code)
                && hint.leader_id >= 0
            {
                leaders.insert(hint.leader_id, ());
                out = out.with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(broker_id(hint.leader_id))
                        .with_leader_epoch(hint.leader_epoch),
                );
            }
            out
        }
    }
}

/// The Kafka endpoints of `ids` (those that have one).
pub(crate) fn node_endpoints(
    rm: &ReplicaManager,
    ids: impl Iterator<Item = i32>,
) -> Vec<NodeEndpoint> {
    rm.cache().with_image(|image| {
        ids.filter_map(|id| {
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
