//! Starting, serving and stopping one node.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use strom_broker::grpc::{
    BrokerServiceImpl, ControllerProxy, GroupServiceImpl, MetadataServiceImpl, RecordsServiceImpl,
    TransactionServiceImpl,
};
use strom_broker::{Lifecycle, MetadataCache, ReplicaManager};
use strom_controller::{Controller, ControllerGrpc, QuorumClient};
use strom_proto::v1::broker_service_server::BrokerServiceServer;
use strom_proto::v1::controller_service_server::ControllerServiceServer;
use strom_proto::v1::group_service_server::GroupServiceServer;
use strom_proto::v1::metadata_service_server::MetadataServiceServer;
use strom_proto::v1::raft_service_server::RaftServiceServer;
use strom_proto::v1::records_service_server::RecordsServiceServer;
use strom_proto::v1::transaction_service_server::TransactionServiceServer;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::config::NodeConfig;
use crate::rpc::{RpcLayer, RpcMetrics};

/// Health service name that is SERVING for as long as the process serves
/// gRPC (Kubernetes liveness and startup probes): a fenced or partitioned
/// node must not be restarted for it.
const LIVENESS: &str = "liveness";
/// Health service name for readiness probes: on the client port the same as
/// "" (registered, unfenced, caught up, not shutting down); on the controller
/// port, "this voter knows a Raft leader".
const READINESS: &str = "readiness";

/// Largest gRPC message on the controller's services (a metadata snapshot
/// can be large); clients of those services use the same bound.
const MAX_MESSAGE: usize = strom_proto::MAX_CONTROL_MESSAGE_BYTES;

/// Claims the data dir: creates it, checks it is writable, takes an
/// exclusive lock (one process per data dir) and records the node id in
/// `meta.properties` so a data dir is never reused under another id.
fn claim_data_dir(config: &NodeConfig) -> anyhow::Result<std::fs::File> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "KAFKA_STORAGE_ERROR: data dir {} cannot be created",
            dir.display()
        )
    })?;
    let lock_path = dir.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| {
            format!(
                "KAFKA_STORAGE_ERROR: data dir {} is not writable",
                dir.display()
            )
        })?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!(
                "INVALID_CONFIG: data dir {} is in use by another stromd process",
                dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e)
                .with_context(|| format!("KAFKA_STORAGE_ERROR: lock data dir {}", dir.display()));
        }
    }
    let meta = dir.join("meta.properties");
    match std::fs::read_to_string(&meta) {
        Ok(text) => {
            let stored = text
                .lines()
                .find_map(|l| l.strip_prefix("node.id="))
                .and_then(|v| v.trim().parse::<i32>().ok());
            if stored != Some(config.node_id) {
                bail!(
                    "INVALID_CONFIG: data dir {} belongs to node {} but this is node {}",
                    dir.display(),
                    stored.map_or("?".to_owned(), |s| s.to_string()),
                    config.node_id
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&meta, format!("version=1\nnode.id={}\n", config.node_id))
                .with_context(|| format!("KAFKA_STORAGE_ERROR: write {}", meta.display()))?;
        }
        Err(e) => {
            return Err(e).with_context(|| format!("KAFKA_STORAGE_ERROR: read {}", meta.display()));
        }
    }
    Ok(lock)
}

/// Accepted connections with Nagle off: Raft and request/response RPCs are
/// small messages, and Nagle plus delayed ACKs would add ~40 ms stalls.
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("INVALID_CONFIG: cannot listen on {addr} ({what})"))
}

fn reflection() -> anyhow::Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(strom_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("build reflection service")
}

