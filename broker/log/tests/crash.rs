//! Crash tests: damage the files of a log that was not closed, reopen, and
//! check that the log is a valid prefix holding everything flushed.

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use proptest::prelude::*;
use strom_log::batch::BatchIter;
use strom_log::{LogConfig, PartitionLog};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 3000,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == suffix))
        .collect();
    out.sort();
    out
}

/// Appends `batches` (record counts), flushes after the first `flushed` of
/// them, and drops the log without closing it. Returns the stored batches
/// and the flushed offset.
fn write_crashed_log(dir: &Path, batches: &[usize], flushed: usize) -> (Vec<Bytes>, i64) {
    let mut log = PartitionLog::open(dir, config()).expect("open");
    let mut stored = Vec::new();
    let mut flushed_offset = 0;
    for (i, &records) in batches.iter().enumerate() {
        let info = log
            .append_as_leader(common::batch(records, i as i64, 150), 1)
            .expect("append");
        let fetched = log.read(info.first_offset, 1).expect("read back").records;
        stored.push(
            BatchIter::new(fetched)
                .next()
                .expect("one")
                .expect("valid")
                .into_bytes(),
        );
        if i + 1 == flushed {
            log.flush().expect("flush");
            flushed_offset = log.log_end_offset();
        }
    }
    drop(log);
    (stored, flushed_offset)
}

/// Cuts `bytes` off the end of the last segment in `dir`.
fn cut_last_segment(dir: &Path, bytes: u64) {
    let last = files(dir, "log").pop().expect("segment");
    let len = fs::metadata(&last).expect("stat").len();
    OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open")
        .set_len(len - bytes)
        .expect("cut");
}

/// Reopen and check the log is a prefix of `stored` reaching at least
/// `must_reach`; returns the log end offset.
fn reopen_and_check_prefix(dir: &Path, stored: &[Bytes], must_reach: i64) -> i64 {
    let log = PartitionLog::open(dir, config()).expect("reopen after damage");
    let batches = common::read_all(&log.reader(), 0);
    assert!(batches.len() <= stored.len());
    for (got, want) in batches.iter().zip(stored) {
        // partitionLeaderEpoch (bytes 12..16) is outside the CRC, as in Kafka,
        // so a flip there is undetectable; every other byte must match.
        let (got, want) = (got.as_bytes(), want);
        assert!(
            got.len() == want.len() && got[..12] == want[..12] && got[16..] == want[16..],
            "surviving batches are byte-identical"
        );
    }
    let end = log.log_end_offset();
    assert_eq!(batches.last().map_or(0, |b| b.next_offset()), end);
    assert!(
        end >= must_reach,
        "flushed data lost: end {end} < flushed {must_reach}"
    );
    drop(log);
    // Recovery is idempotent.
    let again = PartitionLog::open(dir, config()).expect("second reopen");
    assert_eq!(again.log_end_offset(), end);
    end
}

/// Byte position in the last segment file below which data was flushed.
fn flushed_position(dir: &Path, stored: &[Bytes], flushed_offset: i64) -> (PathBuf, u64) {
    let last = files(dir, "log").pop().expect("a segment");
    let base: i64 = last
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("name");
    let mut position = 0;
    let mut offset = 0;
    for b in stored {
        let records = i64::from(
            strom_log::RecordBatch::from_bytes(b.clone())
                .expect("valid")
                .last_offset_delta(),
        ) + 1;
        if offset >= base && offset < flushed_offset {
            position += b.len() as u64;
        }
        offset += records;
    }
    (last, position)
}

fn batches_strategy() -> impl Strategy<Value = (Vec<usize>, usize)> {
    prop::collection::vec(1usize..6, 1..40).prop_flat_map(|b| {
        let n = b.len();
        (Just(b), 0..=n)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(24), ..ProptestConfig::default() })]

    #[test]
    fn cutting_the_tail_anywhere_after_the_flush_point_keeps_flushed_batches(
        (batches, flushed) in batches_strategy(),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stored, flushed_offset) = write_crashed_log(dir.path(), &batches, flushed);
        let (last, safe) = flushed_position(dir.path(), &stored, flushed_offset);
        let len = fs::metadata(&last).expect("stat").len();
        let at = safe + cut.index((len - safe + 1) as usize) as u64;
        OpenOptions::new().write(true).open(&last).expect("open").set_len(at).expect("cut");
        reopen_and_check_prefix(dir.path(), &stored, flushed_offset);
    }

    #[test]
    fn flipping_bytes_in_the_unflushed_tail_keeps_flushed_batches(
        (batches, flushed) in batches_strategy(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stored, flushed_offset) = write_crashed_log(dir.path(), &batches, flushed);
        let (last, safe) = flushed_position(dir.path(), &stored, flushed_offset);
        let mut bytes = fs::read(&last).expect("read");
        if (bytes.len() as u64) > safe {
            for (at, mask) in flips {
                let i = safe as usize + at.index(bytes.len() - safe as usize);
                bytes[i] ^= mask;
            }
            fs::write(&last, &bytes).expect("write");
        }
        reopen_and_check_prefix(dir.path(), &stored, flushed_offset);
    }

    #[test]
    fn flipping_bytes_anywhere_yields_a_valid_prefix_without_panicking(
        (batches, flushed) in batches_strategy(),
        segment in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stored, _) = write_crashed_log(dir.path(), &batches, flushed);
        let segments = files(dir.path(), "log");
        let target = segment.get(&segments);
        let mut bytes = fs::read(target).expect("read");
        if !bytes.is_empty() {
            for (at, mask) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= mask;
            }
            fs::write(target, &bytes).expect("write");
        }
        // Nothing flushed is promised here, only a valid prefix.
        reopen_and_check_prefix(dir.path(), &stored, 0);
    }

    #[test]
    fn deleted_or_corrupt_index_files_lose_nothing(
        batches in prop::collection::vec(1usize..6, 1..40),
        damage in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u64>()), 1..6),
        clean in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stored, _) = if clean {
            let (stored, _) = write_crashed_log(dir.path(), &batches, 0);
            PartitionLog::open(dir.path(), config()).expect("open").close().expect("close");
            (stored, 0)
        } else {
            write_crashed_log(dir.path(), &batches, 0)
        };
        let mut index_files = files(dir.path(), "index");
        index_files.extend(files(dir.path(), "timeindex"));
        for (pick, kind, noise) in damage {
            if index_files.is_empty() {
                break;
            }
            let path = pick.get(&index_files).clone();
            match kind {
                0 => { let _ = fs::remove_file(&path); }
                1 => fs::write(&path, noise.to_be_bytes()).expect("overwrite"),
                2 => {
                    let mut bytes = fs::read(&path).unwrap_or_default();
                    if !bytes.is_empty() {
                        let i = (noise as usize) % bytes.len();
                        bytes[i] ^= (noise >> 56) as u8 | 1;
                        fs::write(&path, &bytes).expect("write");
                    }
                }
                _ => {
                    let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    let _ = OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(noise % (len + 1)));
                }
            }
        }
        let total: i64 = batches.iter().map(|&n| n as i64).sum();
        let end = reopen_and_check_prefix(dir.path(), &stored, total);
        prop_assert_eq!(end, total);
        // Every offset is still found through the (rebuilt) indexes.
        let log = PartitionLog::open(dir.path(), config()).expect("open");
        for offset in 0..total {
            let fetched = log.read(offset, 1).expect("read");
            let b = BatchIter::new(fetched.records).next().expect("batch").expect("valid");
            prop_assert!(b.base_offset() <= offset && offset <= b.last_offset());
        }
    }
}

