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
//! * A timer expires sessions, revocation timeouts and old offsets.
//! * Another ([`GroupCoordinator::run_lag`]) reads the end offsets of the
//!   committed partitions from their leaders for the consumer-lag metric.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strom_controller_client::QuorumClient;
use strom_group::lag::{TopicLag, end_offset_requests};
use strom_group::shard::FetchedOffset;
use strom_group::{
    CommitRequest, GroupDescription, GroupError, GroupListing, HeartbeatRequest, HeartbeatResponse,
    OFFSETS_TOPIC, Record, Shard, Topics, offsets_partition_for,
};
use strom_proto::StromError;
use strom_proto::v1::{CreatableTopic, CreateTopicsRequest, ErrorCode};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::lag::{EndOffsets, end_offsets};
use super::topics::{CoordinatorLookup, lookup, topics};
use super::{GroupsConfig, load, write};
use crate::replica::{
    LeadershipChange, LeadershipListener, LeadershipRole, PartError, ReplicaManager,
};

/// How the gRPC layer holds the coordinator.
pub type Coordinator = Arc<GroupCoordinator>;

type ShardRef = Arc<tokio::sync::Mutex<Shard>>;

#[derive(Debug, Clone)]
enum Slot {
    Loading { epoch: i32 },
    Active { epoch: i32, shard: ShardRef },
}

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
    quorum: Option<Arc<QuorumClient>>,
    config: GroupsConfig,
    controller_timeout: Duration,
    slots: Mutex<HashMap<i32, Slot>>,
    creating: AtomicBool,
    counters: Counters,
    /// The last consumer-lag round's result.
    lag: Mutex<BTreeMap<(String, String), TopicLag>>,
    tasks: TaskTracker,
    stop: CancellationToken,
    runtime: tokio::runtime::Handle,
}

#[derive(Debug)]
struct Listener(Weak<GroupCoordinator>);

