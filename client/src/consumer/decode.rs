//! Turning a partition's fetched bytes into records: whole batches only
//! (a trailing partial batch is ignored), CRC checked, decompressed,
//! control batches skipped, and records below the fetch position dropped
//! (a batch may start before it). For `read_committed`, the batches of
//! aborted transactions are dropped too, by the [`AbortedFilter`] built
//! from the aborted transactions the fetch returned (Kafka's consumer
//! logic); the position moves past them as past control batches.

use bytes::Bytes;
use strom_log::batch::{HEADER_LEN, LOG_OVERHEAD};
use strom_log::{AbortedFilter, RecordBatch};
use strom_proto::v1::ErrorCode;

use super::record::ConsumerRecord;
use crate::error::Error;

/// The records of one partition's fetch answer.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// Records at or after the fetch position, in offset order.
    pub(crate) records: Vec<ConsumerRecord>,
    /// Where the next fetch starts: after the last whole batch (control
    /// batches included); `None` when no batch ends past the fetch position.
    pub(crate) next_offset: Option<i64>,
    /// A malformed batch stopped decoding here; the records before it are
    /// still returned, the error surfaces once they are consumed.
    pub(crate) error: Option<Error>,
}

/// Decodes `bytes` (concatenated batches) fetched at `fetch_offset`;
/// `aborted` is `Some` for a `read_committed` fetch, with the aborted
/// transactions it returned.
pub(crate) fn decode(
    topic: &str,
    partition: i32,
    mut bytes: Bytes,
    fetch_offset: i64,
    check_crcs: bool,
    partition_max_bytes: usize,
    mut aborted: Option<AbortedFilter>,
) -> Decoded {
    let mut decoded = Decoded::default();
    let total = bytes.len();
    let mut whole_batches = 0;
    while !bytes.is_empty() {
        let Some(size) = framed_size(&bytes) else {
            break; // trailing partial batch
        };
        let batch = match RecordBatch::from_bytes(bytes.split_to(size)) {
            Ok(batch) => batch,
            Err(e) => {
                decoded.error = Some(corrupt(topic, partition, fetch_offset, &e.to_string()));
                break;
            }
        };
        whole_batches += 1;
        let checked = if check_crcs {
            batch.validate()
        } else {
            batch.compression().map(|_| ())
        };
        if let Err(e) = checked {
            decoded.error = Some(corrupt(
                topic,
                partition,
                batch.base_offset(),
                &e.to_string(),
            ));
            break;
        }
        // Every batch goes through the filter, in order: a marker before
        // the position still ends its producer's aborted transaction.
        let deliver = match aborted.as_mut().map(|f| f.keep(&batch)) {
            None => !batch.is_control(),
            Some(Ok(keep)) => keep,
            Some(Err(e)) => {
                decoded.error = Some(corrupt(
                    topic,
                    partition,
                    batch.base_offset(),
                    &e.to_string(),
                ));
                break;
            }
        };
        let next = batch.next_offset();
        if next <= fetch_offset {
            continue; // entirely before the position
        }
        if deliver {
            let records = match batch.records() {
                Ok(records) => records,
                Err(e) => {
                    decoded.error = Some(corrupt(
                        topic,
                        partition,
                        batch.base_offset(),
                        &e.to_string(),
                    ));
                    break;
                }
            };
            let leader_epoch = Some(batch.partition_leader_epoch()).filter(|e| *e >= 0);
            let timestamp_type = batch.timestamp_type();
            decoded.records.extend(
                records
                    .into_iter()
                    .filter(|r| r.offset >= fetch_offset)
                    .map(|r| ConsumerRecord {
                        topic: topic.to_owned(),
                        partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        timestamp_type,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                        leader_epoch,
                    }),
            );
        }
        decoded.next_offset = Some(next);
    }
    if whole_batches == 0 && total > 0 && decoded.error.is_none() {
        decoded.error = Some(Error::strom(
            ErrorCode::RecordTooLarge,
            format!(
                "the fetch of {topic}-{partition} at offset {fetch_offset} returned only part of \
                 a batch ({total} bytes); raise max.partition.fetch.bytes (now \
                 {partition_max_bytes}) above the batch size"
            ),
        ));
    }
    decoded
}

/// The size of the batch starting `bytes`, when it is all there.
fn framed_size(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < HEADER_LEN {
        return None;
    }
    let length = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let size = usize::try_from(length).ok()?.checked_add(LOG_OVERHEAD)?;
    (size <= bytes.len()).then_some(size)
}

