//! One hosted partition replica: its log, its role (leader or follower at a
//! leader epoch), and, as leader, the followers' progress, the ISR and the
//! high watermark. Decisions come from [`rules`](super::rules); this file
//! executes them under two locks, always taken in this order: the log
//! writer (`tokio::sync::Mutex`, held across appends and truncations) and the
//! replication state (`std::sync::Mutex`, never held across an await).
//!
//! Every change a waiter may care about (log end, high watermark, role, ISR)
//! bumps a change counter (`changes.rs`); delayed produce and fetch wait on
//! it instead of polling.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use strom_log::{AbortedTxn, AppendInfo, FetchData, LogConfig, LogError, LogReader, PartitionLog};
use strom_metadata::PartitionState;
use strom_proto::v1::ErrorCode;
use uuid::Uuid;

use super::PartError;
use super::changes::{Changes, Subscription};
use super::fetch::Isolation;
use super::log_dir::LogDirHealth;
use super::rules::{self, AcksAll, Durability, FollowerProgress, IsrState};
use super::seams::{Blocking, Host};

/// What a consumer read of one partition returns.
#[derive(Debug)]
pub(crate) struct ConsumerRead {
    /// The records and the offsets the log reported with them.
    pub(crate) data: FetchData,
    /// The last stable offset when the read began.
    pub(crate) last_stable_offset: i64,
    /// `read_committed` only: the aborted transactions overlapping the records.
    pub(crate) aborted: Vec<AbortedTxn>,
}

/// One producer of a partition, as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// Sequence of its last record in this epoch, -1 when none.
    pub last_sequence: i32,
    /// When its last batch was appended here (this log's clock, ms).
    pub last_timestamp: i64,
    /// Coordinator epoch of the last marker written for it, -1 when none.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction here, -1 when none.
    pub current_txn_start_offset: i64,
}

/// The replica's role at `leader_epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Not assigned yet, or stopped.
    None,
    /// This broker leads the partition.
    Leader,
    /// This broker follows `leader` (-1: offline, nobody to fetch from).
    Follower { leader: i32 },
}

#[derive(Debug)]
struct State {
    role: Role,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<i32>,
    isr: IsrState,
    /// Log end offset when this broker became leader at `leader_epoch`.
    leader_epoch_start: i64,
    followers: BTreeMap<i32, FollowerProgress>,
    min_isr: usize,
    /// `write.caching=false`: the high watermark counts fsynced offsets
    /// only, and this replica fsyncs everything it appends at once (group
    /// commit) — as leader through its flusher, as follower before its
    /// next fetch.
    durable: bool,
}

/// What the image says about how a replica keeps its records: the topic's
/// effective `min.insync.replicas` and `write.caching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keeping {
    pub(crate) min_isr: usize,
    /// `write.caching=false`.
    pub(crate) durable: bool,
}

/// Which of this replica's traffic counts against the broker's replication
/// throttles (`strom_metadata::throttle`, refreshed at every image).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Throttle {
    /// As leader: followers whose fetches the leader quota meters.
    pub(crate) followers: Vec<i32>,
    /// As follower: this replica's fetches are metered by the follower
    /// quota.
    pub(crate) follower: bool,
}

/// The partition's flush job: at most one runs; appends during it ask for
/// one more round, which covers all of them (group commit).
#[derive(Debug, Default)]
struct FlushJob {
    running: bool,
    again: bool,
}

/// A change of ISR the leader wants to send to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IsrChange {
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
    pub(crate) new_isr: Vec<i32>,
}

/// What a follower fetch found, before reading.
#[derive(Debug)]
pub(crate) struct FollowerFetch {
    /// The follower must truncate: (epoch, end offset) on the leader.
    pub(crate) diverging: Option<(i32, i64)>,
    /// The follower caught up and may join the ISR.
    pub(crate) expand: Option<IsrChange>,
}

/// One partition replica hosted by this broker.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) topic: String,
    pub(crate) topic_id: Uuid,
    pub(crate) index: i32,
    node_id: i32,
    /// The writer. Work that may fsync or rewrite files (becoming leader,
    /// truncation) runs on the blocking pool holding an owned guard.
    log: Arc<tokio::sync::Mutex<PartitionLog>>,
    reader: LogReader,
    state: Mutex<State>,
    changed: Changes,
    /// Told of every storage failure: it takes the log directory offline.
    health: LogDirHealth,
    /// Wall-clock time for the ISR lag rules.
    clock: Arc<dyn strom_log::Clock>,
    /// Where fsyncs and truncations run.
    blocking: Blocking,
    /// The flush jobs of the manager's partitions, awaited on shutdown.
    flushes: tokio_util::task::TaskTracker,
    flush_job: Mutex<FlushJob>,
    throttle: Mutex<Throttle>,
}

impl Partition {
    /// Opens (or creates) the log in `dir`; blocking, recovery may scan.
    pub(crate) fn open(
        dir: &Path,
        topic: &str,
        topic_id: Uuid,
        index: i32,
        config: LogConfig,
        host: &Host,
    ) -> Result<Arc<Self>, LogError> {
        let log = PartitionLog::open_with_clock(dir, config, host.clock.clone())?;
        let reader = log.reader();
        Ok(Arc::new(Self {
            topic: topic.to_owned(),
            topic_id,
            index,
            node_id: host.node_id,
            log: Arc::new(tokio::sync::Mutex::new(log)),
            reader,
            state: Mutex::new(State {
                role: Role::None,
                leader_epoch: -1,
                partition_epoch: -1,
                replicas: Vec::new(),
                isr: IsrState::default(),
                leader_epoch_start: 0,
                followers: BTreeMap::new(),
                min_isr: 1,
                durable: false,
            }),
            changed: Changes::default(),
            health: host.health.clone(),
            clock: host.clock.clone(),
            blocking: host.blocking,
            flushes: host.flushes.clone(),
            flush_job: Mutex::new(FlushJob::default()),
            throttle: Mutex::new(Throttle::default()),
        }))
    }

