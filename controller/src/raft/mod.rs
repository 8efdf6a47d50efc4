//! The Raft layer of the controller: openraft's storage, state machine and
//! network, all behind openraft's traits.
//!
//! * [`types`]: the openraft type configuration ([`Proposal`] in, [`ApplyOutcome`] out).
//! * [`store`]: the RocksDB database (log, vote, snapshot).
//! * [`log_store`]: `RaftLogStorage` over it.
//! * [`state_machine`]: `RaftStateMachine` applying batches to the image.
//! * [`feed`]: the committed image and the feed of batches for watchers.
//! * [`network`]: the gRPC client side of `RaftService`.
//! * [`service`]: the gRPC server side of `RaftService`.

pub mod feed;
pub mod log_store;
pub mod network;
pub mod service;
pub mod state_machine;
pub mod store;
pub mod types;

pub use types::{ApplyOutcome, NodeId, Proposal, Raft, TypeConfig};
