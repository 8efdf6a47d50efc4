//! How a Strom node reaches the controller quorum, without running it:
//! everything a broker needs from the controller side, with none of the
//! controller's own dependencies (openraft, RocksDB).
//!
//! Layout:
//! * [`voters`]: `--controller-quorum-voters` parsing, and [`ConfigError`],
//!   the error of node settings shared by the controller's and the broker's
//!   configs.
//! * [`quorum_client`]: [`QuorumClient`], a client of whichever voter leads
//!   (NOT_CONTROLLER hints, retries until a deadline), and the HTTP/2
//!   keep-alive every node-to-node connection uses.
//!
//! `strom-controller` re-exports all of it; `strom-broker` depends on this
//! crate only, so a broker build links neither openraft nor RocksDB.

#![warn(missing_docs)]

pub mod quorum_client;
pub mod voters;

pub use quorum_client::{KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT, QuorumClient};
pub use voters::{ConfigError, parse_voters};
