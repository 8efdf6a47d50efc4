//! Retention through the public API (which segments go, the log start,
//! `segment.ms` rolls of a quiet log, DeleteRecords' bounds) and recovery
//! from a crash at every step of a deletion.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::{batch, read_all};
use strom_log::{
    ErrorKind, LogConfig, ManualClock, OffsetSpec, PartitionLog, RetentionLimits, RetentionReason,
};

const NOW: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1200,
        index_interval_bytes: 200,
        segment_ms: HOUR as u64,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, clock: &Arc<ManualClock>) -> PartitionLog {
    PartitionLog::open_with_clock(dir, config(), clock.clone()).expect("open")
}

/// Appends `n` batches of 2 records (about 370 bytes each, three per
/// segment) with record timestamps `timestamp`, and commits them.
fn append(log: &mut PartitionLog, n: usize, timestamp: i64) {
    for _ in 0..n {
        log.append_as_leader(batch(2, timestamp, 150), 1)
            .expect("append");
    }
    log.set_high_watermark(log.log_end_offset());
}

fn bases(log: &PartitionLog) -> Vec<i64> {
    log.segments()
        .expect("segments")
        .iter()
        .map(|s| s.base_offset)
        .collect()
}

/// Names of the files in `dir` with `suffix`, sorted.
fn names(dir: &Path, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.ends_with(suffix))
        .collect();
    out.sort();
    out
}

fn limits(retention_ms: Option<u64>, retention_bytes: Option<u64>) -> RetentionLimits {
    RetentionLimits {
        retention_ms,
        retention_bytes,
    }
}

#[test]
fn retention_by_time_deletes_expired_closed_segments_up_to_the_high_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(NOW));
    let mut log = open(dir.path(), &clock);
    append(&mut log, 6, NOW - 5 * HOUR);
    append(&mut log, 6, NOW - HOUR);
    append(&mut log, 2, NOW);
    assert_eq!(bases(&log), [0, 6, 12, 18, 24]);

    // The high watermark bounds what may go.
    log.set_high_watermark(8);
    let (decision, deleted) = log
        .apply_retention(limits(Some(2 * HOUR as u64), None))
        .expect("retention")
        .expect("something expired");
    assert_eq!(
        (decision.segments, decision.reason),
        (1, RetentionReason::Time)
    );
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(deleted.len(), 1);
    // Renamed until removed; readers see the new start at once.
    assert_eq!(names(dir.path(), ".deleted").len(), 3);
    deleted.remove_files().expect("remove");
    assert!(names(dir.path(), ".deleted").is_empty());

    log.set_high_watermark(log.log_end_offset());
    let (_, deleted) = log
        .apply_retention(limits(Some(2 * HOUR as u64), None))
        .expect("retention")
        .expect("the second old segment");
    deleted.remove_files().expect("remove");
    assert_eq!(bases(&log), [12, 18, 24]);
    assert_eq!(log.log_start_offset(), 12);
    assert_eq!(
        names(dir.path(), ".log"),
        [
            "00000000000000000012.log",
            "00000000000000000018.log",
            "00000000000000000024.log"
        ]
    );
    assert!(
        log.apply_retention(limits(Some(2 * HOUR as u64), None))
            .expect("retention")
            .is_none(),
        "the rest is younger"
    );
    let err = log.read(11, 1024).expect_err("below the start");
    assert_eq!(err.kind(), ErrorKind::OffsetOutOfRange);
    assert_eq!(read_all(&log.reader(), 12).len(), 14 - 6);
    assert_eq!(
        log.list_offset(OffsetSpec::Earliest)
            .expect("list")
            .map(|o| o.offset),
        Some(12)
    );
}

