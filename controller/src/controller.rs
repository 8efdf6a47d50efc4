//! The controller: one Raft voter, and — while it leads — the active
//! controller that decides every metadata change.
//!
//! Every write follows the same path ([`Controller::decide`]): take the write
//! lock, let a pure function of `strom-metadata` compute the records from the
//! committed image, propose them as one Raft entry, wait until it is applied.
//! The state machine re-checks each batch at apply time, so a decision made
//! on a stale image can never corrupt the metadata.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ServerState, SnapshotPolicy};
use strom_metadata::pb::MetadataRecord;
use strom_metadata::{ClusterImage, MetadataError};
use tokio_util::sync::CancellationToken;

use crate::config::ControllerConfig;
use crate::error::{ControllerError, Result};
use crate::lease::Leases;
use crate::raft::feed::MetadataFeed;
use crate::raft::log_store::LogStore;
use crate::raft::network::NetworkFactory;
use crate::raft::state_machine::StateMachine;
use crate::raft::store::RaftDb;
use crate::raft::{NodeId, Proposal, Raft};

/// What [`Controller::reassignment_progress`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassignmentProgress {
    /// Partitions being reassigned.
    pub partitions: usize,
    /// Brokers being decommissioned.
    pub decommissioning: usize,
    /// Bytes the adding replicas hold so far.
    pub bytes_copied: i64,
    /// Bytes the adding replicas still lack.
    pub bytes_remaining: i64,
}

/// A running controller. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Controller {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) id: NodeId,
    pub(crate) raft: Raft,
    pub(crate) feed: Arc<MetadataFeed>,
    pub(crate) config: ControllerConfig,
    write_lock: tokio::sync::Mutex<()>,
    pub(crate) leases: Leases,
    /// Replica sizes reported with heartbeats (reassignment progress).
    pub(crate) sizes: crate::sizes::ReplicaSizes,
    /// What the balancer started, per goal (metrics).
    pub(crate) balancer_stats: crate::sizes::BalancerStats,
    pub(crate) shutdown: CancellationToken,
    /// Every task the controller spawns (duties, metadata watches): cancelled
    /// through `shutdown` and awaited by [`Controller::shutdown`].
    pub(crate) tasks: tokio_util::task::TaskTracker,
    db: RaftDb,
    commit_index: Arc<AtomicI64>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("id", &self.id)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The data directory cannot be used.
    #[error("controller data dir {path}: {reason}")]
    DataDir {
        /// The directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Raft could not start.
    #[error("raft: {0}")]
    Raft(String),
}

