//! [`Cluster`]: N real replica managers, the simulated controller and the
//! simulated network, and the controller's liveness duties (fence a broker
//! whose lease expired, unfence one that caught up).
//!
//! Everything here is driven by the caller: [`Cluster::tick`] delivers the
//! metadata log to each running broker (each sees a batch after its own
//! seeded delay, in log order) and runs the duties; between ticks the
//! caller advances tokio's paused time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strom_log::batch::BatchIter;
use strom_metadata::pb::Endpoint;
use strom_metadata::{MetadataError, Uuid};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::clock::SimClock;
use super::controller::SimController;
use super::net::SimNet;
use super::rng::{self, SharedRng, SimRng};
use crate::lifecycle::BrokerStatus;
use crate::metadata::MetadataCache;
use crate::replica::partition::Role;
use crate::replica::{Blocking, LogDirHealth, ReplicaManager, ReplicationConfig, Seams};

/// The shape of a simulated cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Broker ids are `1..=brokers`.
    pub brokers: i32,
    /// Each broker's replication settings.
    pub replication: ReplicationConfig,
    /// `min.insync.replicas` for topics without the config.
    pub min_insync_replicas: usize,
    /// A broker not heard from for this long is fenced.
    pub session_timeout: Duration,
    /// Each broker sees a committed metadata batch after up to this long.
    pub max_metadata_delay: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        let replication = ReplicationConfig {
            replica_lag_time_max: Duration::from_millis(1_000),
            replica_fetch_wait_max: Duration::from_millis(100),
            replica_fetch_backoff: Duration::from_millis(20),
            checkpoint_interval: Duration::from_millis(500),
            min_insync_replicas: 2,
            // No cleaner threads: simulations stay single-threaded and
            // seed-replayable (compaction is tested in strom-log and by the
            // multi-process tests).
            cleaner: crate::replica::cleaner::CleanerConfig {
                threads: 0,
                ..Default::default()
            },
            ..ReplicationConfig::default()
        };
        Self {
            brokers: 3,
            replication,
            min_insync_replicas: 2,
            session_timeout: Duration::from_millis(600),
            max_metadata_delay: Duration::from_millis(50),
        }
    }
}

/// One replica as its broker holds it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaView {
    /// The broker.
    pub broker: i32,
    /// Whether it leads (having taken the leadership).
    pub leader: bool,
    /// The leader epoch it is at.
    pub leader_epoch: i32,
    /// The partition epoch of the state it holds (ISR changes move it).
    pub partition_epoch: i32,
    /// Its high watermark.
    pub high_watermark: i64,
    /// Its log end offset.
    pub log_end_offset: i64,
}

#[derive(Debug)]
struct Running {
    rm: Arc<ReplicaManager>,
    cache: MetadataCache,
    status: watch::Sender<BrokerStatus>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    /// Offset of this incarnation's registration.
    registered_at: i64,
    /// Index of the next metadata batch to deliver.
    next_batch: usize,
    /// When the next batch becomes visible here, once drawn.
    next_visible: Option<Instant>,
    last_visible: Option<Instant>,
}

#[derive(Debug, Default)]
struct Node {
    incarnation: u32,
    /// The client address it registers with, when it serves clients.
    address: Option<SocketAddr>,
    running: Option<Running>,
    /// When the controller last heard from it (crash, isolation).
    silent_since: Option<Instant>,
    isolated: bool,
    /// Its replay of the metadata log stalls.
    held: bool,
}

/// An in-process cluster.
#[derive(Debug)]
pub struct Cluster {
    config: ClusterConfig,
    dir: PathBuf,
    rng: SharedRng,
    clock: SimClock,
    net: SimNet,
    controller: SimController,
    nodes: BTreeMap<i32, Node>,
}

impl Cluster {
    /// A cluster of stopped brokers keeping their logs under `dir`, every
    /// random choice drawn from `seed`.
    pub fn new(config: ClusterConfig, dir: &Path, seed: u64) -> Self {
        let rng = SimRng::shared(seed);
        let net = SimNet::new(rng.clone());
        let controller = SimController::new(rng.clone(), config.min_insync_replicas);
        let nodes = (1..=config.brokers)
            .map(|id| (id, Node::default()))
            .collect();
        Self {
            config,
            dir: dir.to_owned(),
            rng,
            clock: SimClock::new(1_700_000_000_000),
            net,
            controller,
            nodes,
        }
    }

