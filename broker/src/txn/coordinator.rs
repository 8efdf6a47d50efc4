//! [`TxnCoordinator`]: the shards of the `__transaction_state` partitions
//! this broker leads, every transaction request's path through them, the
//! marker sender and the timeout timer.
//!
//! * Shards are hosted by [`ShardHost`] (loaded on leadership, dropped on
//!   its loss, reloaded after a failed write), as the group coordinator's.
//! * A request locks its shard, asks it for a decision, appends the
//!   decision's records with acks=all at the loaded epoch, replays them,
//!   starts the markers the decision asks for, and answers: one decision
//!   at a time per shard. A decision that needs a new producer id is taken
//!   again once one was fetched from the broker's block (the shard is
//!   pure: it cannot wait for the controller).
//! * Markers: for each `WriteMarkers`, a task queues one marker per leader
//!   of the partitions still waiting in the [`MarkerChannel`] (which sends
//!   the markers of every transaction queued for a leader as one
//!   WriteTxnMarkers request, locally for partitions led here), retrying
//!   with backoff until all answered, then writes
//!   `CompleteCommit`/`CompleteAbort`. It stops when this broker no longer
//!   leads the partition at the epoch it began with: the new coordinator
//!   finishes from the log ([`TxnShard::pending_markers`] at load).
//! * A timer aborts transactions past their `transaction.timeout.ms`, and
//!   expires idle transactional ids.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use strom_controller_client::QuorumClient;
use strom_proto::StromError;
use strom_proto::v1::{
    AddPartitionsToTxnRequest, ErrorCode, TxnTopic, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use strom_txn::coordinator::ProducerIdSource;
use strom_txn::{
    Decision, ErrorKind, InitProducerIdRequest, InitProducerIdResponse, MarkerAnswer,
    MarkerProgress, MarkerStatus, ProducerIdAndEpoch, Record, TRANSACTION_STATE_TOPIC,
    TopicPartition, TxnConfig, TxnError, TxnResult, TxnShard, TxnVersion, WriteMarkers,
    transaction_partition_for, validate_transactional_id,
};
use tokio_util::sync::CancellationToken;

use super::channel::{MarkerChannel, MarkerSend};
use super::config::{TxnsConfig, WRITE_TIMEOUT_MS};
use super::peers::TxnPeers;
use super::{load, markers};
use crate::group::Coordinator;
use crate::internal_topic::write::{self as shared, Encoded, write_error};
use crate::internal_topic::{
    CoordinatorLookup, InternalTopicCreator, InternalTopicSpec, ShardHost, ShardLoader, ShardRef,
    lookup,
};
use crate::replica::{PartError, ReplicaManager, TxnVerifier};

/// How the gRPC layer holds the coordinator.
pub type TxnCoordinatorRef = Arc<TxnCoordinator>;

/// Longest pause between two rounds of a transaction's markers.
const MAX_MARKER_BACKOFF: Duration = Duration::from_secs(1);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A refusal of the pure core as the client sees it: the ErrorCode of the
/// same name (every `strom_txn::ErrorKind` has one).
pub(crate) fn txn_error(e: TxnError) -> StromError {
    let code =
        ErrorCode::from_str_name(e.kind.code_name()).unwrap_or(ErrorCode::UnknownServerError);
    StromError::new(code, e.message)
}

/// Counters of the coordinator, for metrics.
#[derive(Debug)]
struct Counters {
    commits: AtomicU64,
    aborts: AtomicU64,
    timed_out: AtomicU64,
    write_failures: AtomicU64,
    /// Seconds from a committed transaction's start (its first
    /// AddPartitionsToTxn) to its completion (every marker written).
    commit_duration: Histogram,
    /// The same for aborted transactions.
    abort_duration: Histogram,
}

impl Default for Counters {
    fn default() -> Self {
        // 1 ms doubling to ~16 min: a commit right after the first send
        // takes milliseconds, a transaction aborted by its timeout up to
        // transaction.max.timeout.ms (15 min).
        let buckets = || exponential_buckets(0.001, 2.0, 21);
        Counters {
            commits: AtomicU64::new(0),
            aborts: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            commit_duration: Histogram::new(buckets()),
            abort_duration: Histogram::new(buckets()),
        }
    }
}

/// What `/metrics` shows of the coordinator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnMetrics {
    /// Transaction log partitions loaded here.
    pub partitions_loaded: i64,
    /// Transaction log partitions loading here.
    pub partitions_loading: i64,
    /// Transactional ids with a transaction open or completing
    /// (`Ongoing`, `PrepareCommit`, `PrepareAbort`) in the loaded
    /// partitions; a shard busy at scrape time is left out.
    pub open_transactions: i64,
    /// Transactions completed with COMMIT markers.
    pub commits: u64,
    /// Transactions completed with ABORT markers.
    pub aborts: u64,
    /// Transactions aborted because they outlived their timeout.
    pub timed_out: u64,
    /// Transaction log writes that failed (the shard reloaded).
    pub write_failures: u64,
}

