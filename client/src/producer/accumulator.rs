//! The record accumulator: per-partition queues of batches being filled or
//! waiting to be sent, and the decisions about them — which partitions are
//! ready (a full batch, `linger.ms` passed, a flush, close, or memory
//! pressure), what a request to a leader carries, what a retry or an expiry
//! does. No I/O and no clock of its own: the sender passes `now`.
//!
//! Every record carries the one-shot channel its `send` future waits on;
//! finishing a batch (acknowledged, failed, expired) answers all of them
//! and releases the batch's share of `buffer.memory`.
//!
//! In flight: each request's share of a partition (a group of batches) is
//! in flight until answered, up to `max.in.flight.requests.per.connection`
//! groups per partition at a time. Order is kept across retries as in
//! Kafka: once a group comes back failed, the partition sends nothing new
//! until every group sent after it is back too (those are marked as sent
//! after a failure: an idempotent one refused with OUT_OF_ORDER_SEQUENCE
//! was refused only because of the earlier failure, and is retried). The
//! groups that came back then go again one at a time, in the order they
//! were first sent; only after them do new batches go, pipelined again.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use strom_log::{Compression, Header, RecordBatchBuilder};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use super::idempotence::{ProducerFields, Sequences};
use super::record::RecordMetadata;
use crate::admin::TopicPartition;
use crate::error::{Error, Result};

/// Where a record's outcome goes: the channel its [`DeliveryFuture`]
/// waits on, or the callback given to [`Producer::send_with_callback`].
///
/// [`DeliveryFuture`]: super::DeliveryFuture
/// [`Producer::send_with_callback`]: super::Producer::send_with_callback
/// (Each is taken when the outcome is delivered.)
pub(crate) enum Completion {
    Future(Option<oneshot::Sender<Result<RecordMetadata>>>),
    Callback(Option<Callback>),
}

/// A record's callback; it runs on the producer's sender task.
pub(crate) type Callback = Box<dyn FnOnce(Result<RecordMetadata>) + Send>;

impl Completion {
    /// Delivers the outcome. A dropped future is not an error; a panicking
    /// callback is logged and does not stop the producer.
    pub(crate) fn complete(mut self, outcome: Result<RecordMetadata>) {
        match &mut self {
            Completion::Future(sender) => {
                if let Some(sender) = sender.take() {
                    let _ = sender.send(outcome);
                }
            }
            Completion::Callback(callback) => {
                if let Some(callback) = callback.take() {
                    run_callback(callback, outcome);
                }
            }
        }
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Completion::Future(_) => "Completion::Future",
            Completion::Callback(_) => "Completion::Callback",
        })
    }
}

/// A callback whose record is dropped unanswered (the producer's task
/// stopped) still hears of it, as a future does from its closed channel.
impl Drop for Completion {
    fn drop(&mut self) {
        if let Completion::Callback(callback) = self
            && let Some(callback) = callback.take()
        {
            run_callback(callback, Err(super::stopped_error()));
        }
    }
}

fn run_callback(callback: Callback, outcome: Result<RecordMetadata>) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(outcome))).is_err() {
        tracing::error!("a producer send callback panicked; the producer carries on");
    }
}

/// A record waiting in a batch for its outcome.
#[derive(Debug)]
struct PendingRecord {
    timestamp: i64,
    completion: Completion,
}

/// One batch of one partition: the encoder, the records' completions and
/// the retry bookkeeping.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    /// Increasing per producer; flushes wait for ids up to a mark.
    pub(crate) id: u64,
    pub(crate) tp: TopicPartition,
    builder: RecordBatchBuilder,
    records: Vec<PendingRecord>,
    created: Instant,
    /// Times the batch was handed to a request.
    pub(crate) attempts: u32,
    /// The encoded batch, built once on the first send and reused by retries.
    encoded: Option<Bytes>,
    /// This batch's share of `buffer.memory`, released when it is dropped.
    memory: Option<OwnedSemaphorePermit>,
    /// No more records join (a record did not fit, or it was sent).
    closed: bool,
    /// The error of the last failed attempt, for the expiry message.
    last_error: Option<Error>,
    /// The request (per partition) it was last sent in; an idempotent
    /// retry carries exactly the batches of that group, whose sequences
    /// were fixed then. 0 before the first send.
    pub(crate) group: u64,
    /// Idempotent producer: the producer id and epoch its sequences were
    /// given under (`None` before the first send).
    sequenced: Option<(i64, i16)>,
    /// Idempotent producer: its sequences are void (the partition moved to
    /// another epoch while it was away); it gets new ones when resent.
    needs_sequence: bool,
}

impl ProducerBatch {
    /// Records in the batch.
    pub(crate) fn record_count(&self) -> usize {
        self.records.len()
    }

    /// The size it takes in a request: encoded when known, else the
    /// uncompressed estimate (an upper bound for every codec but a
    /// degenerate one).
    pub(crate) fn size(&self) -> usize {
        self.encoded
            .as_ref()
            .map_or_else(|| self.builder.estimated_size(), Bytes::len)
    }

    /// Fixes the batch's producer fields (before its first encoding, or to
    /// resend it under a new epoch: it is encoded again).
    fn set_producer(&mut self, (id, epoch, seq): ProducerFields) {
        self.builder.set_producer(id, epoch, seq);
        self.encoded = None;
        self.sequenced = Some((id, epoch));
        self.needs_sequence = false;
    }

    /// The encoded batch (compressed on first use).
    pub(crate) fn encode(&mut self) -> Bytes {
        self.encoded
            .get_or_insert_with(|| self.builder.build())
            .clone()
    }
}

/// Finished batches, answered outside the producer's lock: answering wakes
/// each record's waiter or runs its callback, and neither `send` nor the
/// callbacks may wait on the lock for that.
#[derive(Debug, Default)]
#[must_use = "the records are answered only by `deliver`"]
pub(crate) struct Deliveries(Vec<Delivery>);

/// One batch's records and their outcome.
#[derive(Debug)]
struct Delivery {
    id: u64,
    tp: TopicPartition,
    records: Vec<PendingRecord>,
    outcome: BatchOutcome,
    /// The finished batch, released (bytes and memory) once its records
    /// are answered; `None` while an acks=0 request still sends it.
    batch: Option<ProducerBatch>,
}

/// A batch's outcome: its base offset and the broker's log append time
/// (-1 unless the topic uses `LogAppendTime`), or why it failed.
type BatchOutcome = Result<(i64, i64), Error>;

impl Deliveries {
    fn push(&mut self, mut batch: ProducerBatch, outcome: BatchOutcome) {
        self.0.push(Delivery {
            id: batch.id,
            tp: batch.tp.clone(),
            records: std::mem::take(&mut batch.records),
            outcome,
            batch: Some(batch),
        });
    }

    /// The error of the first failed batch, if any failed.
    pub(crate) fn first_error(&self) -> Option<&Error> {
        self.0.iter().find_map(|d| d.outcome.as_ref().err())
    }

    /// Nothing to answer.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Answers every record: offsets `base_offset`, `base_offset + 1`, …
    /// (-1 throughout when `base_offset` is -1); the timestamp is
    /// `log_append_time` when the broker set one (≥ 0). Returns the
    /// batches' ids for [`RecordAccumulator::delivered`].
    pub(crate) fn deliver(self) -> Vec<u64> {
        self.0
            .into_iter()
            .map(|delivery| {
                let Delivery {
                    id,
                    tp,
                    records,
                    outcome,
                    batch,
                } = delivery;
                match outcome {
                    Ok((base_offset, log_append_time)) => {
                        for (i, record) in records.into_iter().enumerate() {
                            let offset = if base_offset < 0 {
                                -1
                            } else {
                                base_offset + i as i64
                            };
                            let timestamp = if log_append_time >= 0 {
                                log_append_time
                            } else {
                                record.timestamp
                            };
                            record.completion.complete(Ok(RecordMetadata {
                                topic: tp.topic.clone(),
                                partition: tp.partition,
                                offset,
                                timestamp,
                            }));
                        }
                    }
                    Err(error) => {
                        for record in records {
                            record.completion.complete(Err(error.clone()));
                        }
                    }
                }
                drop(batch);
                id
            })
            .collect()
    }
}

