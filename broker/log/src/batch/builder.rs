//! [`RecordBatchBuilder`]: encode records into one v2 batch.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::Compression;
use super::header::{
    ATTRIBUTES_OFFSET, CONTROL_BIT, CRC_OFFSET, HEADER_LEN, LOG_OVERHEAD, MAGIC, NO_PRODUCER_ID,
    NO_TIMESTAMP, TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT, TimestampType, compute_crc,
};
use super::record::{Header, encode_record};

/// Builds one batch with base offset 0 (a leader assigns real offsets on
/// append) unless [`base_offset`](Self::base_offset) is set.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    compression: Compression,
    timestamp_type: TimestampType,
    transactional: bool,
    control: bool,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    count: i32,
    records: Vec<u8>,
}

impl RecordBatchBuilder {
    /// An empty builder for the given codec.
    pub fn new(compression: Compression) -> Self {
        RecordBatchBuilder {
            compression,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            base_sequence: -1,
            base_timestamp: None,
            max_timestamp: NO_TIMESTAMP,
            count: 0,
            records: Vec::new(),
        }
    }

    /// Set the timestamp type attribute.
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    /// Idempotent-producer fields.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Idempotent-producer fields, in place: a producer fixes them when it
    /// first sends the batch, after its records were added.
    pub fn set_producer(&mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
    }

    /// Records added so far.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Set the transactional attribute.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Set the control attribute.
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Base offset written into the header (followers, tests).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Partition leader epoch written into the header.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Number of records added so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True if no record was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Uncompressed size of the records so far plus the header.
    pub fn estimated_size(&self) -> usize {
        HEADER_LEN + self.records.len()
    }

    /// Add a record with the next offset delta.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> &mut Self {
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        encode_record(
            &mut self.records,
            timestamp.wrapping_sub(base_timestamp),
            self.count,
            key,
            value,
            headers,
        );
        self.count += 1;
        self
    }

    /// Encode the batch, header and CRC included.
    pub fn build(&self) -> Bytes {
        let compressed;
        let body: &[u8] = if self.compression == Compression::None {
            &self.records
        } else {
            compressed = self.compression.compress(&self.records);
            &compressed
        };
        let mut attributes = self.compression.id();
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= TIMESTAMP_TYPE_BIT;
        }
        if self.transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        if self.control {
            attributes |= CONTROL_BIT;
        }
        let total = HEADER_LEN + body.len();
        let length = i32::try_from(total - LOG_OVERHEAD).expect("a batch is smaller than 2 GiB");
        let mut buf = BytesMut::with_capacity(total);
        buf.put_i64(self.base_offset);
        buf.put_i32(length);
        buf.put_i32(self.partition_leader_epoch);
        buf.put_i8(MAGIC);
        buf.put_u32(0); // crc, patched below
        debug_assert_eq!(buf.len(), ATTRIBUTES_OFFSET);
        buf.put_i16(attributes);
        buf.put_i32((self.count - 1).max(0));
        buf.put_i64(self.base_timestamp.unwrap_or(NO_TIMESTAMP));
        buf.put_i64(self.max_timestamp);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_i32(self.base_sequence);
        buf.put_i32(self.count);
        debug_assert_eq!(buf.len(), HEADER_LEN);
        buf.extend_from_slice(body);
        let crc = compute_crc(&buf);
        buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchIter, RecordBatch};

    fn sample(compression: Compression) -> Bytes {
        let mut builder = RecordBatchBuilder::new(compression).producer(7, 2, 40);
        for i in 0..20u8 {
            let headers = [Header {
                key: format!("h{i}"),
                value: Some(Bytes::from(vec![i])),
            }];
            builder.append(
                1_000 + i64::from(i) * 3,
                Some(&[i]),
                Some(&[i; 100]),
                &headers,
            );
        }
        builder.build()
    }

    #[test]
    fn builder_output_has_the_kafka_v2_header() {
        let batch = RecordBatch::from_bytes(sample(Compression::None)).expect("framed");
        batch.validate().expect("valid");
        assert_eq!(batch.base_offset(), 0);
        assert_eq!(batch.magic(), 2);
        assert_eq!(batch.batch_length() as usize + 12, batch.size_in_bytes());
        assert_eq!(batch.record_count(), 20);
        assert_eq!(batch.last_offset_delta(), 19);
        assert_eq!(batch.base_timestamp(), 1_000);
        assert_eq!(batch.max_timestamp(), 1_057);
        assert_eq!(
            (
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence()
            ),
            (7, 2, 40)
        );
        assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
        assert!(!batch.is_transactional() && !batch.is_control());
    }

    #[test]
    fn every_codec_round_trips_records() {
        let expected = RecordBatch::from_bytes(sample(Compression::None))
            .and_then(|b| b.records())
            .expect("decodes");
        for codec in Compression::ALL {
            let batch = RecordBatch::from_bytes(sample(codec)).expect("framed");
            batch.validate().expect("valid");
            assert_eq!(batch.compression().expect("known"), codec);
            assert_eq!(batch.records().expect("decodes"), expected, "{codec:?}");
        }
    }

    #[test]
    fn attributes_are_encoded_in_their_bits() {
        let mut builder = RecordBatchBuilder::new(Compression::Zstd)
            .transactional(true)
            .control(true)
            .timestamp_type(TimestampType::LogAppendTime);
        builder.append(5, None, None, &[]);
        let batch = RecordBatch::from_bytes(builder.build()).expect("framed");
        assert_eq!(batch.attributes(), 4 | 0x08 | 0x10 | 0x20);
        assert!(batch.is_transactional() && batch.is_control());
        assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    }

    #[test]
    fn a_flipped_byte_fails_the_crc() {
        let bytes = sample(Compression::Lz4);
        for at in [ATTRIBUTES_OFFSET, HEADER_LEN, bytes.len() - 1] {
            let mut damaged = bytes.to_vec();
            damaged[at] ^= 0x40;
            let batch = RecordBatch::from_bytes(Bytes::from(damaged)).expect("framing intact");
            assert!(batch.validate().is_err(), "flip at {at}");
        }
    }

    #[test]
    fn iterator_splits_concatenated_batches_and_stops_at_a_torn_tail() {
        let one = sample(Compression::None);
        let two = sample(Compression::Snappy);
        let mut all = one.to_vec();
        all.extend_from_slice(&two);
        all.extend_from_slice(&one[..30]);
        let items: Vec<_> = BatchIter::new(Bytes::from(all)).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().expect("first").as_bytes(), &one);
        assert_eq!(items[1].as_ref().expect("second").as_bytes(), &two);
        assert!(items[2].is_err());
    }
}
