//! [`ReplicaManager`]: hosts this broker's partition replicas and keeps
//! their roles in step with the metadata image.
//!
//! On every image change it plans ([`plan`](super::plan)), then executes:
//! a new leader epoch naming this broker makes it leader (its epoch starts
//! at the log end); any other leader makes it a follower fetching from that
//! leader; an ISR change at the same epoch updates the leader's view; a
//! partition no longer assigned (deleted topic, moved replica) is stopped
//! and its directory removed. Logs open in parallel on the blocking pool,
//! and role changes run concurrently (their fsyncs on the blocking pool),
//! so failover does not grow with the partitions a broker takes over one
//! fsync at a time. Listeners ([`LeadershipListener`]) hear of each role
//! change once it took effect. Directories left from before a restart that
//! the image does not assign are removed only once the broker has replayed
//! the metadata log up to its registration, never on a partial image.
//! The loop also runs the periodic work: the ISR shrink check, checkpoints
//! and retention (`retention.rs`); the log cleaner (`cleaner.rs`) runs on
//! its own threads from the loop's start to its end.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use strom_metadata::ClusterImage;
use strom_proto::StromError;
use strom_proto::v1::{ErrorCode, LeaderIdAndEpoch};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::cleaner::{Cleaner, CleanerStats};
use super::config::ReplicationConfig;
use super::fetcher::Fetchers;
use super::isr::IsrSender;
use super::leadership::{LeadershipChange, LeadershipListener, LeadershipRole};
use super::log_dir::LogDirHealth;
use super::partition::Partition;
use super::peer_grpc::GrpcPeers;
use super::plan::{self, Assigned, Defaults, Hosted, Key, Transition};
use super::quota::ReplicationQuotas;
use super::retention::RetentionStats;
use super::seams::{Blocking, ControllerClient, Host, Seams, SystemClock};
use super::{FixedMap, PartError};
use crate::lifecycle::BrokerStatus;
use crate::metadata::MetadataCache;

/// File in a partition directory naming the topic id it belongs to.
const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// The partitions this broker hosts.
#[derive(Debug)]
pub struct ReplicaManager {
    node_id: i32,
    config: ReplicationConfig,
    log_dir: PathBuf,
    cache: MetadataCache,
    partitions: RwLock<FixedMap<Key, Arc<Partition>>>,
    fetchers: Fetchers,
    isr: IsrSender,
    listeners: RwLock<Vec<Arc<dyn LeadershipListener>>>,
    log_dir_health: LogDirHealth,
    /// What each partition takes from this manager (clock, blocking work).
    host: Host,
    /// Segments and bytes retention and DeleteRecords removed.
    retention: Arc<RetentionStats>,
    /// What the log cleaner did.
    cleaner: Arc<CleanerStats>,
    /// Producer ids for `InitProducerId`.
    producer_ids: super::producer_ids::ProducerIds,
    /// The replication throttles' byte rates (leader and follower side).
    quotas: Arc<ReplicationQuotas>,
    /// KIP-890 verification of transactional batches (set once the
    /// transaction coordinator exists; without it they are refused).
    txn_verifier: std::sync::OnceLock<Arc<dyn super::seams::TxnVerifier>>,
}

/// Most logs opened, and role changes run, at once: enough to keep the
/// blocking pool's fsyncs overlapping, few enough to bound memory and
/// file descriptors in flight.
const PARALLEL_TRANSITIONS: usize = 64;

/// Most checkpoints written at once.
const PARALLEL_CHECKPOINTS: usize = 16;

/// Where a partition's log lives: `<log dir>/<topic>-<partition>`.
fn partition_dir(log_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    log_dir.join(format!("{topic}-{partition}"))
}

/// The topic id a partition directory was claimed for: `None` when it has
/// no `partition.metadata`, or one naming no valid topic id.
pub(crate) fn read_topic_id(dir: &Path) -> std::io::Result<Option<Uuid>> {
    match std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)) {
        Ok(text) => Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("topic_id: "))
            .and_then(|v| Uuid::parse_str(v.trim()).ok())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Claims `dir` for `topic_id`: a directory left by an earlier topic of the
