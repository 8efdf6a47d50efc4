//! Control batches: transaction markers, as Kafka writes them.
//!
//! A marker is a batch with the control and transactional attributes set,
//! the producer id and epoch of the transaction it closes, base sequence -1
//! and one record:
//!
//! * key (`ControlRecordType`): `int16` version 0, `int16` type (0 ABORT,
//!   1 COMMIT);
//! * value (`EndTransactionMarker`): `int16` version 0, `int32`
//!   coordinator epoch.
//!
//! Readers skip control batches; `read_committed` readers use them (with
//! the aborted-transaction index) to drop aborted records.

use bytes::Bytes;

use super::builder::RecordBatchBuilder;
use super::compression::Compression;
use super::header::RecordBatch;
use crate::error::{LogError, Result};
use crate::producer::MarkerBatch;

/// `ControlRecordType` of an ABORT marker.
pub const ABORT_TYPE: i16 = 0;
/// `ControlRecordType` of a COMMIT marker.
pub const COMMIT_TYPE: i16 = 1;
/// Version of the control record key Kafka writes.
pub const CONTROL_KEY_VERSION: i16 = 0;
/// Version of `EndTransactionMarker` Kafka writes.
pub const END_TXN_MARKER_VERSION: i16 = 0;

/// An `EndTransactionMarker`: the outcome and the writing coordinator's
/// epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    /// COMMIT (`true`) or ABORT.
    pub commit: bool,
    /// The transaction coordinator's epoch.
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// The control record's key bytes.
    pub fn key_bytes(&self) -> [u8; 4] {
        let ty = if self.commit { COMMIT_TYPE } else { ABORT_TYPE };
        let mut out = [0; 4];
        out[..2].copy_from_slice(&CONTROL_KEY_VERSION.to_be_bytes());
        out[2..].copy_from_slice(&ty.to_be_bytes());
        out
    }

    /// The control record's value bytes.
    pub fn value_bytes(&self) -> [u8; 6] {
        let mut out = [0; 6];
        out[..2].copy_from_slice(&END_TXN_MARKER_VERSION.to_be_bytes());
        out[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        out
    }

    /// Parses a control record's key and value. Kafka reads any key
    /// version (the type follows the version) and values of version 0 or
    /// above (trailing fields of later versions are ignored).
    pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<EndTxnMarker> {
        let key = key.ok_or_else(|| LogError::corrupt("control record without a key"))?;
        if key.len() < 4 {
            return Err(LogError::corrupt(format!(
                "control record key of {} bytes, expected 4",
                key.len()
            )));
        }
        let commit = match i16::from_be_bytes([key[2], key[3]]) {
            ABORT_TYPE => false,
            COMMIT_TYPE => true,
            other => {
                return Err(LogError::corrupt(format!(
                    "control record type {other} is not a transaction marker"
                )));
            }
        };
        let value = value.ok_or_else(|| LogError::corrupt("transaction marker without a value"))?;
        if value.len() < 6 {
            return Err(LogError::corrupt(format!(
                "transaction marker value of {} bytes, expected 6",
                value.len()
            )));
        }
        let version = i16::from_be_bytes([value[0], value[1]]);
        if version < 0 {
            return Err(LogError::corrupt(format!(
                "transaction marker version {version}"
            )));
        }
        Ok(EndTxnMarker {
            commit,
            coordinator_epoch: i32::from_be_bytes([value[2], value[3], value[4], value[5]]),
        })
    }
}

/// A marker batch for `producer_id`/`producer_epoch` at `timestamp`
/// (uncompressed, base offset 0: the leader assigns its offset).
pub fn build_marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: EndTxnMarker,
    timestamp: i64,
) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None)
        .producer(producer_id, producer_epoch, -1)
        .transactional(true)
        .control(true);
    b.append(
        timestamp,
        Some(&marker.key_bytes()),
        Some(&marker.value_bytes()),
        &[],
    );
    b.build()
}