/// The broker's transaction coordinator.
#[derive(Debug)]
pub struct TxnCoordinator {
    rm: Arc<ReplicaManager>,
    config: TxnsConfig,
    offsets_partitions: i32,
    groups: Option<Coordinator>,
    host: Arc<ShardHost<TxnShard>>,
    creator: InternalTopicCreator,
    peers: Arc<dyn TxnPeers>,
    channel: Arc<MarkerChannel>,
    counters: Counters,
    stop: CancellationToken,
}

/// Sends the channel's requests: locally for partitions led here, to the
/// peer otherwise.
#[derive(Debug)]
struct Sender(Weak<TxnCoordinator>);

impl MarkerSend for Sender {
    fn send(
        &self,
        leader: i32,
        req: WriteTxnMarkersRequest,
    ) -> BoxFuture<'_, Result<WriteTxnMarkersResponse, StromError>> {
        Box::pin(async move {
            match self.0.upgrade() {
                Some(c) => c.send_markers(leader, req).await,
                None => Err(StromError::new(
                    ErrorCode::CoordinatorNotAvailable,
                    "the transaction coordinator is shutting down",
                )),
            }
        })
    }
}

/// Loads a transaction log partition, then resumes its pending markers.
#[derive(Debug)]
struct TxnLoader {
    config: TxnConfig,
    coordinator: Weak<TxnCoordinator>,
}

impl ShardLoader<TxnShard> for TxnLoader {
    fn load(&self, rm: &ReplicaManager, partition: i32, epoch: i32) -> Result<TxnShard, PartError> {
        load::load(rm, partition, epoch, self.config.clone())
    }

    fn loaded(&self, partition: i32, epoch: i32, shard: &ShardRef<TxnShard>) {
        if let Some(c) = self.coordinator.upgrade() {
            c.resume(partition, epoch, shard.clone());
        }
    }
}

/// The replica manager's KIP-890 verifier: this broker's coordinator, or
/// the transactional id's coordinator elsewhere.
#[derive(Debug)]
struct Verifier(Weak<TxnCoordinator>);

impl TxnVerifier for Verifier {
    fn verify<'a>(
        &'a self,
        transactional_id: &'a str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &'a str,
        partition: i32,
    ) -> BoxFuture<'a, Result<(), StromError>> {
        Box::pin(async move {
            let Some(c) = self.0.upgrade() else {
                return Err(StromError::new(
                    ErrorCode::CoordinatorNotAvailable,
                    "the transaction coordinator is shutting down",
                ));
            };
            c.add_partitions_at_coordinator(
                transactional_id,
                producer_id,
                producer_epoch,
                vec![(topic.to_owned(), partition)],
            )
            .await
        })
    }
}

