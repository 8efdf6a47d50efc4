//! The log's idempotent-producer state ([`ProducerStateTable`]): checked
//! and updated by appends, written as a snapshot at every segment roll and
//! at close, and rebuilt on open and after truncation from the newest
//! snapshot at or below the log end plus the batches after it.
//!
//! Snapshot files are named like segments, `<offset>.snapshot`: the state
//! after every batch below `<offset>`. The two newest are kept (the older
//! one covers a damaged newest); a snapshot above the log end (left by a
//! truncation or a crash that lost the tail) is deleted before use.
//!
//! Transactions: a COMMIT or ABORT marker closes its producer's open
//! transaction; an aborted one goes to the aborted-transaction index
//! ([`TxnIndex`], in memory for readers and appended to
//! `<segment base>.txnindex` for the segment holding the marker). The
//! index files are fsynced before each snapshot, so every abort below a
//! snapshot is on disk; a rebuild drops the entries at or above the
//! snapshot it starts from and finds them again in the replay, then
//! rewrites the files. The first offset of the earliest open transaction
//! is published for the last stable offset after every change.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::PartitionLog;
use crate::batch::control::marker_of;
use crate::batch::header::{
    ATTRIBUTES_OFFSET, BASE_SEQUENCE_OFFSET, CONTROL_BIT, HEADER_LEN, HeaderSummary,
    NO_PRODUCER_ID, PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET, RECORD_COUNT_OFFSET, RecordBatch,
    TRANSACTIONAL_BIT, get_i16, get_i32, get_i64,
};
use crate::batch::iter::BatchIter;
use crate::checkpoint::write_atomic;
use crate::error::{IoContext, LogError, Result};
use crate::producer::{CompletedTxn, MarkerBatch, ProducerBatch, ProducerStateTable};
use crate::segment::{file_name, parse_file_name, remove_if_exists};
use crate::txn_index::{AbortedTxn, TXN_INDEX_SUFFIX, TxnIndex, decode_entries};

/// Suffix of producer-state snapshot files.
pub(crate) const SNAPSHOT_SUFFIX: &str = "snapshot";

/// Snapshots kept on disk.
const SNAPSHOTS_KEPT: usize = 2;

/// Bytes read per step when replaying batches into the table.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// The producer fields of the batch whose header starts `header`, stored
/// at the offsets of `summary` at time `at_ms` (this log's clock: the
/// producer's last activity, for `producer.id.expiration.ms`); `None` for a
/// batch without a producer id or a control batch (transaction markers
/// carry no sequences). A header-only batch (no records) opens no
/// transaction: only the cleaner writes those, below the last stable
/// offset where every transaction is decided, and it may since have
/// removed the transaction's marker.
pub(super) fn producer_batch(
    header: &[u8],
    summary: &HeaderSummary,
    at_ms: i64,
) -> Option<ProducerBatch> {
    debug_assert!(header.len() >= HEADER_LEN);
    let producer_id = get_i64(header, PRODUCER_ID_OFFSET);
    let attributes = get_i16(header, ATTRIBUTES_OFFSET);
    if producer_id == NO_PRODUCER_ID || attributes & CONTROL_BIT != 0 {
        return None;
    }
    let first_seq = get_i32(header, BASE_SEQUENCE_OFFSET);
    let delta = (summary.last_offset - summary.base_offset) as i32;
    Some(ProducerBatch {
        producer_id,
        producer_epoch: get_i16(header, PRODUCER_EPOCH_OFFSET),
        first_seq,
        last_seq: ProducerBatch::last_sequence(first_seq, delta),
        first_offset: summary.base_offset,
        last_offset: summary.last_offset,
        max_timestamp: at_ms,
        is_transactional: attributes & TRANSACTIONAL_BIT != 0
            && get_i32(header, RECORD_COUNT_OFFSET) > 0,
    })
}

/// How often appends look for expired producers.
const EXPIRY_CHECK_MS: i64 = 60_000;

impl PartitionLog {
    /// The idempotent-producer state as of the log end.
    pub fn producer_state(&self) -> &ProducerStateTable {
        &self.producers
    }