/// A partition's batches and whether it may send.
#[derive(Debug, Default)]
struct PartitionQueue {
    batches: VecDeque<ProducerBatch>,
    /// The groups outstanding, in the order they were sent.
    in_flight: VecDeque<InFlightGroup>,
    /// A group came back failed while others were in flight: nothing goes
    /// until they are all back.
    draining: bool,
    /// Backoff after a failed attempt.
    retry_at: Option<Instant>,
}

/// One outstanding request's share of a partition.
#[derive(Debug, Clone, Copy)]
struct InFlightGroup {
    group: u64,
    /// An earlier group came back failed after this one was sent.
    after_failure: bool,
}

impl PartitionQueue {
    /// Whether another group may be sent now (backoff aside): below the
    /// in-flight limit, not waiting for the groups out after a failure, and
    /// a returned group (a retry) goes only when nothing else is out.
    fn may_send(&self, max_in_flight: usize) -> bool {
        if self.in_flight.is_empty() {
            return true;
        }
        let retry_first = self.batches.front().is_some_and(|b| b.attempts > 0);
        self.in_flight.len() < max_in_flight && !self.draining && !retry_first
    }

    /// `group` is back. If it `failed`, every group sent after it is
    /// marked, and nothing new goes until they are back too. Returns
    /// whether `group` itself had been sent after a failure.
    fn end(&mut self, group: u64, failed: bool) -> bool {
        let Some(at) = self.in_flight.iter().position(|g| g.group == group) else {
            return false;
        };
        let ended = self.in_flight.remove(at).expect("found above");
        if failed {
            for later in self.in_flight.iter_mut().skip(at) {
                later.after_failure = true;
            }
            self.draining = true;
        }
        if self.in_flight.is_empty() {
            self.draining = false;
        }
        ended.after_failure
    }

    /// Puts returned `batches` (one group, in order) back where they were
    /// first sent from: after the returned groups sent before them,
    /// before those sent after them and before every batch never sent.
    fn requeue(&mut self, batches: Vec<ProducerBatch>) {
        let Some(group) = batches.first().map(|b| b.group) else {
            return;
        };
        let at = self
            .batches
            .iter()
            .position(|b| b.attempts == 0 || b.group > group)
            .unwrap_or(self.batches.len());
        for (i, batch) in batches.into_iter().enumerate() {
            self.batches.insert(at + i, batch);
        }
    }
}

/// A record to append, already sized and given its timestamp.
#[derive(Debug)]
pub(crate) struct NewRecord<'a> {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [Header],
    /// Upper bound of the encoded size.
    pub(crate) size: usize,
    pub(crate) completion: Completion,
    pub(crate) memory: Option<OwnedSemaphorePermit>,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    /// The batch the record joined.
    pub(crate) batch: u64,
    /// The record started a new batch (the sender must schedule its linger).
    pub(crate) new_batch: bool,
    /// The batch is now full (the sender should send it).
    pub(crate) full: bool,
}

/// Which partitions may send now, and when to look again.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    pub(crate) partitions: Vec<TopicPartition>,
    /// The earliest instant a waiting batch becomes sendable or expires.
    pub(crate) next_check: Option<Instant>,
}

/// A queue's key as lookups see it: a topic name and a partition, borrowed
/// from a [`TopicPartition`] or from the parts of a record being appended,
/// so that appending a record costs no `String`.
pub(crate) trait PartitionKey {
    fn parts(&self) -> (&str, i32);

    fn to_owned_key(&self) -> TopicPartition {
        let (topic, partition) = self.parts();
        TopicPartition::new(topic, partition)
    }
}

impl PartitionKey for TopicPartition {
    fn parts(&self) -> (&str, i32) {
        (&self.topic, self.partition)
    }
}

impl PartitionKey for (&str, i32) {
    fn parts(&self) -> (&str, i32) {
        *self
    }
}

impl<'a> Borrow<dyn PartitionKey + 'a> for TopicPartition {
    fn borrow(&self) -> &(dyn PartitionKey + 'a) {
        self
    }
}

// Ordered as `TopicPartition` is (topic, then partition), which the map's
// lookups through `Borrow` rely on.
impl PartialEq for dyn PartitionKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn PartitionKey + '_ {}

impl PartialOrd for dyn PartitionKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn PartitionKey + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// Batch settings the accumulator applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    pub(crate) batch_size: usize,
    pub(crate) linger: Duration,
    pub(crate) compression: Compression,
    pub(crate) delivery_timeout: Duration,
    /// `enable.idempotence` in effect.
    pub(crate) idempotent: bool,
    /// `max.in.flight.requests.per.connection`: groups per partition out
    /// at once (at least 1).
    pub(crate) max_in_flight: usize,
    /// Transactional producer (implies `idempotent`): batches carry the
    /// transactional attribute, and the producer id and epoch come from
    /// the coordinator through [`RecordAccumulator::set_epoch`].
    pub(crate) transactional: bool,
}

/// The per-partition queues of one producer.
#[derive(Debug)]
pub(crate) struct RecordAccumulator {
    settings: BatchSettings,
    queues: BTreeMap<TopicPartition, PartitionQueue>,
    next_batch_id: u64,
    /// Batches created and not finished, queued or in flight.
    incomplete: BTreeSet<u64>,
    /// Batches with an id up to this are sent without lingering.
    flush_up_to: Option<u64>,
    /// Closing: everything is sent without lingering, no record joins.
    closing: bool,
    /// Where the next drain starts among a leader's partitions, so that
    /// every partition gets its turn when requests are full.
    drain_start: usize,
    /// The idempotent producer's id, epochs and sequences (`None` when
    /// idempotence is off).
    sequences: Option<Sequences>,
    /// The last group handed to a request (see [`ProducerBatch::group`]).
    last_group: u64,
}

impl RecordAccumulator {
    pub(crate) fn new(settings: BatchSettings) -> Self {
        Self {
            settings,
            queues: BTreeMap::new(),
            next_batch_id: 0,
            incomplete: BTreeSet::new(),
            flush_up_to: None,
            closing: false,
            drain_start: 0,
            sequences: if settings.transactional {
                Some(Sequences::transactional())
            } else {
                settings.idempotent.then(Sequences::default)
            },
            last_group: 0,
        }
    }

    /// Idempotent and without a producer id while batches wait: the sender
    /// must get one (`InitProducerId`) before they can go.
    pub(crate) fn needs_producer_id(&self) -> bool {
        !self.settings.transactional
            && self
                .sequences
                .as_ref()
                .is_some_and(|s| s.producer_id().is_none())
            && self.queues.values().any(|q| !q.batches.is_empty())
    }

    /// Transactional: the coordinator gave producer `id` at `epoch`
    /// (`InitProducerId`, or the EndTxn that ended the last transaction).
    /// Every partition starts at sequence 0 in it; a batch still queued
    /// with sequences of the old epoch gets new ones when sent.
    pub(crate) fn set_epoch(&mut self, id: i64, epoch: i16) {
        if let Some(sequences) = &mut self.sequences {
            sequences.set_epoch(id, epoch);
        }
        for queue in self.queues.values_mut() {
            for batch in &mut queue.batches {
                if batch.sequenced.is_some() {
                    batch.needs_sequence = true;
                }
            }
        }
    }

    /// Aborting a transaction: fails every batch waiting in a queue (never
    /// sent, or back for a retry) with `error`; batches in flight finish
    /// on their own. Returns how many failed.
    pub(crate) fn fail_queued(&mut self, error: &Error, out: &mut Deliveries) -> usize {
        let mut count = 0;
        for queue in self.queues.values_mut() {
            queue.retry_at = None;
            for batch in queue.batches.drain(..) {
                out.push(batch, Err(error.clone()));
                count += 1;
            }
        }
        self.queues
            .retain(|_, q| !q.batches.is_empty() || !q.in_flight.is_empty());
        count
    }

    /// `InitProducerId` answered.
    pub(crate) fn set_producer_id(&mut self, id: i64) {
        if let Some(sequences) = &mut self.sequences {
            sequences.set_producer_id(id);
        }
    }

    /// `tp`'s sent batches ended without a known fate (idempotence: the
    /// partition moves to a new epoch, and the returned batches waiting to
    /// be resent get new sequences in it).
    fn sent_batches_failed(&mut self, tp: &TopicPartition) {
        let Some(sequences) = &mut self.sequences else {
            return;
        };
        sequences.bump(tp);
        let current = sequences.current(tp);
        if let Some(queue) = self.queues.get_mut(tp) {
            for batch in &mut queue.batches {
                if batch.sequenced.is_some() && batch.sequenced != current {
                    batch.needs_sequence = true;
                }
            }
        }
    }

