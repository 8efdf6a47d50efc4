//! A leader refuses, before writing anything, batches whose records a
//! consumer could not read: wrong record counts, truncated or garbage
//! (compressed) record sections, even with a valid CRC (Kafka's
//! `LogValidator`). A follower stores what its leader accepted unchanged.

mod common;

use bytes::Bytes;
use common::{batch_with, read_all};
use strom_log::batch::HEADER_LEN;
use strom_log::{Compression, ErrorKind, LogConfig, PartitionLog};

const LAST_OFFSET_DELTA: usize = 23;
const RECORD_COUNT: usize = 57;

/// Fix `batchLength` and the CRC after an edit, as a buggy or malicious
/// producer that computes them over its wrong contents would.
fn reseal(batch: &mut [u8]) {
    let length = i32::try_from(batch.len() - 12).expect("small batch");
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn add_to_i32(batch: &mut [u8], at: usize, delta: i32) {
    let mut field = [0; 4];
    field.copy_from_slice(&batch[at..at + 4]);
    let value = i32::from_be_bytes(field) + delta;
    batch[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// A damage done to a well-formed batch of 3 records.
type Damage = fn(&mut Vec<u8>);

const DAMAGES: [(&str, Damage); 5] = [
    ("header claims one record more than there is", |b| {
        add_to_i32(b, RECORD_COUNT, 1);
        add_to_i32(b, LAST_OFFSET_DELTA, 1);
    }),
    ("header claims one record fewer than there is", |b| {
        add_to_i32(b, RECORD_COUNT, -1);
        add_to_i32(b, LAST_OFFSET_DELTA, -1);
    }),
    ("record count disagrees with the last offset delta", |b| {
        add_to_i32(b, RECORD_COUNT, 1);
    }),
    ("record section cut short", |b| {
        b.truncate(b.len() - 5);
    }),
    ("record section replaced by garbage", |b| {
        b.truncate(HEADER_LEN);
        b.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
    }),
];

#[test]
fn a_leader_refuses_batches_whose_records_do_not_match_the_header_and_writes_nothing() {
    for codec in Compression::ALL {
        for (damage_name, damage) in DAMAGES {
            let name = format!("{codec:?}: {damage_name}");
            let dir = tempfile::tempdir().expect("tempdir");
            let mut log = PartitionLog::open(dir.path(), LogConfig::default()).expect("open");
            log.append_as_leader(batch_with(codec, 2, 1_000, 50, 1), 0)
                .expect("a good batch first");
            let size_before = log.segments().expect("segments")[0].size_bytes;

            let mut bad = batch_with(codec, 3, 2_000, 50, 2).to_vec();
            damage(&mut bad);
            reseal(&mut bad);
            // A good batch ahead of the bad one in the same request is not
            // written either.
            let mut request = batch_with(codec, 1, 3_000, 50, 3).to_vec();
            request.extend_from_slice(&bad);
            let err = log
                .append_as_leader(Bytes::from(request), 0)
                .expect_err(&name);
            assert_eq!(err.kind(), ErrorKind::CorruptMessage, "{name}: {err}");

            assert_eq!(log.log_end_offset(), 2, "{name}: nothing appended");
            assert_eq!(
                log.segments().expect("segments")[0].size_bytes,
                size_before,
                "{name}: nothing written"
            );
            let after = log
                .append_as_leader(batch_with(codec, 2, 4_000, 50, 4), 0)
                .expect("the log still takes good batches");
            assert_eq!(after.first_offset, 2, "{name}");
            for stored in read_all(&log.reader(), 0) {
                stored.records().expect("every stored batch decodes");
            }
        }
    }
}

#[test]
fn the_refusal_says_which_batch_and_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).expect("open");
    let mut bad = batch_with(Compression::Zstd, 3, 0, 50, 0).to_vec();
    bad.truncate(bad.len() - 3);
    reseal(&mut bad);
    let err = log
        .append_as_leader(Bytes::from(bad), 0)
        .expect_err("truncated zstd");
    let text = err.to_string();
    assert!(
        text.contains("batch at byte 0") && text.contains("zstd decompression failed"),
        "{text}"
    );
}

#[test]
fn a_follower_stores_batches_as_its_leader_sent_them() {
    // The leader checked the records; the follower checks framing and CRC
    // only (a batch from before this check, or from a Kafka leader, is not
    // refused during replication).
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).expect("open");
    let mut odd = batch_with(Compression::None, 3, 0, 50, 0).to_vec();
    add_to_i32(&mut odd, RECORD_COUNT, -1);
    reseal(&mut odd);
    let info = log
        .append_as_follower(Bytes::from(odd))
        .expect("follower append");
    assert_eq!((info.first_offset, info.last_offset), (0, 2));
}
