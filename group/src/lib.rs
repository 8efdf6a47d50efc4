//! Strom consumer groups: pure logic, no I/O, no async, no gRPC types.
//!
//! A broker that leads a partition of `__consumer_offsets` hosts one
//! [`Shard`]: it replays the partition's records into it, asks it for
//! decisions (heartbeats, offset commits, deletions, session expiry),
//! appends the records a decision returns with `acks=all`, and replays them
//! once committed. A second front end (the Kafka wire protocol) can drive
//! the same shard: nothing here knows about gRPC.
//!
//! Layout:
//! * [`error`]: [`GroupError`] and [`ErrorKind`] (named after the proto
//!   `ErrorCode`s, with Kafka's numbers).
//! * [`config`]: [`GroupConfig`], the coordinator's settings.
//! * [`hash`]: which offsets partition hosts a group (Java's `String.hashCode`).
//! * [`records`]: the offsets topic's records, byte-compatible with Kafka's.
//!   Kafka's primitive encodings come from `strom-kafka-codec`.
//! * [`topics`]: the cluster's topics as the coordinator sees them.
//! * [`assignor`]: range, roundrobin, sticky and cooperative-sticky.
//! * [`group`]: a consumer group's replayed state and its `apply`.
//! * [`reconcile`]: how a member moves to its target assignment without a
//!   partition ever being held by two members.
//! * [`position`]: where a member's read of a partition starts.
//! * [`shard`]: [`Shard`]: replay, and every request's decision;
//!   [`shard::classic`]: Kafka's classic protocol (JoinGroup, SyncGroup,
//!   Heartbeat, LeaveGroup) as heartbeats of the same state machine.
//! * [`wake`]: which members should heartbeat now (the pushed assignment
//!   stream).
//! * [`lag`]: consumer lag per group and topic from committed and end
//!   offsets, and which leader to ask for which end offsets.
//!
//! docs/groups.md describes the protocol and the records.
#![warn(missing_docs)]

pub mod assignor;
pub mod config;
pub mod error;
pub mod group;
pub mod hash;
pub mod lag;
pub mod position;
pub mod reconcile;
pub mod records;
pub mod shard;
pub mod topics;
pub mod wake;

pub use assignor::{Assignor, DEFAULT_ASSIGNORS, MemberSpec};
pub use config::GroupConfig;
pub use error::{ErrorKind, GroupError, Result};
pub use group::{ConsumerGroup, GroupState, Member};
pub use hash::{java_string_hash_code, offsets_partition_for};
pub use records::{
    Assignment, CurrentAssignment, MemberMetadata, MemberState, OffsetCommitValue, Record,
    RecordKey, RecordValue,
};
pub use shard::classic::{
    CONSUMER_PROTOCOL_TYPE, ClassicHeartbeatResponse, ClassicJoinRequest, ClassicJoinResponse,
    ClassicLeave, ClassicSyncResponse,
};
pub use shard::{
    CommitEntry, CommitRequest, Decision, GroupDescription, GroupListing, HeartbeatRequest,
    HeartbeatResponse, MemberDescription, Shard, Subscription, TxnCommitRequest, validate_group_id,
};
pub use topics::{TopicInfo, Topics};
pub use uuid::Uuid;

/// The name of the internal offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Member epoch of a heartbeat that joins the group.
pub const JOIN_GROUP_MEMBER_EPOCH: i32 = 0;
/// Member epoch of a heartbeat that leaves the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// Member epoch of a static member leaving for a restart (keeps its
/// assignment until its session expires).
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;