    /// A log error as a partition error; a storage failure takes the log
    /// directory offline.
    fn storage(&self, e: &LogError) -> PartError {
        self.health.check(e);
        PartError::from_log(e)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.bump();
    }

    /// Notified on every change of log end, high watermark, role or ISR.
    pub(crate) fn subscribe(&self) -> Subscription {
        self.changed.subscribe()
    }

    /// The read handle.
    pub(crate) fn reader(&self) -> &LogReader {
        &self.reader
    }

    /// `(role, leader epoch)`.
    pub(crate) fn role(&self) -> (Role, i32) {
        let st = self.state();
        (st.role, st.leader_epoch)
    }

    /// The partition epoch of the committed state this replica holds.
    #[cfg(any(test, feature = "testkit"))]
    pub(crate) fn partition_epoch(&self) -> i32 {
        self.state().partition_epoch
    }

    /// Becomes leader at `p.leader_epoch`: the epoch starts at the log end,
    /// followers start unknown with a full lag window. The epoch start is
    /// written (and fsynced) on the blocking pool, so many partitions can
    /// become leaders at once without holding up the async workers.
    pub(crate) async fn make_leader(
        self: &Arc<Self>,
        p: &PartitionState,
        keeping: Keeping,
    ) -> Result<(), PartError> {
        let mut log = self.log.clone().lock_owned().await;
        let epoch = p.leader_epoch;
        let (log, assigned) = self
            .blocking
            .run(move || {
                let r = log.assign_epoch_start(epoch);
                (log, r)
            })
            .await
            .map_err(|e| {
                PartError::new(ErrorCode::KafkaStorageError, format!("become leader: {e}"))
            })?;
        assigned.map_err(|e| self.storage(&e))?;
        let leo = log.log_end_offset();
        let now = self.clock.now_ms();
        {
            let mut st = self.state();
            st.role = Role::Leader;
            st.leader_epoch = p.leader_epoch;
            st.partition_epoch = p.partition_epoch;
            st.replicas = p.replicas.clone();
            st.isr = IsrState {
                isr: p.isr.clone(),
                pending: None,
            };
            st.leader_epoch_start = leo;
            st.min_isr = keeping.min_isr;
            st.durable = keeping.durable;
            st.followers = p
                .replicas
                .iter()
                .filter(|r| **r != self.node_id)
                .map(|r| (*r, FollowerProgress::new_leader_view(now)))
                .collect();
            self.advance_hw(&st, leo);
        }
        drop(log);
        tracing::info!(topic = %self.topic, partition = self.index, epoch = p.leader_epoch, leo, isr = ?p.isr, "became leader");
        if keeping.durable {
            // A tail appended as follower and not yet fsynced.
            self.request_flush();
        }
        self.bump();
        Ok(())
    }

    /// Becomes a follower of `p.leader` at `p.leader_epoch`. Truncation, if
    /// any, happens through the fetch protocol (diverging epochs).
    pub(crate) async fn make_follower(&self, p: &PartitionState, keeping: Keeping) {
        let _log = self.log.lock().await;
        {
            let mut st = self.state();
            st.min_isr = keeping.min_isr;
            st.durable = keeping.durable;
            st.role = Role::Follower { leader: p.leader };
            st.leader_epoch = p.leader_epoch;
            st.partition_epoch = p.partition_epoch;
            st.replicas = p.replicas.clone();
            st.isr = IsrState {
                isr: p.isr.clone(),
                pending: None,
            };
            st.followers.clear();
        }
        tracing::info!(topic = %self.topic, partition = self.index, leader = p.leader, epoch = p.leader_epoch, "became follower");
        self.bump();
    }

    /// Stops serving (the partition was deleted or moved away).
    pub(crate) async fn stop(&self) {
        let _log = self.log.lock().await;
        self.state().role = Role::None;
        self.bump();
    }

