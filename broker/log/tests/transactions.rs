//! Transactions through the log: markers close transactions, the last
//! stable offset holds readers below open ones, aborted transactions are
//! indexed (`.txnindex`) and survive clean and unclean reopens,
//! truncation and segment rolls, and reach followers through their
//! appends.

mod common;

use bytes::Bytes;
use common::{read_all, small_config};
use strom_log::batch::control::EndTxnMarker;
use strom_log::{AbortedTxn, Compression, ErrorKind, LogConfig, PartitionLog, RecordBatchBuilder};

const LEADER_EPOCH: i32 = 1;

/// A transactional batch of `records` records from `pid`/`epoch` from
/// sequence `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, records: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None)
        .producer(pid, epoch, seq)
        .transactional(true);
    for i in 0..records {
        b.append(1_000 + i as i64, Some(b"k"), Some(&[1u8; 300]), &[]);
    }
    b.build()
}

fn plain_batch(records: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None);
    for i in 0..records {
        b.append(1_000 + i as i64, Some(b"k"), Some(&[2u8; 300]), &[]);
    }
    b.build()
}

fn marker(commit: bool, coordinator_epoch: i32) -> EndTxnMarker {
    EndTxnMarker {
        commit,
        coordinator_epoch,
    }
}

fn open(dir: &std::path::Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config).expect("open log")
}

/// Appends and moves the high watermark to the log end.
fn append(log: &mut PartitionLog, batch: Bytes) -> (i64, i64) {
    let info = log.append_as_leader(batch, LEADER_EPOCH).expect("append");
    log.set_high_watermark(log.log_end_offset());
    (info.first_offset, info.last_offset)
}

fn end(log: &mut PartitionLog, pid: i64, epoch: i16, commit: bool) -> i64 {
    let info = log
        .append_txn_marker(pid, epoch, marker(commit, 0), LEADER_EPOCH)
        .expect("marker");
    log.set_high_watermark(log.log_end_offset());
    info.first_offset
}

fn aborted(log: &PartitionLog) -> Vec<AbortedTxn> {
    log.aborted_transactions(0, i64::MAX)
}

#[test]
fn the_last_stable_offset_holds_readers_below_open_transactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, plain_batch(2));
    assert_eq!(log.last_stable_offset(), 2);
    let (a_first, _) = append(&mut log, txn_batch(10, 0, 0, 3)); // 2..=4
    append(&mut log, plain_batch(1)); // 5
    let (b_first, _) = append(&mut log, txn_batch(11, 0, 0, 2)); // 6..=7
    append(&mut log, txn_batch(10, 0, 3, 1)); // 8, same transaction
    assert_eq!(log.high_watermark(), 9);
    assert_eq!(log.last_stable_offset(), a_first);
    assert_eq!(log.reader().first_unstable_offset(), Some(2));

    // Committing the earlier transaction moves the LSO to the next one.
    let commit_at = end(&mut log, 10, 0, true);
    assert_eq!(commit_at, 9);
    assert_eq!(log.last_stable_offset(), b_first);
    assert!(aborted(&log).is_empty());

    // Aborting the other one: everything is stable, and it is indexed.
    let abort_at = end(&mut log, 11, 0, false);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert_eq!(log.reader().first_unstable_offset(), None);
    assert_eq!(
        aborted(&log),
        vec![AbortedTxn {
            producer_id: 11,
            first_offset: b_first,
            last_offset: abort_at,
            last_stable_offset: abort_at + 1,
        }]
    );
    // The LSO never passes the high watermark.
    append(&mut log, plain_batch(1));
    log.set_high_watermark(log.log_end_offset() - 1);
    assert_eq!(log.last_stable_offset(), log.high_watermark());

    // The read_committed query.
    assert_eq!(
        log.aborted_transactions(0, b_first).len(),
        0,
        "ends before it began"
    );
    assert_eq!(log.aborted_transactions(b_first, b_first + 1).len(), 1);
    assert_eq!(log.aborted_transactions(abort_at, i64::MAX).len(), 1);
    assert_eq!(
        log.aborted_transactions(abort_at + 1, i64::MAX).len(),
        0,
        "fetch after its marker"
    );

    // The markers are in the log as control batches.
    let markers: Vec<_> = read_all(&log.reader(), 0)
        .into_iter()
        .filter(|b| b.is_control())
        .map(|b| (b.base_offset(), b.producer_id(), b.is_transactional()))
        .collect();
    assert_eq!(markers, vec![(commit_at, 10, true), (abort_at, 11, true)]);
}

