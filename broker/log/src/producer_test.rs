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
