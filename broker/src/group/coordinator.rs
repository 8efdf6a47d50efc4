//! [`GroupCoordinator`]: the shards of the offsets partitions this broker
//! leads, and every request's path through them.
//!
//! * Leadership of an offsets partition (heard through the replica
//!   manager's `LeadershipListener`) marks it loading and starts a load at
//!   that leader epoch; requests meanwhile get COORDINATOR_LOAD_IN_PROGRESS.
//!   Losing it drops the shard: requests get NOT_COORDINATOR.
//! * A request locks its shard, asks it for a decision, appends the
//!   decision's records with acks=all at the loaded epoch, replays them and
//!   answers: one decision at a time per shard, each seeing the last one's
//!   records. A failed append reloads the shard from the log (the records
//!   may be there, unacknowledged), so memory never runs ahead of the log.
//! * After each decision, the members the core says should heartbeat now
//!   get an event on their pushed assignment stream ([`super::push`]).
//! * A timer expires sessions, revocation timeouts and old offsets.
//! * Another ([`GroupCoordinator::run_lag`]) reads the end offsets of the
//!   committed partitions from their leaders for the consumer-lag metric.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strom_controller_client::QuorumClient;
use strom_group::lag::{TopicLag, end_offset_requests};
use strom_group::shard::FetchedOffset;
use strom_group::{
    ClassicHeartbeatResponse, ClassicJoinRequest, ClassicJoinResponse, ClassicLeave,
    ClassicSyncResponse, CommitRequest, GroupConfig, GroupDescription, GroupError, GroupListing,
    HeartbeatRequest, HeartbeatResponse, OFFSETS_TOPIC, Record, Shard, Topics,
    offsets_partition_for,
};
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;
use tokio_util::sync::CancellationToken;

use super::lag::{EndOffsets, end_offsets};
use super::peers::{GrpcPeers, Peers};
use super::push::{Push, Pushes};
use super::topics::topics;
use super::{GroupsConfig, load, write};
use crate::internal_topic::write::{self as shared_write, Encoded, write_error};
use crate::internal_topic::{
    CoordinatorLookup, InternalTopicCreator, InternalTopicSpec, ShardHost, ShardLoader, lookup,
};
use crate::replica::{PartError, ReplicaManager};

/// How the gRPC layer holds the coordinator.
pub type Coordinator = Arc<GroupCoordinator>;

type ShardRef = crate::internal_topic::ShardRef<Shard>;

/// Counters of the coordinator, for metrics.
#[derive(Debug, Default)]
struct Counters {
    rebalances: AtomicU64,
    offset_commits: AtomicU64,
    commit_requests: AtomicU64,
    commit_micros: AtomicU64,
    write_failures: AtomicU64,
}

/// What `/metrics` shows of the coordinator. Group counts by state are
/// taken from shards not busy at scrape time (a busy shard is skipped, so a
/// scrape never waits on a write).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMetrics {
    /// Groups by state name (Empty, Assigning, Reconciling, Stable).
    pub groups_by_state: BTreeMap<&'static str, i64>,
    /// Offsets partitions loaded here.
    pub partitions_loaded: i64,
    /// Offsets partitions loading here.
    pub partitions_loading: i64,
    /// New target assignments computed (rebalances).
    pub rebalances: u64,
    /// Offsets committed (one per partition).
    pub offset_commits: u64,
    /// OffsetCommit requests acknowledged.
    pub commit_requests: u64,
    /// Total time of the acknowledged OffsetCommit requests, in microseconds.
    pub commit_micros: u64,
    /// Offsets-topic writes that failed (the shard reloaded).
    pub write_failures: u64,
    /// Consumer lag per (group, topic) of the groups coordinated here, as
    /// of the last `group.consumer.lag.interval.ms` round.
    pub lag: BTreeMap<(String, String), TopicLag>,
}

/// The broker's group coordinator.
#[derive(Debug)]
pub struct GroupCoordinator {
    rm: Arc<ReplicaManager>,
    config: GroupsConfig,
    host: Arc<ShardHost<Shard>>,
    creator: InternalTopicCreator,
    pushes: Arc<Pushes>,
    peers: Arc<dyn Peers>,
    counters: Counters,
    /// The last consumer-lag round's result.
    lag: Mutex<BTreeMap<(String, String), TopicLag>>,
    stop: CancellationToken,
}