#[test]
fn transactional_rules_refuse_bad_batches_and_markers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, txn_batch(10, 3, 0, 1));
    let end_before = log.log_end_offset();

    // A non-transactional batch of a producer with an open transaction.
    let mut b = RecordBatchBuilder::new(Compression::None).producer(10, 3, 1);
    b.append(1, Some(b"k"), Some(b"v"), &[]);
    let e = log
        .append_as_leader(b.build(), LEADER_EPOCH)
        .expect_err("non-transactional");
    assert_eq!(e.kind(), ErrorKind::InvalidTxnState);

    // Clients cannot write control batches.
    let forged = strom_log::batch::control::build_marker_batch(10, 3, marker(true, 0), 1);
    let e = log
        .append_as_leader(forged, LEADER_EPOCH)
        .expect_err("client marker");
    assert_eq!(e.kind(), ErrorKind::InvalidRecord);

    // A marker from an older producer epoch.
    let e = log
        .append_txn_marker(10, 2, marker(false, 0), LEADER_EPOCH)
        .expect_err("old epoch");
    assert_eq!(e.kind(), ErrorKind::InvalidProducerEpoch);
    assert_eq!(log.log_end_offset(), end_before, "nothing written");
    assert_eq!(log.reader().first_unstable_offset(), Some(0));

    // A marker at a newer epoch (transaction version 2 bumps it) closes
    // the transaction and fences the old epoch's late batches.
    log.append_txn_marker(10, 4, marker(true, 5), LEADER_EPOCH)
        .expect("marker");
    assert_eq!(log.reader().first_unstable_offset(), None);
    let e = log
        .append_as_leader(txn_batch(10, 3, 1, 1), LEADER_EPOCH)
        .expect_err("late batch of the old epoch");
    assert_eq!(e.kind(), ErrorKind::InvalidProducerEpoch);
    // The next transaction starts at sequence 0 of the new epoch.
    append(&mut log, txn_batch(10, 4, 0, 1));
    // A marker from an older coordinator.
    let e = log
        .append_txn_marker(10, 4, marker(false, 4), LEADER_EPOCH)
        .expect_err("old coordinator");
    assert_eq!(e.kind(), ErrorKind::TransactionCoordinatorFenced);
    // A marker for a producer the log never saw is written (its state may
    // have expired) and closes nothing.
    log.append_txn_marker(99, 0, marker(false, 0), LEADER_EPOCH)
        .expect("unknown producer");
    assert!(aborted(&log).is_empty());
}

/// Aborts in several segments, an open transaction across a roll: what
/// the log knows after a clean close, after a crash (no close: replay from
/// the last snapshot), and after losing the index files.
#[test]
fn aborted_transactions_and_open_ones_survive_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = small_config();
    let mut log = open(dir.path(), config.clone());
    for round in 0..6i64 {
        let pid = 100 + round;
        append(&mut log, txn_batch(pid, 0, 0, 4));
        append(&mut log, plain_batch(2));
        end(&mut log, pid, 0, round % 2 == 0);
    }
    append(&mut log, txn_batch(200, 0, 0, 4)); // left open
    append(&mut log, plain_batch(6));
    let want_aborted = aborted(&log);
    let want_first_unstable = log.reader().first_unstable_offset();
    assert_eq!(want_aborted.len(), 3);
    assert!(want_first_unstable.is_some());
    assert!(
        log.segments().expect("segments").len() > 2,
        "the test spans rolls"
    );
    let index_files = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".txnindex")
            })
            .count()
    };
    assert!(
        index_files() >= 2,
        "one .txnindex per segment holding aborts"
    );

    // Clean.
    log.close().expect("close");
    let mut log = open(dir.path(), config.clone());
    assert_eq!(aborted(&log), want_aborted);
    assert_eq!(log.reader().first_unstable_offset(), want_first_unstable);

    // Unclean: more aborts after the last snapshot, then no close.
    append(&mut log, txn_batch(300, 0, 0, 1));
    end(&mut log, 300, 0, false);
    let want_aborted = aborted(&log);
    log.checkpoint().expect("checkpoint");
    drop(log);
    let log = open(dir.path(), config.clone());
    assert_eq!(aborted(&log), want_aborted);
    assert_eq!(log.reader().first_unstable_offset(), want_first_unstable);
    drop(log);

    // The index files are lost: the aborts above the last snapshot come
    // back from the replay; those below it are gone with the files (what
    // the files are for), but the log opens and serves the rest.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txnindex") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let log = open(dir.path(), config);
    let after: Vec<_> = aborted(&log);
    assert!(after.iter().all(|a| want_aborted.contains(a)));
    assert!(after.iter().any(|a| a.producer_id == 300));
    assert_eq!(log.reader().first_unstable_offset(), want_first_unstable);
}

