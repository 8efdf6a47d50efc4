//! Which part of a log the cleaner may clean, and how dirty it is: data in,
//! decision out (no I/O, no clock), as Kafka's `LogCleanerManager
//! .cleanableOffsets` and `LogToClean`.
//!
//! * The clean section is `[log start, first dirty)`, what earlier passes
//!   cleaned; the dirty section runs from the first dirty offset to the
//!   first uncleanable offset.
//! * The first uncleanable offset is the base offset of the first segment
//!   that must not be cleaned: the active segment, a segment holding an
//!   offset at or above the high watermark (a follower may still truncate
//!   there, and consumers have not seen it), or one whose largest
//!   timestamp is less than `min.compaction.lag.ms` old.
//! * The dirty ratio is dirty bytes over clean plus dirty bytes, by
//!   segments; the log is cleaned when it reaches
//!   `min.cleanable.dirty.ratio`, or earlier when its oldest dirty record is
//!   older than `max.compaction.lag.ms` (KIP-354).
//! * A log whose clean section holds a tombstone past its delete horizon
//!   is due too, even with nothing dirty (KIP-534's "latest delete
//!   horizon"): a quiet compacted topic still drops its tombstones
//!   `delete.retention.ms` after they were first kept.

use crate::retention::SegmentFacts;

/// A log as the cleaner sees it.
#[derive(Debug, Clone, Copy)]
pub struct CompactionFacts<'a> {
    /// Every segment, oldest first; the last is the active one.
    pub segments: &'a [SegmentFacts],
    /// The log start offset.
    pub log_start_offset: i64,
    /// Where the last completed pass stopped (the cleaner checkpoint).
    pub first_dirty_offset: i64,
    /// The high watermark.
    pub high_watermark: i64,
    /// Largest timestamp of the first batch at or after the first dirty
    /// offset (the age of the oldest dirty record), -1 if unknown.
    pub first_dirty_timestamp: i64,
    /// The earliest delete horizon of a tombstone kept in the clean
    /// section, -1 if it holds none.
    pub delete_horizon_ms: i64,
}

/// `min.compaction.lag.ms` and `max.compaction.lag.ms` of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactionLags {
    /// Records younger than this are not cleaned.
    pub min_compaction_lag_ms: u64,
    /// A dirty record older than this makes the log due whatever its dirty
    /// ratio; `None` (Kafka's `Long.MAX_VALUE`) disables it.
    pub max_compaction_lag_ms: Option<u64>,
}

/// The cleanable part of a log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    /// First offset the pass must deduplicate (its map starts here).
    pub first_dirty_offset: i64,
    /// First uncleanable offset: a segment boundary.
    pub first_uncleanable_offset: i64,
    /// Bytes of the segments wholly in the clean section.
    pub clean_bytes: u64,
    /// Bytes of the segments holding the dirty section.
    pub dirty_bytes: u64,
    /// `max.compaction.lag.ms` passed for the oldest dirty record.
    pub max_lag_due: bool,
    /// A tombstone of the clean section is past its delete horizon.
    pub tombstones_due: bool,
}

impl Cleanable {
    /// Dirty bytes over all cleanable bytes (0 for an empty log).
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }

    /// Whether the cleaner should clean this log now.
    pub fn is_due(&self, min_cleanable_dirty_ratio: f64) -> bool {
        self.tombstones_due
            || self.dirty_bytes > 0
                && (self.max_lag_due || self.dirty_ratio() >= min_cleanable_dirty_ratio)
    }
}