#[test]
fn a_torn_final_batch_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stored, flushed) = write_crashed_log(dir.path(), &[3, 3, 3], 2);
    cut_last_segment(dir.path(), 5);
    assert_eq!(reopen_and_check_prefix(dir.path(), &stored, flushed), 6);
    let mut log = PartitionLog::open(dir.path(), config()).expect("open");
    assert_eq!(log.recovery_point(), 6, "recovered data is fsynced");
    let info = log
        .append_as_leader(common::batch(1, 0, 10), 2)
        .expect("append");
    assert_eq!(info.first_offset, 6);
}

#[test]
fn garbage_checkpoints_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stored, _) = write_crashed_log(dir.path(), &[2, 2, 2, 2], 4);
    fs::write(dir.path().join("partition.checkpoint"), b"\xff\x00garbage").expect("write");
    fs::write(dir.path().join("leader-epoch-checkpoint"), b"0\n9\n1 x\n").expect("write");
    fs::write(dir.path().join("partition.checkpoint.tmp"), b"leftover").expect("write");
    reopen_and_check_prefix(dir.path(), &stored, 8);
    let log = PartitionLog::open(dir.path(), config()).expect("open");
    assert_eq!(
        log.reader().epoch_entries(),
        [(1, 0)],
        "epochs re-learned from batches"
    );
    assert!(!dir.path().join("partition.checkpoint.tmp").exists());
}

/// How a log is left before it is opened again.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Closed cleanly.
    Clean,
    /// Dropped without closing (a crash that kept the page cache).
    Crash,
    /// Crash, then the last 5 bytes of the active segment cut (a torn batch).
    TornTail,
    /// Crash, then the last batch removed whole at a batch boundary, below
    /// the checkpointed high watermark (a power cut losing written pages).
    LostBelowHighWatermark,
    /// Crash, then the last batch removed whole above the checkpointed high
    /// watermark: indistinguishable from never having been written.
    LostAboveHighWatermark,
}

#[test]
fn recovery_reports_lost_records_only_when_records_are_gone() {
    let cases = [
        (Ending::Clean, false),
        (Ending::Crash, false),
        (Ending::TornTail, true),
        (Ending::LostBelowHighWatermark, true),
        (Ending::LostAboveHighWatermark, false),
    ];
    for (ending, lost) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = PartitionLog::open(dir.path(), config()).expect("open");
        let mut sizes = Vec::new();
        for i in 0..3 {
            let batch = common::batch(2, i, 50);
            sizes.push(batch.len() as u64);
            log.append_as_leader(batch, 1).expect("append");
        }
        let hw = match ending {
            Ending::LostAboveHighWatermark => 4,
            _ => 6,
        };
        log.set_high_watermark(hw);
        log.checkpoint().expect("checkpoint");
        assert!(!log.lost_records_in_recovery());
        match ending {
            Ending::Clean => log.close().expect("close"),
            _ => drop(log),
        }
        let cut = match ending {
            Ending::TornTail => 5,
            Ending::LostBelowHighWatermark | Ending::LostAboveHighWatermark => sizes[2],
            Ending::Clean | Ending::Crash => 0,
        };
        cut_last_segment(dir.path(), cut);
        let log = PartitionLog::open(dir.path(), config()).expect("reopen");
        assert_eq!(log.lost_records_in_recovery(), lost, "{ending:?}");
        log.close().expect("close");
        // The next open finds a valid shorter log: nothing more is lost.
        let log = PartitionLog::open(dir.path(), config()).expect("reopen again");
        assert!(!log.lost_records_in_recovery(), "{ending:?} reopened");
    }
}