#[test]
fn retention_by_size_keeps_the_log_above_the_limit_and_the_active_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(NOW));
    let mut log = open(dir.path(), &clock);
    append(&mut log, 14, NOW);
    let segments = log.segments().expect("segments");
    let total: u64 = segments.iter().map(|s| s.size_bytes).sum();
    let limit = total - segments[0].size_bytes - segments[1].size_bytes;
    let (decision, deleted) = log
        .apply_retention(limits(None, Some(limit)))
        .expect("retention")
        .expect("two segments");
    assert_eq!(
        (decision.segments, decision.reason),
        (2, RetentionReason::Size)
    );
    deleted.remove_files().expect("remove");
    assert_eq!(bases(&log), [12, 18, 24]);

    // Zero bytes allowed: every closed segment goes, the active one stays.
    let (_, deleted) = log
        .apply_retention(limits(None, Some(0)))
        .expect("retention")
        .expect("all closed");
    deleted.remove_files().expect("remove");
    assert_eq!(bases(&log), [24]);
    assert_eq!(log.log_start_offset(), 24);
    assert_eq!(log.log_end_offset(), 28);
}

#[test]
fn a_quiet_log_rolls_after_segment_ms_and_then_expires_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(NOW));
    let mut log = open(dir.path(), &clock);
    append(&mut log, 2, NOW - 5 * HOUR);
    assert_eq!(bases(&log), [0]);
    let expire = limits(Some(HOUR as u64), None);
    assert!(
        log.apply_retention(expire).expect("retention").is_none(),
        "active"
    );
    assert!(!log.reader().roll_due());
    assert!(!log.roll_if_due().expect("roll"));

    clock.advance(HOUR);
    assert!(log.reader().roll_due());
    assert!(log.roll_if_due().expect("roll"));
    assert_eq!(bases(&log), [0, 4]);
    let (_, deleted) = log
        .apply_retention(expire)
        .expect("retention")
        .expect("expired");
    deleted.remove_files().expect("remove");
    assert_eq!(bases(&log), [4]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (4, 4));

    // An empty active segment never rolls.
    clock.advance(2 * HOUR);
    assert!(!log.reader().roll_due());
    assert!(!log.roll_if_due().expect("roll"));
    // Appends continue at the end.
    append(&mut log, 1, NOW);
    assert_eq!(read_all(&log.reader(), 4).len(), 1);
}

#[test]
fn delete_records_moves_the_start_at_most_to_the_high_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(NOW));
    let mut log = open(dir.path(), &clock);
    append(&mut log, 10, NOW);
    log.set_high_watermark(15);

    let err = log
        .delete_records(16)
        .expect_err("beyond the high watermark");
    assert_eq!(err.kind(), ErrorKind::OffsetOutOfRange);
    assert!(log.delete_records(-2).is_err());
    assert_eq!(log.log_start_offset(), 0, "refused: nothing changed");

    // Inside a segment: the start moves, the segment holding it stays.
    let deleted = log.delete_records(7).expect("delete");
    assert_eq!(deleted.len(), 1);
    deleted.remove_files().expect("remove");
    assert_eq!(log.log_start_offset(), 7);
    assert_eq!(bases(&log), [6, 12, 18]);
    let first = read_all(&log.reader(), 7);
    assert_eq!(first[0].base_offset(), 6, "the batch holding offset 7");

    // Backwards: nothing. -1: the high watermark.
    assert!(log.delete_records(3).expect("no-op").is_empty());
    assert_eq!(log.log_start_offset(), 7);
    log.delete_records(-1)
        .expect("delete")
        .remove_files()
        .expect("remove");
    assert_eq!(log.log_start_offset(), 15);
    assert_eq!(bases(&log), [12, 18]);

    // The start survives a crash even though no segment went.
    let deleted = log.delete_records(-1).expect("no-op");
    assert!(deleted.is_empty());
    drop(log);
    let log = open(dir.path(), &clock);
    assert_eq!(log.log_start_offset(), 15);
}

#[test]
fn a_follower_takes_its_leaders_start_in_memory_up_to_its_high_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(NOW));
    let mut log = open(dir.path(), &clock);
    append(&mut log, 10, NOW);
    log.set_high_watermark(10);
    assert!(log.increment_log_start(14));
    assert_eq!(log.log_start_offset(), 10, "capped at the high watermark");
    assert!(!log.increment_log_start(8), "never back");
    let deleted = log.delete_segments_below_start().expect("delete");
    assert_eq!(deleted.len(), 1);
    deleted.remove_files().expect("remove");
    assert_eq!(bases(&log), [6, 12, 18]);
}

