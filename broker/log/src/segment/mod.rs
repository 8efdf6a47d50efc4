//! One segment: a `.log` file of whole batches plus its sparse `.index` and
//! `.timeindex`, all named by the 20-digit base offset.
//!
//! - [`offset_index`]: relative offset → position.
//! - [`time_index`]: max timestamp → relative offset.
//! - [`scan`]: batch-by-batch validation used by recovery and index rebuilds.
//!
//! Readers use positional reads (`read_at`) on the shared file handle and
//! only hold the segment's `RwLock` to look up the index and the committed
//! size; the single writer appends with `write_all_at` and then publishes the
//! new size under the write lock, so a reader never sees a partial batch.
//! Indexes live in memory; the active segment's are always loaded, a closed
//! segment's are loaded from disk on first use (and rebuilt from the log if
//! they fail the sanity check). Index files are written when a segment is
//! sealed, truncated or the log is closed; they are hints that lookups verify.

pub(crate) mod offset_index;
pub(crate) mod scan;
pub(crate) mod time_index;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind as IoErrorKind, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::{Bytes, BytesMut};

use self::offset_index::OffsetIndex;
use self::scan::{ScanOutcome, scan};
use self::time_index::TimeIndex;
use crate::batch::header::{HeaderSummary, NO_TIMESTAMP, summarize};
use crate::batch::{HEADER_LEN, RecordBatch};
use crate::error::{IoContext, LogError, Result};
use crate::writeback;

/// Extension of the log file.
pub(crate) const LOG_SUFFIX: &str = "log";
/// Extension of the offset index.
pub(crate) const INDEX_SUFFIX: &str = "index";
/// Extension of the time index.
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";
/// Appended to the names of a deleted segment's files until they are
/// removed (`00000000000000000042.log.deleted`); recovery removes leftovers.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";
/// Appended to a `.log` file name for the cleaner's copy being written
/// (`00000000000000000042.log.cleaned`); recovery deletes it.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// A cleaned copy, whole and fsynced, about to replace the `.log` file;
/// recovery completes the replacement.
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// `00000000000000000042.log` for base offset 42.
pub(crate) fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}.{suffix}")
}

/// Parse a segment file name into its base offset and suffix.
pub(crate) fn parse_file_name(name: &str) -> Option<(i64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, suffix))
}

/// In-memory index state of a loaded segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentIndex {
    pub(crate) offsets: OffsetIndex,
    pub(crate) times: TimeIndex,
    /// Offset after the last batch (the base offset if empty).
    pub(crate) next_offset: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) offset_of_max_timestamp: i64,
    bytes_since_index: u64,
}

impl SegmentIndex {
    pub(crate) fn empty(base_offset: i64) -> Self {
        SegmentIndex {
            offsets: OffsetIndex::default(),
            times: TimeIndex::default(),
            next_offset: base_offset,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: -1,
            bytes_since_index: 0,
        }
    }

