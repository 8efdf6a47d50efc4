//! Strom's broker.
//!
//! Layout:
//! * [`config`]: broker settings (Kafka names).
//! * [`metadata`]: the replayed cluster image and the follower that replays
//!   the controller's metadata log into it.
//! * [`lifecycle`]: registration, heartbeats, controlled shutdown.
//! * [`isr`]: ISR expansion by partition leaders through AlterPartition.
//! * [`grpc`]: `MetadataService` and, on broker-only nodes, the forwarding
//!   `ControllerService`.
//! * Partition log storage lives in the `strom-log` crate (`broker/log`).

pub mod config;
pub mod grpc;
pub mod isr;
pub mod lifecycle;
pub mod metadata;

pub use config::BrokerConfig;
pub use lifecycle::{BrokerStatus, Lifecycle};
pub use metadata::MetadataCache;
