//! The records of `__consumer_offsets`, byte-compatible with Kafka's group
//! coordinator (so a Kafka wire-protocol front end and Kafka's own tools
//! read the same log):
//!
//! | key type | key fields         | value                                   |
//! |----------|--------------------|-----------------------------------------|
//! | 0, 1     | group, topic, part | `OffsetCommitValue` v0-v3 (writes v3)    |
//! | 3        | group              | `ConsumerGroupMetadataValue` v0          |
//! | 5        | group, member      | `ConsumerGroupMemberMetadataValue` v0    |
//! | 6        | group              | `ConsumerGroupTargetAssignmentMetadataValue` v0 |
//! | 7        | group, member      | `ConsumerGroupTargetAssignmentMemberValue` v0 |
//! | 8        | group, member      | `ConsumerGroupCurrentMemberAssignmentValue` v0 |
//!
//! A key is an `int16` record type followed by non-flexible strings; a value
//! is an `int16` version followed by the fields (flexible encoding for the
//! KIP-848 values). A null value is a tombstone: compaction keeps the last
//! record per key, so deleting state is writing its tombstone.
//!
//! Strom adds two tagged fields to `ConsumerGroupMemberMetadataValue`
//! (tags Kafka does not use, which Kafka's readers skip): tag 100 the
//! member's `partition.assignment.strategy` list, tag 101 its
//! `session.timeout.ms`. `ServerAssignor` holds the first strategy.
//! Classic-protocol records (key types 2 and 4) are not written by Strom
//! and are refused on read.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::error::{Result, bail};
use strom_kafka_codec::{Reader, Writer};

/// A set of partitions by topic id: an assignment.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Key type of an offset commit (version 1; version 0 is read too).
pub const OFFSET_COMMIT_KEY: i16 = 1;
/// Key type of a consumer group's metadata.
pub const GROUP_METADATA_KEY: i16 = 3;
/// Key type of a member's metadata.
pub const MEMBER_METADATA_KEY: i16 = 5;
/// Key type of the target assignment's metadata.
pub const TARGET_ASSIGNMENT_METADATA_KEY: i16 = 6;
/// Key type of one member's target assignment.
pub const TARGET_ASSIGNMENT_MEMBER_KEY: i16 = 7;
/// Key type of one member's current assignment.
pub const CURRENT_ASSIGNMENT_KEY: i16 = 8;

/// The key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKey {
    /// A committed offset of `group` for `topic`-`partition`.
    OffsetCommit {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// A consumer group's epoch.
    GroupMetadata {
        /// Group id.
        group: String,
    },
    /// A member's subscription and client details.
    MemberMetadata {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// The epoch of the group's target assignment.
    TargetAssignmentMetadata {
        /// Group id.
        group: String,
    },
    /// One member's target assignment.
    TargetAssignmentMember {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// One member's current assignment, epoch and reconciliation state.
    CurrentAssignment {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
}

impl RecordKey {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            RecordKey::OffsetCommit { group, .. }
            | RecordKey::GroupMetadata { group }
            | RecordKey::MemberMetadata { group, .. }
            | RecordKey::TargetAssignmentMetadata { group }
            | RecordKey::TargetAssignmentMember { group, .. }
            | RecordKey::CurrentAssignment { group, .. } => group,
        }
    }

    /// Kafka's record type (the key's leading `int16`).
    pub fn record_type(&self) -> i16 {
        match self {
            RecordKey::OffsetCommit { .. } => OFFSET_COMMIT_KEY,
            RecordKey::GroupMetadata { .. } => GROUP_METADATA_KEY,
            RecordKey::MemberMetadata { .. } => MEMBER_METADATA_KEY,
            RecordKey::TargetAssignmentMetadata { .. } => TARGET_ASSIGNMENT_METADATA_KEY,
            RecordKey::TargetAssignmentMember { .. } => TARGET_ASSIGNMENT_MEMBER_KEY,
            RecordKey::CurrentAssignment { .. } => CURRENT_ASSIGNMENT_KEY,
        }
    }

    /// The key's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.i16(self.record_type());
        match self {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                w.string(group);
                w.string(topic);
                w.i32(*partition);
            }
            RecordKey::GroupMetadata { group } | RecordKey::TargetAssignmentMetadata { group } => {
                w.string(group)
            }
            RecordKey::MemberMetadata { group, member }
            | RecordKey::TargetAssignmentMember { group, member }
            | RecordKey::CurrentAssignment { group, member } => {
                w.string(group);
                w.string(member);
            }
        }
        w.buf
    }

    /// Decodes a key.
    pub fn decode(bytes: &[u8]) -> Result<RecordKey> {
        let mut r = Reader::new(bytes, "record key");
        let ty = r.i16()?;
        let key = match ty {
            0 | OFFSET_COMMIT_KEY => RecordKey::OffsetCommit {
                group: r.string()?,
                topic: r.string()?,
                partition: r.i32()?,
            },
            GROUP_METADATA_KEY => RecordKey::GroupMetadata { group: r.string()? },
            TARGET_ASSIGNMENT_METADATA_KEY => {
                RecordKey::TargetAssignmentMetadata { group: r.string()? }
            }
            MEMBER_METADATA_KEY => RecordKey::MemberMetadata {
                group: r.string()?,
                member: r.string()?,
            },
            TARGET_ASSIGNMENT_MEMBER_KEY => RecordKey::TargetAssignmentMember {
                group: r.string()?,
                member: r.string()?,
            },
            CURRENT_ASSIGNMENT_KEY => RecordKey::CurrentAssignment {
                group: r.string()?,
                member: r.string()?,
            },
            other => bail!(CorruptMessage, "unsupported record type {other}"),
        };
        if !r.is_empty() {
            bail!(CorruptMessage, "record key of type {ty} has trailing bytes");
        }
        Ok(key)
    }
}

