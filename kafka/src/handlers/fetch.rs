//! Fetch (consumers): the replica manager's one read path
//! ([`ReplicaManager::fetch`]) with the request's isolation level, max
//! wait and min bytes (the same delayed fetch as gRPC), answering the
//! aborted transactions a read_committed consumer needs.
//!
//! Incremental fetch sessions (KIP-227, Fetch v7+) follow
//! [`crate::fetch_session`]: the session decides which partitions are
//! fetched (the request's, or every partition of the session) and which
//! of them the answer includes; the read itself is the same call.
//! Only consumers fetch here (replicas fetch over gRPC): a request with a
//! replica id is INVALID_REQUEST.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use strom_broker::ReplicaManager;
use strom_broker::grpc::leader_hint_for;
use strom_broker::replica::{FetchParams, FetchPartition, FetchedPartition, Isolation};
use strom_proto::v1::ErrorCode;

use super::{Broker, broker_id, kafka_endpoint, text};
use crate::errors::kafka_code;
use crate::fetch_session::{
    Answered, Begin, INVALID_SESSION_ID, Incremental, PartitionKey, SessionRequest, TopicRef,
    Wanted,
};

/// Starts one Fetch. The request is checked and takes its session step
/// now, in the order requests arrive on the connection (a pipelined
/// incremental fetch meets its session at the epoch the one before left
/// it); the read and the answer are the returned future.
pub fn start(
    broker: &Arc<Broker>,
    req: FetchRequest,
    version: i16,
) -> impl Future<Output = FetchResponse> + Send + 'static {
    let step = begin(broker, &req, version);
    let broker = broker.clone();
    async move {
        match step {
            Step::Answered(out) => out,
            Step::Read(read) => finish(&broker, req, version, read).await,
        }
    }
}

/// A Fetch after its session step.
enum Step {
    /// Answered without reading (a bad request, a session error).
    Answered(FetchResponse),
    /// To read.
    Read(ToRead),
}

struct ToRead {
    partitions: Vec<(PartitionKey, Wanted)>,
    mode: Mode,
    isolation: Isolation,
}

fn begin(broker: &Broker, req: &FetchRequest, version: i16) -> Step {
    let by_id = version >= 13;
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let requested = requested_partitions(req, by_id);
    let isolation = match (req.isolation_level, replica_id) {
        (0, ..=-1) => Isolation::ReadUncommitted,
        (1, ..=-1) => Isolation::ReadCommitted,
        _ => {
            let code = kafka_code(ErrorCode::InvalidRequest);
            return Step::Answered(refused(&requested, code, version));
        }
    };
    // Fetch v4–v6 carry no session fields: they decode as (0, -1), a
    // full fetch without a session.
    let forgotten = forgotten_partitions(req, by_id);
    let begun = broker.fetch_sessions.begin(&SessionRequest {
        session_id: req.session_id,
        epoch: req.session_epoch,
        by_topic_id: by_id,
        partitions: &requested,
        forgotten: &forgotten,
    });
    let (partitions, mode) = match begun {
        Begin::Refused(code) => {
            // Only v7+ name sessions, so only they are refused here.
            return Step::Answered(
                FetchResponse::default()
                    .with_error_code(code)
                    .with_session_id(INVALID_SESSION_ID),
            );
        }
        Begin::Sessionless => (requested, Mode::Sessionless),
        Begin::Full => (requested, Mode::Full),
        Begin::Incremental(inc) => {
            let parts = inc
                .partitions
                .iter()
                .map(|p| (p.key.clone(), p.wanted))
                .collect();
            (parts, Mode::Incremental(inc))
        }
    };
    Step::Read(ToRead {
        partitions,
        mode,
        isolation,
    })
}

/// Reads, records what the session needs, and answers.
async fn finish(broker: &Broker, req: FetchRequest, version: i16, r: ToRead) -> FetchResponse {
    let rm = &broker.replicas;
    let to_fetch = r.partitions;
    let (answers, top_error, leaders) = read(rm, &to_fetch, &req, r.isolation, version).await;
    let summary: Vec<Answered> = answers.iter().map(answered).collect();
    let every = vec![true; answers.len()];
    let (session_id, included) = match (r.mode, top_error) {
        // The read failed as a whole (a bad max wait or min bytes): no
        // session is created; an incremental one answers every partition.
        (Mode::Incremental(inc), Some(_)) => (inc.id, every),
        (_, Some(_)) | (Mode::Sessionless, None) => (INVALID_SESSION_ID, every),
        (Mode::Full, None) => {
            let parts = to_fetch
                .iter()
                .zip(&summary)
                .map(|((k, w), a)| (k.clone(), *w, *a))
                .collect();
            (broker.fetch_sessions.create(version >= 13, parts), every)
        }
        (Mode::Incremental(inc), None) => (inc.id, broker.fetch_sessions.answered(&inc, &summary)),
    };
    let chosen = to_fetch
        .into_iter()
        .zip(answers)
        .zip(included)
        .filter_map(|(((key, _), data), keep)| keep.then_some((key, data)));
    let mut out = FetchResponse::default().with_responses(by_topic(chosen));
    if version >= 7 {
        out = out
            .with_error_code(top_error.unwrap_or(0))
            .with_session_id(session_id);
    }
    if version >= 16 {
        out = out.with_node_endpoints(node_endpoints(rm, leaders));
    }
    out
}

