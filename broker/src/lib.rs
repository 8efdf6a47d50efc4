//! Strom's broker.
//!
//! Layout:
//! * [`config`]: broker settings (Kafka names).
//! * [`metadata`]: the replayed cluster image and the follower that replays
//!   the controller's metadata log into it.
//! * [`lifecycle`]: registration, heartbeats, controlled shutdown.
//! * [`replica`]: the data path — hosted partition replicas, leader and
//!   follower roles, follower fetch sessions, ISR and high watermark.
//! * [`grpc`]: `BrokerService` (produce, fetch, offsets), `MetadataService`
//!   and, on broker-only nodes, the forwarding `ControllerService`.
//! * Partition log storage lives in the `strom-log` crate (`broker/log`).

pub mod config;
pub mod grpc;
pub mod lifecycle;
pub mod metadata;
pub mod replica;

pub use config::BrokerConfig;
pub use lifecycle::{BrokerStatus, Lifecycle};
pub use metadata::MetadataCache;
pub use replica::{ReplicaManager, ReplicationConfig};