    /// Account for a batch stored at `position`, appended or scanned: the
    /// one place that decides index entries, so rebuilds match appends.
    pub(crate) fn on_batch(
        &mut self,
        base_offset: i64,
        position: u64,
        batch: &HeaderSummary,
        index_interval: u64,
    ) {
        let add_entry = self.bytes_since_index >= index_interval;
        if batch.max_timestamp > self.max_timestamp {
            self.max_timestamp = batch.max_timestamp;
            self.offset_of_max_timestamp = batch.last_offset;
        }
        if add_entry {
            self.offsets
                .push(relative(base_offset, batch.base_offset), position as u32);
            self.push_time_entry(base_offset);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += batch.size as u64;
        self.next_offset = batch.last_offset + 1;
    }

    fn push_time_entry(&mut self, base_offset: i64) {
        if self.offset_of_max_timestamp >= base_offset {
            self.times.maybe_push(
                self.max_timestamp,
                relative(base_offset, self.offset_of_max_timestamp),
            );
        }
    }

    fn heap_bytes(&self) -> usize {
        self.offsets.heap_bytes() + self.times.heap_bytes()
    }
}

fn relative(base_offset: i64, offset: i64) -> u32 {
    u32::try_from(offset - base_offset).expect("relative offsets are checked before indexing")
}

#[derive(Debug)]
struct SegmentState {
    /// Committed bytes: everything below is whole, valid batches.
    size: u64,
    /// `None` until a closed segment's index is first needed.
    index: Option<SegmentIndex>,
}

/// What a lookup of the index hint found.
enum Located {
    Found(u64, HeaderSummary),
    NotHere,
    /// The batch at an index position did not start at the indexed offset.
    StaleIndex,
}

/// A log segment. See the module docs for the concurrency model.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    dir: PathBuf,
    file: File,
    index_interval: u64,
    state: RwLock<SegmentState>,
    /// Start of the appended bytes not yet handed to writeback.
    writeback_from: AtomicU64,
    /// The largest timestamp of a closed segment whose index is not
    /// loaded, once read from its time index ([`UNKNOWN_TIMESTAMP`] before).
    largest_timestamp: AtomicI64,
}

/// [`Segment::largest_timestamp`] not read yet.
const UNKNOWN_TIMESTAMP: i64 = i64::MIN;

