use super::*;

/// A batch of `count` records from `pid`/`epoch` starting at sequence
/// `seq`, stored at `offset`.
fn batch(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> ProducerBatch {
    ProducerBatch {
        producer_id: pid,
        producer_epoch: epoch,
        first_seq: seq,
        last_seq: ProducerBatch::last_sequence(seq, count - 1),
        first_offset: offset,
        last_offset: offset + i64::from(count) - 1,
        max_timestamp: 1_000 + offset,
        is_transactional: false,
    }
}

/// A table that stored `batches` in order.
fn table(batches: &[ProducerBatch]) -> ProducerStateTable {
    let mut t = ProducerStateTable::new();
    for b in batches {
        t.update(b);
    }
    t
}

#[derive(Debug, PartialEq, Eq)]
enum Want {
    Append,
    Duplicate { first_offset: i64, last_offset: i64 },
    InvalidEpoch,
    OutOfOrder { expected: i32 },
    Unknown,
}

fn verdict(t: &ProducerStateTable, b: &ProducerBatch) -> Want {
    match t.check(b) {
        Ok(Verdict::Append) => Want::Append,
        Ok(Verdict::Duplicate(m)) => Want::Duplicate {
            first_offset: m.first_offset,
            last_offset: m.last_offset,
        },
        Err(LogError::InvalidProducerEpoch { .. }) => Want::InvalidEpoch,
        Err(LogError::OutOfOrderSequence { expected, .. }) => Want::OutOfOrder { expected },
        Err(LogError::UnknownProducerId { .. }) => Want::Unknown,
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn check_follows_kafkas_sequence_and_epoch_rules() {
    // Producer 7, epoch 3, wrote sequences 0..=4 at offsets 100..=104 and
    // 5..=9 at offsets 110..=114.
    let history = [batch(7, 3, 0, 5, 100), batch(7, 3, 5, 5, 110)];
    let cases: &[(&str, ProducerBatch, Want)] = &[
        ("next in sequence", batch(7, 3, 10, 2, 0), Want::Append),
        (
            "retry of the last batch",
            batch(7, 3, 5, 5, 0),
            Want::Duplicate {
                first_offset: 110,
                last_offset: 114,
            },
        ),
        (
            "retry of an older cached batch",
            batch(7, 3, 0, 5, 0),
            Want::Duplicate {
                first_offset: 100,
                last_offset: 104,
            },
        ),
        (
            "a gap",
            batch(7, 3, 12, 1, 0),
            Want::OutOfOrder { expected: 10 },
        ),
        (
            "overlapping but not equal to a cached batch",
            batch(7, 3, 3, 4, 0),
            Want::OutOfOrder { expected: 10 },
        ),
        (
            "an older epoch (zombie)",
            batch(7, 2, 10, 1, 0),
            Want::InvalidEpoch,
        ),
        ("a newer epoch from 0", batch(7, 4, 0, 1, 0), Want::Append),
        (
            "a newer epoch not from 0",
            batch(7, 4, 10, 1, 0),
            Want::OutOfOrder { expected: 0 },
        ),
        (
            "an unknown producer from 0",
            batch(8, 0, 0, 3, 0),
            Want::Append,
        ),
        (
            "an unknown producer past 0",
            batch(8, 0, 42, 3, 0),
            Want::Unknown,
        ),
    ];
    let t = table(&history);
    for (name, b, want) in cases {
        assert_eq!(&verdict(&t, b), want, "{name}");
    }
    // Checking changes nothing.
    assert_eq!(t, table(&history));
}

#[test]
fn sequences_wrap_at_i32_max() {
    assert_eq!(ProducerBatch::last_sequence(i32::MAX, 0), i32::MAX);
    assert_eq!(ProducerBatch::last_sequence(i32::MAX, 1), 0);
    assert_eq!(ProducerBatch::last_sequence(i32::MAX - 1, 3), 1);
    assert_eq!(ProducerBatch::last_sequence(5, 3), 8);

    let t = table(&[batch(1, 0, i32::MAX - 2, 3, 0)]);
    assert_eq!(t.get(1).and_then(ProducerEntry::last_seq), Some(i32::MAX));
    assert_eq!(verdict(&t, &batch(1, 0, 0, 1, 3)), Want::Append);
    assert_eq!(
        verdict(&t, &batch(1, 0, i32::MAX, 1, 3)),
        Want::OutOfOrder { expected: 0 }
    );
    // A batch that itself wraps.
    let t = table(&[batch(1, 0, i32::MAX - 1, 4, 0)]);
    assert_eq!(t.get(1).and_then(ProducerEntry::last_seq), Some(1));
    assert_eq!(verdict(&t, &batch(1, 0, 2, 1, 4)), Want::Append);
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let history: Vec<_> = (0..7).map(|i| batch(1, 0, i, 1, i64::from(i))).collect();
    let t = table(&history);
    let entry = t.get(1).expect("known producer");
    assert_eq!(entry.batches.len(), CACHED_BATCHES);
    assert_eq!(entry.batches.front().map(|b| b.first_seq), Some(2));
    // Batches 2..=6 are answered as duplicates; 0 and 1 fell out of the
    // cache and are out of order (the client has long had their answer).
    assert_eq!(
        verdict(&t, &batch(1, 0, 2, 1, 0)),
        Want::Duplicate {
            first_offset: 2,
            last_offset: 2
        }
    );
    assert_eq!(
        verdict(&t, &batch(1, 0, 1, 1, 0)),
        Want::OutOfOrder { expected: 7 }
    );
}

#[test]
fn a_new_epoch_forgets_the_old_epochs_batches() {
    let mut t = table(&[batch(1, 0, 0, 3, 0)]);
    t.update(&batch(1, 1, 0, 2, 3));
    let entry = t.get(1).expect("known producer");
    assert_eq!(entry.epoch, 1);
    assert_eq!(entry.batches.len(), 1);
    assert_eq!(verdict(&t, &batch(1, 0, 3, 1, 0)), Want::InvalidEpoch);
    assert_eq!(verdict(&t, &batch(1, 1, 2, 1, 0)), Want::Append);
}

#[test]
fn expiry_forgets_idle_producers() {
    let mut t = table(&[batch(1, 0, 0, 1, 0), batch(2, 0, 0, 1, 500)]);
    // Producer 1's last timestamp is 1000, producer 2's 1500.
    assert_eq!(t.remove_expired(2_000, 1_000), 1);
    assert!(t.get(1).is_none());
    assert!(t.get(2).is_some());
    assert_eq!(verdict(&t, &batch(1, 0, 1, 1, 0)), Want::Unknown);
}

#[test]
fn a_request_is_checked_batch_after_batch() {
    let t = table(&[batch(1, 0, 0, 2, 0)]);
    // Two batches of producer 1 in one request: the second follows the first.
    assert!(matches!(
        t.check_all(&[batch(1, 0, 2, 2, 2), batch(1, 0, 4, 1, 4)]),
        Ok(Verdict::Append)
    ));
    // A gap inside the request.
    assert!(matches!(
        t.check_all(&[batch(1, 0, 2, 2, 2), batch(1, 0, 5, 1, 4)]),
        Err(LogError::OutOfOrderSequence { expected: 4, .. })
    ));
    // A new producer with two batches.
    assert!(matches!(
        t.check_all(&[batch(9, 0, 0, 2, 2), batch(9, 0, 2, 1, 4)]),
        Ok(Verdict::Append)
    ));
    // A duplicate decides for the whole request.
    assert!(matches!(
        t.check_all(&[batch(1, 0, 0, 2, 2), batch(1, 0, 2, 1, 4)]),
        Ok(Verdict::Duplicate(BatchMetadata {
            first_offset: 0,
            ..
        }))
    ));
}

#[test]
fn snapshots_round_trip_and_detect_damage() {
    let t = table(&[
        batch(1, 0, 0, 2, 0),
        batch(2, 5, 7, 2, 2),
        batch(1, 0, 2, 2, 4),
        batch(i64::MAX, i16::MAX, i32::MAX, 1, 6),
    ]);
    let bytes = t.encode();
    assert_eq!(ProducerStateTable::decode(&bytes).expect("decodes"), t);
    assert_eq!(
        ProducerStateTable::decode(&ProducerStateTable::new().encode()).expect("decodes"),
        ProducerStateTable::new()
    );
    for cut in 0..bytes.len() {
        assert!(
            ProducerStateTable::decode(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        assert!(
            ProducerStateTable::decode(&damaged).is_err(),
            "flip at {at}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(ProducerStateTable::decode(&longer).is_err());
}

fn txn(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> ProducerBatch {
    ProducerBatch {
        is_transactional: true,
        ..batch(pid, epoch, seq, count, offset)
    }
}

fn end_marker(
    pid: i64,
    epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    offset: i64,
) -> MarkerBatch {
    MarkerBatch {
        producer_id: pid,
        producer_epoch: epoch,
        coordinator_epoch,
        commit,
        offset,
        timestamp: 5_000,
    }
}

#[test]
fn transactions_open_at_their_first_batch_and_close_at_their_marker() {
    let mut t = table(&[
        txn(1, 0, 0, 2, 10),
        txn(2, 0, 0, 1, 12),
        txn(1, 0, 2, 1, 13),
    ]);
    assert_eq!(t.first_unstable_offset(), Some(10));
    assert_eq!(
        t.ongoing_transactions().collect::<Vec<_>>(),
        vec![(10, 1), (12, 2)]
    );
    assert_eq!(t.get(1).unwrap().current_txn_first_offset, Some(10));
    let done = t.complete_txn(&end_marker(1, 1, 0, false, 14));
    assert_eq!(
        done,
        Some(CompletedTxn {
            producer_id: 1,
            first_offset: 10,
            last_offset: 14,
            is_aborted: true
        })
    );
    // The marker's epoch becomes the producer's, with no cached batches.
    let e = t.get(1).unwrap();
    assert_eq!((e.epoch, e.batches.len(), e.coordinator_epoch), (1, 0, 0));
    assert_eq!(t.first_unstable_offset(), Some(12));
    let done = t.complete_txn(&end_marker(2, 0, 0, true, 15)).unwrap();
    assert!(!done.is_aborted);
    assert_eq!(t.first_unstable_offset(), None);
    // A marker without an open transaction completes nothing.
    assert_eq!(t.complete_txn(&end_marker(2, 0, 0, true, 16)), None);
    assert_eq!(t.complete_txn(&end_marker(9, 0, 0, true, 17)), None);
    assert_eq!(t.get(9).unwrap().epoch, 0, "an unknown producer is learned");
}

#[test]
fn transactional_check_rules() {
    let open = table(&[txn(1, 2, 0, 1, 0)]);
    let idle = table(&[batch(1, 2, 0, 1, 0)]);
    // (name, table, batch, InvalidTxnState expected)
    let cases: &[(&str, &ProducerStateTable, ProducerBatch, bool)] = &[
        ("next transactional batch", &open, txn(1, 2, 1, 1, 1), false),
        ("plain batch while open", &open, batch(1, 2, 1, 1, 1), true),
        (
            "plain batch of a newer epoch while open",
            &open,
            batch(1, 3, 0, 1, 1),
            true,
        ),
        (
            "retry of the open transaction's batch",
            &open,
            batch(1, 2, 0, 1, 1),
            false,
        ),
        (
            "transactional batch opens one",
            &idle,
            txn(1, 2, 1, 1, 1),
            false,
        ),
        (
            "plain batch without a transaction",
            &idle,
            batch(1, 2, 1, 1, 1),
            false,
        ),
    ];
    for (name, t, b, refused) in cases {
        let r = t.check(b);
        assert_eq!(
            matches!(r, Err(LogError::InvalidTxnState { .. })),
            *refused,
            "{name}: {r:?}"
        );
    }
    // Markers: older producer epoch, older coordinator epoch.
    let mut t = open.clone();
    t.complete_txn(&end_marker(1, 3, 7, true, 1));
    let cases = [
        ("same epochs", end_marker(1, 3, 7, false, 2), None),
        ("newer epochs", end_marker(1, 4, 8, false, 2), None),
        (
            "older producer epoch",
            end_marker(1, 2, 7, false, 2),
            Some(crate::ErrorKind::InvalidProducerEpoch),
        ),
        (
            "older coordinator",
            end_marker(1, 3, 6, false, 2),
            Some(crate::ErrorKind::TransactionCoordinatorFenced),
        ),
        ("unknown producer", end_marker(5, 0, 0, false, 2), None),
    ];
    for (name, m, want) in cases {
        assert_eq!(t.check_marker(&m).err().map(|e| e.kind()), want, "{name}");
    }
}

#[test]
fn expiry_keeps_producers_with_an_open_transaction() {
    let mut t = table(&[txn(1, 0, 0, 1, 0), batch(2, 0, 0, 1, 1)]);
    assert_eq!(t.remove_expired(i64::MAX / 2, 10), 1);
    assert!(t.get(1).is_some() && t.get(2).is_none());
    assert_eq!(t.first_unstable_offset(), Some(0));
}

#[test]
fn snapshots_keep_open_transactions_and_read_version_1() {
    let mut t = table(&[
        txn(1, 0, 0, 2, 10),
        txn(2, 4, 0, 1, 12),
        batch(3, 0, 0, 1, 13),
    ]);
    t.complete_txn(&end_marker(2, 5, 9, false, 14));
    let back = ProducerStateTable::decode(&t.encode()).expect("decodes");
    assert_eq!(back, t);
    assert_eq!(back.first_unstable_offset(), Some(10));
    assert_eq!(back.get(2).unwrap().coordinator_epoch, 9);

    // A version 1 snapshot (before transactions): producer 3 with one batch.
    let mut body = Vec::new();
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&3i64.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&1_013i64.to_be_bytes());
    body.push(1);
    for v in [0i32, 0] {
        body.extend_from_slice(&v.to_be_bytes());
    }
    for v in [13i64, 13, 1_013] {
        body.extend_from_slice(&v.to_be_bytes());
    }
    let mut v1 = Vec::new();
    v1.extend_from_slice(&1i16.to_be_bytes());
    v1.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    v1.extend_from_slice(&body);
    let old = ProducerStateTable::decode(&v1).expect("version 1 decodes");
    assert_eq!(old, table(&[batch(3, 0, 0, 1, 13)]));
    let mut v3 = v1.clone();
    v3[1] = 3;
    assert!(ProducerStateTable::decode(&v3).is_err());
}

#[test]
fn a_transactional_batch_that_would_open_a_transaction_needs_verification() {
    let t = table(&[txn(1, 0, 0, 1, 0), batch(2, 0, 0, 1, 1)]);
    // (name, batch, needs verification)
    let cases = [
        ("open transaction continues", txn(1, 0, 1, 1, 2), false),
        // Its marker not written yet: the next transaction's first batch
        // (epoch bumped by the coordinator) must not join it.
        ("open transaction, next epoch", txn(1, 1, 0, 1, 2), true),
        ("open transaction, older epoch", txn(1, -1, 0, 1, 2), true),
        ("known producer, no transaction", txn(2, 0, 1, 1, 2), true),
        ("unknown producer", txn(3, 0, 0, 1, 2), true),
        ("not transactional", batch(2, 0, 1, 1, 2), false),
    ];
    for (name, b, want) in cases {
        assert_eq!(t.needs_txn_verification(&b), want, "{name}");
    }
    let mut closed = t.clone();
    closed.complete_txn(&end_marker(1, 1, 0, true, 3));
    assert!(closed.needs_txn_verification(&txn(1, 1, 0, 1, 4)));
}
