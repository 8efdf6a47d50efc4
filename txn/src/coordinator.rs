//! One `__transaction_state` partition's transactional ids: a [`TxnShard`].
//!
//! State changes only through [`TxnShard::replay`]. The request functions
//! (`init_producer_id`, `add_partitions`, `add_offsets`, `end_txn`,
//! `markers_written`, `abort_timed_out`, `expire_transactional_ids`) read
//! the state and return a [`Decision`]: the records to append, the markers
//! to write once they are committed, and the answer to give then. They
//! never change replayed state. They do keep one piece of soft state that
//! is not in the log (which EndTxn last bumped each id's epoch, to
//! recognise its retry), as Kafka keeps `lastProducerEpoch` in memory.
//!
//! The host's contract, as for `strom_group::Shard`: decisions of one
//! shard are taken one at a time, and the records of a decision are
//! replayed before the next decision is taken (after the append commits,
//! or with the shard reloaded from the log if it fails). A broker that
//! becomes leader of the partition replays it from its start, then writes
//! the markers of [`TxnShard::pending_markers`] (transactions a previous
//! coordinator decided but did not complete).
//!
//! Transaction version 2 (KIP-890 part 2) throughout: every EndTxn bumps
//! the producer epoch, markers carry the bumped epoch, and the response
//! returns it. A late produce or EndTxn of the finished transaction then
//! carries an epoch older than the partitions' and the coordinator's, and
//! is refused, so it can never land in the next transaction
//! (KAFKA-17754).
//!
//! Clients that predate transaction version 2 (librdkafka, Kafka clients
//! before 4.0: EndTxn below v5) end a transaction without the bump
//! ([`TxnVersion::V0`], as Kafka's coordinator serves them): the markers
//! carry the producer's epoch and the next transaction goes on in it.
//! KIP-890 part 1 still guards them: a partition leader verifies a batch
//! that opens a transaction with the coordinator, so a late batch of a
//! finished transaction is refused unless the partition was added to the
//! producer's current one.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{MAX_TRANSACTIONAL_ID_BYTES, TxnConfig};
use crate::error::{Result, bail};
use crate::records::{NO_PRODUCER_ID, Record, TRANSACTION_VERSION_2, TopicPartition, TxnMetadata};
use crate::state::TxnState;
use crate::{OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};

/// The last usable epoch: at or above it a producer id is exhausted and the
/// producer moves to a new id (Kafka's `isEpochExhausted`: `Short.MaxValue
/// - 1`, leaving one bump for a fence).
pub const EXHAUSTED_EPOCH: i16 = i16::MAX - 1;

/// Whether `epoch` leaves no room for another transaction.
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= EXHAUSTED_EPOCH
}

/// A producer id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerIdAndEpoch {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
}

/// How a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnResult {
    /// COMMIT markers: the records become visible to `read_committed`.
    Commit,
    /// ABORT markers: the records are skipped by `read_committed`.
    Abort,
}

/// The transaction protocol a client speaks at EndTxn (Kafka's
/// `ClientTransactionVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnVersion {
    /// Before KIP-890 part 2 (Kafka's versions 0 and 1): EndTxn keeps the
    /// producer epoch; a retry is recognised by the state.
    V0,
    /// KIP-890 part 2: every EndTxn bumps the epoch and answers it.
    V2,
}

impl TxnVersion {
    /// The value of the transaction log's `ClientTransactionVersion`.
    pub fn log_value(self) -> i16 {
        match self {
            TxnVersion::V0 => 0,
            TxnVersion::V2 => TRANSACTION_VERSION_2,
        }
    }
}

/// An effect for the host: write a control batch with an
/// `EndTransactionMarker` of `result` (producer id and epoch as given,
/// `coordinator_epoch` in the marker) to each of `partitions` (Kafka's
/// WriteTxnMarkers), retrying until every partition leader has it in its
/// log (or the partition was deleted), then call
/// [`TxnShard::markers_written`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteMarkers {
    /// The transaction's id.
    pub transactional_id: String,
    /// Producer id of the batches the markers close.
    pub producer_id: i64,
    /// Epoch of the markers (the bumped one: it fences older batches).
    pub producer_epoch: i16,
    /// The coordinator's epoch (the transaction log partition's leader
    /// epoch), so a partition refuses markers of a deposed coordinator.
    pub coordinator_epoch: i32,
    /// Commit or abort.
    pub result: TxnResult,
    /// The partitions of the transaction (offsets partitions included).
    pub partitions: BTreeSet<TopicPartition>,
}

