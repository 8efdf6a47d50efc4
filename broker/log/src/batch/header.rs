//! Batch header layout (big-endian, 61 bytes) and the [`RecordBatch`] view.
//!
//! | offset | field                  | type |
//! |-------:|------------------------|------|
//! | 0      | baseOffset             | i64  |
//! | 8      | batchLength            | i32 (bytes after this field) |
//! | 12     | partitionLeaderEpoch   | i32  |
//! | 16     | magic (= 2)            | i8   |
//! | 17     | crc (CRC32C of 21..)   | u32  |
//! | 21     | attributes             | i16  |
//! | 23     | lastOffsetDelta        | i32  |
//! | 27     | baseTimestamp          | i64  |
//! | 35     | maxTimestamp           | i64  |
//! | 43     | producerId             | i64  |
//! | 51     | producerEpoch          | i16  |
//! | 53     | baseSequence           | i32  |
//! | 57     | recordCount            | i32  |
//! | 61     | records…               |      |

use bytes::Bytes;

use super::compression::Compression;
use super::record::{Record, decode_records};
use crate::error::{LogError, Result};

/// Byte offset of `baseOffset`.
pub const BASE_OFFSET_OFFSET: usize = 0;
/// Byte offset of `batchLength`.
pub const LENGTH_OFFSET: usize = 8;
/// Byte offset of `partitionLeaderEpoch`.
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
/// Byte offset of `magic`.
pub const MAGIC_OFFSET: usize = 16;
/// Byte offset of `crc`.
pub const CRC_OFFSET: usize = 17;
/// Byte offset of `attributes`; the CRC covers everything from here.
pub const ATTRIBUTES_OFFSET: usize = 21;
/// Byte offset of `lastOffsetDelta`.
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
/// Byte offset of `baseTimestamp`.
pub const BASE_TIMESTAMP_OFFSET: usize = 27;
/// Byte offset of `maxTimestamp`.
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
/// Byte offset of `producerId`.
pub const PRODUCER_ID_OFFSET: usize = 43;
/// Byte offset of `producerEpoch`.
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
/// Byte offset of `baseSequence`.
pub const BASE_SEQUENCE_OFFSET: usize = 53;
/// Byte offset of `recordCount`.
pub const RECORD_COUNT_OFFSET: usize = 57;
/// Size of the batch header; records start here.
pub const HEADER_LEN: usize = 61;
/// `baseOffset` + `batchLength`: bytes not counted by `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
/// The only supported magic value.
pub const MAGIC: i8 = 2;

/// Attribute bits 0..=2.
pub(crate) const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3.
pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 0x08;
/// Attribute bit 4.
pub(crate) const TRANSACTIONAL_BIT: i16 = 0x10;
/// Attribute bit 5.
pub(crate) const CONTROL_BIT: i16 = 0x20;
/// Attribute bit 6 (KIP-534): `baseTimestamp` holds the delete horizon, the
/// time after which the cleaner may remove the batch's tombstones; record
/// timestamps stay `baseTimestamp + timestampDelta`.
pub(crate) const DELETE_HORIZON_BIT: i16 = 0x40;

/// Kafka's "no producer id" sentinel.
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's "no timestamp" sentinel.
pub const NO_TIMESTAMP: i64 = -1;

/// How record timestamps were assigned (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the leader on append; `maxTimestamp` holds it for all records.
    LogAppendTime,
}

pub(crate) fn get_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

pub(crate) fn get_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

pub(crate) fn get_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

/// Total stored size of the batch starting at `buf`, from its first 12
/// bytes, or an error if the length field cannot describe a v2 batch.
pub(crate) fn framed_size(buf: &[u8]) -> Result<usize> {
    if buf.len() < LOG_OVERHEAD {
        return Err(LogError::corrupt("truncated batch length"));
    }
    let length = get_i32(buf, LENGTH_OFFSET);
    if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(LogError::corrupt(format!(
            "batch length {length} is below the header size"
        )));
    }
    Ok(length as usize + LOG_OVERHEAD)
}

/// Header fields the storage layer needs, decoded from a borrowed slice
/// holding at least [`HEADER_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderSummary {
    pub(crate) base_offset: i64,
    pub(crate) size: usize,
    pub(crate) last_offset: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) leader_epoch: i32,
}

/// Check framing of the header at the start of `buf` (which must hold at
/// least [`HEADER_LEN`] bytes) without checking the CRC.
pub(crate) fn summarize(buf: &[u8]) -> Result<HeaderSummary> {
    if buf.len() < HEADER_LEN {
        return Err(LogError::corrupt("truncated batch header"));
    }
    let size = framed_size(buf)?;
    let magic = buf[MAGIC_OFFSET] as i8;
    if magic != MAGIC {
        return Err(LogError::corrupt(format!("unsupported magic {magic}")));
    }
    let base_offset = get_i64(buf, BASE_OFFSET_OFFSET);
    let delta = get_i32(buf, LAST_OFFSET_DELTA_OFFSET);
    if base_offset < 0 || delta < 0 {
        return Err(LogError::corrupt(format!(
            "negative base offset {base_offset} or last offset delta {delta}"
        )));
    }
    let last_offset = base_offset
        .checked_add(i64::from(delta))
        .ok_or_else(|| LogError::corrupt("last offset overflows"))?;
    Ok(HeaderSummary {
        base_offset,
        size,
        last_offset,
        max_timestamp: get_i64(buf, MAX_TIMESTAMP_OFFSET),
        leader_epoch: get_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
    })
}

