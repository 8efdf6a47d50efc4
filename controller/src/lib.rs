//! Strom's controller: a KRaft-style quorum that owns all cluster metadata
//! as a replicated log of metadata records.
//!
//! Layout:
//! * [`config`]: settings (Kafka names) and `--controller-quorum-voters` parsing.
//! * [`controller`]: start-up, the single write path (`decide`), leadership.
//! * `duties`: what only the active controller runs (broker fencing, cluster
//!   id, leader rebalancing, completing reassignments), for exactly one
//!   term at a time.
//! * `lease`: broker leases (heartbeats are not logged).
//! * `sizes`: replica sizes reported with heartbeats (reassignment progress).
//! * [`raft`]: openraft over RocksDB — log store, state machine, network.
//! * [`grpc`]: `ControllerService`, one file per RPC, with forwarding to the leader.
//! * [`quorum_client`]: how brokers reach the active controller (from
//!   `strom-controller-client`, re-exported).
//! * [`error`]: the crate's error and its gRPC mapping.

// openraft's StorageError and RaftError are large by design; boxing them at
// every trait boundary would only add allocations.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod controller;
mod duties;
pub mod error;
pub mod grpc;
mod lease;
pub mod raft;
mod sizes;

pub use config::{ConfigError, ControllerConfig, parse_voters};
pub use controller::{Controller, ReassignmentProgress, StartError};
pub use error::ControllerError;
pub use grpc::ControllerGrpc;
pub use raft::service::RaftServiceImpl;
pub use strom_controller_client::{QuorumClient, quorum_client};
