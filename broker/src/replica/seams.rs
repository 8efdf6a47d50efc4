//! Where the replica core meets the outside world, so the real
//! [`ReplicaManager`](super::ReplicaManager), its fetchers and its ISR logic
//! can run in one process over in-memory transports (`testkit`).
//!
//! | seam | production | simulation |
//! |---|---|---|
//! | [`ControllerClient`]: `AlterPartition`, `AllocateProducerIds` | the controller quorum (`QuorumClient`) | a controller over `strom-metadata`'s pure functions |
//! | [`PeerTransport`] / [`PeerSession`]: a follower's fetch rounds to one leader | `FetchStream` over tonic ([`GrpcPeers`](super::peer_grpc::GrpcPeers)) | the leader's `ReplicaManager::fetch`, called in-process |
//! | [`Clock`]: wall-clock milliseconds for the ISR lag rules and the log's `segment.ms` / `flush.ms` | [`SystemClock`] | a clock reading tokio's (paused) time |
//! | [`Blocking`]: fsyncs, truncations, log opens | `spawn_blocking` | inline, on the calling task |
//!
//! Each is held once per manager (and handed to each partition or fetch
//! session when it starts), never looked up per record: an append costs
//! nothing more, a fetch round one boxed future, the ISR rules one
//! virtual call for the time. tokio's timers are not behind a seam: a
//! simulation pauses tokio's clock instead.
//!
//! The partition log itself is not behind a trait: `strom_log::PartitionLog`
//! on a temporary directory is deterministic and fast enough for a
//! simulation, and a second, simplified log kept for tests would drift from
//! the real one (docs/replication.md, "Seams and simulation").

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
pub use strom_log::{Clock, SystemClock};
use strom_proto::StromError;
use strom_proto::v1::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, AlterPartitionRequest,
    AlterPartitionResponse, FetchRequest, FetchResponse,
};

use super::log_dir::LogDirHealth;

/// How long an `AlterPartition` may take, retries included.
const ALTER_PARTITION_TIMEOUT: Duration = Duration::from_secs(5);

/// What the replica core asks of the active controller.
pub trait ControllerClient: Send + Sync + Debug {
    /// Sends an ISR change (`AlterPartition`); the response carries the
    /// partition's committed state, current even when the change was
    /// refused.
    fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> BoxFuture<'_, Result<AlterPartitionResponse, StromError>>;

    /// Takes the next block of producer ids for this broker
    /// (`AllocateProducerIds`).
    fn allocate_producer_ids(
        &self,
        request: AllocateProducerIdsRequest,
    ) -> BoxFuture<'_, Result<AllocateProducerIdsResponse, StromError>>;
}

/// The controller quorum, with retries across voters for up to five
/// seconds. The one place the replica core names the quorum client.
impl ControllerClient for strom_controller_client::QuorumClient {
    fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> BoxFuture<'_, Result<AlterPartitionResponse, StromError>> {
        Box::pin(self.call(ALTER_PARTITION_TIMEOUT, move |mut c| {
            let r = request.clone();
            async move { c.alter_partition(r).await }
        }))
    }

    fn allocate_producer_ids(
        &self,
        request: AllocateProducerIdsRequest,
    ) -> BoxFuture<'_, Result<AllocateProducerIdsResponse, StromError>> {
        Box::pin(self.call(ALTER_PARTITION_TIMEOUT, move |mut c| {
            let r = request;
            async move { c.allocate_producer_ids(r).await }
        }))
    }
}

/// Opens fetch sessions to leaders: one per source broker, for as long as
/// this broker follows partitions of that leader.
pub trait PeerTransport: Send + Sync + Debug {
    /// A session to broker `leader`; nothing is sent before its first
    /// [`PeerSession::fetch`].
    fn connect(&self, leader: i32) -> Box<dyn PeerSession>;
}

/// A follower's fetch rounds to one leader, one at a time.
pub trait PeerSession: Send + Sync + Debug {
    /// One round: sends `request` and waits up to `timeout` for its answer
    /// (`DEADLINE_EXCEEDED` after that). Cancel-safe: dropping the future
    /// abandons the round, never a later round's answer.
    fn fetch(
        &mut self,
        request: FetchRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<FetchResponse, tonic::Status>>;

    /// The last round failed: drop connection state, so the next round
    /// starts afresh (redials, re-resolves the leader's address).
    fn reset(&mut self);
}

/// KIP-890 partition verification: before a leader writes a producer's
/// transactional batch that would start a transaction in a partition, the
/// transaction coordinator adds the partition to the producer's ongoing
/// transaction (transaction version 2) and the leader writes the batch only
/// if that succeeds. Served by the broker's transaction coordinator
/// (`crate::txn`), locally or at the coordinator's broker.
pub trait TxnVerifier: Send + Sync + Debug {
    /// Adds `topic`-`partition` to the transaction of `transactional_id`
    /// held by `producer_id` at `producer_epoch`.
    fn verify<'a>(
        &'a self,
        transactional_id: &'a str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &'a str,
        partition: i32,
    ) -> BoxFuture<'a, Result<(), StromError>>;
}

/// Where blocking work (fsync, truncation, opening and deleting logs)
/// runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Blocking {
    /// tokio's blocking pool (`spawn_blocking`), so the async workers never
    /// wait on a disk.
    #[default]
    Pool,
    /// On the calling task. Real threads would make a simulation's
    /// interleavings depend on the OS scheduler; inline, a seeded run
    /// replays exactly.
    Inline,
}

impl Blocking {
    /// Runs `work` and returns its result; an error only when the blocking
    /// pool's task panicked or was cancelled.
    pub async fn run<T, F>(self, work: F) -> Result<T, tokio::task::JoinError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self {
            Blocking::Pool => tokio::task::spawn_blocking(work).await,
            Blocking::Inline => Ok(work()),
        }
    }
}

/// Every seam of one [`ReplicaManager`](super::ReplicaManager)
/// ([`ReplicaManager::with_seams`](super::ReplicaManager::with_seams)).
#[derive(Debug, Clone)]
pub struct Seams {
    /// The active controller.
    pub controller: Arc<dyn ControllerClient>,
    /// Fetch sessions to leaders.
    pub peers: Arc<dyn PeerTransport>,
    /// Wall-clock time for the replication rules and the logs.
    pub clock: Arc<dyn Clock>,
    /// Where blocking work runs.
    pub blocking: Blocking,
}

/// What every hosted partition takes from its manager: who it is, the
/// log directory's health, and the local seams.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub(crate) node_id: i32,
    /// Told of every storage failure: it takes the log directory offline.
    pub(crate) health: LogDirHealth,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) blocking: Blocking,
    /// The partitions' flush jobs (on the blocking pool), awaited before
    /// the logs close.
    pub(crate) flushes: tokio_util::task::TaskTracker,
}

impl Host {
    /// The system clock and the blocking pool, as in production.
    #[cfg(test)]
    pub(crate) fn system(node_id: i32, health: LogDirHealth) -> Self {
        Self {
            node_id,
            health,
            clock: Arc::new(SystemClock),
            blocking: Blocking::Pool,
            flushes: tokio_util::task::TaskTracker::new(),
        }
    }
}
