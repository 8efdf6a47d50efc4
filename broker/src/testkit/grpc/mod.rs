//! [`GrpcCluster`]: a [`Cluster`] whose brokers serve clients over gRPC,
//! for the tests of client libraries. Each broker serves the real
//! `MetadataService` (from its replayed image) and `BrokerService` (over
//! its real [`crate::ReplicaManager`]) on
//! `127.0.0.1:<port>`, as `stromd` wires them, and registers that address
//! with the simulated controller, so metadata answers and leader hints
//! name it. Brokers replicate over the in-memory [`SimNet`](super::SimNet).
//!
//! The cluster moves on its own in real time: a background task
//! [`tick`](Cluster::tick)s it every few milliseconds (metadata delivery,
//! fencing of silent brokers, unfencing of caught-up ones). Tests reach the
//! cluster itself through [`GrpcCluster::lock`] (the controller's
//! decisions, replica states, stored batches) and wait for a state with
//! [`GrpcCluster::wait_until`].
//!
//! * [`recording`]: the thin layer around each broker's `BrokerService`
//!   that records calls and answers ([`CallLog`]) and can refuse
//!   `ProduceStream` as an older broker would.
//! * `conn`: accepted connections that a crash cuts at once.

mod conn;
pub mod recording;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use strom_metadata::MetadataError;
use strom_metadata::image::PartitionState;
use strom_proto::v1::broker_service_server::BrokerServiceServer;
use strom_proto::v1::metadata_service_server::MetadataServiceServer;
use tokio::net::TcpListener;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::recording::{Answered, Call, CallLog, Recorded, Rpc};
use super::{Cluster, ClusterConfig};
use crate::grpc::{BrokerServiceImpl, MetadataServiceImpl};
use crate::{Error, ReplicaManager, Result};

/// How often the background task ticks the cluster.
const TICK: Duration = Duration::from_millis(5);

/// How long [`GrpcCluster::wait_until`] waits for a state.
pub const WAIT: Duration = Duration::from_secs(20);

/// One broker's gRPC server.
#[derive(Debug)]
struct Server {
    /// Stops the server and cuts its connections.
    stop: CancellationToken,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Server {
    /// Serves broker `id`'s replica manager on `listener`.
    fn start(
        id: i32,
        rm: Arc<ReplicaManager>,
        listener: TcpListener,
        calls: CallLog,
        produce_stream: Arc<AtomicBool>,
        stop: CancellationToken,
    ) -> Self {
        let broker = Recorded::new(
            id,
            BrokerServiceImpl::new(rm.clone(), stop.clone()),
            calls,
            produce_stream,
        );
        // The simulated controller is no node: no controller id to report.
        let metadata = MetadataServiceImpl::new(rm.cache().clone(), Arc::new(|| -1));
        let router = tonic::transport::Server::builder()
            .add_service(MetadataServiceServer::new(metadata))
            .add_service(BrokerServiceServer::new(broker));
        let task = tokio::spawn(router.serve_with_incoming_shutdown(
            conn::incoming(listener, stop.clone()),
            stop.clone().cancelled_owned(),
        ));
        Self { stop, task }
    }

    /// Stops serving: the listener closes and every connection is cut.
    async fn crash(self, id: i32) {
        self.stop.cancel();
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(broker = id, error = %e, "grpc server failed"),
            Err(e) => tracing::warn!(broker = id, error = %e, "grpc server task failed"),
        }
    }
}

#[derive(Debug)]
struct Inner {
    cluster: Cluster,
    servers: BTreeMap<i32, Server>,
}

/// A [`Cluster`] whose brokers serve gRPC clients; see the module doc.
/// Dropping it stops the servers and the ticking; [`shutdown`](Self::shutdown)
/// also stops the brokers and waits for every task.
#[derive(Debug)]
pub struct GrpcCluster {
    inner: Arc<Mutex<Inner>>,
    addresses: BTreeMap<i32, SocketAddr>,
    calls: CallLog,
    produce_stream: Arc<AtomicBool>,
    /// Parent of the ticker's and every server's token.
    root: CancellationToken,
    ticker: Option<JoinHandle<()>>,
    /// Counts ticks, for waiters.
    ticks: watch::Receiver<u64>,
    /// The first error of a tick, if any.
    tick_error: Arc<StdMutex<Option<MetadataError>>>,
}

