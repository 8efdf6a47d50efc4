//! The broker's life with the controller: register, heartbeat (renewing
//! the lease and reporting metadata progress), re-register when the
//! controller no longer knows this epoch, and controlled shutdown.

use std::sync::Arc;
use std::time::Duration;

use strom_controller_client::QuorumClient;
use strom_metadata::pb::Endpoint;
use strom_proto::v1::{
    BrokerHeartbeatRequest, ControlledShutdownRequest, DamagedReplica as DamagedReplicaProto,
    ErrorCode, RegisterBrokerRequest, ReplicaSize,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::BrokerConfig;
use crate::metadata::MetadataCache;
use crate::replica::{DamagedReplica, LogDirHealth, clear_lost_records_markers};

/// What the broker knows of its own standing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerStatus {
    /// Current broker epoch; 0 before registration.
    pub epoch: i64,
    /// Whether the controller has this broker fenced — as its last heartbeat
    /// answer said, or presumed when no heartbeat was answered for a whole
    /// session timeout (the controller has fenced it by then).
    pub fenced: bool,
    /// Whether the broker has replayed the metadata log up to its registration.
    pub caught_up: bool,
    /// Controlled shutdown in progress.
    pub shutting_down: bool,
}

/// Registration and heartbeats.
#[derive(Debug)]
pub struct Lifecycle {
    config: BrokerConfig,
    quorum: Arc<QuorumClient>,
    cache: MetadataCache,
    incarnation_id: String,
    status: watch::Sender<BrokerStatus>,
    /// Replicas that lost records in recovery, reported by the first
    /// registration that succeeds ([`crate::replica::recover_local_logs`]).
    damaged: std::sync::Mutex<Vec<DamagedReplica>>,
    /// The log directory's health: heartbeats report it offline, and the
    /// controller then fences this broker.
    log_dirs: Option<LogDirHealth>,
    /// Where heartbeats take the sizes of moving replicas from.
    sizes: std::sync::OnceLock<Arc<dyn ReplicaSizes>>,
}

/// The sizes of this broker's replicas, as (topic id, partition, bytes):
/// heartbeats carry them so that reassignment progress shows bytes copied
/// and the balancer's disk goals can weigh partitions.
pub trait ReplicaSizes: Send + Sync + std::fmt::Debug {
    /// The sizes of every hosted replica now.
    fn replica_sizes(&self) -> Vec<(uuid::Uuid, i32, i64)>;

    /// Bytes of every hosted replica's log together.
    fn total_bytes(&self) -> i64;
}

impl Lifecycle {
    /// A broker process that is not registered yet.
    pub fn new(config: BrokerConfig, quorum: Arc<QuorumClient>, cache: MetadataCache) -> Self {
        let (status, _) = watch::channel(BrokerStatus {
            fenced: true,
            ..Default::default()
        });
        Self {
            config,
            quorum,
            cache,
            incarnation_id: uuid::Uuid::new_v4().to_string(),
            status,
            damaged: std::sync::Mutex::default(),
            log_dirs: None,
            sizes: std::sync::OnceLock::new(),
        }
    }

    /// Heartbeats report the sizes of moving replicas from `sizes` (the
    /// replica manager, which starts after the lifecycle); only the first
    /// call counts.
    pub fn report_replica_sizes(&self, sizes: Arc<dyn ReplicaSizes>) {
        let _ = self.sizes.set(sizes);
    }

    /// Reports `log_dirs` offline in heartbeats once it fails.
    pub fn with_log_dirs(mut self, log_dirs: LogDirHealth) -> Self {
        self.log_dirs = Some(log_dirs);
        self
    }