/// A committed offset (`OffsetCommitValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// The next offset the group will consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When the commit was accepted (ms since the epoch).
    pub commit_timestamp_ms: i64,
}

/// A member's reconciliation state (Kafka's `MemberState` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberState {
    /// The member must revoke partitions before it advances.
    UnrevokedPartitions,
    /// The member waits for partitions other members still own.
    UnreleasedPartitions,
    /// The member runs its target assignment.
    Stable,
}

impl MemberState {
    fn to_byte(self) -> i8 {
        match self {
            MemberState::UnrevokedPartitions => 0,
            MemberState::UnreleasedPartitions => 1,
            MemberState::Stable => 2,
        }
    }
    fn from_byte(b: i8) -> Result<Self> {
        Ok(match b {
            0 => MemberState::UnrevokedPartitions,
            1 => MemberState::UnreleasedPartitions,
            2 => MemberState::Stable,
            other => bail!(CorruptMessage, "unknown member state {other}"),
        })
    }
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            MemberState::UnrevokedPartitions => "UNREVOKED_PARTITIONS",
            MemberState::UnreleasedPartitions => "UNRELEASED_PARTITIONS",
            MemberState::Stable => "STABLE",
        }
    }
}

/// A member's subscription and client details
/// (`ConsumerGroupMemberMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    /// `group.instance.id` (static membership).
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// The client's address as the broker saw it.
    pub client_host: String,
    /// Subscribed topic names (sorted).
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed topic regex (full match), if any.
    pub subscribed_topic_regex: Option<String>,
    /// `max.poll.interval.ms`: how long the member may take to revoke.
    pub rebalance_timeout_ms: i32,
    /// `partition.assignment.strategy`, in preference order.
    pub assignors: Vec<String>,
    /// `session.timeout.ms`.
    pub session_timeout_ms: i32,
}

/// A member's current assignment (`ConsumerGroupCurrentMemberAssignmentValue`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    /// The epoch the member must send in its next heartbeat.
    pub member_epoch: i32,
    /// The epoch before the last bump (accepted if the bump's answer was lost).
    pub previous_member_epoch: i32,
    /// Reconciliation state.
    pub state: Option<MemberState>,
    /// Partitions the member owns.
    pub assigned: Assignment,
    /// Partitions the member must revoke.
    pub pending_revocation: Assignment,
}

/// The value of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    /// A committed offset.
    OffsetCommit(OffsetCommitValue),
    /// The group epoch.
    GroupMetadata {
        /// Group epoch: bumped when membership or subscriptions change.
        epoch: i32,
        /// Hash of the subscribed topics' metadata (Kafka's tagged
        /// `MetadataHash`, tag 0; Strom's hash function is its own).
        metadata_hash: i64,
    },
    /// A member's metadata.
    MemberMetadata(MemberMetadata),
    /// The target assignment's epoch.
    TargetAssignmentMetadata {
        /// The group epoch the target assignment was computed for.
        assignment_epoch: i32,
    },
    /// One member's target assignment.
    TargetAssignmentMember(Assignment),
    /// One member's current assignment.
    CurrentAssignment(CurrentAssignment),
}

