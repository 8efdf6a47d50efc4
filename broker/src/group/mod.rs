//! The group coordinator's shell: hosts a [`strom_group::Shard`] for each
//! `__consumer_offsets` partition this broker leads, and does its I/O.
//!
//! * [`config`]: the broker settings of the coordinator (Kafka's names).
//! * [`coordinator`]: [`GroupCoordinator`]: the shards by partition (hosted
//!   by [`crate::internal_topic::ShardHost`]: loading on leadership,
//!   unloading on its loss), one decision at a time per shard, session and
//!   retention timers.
//! * [`lag`]: the consumer lag per group and topic, from end offsets the
//!   partition leaders answer on a timer (the [`EndOffsets`] seam).
//! * [`member_read`]: `ConsumeMemberRecords`, a member's owned partitions
//!   read at once on their leaders ([`peers`]: the [`Peers`] seam).
//! * [`push`]: the pushed assignment stream's fan-out: a watch channel per
//!   member with an open stream, told whom the core says to wake.
//! * `load`: replays a partition's local log into a shard.
//! * `write`: a decision's records as one batch, appended with acks=all
//!   at the epoch the shard was loaded at.
//! * `topics`: the metadata image as the pure core's `Topics`.
//!
//! docs/groups.md describes the protocol.

pub mod config;
pub mod coordinator;
pub mod lag;
mod load;
pub mod member_read;
pub mod peers;
pub mod push;
mod topics;
mod write;

pub use config::GroupsConfig;
pub use coordinator::{Coordinator, GroupCoordinator, GroupMetrics};
pub use lag::{EndOffsets, GrpcEndOffsets};
pub use peers::{GrpcPeers, Peers};
pub use push::Push;
pub use strom_group::lag::TopicLag;