/// How the answer relates to a session.
enum Mode {
    /// No session: every requested partition, session id 0.
    Sessionless,
    /// Every requested partition, and a new session if there is room.
    Full,
    /// The session's partitions with something new.
    Incremental(Incremental),
}

/// The request's partitions, keyed as a session keys them.
fn requested_partitions(req: &FetchRequest, by_id: bool) -> Vec<(PartitionKey, Wanted)> {
    req.topics
        .iter()
        .flat_map(|t| {
            let topic = if by_id {
                TopicRef::Id(t.topic_id)
            } else {
                TopicRef::Name(t.topic.0.to_string())
            };
            t.partitions.iter().map(move |p| {
                (
                    PartitionKey {
                        topic: topic.clone(),
                        partition: p.partition,
                    },
                    Wanted {
                        fetch_offset: p.fetch_offset,
                        current_leader_epoch: p.current_leader_epoch,
                        last_fetched_epoch: p.last_fetched_epoch,
                        max_bytes: p.partition_max_bytes,
                    },
                )
            })
        })
        .collect()
}

/// `forgotten_topics_data`, keyed as a session keys partitions.
fn forgotten_partitions(req: &FetchRequest, by_id: bool) -> Vec<PartitionKey> {
    req.forgotten_topics_data
        .iter()
        .flat_map(|t| {
            let topic = if by_id {
                TopicRef::Id(t.topic_id)
            } else {
                TopicRef::Name(t.topic.0.to_string())
            };
            t.partitions.iter().map(move |p| PartitionKey {
                topic: topic.clone(),
                partition: *p,
            })
        })
        .collect()
}

/// Every requested partition with `code`, and the same as the top-level
/// error; no session is touched.
fn refused(requested: &[(PartitionKey, Wanted)], code: i16, version: i16) -> FetchResponse {
    let parts = requested
        .iter()
        .map(|(k, _)| (k.clone(), error_data(k, code)));
    let out = FetchResponse::default().with_responses(by_topic(parts));
    if version >= 7 {
        out.with_error_code(code)
    } else {
        out
    }
}

fn error_data(key: &PartitionKey, code: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(key.partition)
        .with_error_code(code)
        .with_high_watermark(-1)
}

/// Reads `to_fetch` (topics by id resolved against the image): each
/// partition's answer in order, a whole-request error, and the leaders
/// named in the answers.
async fn read(
    rm: &ReplicaManager,
    to_fetch: &[(PartitionKey, Wanted)],
    req: &FetchRequest,
    isolation: Isolation,
    version: i16,
) -> (Vec<PartitionData>, Option<i16>, BTreeSet<i32>) {
    // Per partition: an index into the core's answer, or an error code.
    let mut slots: Vec<Result<usize, i16>> = Vec::with_capacity(to_fetch.len());
    let mut partitions = Vec::new();
    rm.cache().with_image(|image| {
        for (key, w) in to_fetch {
            let (name, topic_id) = match &key.topic {
                TopicRef::Name(n) => (Some(n.clone()), None),
                TopicRef::Id(id) => (image.topic_by_id(id).map(|t| t.name.clone()), Some(*id)),
            };
            let Some(name) = name else {
                slots.push(Err(kafka_code(ErrorCode::UnknownTopicId)));
                continue;
            };
            partitions.push(FetchPartition {
                topic: name,
                topic_id,
                partition: key.partition,
                fetch_offset: w.fetch_offset,
                current_leader_epoch: w.current_leader_epoch,
                last_fetched_epoch: w.last_fetched_epoch,
                durable_offset: -1,
                max_bytes: w.max_bytes,
            });
            slots.push(Ok(partitions.len() - 1));
        }
    });
    let mut top_error = None;
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
                top_error = Some(kafka_code(e.code));
                Vec::new()
            }
        }
    };
    let mut leaders = BTreeSet::new();
    let answers = to_fetch
        .iter()
        .zip(slots)
        .map(
            |((key, _), slot)| match slot.ok().and_then(|i| fetched.get(i)) {
                Some(f) => partition(rm, f, isolation, version, &mut leaders),
                None => error_data(key, slot.err().or(top_error).unwrap_or_default()),
            },
        )
        .collect();
    (answers, top_error, leaders)
}

/// What a session compares of one partition's answer.
fn answered(p: &PartitionData) -> Answered {
    Answered {
        records: p.records.as_ref().is_some_and(|r| !r.is_empty()),
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        log_start_offset: p.log_start_offset,
        error: p.error_code != 0,
        diverging: p.diverging_epoch.epoch >= 0,
    }
}

/// Groups consecutive partitions of one topic into one topic entry, in
/// order (a topic split by another appears twice, as in Kafka's answers).
fn by_topic(
    parts: impl IntoIterator<Item = (PartitionKey, PartitionData)>,
) -> Vec<FetchableTopicResponse> {
    let mut out: Vec<(TopicRef, Vec<PartitionData>)> = Vec::new();
    for (key, data) in parts {
        match out.last_mut() {
            Some((topic, list)) if *topic == key.topic => list.push(data),
            _ => out.push((key.topic, vec![data])),
        }
    }
    out.into_iter()
        .map(|(topic, partitions)| {
            let t = FetchableTopicResponse::default().with_partitions(partitions);
            match topic {
                TopicRef::Name(name) => t.with_topic(TopicName(text(name))),
                TopicRef::Id(id) => t.with_topic_id(id),
            }
        })
        .collect()
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
