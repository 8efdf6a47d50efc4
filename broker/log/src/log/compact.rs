//! Log compaction: one cleaning pass over a log, and the crash-safe swap
//! of a cleaned segment. The decisions are pure (`crate::compaction`); this
//! file reads and writes the files.
//!
//! A pass, as Kafka's `Cleaner.doClean`:
//! 1. [`LogReader::cleanable`] finds the dirty section `[first dirty, first
//!    uncleanable)`; the broker picks the dirtiest log.
//! 2. [`LogReader::begin_cleaning`] reads the dirty section into an
//!    [`OffsetMap`] (key → newest offset). A full map ends the pass early,
//!    at a batch boundary: what it covers is cleaned, the rest waits.
//! 3. For each segment below the map's end, oldest first,
//!    [`LogReader::clean_segment`] writes `<base>.log.cleaned` with every
//!    batch filtered (`compaction/filter.rs`): offsets never change, a
//!    segment keeps its base offset and its next offset.
//! 4. [`PartitionLog::swap_cleaned`] puts the cleaned file in place, under
//!    the writer but without reading or writing data: (a) check the segment
//!    is still the one cleaned (not truncated nor deleted meanwhile), else
//!    drop the cleaned file; (b) rename `.cleaned` → `.swap` (fsynced
//!    before), fsync the directory; (c) delete the old segment's index
//!    files; (d) rename `.swap` → `.log`, replacing the old file, fsync the
//!    directory; (e) open the new file, rebuild and write its indexes,
//!    replace the segment in the map. Readers still holding the old segment
//!    keep reading the old (unlinked) file through their handle.
//! 5. [`PartitionLog::finish_cleaning`] records the map's end as the first
//!    dirty offset in `cleaner-offset-checkpoint`, with the earliest delete
//!    horizon of the tombstones and markers the pass kept.
//!
//! Transactions: the pass reads its segments in offset order from the log
//! start and tracks each producer's transaction (`compaction/txn.rs`).
//! Records of aborted transactions go; a marker whose transaction holds no
//! record any more gets a delete horizon and goes once it passed. When an
//! ABORT marker goes, its aborted-transaction index entry goes first (step
//! 4, before the rename): a crash in between leaves a marker without entry
//! over a transaction with no records, which readers treat the same.
//!
//! A log with nothing dirty whose clean section holds a tombstone past its
//! delete horizon gets a pass too: an empty map, every segment of the clean
//! section filtered, so only the expired tombstones go (KIP-534).
//!
//! Recovery (`recovery.rs`) deletes a `.cleaned` file (the swap had not
//! begun: roll back, the old segment is whole) and completes a `.swap`
//! (the cleaned file was whole and durable: roll forward), so whatever
//! point the process dies at, the segment holds either every record it
//! held or the cleaned subset. A lost checkpoint only makes the next pass
//! redo work.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::shared::lock;
use super::{LogReader, PartitionLog};
use crate::batch::header::{HEADER_LEN, summarize};
use crate::batch::{BatchIter, RecordBatch};
use crate::checkpoint::{CLEANER_CHECKPOINT_FILE, CleanerCheckpoint, sync_dir, write_atomic};
use crate::compaction::filter::{EmptyRun, FilterContext, Filtered, filter_batch};
use crate::compaction::txn::{TxnRole, TxnTracker};
use crate::compaction::{Cleanable, CompactionFacts, OffsetMap, cleanable};
use crate::error::{IoContext, Result};
use crate::retention::SegmentFacts;
use crate::segment::{
    CLEANED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX, Segment, TIME_INDEX_SUFFIX, file_name,
    remove_if_exists,
};

/// Bytes read from a segment at a time.
const READ_CHUNK: usize = 1 << 20;

/// What a cleaning pass did, for logs, metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanerStats {
    /// Bytes read: the dirty section for the map, then every segment
    /// rewritten.
    pub bytes_read: u64,
    /// Bytes of the cleaned segments written.
    pub bytes_written: u64,
    /// Segments replaced by a cleaned copy.
    pub segments_cleaned: usize,
    /// Distinct keys in the offset map.
    pub map_keys: usize,
    /// Records read from the segments rewritten.
    pub records_read: u64,
    /// Records removed from them.
    pub records_removed: u64,
    /// Transaction markers removed (their delete horizon passed).
    pub markers_removed: u64,
}