#[test]
fn truncation_reopens_transactions_and_drops_their_aborts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    append(&mut log, txn_batch(1, 0, 0, 2)); // 0..=1
    let first_abort = end(&mut log, 1, 0, false); // 2
    let (second_first, _) = append(&mut log, txn_batch(2, 0, 0, 2)); // 3..=4
    for _ in 0..8 {
        append(&mut log, plain_batch(3));
    }
    let second_abort = end(&mut log, 2, 0, false);
    assert_eq!(aborted(&log).len(), 2);
    assert_eq!(log.reader().first_unstable_offset(), None);

    // Truncate to just below the second abort's marker: that transaction
    // is open again, and its entry is gone (in memory and on disk).
    assert!(log.truncate_to(second_abort).expect("truncate"));
    assert_eq!(
        aborted(&log)
            .iter()
            .map(|a| a.last_offset)
            .collect::<Vec<_>>(),
        vec![first_abort]
    );
    assert_eq!(log.reader().first_unstable_offset(), Some(second_first));
    log.close().expect("close");
    let log = open(dir.path(), small_config());
    assert_eq!(aborted(&log).len(), 1);
    assert_eq!(log.reader().first_unstable_offset(), Some(second_first));

    // Restarting empty forgets everything.
    let mut log = log;
    log.truncate_fully_and_start_at(100).expect("restart");
    assert!(aborted(&log).is_empty());
    assert_eq!(log.reader().first_unstable_offset(), None);
    log.close().expect("close");
    let log = open(dir.path(), small_config());
    assert!(aborted(&log).is_empty());
}

#[test]
fn followers_learn_transactions_from_what_they_replicate() {
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let mut leader = open(leader_dir.path(), small_config());
    let mut follower = open(follower_dir.path(), small_config());
    append(&mut leader, txn_batch(5, 0, 0, 3));
    end(&mut leader, 5, 0, false);
    append(&mut leader, txn_batch(6, 0, 0, 3));
    append(&mut leader, txn_batch(5, 1, 0, 1)); // next transaction of 5
    for batch in read_all(&leader.reader(), 0) {
        follower
            .append_as_follower(batch.into_bytes())
            .expect("follower append");
    }
    assert_eq!(aborted(&follower), aborted(&leader));
    assert_eq!(
        follower.reader().first_unstable_offset(),
        leader.reader().first_unstable_offset()
    );
    assert_eq!(follower.reader().first_unstable_offset(), Some(4));
}

#[test]
fn read_committed_stops_at_the_last_stable_offset_and_lists_aborts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let (a_first, _) = append(&mut log, txn_batch(1, 0, 0, 2)); // 0..=1, aborted
    append(&mut log, plain_batch(1)); // 2
    let abort_at = end(&mut log, 1, 0, false); // 3
    append(&mut log, plain_batch(1)); // 4
    let (open_first, _) = append(&mut log, txn_batch(2, 0, 0, 2)); // 5..=6, open
    append(&mut log, plain_batch(1)); // 7
    let reader = log.reader();

    let (data, aborted) = reader.read_committed(0, 1 << 20).expect("read");
    let batches: Vec<_> = strom_log::batch::BatchIter::new(data.records.clone())
        .map(|b| b.expect("batch").base_offset())
        .collect();
    assert_eq!(batches, vec![0, 2, 3, 4], "stops at the open transaction");
    assert_eq!(
        aborted,
        vec![AbortedTxn {
            producer_id: 1,
            first_offset: a_first,
            last_offset: abort_at,
            last_stable_offset: abort_at + 1,
        }]
    );
    // read_uncommitted is unchanged: all six batches.
    assert_eq!(
        strom_log::batch::BatchIter::new(reader.read(0, 1 << 20).expect("read").records).count(),
        6
    );
    // At the LSO nothing is returned, and no abort either.
    let (data, aborted) = reader.read_committed(open_first, 1 << 20).expect("read");
    assert!(data.records.is_empty() && aborted.is_empty());
    // After the marker the rest is readable.
    end(&mut log, 2, 0, true);
    let (data, aborted) = log
        .reader()
        .read_committed(open_first, 1 << 20)
        .expect("read");
    assert_eq!(strom_log::batch::BatchIter::new(data.records).count(), 3);
    assert!(aborted.is_empty());
}