impl Controller {
    /// Opens the controller's storage, starts its Raft voter and, when the
    /// quorum has never been initialised, initialises it.
    ///
    /// Initialisation is safe whichever voter starts first: every voter
    /// proposes the same membership (the static voter set) as log entry 0, so
    /// all candidates agree on it; a voter that already received entries
    /// from a leader is refused by openraft and simply follows.
    pub async fn start(
        config: ControllerConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        config.validate()?;
        let dir = config.data_dir.join("controller");
        let data_dir_err = |reason: String| StartError::DataDir {
            path: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(&dir).map_err(|e| data_dir_err(e.to_string()))?;
        let db = RaftDb::open(&dir).map_err(|e| data_dir_err(e.to_string()))?;

        let feed = Arc::new(MetadataFeed::new(config.feed_batches));
        let sm = StateMachine::open(db.clone(), feed.clone())
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let log = LogStore::new(db.clone());
        let commit_index = log.commit_index();

        let election_ms = u64::try_from(config.election_timeout.as_millis()).unwrap_or(u64::MAX);
        let raft_config = openraft::Config {
            cluster_name: "strom-controller".into(),
            heartbeat_interval: u64::try_from(config.raft_heartbeat_interval.as_millis())
                .unwrap_or(100),
            election_timeout_min: election_ms,
            election_timeout_max: election_ms.saturating_mul(2),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_interval_entries),
            max_in_snapshot_log_to_keep: config.log_retained_entries,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Raft(e.to_string()))?;

        let network = NetworkFactory::new(Duration::from_millis(500), config.quorum_fingerprint());
        let raft = Raft::new(config.node_id, Arc::new(raft_config), network, log, sm)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;

        let is_initialized = raft
            .is_initialized()
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        if !is_initialized {
            let members: BTreeMap<NodeId, BasicNode> = config
                .voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(voters = ?config.voters, "initialised controller quorum"),
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                    tracing::info!("controller quorum already initialised by a peer")
                }
                Err(e) => return Err(StartError::Raft(e.to_string())),
            }
        }

        let leases = Leases::new(config.broker_session_timeout);
        let controller = Controller {
            inner: Arc::new(Inner {
                id: config.node_id,
                raft,
                feed,
                config,
                write_lock: tokio::sync::Mutex::new(()),
                leases,
                sizes: Default::default(),
                balancer_stats: Default::default(),
                shutdown,
                tasks: tokio_util::task::TaskTracker::new(),
                db,
                commit_index,
            }),
        };
        controller
            .inner
            .tasks
            .spawn(crate::duties::run(controller.clone()));
        Ok(controller)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// `min.insync.replicas` for topics without the config, as every
    /// partition decision needs it: the cluster-wide dynamic value in
    /// `image`, else this node's setting. Call it on the image the decision
    /// reads, so the two agree.
    pub(crate) fn default_min_isr(&self, image: &ClusterImage) -> usize {
        strom_metadata::configs::default_min_isr(image, self.inner.config.min_insync_replicas)
    }

    /// This controller's node id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// Serves this controller's Raft RPCs, refusing requests from other
    /// quorums or meant for other nodes.
    pub fn raft_service(&self) -> crate::raft::service::RaftServiceImpl {
        crate::raft::service::RaftServiceImpl::new(
            self.inner.raft.clone(),
            self.inner.id,
            self.inner.config.quorum_fingerprint(),
        )
    }

    /// The Raft handle (metrics, triggers).
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The committed image and its feed.
    pub fn feed(&self) -> &Arc<MetadataFeed> {
        &self.inner.feed
    }

    /// The configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.inner.config
    }

    /// Whether this node is the Raft leader right now.
    pub fn is_leader(&self) -> bool {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.inner.id)
    }

    /// The current leader's id and controller address, when known.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .or_else(|| self.inner.config.voters.get(&id).cloned())?;
        Some((id, addr))
    }

    /// Fails with NOT_CONTROLLER unless this node leads.
    pub fn ensure_leader(&self) -> Result<()> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(ControllerError::NotController {
                leader: self.leader(),
            })
        }
    }

    /// The Raft commit index this voter knows (-1 before any commit).
    pub fn commit_index(&self) -> i64 {
        self.inner.commit_index.load(Ordering::Relaxed)
    }

    /// Metadata offset each broker reported in its last heartbeat to this
    /// controller while it led (empty on a follower), sorted by broker id.
    pub fn broker_metadata_offsets(&self) -> Vec<(i32, i64)> {
        self.inner.leases.reported_offsets()
    }

    /// Reassignment progress for metrics: partitions being reassigned,
    /// brokers being decommissioned, and the bytes the adding replicas hold
    /// and still lack (summed over partitions whose sizes were reported
    /// with heartbeats to this controller).
    pub fn reassignment_progress(&self) -> ReassignmentProgress {
        let sizes = &self.inner.sizes;
        self.with_image(|image| {
            let mut p = ReassignmentProgress {
                decommissioning: image.decommissioning().count(),
                ..Default::default()
            };
            for (topic, partition, s) in strom_metadata::reassignments(image, None) {
                p.partitions += 1;
                let Some(leader) = sizes.get(s.leader, topic.id, partition) else {
                    continue;
                };
                for b in &s.adding {
                    if let Some(have) = sizes.get(*b, topic.id, partition) {
                        let have = have.min(leader);
                        p.bytes_copied += have;
                        p.bytes_remaining += leader - have;
                    }
                }
            }
            p
        })
    }

    /// Partitions the balancer started moving (for the leader goal: gave a
    /// new leader), per goal, since this controller started.
    pub fn balancer_started(&self) -> Vec<(strom_metadata::balancer::BalancerGoal, u64)> {
        self.inner.balancer_stats.counts()
    }

    /// The data directory file system of each broker, as its last heartbeat
    /// to this controller reported it.
    pub fn broker_disks(
        &self,
    ) -> std::collections::BTreeMap<i32, strom_metadata::balancer::DiskUsage> {
        self.inner.sizes.usage_report().disks
    }

    /// Runs `f` on the committed image.
    pub fn with_image<T>(&self, f: impl FnOnce(&ClusterImage) -> T) -> T {
        self.inner.feed.with_image(f)
    }

    /// Decides and commits one metadata change: `f` computes the records
    /// from the committed image (or refuses), they are committed as one
    /// atomic batch, and the function's value is returned with the batch
    /// offset (`None` when `f` produced no record).
    pub async fn decide<T>(
        &self,
        f: impl FnOnce(&ClusterImage) -> std::result::Result<(Vec<MetadataRecord>, T), MetadataError>,
    ) -> Result<(T, Option<i64>)> {
        self.ensure_leader()?;
        let _guard = self.inner.write_lock.lock().await;
        let (records, value) = self.with_image(f)?;
        if records.is_empty() {
            return Ok((value, None));
        }
        let offset = self.propose(records).await?;
        Ok((value, Some(offset)))
    }

    /// Commits records as one batch (callers hold the write lock).
    async fn propose(&self, records: Vec<MetadataRecord>) -> Result<i64> {
        let timeout = self.inner.config.request_timeout;
        let write = self.inner.raft.client_write(Proposal { records });
        let response = match tokio::time::timeout(timeout, write).await {
            Err(_) => return Err(ControllerError::Timeout(timeout)),
            Ok(Ok(r)) => r,
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                let leader = f.leader_id.zip(f.leader_node.map(|n| n.addr));
                return Err(ControllerError::NotController { leader });
            }
            Ok(Err(e)) => return Err(ControllerError::Fatal(e.to_string())),
        };
        if let Some((code, message)) = response.data.rejected {
            let code = strom_proto::v1::ErrorCode::try_from(code)
                .unwrap_or(strom_proto::v1::ErrorCode::UnknownServerError);
            return Err(ControllerError::Rejected { code, message });
        }
        Ok(i64::try_from(response.log_id.index).unwrap_or(i64::MAX))
    }

    /// Index the next log entry will get (used for broker epochs: strictly
    /// greater than any index already in the log).
    pub(crate) fn next_log_index(&self) -> i64 {
        let m = self.inner.raft.metrics();
        let last = m.borrow().last_log_index.unwrap_or(0);
        i64::try_from(last)
            .unwrap_or(i64::MAX - 1)
            .saturating_add(1)
    }

    /// Stops the controller's tasks (duties, metadata watches) and awaits
    /// them, then stops Raft and flushes storage.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        if let Err(e) = self.inner.db.flush() {
            tracing::warn!(error = %e, "flush controller database");
        }
    }
}
