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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

use crate::batch::Compression;
use crate::batch::header::{
    ATTRIBUTES_OFFSET, CRC_OFFSET, HEADER_LEN, HeaderSummary, RECORD_COUNT_OFFSET,
    TIMESTAMP_TYPE_BIT, compute_crc, framed_size, get_i16, get_i32, patch_log_append_time,
    patch_offset_and_epoch, summarize,
};
use crate::checkpoint::{
    LEADER_EPOCH_FILE, LeaderEpochCache, PARTITION_CHECKPOINT_FILE, PartitionCheckpoint,
    write_atomic,
};
use crate::clock::{Clock, SystemClock};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::recovery;
use crate::segment::Segment;

/// Name of the clean-shutdown marker written by [`PartitionLog::close`].
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";

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

#[derive(Debug)]
struct FlushState {
    /// Everything below was fsynced (the recovery point).
    flushed_offset: i64,
    in_progress: bool,
    /// Bumped by truncation so an fsync racing with it does not claim
    /// offsets that were rewritten.
    generation: u64,
    last_flush_ms: i64,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    config: LogConfig,
    clock: Arc<dyn Clock>,
    segments: RwLock<BTreeMap<i64, Arc<Segment>>>,
    log_start_offset: AtomicI64,
    log_end_offset: AtomicI64,
    high_watermark: AtomicI64,
    epochs: Mutex<LeaderEpochCache>,
    flush: Mutex<FlushState>,
    flush_done: Condvar,
    /// A segment file was created since the directory was last fsynced.
    dir_dirty: AtomicBool,
    /// Serialises checkpoint-file writes: the writer and a background
    /// checkpoint through a [`LogReader`] share one temporary file.
    checkpoint_write: Mutex<()>,
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
    /// Wall-clock creation (or open) time of the active segment, the base of
    /// `segment.ms`.
    active_since_ms: i64,
    /// Opening lost records (see [`lost_records_in_recovery`](Self::lost_records_in_recovery)).
    lost_records: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn segments(&self) -> RwLockReadGuard<'_, BTreeMap<i64, Arc<Segment>>> {
        self.segments
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn segments_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<i64, Arc<Segment>>> {
        self.segments
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The segment that may hold `offset` and the ones after it, up to `n`.
    fn segments_from(&self, offset: i64, n: usize) -> Vec<Arc<Segment>> {
        let segments = self.segments();
        let floor = segments.range(..=offset).next_back().map(|(&base, _)| base);
        let start = floor.unwrap_or(i64::MIN);
        segments
            .range(start..)
            .take(n)
            .map(|(_, s)| Arc::clone(s))
            .collect()
    }

    fn all_segments(&self) -> Vec<Arc<Segment>> {
        self.segments().values().cloned().collect()
    }

    fn write_checkpoint(&self) -> Result<()> {
        // The values are read under the lock, so the last file written
        // holds the newest of them.
        let _writing = lock(&self.checkpoint_write);
        let checkpoint = PartitionCheckpoint {
            high_watermark: self.high_watermark.load(Ordering::Acquire),
            recovery_point: lock(&self.flush).flushed_offset,
            log_start_offset: self.log_start_offset.load(Ordering::Acquire),
        };
        write_atomic(&self.dir, PARTITION_CHECKPOINT_FILE, &checkpoint.encode())
    }

    fn write_epochs(&self) -> Result<()> {
        let text = lock(&self.epochs).encode();
        write_atomic(&self.dir, LEADER_EPOCH_FILE, &text)
    }
}

impl LogReader {
    /// First readable offset.
    pub fn log_start_offset(&self) -> i64 {
        self.shared.log_start_offset.load(Ordering::Acquire)
    }

    /// Offset the next appended record gets (LEO).
    pub fn log_end_offset(&self) -> i64 {
        self.shared.log_end_offset.load(Ordering::Acquire)
    }

    /// Current high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.shared.high_watermark.load(Ordering::Acquire)
    }

    /// Everything below this offset is fsynced.
    pub fn recovery_point(&self) -> i64 {
        lock(&self.shared.flush).flushed_offset
    }

    /// Latest leader epoch in the epoch cache.
    pub fn latest_epoch(&self) -> Option<i32> {
        lock(&self.shared.epochs).latest_epoch()
    }