/// A record of `__consumer_offsets`: a key and a value, or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key.
    pub key: RecordKey,
    /// The value; `None` is a tombstone (delete the key's state).
    pub value: Option<RecordValue>,
}

const TAG_METADATA_HASH: u32 = 0;
const TAG_ASSIGNORS: u32 = 100;
const TAG_SESSION_TIMEOUT: u32 = 101;

fn write_assignment(w: &mut Writer, a: &Assignment) {
    w.compact_array_len(a.len());
    for (topic, partitions) in a {
        w.uuid(*topic);
        w.compact_array_len(partitions.len());
        for p in partitions {
            w.i32(*p);
        }
        w.tagged_fields(&[]);
    }
}

fn read_assignment(r: &mut Reader<'_>) -> Result<Assignment> {
    let n = r.compact_array_len()?;
    let mut out = Assignment::new();
    for _ in 0..n {
        let topic = r.uuid()?;
        let m = r.compact_array_len()?;
        let mut parts = BTreeSet::new();
        for _ in 0..m {
            parts.insert(r.i32()?);
        }
        r.tagged_fields()?;
        if !parts.is_empty() {
            out.entry(topic).or_default().extend(parts);
        }
    }
    Ok(out)
}

impl RecordValue {
    /// The value's bytes (version prefix included).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            RecordValue::OffsetCommit(v) => {
                w.i16(3);
                w.i64(v.offset);
                w.i32(v.leader_epoch);
                w.string(&v.metadata);
                w.i64(v.commit_timestamp_ms);
            }
            RecordValue::GroupMetadata {
                epoch,
                metadata_hash,
            } => {
                w.i16(0);
                w.i32(*epoch);
                if *metadata_hash == 0 {
                    w.tagged_fields(&[]);
                } else {
                    w.tagged_fields(&[(TAG_METADATA_HASH, metadata_hash.to_be_bytes().to_vec())]);
                }
            }
            RecordValue::MemberMetadata(m) => {
                w.i16(0);
                w.compact_nullable_string(m.instance_id.as_deref());
                w.compact_nullable_string(m.rack_id.as_deref());
                w.compact_string(&m.client_id);
                w.compact_string(&m.client_host);
                w.compact_array_len(m.subscribed_topic_names.len());
                for t in &m.subscribed_topic_names {
                    w.compact_string(t);
                }
                w.compact_nullable_string(m.subscribed_topic_regex.as_deref());
                w.i32(m.rebalance_timeout_ms);
                w.compact_nullable_string(m.assignors.first().map(String::as_str));
                let mut assignors = Writer::default();
                assignors.compact_array_len(m.assignors.len());
                for a in &m.assignors {
                    assignors.compact_string(a);
                }
                let mut session = Writer::default();
                session.i32(m.session_timeout_ms);
                w.tagged_fields(&[
                    (TAG_ASSIGNORS, assignors.buf),
                    (TAG_SESSION_TIMEOUT, session.buf),
                ]);
            }
            RecordValue::TargetAssignmentMetadata { assignment_epoch } => {
                w.i16(0);
                w.i32(*assignment_epoch);
                w.tagged_fields(&[]);
            }
            RecordValue::TargetAssignmentMember(a) => {
                w.i16(0);
                write_assignment(&mut w, a);
                w.tagged_fields(&[]);
            }
            RecordValue::CurrentAssignment(c) => {
                w.i16(0);
                w.i32(c.member_epoch);
                w.i32(c.previous_member_epoch);
                w.i8(c.state.map_or(127, MemberState::to_byte));
                write_assignment(&mut w, &c.assigned);
                write_assignment(&mut w, &c.pending_revocation);
                w.tagged_fields(&[]);
            }
        }
        w.buf
    }

    /// Decodes the value of a record whose key is `key`.
    pub fn decode(key: &RecordKey, bytes: &[u8]) -> Result<RecordValue> {
        let mut r = Reader::new(bytes, "record value");
        let version = r.i16()?;
        let value = match key {
            RecordKey::OffsetCommit { .. } => {
                let offset = r.i64()?;
                let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
                let metadata = r.string()?;
                let commit_timestamp_ms = r.i64()?;
                if version == 1 {
                    r.i64()?; // expireTimestamp, no longer used (KIP-211)
                }
                if !(0..=3).contains(&version) {
                    bail!(
                        CorruptMessage,
                        "unsupported offset commit value version {version}"
                    );
                }
                RecordValue::OffsetCommit(OffsetCommitValue {
                    offset,
                    leader_epoch,
                    metadata,
                    commit_timestamp_ms,
                })
            }
            _ if version != 0 => bail!(
                CorruptMessage,
                "unsupported value version {version} for record type {}",
                key.record_type()
            ),
            RecordKey::GroupMetadata { .. } => {
                let epoch = r.i32()?;
                let mut metadata_hash = 0;
                for (tag, data) in r.tagged_fields()? {
                    if tag == TAG_METADATA_HASH {
                        metadata_hash = Reader::new(data, "group metadata hash").i64()?;
                    }
                }
                RecordValue::GroupMetadata {
                    epoch,
                    metadata_hash,
                }
            }
            RecordKey::TargetAssignmentMetadata { .. } => {
                let assignment_epoch = r.i32()?;
                r.tagged_fields()?;
                RecordValue::TargetAssignmentMetadata { assignment_epoch }
            }
            RecordKey::MemberMetadata { .. } => {
                let instance_id = r.compact_nullable_string()?;
                let rack_id = r.compact_nullable_string()?;
                let client_id = r.compact_string()?;
                let client_host = r.compact_string()?;
                let n = r.compact_array_len()?;
                let mut subscribed_topic_names = Vec::with_capacity(n);
                for _ in 0..n {
                    subscribed_topic_names.push(r.compact_string()?);
                }
                let subscribed_topic_regex = r.compact_nullable_string()?;
                let rebalance_timeout_ms = r.i32()?;
                let server_assignor = r.compact_nullable_string()?;
                let mut m = MemberMetadata {
                    instance_id,
                    rack_id,
                    client_id,
                    client_host,
                    subscribed_topic_names,
                    subscribed_topic_regex,
                    rebalance_timeout_ms,
                    assignors: server_assignor.into_iter().collect(),
                    session_timeout_ms: crate::config::DEFAULT_SESSION_TIMEOUT_MS,
                };
                for (tag, data) in r.tagged_fields()? {
                    let mut f = Reader::new(data, "member metadata tagged field");
                    match tag {
                        TAG_ASSIGNORS => {
                            let n = f.compact_array_len()?;
                            m.assignors = (0..n)
                                .map(|_| f.compact_string())
                                .collect::<Result<_, _>>()?;
                        }
                        TAG_SESSION_TIMEOUT => m.session_timeout_ms = f.i32()?,
                        _ => {}
                    }
                }
                RecordValue::MemberMetadata(m)
            }
            RecordKey::TargetAssignmentMember { .. } => {
                let a = read_assignment(&mut r)?;
                r.tagged_fields()?;
                RecordValue::TargetAssignmentMember(a)
            }
            RecordKey::CurrentAssignment { .. } => {
                let member_epoch = r.i32()?;
                let previous_member_epoch = r.i32()?;
                let state = match r.i8()? {
                    127 => None,
                    b => Some(MemberState::from_byte(b)?),
                };
                let assigned = read_assignment(&mut r)?;
                let pending_revocation = read_assignment(&mut r)?;
                r.tagged_fields()?;
                RecordValue::CurrentAssignment(CurrentAssignment {
                    member_epoch,
                    previous_member_epoch,
                    state,
                    assigned,
                    pending_revocation,
                })
            }
        };
        if !r.is_empty() {
            bail!(
                CorruptMessage,
                "{} of record type {} has trailing bytes",
                r.what(),
                key.record_type()
            );
        }
        Ok(value)
    }
}

impl Record {
    /// A record that sets `key` to `value`.
    pub fn put(key: RecordKey, value: RecordValue) -> Record {
        Record {
            key,
            value: Some(value),
        }
    }

    /// A tombstone for `key`.
    pub fn tombstone(key: RecordKey) -> Record {
        Record { key, value: None }
    }

    /// The record's key and value bytes (`None`: a tombstone).
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            self.key.encode(),
            self.value.as_ref().map(RecordValue::encode),
        )
    }

    /// Decodes a record from its key and value bytes.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Record> {
        let key = RecordKey::decode(key)?;
        let value = match value {
            None => None,
            Some(v) => Some(RecordValue::decode(&key, v)?),
        };
        Ok(Record { key, value })
    }
}

#[cfg(test)]
#[path = "records_test.rs"]
mod tests;
