//! Strom's Rust client: an admin client, a producer and a consumer, with
//! Kafka's semantics, settings and defaults, over Strom's gRPC API.
//!
//! Layout:
//! * [`config`] — [`ClientConfig`] (bootstrap servers, timeouts, backoff),
//!   embedded by every client's config, and the parsing of Kafka-style
//!   `key=value` properties ([`ConfigError`]).
//! * [`error`] — [`Error`] and [`Result`]; typed server errors keep their
//!   [`ErrorCode`].
//! * `pool` — one lazily connected tonic channel per node, bootstrap
//!   rotation, eviction of broken connections.
//! * [`retry`] — retry classification (whole requests and per partition),
//!   exponential backoff and the retry loop of single requests.
//! * `coordinator` — a group's or transactional id's coordinator:
//!   FindCoordinator, the remembered address, which answers mean it moved.
//! * `cluster` — the producer's and consumer's metadata: partition leaders
//!   and epochs, refreshed from `MetadataService` and from leader hints.
//! * [`admin`] — [`Admin`]: topics, partitions, leader elections, cluster
//!   description, record deletion (to partition leaders), and their domain
//!   types (serialized as the CLI's JSON).
//! * [`producer`] — [`Producer`]: batching per partition, Kafka's murmur2
//!   and sticky partitioners, `acks`, compression, retries with ordering,
//!   delivery timeout, bounded buffer memory.
//! * [`consumer`] — [`Consumer`] with manual assignment or group
//!   membership (`subscribe`, rebalance listener, commits, auto commit):
//!   seeks (offset, beginning, end, timestamp), prefetching fetches per
//!   leader broker, `auto.offset.reset`, offset queries.
//!
//! Records travel as Kafka v2 record batches built and decoded by
//! `strom-log` ([`Compression`], [`Header`], [`TimestampType`] are its types).
//!
//! The `strom` command-line tool is a separate crate, `strom-cli` (`cli/`),
//! so this library carries none of its dependencies.

#![warn(missing_docs)]

pub mod admin;
mod cluster;
pub mod config;
pub mod consumer;
mod coordinator;
pub mod error;
mod pool;
pub mod producer;
pub mod retry;

pub use admin::{
    Admin, AlterConfigOp, BrokerDescription, BrokerState, ClusterDescription, ConfigEntry,
    ConfigResource, ConfigSource, ConfigSynonym, ControllerQuorum, CreateTopicResult,
    DeleteTopicResult, DeletedRecords, ElectionResult, ElectionType, Metadata, NewTopic,
    PartitionDescription, PartitionReassignment, ReassignmentResult, TopicDescription, TopicId,
    TopicListing, TopicPartition, VoterDescription,
};
pub use admin::{
    CommittedOffset, GroupDescription, GroupListing, GroupMemberDescription, GroupTopicPartitions,
};
pub use admin::{
    ProducerState, TransactionDescription, TransactionListing, producer_at_start_offset,
};
pub use config::{
    ClientConfig, ConfigError, DEFAULT_BOOTSTRAP_SERVER, Properties, parse_bootstrap_servers,
    parse_properties,
};
pub use consumer::{
    CommitFuture, Consumer, ConsumerConfig, ConsumerGroupMetadata, ConsumerRecord, IsolationLevel,
    ListenerFuture, OffsetAndMetadata, OffsetAndTimestamp, OffsetReset, RebalanceListener,
};
pub use error::{Error, LeaderHint, Result, StromError};
pub use producer::{
    Acks, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
pub use strom_log::{Compression, Header, TimestampType};
pub use strom_proto::v1::ErrorCode;
