//! Hosting a coordinator's state on the partitions of an internal topic
//! (`__consumer_offsets` for groups, `__transaction_state` for
//! transactions): what both coordinators share.
//!
//! * [`host`]: [`ShardHost`]: one shard per partition this broker leads,
//!   loaded on leadership (COORDINATOR_LOAD_IN_PROGRESS meanwhile), dropped
//!   on its loss (NOT_COORDINATOR), reloaded after a failed write.
//! * [`create`]: creating the topic on first use through the controller
//!   (compacted, replication factor capped by the live brokers).
//! * [`lookup`]: the leader of one of its partitions (FindCoordinator).
//! * [`load`]: reading a partition's log from start to end, for a replay.
//! * [`write`]: a decision's records as one batch, appended with acks=all
//!   at the epoch the shard was loaded at.

pub mod create;
pub mod host;
pub mod load;
pub mod lookup;
pub mod write;

pub use create::{InternalTopicCreator, InternalTopicSpec};
pub use host::{ShardHost, ShardLoader, ShardRef};
pub use lookup::{CoordinatorLookup, lookup};