/// A decision: records to append, then markers to write, and the answer to
/// give once the records are committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<T> {
    /// Records to append, in order (`acks=all`).
    pub records: Vec<Record>,
    /// Markers to write once the records are committed.
    pub markers: Vec<WriteMarkers>,
    /// The answer.
    pub response: T,
}

impl<T> Decision<T> {
    fn answer(response: T) -> Self {
        Decision {
            records: Vec::new(),
            markers: Vec::new(),
            response,
        }
    }
}

/// An `InitProducerId` with a transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    /// `transactional.id`.
    pub transactional_id: String,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// The id and epoch the producer holds, when it re-initialises after
    /// an abortable error (KIP-360); `None` for a new producer.
    pub expected: Option<ProducerIdAndEpoch>,
}

/// The answer to `InitProducerId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitProducerIdResponse {
    /// The producer id and epoch to use.
    Ready(ProducerIdAndEpoch),
    /// An open transaction of the previous incarnation is being aborted
    /// (its producer fenced): answer `CONCURRENT_TRANSACTIONS`; the
    /// producer retries and then gets a fresh epoch.
    AbortingOngoing,
}

/// One transactional id in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    /// The id.
    pub transactional_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// State.
    pub state: TxnState,
}

/// The id source the coordinator asks when it needs a new producer id (the
/// broker's block from the controller). A failure is retriable.
pub type ProducerIdSource<'a> = &'a mut dyn FnMut() -> Result<i64>;

/// The transactional ids of one `__transaction_state` partition.
#[derive(Debug, Clone, Default)]
pub struct TxnShard {
    config: TxnConfig,
    coordinator_epoch: i32,
    txns: BTreeMap<String, TxnMetadata>,
    /// Soft state: the (producer id, epoch) of the last EndTxn each id's
    /// current epoch came from, to answer its retry.
    end_txn_from: BTreeMap<String, ProducerIdAndEpoch>,
    /// Soft state: the expected id and epoch of the last KIP-360
    /// InitProducerId that bumped or fenced each id, to accept its retry
    /// (Kafka's in-memory `lastProducerEpoch`).
    init_from: BTreeMap<String, ProducerIdAndEpoch>,
}

/// Checks a transactional id: non-empty, at most
/// [`MAX_TRANSACTIONAL_ID_BYTES`].
pub fn validate_transactional_id(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!(InvalidRequest, "transactional id is empty");
    }
    if id.len() > MAX_TRANSACTIONAL_ID_BYTES {
        bail!(
            InvalidRequest,
            "transactional id is {} bytes, longer than {MAX_TRANSACTIONAL_ID_BYTES}",
            id.len()
        );
    }
    Ok(())
}

fn validate_partition((topic, partition): &TopicPartition) -> Result<()> {
    if topic.is_empty() || topic.len() > 249 {
        bail!(InvalidRequest, "topic name {topic:?} is not a valid topic");
    }
    if topic == TRANSACTION_STATE_TOPIC {
        bail!(
            InvalidRequest,
            "{TRANSACTION_STATE_TOPIC} cannot be part of a transaction"
        );
    }
    if *partition < 0 {
        bail!(
            InvalidRequest,
            "partition {partition} of {topic} is negative"
        );
    }
    Ok(())
}

/// The producer id and epoch a request carries must be the id's current
/// ones.
fn check_producer(m: &TxnMetadata, id: &str, producer_id: i64, epoch: i16) -> Result<()> {
    if producer_id != m.producer_id {
        bail!(
            InvalidProducerIdMapping,
            "transactional id {id} holds producer id {}, not {producer_id}",
            m.producer_id
        );
    }
    if epoch < m.producer_epoch {
        bail!(
            ProducerFenced,
            "producer {producer_id} epoch {epoch} of {id} is fenced by epoch {}",
            m.producer_epoch
        );
    }
    if epoch > m.producer_epoch {
        bail!(
            InvalidProducerEpoch,
            "producer {producer_id} epoch {epoch} of {id} is newer than the coordinator's {}",
            m.producer_epoch
        );
    }
    Ok(())
}