    /// Applies the log settings in force (topic configs over the live
    /// broker defaults) to the open log, when they changed: they take
    /// effect from the next append, roll or flush check. A config the log
    /// refuses (the controller checked it, so only a bug or a newer
    /// version) keeps the one in force.
    pub(crate) fn set_log_config(&self, config: &LogConfig) {
        if *self.reader.config() == *config {
            return;
        }
        match self.reader.set_config(config.clone()) {
            Ok(()) => {
                tracing::debug!(topic = %self.topic, partition = self.index, ?config, "log config changed")
            }
            Err(e) => {
                tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "log config refused")
            }
        }
    }

    /// Sets which of this replica's traffic is throttled.
    pub(crate) fn set_throttle(&self, throttle: Throttle) {
        *self.throttle.lock().unwrap_or_else(|e| e.into_inner()) = throttle;
    }

    /// As leader: `follower`'s fetches count against the leader quota.
    pub(crate) fn leader_throttles(&self, follower: i32) -> bool {
        self.throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .followers
            .contains(&follower)
    }

    /// As follower: this replica's fetches count against the follower quota.
    pub(crate) fn follower_throttled(&self) -> bool {
        self.throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .follower
    }

    /// Takes a newer committed state at the same leader epoch (ISR change,
    /// replica set change) and a possibly changed `min.insync.replicas` or
    /// `write.caching` (a lower minimum, or page-cache ends counting again,
    /// may let the high watermark move at once).
    pub(crate) fn update(self: &Arc<Self>, p: &PartitionState, keeping: Keeping) {
        let mut st = self.state();
        let min_isr_changed = st.min_isr != keeping.min_isr;
        st.min_isr = keeping.min_isr;
        let became_durable = keeping.durable && !st.durable;
        let relaxed = !keeping.durable && st.durable;
        st.durable = keeping.durable;
        if became_durable && st.role == Role::Leader {
            drop(st);
            // Its unflushed tail now holds the high watermark.
            self.request_flush();
            st = self.state();
        }
        if p.leader_epoch != st.leader_epoch || p.partition_epoch <= st.partition_epoch {
            if (min_isr_changed || relaxed) && st.role == Role::Leader {
                let leo = self.reader.log_end_offset();
                self.advance_hw(&st, leo);
                drop(st);
                self.bump();
            }
            return;
        }
        st.partition_epoch = p.partition_epoch;
        st.replicas = p.replicas.clone();
        st.isr = IsrState {
            isr: p.isr.clone(),
            pending: None,
        };
        if st.role == Role::Leader {
            let now = self.clock.now_ms();
            for r in &p.replicas {
                if *r != self.node_id {
                    st.followers
                        .entry(*r)
                        .or_insert_with(|| FollowerProgress::new_leader_view(now));
                }
            }
            st.followers.retain(|r, _| p.replicas.contains(r));
            // A shrink can let the high watermark move.
            let leo = self.reader.log_end_offset();
            self.advance_hw(&st, leo);
        }
        drop(st);
        self.bump();
    }

    /// Records that `change` was sent, if it still applies; false when an
    /// ISR change is already in flight or the epochs moved.
    pub(crate) fn set_pending(&self, change: &IsrChange) -> bool {
        let mut st = self.state();
        if st.role != Role::Leader
            || st.isr.pending.is_some()
            || st.leader_epoch != change.leader_epoch
            || st.partition_epoch != change.partition_epoch
        {
            return false;
        }
        st.isr.pending = Some(change.new_isr.clone());
        true
    }

    /// The controller answered the pending change: `committed` is the
    /// partition's state after it (current even on error).
    pub(crate) fn complete_pending(&self, committed: Option<(i32, i32, Vec<i32>)>) {
        let mut st = self.state();
        st.isr.pending = None;
        if let Some((leader_epoch, partition_epoch, isr)) = committed
            && st.role == Role::Leader
            && leader_epoch == st.leader_epoch
            && partition_epoch > st.partition_epoch
        {
            st.partition_epoch = partition_epoch;
            st.isr.isr = isr;
            let leo = self.reader.log_end_offset();
            self.advance_hw(&st, leo);
        }
        drop(st);
        self.bump();
    }

    /// Moves the high watermark as far as the maximal ISR allows; returns
    /// whether it moved.
    fn advance_hw(&self, st: &State, leader_leo: i64) -> bool {
        let current = self.reader.high_watermark();
        let hw = rules::next_high_watermark(
            current,
            self.node_id,
            leader_leo,
            &st.isr.maximal(),
            &st.followers,
            st.min_isr.clamp(1, st.replicas.len().max(1)),
            self.durability(st),
        );
        if hw > current {
            self.reader.set_high_watermark(hw);
        }
        hw > current
    }

    fn durability(&self, st: &State) -> Durability {
        if st.durable {
            Durability::Synced {
                leader_durable_end: self.reader.recovery_point(),
            }
        } else {
            Durability::Cached
        }
    }

    /// Asks for an fsync of everything appended so far, off the async
    /// workers: at most one flush job runs per partition, and appends made
    /// while it runs are covered by its next round (group commit). Each
    /// round ends by moving the high watermark (a `write.caching=false`
    /// leader counts its own durable end) and waking waiters.
    pub(crate) fn request_flush(self: &Arc<Self>) {
        {
            let mut job = self.flush_job.lock().unwrap_or_else(|e| e.into_inner());
            if job.running {
                job.again = true;
                return;
            }
            job.running = true;
        }
        match self.blocking {
            Blocking::Inline => self.run_flushes(),
            Blocking::Pool => {
                let part = self.clone();
                self.flushes.spawn_blocking(move || part.run_flushes());
            }
        }
    }

    /// The flush job: rounds until no append asked for another, or the
    /// replica stopped (its log is about to be closed or deleted).
    fn run_flushes(&self) {
        loop {
            let stopped = self.state().role == Role::None;
            let result = if stopped {
                Ok(())
            } else {
                self.reader.flush_until(self.reader.log_end_offset())
            };
            if let Err(e) = &result {
                self.health.check(e);
                tracing::error!(topic = %self.topic, partition = self.index, error = %e, "flush failed");
            }
            {
                let st = self.state();
                if st.role == Role::Leader && st.durable {
                    let leo = self.reader.log_end_offset();
                    self.advance_hw(&st, leo);
                }
            }
            let again = {
                let mut job = self.flush_job.lock().unwrap_or_else(|e| e.into_inner());
                let again = job.again && result.is_ok() && !stopped;
                job.again = false;
                job.running = again;
                again
            };
            // Wakes waiters for the high watermark, for the flush itself
            // (flush.messages) and for the job's end (`flushes_done`).
            self.bump();
            if !again {
                return;
            }
        }
    }

    /// Waits until no flush job runs; after [`stop`](Self::stop) none
    /// starts a round any more.
    pub(crate) async fn flushes_done(&self) {
        let mut changes = self.subscribe();
        loop {
            if !self
                .flush_job
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .running
            {
                return;
            }
            changes.changed().await;
        }
    }

    /// Whether this replica fsyncs what it appends before going on: its
    /// topic is `write.caching=false`, or `flush.messages` / `flush.ms` is
    /// due.
    pub(crate) fn flush_wanted(&self) -> bool {
        self.state().durable || self.reader.flush_due()
    }

    /// Follower side: fsyncs everything appended (on the blocking pool) if
    /// [`flush_wanted`](Self::flush_wanted), so the next fetch reports it
    /// durable. One fsync covers the whole fetch response.
    pub(crate) async fn flush_fetched(&self) -> Result<(), PartError> {
        if self.reader.recovery_point() >= self.reader.log_end_offset() || !self.flush_wanted() {
            return Ok(());
        }
        // Held across the fsync: `stop` waits for it, so a stopped
        // replica's directory is never flushed while it is deleted.
        let _log = self.log.lock().await;
        if !matches!(self.state().role, Role::Follower { .. }) {
            return Ok(());
        }
        let reader = self.reader.clone();
        let flushed = self
            .blocking
            .run(move || reader.flush_until(reader.log_end_offset()))
            .await
            .map_err(|e| PartError::new(ErrorCode::KafkaStorageError, format!("flush: {e}")))?;
        flushed.map_err(|e| self.storage(&e))
    }

    /// Waits until everything below `offset` is fsynced on this replica
    /// (an append that made `flush.messages` due is acknowledged after its
    /// fsync, as Kafka does), the leadership of `epoch` ends, or `deadline`.
    pub(crate) async fn wait_flushed(
        &self,
        offset: i64,
        epoch: i32,
        deadline: tokio::time::Instant,
    ) -> Result<(), PartError> {
        let mut changes = self.subscribe();
        loop {
            {
                let st = self.state();
                if st.role != Role::Leader || st.leader_epoch != epoch {
                    return Err(PartError::not_leader(&self.topic, self.index));
                }
            }
            if self.reader.recovery_point() >= offset {
                return Ok(());
            }
            tokio::select! {
                biased;
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(PartError::new(
                        ErrorCode::RequestTimedOut,
                        format!("{}-{}: not flushed before the request timeout", self.topic, self.index),
                    ));
                }
            }
        }
    }

    /// The leader's checks for a consumer request (fetch, list offsets).
    pub(crate) fn check_leader(&self, current_leader_epoch: i32) -> Result<(), PartError> {
        let st = self.state();
        check_epoch(&st, current_leader_epoch)?;
        if st.role != Role::Leader {
            return Err(PartError::not_leader(&self.topic, self.index));
        }
        Ok(())
    }

    /// Leader append. With acks=all the ISR must hold at least
    /// `min.insync.replicas` members, or nothing is written.
    ///
    /// Waiters (follower and consumer fetches, acks=all produces) are woken
    /// when the returned [`Wake`] is dropped, so a request appending to
    /// several partitions wakes each fetch once, after all its appends, and
    /// a follower picks the whole request up in one fetch round trip.
    /// The append asks the flusher for an fsync when the topic is
    /// `write.caching=false` or the flush policy is due; the returned flag
    /// says the latter (the produce then waits for it).
    pub(crate) async fn append_as_leader(
        self: &Arc<Self>,
        records: Bytes,
        acks: i32,
    ) -> Result<(AppendInfo, i32, bool, Wake), PartError> {
        self.append_leader_with(acks, |log, epoch| log.append_as_leader(records, epoch))
            .await
    }

    /// Appends a transaction marker for `producer_id` at `producer_epoch`
    /// (WriteTxnMarkers), as [`append_as_leader`](Self::append_as_leader)
    /// with acks=all: the ISR must hold `min.insync.replicas` first.
    pub(crate) async fn append_txn_marker_as_leader(
        self: &Arc<Self>,
        producer_id: i64,
        producer_epoch: i16,
        marker: strom_log::batch::control::EndTxnMarker,
    ) -> Result<(AppendInfo, i32, bool, Wake), PartError> {
        self.append_leader_with(-1, |log, epoch| {
            log.append_txn_marker(producer_id, producer_epoch, marker, epoch)
        })
        .await
    }

    /// The producer (id, epoch) of the first transactional batch of
    /// `records` that starts a transaction in this partition: the leader
    /// must verify it at the transaction coordinator before writing
    /// (KIP-890). `None`: nothing to verify.
    pub(crate) async fn txn_to_verify(&self, records: &Bytes) -> Option<(i64, i16)> {
        let log = self.log.lock().await;
        let table = log.producer_state();
        strom_log::batch::BatchIter::new(records.clone())
            .filter_map(Result::ok)
            .filter(|b| b.is_transactional() && !b.is_control() && b.producer_id() >= 0)
            .find(|b| {
                table.needs_txn_verification(&strom_log::ProducerBatch {
                    producer_id: b.producer_id(),
                    producer_epoch: b.producer_epoch(),
                    first_seq: b.base_sequence(),
                    last_seq: b.base_sequence(),
                    first_offset: 0,
                    last_offset: 0,
                    max_timestamp: 0,
                    is_transactional: true,
                })
            })
            .map(|b| (b.producer_id(), b.producer_epoch()))
    }

    /// The producers the log's idempotence state tracks, by id (Kafka's
    /// DescribeProducers; the leader checks its role first).
    pub(crate) async fn active_producers(&self) -> Vec<ActiveProducer> {
        let log = self.log.lock().await;
        log.producer_state()
            .producers()
            .map(|(producer_id, e)| ActiveProducer {
                producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.last_seq().unwrap_or(-1),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
            })
            .collect()
    }

    /// The first sequence of a coordinator's next batch for `producer_id`
    /// at `producer_epoch` (a TxnOffsetCommit written for the producer):
    /// after its last batch in that epoch, or 0 in a new epoch.
    pub(crate) async fn next_sequence(&self, producer_id: i64, producer_epoch: i16) -> i32 {
        let log = self.log.lock().await;
        match log.producer_state().get(producer_id) {
            Some(e) if e.epoch == producer_epoch => match e.last_seq() {
                None | Some(i32::MAX) => 0,
                Some(last) => last + 1,
            },
            _ => 0,
        }
    }

    async fn append_leader_with(
        self: &Arc<Self>,
        acks: i32,
        append: impl FnOnce(&mut PartitionLog, i32) -> Result<AppendInfo, LogError>,
    ) -> Result<(AppendInfo, i32, bool, Wake), PartError> {
        let mut log = self.log.lock().await;
        let (epoch, durable) = {
            let st = self.state();
            if st.role != Role::Leader {
                return Err(PartError::not_leader(&self.topic, self.index));
            }
            if acks == -1 && st.isr.isr.len() < st.min_isr {
                return Err(PartError::new(
                    ErrorCode::NotEnoughReplicas,
                    format!(
                        "{}-{} has {} in-sync replicas {:?}, below min.insync.replicas {}",
                        self.topic,
                        self.index,
                        st.isr.isr.len(),
                        st.isr.isr,
                        st.min_isr
                    ),
                ));
            }
            (st.leader_epoch, st.durable)
        };
        let info = append(&mut log, epoch).map_err(|e| self.storage(&e))?;
        let leo = log.log_end_offset();
        {
            let st = self.state();
            self.advance_hw(&st, leo);
        }
        let policy_due = log.flush_due();
        drop(log);
        if durable || policy_due {
            self.request_flush();
        }
        Ok((info, epoch, policy_due, Wake(self.clone())))
    }

    /// Waits until `required_offset` is replicated to the whole ISR
    /// (acks=all), the leadership of `epoch` ends, or `deadline`.
    pub(crate) async fn wait_for_isr(
        &self,
        required_offset: i64,
        epoch: i32,
        deadline: tokio::time::Instant,
    ) -> Result<(), PartError> {
        let mut changes = self.subscribe();
        loop {
            {
                let st = self.state();
                if st.role != Role::Leader || st.leader_epoch != epoch {
                    return Err(PartError::not_leader(&self.topic, self.index));
                }
                let hw = self.reader.high_watermark();
                match rules::acks_all_status(
                    hw,
                    required_offset,
                    st.isr.maximal().len(),
                    st.min_isr,
                ) {
                    AcksAll::Done => return Ok(()),
                    AcksAll::DoneBelowMinIsr => {
                        return Err(PartError::new(
                            ErrorCode::NotEnoughReplicasAfterAppend,
                            format!(
                                "{}-{}: written, but the ISR {:?} shrank below min.insync.replicas {}",
                                self.topic, self.index, st.isr.isr, st.min_isr
                            ),
                        ));
                    }
                    AcksAll::Pending => {}
                }
            }
            tokio::select! {
                biased;
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(PartError::new(
                        ErrorCode::RequestTimedOut,
                        format!("{}-{}: not replicated to the ISR before the request timeout", self.topic, self.index),
                    ));
                }
            }
        }
    }

    /// The leader's side of a follower fetch: epoch checks, divergence, the
    /// follower's progress, the high watermark and a possible ISR expansion.
    pub(crate) fn on_follower_fetch(
        &self,
        replica: i32,
        fetch_offset: i64,
        durable_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
    ) -> Result<FollowerFetch, PartError> {
        let mut st = self.state();
        check_epoch(&st, current_leader_epoch)?;
        if st.role != Role::Leader {
            return Err(PartError::not_leader(&self.topic, self.index));
        }
        if !st.replicas.contains(&replica) {
            return Err(PartError::new(
                ErrorCode::NotLeaderOrFollower,
                format!(
                    "broker {replica} is not a replica of {}-{}",
                    self.topic, self.index
                ),
            ));
        }
        let diverging = rules::diverging_epoch(
            fetch_offset,
            last_fetched_epoch,
            self.reader.end_offset_for_epoch(last_fetched_epoch),
            self.reader.log_start_offset(),
        );
        if diverging.is_some() {
            return Ok(FollowerFetch {
                diverging,
                expand: None,
            });
        }
        let leo = self.reader.log_end_offset();
        let now = self.clock.now_ms();
        if let Some(f) = st.followers.get_mut(&replica) {
            f.on_fetch(fetch_offset.min(leo), durable_offset, leo, now);
        }
        let moved = self.advance_hw(&st, leo);
        let hw = self.reader.high_watermark();
        let durability = self.durability(&st);
        let expand = (!st.isr.isr.contains(&replica)
            && st.isr.pending.is_none()
            && st
                .followers
                .get(&replica)
                .is_some_and(|f| rules::may_join_isr(f, hw, st.leader_epoch_start, durability)))
        .then(|| {
            let mut new_isr = st.isr.isr.clone();
            new_isr.push(replica);
            IsrChange {
                leader_epoch: st.leader_epoch,
                partition_epoch: st.partition_epoch,
                new_isr,
            }
        });
        drop(st);
        // Wake waiters (acks=all, consumer long polls) only when the high
        // watermark moved: every follower fetch passes here.
        if moved {
            self.bump();
        }
        Ok(FollowerFetch {
            diverging: None,
            expand,
        })
    }

    /// Followers to drop from the ISR, as an ISR change, if any.
    pub(crate) fn shrink_check(&self, lag_max_ms: i64) -> Option<IsrChange> {
        let st = self.state();
        if st.role != Role::Leader || st.isr.pending.is_some() {
            return None;
        }
        let leo = self.reader.log_end_offset();
        let out = rules::out_of_sync_replicas(
            self.node_id,
            leo,
            &st.isr.isr,
            &st.followers,
            self.clock.now_ms(),
            lag_max_ms,
        );
        if out.is_empty() {
            return None;
        }
        Some(IsrChange {
            leader_epoch: st.leader_epoch,
            partition_epoch: st.partition_epoch,
            new_isr: st
                .isr
                .isr
                .iter()
                .copied()
                .filter(|r| !out.contains(r))
                .collect(),
        })
    }

    /// Reads for a consumer: up to the high watermark
    /// ([`Isolation::ReadUncommitted`]) or the last stable offset
    /// ([`Isolation::ReadCommitted`], with the aborted transactions that
    /// overlap what it returns). The last stable offset is read once, before
    /// the records, so the bound, the list and the reported offset agree.
    pub(crate) fn read_for_consumer(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<ConsumerRead, PartError> {
        let last_stable_offset = self.reader.last_stable_offset();
        let bound = match isolation {
            Isolation::ReadUncommitted => self.reader.high_watermark(),
            Isolation::ReadCommitted => last_stable_offset,
        };
        let data = self
            .reader
            .read_bounded(offset, max_bytes, bound)
            .map_err(|e| self.storage(&e))?;
        let aborted = if isolation == Isolation::ReadCommitted && !data.records.is_empty() {
            self.reader.aborted_transactions(offset, bound)
        } else {
            Vec::new()
        };
        Ok(ConsumerRead {
            data,
            last_stable_offset,
            aborted,
        })
    }

    /// Reads for a follower: up to the log end.
    pub(crate) fn read_all(&self, offset: i64, max_bytes: usize) -> Result<FetchData, PartError> {
        self.reader
            .read(offset, max_bytes)
            .map_err(|e| self.storage(&e))
    }

    /// Follower side: what to send to `leader`, or `None` when not
    /// following it.
    pub(crate) fn fetch_position(&self, leader: i32) -> Option<FetchPosition> {
        let st = self.state();
        if st.role != (Role::Follower { leader }) {
            return None;
        }
        Some(FetchPosition {
            fetch_offset: self.reader.log_end_offset(),
            durable_offset: self.reader.recovery_point(),
            last_fetched_epoch: self.reader.latest_epoch().unwrap_or(-1),
            leader_epoch: st.leader_epoch,
        })
    }

    /// Follower side: applies a fetch response sent at `leader_epoch` to
    /// `leader`. Ignored if the role changed meanwhile (a response from an
    /// earlier leadership must never touch the log).
    pub(crate) async fn apply_fetched(
        &self,
        leader: i32,
        leader_epoch: i32,
        fetched: Fetched,
    ) -> Result<(), PartError> {
        let mut log = self.log.clone().lock_owned().await;
        {
            let st = self.state();
            if st.role != (Role::Follower { leader }) || st.leader_epoch != leader_epoch {
                return Ok(());
            }
        }
        match fetched {
            Fetched::Records {
                records,
                high_watermark,
                log_start_offset,
            } => {
                // Page-cache writes: short enough to run here.
                if !records.is_empty() {
                    let leo = log.log_end_offset();
                    let tail = skip_below(&records, leo)?;
                    if let Some((first_base, bytes)) = tail {
                        if first_base < leo {
                            log.truncate_to(first_base).map_err(|e| self.storage(&e))?;
                        }
                        log.append_as_follower(bytes)
                            .map_err(|e| self.storage(&e))?;
                    }
                }
                let leo = log.log_end_offset();
                log.set_high_watermark(high_watermark.min(leo));
                // The leader's log start (retention, DeleteRecords): in
                // memory here; the retention timer deletes the segments
                // below it (`retention.rs`).
                log.increment_log_start(log_start_offset);
            }
            // Truncations rewrite indexes and checkpoints: blocking pool.
            other => {
                let (topic, index, health) = (self.topic.clone(), self.index, self.health.clone());
                self.blocking
                    .run(move || {
                        truncate(log, other, &topic, index, leader).map_err(|e| {
                            health.check(&e);
                            PartError::from_log(&e)
                        })
                    })
                    .await
                    .map_err(|e| {
                        PartError::new(ErrorCode::KafkaStorageError, format!("truncate: {e}"))
                    })??;
                self.bump();
                return Ok(());
            }
        }
        drop(log);
        self.bump();
        Ok(())
    }

    /// Runs `work` on the blocking pool holding the writer, for work that
    /// fsyncs or renames files (retention, DeleteRecords, the cleaner's
    /// swap). `work` is told the replica's role, which cannot change
    /// meanwhile (role changes take the writer too). A storage error takes
    /// the log directory offline.
    ///
    /// Waiters are woken afterwards, whatever `work` did: it may have moved
    /// the log start (a delayed fetch below it must now answer
    /// OFFSET_OUT_OF_RANGE) or anything else a waiter reads, and a spurious
    /// wake-up only costs the waiter one read.
    pub(crate) async fn with_writer<T, F>(&self, work: F) -> Result<T, PartError>
    where
        F: FnOnce(&mut PartitionLog, Role) -> Result<T, LogError> + Send + 'static,
        T: Send + 'static,
    {
        let mut log = self.log.clone().lock_owned().await;
        let role = self.state().role;
        let result = self.blocking.run(move || work(&mut log, role)).await;
        self.bump();
        result
            .map_err(|e| {
                PartError::new(
                    ErrorCode::KafkaStorageError,
                    format!("{}-{}: {e}", self.topic, self.index),
                )
            })?
            .map_err(|e| self.storage(&e))
    }

    /// Writes the high-watermark / recovery-point checkpoint and applies
    /// the time-based flush policy.
    ///
    /// Both fsync, which under write load can take hundreds of
    /// milliseconds: they run on the blocking pool through a reader, never
    /// holding the writer lock, so appends and fetches go on meanwhile. The
    /// manager awaits this before it may delete or close the log.
    pub(crate) async fn checkpoint(&self) -> Result<(), LogError> {
        checkpoint(self.blocking, self.reader.clone()).await
    }

    /// Flushes and closes the log; the partition is unusable afterwards.
    pub(crate) async fn close(self: Arc<Self>) -> Result<(), LogError> {
        let blocking = self.blocking;
        match Arc::try_unwrap(self).map(|p| Arc::try_unwrap(p.log)) {
            Ok(Ok(log)) => {
                let log = log.into_inner();
                blocking
                    .run(move || log.close())
                    .await
                    .map_err(|e| LogError::Io {
                        context: "close log".into(),
                        source: std::io::Error::other(e),
                    })?
            }
            // Still referenced by an in-flight request (or a blocking
            // task): flush what we have.
            Ok(Err(log)) => {
                let reader = log.lock().await.reader();
                checkpoint(blocking, reader).await
            }
            Err(p) => p.checkpoint().await,
        }
    }
}

