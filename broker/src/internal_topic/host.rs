//! [`ShardHost`]: the shards of an internal topic's partitions this broker
//! leads.
//!
//! * Leadership of a partition (heard through the replica manager's
//!   `LeadershipListener`) marks it loading and starts a load at that
//!   leader epoch on a blocking thread, retried with backoff; requests
//!   meanwhile get COORDINATOR_LOAD_IN_PROGRESS. Losing it drops the shard:
//!   requests get NOT_COORDINATOR.
//! * A shard is behind an async mutex: its coordinator takes one decision
//!   at a time, appends the records with acks=all at the loaded epoch and
//!   replays them. After a failed append it calls [`ShardHost::reload`],
//!   so memory never runs ahead of the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use strom_proto::StromError;
use strom_proto::v1::ErrorCode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::replica::{
    LeadershipChange, LeadershipListener, LeadershipRole, PartError, ReplicaManager,
};

/// A loaded shard, one decision at a time.
pub type ShardRef<S> = Arc<tokio::sync::Mutex<S>>;

/// How a coordinator builds a partition's shard from its log.
pub trait ShardLoader<S>: Send + Sync + std::fmt::Debug + 'static {
    /// Replays `partition`'s local log into a fresh shard led at
    /// `leader_epoch`. Runs on a blocking thread (file reads).
    fn load(&self, rm: &ReplicaManager, partition: i32, leader_epoch: i32) -> Result<S, PartError>;

    /// The shard of `partition` is active at `leader_epoch` (a transaction
    /// coordinator starts the markers the log says are pending). Keep it
    /// short: spawn longer work.
    fn loaded(&self, _partition: i32, _leader_epoch: i32, _shard: &ShardRef<S>) {}

    /// This broker no longer hosts `partition` (it lost its leadership):
    /// end what was tied to the shard (a group member's pushed assignment
    /// stream). Keep it short.
    fn unloaded(&self, _partition: i32) {}
}

enum Slot<S> {
    Loading { epoch: i32 },
    Active { epoch: i32, shard: ShardRef<S> },
}

impl<S> std::fmt::Debug for Slot<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slot::Loading { epoch } => write!(f, "Loading({epoch})"),
            Slot::Active { epoch, .. } => write!(f, "Active({epoch})"),
        }
    }
}

/// The shards of `topic`'s partitions this broker leads.
pub struct ShardHost<S> {
    topic: &'static str,
    rm: Arc<ReplicaManager>,
    loader: Arc<dyn ShardLoader<S>>,
    slots: Mutex<HashMap<i32, Slot<S>>>,
    tasks: TaskTracker,
    stop: CancellationToken,
    runtime: tokio::runtime::Handle,
}

impl<S> std::fmt::Debug for ShardHost<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardHost")
            .field("topic", &self.topic)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

struct Listener<S>(Weak<ShardHost<S>>);

impl<S> std::fmt::Debug for Listener<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardHostListener")
    }
}

impl<S: Send + 'static> LeadershipListener for Listener<S> {
    fn on_change(&self, change: &LeadershipChange) {
        if let Some(host) = self.0.upgrade()
            && change.topic == host.topic
        {
            host.on_change(change);
        }
    }
}

