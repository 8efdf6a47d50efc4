//! Raw data-plane helpers for tests: produce and read through
//! `BrokerService` with hand-built record batches, so replication tests
//! check the broker's behaviour without depending on the client library's
//! retry logic.

use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_log::batch::{BatchIter, Compression, RecordBatchBuilder};
use strom_proto::StromError;
use strom_proto::v1::broker_service_client::BrokerServiceClient;
use strom_proto::v1::*;
use tonic::transport::Channel;

use crate::{Cluster, channel};

/// Client addresses of a cluster's nodes, cloneable into producer and
/// consumer tasks that run while the test kills and restarts nodes.
#[derive(Debug, Clone)]
pub struct Addrs(pub std::collections::BTreeMap<i32, String>);

impl Addrs {
    /// The addresses of `cluster`'s nodes.
    pub fn of(cluster: &Cluster) -> Self {
        Self(
            cluster
                .nodes
                .iter()
                .map(|(id, n)| (*id, n.client_addr()))
                .collect(),
        )
    }
}

/// One batch holding `values` (no keys), CreateTime now.
pub fn batch(values: &[Bytes]) -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    let mut b = RecordBatchBuilder::new(Compression::None);
    for v in values {
        b.append(now, None, Some(v), &[]);
    }
    b.build()
}

/// Decodes concatenated batches into `(offset, value)`.
pub fn records(bytes: Bytes) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    for b in BatchIter::new(bytes) {
        let Ok(b) = b else { break };
        for r in b.records().expect("decodable records") {
            out.push((r.offset, r.value.unwrap_or_default()));
        }
    }
    out
}

/// [`records`] and the offset after the last batch: a compacted log has
/// gaps (records removed from inside batches, batches left without
/// records), so the next position comes from the batch headers.
pub fn records_and_next(bytes: Bytes) -> (Vec<(i64, Bytes)>, Option<i64>) {
    let mut out = Vec::new();
    let mut next = None;
    for b in BatchIter::new(bytes) {
        let Ok(b) = b else { break };
        for r in b.records().expect("decodable records") {
            out.push((r.offset, r.value.unwrap_or_default()));
        }
        next = Some(b.next_offset());
    }
    (out, next)
}

/// A BrokerService client on node `id`.
pub fn broker_client(addrs: &Addrs, id: i32) -> BrokerServiceClient<Channel> {
    BrokerServiceClient::new(channel(&addrs.0[&id]))
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

/// `(leader, leader epoch, isr)` of a partition in node `via`'s image.
pub async fn partition_state(
    addrs: &Addrs,
    via: i32,
    topic: &str,
    partition: i32,
) -> Option<(i32, i32, Vec<i32>)> {
    partition_metadata(addrs, via, topic, partition)
        .await
        .map(|p| (p.leader, p.leader_epoch, p.isr))
}

/// Partition `topic`-`partition` in node `via`'s metadata image, if it
/// answers within a second.
pub async fn partition_metadata(
    addrs: &Addrs,
    via: i32,
    topic: &str,
    partition: i32,
) -> Option<PartitionMetadata> {
    let mut c = strom_proto::v1::metadata_service_client::MetadataServiceClient::new(channel(
        &addrs.0[&via],
    ));
    let req = tonic::Request::new(MetadataRequest {
        topics: vec![topic.to_owned()],
    });
    // A paused node accepts the connection but never answers: bound the
    // call on this side.
    let m = tokio::time::timeout(Duration::from_secs(1), c.metadata(req))
        .await
        .ok()?
        .ok()?
        .into_inner();
    let t = m.topics.into_iter().find(|t| t.name == topic)?;
    t.partitions.into_iter().find(|p| p.partition == partition)
}

/// Every partition of `topic` in node `via`'s metadata image, if it
/// answers within a few seconds.
pub async fn partition_metadata_all(
    addrs: &Addrs,
    via: i32,
    topic: &str,
) -> Option<Vec<PartitionMetadata>> {
    let mut c = strom_proto::v1::metadata_service_client::MetadataServiceClient::new(channel(
        &addrs.0[&via],
    ))
    .max_decoding_message_size(usize::MAX);
    let req = tonic::Request::new(MetadataRequest {
        topics: vec![topic.to_owned()],
    });
    let m = tokio::time::timeout(Duration::from_secs(3), c.metadata(req))
        .await
        .ok()?
        .ok()?
        .into_inner();
    m.topics
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions)
}

/// The partition's state in the freshest image among the nodes that answer
/// (highest partition epoch): a node that was paused or cut off may still
/// hold an old image naming itself leader.
pub async fn partition_state_any(
    addrs: &Addrs,
    topic: &str,
    partition: i32,
) -> Option<(i32, i32, Vec<i32>)> {
    let views = futures::future::join_all(
        addrs
            .0
            .keys()
            .map(|id| partition_metadata(addrs, *id, topic, partition)),
    )
    .await;
    views
        .into_iter()
        .flatten()
        .max_by_key(|p| (p.partition_epoch, p.leader_epoch))
        .map(|p| (p.leader, p.leader_epoch, p.isr))
}

