//! What the producer sends and what it reports back.

use bytes::Bytes;
use strom_log::Header;

/// A record to send, as Kafka's `ProducerRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: String,
    /// An explicit partition; `None` lets the partitioner choose (murmur2 of
    /// the key, or the sticky partition for records without a key).
    pub partition: Option<i32>,
    /// The key; `None` for a null key.
    pub key: Option<Bytes>,
    /// The value; `None` for a null value (a tombstone in compacted topics).
    pub value: Option<Bytes>,
    /// Headers, in order; keys may repeat.
    pub headers: Vec<Header>,
    /// The record's timestamp in ms since the epoch; `None` means the time
    /// of `send`. A topic with `LogAppendTime` replaces it with the broker's.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key, value, headers or timestamp yet.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            partition: None,
            key: None,
            value: None,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Sends to this partition instead of letting the partitioner choose.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value,
        });
        self
    }

    /// Sets the timestamp (ms since the epoch).
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// An upper bound of the record's encoded size inside a batch: the
    /// length prefix, attributes, the deltas at their widest, key, value and
    /// headers (Kafka's `DefaultRecord.sizeInBytes` with worst-case deltas).
    pub fn encoded_size_upper_bound(&self) -> usize {
        fn field(bytes: Option<&[u8]>) -> usize {
            bytes.map_or(1, |b| varint_len(b.len()) + b.len())
        }
        let headers: usize = self
            .headers
            .iter()
            .map(|h| field(Some(h.key.as_bytes())) + field(h.value.as_deref()))
            .sum();
        let body = 1 // attributes
            + 10 // timestamp delta, varlong at its widest
            + 5 // offset delta, varint at its widest
            + field(self.key.as_deref())
            + field(self.value.as_deref())
            + varint_len(self.headers.len())
            + headers;
        varint_len(body) + body
    }
}

/// Bytes of a zigzag varint holding a non-negative length.
fn varint_len(len: usize) -> usize {
    let mut v = (len as u64) << 1;
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Where an acknowledged record was written, as Kafka's `RecordMetadata`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 with `acks=0`, whose writes are not answered.
    pub offset: i64,
    /// The record's timestamp: the broker's append time on `LogAppendTime`
    /// topics, else the timestamp it was sent with.
    pub timestamp: i64,
}

#[cfg(test)]
mod tests {
    use strom_log::{Compression, RecordBatchBuilder};

    use super::*;

    #[test]
    fn size_bound_covers_the_encoding() {
        let records = [
            ProducerRecord::new("t"),
            ProducerRecord::new("t").value(vec![1u8; 10]),
            ProducerRecord::new("t").key("k").value(vec![7u8; 300]),
            ProducerRecord::new("t")
                .key(vec![0u8; 20_000])
                .value(vec![0u8; 70_000])
                .header("a", None)
                .header("trace-id", Some(Bytes::from_static(b"abc"))),
        ];
        for record in records {
            let mut builder = RecordBatchBuilder::new(Compression::None);
            // Worst-case deltas: a far timestamp, not the first offset.
            builder.append(0, None, None, &[]);
            let before = builder.estimated_size();
            builder.append(
                i64::MAX / 2,
                record.key.as_deref(),
                record.value.as_deref(),
                &record.headers,
            );
            let actual = builder.estimated_size() - before;
            let bound = record.encoded_size_upper_bound();
            assert!(actual <= bound, "{actual} > {bound}");
            assert!(bound - actual <= 16, "bound {bound} is loose for {actual}");
        }
    }
}