impl Segment {
    /// Create an empty segment, replacing any leftover files of that name.
    pub(crate) fn create(dir: &Path, base_offset: i64, index_interval: u64) -> Result<Self> {
        let name = file_name(base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join(&name))
            .context(|| format!("create segment {name}"))?;
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&dir.join(file_name(base_offset, suffix)))?;
        }
        Ok(Segment {
            base_offset,
            dir: dir.to_owned(),
            file,
            index_interval,
            state: RwLock::new(SegmentState {
                size: 0,
                index: Some(SegmentIndex::empty(base_offset)),
            }),
            writeback_from: AtomicU64::new(0),
            largest_timestamp: AtomicI64::new(UNKNOWN_TIMESTAMP),
        })
    }

    /// Open an existing segment without reading its index yet.
    pub(crate) fn open(dir: &Path, base_offset: i64, index_interval: u64) -> Result<Self> {
        let name = file_name(base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(&name))
            .context(|| format!("open segment {name}"))?;
        let size = file
            .metadata()
            .context(|| format!("stat segment {name}"))?
            .len();
        Ok(Segment {
            base_offset,
            dir: dir.to_owned(),
            file,
            index_interval,
            state: RwLock::new(SegmentState { size, index: None }),
            writeback_from: AtomicU64::new(size),
            largest_timestamp: AtomicI64::new(UNKNOWN_TIMESTAMP),
        })
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    fn name(&self, suffix: &str) -> String {
        file_name(self.base_offset, suffix)
    }

    fn read_state(&self) -> RwLockReadGuard<'_, SegmentState> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, SegmentState> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Committed size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.read_state().size
    }

    /// Run `f` on the loaded index, loading it first if needed.
    fn with_index<R>(&self, f: impl FnOnce(u64, &SegmentIndex) -> R) -> Result<R> {
        {
            let state = self.read_state();
            if let Some(index) = &state.index {
                return Ok(f(state.size, index));
            }
        }
        let mut state = self.write_state();
        if state.index.is_none() {
            self.load_locked(&mut state, false)?;
        }
        let index = state.index.as_ref().expect("loaded just above");
        Ok(f(state.size, index))
    }

    /// Offset after the last batch.
    pub(crate) fn next_offset(&self) -> Result<i64> {
        self.with_index(|_, index| index.next_offset)
    }

    /// Largest timestamp in the segment (-1 if none).
    pub(crate) fn max_timestamp(&self) -> Result<i64> {
        self.with_index(|_, index| index.max_timestamp)
    }

    /// The largest record timestamp for retention, or the file's
    /// modification time when no record has one (Kafka's
    /// `LogSegment.largestTimestamp`). Cheap for a closed segment never
    /// read since the log opened: its index stays unloaded, the value comes
    /// from the last entry of its time index file (written when it was
    /// sealed) and is remembered.
    pub(crate) fn largest_timestamp(&self) -> Result<i64> {
        let loaded = self.read_state().index.as_ref().map(|i| i.max_timestamp);
        let max = match loaded {
            Some(max) => max,
            None => match self.largest_timestamp.load(Ordering::Acquire) {
                UNKNOWN_TIMESTAMP => {
                    let max = match self.last_time_index_entry()? {
                        Some(max) => max,
                        None => self.max_timestamp()?,
                    };
                    self.largest_timestamp.store(max, Ordering::Release);
                    max
                }
                max => max,
            },
        };
        if max >= 0 {
            return Ok(max);
        }
        let modified = self
            .file
            .metadata()
            .and_then(|m| m.modified())
            .context(|| format!("stat segment {}", self.name(LOG_SUFFIX)))?;
        Ok(modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// The timestamp of the last entry of the time index file; `None` when
    /// the file is missing, empty, not a whole number of entries, or its
    /// last two entries are out of order or zeros (a file whose data never
    /// reached the disk), which the caller answers by loading the index.
    fn last_time_index_entry(&self) -> Result<Option<i64>> {
        let name = self.name(TIME_INDEX_SUFFIX);
        let file = match File::open(self.dir.join(&name)) {
            Ok(f) => f,
            Err(e) if e.kind() == IoErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context(|| format!("open index {name}")),
        };
        let len = file
            .metadata()
            .context(|| format!("stat index {name}"))?
            .len();
        let entry = time_index::ENTRY_LEN as u64;
        if len == 0 || len % entry != 0 {
            return Ok(None);
        }
        let tail = len.min(2 * entry);
        let mut buf = vec![0u8; tail as usize];
        file.read_exact_at(&mut buf, len - tail)
            .context(|| format!("read index {name}"))?;
        Ok(match TimeIndex::decode(&buf).and_then(|t| t.last()) {
            Some((0, 0)) | None => None,
            Some((timestamp, _)) => Some(timestamp),
        })
    }

    /// Whether either index has reached `max_entries`.
    pub(crate) fn index_full(
        &self,
        max_offset_entries: usize,
        max_time_entries: usize,
    ) -> Result<bool> {
        self.with_index(|_, index| {
            index.offsets.len() >= max_offset_entries || index.times.len() >= max_time_entries
        })
    }

    /// Heap bytes used by the loaded indexes (0 if not loaded).
    pub(crate) fn index_heap_bytes(&self) -> usize {
        self.read_state()
            .index
            .as_ref()
            .map_or(0, SegmentIndex::heap_bytes)
    }

    /// Load the index from its files (rebuilding it if they fail the sanity
    /// check) and validate the unindexed tail. With `repair`, an invalid
    /// tail is truncated from the file; otherwise it is only hidden.
    /// Returns the number of bytes cut.
    pub(crate) fn load(&self, repair: bool) -> Result<u64> {
        let mut state = self.write_state();
        self.load_locked(&mut state, repair)
    }

    fn load_locked(&self, state: &mut SegmentState, repair: bool) -> Result<u64> {
        let file_len = state.size;
        let offsets = self
            .read_index_file(INDEX_SUFFIX)?
            .and_then(|bytes| OffsetIndex::decode(&bytes, file_len));
        let times = self
            .read_index_file(TIME_INDEX_SUFFIX)?
            .and_then(|bytes| TimeIndex::decode(&bytes));
        let resumed = match (offsets, times) {
            (Some(offsets), Some(times)) => self.resume(offsets, times, file_len)?,
            _ => None,
        };
        let (index, outcome) = match resumed {
            Some(resumed) => resumed,
            None => {
                tracing::info!(segment = %self.name(LOG_SUFFIX), "rebuilding segment index");
                self.rebuild(file_len, &mut |_| {})?
            }
        };
        self.finish_load(state, index, outcome, repair)
    }

    /// Full recovery: rebuild the index from a CRC-checked scan of the whole
    /// file and truncate anything invalid. Returns the number of bytes cut.
    pub(crate) fn recover(&self, observer: &mut dyn FnMut(&HeaderSummary)) -> Result<u64> {
        let mut state = self.write_state();
        let file_len = self
            .file
            .metadata()
            .context(|| format!("stat segment {}", self.name(LOG_SUFFIX)))?
            .len();
        let (index, outcome) = self.rebuild(file_len, observer)?;
        state.size = file_len;
        self.finish_load(&mut state, index, outcome, true)
    }

    fn finish_load(
        &self,
        state: &mut SegmentState,
        index: SegmentIndex,
        outcome: ScanOutcome,
        repair: bool,
    ) -> Result<u64> {
        let cut = state.size - outcome.valid_end;
        if let Some(reason) = &outcome.invalid {
            tracing::warn!(
                segment = %self.name(LOG_SUFFIX),
                valid_bytes = outcome.valid_end,
                cut_bytes = cut,
                reason = %reason,
                "invalid data at segment tail"
            );
        }
        if cut > 0 && repair {
            self.file
                .set_len(outcome.valid_end)
                .context(|| format!("truncate segment {}", self.name(LOG_SUFFIX)))?;
        }
        state.size = outcome.valid_end;
        state.index = Some(index);
        Ok(cut)
    }

    fn rebuild(
        &self,
        file_len: u64,
        observer: &mut dyn FnMut(&HeaderSummary),
    ) -> Result<(SegmentIndex, ScanOutcome)> {
        let mut index = SegmentIndex::empty(self.base_offset);
        let outcome = scan(
            &self.file,
            file_len,
            0,
            self.base_offset,
            &mut index,
            self.index_interval,
            observer,
        )
        .context(|| format!("scan segment {}", self.name(LOG_SUFFIX)))?;
        Ok((index, outcome))
    }

    /// Continue from the last indexed batch, verifying that it starts at the
    /// indexed offset. `None` if the index does not match the log.
    fn resume(
        &self,
        offsets: OffsetIndex,
        mut times: TimeIndex,
        file_len: u64,
    ) -> Result<Option<(SegmentIndex, ScanOutcome)>> {
        let (start, start_offset) = match offsets.last() {
            Some((rel, pos)) => (u64::from(pos), self.base_offset + i64::from(rel)),
            None => (0, self.base_offset),
        };
        if start > 0 {
            match self.header_at(start, file_len)? {
                Some(summary) if summary.base_offset == start_offset => {}
                _ => return Ok(None),
            }
        }
        // Time entries must point below the start of the scanned tail or be
        // re-derived by it; drop those at or after it.
        times.truncate_to_offset(relative(self.base_offset, start_offset));
        let (max_timestamp, offset_of_max_timestamp) = match times.last() {
            Some((ts, rel)) => (ts, self.base_offset + i64::from(rel)),
            None => (NO_TIMESTAMP, -1),
        };
        let mut index = SegmentIndex {
            offsets,
            times,
            next_offset: start_offset,
            max_timestamp,
            offset_of_max_timestamp,
            bytes_since_index: 0,
        };
        let outcome = scan(
            &self.file,
            file_len,
            start,
            self.base_offset,
            &mut index,
            self.index_interval,
            &mut |_| {},
        )
        .context(|| format!("scan segment {}", self.name(LOG_SUFFIX)))?;
        Ok(Some((index, outcome)))
    }

    fn read_index_file(&self, suffix: &str) -> Result<Option<Vec<u8>>> {
        match fs::read(self.dir.join(self.name(suffix))) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == IoErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context(|| format!("read index {}", self.name(suffix))),
        }
    }

    /// Header of the batch at `position`, `None` if it is not a valid header.
    fn header_at(&self, position: u64, size: u64) -> Result<Option<HeaderSummary>> {
        if position + HEADER_LEN as u64 > size {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_LEN];
        match self.file.read_exact_at(&mut buf, position) {
            Ok(()) => Ok(summarize(&buf).ok()),
            Err(e) if e.kind() == IoErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e).context(|| format!("read segment {}", self.name(LOG_SUFFIX))),
        }
    }

    /// Append validated batches stored contiguously in `bytes` (writer only).
    pub(crate) fn append(
        &self,
        bytes: &[u8],
        headers: Option<&[[u8; HEADER_LEN]]>,
        batches: &[HeaderSummary],
    ) -> Result<()> {
        let position = self.read_state().size;
        match headers {
            None => self.file.write_all_at(bytes, position),
            Some(headers) => write_with_headers_at(&self.file, bytes, headers, batches, position),
        }
        .context(|| format!("append to segment {}", self.name(LOG_SUFFIX)))?;
        let mut state = self.write_state();
        let index = state
            .index
            .as_mut()
            .expect("the active segment's index is loaded");
        let mut at = position;
        for batch in batches {
            index.on_batch(self.base_offset, at, batch, self.index_interval);
            at += batch.size as u64;
        }
        debug_assert_eq!(at, position + bytes.len() as u64);
        state.size = at;
        drop(state);
        self.start_writeback(at);
        Ok(())
    }

    /// Hands every [`writeback::CHUNK`] appended to background writeback
    /// (see [`crate::writeback`]).
    fn start_writeback(&self, end: u64) {
        let from = self.writeback_from.load(Ordering::Relaxed);
        if end.saturating_sub(from) < writeback::CHUNK {
            return;
        }
        self.writeback_from.store(end, Ordering::Relaxed);
        writeback::start(&self.file, from, end);
    }

    /// Position and header of the first batch whose last offset is ≥
    /// `offset`, `None` if there is none in this segment.
    pub(crate) fn translate(&self, offset: i64) -> Result<Option<(u64, HeaderSummary)>> {
        for attempt in 0..2 {
            let (hint_offset, hint_pos, size) = self.with_index(|size, index| {
                let rel = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
                match index.offsets.lookup(rel) {
                    Some((o, p)) => (self.base_offset + i64::from(o), u64::from(p), size),
                    None => (self.base_offset, 0, size),
                }
            })?;
            let expect = (hint_pos > 0).then_some(hint_offset);
            match self.locate(offset, hint_pos, size, expect)? {
                Located::Found(pos, summary) => return Ok(Some((pos, summary))),
                Located::NotHere => return Ok(None),
                Located::StaleIndex if attempt == 0 => {
                    tracing::warn!(segment = %self.name(LOG_SUFFIX), "offset index does not match log, rebuilding");
                    let mut state = self.write_state();
                    let (index, outcome) = self.rebuild(state.size, &mut |_| {})?;
                    self.finish_load(&mut state, index, outcome, false)?;
                }
                Located::StaleIndex => break,
            }
        }
        Err(LogError::Io {
            context: format!(
                "locate offset {offset} in segment {}",
                self.name(LOG_SUFFIX)
            ),
            source: std::io::Error::new(IoErrorKind::InvalidData, "index does not match log"),
        })
    }

    fn locate(&self, offset: i64, start: u64, size: u64, expect: Option<i64>) -> Result<Located> {
        // The target is normally within one index interval of `start`.
        let chunk = (self.index_interval as usize)
            .saturating_add(2 * HEADER_LEN)
            .min(1 << 20);
        let mut buf = Vec::new();
        let mut buf_start = start;
        let mut pos = start;
        let mut first = true;
        while pos + HEADER_LEN as u64 <= size {
            if pos + HEADER_LEN as u64 > buf_start + buf.len() as u64 {
                let len = (chunk as u64).min(size - pos) as usize;
                buf.resize(len, 0);
                match self.file.read_exact_at(&mut buf, pos) {
                    Ok(()) => {}
                    // A concurrent truncation shrank the file.
                    Err(e) if e.kind() == IoErrorKind::UnexpectedEof => {
                        return Ok(Located::NotHere);
                    }
                    Err(e) => {
                        return Err(e)
                            .context(|| format!("read segment {}", self.name(LOG_SUFFIX)));
                    }
                }
                buf_start = pos;
            }
            let summary = match summarize(&buf[(pos - buf_start) as usize..]) {
                Ok(summary) => summary,
                Err(_) if first && expect.is_some() => return Ok(Located::StaleIndex),
                Err(e) => {
                    return Err(LogError::Io {
                        context: format!("read segment {} at {pos}", self.name(LOG_SUFFIX)),
                        source: std::io::Error::new(IoErrorKind::InvalidData, e.to_string()),
                    });
                }
            };
            if first && expect.is_some_and(|o| o != summary.base_offset) {
                return Ok(Located::StaleIndex);
            }
            first = false;
            if summary.last_offset >= offset {
                return Ok(Located::Found(pos, summary));
            }
            pos += summary.size as u64;
        }
        Ok(Located::NotHere)
    }

    /// Whole batches starting with the one that contains `offset`: at least
    /// one batch, then more while they fit in `max_bytes` and start below
    /// `max_offset`. `None` if no batch in this segment reaches `offset`.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<Option<Bytes>> {
        if let Some(bytes) = self.read_fast(offset, max_bytes, max_offset)? {
            return Ok(Some(bytes));
        }
        let Some((pos, first)) = self.translate(offset)? else {
            return Ok(None);
        };
        if first.base_offset >= max_offset {
            return Ok(Some(Bytes::new()));
        }
        let size = self.size();
        let want = (max_bytes.max(first.size) as u64).min(size.saturating_sub(pos)) as usize;
        let mut buf = BytesMut::zeroed(want);
        match self.file.read_exact_at(&mut buf, pos) {
            Ok(()) => {}
            Err(e) if e.kind() == IoErrorKind::UnexpectedEof => return Ok(Some(Bytes::new())),
            Err(e) => return Err(e).context(|| format!("read segment {}", self.name(LOG_SUFFIX))),
        }
        // Keep whole batches below max_offset.
        let mut end = 0;
        while end + HEADER_LEN <= buf.len() {
            match summarize(&buf[end..]) {
                Ok(s) if end + s.size <= buf.len() && s.base_offset < max_offset => end += s.size,
                _ => break,
            }
        }
        buf.truncate(end);
        Ok(Some(buf.freeze()))
    }

    /// One `pread` from the index position covering the header scan and the
    /// data. `None` when the slow path must decide (stale index, batch
    /// larger than the buffer, offset not in the buffer).
    fn read_fast(&self, offset: i64, max_bytes: usize, max_offset: i64) -> Result<Option<Bytes>> {
        let (hint_offset, hint_pos, size) = self.with_index(|size, index| {
            let rel = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
            match index.offsets.lookup(rel) {
                Some((o, p)) => (self.base_offset + i64::from(o), u64::from(p), size),
                None => (self.base_offset, 0, size),
            }
        })?;
        if hint_pos >= size {
            return Ok(None);
        }
        let want = (self.index_interval as usize)
            .saturating_add(2 * HEADER_LEN)
            .saturating_add(max_bytes)
            .min((size - hint_pos) as usize);
        let mut buf = BytesMut::zeroed(want);
        match self.file.read_exact_at(&mut buf, hint_pos) {
            Ok(()) => {}
            Err(e) if e.kind() == IoErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e).context(|| format!("read segment {}", self.name(LOG_SUFFIX))),
        }
        let mut start = 0;
        let first = loop {
            if start + HEADER_LEN > buf.len() {
                return Ok(None);
            }
            let Ok(summary) = summarize(&buf[start..]) else {
                return Ok(None);
            };
            if start == 0 && hint_pos > 0 && summary.base_offset != hint_offset {
                return Ok(None);
            }
            if summary.last_offset >= offset {
                break summary;
            }
            start += summary.size;
        };
        if first.base_offset >= max_offset {
            return Ok(Some(Bytes::new()));
        }
        if start + first.size > buf.len() {
            return Ok(None);
        }
        let limit = max_bytes.max(first.size);
        let mut end = start;
        while end + HEADER_LEN <= buf.len() {
            match summarize(&buf[end..]) {
                Ok(s)
                    if end + s.size <= buf.len()
                        && end + s.size - start <= limit
                        && s.base_offset < max_offset =>
                {
                    end += s.size;
                }
                _ => break,
            }
        }
        Ok(Some(buf.freeze().slice(start..end)))
    }

    /// Offset and timestamp of the first record with timestamp ≥ `timestamp`.
    /// Records below `min_offset` (the log start) are skipped.
    pub(crate) fn find_timestamp(
        &self,
        timestamp: i64,
        min_offset: i64,
    ) -> Result<Option<(i64, i64)>> {
        let (max_ts, start_offset) = self.with_index(|_, index| {
            let start = index
                .times
                .lookup_below(timestamp)
                .map_or(self.base_offset, |(_, rel)| {
                    self.base_offset + i64::from(rel)
                });
            (index.max_timestamp, start.max(min_offset))
        })?;
        if max_ts < timestamp {
            return Ok(None);
        }
        let Some((mut pos, _)) = self.translate(start_offset)? else {
            return Ok(None);
        };
        let size = self.size();
        while let Some(summary) = self.header_at(pos, size)? {
            if summary.max_timestamp >= timestamp {
                let mut buf = BytesMut::zeroed(summary.size);
                self.file
                    .read_exact_at(&mut buf, pos)
                    .context(|| format!("read segment {}", self.name(LOG_SUFFIX)))?;
                let batch = RecordBatch::from_bytes(buf.freeze())?;
                if let Some(record) = batch
                    .records()?
                    .into_iter()
                    .find(|r| r.timestamp >= timestamp && r.offset >= min_offset)
                {
                    return Ok(Some((record.offset, record.timestamp)));
                }
            }
            pos += summary.size as u64;
        }
        Ok(None)
    }

    /// Remove the batch containing `offset` and everything after it.
    pub(crate) fn truncate_to(&self, offset: i64) -> Result<()> {
        let Some((pos, removed)) = self.translate(offset)? else {
            return Ok(());
        };
        let mut state = self.write_state();
        self.file
            .set_len(pos)
            .context(|| format!("truncate segment {}", self.name(LOG_SUFFIX)))?;
        state.size = pos;
        let mut index = state
            .index
            .take()
            .unwrap_or_else(|| SegmentIndex::empty(self.base_offset));
        index.offsets.truncate_to_position(pos as u32);
        index
            .times
            .truncate_to_offset(relative(self.base_offset, removed.base_offset));
        let (index, outcome) = match self.resume(index.offsets, index.times, pos)? {
            Some(resumed) => resumed,
            None => self.rebuild(pos, &mut |_| {})?,
        };
        self.finish_load(&mut state, index, outcome, true)?;
        drop(state);
        self.write_index_files(false)
    }

    /// Called when the segment stops being active: record the final max
    /// timestamp in the time index and write both index files.
    pub(crate) fn seal(&self) -> Result<()> {
        {
            let mut state = self.write_state();
            if let Some(index) = state.index.as_mut() {
                index.push_time_entry(self.base_offset);
            }
        }
        self.write_index_files(false)
    }

    /// Write the in-memory indexes to their files, optionally fsyncing them.
    pub(crate) fn write_index_files(&self, sync: bool) -> Result<()> {
        let (offsets, times) = {
            let state = self.read_state();
            let Some(index) = &state.index else {
                return Ok(());
            };
            (index.offsets.encode(), index.times.encode())
        };
        for (suffix, bytes) in [(INDEX_SUFFIX, offsets), (TIME_INDEX_SUFFIX, times)] {
            let name = self.name(suffix);
            let write = || -> std::io::Result<()> {
                let file = File::create(self.dir.join(&name))?;
                file.write_all_at(&bytes, 0)?;
                if sync {
                    file.sync_all()?;
                }
                Ok(())
            };
            write().context(|| format!("write index {name}"))?;
        }
        Ok(())
    }

    /// fdatasync the log file.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .context(|| format!("fsync segment {}", self.name(LOG_SUFFIX)))
    }

    /// Rename the segment's files to `<name>.deleted`, the first step of
    /// deleting it (retention): a rename is quick, the unlink of a large
    /// file may not be, so [`remove_deleted_files`](Self::remove_deleted_files)
    /// runs later, without the log's writer. Readers holding the segment
    /// keep reading through their open handle.
    pub(crate) fn rename_deleted(&self) -> Result<()> {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let name = self.name(suffix);
            match fs::rename(
                self.dir.join(&name),
                self.dir.join(format!("{name}{DELETED_SUFFIX}")),
            ) {
                Ok(()) => {}
                Err(e) if e.kind() == IoErrorKind::NotFound => {}
                Err(e) => return Err(e).context(|| format!("rename deleted segment file {name}")),
            }
        }
        Ok(())
    }

    /// Remove the files [`rename_deleted`](Self::rename_deleted) renamed.
    pub(crate) fn remove_deleted_files(&self) -> Result<()> {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let name = format!("{}{DELETED_SUFFIX}", self.name(suffix));
            remove_if_exists(&self.dir.join(name))?;
        }
        Ok(())
    }

    /// Delete the segment's files. Readers holding the segment keep reading
    /// the unlinked file.
    pub(crate) fn delete_files(&self) -> Result<()> {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&self.dir.join(self.name(suffix)))?;
        }
        Ok(())
    }
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == IoErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context(|| format!("delete {}", path.display())),
    }
}

