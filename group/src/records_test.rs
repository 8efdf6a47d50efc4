use super::*;

fn tid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn assignment(pairs: &[(u128, &[i32])]) -> Assignment {
    pairs
        .iter()
        .map(|(t, ps)| (tid(*t), ps.iter().copied().collect()))
        .collect()
}

fn all_records() -> Vec<Record> {
    let g = || "g".to_owned();
    let m = || "c0-1".to_owned();
    vec![
        Record::put(
            RecordKey::OffsetCommit {
                group: g(),
                topic: "first".into(),
                partition: 3,
            },
            RecordValue::OffsetCommit(OffsetCommitValue {
                offset: 42,
                leader_epoch: 7,
                metadata: "meta".into(),
                commit_timestamp_ms: 1_700_000_000_000,
            }),
        ),
        Record::tombstone(RecordKey::OffsetCommit {
            group: g(),
            topic: "first".into(),
            partition: 3,
        }),
        Record::put(
            RecordKey::GroupMetadata { group: g() },
            RecordValue::GroupMetadata {
                epoch: 5,
                metadata_hash: -12345,
            },
        ),
        Record::put(
            RecordKey::GroupMetadata { group: g() },
            RecordValue::GroupMetadata {
                epoch: 1,
                metadata_hash: 0,
            },
        ),
        Record::put(
            RecordKey::MemberMetadata {
                group: g(),
                member: m(),
            },
            RecordValue::MemberMetadata(MemberMetadata {
                instance_id: Some("i-1".into()),
                rack_id: None,
                client_id: "c0".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["a".into(), "b".into()],
                subscribed_topic_regex: Some("or.*".into()),
                rebalance_timeout_ms: 300_000,
                assignors: vec!["range".into(), "cooperative-sticky".into()],
                session_timeout_ms: 45_000,
            }),
        ),
        Record::put(
            RecordKey::TargetAssignmentMetadata { group: g() },
            RecordValue::TargetAssignmentMetadata {
                assignment_epoch: 5,
            },
        ),
        Record::put(
            RecordKey::TargetAssignmentMember {
                group: g(),
                member: m(),
            },
            RecordValue::TargetAssignmentMember(assignment(&[(1, &[0, 1, 2]), (2, &[5])])),
        ),
        Record::put(
            RecordKey::CurrentAssignment {
                group: g(),
                member: m(),
            },
            RecordValue::CurrentAssignment(CurrentAssignment {
                member_epoch: 5,
                previous_member_epoch: 4,
                state: Some(MemberState::UnrevokedPartitions),
                assigned: assignment(&[(1, &[0, 1])]),
                pending_revocation: assignment(&[(2, &[5, 6])]),
            }),
        ),
        Record::tombstone(RecordKey::MemberMetadata {
            group: g(),
            member: m(),
        }),
    ]
}

#[test]
fn every_record_round_trips() {
    for r in all_records() {
        let (k, v) = r.encode();
        let back = Record::decode(&k, v.as_deref()).expect("decodes");
        assert_eq!(back, r);
    }
}

#[test]
fn offset_commit_bytes_are_kafkas() {
    // Key version 1: int16 1, string group, string topic, int32 partition.
    let key = RecordKey::OffsetCommit {
        group: "g".into(),
        topic: "t".into(),
        partition: 2,
    };
    assert_eq!(key.encode(), [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2]);
    // Value version 3: offset, leader epoch, metadata, commit timestamp.
    let value = RecordValue::OffsetCommit(OffsetCommitValue {
        offset: 258,
        leader_epoch: -1,
        metadata: "".into(),
        commit_timestamp_ms: 1,
    });
    assert_eq!(
        value.encode(),
        [
            0, 3, // version
            0, 0, 0, 0, 0, 0, 1, 2, // offset
            255, 255, 255, 255, // leader epoch
            0, 0, // metadata ""
            0, 0, 0, 0, 0, 0, 0, 1, // commit timestamp
        ]
    );
    // Version 1 (Kafka 0.10-2.0) carries an expire timestamp; it is read
    // and dropped.
    let v1 = [
        0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, b'm', 0, 0, 0, 0, 0, 0, 0, 5, 255, 255, 255, 255, 255,
        255, 255, 255,
    ];
    assert_eq!(
        RecordValue::decode(&key, &v1).expect("v1 decodes"),
        RecordValue::OffsetCommit(OffsetCommitValue {
            offset: 9,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp_ms: 5,
        })
    );
}

#[test]
fn consumer_group_metadata_bytes_are_kafkas() {
    let key = RecordKey::GroupMetadata { group: "g".into() };
    assert_eq!(key.encode(), [0, 3, 0, 1, b'g']);
    let value = RecordValue::GroupMetadata {
        epoch: 2,
        metadata_hash: 0,
    };
    // Flexible v0: int16 version, int32 epoch, empty tagged fields.
    assert_eq!(value.encode(), [0, 0, 0, 0, 0, 2, 0]);
}

#[test]
fn unknown_tagged_fields_are_skipped() {
    let key = RecordKey::TargetAssignmentMetadata { group: "g".into() };
    // epoch 9, one tagged field (tag 7, 2 bytes) a newer writer added.
    let bytes = [0, 0, 0, 0, 0, 9, 1, 7, 2, 0xab, 0xcd];
    assert_eq!(
        RecordValue::decode(&key, &bytes).expect("decodes"),
        RecordValue::TargetAssignmentMetadata {
            assignment_epoch: 9
        }
    );
}

#[test]
fn corrupt_input_is_an_error_not_a_panic() {
    let cases: &[(&[u8], Option<&[u8]>)] = &[
        (&[], None),
        (&[0], None),
        (&[0, 2, 0, 1, b'g'], None), // classic group metadata: not supported
        (&[0, 99, 0, 0], None),
        (&[0, 1, 0, 5, b'g'], None), // string longer than the input
        (&[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0], None), // truncated partition
        (&[0, 3, 0, 1, b'g', 7], None), // trailing bytes
        (&[0, 3, 0, 1, 0xff], None), // not utf-8
        (&[0, 3, 0, 1, b'g'], Some(&[0, 1, 0, 0, 0, 1, 0])), // value version 1 unknown
        (&[0, 3, 0, 1, b'g'], Some(&[0, 0, 0, 0])), // truncated epoch
        (
            &[0, 8, 0, 1, b'g', 0, 1, b'm'],
            Some(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 5, 0xff]),
        ), // huge array
        (
            &[0, 6, 0, 1, b'g'],
            Some(&[
                0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ]),
        ),
    ];
    for (k, v) in cases {
        let err = Record::decode(k, *v).expect_err("must fail");
        assert_eq!(err.kind, crate::ErrorKind::CorruptMessage, "{k:?} {v:?}");
    }
}