/// A keyed record of transactional batch `pid`/`epoch`/`seq`.
fn keyed_txn(pid: i64, epoch: i16, seq: i32, key: &[u8], value: &[u8]) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None)
        .producer(pid, epoch, seq)
        .transactional(true);
    b.append(1_000, Some(key), Some(value), &[]);
    b.build()
}

fn keyed(key: &[u8], value: &[u8]) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.append(1_000, Some(key), Some(value), &[]);
    b.build()
}

/// The values of `key` left in the log, in offset order.
fn values_of(log: &PartitionLog, key: &[u8]) -> Vec<Vec<u8>> {
    read_all(&log.reader(), log.log_start_offset())
        .into_iter()
        .filter(|b| !b.is_control())
        .flat_map(|b| b.records().expect("records"))
        .filter(|r| r.key.as_deref() == Some(key))
        .map(|r| r.value.expect("value").to_vec())
        .collect()
}

/// The cleaner must not let an aborted record supersede a committed one,
/// and must not clean past the last stable offset.
#[test]
fn compaction_never_lets_aborted_or_open_records_supersede_committed_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        cleanup_policy: strom_log::CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..small_config()
    };
    let mut log = open(dir.path(), config);
    append(&mut log, keyed(b"k", b"committed"));
    append(&mut log, keyed_txn(1, 0, 0, b"k", b"aborted"));
    end(&mut log, 1, 0, false);
    append(&mut log, keyed(b"j", b"j1"));
    // The aborted transaction's segment is below the LSO: cleanable.
    log.roll_now().expect("roll");
    append(&mut log, keyed_txn(2, 0, 0, b"j", b"open"));
    append(&mut log, keyed(b"x", b"filler"));
    log.roll_now().expect("roll");
    log.set_high_watermark(log.log_end_offset());
    let mut map = strom_log::OffsetMap::with_memory(1 << 16);
    log.clean(&mut map, &mut |_| {}).expect("clean");
    // The committed value of k survives its aborted successor, which the
    // cleaner removed.
    assert_eq!(values_of(&log, b"k"), vec![b"committed".to_vec()]);
    // Nothing at or after the open transaction was cleaned: j1 stays.
    assert_eq!(
        values_of(&log, b"j"),
        vec![b"j1".to_vec(), b"open".to_vec()]
    );
    let first_dirty = log.reader().first_dirty_offset();
    assert!(first_dirty > 0, "the first segment was cleaned");
    assert!(first_dirty <= log.last_stable_offset());

    // Once committed, j's transactional value supersedes j1; a later
    // committed k supersedes both older k records.
    end(&mut log, 2, 0, true);
    append(&mut log, keyed(b"k", b"newer"));
    log.roll_now().expect("roll");
    log.set_high_watermark(log.log_end_offset());
    log.clean(&mut map, &mut |_| {}).expect("clean");
    assert_eq!(values_of(&log, b"j"), vec![b"open".to_vec()]);
    assert_eq!(values_of(&log, b"k"), vec![b"newer".to_vec()]);
    // The abort marker waits for its delete horizon (a day by default), so
    // its index entry stays.
    assert_eq!(aborted(&log).len(), 1);
}

/// (offset, commit) of every marker left in the log.
fn markers_of(log: &PartitionLog) -> Vec<(i64, bool)> {
    read_all(&log.reader(), log.log_start_offset())
        .into_iter()
        .filter(|b| b.is_control())
        .map(|b| {
            let m = strom_log::batch::control::marker_of(&b, 0)
                .expect("a marker")
                .expect("control");
            (m.offset, m.commit)
        })
        .collect()
}