/// The time-based flush and the checkpoint of `reader`'s log, on `blocking`.
async fn checkpoint(blocking: Blocking, reader: LogReader) -> Result<(), LogError> {
    blocking
        .run(move || {
            reader.flush_if_due()?;
            reader.checkpoint()
        })
        .await
        .map_err(|e| LogError::Io {
            context: "checkpoint".into(),
            source: std::io::Error::other(e),
        })?
}

/// Wakes the partition's waiters when dropped (see
/// [`Partition::append_as_leader`]); dropped on every path, so a wake-up is
/// never lost.
#[must_use = "the partition's waiters are woken when this is dropped"]
#[derive(Debug)]
pub(crate) struct Wake(Arc<Partition>);

impl Drop for Wake {
    fn drop(&mut self) {
        self.0.bump();
    }
}

/// A follower's position, sent with its next fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchPosition {
    /// Its log end.
    pub(crate) fetch_offset: i64,
    /// Everything below is fsynced.
    pub(crate) durable_offset: i64,
    /// The epoch of its last batch.
    pub(crate) last_fetched_epoch: i32,
    /// The leader epoch it follows.
    pub(crate) leader_epoch: i32,
}

/// What a follower fetched for one partition.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// Batches and the leader's high watermark and log start offset.
    Records {
        records: Bytes,
        high_watermark: i64,
        log_start_offset: i64,
    },
    /// The leader says the log diverged.
    Diverging { epoch: i32, end_offset: i64 },
    /// Our log end is below the leader's log start: start over there.
    StartAt(i64),
    /// Our log end is above the leader's (unclean election): cut back.
    TruncateTo(i64),
}