    /// The group of `tp`'s first batch when it is an idempotent retry:
    /// its batches (at the queue's front) and their size.
    fn retry_group(&self, tp: &TopicPartition) -> Option<(usize, usize)> {
        self.sequences.as_ref()?;
        let queue = self.queues.get(tp)?;
        let first = queue.batches.front()?;
        if first.attempts == 0 {
            return None;
        }
        let members = queue
            .batches
            .iter()
            .take_while(|b| b.group == first.group)
            .fold((0, 0), |(n, size), b| (n + 1, size + b.size()));
        Some(members)
    }

    /// The batch of `tp` that is open and has room for `size` more bytes.
    pub(crate) fn open_batch(&self, tp: &dyn PartitionKey, size: usize) -> Option<u64> {
        let batch = self.queues.get(tp)?.batches.back()?;
        (!batch.closed && self.has_room(batch, size)).then_some(batch.id)
    }

    fn has_room(&self, batch: &ProducerBatch, size: usize) -> bool {
        batch.records.is_empty()
            || batch.builder.estimated_size() + size <= self.settings.batch_size
    }

    fn is_full(&self, batch: &ProducerBatch) -> bool {
        batch.closed || batch.builder.estimated_size() >= self.settings.batch_size
    }

    /// Appends a record to `tp`'s open batch, or to a new batch when it
    /// does not fit (a record larger than `batch.size` gets a batch alone).
    /// `now` is read only for a new batch.
    pub(crate) fn append(
        &mut self,
        tp: &dyn PartitionKey,
        record: NewRecord<'_>,
        now: impl FnOnce() -> Instant,
    ) -> Appended {
        let settings = self.settings;
        if !self.queues.contains_key(tp) {
            self.queues
                .insert(tp.to_owned_key(), PartitionQueue::default());
        }
        let queue = self.queues.get_mut(tp).expect("inserted above");
        let fits = queue.batches.back().is_some_and(|b| {
            !b.closed
                && (b.records.is_empty()
                    || b.builder.estimated_size() + record.size <= settings.batch_size)
        });
        let new_batch = !fits;
        if new_batch {
            if let Some(last) = queue.batches.back_mut() {
                last.closed = true;
            }
            let id = self.next_batch_id;
            self.next_batch_id += 1;
            self.incomplete.insert(id);
            queue.batches.push_back(ProducerBatch {
                id,
                tp: tp.to_owned_key(),
                builder: RecordBatchBuilder::new(settings.compression)
                    .transactional(settings.transactional),
                records: Vec::new(),
                created: now(),
                attempts: 0,
                encoded: None,
                memory: None,
                closed: false,
                last_error: None,
                group: 0,
                sequenced: None,
                needs_sequence: false,
            });
        }
        let batch = queue
            .batches
            .back_mut()
            .expect("a batch was just found or created");
        batch
            .builder
            .append(record.timestamp, record.key, record.value, record.headers);
        batch.records.push(PendingRecord {
            timestamp: record.timestamp,
            completion: record.completion,
        });
        if let Some(permit) = record.memory {
            match &mut batch.memory {
                Some(memory) => memory.merge(permit),
                None => batch.memory = Some(permit),
            }
        }
        let id = batch.id;
        let full = batch.builder.estimated_size() >= settings.batch_size;
        Appended {
            batch: id,
            new_batch,
            full,
        }
    }

    fn sendable(&self, batch: &ProducerBatch, now: Instant, memory_exhausted: bool) -> bool {
        self.is_full(batch)
            || batch.attempts > 0
            || memory_exhausted
            || self.closing
            || self.flush_up_to.is_some_and(|mark| batch.id <= mark)
            || now >= batch.created + self.settings.linger
    }

    /// The partitions that may send now: below the in-flight limit and not
    /// recovering from a failure (see the module docs), not backing off,
    /// and whose first batch is sendable. `memory_exhausted` (a `send` is
    /// waiting for buffer memory) makes every batch sendable at once.
    pub(crate) fn ready(&self, now: Instant, memory_exhausted: bool) -> Ready {
        let mut ready = Ready::default();
        let mut wake = |at: Instant| {
            ready.next_check = Some(ready.next_check.map_or(at, |n: Instant| n.min(at)));
        };
        let mut partitions = Vec::new();
        for (tp, queue) in &self.queues {
            if let Some(oldest) = queue.batches.iter().map(|b| b.created).min() {
                wake(oldest + self.settings.delivery_timeout);
            }
            let Some(first) = queue.batches.front() else {
                continue;
            };
            if !queue.may_send(self.settings.max_in_flight) {
                continue;
            }
            if let Some(retry_at) = queue.retry_at
                && retry_at > now
            {
                wake(retry_at);
                continue;
            }
            if self.sendable(first, now, memory_exhausted) {
                partitions.push(tp.clone());
            } else {
                wake(first.created + self.settings.linger);
            }
        }
        ready.partitions = partitions;
        ready
    }

    /// Takes the sendable batches of `partitions` (all led by one broker)
    /// for one request of at most `max_bytes`: per partition the first
    /// batch and the sendable ones after it, in order, while they fit; the
    /// first batch of the request is taken even if larger. Each drained
    /// partition's group is in flight until [`finish`](Self::finish) or a
    /// failure hands it back.
    pub(crate) fn drain(
        &mut self,
        partitions: &[TopicPartition],
        max_bytes: usize,
        now: Instant,
        memory_exhausted: bool,
    ) -> Vec<(TopicPartition, Vec<ProducerBatch>)> {
        let mut drained = Vec::new();
        let mut total = 0usize;
        if partitions.is_empty() {
            return drained;
        }
        let start = self.drain_start % partitions.len();
        self.drain_start = self.drain_start.wrapping_add(1);
        let waiting_for_id = self
            .sequences
            .as_ref()
            .is_some_and(|s| s.producer_id().is_none());
        let max_in_flight = self.settings.max_in_flight;
        for tp in partitions[start..].iter().chain(&partitions[..start]) {
            if self
                .queues
                .get(tp)
                .is_none_or(|q| !q.may_send(max_in_flight))
            {
                continue;
            }
            // An idempotent retry goes again as it went the first time,
            // whole, or waits for the next request.
            if let Some((count, size)) = self.retry_group(tp) {
                if total > 0 && total + size > max_bytes {
                    continue;
                }
                let resequence = self
                    .queues
                    .get(tp)
                    .and_then(|q| q.batches.front())
                    .is_some_and(|b| b.needs_sequence);
                if resequence && waiting_for_id {
                    continue;
                }
                total += size;
                let queue = self.queues.get_mut(tp).expect("checked above");
                queue.retry_at = None;
                let mut taken: Vec<ProducerBatch> = queue
                    .batches
                    .drain(..count)
                    .map(|mut b| {
                        b.attempts += 1;
                        b
                    })
                    .collect();
                if resequence && let Some(sequences) = &mut self.sequences {
                    // Its epoch is gone: the same group, new sequences.
                    self.last_group += 1;
                    for batch in &mut taken {
                        let fields = sequences
                            .assign(tp, batch.builder.record_count())
                            .expect("the producer id is known: checked above");
                        batch.set_producer(fields);
                        batch.group = self.last_group;
                    }
                }
                let group = taken[0].group;
                let queue = self.queues.get_mut(tp).expect("checked above");
                queue.in_flight.push_back(InFlightGroup {
                    group,
                    after_failure: false,
                });
                drained.push((tp.clone(), taken));
                if total >= max_bytes {
                    break;
                }
                continue;
            }
            if waiting_for_id {
                continue;
            }
            let mut taken = Vec::new();
            while let Some(queue) = self.queues.get(tp) {
                let Some(batch) = queue.batches.front() else {
                    break;
                };
                if !taken.is_empty() && !self.sendable(batch, now, memory_exhausted) {
                    break;
                }
                let size = batch.size();
                if total > 0 && total + size > max_bytes {
                    break;
                }
                total += size;
                let queue = self.queues.get_mut(tp).expect("checked above");
                let mut batch = queue.batches.pop_front().expect("checked above");
                queue.retry_at = None;
                batch.closed = true;
                batch.attempts += 1;
                taken.push(batch);
            }
            if !taken.is_empty() {
                self.last_group += 1;
                for batch in &mut taken {
                    if let Some(sequences) = &mut self.sequences {
                        let count = batch.builder.record_count();
                        let fields = sequences
                            .assign(tp, count)
                            .expect("the producer id is known: checked above");
                        batch.set_producer(fields);
                    }
                    batch.group = self.last_group;
                }
                let queue = self.queues.get_mut(tp).expect("taken from it above");
                queue.in_flight.push_back(InFlightGroup {
                    group: self.last_group,
                    after_failure: false,
                });
                drained.push((tp.clone(), taken));
            }
            if total >= max_bytes {
                break;
            }
        }
        drained
    }

