//! [`PartitionLog`], the public API of one partition replica's log, and
//! [`LogReader`], its cheap cloneable read handle.
//!
//! Concurrency model: one writer and many readers. `PartitionLog` methods
//! that change the log take `&mut self` (the replication layer owns it, one
//! task per partition, or wraps it in a mutex). Reads, offset queries and
//! `flush_until` go through `LogReader`, which can be cloned into every fetch
//! handler: readers take the segment-list `RwLock` only to pick segments, and
//! a segment's lock only for an index lookup; file reads are positional
//! (`pread`) on shared handles, so reads never wait for appends' disk I/O.
//! The log end offset is published (release) after the bytes are written.
//!
//! `flush_until` is a group commit: concurrent callers whose offsets are
//! covered by an fsync in progress wait for it instead of issuing their own.
//!
//! Layout:
//! - `mod.rs`: the public types, opening, accessors, close.
//! - `shared.rs`: state shared by the writer and the readers.
//! - `reader.rs`: reads and offset queries ([`LogReader`]).
//! - `validate.rs`: checks a leader or follower append passes first.
//! - `append.rs`: leader and follower appends, segment rolls.
//! - `flush.rs`: group commit and the `flush.messages` / `flush.ms` policy.
//! - `truncate.rs`: truncation from the end, restart at an offset.
//! - `compact.rs`: a log-cleaning pass and the crash-safe swap of a cleaned
//!   segment.
//! - `producers.rs`: the idempotent-producer state, its snapshots and its
//!   rebuild on open and truncation.
//! - `retention.rs`: the log start offset moving up (retention,
//!   DeleteRecords, a follower's leader) and the crash-safe deletion of the
//!   segments below it.

mod append;
mod compact;
mod flush;
mod producers;
mod reader;
mod retention;
mod shared;
mod truncate;
mod validate;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use bytes::Bytes;

pub use crate::checkpoint::CLEAN_SHUTDOWN_FILE;
use crate::checkpoint::write_atomic;
use crate::clock::{Clock, SystemClock};
use crate::config::LogConfig;
use crate::error::Result;
use crate::producer::ProducerStateTable;
use crate::recovery;
use crate::segment::Segment;
use crate::txn_index::TxnIndex;
pub use compact::{CleanedSegment, CleanerStats, CleaningPass, SwapStep};
pub use retention::DeletedSegments;
use shared::{FlushState, Shared, lock};

/// Result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest batch max timestamp (-1 if none).
    pub max_timestamp: i64,
    /// Offset of the record holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// The append time written into LogAppendTime batches, if any.
    pub log_append_time: Option<i64>,
    /// Number of batches appended.
    pub batch_count: usize,
    /// Bytes appended.
    pub bytes: usize,
    /// The request was a retry of batches already in the log (an
    /// idempotent producer's duplicate): nothing was written, and the
    /// offsets are those of the original batch.
    pub duplicate: bool,
}

/// Result of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchData {
    /// Whole stored batches, starting with the one containing the requested
    /// offset; empty when reading at the end.
    pub records: Bytes,
    /// Log start offset when the read happened.
    pub log_start_offset: i64,
    /// Log end offset when the read happened.
    pub log_end_offset: i64,
    /// High watermark when the read happened.
    pub high_watermark: i64,
}

/// What a ListOffsets request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (the broker substitutes the high watermark for
    /// consumers).
    Latest,
    /// The first record with a timestamp ≥ this.
    Timestamp(i64),
}

/// An offset with its record timestamp (-1 for earliest/latest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// The offset.
    pub offset: i64,
    /// The record's timestamp, or -1.
    pub timestamp: i64,
}

/// Per-segment facts for retention and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Base offset (the file name).
    pub base_offset: i64,
    /// Offset after the last batch.
    pub next_offset: i64,
    /// Size of the `.log` file in bytes.
    pub size_bytes: u64,
    /// Largest timestamp in the segment, -1 if none.
    pub max_timestamp: i64,
    /// Heap bytes held by its in-memory indexes.
    pub index_heap_bytes: usize,
}

