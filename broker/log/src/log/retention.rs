//! Removing records from the start: the log start offset moves up
//! (retention, `DeleteRecords`, a follower taking its leader's), then the
//! segments wholly below it go. The decisions are pure
//! ([`crate::retention`]); this file executes them.
//!
//! Deleting is crash-safe in three steps, each leaving a state recovery
//! turns into the same log:
//! 1. the new log start offset is written to `partition.checkpoint`
//!    (fsynced) while every file is still there;
//! 2. the segments leave the segment map and their files are renamed to
//!    `<name>.deleted`, oldest first;
//! 3. the renamed files are unlinked ([`DeletedSegments::remove_files`]),
//!    which the broker runs after letting go of the writer, since the
//!    unlink of a large file can take a while.
//!
//! A crash after 1 leaves segments wholly below the checkpointed start, and
//! after 2 `.deleted` files: recovery deletes both (`recovery.rs`), so
//! whatever point the process dies at, the log reopens starting at the
//! checkpointed start or at its first remaining segment, never with a gap.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::shared::lock;
use super::{LogReader, PartitionLog};
use crate::error::Result;
use crate::retention::{self, LogFacts, RetentionDecision, RetentionLimits, SegmentFacts};
use crate::segment::Segment;

/// Segments taken out of the log whose renamed files are still on disk:
/// [`remove_files`](Self::remove_files) unlinks them (blocking I/O). Left
/// undone, the next open of the log removes them.
#[must_use = "the deleted segments' files stay on disk until remove_files runs"]
#[derive(Debug, Default)]
pub struct DeletedSegments {
    segments: Vec<Arc<Segment>>,
    bytes: u64,
}

impl DeletedSegments {
    /// How many segments were deleted.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether nothing was deleted.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Bytes of the deleted segments' `.log` files.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Unlink the renamed files. Readers still holding a segment keep
    /// reading it through their open handle.
    pub fn remove_files(self) -> Result<()> {
        for segment in &self.segments {
            segment.remove_deleted_files()?;
        }
        Ok(())
    }
}

impl LogReader {
    /// Whether `segment_ms` passed since the active segment was created
    /// (or the log opened).
    pub(super) fn segment_ms_elapsed(&self, now_ms: i64, segment_ms: u64) -> bool {
        let since = self.shared.active_since_ms.load(Ordering::Acquire);
        now_ms.saturating_sub(since) >= i64::try_from(segment_ms).unwrap_or(i64::MAX)
    }

    /// Whether [`PartitionLog::roll_if_due`] would roll: the active segment
    /// holds data and is older than `segment.ms`.
    pub fn roll_due(&self) -> bool {
        let active_size = self
            .shared
            .segments()
            .values()
            .next_back()
            .map_or(0, |s| s.size());
        active_size > 0
            && self.segment_ms_elapsed(self.shared.clock.now_ms(), self.shared.config().roll_ms())
    }

    /// What retention under `limits` would delete now, if anything (see
    /// [`retention::decide`]). Safe to call while the writer appends, and
    /// cheap: no index is loaded for it; a closed segment's largest
    /// timestamp is read once from its time index file. Blocking (that
    /// read); call it off the async workers.
    pub fn retention_decision(&self, limits: RetentionLimits) -> Result<Option<RetentionDecision>> {
        let segments = self.shared.all_segments();
        let last = segments.len().saturating_sub(1);
        let facts = segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // Only closed segments are judged by time.
                let largest_timestamp = if limits.retention_ms.is_some() && i < last {
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
        Ok(retention::decide(
            LogFacts {
                segments: &facts,
                log_start_offset: self.log_start_offset(),
                high_watermark: self.high_watermark(),
            },
            limits,
            self.shared.clock.now_ms(),
        ))
    }
}

impl PartitionLog {
    /// Move the log start offset up to `offset`, capped at the high
    /// watermark: records below it are no longer readable. In memory only
    /// (cheap enough for a follower's fetch path); it reaches the disk with
    /// the next checkpoint, and always before a segment below it is deleted
    /// ([`delete_segments_below_start`](Self::delete_segments_below_start)).
    /// Returns whether the start moved.
    pub fn increment_log_start(&mut self, offset: i64) -> bool {
        let shared = &self.reader.shared;
        let target = offset.min(self.high_watermark()).min(self.log_end_offset());
        if target <= self.log_start_offset() {
            return false;
        }
        shared.log_start_offset.store(target, Ordering::Release);
        lock(&shared.epochs).truncate_from_start(target);
        true
    }

