//! fsync policy: group commit (`flush_until`) and `flush.messages` /
//! `flush.ms` (`flush_if_due`). The flushed offset is the recovery point.

use std::sync::atomic::Ordering;

use super::shared::lock;
use super::{LogReader, PartitionLog};
use crate::error::{LogError, Result};

impl LogReader {
    /// Apply `flush.messages` / `flush.ms`: fsync if either is exceeded.
    /// Safe to call while the writer appends. Blocking; call it from
    /// `spawn_blocking`.
    pub fn flush_if_due(&self) -> Result<()> {
        let config = self.shared.config();
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

    pub(super) fn maybe_flush_by_policy(&self) -> Result<()> {
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
}