/// Cloneable read handle; see the module docs.
#[derive(Debug, Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

/// A partition's on-disk log. Dropping it without [`close`](Self::close)
/// behaves like a crash: the next open runs recovery.
#[derive(Debug)]
pub struct PartitionLog {
    reader: LogReader,
    active: Arc<Segment>,
    /// Opening lost records (see [`lost_records_in_recovery`](Self::lost_records_in_recovery)).
    lost_records: bool,
    /// Idempotent-producer state as of the log end (`producers.rs`).
    producers: ProducerStateTable,
    /// When appends last looked for expired producers (clock ms).
    producers_checked_ms: i64,
    /// Segment bases whose `.txnindex` got entries since the last snapshot
    /// (fsynced before the next one).
    txn_index_unsynced: BTreeSet<i64>,
}

impl PartitionLog {
    /// Open (creating if needed) the log in `dir`, recovering after an
    /// unclean shutdown.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self> {
        Self::open_with_clock(dir, config, Arc::new(SystemClock))
    }

    /// [`open`](Self::open) with an injected clock.
    pub fn open_with_clock(
        dir: impl AsRef<Path>,
        config: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        config.validate()?;
        let dir = dir.as_ref().to_owned();
        let recovered = recovery::open_dir(&dir, &config)?;
        let active = Arc::clone(
            recovered
                .segments
                .values()
                .next_back()
                .expect("recovery leaves at least one segment"),
        );
        let now = clock.now_ms();
        let shared = Shared {
            dir,
            config: RwLock::new(Arc::new(config)),
            clock,
            segments: RwLock::new(recovered.segments),
            log_start_offset: AtomicI64::new(recovered.log_start_offset),
            log_end_offset: AtomicI64::new(recovered.log_end_offset),
            high_watermark: AtomicI64::new(recovered.high_watermark),
            first_dirty: AtomicI64::new(recovered.first_dirty_offset),
            delete_horizon: AtomicI64::new(recovered.delete_horizon_ms),
            active_since_ms: AtomicI64::new(now),
            epochs: Mutex::new(recovered.epochs),
            flush: Mutex::new(FlushState {
                flushed_offset: recovered.recovery_point,
                in_progress: false,
                generation: 0,
                last_flush_ms: now,
            }),
            flush_done: Condvar::new(),
            dir_dirty: AtomicBool::new(false),
            checkpoint_write: Mutex::new(None),
            first_unstable_offset: AtomicI64::new(i64::MAX),
            producer_count: AtomicU64::new(0),
            aborted: RwLock::new(TxnIndex::default()),
        };
        shared.write_checkpoint()?;
        shared.write_epochs()?;
        tracing::info!(
            dir = %shared.dir.display(),
            log_start_offset = recovered.log_start_offset,
            log_end_offset = recovered.log_end_offset,
            clean = recovered.clean,
            lost_records = recovered.lost_records,
            "opened partition log"
        );
        let mut log = PartitionLog {
            reader: LogReader {
                shared: Arc::new(shared),
            },
            active,
            lost_records: recovered.lost_records,
            producers: ProducerStateTable::new(),
            producers_checked_ms: now,
            txn_index_unsynced: BTreeSet::new(),
        };
        log.rebuild_producer_state()?;
        Ok(log)
    }

    /// Whether opening this log lost records it held before: recovery cut
    /// a damaged tail or deleted segments after one, or the log ends below
    /// the high watermark it had checkpointed. A replica that lost records
    /// may lack acknowledged ones, so it must not lead before it has
    /// fetched them again (the broker reports it when registering). Only
    /// the open that found the damage says so; the next open sees a valid
    /// shorter log.
    pub fn lost_records_in_recovery(&self) -> bool {
        self.lost_records
    }

    /// A cloneable read handle sharing this log.
    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    /// The log's configuration in force (see [`LogReader::set_config`]).
    pub fn config(&self) -> Arc<LogConfig> {
        self.reader.shared.config()
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.reader.shared.dir
    }

    /// See [`LogReader::log_start_offset`].
    pub fn log_start_offset(&self) -> i64 {
        self.reader.log_start_offset()
    }

    /// See [`LogReader::log_end_offset`].
    pub fn log_end_offset(&self) -> i64 {
        self.reader.log_end_offset()
    }

    /// See [`LogReader::last_stable_offset`].
    pub fn last_stable_offset(&self) -> i64 {
        self.reader.last_stable_offset()
    }

    /// See [`LogReader::aborted_transactions`].
    pub fn aborted_transactions(&self, fetch_offset: i64, upper: i64) -> Vec<crate::AbortedTxn> {
        self.reader.aborted_transactions(fetch_offset, upper)
    }

    /// See [`LogReader::high_watermark`].
    pub fn high_watermark(&self) -> i64 {
        self.reader.high_watermark()
    }

    /// See [`LogReader::recovery_point`].
    pub fn recovery_point(&self) -> i64 {
        self.reader.recovery_point()
    }

    /// See [`LogReader::latest_epoch`].
    pub fn latest_epoch(&self) -> Option<i32> {
        self.reader.latest_epoch()
    }

    /// See [`LogReader::end_offset_for_epoch`].
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.reader.end_offset_for_epoch(epoch)
    }

    /// See [`LogReader::read`].
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<FetchData> {
        self.reader.read(offset, max_bytes)
    }

    /// See [`LogReader::offset_for_timestamp`].
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<OffsetAndTimestamp>> {
        self.reader.offset_for_timestamp(timestamp)
    }

    /// See [`LogReader::list_offset`].
    pub fn list_offset(&self, spec: OffsetSpec) -> Result<Option<OffsetAndTimestamp>> {
        self.reader.list_offset(spec)
    }

    /// Set the high watermark, clamped to `[log start, log end]`. Persisted
    /// by [`checkpoint`](Self::checkpoint), truncation and close.
    pub fn set_high_watermark(&self, offset: i64) {
        self.reader.set_high_watermark(offset);
    }

    /// Persist high watermark, recovery point and log start offset. The
    /// broker calls this periodically (Kafka: every 5 s for the high
    /// watermark, 60 s for the recovery point).
    pub fn checkpoint(&self) -> Result<()> {
        self.reader.shared.write_checkpoint()
    }

    /// Records that `leader_epoch` starts at the current log end, as a new
    /// leader does before accepting writes (Kafka's
    /// `maybeAssignEpochStartOffset`): the leader's epoch cache then always
    /// holds its current epoch, so `OffsetsForLeaderEpoch` and fetch
    /// divergence checks answer for it even before its first append. Ignored
    /// for an epoch not newer than the latest known.
    pub fn assign_epoch_start(&mut self, leader_epoch: i32) -> Result<()> {
        let end = self.log_end_offset();
        if lock(&self.reader.shared.epochs).assign(leader_epoch, end) {
            self.reader.shared.write_epochs()?;
        }
        Ok(())
    }

    /// Clean shutdown: fsync data and indexes, write checkpoints and the
    /// clean-shutdown marker, so the next open skips recovery.
    pub fn close(mut self) -> Result<()> {
        self.flush()?;
        self.active.seal()?;
        self.active.write_index_files(true)?;
        let end = self.log_end_offset();
        self.write_producer_snapshot(end)?;
        let shared = &self.reader.shared;
        shared.write_checkpoint()?;
        shared.write_epochs()?;
        write_atomic(&shared.dir, CLEAN_SHUTDOWN_FILE, "")?;
        tracing::info!(dir = %shared.dir.display(), log_end_offset = self.log_end_offset(), "closed partition log");
        Ok(())
    }

    /// See [`LogReader::segments`].
    pub fn segments(&self) -> Result<Vec<SegmentInfo>> {
        self.reader.segments()
    }
}