    /// `tp`'s group `group` was acknowledged: it is no longer in flight.
    pub(crate) fn finish(&mut self, tp: &TopicPartition, group: u64) {
        if let Some(queue) = self.queues.get_mut(tp) {
            queue.end(group, false);
        }
    }

    /// Whether `tp`'s group `group`, in flight, was sent before an earlier
    /// group came back failed: an OUT_OF_ORDER_SEQUENCE answer to it then
    /// comes from that failure and is retried.
    pub(crate) fn sent_after_failure(&self, tp: &TopicPartition, group: u64) -> bool {
        self.queues.get(tp).is_some_and(|q| {
            q.in_flight
                .iter()
                .any(|g| g.group == group && g.after_failure)
        })
    }

    /// The group `batches` came back failed: it leaves the in-flight set;
    /// returns whether it had been sent after an earlier failure.
    fn returned_failed(&mut self, tp: &TopicPartition, batches: &[ProducerBatch]) -> bool {
        let Some(group) = batches.first().map(|b| b.group) else {
            return false;
        };
        self.queues.get_mut(tp).is_some_and(|q| q.end(group, true))
    }

    /// Marks returned batches whose sequences belong to an epoch (or a
    /// producer id) the partition has left: they get new ones when resent.
    fn void_stale_sequences(&self, tp: &TopicPartition, batches: &mut [ProducerBatch]) {
        let Some(current) = self.sequences.as_ref().and_then(|s| s.current(tp)) else {
            if self.sequences.is_some() {
                for batch in batches.iter_mut() {
                    batch.needs_sequence = batch.sequenced.is_some();
                }
            }
            return;
        };
        for batch in batches.iter_mut() {
            if batch.sequenced.is_some_and(|s| s != current) {
                batch.needs_sequence = true;
            }
        }
    }

    /// Acknowledged: the batches (sent together, in order) got consecutive
    /// offsets from `base_offset`. Their records are answered by
    /// [`Deliveries::deliver`], once the caller has released the lock.
    pub(crate) fn complete(
        &mut self,
        batches: Vec<ProducerBatch>,
        base_offset: i64,
        log_append_time: i64,
        out: &mut Deliveries,
    ) {
        let mut offset = base_offset;
        for batch in batches {
            let count = batch.record_count() as i64;
            out.push(batch, Ok((offset, log_append_time)));
            if offset >= 0 {
                offset += count;
            }
        }
    }

    /// Ends the batches [`Deliveries::deliver`] answered: flushes and
    /// closing wait for them until then.
    pub(crate) fn delivered(&mut self, ids: &[u64]) {
        for id in ids {
            self.incomplete.remove(id);
        }
    }

    /// acks=0: answers the drained records with offset -1 (once the caller
    /// delivers) and ends the partitions' in-flight state (nothing will be
    /// awaited). The batches keep their bytes and their share of
    /// `buffer.memory` until the caller drops them after sending.
    pub(crate) fn complete_unacknowledged(
        &mut self,
        drained: &mut [(TopicPartition, Vec<ProducerBatch>)],
        out: &mut Deliveries,
    ) {
        for (tp, batches) in drained.iter_mut() {
            for batch in batches.iter_mut() {
                out.0.push(Delivery {
                    id: batch.id,
                    tp: tp.clone(),
                    records: std::mem::take(&mut batch.records),
                    outcome: Ok((-1, -1)),
                    batch: None,
                });
            }
            if let Some(group) = batches.first().map(|b| b.group) {
                self.finish(tp, group);
            }
        }
    }

    /// Fails `tp`'s sent batches with `error`, answered like
    /// [`Self::complete`]'s. Their fate is unknown (they may be written), so
    /// an idempotent producer moves the partition to a new epoch.
    pub(crate) fn fail(
        &mut self,
        tp: &TopicPartition,
        batches: Vec<ProducerBatch>,
        error: &Error,
        out: &mut Deliveries,
    ) {
        if !batches.is_empty() && !self.returned_failed(tp, &batches) {
            self.sent_batches_failed(tp);
        }
        for batch in batches {
            out.push(batch, Err(error.clone()));
        }
    }

    /// Idempotent producer: the broker no longer knows the producer
    /// (`UNKNOWN_PRODUCER_ID`: its state there expired) and wrote nothing.
    /// The partition moves to a new epoch (once, for the first group to
    /// come back so), and the batches go back in their place in the queue,
    /// to get sequences from 0 in it when resent at `retry_at`.
    pub(crate) fn resequence(
        &mut self,
        tp: &TopicPartition,
        mut batches: Vec<ProducerBatch>,
        error: &Error,
        retry_at: Instant,
    ) {
        if !self.returned_failed(tp, &batches) {
            self.sent_batches_failed(tp);
        }
        for batch in &mut batches {
            batch.last_error = Some(error.clone());
            if self.sequences.is_some() {
                batch.needs_sequence = true;
            }
        }
        let queue = self.queues.entry(tp.clone()).or_default();
        queue.retry_at = Some(retry_at);
        queue.requeue(batches);
    }

    /// After a failed attempt with a retriable `error`: batches that may try
    /// again (fewer than `retries` retries so far, delivery timeout not
    /// reached) go back to the front of the queue in order, to be resent no
    /// earlier than `retry_at`; the others fail (answered like
    /// [`Self::complete`]'s). Returns how many retry.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn retry_or_fail(
        &mut self,
        tp: &TopicPartition,
        batches: Vec<ProducerBatch>,
        error: &Error,
        retries: u32,
        retry_at: Instant,
        now: Instant,
        out: &mut Deliveries,
    ) -> usize {
        let timeout = self.settings.delivery_timeout;
        let gives_up = |b: &ProducerBatch| b.attempts > retries || now >= b.created + timeout;
        let after_failure = self.returned_failed(tp, &batches);
        // An idempotent group retries whole or not at all: its sequences
        // were fixed together.
        let whole_group_fails = self.sequences.is_some() && batches.iter().any(gives_up);
        if whole_group_fails && !after_failure {
            self.sent_batches_failed(tp);
        }
        let mut batches = batches;
        self.void_stale_sequences(tp, &mut batches);
        let mut again = Vec::new();
        for mut batch in batches {
            if batch.attempts > retries {
                out.push(batch, Err(error.clone()));
            } else if now >= batch.created + timeout {
                let expired = expiry_error(&batch, timeout, Some(error));
                out.push(batch, Err(expired));
            } else if whole_group_fails {
                out.push(batch, Err(error.clone()));
            } else {
                batch.last_error = Some(error.clone());
                again.push(batch);
            }
        }
        let count = again.len();
        let queue = self.queues.entry(tp.clone()).or_default();
        if count > 0 {
            queue.retry_at = Some(retry_at);
        }
        queue.requeue(again);
        count
    }

    /// Fails queued batches that reached `delivery.timeout.ms`. A queue is
    /// in creation order (retried batches return to the front, and they are
    /// the oldest), so only its front needs a look. Their records are
    /// answered like [`Self::complete`]'s.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Deliveries) -> usize {
        let timeout = self.settings.delivery_timeout;
        let idempotent = self.sequences.is_some();
        let mut expired = Vec::new();
        let mut emptied = false;
        let mut unknown_fate = Vec::new();
        for (tp, queue) in &mut self.queues {
            while queue
                .batches
                .front()
                .is_some_and(|b| now >= b.created + timeout)
            {
                let Some(batch) = queue.batches.pop_front() else {
                    break;
                };
                let (sent, group) = (batch.attempts > 0, batch.group);
                expired.push(batch);
                if idempotent && sent {
                    // It was sent and may be written: its whole group
                    // goes, and the partition moves to a new epoch.
                    unknown_fate.push(tp.clone());
                    while queue
                        .batches
                        .front()
                        .is_some_and(|b| b.attempts > 0 && b.group == group)
                    {
                        expired.extend(queue.batches.pop_front());
                    }
                }
            }
            emptied |= queue.batches.is_empty() && queue.in_flight.is_empty();
        }
        for tp in &unknown_fate {
            self.sent_batches_failed(tp);
        }
        if emptied {
            self.queues.retain(|_, q| {
                !q.batches.is_empty() || !q.in_flight.is_empty() || q.retry_at.is_some()
            });
        }
        let count = expired.len();
        for batch in expired {
            let error = expiry_error(&batch, timeout, None);
            out.push(batch, Err(error));
        }
        count
    }

    /// Marks every existing batch for sending without lingering; returns
    /// the last batch id the flush waits for (`None`: nothing to wait for).
    pub(crate) fn begin_flush(&mut self) -> Option<u64> {
        let mark = self.next_batch_id.checked_sub(1)?;
        self.flush_up_to = Some(self.flush_up_to.map_or(mark, |m| m.max(mark)));
        Some(mark)
    }

    /// The lowest id of a batch not finished yet.
    pub(crate) fn lowest_incomplete(&self) -> Option<u64> {
        self.incomplete.first().copied()
    }

    /// Starts closing: no new records, everything is sent at once.
    pub(crate) fn begin_close(&mut self) {
        self.closing = true;
    }

    /// Whether [`begin_close`](Self::begin_close) was called.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing
    }

    /// No batch is queued or in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.incomplete.is_empty()
    }
}

