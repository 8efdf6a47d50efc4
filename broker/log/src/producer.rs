//! Idempotent-producer state of one partition (Kafka's
//! `ProducerStateManager`): for every producer id that wrote to the log, its
//! epoch and the sequence ranges and offsets of its last
//! [`CACHED_BATCHES`] batches. Pure: no I/O and no clock; the log feeds it
//! every batch it stores (leader and follower appends, recovery replay) and
//! asks it to [`check`](ProducerStateTable::check) a leader append first.
//!
//! The rules, as Kafka's (`ProducerAppendInfo`), per producer id:
//! - an epoch older than the current one is refused (a zombie:
//!   `INVALID_PRODUCER_EPOCH`);
//! - a newer epoch starts its sequences at 0;
//! - within an epoch, a batch whose sequence range equals one of the cached
//!   batches is a retry of it: answered with the original offsets, not
//!   written again;
//! - otherwise its first sequence must follow the last one (wrapping at
//!   `i32::MAX` to 0), else `OUT_OF_ORDER_SEQUENCE_NUMBER`;
//! - a producer the table does not know may only start at sequence 0: a
//!   later sequence means its state expired (`producer.id.expiration.ms`)
//!   and the client must bump its epoch (KIP-360: `UNKNOWN_PRODUCER_ID`).
//!
//! Transactions (Kafka's `ProducerStateEntry.currentTxnFirstOffset`): a
//! transactional batch opens a transaction for its producer at its first
//! offset, if none is open; a COMMIT or ABORT marker
//! ([`complete_txn`](ProducerStateTable::complete_txn)) closes it and
//! returns the [`CompletedTxn`] (the log adds an aborted one to its
//! aborted-transaction index). The smallest first offset of the open
//! transactions is the [`first_unstable_offset`](ProducerStateTable::first_unstable_offset):
//! the last stable offset is the smaller of it and the high watermark.
//! While its transaction is open, a producer's non-transactional batch is
//! refused (`INVALID_TXN_STATE`); a marker with an older producer epoch is
//! `INVALID_PRODUCER_EPOCH` and one from an older coordinator
//! `TRANSACTION_COORDINATOR_FENCED`. A marker's epoch becomes the
//! producer's epoch (transaction version 2 bumps it at every commit or
//! abort, so a late batch of the finished transaction is refused).
//!
//! Snapshots ([`encode`](ProducerStateTable::encode) /
//! [`decode`](ProducerStateTable::decode)) let a reopened log replay only
//! the batches after the last one instead of the whole log; they hold the
//! open transactions too.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::error::{LogError, Result};

/// How many batches per producer are remembered for duplicate detection:
/// Kafka's `NUM_BATCHES_TO_RETAIN`, matching the client's limit of 5
/// requests in flight per partition.
pub const CACHED_BATCHES: usize = 5;

/// "No sequence" in a batch header (a non-idempotent producer).
pub const NO_SEQUENCE: i32 = -1;

/// The producer fields of one stored or arriving batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// The batch's producer id (never -1 here).
    pub producer_id: i64,
    /// Its producer epoch.
    pub producer_epoch: i16,
    /// Sequence of its first record.
    pub first_seq: i32,
    /// Sequence of its last record (`first_seq` plus the record count
    /// minus one, wrapping at `i32::MAX`).
    pub last_seq: i32,
    /// Offset of its first record in this log.
    pub first_offset: i64,
    /// Offset of its last record in this log.
    pub last_offset: i64,
    /// Its max timestamp: the producer's last activity, for expiry.
    pub max_timestamp: i64,
    /// Whether it is part of a transaction (attribute bit 4).
    pub is_transactional: bool,
}

/// A transaction marker (a control batch with an `EndTransactionMarker`)
/// as the producer state sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkerBatch {
    /// The producer whose transaction it closes.
    pub producer_id: i64,
    /// The marker's producer epoch.
    pub producer_epoch: i16,
    /// The coordinator epoch in the marker.
    pub coordinator_epoch: i32,
    /// COMMIT (`true`) or ABORT.
    pub commit: bool,
    /// The marker's offset in this log.
    pub offset: i64,
    /// When it was stored (this log's clock), for expiry.
    pub timestamp: i64,
}

/// A transaction a marker closed (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Offset of its first batch in the transaction.
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// Whether the marker is ABORT.
    pub is_aborted: bool,
}