/// The files of segment `base`.
fn segment_files(base: i64) -> [String; 3] {
    ["log", "index", "timeindex"].map(|s| format!("{base:020}.{s}"))
}

fn write_checkpoint(dir: &Path, high_watermark: i64, log_start: i64) {
    fs::write(
        dir.join("partition.checkpoint"),
        format!(
            "0\nhigh_watermark {high_watermark}\nrecovery_point 0\nlog_start_offset {log_start}\n"
        ),
    )
    .expect("write checkpoint");
}

/// Every step of deleting segments 0 and 6 (new start 14), crashed after
/// each: 0 = nothing done; 1 = start checkpointed; then the six renames
/// (oldest segment first); then the six unlinks. Reopened (after a clean
/// close or a crash), the log starts at 14 (or 0 before the checkpoint),
/// holds every batch from there unchanged, has no gap and no leftover.
#[test]
fn recovery_finishes_a_deletion_interrupted_at_any_step() {
    let clock = Arc::new(ManualClock::new(NOW));
    for clean in [false, true] {
        for step in 0..=13 {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut log = open(dir.path(), &clock);
            append(&mut log, 10, NOW);
            assert_eq!(bases(&log), [0, 6, 12, 18]);
            let before: Vec<Bytes> = read_all(&log.reader(), 0)
                .into_iter()
                .map(|b| b.into_bytes())
                .collect();
            if clean {
                log.close().expect("close");
            } else {
                log.checkpoint().expect("checkpoint");
                drop(log);
            }
            let files: Vec<String> = [0, 6].into_iter().flat_map(segment_files).collect();
            if step >= 1 {
                write_checkpoint(dir.path(), 20, 14);
            }
            for (i, name) in files.iter().enumerate() {
                let path = dir.path().join(name);
                if step >= 2 + i {
                    fs::rename(&path, dir.path().join(format!("{name}.deleted"))).expect("rename");
                }
                if step >= 8 + i {
                    fs::remove_file(dir.path().join(format!("{name}.deleted"))).expect("unlink");
                }
            }

            let log = open(dir.path(), &clock);
            let what = format!("clean {clean}, crashed after step {step}");
            let start = if step == 0 { 0 } else { 14 };
            assert_eq!(log.log_start_offset(), start, "{what}");
            assert_eq!(log.log_end_offset(), 20, "{what}");
            assert!(!log.lost_records_in_recovery(), "{what}");
            let expected_bases: &[i64] = if step == 0 {
                &[0, 6, 12, 18]
            } else {
                &[12, 18]
            };
            assert_eq!(bases(&log), expected_bases, "{what}");
            assert!(names(dir.path(), ".deleted").is_empty(), "{what}");
            assert!(
                names(dir.path(), ".index").len() <= expected_bases.len(),
                "{what}: no orphan index"
            );
            let after = read_all(&log.reader(), start);
            let skip = before.len() - after.len();
            for (got, want) in after.iter().zip(&before[skip..]) {
                assert_eq!(got.as_bytes(), want, "{what}");
            }
            assert_eq!(after[0].base_offset(), start, "{what}");
        }
    }
}

/// Renames that reached the disk out of order (the newer segment's, not
/// the older one's: the checkpoint is fsynced before any rename, the
/// renames are not) leave no gap: the older segment is below the
/// checkpointed start and goes too.
#[test]
fn out_of_order_renames_never_leave_a_gap() {
    let clock = Arc::new(ManualClock::new(NOW));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), &clock);
    append(&mut log, 10, NOW);
    let before = read_all(&log.reader(), 12);
    log.checkpoint().expect("checkpoint");
    drop(log);
    write_checkpoint(dir.path(), 20, 12);
    let name = &segment_files(6)[0];
    fs::rename(
        dir.path().join(name),
        dir.path().join(format!("{name}.deleted")),
    )
    .expect("rename");
    let log = open(dir.path(), &clock);
    assert_eq!(bases(&log), [12, 18]);
    assert_eq!(log.log_start_offset(), 12);
    assert!(!log.lost_records_in_recovery());
    assert_eq!(read_all(&log.reader(), 12), before);
}