/// Kafka's expiry message, naming the last error seen.
fn expiry_error(batch: &ProducerBatch, timeout: Duration, last: Option<&Error>) -> Error {
    let last = last.or(batch.last_error.as_ref());
    Error::Timeout {
        what: format!(
            "expiring {} record(s) for {}: {} ms has passed since batch creation{}",
            batch.record_count(),
            batch.tp,
            timeout.as_millis(),
            last.map_or_else(String::new, |e| format!(" (last error: {e})"))
        ),
    }
}

#[cfg(test)]
mod tests {
    use strom_log::RecordBatch;
    use strom_proto::v1::ErrorCode;

    use super::*;

    const LINGER: Duration = Duration::from_millis(5);
    const DELIVERY: Duration = Duration::from_secs(120);

    fn accumulator(batch_size: usize) -> RecordAccumulator {
        RecordAccumulator::new(BatchSettings {
            batch_size,
            linger: LINGER,
            compression: Compression::None,
            delivery_timeout: DELIVERY,
            idempotent: false,
            max_in_flight: 1,
            transactional: false,
        })
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    type Receiver = oneshot::Receiver<Result<RecordMetadata>>;

    fn append(
        acc: &mut RecordAccumulator,
        p: i32,
        value: &[u8],
        now: Instant,
    ) -> (Appended, Receiver) {
        let (tx, rx) = oneshot::channel();
        let appended = acc.append(
            &tp(p),
            NewRecord {
                timestamp: 1_000,
                key: None,
                value: Some(value),
                headers: &[],
                size: 30 + value.len(),
                completion: Completion::Future(Some(tx)),
                memory: None,
            },
            || now,
        );
        (appended, rx)
    }

    /// Completes and answers at once.
    fn complete(
        acc: &mut RecordAccumulator,
        batches: Vec<ProducerBatch>,
        base: i64,
        append_time: i64,
    ) {
        let mut deliveries = Deliveries::default();
        acc.complete(batches, base, append_time, &mut deliveries);
        let ids = deliveries.deliver();
        acc.delivered(&ids);
    }

    fn outcome(rx: &mut Receiver) -> Option<Result<i64, ErrorCode>> {
        rx.try_recv()
            .ok()
            .map(|r| r.map(|m| m.offset).map_err(|e| e.code().unwrap()))
    }

    #[test]
    fn a_callback_is_called_once_even_when_its_record_is_dropped() {
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let callback = |heard: &std::sync::Arc<std::sync::Mutex<Vec<String>>>| {
            let heard = heard.clone();
            Completion::Callback(Some(Box::new(move |outcome: Result<RecordMetadata>| {
                heard.lock().unwrap().push(match outcome {
                    Ok(m) => format!("offset {}", m.offset),
                    Err(e) => e.to_string(),
                });
            })))
        };
        let metadata = RecordMetadata {
            topic: "t".into(),
            partition: 0,
            offset: 7,
            timestamp: 0,
        };
        callback(&heard).complete(Ok(metadata));
        drop(callback(&heard));
        let panicking = Completion::Callback(Some(Box::new(|_| panic!("on purpose"))));
        panicking.complete(Err(Error::Closed("x".into())));
        assert_eq!(
            *heard.lock().unwrap(),
            [
                "offset 7",
                "the producer stopped before the record's delivery was known"
            ]
        );
    }

    #[test]
    fn records_fill_a_batch_up_to_batch_size() {
        let now = Instant::now();
        let mut acc = accumulator(250);
        let mut batches = Vec::new();
        for _ in 0..8 {
            let (appended, _) = append(&mut acc, 0, &[1; 40], now);
            batches.push((appended.batch, appended.new_batch));
        }
        // 61-byte header + 47 bytes per record (70 reserved): three per batch.
        assert_eq!(
            batches,
            [
                (0, true),
                (0, false),
                (0, false),
                (1, true),
                (1, false),
                (1, false),
                (2, true),
                (2, false)
            ]
        );
        let ready = acc.ready(now, false);
        assert_eq!(ready.partitions, [tp(0)], "full batches do not linger");
        let drained = acc.drain(&ready.partitions, 1 << 20, now, false);
        let ids: Vec<u64> = drained[0].1.iter().map(|b| b.id).collect();
        assert_eq!(ids, [0, 1], "the open last batch still lingers");
    }

    #[test]
    fn a_record_larger_than_batch_size_gets_its_own_batch() {
        let now = Instant::now();
        let mut acc = accumulator(100);
        let (a, _) = append(&mut acc, 0, &[0; 10], now);
        let (b, _) = append(&mut acc, 0, &[0; 500], now);
        let (c, _) = append(&mut acc, 0, &[0; 10], now);
        assert_eq!((a.batch, b.batch, c.batch), (0, 1, 2));
        assert!(b.full);
    }

    #[test]
    fn a_batch_lingers_until_linger_ms() {
        let now = Instant::now();
        let mut acc = accumulator(16_384);
        append(&mut acc, 0, b"v", now);
        let ready = acc.ready(now, false);
        assert!(ready.partitions.is_empty());
        assert_eq!(ready.next_check, Some(now + LINGER));
        assert_eq!(acc.ready(now + LINGER, false).partitions, [tp(0)]);
        assert_eq!(
            acc.ready(now, true).partitions,
            [tp(0)],
            "memory pressure sends at once"
        );
    }

    #[test]
    fn flush_and_close_send_without_lingering() {
        let now = Instant::now();
        let mut acc = accumulator(16_384);
        assert_eq!(acc.begin_flush(), None, "nothing to flush");
        append(&mut acc, 0, b"v", now);
        assert_eq!(acc.begin_flush(), Some(0));
        append(&mut acc, 1, b"v", now);
        assert_eq!(acc.ready(now, false).partitions, [tp(0)]);
        acc.begin_close();
        assert_eq!(acc.ready(now, false).partitions, [tp(0), tp(1)]);
    }

    #[test]
    fn one_request_per_partition_at_a_time() {
        let now = Instant::now();
        let mut acc = accumulator(100);
        for _ in 0..4 {
            append(&mut acc, 0, &[0; 40], now);
        }
        let drained = acc.drain(&[tp(0)], 1 << 20, now, false);
        assert_eq!(drained.len(), 1);
        append(&mut acc, 0, &[0; 40], now + LINGER);
        assert!(
            acc.ready(now + LINGER, false).partitions.is_empty(),
            "in flight"
        );
        acc.finish(&tp(0), drained[0].1[0].group);
        assert_eq!(acc.ready(now + LINGER, false).partitions, [tp(0)]);
    }

    #[test]
    fn drain_respects_max_request_size_but_always_takes_one_batch() {
        let now = Instant::now();
        let mut acc = accumulator(100);
        for p in 0..3 {
            for _ in 0..4 {
                append(&mut acc, p, &[0; 40], now);
            }
        }
        acc.begin_close();
        let partitions = [tp(0), tp(1), tp(2)];
        // One record per batch of 108 bytes; 250 bytes hold two.
        let drained = acc.drain(&partitions, 250, now, false);
        let taken: Vec<(i32, usize)> = drained
            .iter()
            .map(|(tp, b)| (tp.partition, b.len()))
            .collect();
        assert_eq!(taken, [(0, 2)]);
        // A tiny limit still sends one batch, starting at the next partition.
        let drained = acc.drain(&partitions, 1, now, false);
        let taken: Vec<(i32, usize)> = drained
            .iter()
            .map(|(tp, b)| (tp.partition, b.len()))
            .collect();
        assert_eq!(taken, [(1, 1)]);
    }

    #[test]
    fn acknowledged_batches_get_consecutive_offsets() {
        let now = Instant::now();
        let mut acc = accumulator(250);
        let mut receivers: Vec<Receiver> = (0..5)
            .map(|_| append(&mut acc, 0, &[0; 40], now).1)
            .collect();
        acc.begin_close();
        let (_, batches) = acc.drain(&[tp(0)], 1 << 20, now, false).remove(0);
        assert_eq!(batches.len(), 2);
        let mut deliveries = Deliveries::default();
        acc.complete(batches, 40, -1, &mut deliveries);
        assert!(
            outcome(&mut receivers[0]).is_none(),
            "answered only by deliver"
        );
        let ids = deliveries.deliver();
        assert!(
            !acc.is_idle(),
            "incomplete until delivered() records the answers"
        );
        acc.delivered(&ids);
        let offsets: Vec<_> = receivers.iter_mut().map(outcome).collect();
        assert_eq!(
            offsets,
            [
                Some(Ok(40)),
                Some(Ok(41)),
                Some(Ok(42)),
                Some(Ok(43)),
                Some(Ok(44))
            ]
        );
        assert!(acc.is_idle());
    }

    #[test]
    fn log_append_time_replaces_the_timestamp() {
        let now = Instant::now();
        let mut acc = accumulator(100);
        let (_, mut rx) = append(&mut acc, 0, b"v", now);
        let (_, batches) = acc.drain(&[tp(0)], 1 << 20, now, false).remove(0);
        complete(&mut acc, batches, 0, 99_999);
        assert_eq!(rx.try_recv().unwrap().unwrap().timestamp, 99_999);
    }

    #[test]
    fn retried_batches_go_back_to_the_front_in_order() {
        let now = Instant::now();
        let mut acc = accumulator(100);
        let mut receivers: Vec<Receiver> = (0..7)
            .map(|_| append(&mut acc, 0, &[0; 40], now).1)
            .collect();
        let (_, batches) = acc.drain(&[tp(0)], 250, now, false).remove(0);
        let ids: Vec<u64> = batches.iter().map(|b| b.id).collect();
        assert_eq!(ids, [0, 1]);
        let error = Error::strom(ErrorCode::NotLeaderOrFollower, "moved");
        let retry_at = now + Duration::from_millis(100);
        let mut failed = Deliveries::default();
        assert_eq!(
            acc.retry_or_fail(&tp(0), batches, &error, 10, retry_at, now, &mut failed),
            2
        );
        assert!(failed.is_empty());
        assert!(acc.ready(now, false).partitions.is_empty(), "backing off");
        assert_eq!(acc.ready(now, false).next_check, Some(retry_at));
        acc.begin_close();
        let (_, batches) = acc.drain(&[tp(0)], 1 << 20, retry_at, false).remove(0);
        let ids: Vec<(u64, u32)> = batches.iter().map(|b| (b.id, b.attempts)).collect();
        assert_eq!(ids[..3], [(0, 2), (1, 2), (2, 1)]);
        complete(&mut acc, batches, 0, -1);
        let offsets: Vec<_> = receivers.iter_mut().map(outcome).collect();
        let want: Vec<_> = (0..7).map(|o| Some(Ok(o))).collect();
        assert_eq!(offsets, want);
    }

    #[test]
    fn retries_stop_at_the_retry_limit_and_the_delivery_timeout() {
        let now = Instant::now();
        let error = Error::strom(ErrorCode::NotEnoughReplicas, "isr too small");
        // (retries allowed, time of the failure, outcome)
        let table = [
            (0, now, Some(Err(ErrorCode::NotEnoughReplicas))),
            (1, now, None),
            (1, now + DELIVERY, Some(Err(ErrorCode::RequestTimedOut))),
        ];
        for (retries, at, want) in table {
            let mut acc = accumulator(100);
            let (_, mut rx) = append(&mut acc, 0, b"v", now);
            let (_, batches) = acc.drain(&[tp(0)], 1 << 20, now, false).remove(0);
            let mut failed = Deliveries::default();
            acc.retry_or_fail(&tp(0), batches, &error, retries, at, at, &mut failed);
            assert_eq!(outcome(&mut rx), None, "answered only by deliver");
            let ids = failed.deliver();
            acc.delivered(&ids);
            assert_eq!(outcome(&mut rx), want, "retries {retries}");
        }
    }

    #[test]
    fn queued_batches_expire_at_the_delivery_timeout_naming_the_last_error() {
        let now = Instant::now();
        let mut acc = accumulator(100);
        let (_, mut first) = append(&mut acc, 0, b"v", now);
        let (_, batches) = acc.drain(&[tp(0)], 1 << 20, now, false).remove(0);
        let error = Error::strom(ErrorCode::LeaderNotAvailable, "election in progress");
        let mut failed = Deliveries::default();
        acc.retry_or_fail(&tp(0), batches, &error, 10, now, now, &mut failed);
        assert!(failed.is_empty());
        let (_, mut second) = append(&mut acc, 1, b"v", now + Duration::from_secs(1));
        assert_eq!(
            acc.ready(now, false)
                .next_check
                .map(|t| t <= now + DELIVERY),
            Some(true)
        );
        let mut expired = Deliveries::default();
        assert_eq!(acc.expire(now + DELIVERY, &mut expired), 1);
        assert_eq!(acc.lowest_incomplete(), Some(0), "until delivered");
        let ids = expired.deliver();
        acc.delivered(&ids);
        let error = first.try_recv().unwrap().unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::RequestTimedOut));
        assert_eq!(
            error.to_string(),
            "expiring 1 record(s) for t-0: 120000 ms has passed since batch creation \
             (last error: LEADER_NOT_AVAILABLE: election in progress)"
        );
        assert!(second.try_recv().is_err(), "younger batch still waits");
        assert_eq!(acc.lowest_incomplete(), Some(1));
    }

    fn idempotent(batch_size: usize) -> RecordAccumulator {
        RecordAccumulator::new(BatchSettings {
            batch_size,
            linger: LINGER,
            compression: Compression::None,
            delivery_timeout: DELIVERY,
            idempotent: true,
            max_in_flight: 1,
            transactional: false,
        })
    }

    /// `(producer id, epoch, base sequence)` of each encoded batch.
    fn fields(batches: &mut [ProducerBatch]) -> Vec<(i64, i16, i32)> {
        batches
            .iter_mut()
            .map(|b| {
                let batch = RecordBatch::from_bytes(b.encode()).expect("encoded batch");
                (
                    batch.producer_id(),
                    batch.producer_epoch(),
                    batch.base_sequence(),
                )
            })
            .collect()
    }

    #[test]
    fn idempotent_batches_wait_for_a_producer_id_then_get_sequences_in_order() {
        let now = Instant::now();
        let mut acc = idempotent(100);
        for _ in 0..5 {
            append(&mut acc, 0, &[0; 40], now);
        }
        append(&mut acc, 1, &[0; 40], now);
        assert!(acc.needs_producer_id());
        assert!(
            acc.drain(&[tp(0), tp(1)], 1 << 20, now, true).is_empty(),
            "nothing goes before the producer id"
        );
        acc.set_producer_id(42);
        assert!(!acc.needs_producer_id());
        let mut drained = acc.drain(&[tp(0), tp(1)], 1 << 20, now, true);
        drained.sort_by(|a, b| a.0.cmp(&b.0));
        // Each batch starts where the one before ended.
        let mut want = Vec::new();
        let mut seq = 0;
        for b in &drained[0].1 {
            want.push((42, 0, seq));
            seq += b.record_count() as i32;
        }
        assert_eq!(seq, 5);
        assert!(want.len() > 1, "several batches");
        assert_eq!(fields(&mut drained[0].1), want);
        assert_eq!(fields(&mut drained[1].1), [(42, 0, 0)]);
    }

    #[test]
    fn an_idempotent_retry_resends_exactly_its_first_request() {
        let now = Instant::now();
        let mut acc = idempotent(200);
        acc.set_producer_id(1);
        for _ in 0..4 {
            append(&mut acc, 0, &[0; 40], now);
        }
        let (_, mut batches) = acc.drain(&[tp(0)], 1 << 20, now, true).remove(0);
        let first = fields(&mut batches);
        let records: usize = batches.iter().map(ProducerBatch::record_count).sum();
        assert_eq!(records, 4);
        let error = Error::strom(ErrorCode::NotLeaderOrFollower, "moved");
        let mut failed = Deliveries::default();
        acc.retry_or_fail(&tp(0), batches, &error, 10, now, now, &mut failed);
        // More records arrive meanwhile: they do not join the retry.
        append(&mut acc, 0, &[0; 40], now);
        let (_, mut retried) = acc.drain(&[tp(0)], 1 << 20, now, true).remove(0);
        assert_eq!(fields(&mut retried), first);
        // A retry that does not fit beside another partition's batches
        // waits for a request of its own rather than being split.
        acc.retry_or_fail(&tp(0), retried, &error, 10, now, now, &mut failed);
        append(&mut acc, 1, &[0; 150], now);
        let drained = acc.drain(&[tp(1), tp(0)], 250, now, true);
        let partitions: Vec<i32> = drained.iter().map(|(tp, _)| tp.partition).collect();
        assert_eq!(partitions, [1]);
        acc.finish(&tp(1), drained[0].1[0].group);
        let (_, mut retried) = acc.drain(&[tp(0)], 250, now, true).remove(0);
        assert_eq!(fields(&mut retried), first);
        acc.finish(&tp(0), retried[0].group);
        complete(&mut acc, retried, 0, -1);
        let (_, mut next) = acc.drain(&[tp(0)], 1 << 20, now, true).remove(0);
        assert_eq!(fields(&mut next), [(1, 0, 4)]);
    }

    fn transactional() -> RecordAccumulator {
        RecordAccumulator::new(BatchSettings {
            batch_size: 100,
            linger: LINGER,
            compression: Compression::None,
            delivery_timeout: DELIVERY,
            idempotent: true,
            max_in_flight: 5,
            transactional: true,
        })
    }

    #[test]
    fn transactional_batches_use_the_coordinators_epoch_and_never_bump_it() {
        let now = Instant::now();
        let mut acc = transactional();
        append(&mut acc, 0, b"v", now);
        assert!(!acc.needs_producer_id(), "init_transactions gives the id");
        assert!(acc.drain(&[tp(0)], 1 << 20, now, true).is_empty());
        acc.set_epoch(9, 4);
        let (_, mut batches) = acc.drain(&[tp(0)], 1 << 20, now, true).remove(0);
        assert_eq!(fields(&mut batches), [(9, 4, 0)]);
        let batch = RecordBatch::from_bytes(batches[0].encode()).expect("encoded batch");
        assert!(batch.is_transactional());
        // Failed for good: the transaction must abort, the epoch stays.
        let error = Error::strom(ErrorCode::NotEnoughReplicas, "isr too small");
        let mut failed = Deliveries::default();
        acc.retry_or_fail(&tp(0), batches, &error, 0, now, now, &mut failed);
        assert_eq!(
            failed.first_error().and_then(Error::code),
            Some(ErrorCode::NotEnoughReplicas)
        );
        acc.delivered(&failed.deliver());
        append(&mut acc, 0, b"w", now);
        let (_, mut batches) = acc.drain(&[tp(0)], 1 << 20, now, true).remove(0);
        assert_eq!(fields(&mut batches), [(9, 4, 1)]);
        acc.finish(&tp(0), batches[0].group);
        complete(&mut acc, batches, 1, -1);
        // The EndTxn's answer: every partition restarts at 0 in it.
        acc.set_epoch(9, 5);
        append(&mut acc, 0, b"x", now);
        append(&mut acc, 1, b"y", now);
        let mut drained = acc.drain(&[tp(0), tp(1)], 1 << 20, now, true);
        drained.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(fields(&mut drained[0].1), [(9, 5, 0)]);
        assert_eq!(fields(&mut drained[1].1), [(9, 5, 0)]);
    }

    #[test]
    fn an_abort_fails_the_queued_batches_and_leaves_those_in_flight() {
        let now = Instant::now();
        let mut acc = transactional();
        acc.set_epoch(1, 0);
        append(&mut acc, 0, b"sent", now);
        let (_, in_flight) = acc.drain(&[tp(0)], 1 << 20, now, true).remove(0);
        append(&mut acc, 0, b"queued", now);
        append(&mut acc, 1, b"queued", now);
        let abort = Error::IllegalState("aborted".into());
        let mut failed = Deliveries::default();
        assert_eq!(acc.fail_queued(&abort, &mut failed), 2);
        acc.delivered(&failed.deliver());
        assert!(!acc.is_idle(), "the batch in flight is awaited");
        assert!(acc.drain(&[tp(0), tp(1)], 1 << 20, now, true).is_empty());
        acc.finish(&tp(0), in_flight[0].group);
        complete(&mut acc, in_flight, 0, -1);
        assert!(acc.is_idle());
    }

    #[test]
    fn a_sent_idempotent_batch_that_fails_moves_its_partition_to_a_new_epoch() {
        let now = Instant::now();
        let mut acc = idempotent(100);
        acc.set_producer_id(1);
        append(&mut acc, 0, b"v", now);
        let (_, batches) = acc.drain(&[tp(0)], 1 << 20, now, true).remove(0);
        let error = Error::strom(ErrorCode::NotEnoughReplicas, "isr too small");
        let mut failed = Deliveries::default();
        // No retries left: the batch fails, and its fate is unknown.
        acc.retry_or_fail(&tp(0), batches, &error, 0, now, now, &mut failed);
        acc.delivered(&failed.deliver());
        append(&mut acc, 0, b"v", now);
        let (_, mut next) = acc.drain(&[tp(0)], 1 << 20, now, true).remove(0);
        assert_eq!(fields(&mut next), [(1, 1, 0)]);

        // Expired while waiting to be retried: the same.
        let mut failed = Deliveries::default();
        acc.retry_or_fail(&tp(0), next, &error, 10, now, now, &mut failed);
        let mut expired = Deliveries::default();
        assert_eq!(acc.expire(now + DELIVERY, &mut expired), 1);
        acc.delivered(&expired.deliver());
        append(&mut acc, 0, b"v", now + DELIVERY);
        let (_, mut next) = acc.drain(&[tp(0)], 1 << 20, now + DELIVERY, true).remove(0);
        assert_eq!(fields(&mut next), [(1, 2, 0)]);

        // UNKNOWN_PRODUCER_ID: nothing was written; the same batches go
        // again under a new epoch from sequence 0.
        let unknown = Error::strom(ErrorCode::UnknownProducerId, "expired");
        acc.resequence(&tp(0), next, &unknown, now);
        let (_, mut again) = acc.drain(&[tp(0)], 1 << 20, now + DELIVERY, true).remove(0);
        assert_eq!(fields(&mut again), [(1, 3, 0)]);
    }

    #[test]
    fn unacknowledged_batches_answer_offset_minus_one_and_keep_their_bytes() {
        let now = Instant::now();
        let mut acc = accumulator(100);
        let (_, mut rx) = append(&mut acc, 0, b"v", now);
        let mut drained = acc.drain(&[tp(0)], 1 << 20, now, false);
        let mut answered = Deliveries::default();
        acc.complete_unacknowledged(&mut drained, &mut answered);
        assert_eq!(outcome(&mut rx), None, "answered only by deliver");
        let ids = answered.deliver();
        assert!(!acc.is_idle());
        acc.delivered(&ids);
        assert_eq!(outcome(&mut rx), Some(Ok(-1)));
        assert!(acc.is_idle());
        let bytes = drained[0].1[0].encode();
        let batch = RecordBatch::from_bytes(bytes).unwrap();
        assert_eq!(batch.record_count(), 1);
        assert_eq!(
            acc.ready(now + LINGER, false),
            Ready::default(),
            "not in flight"
        );
    }

    #[test]
    fn open_batch_reports_room_for_the_sticky_partitioner() {
        let now = Instant::now();
        let mut acc = accumulator(200);
        assert_eq!(acc.open_batch(&tp(0), 10), None);
        append(&mut acc, 0, &[0; 40], now);
        assert_eq!(acc.open_batch(&tp(0), 50), Some(0));
        assert_eq!(acc.open_batch(&tp(0), 150), None, "would not fit");
        acc.drain(&[tp(0)], 1 << 20, now + LINGER, false);
        assert_eq!(acc.open_batch(&tp(0), 10), None, "sent");
    }

    #[test]
    fn borrowed_partition_keys_order_and_find_like_owned_ones() {
        let keys = [("a", 2), ("a", 10), ("ab", 0), ("b", -1), ("b", 0), ("", 0)];
        for (x, y) in keys.iter().flat_map(|x| keys.iter().map(move |y| (x, y))) {
            let owned = TopicPartition::new(x.0, x.1).cmp(&TopicPartition::new(y.0, y.1));
            let borrowed = (x as &dyn PartitionKey).cmp(y as &dyn PartitionKey);
            assert_eq!(owned, borrowed, "{x:?} vs {y:?}");
        }
        let map: BTreeMap<TopicPartition, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, (t, p))| (TopicPartition::new(*t, *p), i))
            .collect();
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(map.get(key as &dyn PartitionKey), Some(&i), "{key:?}");
        }
        assert_eq!(map.get(&("a", 3) as &dyn PartitionKey), None);
    }

    fn pipelined(max_in_flight: usize) -> RecordAccumulator {
        let mut acc = RecordAccumulator::new(BatchSettings {
            batch_size: 100,
            linger: LINGER,
            compression: Compression::None,
            delivery_timeout: DELIVERY,
            idempotent: true,
            max_in_flight,
            transactional: false,
        });
        acc.set_producer_id(1);
        acc
    }

    /// Appends one record to partition 0 and sends what is queued: the
    /// group sent, or `None` when the partition may not send.
    fn send_one(acc: &mut RecordAccumulator, now: Instant) -> Option<Vec<ProducerBatch>> {
        append(acc, 0, &[0; 40], now);
        send_queued(acc, now)
    }

    fn send_queued(acc: &mut RecordAccumulator, now: Instant) -> Option<Vec<ProducerBatch>> {
        let at = now + LINGER;
        let ready = acc.ready(at, false).partitions;
        let drained = acc.drain(&[tp(0)], 1 << 20, at, false);
        assert_eq!(
            ready.is_empty(),
            drained.is_empty(),
            "ready and drain agree"
        );
        drained.into_iter().next().map(|(_, batches)| batches)
    }

    /// The base sequences of a group's batches.
    fn seqs(batches: &mut [ProducerBatch]) -> Vec<(i16, i32)> {
        fields(batches)
            .into_iter()
            .map(|(_, e, s)| (e, s))
            .collect()
    }

    #[test]
    fn up_to_max_in_flight_requests_per_partition_are_out_at_once() {
        let now = Instant::now();
        // (max in flight, groups out before the partition waits)
        for max in [1, 3, 5] {
            let mut acc = pipelined(max);
            let mut out = Vec::new();
            while let Some(mut group) = send_one(&mut acc, now) {
                assert_eq!(seqs(&mut group), [(0, out.len() as i32)], "max {max}");
                out.push(group);
            }
            assert_eq!(out.len(), max);
            // The queued record waits until the oldest is acknowledged.
            let first = out.remove(0);
            acc.finish(&tp(0), first[0].group);
            complete(&mut acc, first, 0, -1);
            let mut next = send_queued(&mut acc, now).expect("room again");
            assert_eq!(seqs(&mut next), [(0, max as i32)]);
        }
    }

    #[test]
    fn after_a_failure_the_requests_out_come_back_and_go_again_alone_in_order() {
        let now = Instant::now();
        let mut acc = pipelined(5);
        let mut groups: Vec<Vec<ProducerBatch>> = (0..3)
            .map(|_| send_one(&mut acc, now).expect("sent"))
            .collect();
        let ids: Vec<u64> = groups.iter().map(|g| g[0].group).collect();
        let moved = Error::strom(ErrorCode::NotLeaderOrFollower, "moved");
        let out_of_order = Error::strom(ErrorCode::OutOfOrderSequenceNumber, "gap");
        let mut failed = Deliveries::default();
        // The first fails: the later ones are marked, nothing new goes.
        let g0 = groups.remove(0);
        assert!(!acc.sent_after_failure(&tp(0), ids[0]));
        acc.retry_or_fail(&tp(0), g0, &moved, 10, now, now, &mut failed);
        assert!(acc.sent_after_failure(&tp(0), ids[1]));
        assert!(acc.sent_after_failure(&tp(0), ids[2]));
        assert!(send_one(&mut acc, now).is_none(), "waits for the others");
        // They come back refused for the gap, the last one first.
        let g2 = groups.pop().expect("third");
        acc.retry_or_fail(&tp(0), g2, &out_of_order, 10, now, now, &mut failed);
        assert!(send_queued(&mut acc, now).is_none(), "one still out");
        let g1 = groups.pop().expect("second");
        acc.retry_or_fail(&tp(0), g1, &out_of_order, 10, now, now, &mut failed);
        assert!(failed.is_empty(), "nothing surfaces");
        // Each goes again alone, in the first order, with its sequences.
        for want in 0..2 {
            let mut again = send_queued(&mut acc, now).expect("a retry");
            assert_eq!(seqs(&mut again), [(0, want)]);
            assert_eq!(again[0].attempts, 2);
            assert!(send_queued(&mut acc, now).is_none(), "a retry goes alone");
            acc.finish(&tp(0), again[0].group);
            complete(&mut acc, again, want as i64, -1);
        }
        // Behind the last retry, the new record and more are pipelined.
        let mut last = send_queued(&mut acc, now).expect("the last retry");
        assert_eq!(seqs(&mut last), [(0, 2)]);
        let mut new = send_queued(&mut acc, now).expect("new batch");
        assert_eq!(seqs(&mut new), [(0, 3)]);
        let mut more = send_one(&mut acc, now).expect("pipelined");
        assert_eq!(seqs(&mut more), [(0, 4)]);
    }

    #[test]
    fn requests_out_after_one_that_failed_for_good_go_again_in_the_new_epoch() {
        let now = Instant::now();
        let mut acc = pipelined(5);
        let (_, mut rx0) = append(&mut acc, 0, &[0; 40], now);
        let g0 = send_queued(&mut acc, now).expect("sent");
        let (_, mut rx1) = append(&mut acc, 0, &[0; 40], now);
        let g1 = send_queued(&mut acc, now).expect("sent");
        let group1 = g1[0].group;
        let error = Error::strom(ErrorCode::NotEnoughReplicas, "isr too small");
        let mut failed = Deliveries::default();
        // No retries left: it fails, its fate unknown: a new epoch.
        acc.retry_or_fail(&tp(0), g0, &error, 0, now, now, &mut failed);
        acc.delivered(&failed.deliver());
        assert_eq!(outcome(&mut rx0), Some(Err(ErrorCode::NotEnoughReplicas)));
        assert!(acc.sent_after_failure(&tp(0), group1));
        // The next one was refused for the gap: retried, not surfaced, and
        // its old sequences are void.
        let out_of_order = Error::strom(ErrorCode::OutOfOrderSequenceNumber, "gap");
        let mut failed = Deliveries::default();
        assert_eq!(
            acc.retry_or_fail(&tp(0), g1, &out_of_order, 10, now, now, &mut failed),
            1
        );
        assert!(failed.is_empty());
        let mut again = send_queued(&mut acc, now).expect("resent");
        assert_eq!(seqs(&mut again), [(1, 0)]);
        acc.finish(&tp(0), again[0].group);
        complete(&mut acc, again, 7, -1);
        assert_eq!(outcome(&mut rx1), Some(Ok(7)));
        let mut next = send_one(&mut acc, now).expect("next");
        assert_eq!(seqs(&mut next), [(1, 1)]);

        // A returned group expires while a later one waits behind it: the
        // later one is resent in the next epoch.
        let later = send_one(&mut acc, now + Duration::from_secs(1)).expect("pipelined");
        let mut failed = Deliveries::default();
        acc.retry_or_fail(&tp(0), next, &error, 10, now, now, &mut failed);
        acc.retry_or_fail(&tp(0), later, &out_of_order, 10, now, now, &mut failed);
        assert!(failed.is_empty());
        let mut expired = Deliveries::default();
        let at = now + DELIVERY;
        assert_eq!(acc.expire(at, &mut expired), 1, "only the first expires");
        acc.delivered(&expired.deliver());
        let mut again = send_queued(&mut acc, at).expect("resent");
        assert_eq!(seqs(&mut again), [(2, 0)]);
    }
}