/// same name is removed first.
pub(crate) fn claim_dir(dir: &Path, topic_id: Uuid) -> std::io::Result<()> {
    let meta = dir.join(PARTITION_METADATA_FILE);
    if meta.exists() {
        if read_topic_id(dir)? == Some(topic_id) {
            return Ok(());
        }
        tracing::warn!(dir = %dir.display(), "removing the log of an earlier topic with the same name");
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{PARTITION_METADATA_FILE}.tmp"));
    std::fs::write(&tmp, format!("version: 0\ntopic_id: {topic_id}\n"))?;
    std::fs::rename(&tmp, &meta)
}

impl ReplicaManager {
    /// A manager hosting logs under `<data_dir>/logs`, whose health
    /// `log_dir_health` tracks (the lifecycle reports it to the controller),
    /// sending ISR changes to `controller` and fetching from leaders over
    /// gRPC, on the system clock and the blocking pool.
    pub fn new(
        node_id: i32,
        config: ReplicationConfig,
        data_dir: &Path,
        cache: MetadataCache,
        controller: Arc<dyn ControllerClient>,
        status: watch::Receiver<BrokerStatus>,
        log_dir_health: LogDirHealth,
    ) -> Arc<Self> {
        let seams = Seams {
            controller,
            peers: Arc::new(GrpcPeers::new(config.clone(), cache.clone())),
            clock: Arc::new(SystemClock),
            blocking: Blocking::Pool,
        };
        Self::with_seams(
            node_id,
            config,
            data_dir,
            cache,
            seams,
            status,
            log_dir_health,
        )
    }

    /// [`new`](Self::new) with every seam given: a simulation's in-memory
    /// controller and peers, a clock on tokio's time, blocking work inline.
    pub fn with_seams(
        node_id: i32,
        config: ReplicationConfig,
        data_dir: &Path,
        cache: MetadataCache,
        seams: Seams,
        status: watch::Receiver<BrokerStatus>,
        log_dir_health: LogDirHealth,
    ) -> Arc<Self> {
        strom_log::set_cache_drop_behind(config.cache_drop_behind_bytes);
        let quotas = Arc::new(ReplicationQuotas::default());
        let fetchers = Fetchers::new(node_id, config.clone(), seams.peers, quotas.clone());
        Arc::new(Self {
            node_id,
            log_dir: data_dir.join("logs"),
            producer_ids: super::producer_ids::ProducerIds::new(
                node_id,
                Arc::clone(&seams.controller),
                status.clone(),
            ),
            isr: IsrSender::new(node_id, seams.controller, status),
            config,
            cache,
            partitions: RwLock::new(FixedMap::default()),
            fetchers,
            listeners: RwLock::new(Vec::new()),
            host: Host {
                node_id,
                health: log_dir_health.clone(),
                clock: seams.clock,
                blocking: seams.blocking,
                flushes: tokio_util::task::TaskTracker::new(),
            },
            log_dir_health,
            retention: Arc::default(),
            cleaner: Arc::default(),
            quotas,
            txn_verifier: std::sync::OnceLock::new(),
        })
    }

    /// Serves KIP-890 verification of transactional batches with
    /// `verifier` (the transaction coordinator); set once.
    pub fn set_txn_verifier(&self, verifier: Arc<dyn super::seams::TxnVerifier>) {
        if self.txn_verifier.set(verifier).is_err() {
            tracing::warn!("the transaction verifier was already set");
        }
    }

    pub(super) fn txn_verifier(&self) -> Option<&Arc<dyn super::seams::TxnVerifier>> {
        self.txn_verifier.get()
    }

    /// A new producer id, unique in the cluster forever: `InitProducerId`
    /// of an idempotent producer without a transactional id gets it at
    /// epoch 0 (as Kafka; the producer bumps its epoch on its own after
    /// that, KIP-360). The transaction coordinator takes its ids here too.
    pub async fn new_producer_id(&self) -> Result<i64, StromError> {
        self.producer_ids.next_id().await
    }

    /// The log directory's health.
    pub fn log_dir_health(&self) -> &LogDirHealth {
        &self.log_dir_health
    }

    /// What retention and DeleteRecords deleted, for metrics.
    pub fn retention_stats(&self) -> Arc<RetentionStats> {
        self.retention.clone()
    }

    /// The replication throttles: rates in force and throttled bytes, for
    /// metrics.
    pub fn replication_quotas(&self) -> Arc<ReplicationQuotas> {
        self.quotas.clone()
    }

    pub(super) fn replication_quotas_ref(&self) -> &ReplicationQuotas {
        &self.quotas
    }

    /// What the log cleaner did, for metrics.
    pub fn cleaner_stats(&self) -> Arc<CleanerStats> {
        self.cleaner.clone()
    }

    /// Where blocking work runs.
    pub(super) fn blocking(&self) -> Blocking {
        self.host.blocking
    }

    /// Tells `listener` of every role change from now on.
    pub fn add_listener(&self, listener: Arc<dyn LeadershipListener>) {
        self.listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener);
    }

    fn notify(&self, part: &Partition, leader_epoch: i32, role: LeadershipRole) {
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if listeners.is_empty() {
            return;
        }
        let change = LeadershipChange {
            topic: part.topic.clone(),
            topic_id: part.topic_id,
            partition: part.index,
            leader_epoch,
            role,
        };
        for l in listeners {
            l.on_change(&change);
        }
    }

    /// This broker's id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The settings.
    pub fn config(&self) -> &ReplicationConfig {
        &self.config
    }

    /// The metadata image this manager follows.
    pub fn cache(&self) -> &MetadataCache {
        &self.cache
    }

    pub(crate) fn isr_sender(&self) -> &IsrSender {
        &self.isr
    }

    pub(super) fn hosted(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The hosted replica of `topic`-`partition`, or the error a client
    /// should see: UNKNOWN_TOPIC_OR_PARTITION when the image has no such
    /// partition, NOT_LEADER_OR_FOLLOWER when this broker hosts no replica.
    pub(crate) fn partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, PartError> {
        let id = self.cache.with_image(|image| {
            let t = image.topic_by_name(topic)?;
            t.partition(partition)?;
            Some(t.id)
        });
        let Some(id) = id else {
            return Err(PartError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic partition {topic}-{partition} does not exist"),
            ));
        };
        if let Some(reason) = self.log_dir_health.reason() {
            return Err(PartError::new(
                ErrorCode::KafkaStorageError,
                format!(
                    "the log directory of {topic}-{partition} on broker {} is offline: {reason}",
                    self.node_id
                ),
            ));
        }
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(id, partition))
            .cloned()
            .ok_or_else(|| PartError::not_leader(topic, partition))
    }

    /// The size of `part`'s log in bytes (its segments' files).
    fn log_bytes(part: &Partition) -> i64 {
        part.reader().segments().map_or(0, |segments| {
            let total: u64 = segments.iter().map(|s| s.size_bytes).sum();
            i64::try_from(total).unwrap_or(i64::MAX)
        })
    }

    /// The partition's leader as this broker's image says, for redirects.
    pub fn leader_hint(&self, topic: &str, partition: i32) -> Option<LeaderIdAndEpoch> {
        self.cache.with_image(|image| {
            let p = image.topic_by_name(topic)?.partition(partition)?;
            let leader_address = image
                .broker(p.leader)
                .map(strom_proto::convert::broker_address)
                .unwrap_or_default();
            Some(LeaderIdAndEpoch {
                leader_id: p.leader,
                leader_epoch: p.leader_epoch,
                leader_address,
            })
        })
    }

    /// The broker defaults in force: static settings with the image's live
    /// broker settings over them.
    fn defaults(&self, image: &ClusterImage) -> Defaults {
        let (defaults, ignored) = plan::defaults(&self.config, image, self.node_id);
        if !ignored.is_empty() {
            tracing::debug!(?ignored, "live broker settings this broker cannot apply");
        }
        defaults
    }

    fn assigned(&self, image: &ClusterImage) -> Vec<Assigned> {
        plan::assigned(image, self.node_id, &self.defaults(image))
    }

    /// The partitions the image assigns here, with the throttle rates in
    /// force taken into the quotas.
    fn assigned_and_rates(&self, image: &ClusterImage) -> Vec<Assigned> {
        let defaults = self.defaults(image);
        self.quotas.leader.set_rate(defaults.leader_throttled_rate);
        self.quotas
            .follower
            .set_rate(defaults.follower_throttled_rate);
        plan::assigned(image, self.node_id, &defaults)
    }

    async fn open(&self, a: &Assigned) -> Result<Arc<Partition>, crate::Error> {
        let dir = partition_dir(&self.log_dir, &a.topic, a.partition);
        let (topic, topic_id, index, config, host) = (
            a.topic.clone(),
            a.topic_id,
            a.partition,
            a.log.clone(),
            self.host.clone(),
        );
        self.host
            .blocking
            .run(move || {
                claim_dir(&dir, topic_id).map_err(|source| crate::Error::Io {
                    context: format!("claim {}", dir.display()),
                    source,
                })?;
                Ok(Partition::open(
                    &dir, &topic, topic_id, index, config, &host,
                )?)
            })
            .await?
    }

    /// Brings every hosted replica in line with the image. Before this
    /// process has registered and replayed the metadata log up to its
    /// registration (`registered`), it takes no leadership the image names
    /// it for ([`Transition::Wait`]).
    async fn reconcile(&self, registered: bool) {
        if self.log_dir_health.is_offline() {
            // Nothing is opened, led, followed or deleted on a failed disk.
            return;
        }
        let started = Instant::now();
        let assigned = self
            .cache
            .with_image(|image| self.assigned_and_rates(image));
        let hosted: HashMap<Key, Hosted> = self
            .hosted()
            .iter()
            .map(|p| {
                let (role, leader_epoch) = p.role();
                ((p.topic_id, p.index), Hosted { role, leader_epoch })
            })
            .collect();
        let plan = plan::plan(self.node_id, &assigned, &hosted, registered);
        let role_changes = plan.role_changes();

        // Open every new log, in parallel on the blocking pool.
        let opening: Vec<_> = plan
            .steps
            .iter()
            .filter(|s| s.open)
            .map(|s| {
                let a = assigned[s.assigned].clone();
                async move {
                    let result = self.open(&a).await;
                    (a.key(), result)
                }
            })
            .collect();
        let opened: Vec<(Key, Result<Arc<Partition>, crate::Error>)> =
            futures::stream::iter(opening)
                .buffer_unordered(PARALLEL_TRANSITIONS)
                .collect()
                .await;
        {
            let mut map = self.partitions.write().unwrap_or_else(|e| e.into_inner());
            for (key, result) in opened {
                match result {
                    Ok(p) => {
                        map.insert(key, p);
                    }
                    Err(e) => {
                        tracing::error!(topic_id = %key.0, partition = key.1, error = %e, "cannot open partition log");
                    }
                }
            }
        }

        // Role changes, concurrently; updates are cheap and synchronous.
        let changing: Vec<_> = {
            let map = self.partitions.read().unwrap_or_else(|e| e.into_inner());
            plan.steps
                .iter()
                .filter_map(|s| {
                    let a = assigned[s.assigned].clone();
                    let part = map.get(&a.key()).cloned()?;
                    Some(self.transition(s.transition, a, part))
                })
                .collect()
        };
        futures::stream::iter(changing)
            .buffer_unordered(PARALLEL_TRANSITIONS)
            .collect::<Vec<()>>()
            .await;

        for key in plan.remove {
            let part = self
                .partitions
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            if let Some(part) = part {
                self.remove(part).await;
            }
        }
        if role_changes > 0 {
            tracing::info!(
                role_changes,
                elapsed_ms = started.elapsed().as_millis(),
                "followed the metadata image"
            );
        }
    }

    async fn transition(&self, transition: Transition, a: Assigned, part: Arc<Partition>) {
        let p = &a.state;
        // Topic configs and live broker defaults reach open logs here.
        part.set_log_config(&a.log);
        part.set_throttle(a.throttle.clone());
        match transition {
            Transition::Wait => {}
            Transition::Update => part.update(p, a.keeping),
            Transition::Leader => {
                self.fetchers.remove(&part);
                match part.make_leader(p, a.keeping).await {
                    Ok(()) => self.notify(&part, p.leader_epoch, LeadershipRole::Leader),
                    Err(e) => {
                        tracing::error!(topic = %a.topic, partition = a.partition, error = %e, "cannot become leader");
                    }
                }
            }
            Transition::Follower => {
                self.fetchers.remove(&part);
                part.make_follower(p, a.keeping).await;
                if p.leader >= 0 {
                    self.fetchers.add(p.leader, part.clone());
                }
                self.notify(
                    &part,
                    p.leader_epoch,
                    LeadershipRole::Follower { leader: p.leader },
                );
            }
        }
    }

    /// Stops a replica no longer assigned here and deletes its log.
    async fn remove(&self, part: Arc<Partition>) {
        self.fetchers.remove(&part);
        part.stop().await;
        part.flushes_done().await;
        self.notify(&part, -1, LeadershipRole::Removed);
        let dir = partition_dir(&self.log_dir, &part.topic, part.index);
        tracing::info!(topic = %part.topic, partition = part.index, "partition no longer assigned here: deleting its log");
        if let Err(e) = part.close().await {
            tracing::warn!(error = %e, "closing a removed partition");
        }
        if let Err(e) = self
            .host
            .blocking
            .run(move || std::fs::remove_dir_all(dir))
            .await
        {
            tracing::warn!(error = %e, "deleting a removed partition");
        }
    }

    /// Removes partition directories the image does not assign here.
    async fn remove_orphans(&self) {
        let wanted: HashSet<PathBuf> = self.cache.with_image(|image| {
            self.assigned(image)
                .iter()
                .map(|a| partition_dir(&self.log_dir, &a.topic, a.partition))
                .collect()
        });
        let dir = self.log_dir.clone();
        let result = self.host.blocking.run(move || -> std::io::Result<usize> {
            let mut removed = 0;
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let path = entry?.path();
                if path.is_dir() && !wanted.contains(&path) {
                    tracing::info!(dir = %path.display(), "removing a partition log not assigned to this broker");
                    std::fs::remove_dir_all(&path)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "removing unassigned partition logs"),
            Err(e) => tracing::warn!(error = %e, "removing unassigned partition logs"),
        }
    }

    /// The log directory failed: every replica stops serving (appends and
    /// fetches get KAFKA_STORAGE_ERROR) and stops fetching. The controller,
    /// told by the next heartbeat, fences this broker and moves its
    /// leaderships away.
    async fn take_offline(&self) {
        let parts = self.hosted();
        tracing::warn!(
            replicas = parts.len(),
            "log directory offline: stopping every replica"
        );
        for part in parts {
            self.fetchers.remove(&part);
            part.stop().await;
            self.notify(&part, -1, LeadershipRole::Removed);
        }
    }

    /// ISR shrink check over the partitions this broker leads.
    fn shrink_isrs(&self) {
        let lag = i64::try_from(self.config.replica_lag_time_max.as_millis()).unwrap_or(i64::MAX);
        for part in self.hosted() {
            if let Some(change) = part.shrink_check(lag) {
                tracing::info!(topic = %part.topic, partition = part.index, new_isr = ?change.new_isr, "shrinking ISR: followers lag");
                self.isr.submit(part, change);
            }
        }
    }

    /// Checkpoints every hosted log, several at once (each is a write and
    /// two fsyncs on the blocking pool; unchanged ones are skipped by the
    /// log). It runs in the manager's loop, so no log is removed meanwhile.
    async fn checkpoint_all(&self) {
        if self.log_dir_health.is_offline() {
            return;
        }
        let checkpoints: Vec<_> = self
            .hosted()
            .into_iter()
            .map(|part| async move { (part.checkpoint().await, part) })
            .collect();
        let results: Vec<_> = futures::stream::iter(checkpoints)
            .buffer_unordered(PARALLEL_CHECKPOINTS)
            .collect()
            .await;
        for (result, part) in results {
            if let Err(e) = result {
                self.log_dir_health.check(&e);
                tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "checkpoint failed");
            }
        }
    }

    /// Follows the image until `shutdown`, then closes every log.
    pub async fn run(
        self: Arc<Self>,
        mut status: watch::Receiver<BrokerStatus>,
        shutdown: CancellationToken,
    ) {
        let mut changes = self.cache.subscribe();
        let mut shrink = tokio::time::interval(
            (self.config.replica_lag_time_max / 2).max(Duration::from_millis(50)),
        );
        let mut checkpoint = tokio::time::interval(self.config.checkpoint_interval);
        // Not at start-up: a full interval after it, as Kafka's log manager.
        let retention_every = self.config.retention_check_interval;
        let mut retention = tokio::time::interval_at(
            tokio::time::Instant::now() + retention_every,
            retention_every,
        );
        shrink.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut registered = false;
        let mut orphans_done = false;
        let mut dirty = true;
        let mut dir_health = self.log_dir_health.subscribe();
        let mut offline = false;
        let cleaner = Cleaner::start(&self, shutdown.child_token());
        loop {
            if !offline && self.log_dir_health.is_offline() {
                offline = true;
                self.take_offline().await;
            }
            if !registered && status.borrow().caught_up {
                registered = true;
                dirty = true;
            }
            if dirty {
                changes.borrow_and_update();
                self.reconcile(registered).await;
                dirty = false;
            }
            if !orphans_done && registered && !offline {
                self.remove_orphans().await;
                orphans_done = true;
            }
            // Biased: shutdown, a failed disk and image changes (a failover
            // to take part in) go before the periodic work; and a seeded
            // simulation replays only if the branch taken when several are
            // ready does not depend on tokio's random choice.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                r = dir_health.changed(), if !offline => if r.is_err() { break },
                r = changes.changed() => if r.is_err() { break } else { dirty = true },
                r = status.changed(), if !registered => if r.is_err() { break },
                _ = shrink.tick() => self.shrink_isrs(),
                _ = checkpoint.tick() => self.checkpoint_all().await,
                _ = retention.tick() => self.retention_sweep().await,
            }
        }
        // The cleaner swaps segments under the writers: stop it first.
        cleaner.stop().await;
        self.fetchers.shutdown().await;
        self.isr.shutdown().await;
        // Flush jobs hold their partitions: let them end before closing.
        self.host.flushes.close();
        self.host.flushes.wait().await;
        let parts: Vec<Arc<Partition>> = self
            .partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, p)| p)
            .collect();
        for part in parts {
            let (topic, index) = (part.topic.clone(), part.index);
            if let Err(e) = part.close().await {
                tracing::warn!(%topic, partition = index, error = %e, "closing partition log");
            }
        }
    }
}

impl crate::lifecycle::ReplicaSizes for ReplicaManager {
    fn replica_sizes(&self) -> Vec<(Uuid, i32, i64)> {
        let partitions = self.partitions.read().unwrap_or_else(|e| e.into_inner());
        partitions
            .iter()
            .map(|(key, part)| (key.0, key.1, Self::log_bytes(part)))
            .collect()
    }

    fn total_bytes(&self) -> i64 {
        let partitions = self.partitions.read().unwrap_or_else(|e| e.into_inner());
        partitions.values().map(|p| Self::log_bytes(p)).sum()
    }
}
