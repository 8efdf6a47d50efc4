//! The transaction coordinator's shell: hosts a [`strom_txn::TxnShard`] for
//! each `__transaction_state` partition this broker leads, and does its
//! I/O.
//!
//! * [`config`]: the broker settings of the coordinator (Kafka's names).
//! * [`coordinator`]: [`TxnCoordinator`]: the shards (hosted by
//!   [`crate::internal_topic::ShardHost`]), every request's decision,
//!   write and replay, the marker sender, the timeout timer, and KIP-890
//!   verification for the replica manager.
//! * [`channel`]: the marker channel: the markers of every transaction
//!   for one partition leader go in one WriteTxnMarkers request.
//! * `load`: replays a partition's local log into a shard.
//! * [`markers`]: WriteTxnMarkers on the leader's side, and the requests
//!   and answers on the coordinator's.
//! * [`producer_id`]: InitProducerId, idempotent or transactional, for
//!   every front end.
//! * [`peers`]: calls to other brokers ([`TxnPeers`], over gRPC).
//!
//! docs/transactions.md describes the protocol.

pub mod channel;
pub mod config;
pub mod coordinator;
mod load;
pub mod markers;
pub mod peers;
pub mod producer_id;

pub use config::TxnsConfig;
pub use coordinator::{TxnCoordinator, TxnCoordinatorRef, TxnMetrics};
pub use peers::{GrpcTxnPeers, TxnPeers};
pub use producer_id::init_producer_id;