/// A cleaning pass in progress: the section its map covers, the segments
/// to rewrite, and its clock.
#[derive(Debug)]
pub struct CleaningPass {
    first_dirty_offset: i64,
    map_end: i64,
    now_ms: i64,
    delete_retention_ms: i64,
    segments: Vec<i64>,
    truncations: u64,
    /// The earliest delete horizon of a tombstone or marker kept so far,
    /// -1 if none.
    delete_horizon: i64,
    /// Each producer's transaction, as read so far.
    txns: TxnTracker,
    /// Running totals.
    pub stats: CleanerStats,
}

impl CleaningPass {
    /// Remembers the delete horizon of a kept batch that still holds a
    /// tombstone, or of a kept marker (only stamped batches are parsed).
    fn note_kept(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(horizon) = batch.delete_horizon_ms() else {
            return Ok(());
        };
        if (self.delete_horizon < 0 || horizon < self.delete_horizon)
            && (batch.is_control() || batch.records()?.iter().any(|r| r.value.is_none()))
        {
            self.delete_horizon = horizon;
        }
        Ok(())
    }

    /// Where the map starts.
    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty_offset
    }

    /// Where the map ends: the first dirty offset once the pass completes.
    pub fn map_end(&self) -> i64 {
        self.map_end
    }

    /// Base offsets of the segments to rewrite, oldest first.
    pub fn segments(&self) -> &[i64] {
        &self.segments
    }
}

/// A cleaned copy of one segment, written and fsynced, waiting for
/// [`PartitionLog::swap_cleaned`].
#[derive(Debug)]
pub struct CleanedSegment {
    base_offset: i64,
    original: Arc<Segment>,
    original_size: u64,
    path: PathBuf,
    size: u64,
    /// Markers removed, as (producer id, offset): their aborted-transaction
    /// index entries go before the swap.
    removed_markers: Vec<(i64, i64)>,
}

impl CleanedSegment {
    /// Base offset of the segment.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Size of the segment before and after cleaning.
    pub fn sizes(&self) -> (u64, u64) {
        (self.original_size, self.size)
    }
}

/// How far [`PartitionLog::swap_cleaned_until`] goes: tests stop at each
/// step and reopen the log, as a crash there would.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SwapStep {
    /// The `.cleaned` file is written; nothing else.
    Written,
    /// Renamed to `.swap`.
    Renamed,
    /// The old index files are deleted.
    IndexesDeleted,
    /// The `.swap` file replaced the `.log` file.
    Replaced,
    /// The new segment is in the map: the whole swap.
    Done,
}

impl LogReader {
    /// First offset not yet cleaned (the cleaner checkpoint), within the
    /// log's bounds.
    pub fn first_dirty_offset(&self) -> i64 {
        self.shared
            .first_dirty
            .load(Ordering::Acquire)
            .clamp(self.log_start_offset(), self.log_end_offset())
    }