    /// Snapshot of the leader-epoch cache.
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        lock(&self.shared.epochs).entries().to_vec()
    }

    /// Kafka's `OffsetsForLeaderEpoch`: `(epoch, end offset)` for the largest
    /// epoch ≤ `epoch`, `None` for UNDEFINED_EPOCH_OFFSET.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let epochs = lock(&self.shared.epochs);
        epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// Batches from the one containing `offset`, up to about `max_bytes`
    /// (always at least one whole batch). Reading at the log end returns no
    /// records; outside `[log start, log end]` is `OffsetOutOfRange`.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<FetchData> {
        self.read_bounded(offset, max_bytes, i64::MAX)
    }

    /// Like [`read`](Self::read) but stops before batches starting at or
    /// after `max_offset` (e.g. the high watermark for consumers).
    pub fn read_bounded(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<FetchData> {
        let log_start = self.log_start_offset();
        let log_end = self.log_end_offset();
        let high_watermark = self.high_watermark();
        if offset < log_start || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        let bound = max_offset.min(log_end);
        let mut records = Bytes::new();
        if offset < bound {
            for segment in self.shared.segments_from(offset, 3) {
                if let Some(bytes) = segment.read(offset, max_bytes, bound)? {
                    records = bytes;
                    break;
                }
            }
        }
        Ok(FetchData {
            records,
            log_start_offset: log_start,
            log_end_offset: log_end,
            high_watermark,
        })
    }

    /// Set the high watermark, clamped to `[log start, log end]`: the
    /// replication layer advances it from fetch handlers without holding the
    /// writer. Persisted by [`PartitionLog::checkpoint`], truncation and
    /// close.
    pub fn set_high_watermark(&self, offset: i64) {
        let clamped = offset.clamp(self.log_start_offset(), self.log_end_offset());
        self.shared.high_watermark.store(clamped, Ordering::Release);
    }

    /// ListOffsets for one partition.
    pub fn list_offset(&self, spec: OffsetSpec) -> Result<Option<OffsetAndTimestamp>> {
        match spec {
            OffsetSpec::Earliest => Ok(Some(OffsetAndTimestamp {
                offset: self.log_start_offset(),
                timestamp: -1,
            })),
            OffsetSpec::Latest => Ok(Some(OffsetAndTimestamp {
                offset: self.log_end_offset(),
                timestamp: -1,
            })),
            OffsetSpec::Timestamp(ts) => self.offset_for_timestamp(ts),
        }
    }

    /// First record (at or after the log start) with timestamp ≥ `timestamp`,
    /// found through the time indexes.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<OffsetAndTimestamp>> {
        let log_start = self.log_start_offset();
        for segment in self.shared.all_segments() {
            if segment.max_timestamp()? < timestamp {
                continue;
            }
            if let Some((offset, ts)) = segment.find_timestamp(timestamp, log_start)? {
                return Ok(Some(OffsetAndTimestamp {
                    offset,
                    timestamp: ts,
                }));
            }
        }
        Ok(None)
    }

    /// Base offset, size and timestamps of every segment, oldest first.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>> {
        self.shared
            .all_segments()
            .iter()
            .map(|s| {
                Ok(SegmentInfo {
                    base_offset: s.base_offset(),
                    next_offset: s.next_offset()?,
                    size_bytes: s.size(),
                    max_timestamp: s.max_timestamp()?,
                    index_heap_bytes: s.index_heap_bytes(),
                })
            })
            .collect()
    }

    /// Persist high watermark, recovery point and log start offset (see
    /// [`PartitionLog::checkpoint`]); safe to call while the writer
    /// appends. Blocking (fsync); call it from `spawn_blocking`.
    pub fn checkpoint(&self) -> Result<()> {
        self.shared.write_checkpoint()
    }

    /// Apply `flush.messages` / `flush.ms`: fsync if either is exceeded.
    /// Safe to call while the writer appends. Blocking; call it from
    /// `spawn_blocking`.
    pub fn flush_if_due(&self) -> Result<()> {
        let config = &self.shared.config;
        let (flushed, last_ms) = {
            let state = lock(&self.shared.flush);
            (state.flushed_offset, state.last_flush_ms)
        };
        let end = self.log_end_offset();
        let unflushed = end - flushed;
        if unflushed <= 0 {
            return Ok(());
        }
        let by_count = config.flush_messages.is_some_and(|n| unflushed as u64 >= n);
        let now = self.shared.clock.now_ms();
        let by_time = config
            .flush_ms
            .is_some_and(|ms| now.saturating_sub(last_ms) >= ms as i64);
        if by_count || by_time {
            self.flush_until(end)?;
        }
        Ok(())
    }

    /// Make every offset below `offset` (capped at the log end) durable.
    /// Thread-safe group commit: callers arriving during an fsync wait for it
    /// and share the next one. Blocking; call it from `spawn_blocking`.
    pub fn flush_until(&self, offset: i64) -> Result<()> {
        let shared = &*self.shared;
        let mut state = lock(&shared.flush);
        loop {
            if state.flushed_offset >= offset.min(self.log_end_offset()) {
                return Ok(());
            }
            if state.in_progress {
                state = shared
                    .flush_done
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.in_progress = true;
            let generation = state.generation;
            let from = state.flushed_offset;
            drop(state);

            let target = self.log_end_offset();
            let result = (|| {
                if shared.dir_dirty.swap(false, Ordering::AcqRel)
                    && let Err(e) = crate::checkpoint::sync_dir(&shared.dir)
                {
                    shared.dir_dirty.store(true, Ordering::Release);
                    return Err(LogError::Io {
                        context: "fsync log directory".into(),
                        source: e,
                    });
                }
                for segment in shared.segments_from(from, usize::MAX) {
                    segment.sync()?;
                }
                Ok(())
            })();

            state = lock(&shared.flush);
            state.in_progress = false;
            if result.is_ok() && state.generation == generation {
                state.flushed_offset = state.flushed_offset.max(target);
                state.last_flush_ms = shared.clock.now_ms();
            }
            shared.flush_done.notify_all();
            result?;
        }
    }

    /// Heap bytes held by all loaded segment indexes.
    pub fn index_heap_bytes(&self) -> usize {
        self.shared
            .all_segments()
            .iter()
            .map(|s| s.index_heap_bytes())
            .sum()
    }
}

