//! What the consumer returns.

use bytes::Bytes;
use strom_log::{Header, TimestampType};

use crate::admin::TopicPartition;

/// A fetched record, as Kafka's `ConsumerRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// Timestamp in ms since the epoch: the producer's (`CreateTime`) or the
    /// broker's append time (`LogAppendTime`).
    pub timestamp: i64,
    /// Which of the two `timestamp` is.
    pub timestamp_type: TimestampType,
    /// The key; `None` for a null key.
    pub key: Option<Bytes>,
    /// The value; `None` for a null value.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// The epoch of the leader that appended the record, when known.
    pub leader_epoch: Option<i32>,
}

impl ConsumerRecord {
    /// The record's partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

/// An offset found by timestamp (Kafka's `OffsetAndTimestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OffsetAndTimestamp {
    /// The first offset whose timestamp is at or after the one asked for.
    pub offset: i64,
    /// That record's timestamp.
    pub timestamp: i64,
    /// The epoch of the leader that appended it, when known.
    pub leader_epoch: Option<i32>,
}