/// Loads an offsets partition: replays its log, then starts the sessions'
/// clocks.
#[derive(Debug)]
struct GroupLoader {
    config: GroupConfig,
    pushes: Arc<Pushes>,
}

impl ShardLoader<Shard> for GroupLoader {
    fn load(&self, rm: &ReplicaManager, partition: i32, _epoch: i32) -> Result<Shard, PartError> {
        let mut shard = load::load(rm, OFFSETS_TOPIC, partition, self.config.clone())?;
        shard.start_sessions(now_ms());
        Ok(shard)
    }

    fn unloaded(&self, partition: i32) {
        self.pushes.unloaded(partition);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn group_error(e: GroupError) -> StromError {
    let code =
        ErrorCode::from_str_name(e.kind.code_name()).unwrap_or(ErrorCode::UnknownServerError);
    StromError::new(code, e.message)
}

impl GroupCoordinator {
    /// A coordinator over `rm`'s offsets partitions; it listens to `rm`'s
    /// leadership changes from now on, so create it before `rm` runs.
    /// `quorum` creates the offsets topic (none: it must exist already).
    /// Call [`run`](Self::run) for its timers.
    pub fn new(
        rm: Arc<ReplicaManager>,
        quorum: Option<Arc<QuorumClient>>,
        config: GroupsConfig,
        controller_timeout: Duration,
        stop: CancellationToken,
    ) -> Coordinator {
        let pushes = Arc::new(Pushes::default());
        let host = ShardHost::new(
            OFFSETS_TOPIC,
            rm.clone(),
            Arc::new(GroupLoader {
                config: config.group.clone(),
                pushes: pushes.clone(),
            }),
            stop.clone(),
        );
        let creator = InternalTopicCreator::new(
            InternalTopicSpec {
                name: OFFSETS_TOPIC,
                partitions: config.offsets_topic_num_partitions,
                replication_factor: config.offsets_topic_replication_factor,
            },
            quorum,
            controller_timeout,
        );
        Arc::new(GroupCoordinator {
            peers: Arc::new(GrpcPeers::new(rm.clone())),
            rm,
            config,
            host,
            creator,
            pushes,
            counters: Counters::default(),
            lag: Mutex::default(),
            stop,
        })
    }

    /// The settings.
    pub fn config(&self) -> &GroupsConfig {
        &self.config
    }

    /// This broker's id.
    pub fn node_id(&self) -> i32 {
        self.rm.node_id()
    }

    /// The other brokers, for a member's read.
    pub fn peers(&self) -> &dyn Peers {
        self.peers.as_ref()
    }

    /// The leader of each partition of `owned`, if it has one.
    pub fn leaders(&self, owned: &[super::member_read::Owned]) -> Vec<Option<i32>> {
        self.rm.cache().with_image(|image| {
            owned
                .iter()
                .map(|(topic, partition, _)| {
                    image
                        .topic_by_name(topic)
                        .and_then(|t| t.partition(*partition))
                        .map(|p| p.leader)
                        .filter(|leader| *leader >= 0)
                })
                .collect()
        })
    }

    /// The partitions `member_id` of `group_id` owns at `member_epoch`
    /// (refused as a commit with that epoch would be), with the group's
    /// committed offsets, in topic and partition order.
    pub async fn member_partitions(
        self: &Arc<Self>,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
    ) -> Result<Vec<super::member_read::Owned>, StromError> {
        let (_, _, shard) = self.shard_for(group_id)?;
        let topics = self.topics();
        let shard = shard.lock().await;
        let assigned = shard
            .member_assignment(group_id, member_id, member_epoch)
            .map_err(group_error)?;
        let mut owned: Vec<(String, i32)> = assigned
            .iter()
            .filter_map(|(id, ps)| topics.by_id(id).map(|t| (t.name.clone(), ps)))
            .flat_map(|(name, ps)| ps.iter().map(move |p| (name.clone(), *p)))
            .collect();
        owned.sort();
        let committed = shard
            .fetch_offsets(group_id, Some(owned.as_slice()))
            .map_err(group_error)?;
        Ok(committed
            .into_iter()
            .map(|((topic, partition), v)| (topic, partition, v.map(|v| v.offset)))
            .collect())
    }

    fn partition_of(&self, group_id: &str) -> Result<i32, StromError> {
        strom_group::validate_group_id(group_id).map_err(group_error)?;
        Ok(offsets_partition_for(
            group_id,
            self.config.offsets_topic_num_partitions,
        ))
    }

    fn shard_for(&self, group_id: &str) -> Result<(i32, i32, ShardRef), StromError> {
        let p = self.partition_of(group_id)?;
        let (epoch, shard) = self.host.shard(p, &format!("group {group_id:?}"))?;
        Ok((p, epoch, shard))
    }

    fn topics(&self) -> Topics {
        self.rm.cache().with_image(topics)
    }

    /// The cluster's topics as the core sees them (for conversions).
    pub fn topics_view(&self) -> Topics {
        self.topics()
    }

    /// One decision of the group's shard: decide, write, replay, answer.
    async fn decide<T>(
        self: &Arc<Self>,
        group_id: &str,
        f: impl FnOnce(&mut Shard, &Topics, i64) -> Result<(Vec<Record>, T), GroupError>,
    ) -> Result<T, StromError> {
        let (p, epoch, shard) = self.shard_for(group_id)?;
        let topics = self.topics();
        let mut shard = shard.lock().await;
        let now = now_ms();
        let (records, answer) = f(&mut shard, &topics, now).map_err(group_error)?;
        if !records.is_empty() {
            self.write(&mut shard, p, epoch, &records, now)
                .await
                .map_err(|e| write_error(e, &format!("group {group_id:?}")))?;
        }
        Ok(answer)
    }

    async fn write(
        self: &Arc<Self>,
        shard: &mut Shard,
        p: i32,
        epoch: i32,
        records: &[Record],
        now: i64,
    ) -> Result<(), PartError> {
        let written = write::write(
            &self.rm,
            OFFSETS_TOPIC,
            p,
            epoch,
            records,
            now,
            self.config.offsets_commit_timeout_ms,
        )
        .await;
        match written {
            Ok(_) => {
                let rebalances = records
                    .iter()
                    .filter(|r| {
                        matches!(
                            r.key,
                            strom_group::RecordKey::TargetAssignmentMetadata { .. }
                        ) && r.value.is_some()
                    })
                    .count() as u64;
                self.counters
                    .rebalances
                    .fetch_add(rebalances, Ordering::Relaxed);
                shard.replay(records);
                self.pushes
                    .after_replay(shard, strom_group::wake::groups_changed(records));
                Ok(())
            }
            Err(e) => {
                self.counters.write_failures.fetch_add(1, Ordering::Relaxed);
                self.host.reload(p, epoch);
                Err(e)
            }
        }
    }

    /// `FindCoordinator`: `(node id, address, offsets partition)`. Creates
    /// the offsets topic on first use (COORDINATOR_NOT_AVAILABLE meanwhile).
    pub fn find_coordinator(
        self: &Arc<Self>,
        group_id: &str,
    ) -> Result<(i32, String, i32), StromError> {
        let p = self.partition_of(group_id)?;
        match self
            .rm
            .cache()
            .with_image(|image| lookup(image, OFFSETS_TOPIC, p))
        {
            CoordinatorLookup::Leader { node_id, address } => Ok((node_id, address, p)),
            CoordinatorLookup::NoLeader => Err(StromError::new(
                ErrorCode::CoordinatorNotAvailable,
                format!("offsets partition {p} has no leader now"),
            )),
            CoordinatorLookup::NoTopic => {
                self.creator
                    .start(self.rm.cache(), self.host.tasks(), self.host.runtime());
                Err(StromError::new(
                    ErrorCode::CoordinatorNotAvailable,
                    format!("{OFFSETS_TOPIC} is being created"),
                ))
            }
        }
    }

    /// WriteTxnMarkers on offsets partition `partition`: appends the
    /// marker (acks=all) and, if the partition's shard is loaded here,
    /// replays it, which makes the transaction's `TxnOffsetCommit`s visible
    /// (commit) or drops them (abort). A partition still loading answers
    /// COORDINATOR_LOAD_IN_PROGRESS (the sender retries), so a load never
    /// misses a marker written under it.
    pub async fn write_txn_marker(
        self: &Arc<Self>,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        marker: strom_log::batch::control::EndTxnMarker,
        timeout_ms: i32,
    ) -> Result<(), PartError> {
        let write = |rm: Arc<ReplicaManager>| async move {
            rm.write_txn_marker(
                OFFSETS_TOPIC,
                partition,
                producer_id,
                producer_epoch,
                marker,
                timeout_ms,
            )
            .await
        };
        match self.host.shard(partition, "the marker") {
            Ok((epoch, shard)) => {
                let mut shard = shard.lock().await;
                match write(self.rm.clone()).await {
                    Ok(_) => {
                        shard.replay_marker(producer_id, marker.commit);
                        Ok(())
                    }
                    Err(e) => {
                        self.host.reload(partition, epoch);
                        Err(e)
                    }
                }
            }
            Err(e) if e.code == ErrorCode::CoordinatorLoadInProgress => {
                Err(PartError::new(e.code, e.message))
            }
            Err(_) => write(self.rm.clone()).await.map(|_| ()),
        }
    }

    /// A heartbeat of the KIP-848 protocol.
    pub async fn heartbeat(
        self: &Arc<Self>,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, StromError> {
        let group_id = req.group_id.clone();
        self.decide(&group_id, |shard, topics, now| {
            let d = shard.heartbeat(&req, topics, now)?;
            Ok((d.records, d.response))
        })
        .await
    }

    /// A classic member's `JoinGroup` (see `strom_group::shard::classic`).
    pub async fn classic_join(
        self: &Arc<Self>,
        req: ClassicJoinRequest,
    ) -> Result<ClassicJoinResponse, StromError> {
        let group_id = req.group_id.clone();
        self.decide(&group_id, |shard, topics, now| {
            let d = shard.classic_join(&req, topics, now)?;
            Ok((d.records, d.response))
        })
        .await
    }

    /// A classic member's `SyncGroup`: `(protocol type, protocol name)`
    /// are checked when given.
    pub async fn classic_sync(
        self: &Arc<Self>,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
    ) -> Result<ClassicSyncResponse, StromError> {
        self.decide(group_id, |shard, _, now| {
            let r =
                shard.classic_sync(group_id, member_id, instance_id, generation, protocol, now)?;
            Ok((Vec::new(), r))
        })
        .await
    }

    /// A classic member's `Heartbeat`; writes nothing.
    pub async fn classic_heartbeat(
        self: &Arc<Self>,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<ClassicHeartbeatResponse, StromError> {
        self.decide(group_id, |shard, topics, now| {
            let r = shard.classic_heartbeat(
                group_id,
                member_id,
                instance_id,
                generation,
                topics,
                now,
            )?;
            Ok((Vec::new(), r))
        })
        .await
    }

    /// One member of a classic `LeaveGroup`.
    pub async fn classic_leave(
        self: &Arc<Self>,
        group_id: &str,
        leave: ClassicLeave,
    ) -> Result<(), StromError> {
        self.decide(group_id, |shard, topics, now| {
            Ok((shard.classic_leave(group_id, &leave, topics, now)?, ()))
        })
        .await
    }

    /// `ConsumerGroupAssignmentStream`: a channel on which `member_id` of
    /// `group_id` learns at once when it should heartbeat (see
    /// [`super::push`]). NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
    /// UNKNOWN_MEMBER_ID as for a heartbeat.
    pub async fn assignment_stream(
        self: &Arc<Self>,
        group_id: &str,
        member_id: &str,
    ) -> Result<tokio::sync::watch::Receiver<Push>, StromError> {
        let (p, _, shard) = self.shard_for(group_id)?;
        let rx = {
            let shard = shard.lock().await;
            self.pushes.subscribe(&shard, p, group_id, member_id)?
        };
        if matches!(self.host.shard(p, ""), Err(e) if e.code == ErrorCode::NotCoordinator) {
            // Unloaded while we waited for the shard: nobody would end it.
            self.pushes.unloaded(p);
        }
        Ok(rx)
    }

    /// `OffsetCommit`.
    pub async fn commit_offsets(self: &Arc<Self>, req: CommitRequest) -> Result<(), StromError> {
        let started = std::time::Instant::now();
        let group_id = req.group_id.clone();
        let n = req.offsets.len() as u64;
        self.decide(&group_id, |shard, topics, now| {
            Ok((shard.commit_offsets(&req, topics, now)?, ()))
        })
        .await?;
        let c = &self.counters;
        c.offset_commits.fetch_add(n, Ordering::Relaxed);
        c.commit_requests.fetch_add(1, Ordering::Relaxed);
        c.commit_micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// `TxnOffsetCommit`: the offsets as one transactional batch of the
    /// producer (sequenced after its last batch in the partition), written
    /// only if the transaction coordinator has the offsets partition in the
    /// producer's transaction (KIP-890), replayed as pending: the
    /// producer's marker makes them visible or drops them.
    pub async fn txn_commit_offsets(
        self: &Arc<Self>,
        transactional_id: &str,
        req: strom_group::shard::TxnCommitRequest,
    ) -> Result<(), StromError> {
        let group_id = req.commit.group_id.clone();
        let (p, epoch, shard) = self.shard_for(&group_id)?;
        let topics = self.topics();
        let mut shard = shard.lock().await;
        let now = now_ms();
        let records = shard
            .txn_commit_offsets(&req, &topics, now)
            .map_err(group_error)?;
        if records.is_empty() {
            return Ok(());
        }
        let key = format!("group {group_id:?}");
        let seq = self
            .rm
            .next_sequence(OFFSETS_TOPIC, p, req.producer_id, req.producer_epoch)
            .await
            .map_err(|e| write_error(e, &key))?;
        let encoded: Vec<Encoded> = records.iter().map(Record::encode).collect();
        let batch = shared_write::transactional_batch(
            &encoded,
            now,
            req.producer_id,
            req.producer_epoch,
            seq,
        );
        self.rm
            .verify_txn_batch(transactional_id, OFFSETS_TOPIC, p, &batch)
            .await
            .map_err(|e| StromError::new(e.code, e.message))?;
        let written = shared_write::write(
            &self.rm,
            OFFSETS_TOPIC,
            p,
            epoch,
            batch,
            self.config.offsets_commit_timeout_ms,
        )
        .await;
        match written {
            Ok(_) => {
                shard.replay_transactional(req.producer_id, &records);
                Ok(())
            }
            Err(e) => {
                self.counters.write_failures.fetch_add(1, Ordering::Relaxed);
                self.host.reload(p, epoch);
                Err(write_error(e, &key))
            }
        }
    }

    /// The coordinator's metrics.
    pub fn metrics(&self) -> GroupMetrics {
        let mut m = GroupMetrics::default();
        for state in ["Empty", "Assigning", "Reconciling", "Stable"] {
            m.groups_by_state.insert(state, 0);
        }
        (m.partitions_loaded, m.partitions_loading) = self.host.counts();
        for (_, _, shard) in self.host.active() {
            if let Ok(shard) = shard.try_lock() {
                for g in shard.list_groups() {
                    *m.groups_by_state.entry(g.state.name()).or_default() += 1;
                }
            }
        }
        let c = &self.counters;
        m.rebalances = c.rebalances.load(Ordering::Relaxed);
        m.offset_commits = c.offset_commits.load(Ordering::Relaxed);
        m.commit_requests = c.commit_requests.load(Ordering::Relaxed);
        m.commit_micros = c.commit_micros.load(Ordering::Relaxed);
        m.write_failures = c.write_failures.load(Ordering::Relaxed);
        m.lag = self.lag.lock().unwrap_or_else(|e| e.into_inner()).clone();
        m
    }

    /// One consumer-lag round: the committed offsets of every loaded shard,
    /// the end offsets of those partitions from their leaders (one
    /// `ListOffsets` per leader, all at once), the lag per group and topic.
    pub async fn refresh_lag(&self, source: &dyn EndOffsets) {
        let mut committed = Vec::new();
        for (_, _, shard) in self.host.active() {
            committed.extend(shard.lock().await.committed_offsets());
        }
        let plan = self.rm.cache().with_image(|image| {
            end_offset_requests(&committed, |topic, partition| {
                image
                    .topic_by_name(topic)
                    .and_then(|t| t.partition(partition))
                    .map(|p| p.leader)
                    .filter(|leader| *leader >= 0)
            })
        });
        let timeout = Duration::from_millis(
            u64::try_from(self.config.offsets_commit_timeout_ms).unwrap_or(5000),
        );
        let ends = end_offsets(source, &plan, timeout).await;
        let lag = strom_group::lag::lag(&committed, &ends);
        *self.lag.lock().unwrap_or_else(|e| e.into_inner()) = lag;
    }

    /// Runs [`refresh_lag`](Self::refresh_lag) every
    /// `group.consumer.lag.interval.ms` until the coordinator stops.
    pub async fn run_lag(self: Arc<Self>, source: Arc<dyn EndOffsets>) {
        let interval = Duration::from_millis(
            u64::try_from(self.config.consumer_lag_interval_ms).unwrap_or(30_000),
        );
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.stop.cancelled() => break,
            }
            tokio::select! {
                _ = self.refresh_lag(source.as_ref()) => {}
                _ = self.stop.cancelled() => break,
            }
        }
    }

    /// `OffsetFetch`. With `require_stable`, UNSTABLE_OFFSET_COMMIT
    /// (retriable) while a transactional commit of a wanted partition
    /// waits for its marker.
    pub async fn fetch_offsets(
        self: &Arc<Self>,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
        require_stable: bool,
    ) -> Result<Vec<FetchedOffset>, StromError> {
        let (_, _, shard) = self.shard_for(group_id)?;
        let shard = shard.lock().await;
        if require_stable {
            let pending = match &partitions {
                None => shard.has_pending_offsets(group_id, None),
                Some(wanted) => wanted
                    .iter()
                    .any(|(t, p)| shard.has_pending_offsets(group_id, Some((t, *p)))),
            };
            if pending {
                return Err(StromError::new(
                    ErrorCode::UnstableOffsetCommit,
                    format!(
                        "group {group_id:?} has a transactional offset commit waiting for its transaction to end"
                    ),
                ));
            }
        }
        shard
            .fetch_offsets(group_id, partitions.as_deref())
            .map_err(group_error)
    }

    /// `OffsetDelete`.
    pub async fn delete_offsets(
        self: &Arc<Self>,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), StromError> {
        self.decide(group_id, |shard, topics, _| {
            Ok((shard.delete_offsets(group_id, &partitions, topics)?, ()))
        })
        .await
    }

    /// `DeleteGroup`.
    pub async fn delete_group(self: &Arc<Self>, group_id: &str) -> Result<(), StromError> {
        self.decide(group_id, |shard, _, _| {
            Ok((shard.delete_group(group_id)?, ()))
        })
        .await
    }

    /// `DescribeGroup`.
    pub async fn describe_group(
        self: &Arc<Self>,
        group_id: &str,
    ) -> Result<GroupDescription, StromError> {
        let (_, _, shard) = self.shard_for(group_id)?;
        let shard = shard.lock().await;
        shard.describe_group(group_id).map_err(group_error)
    }

    /// `ListGroups`: the groups of every partition this broker has loaded.
    pub async fn list_groups(self: &Arc<Self>) -> Vec<GroupListing> {
        let mut out = Vec::new();
        for (_, _, s) in self.host.active() {
            out.extend(s.lock().await.list_groups());
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    async fn push_metadata_changes(&self, topics: &Topics) {
        if self.pushes.is_empty() {
            return;
        }
        for (_, _, shard) in self.host.active() {
            self.pushes.after_metadata(&*shard.lock().await, topics);
        }
    }

    /// Expires sessions and revocation timeouts every `tick`, and old
    /// offsets every minute, until `stop`.
    /// On each change of the cluster's topics (not every metadata change:
    /// names, ids and partition counts), pushes a heartbeat to the members
    /// whose subscription it affects.
    pub async fn run(self: Arc<Self>, tick: Duration) {
        let mut ticks: u64 = 0;
        let mut timer = tokio::time::interval(tick);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer.tick().await;
        let mut image = Some(self.rm.cache().subscribe());
        let mut known_topics = self.topics();
        loop {
            let image_changed = async {
                match image.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = timer.tick() => {}
                open = image_changed => {
                    if !open {
                        image = None;
                        continue;
                    }
                    let topics = self.topics();
                    if topics != known_topics {
                        known_topics = topics;
                        self.push_metadata_changes(&known_topics).await;
                    }
                    continue;
                }
                _ = self.stop.cancelled() => break,
            }
            ticks += 1;
            let offsets_due =
                ticks.is_multiple_of((60_000 / tick.as_millis().max(1) as u64).max(1));
            let active = self.host.active();
            let topics = self.topics();
            for (p, epoch, shard) in active {
                let mut shard = shard.lock().await;
                let now = now_ms();
                let mut records = shard.expire(&topics, now);
                if offsets_due {
                    records.extend(shard.expire_offsets(now));
                }
                if !records.is_empty()
                    && let Err(e) = self.write(&mut shard, p, epoch, &records, now).await
                {
                    tracing::warn!(partition = p, error = %e, "writing expirations failed");
                }
            }
        }
        self.host.close().await;
    }
}