    /// Delete the segments wholly below the log start offset (never the
    /// active one), crash-safely (see the module docs): the start is
    /// checkpointed, then the segments leave the log and their files are
    /// renamed. Unlinking them is left to the caller.
    pub fn delete_segments_below_start(&mut self) -> Result<DeletedSegments> {
        let shared = Arc::clone(&self.reader.shared);
        let start = self.log_start_offset();
        let doomed: Vec<i64> = {
            let segments = shared.segments();
            let bases: Vec<i64> = segments.keys().copied().collect();
            bases
                .windows(2)
                .take_while(|w| w[1] <= start)
                .map(|w| w[0])
                .collect()
        };
        if doomed.is_empty() {
            return Ok(DeletedSegments::default());
        }
        shared.write_checkpoint()?;
        let removed: Vec<Arc<Segment>> = {
            let mut segments = shared.segments_mut();
            doomed.iter().filter_map(|b| segments.remove(b)).collect()
        };
        let bytes = removed.iter().map(|s| s.size()).sum();
        for segment in &removed {
            segment.rename_deleted()?;
        }
        tracing::info!(
            dir = %shared.dir.display(),
            log_start_offset = start,
            segments = removed.len(),
            bytes,
            "deleted segments below the log start"
        );
        Ok(DeletedSegments {
            segments: removed,
            bytes,
        })
    }

    /// Retention: deletes what [`LogReader::retention_decision`] decides
    /// now under `limits` (re-decided here, under the writer), moving the
    /// log start to the first segment kept. `None` when nothing goes.
    pub fn apply_retention(
        &mut self,
        limits: RetentionLimits,
    ) -> Result<Option<(RetentionDecision, DeletedSegments)>> {
        let Some(decision) = self.reader.retention_decision(limits)? else {
            return Ok(None);
        };
        self.increment_log_start(decision.new_log_start_offset);
        let deleted = self.delete_segments_below_start()?;
        Ok(Some((decision, deleted)))
    }

    /// `DeleteRecords`: move the log start to `offset` (-1: the high
    /// watermark) and delete the segments wholly below it.
    /// `OffsetOutOfRange` beyond the high watermark
    /// ([`retention::delete_records_offset`]), and then nothing changes.
    pub fn delete_records(&mut self, offset: i64) -> Result<DeletedSegments> {
        let target = retention::delete_records_offset(
            offset,
            self.log_start_offset(),
            self.high_watermark(),
        )?;
        if self.increment_log_start(target) {
            // Persist the new start even when no segment goes.
            self.reader.shared.write_checkpoint()?;
        }
        self.delete_segments_below_start()
    }

    /// Advance the log start offset to `offset` (capped at the log end, and
    /// raising the high watermark to it if needed) and delete the segments
    /// wholly below it, files included; the active segment is never
    /// deleted. Returns the number of segments deleted. A low-level form
    /// of [`delete_records`](Self::delete_records) for tests and tools.
    pub fn delete_segments_before(&mut self, offset: i64) -> Result<usize> {
        let shared = Arc::clone(&self.reader.shared);
        let new_start = offset
            .min(self.log_end_offset())
            .max(self.log_start_offset());
        shared.high_watermark.fetch_max(new_start, Ordering::AcqRel);
        if self.increment_log_start(new_start) {
            shared.write_epochs()?;
        }
        shared.write_checkpoint()?;
        let deleted = self.delete_segments_below_start()?;
        let count = deleted.len();
        deleted.remove_files()?;
        Ok(count)
    }
}
