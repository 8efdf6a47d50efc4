//! Removing records from the end: follower truncation, and restarting empty
//! at an offset. (From the start: `retention.rs`.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::PartitionLog;
use super::shared::lock;
use crate::error::{LogError, Result};
use crate::segment::Segment;

impl PartitionLog {
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
        // What is appended from the new end on is dirty.
        if shared.first_dirty.fetch_min(log_end, Ordering::AcqRel) > log_end {
            super::compact::write_cleaner_checkpoint(&shared, log_end)?;
        }
        shared.write_checkpoint()?;
        self.rebuild_producer_state()?;
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
            shared.config().index_interval_bytes,
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
        shared
            .active_since_ms
            .store(shared.clock.now_ms(), Ordering::Release);
        shared.log_start_offset.store(offset, Ordering::Release);
        shared.log_end_offset.store(offset, Ordering::Release);
        shared.high_watermark.store(offset, Ordering::Release);
        {
            let mut flush = lock(&shared.flush);
            flush.flushed_offset = offset;
            flush.generation += 1;
        }
        lock(&shared.epochs).clear();
        shared.first_dirty.store(offset, Ordering::Release);
        shared.delete_horizon.store(-1, Ordering::Release);
        super::compact::write_cleaner_checkpoint(&shared, offset)?;
        self.delete_producer_snapshots()?;
        crate::checkpoint::sync_dir(&shared.dir).map_err(|e| LogError::Io {
            context: "fsync log directory".into(),
            source: e,
        })?;
        shared.write_epochs()?;
        shared.write_checkpoint()
    }
}
