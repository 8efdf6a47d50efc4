//! Strom's broker.
//!
//! Layout:
//! * [`config`]: broker settings (Kafka names).
//! * [`error`]: the broker's own [`Error`]; per-partition request errors
//!   are [`replica::PartError`]s.
//! * [`metadata`]: the replayed cluster image and the follower that replays
//!   the controller's metadata log into it.
//! * [`lifecycle`]: registration, heartbeats, controlled shutdown.
//! * [`replica`]: the data path — the one write path
//!   ([`ReplicaManager::append`]) and read path ([`ReplicaManager::fetch`])
//!   every front end and internal writer uses, hosted partition replicas,
//!   leader and follower roles, follower fetch sessions, ISR and high
//!   watermark, and the leadership hook for coordinators.
//! * [`group`]: the group coordinator's shell around `strom-group`: one
//!   shard per offsets partition led here, loaded from the log, written
//!   with acks=all.
//! * [`internal_topic`]: what the group and transaction coordinators
//!   share: one shard per led partition of their internal topic, loaded on
//!   leadership, the topic created on first use, the coordinator lookup.
//! * [`txn`]: the transaction coordinator's shell around `strom-txn`: one
//!   shard per `__transaction_state` partition led here, the marker sender,
//!   the timeout timer.
//! * [`grpc`]: `BrokerService` (produce, fetch, offsets), `GroupService`, `MetadataService`
//!   and, on broker-only nodes, the forwarding `ControllerService`.
//! * `testkit` (tests, and the `testkit` feature): an in-process cluster
//!   of real replica managers over in-memory transports, for deterministic
//!   simulation, and the same cluster serving its gRPC services on
//!   127.0.0.1 for client libraries' tests.
//! * Partition log storage lives in the `strom-log` crate (`broker/log`).

pub mod config;
pub mod error;
pub mod group;
pub mod grpc;
pub mod internal_topic;
pub mod lifecycle;
pub mod metadata;
pub mod replica;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod txn;

pub use config::BrokerConfig;
pub use error::{Error, Result};
pub use lifecycle::{BrokerStatus, Lifecycle, ReplicaSizes};
pub use metadata::MetadataCache;
pub use replica::{ReplicaManager, ReplicationConfig};