    /// The cleanable section of the log now and its dirty ratio (see
    /// [`crate::compaction::decide`]); `None` when nothing is dirty and
    /// cleanable. Reads a few batch headers and time-index tails; call it
    /// off the async workers.
    pub fn cleanable(&self) -> Result<Option<Cleanable>> {
        let config = self.config();
        let lags = config.compaction_lags();
        let segments = self.shared.all_segments();
        let last = segments.len().saturating_sub(1);
        let facts = segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let largest_timestamp = if lags.min_compaction_lag_ms > 0 && i < last {
                    s.largest_timestamp()?
                } else {
                    -1
                };
                Ok(SegmentFacts {
                    base_offset: s.base_offset(),
                    size_bytes: s.size(),
                    largest_timestamp,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let first_dirty = self.first_dirty_offset();
        let first_dirty_timestamp = if lags.max_compaction_lag_ms.is_some() {
            self.first_batch_timestamp(first_dirty)?
        } else {
            -1
        };
        Ok(cleanable(
            CompactionFacts {
                segments: &facts,
                log_start_offset: self.log_start_offset(),
                first_dirty_offset: first_dirty,
                // Only what no open transaction may still abort: every
                // transactional batch below the LSO is decided.
                high_watermark: self.last_stable_offset(),
                first_dirty_timestamp,
                delete_horizon_ms: self.shared.delete_horizon.load(Ordering::Acquire),
            },
            lags,
            self.shared.clock.now_ms(),
        ))
    }

    /// Max timestamp of the batch holding `offset`, -1 if none.
    fn first_batch_timestamp(&self, offset: i64) -> Result<i64> {
        if offset >= self.log_end_offset() {
            return Ok(-1);
        }
        for segment in self.shared.segments_from(offset, 2) {
            if let Some(bytes) = segment.read(offset, HEADER_LEN, i64::MAX)?
                && bytes.len() >= HEADER_LEN
            {
                return Ok(summarize(&bytes).map_or(-1, |s| s.max_timestamp));
            }
        }
        Ok(-1)
    }

    /// Step 2 of a pass: fill `map` (cleared first) from the dirty section
    /// of `cleanable`. `io` is told of every chunk read (the throttle).
    /// `None` when not one batch fit in the map.
    pub fn begin_cleaning(
        &self,
        cleanable: &Cleanable,
        map: &mut OffsetMap,
        io: &mut dyn FnMut(u64),
    ) -> Result<Option<CleaningPass>> {
        map.clear();
        let config = self.config();
        let truncations = lock(&self.shared.flush).generation;
        let start = cleanable.first_dirty_offset;
        let end = cleanable.first_uncleanable_offset;
        let mut stats = CleanerStats::default();
        let mut next = start;
        let mut full = false;
        'segments: for segment in self.shared.segments_from(start, usize::MAX) {
            if segment.base_offset() >= end {
                break;
            }
            next = next.max(segment.base_offset());
            while next < end {
                let Some(bytes) = segment.read(next, READ_CHUNK, end)? else {
                    break;
                };
                if bytes.is_empty() {
                    break;
                }
                stats.bytes_read += bytes.len() as u64;
                io(bytes.len() as u64);
                for batch in BatchIter::new(bytes) {
                    let batch = batch?;
                    // Markers are not keyed data, and an aborted
                    // transaction's records must not supersede committed
                    // ones (they may still go themselves, superseded).
                    if batch.is_control()
                        || (batch.is_transactional()
                            && self
                                .shared
                                .aborted()
                                .is_aborted(batch.producer_id(), batch.base_offset()))
                    {
                        next = batch.next_offset();
                        continue;
                    }
                    // A batch is mapped whole or not at all, so the map's
                    // end is a batch boundary.
                    let mut fits = true;
                    for record in batch.records()? {
                        if let Some(key) = &record.key
                            && record.offset >= start
                            && !map.put(key, record.offset)
                        {
                            fits = false;
                        }
                    }
                    if !fits {
                        full = true;
                        break 'segments;
                    }
                    next = batch.next_offset();
                }
            }
        }
        let map_end = next.min(end);
        stats.map_keys = map.len();
        // Nothing dirty: a pass for the clean section's expired tombstones.
        let tombstones_only = start >= end && cleanable.tombstones_due;
        if map_end <= start && !tombstones_only {
            tracing::warn!(
                dir = %self.shared.dir.display(),
                first_dirty_offset = start,
                capacity = map.capacity(),
                "offset map too small for one batch of the dirty section"
            );
            return Ok(None);
        }
        if full {
            tracing::info!(
                dir = %self.shared.dir.display(),
                map_end,
                end,
                keys = map.len(),
                "offset map full, cleaning part of the dirty section"
            );
        }
        let segments = self
            .shared
            .segments()
            .range(..map_end)
            .map(|(&b, _)| b)
            .collect();
        Ok(Some(CleaningPass {
            first_dirty_offset: start,
            map_end,
            now_ms: self.shared.clock.now_ms(),
            delete_retention_ms: i64::try_from(config.delete_retention_ms).unwrap_or(i64::MAX),
            segments,
            truncations,
            delete_horizon: -1,
            txns: TxnTracker::default(),
            stats,
        }))
    }

    /// Step 3 of a pass: write the cleaned copy of the segment at `base`
    /// (`<base>.log.cleaned`, fsynced). `None` when the segment is gone or
    /// cleaning changes nothing in it.
    pub fn clean_segment(
        &self,
        pass: &mut CleaningPass,
        map: &OffsetMap,
        base: i64,
        io: &mut dyn FnMut(u64),
    ) -> Result<Option<CleanedSegment>> {
        let Some(segment) = self.shared.segments().get(&base).cloned() else {
            return Ok(None);
        };
        let original_size = segment.size();
        let end = segment.next_offset()?;
        let name = format!("{}{CLEANED_SUFFIX}", file_name(base, LOG_SUFFIX));
        let path = self.shared.dir.join(&name);
        let file = File::create(&path).context(|| format!("create {name}"))?;
        let mut out = BufWriter::with_capacity(READ_CHUNK, file);
        let ctx = FilterContext {
            map,
            map_end: pass.map_end,
            now_ms: pass.now_ms,
            delete_retention_ms: pass.delete_retention_ms,
        };
        let mut changed = false;
        let mut removed_markers = Vec::new();
        let mut written = 0u64;
        let mut pending: Option<EmptyRun> = None;
        let mut write = |out: &mut BufWriter<File>, bytes: &[u8]| -> Result<()> {
            written += bytes.len() as u64;
            out.write_all(bytes).context(|| format!("write {name}"))
        };
        let mut next = base;
        while next < end {
            let Some(bytes) = segment.read(next, READ_CHUNK, i64::MAX)? else {
                break;
            };
            if bytes.is_empty() {
                break;
            }
            pass.stats.bytes_read += bytes.len() as u64;
            io(bytes.len() as u64);
            for batch in BatchIter::new(bytes) {
                let batch = batch?;
                next = batch.next_offset();
                let before = u64::try_from(batch.record_count()).unwrap_or(0);
                pass.stats.records_read += before;
                let (producer_id, control) = (batch.producer_id(), batch.is_control());
                let transactional = batch.is_transactional();
                let aborted = transactional
                    && !control
                    && self
                        .shared
                        .aborted()
                        .is_aborted(producer_id, batch.base_offset());
                let role = pass
                    .txns
                    .role(producer_id, control, transactional, before > 0, aborted);
                let filtered = filter_batch(&batch, &ctx, role)?;
                if let Filtered::Empty(run) = filtered {
                    changed = true;
                    if control {
                        debug_assert_eq!(role, TxnRole::MarkerDone);
                        removed_markers.push((producer_id, batch.base_offset()));
                        pass.stats.markers_removed += 1;
                    } else {
                        pass.stats.records_removed += before;
                    }
                    let absorbed = match pending.as_mut() {
                        Some(p) if p.can_absorb(&run) => {
                            p.absorb(&run);
                            true
                        }
                        _ => false,
                    };
                    if !absorbed && let Some(p) = pending.replace(run) {
                        write(&mut out, &p.encode())?;
                    }
                    continue;
                }
                if let Some(p) = pending.take() {
                    write(&mut out, &p.encode())?;
                }
                if let Filtered::Rewritten(bytes) = filtered {
                    changed = true;
                    let kept = RecordBatch::from_bytes(bytes.clone())?;
                    pass.stats.records_removed +=
                        before.saturating_sub(u64::try_from(kept.record_count()).unwrap_or(0));
                    pass.note_kept(&kept)?;
                    write(&mut out, &bytes)?;
                } else {
                    pass.note_kept(&batch)?;
                    write(&mut out, batch.as_bytes())?;
                }
            }
        }
        if let Some(p) = pending.take() {
            write(&mut out, &p.encode())?;
        }
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .context(|| format!("write {}", path.display()))?;
        if !changed || next < end {
            // Nothing to gain, or the segment shrank under us (truncation).
            drop(file);
            remove_if_exists(&path)?;
            return Ok(None);
        }
        file.sync_all()
            .context(|| format!("fsync {}", path.display()))?;
        io(written);
        pass.stats.bytes_written += written;
        Ok(Some(CleanedSegment {
            base_offset: base,
            original: segment,
            original_size,
            path,
            size: written,
            removed_markers,
        }))
    }
}

impl PartitionLog {
    /// Step 4 of a pass: put a cleaned segment in place (see the module
    /// docs). Returns whether it was swapped: `false` (and the cleaned file
    /// is deleted) when the segment changed since it was cleaned.
    pub fn swap_cleaned(&mut self, cleaned: CleanedSegment) -> Result<bool> {
        self.swap_cleaned_until(cleaned, SwapStep::Done)
    }