    /// Forget producers idle for longer than `producer.id.expiration.ms`;
    /// returns how many. Appends call it at most once a minute, rolls and
    /// close before every snapshot.
    pub fn expire_producers(&mut self) -> usize {
        let now = self.reader.shared.clock.now_ms();
        self.producers_checked_ms = now;
        let expiration = i64::try_from(self.config().producer_id_expiration_ms).unwrap_or(i64::MAX);
        let expired = self.producers.remove_expired(now, expiration);
        self.publish_producer_state();
        if expired > 0 {
            tracing::debug!(dir = %self.reader.shared.dir.display(), expired, "forgot idle producers");
        }
        expired
    }

    /// [`expire_producers`](Self::expire_producers) if the last look was
    /// over a minute ago.
    pub(super) fn maybe_expire_producers(&mut self) {
        let now = self.reader.shared.clock.now_ms();
        if now.saturating_sub(self.producers_checked_ms) >= EXPIRY_CHECK_MS {
            self.expire_producers();
        }
    }

    /// Write the state, which must be that after every batch below `end`,
    /// as `<end>.snapshot`, and drop snapshots beyond the newest
    /// [`SNAPSHOTS_KEPT`].
    pub(super) fn write_producer_snapshot(&mut self, end: i64) -> Result<()> {
        self.expire_producers();
        self.sync_txn_index()?;
        let dir = &self.reader.shared.dir;
        write_atomic(
            dir,
            &file_name(end, SNAPSHOT_SUFFIX),
            self.producers.encode(),
        )?;
        let mut offsets = snapshot_offsets(dir)?;
        offsets.sort_unstable();
        let excess = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
        for offset in &offsets[..excess] {
            remove_if_exists(&dir.join(file_name(*offset, SNAPSHOT_SUFFIX)))?;
        }
        Ok(())
    }

    /// Rebuild the table for the current log: delete snapshots above the
    /// log end, load the newest one that decodes, replay the batches from
    /// there (or from the log start) to the log end.
    pub(super) fn rebuild_producer_state(&mut self) -> Result<()> {
        let dir = self.reader.shared.dir.clone();
        let end = self.log_end_offset();
        let mut offsets = snapshot_offsets(&dir)?;
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let mut loaded = None;
        for offset in offsets {
            let path = dir.join(file_name(offset, SNAPSHOT_SUFFIX));
            if offset > end {
                remove_if_exists(&path)?;
                continue;
            }
            if loaded.is_some() {
                continue;
            }
            let bytes = fs::read(&path).context(|| format!("read {}", path.display()))?;
            match ProducerStateTable::decode(&bytes) {
                Ok(table) => loaded = Some((offset, table)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring a damaged producer snapshot");
                }
            }
        }
        let (from, table) = loaded.unwrap_or_default();
        self.producers = table;
        let from = from.max(self.log_start_offset());
        // Aborts from `from` on are found again by the replay.
        let mut index = load_txn_index(&dir)?;
        index.truncate_from(from);
        index.remove_below(self.log_start_offset());
        *self.reader.shared.aborted_mut() = index;
        let replayed = self.replay_producer_batches(from, end)?;
        self.rewrite_txn_index()?;
        self.publish_producer_state();
        tracing::debug!(
            dir = %dir.display(),
            from,
            replayed,
            producers = self.producers.len(),
            "rebuilt producer state"
        );
        Ok(())
    }

    /// Feed the batches in `[from, end)` to the table; returns how many
    /// carried a producer id.
    fn replay_producer_batches(&mut self, from: i64, end: i64) -> Result<usize> {
        // Replayed producers count as active now: their batches' own
        // timestamps are the clients' clocks.
        let now = self.reader.shared.clock.now_ms();
        let mut offset = from;
        let mut replayed = 0;
        while offset < end {
            let data = self.reader.read(offset, REPLAY_READ_BYTES)?;
            if data.records.is_empty() {
                break;
            }
            let mut next = offset;
            for batch in BatchIter::new(data.records) {
                let batch = batch?;
                next = batch.next_offset();
                if batch.last_offset() < from {
                    continue;
                }
                let summary = HeaderSummary {
                    base_offset: batch.base_offset(),
                    size: batch.size_in_bytes(),
                    last_offset: batch.last_offset(),
                    max_timestamp: batch.max_timestamp(),
                    leader_epoch: batch.partition_leader_epoch(),
                };
                if let Some(p) = producer_batch(batch.as_bytes(), &summary, now) {
                    self.producers.update(&p);
                    replayed += 1;
                } else if let Some(marker) = marker_or_warn(&batch, batch.base_offset(), now) {
                    if let Some(done) = self.producers.complete_txn(&marker) {
                        self.record_completed(done, None)?;
                    }
                    replayed += 1;
                }
            }
            if next <= offset {
                return Err(LogError::corrupt(format!(
                    "producer state replay made no progress at offset {offset}"
                )));
            }
            offset = next;
        }
        Ok(replayed)
    }

