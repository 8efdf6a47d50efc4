//! Idempotent-producer state through the log: duplicates are written once,
//! the state survives clean and unclean reopens (snapshots plus replay),
//! follows truncation, and reaches followers through their appends.

mod common;

use bytes::Bytes;
use common::small_config;
use strom_log::{Compression, ErrorKind, LogConfig, PartitionLog, RecordBatchBuilder};

/// A batch of `records` records from producer `pid`, epoch `epoch`,
/// sequences from `seq`.
fn idempotent(pid: i64, epoch: i16, seq: i32, records: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None).producer(pid, epoch, seq);
    for i in 0..records {
        b.append(1_000 + i as i64, Some(b"k"), Some(&[0u8; 200]), &[]);
    }
    b.build()
}

/// A producer's id, epoch and batches (first and last sequence, first and
/// last offset).
type Sequences = (i64, i16, Vec<(i32, i32, i64, i64)>);

/// Each producer's epoch and batches, without the activity times, which
/// are each log's own clock.
fn sequences(table: &strom_log::ProducerStateTable) -> Vec<Sequences> {
    table
        .producers()
        .map(|(id, e)| {
            let batches = e
                .batches
                .iter()
                .map(|b| (b.first_seq, b.last_seq, b.first_offset, b.last_offset))
                .collect();
            (id, e.epoch, batches)
        })
        .collect()
}

fn open(dir: &std::path::Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config).expect("open log")
}

/// Appends `n` batches of 3 records from `pid` (sequences from 0) and
/// returns the offsets of each.
fn produce(log: &mut PartitionLog, pid: i64, n: i32) -> Vec<(i64, i64)> {
    (0..n)
        .map(|i| {
            let info = log
                .append_as_leader(idempotent(pid, 0, i * 3, 3), 1)
                .expect("append");
            assert!(!info.duplicate);
            (info.first_offset, info.last_offset)
        })
        .collect()
}

#[test]
fn a_retried_batch_is_answered_with_its_offsets_and_not_written_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let offsets = produce(&mut log, 7, 3);
    let end = log.log_end_offset();
    let retry = log
        .append_as_leader(idempotent(7, 0, 3, 3), 1)
        .expect("duplicate");
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), offsets[1]);
    assert_eq!(log.log_end_offset(), end, "nothing written");

    let gap = log
        .append_as_leader(idempotent(7, 0, 12, 1), 1)
        .expect_err("gap");
    assert_eq!(gap.kind(), ErrorKind::OutOfOrderSequence);
    let zombie = log
        .append_as_leader(idempotent(7, -1, 0, 1), 1)
        .map(|_| ())
        .expect_err("older epoch");
    // -1 is not a valid epoch for an idempotent batch at the broker; at the
    // log it is simply older than 0.
    assert_eq!(zombie.kind(), ErrorKind::InvalidProducerEpoch);
    let unknown = log
        .append_as_leader(idempotent(8, 0, 4, 1), 1)
        .expect_err("unknown producer");
    assert_eq!(unknown.kind(), ErrorKind::UnknownProducerId);
    assert_eq!(log.log_end_offset(), end, "refusals write nothing");
}

#[test]
fn producer_state_survives_clean_and_unclean_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Small segments: the log rolls (writing snapshots) along the way.
    let mut log = open(dir.path(), small_config());
    let offsets = produce(&mut log, 1, 20);
    produce(&mut log, 2, 2);
    assert!(log.segments().expect("segments").len() > 2, "rolled");
    log.close().expect("close");

    let mut log = open(dir.path(), small_config());
    let retry = log
        .append_as_leader(idempotent(1, 0, 57, 3), 1)
        .expect("duplicate after a clean reopen");
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), offsets[19]);
    let next = log
        .append_as_leader(idempotent(1, 0, 60, 3), 1)
        .expect("next sequence");
    assert!(!next.duplicate);
    // A crash: dropped without close, so the reopen replays the batches
    // after the last snapshot.
    drop(log);
    let log = open(dir.path(), small_config());
    let entry = log.producer_state().get(1).expect("producer 1 known");
    assert_eq!(entry.last_seq(), Some(62));
    assert_eq!(entry.last_offset(), Some(next.last_offset));
    assert_eq!(
        log.producer_state().get(2).and_then(|e| e.last_seq()),
        Some(5)
    );
}

#[test]
fn damaged_or_missing_snapshots_are_rebuilt_from_the_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    produce(&mut log, 1, 15);
    log.close().expect("close");
    let snapshots: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
        .collect();
    assert_eq!(snapshots.len(), 2, "the two newest are kept");
    for (i, path) in snapshots.iter().enumerate() {
        if i == 0 {
            std::fs::write(path, b"garbage").expect("damage");
        } else {
            std::fs::remove_file(path).expect("remove");
        }
    }
    let log = open(dir.path(), small_config());
    assert_eq!(
        log.producer_state().get(1).and_then(|e| e.last_seq()),
        Some(44)
    );
}

#[test]
fn truncation_forgets_the_batches_it_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    let offsets = produce(&mut log, 1, 20);
    // Cut the last five batches, across a segment roll.
    log.truncate_to(offsets[15].0).expect("truncate");
    let entry = log.producer_state().get(1).expect("producer 1 known");
    assert_eq!(entry.last_seq(), Some(44));
    assert_eq!(entry.last_offset(), Some(offsets[14].1));
    // The cut batch is new again, not a duplicate.
    let again = log
        .append_as_leader(idempotent(1, 0, 45, 3), 2)
        .expect("append");
    assert!(!again.duplicate);

    log.truncate_fully_and_start_at(1_000).expect("restart");
    assert!(log.producer_state().is_empty());
}

#[test]
fn followers_learn_producer_state_from_the_batches_they_store() {
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let mut leader = open(leader_dir.path(), LogConfig::default());
    let mut follower = open(follower_dir.path(), LogConfig::default());
    produce(&mut leader, 5, 4);
    let fetched = leader.read(0, 1 << 20).expect("read");
    follower
        .append_as_follower(fetched.records)
        .expect("follower append");
    assert_eq!(
        sequences(follower.producer_state()),
        sequences(leader.producer_state())
    );
    // Had the follower become leader, the retry would be a duplicate.
    let retry = follower
        .append_as_leader(idempotent(5, 0, 9, 3), 2)
        .expect("duplicate");
    assert!(retry.duplicate);
}

#[test]
fn idle_producers_are_forgotten_after_producer_id_expiration_ms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = std::sync::Arc::new(strom_log::ManualClock::new(1_000_000));
    let config = LogConfig {
        producer_id_expiration_ms: 600_000,
        ..LogConfig::default()
    };
    let mut log =
        PartitionLog::open_with_clock(dir.path(), config, clock.clone()).expect("open log");
    produce(&mut log, 1, 2);
    clock.advance(300_000);
    produce(&mut log, 2, 1);
    // Producer 1 has been idle for 10 minutes and one second; producer 2
    // for 5 minutes: the next append's check forgets only producer 1.
    clock.advance(300_001);
    log.append_as_leader(idempotent(2, 0, 3, 1), 1)
        .expect("producer 2 goes on");
    assert!(log.producer_state().get(1).is_none());
    let unknown = log
        .append_as_leader(idempotent(1, 0, 6, 1), 1)
        .expect_err("producer 1 forgotten");
    assert_eq!(unknown.kind(), ErrorKind::UnknownProducerId);
    // KIP-360: the client bumps its epoch and starts over at 0.
    log.append_as_leader(idempotent(1, 1, 0, 1), 1)
        .expect("a new epoch from 0");
}
