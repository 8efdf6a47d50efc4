//! State shared by the writer ([`PartitionLog`](super::PartitionLog)) and
//! every [`LogReader`](super::LogReader): the segment map, the published
//! offsets, the epoch cache and the flush state, plus checkpoint writing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::checkpoint::{
    LEADER_EPOCH_FILE, LeaderEpochCache, PARTITION_CHECKPOINT_FILE, PartitionCheckpoint,
    write_atomic,
};
use crate::clock::Clock;
use crate::config::LogConfig;
use crate::error::Result;
use crate::segment::Segment;
use crate::txn_index::TxnIndex;

/// Group-commit state, under [`Shared::flush`].
#[derive(Debug)]
pub(super) struct FlushState {
    /// Everything below was fsynced (the recovery point).
    pub(super) flushed_offset: i64,
    pub(super) in_progress: bool,
    /// Bumped by truncation so an fsync racing with it does not claim
    /// offsets that were rewritten.
    pub(super) generation: u64,
    pub(super) last_flush_ms: i64,
}

/// Everything the writer and the readers share, behind one `Arc`.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) dir: PathBuf,
    /// Replaced whole by [`LogReader::set_config`](super::LogReader::set_config);
    /// each operation reads one snapshot.
    pub(super) config: RwLock<Arc<LogConfig>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) segments: RwLock<BTreeMap<i64, Arc<Segment>>>,
    pub(super) log_start_offset: AtomicI64,
    pub(super) log_end_offset: AtomicI64,
    pub(super) high_watermark: AtomicI64,
    /// The cleaner checkpoint: everything below was cleaned.
    pub(super) first_dirty: AtomicI64,
    /// The earliest delete horizon of a tombstone kept below `first_dirty`
    /// (-1: none). Possibly too early (retention or truncation removed the
    /// tombstone since), never too late: a pass at that time relearns it.
    pub(super) delete_horizon: AtomicI64,
    /// Wall-clock creation (or open) time of the active segment, the base
    /// of `segment.ms`.
    pub(super) active_since_ms: AtomicI64,
    pub(super) epochs: Mutex<LeaderEpochCache>,
    pub(super) flush: Mutex<FlushState>,
    pub(super) flush_done: Condvar,
    /// A segment file was created since the directory was last fsynced.
    pub(super) dir_dirty: AtomicBool,
    /// Serialises checkpoint-file writes (the writer and a background
    /// checkpoint through a [`LogReader`] share one temporary file), and
    /// remembers the last one written, so an unchanged checkpoint is not
    /// written (and fsynced) again.
    pub(super) checkpoint_write: Mutex<Option<PartitionCheckpoint>>,
    /// First offset of the earliest open transaction (`i64::MAX`: none),
    /// published by the writer after every change of the producer state.
    pub(super) first_unstable_offset: AtomicI64,
    /// Producer ids the producer state tracks, published with
    /// `first_unstable_offset` (for metrics).
    pub(super) producer_count: AtomicU64,
    /// The aborted transactions (`log/producers.rs` keeps it).
    pub(super) aborted: RwLock<TxnIndex>,
}

/// Lock `mutex`, going on after a panic elsewhere poisoned it: every
/// critical section leaves the state consistent.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// The configuration in force.
    pub(super) fn config(&self) -> Arc<LogConfig> {
        self.config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(super) fn segments(&self) -> RwLockReadGuard<'_, BTreeMap<i64, Arc<Segment>>> {
        self.segments
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn segments_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<i64, Arc<Segment>>> {
        self.segments
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The segment that may hold `offset` and the ones after it, up to `n`.
    pub(super) fn segments_from(&self, offset: i64, n: usize) -> Vec<Arc<Segment>> {
        let segments = self.segments();
        let floor = segments.range(..=offset).next_back().map(|(&base, _)| base);
        let start = floor.unwrap_or(i64::MIN);
        segments
            .range(start..)
            .take(n)
            .map(|(_, s)| Arc::clone(s))
            .collect()
    }

    pub(super) fn all_segments(&self) -> Vec<Arc<Segment>> {
        self.segments().values().cloned().collect()
    }

    pub(super) fn write_checkpoint(&self) -> Result<()> {
        // The values are read under the lock, so the last file written
        // holds the newest of them.
        let mut written = lock(&self.checkpoint_write);
        let checkpoint = PartitionCheckpoint {
            high_watermark: self.high_watermark.load(Ordering::Acquire),
            recovery_point: lock(&self.flush).flushed_offset,
            log_start_offset: self.log_start_offset.load(Ordering::Acquire),
        };
        if *written == Some(checkpoint) {
            return Ok(());
        }
        write_atomic(&self.dir, PARTITION_CHECKPOINT_FILE, checkpoint.encode())?;
        *written = Some(checkpoint);
        Ok(())
    }

    pub(super) fn aborted(&self) -> RwLockReadGuard<'_, TxnIndex> {
        self.aborted
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn aborted_mut(&self) -> RwLockWriteGuard<'_, TxnIndex> {
        self.aborted
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn write_epochs(&self) -> Result<()> {
        let text = lock(&self.epochs).encode();
        write_atomic(&self.dir, LEADER_EPOCH_FILE, &text)
    }
}
