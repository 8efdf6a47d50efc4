use super::*;

fn tp(t: &str, p: i32) -> TopicPartition {
    (t.to_owned(), p)
}

fn value(state: TxnState) -> TxnMetadata {
    TxnMetadata {
        producer_id: 1000,
        previous_producer_id: 999,
        next_producer_id: 2000,
        producer_epoch: 5,
        timeout_ms: 60_000,
        state,
        partitions: if state == TxnState::Empty {
            BTreeSet::new()
        } else {
            [tp("a", 0), tp("a", 2), tp("b", 1)].into()
        },
        last_update_ms: 1_700_000_000_000,
        start_ms: 1_699_999_999_000,
        client_transaction_version: 2,
    }
}

/// `TransactionLogKey` v0 for "txn-1", from the schema: the record type
/// `int16` 0, then a non-flexible string.
#[test]
fn key_bytes_match_kafka() {
    let bytes = encode_key("txn-1");
    assert_eq!(bytes, [0, 0, 0, 5, b't', b'x', b'n', b'-', b'1']);
    assert_eq!(decode_key(&bytes).unwrap(), "txn-1");
}

/// `TransactionLogValue` v1 written field by field from the published
/// schema (flexible: compact arrays and strings, tagged fields 0, 1, 2
/// written only when not default).
#[test]
fn value_v1_bytes_match_kafka() {
    let mut v = value(TxnState::Ongoing);
    v.previous_producer_id = -1; // default: not written
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0, 1][..],                              // version 1
        &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],          // ProducerId 1000
        &[0, 5],                                  // ProducerEpoch 5
        &[0, 0, 0xea, 0x60],                      // TransactionTimeoutMs 60000
        &[1],                                     // TransactionStatus Ongoing
        &[3],                                     // 2 topics (compact: n + 1)
        &[2, b'a', 3, 0, 0, 0, 0, 0, 0, 0, 2, 0], // "a" [0, 2], no tags
        &[2, b'b', 2, 0, 0, 0, 1, 0],             // "b" [1], no tags
        &[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00], // last update
        &[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x64, 0x18], // start
        &[2],                                     // 2 tagged fields
        &[1, 8, 0, 0, 0, 0, 0, 0, 0x07, 0xd0],    // tag 1 NextProducerId 2000
        &[2, 2, 0, 2],                            // tag 2 ClientTransactionVersion 2
    ]
    .concat();
    assert_eq!(v.encode(1), expected);
    assert_eq!(TxnMetadata::decode(&expected).unwrap(), v);
}

/// `TransactionLogValue` v0 of an `Empty` id: non-flexible, partitions
/// null (`int32` -1), no tagged fields.
#[test]
fn value_v0_bytes_match_kafka() {
    let v = TxnMetadata {
        producer_id: 7,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: 0,
        timeout_ms: 60_000,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        last_update_ms: 1_700_000_000_000,
        start_ms: -1,
        client_transaction_version: 0,
    };
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0, 0][..],
        &[0, 0, 0, 0, 0, 0, 0, 7],
        &[0, 0],
        &[0, 0, 0xea, 0x60],
        &[0],
        &[0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00],
        &[0xff; 8],
    ]
    .concat();
    assert_eq!(v.encode(0), expected);
    assert_eq!(TxnMetadata::decode(&expected).unwrap(), v);
}

/// A v0 value with partitions: `int32` array lengths and `int16` strings.
#[test]
fn value_v0_with_partitions() {
    let v = value(TxnState::PrepareCommit);
    let bytes = v.encode(0);
    #[rustfmt::skip]
    let partitions: Vec<u8> = [
        &[0, 0, 0, 2][..],
        &[0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2],
        &[0, 1, b'b', 0, 0, 0, 1, 0, 0, 0, 1],
    ]
    .concat();
    assert_eq!(&bytes[17..17 + partitions.len()], &partitions[..]);
    // v0 has no tagged fields: previous/next ids and the client version
    // read back as their defaults.
    let back = TxnMetadata::decode(&bytes).unwrap();
    assert_eq!(
        back,
        TxnMetadata {
            previous_producer_id: -1,
            next_producer_id: -1,
            client_transaction_version: 0,
            ..v
        }
    );
}