    /// The data directory's file system as (bytes in use, size), measured
    /// with statvfs on a blocking thread; `None` when that fails (logged).
    async fn disk_usage(&self) -> Option<(i64, i64)> {
        let dir = self.config.data_dir.clone();
        match tokio::task::spawn_blocking(move || disk_usage(&dir)).await {
            Ok(Ok(usage)) => Some(usage),
            Ok(Err(e)) => {
                tracing::debug!(dir = %self.config.data_dir.display(), error = %e, "measuring disk use");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "measuring disk use");
                None
            }
        }
    }

    fn offline_log_dirs(&self) -> Vec<String> {
        self.log_dirs
            .as_ref()
            .map(LogDirHealth::offline_dirs)
            .unwrap_or_default()
    }

    /// Reports `damaged` replicas with the registration: the controller then
    /// takes them out of their ISR and eligible leader replicas before this
    /// broker can lead them.
    pub fn with_damaged_replicas(self, damaged: Vec<DamagedReplica>) -> Self {
        *self.damaged.lock().unwrap_or_else(|e| e.into_inner()) = damaged;
        self
    }

    /// Follows the broker's standing.
    pub fn status(&self) -> watch::Receiver<BrokerStatus> {
        self.status.subscribe()
    }

    /// The gRPC client endpoint first (what peers dial), then the Kafka
    /// listener's when it is on.
    fn endpoints(&self) -> Vec<Endpoint> {
        let mut endpoints = vec![Endpoint {
            name: "client".into(),
            host: self.config.advertised_host.clone(),
            port: u32::from(self.config.advertised_port),
        }];
        if let Some((host, port)) = &self.config.kafka_advertised {
            endpoints.push(Endpoint {
                name: crate::config::KAFKA_ENDPOINT.into(),
                host: host.clone(),
                port: u32::from(*port),
            });
        }
        endpoints
    }

    async fn register(&self) -> Result<i64, strom_proto::StromError> {
        let damaged = self
            .damaged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let request = RegisterBrokerRequest {
            broker_id: self.config.node_id,
            incarnation_id: self.incarnation_id.clone(),
            endpoints: self.endpoints(),
            rack: self.config.rack.clone().unwrap_or_default(),
            cluster_id: String::new(),
            damaged_replicas: damaged
                .iter()
                .map(|d| DamagedReplicaProto {
                    topic_id: d.topic_id.as_bytes().to_vec(),
                    partition: d.partition,
                })
                .collect(),
            static_configs: self
                .config
                .static_configs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let resp = self
            .quorum
            .call(self.config.controller_request_timeout, |mut c| {
                let r = request.clone();
                async move { c.register_broker(r).await }
            })
            .await?;
        tracing::info!(broker = self.config.node_id, epoch = resp.broker_epoch, cluster_id = %resp.cluster_id,
            damaged_replicas = damaged.len(), "registered with controller");
        if !damaged.is_empty() {
            // Reported: later re-registrations of this process must not take
            // the replicas out of an ISR they have rejoined meanwhile.
            self.damaged
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            if let Err(e) =
                tokio::task::spawn_blocking(move || clear_lost_records_markers(&damaged)).await
            {
                tracing::warn!(error = %e, "removing lost-records markers");
            }
        }
        Ok(resp.broker_epoch)
    }

    /// Registers, then heartbeats until `shutdown`.
    ///
    /// DUPLICATE_BROKER_REGISTRATION means the controller still holds a live
    /// lease of another process with this id: after a crash that is our
    /// previous incarnation, whose lease runs out within one session timeout
    /// — but every controller failover re-arms all leases, so the wait can
    /// be longer. Registration is retried for as long as it is refused, as
    /// Kafka's brokers do; after 1.5 session timeouts an error is logged,
    /// once, in case another live process really uses this node id. (A
    /// second process on the same data dir or controller port is refused at
    /// start.)
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), strom_proto::StromError> {
        let mut epoch = 0;
        let mut duplicate_since: Option<tokio::time::Instant> = None;
        let mut duplicate_reported = false;
        let mut interval = self.config.heartbeat_interval;
        let mut last_answer = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            if epoch == 0 {
                match self.register().await {
                    Ok(e) => {
                        epoch = e;
                        duplicate_since = None;
                        duplicate_reported = false;
                        last_answer = tokio::time::Instant::now();
                        self.status.send_modify(|s| {
                            s.epoch = e;
                            s.fenced = true;
                            s.caught_up = false;
                        });
                    }
                    Err(e) if e.code == ErrorCode::DuplicateBrokerRegistration => {
                        let since = *duplicate_since.get_or_insert_with(tokio::time::Instant::now);
                        let long = self.config.session_timeout + self.config.session_timeout / 2;
                        if since.elapsed() > long && !duplicate_reported {
                            duplicate_reported = true;
                            tracing::error!(error = %e, waited_ms = since.elapsed().as_millis() as u64,
                                "registration still refused: is another live process using this node id? retrying");
                        } else if !duplicate_reported {
                            tracing::info!(error = %e, "waiting for the previous registration's lease to expire");
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                            _ = shutdown.cancelled() => return Ok(()),
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "broker registration failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = shutdown.cancelled() => return Ok(()),
                        }
                        continue;
                    }
                }
            }
            let offline_log_dirs = self.offline_log_dirs();
            let disk = self.disk_usage().await;
            let request = BrokerHeartbeatRequest {
                broker_id: self.config.node_id,
                broker_epoch: epoch,
                metadata_offset: self.cache.offset(),
                want_fence: !offline_log_dirs.is_empty(),
                want_shutdown: self.status.borrow().shutting_down,
                offline_log_dirs,
                replica_sizes: self
                    .sizes
                    .get()
                    .map(|s| s.replica_sizes())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(topic_id, partition, size_bytes)| ReplicaSize {
                        topic_id: topic_id.as_bytes().to_vec(),
                        partition,
                        size_bytes,
                    })
                    .collect(),
                log_dir_bytes: self.sizes.get().map_or(-1, |s| s.total_bytes()),
                disk_used_bytes: disk.map_or(0, |d| d.0),
                disk_total_bytes: disk.map_or(0, |d| d.1),
            };
            // Long enough for a second attempt at another voter when the
            // first one does not answer, well inside the session timeout.
            let timeout = interval
                .max(self.config.session_timeout / 3)
                .max(Duration::from_millis(500));
            match self
                .quorum
                .call(timeout, |mut c| {
                    let r = request.clone();
                    async move { c.broker_heartbeat(r).await }
                })
                .await
            {
                Ok(resp) => {
                    last_answer = tokio::time::Instant::now();
                    if resp.heartbeat_interval_ms > 0 {
                        interval = Duration::from_millis(
                            u64::try_from(resp.heartbeat_interval_ms).unwrap_or(2000),
                        );
                    }
                    self.status.send_if_modified(|s| {
                        let changed =
                            s.fenced != resp.is_fenced || s.caught_up != resp.is_caught_up;
                        s.fenced = resp.is_fenced;
                        s.caught_up = resp.is_caught_up;
                        changed
                    });
                }
                Err(e)
                    if matches!(
                        e.code,
                        ErrorCode::StaleBrokerEpoch | ErrorCode::BrokerIdNotRegistered
                    ) =>
                {
                    tracing::warn!(error = %e, "controller no longer knows this registration; re-registering");
                    epoch = 0;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "broker heartbeat failed");
                    // The controller fences a broker it has not heard from
                    // for a session timeout: stop claiming to be unfenced
                    // (health and readiness follow) until it answers again.
                    if last_answer.elapsed() >= self.config.session_timeout
                        && self
                            .status
                            .send_if_modified(|s| !std::mem::replace(&mut s.fenced, true))
                    {
                        tracing::warn!(
                            silent_ms = last_answer.elapsed().as_millis(),
                            "no heartbeat answered within the session timeout; presuming this broker fenced"
                        );
                    }
                }
            }
            // Heartbeat sooner while waiting to be unfenced, so joining is quick.
            let wait = if self.status.borrow().fenced {
                interval.min(Duration::from_millis(200))
            } else {
                interval
            };
            let fenced = self.status.borrow().fenced;
            let mut changes = self.cache.subscribe();
            // A log directory going offline is reported at once.
            let mut dirs = self.log_dirs.as_ref().map(LogDirHealth::subscribe);
            let dir_failed = async {
                match dirs.as_mut() {
                    Some(d) if !fenced => {
                        let _ = d.changed().await;
                    }
                    _ => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = changes.changed(), if fenced => {}
                _ = dir_failed => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
        Ok(())
    }

    /// Controlled shutdown: asks the controller to move every leadership
    /// away and waits (bounded by `controlled.shutdown.timeout.ms`) until none
    /// is left. Returns the number of leaderships still held.
    pub async fn controlled_shutdown(&self) -> i32 {
        self.status.send_modify(|s| s.shutting_down = true);
        let deadline = tokio::time::Instant::now() + self.config.controlled_shutdown_timeout;
        let mut remaining = -1;
        while tokio::time::Instant::now() < deadline {
            let epoch = self.status.borrow().epoch;
            if epoch == 0 {
                return 0;
            }
            let request = ControlledShutdownRequest {
                broker_id: self.config.node_id,
                broker_epoch: epoch,
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self
                .quorum
                .call(left, |mut c| {
                    let r = request;
                    async move { c.controlled_shutdown(r).await }
                })
                .await
            {
                Ok(resp) if resp.remaining_leaders == 0 => {
                    tracing::info!("controlled shutdown: no leaderships left");
                    return 0;
                }
                Ok(resp) => {
                    remaining = resp.remaining_leaders;
                    tracing::info!(
                        remaining,
                        "controlled shutdown: waiting for leaderships to move"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "controlled shutdown request failed"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::warn!(remaining, "controlled shutdown timed out");
        remaining
    }
}

/// The file system holding `dir` as (bytes in use, size), as `df` counts
/// them: in use is the size minus the free blocks, and the size is what is
/// in use plus what is available to unprivileged users (blocks reserved
/// for root count in neither), so `used / size` is `df`'s Use%.
// The statvfs field types are u64 on Linux but narrower elsewhere.
#[allow(clippy::useless_conversion)]
fn disk_usage(dir: &std::path::Path) -> nix::Result<(i64, i64)> {
    let st = nix::sys::statvfs::statvfs(dir)?;
    let frag = u64::from(st.fragment_size());
    let blocks = u64::from(st.blocks());
    let used = blocks
        .saturating_sub(u64::from(st.blocks_free()))
        .saturating_mul(frag);
    let available = u64::from(st.blocks_available()).saturating_mul(frag);
    let size = used.saturating_add(available);
    Ok((
        i64::try_from(used).unwrap_or(i64::MAX),
        i64::try_from(size).unwrap_or(i64::MAX),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn disk_usage_of_the_temp_dir_is_measured() {
        let dir = std::env::temp_dir();
        let (used, total) = super::disk_usage(&dir).expect("statvfs of the temp dir");
        assert!(total > 0, "{used}/{total}");
        assert!((0..=total).contains(&used), "{used}/{total}");
        assert!(super::disk_usage(&dir.join("no/such/dir")).is_err());
    }
}