/// One produce of a single batch to broker `to`; `Ok(base offset)` or the
/// partition's error.
pub async fn produce_once(
    addrs: &Addrs,
    to: i32,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i32,
    timeout: Duration,
) -> Result<i64, StromError> {
    let mut c = broker_client(addrs, to);
    let req = tonic::Request::new(ProduceRequest {
        acks,
        timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
        topics: vec![ProduceTopicData {
            topic: topic.into(),
            partitions: vec![ProducePartitionData { partition, records }],
        }],
        transactional_id: String::new(),
    });
    let resp = tokio::time::timeout(timeout + Duration::from_secs(2), c.produce(req))
        .await
        .map_err(|_| StromError::new(ErrorCode::RequestTimedOut, "no produce response"))?
        .map_err(|s| StromError::from_status(&s))?
        .into_inner();
    let p = resp
        .topics
        .into_iter()
        .next()
        .and_then(|t| t.partitions.into_iter().next())
        .ok_or_else(|| StromError::new(ErrorCode::UnknownServerError, "empty produce response"))?;
    if p.error_code == ErrorCode::None as i32 {
        Ok(p.base_offset)
    } else {
        let code = ErrorCode::try_from(p.error_code).unwrap_or(ErrorCode::UnknownServerError);
        Err(StromError::new(code, p.error_message))
    }
}

/// Outcome of a produce retried until acknowledged or `deadline`.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Acknowledged at this offset.
    Acked(i64),
    /// Definitely not written: a non-retriable error before any attempt
    /// could have written it.
    Failed(StromError),
    /// Unknown: some attempt may have written it (timeouts, lost
    /// connections, leader changes after append).
    Indeterminate(StromError),
}