    /// The seeded generator every component draws from.
    pub fn rng(&self) -> &SharedRng {
        &self.rng
    }

    /// The fetch network.
    pub fn net(&self) -> &SimNet {
        &self.net
    }

    /// The controller.
    pub fn controller(&self) -> &SimController {
        &self.controller
    }

    /// Every broker id.
    pub fn ids(&self) -> Vec<i32> {
        self.nodes.keys().copied().collect()
    }

    /// The running brokers.
    pub fn running(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.running.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The running brokers that replay the metadata log: neither isolated
    /// nor [held](Self::hold_metadata).
    pub fn replaying(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.running.is_some() && !n.isolated && !n.held)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Broker `id`'s replica manager, while it runs.
    pub fn broker(&self, id: i32) -> Option<Arc<ReplicaManager>> {
        Some(self.nodes.get(&id)?.running.as_ref()?.rm.clone())
    }

    /// A new topic id drawn from the seed.
    pub fn topic_id(&self) -> Uuid {
        rng::with(&self.rng, |r| {
            Uuid::from_u64_pair(r.next_u64(), r.next_u64())
        })
    }

    /// Sets the client address broker `id` registers with from its next
    /// start on (without one it registers no endpoint: only its peers,
    /// in-process, reach it).
    pub fn advertise(&mut self, id: i32, address: SocketAddr) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.address = Some(address);
        }
    }

    /// Starts (or restarts) broker `id`: registers a new incarnation, then
    /// runs a replica manager on its existing logs. It catches up with the
    /// metadata log through [`tick`](Self::tick), and is unfenced there.
    pub fn start(&mut self, id: i32) -> Result<(), MetadataError> {
        let Some(node) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        if node.running.is_some() {
            return Ok(());
        }
        node.incarnation += 1;
        let endpoints = node
            .address
            .iter()
            .map(|a| Endpoint {
                name: "client".into(),
                host: a.ip().to_string(),
                port: u32::from(a.port()),
            })
            .collect();
        let (epoch, registered_at) = self.controller.register(
            id,
            &format!("broker-{id}-{}", node.incarnation),
            endpoints,
        )?;
        let cache = MetadataCache::new();
        let (status, status_rx) = watch::channel(BrokerStatus {
            epoch,
            fenced: true,
            caught_up: false,
            shutting_down: false,
        });
        let data_dir = self.dir.join(format!("broker-{id}"));
        let seams = Seams {
            controller: Arc::new(self.controller.clone()),
            peers: self.net.peers(id),
            clock: Arc::new(self.clock),
            blocking: Blocking::Inline,
        };
        let rm = ReplicaManager::with_seams(
            id,
            self.config.replication.clone(),
            &data_dir,
            cache.clone(),
            seams,
            status_rx.clone(),
            LogDirHealth::new(&data_dir.join("logs")),
        );
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(rm.clone().run(status_rx, shutdown.clone()));
        self.net.attach(id, rm.clone());
        node.silent_since = None;
        node.running = Some(Running {
            rm,
            cache,
            status,
            shutdown,
            task,
            registered_at,
            next_batch: 0,
            next_visible: None,
            last_visible: None,
        });
        Ok(())
    }

    /// Stops broker `id` at once: its manager stops (closing its logs) and
    /// it is unreachable; the controller fences it once its session times
    /// out.
    pub async fn crash(&mut self, id: i32) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(running) = node.running.take() else {
            return;
        };
        self.net.detach(id);
        node.silent_since.get_or_insert_with(Instant::now);
        running.shutdown.cancel();
        if let Err(e) = running.task.await {
            tracing::warn!(broker = id, error = %e, "replica manager task failed");
        }
    }

    /// Cuts broker `id` off from the other brokers and the controller (it
    /// keeps running, a zombie once fenced), or reconnects it.
    pub fn isolate(&mut self, id: i32, isolated: bool) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        node.isolated = isolated;
        self.net.isolate(id, isolated);
        self.controller.isolate(id, isolated);
        if isolated {
            node.silent_since.get_or_insert_with(Instant::now);
        } else if node.running.is_some() {
            node.silent_since = None;
        }
    }

    /// Stalls broker `id`'s replay of the metadata log (`held`), or lets it
    /// go on: it keeps running, heartbeating and serving from the image it
    /// has, as a broker whose metadata follower fell behind.
    pub fn hold_metadata(&mut self, id: i32, held: bool) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.held = held;
        }
    }

    /// Delivers due metadata batches to every running, connected broker and
    /// runs the controller's duties. Call it between small time steps.
    pub fn tick(&mut self) -> Result<(), MetadataError> {
        let now = Instant::now();
        let max_delay = self.config.max_metadata_delay;
        let mut unfence = Vec::new();
        let mut fence = Vec::new();
        for (id, node) in &mut self.nodes {
            if let Some(since) = node.silent_since
                && now >= since + self.config.session_timeout
            {
                fence.push(*id);
            }
            let Some(r) = node.running.as_mut() else {
                continue;
            };
            if node.isolated || node.held {
                continue;
            }
            while let Some(batch) = self.controller.batch(r.next_batch) {
                let visible = *r.next_visible.get_or_insert_with(|| {
                    let after = r.last_visible.map_or(batch.at, |l| l.max(batch.at));
                    after + rng::with(&self.rng, |g| g.delay(max_delay))
                });
                if visible > now {
                    break;
                }
                r.cache.apply(batch.offset, &batch.records)?;
                r.next_batch += 1;
                r.last_visible = Some(visible);
                r.next_visible = None;
            }
            if !r.status.borrow().caught_up && r.cache.offset() >= r.registered_at {
                r.status.send_modify(|s| s.caught_up = true);
            }
            if r.status.borrow().caught_up && node.silent_since.is_none() {
                unfence.push(*id);
            }
        }
        for id in fence {
            let fenced = self
                .controller
                .with_image(|i| i.broker(id).is_none_or(|b| b.fenced));
            if !fenced {
                self.controller.fence(id)?;
            }
        }
        for id in unfence {
            let fenced = self
                .controller
                .with_image(|i| i.broker(id).is_some_and(|b| b.fenced));
            if fenced {
                self.controller.unfence(id)?;
            }
            let fenced_now = self
                .controller
                .with_image(|i| i.broker(id).is_some_and(|b| b.fenced));
            if let Some(r) = self.nodes.get(&id).and_then(|n| n.running.as_ref()) {
                r.status.send_if_modified(|s| {
                    let changed = s.fenced != fenced_now;
                    s.fenced = fenced_now;
                    changed
                });
            }
        }
        Ok(())
    }

    /// Every running broker's replica of `topic`-`partition`.
    pub fn replicas(&self, topic: &str, partition: i32) -> Vec<ReplicaView> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| {
                let part = n.running.as_ref()?.rm.partition(topic, partition).ok()?;
                let (role, leader_epoch) = part.role();
                Some(ReplicaView {
                    broker: *id,
                    leader: role == Role::Leader,
                    leader_epoch,
                    partition_epoch: part.partition_epoch(),
                    high_watermark: part.reader().high_watermark(),
                    log_end_offset: part.reader().log_end_offset(),
                })
            })
            .collect()
    }

    /// The stored batch starting at `offset` in broker `id`'s replica of
    /// `topic`-`partition`, if it has one there.
    pub fn batch_at(&self, id: i32, topic: &str, partition: i32, offset: i64) -> Option<Bytes> {
        let part = self.broker(id)?.partition(topic, partition).ok()?;
        let data = part.read_all(offset, 1).ok()?;
        let batch = BatchIter::new(data.records).next()?.ok()?;
        (batch.base_offset() == offset).then(|| batch.into_bytes())
    }

    /// Every batch stored in broker `id`'s replica of `topic`-`partition`,
    /// from its log start to its log end (empty while it does not run or
    /// host the replica).
    pub fn batches(&self, id: i32, topic: &str, partition: i32) -> Vec<Bytes> {
        let Some(part) = self
            .broker(id)
            .and_then(|rm| rm.partition(topic, partition).ok())
        else {
            return Vec::new();
        };
        let reader = part.reader();
        let (mut offset, end) = (reader.log_start_offset(), reader.log_end_offset());
        let mut batches = Vec::new();
        while offset < end {
            let Ok(data) = part.read_all(offset, 1 << 20) else {
                break;
            };
            let before = offset;
            for batch in BatchIter::new(data.records).map_while(Result::ok) {
                offset = batch.next_offset();
                batches.push(batch.into_bytes());
            }
            if offset == before {
                break;
            }
        }
        batches
    }

    /// Stops every broker.
    pub async fn shutdown(mut self) {
        for id in self.ids() {
            self.crash(id).await;
        }
    }
}