/// The marker a stored control batch holds, as the producer state takes
/// it (`None`: not a control batch). A control batch that is not one
/// well-formed transaction marker is `CorruptMessage`.
pub fn marker_of(batch: &RecordBatch, at_ms: i64) -> Result<Option<MarkerBatch>> {
    if !batch.is_control() {
        return Ok(None);
    }
    let records = batch.records()?;
    let [record] = records.as_slice() else {
        return Err(LogError::corrupt(format!(
            "control batch at offset {} holds {} records, expected 1",
            batch.base_offset(),
            records.len()
        )));
    };
    let m = EndTxnMarker::parse(record.key.as_deref(), record.value.as_deref())?;
    Ok(Some(MarkerBatch {
        producer_id: batch.producer_id(),
        producer_epoch: batch.producer_epoch(),
        coordinator_epoch: m.coordinator_epoch,
        commit: m.commit,
        offset: batch.base_offset(),
        timestamp: at_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_bytes_match_kafka() {
        let commit = EndTxnMarker {
            commit: true,
            coordinator_epoch: 7,
        };
        assert_eq!(commit.key_bytes(), [0, 0, 0, 1]);
        assert_eq!(commit.value_bytes(), [0, 0, 0, 0, 0, 7]);
        let abort = EndTxnMarker {
            commit: false,
            coordinator_epoch: 258,
        };
        assert_eq!(abort.key_bytes(), [0, 0, 0, 0]);
        assert_eq!(abort.value_bytes(), [0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn marker_batch_round_trips() {
        for commit in [true, false] {
            let m = EndTxnMarker {
                commit,
                coordinator_epoch: 3,
            };
            let bytes = build_marker_batch(42, 5, m, 1_000);
            let batch = RecordBatch::from_bytes(bytes).unwrap();
            batch.validate().unwrap();
            assert!(batch.is_control() && batch.is_transactional());
            assert_eq!(batch.base_sequence(), -1);
            let got = marker_of(&batch, 9).unwrap().unwrap();
            assert_eq!(
                got,
                MarkerBatch {
                    producer_id: 42,
                    producer_epoch: 5,
                    coordinator_epoch: 3,
                    commit,
                    offset: 0,
                    timestamp: 9,
                }
            );
        }
    }

    #[test]
    fn a_data_batch_is_not_a_marker() {
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.append(1, Some(b"k"), Some(b"v"), &[]);
        let batch = RecordBatch::from_bytes(b.build()).unwrap();
        assert_eq!(marker_of(&batch, 0).unwrap(), None);
    }

    #[test]
    fn malformed_markers_are_corrupt_not_panics() {
        /// (name, key, value)
        type Case<'a> = (&'a str, Option<&'a [u8]>, Option<&'a [u8]>);
        let cases: &[Case<'_>] = &[
            ("no key", None, Some(&[0, 0, 0, 0, 0, 1])),
            ("short key", Some(&[0, 0, 0]), Some(&[0, 0, 0, 0, 0, 1])),
            (
                "unknown type",
                Some(&[0, 0, 0, 5]),
                Some(&[0, 0, 0, 0, 0, 1]),
            ),
            ("no value", Some(&[0, 0, 0, 1]), None),
            ("short value", Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0])),
            (
                "negative version",
                Some(&[0, 0, 0, 1]),
                Some(&[0xff, 0xff, 0, 0, 0, 1]),
            ),
        ];
        for (name, key, value) in cases {
            let e = EndTxnMarker::parse(*key, *value).expect_err(name);
            assert_eq!(e.kind(), crate::ErrorKind::CorruptMessage, "{name}");
        }
        // A control batch with two records.
        let mut b = RecordBatchBuilder::new(Compression::None)
            .producer(1, 0, -1)
            .transactional(true)
            .control(true);
        let m = EndTxnMarker {
            commit: true,
            coordinator_epoch: 0,
        };
        b.append(1, Some(&m.key_bytes()), Some(&m.value_bytes()), &[]);
        b.append(1, Some(&m.key_bytes()), Some(&m.value_bytes()), &[]);
        let batch = RecordBatch::from_bytes(b.build()).unwrap();
        assert!(marker_of(&batch, 0).is_err());
    }
}