/// CRC32C of `batch[21..]`, as stored in the header.
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..])
}

/// One whole stored batch. Construction checks framing (length field matches
/// the buffer, magic 2, sane offsets); [`validate`](Self::validate) adds the
/// CRC and attribute checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

impl RecordBatch {
    /// Wrap exactly one batch. Fails with `CorruptMessage` if `bytes` is not
    /// exactly one framed v2 batch.
    pub fn from_bytes(bytes: Bytes) -> Result<Self> {
        let summary = summarize(&bytes)?;
        if summary.size != bytes.len() {
            return Err(LogError::corrupt(format!(
                "batch length field says {} bytes, buffer holds {}",
                summary.size,
                bytes.len()
            )));
        }
        Ok(RecordBatch { bytes })
    }

    /// Check the CRC, the compression codec and the record count.
    pub fn validate(&self) -> Result<()> {
        let stored = self.crc();
        let computed = compute_crc(&self.bytes);
        if stored != computed {
            return Err(LogError::corrupt(format!(
                "crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        self.compression()?;
        if self.record_count() < 0 {
            return Err(LogError::corrupt(format!(
                "negative record count {}",
                self.record_count()
            )));
        }
        Ok(())
    }

    /// The stored bytes, header included.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Take the stored bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Stored size in bytes (`batchLength` + 12).
    pub fn size_in_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        get_i64(&self.bytes, BASE_OFFSET_OFFSET)
    }

    /// `batchLength`: bytes after the length field.
    pub fn batch_length(&self) -> i32 {
        get_i32(&self.bytes, LENGTH_OFFSET)
    }

    /// Epoch of the leader that appended the batch (outside the CRC).
    pub fn partition_leader_epoch(&self) -> i32 {
        get_i32(&self.bytes, PARTITION_LEADER_EPOCH_OFFSET)
    }

    /// Always [`MAGIC`] for a constructed batch.
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_OFFSET] as i8
    }

    /// The stored CRC32C.
    pub fn crc(&self) -> u32 {
        get_i32(&self.bytes, CRC_OFFSET) as u32
    }

    /// Raw attributes.
    pub fn attributes(&self) -> i16 {
        get_i16(&self.bytes, ATTRIBUTES_OFFSET)
    }

    /// Codec of the records section.
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_id(self.attributes() & COMPRESSION_MASK)
    }

    /// Timestamp type (attribute bit 3).
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Part of a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }

    /// A control batch, e.g. a transaction marker (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }

    /// The delete horizon the log cleaner set (attribute bit 6, KIP-534):
    /// tombstones in the batch may be removed from this time on.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes() & DELETE_HORIZON_BIT != 0).then(|| self.base_timestamp())
    }

    /// `lastOffsetDelta`.
    pub fn last_offset_delta(&self) -> i32 {
        get_i32(&self.bytes, LAST_OFFSET_DELTA_OFFSET)
    }

    /// Offset of the last record (`baseOffset + lastOffsetDelta`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }

    /// Offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Timestamp of the first record.
    pub fn base_timestamp(&self) -> i64 {
        get_i64(&self.bytes, BASE_TIMESTAMP_OFFSET)
    }

    /// Largest record timestamp, or the append time for `LogAppendTime`.
    pub fn max_timestamp(&self) -> i64 {
        get_i64(&self.bytes, MAX_TIMESTAMP_OFFSET)
    }

    /// Producer id, -1 if not idempotent.
    pub fn producer_id(&self) -> i64 {
        get_i64(&self.bytes, PRODUCER_ID_OFFSET)
    }

    /// Producer epoch.
    pub fn producer_epoch(&self) -> i16 {
        get_i16(&self.bytes, PRODUCER_EPOCH_OFFSET)
    }

    /// Sequence number of the first record.
    pub fn base_sequence(&self) -> i32 {
        get_i32(&self.bytes, BASE_SEQUENCE_OFFSET)
    }

    /// Number of records.
    pub fn record_count(&self) -> i32 {
        get_i32(&self.bytes, RECORD_COUNT_OFFSET)
    }

    /// Decompress and decode the records. Never panics on malformed input.
    pub fn records(&self) -> Result<Vec<Record>> {
        let compression = self.compression()?;
        let body = self.bytes.slice(HEADER_LEN..);
        let body = compression.decompress(body)?;
        let log_append_time = match self.timestamp_type() {
            TimestampType::LogAppendTime => Some(self.max_timestamp()),
            TimestampType::CreateTime => None,
        };
        decode_records(
            body,
            self.record_count(),
            self.base_offset(),
            self.base_timestamp(),
            log_append_time,
        )
    }
}

/// Set the base offset and partition leader epoch of a batch in place; both
/// are outside the CRC.
pub(crate) fn patch_offset_and_epoch(batch: &mut [u8], base_offset: i64, epoch: i32) {
    batch[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Set `maxTimestamp` in the header of a LogAppendTime batch whose records
/// are `records`, then recompute the CRC (both are inside it), as a Kafka
/// leader does for LogAppendTime topics.
pub(crate) fn patch_log_append_time(header: &mut [u8; HEADER_LEN], records: &[u8], timestamp: i64) {
    header[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&timestamp.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_OFFSET..]), records);
    header[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}
