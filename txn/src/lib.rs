//! Strom transactions: pure logic, no I/O, no async, no gRPC types.
//!
//! A broker that leads a partition of `__transaction_state` hosts one
//! [`TxnShard`]: it replays the partition's records into it, asks it for
//! decisions (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! marker completion, timeouts, id expiry), appends the records a decision
//! returns with `acks=all`, replays them once committed, answers, and then
//! writes the transaction markers the decision asks for. A second front end
//! (the Kafka wire protocol) drives the same shard: nothing here knows
//! about gRPC.
//!
//! Layout:
//! * [`error`]: [`TxnError`] and [`ErrorKind`] (Kafka's error names and numbers).
//! * [`config`]: [`TxnConfig`], the coordinator's settings.
//! * [`state`]: [`TxnState`], Kafka's transaction states.
//! * [`records`]: the transaction log's records, byte-compatible with Kafka's.
//! * [`coordinator`]: [`TxnShard`]: replay, and every request's decision.
//! * [`markers`]: [`MarkerProgress`]: which partitions still need their
//!   marker, and what a leader's answer means.
//!
//! docs/transactions.md describes the protocol, the records and what the
//! host does with the effects.
#![warn(missing_docs)]

pub mod config;
pub mod coordinator;
pub mod error;
pub mod markers;
pub mod records;
pub mod state;

pub use config::TxnConfig;
pub use coordinator::{
    Decision, InitProducerIdRequest, InitProducerIdResponse, ProducerIdAndEpoch, TxnListing,
    TxnResult, TxnShard, TxnVersion, WriteMarkers, is_epoch_exhausted, validate_transactional_id,
};
pub use error::{ErrorKind, Result, TxnError};
pub use markers::{MarkerAnswer, MarkerProgress, MarkerStatus};
pub use records::{Record, TopicPartition, TxnMetadata};
pub use state::TxnState;

/// The name of the internal transaction log topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// The name of the internal offsets topic (`AddOffsetsToTxn` adds one of
/// its partitions).
pub const OFFSETS_TOPIC: &str = strom_group::OFFSETS_TOPIC;
/// Kafka's default `transaction.state.log.num.partitions`.
pub const DEFAULT_TRANSACTION_STATE_PARTITIONS: i32 = 50;

/// The `__transaction_state` partition that hosts `transactional_id`
/// among `num_partitions`: Kafka's `Utils.abs(id.hashCode()) % n`, the
/// same rule as for groups (`strom_group::offsets_partition_for`).
pub fn transaction_partition_for(transactional_id: &str, num_partitions: i32) -> i32 {
    strom_group::offsets_partition_for(transactional_id, num_partitions)
}