impl GrpcCluster {
    /// Starts every broker of a [`Cluster`] (as [`Cluster::new`] makes it)
    /// with a gRPC server on a free port of 127.0.0.1, starts ticking it,
    /// and waits until every broker is unfenced.
    pub async fn start(config: ClusterConfig, dir: &Path, seed: u64) -> Result<Self> {
        let mut cluster = Cluster::new(config, dir, seed);
        let mut listeners = BTreeMap::new();
        for id in cluster.ids() {
            let listener = bind("127.0.0.1:0".parse().expect("a socket address")).await?;
            let address = listener.local_addr().map_err(|source| Error::Io {
                context: format!("local address of broker {id}'s listener"),
                source,
            })?;
            cluster.advertise(id, address);
            listeners.insert(id, (listener, address));
        }
        let root = CancellationToken::new();
        let calls = CallLog::default();
        let produce_stream = Arc::new(AtomicBool::new(true));
        let mut servers = BTreeMap::new();
        let mut addresses = BTreeMap::new();
        for (id, (listener, address)) in listeners {
            cluster.start(id)?;
            let rm = cluster.broker(id).expect("a broker just started runs");
            let server = Server::start(
                id,
                rm,
                listener,
                calls.clone(),
                produce_stream.clone(),
                root.child_token(),
            );
            servers.insert(id, server);
            addresses.insert(id, address);
        }
        let inner = Arc::new(Mutex::new(Inner { cluster, servers }));
        let (ticks_tx, ticks) = watch::channel(0);
        let tick_error = Arc::default();
        let ticker = tokio::spawn(tick(
            inner.clone(),
            ticks_tx,
            Arc::clone(&tick_error),
            root.child_token(),
        ));
        let this = Self {
            inner,
            addresses,
            calls,
            produce_stream,
            root,
            ticker: Some(ticker),
            ticks,
            tick_error,
        };
        this.wait_until("every broker unfenced", |c| {
            c.controller().with_image(|image| {
                c.ids()
                    .iter()
                    .all(|id| image.broker(*id).is_some_and(|b| !b.fenced))
            })
        })
        .await;
        Ok(this)
    }

    /// Broker `id`'s client address.
    ///
    /// # Panics
    ///
    /// If the cluster has no broker `id`.
    pub fn address(&self, id: i32) -> SocketAddr {
        self.addresses[&id]
    }

    /// Every broker's address, comma-separated, for a client's
    /// `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addresses
            .values()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The calls and answers of every broker so far.
    pub fn calls(&self) -> &CallLog {
        &self.calls
    }

    /// From now on every broker serves `ProduceStream` (`true`, the
    /// default) or answers it UNIMPLEMENTED, as a broker from before it.
    pub fn serve_produce_stream(&self, serve: bool) {
        self.produce_stream.store(serve, Ordering::Relaxed);
    }