impl LeadershipListener for Listener {
    fn on_change(&self, change: &LeadershipChange) {
        if change.topic != OFFSETS_TOPIC {
            return;
        }
        if let Some(c) = self.0.upgrade() {
            c.on_change(change);
        }
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

/// Kafka's mapping of a failed offsets-topic write to what the client sees.
fn write_error(e: PartError, group_id: &str) -> StromError {
    let code = match e.code {
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend
        | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
        _ => ErrorCode::NotCoordinator,
    };
    StromError::new(
        code,
        format!("the write for group {group_id:?} failed: {}", e.message),
    )
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
        let c = Arc::new(GroupCoordinator {
            rm: rm.clone(),
            quorum,
            config,
            controller_timeout,
            slots: Mutex::new(HashMap::new()),
            creating: AtomicBool::new(false),
            counters: Counters::default(),
            lag: Mutex::default(),
            tasks: TaskTracker::new(),
            stop,
            runtime: tokio::runtime::Handle::current(),
        });
        rm.add_listener(Arc::new(Listener(Arc::downgrade(&c))));
        c
    }

    /// The settings.
    pub fn config(&self) -> &GroupsConfig {
        &self.config
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn on_change(self: &Arc<Self>, change: &LeadershipChange) {
        let p = change.partition;
        match change.role {
            LeadershipRole::Leader => self.start_load(p, change.leader_epoch),
            LeadershipRole::Follower { .. } | LeadershipRole::Removed => {
                if self.slots().remove(&p).is_some() {
                    tracing::info!(partition = p, "unloaded offsets partition");
                }
            }
        }
    }

    fn start_load(self: &Arc<Self>, p: i32, epoch: i32) {
        self.slots().insert(p, Slot::Loading { epoch });
        let this = self.clone();
        self.tasks
            .spawn_on(this.load_until_done(p, epoch), &self.runtime);
    }

    fn still_loading(&self, p: i32, epoch: i32) -> bool {
        matches!(self.slots().get(&p), Some(Slot::Loading { epoch: e }) if *e == epoch)
    }

    async fn load_until_done(self: Arc<Self>, p: i32, epoch: i32) {
        let mut backoff = Duration::from_millis(50);
        while self.still_loading(p, epoch) && !self.stop.is_cancelled() {
            let rm = self.rm.clone();
            let config = self.config.group.clone();
            let started = std::time::Instant::now();
            let loaded =
                tokio::task::spawn_blocking(move || load::load(&rm, OFFSETS_TOPIC, p, config))
                    .await;
            match loaded {
                Ok(Ok(mut shard)) => {
                    shard.start_sessions(now_ms());
                    let groups = shard.list_groups().len();
                    let mut slots = self.slots();
                    if matches!(slots.get(&p), Some(Slot::Loading { epoch: e }) if *e == epoch) {
                        slots.insert(
                            p,
                            Slot::Active {
                                epoch,
                                shard: Arc::new(tokio::sync::Mutex::new(shard)),
                            },
                        );
                        tracing::info!(
                            partition = p,
                            leader_epoch = epoch,
                            groups,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "loaded offsets partition"
                        );
                    }
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(partition = p, error = %e, "loading offsets partition failed; retrying");
                }
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "loading offsets partition panicked; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Reloads partition `p` from its log if this broker still leads it at
    /// `epoch` (after a failed write).
    fn reload(self: &Arc<Self>, p: i32, epoch: i32) {
        let leads =
            matches!(self.slots().get(&p), Some(Slot::Active { epoch: e, .. }) if *e == epoch);
        if leads {
            tracing::warn!(
                partition = p,
                "reloading offsets partition after a failed write"
            );
            self.start_load(p, epoch);
        }
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
        match self.slots().get(&p) {
            Some(Slot::Active { epoch, shard }) => Ok((p, *epoch, shard.clone())),
            Some(Slot::Loading { .. }) => Err(StromError::new(
                ErrorCode::CoordinatorLoadInProgress,
                format!(
                    "broker {} is loading offsets partition {p}",
                    self.rm.node_id()
                ),
            )),
            None => Err(StromError::new(
                ErrorCode::NotCoordinator,
                format!(
                    "broker {} is not the coordinator of group {group_id:?} (offsets partition {p})",
                    self.rm.node_id()
                ),
            )),
        }
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
                .map_err(|e| write_error(e, group_id))?;
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
                Ok(())
            }
            Err(e) => {
                self.counters.write_failures.fetch_add(1, Ordering::Relaxed);
                self.reload(p, epoch);
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
        match self.rm.cache().with_image(|image| lookup(image, p)) {
            CoordinatorLookup::Leader { node_id, address } => Ok((node_id, address, p)),
            CoordinatorLookup::NoLeader => Err(StromError::new(
                ErrorCode::CoordinatorNotAvailable,
                format!("offsets partition {p} has no leader now"),
            )),
            CoordinatorLookup::NoTopic => {
                self.create_offsets_topic();
                Err(StromError::new(
                    ErrorCode::CoordinatorNotAvailable,
                    format!("{OFFSETS_TOPIC} is being created"),
                ))
            }
        }
    }

    fn create_offsets_topic(self: &Arc<Self>) {
        let Some(quorum) = self.quorum.clone() else {
            return;
        };
        if self.creating.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        self.tasks.spawn_on(
            async move {
                let alive = this.rm.cache().with_image(|i| i.alive_brokers().len());
                let rf = this
                    .config
                    .offsets_topic_replication_factor
                    .min(i32::try_from(alive).unwrap_or(i32::MAX))
                    .max(1);
                let topic = CreatableTopic {
                    name: OFFSETS_TOPIC.to_owned(),
                    num_partitions: this.config.offsets_topic_num_partitions,
                    replication_factor: rf,
                    assignments: Vec::new(),
                    configs: [("cleanup.policy".to_owned(), "compact".to_owned())]
                        .into_iter()
                        .collect(),
                };
                let result = quorum
                    .call(this.controller_timeout, |mut c| {
                        let req = CreateTopicsRequest {
                            topics: vec![topic.clone()],
                            validate_only: false,
                        };
                        async move { c.create_topics(req).await }
                    })
                    .await;
                match result.map(|r| r.topics.into_iter().next()) {
                    Ok(Some(t))
                        if t.error_code == ErrorCode::None as i32
                            || t.error_code == ErrorCode::TopicAlreadyExists as i32 =>
                    {
                        tracing::info!(replication_factor = rf, "created {OFFSETS_TOPIC}");
                    }
                    Ok(t) => tracing::warn!(result = ?t, "creating {OFFSETS_TOPIC} failed"),
                    Err(e) => tracing::warn!(error = %e, "creating {OFFSETS_TOPIC} failed"),
                }
                this.creating.store(false, Ordering::SeqCst);
            },
            &self.runtime,
        );
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

    /// The coordinator's metrics.
    pub fn metrics(&self) -> GroupMetrics {
        let mut m = GroupMetrics::default();
        for state in ["Empty", "Assigning", "Reconciling", "Stable"] {
            m.groups_by_state.insert(state, 0);
        }
        for slot in self.slots().values() {
            match slot {
                Slot::Loading { .. } => m.partitions_loading += 1,
                Slot::Active { shard, .. } => {
                    m.partitions_loaded += 1;
                    if let Ok(shard) = shard.try_lock() {
                        for g in shard.list_groups() {
                            *m.groups_by_state.entry(g.state.name()).or_default() += 1;
                        }
                    }
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
        let shards: Vec<ShardRef> = self
            .slots()
            .values()
            .filter_map(|s| match s {
                Slot::Active { shard, .. } => Some(shard.clone()),
                Slot::Loading { .. } => None,
            })
            .collect();
        let mut committed = Vec::new();
        for shard in shards {
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

    /// `OffsetFetch`.
    pub async fn fetch_offsets(
        self: &Arc<Self>,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<FetchedOffset>, StromError> {
        let (_, _, shard) = self.shard_for(group_id)?;
        let shard = shard.lock().await;
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
        let shards: Vec<ShardRef> = self
            .slots()
            .values()
            .filter_map(|s| match s {
                Slot::Active { shard, .. } => Some(shard.clone()),
                Slot::Loading { .. } => None,
            })
            .collect();
        let mut out = Vec::new();
        for s in shards {
            out.extend(s.lock().await.list_groups());
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// Expires sessions and revocation timeouts every `tick`, and old
    /// offsets every minute, until `stop`.
    pub async fn run(self: Arc<Self>, tick: Duration) {
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = self.stop.cancelled() => break,
            }
            ticks += 1;
            let offsets_due =
                ticks.is_multiple_of((60_000 / tick.as_millis().max(1) as u64).max(1));
            let active: Vec<(i32, i32, ShardRef)> = self
                .slots()
                .iter()
                .filter_map(|(p, s)| match s {
                    Slot::Active { epoch, shard } => Some((*p, *epoch, shard.clone())),
                    Slot::Loading { .. } => None,
                })
                .collect();
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
        self.tasks.close();
        self.tasks.wait().await;
    }
}