impl<S: Send + 'static> ShardHost<S> {
    /// Hosts `topic`'s led partitions with `loader`; listens to `rm`'s
    /// leadership changes from now on, so create it before `rm` runs.
    pub fn new(
        topic: &'static str,
        rm: Arc<ReplicaManager>,
        loader: Arc<dyn ShardLoader<S>>,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let host = Arc::new(ShardHost {
            topic,
            rm: rm.clone(),
            loader,
            slots: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            stop,
            runtime: tokio::runtime::Handle::current(),
        });
        rm.add_listener(Arc::new(Listener(Arc::downgrade(&host))));
        host
    }

    /// The topic.
    pub fn topic(&self) -> &'static str {
        self.topic
    }

    /// The replica manager.
    pub fn rm(&self) -> &Arc<ReplicaManager> {
        &self.rm
    }

    /// The tasks of this host and its coordinator (loads, topic creation,
    /// marker senders): awaited by [`close`](Self::close).
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// The runtime tasks run on (leadership changes arrive on other
    /// threads).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Cancelled on shutdown.
    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Slot<S>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn on_change(self: &Arc<Self>, change: &LeadershipChange) {
        let p = change.partition;
        match change.role {
            LeadershipRole::Leader => self.start_load(p, change.leader_epoch),
            LeadershipRole::Follower { .. } | LeadershipRole::Removed => {
                let removed = self.slots().remove(&p).is_some();
                if removed {
                    self.loader.unloaded(p);
                    tracing::info!(
                        topic = self.topic,
                        partition = p,
                        "unloaded coordinator partition"
                    );
                }
            }
        }
    }

    fn start_load(self: &Arc<Self>, p: i32, epoch: i32) {
        self.slots().insert(p, Slot::Loading { epoch });
        let this = self.clone();
        self.tasks
            .spawn_on(this.load_until_done(p, epoch), &self.runtime);
    }

    fn still_loading(&self, p: i32, epoch: i32) -> bool {
        matches!(self.slots().get(&p), Some(Slot::Loading { epoch: e }) if *e == epoch)
    }

    async fn load_until_done(self: Arc<Self>, p: i32, epoch: i32) {
        let mut backoff = Duration::from_millis(50);
        while self.still_loading(p, epoch) && !self.stop.is_cancelled() {
            let rm = self.rm.clone();
            let loader = self.loader.clone();
            let started = std::time::Instant::now();
            let loaded = tokio::task::spawn_blocking(move || loader.load(&rm, p, epoch)).await;
            match loaded {
                Ok(Ok(shard)) => {
                    let shard = Arc::new(tokio::sync::Mutex::new(shard));
                    let activated = {
                        let mut slots = self.slots();
                        let current = matches!(
                            slots.get(&p),
                            Some(Slot::Loading { epoch: e }) if *e == epoch
                        );
                        if current {
                            slots.insert(
                                p,
                                Slot::Active {
                                    epoch,
                                    shard: shard.clone(),
                                },
                            );
                        }
                        current
                    };
                    if activated {
                        tracing::info!(
                            topic = self.topic,
                            partition = p,
                            leader_epoch = epoch,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "loaded coordinator partition"
                        );
                        self.loader.loaded(p, epoch, &shard);
                    }
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(topic = self.topic, partition = p, error = %e, "loading coordinator partition failed; retrying");
                }
                Err(e) => {
                    tracing::warn!(topic = self.topic, partition = p, error = %e, "loading coordinator partition panicked; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Reloads partition `p` from its log if this broker still leads it at
    /// `epoch` (after a failed write: the records may be in the log,
    /// unacknowledged).
    pub fn reload(self: &Arc<Self>, p: i32, epoch: i32) {
        let leads =
            matches!(self.slots().get(&p), Some(Slot::Active { epoch: e, .. }) if *e == epoch);
        if leads {
            tracing::warn!(
                topic = self.topic,
                partition = p,
                "reloading coordinator partition after a failed write"
            );
            self.start_load(p, epoch);
        }
    }

    /// The shard of partition `p` and the epoch it was loaded at.
    /// `what` names the key for the NOT_COORDINATOR message (`group "g"`).
    pub fn shard(&self, p: i32, what: &str) -> Result<(i32, ShardRef<S>), StromError> {
        match self.slots().get(&p) {
            Some(Slot::Active { epoch, shard }) => Ok((*epoch, shard.clone())),
            Some(Slot::Loading { .. }) => Err(StromError::new(
                ErrorCode::CoordinatorLoadInProgress,
                format!("broker {} is loading {}-{p}", self.rm.node_id(), self.topic),
            )),
            None => Err(StromError::new(
                ErrorCode::NotCoordinator,
                format!(
                    "broker {} is not the coordinator of {what} ({}-{p})",
                    self.rm.node_id(),
                    self.topic
                ),
            )),
        }
    }

    /// Whether `p` is active here at `epoch`.
    pub fn is_active_at(&self, p: i32, epoch: i32) -> bool {
        matches!(self.slots().get(&p), Some(Slot::Active { epoch: e, .. }) if *e == epoch)
    }

    /// The active shards: (partition, epoch, shard).
    pub fn active(&self) -> Vec<(i32, i32, ShardRef<S>)> {
        self.slots()
            .iter()
            .filter_map(|(p, s)| match s {
                Slot::Active { epoch, shard } => Some((*p, *epoch, shard.clone())),
                Slot::Loading { .. } => None,
            })
            .collect()
    }

    /// How many partitions are (loaded, loading).
    pub fn counts(&self) -> (i64, i64) {
        let slots = self.slots();
        let loading = slots
            .values()
            .filter(|s| matches!(s, Slot::Loading { .. }))
            .count();
        let loading = i64::try_from(loading).unwrap_or(i64::MAX);
        let total = i64::try_from(slots.len()).unwrap_or(i64::MAX);
        (total - loading, loading)
    }

    /// Waits for every task of the host once `stop` was cancelled.
    pub async fn close(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}