impl ProducerBatch {
    /// The sequence `count - 1` records after `first_seq`, wrapping at
    /// `i32::MAX` as Kafka's `DefaultRecordBatch.incrementSequence`.
    pub fn last_sequence(first_seq: i32, last_offset_delta: i32) -> i32 {
        if first_seq > i32::MAX - last_offset_delta {
            last_offset_delta - (i32::MAX - first_seq) - 1
        } else {
            first_seq + last_offset_delta
        }
    }
}

/// What the table remembers of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The batch's max timestamp.
    pub timestamp: i64,
}

/// One producer's state in this partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Its current epoch.
    pub epoch: i16,
    /// Its last batches in this epoch, oldest first, at most
    /// [`CACHED_BATCHES`].
    pub batches: VecDeque<BatchMetadata>,
    /// Max timestamp of its last batch.
    pub last_timestamp: i64,
    /// Coordinator epoch of the last marker written for it, or -1.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction in this partition, if any.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    /// Sequence of the last record it wrote in its epoch.
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    /// Offset of the last record it wrote in its epoch.
    pub fn last_offset(&self) -> Option<i64> {
        self.batches.back().map(|b| b.last_offset)
    }

    fn new(batch: &ProducerBatch) -> Self {
        ProducerEntry {
            epoch: batch.producer_epoch,
            batches: VecDeque::with_capacity(CACHED_BATCHES),
            last_timestamp: batch.max_timestamp,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    /// Record `batch`, stored in the log.
    fn apply(&mut self, batch: &ProducerBatch) {
        if batch.producer_epoch != self.epoch {
            self.epoch = batch.producer_epoch;
            self.batches.clear();
        }
        if self.batches.len() == CACHED_BATCHES {
            self.batches.pop_front();
        }
        self.batches.push_back(BatchMetadata {
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            first_offset: batch.first_offset,
            last_offset: batch.last_offset,
            timestamp: batch.max_timestamp,
        });
        self.last_timestamp = batch.max_timestamp;
        if batch.is_transactional && self.current_txn_first_offset.is_none() {
            self.current_txn_first_offset = Some(batch.first_offset);
        }
    }

    fn find_duplicate(&self, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }
}

/// What a leader does with a batch that passed [`ProducerStateTable::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write it.
    Append,
    /// A retry of a batch already in the log: answer with its offsets and
    /// write nothing.
    Duplicate(BatchMetadata),
}

/// The rules of the module docs for `batch` from a producer in state
/// `entry` (`None`: unknown).
fn check_entry(entry: Option<&ProducerEntry>, batch: &ProducerBatch) -> Result<Verdict> {
    let Some(entry) = entry else {
        if batch.first_seq != 0 {
            return Err(LogError::UnknownProducerId {
                producer_id: batch.producer_id,
                first_seq: batch.first_seq,
            });
        }
        return Ok(Verdict::Append);
    };
    if batch.producer_epoch < entry.epoch {
        return Err(LogError::InvalidProducerEpoch {
            producer_id: batch.producer_id,
            epoch: batch.producer_epoch,
            current: entry.epoch,
        });
    }
    if batch.producer_epoch > entry.epoch {
        if !batch.is_transactional
            && let Some(first) = entry.current_txn_first_offset
        {
            return Err(LogError::InvalidTxnState {
                producer_id: batch.producer_id,
                reason: format!(
                    "non-transactional batch while its transaction from offset {first} is open"
                ),
            });
        }
        if batch.first_seq != 0 {
            return Err(LogError::OutOfOrderSequence {
                producer_id: batch.producer_id,
                epoch: batch.producer_epoch,
                expected: 0,
                got: batch.first_seq,
            });
        }
        return Ok(Verdict::Append);
    }
    if let Some(dup) = entry.find_duplicate(batch.first_seq, batch.last_seq) {
        return Ok(Verdict::Duplicate(dup));
    }
    if !batch.is_transactional
        && let Some(first) = entry.current_txn_first_offset
    {
        return Err(LogError::InvalidTxnState {
            producer_id: batch.producer_id,
            reason: format!(
                "non-transactional batch while its transaction from offset {first} is open"
            ),
        });
    }
    // Sequences wrap at i32::MAX to 0.
    let expected = match entry.last_seq() {
        None | Some(i32::MAX) => 0,
        Some(last) => last + 1,
    };
    if batch.first_seq != expected {
        return Err(LogError::OutOfOrderSequence {
            producer_id: batch.producer_id,
            epoch: batch.producer_epoch,
            expected,
            got: batch.first_seq,
        });
    }
    Ok(Verdict::Append)
}