/// Kafka's cleaner with transactions: a pass removes every record of an
/// aborted transaction (superseded or not); a later pass, finding the
/// transaction empty, gives its marker a delete horizon; a pass after the
/// horizon removes the marker and its aborted-transaction index entry. A
/// commit marker goes the same way once its records are all superseded.
/// Readers see the same committed data throughout, and a reopen, even one
/// that replays the whole log, finds no transaction open.
#[test]
fn the_cleaner_removes_aborted_records_then_markers_after_the_delete_horizon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        cleanup_policy: strom_log::CleanupPolicy {
            delete: false,
            compact: true,
        },
        delete_retention_ms: 1_000,
        ..small_config()
    };
    let clock = std::sync::Arc::new(strom_log::ManualClock::new(1_000_000));
    let reopen = |log: PartitionLog| {
        log.close().expect("close");
        PartitionLog::open_with_clock(dir.path(), config.clone(), clock.clone()).expect("open")
    };
    let mut log =
        PartitionLog::open_with_clock(dir.path(), config.clone(), clock.clone()).expect("open");
    let mut map = strom_log::OffsetMap::with_memory(1 << 16);
    let mut pass = |log: &mut PartitionLog, dirty: &[u8]| {
        if !dirty.is_empty() {
            append(log, keyed(dirty, b"dirty"));
            log.roll_now().expect("roll");
            log.set_high_watermark(log.log_end_offset());
        }
        log.clean(&mut map, &mut |_| {})
            .expect("clean")
            .expect("a pass ran")
    };
    append(&mut log, keyed(b"k", b"committed"));
    append(&mut log, keyed_txn(1, 0, 0, b"k", b"aborted"));
    append(&mut log, keyed_txn(1, 0, 1, b"z", b"aborted-only"));
    let abort_at = end(&mut log, 1, 0, false);
    append(&mut log, keyed_txn(2, 0, 0, b"c", b"c-committed"));
    let commit_at = end(&mut log, 2, 0, true);
    // What a read_committed reader sees from the log start, fetch after
    // fetch, besides the filler records.
    let visible = |log: &PartitionLog| {
        let mut out = Vec::new();
        let mut from = log.log_start_offset();
        loop {
            let (data, _) = log.reader().read_committed(from, 1 << 20).expect("read");
            let Some(last) = strom_log::batch::BatchIter::new(data.records)
                .map(|b| b.expect("batch").next_offset())
                .last()
            else {
                break;
            };
            out.extend(consume_committed(log, from));
            from = last;
        }
        out.retain(|v| v != b"dirty");
        out
    };
    let committed = vec![b"committed".to_vec(), b"c-committed".to_vec()];
    assert_eq!(visible(&log), committed);

    // Pass 1: the aborted records go, the markers stay.
    let stats = pass(&mut log, b"d1");
    assert_eq!((stats.records_removed, stats.markers_removed), (2, 0));
    assert!(values_of(&log, b"z").is_empty());
    assert_eq!(values_of(&log, b"k"), vec![b"committed".to_vec()]);
    assert_eq!(markers_of(&log), vec![(abort_at, false), (commit_at, true)]);
    assert_eq!(visible(&log), committed);

    // Pass 2: the abort marker's transaction is empty: it gets a horizon
    // but stays until it passes. c is superseded now, so in the pass after
    // the commit marker's transaction is empty too.
    append(&mut log, keyed(b"c", b"c-newer"));
    let stats = pass(&mut log, b"d2");
    assert_eq!(stats.markers_removed, 0);
    assert_eq!(markers_of(&log), vec![(abort_at, false), (commit_at, true)]);
    assert_eq!(aborted(&log).len(), 1);
    clock.advance(999);
    let stats = pass(&mut log, b"d3");
    assert_eq!(stats.markers_removed, 0);
    assert_eq!(markers_of(&log), vec![(abort_at, false), (commit_at, true)]);

    // The abort marker's horizon passed: a pass comes for it even with
    // nothing dirty, and removes it with its index entry.
    clock.advance(1);
    let stats = pass(&mut log, b"");
    assert_eq!(stats.markers_removed, 1);
    assert_eq!(markers_of(&log), vec![(commit_at, true)]);
    assert!(aborted(&log).is_empty());
    let now_committed = vec![b"committed".to_vec(), b"c-newer".to_vec()];
    assert_eq!(visible(&log), now_committed);

    // The commit marker got its horizon a pass later (the pass after its
    // records went); it goes once that passed.
    clock.advance(1_000);
    let stats = pass(&mut log, b"");
    assert_eq!(stats.markers_removed, 1);
    assert!(markers_of(&log).is_empty());
    assert_eq!(visible(&log), now_committed);

    // Reopened, and replayed from the log start without snapshots: the
    // header-only batches left of both transactions open none.
    let log = reopen(log);
    assert!(aborted(&log).is_empty());
    assert_eq!(log.reader().first_unstable_offset(), None);
    log.close().expect("close");
    for entry in std::fs::read_dir(dir.path()).expect("list") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(path).expect("remove snapshot");
        }
    }
    let log =
        PartitionLog::open_with_clock(dir.path(), config.clone(), clock.clone()).expect("open");
    assert_eq!(log.reader().first_unstable_offset(), None);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert_eq!(visible(&log), now_committed);
}