impl TxnShard {
    /// An empty shard led at `coordinator_epoch` (the leader epoch of its
    /// `__transaction_state` partition).
    pub fn new(config: TxnConfig, coordinator_epoch: i32) -> Self {
        TxnShard {
            config,
            coordinator_epoch,
            ..TxnShard::default()
        }
    }

    /// The coordinator settings.
    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// The coordinator epoch markers carry.
    pub fn coordinator_epoch(&self) -> i32 {
        self.coordinator_epoch
    }

    /// Applies committed records, in log order.
    pub fn replay<'a>(&mut self, records: impl IntoIterator<Item = &'a Record>) {
        for record in records {
            match &record.value {
                Some(v) if v.state != TxnState::Dead => {
                    self.txns.insert(record.transactional_id.clone(), v.clone());
                }
                _ => {
                    self.txns.remove(&record.transactional_id);
                    self.end_txn_from.remove(&record.transactional_id);
                    self.init_from.remove(&record.transactional_id);
                }
            }
        }
    }

    /// The state of `transactional_id`, if the shard knows it.
    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    /// `DescribeTransactions`: the state of `transactional_id`, or
    /// `TRANSACTIONAL_ID_NOT_FOUND`.
    pub fn describe(&self, transactional_id: &str) -> Result<&TxnMetadata> {
        validate_transactional_id(transactional_id)?;
        match self.txns.get(transactional_id) {
            Some(m) => Ok(m),
            None => bail!(
                TransactionalIdNotFound,
                "transactional id {transactional_id} is not known"
            ),
        }
    }

    /// `ListTransactions`: every id, optionally filtered by states and
    /// producer ids (empty filter: all).
    pub fn list(&self, states: &[TxnState], producer_ids: &[i64]) -> Vec<TxnListing> {
        self.txns
            .iter()
            .filter(|(_, m)| states.is_empty() || states.contains(&m.state))
            .filter(|(_, m)| producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
            .map(|(id, m)| TxnListing {
                transactional_id: id.clone(),
                producer_id: m.producer_id,
                state: m.state,
            })
            .collect()
    }

    /// How many ids have a transaction open or completing (`Ongoing`,
    /// `PrepareCommit`, `PrepareAbort`).
    pub fn open_transactions(&self) -> usize {
        self.txns
            .values()
            .filter(|m| m.state == TxnState::Ongoing || m.state.is_prepare())
            .count()
    }

    /// The markers of every transaction decided but not complete: what a
    /// new coordinator must (re)write after loading the partition.
    pub fn pending_markers(&self) -> Vec<WriteMarkers> {
        self.txns
            .iter()
            .filter(|(_, m)| m.state.is_prepare())
            .map(|(id, m)| self.markers_of(id, m))
            .collect()
    }

    fn markers_of(&self, id: &str, m: &TxnMetadata) -> WriteMarkers {
        WriteMarkers {
            transactional_id: id.to_owned(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: self.coordinator_epoch,
            result: if m.state == TxnState::PrepareCommit {
                TxnResult::Commit
            } else {
                TxnResult::Abort
            },
            partitions: m.partitions.clone(),
        }
    }

    /// The fence of an open transaction (a new incarnation or a timeout):
    /// `PrepareAbort` at the next epoch, and its ABORT markers.
    fn fence(&self, id: &str, m: &TxnMetadata, now_ms: i64) -> Decision<()> {
        let mut next = m.clone();
        // An open transaction's epoch is below i16::MAX (the client never
        // receives an epoch above EXHAUSTED_EPOCH), so there is one bump left.
        next.producer_epoch = m.producer_epoch.saturating_add(1);
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms;
        Decision {
            markers: vec![self.markers_of(id, &next)],
            records: vec![Record::put(id, next)],
            response: (),
        }
    }

    /// `InitProducerId` with a transactional id at `now_ms`: a new producer
    /// id at epoch 0 for a new id; otherwise the epoch bumped (fencing the
    /// previous incarnation), a new producer id if the epoch is exhausted,
    /// or, with a transaction open, its abort first.
    pub fn init_producer_id(
        &mut self,
        req: &InitProducerIdRequest,
        now_ms: i64,
        new_producer_id: ProducerIdSource<'_>,
    ) -> Result<Decision<InitProducerIdResponse>> {
        let id = req.transactional_id.as_str();
        validate_transactional_id(id)?;
        if req.timeout_ms <= 0 || req.timeout_ms > self.config.max_timeout_ms {
            bail!(
                InvalidTransactionTimeout,
                "transaction.timeout.ms {} is not in 1..={} (transaction.max.timeout.ms)",
                req.timeout_ms,
                self.config.max_timeout_ms
            );
        }
        let Some(m) = self.txns.get(id) else {
            let producer_id = new_producer_id()?;
            let value = TxnMetadata {
                producer_id,
                previous_producer_id: NO_PRODUCER_ID,
                next_producer_id: NO_PRODUCER_ID,
                producer_epoch: 0,
                timeout_ms: req.timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                last_update_ms: now_ms,
                start_ms: -1,
                client_transaction_version: TRANSACTION_VERSION_2,
            };
            return Ok(Decision {
                records: vec![Record::put(id, value)],
                markers: Vec::new(),
                response: InitProducerIdResponse::Ready(ProducerIdAndEpoch {
                    producer_id,
                    epoch: 0,
                }),
            });
        };
        // A retry of a KIP-360 InitProducerId whose answer was lost: after
        // a bump, the same answer; after a fence whose abort completed, the
        // bump it waited for. Anything else is checked as a new request.
        let retry = req.expected.is_some() && self.init_from.get(id) == req.expected.as_ref();
        if retry && m.state == TxnState::Empty {
            return Ok(Decision::answer(InitProducerIdResponse::Ready(
                ProducerIdAndEpoch {
                    producer_id: m.producer_id,
                    epoch: m.producer_epoch,
                },
            )));
        }
        let retry = retry && m.state != TxnState::Ongoing;
        if let Some(e) = req.expected.filter(|_| !retry) {
            let known = e.producer_id == m.producer_id
                || (e.producer_id == m.previous_producer_id && is_epoch_exhausted(e.epoch));
            if !known {
                bail!(
                    ProducerFenced,
                    "producer {} of {id} was replaced by producer {}",
                    e.producer_id,
                    m.producer_id
                );
            }
            if e.producer_id == m.producer_id && e.epoch != m.producer_epoch {
                bail!(
                    ProducerFenced,
                    "producer {} epoch {} of {id} is not the current epoch {}",
                    e.producer_id,
                    e.epoch,
                    m.producer_epoch
                );
            }
        }
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                bail!(
                    ConcurrentTransactions,
                    "transaction of {id} is completing ({})",
                    m.state.name()
                )
            }
            TxnState::Ongoing => {
                let d = self.fence(id, m, now_ms);
                self.end_txn_from.remove(id);
                self.remember_init(id, req.expected);
                Ok(Decision {
                    records: d.records,
                    markers: d.markers,
                    response: InitProducerIdResponse::AbortingOngoing,
                })
            }
            TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort
            | TxnState::Dead => {
                let mut next = m.clone();
                if is_epoch_exhausted(m.producer_epoch) {
                    next.producer_id = new_producer_id()?;
                    next.previous_producer_id = m.producer_id;
                    next.producer_epoch = 0;
                } else {
                    next.producer_epoch = m.producer_epoch + 1;
                }
                next.next_producer_id = NO_PRODUCER_ID;
                next.timeout_ms = req.timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.last_update_ms = now_ms;
                next.start_ms = -1;
                next.client_transaction_version = TRANSACTION_VERSION_2;
                let ready = ProducerIdAndEpoch {
                    producer_id: next.producer_id,
                    epoch: next.producer_epoch,
                };
                self.end_txn_from.remove(id);
                self.remember_init(id, req.expected);
                Ok(Decision {
                    records: vec![Record::put(id, next)],
                    markers: Vec::new(),
                    response: InitProducerIdResponse::Ready(ready),
                })
            }
        }
    }

    fn remember_init(&mut self, id: &str, expected: Option<ProducerIdAndEpoch>) {
        match expected {
            Some(e) => {
                self.init_from.insert(id.to_owned(), e);
            }
            None => {
                self.init_from.remove(id);
            }
        }
    }

    /// `AddPartitionsToTxn`: adds `partitions` to the producer's
    /// transaction, opening it if none is open. The host checks that the
    /// topics exist (`UNKNOWN_TOPIC_OR_PARTITION`) first.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
        now_ms: i64,
    ) -> Result<Decision<()>> {
        validate_transactional_id(transactional_id)?;
        if partitions.is_empty() {
            bail!(InvalidRequest, "no partitions to add");
        }
        for p in partitions {
            validate_partition(p)?;
        }
        let Some(m) = self.txns.get(transactional_id) else {
            bail!(
                InvalidProducerIdMapping,
                "transactional id {transactional_id} has no producer id: call InitProducerId first"
            );
        };
        check_producer(m, transactional_id, producer_id, epoch)?;
        if m.state.is_prepare() || m.state == TxnState::PrepareEpochFence {
            bail!(
                ConcurrentTransactions,
                "transaction of {transactional_id} is completing ({})",
                m.state.name()
            );
        }
        let ongoing = m.state == TxnState::Ongoing;
        if ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
            return Ok(Decision::answer(()));
        }
        let mut next = m.clone();
        if !ongoing {
            next.partitions.clear();
            next.start_ms = now_ms;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.state = TxnState::Ongoing;
        next.last_update_ms = now_ms;
        Ok(Decision {
            records: vec![Record::put(transactional_id, next)],
            markers: Vec::new(),
            response: (),
        })
    }

    /// `AddOffsetsToTxn`: adds the `__consumer_offsets` partition of
    /// `group_id` (among `offsets_partitions`) to the transaction, so the
    /// markers reach the group coordinator that holds its
    /// `TxnOffsetCommit`s.
    pub fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        group_id: &str,
        offsets_partitions: i32,
        now_ms: i64,
    ) -> Result<Decision<()>> {
        if let Err(e) = strom_group::validate_group_id(group_id) {
            bail!(InvalidRequest, "{}", e.message);
        }
        if offsets_partitions <= 0 {
            bail!(
                InvalidRequest,
                "offsets.topic.num.partitions must be positive"
            );
        }
        let partition = strom_group::offsets_partition_for(group_id, offsets_partitions);
        self.add_partitions(
            transactional_id,
            producer_id,
            epoch,
            &[(OFFSETS_TOPIC.to_owned(), partition)],
            now_ms,
        )
    }

    /// `EndTxn` (transaction version 2): commits or aborts the open
    /// transaction. The `Prepare*` record carries the bumped epoch; the
    /// markers follow once it is committed; the answer (given when the
    /// record is committed, as Kafka does) is the id and epoch for the
    /// next transaction. An abort without an open transaction is allowed
    /// (the client may not know whether its transaction began). A retry of
    /// the EndTxn that made the current epoch is answered as the original.
    /// With [`TxnVersion::V0`] see [`end_txn_v0`](Self::end_txn_v0).
    #[allow(clippy::too_many_arguments)]
    pub fn end_txn(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        result: TxnResult,
        version: TxnVersion,
        now_ms: i64,
        new_producer_id: ProducerIdSource<'_>,
    ) -> Result<Decision<ProducerIdAndEpoch>> {
        let id = transactional_id;
        validate_transactional_id(id)?;
        let Some(m) = self.txns.get(id) else {
            bail!(
                InvalidProducerIdMapping,
                "transactional id {id} has no producer id: call InitProducerId first"
            );
        };
        if version == TxnVersion::V0 {
            let m = m.clone();
            return self.end_txn_v0(id, &m, producer_id, epoch, result, now_ms);
        }
        let caller = ProducerIdAndEpoch { producer_id, epoch };
        if self.end_txn_from.get(id) == Some(&caller) {
            return self.end_txn_retry(id, m, result);
        }
        check_producer(m, id, producer_id, epoch)?;
        let bumped = m.producer_epoch.saturating_add(1);
        match (m.state, result) {
            (TxnState::Ongoing, _) => {
                let mut next = m.clone();
                next.producer_epoch = bumped;
                next.next_producer_id = if is_epoch_exhausted(bumped) {
                    new_producer_id()?
                } else {
                    NO_PRODUCER_ID
                };
                next.state = match result {
                    TxnResult::Commit => TxnState::PrepareCommit,
                    TxnResult::Abort => TxnState::PrepareAbort,
                };
                next.last_update_ms = now_ms;
                let response = next_producer(&next);
                let markers = vec![self.markers_of(id, &next)];
                self.end_txn_from.insert(id.to_owned(), caller);
                Ok(Decision {
                    records: vec![Record::put(id, next)],
                    markers,
                    response,
                })
            }
            (
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort,
                TxnResult::Abort,
            ) => {
                // Nothing to abort: PrepareAbort and CompleteAbort at once
                // (no partitions, no markers), bumping the epoch as any
                // EndTxn does.
                let mut prepare = m.clone();
                prepare.producer_epoch = bumped;
                prepare.next_producer_id = if is_epoch_exhausted(bumped) {
                    new_producer_id()?
                } else {
                    NO_PRODUCER_ID
                };
                prepare.state = TxnState::PrepareAbort;
                prepare.partitions.clear();
                prepare.last_update_ms = now_ms;
                let complete = completed(&prepare, now_ms);
                let response = ProducerIdAndEpoch {
                    producer_id: complete.producer_id,
                    epoch: complete.producer_epoch,
                };
                self.end_txn_from.insert(id.to_owned(), caller);
                Ok(Decision {
                    records: vec![Record::put(id, prepare), Record::put(id, complete)],
                    markers: Vec::new(),
                    response,
                })
            }
            (
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort,
                TxnResult::Commit,
            ) => {
                bail!(
                    InvalidTxnState,
                    "transactional id {id} has no open transaction to commit ({})",
                    m.state.name()
                )
            }
            (TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence, _) => {
                bail!(
                    ConcurrentTransactions,
                    "transaction of {id} is completing ({})",
                    m.state.name()
                )
            }
            (TxnState::Dead, _) => bail!(
                InvalidProducerIdMapping,
                "transactional id {id} has expired"
            ),
        }
    }

    /// `EndTxn` of a client before transaction version 2, as Kafka's
    /// coordinator serves it: `Prepare*` at the producer's epoch (no
    /// bump), markers at that epoch, and the same id and epoch answered.
    /// A retry is recognised by the state: the same result while
    /// completing is CONCURRENT_TRANSACTIONS, once complete it is answered
    /// again; anything else without an open transaction (an abort of an
    /// empty one included) is INVALID_TXN_STATE.
    fn end_txn_v0(
        &mut self,
        id: &str,
        m: &TxnMetadata,
        producer_id: i64,
        epoch: i16,
        result: TxnResult,
        now_ms: i64,
    ) -> Result<Decision<ProducerIdAndEpoch>> {
        check_producer(m, id, producer_id, epoch)?;
        let same = ProducerIdAndEpoch {
            producer_id: m.producer_id,
            epoch: m.producer_epoch,
        };
        match (m.state, result) {
            (TxnState::Ongoing, _) => {
                let mut next = m.clone();
                next.state = match result {
                    TxnResult::Commit => TxnState::PrepareCommit,
                    TxnResult::Abort => TxnState::PrepareAbort,
                };
                next.next_producer_id = NO_PRODUCER_ID;
                next.last_update_ms = now_ms;
                next.client_transaction_version = TxnVersion::V0.log_value();
                let markers = vec![self.markers_of(id, &next)];
                // A new transaction began since any earlier EndTxn: its
                // retry must not be answered from this one.
                self.end_txn_from.remove(id);
                Ok(Decision {
                    records: vec![Record::put(id, next)],
                    markers,
                    response: same,
                })
            }
            (TxnState::CompleteCommit, TxnResult::Commit)
            | (TxnState::CompleteAbort, TxnResult::Abort) => Ok(Decision::answer(same)),
            (TxnState::PrepareCommit, TxnResult::Commit)
            | (TxnState::PrepareAbort, TxnResult::Abort)
            | (TxnState::PrepareEpochFence, _) => bail!(
                ConcurrentTransactions,
                "transaction of {id} is completing ({})",
                m.state.name()
            ),
            (TxnState::Dead, _) => bail!(
                InvalidProducerIdMapping,
                "transactional id {id} has expired"
            ),
            _ => bail!(
                InvalidTxnState,
                "transactional id {id} has no open transaction to {} ({})",
                match result {
                    TxnResult::Commit => "commit",
                    TxnResult::Abort => "abort",
                },
                m.state.name()
            ),
        }
    }

    fn end_txn_retry(
        &self,
        id: &str,
        m: &TxnMetadata,
        result: TxnResult,
    ) -> Result<Decision<ProducerIdAndEpoch>> {
        match (m.state, result) {
            (TxnState::PrepareCommit, TxnResult::Commit)
            | (TxnState::PrepareAbort, TxnResult::Abort) => bail!(
                ConcurrentTransactions,
                "transaction of {id} is completing ({})",
                m.state.name()
            ),
            (TxnState::CompleteCommit, TxnResult::Commit)
            | (TxnState::CompleteAbort, TxnResult::Abort) => {
                Ok(Decision::answer(ProducerIdAndEpoch {
                    producer_id: m.producer_id,
                    epoch: m.producer_epoch,
                }))
            }
            _ => bail!(
                InvalidTxnState,
                "transaction of {id} ended otherwise ({}), not by this {result:?}",
                m.state.name()
            ),
        }
    }

    /// Every marker of the transaction `producer_id`/`epoch` of
    /// `transactional_id` is in its partition's log: `CompleteCommit` or
    /// `CompleteAbort` (moving to the next producer id if EndTxn chose
    /// one). A stale acknowledgement (the transaction is not that one or
    /// not completing) is `INVALID_TXN_STATE` and changes nothing.
    pub fn markers_written(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        now_ms: i64,
    ) -> Result<Decision<()>> {
        let id = transactional_id;
        let Some(m) = self.txns.get(id) else {
            bail!(InvalidTxnState, "transactional id {id} is not known");
        };
        if !m.state.is_prepare() || m.producer_id != producer_id || m.producer_epoch != epoch {
            bail!(
                InvalidTxnState,
                "transactional id {id} is {} with producer {} epoch {}, not completing producer {producer_id} epoch {epoch}",
                m.state.name(),
                m.producer_id,
                m.producer_epoch
            );
        }
        Ok(Decision {
            records: vec![Record::put(id, completed(m, now_ms))],
            markers: Vec::new(),
            response: (),
        })
    }

    /// Aborts, at `now_ms`, every open transaction older than its
    /// `transaction.timeout.ms`: `PrepareAbort` at a bumped epoch (the
    /// producer is fenced: its next send or EndTxn fails, and it must
    /// abort and go on with a new epoch) and ABORT markers. Returns the
    /// ids aborted.
    pub fn abort_timed_out(&mut self, now_ms: i64) -> Decision<Vec<String>> {
        let mut out = Decision::answer(Vec::new());
        for (id, m) in &self.txns {
            if m.state == TxnState::Ongoing
                && now_ms.saturating_sub(m.start_ms) > i64::from(m.timeout_ms)
            {
                let d = self.fence(id, m, now_ms);
                out.records.extend(d.records);
                out.markers.extend(d.markers);
                out.response.push(id.clone());
            }
        }
        for id in &out.response {
            self.end_txn_from.remove(id);
            self.init_from.remove(id);
        }
        out
    }

    /// Removes, at `now_ms`, the ids with no open transaction that were
    /// idle for `transactional.id.expiration.ms`: a tombstone each.
    /// Returns the ids removed.
    pub fn expire_transactional_ids(&self, now_ms: i64) -> Decision<Vec<String>> {
        let mut out = Decision::answer(Vec::new());
        for (id, m) in &self.txns {
            if m.state.is_idle()
                && now_ms.saturating_sub(m.last_update_ms)
                    >= self.config.transactional_id_expiration_ms
            {
                out.records.push(Record::tombstone(id));
                out.response.push(id.clone());
            }
        }
        out
    }
}

/// The id and epoch a producer uses after the `Prepare*` state `m`
/// completes.
fn next_producer(m: &TxnMetadata) -> ProducerIdAndEpoch {
    if m.next_producer_id != NO_PRODUCER_ID {
        ProducerIdAndEpoch {
            producer_id: m.next_producer_id,
            epoch: 0,
        }
    } else {
        ProducerIdAndEpoch {
            producer_id: m.producer_id,
            epoch: m.producer_epoch,
        }
    }
}

/// The `Complete*` state after the `Prepare*` state `m`.
fn completed(m: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    let mut next = m.clone();
    next.state = if m.state == TxnState::PrepareCommit {
        TxnState::CompleteCommit
    } else {
        TxnState::CompleteAbort
    };
    next.partitions.clear();
    next.last_update_ms = now_ms;
    if m.next_producer_id != NO_PRODUCER_ID {
        next.previous_producer_id = m.producer_id;
        next.producer_id = m.next_producer_id;
        next.producer_epoch = 0;
        next.next_producer_id = NO_PRODUCER_ID;
    }
    next
}

#[cfg(test)]
#[path = "coordinator_test.rs"]
mod tests;