    /// Record in the table the batches of `buf` described by `summaries`,
    /// the first starting at byte `pos`, just written to the log.
    /// Markers close transactions (aborted ones go to the index, in
    /// memory and in the active segment's `.txnindex`).
    pub(super) fn track_producers(
        &mut self,
        buf: &[u8],
        summaries: &[HeaderSummary],
        pos: usize,
    ) -> Result<()> {
        let now = self.reader.shared.clock.now_ms();
        let mut pos = pos;
        for s in summaries {
            let header = &buf[pos..pos + HEADER_LEN];
            if let Some(p) = producer_batch(header, s, now) {
                self.producers.update(&p);
            } else if get_i16(header, ATTRIBUTES_OFFSET) & CONTROL_BIT != 0 {
                let batch =
                    RecordBatch::from_bytes(Bytes::copy_from_slice(&buf[pos..pos + s.size]));
                let marker = match batch {
                    Ok(batch) => marker_or_warn(&batch, s.base_offset, now),
                    Err(e) => {
                        tracing::warn!(offset = s.base_offset, error = %e, "unreadable control batch");
                        None
                    }
                };
                if let Some(done) = marker.and_then(|m| self.producers.complete_txn(&m)) {
                    let base = self.active.base_offset();
                    self.record_completed(done, Some(base))?;
                }
            }
            pos += s.size;
        }
        self.publish_producer_state();
        Ok(())
    }

    /// Add an aborted transaction to the index, and to the `.txnindex` of
    /// the segment based at `segment` if given (a replay rewrites the
    /// files afterwards instead).
    fn record_completed(&mut self, done: CompletedTxn, segment: Option<i64>) -> Result<()> {
        if !done.is_aborted {
            return Ok(());
        }
        let entry = AbortedTxn {
            producer_id: done.producer_id,
            first_offset: done.first_offset,
            last_offset: done.last_offset,
            last_stable_offset: self
                .producers
                .first_unstable_offset()
                .unwrap_or(done.last_offset + 1),
        };
        self.reader.shared.aborted_mut().push(entry);
        if let Some(base) = segment {
            let path = self
                .reader
                .shared
                .dir
                .join(file_name(base, TXN_INDEX_SUFFIX));
            let mut file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .context(|| format!("open {}", path.display()))?;
            file.write_all(&entry.encode())
                .context(|| format!("append to {}", path.display()))?;
            self.txn_index_unsynced.insert(base);
        }
        Ok(())
    }

    /// Publish the first unstable offset for
    /// [`LogReader::last_stable_offset`](super::LogReader::last_stable_offset),
    /// and the number of producers for
    /// [`LogReader::producer_count`](super::LogReader::producer_count).
    fn publish_producer_state(&self) {
        let first = self.producers.first_unstable_offset().unwrap_or(i64::MAX);
        self.reader
            .shared
            .first_unstable_offset
            .store(first, Ordering::Release);
        self.reader
            .shared
            .producer_count
            .store(self.producers.len() as u64, Ordering::Relaxed);
    }