mod model {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Data { pid: i64 },
        Plain,
        Marker { pid: i64, commit: bool },
        Roll,
        Truncate { back: i64 },
        CloseReopen,
        CrashReopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3i64).prop_map(|pid| Op::Data { pid }),
            2 => Just(Op::Plain),
            3 => (0..3i64, any::<bool>()).prop_map(|(pid, commit)| Op::Marker { pid, commit }),
            1 => Just(Op::Roll),
            1 => (1..6i64).prop_map(|back| Op::Truncate { back }),
            1 => Just(Op::CloseReopen),
            1 => Just(Op::CrashReopen),
        ]
    }

    /// What was appended: (offset, producer id or -1, marker: Some(commit)).
    type Appended = Vec<(i64, i64, Option<bool>)>;

    /// The aborted transactions and the first unstable offset of `log`,
    /// computed from the appended batches alone.
    fn expected(log: &Appended) -> (Vec<AbortedTxn>, Option<i64>) {
        let mut open: BTreeMap<i64, i64> = BTreeMap::new();
        let mut aborted = Vec::new();
        for &(offset, pid, marker) in log {
            match marker {
                None if pid >= 0 => {
                    open.entry(pid).or_insert(offset);
                }
                None => {}
                Some(commit) => {
                    if let Some(first) = open.remove(&pid)
                        && !commit
                    {
                        aborted.push(AbortedTxn {
                            producer_id: pid,
                            first_offset: first,
                            last_offset: offset,
                            last_stable_offset: open.values().min().copied().unwrap_or(offset + 1),
                        });
                    }
                }
            }
        }
        (aborted, open.values().min().copied())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: common::cases(48), ..ProptestConfig::default() })]

        /// Random transactional traffic with rolls, truncations and clean
        /// and unclean reopens: the log's aborted-transaction index and
        /// first unstable offset always match what its batches say.
        #[test]
        fn the_index_and_the_lso_follow_the_batches(ops in proptest::collection::vec(op(), 1..50)) {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = LogConfig { segment_bytes: 2048, ..small_config() };
            let mut log = open(dir.path(), config.clone());
            let mut appended: Appended = Vec::new();
            for op in ops {
                match op {
                    Op::Data { pid } => {
                        let seq = appended.iter().filter(|(_, p, m)| *p == pid && m.is_none()).count() as i32;
                        let (first, _) = append(&mut log, txn_batch(pid, 0, seq, 1));
                        appended.push((first, pid, None));
                    }
                    Op::Plain => {
                        let (first, _) = append(&mut log, plain_batch(1));
                        appended.push((first, -1, None));
                    }
                    Op::Marker { pid, commit } => {
                        let at = end(&mut log, pid, 0, commit);
                        appended.push((at, pid, Some(commit)));
                    }
                    Op::Roll => log.roll_now().expect("roll"),
                    Op::Truncate { back } => {
                        let to = (log.log_end_offset() - back).max(0);
                        log.truncate_to(to).expect("truncate");
                        let end = log.log_end_offset();
                        appended.retain(|(o, _, _)| *o < end);
                    }
                    Op::CloseReopen => {
                        log.close().expect("close");
                        log = open(dir.path(), config.clone());
                    }
                    Op::CrashReopen => {
                        drop(log);
                        log = open(dir.path(), config.clone());
                    }
                }
                let (want_aborted, want_first) = expected(&appended);
                prop_assert_eq!(aborted(&log), want_aborted);
                prop_assert_eq!(log.reader().first_unstable_offset(), want_first);
            }
        }
    }
}

