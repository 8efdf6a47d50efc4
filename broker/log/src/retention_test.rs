use super::*;
use crate::ErrorKind;

const NOW: i64 = 1_000_000;
const HOUR: u64 = 3_600_000;

/// Segments at the given base offsets, 100 bytes each, with the given
/// largest timestamps (as offsets before `NOW` in hours).
fn log(bases_and_age_hours: &[(i64, i64)]) -> Vec<SegmentFacts> {
    bases_and_age_hours
        .iter()
        .map(|&(base_offset, age)| SegmentFacts {
            base_offset,
            size_bytes: 100,
            largest_timestamp: NOW - age * HOUR as i64,
        })
        .collect()
}

fn limits(retention_ms: Option<u64>, retention_bytes: Option<u64>) -> RetentionLimits {
    RetentionLimits {
        retention_ms,
        retention_bytes,
    }
}

#[test]
fn retention_deletes_the_expected_segments() {
    // (name, segments (base, age in hours), log start, high watermark,
    //  limits, expected (segments, new start, reason))
    type Case = (
        &'static str,
        Vec<SegmentFacts>,
        i64,
        i64,
        RetentionLimits,
        Option<(usize, i64, RetentionReason)>,
    );
    let four = log(&[(0, 50), (10, 40), (20, 30), (30, 20)]);
    let cases: Vec<Case> = vec![
        (
            "empty log",
            Vec::new(),
            0,
            0,
            limits(Some(0), Some(0)),
            None,
        ),
        (
            "only the active segment, however old",
            log(&[(0, 1_000)]),
            0,
            5,
            limits(Some(HOUR), Some(0)),
            None,
        ),
        (
            "nothing expired",
            four.clone(),
            0,
            40,
            limits(Some(100 * HOUR), None),
            None,
        ),
        (
            "by time: segments older than 35 hours",
            four.clone(),
            0,
            40,
            limits(Some(35 * HOUR), None),
            Some((2, 20, RetentionReason::Time)),
        ),
        (
            "by time: exactly at the limit stays",
            four.clone(),
            0,
            40,
            limits(Some(40 * HOUR), None),
            Some((1, 10, RetentionReason::Time)),
        ),
        (
            "by time: the active segment is kept even when expired",
            four.clone(),
            0,
            40,
            limits(Some(HOUR), None),
            Some((3, 30, RetentionReason::Time)),
        ),
        (
            "by time: stops at the first segment not expired",
            log(&[(0, 50), (10, 1), (20, 50), (30, 50)]),
            0,
            40,
            limits(Some(10 * HOUR), None),
            Some((1, 10, RetentionReason::Time)),
        ),
        (
            "by time: never at or above the high watermark",
            four.clone(),
            0,
            25,
            limits(Some(HOUR), None),
            Some((2, 20, RetentionReason::Time)),
        ),
        (
            "by time: a segment ending exactly at the high watermark goes",
            four.clone(),
            0,
            20,
            limits(Some(HOUR), None),
            Some((2, 20, RetentionReason::Time)),
        ),
        (
            "high watermark inside the first segment: nothing",
            four.clone(),
            0,
            9,
            limits(Some(0), Some(0)),
            None,
        ),
        (
            "by size: 400 bytes, limit 250, two segments go",
            four.clone(),
            0,
            40,
            limits(None, Some(250)),
            Some((1, 10, RetentionReason::Size)),
        ),
        (
            "by size: limit 200 removes exactly two",
            four.clone(),
            0,
            40,
            limits(None, Some(200)),
            Some((2, 20, RetentionReason::Size)),
        ),
        (
            "by size: under the limit",
            four.clone(),
            0,
            40,
            limits(None, Some(400)),
            None,
        ),
        (
            "by size: zero keeps the active segment",
            four.clone(),
            0,
            40,
            limits(None, Some(0)),
            Some((3, 30, RetentionReason::Size)),
        ),
        (
            "by size: bounded by the high watermark",
            four.clone(),
            0,
            15,
            limits(None, Some(0)),
            Some((1, 10, RetentionReason::Size)),
        ),
        (
            "by start: segments wholly below the log start",
            four.clone(),
            25,
            40,
            limits(None, None),
            Some((2, 25, RetentionReason::LogStart)),
        ),
        (
            "by start: a start at a segment boundary",
            four.clone(),
            30,
            40,
            limits(None, None),
            Some((3, 30, RetentionReason::LogStart)),
        ),
        (
            "by start: inside the first segment deletes nothing",
            four.clone(),
            5,
            40,
            limits(None, None),
            None,
        ),
        (
            "the rule deleting most wins and the start never moves back",
            four.clone(),
            15,
            40,
            limits(Some(35 * HOUR), Some(350)),
            Some((2, 20, RetentionReason::Time)),
        ),
        (
            "unlimited keeps everything",
            four,
            0,
            40,
            limits(None, None),
            None,
        ),
    ];
    for (name, segments, log_start_offset, high_watermark, limits, expected) in cases {
        let decision = decide(
            LogFacts {
                segments: &segments,
                log_start_offset,
                high_watermark,
            },
            limits,
            NOW,
        );
        let got = decision.map(|d| (d.segments, d.new_log_start_offset, d.reason));
        assert_eq!(got, expected, "{name}");
        if let Some(d) = decision {
            assert_eq!(d.bytes, 100 * d.segments as u64, "{name}: bytes");
        }
    }
}

#[test]
fn delete_records_moves_the_start_up_to_the_high_watermark() {
    // (requested, log start, high watermark, expected new start or None
    // for OFFSET_OUT_OF_RANGE)
    let cases = [
        (5, 0, 10, Some(5)),
        (10, 0, 10, Some(10)),
        (-1, 3, 10, Some(10)),
        (2, 3, 10, Some(3)),
        (0, 0, 0, Some(0)),
        (-1, 0, 0, Some(0)),
        (11, 0, 10, None),
        (-2, 0, 10, None),
        (i64::MIN, 0, 10, None),
        (i64::MAX, 0, 10, None),
    ];
    for (requested, start, hw, expected) in cases {
        match (delete_records_offset(requested, start, hw), expected) {
            (Ok(got), Some(want)) => assert_eq!(got, want, "{requested}"),
            (Err(e), None) => {
                assert_eq!(e.kind(), ErrorKind::OffsetOutOfRange, "{requested}");
                assert_eq!(
                    e.to_string(),
                    format!("offset {requested} is out of range [{start}, {hw}]")
                );
            }
            (got, want) => panic!("{requested}: got {got:?}, want {want:?}"),
        }
    }
}
