//! The read side of [`LogReader`]: offsets, reads, ListOffsets,
//! OffsetsForLeaderEpoch, segment facts. Reads take the segment-list lock
//! only to pick segments and never wait for the writer's disk I/O.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::shared::lock;
use super::{FetchData, LogReader, OffsetAndTimestamp, OffsetSpec, SegmentInfo};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::txn_index::AbortedTxn;

impl LogReader {
    /// The log's configuration in force.
    pub fn config(&self) -> Arc<LogConfig> {
        self.shared.config()
    }

    /// Replaces the log's configuration while it is open (a topic config
    /// changed live): checked first, then swapped whole, so every operation
    /// sees either the old or the new one. It applies from the next append,
    /// roll or flush check; segments already written stay as they are.
    pub fn set_config(&self, config: LogConfig) -> Result<()> {
        config.validate()?;
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(config);
        Ok(())
    }

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

    /// The last stable offset: the smaller of the high watermark and the
    /// first offset of the earliest open transaction. `read_committed`
    /// fetches return records below it only.
    pub fn last_stable_offset(&self) -> i64 {
        self.high_watermark()
            .min(self.shared.first_unstable_offset.load(Ordering::Acquire))
    }

    /// How many producer ids the log's idempotence state tracks (as of
    /// the writer's last change).
    pub fn producer_count(&self) -> u64 {
        self.shared.producer_count.load(Ordering::Relaxed)
    }

    /// The first offset of the earliest open transaction, if any.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        match self.shared.first_unstable_offset.load(Ordering::Acquire) {
            i64::MAX => None,
            offset => Some(offset),
        }
    }

    /// The aborted transactions a `read_committed` fetch of
    /// `[fetch_offset, upper)` returns with its records: those whose ABORT
    /// marker is at or after `fetch_offset` and that began below `upper`.
    /// The client drops their producers' records from each one's first
    /// offset until its marker.
    pub fn aborted_transactions(&self, fetch_offset: i64, upper: i64) -> Vec<AbortedTxn> {
        self.shared.aborted().collect(fetch_offset, upper)
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

    /// A `read_committed` fetch: [`read_bounded`](Self::read_bounded) up to
    /// the last stable offset, with the aborted transactions that overlap
    /// what it may return (the client drops their records and every
    /// control batch). The LSO is read first, so the records and the list
    /// agree.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(FetchData, Vec<AbortedTxn>)> {
        let lso = self.last_stable_offset();
        let data = self.read_bounded(offset, max_bytes, lso)?;
        let aborted = if data.records.is_empty() {
            Vec::new()
        } else {
            self.aborted_transactions(offset, lso)
        };
        Ok((data, aborted))
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
                    records = super::compact::trim_leading_empty_batch(bytes, offset);
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
    /// writer. Persisted by
    /// [`PartitionLog::checkpoint`](super::PartitionLog::checkpoint),
    /// truncation and close.
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
    /// [`PartitionLog::checkpoint`](super::PartitionLog::checkpoint)); safe
    /// to call while the writer appends. Blocking (fsync); call it from
    /// `spawn_blocking`.
    pub fn checkpoint(&self) -> Result<()> {
        self.shared.write_checkpoint()
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