fn corrupt(topic: &str, partition: i32, offset: i64, why: &str) -> Error {
    Error::strom(
        ErrorCode::CorruptMessage,
        format!("record batch for {topic}-{partition} at offset {offset} is invalid: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use strom_log::{Compression, Header, RecordBatchBuilder, TimestampType};

    use super::*;

    /// A batch of `count` records starting at `base`, values "v<offset>".
    fn batch(base: i64, count: i64, compression: Compression) -> Vec<u8> {
        let mut builder = RecordBatchBuilder::new(compression)
            .base_offset(base)
            .partition_leader_epoch(4);
        for offset in base..base + count {
            builder.append(
                1_000 + offset,
                Some(b"k"),
                Some(format!("v{offset}").as_bytes()),
                &[Header {
                    key: "h".into(),
                    value: None,
                }],
            );
        }
        builder.build().to_vec()
    }

    fn control(base: i64) -> Vec<u8> {
        let mut builder = RecordBatchBuilder::new(Compression::None)
            .base_offset(base)
            .control(true);
        builder.append(0, Some(&[0, 0, 0, 1]), Some(&[0; 6]), &[]);
        builder.build().to_vec()
    }

    fn concat(parts: &[Vec<u8>]) -> Bytes {
        Bytes::from(parts.concat())
    }

    fn offsets(decoded: &Decoded) -> Vec<i64> {
        decoded.records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn records_below_the_position_are_skipped() {
        // (fetch offset, offsets returned, next offset)
        let table: &[(i64, &[i64], Option<i64>)] = &[
            (10, &[10, 11, 12, 13, 14, 15, 16, 17], Some(18)),
            (12, &[12, 13, 14, 15, 16, 17], Some(18)),
            (15, &[15, 16, 17], Some(18)),
            (17, &[17], Some(18)),
            (18, &[], None),
        ];
        let bytes = concat(&[
            batch(10, 5, Compression::None),
            batch(15, 3, Compression::Zstd),
        ]);
        for (position, want, next) in table {
            let decoded = decode("t", 0, bytes.clone(), *position, true, 1 << 20, None);
            assert_eq!(offsets(&decoded), *want, "position {position}");
            assert_eq!(decoded.next_offset, *next, "position {position}");
            assert!(decoded.error.is_none());
        }
    }

    #[test]
    fn records_carry_their_batch_fields() {
        let decoded = decode(
            "t",
            3,
            concat(&[batch(7, 1, Compression::Gzip)]),
            7,
            true,
            1 << 20,
            None,
        );
        let record = &decoded.records[0];
        assert_eq!(
            (record.topic.as_str(), record.partition, record.offset),
            ("t", 3, 7)
        );
        assert_eq!(record.timestamp, 1_007);
        assert_eq!(record.timestamp_type, TimestampType::CreateTime);
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(record.value.as_deref(), Some(&b"v7"[..]));
        assert_eq!(record.headers.len(), 1);
        assert_eq!(record.leader_epoch, Some(4));
    }

    #[test]
    fn control_batches_are_skipped_but_advance_the_position() {
        let bytes = concat(&[
            batch(0, 2, Compression::None),
            control(2),
            batch(3, 1, Compression::Snappy),
        ]);
        let decoded = decode("t", 0, bytes, 0, true, 1 << 20, None);
        assert_eq!(offsets(&decoded), [0, 1, 3]);
        assert_eq!(decoded.next_offset, Some(4));
        let decoded = decode("t", 0, concat(&[control(9)]), 9, true, 1 << 20, None);
        assert!(decoded.records.is_empty());
        assert_eq!(decoded.next_offset, Some(10));
    }

    #[test]
    fn a_trailing_partial_batch_is_ignored() {
        let whole = batch(0, 3, Compression::Lz4);
        let next = batch(3, 3, Compression::None);
        for cut in [1, 11, 12, HEADER_LEN, next.len() - 1] {
            let bytes = concat(&[whole.clone(), next[..cut].to_vec()]);
            let decoded = decode("t", 0, bytes, 0, true, 1 << 20, None);
            assert_eq!(offsets(&decoded), [0, 1, 2], "cut at {cut}");
            assert_eq!(decoded.next_offset, Some(3));
            assert!(decoded.error.is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn only_a_partial_batch_is_record_too_large() {
        let whole = batch(5, 3, Compression::None);
        let decoded = decode("t", 0, Bytes::from(whole[..40].to_vec()), 5, true, 40, None);
        assert!(decoded.records.is_empty());
        assert_eq!(decoded.next_offset, None);
        let error = decoded.error.unwrap();
        assert_eq!(error.code(), Some(ErrorCode::RecordTooLarge));
        assert!(
            error
                .to_string()
                .contains("max.partition.fetch.bytes (now 40)"),
            "{error}"
        );
        let empty = decode("t", 0, Bytes::new(), 5, true, 40, None);
        assert!(empty.error.is_none() && empty.next_offset.is_none());
    }

    #[test]
    fn a_corrupt_batch_stops_decoding_after_the_good_ones() {
        let good = batch(0, 2, Compression::None);
        let mut bad = batch(2, 2, Compression::None);
        let at = bad.windows(2).position(|w| w == b"v3").unwrap();
        bad[at + 1] ^= 0x01; // "v3" becomes "v2": framing intact, CRC wrong
        let decoded = decode(
            "t",
            0,
            concat(&[good.clone(), bad.clone()]),
            0,
            true,
            1 << 20,
            None,
        );
        assert_eq!(offsets(&decoded), [0, 1]);
        assert_eq!(decoded.next_offset, Some(2));
        let error = decoded.error.unwrap();
        assert_eq!(error.code(), Some(ErrorCode::CorruptMessage));
        assert!(error.to_string().contains("t-0 at offset 2"), "{error}");
        // Without CRC checks the flipped byte (in a value) goes unnoticed.
        let unchecked = decode("t", 0, concat(&[good, bad]), 0, false, 1 << 20, None);
        assert_eq!(offsets(&unchecked), [0, 1, 2, 3]);
    }

    /// A transactional batch of producer `pid`: `count` records from `base`.
    fn txn(pid: i64, base: i64, count: i64) -> Vec<u8> {
        let mut builder = RecordBatchBuilder::new(Compression::None)
            .base_offset(base)
            .producer(pid, 0, 0)
            .transactional(true);
        for offset in base..base + count {
            builder.append(1_000 + offset, None, Some(b"x"), &[]);
        }
        builder.build().to_vec()
    }

    /// The COMMIT or ABORT marker of producer `pid` at `base`.
    fn marker(pid: i64, base: i64, commit: bool) -> Vec<u8> {
        let m = strom_log::batch::control::EndTxnMarker {
            commit,
            coordinator_epoch: 0,
        };
        let mut builder = RecordBatchBuilder::new(Compression::None)
            .base_offset(base)
            .producer(pid, 0, -1)
            .transactional(true)
            .control(true);
        builder.append(0, Some(&m.key_bytes()), Some(&m.value_bytes()), &[]);
        builder.build().to_vec()
    }

    #[test]
    fn read_committed_drops_aborted_records_and_markers_and_moves_past_them() {
        // Offsets: 0-1 p1 (aborted), 2-3 p2 (committed), 4 plain,
        // 5 p1 ABORT, 6 p2 COMMIT, 7-8 p1 again (committed), 9 p1 COMMIT.
        let bytes = concat(&[
            txn(1, 0, 2),
            txn(2, 2, 2),
            batch(4, 1, Compression::None),
            marker(1, 5, false),
            marker(2, 6, true),
            txn(1, 7, 2),
            marker(1, 9, true),
        ]);
        // (fetch offset, aborted transactions returned, offsets delivered)
        type Case = (i64, &'static [(i64, i64)], &'static [i64]);
        let table: &[Case] = &[
            (0, &[(1, 0)], &[2, 3, 4, 7, 8]),
            // read_committed without aborts in range: markers still hidden.
            (0, &[], &[0, 1, 2, 3, 4, 7, 8]),
            // The position inside the aborted transaction.
            (1, &[(1, 0)], &[2, 3, 4, 7, 8]),
            // Past the abort marker: p1's later batches are delivered.
            (6, &[], &[7, 8]),
            // An aborted transaction of a producer absent from the data
            // changes nothing.
            (0, &[(1, 0), (3, 2)], &[2, 3, 4, 7, 8]),
            // A second abort of p1 starting at 7 (the broker's list says so).
            (0, &[(1, 0), (1, 7)], &[2, 3, 4]),
        ];
        for (position, aborted, want) in table {
            let filter = AbortedFilter::from_starts(aborted.iter().copied());
            let decoded = decode(
                "t",
                0,
                bytes.clone(),
                *position,
                true,
                1 << 20,
                Some(filter),
            );
            assert_eq!(
                offsets(&decoded),
                *want,
                "position {position}, aborted {aborted:?}"
            );
            assert_eq!(decoded.next_offset, Some(10), "position {position}");
            assert!(decoded.error.is_none());
        }
        // read_uncommitted delivers the aborted records, never the markers.
        let decoded = decode("t", 0, bytes, 0, true, 1 << 20, None);
        assert_eq!(offsets(&decoded), [0, 1, 2, 3, 4, 7, 8]);
    }

    #[test]
    fn read_committed_position_moves_past_a_fetch_of_only_aborted_batches() {
        let bytes = concat(&[txn(1, 10, 3), marker(1, 13, false)]);
        let filter = AbortedFilter::from_starts([(1, 10)]);
        let decoded = decode("t", 0, bytes, 10, true, 1 << 20, Some(filter));
        assert!(decoded.records.is_empty());
        assert_eq!(decoded.next_offset, Some(14));
        assert!(decoded.error.is_none());
    }

    #[test]
    fn read_committed_refuses_a_malformed_marker() {
        let mut builder = RecordBatchBuilder::new(Compression::None)
            .base_offset(2)
            .producer(1, 0, -1)
            .transactional(true)
            .control(true);
        builder.append(0, Some(&[0, 0, 0, 9]), Some(&[0; 6]), &[]);
        let bytes = concat(&[batch(0, 2, Compression::None), builder.build().to_vec()]);
        let decoded = decode(
            "t",
            0,
            bytes,
            0,
            true,
            1 << 20,
            Some(AbortedFilter::default()),
        );
        assert_eq!(offsets(&decoded), [0, 1]);
        assert_eq!(decoded.next_offset, Some(2));
        let error = decoded.error.expect("a malformed marker");
        assert_eq!(error.code(), Some(ErrorCode::CorruptMessage));
    }
}