#[test]
fn every_state_round_trips_in_both_versions() {
    for state in TxnState::ALL {
        if state == TxnState::PrepareEpochFence {
            continue;
        }
        let v = value(state);
        assert_eq!(TxnMetadata::decode(&v.encode(1)).unwrap(), v, "{state:?}");
        let r = Record::put("t", v.clone());
        let (k, val) = r.encode();
        assert_eq!(Record::decode(&k, val.as_deref()).unwrap(), r);
    }
    let t = Record::tombstone("t");
    let (k, val) = t.encode();
    assert_eq!(val, None);
    assert_eq!(Record::decode(&k, None).unwrap(), t);
}

#[test]
fn kafka_prepare_epoch_fence_reads_as_prepare_abort() {
    let mut v = value(TxnState::Ongoing);
    let mut bytes = v.encode(1);
    bytes[16] = TxnState::PrepareEpochFence.id() as u8;
    v.state = TxnState::PrepareAbort;
    assert_eq!(TxnMetadata::decode(&bytes).unwrap(), v);
}

#[test]
fn unknown_tagged_fields_are_skipped() {
    let v = value(TxnState::Ongoing);
    let mut bytes = v.encode(1);
    // Replace the tag section (3 fields) with one that adds tag 3.
    let tags_at = bytes.len() - (1 + 10 + 10 + 4);
    bytes.truncate(tags_at);
    bytes.extend_from_slice(&[4]);
    bytes.extend_from_slice(&[0, 8, 0, 0, 0, 0, 0, 0, 0x03, 0xe7]);
    bytes.extend_from_slice(&[1, 8, 0, 0, 0, 0, 0, 0, 0x07, 0xd0]);
    bytes.extend_from_slice(&[2, 2, 0, 2]);
    bytes.extend_from_slice(&[3, 2, 0x12, 0x34]);
    assert_eq!(TxnMetadata::decode(&bytes).unwrap(), v);
}

#[test]
fn corrupt_input_is_an_error_not_a_panic() {
    let good = value(TxnState::Ongoing).encode(1);
    let mut unknown_state = good.clone();
    unknown_state[16] = 9;
    let mut trailing = good.clone();
    trailing.push(0);
    let mut bad_version = good.clone();
    bad_version[1] = 2;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("unknown state", unknown_state),
        ("trailing", trailing),
        ("version 2", bad_version),
        (
            "huge array",
            [&good[..17], &[0xff, 0xff, 0xff, 0x0f]].concat(),
        ),
    ];
    for (name, bytes) in cases {
        let err = TxnMetadata::decode(&bytes).expect_err(name);
        assert_eq!(err.kind, crate::ErrorKind::CorruptMessage, "{name}");
    }
    for key in [
        &[][..],
        &[0, 1, 0, 1, b'x'],
        &[0, 0, 0, 5, b'x'],
        &[0, 0, 0, 1, b'x', 0],
    ] {
        assert_eq!(
            decode_key(key).unwrap_err().kind,
            crate::ErrorKind::CorruptMessage
        );
    }
}

#[test]
fn transaction_partition_matches_kafka() {
    // Kafka: Utils.abs("txn-1".hashCode()) % 50; Java's "txn-1".hashCode()
    // is 110810510, and 110810510 % 50 = 10.
    assert_eq!(strom_group::java_string_hash_code("txn-1"), 110_810_510);
    assert_eq!(crate::transaction_partition_for("txn-1", 50), 10);
    assert_eq!(
        crate::transaction_partition_for("g", 50),
        strom_group::offsets_partition_for("g", 50)
    );
}
