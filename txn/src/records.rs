//! The records of `__transaction_state`, byte-compatible with Kafka's
//! transaction coordinator, so a Kafka wire-protocol front end and Kafka's
//! own tools read the same log.
//!
//! * Key (`TransactionLogKey`, version 0, the coordinator record type 0 as
//!   its `int16` prefix): the transactional id as a non-flexible `string`.
//! * Value (`TransactionLogValue`): an `int16` version, then
//!   - v0 (non-flexible): `ProducerId int64`, `ProducerEpoch int16`,
//!     `TransactionTimeoutMs int32`, `TransactionStatus int8`,
//!     `TransactionPartitions` (nullable `int32`-length array of
//!     `{Topic string, PartitionIds [int32]}`),
//!     `TransactionLastUpdateTimestampMs int64`,
//!     `TransactionStartTimestampMs int64`;
//!   - v1 (flexible: compact strings and arrays, a tagged-field section per
//!     struct): the same fields, then tagged fields 0 `PreviousProducerId
//!     int64` (default -1), 1 `NextProducerId int64` (default -1), 2
//!     `ClientTransactionVersion int16` (default 0). A tagged field equal to
//!     its default is not written, as Kafka's generated code does.
//!
//! Strom writes v1 (what Kafka 3.8+ writes once transaction version 1 or 2
//! is enabled) and reads both. The partitions are null in `Empty` and
//! grouped by topic otherwise. A null value is a tombstone: the
//! transactional id expired.

use std::collections::{BTreeMap, BTreeSet};

use strom_kafka_codec::{Reader, Writer};

use crate::error::{Result, bail};
use crate::state::TxnState;

/// A topic partition of a transaction: topic name and partition index.
pub type TopicPartition = (String, i32);

/// The key's record type (Kafka's `CoordinatorRecordType.TRANSACTION_LOG`).
pub const TRANSACTION_LOG_KEY_VERSION: i16 = 0;
/// The value version Strom writes.
pub const TRANSACTION_LOG_VALUE_VERSION: i16 = 1;
/// "No producer id" (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// "No producer epoch" (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// The client transaction version Strom's coordinator implements
/// (KIP-890 part 2: the epoch is bumped at every EndTxn).
pub const TRANSACTION_VERSION_2: i16 = 2;

const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;

/// A transactional id's state (`TransactionLogValue`): what the
/// coordinator knows, and all it knows, after replaying the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The producer id in use.
    pub producer_id: i64,
    /// The producer id before the last rotation (epoch exhaustion), or -1:
    /// lets a retried EndTxn of the old id succeed.
    pub previous_producer_id: i64,
    /// The producer id the producer moves to when the transaction being
    /// completed ends (chosen at EndTxn when the epoch is exhausted), or -1.
    pub next_producer_id: i64,
    /// The current producer epoch: markers carry it, and the producer sends
    /// it (after EndTxn: the bumped one the response returned).
    pub producer_epoch: i16,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// The state.
    pub state: TxnState,
    /// The partitions of the transaction (empty in `Empty`).
    pub partitions: BTreeSet<TopicPartition>,
    /// When the state last changed (ms since the epoch).
    pub last_update_ms: i64,
    /// When the open transaction started (its first partition was added),
    /// or -1.
    pub start_ms: i64,
    /// The client's transaction version (2 for Strom's).
    pub client_transaction_version: i16,
}

/// A record of `__transaction_state`: a transactional id and its state, or
/// a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key.
    pub transactional_id: String,
    /// The value; `None` is a tombstone (the id expired).
    pub value: Option<TxnMetadata>,
}

impl Record {
    /// A record that sets `transactional_id` to `value`.
    pub fn put(transactional_id: &str, value: TxnMetadata) -> Record {
        Record {
            transactional_id: transactional_id.to_owned(),
            value: Some(value),
        }
    }

    /// A tombstone for `transactional_id`.
    pub fn tombstone(transactional_id: &str) -> Record {
        Record {
            transactional_id: transactional_id.to_owned(),
            value: None,
        }
    }

    /// The record's key and value bytes (`None`: a tombstone).
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            encode_key(&self.transactional_id),
            self.value
                .as_ref()
                .map(|v| v.encode(TRANSACTION_LOG_VALUE_VERSION)),
        )
    }

    /// Decodes a record from its key and value bytes.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Record> {
        let transactional_id = decode_key(key)?;
        let value = match value {
            None => None,
            Some(v) => Some(TxnMetadata::decode(v)?),
        };
        Ok(Record {
            transactional_id,
            value,
        })
    }
}

/// The key bytes of `transactional_id`.
pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(TRANSACTION_LOG_KEY_VERSION);
    w.string(transactional_id);
    w.buf
}