/// A follower's truncation, on the blocking pool with the writer held.
fn truncate(
    mut log: tokio::sync::OwnedMutexGuard<PartitionLog>,
    fetched: Fetched,
    topic: &str,
    partition: i32,
    leader: i32,
) -> Result<(), LogError> {
    match fetched {
        Fetched::Diverging { epoch, end_offset } => {
            let leo = log.log_end_offset();
            let to = rules::truncation_offset(
                (epoch, end_offset),
                (epoch >= 0)
                    .then(|| log.end_offset_for_epoch(epoch))
                    .flatten(),
                leo,
            );
            if to < log.log_start_offset()
                || (epoch < 0 && to < leo && to <= log.log_start_offset())
            {
                log.truncate_fully_and_start_at(to)?;
            } else {
                log.truncate_to(to)?;
            }
            tracing::info!(
                topic,
                partition,
                leader,
                diverging_epoch = epoch,
                end_offset,
                from = leo,
                to = log.log_end_offset(),
                "truncated diverging log"
            );
        }
        Fetched::StartAt(offset) => {
            log.truncate_fully_and_start_at(offset)?;
            tracing::warn!(
                topic,
                partition,
                offset,
                "follower log restarted at the leader's log start"
            );
        }
        Fetched::TruncateTo(offset) => {
            log.truncate_to(offset)?;
        }
        // Appends are not truncations; nothing to do here.
        Fetched::Records { .. } => {}
    }
    Ok(())
}