    /// fsync the `.txnindex` files appended to since the last call, and
    /// drop entries (and files) below the log start.
    fn sync_txn_index(&mut self) -> Result<()> {
        let dir = self.reader.shared.dir.clone();
        for base in std::mem::take(&mut self.txn_index_unsynced) {
            let path = dir.join(file_name(base, TXN_INDEX_SUFFIX));
            match fs::File::open(&path) {
                Ok(f) => f
                    .sync_all()
                    .context(|| format!("fsync {}", path.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(LogError::Io {
                        context: format!("open {}", path.display()),
                        source: e,
                    });
                }
            }
        }
        let dropped = self
            .reader
            .shared
            .aborted_mut()
            .remove_below(self.log_start_offset());
        if dropped > 0 {
            self.rewrite_txn_index()?;
        }
        Ok(())
    }

    /// Write the index files anew from memory: one per segment holding
    /// markers of aborted transactions; other `.txnindex` files go.
    pub(super) fn rewrite_txn_index(&mut self) -> Result<()> {
        self.txn_index_unsynced.clear();
        let shared = &self.reader.shared;
        let mut files: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
        {
            let segments = shared.segments();
            for e in shared.aborted().entries() {
                let base = segments
                    .range(..=e.last_offset)
                    .next_back()
                    .map_or(e.last_offset, |(b, _)| *b);
                files
                    .entry(base)
                    .or_default()
                    .extend_from_slice(&e.encode());
            }
        }
        for base in txn_index_files(&shared.dir)? {
            if !files.contains_key(&base) {
                remove_if_exists(&shared.dir.join(file_name(base, TXN_INDEX_SUFFIX)))?;
            }
        }
        for (base, bytes) in &files {
            let name = file_name(*base, TXN_INDEX_SUFFIX);
            // An open rewrites every file: skip those already right, but
            // fsync them before the next snapshot (a crash may have left
            // them in the page cache only).
            if fs::read(shared.dir.join(&name)).is_ok_and(|old| old == *bytes) {
                self.txn_index_unsynced.insert(*base);
                continue;
            }
            write_atomic(&shared.dir, &name, bytes)?;
        }
        Ok(())
    }

    /// Remove every snapshot and aborted-transaction index (the log
    /// restarts empty).
    pub(super) fn delete_producer_snapshots(&mut self) -> Result<()> {
        let dir = self.reader.shared.dir.clone();
        for offset in snapshot_offsets(&dir)? {
            remove_if_exists(&dir.join(file_name(offset, SNAPSHOT_SUFFIX)))?;
        }
        for base in txn_index_files(&dir)? {
            remove_if_exists(&dir.join(file_name(base, TXN_INDEX_SUFFIX)))?;
        }
        self.producers = ProducerStateTable::new();
        *self.reader.shared.aborted_mut() = TxnIndex::default();
        self.txn_index_unsynced.clear();
        self.publish_producer_state();
        Ok(())
    }
}

/// Offsets of the snapshot files in `dir`.
fn snapshot_offsets(dir: &std::path::Path) -> Result<Vec<i64>> {
    files_with_suffix(dir, SNAPSHOT_SUFFIX)
}

/// Segment bases of the `.txnindex` files in `dir`.
fn txn_index_files(dir: &std::path::Path) -> Result<Vec<i64>> {
    files_with_suffix(dir, TXN_INDEX_SUFFIX)
}

fn files_with_suffix(dir: &std::path::Path, suffix: &str) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).context(|| format!("list log directory {}", dir.display()))? {
        let entry = entry.context(|| format!("list log directory {}", dir.display()))?;
        let name = entry.file_name();
        if let Some((offset, s)) = name.to_str().and_then(parse_file_name)
            && s == suffix
        {
            out.push(offset);
        }
    }
    Ok(out)
}

/// Every entry of the `.txnindex` files in `dir` (a damaged file keeps
/// what decodes: the rebuild rewrites it).
fn load_txn_index(dir: &std::path::Path) -> Result<TxnIndex> {
    let mut entries = Vec::new();
    for base in txn_index_files(dir)? {
        let path = dir.join(file_name(base, TXN_INDEX_SUFFIX));
        let bytes = fs::read(&path).context(|| format!("read {}", path.display()))?;
        let (mut found, damaged) = decode_entries(&bytes);
        if damaged {
            tracing::warn!(path = %path.display(), kept = found.len(), "damaged aborted-transaction index");
        }
        entries.append(&mut found);
    }
    Ok(TxnIndex::from_entries(entries))
}

/// The marker of a stored control batch at `offset`, or `None` (with a
/// warning) if it is not a well-formed one: a leader refuses those, so one
/// only comes from a damaged or foreign log, and skipping it is what a
/// reader does too.
fn marker_or_warn(batch: &RecordBatch, offset: i64, at_ms: i64) -> Option<MarkerBatch> {
    match marker_of(batch, at_ms) {
        Ok(m) => m.map(|m| MarkerBatch { offset, ..m }),
        Err(e) => {
            tracing::warn!(offset, error = %e, "ignoring a malformed control batch");
            None
        }
    }
}