    /// [`swap_cleaned`](Self::swap_cleaned) stopping after `stop`, as a
    /// crash there would: crash tests only.
    #[doc(hidden)]
    pub fn swap_cleaned_until(&mut self, cleaned: CleanedSegment, stop: SwapStep) -> Result<bool> {
        let shared = Arc::clone(&self.reader.shared);
        let base = cleaned.base_offset;
        let current = shared.segments().get(&base).cloned();
        let unchanged = current.as_ref().is_some_and(|s| {
            Arc::ptr_eq(s, &cleaned.original)
                && s.size() == cleaned.original_size
                && !Arc::ptr_eq(s, &self.active)
        });
        if !unchanged {
            remove_if_exists(&cleaned.path)?;
            return Ok(false);
        }
        if stop == SwapStep::Written {
            return Ok(false);
        }
        if !cleaned.removed_markers.is_empty() {
            let dropped = {
                let mut index = shared.aborted_mut();
                cleaned
                    .removed_markers
                    .iter()
                    .filter(|(producer_id, offset)| index.remove(*producer_id, *offset))
                    .count()
            };
            if dropped > 0 {
                self.rewrite_txn_index()?;
            }
        }
        let dir = &shared.dir;
        let log_name = file_name(base, LOG_SUFFIX);
        let swap_path = dir.join(format!("{log_name}{SWAP_SUFFIX}"));
        fs::rename(&cleaned.path, &swap_path)
            .context(|| format!("rename {log_name}{CLEANED_SUFFIX}"))?;
        sync_dir(dir).context(|| format!("fsync log directory {}", dir.display()))?;
        if stop == SwapStep::Renamed {
            return Ok(false);
        }
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&dir.join(file_name(base, suffix)))?;
        }
        if stop == SwapStep::IndexesDeleted {
            return Ok(false);
        }
        fs::rename(&swap_path, dir.join(&log_name))
            .context(|| format!("rename {log_name}{SWAP_SUFFIX}"))?;
        sync_dir(dir).context(|| format!("fsync log directory {}", dir.display()))?;
        if stop == SwapStep::Replaced {
            return Ok(false);
        }
        let segment = Arc::new(Segment::open(
            dir,
            base,
            shared.config().index_interval_bytes,
        )?);
        segment.load(false)?;
        segment.seal()?;
        shared.segments_mut().insert(base, segment);
        tracing::debug!(
            dir = %dir.display(),
            base,
            before = cleaned.original_size,
            after = cleaned.size,
            "swapped in cleaned segment"
        );
        Ok(true)
    }

    /// Step 5 of a pass: everything below the pass's map end is clean. Not
    /// recorded if the log was truncated during the pass.
    pub fn finish_cleaning(&mut self, pass: &CleaningPass) -> Result<()> {
        let shared = &self.reader.shared;
        if lock(&shared.flush).generation != pass.truncations {
            return Ok(());
        }
        let previous = shared.first_dirty.swap(pass.map_end, Ordering::AcqRel);
        let previous_horizon = shared
            .delete_horizon
            .swap(pass.delete_horizon, Ordering::AcqRel);
        if previous != pass.map_end || previous_horizon != pass.delete_horizon {
            write_cleaner_checkpoint(shared, pass.map_end)?;
        }
        Ok(())
    }

    /// One whole cleaning pass under the writer, whatever the dirty ratio
    /// (tests, tools): `None` when nothing is cleanable. The broker's
    /// cleaner runs the steps itself, holding the writer only to swap.
    pub fn clean(
        &mut self,
        map: &mut OffsetMap,
        io: &mut dyn FnMut(u64),
    ) -> Result<Option<CleanerStats>> {
        let Some(cleanable) = self.reader.cleanable()? else {
            return Ok(None);
        };
        let reader = self.reader.clone();
        let Some(mut pass) = reader.begin_cleaning(&cleanable, map, io)? else {
            return Ok(None);
        };
        for base in pass.segments.clone() {
            if let Some(cleaned) = reader.clean_segment(&mut pass, map, base, io)?
                && self.swap_cleaned(cleaned)?
            {
                pass.stats.segments_cleaned += 1;
            }
        }
        self.finish_cleaning(&pass)?;
        Ok(Some(pass.stats))
    }
}