/// The cleanable part of `facts`' log at `now_ms`, `None` when nothing is
/// dirty and cleanable.
pub fn cleanable(
    facts: CompactionFacts<'_>,
    lags: CompactionLags,
    now_ms: i64,
) -> Option<Cleanable> {
    let segments = facts.segments;
    let active_base = segments.last()?.base_offset;
    let min_lag = i64::try_from(lags.min_compaction_lag_ms).unwrap_or(i64::MAX);
    // The first segment that must not be cleaned bounds the section.
    let mut first_uncleanable = active_base;
    for pair in segments.windows(2) {
        let (segment, next_base) = (&pair[0], pair[1].base_offset);
        let too_young = min_lag > 0 && segment.largest_timestamp > now_ms.saturating_sub(min_lag);
        if next_base > facts.high_watermark || too_young {
            first_uncleanable = segment.base_offset;
            break;
        }
    }
    let first_dirty = facts
        .first_dirty_offset
        .max(facts.log_start_offset)
        .min(first_uncleanable);
    let tombstones_due = first_dirty > facts.log_start_offset
        && facts.delete_horizon_ms >= 0
        && now_ms >= facts.delete_horizon_ms;
    if first_dirty >= first_uncleanable && !tombstones_due {
        return None;
    }
    let mut clean_bytes = 0;
    let mut dirty_bytes = 0;
    for pair in segments.windows(2) {
        let (segment, next_base) = (&pair[0], pair[1].base_offset);
        if next_base <= first_dirty {
            clean_bytes += segment.size_bytes;
        } else if segment.base_offset < first_uncleanable {
            dirty_bytes += segment.size_bytes;
        }
    }
    let max_lag_due = lags.max_compaction_lag_ms.is_some_and(|max| {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        facts.first_dirty_timestamp >= 0
            && facts.first_dirty_timestamp <= now_ms.saturating_sub(max)
    });
    Some(Cleanable {
        first_dirty_offset: first_dirty,
        first_uncleanable_offset: first_uncleanable,
        clean_bytes,
        dirty_bytes,
        max_lag_due,
        tombstones_due,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segments at 0, 10, 20, 30 (active) of 100 bytes; largest timestamp
    /// = 1000 + base.
    fn segments() -> Vec<SegmentFacts> {
        [0, 10, 20, 30]
            .into_iter()
            .map(|base| SegmentFacts {
                base_offset: base,
                size_bytes: 100,
                largest_timestamp: 1_000 + base,
            })
            .collect()
    }

    #[test]
    fn the_cleanable_section_and_its_dirty_ratio() {
        struct Case {
            name: &'static str,
            start: i64,
            first_dirty: i64,
            hw: i64,
            lags: CompactionLags,
            first_dirty_ts: i64,
            horizon: i64,
            now: i64,
            expected: Option<(i64, i64, u64, u64, bool, bool)>,
        }
        let none = CompactionLags::default();
        let cases = [
            Case {
                name: "never cleaned",
                start: 0,
                first_dirty: 0,
                hw: 35,
                lags: none,
                first_dirty_ts: 1_000,
                horizon: -1,
                now: 5_000,
                expected: Some((0, 30, 0, 300, false, false)),
            },
            Case {
                name: "half cleaned",
                start: 0,
                first_dirty: 20,
                hw: 35,
                lags: none,
                first_dirty_ts: 1_020,
                horizon: -1,
                now: 5_000,
                expected: Some((20, 30, 200, 100, false, false)),
            },
            Case {
                name: "all cleaned",
                start: 0,
                first_dirty: 30,
                hw: 35,
                lags: none,
                first_dirty_ts: -1,
                horizon: -1,
                now: 5_000,
                expected: None,
            },
            Case {
                name: "checkpoint below the log start",
                start: 10,
                first_dirty: 0,
                hw: 35,
                lags: none,
                first_dirty_ts: 1_010,
                horizon: -1,
                now: 5_000,
                expected: Some((10, 30, 100, 200, false, false)),
            },
            Case {
                name: "high watermark inside segment 10",
                start: 0,
                first_dirty: 0,
                hw: 15,
                lags: none,
                first_dirty_ts: 1_000,
                horizon: -1,
                now: 5_000,
                expected: Some((0, 10, 0, 100, false, false)),
            },
            Case {
                name: "high watermark at a boundary",
                start: 0,
                first_dirty: 0,
                hw: 20,
                lags: none,
                first_dirty_ts: 1_000,
                horizon: -1,
                now: 5_000,
                expected: Some((0, 20, 0, 200, false, false)),
            },
            Case {
                name: "nothing below the high watermark",
                start: 0,
                first_dirty: 0,
                hw: 5,
                lags: none,
                first_dirty_ts: 1_000,
                horizon: -1,
                now: 5_000,
                expected: None,
            },
            Case {
                name: "min lag holds back young segments",
                start: 0,
                first_dirty: 0,
                hw: 35,
                lags: CompactionLags {
                    min_compaction_lag_ms: 3_985,
                    max_compaction_lag_ms: None,
                },
                first_dirty_ts: 1_000,
                horizon: -1,
                now: 5_000,
                expected: Some((0, 20, 0, 200, false, false)),
            },
            Case {
                name: "max lag passed",
                start: 0,
                first_dirty: 20,
                hw: 35,
                lags: CompactionLags {
                    min_compaction_lag_ms: 0,
                    max_compaction_lag_ms: Some(1_000),
                },
                first_dirty_ts: 1_020,
                horizon: -1,
                now: 5_000,
                expected: Some((20, 30, 200, 100, true, false)),
            },
            Case {
                name: "max lag not yet",
                start: 0,
                first_dirty: 20,
                hw: 35,
                lags: CompactionLags {
                    min_compaction_lag_ms: 0,
                    max_compaction_lag_ms: Some(10_000),
                },
                first_dirty_ts: 1_020,
                horizon: -1,
                now: 5_000,
                expected: Some((20, 30, 200, 100, false, false)),
            },
            Case {
                name: "all cleaned, a tombstone past its horizon",
                start: 0,
                first_dirty: 30,
                hw: 35,
                lags: none,
                first_dirty_ts: -1,
                horizon: 4_000,
                now: 5_000,
                expected: Some((30, 30, 300, 0, false, true)),
            },
            Case {
                name: "all cleaned, tombstones not yet past their horizon",
                start: 0,
                first_dirty: 30,
                hw: 35,
                lags: none,
                first_dirty_ts: -1,
                horizon: 5_001,
                now: 5_000,
                expected: None,
            },
            Case {
                name: "dirty, and a tombstone past its horizon",
                start: 0,
                first_dirty: 20,
                hw: 35,
                lags: none,
                first_dirty_ts: 1_020,
                horizon: 5_000,
                now: 5_000,
                expected: Some((20, 30, 200, 100, false, true)),
            },
            Case {
                name: "no clean section: a horizon cannot be due",
                start: 0,
                first_dirty: 0,
                hw: 5,
                lags: none,
                first_dirty_ts: -1,
                horizon: 1_000,
                now: 5_000,
                expected: None,
            },
        ];
        for c in cases {
            let segments = segments();
            let got = cleanable(
                CompactionFacts {
                    segments: &segments,
                    log_start_offset: c.start,
                    first_dirty_offset: c.first_dirty,
                    high_watermark: c.hw,
                    first_dirty_timestamp: c.first_dirty_ts,
                    delete_horizon_ms: c.horizon,
                },
                c.lags,
                c.now,
            )
            .map(|c| {
                (
                    c.first_dirty_offset,
                    c.first_uncleanable_offset,
                    c.clean_bytes,
                    c.dirty_bytes,
                    c.max_lag_due,
                    c.tombstones_due,
                )
            });
            assert_eq!(got, c.expected, "{}", c.name);
        }
    }

    #[test]
    fn due_by_ratio_or_by_max_lag() {
        let c = Cleanable {
            first_dirty_offset: 0,
            first_uncleanable_offset: 10,
            clean_bytes: 300,
            dirty_bytes: 100,
            max_lag_due: false,
            tombstones_due: false,
        };
        assert_eq!(c.dirty_ratio(), 0.25);
        assert!(!c.is_due(0.5));
        assert!(c.is_due(0.25));
        assert!(
            Cleanable {
                max_lag_due: true,
                ..c
            }
            .is_due(0.5)
        );
        assert!(
            !Cleanable {
                dirty_bytes: 0,
                max_lag_due: true,
                ..c
            }
            .is_due(0.0)
        );
        assert!(
            Cleanable {
                dirty_bytes: 0,
                tombstones_due: true,
                ..c
            }
            .is_due(1.0),
            "expired tombstones make a clean log due"
        );
    }
}
