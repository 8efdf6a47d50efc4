//! Follower fetch sessions: one task per source broker fetching every
//! partition this broker follows from it in one long-polling `Fetch`
//! (Kafka's `ReplicaFetcherThread`), not one task per partition.
//!
//! Each request carries, per partition, the follower's log end offset, the
//! epoch of its last batch and the leader epoch it follows. The leader
//! answers with records, or with a diverging epoch on which the follower
//! truncates ([`rules::truncation_offset`](super::rules::truncation_offset))
//! before fetching again. A response is applied only if the partition still
//! follows the same leader at the same epoch: after back-to-back leader
//! changes, an answer from an earlier leadership never touches the log.
//!
//! The rounds go through a [`PeerTransport`]: in production one
//! `FetchStream` per leader ([`GrpcPeers`](super::peer_grpc::GrpcPeers)),
//! in a simulation the leader's `ReplicaManager::fetch` in-process.
//!
//! When the set of partitions changes, the in-flight fetch is abandoned
//! (with its stream) and a new one built, so a new follower starts at once.
//!
//! A partition this broker is adding under a follower throttle
//! (`follower.replication.throttled.replicas`, docs/reassignment.md) asks
//! the follower quota ([`quota`](super::quota)) for its bytes: it fetches
//! at most the grant, or sits out until the quota refills, and the bytes
//! it received are settled after the round. Other partitions of the same
//! session are never held back by it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_proto::StromError;
use strom_proto::v1::{
    ErrorCode, FetchPartition, FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopic,
    IsolationLevel,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::FixedMap;
use super::config::ReplicationConfig;
use super::partition::{Fetched, Partition};
use super::quota::{Grant, ReplicationQuotas};
use super::seams::{PeerSession, PeerTransport};

type Key = (Uuid, i32);

#[derive(Debug)]
struct Session {
    partitions: Arc<Mutex<FixedMap<Key, Arc<Partition>>>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Every fetch session of this broker, by source broker id.
#[derive(Debug)]
pub struct Fetchers {
    node_id: i32,
    config: ReplicationConfig,
    peers: Arc<dyn PeerTransport>,
    sessions: Mutex<FixedMap<i32, Session>>,
    /// Which source each partition fetches from.
    sources: Mutex<FixedMap<Key, i32>>,
    /// The follower throttle, shared by every session.
    quotas: Arc<ReplicationQuotas>,
}

impl Fetchers {
    pub(crate) fn new(
        node_id: i32,
        config: ReplicationConfig,
        peers: Arc<dyn PeerTransport>,
        quotas: Arc<ReplicationQuotas>,
    ) -> Self {
        Self {
            node_id,
            config,
            peers,
            sessions: Mutex::new(FixedMap::default()),
            sources: Mutex::new(FixedMap::default()),
            quotas,
        }
    }

    /// Starts fetching `part` from `leader`.
    pub(crate) fn add(&self, leader: i32, part: Arc<Partition>) {
        let key = (part.topic_id, part.index);
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, leader);
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let session = sessions.entry(leader).or_insert_with(|| {
            let partitions = Arc::new(Mutex::new(FixedMap::default()));
            let wake = Arc::new(Notify::new());
            let cancel = CancellationToken::new();
            let task = tokio::spawn(
                SessionTask {
                    node_id: self.node_id,
                    leader,
                    config: self.config.clone(),
                    partitions: partitions.clone(),
                    wake: wake.clone(),
                    cancel: cancel.clone(),
                    session: self.peers.connect(leader),
                    quotas: self.quotas.clone(),
                }
                .run(),
            );
            Session {
                partitions,
                wake,
                cancel,
                task,
            }
        });
        session
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, part);
        session.wake.notify_one();
    }

    /// Stops fetching `part`, wherever from. A session left empty ends.
    pub(crate) fn remove(&self, part: &Partition) {
        let key = (part.topic_id, part.index);
        let Some(leader) = self
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
        else {
            return;
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = sessions.get(&leader) {
            let empty = {
                let mut parts = s.partitions.lock().unwrap_or_else(|e| e.into_inner());
                parts.remove(&key);
                parts.is_empty()
            };
            if empty {
                if let Some(s) = sessions.remove(&leader) {
                    s.cancel.cancel();
                }
            } else {
                s.wake.notify_one();
            }
        }
    }

    /// Ends every session.
    pub(crate) async fn shutdown(&self) {
        let sessions: Vec<Session> = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        for s in sessions {
            s.cancel.cancel();
            let _ = s.task.await;
        }
    }
}

/// Per-partition fetch bookkeeping inside one request.
struct Sent {
    part: Arc<Partition>,
    leader_epoch: i32,
    /// What the follower quota granted this partition (throttled only).
    grant: Option<Grant>,
}

struct SessionTask {
    node_id: i32,
    leader: i32,
    config: ReplicationConfig,
    partitions: Arc<Mutex<FixedMap<Key, Arc<Partition>>>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    /// The fetch session with the leader.
    session: Box<dyn PeerSession>,
    /// The follower throttle.
    quotas: Arc<ReplicationQuotas>,
}

/// How one fetch round ended.
enum Round {
    Answered(FetchResponse),
    Failed(StromError),
    TimedOut,
    /// The partition set changed mid-round.
    Rebuild,
    Cancelled,
}

impl SessionTask {
    fn build(&self, delayed: &mut FixedMap<Key, Instant>) -> (FetchRequest, FixedMap<Key, Sent>) {
        let parts: Vec<Arc<Partition>> = self
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let now = Instant::now();
        let mut topics: FixedMap<Uuid, FetchTopic> = FixedMap::default();
        let mut sent = FixedMap::default();
        for part in parts {
            let key = (part.topic_id, part.index);
            if delayed.get(&key).is_some_and(|until| *until > now) {
                continue;
            }
            let Some(position) = part.fetch_position(self.leader) else {
                continue;
            };
            let mut max_bytes = self.config.replica_fetch_max_bytes;
            let grant = if part.follower_throttled() {
                let want = u64::try_from(max_bytes).unwrap_or(1);
                match self.quotas.follower.take(want) {
                    Grant::Wait(pause) => {
                        delayed.insert(key, now + pause);
                        continue;
                    }
                    Grant::Bytes(n) => {
                        max_bytes = i32::try_from(n).unwrap_or(max_bytes).clamp(1, max_bytes);
                        Some(Grant::Bytes(n))
                    }
                    Grant::Unlimited => Some(Grant::Unlimited),
                }
            } else {
                None
            };
            let topic = topics.entry(part.topic_id).or_insert_with(|| FetchTopic {
                topic: part.topic.clone(),
                topic_id: part.topic_id.as_bytes().to_vec(),
                partitions: Vec::new(),
            });
            topic.partitions.push(FetchPartition {
                partition: part.index,
                fetch_offset: position.fetch_offset,
                current_leader_epoch: position.leader_epoch,
                last_fetched_epoch: position.last_fetched_epoch,
                log_start_offset: part.reader().log_start_offset(),
                partition_max_bytes: max_bytes,
                replica_durable_offset: position.durable_offset,
            });
            sent.insert(
                key,
                Sent {
                    part,
                    leader_epoch: position.leader_epoch,
                    grant,
                },
            );
        }
        // A partition paused after a refusal (say, its new leader had not
        // taken over yet) rejoins at the next round: the long poll ends by
        // then, so the pause is its own length and not a whole
        // replica.fetch.wait.max.ms on top.
        let wait = delayed
            .values()
            .filter(|until| **until > now)
            .map(|until| until.saturating_duration_since(now))
            .min()
            .map_or(self.config.replica_fetch_wait_max, |next| {
                next.min(self.config.replica_fetch_wait_max)
            });
        let request = FetchRequest {
            replica_id: self.node_id,
            replica_epoch: -1,
            max_wait_ms: i32::try_from(wait.as_millis()).unwrap_or(i32::MAX),
            min_bytes: 1,
            max_bytes: self.config.replica_fetch_response_max_bytes,
            isolation_level: IsolationLevel::ReadUncommitted as i32,
            topics: topics.into_values().collect(),
        };
        (request, sent)
    }

    async fn run(mut self) {
        let mut delayed: FixedMap<Key, Instant> = FixedMap::default();
        let mut failures = 0u32;
        tracing::debug!(leader = self.leader, "fetch session started");
        while !self.cancel.is_cancelled() {
            let (request, mut sent) = self.build(&mut delayed);
            if sent.is_empty() {
                let next = delayed.values().min().copied();
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = async { match next { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {}
                }
                delayed.retain(|_, t| *t > Instant::now());
                continue;
            }
            let response = match self.round(request).await {
                Round::Answered(r) => r,
                Round::Rebuild => {
                    self.settle_unanswered(&mut sent);
                    continue;
                }
                Round::Cancelled => {
                    self.settle_unanswered(&mut sent);
                    break;
                }
                Round::Failed(e) => {
                    self.settle_unanswered(&mut sent);
                    tracing::debug!(leader = self.leader, error = %e, "follower fetch failed");
                    self.session.reset();
                    self.backoff(&mut failures).await;
                    continue;
                }
                Round::TimedOut => {
                    self.settle_unanswered(&mut sent);
                    tracing::debug!(leader = self.leader, "follower fetch timed out");
                    self.session.reset();
                    self.backoff(&mut failures).await;
                    continue;
                }
            };
            failures = 0;
            delayed.retain(|_, t| *t > Instant::now());
            // Partitions that appended this round: fsynced (if their topic
            // or flush policy asks) before the next fetch reports them.
            let mut appended = Vec::new();
            for topic in response.topics {
                // A leader that does not know the topic yet (its metadata
                // lags) answers UNKNOWN_TOPIC_ID without the id: match by
                // name, so that the partition backs off rather than being
                // fetched again at once, round after round.
                let id = Uuid::from_slice(&topic.topic_id).ok().or_else(|| {
                    sent.values()
                        .find(|s| s.part.topic == topic.topic)
                        .map(|s| s.part.topic_id)
                });
                let Some(id) = id else { continue };
                for p in topic.partitions {
                    let key = (id, p.partition);
                    let Some(s) = sent.get_mut(&key) else {
                        continue;
                    };
                    if let Some(grant) = s.grant.take() {
                        let used = u64::try_from(p.records.len()).unwrap_or(u64::MAX);
                        self.quotas.follower.settle(grant, used);
                    }
                    let s = &*s;
                    let had_records = !p.records.is_empty();
                    if let Some(pause) = self.apply(s, p).await {
                        delayed.insert(key, Instant::now() + pause);
                    } else if had_records {
                        appended.push(s.part.clone());
                    }
                }
            }
            // Partitions the leader did not answer give their grants back.
            self.settle_unanswered(&mut sent);
            self.flush(&appended, &mut delayed).await;
        }
        tracing::debug!(leader = self.leader, "fetch session ended");
    }

    /// Gives back the follower quota grants of partitions that received
    /// nothing (the round failed, was abandoned, or left them out).
    fn settle_unanswered(&self, sent: &mut FixedMap<Key, Sent>) {
        for s in sent.values_mut() {
            if let Some(grant) = s.grant.take() {
                self.quotas.follower.settle(grant, 0);
            }
        }
    }

    /// Sends one request and waits for its response.
    async fn round(&mut self, request: FetchRequest) -> Round {
        let timeout = self.config.replica_fetch_wait_max + Duration::from_secs(5);
        // Abandoning a round (the partition set changed) abandons the
        // session's stream with it; the session opens another.
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Round::Cancelled,
            r = self.session.fetch(request, timeout) => match r {
                Ok(r) => Round::Answered(r),
                Err(status) if status.code() == tonic::Code::DeadlineExceeded => Round::TimedOut,
                Err(status) => Round::Failed(StromError::from_status(&status)),
            },
            _ = self.wake.notified() => Round::Rebuild,
        }
    }

    async fn backoff(&self, failures: &mut u32) {
        *failures = failures.saturating_add(1);
        let pause = self
            .config
            .replica_fetch_backoff
            .saturating_mul(1 << (*failures).min(4))
            .min(Duration::from_secs(1));
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }

    /// Group commit on the follower: one fsync per partition covers the
    /// whole response, all partitions at once on the blocking pool. A
    /// failed flush (the log directory went offline) pauses the partition.
    async fn flush(&self, appended: &[Arc<Partition>], delayed: &mut FixedMap<Key, Instant>) {
        let flushes = appended.iter().map(|part| async move {
            let result = part.flush_fetched().await;
            (part, result)
        });
        for (part, result) in futures::future::join_all(flushes).await {
            if let Err(e) = result {
                tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "follower flush failed");
                delayed.insert(
                    (part.topic_id, part.index),
                    Instant::now() + self.config.replica_fetch_backoff.saturating_mul(10),
                );
            }
        }
    }

    /// Applies one partition's answer; returns a pause before fetching it
    /// again when the leader refused.
    async fn apply(&self, s: &Sent, p: FetchPartitionResponse) -> Option<Duration> {
        let code = ErrorCode::try_from(p.error_code).unwrap_or(ErrorCode::UnknownServerError);
        let fetched = match code {
            ErrorCode::None => match p.diverging_epoch {
                Some(d) => Fetched::Diverging {
                    epoch: d.epoch,
                    end_offset: d.end_offset,
                },
                None => Fetched::Records {
                    records: p.records,
                    high_watermark: p.high_watermark,
                    log_start_offset: p.log_start_offset,
                },
            },
            ErrorCode::OffsetOutOfRange => {
                let leo = s.part.reader().log_end_offset();
                if leo < p.log_start_offset {
                    Fetched::StartAt(p.log_start_offset)
                } else if leo > p.log_end_offset && p.log_end_offset >= 0 {
                    Fetched::TruncateTo(p.log_end_offset)
                } else {
                    return Some(self.config.replica_fetch_backoff);
                }
            }
            // The leader is behind on metadata: it will catch up shortly.
            ErrorCode::UnknownLeaderEpoch => return Some(Duration::from_millis(20)),
            // We are behind, or the leadership moved: the manager moves us
            // when our image catches up.
            _ => {
                tracing::debug!(topic = %s.part.topic, partition = s.part.index, leader = self.leader, code = code.as_str_name(), message = %p.error_message, "follower fetch refused");
                return Some(self.config.replica_fetch_backoff);
            }
        };
        match s
            .part
            .apply_fetched(self.leader, s.leader_epoch, fetched)
            .await
        {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(topic = %s.part.topic, partition = s.part.index, error = %e, "follower append failed");
                Some(self.config.replica_fetch_backoff.saturating_mul(10))
            }
        }
    }
}