/// Produces one batch to the partition's current leader, following leader
/// changes and retrying retriable errors until `deadline`.
pub async fn produce_retrying(
    addrs: &Addrs,
    topic: &str,
    partition: i32,
    records: Bytes,
    deadline: Instant,
) -> Outcome {
    let mut last: Option<StromError> = None;
    let mut maybe_written = false;
    while Instant::now() < deadline {
        let Some((leader, _, _)) = partition_state_any(addrs, topic, partition).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if leader < 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        match produce_once(
            addrs,
            leader,
            topic,
            partition,
            records.clone(),
            -1,
            Duration::from_secs(5),
        )
        .await
        {
            Ok(offset) => return Outcome::Acked(offset),
            Err(e) => {
                // Anything but a refusal before append may have written.
                // NOT_LEADER_OR_FOLLOWER is not one: a leader deposed while
                // an acks=all append waits for the ISR answers it too.
                if !matches!(
                    e.code,
                    ErrorCode::NotEnoughReplicas
                        | ErrorCode::UnknownTopicOrPartition
                        | ErrorCode::LeaderNotAvailable
                ) {
                    maybe_written = true;
                }
                if !e.is_retriable() && e.code != ErrorCode::UnknownTopicOrPartition {
                    return if maybe_written {
                        Outcome::Indeterminate(e)
                    } else {
                        Outcome::Failed(e)
                    };
                }
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let e = last.unwrap_or_else(|| StromError::new(ErrorCode::RequestTimedOut, "deadline"));
    if maybe_written {
        Outcome::Indeterminate(e)
    } else {
        Outcome::Failed(e)
    }
}

/// Reads the partition from broker `from` (as a consumer) from offset 0 up
/// to its high watermark: `(high watermark, records)`.
pub async fn read_all(
    addrs: &Addrs,
    from: i32,
    topic: &str,
    partition: i32,
) -> Result<(i64, Vec<(i64, Bytes)>), StromError> {
    read_all_at_epoch(addrs, from, topic, partition, -1).await
}

/// [`read_all`] naming the leader epoch the reader believes current, so a
/// deposed leader refuses instead of serving its stale log (KIP-320).
pub async fn read_all_at_epoch(
    addrs: &Addrs,
    from: i32,
    topic: &str,
    partition: i32,
    leader_epoch: i32,
) -> Result<(i64, Vec<(i64, Bytes)>), StromError> {
    let mut c = broker_client(addrs, from);
    let mut offset = 0;
    let mut out = Vec::new();
    loop {
        let req = tonic::Request::new(FetchRequest {
            replica_id: -1,
            replica_epoch: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 8 << 20,
            isolation_level: IsolationLevel::ReadUncommitted as i32,
            topics: vec![FetchTopic {
                topic: topic.into(),
                topic_id: Vec::new(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    current_leader_epoch: leader_epoch,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 4 << 20,
                    replica_durable_offset: 0,
                }],
            }],
        });
        let resp = tokio::time::timeout(Duration::from_secs(5), c.fetch(req))
            .await
            .map_err(|_| StromError::new(ErrorCode::RequestTimedOut, "no fetch response"))?
            .map_err(|s| StromError::from_status(&s))?
            .into_inner();
        let p = resp
            .topics
            .into_iter()
            .next()
            .and_then(|t| t.partitions.into_iter().next())
            .ok_or_else(|| StromError::new(ErrorCode::UnknownServerError, "empty fetch"))?;
        if p.error_code != ErrorCode::None as i32 {
            let code = ErrorCode::try_from(p.error_code).unwrap_or(ErrorCode::UnknownServerError);
            return Err(StromError::new(code, p.error_message));
        }
        let (batch, next) = records_and_next(p.records);
        out.extend(batch.into_iter().filter(|(o, _)| *o >= offset));
        match next {
            Some(n) if n < p.high_watermark => offset = n,
            _ => return Ok((p.high_watermark, out)),
        }
    }
}

/// Reads the partition from its current leader, retrying while leadership
/// settles.
pub async fn read_from_leader(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> (i64, Vec<(i64, Bytes)>) {
    let deadline = Instant::now() + timeout;
    loop {
        let addrs = Addrs::of(cluster);
        if let Some((leader, epoch, _)) = partition_state_any(&addrs, topic, partition).await
            && leader >= 0
            && let Ok(r) = read_all_at_epoch(&addrs, leader, topic, partition, epoch).await
        {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "could not read {topic}-{partition} within {timeout:?}\n{}",
            cluster.dump_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The records in node `node`'s replica of `topic`-`partition`, read from
/// its log directory (the node must be stopped): a copy of the directory is
/// opened with `strom-log`, running the same recovery the node would.
pub fn log_on_disk(cluster: &Cluster, node: i32, topic: &str, partition: i32) -> Vec<(i64, Bytes)> {
    let src = cluster
        .node(node)
        .data_dir
        .join("logs")
        .join(format!("{topic}-{partition}"));
    let tmp = tempfile::tempdir().expect("temp dir");
    let dst = tmp.path().join("copy");
    std::fs::create_dir_all(&dst).expect("create copy dir");
    let Ok(entries) = std::fs::read_dir(&src) else {
        return Vec::new();
    };
    for e in entries {
        let e = e.expect("dir entry");
        std::fs::copy(e.path(), dst.join(e.file_name())).expect("copy log file");
    }
    let log = strom_log::PartitionLog::open(&dst, strom_log::LogConfig::default())
        .expect("open copied log");
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1 << 20).expect("read copied log");
        let (batch, next) = records_and_next(data.records);
        let Some(next) = next else {
            break;
        };
        out.extend(batch.into_iter().filter(|(o, _)| *o >= offset));
        offset = next;
    }
    out
}

/// Checks the history of one partition: every acknowledged `(value,
/// offset)` is in `log` at exactly that offset, and no offset holds two
/// records. Returns a description of each violation.
pub fn check_acked(acked: &[(Bytes, i64)], log: &[(i64, Bytes)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_offset = std::collections::BTreeMap::new();
    for (o, v) in log {
        if by_offset.insert(*o, v.clone()).is_some() {
            problems.push(format!("offset {o} appears twice in the log"));
        }
    }
    for (v, o) in acked {
        match by_offset.get(o) {
            Some(found) if found == v => {}
            Some(found) => problems.push(format!(
                "acked {v:?} at {o}, but the log holds {found:?} there"
            )),
            None => problems.push(format!("acked {v:?} at {o} is missing")),
        }
    }
    problems
}

/// Checks that replicas never diverge: for every offset two logs share,
/// they hold the same record.
pub fn check_prefix_consistent(logs: &[(i32, Vec<(i64, Bytes)>)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, (a, la)) in logs.iter().enumerate() {
        for (b, lb) in &logs[i + 1..] {
            let mb: std::collections::BTreeMap<i64, &Bytes> =
                lb.iter().map(|(o, v)| (*o, v)).collect();
            for (o, v) in la {
                if let Some(w) = mb.get(o)
                    && *w != v
                {
                    problems.push(format!(
                        "offset {o}: node {a} has {v:?}, node {b} has {w:?}"
                    ));
                }
            }
        }
    }
    problems
}

/// Waits until the partition's leader serves it (its own image made it
/// leader), returning the leader's id. Metadata on another node can name a
/// leader a moment before that leader applied it.
pub async fn wait_leader_serving(
    addrs: &Addrs,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some((leader, _, _)) = partition_state_any(addrs, topic, partition).await
            && leader >= 0
        {
            let mut c = broker_client(addrs, leader);
            let req = ListOffsetsRequest {
                replica_id: -1,
                isolation_level: 0,
                topics: vec![ListOffsetsTopic {
                    topic: topic.into(),
                    partitions: vec![ListOffsetsPartition {
                        partition,
                        timestamp: -1,
                        current_leader_epoch: -1,
                    }],
                }],
            };
            if let Ok(Ok(r)) =
                tokio::time::timeout(Duration::from_secs(2), c.list_offsets(req)).await
                && r.into_inner()
                    .topics
                    .first()
                    .and_then(|t| t.partitions.first())
                    .is_some_and(|p| p.error_code == 0)
            {
                return Some(leader);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