/// Persist the first dirty offset.
pub(super) fn write_cleaner_checkpoint(
    shared: &super::shared::Shared,
    first_dirty: i64,
) -> Result<()> {
    let checkpoint = CleanerCheckpoint {
        first_dirty,
        delete_horizon_ms: Some(shared.delete_horizon.load(Ordering::Acquire)),
    };
    write_atomic(&shared.dir, CLEANER_CHECKPOINT_FILE, checkpoint.encode())
}

/// A read at `offset` that starts inside a header-only batch (merged
/// emptied batches) gets that header cut to start at `offset`, so a
/// follower, whose log end is always a batch boundary of its own log, can
/// append what it fetched. Anything else is returned as it is.
pub(super) fn trim_leading_empty_batch(records: Bytes, offset: i64) -> Bytes {
    let Ok(summary) = summarize(&records) else {
        return records;
    };
    if summary.base_offset >= offset || summary.size > records.len() {
        return records;
    }
    let Ok(batch) = RecordBatch::from_bytes(records.slice(..summary.size)) else {
        return records;
    };
    if batch.record_count() != 0 || batch.is_control() || batch.producer_id() >= 0 {
        return records;
    }
    let mut out = crate::compaction::filter::trimmed_empty_header(&batch, offset);
    out.extend_from_slice(&records[summary.size..]);
    Bytes::from(out)
}