/// A batch checked by `validate_batches`, located in the request buffer.
struct Validated {
    start: usize,
    summary: HeaderSummary,
}

/// Split `buf` into batches and check framing, magic, CRC and codec.
fn validate_batches(buf: &[u8], max_bytes: Option<usize>) -> Result<Vec<Validated>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let size = framed_size(rest)?;
        if size > rest.len() {
            return Err(LogError::corrupt(format!(
                "batch at byte {pos} claims {size} bytes, {} remain",
                rest.len()
            )));
        }
        if let Some(max) = max_bytes
            && size > max
        {
            return Err(LogError::RecordTooLarge { size, max });
        }
        let batch = &rest[..size];
        let summary = summarize(batch)?;
        let stored = get_i32(batch, CRC_OFFSET) as u32;
        let computed = compute_crc(batch);
        if stored != computed {
            return Err(LogError::corrupt(format!(
                "crc mismatch in batch at byte {pos}: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        Compression::from_id(get_i16(batch, ATTRIBUTES_OFFSET) & 0x07)?;
        out.push(Validated {
            start: pos,
            summary,
        });
        pos += size;
    }
    if out.is_empty() {
        return Err(LogError::corrupt("no record batches"));
    }
    Ok(out)
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
            config,
            clock,
            segments: RwLock::new(recovered.segments),
            log_start_offset: AtomicI64::new(recovered.log_start_offset),
            log_end_offset: AtomicI64::new(recovered.log_end_offset),
            high_watermark: AtomicI64::new(recovered.high_watermark),
            epochs: Mutex::new(recovered.epochs),
            flush: Mutex::new(FlushState {
                flushed_offset: recovered.recovery_point,
                in_progress: false,
                generation: 0,
                last_flush_ms: now,
            }),
            flush_done: Condvar::new(),
            dir_dirty: AtomicBool::new(false),
            checkpoint_write: Mutex::new(()),
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
        Ok(PartitionLog {
            reader: LogReader {
                shared: Arc::new(shared),
            },
            active,
            active_since_ms: now,
            lost_records: recovered.lost_records,
        })
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

    /// The log's configuration.
    pub fn config(&self) -> &LogConfig {
        &self.reader.shared.config
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

    /// See [`LogReader::flush_until`].
    pub fn flush_until(&self, offset: i64) -> Result<()> {
        self.reader.flush_until(offset)
    }

    /// fsync everything appended so far.
    pub fn flush(&self) -> Result<()> {
        self.reader.flush_until(self.log_end_offset())
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

    /// Leader append: assign offsets from the log end, stamp `leader_epoch`
    /// into each batch (outside the CRC) and the append time into
    /// LogAppendTime batches, all in copies of the headers: `batches` is
    /// left as it is. `batches` holds one or more
    /// concatenated batches from a producer; all are validated before any is
    /// written. Each batch must have `lastOffsetDelta == recordCount - 1`.
    pub fn append_as_leader(&mut self, batches: Bytes, leader_epoch: i32) -> Result<AppendInfo> {
        let max = self.config().max_message_bytes;
        let validated = validate_batches(&batches, Some(max))?;
        for v in &validated {
            let count = get_i32(&batches[v.start..], RECORD_COUNT_OFFSET);
            let delta = v.summary.last_offset - v.summary.base_offset;
            if count <= 0 || i64::from(count) - 1 != delta {
                return Err(LogError::corrupt(format!(
                    "batch has {count} records but last offset delta {delta}"
                )));
            }
        }
        let now = self.reader.shared.clock.now_ms();
        let mut next = self.log_end_offset();
        let mut log_append_time = None;
        let mut summaries = Vec::with_capacity(validated.len());
        // The request's bytes are shared with the transport's buffer, so the
        // leader's fields go into copies of the 61-byte headers, written
        // ahead of the untouched records (one `pwritev`), not into a copy of
        // the whole request.
        let mut headers = Vec::with_capacity(validated.len());
        for v in &validated {
            let batch = &batches[v.start..v.start + v.summary.size];
            let (head, records) = batch.split_at(HEADER_LEN);
            let mut header = [0; HEADER_LEN];
            header.copy_from_slice(head);
            let delta = v.summary.last_offset - v.summary.base_offset;
            patch_offset_and_epoch(&mut header, next, leader_epoch);
            let mut max_timestamp = v.summary.max_timestamp;
            if get_i16(&header, ATTRIBUTES_OFFSET) & TIMESTAMP_TYPE_BIT != 0 {
                patch_log_append_time(&mut header, records, now);
                log_append_time = Some(now);
                max_timestamp = now;
            }
            headers.push(header);
            summaries.push(HeaderSummary {
                base_offset: next,
                last_offset: next + delta,
                max_timestamp,
                leader_epoch,
                size: v.summary.size,
            });
            next += delta + 1;
        }
        let info = self.write_batches(&batches, Some(&headers), &summaries, log_append_time)?;
        if lock(&self.reader.shared.epochs).assign(leader_epoch, info.first_offset) {
            self.reader.shared.write_epochs()?;
        }
        self.maybe_flush_by_policy()?;
        Ok(info)
    }

    /// Follower append: store batches fetched from the leader unchanged,
    /// keeping their offsets and epochs. Each batch must start exactly at the
    /// log end: Strom logs are dense (there is no compaction), which lets
    /// recovery detect a corrupt `baseOffset` (outside the CRC). A new epoch in
    /// a batch header is added to the leader-epoch cache.
    pub fn append_as_follower(&mut self, batches: Bytes) -> Result<AppendInfo> {
        let validated = validate_batches(&batches, None)?;
        let mut expected = self.log_end_offset();
        for v in &validated {
            if v.summary.base_offset != expected {
                return Err(LogError::UnexpectedAppendOffset {
                    offset: v.summary.base_offset,
                    log_end: expected,
                });
            }
            expected = v.summary.last_offset + 1;
        }
        let summaries: Vec<HeaderSummary> = validated.iter().map(|v| v.summary).collect();
        let info = self.write_batches(&batches, None, &summaries, None)?;
        let changed = {
            let mut epochs = lock(&self.reader.shared.epochs);
            let mut changed = false;
            for s in &summaries {
                changed |= epochs.assign(s.leader_epoch, s.base_offset);
            }
            changed
        };
        if changed {
            self.reader.shared.write_epochs()?;
        }
        self.maybe_flush_by_policy()?;
        Ok(info)
    }

    /// Write contiguous, validated batches, rolling segments as needed, then
    /// publish the new log end offset. `headers`, when given, replace the
    /// first [`HEADER_LEN`] bytes of each batch in `buf`.
    fn write_batches(
        &mut self,
        buf: &[u8],
        headers: Option<&[[u8; HEADER_LEN]]>,
        summaries: &[HeaderSummary],
        log_append_time: Option<i64>,
    ) -> Result<AppendInfo> {
        let mut run_start = 0; // index into summaries
        let mut run_pos = 0; // byte position in buf
        let mut pos = 0;
        let mut max_timestamp = -1;
        let mut offset_of_max_timestamp = -1;
        for (i, s) in summaries.iter().enumerate() {
            if self.should_roll(s, (pos - run_pos) as u64)? {
                self.active.append(
                    &buf[run_pos..pos],
                    headers.map(|h| &h[run_start..i]),
                    &summaries[run_start..i],
                )?;
                self.roll(s.base_offset)?;
                run_start = i;
                run_pos = pos;
            }
            if s.max_timestamp > max_timestamp {
                max_timestamp = s.max_timestamp;
                offset_of_max_timestamp = s.last_offset;
            }
            pos += s.size;
        }
        self.active.append(
            &buf[run_pos..pos],
            headers.map(|h| &h[run_start..]),
            &summaries[run_start..],
        )?;
        let first = summaries
            .first()
            .expect("validated batches are never empty");
        let last = summaries.last().expect("validated batches are never empty");
        self.reader
            .shared
            .log_end_offset
            .store(last.last_offset + 1, Ordering::Release);
        Ok(AppendInfo {
            first_offset: first.base_offset,
            last_offset: last.last_offset,
            max_timestamp,
            offset_of_max_timestamp,
            log_append_time,
            batch_count: summaries.len(),
            bytes: pos,
        })
    }

    /// Whether `next` must go to a new segment, `pending` bytes of this
    /// append being bound for the active segment ahead of it.
    fn should_roll(&self, next: &HeaderSummary, pending: u64) -> Result<bool> {
        let config = self.config();
        let size = self.active.size() + pending;
        if size == 0 {
            return Ok(false);
        }
        let now = self.reader.shared.clock.now_ms();
        Ok(size + next.size as u64 > config.segment_bytes
            || now.saturating_sub(self.active_since_ms) >= config.segment_ms as i64
            || next.last_offset - self.active.base_offset() > i64::from(i32::MAX)
            || self.active.index_full(
                config.max_index_entries(),
                (config.segment_index_bytes / 12) as usize,
            )?)
    }

    /// Seal the active segment and start a new one at `base_offset`.
    fn roll(&mut self, base_offset: i64) -> Result<()> {
        self.active.seal()?;
        let shared = &self.reader.shared;
        let segment = Arc::new(Segment::create(
            &shared.dir,
            base_offset,
            shared.config.index_interval_bytes,
        )?);
        shared.dir_dirty.store(true, Ordering::Release);
        shared
            .segments_mut()
            .insert(base_offset, Arc::clone(&segment));
        self.active = segment;
        self.active_since_ms = shared.clock.now_ms();
        tracing::debug!(base_offset, "rolled segment");
        Ok(())
    }

    /// Force a roll if the active segment is not empty (tests, admin).
    pub fn roll_now(&mut self) -> Result<()> {
        if self.active.size() > 0 {
            self.roll(self.log_end_offset())?;
        }
        Ok(())
    }

    fn maybe_flush_by_policy(&self) -> Result<()> {
        let config = self.config();
        if config.flush_messages.is_none() && config.flush_ms.is_none() {
            return Ok(());
        }
        self.flush_if_due()
    }

    /// Apply `flush.messages` / `flush.ms`: fsync if either is exceeded.
    /// Appends call it; a scheduler may too, for `flush.ms` on idle logs.
    pub fn flush_if_due(&self) -> Result<()> {
        self.reader.flush_if_due()
    }

    /// Follower truncation: remove every batch from the one containing
    /// `offset` on. If `offset` falls inside a batch the whole batch goes, so
    /// the new log end offset may be below `offset`. If that batch starts
    /// below the log start (or `offset` does) this is
    /// [`truncate_fully_and_start_at`](Self::truncate_fully_and_start_at).
    /// Returns whether anything was removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<bool> {
        if offset >= self.log_end_offset() {
            // Still drop epochs that start at the log end: a broker that
            // became leader (recording its epoch's start) but appended
            // nothing before losing the leadership would otherwise keep
            // claiming that epoch and never converge with the new leader
            // (Kafka's `truncateTo` does the same).
            let end = self.log_end_offset();
            if lock(&self.reader.shared.epochs).truncate_from_end(end) {
                self.reader.shared.write_epochs()?;
            }
            return Ok(false);
        }
        let shared = Arc::clone(&self.reader.shared);
        // The batch containing `offset` goes whole; if it starts below the
        // log start, nothing visible would remain: start over at `offset`.
        let containing_base = match shared
            .segments_from(offset, 2)
            .iter()
            .find_map(|s| s.translate(offset).transpose())
        {
            Some(found) => found?.1.base_offset,
            None => offset,
        };
        if offset < self.log_start_offset() || containing_base < self.log_start_offset() {
            self.truncate_fully_and_start_at(offset)?;
            return Ok(true);
        }
        shared.log_end_offset.fetch_min(offset, Ordering::AcqRel);
        let removed: Vec<Arc<Segment>> = {
            let mut segments = shared.segments_mut();
            let doomed: Vec<i64> = segments.range(offset + 1..).map(|(&b, _)| b).collect();
            // Keep at least one segment.
            let keep_first = segments.keys().next().copied();
            doomed
                .into_iter()
                .filter(|&b| Some(b) != keep_first)
                .filter_map(|b| segments.remove(&b))
                .collect()
        };
        for segment in &removed {
            segment.delete_files()?;
        }
        let active = Arc::clone(
            shared
                .segments()
                .values()
                .next_back()
                .expect("one segment remains"),
        );
        active.truncate_to(offset)?;
        let log_end = active.next_offset()?;
        self.active = active;
        shared.log_end_offset.store(log_end, Ordering::Release);
        shared.high_watermark.fetch_min(log_end, Ordering::AcqRel);
        {
            let mut flush = lock(&shared.flush);
            flush.flushed_offset = flush.flushed_offset.min(log_end);
            flush.generation += 1;
        }
        if lock(&shared.epochs).truncate_from_end(log_end) {
            shared.write_epochs()?;
        }
        shared.write_checkpoint()?;
        tracing::info!(offset, log_end, "truncated log");
        Ok(true)
    }

    /// Delete everything and restart the log empty at `offset` (a follower
    /// whose fetch offset is out of the leader's range).
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        let shared = Arc::clone(&self.reader.shared);
        let segment = Arc::new(Segment::create(
            &shared.dir,
            offset,
            shared.config.index_interval_bytes,
        )?);
        let old = std::mem::replace(
            &mut *shared.segments_mut(),
            BTreeMap::from([(offset, Arc::clone(&segment))]),
        );
        for (base, s) in &old {
            if *base != offset {
                s.delete_files()?;
            }
        }
        self.active = segment;
        self.active_since_ms = shared.clock.now_ms();
        shared.log_start_offset.store(offset, Ordering::Release);
        shared.log_end_offset.store(offset, Ordering::Release);
        shared.high_watermark.store(offset, Ordering::Release);
        {
            let mut flush = lock(&shared.flush);
            flush.flushed_offset = offset;
            flush.generation += 1;
        }
        lock(&shared.epochs).clear();
        crate::checkpoint::sync_dir(&shared.dir).map_err(|e| LogError::Io {
            context: "fsync log directory".into(),
            source: e,
        })?;
        shared.write_epochs()?;
        shared.write_checkpoint()
    }

    /// Advance the log start offset to `offset` (capped at the log end) and
    /// delete segments wholly below it; the active segment is never deleted.
    /// Returns the number of segments deleted. Retention and DeleteRecords
    /// decide the offset.
    pub fn delete_segments_before(&mut self, offset: i64) -> Result<usize> {
        let shared = Arc::clone(&self.reader.shared);
        let new_start = offset
            .min(self.log_end_offset())
            .max(self.log_start_offset());
        shared.log_start_offset.store(new_start, Ordering::Release);
        shared.high_watermark.fetch_max(new_start, Ordering::AcqRel);
        let removed: Vec<Arc<Segment>> = {
            let mut segments = shared.segments_mut();
            let bases: Vec<i64> = segments.keys().copied().collect();
            let doomed: Vec<i64> = bases
                .windows(2)
                .filter(|w| w[1] <= new_start)
                .map(|w| w[0])
                .collect();
            doomed
                .into_iter()
                .filter_map(|b| segments.remove(&b))
                .collect()
        };
        for segment in &removed {
            segment.delete_files()?;
        }
        if lock(&shared.epochs).truncate_from_start(new_start) {
            shared.write_epochs()?;
        }
        shared.write_checkpoint()?;
        Ok(removed.len())
    }

    /// Clean shutdown: fsync data and indexes, write checkpoints and the
    /// clean-shutdown marker, so the next open skips recovery.
    pub fn close(self) -> Result<()> {
        let shared = &self.reader.shared;
        self.flush()?;
        self.active.seal()?;
        self.active.write_index_files(true)?;
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
