//! fsync policy: group commit (`flush_until`) and `flush.messages` /
//! `flush.ms` (`flush_due`, `flush_if_due`). The flushed offset is the
//! recovery point.
//!
//! Appends never fsync: the caller asks [`LogReader::flush_due`] after an
//! append and runs the flush off its async workers (the broker's
//! flusher), where one fsync covers every batch appended since the last.

use std::sync::atomic::Ordering;

use super::shared::lock;
use super::{LogReader, PartitionLog};
use crate::error::{LogError, Result};

impl LogReader {
    /// Whether `flush.messages` or `flush.ms` asks for an fsync now: more
    /// unflushed records than the one, or the last flush older than the
    /// other. No I/O.
    pub fn flush_due(&self) -> bool {
        let config = self.shared.config();
        if config.flush_messages.is_none() && config.flush_ms.is_none() {
            return false;
        }
        let (flushed, last_ms) = {
            let state = lock(&self.shared.flush);
            (state.flushed_offset, state.last_flush_ms)
        };
        let unflushed = self.log_end_offset() - flushed;
        if unflushed <= 0 {
            return false;
        }
        let by_count = config.flush_messages.is_some_and(|n| unflushed as u64 >= n);
        let now = self.shared.clock.now_ms();
        let by_time = config
            .flush_ms
            .is_some_and(|ms| now.saturating_sub(last_ms) >= ms as i64);
        by_count || by_time
    }

    /// Apply `flush.messages` / `flush.ms`: fsync if either is exceeded.
    /// Safe to call while the writer appends. Blocking; call it from
    /// `spawn_blocking`.
    pub fn flush_if_due(&self) -> Result<()> {
        if self.flush_due() {
            self.flush_until(self.log_end_offset())?;
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
}

impl PartitionLog {
    /// See [`LogReader::flush_until`].
    pub fn flush_until(&self, offset: i64) -> Result<()> {
        self.reader.flush_until(offset)
    }

    /// fsync everything appended so far.
    pub fn flush(&self) -> Result<()> {
        self.reader.flush_until(self.log_end_offset())
    }

    /// See [`LogReader::flush_due`].
    pub fn flush_due(&self) -> bool {
        self.reader.flush_due()
    }

    /// Apply `flush.messages` / `flush.ms`: fsync if either is exceeded.
    /// The appender calls it (off its async workers) after an append that
    /// made [`flush_due`](Self::flush_due) true; a scheduler does too, for
    /// `flush.ms` on idle logs.
    pub fn flush_if_due(&self) -> Result<()> {
        self.reader.flush_if_due()
    }
}