/// The transactional id of a key.
pub fn decode_key(bytes: &[u8]) -> Result<String> {
    let mut r = Reader::new(bytes, "transaction log key");
    let version = r.i16()?;
    if version != TRANSACTION_LOG_KEY_VERSION {
        bail!(
            CorruptMessage,
            "unknown transaction log key version {version}"
        );
    }
    let id = r.string()?;
    if !r.is_empty() {
        bail!(CorruptMessage, "transaction log key has trailing bytes");
    }
    Ok(id)
}

impl TxnMetadata {
    /// The partitions grouped by topic, as the value lists them.
    fn by_topic(&self) -> BTreeMap<&str, Vec<i32>> {
        let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, p) in &self.partitions {
            out.entry(topic.as_str()).or_default().push(*p);
        }
        out
    }

    /// The value bytes in `version` (0 or 1; fields v0 lacks are dropped).
    pub fn encode(&self, version: i16) -> Vec<u8> {
        let flexible = version >= 1;
        let mut w = Writer::default();
        w.i16(version);
        w.i64(self.producer_id);
        w.i16(self.producer_epoch);
        w.i32(self.timeout_ms);
        w.i8(self.state.id());
        let topics = (self.state != TxnState::Empty).then(|| self.by_topic());
        if flexible {
            w.compact_nullable_array_len(topics.as_ref().map(BTreeMap::len));
        } else {
            w.array_len(topics.as_ref().map(BTreeMap::len));
        }
        for (topic, parts) in topics.iter().flatten() {
            if flexible {
                w.compact_string(topic);
                w.compact_array_len(parts.len());
            } else {
                w.string(topic);
                w.array_len(Some(parts.len()));
            }
            for p in parts {
                w.i32(*p);
            }
            if flexible {
                w.tagged_fields(&[]);
            }
        }
        w.i64(self.last_update_ms);
        w.i64(self.start_ms);
        if flexible {
            let mut tags = Vec::new();
            if self.previous_producer_id != NO_PRODUCER_ID {
                tags.push((
                    TAG_PREVIOUS_PRODUCER_ID,
                    self.previous_producer_id.to_be_bytes().to_vec(),
                ));
            }
            if self.next_producer_id != NO_PRODUCER_ID {
                tags.push((
                    TAG_NEXT_PRODUCER_ID,
                    self.next_producer_id.to_be_bytes().to_vec(),
                ));
            }
            if self.client_transaction_version != 0 {
                tags.push((
                    TAG_CLIENT_TRANSACTION_VERSION,
                    self.client_transaction_version.to_be_bytes().to_vec(),
                ));
            }
            w.tagged_fields(&tags);
        }
        w.buf
    }

    /// Decodes a value of version 0 or 1. Unknown tagged fields are skipped,
    /// as Kafka does. `PrepareEpochFence` (never written by Strom) reads as
    /// `PrepareAbort`: the fence's abort is what completes it.
    pub fn decode(bytes: &[u8]) -> Result<TxnMetadata> {
        let mut r = Reader::new(bytes, "transaction log value");
        let version = r.i16()?;
        if !(0..=1).contains(&version) {
            bail!(
                CorruptMessage,
                "unsupported transaction log value version {version}"
            );
        }
        let flexible = version >= 1;
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let timeout_ms = r.i32()?;
        let mut state = TxnState::from_id(r.i8()?)?;
        if state == TxnState::PrepareEpochFence {
            state = TxnState::PrepareAbort;
        }
        let topics = if flexible {
            r.compact_nullable_array_len()?
        } else {
            r.nullable_array_len()?
        };
        let mut partitions = BTreeSet::new();
        for _ in 0..topics.unwrap_or(0) {
            let topic = if flexible {
                r.compact_string()?
            } else {
                r.string()?
            };
            let n = if flexible {
                r.compact_array_len()?
            } else {
                r.nullable_array_len()?.unwrap_or(0)
            };
            for _ in 0..n {
                partitions.insert((topic.clone(), r.i32()?));
            }
            if flexible {
                r.tagged_fields()?;
            }
        }
        if state == TxnState::Empty {
            partitions.clear();
        }
        let last_update_ms = r.i64()?;
        let start_ms = r.i64()?;
        let mut value = TxnMetadata {
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            last_update_ms,
            start_ms,
            client_transaction_version: 0,
        };
        if flexible {
            for (tag, data) in r.tagged_fields()? {
                let mut f = Reader::new(data, "transaction log value tagged field");
                match tag {
                    TAG_PREVIOUS_PRODUCER_ID => value.previous_producer_id = f.i64()?,
                    TAG_NEXT_PRODUCER_ID => value.next_producer_id = f.i64()?,
                    TAG_CLIENT_TRANSACTION_VERSION => value.client_transaction_version = f.i16()?,
                    _ => continue,
                }
                if !f.is_empty() {
                    bail!(CorruptMessage, "tagged field {tag} has trailing bytes");
                }
            }
        }
        if !r.is_empty() {
            bail!(CorruptMessage, "transaction log value has trailing bytes");
        }
        Ok(value)
    }
}

#[cfg(test)]
#[path = "records_test.rs"]
mod tests;