/// What a read_committed consumer gets: the fetch up to the LSO, filtered
/// with the aborted transactions it returned.
fn consume_committed(log: &PartitionLog, from: i64) -> Vec<Vec<u8>> {
    let (data, aborted) = log.reader().read_committed(from, 1 << 20).expect("read");
    let mut filter = strom_log::AbortedFilter::new(aborted);
    let mut out = Vec::new();
    for batch in strom_log::batch::BatchIter::new(data.records) {
        let batch = batch.expect("batch");
        if filter.keep(&batch).expect("filter") {
            out.extend(
                batch
                    .records()
                    .expect("records")
                    .into_iter()
                    .map(|r| r.value.expect("value").to_vec()),
            );
        }
    }
    out
}

#[test]
fn a_read_committed_consumer_sees_committed_and_plain_records_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    // Interleaved: producer 1 aborts twice around a commit, producer 2
    // commits across producer 1's aborted transaction, plain records
    // between.
    append(&mut log, keyed_txn(1, 0, 0, b"k", b"a1-aborted"));
    append(&mut log, keyed_txn(2, 0, 0, b"k", b"b1-committed"));
    append(&mut log, keyed(b"k", b"plain-1"));
    append(&mut log, keyed_txn(1, 0, 1, b"k", b"a1-aborted-too"));
    end(&mut log, 1, 0, false);
    append(&mut log, keyed_txn(1, 0, 2, b"k", b"a2-committed"));
    append(&mut log, keyed_txn(2, 0, 1, b"k", b"b1-committed-too"));
    end(&mut log, 1, 0, true);
    end(&mut log, 2, 0, true);
    append(&mut log, keyed_txn(1, 0, 3, b"k", b"a3-aborted"));
    append(&mut log, keyed(b"k", b"plain-2"));
    end(&mut log, 1, 0, false);
    let want: Vec<Vec<u8>> = [
        "b1-committed",
        "plain-1",
        "a2-committed",
        "b1-committed-too",
        "plain-2",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    assert_eq!(consume_committed(&log, 0), want);
    // From the middle: the abort that began before the fetch offset still
    // applies (its marker is after it).
    assert_eq!(consume_committed(&log, 3), want[2..].to_vec());
    // An open transaction holds everything after it back.
    append(&mut log, keyed_txn(2, 0, 2, b"k", b"b2-open"));
    append(&mut log, keyed(b"k", b"plain-3"));
    assert_eq!(consume_committed(&log, 0), want);
    end(&mut log, 2, 0, false);
    assert_eq!(
        consume_committed(&log, 0),
        [want, vec![b"plain-3".to_vec()]].concat()
    );
}

/// Every value a `read_committed` reader gets from the log start, fetch
/// after fetch.
fn read_committed_all(log: &PartitionLog) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    loop {
        let (data, _) = log.reader().read_committed(from, 1 << 20).expect("read");
        let Some(last) = strom_log::batch::BatchIter::new(data.records)
            .map(|b| b.expect("batch").next_offset())
            .last()
        else {
            break;
        };
        out.extend(consume_committed(log, from));
        from = last;
    }
    out
}

