//! Retention as data in, decision out: which of a log's oldest segments go
//! (`retention.ms`, `retention.bytes`, a log start offset moved past them),
//! and where `DeleteRecords` may move the log start. No I/O and no clock:
//! the log hands in its segments' facts and the time, and executes the
//! decision (`log/retention.rs`). Table-driven tests: `retention_test.rs`.
//!
//! The rules, as Kafka's `UnifiedLog.deleteOldSegments`:
//! * only whole segments go, oldest first, and never the active (last)
//!   one: a quiet partition's active segment is rolled by `segment.ms`
//!   first, which makes it eligible;
//! * never a segment holding an offset at or above the high watermark
//!   (its successor's base offset must be ≤ the high watermark);
//! * by time: a segment whose largest record timestamp is more than
//!   `retention.ms` before now, stopping at the first that is not;
//! * by size: the oldest segments while the whole log, less them, still
//!   exceeds `retention.bytes`;
//! * by start: a segment wholly below the log start offset (moved by
//!   `DeleteRecords` or, on a follower, by its leader).
//!
//! Each rule deletes a prefix of the segments; the decision takes the
//! longest. The new log start is the base offset of the first segment
//! kept, or the current log start if that is higher.

use crate::error::{LogError, Result};

/// What retention needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentFacts {
    /// Base offset.
    pub base_offset: i64,
    /// Size of its `.log` file.
    pub size_bytes: u64,
    /// Largest record timestamp, or the file's modification time when no
    /// record carries one (as Kafka's `LogSegment.largestTimestamp`).
    pub largest_timestamp: i64,
}

/// The limits that apply to a log: `None` is unlimited (Kafka's -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionLimits {
    /// `retention.ms`.
    pub retention_ms: Option<u64>,
    /// `retention.bytes`.
    pub retention_bytes: Option<u64>,
}

/// The log whose segments are judged.
#[derive(Debug, Clone, Copy)]
pub struct LogFacts<'a> {
    /// Every segment, oldest first; the last is the active one.
    pub segments: &'a [SegmentFacts],
    /// The log start offset.
    pub log_start_offset: i64,
    /// The high watermark: nothing at or above it is deleted.
    pub high_watermark: i64,
}

/// Why segments go; when several rules apply, the one deleting most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionReason {
    /// They lie wholly below the log start offset.
    LogStart,
    /// `retention.ms`.
    Time,
    /// `retention.bytes`.
    Size,
}

impl RetentionReason {
    /// A lowercase name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionReason::LogStart => "log_start",
            RetentionReason::Time => "retention_ms",
            RetentionReason::Size => "retention_bytes",
        }
    }
}

/// Delete the `segments` oldest segments and start the log at
/// `new_log_start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDecision {
    /// How many of the oldest segments go.
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The log start offset afterwards.
    pub new_log_start_offset: i64,
    /// Which rule deleted most.
    pub reason: RetentionReason,
}

/// Which segments retention deletes now (`now_ms`), if any. See the module
/// docs for the rules.
pub fn decide(
    log: LogFacts<'_>,
    limits: RetentionLimits,
    now_ms: i64,
) -> Option<RetentionDecision> {
    let segments = log.segments;
    // Candidates: closed segments wholly below the high watermark.
    let candidates = segments
        .windows(2)
        .take_while(|w| w[1].base_offset <= log.high_watermark)
        .count();
    let below_start = segments
        .windows(2)
        .take(candidates)
        .take_while(|w| w[1].base_offset <= log.log_start_offset)
        .count();
    let by_time = limits.retention_ms.map_or(0, |ms| {
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        segments[..candidates]
            .iter()
            .take_while(|s| now_ms.saturating_sub(s.largest_timestamp) > ms)
            .count()
    });
    let by_size = limits.retention_bytes.map_or(0, |limit| {
        let total: u64 = segments.iter().map(|s| s.size_bytes).sum();
        let mut excess = total.saturating_sub(limit);
        segments[..candidates]
            .iter()
            .take_while(|s| {
                let fits = excess > 0 && s.size_bytes <= excess;
                if fits {
                    excess -= s.size_bytes;
                }
                fits
            })
            .count()
    });
    let (count, reason) = [
        (below_start, RetentionReason::LogStart),
        (by_time, RetentionReason::Time),
        (by_size, RetentionReason::Size),
    ]
    .into_iter()
    .fold((0, RetentionReason::LogStart), |best, next| {
        if next.0 > best.0 { next } else { best }
    });
    if count == 0 {
        return None;
    }
    Some(RetentionDecision {
        segments: count,
        bytes: segments[..count].iter().map(|s| s.size_bytes).sum(),
        new_log_start_offset: segments[count].base_offset.max(log.log_start_offset),
        reason,
    })
}

/// Where `DeleteRecords` moves the log start for a requested `offset`
/// (Kafka's -1: the high watermark): never beyond the high watermark, and
/// never back. Anything else negative, or beyond the high watermark, is
/// `OffsetOutOfRange` naming the valid range `[log start, high watermark]`.
pub fn delete_records_offset(
    offset: i64,
    log_start_offset: i64,
    high_watermark: i64,
) -> Result<i64> {
    let target = if offset == -1 { high_watermark } else { offset };
    if target < 0 || target > high_watermark {
        return Err(LogError::OffsetOutOfRange {
            requested: offset,
            log_start: log_start_offset,
            log_end: high_watermark,
        });
    }
    Ok(target.max(log_start_offset))
}

#[cfg(test)]
#[path = "retention_test.rs"]
mod tests;
