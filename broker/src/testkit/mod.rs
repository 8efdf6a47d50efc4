//! An in-process cluster for tests and deterministic simulation: N real
//! [`ReplicaManager`](crate::ReplicaManager)s (their fetchers, ISR senders
//! and partition logs on disk) wired through the [`seams`](crate::replica::seams)
//! to in-memory doubles, and a controller that decides with
//! `strom-metadata`'s pure functions.
//!
//! * [`rng`]: [`SimRng`], the seeded source of every random choice.
//! * [`clock`]: [`SimClock`], wall-clock milliseconds on tokio's (paused)
//!   time.
//! * [`net`]: [`SimNet`], the peer fetch transport: a follower's round
//!   calls the leader's `ReplicaManager::fetch` through the same gRPC
//!   conversion the `Fetch` handler uses (`grpc/fetch.rs`), so the
//!   protobuf ↔ core mapping is exercised too; with seeded loss and
//!   delay, and isolation of brokers.
//! * [`controller`]: [`SimController`]: registration, fencing, unfencing,
//!   elections and `AlterPartition` decided by `strom-metadata`, applied to
//!   its own image (re-validated, as the real state machine does) and
//!   appended to a metadata log that every broker replays with its own
//!   delay.
//! * [`cluster`]: [`Cluster`], which starts, crashes and restarts brokers,
//!   delivers the metadata log, runs the controller's liveness duties and
//!   exposes each replica's state for invariant checks.
//! * [`grpc`]: [`GrpcCluster`], a [`Cluster`] in real time whose brokers
//!   serve the real `MetadataService` and `BrokerService` over gRPC on
//!   127.0.0.1, for client libraries' tests; with a record of the calls
//!   each broker served.
//!
//! Determinism: run it on a current-thread tokio runtime with paused time.
//! Blocking work runs inline ([`Blocking::Inline`](crate::replica::Blocking)),
//! every random choice comes from one [`SimRng`], topic ids are drawn from
//! it, and the replica core's maps and `select!`s that decide an order are
//! deterministic, so a seed replays the same run. ([`GrpcCluster`] is not
//! deterministic: it runs in real time, with real sockets.)
//!
//! Built for this crate's tests, and for other crates with the `testkit`
//! feature.

pub mod clock;
pub mod cluster;
pub mod controller;
pub mod grpc;
pub mod net;
pub mod rng;
#[cfg(test)]
mod simulation_test;

pub use clock::SimClock;
pub use cluster::{Cluster, ClusterConfig, ReplicaView};
pub use controller::SimController;
pub use grpc::GrpcCluster;
pub use net::{Faults, SimNet};
pub use rng::{SharedRng, SimRng};