/// The idempotence state of one partition; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: BTreeMap<i64, ProducerEntry>,
    /// Open transactions: (first offset, producer id), derived from
    /// `producers`.
    ongoing: BTreeSet<(i64, i64)>,
}

impl ProducerStateTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of `producer_id`, if known.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every known producer, by id.
    pub fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decide what a leader does with `batch` (its offsets are ignored):
    /// append it, answer it as a duplicate, or refuse it. Changes nothing.
    pub fn check(&self, batch: &ProducerBatch) -> Result<Verdict> {
        check_entry(self.producers.get(&batch.producer_id), batch)
    }

    /// [`check`](Self::check) the batches of one request in order, each
    /// against the state the ones before it would leave (several batches of
    /// one producer follow each other). The first duplicate decides for the
    /// whole request, as in Kafka: nothing is written and the client gets
    /// that batch's offsets. Changes nothing.
    pub fn check_all(&self, batches: &[ProducerBatch]) -> Result<Verdict> {
        let mut overlay: BTreeMap<i64, ProducerEntry> = BTreeMap::new();
        for (i, batch) in batches.iter().enumerate() {
            let id = batch.producer_id;
            let entry = overlay.get(&id).or_else(|| self.producers.get(&id));
            let verdict = check_entry(entry, batch)?;
            if verdict != Verdict::Append {
                return Ok(verdict);
            }
            if i + 1 < batches.len() {
                let mut next = entry.cloned().unwrap_or_else(|| ProducerEntry::new(batch));
                next.apply(batch);
                overlay.insert(id, next);
            }
        }
        Ok(Verdict::Append)
    }

    /// Record a batch the log stored (leader append after
    /// [`check`](Self::check), follower append, recovery replay). A newer
    /// epoch forgets the older epoch's batches. Followers and recovery call
    /// it without checking: they store what a leader accepted.
    pub fn update(&mut self, batch: &ProducerBatch) {
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry::new(batch));
        let was_open = entry.current_txn_first_offset.is_some();
        entry.apply(batch);
        if !was_open && let Some(first) = entry.current_txn_first_offset {
            self.ongoing.insert((first, batch.producer_id));
        }
    }

    /// Decide whether a leader may write `marker`: refused if its producer
    /// epoch is older than the producer's (`INVALID_PRODUCER_EPOCH`) or its
    /// coordinator epoch older than the last marker's
    /// (`TRANSACTION_COORDINATOR_FENCED`). A producer the table does not
    /// know is accepted (its state expired, or it wrote nothing here).
    /// Changes nothing.
    pub fn check_marker(&self, marker: &MarkerBatch) -> Result<()> {
        let Some(entry) = self.producers.get(&marker.producer_id) else {
            return Ok(());
        };
        if marker.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id: marker.producer_id,
                epoch: marker.producer_epoch,
                current: entry.epoch,
            });
        }
        if marker.coordinator_epoch < entry.coordinator_epoch {
            return Err(LogError::TransactionCoordinatorFenced {
                producer_id: marker.producer_id,
                coordinator_epoch: marker.coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Record a marker the log stored: the producer's open transaction (if
    /// any) ends, returned as a [`CompletedTxn`]; the marker's epoch and
    /// coordinator epoch become the producer's (a newer epoch forgets the
    /// cached batches, whose sequences restart at 0).
    pub fn complete_txn(&mut self, marker: &MarkerBatch) -> Option<CompletedTxn> {
        let entry = self
            .producers
            .entry(marker.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: marker.producer_epoch,
                batches: VecDeque::with_capacity(CACHED_BATCHES),
                last_timestamp: marker.timestamp,
                coordinator_epoch: marker.coordinator_epoch,
                current_txn_first_offset: None,
            });
        if marker.producer_epoch != entry.epoch {
            entry.epoch = marker.producer_epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp = marker.timestamp;
        let first = entry.current_txn_first_offset.take()?;
        self.ongoing.remove(&(first, marker.producer_id));
        Some(CompletedTxn {
            producer_id: marker.producer_id,
            first_offset: first,
            last_offset: marker.offset,
            is_aborted: !marker.commit,
        })
    }

    /// Whether a leader must ask the transaction coordinator before
    /// writing `batch` (KIP-890): a transactional batch of a producer with
    /// no transaction open in this partition starts one here, and only the
    /// coordinator knows whether the partition is part of the producer's
    /// current transaction (transaction version 2: the leader adds it with
    /// `AddPartitionsToTxn` on the producer's behalf). A late batch of a
    /// finished transaction is then refused instead of opening a hanging
    /// one.
    ///
    /// A batch in another epoch than the open transaction's is verified
    /// too: the coordinator bumps the epoch on every transaction, so it
    /// belongs to the producer's next transaction (or to a zombie), and
    /// the open one here is still waiting for its marker. Writing it into
    /// the open transaction would let that marker commit or abort it, and
    /// the coordinator would never mark this partition for the new one;
    /// the coordinator answers CONCURRENT_TRANSACTIONS until the old
    /// transaction's markers are written.
    pub fn needs_txn_verification(&self, batch: &ProducerBatch) -> bool {
        batch.is_transactional
            && self.producers.get(&batch.producer_id).is_none_or(|e| {
                e.current_txn_first_offset.is_none() || e.epoch != batch.producer_epoch
            })
    }

    /// The first offset of the earliest open transaction: records from it
    /// on are not stable (`read_committed` readers stop below it).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.first().map(|(offset, _)| *offset)
    }

    /// The open transactions as (first offset, producer id), oldest first.
    pub fn ongoing_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().copied()
    }

    fn with_ongoing(producers: BTreeMap<i64, ProducerEntry>) -> Self {
        let ongoing = producers
            .iter()
            .filter_map(|(id, e)| e.current_txn_first_offset.map(|f| (f, *id)))
            .collect();
        ProducerStateTable { producers, ongoing }
    }

    /// Forget producers whose last batch is older than `expiration_ms`
    /// before `now_ms` (`producer.id.expiration.ms`), except those with a
    /// transaction open (as Kafka). Returns how many.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Serialize, with a format version and a CRC32C over the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(16 + self.producers.len() * 64);
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (id, e) in &self.producers {
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&e.last_timestamp.to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.push(e.batches.len() as u8);
            for b in &e.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parse what [`encode`](Self::encode) wrote, or a version 1 snapshot
    /// (before transactions: no open transaction, no coordinator epoch); a
    /// damaged or unknown snapshot is `CorruptMessage` (the log then
    /// rebuilds from its batches instead).
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader { buf, pos: 0 };
        let version = r.i16()?;
        if version != SNAPSHOT_VERSION && version != 1 {
            return Err(LogError::corrupt(format!(
                "producer snapshot version {version}, expected 1 or {SNAPSHOT_VERSION}"
            )));
        }
        let crc = r.u32()?;
        if crc32c::crc32c(&buf[r.pos..]) != crc {
            return Err(LogError::corrupt("producer snapshot crc mismatch"));
        }
        let count = r.u32()?;
        let mut producers = BTreeMap::new();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_timestamp = r.i64()?;
            let (coordinator_epoch, current_txn_first_offset) = if version >= 2 {
                let epoch = r.i32()?;
                let first = r.i64()?;
                (epoch, (first >= 0).then_some(first))
            } else {
                (-1, None)
            };
            let n = r.u8()? as usize;
            if n > CACHED_BATCHES {
                return Err(LogError::corrupt(format!(
                    "producer snapshot holds {n} batches for producer {id}"
                )));
            }
            let mut batches = VecDeque::with_capacity(CACHED_BATCHES);
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: r.i64()?,
                });
            }
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                    coordinator_epoch,
                    current_txn_first_offset,
                },
            );
        }
        if r.pos != buf.len() {
            return Err(LogError::corrupt("trailing bytes in producer snapshot"));
        }
        Ok(ProducerStateTable::with_ongoing(producers))
    }
}

/// Version of the snapshot format [`ProducerStateTable::encode`] writes.
/// Version 2 adds each producer's coordinator epoch and open transaction.
const SNAPSHOT_VERSION: i16 = 2;

/// A bounds-checked big-endian cursor over a snapshot.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let end = self.pos + N;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| LogError::corrupt("truncated producer snapshot"))?;
        self.pos = end;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take::<1>()?[0])
    }

    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.take()?))
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take()?))
    }
}

#[cfg(test)]
#[path = "producer_test.rs"]
mod tests;