    /// The cluster itself; it does not tick while the guard is held.
    pub async fn lock(&self) -> MappedMutexGuard<'_, Cluster> {
        MutexGuard::map(self.inner.lock().await, |i| &mut i.cluster)
    }

    /// Creates a topic through the controller, placed over the unfenced
    /// brokers, and waits until it is served: every running broker has
    /// replayed it and each partition's leader has taken the leadership.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        {
            let cluster = self.lock().await;
            let configs = configs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let id = cluster.topic_id();
            cluster
                .controller()
                .create_topic(name, partitions, replication_factor, configs, id)?;
        }
        self.wait_until(&format!("topic {name} served"), settled)
            .await;
        Ok(())
    }

    /// The state of `topic`-`partition` the controller decided: replicas,
    /// ISR, leader and epochs.
    pub async fn partition(&self, topic: &str, partition: i32) -> Option<PartitionState> {
        let cluster = self.lock().await;
        cluster
            .controller()
            .with_image(|image| image.topic_by_name(topic)?.partition(partition).cloned())
    }

    /// Crashes broker `id`: its server stops and its connections are cut,
    /// and its replica manager stops. The controller fences it once its
    /// session times out.
    pub async fn crash(&self, id: i32) {
        let mut inner = self.inner.lock().await;
        if let Some(server) = inner.servers.remove(&id) {
            server.crash(id).await;
        }
        inner.cluster.crash(id).await;
    }

    /// Restarts a crashed broker `id` on its logs and its address: a new
    /// incarnation registers, catches up with the metadata log and is
    /// unfenced as the cluster ticks.
    pub async fn restart(&self, id: i32) -> Result<()> {
        let mut inner = self.inner.lock().await;
        if inner.servers.contains_key(&id) {
            return Ok(());
        }
        let listener = bind(self.address(id)).await?;
        inner.cluster.start(id)?;
        let rm = inner
            .cluster
            .broker(id)
            .expect("a broker just started runs");
        let server = Server::start(
            id,
            rm,
            listener,
            self.calls.clone(),
            self.produce_stream.clone(),
            self.root.child_token(),
        );
        inner.servers.insert(id, server);
        Ok(())
    }

    /// Waits until `ready` holds for the cluster, checking after every
    /// tick.
    ///
    /// # Panics
    ///
    /// After [`WAIT`] without it, naming `what`; or when a tick failed.
    pub async fn wait_until(&self, what: &str, mut ready: impl FnMut(&Cluster) -> bool) {
        let mut ticks = self.ticks.clone();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if ready(&*self.lock().await) {
                return;
            }
            if let Some(e) = &*self.tick_error.lock().unwrap_or_else(|e| e.into_inner()) {
                panic!("waiting for {what}: the cluster failed to tick: {e}");
            }
            match tokio::time::timeout_at(deadline, ticks.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("waiting for {what}: the cluster stopped ticking"),
                Err(_) => panic!("waited {WAIT:?} for {what} in vain"),
            }
        }
    }

    /// Stops ticking, stops every server and every broker, and waits for
    /// their tasks.
    pub async fn shutdown(mut self) {
        self.root.cancel();
        if let Some(ticker) = self.ticker.take()
            && let Err(e) = ticker.await
        {
            tracing::warn!(error = %e, "cluster ticker failed");
        }
        let mut inner = self.inner.lock().await;
        for (id, server) in std::mem::take(&mut inner.servers) {
            server.crash(id).await;
        }
        for id in inner.cluster.ids() {
            inner.cluster.crash(id).await;
        }
    }
}

impl Drop for GrpcCluster {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

/// Whether the brokers that replay the metadata log (running, neither
/// isolated nor held: [`Cluster::replaying`]) are in step with the
/// controller: each has replayed the whole log and hosts its replicas, and
/// each replica they host holds the partition's current state (leader
/// epoch and partition epoch), leading exactly when the controller names
/// it leader.
pub fn settled(cluster: &Cluster) -> bool {
    let (offset, partitions) = cluster.controller().with_image(|image| {
        let partitions: Vec<(String, i32, PartitionState)> = image
            .all_partitions()
            .map(|(t, p, s)| (t.name.clone(), p, s.clone()))
            .collect();
        (image.offset(), partitions)
    });
    let replaying = cluster.replaying();
    let replayed = replaying.iter().all(|id| {
        cluster
            .broker(*id)
            .is_some_and(|rm| rm.cache().offset() >= offset)
    });
    replayed
        && partitions.iter().all(|(topic, p, s)| {
            let views = cluster.replicas(topic, *p);
            let hosted = s
                .replicas
                .iter()
                .filter(|r| replaying.contains(r))
                .all(|r| views.iter().any(|v| v.broker == *r));
            hosted
                && views
                    .iter()
                    .filter(|v| replaying.contains(&v.broker))
                    .all(|v| {
                        v.leader == (v.broker == s.leader)
                            && v.leader_epoch == s.leader_epoch
                            && v.partition_epoch == s.partition_epoch
                    })
        })
}

async fn bind(address: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|source| Error::Io {
            context: format!("listen on {address}"),
            source,
        })
}

/// Ticks the cluster until `stop`, counting ticks in `ticks`; keeps the
/// first error.
async fn tick(
    inner: Arc<Mutex<Inner>>,
    ticks: watch::Sender<u64>,
    error: Arc<StdMutex<Option<MetadataError>>>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(e) = inner.lock().await.cluster.tick() {
            tracing::warn!(error = %e, "cluster tick failed");
            error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(e);
        }
        ticks.send_modify(|n| *n += 1);
    }
}
