//! Strom's Rust client.
//!
//! Layout:
//! * [`config`] — [`ClientConfig`]: bootstrap servers, timeouts, backoff.
//!   The producer and consumer configs (next issue) will embed it.
//! * [`error`] — [`Error`] and [`Result`]; typed server errors keep their
//!   [`ErrorCode`].
//! * `pool` — one lazily connected tonic channel per node, bootstrap rotation.
//! * [`retry`] — retry classification, exponential backoff and the retry loop
//!   every request goes through.
//! * [`admin`] — [`Admin`]: topics, partitions, leader elections, cluster
//!   description, and their domain types (serialized as the CLI's JSON).
//!
//! Reserved for the next issue: `producer` (batching, murmur2 partitioner,
//! acks, compression) and `consumer`, built on the same config, pool and
//! retry loop.
//!
//! The `strom` command-line tool lives in `src/bin/strom/`.

#![warn(missing_docs)]

pub mod admin;
pub mod config;
pub mod error;
mod pool;
pub mod retry;

pub use admin::{
    Admin, BrokerDescription, BrokerState, ClusterDescription, ControllerQuorum, CreateTopicResult,
    DeleteTopicResult, ElectionResult, ElectionType, Metadata, NewTopic, PartitionDescription,
    TopicDescription, TopicId, TopicListing, TopicPartition, VoterDescription,
};
pub use config::{ClientConfig, DEFAULT_BOOTSTRAP_SERVER, parse_bootstrap_servers};
pub use error::{Error, LeaderHint, Result, StromError};
pub use strom_proto::v1::ErrorCode;