mod cleaner_model {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Data { pid: i64, key: u8 },
        Plain { key: u8 },
        Marker { pid: i64, commit: bool },
        Roll,
        Clean,
        Advance,
        CloseReopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1..4i64, 0..4u8).prop_map(|(pid, key)| Op::Data { pid, key }),
            2 => (0..4u8).prop_map(|key| Op::Plain { key }),
            3 => (1..4i64, any::<bool>()).prop_map(|(pid, commit)| Op::Marker { pid, commit }),
            2 => Just(Op::Roll),
            3 => Just(Op::Clean),
            1 => Just(Op::Advance),
            1 => Just(Op::CloseReopen),
        ]
    }

    /// One appended record: offset, key, value, producer (-1: plain).
    type Written = (i64, u8, Vec<u8>, i64);

    proptest! {
        #![proptest_config(ProptestConfig { cases: common::cases(32), ..ProptestConfig::default() })]

        /// Random transactional traffic on a compacted log with cleaning
        /// passes, time passing (markers reach their delete horizon) and
        /// reopens: a read_committed reader never sees an aborted or open
        /// record, always sees the newest decided value of every key below
        /// the last stable offset, sees values in offset order, and the
        /// last stable offset stays at the earliest open transaction.
        #[test]
        fn read_committed_readers_keep_their_view_while_the_cleaner_runs(
            ops in proptest::collection::vec(op(), 1..60)
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = LogConfig {
                cleanup_policy: strom_log::CleanupPolicy { delete: false, compact: true },
                delete_retention_ms: 100,
                min_cleanable_dirty_ratio: 0.0,
                ..small_config()
            };
            let clock = std::sync::Arc::new(strom_log::ManualClock::new(1_000_000));
            let open_log = || {
                PartitionLog::open_with_clock(dir.path(), config.clone(), clock.clone())
                    .expect("open")
            };
            let mut log = open_log();
            let mut map = strom_log::OffsetMap::with_memory(1 << 16);
            let mut written: Vec<Written> = Vec::new();
            // Per producer: next sequence, and the offset its open
            // transaction began at.
            let mut seq: BTreeMap<i64, i32> = BTreeMap::new();
            let mut open: BTreeMap<i64, i64> = BTreeMap::new();
            // Offsets of records in committed and in aborted transactions.
            let mut txn_records: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            let mut committed: BTreeSet<i64> = BTreeSet::new();
            let mut aborted: BTreeSet<i64> = BTreeSet::new();
            let mut n = 0u32;
            for op in ops {
                match op {
                    Op::Data { pid, key } => {
                        n += 1;
                        let value = format!("v{n}").into_bytes();
                        let s = seq.entry(pid).or_insert(0);
                        let (at, _) = append(&mut log, keyed_txn(pid, 0, *s, &[key], &value));
                        *s += 1;
                        open.entry(pid).or_insert(at);
                        txn_records.entry(pid).or_default().push(at);
                        written.push((at, key, value, pid));
                    }
                    Op::Plain { key } => {
                        n += 1;
                        let value = format!("v{n}").into_bytes();
                        let (at, _) = append(&mut log, keyed(&[key], &value));
                        written.push((at, key, value, -1));
                    }
                    Op::Marker { pid, commit } => {
                        end(&mut log, pid, 0, commit);
                        open.remove(&pid);
                        let records = txn_records.remove(&pid).unwrap_or_default();
                        if commit { committed.extend(records) } else { aborted.extend(records) }
                    }
                    Op::Roll => {
                        log.roll_now().expect("roll");
                    }
                    Op::Clean => {
                        log.clean(&mut map, &mut |_| {}).expect("clean");
                    }
                    Op::Advance => clock.advance(60),
                    Op::CloseReopen => {
                        log.close().expect("close");
                        log = open_log();
                    }
                }
                let lso = log.last_stable_offset();
                let first_open = open.values().min().copied();
                prop_assert_eq!(log.reader().first_unstable_offset(), first_open);
                let seen = read_committed_all(&log);
                // Decided and visible: plain or committed, below the LSO.
                let decided = |w: &&Written| {
                    w.0 < lso && (w.3 < 0 || committed.contains(&w.0))
                };
                let allowed: Vec<&Written> = written.iter().filter(decided).collect();
                // `seen` is a subsequence of the decided values in order.
                let mut rest = allowed.iter().map(|w| &w.2);
                for value in &seen {
                    prop_assert!(
                        rest.any(|v| v == value),
                        "{:?} seen out of order or not decided ({:?})",
                        String::from_utf8_lossy(value),
                        aborted
                    );
                }
                // The newest decided value of each key is there.
                let mut newest: BTreeMap<u8, &Vec<u8>> = BTreeMap::new();
                for w in &allowed {
                    newest.insert(w.1, &w.2);
                }
                for (key, value) in newest {
                    prop_assert!(
                        seen.contains(value),
                        "key {} lost its newest value {:?}",
                        key,
                        String::from_utf8_lossy(value)
                    );
                }
            }
        }
    }
}