fn check_epoch(st: &State, current_leader_epoch: i32) -> Result<(), PartError> {
    if current_leader_epoch < 0 || current_leader_epoch == st.leader_epoch {
        return Ok(());
    }
    if current_leader_epoch < st.leader_epoch {
        Err(PartError::new(
            ErrorCode::FencedLeaderEpoch,
            format!(
                "leader epoch {current_leader_epoch} is older than the current {}",
                st.leader_epoch
            ),
        ))
    } else {
        Err(PartError::new(
            ErrorCode::UnknownLeaderEpoch,
            format!(
                "leader epoch {current_leader_epoch} is newer than this broker knows ({})",
                st.leader_epoch
            ),
        ))
    }
}

/// The batches of `records` that end at or after `leo`, with the base offset
/// of the first one. A fetch starts with the batch containing the fetch
/// offset, which may begin below it. Malformed data yields an error for the
/// follower append to report.
fn skip_below(records: &Bytes, leo: i64) -> Result<Option<(i64, Bytes)>, PartError> {
    let mut pos = 0usize;
    for batch in strom_log::batch::BatchIter::new(records.clone()) {
        let batch = batch.map_err(|e| PartError::from_log(&e))?;
        if batch.last_offset() >= leo {
            return Ok(Some((batch.base_offset(), records.slice(pos..))));
        }
        pos += batch.size_in_bytes();
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use strom_log::batch::{Compression, RecordBatchBuilder};

    use super::*;

    fn batch(value: &[u8]) -> Bytes {
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.append(1, None, Some(value), &[]);
        b.build()
    }

    /// A leader append wakes the partition's waiters only once the request
    /// lets go of the [`Wake`]: a produce to several partitions publishes
    /// them together, so a follower fetch picks all of them up.
    #[tokio::test]
    async fn leader_appends_wake_waiters_when_the_request_lets_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let part = Partition::open(
            dir.path(),
            "t",
            Uuid::nil(),
            0,
            LogConfig::default(),
            &Host::system(1, LogDirHealth::new(dir.path())),
        )
        .expect("open partition");
        let state = PartitionState {
            replicas: vec![1, 2],
            isr: vec![1, 2],
            leader: 1,
            leader_epoch: 3,
            partition_epoch: 5,
            elr: Vec::new(),
            adding: Vec::new(),
            removing: Vec::new(),
        };
        part.make_leader(
            &state,
            Keeping {
                min_isr: 1,
                durable: false,
            },
        )
        .await
        .expect("leader");
        let mut changes = part.subscribe();
        changes.mark_seen();

        let (first, epoch, _, wake_first) = part
            .append_as_leader(batch(b"a"), -1)
            .await
            .expect("append");
        let (second, _, _, wake_second) = part
            .append_as_leader(batch(b"b"), -1)
            .await
            .expect("append");
        assert_eq!((first.first_offset, second.first_offset, epoch), (0, 1, 3));
        // Written and readable, but nobody woken yet.
        assert_eq!(part.reader().log_end_offset(), 2);
        assert!(!changes.has_changed());
        drop(wake_first);
        assert!(changes.has_changed());
        changes.mark_seen();
        drop(wake_second);
        assert!(changes.has_changed());

        // A refused append hands out no wake and changes nothing.
        changes.mark_seen();
        let refused = part
            .append_as_leader(Bytes::from_static(b"garbage"), -1)
            .await;
        assert!(refused.is_err());
        assert_eq!(part.reader().log_end_offset(), 2);
        assert!(!changes.has_changed());
    }

    fn txn_batch(producer_id: i64, value: &[u8]) -> Bytes {
        let mut b = RecordBatchBuilder::new(Compression::None)
            .producer(producer_id, 0, 0)
            .transactional(true);
        b.append(1, None, Some(value), &[]);
        b.build()
    }

    /// The values a `read_committed` reader keeps of `read`.
    fn committed_values(read: &ConsumerRead) -> Vec<Vec<u8>> {
        let mut filter = strom_log::AbortedFilter::new(read.aborted.clone());
        let mut out = Vec::new();
        for batch in strom_log::batch::BatchIter::new(read.data.records.clone()) {
            let batch = batch.expect("batch");
            if filter.keep(&batch).expect("filter") {
                for r in batch.records().expect("records") {
                    out.push(r.value.expect("value").to_vec());
                }
            }
        }
        out
    }

    /// A `read_committed` consumer read stops at the last stable offset
    /// and lists the aborted transactions it overlaps; a
    /// `read_uncommitted` one reads to the high watermark. Both report the
    /// last stable offset, which each marker moves past its transaction.
    #[tokio::test]
    async fn consumer_reads_stop_at_the_last_stable_offset_by_isolation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let part = Partition::open(
            dir.path(),
            "t",
            Uuid::nil(),
            0,
            LogConfig::default(),
            &Host::system(1, LogDirHealth::new(dir.path())),
        )
        .expect("open partition");
        let state = PartitionState {
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 3,
            partition_epoch: 5,
            elr: Vec::new(),
            adding: Vec::new(),
            removing: Vec::new(),
        };
        part.make_leader(
            &state,
            Keeping {
                min_isr: 1,
                durable: false,
            },
        )
        .await
        .expect("leader");
        // 0 plain, 1 producer 7 (to be aborted), 2 plain, 3 producer 8
        // (to be committed).
        for records in [
            batch(b"plain-0"),
            txn_batch(7, b"aborted"),
            batch(b"plain-2"),
            txn_batch(8, b"committed"),
        ] {
            let (_, _, _, wake) = part.append_as_leader(records, -1).await.expect("append");
            drop(wake);
        }
        let read = |isolation| part.read_for_consumer(0, 1 << 20, isolation).expect("read");
        let committed = read(Isolation::ReadCommitted);
        assert_eq!(committed.data.high_watermark, 4);
        assert_eq!(committed.last_stable_offset, 1);
        assert_eq!(committed_values(&committed), [b"plain-0".to_vec()]);
        assert!(committed.aborted.is_empty());
        let uncommitted = read(Isolation::ReadUncommitted);
        assert_eq!(uncommitted.last_stable_offset, 1);
        assert_eq!(
            strom_log::batch::BatchIter::new(uncommitted.data.records.clone()).count(),
            4
        );
        assert!(uncommitted.aborted.is_empty());

        // The coordinator's marker, appended as the marker path does.
        let marker = |producer_id: i64, commit: bool| {
            let part = &part;
            async move {
                let mut log = part.log.lock().await;
                log.append_txn_marker(
                    producer_id,
                    0,
                    strom_log::batch::control::EndTxnMarker {
                        commit,
                        coordinator_epoch: 0,
                    },
                    3,
                )
                .expect("marker");
                let leo = log.log_end_offset();
                drop(log);
                part.advance_hw(&part.state(), leo);
            }
        };
        marker(7, false).await;
        let committed = read(Isolation::ReadCommitted);
        assert_eq!(committed.last_stable_offset, 3);
        assert_eq!(
            committed_values(&committed),
            [b"plain-0".to_vec(), b"plain-2".to_vec()]
        );
        let aborted: Vec<(i64, i64)> = committed
            .aborted
            .iter()
            .map(|a| (a.producer_id, a.first_offset))
            .collect();
        assert_eq!(aborted, [(7, 1)]);

        marker(8, true).await;
        let committed = read(Isolation::ReadCommitted);
        assert_eq!(committed.last_stable_offset, 6);
        assert_eq!(
            committed_values(&committed),
            [
                b"plain-0".to_vec(),
                b"plain-2".to_vec(),
                b"committed".to_vec()
            ]
        );
        // A read after the abort marker lists nothing.
        let late = part
            .read_for_consumer(5, 1 << 20, Isolation::ReadCommitted)
            .expect("read");
        assert!(late.aborted.is_empty());
    }

    /// A marker that closes the earliest open transaction moves the last
    /// stable offset and wakes waiters, and so does any work under the
    /// writer (retention, DeleteRecords, the cleaner); DescribeProducers
    /// sees the open transaction, then the marker.
    #[tokio::test]
    async fn markers_and_writer_work_wake_waiters_and_producers_are_described() {
        let dir = tempfile::tempdir().expect("temp dir");
        let part = Partition::open(
            dir.path(),
            "t",
            Uuid::nil(),
            0,
            LogConfig::default(),
            &Host::system(1, LogDirHealth::new(dir.path())),
        )
        .expect("open partition");
        let state = PartitionState {
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 3,
            partition_epoch: 5,
            elr: Vec::new(),
            adding: Vec::new(),
            removing: Vec::new(),
        };
        part.make_leader(
            &state,
            Keeping {
                min_isr: 1,
                durable: false,
            },
        )
        .await
        .expect("leader");
        let (_, _, _, wake) = part
            .append_as_leader(txn_batch(7, b"open"), -1)
            .await
            .expect("append");
        drop(wake);
        assert_eq!(part.reader().last_stable_offset(), 0);
        assert_eq!(part.reader().producer_count(), 1);
        assert_eq!(
            part.active_producers().await,
            [ActiveProducer {
                producer_id: 7,
                producer_epoch: 0,
                last_sequence: 0,
                last_timestamp: part.active_producers().await[0].last_timestamp,
                coordinator_epoch: -1,
                current_txn_start_offset: 0,
            }]
        );

        let mut changes = part.subscribe();
        changes.mark_seen();
        let (_, _, _, wake) = part
            .append_txn_marker_as_leader(
                7,
                0,
                strom_log::batch::control::EndTxnMarker {
                    commit: true,
                    coordinator_epoch: 2,
                },
            )
            .await
            .expect("marker");
        drop(wake);
        assert!(changes.has_changed(), "the marker wakes waiters");
        assert_eq!(part.reader().last_stable_offset(), 2);
        let described = part.active_producers().await;
        assert_eq!(
            (
                described[0].current_txn_start_offset,
                described[0].coordinator_epoch
            ),
            (-1, 2)
        );

        changes.mark_seen();
        part.with_writer(|_, _| Ok(())).await.expect("writer work");
        assert!(changes.has_changed(), "work under the writer wakes waiters");
    }
}