/// `ControllerService` with the message limits of a node.
fn controller_service<S: strom_proto::v1::controller_service_server::ControllerService>(
    service: S,
) -> ControllerServiceServer<S> {
    ControllerServiceServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// A gRPC server with Strom's transport settings: HTTP/2 flow-control
/// windows large enough for megabyte batches (the 64 KiB default allows one
/// window per round trip) and keep-alive pings that drop dead clients.
fn server() -> Server {
    Server::builder()
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(32 << 20)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(5)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
}

/// Runs the node until a signal stops it.
pub(crate) async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let _lock = claim_data_dir(&config)?;
    tracing::info!(node = config.node_id, roles = ?config.roles, listen = %config.listen,
        controller_listen = %config.controller_listen, admin_listen = %config.admin_listen, data_dir = %config.data_dir.display(), "starting stromd");
    let admin_listener = bind("admin", config.admin_listen).await?;
    let root = CancellationToken::new();
    let servers = CancellationToken::new();
    let mut admin_broker = None;
    // Replicas stop after the servers, so in-flight requests drain first.
    let replicas_stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let rpc = Arc::new(RpcMetrics::new(&[
        strom_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    ]));

    let controller = if config.roles.controller {
        let listener = bind("controller", config.controller_listen).await?;
        let ctl = Controller::start(config.controller.clone(), root.child_token())
            .await
            .map_err(|e| anyhow::anyhow!("KAFKA_STORAGE_ERROR: {e}"))?;
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("strom.v1.ControllerService", ServingStatus::Serving)
            .await;
        health.set_service_status("", ServingStatus::Serving).await;
        health
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        {
            // "readiness" on the controller port: this voter knows a leader.
            let mut metrics = ctl.raft().metrics();
            let token = root.child_token();
            tasks.spawn(async move {
                loop {
                    let st = if metrics.borrow_and_update().current_leader.is_some() {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    health.set_service_status(READINESS, st).await;
                    tokio::select! {
                        r = metrics.changed() => if r.is_err() { return Ok(()) },
                        _ = token.cancelled() => return Ok(()),
                    }
                }
            });
        }
        let router = server()
            .layer(RpcLayer::new(rpc.clone()))
            .add_service(health_service)
            .add_service(reflection()?)
            .add_service(
                RaftServiceServer::new(ctl.raft_service())
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .add_service(controller_service(ControllerGrpc::new(ctl.clone())));
        let stop = servers.clone();
        tasks.spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming(listener), stop.cancelled())
                .await
                .context("controller server")
        });
        Some(ctl)
    } else {
        None
    };

    let lifecycle = if config.roles.broker {
        let listener = bind("client", config.listen).await?;
        // Bound before the broker registers its Kafka address.
        let kafka_listener = match config.kafka_listen {
            Some(addr) => Some((addr, bind("kafka", addr).await?)),
            None => None,
        };
        let quorum = Arc::new(QuorumClient::new(config.controller.voters.clone()));
        let cache = MetadataCache::new();
        // Every local log is recovered before the broker registers, so the
        // registration can name the replicas that lost records.
        let log_dir = config.data_dir.join("logs");
        let log_dir_health = strom_broker::replica::LogDirHealth::new(&log_dir);
        let damaged = tokio::task::spawn_blocking(move || {
            strom_broker::replica::recover_local_logs(&log_dir)
        })
        .await
        .context("log recovery task")?;
        let lifecycle = Arc::new(
            Lifecycle::new(config.broker.clone(), quorum.clone(), cache.clone())
                .with_damaged_replicas(damaged)
                .with_log_dirs(log_dir_health.clone()),
        );
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;

        tasks.spawn(
            strom_broker::metadata::follower::run(
                config.node_id,
                quorum.clone(),
                cache.clone(),
                root.child_token(),
            )
            .then_ok(),
        );
        let replicas = ReplicaManager::new(
            config.node_id,
            config.broker.replication.clone(),
            &config.data_dir,
            cache.clone(),
            quorum.clone(),
            lifecycle.status(),
            log_dir_health.clone(),
        );
        // Listens to leadership changes: created before the replicas run.
        let groups = strom_broker::group::GroupCoordinator::new(
            replicas.clone(),
            Some(quorum.clone()),
            config.broker.groups.clone(),
            config.broker.controller_request_timeout,
            root.child_token(),
        );
        tasks.spawn(
            groups
                .clone()
                .run(std::time::Duration::from_millis(500))
                .then_ok(),
        );
        tasks.spawn(
            groups
                .clone()
                .run_lag(Arc::new(strom_broker::group::GrpcEndOffsets::new(
                    cache.clone(),
                )))
                .then_ok(),
        );
        // Listens to leadership changes and verifies transactional batches:
        // created before the replicas run.
        let transactions = strom_broker::txn::TxnCoordinator::new(
            replicas.clone(),
            Some(quorum.clone()),
            config.broker.transactions.clone(),
            config.broker.groups.offsets_topic_num_partitions,
            Some(groups.clone()),
            Arc::new(strom_broker::txn::GrpcTxnPeers::new(cache.clone())),
            config.broker.controller_request_timeout,
            root.child_token(),
        );
        tasks.spawn(transactions.clone().run().then_ok());
        lifecycle.report_replica_sizes(replicas.clone());
        tasks.spawn(
            replicas
                .clone()
                .run(lifecycle.status(), replicas_stop.clone())
                .then_ok(),
        );
        {
            let lifecycle = lifecycle.clone();
            let token = root.child_token();
            let fatal = root.clone();
            tasks.spawn(async move {
                let result = lifecycle.run(token).await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "broker cannot register");
                    fatal.cancel();
                }
                result.map_err(|e| anyhow::anyhow!("{e}"))
            });
        }
        {
            // Health follows the broker's standing: SERVING once registered,
            // unfenced and caught up; NOT_SERVING while fenced or stopping.
            let mut status = lifecycle.status();
            let token = root.child_token();
            tasks.spawn(async move {
                loop {
                    let s = status.borrow_and_update().clone();
                    let serving = !s.fenced && s.caught_up && !s.shutting_down;
                    let st = if serving {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    for name in [
                        "",
                        READINESS,
                        "strom.v1.MetadataService",
                        "strom.v1.BrokerService",
                        "strom.v1.GroupService",
                        "strom.v1.TransactionService",
                        "strom.v1.RecordsService",
                    ] {
                        health.set_service_status(name, st).await;
                    }
                    tokio::select! {
                        r = status.changed() => if r.is_err() { return Ok(()) },
                        _ = token.cancelled() => return Ok(()),
                    }
                }
            });
        }

        let controller_id: Arc<dyn Fn() -> i32 + Send + Sync> = match &controller {
            Some(ctl) => {
                let ctl = ctl.clone();
                Arc::new(move || {
                    ctl.leader()
                        .map_or(-1, |(id, _)| i32::try_from(id).unwrap_or(-1))
                })
            }
            None => Arc::new(|| -1),
        };
        let metadata =
            MetadataServiceServer::new(MetadataServiceImpl::new(cache.clone(), controller_id))
                .max_encoding_message_size(MAX_MESSAGE);
        let max_request = config.broker.socket_request_max_bytes;
        let broker_service = BrokerServiceImpl::new(replicas.clone(), servers.clone())
            .with_transactions(transactions.clone());
        if let Some((addr, listener)) = kafka_listener {
            let broker = Arc::new(strom_kafka::Broker {
                replicas: replicas.clone(),
                groups: Some(groups.clone()),
                transactions: Some(transactions.clone()),
                controller: quorum.clone(),
                controller_timeout: config.broker.controller_request_timeout,
                fetch_sessions: strom_kafka::fetch_session::FetchSessionCache::new(
                    config.broker.max_incremental_fetch_session_cache_slots,
                ),
            });
            let listener = strom_kafka::KafkaListener::new(
                listener,
                broker,
                strom_kafka::ListenerConfig {
                    max_request_bytes: config.broker.socket_request_max_bytes,
                    idle_timeout: config.broker.connections_max_idle,
                    ..Default::default()
                },
            );
            tracing::info!(kafka_listen = %addr, "kafka listener on");
            let stop = servers.clone();
            tasks.spawn(async move {
                listener.run(stop).await;
                Ok(())
            });
        }
        let replicas_for_records = replicas.clone();
        admin_broker = Some(crate::view::BrokerView {
            cache: cache.clone(),
            status: lifecycle.status(),
            traffic: broker_service.traffic(),
            log_dirs: log_dir_health.clone(),
            replicas,
            groups: groups.clone(),
            transactions: transactions.clone(),
        });
        let router = server()
            .layer(RpcLayer::new(rpc.clone()))
            .add_service(health_service)
            .add_service(reflection()?)
            .add_service(metadata)
            .add_service(
                BrokerServiceServer::new(broker_service)
                    .max_decoding_message_size(max_request)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                GroupServiceServer::new(
                    GroupServiceImpl::new(groups.clone(), servers.clone())
                        .with_transactions(transactions.clone()),
                )
                .max_encoding_message_size(MAX_MESSAGE),
            )
            .add_service(TransactionServiceServer::new(TransactionServiceImpl::new(
                transactions,
            )))
            .add_service(
                RecordsServiceServer::new(RecordsServiceImpl::new(replicas_for_records))
                    .max_decoding_message_size(max_request)
                    .max_encoding_message_size(MAX_MESSAGE),
            );
        let router = match &controller {
            Some(ctl) => router.add_service(controller_service(ControllerGrpc::new(ctl.clone()))),
            None => router.add_service(controller_service(ControllerProxy::new(
                quorum.clone(),
                config.broker.controller_request_timeout,
            ))),
        };
        let stop = servers.clone();
        tasks.spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming(listener), stop.cancelled())
                .await
                .context("client server")
        });
        Some(lifecycle)
    } else {
        None
    };

    let admin = crate::view::NodeView {
        controller: controller.clone(),
        broker: admin_broker,
        node_id: config.node_id,
        data_dir: config.data_dir.clone(),
        rpc,
    };
    tasks.spawn(crate::admin::serve(admin_listener, admin, servers.clone()));

    // First SIGTERM/SIGINT: controlled shutdown; a second one: exit at once.
    let mut sigterm = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let mut failure = None;
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
        _ = root.cancelled() => failure = Some(anyhow::anyhow!("stopping after a fatal error (see the log above)")),
        Some(r) = tasks.join_next() => {
            failure = Some(match r {
                Ok(Ok(())) => anyhow::anyhow!("a node task ended unexpectedly"),
                Ok(Err(e)) => e,
                Err(e) => anyhow::anyhow!("a node task panicked: {e}"),
            });
        }
    }
    let graceful = async {
        if let Some(lifecycle) = &lifecycle {
            lifecycle.controlled_shutdown().await;
        }
        root.cancel();
        servers.cancel();
        replicas_stop.cancel();
        if let Some(ctl) = &controller {
            ctl.shutdown().await;
        }
        while let Some(r) = tasks.join_next().await {
            if let Ok(Err(e)) = r {
                tracing::debug!(error = %e, "task ended with error during shutdown");
            }
        }
    };
    tokio::select! {
        _ = graceful => {}
        _ = sigterm.recv() => bail!("second signal: exiting at once"),
        _ = sigint.recv() => bail!("second signal: exiting at once"),
    }
    if let Some(e) = failure {
        return Err(e);
    }
    tracing::info!("stopped");
    Ok(())
}

trait ThenOk {
    fn then_ok(self) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

impl<F: std::future::Future<Output = ()> + Send> ThenOk for F {
    async fn then_ok(self) -> anyhow::Result<()> {
        self.await;
        Ok(())
    }
}