/// Batches written by one `pwritev` (two buffers each; Linux's `IOV_MAX` is
/// 1024).
const BATCHES_PER_WRITE: usize = 512;

/// Write the batches in `bytes` at `position`, each with its first
/// [`HEADER_LEN`] bytes taken from `headers` instead: the records are handed
/// to the kernel where they lie, without being copied next to the patched
/// header first.
fn write_with_headers_at(
    file: &File,
    bytes: &[u8],
    headers: &[[u8; HEADER_LEN]],
    batches: &[HeaderSummary],
    mut position: u64,
) -> std::io::Result<()> {
    debug_assert_eq!(headers.len(), batches.len());
    let mut start = 0;
    for (headers, batches) in headers
        .chunks(BATCHES_PER_WRITE)
        .zip(batches.chunks(BATCHES_PER_WRITE))
    {
        let mut buffers = Vec::with_capacity(2 * headers.len());
        for (header, batch) in headers.iter().zip(batches) {
            buffers.push(IoSlice::new(header));
            buffers.push(IoSlice::new(&bytes[start + HEADER_LEN..start + batch.size]));
            start += batch.size;
        }
        let mut buffers = &mut buffers[..];
        while !buffers.is_empty() {
            let offset = i64::try_from(position)
                .map_err(|_| std::io::Error::new(IoErrorKind::InvalidInput, "offset overflow"))?;
            match nix::sys::uio::pwritev(file, buffers, offset) {
                Ok(0) => return Err(IoErrorKind::WriteZero.into()),
                Ok(n) => {
                    position += n as u64;
                    IoSlice::advance_slices(&mut buffers, n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
    }
    debug_assert_eq!(start, bytes.len());
    Ok(())
}

#[cfg(test)]
mod tests;