impl TxnCoordinator {
    /// A coordinator over `rm`'s `__transaction_state` partitions; it
    /// listens to `rm`'s leadership changes and verifies `rm`'s
    /// transactional batches from now on, so create it before `rm` runs.
    /// `quorum` creates the topic (none: it must exist already); `groups`
    /// replays markers of offsets partitions; `offsets_partitions` is
    /// `offsets.topic.num.partitions`. Call [`run`](Self::run) for its
    /// timers.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rm: Arc<ReplicaManager>,
        quorum: Option<Arc<QuorumClient>>,
        config: TxnsConfig,
        offsets_partitions: i32,
        groups: Option<Coordinator>,
        peers: Arc<dyn TxnPeers>,
        controller_timeout: Duration,
        stop: CancellationToken,
    ) -> TxnCoordinatorRef {
        let c = Arc::new_cyclic(|weak: &Weak<TxnCoordinator>| {
            let host = ShardHost::new(
                TRANSACTION_STATE_TOPIC,
                rm.clone(),
                Arc::new(TxnLoader {
                    config: config.txn.clone(),
                    coordinator: weak.clone(),
                }),
                stop.clone(),
            );
            let creator = InternalTopicCreator::new(
                InternalTopicSpec {
                    name: TRANSACTION_STATE_TOPIC,
                    partitions: config.state_log_num_partitions,
                    replication_factor: config.state_log_replication_factor,
                },
                quorum,
                controller_timeout,
            );
            let channel = MarkerChannel::new(
                Arc::new(Sender(weak.clone())),
                host.tasks().clone(),
                host.runtime().clone(),
            );
            TxnCoordinator {
                rm: rm.clone(),
                config,
                offsets_partitions,
                groups,
                host,
                creator,
                peers,
                channel,
                counters: Counters::default(),
                stop,
            }
        });
        rm.set_txn_verifier(Arc::new(Verifier(Arc::downgrade(&c))));
        c
    }

    /// The settings.
    pub fn config(&self) -> &TxnsConfig {
        &self.config
    }

    /// The group coordinator (TxnOffsetCommit, markers of offsets
    /// partitions).
    pub fn groups(&self) -> Option<&Coordinator> {
        self.groups.as_ref()
    }

    fn partition_of(&self, transactional_id: &str) -> Result<i32, StromError> {
        validate_transactional_id(transactional_id).map_err(txn_error)?;
        Ok(transaction_partition_for(
            transactional_id,
            self.config.state_log_num_partitions,
        ))
    }

    /// `FindCoordinator` with key type TRANSACTION: `(node id, address,
    /// transaction log partition)`. Creates `__transaction_state` on first
    /// use (COORDINATOR_NOT_AVAILABLE meanwhile).
    pub fn find_coordinator(
        self: &Arc<Self>,
        transactional_id: &str,
    ) -> Result<(i32, String, i32), StromError> {
        let p = self.partition_of(transactional_id)?;
        match self
            .rm
            .cache()
            .with_image(|image| lookup(image, TRANSACTION_STATE_TOPIC, p))
        {
            CoordinatorLookup::Leader { node_id, address } => Ok((node_id, address, p)),
            CoordinatorLookup::NoLeader => Err(StromError::new(
                ErrorCode::CoordinatorNotAvailable,
                format!("{TRANSACTION_STATE_TOPIC} partition {p} has no leader now"),
            )),
            CoordinatorLookup::NoTopic => {
                self.creator
                    .start(self.rm.cache(), self.host.tasks(), self.host.runtime());
                Err(StromError::new(
                    ErrorCode::CoordinatorNotAvailable,
                    format!("{TRANSACTION_STATE_TOPIC} is being created"),
                ))
            }
        }
    }

    /// One decision of the id's shard: decide (again with a fresh producer
    /// id if the shard asked for one), write, replay, start the markers,
    /// answer.
    async fn decide<T>(
        self: &Arc<Self>,
        transactional_id: &str,
        mut f: impl FnMut(&mut TxnShard, i64, ProducerIdSource<'_>) -> Result<Decision<T>, TxnError>,
    ) -> Result<T, StromError> {
        let p = self.partition_of(transactional_id)?;
        let (epoch, shard) = self
            .host
            .shard(p, &format!("transactional id {transactional_id:?}"))?;
        let mut shard = shard.lock().await;
        let mut spare: Option<i64> = None;
        let mut fetched = false;
        let (decision, now) = loop {
            let now = now_ms();
            let mut needed = false;
            let result = {
                let mut source = || match spare.take() {
                    Some(id) => Ok(id),
                    None => {
                        needed = true;
                        Err(TxnError::new(
                            ErrorKind::CoordinatorNotAvailable,
                            "no producer id at hand",
                        ))
                    }
                };
                f(&mut shard, now, &mut source)
            };
            match result {
                Err(_) if needed && !fetched => {
                    spare = Some(self.rm.new_producer_id().await?);
                    fetched = true;
                }
                other => break (other.map_err(txn_error)?, now),
            }
        };
        self.apply(&mut shard, p, epoch, &decision.records, now)
            .await
            .map_err(|e| write_error(e, &format!("transactional id {transactional_id:?}")))?;
        for m in decision.markers {
            self.spawn_markers(p, epoch, m);
        }
        Ok(decision.response)
    }

    /// Appends `records` (acks=all at `epoch`) and replays them; reloads
    /// the partition if the write fails.
    async fn apply(
        self: &Arc<Self>,
        shard: &mut TxnShard,
        p: i32,
        epoch: i32,
        records: &[Record],
        now: i64,
    ) -> Result<(), PartError> {
        if records.is_empty() {
            return Ok(());
        }
        let encoded: Vec<Encoded> = records.iter().map(Record::encode).collect();
        let written = shared::write(
            &self.rm,
            TRANSACTION_STATE_TOPIC,
            p,
            epoch,
            shared::batch(&encoded, now),
            WRITE_TIMEOUT_MS,
        )
        .await;
        match written {
            Ok(_) => {
                shard.replay(records);
                Ok(())
            }
            Err(e) => {
                self.counters.write_failures.fetch_add(1, Ordering::Relaxed);
                self.host.reload(p, epoch);
                Err(e)
            }
        }
    }

    /// `InitProducerId` with a transactional id: the producer id and epoch
    /// to use. With the previous incarnation's transaction open, that
    /// transaction is aborted first and the answer is
    /// CONCURRENT_TRANSACTIONS: the producer retries.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), StromError> {
        let req = InitProducerIdRequest {
            transactional_id: transactional_id.to_owned(),
            timeout_ms,
            expected: expected
                .map(|(producer_id, epoch)| ProducerIdAndEpoch { producer_id, epoch }),
        };
        let answer = self
            .decide(transactional_id, |shard, now, ids| {
                shard.init_producer_id(&req, now, ids)
            })
            .await?;
        match answer {
            InitProducerIdResponse::Ready(p) => Ok((p.producer_id, p.epoch)),
            InitProducerIdResponse::AbortingOngoing => Err(StromError::new(
                ErrorCode::ConcurrentTransactions,
                format!(
                    "the open transaction of {transactional_id:?} is being aborted (its producer is fenced): retry"
                ),
            )),
        }
    }

    /// `AddPartitionsToTxn`. Every partition must exist.
    pub async fn add_partitions(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
    ) -> Result<(), StromError> {
        let missing = self.rm.cache().with_image(|image| {
            partitions
                .iter()
                .find(|(topic, p)| {
                    image
                        .topic_by_name(topic)
                        .and_then(|t| t.partition(*p))
                        .is_none()
                })
                .cloned()
        });
        if let Some((topic, p)) = missing {
            return Err(StromError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("{topic}-{p} does not exist"),
            ));
        }
        self.decide(transactional_id, |shard, now, _| {
            shard.add_partitions(
                transactional_id,
                producer_id,
                producer_epoch,
                &partitions,
                now,
            )
        })
        .await
    }

    /// KIP-890 verification for a partition leader: `add_partitions` here
    /// if this broker coordinates the id, else at its coordinator. The
    /// coordinator may have moved: such errors are retriable for the
    /// producer (the leader maps them to NOT_ENOUGH_REPLICAS).
    async fn add_partitions_at_coordinator(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
    ) -> Result<(), StromError> {
        let p = self.partition_of(transactional_id)?;
        let found = self
            .rm
            .cache()
            .with_image(|image| lookup(image, TRANSACTION_STATE_TOPIC, p));
        match found {
            CoordinatorLookup::Leader { node_id, .. } if node_id == self.rm.node_id() => {
                self.add_partitions(transactional_id, producer_id, producer_epoch, partitions)
                    .await
            }
            CoordinatorLookup::Leader { node_id, .. } => {
                let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in partitions {
                    topics.entry(topic).or_default().push(partition);
                }
                let req = AddPartitionsToTxnRequest {
                    transactional_id: transactional_id.to_owned(),
                    producer_id,
                    producer_epoch: i32::from(producer_epoch),
                    topics: topics
                        .into_iter()
                        .map(|(topic, partitions)| TxnTopic { topic, partitions })
                        .collect(),
                };
                self.peers.add_partitions(node_id, req).await
            }
            CoordinatorLookup::NoLeader | CoordinatorLookup::NoTopic => Err(StromError::new(
                ErrorCode::CoordinatorNotAvailable,
                format!("the coordinator of {transactional_id:?} is not available"),
            )),
        }
    }

    /// `AddOffsetsToTxn`: the group's offsets partition joins the
    /// transaction.
    pub async fn add_offsets(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<(), StromError> {
        let offsets_partitions = self.offsets_partitions;
        self.decide(transactional_id, |shard, now, _| {
            shard.add_offsets(
                transactional_id,
                producer_id,
                producer_epoch,
                group_id,
                offsets_partitions,
                now,
            )
        })
        .await
    }

    /// `EndTxn`: the producer id and epoch for the next transaction (the
    /// same ones with [`TxnVersion::V0`]).
    pub async fn end_txn(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        version: TxnVersion,
    ) -> Result<(i64, i16), StromError> {
        let result = if commit {
            TxnResult::Commit
        } else {
            TxnResult::Abort
        };
        let next = self
            .decide(transactional_id, |shard, now, ids| {
                shard.end_txn(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    result,
                    version,
                    now,
                    ids,
                )
            })
            .await?;
        Ok((next.producer_id, next.epoch))
    }

    /// `DescribeTransactions`: the id's state at its coordinator.
    pub async fn describe(
        self: &Arc<Self>,
        transactional_id: &str,
    ) -> Result<strom_txn::TxnMetadata, StromError> {
        let p = self.partition_of(transactional_id)?;
        let (_, shard) = self
            .host
            .shard(p, &format!("transactional id {transactional_id:?}"))?;
        let shard = shard.lock().await;
        shard.describe(transactional_id).cloned().map_err(txn_error)
    }

    /// `ListTransactions`: the ids of every partition loaded here, sorted.
    pub async fn list(
        self: &Arc<Self>,
        states: &[strom_txn::TxnState],
        producer_ids: &[i64],
    ) -> Vec<strom_txn::TxnListing> {
        let mut out = Vec::new();
        for (_, _, shard) in self.host.active() {
            out.extend(shard.lock().await.list(states, producer_ids));
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// WriteTxnMarkers for the partitions this broker leads.
    pub async fn write_markers_here(&self, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
        markers::write_local(&self.rm, self.groups.as_ref(), req).await
    }

    /// After a load: write the markers of every transaction the log says
    /// is decided but not complete.
    fn resume(self: &Arc<Self>, p: i32, epoch: i32, shard: ShardRef<TxnShard>) {
        let this = self.clone();
        self.host.tasks().spawn_on(
            async move {
                let pending = shard.lock().await.pending_markers();
                if !pending.is_empty() {
                    tracing::info!(
                        partition = p,
                        transactions = pending.len(),
                        "finishing the markers of decided transactions"
                    );
                }
                for m in pending {
                    this.spawn_markers(p, epoch, m);
                }
            },
            self.host.runtime(),
        );
    }

    fn spawn_markers(self: &Arc<Self>, p: i32, epoch: i32, markers: WriteMarkers) {
        let this = self.clone();
        self.host.tasks().spawn_on(
            this.complete_markers(p, epoch, markers),
            self.host.runtime(),
        );
    }

    /// The leaders of `partitions` now, and the partitions that no longer
    /// exist. Partitions without a leader are in neither (retried).
    fn leaders_of<'a>(
        &self,
        partitions: impl Iterator<Item = &'a TopicPartition>,
    ) -> (BTreeMap<i32, Vec<TopicPartition>>, Vec<TopicPartition>) {
        self.rm.cache().with_image(|image| {
            let mut leaders: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
            let mut deleted = Vec::new();
            for tp in partitions {
                match image.topic_by_name(&tp.0).and_then(|t| t.partition(tp.1)) {
                    None => deleted.push(tp.clone()),
                    Some(p) if p.leader >= 0 => {
                        leaders.entry(p.leader).or_default().push(tp.clone())
                    }
                    Some(_) => {}
                }
            }
            (leaders, deleted)
        })
    }

    async fn send_markers(
        &self,
        leader: i32,
        req: WriteTxnMarkersRequest,
    ) -> Result<WriteTxnMarkersResponse, StromError> {
        if leader == self.rm.node_id() {
            Ok(self.write_markers_here(req).await)
        } else {
            self.peers.write_markers(leader, req).await
        }
    }

    /// Writes `markers` to every partition of the transaction, then
    /// `Complete*`; see the module docs.
    async fn complete_markers(self: Arc<Self>, p: i32, epoch: i32, markers: WriteMarkers) {
        let mut progress = MarkerProgress::new(markers);
        let mut backoff = Duration::from_millis(20);
        loop {
            if self.stop.is_cancelled() || !self.host.is_active_at(p, epoch) {
                return;
            }
            match progress.status() {
                MarkerStatus::Complete => break,
                MarkerStatus::Abandoned => {
                    tracing::info!(
                        transactional_id = %progress.markers().transactional_id,
                        "markers overtaken by a newer epoch or coordinator"
                    );
                    return;
                }
                MarkerStatus::Pending => {}
            }
            let (leaders, deleted) = self.leaders_of(progress.remaining().iter());
            for tp in &deleted {
                progress.answer(tp, MarkerAnswer::UnknownPartition);
            }
            let queued: Vec<_> = leaders
                .into_iter()
                .map(|(leader, parts)| {
                    let marker = markers::marker_for(progress.markers(), &parts);
                    let answer = self.channel.submit(leader, marker);
                    async move { (leader, answer.await) }
                })
                .collect();
            for (leader, answer) in futures::future::join_all(queued).await {
                match answer {
                    Err(_) => return, // the channel closed: shutting down
                    Ok(Ok(result)) => {
                        for r in result.partitions {
                            let code = ErrorCode::try_from(r.error_code)
                                .unwrap_or(ErrorCode::UnknownServerError);
                            if code != ErrorCode::None {
                                tracing::debug!(
                                    topic = %r.topic, partition = r.partition, leader,
                                    error = %r.error_message, "marker not written"
                                );
                            }
                            progress.answer(&(r.topic, r.partition), markers::answer_of(code));
                        }
                    }
                    Ok(Err(e)) => tracing::debug!(leader, error = %e, "WriteTxnMarkers failed"),
                }
            }
            if progress.status() == MarkerStatus::Pending {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_MARKER_BACKOFF);
            }
        }
        let m = progress.markers();
        let Ok((current, shard)) = self.host.shard(p, &m.transactional_id) else {
            return;
        };
        if current != epoch {
            return;
        }
        let mut shard = shard.lock().await;
        let now = now_ms();
        let started = shard
            .get(&m.transactional_id)
            .map_or(-1, |t| t.start_ms)
            .min(now);
        match shard.markers_written(&m.transactional_id, m.producer_id, m.producer_epoch, now) {
            Ok(d) => match self.apply(&mut shard, p, epoch, &d.records, now).await {
                Ok(()) => {
                    let (counter, duration) = match m.result {
                        TxnResult::Commit => {
                            (&self.counters.commits, &self.counters.commit_duration)
                        }
                        TxnResult::Abort => (&self.counters.aborts, &self.counters.abort_duration),
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    // A fence of an idle id aborts nothing that started.
                    if started >= 0 {
                        duration.observe((now - started) as f64 / 1000.0);
                    }
                }
                Err(e) => tracing::warn!(
                    transactional_id = %m.transactional_id, error = %e,
                    "writing the completion failed; the reload finishes it"
                ),
            },
            Err(e) => tracing::debug!(
                transactional_id = %m.transactional_id, error = %e,
                "stale marker completion ignored"
            ),
        }
    }

    /// Aborts the transactions past their timeout in every loaded shard.
    async fn abort_timed_out(self: &Arc<Self>) {
        for (p, epoch, shard) in self.host.active() {
            let mut shard = shard.lock().await;
            let now = now_ms();
            let d = shard.abort_timed_out(now);
            if d.records.is_empty() {
                continue;
            }
            match self.apply(&mut shard, p, epoch, &d.records, now).await {
                Ok(()) => {
                    tracing::info!(partition = p, ids = ?d.response, "aborted transactions past their timeout");
                    self.counters
                        .timed_out
                        .fetch_add(d.response.len() as u64, Ordering::Relaxed);
                    for m in d.markers {
                        self.spawn_markers(p, epoch, m);
                    }
                }
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "writing timeout aborts failed")
                }
            }
        }
    }

    /// Removes idle transactional ids past `transactional.id.expiration.ms`.
    async fn expire_ids(self: &Arc<Self>) {
        for (p, epoch, shard) in self.host.active() {
            let mut shard = shard.lock().await;
            let now = now_ms();
            let d = shard.expire_transactional_ids(now);
            if let Err(e) = self.apply(&mut shard, p, epoch, &d.records, now).await {
                tracing::warn!(partition = p, error = %e, "writing id expirations failed");
            }
        }
    }

    /// The coordinator's metrics.
    pub fn metrics(&self) -> TxnMetrics {
        let (partitions_loaded, partitions_loading) = self.host.counts();
        let open_transactions = self
            .host
            .active()
            .iter()
            .filter_map(|(_, _, shard)| shard.try_lock().ok().map(|s| s.open_transactions()))
            .sum::<usize>();
        let c = &self.counters;
        TxnMetrics {
            partitions_loaded,
            partitions_loading,
            open_transactions: i64::try_from(open_transactions).unwrap_or(i64::MAX),
            commits: c.commits.load(Ordering::Relaxed),
            aborts: c.aborts.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
            write_failures: c.write_failures.load(Ordering::Relaxed),
        }
    }

    /// Seconds from a transaction's start to its completion, of committed
    /// and of aborted transactions (shared: clones observe the same data).
    pub fn duration_histograms(&self) -> (Histogram, Histogram) {
        (
            self.counters.commit_duration.clone(),
            self.counters.abort_duration.clone(),
        )
    }

    /// Aborts timed-out transactions every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` and
    /// expires ids every
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`, until
    /// `stop`; then waits for the marker senders.
    pub async fn run(self: Arc<Self>) {
        let mut aborts = tokio::time::interval(self.config.abort_timed_out_interval);
        let mut expiry = tokio::time::interval(self.config.remove_expired_interval);
        aborts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = aborts.tick() => self.abort_timed_out().await,
                _ = expiry.tick() => self.expire_ids().await,
                _ = self.stop.cancelled() => break,
            }
        }
        self.host.close().await;
    }
}
