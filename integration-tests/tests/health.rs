//! Standard gRPC health and reflection on every node.

use std::process::Command;
use std::time::Duration;

use strom_integration_tests::data::{Addrs, partition_state};
use strom_integration_tests::{Cluster, ClusterOptions, binary, channel, free_port, wait_until};
use strom_proto::v1::{CreatableTopic, CreateTopicsRequest, ReplicaAssignment};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn health(addr: &str) -> Option<ServingStatus> {
    health_of(addr, "").await
}

/// The status of one health service name on `addr`.
async fn health_of(addr: &str, service: &str) -> Option<ServingStatus> {
    let mut c = HealthClient::new(channel(addr));
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    req.set_timeout(Duration::from_secs(2));
    let status = c.check(req).await.ok()?.into_inner().status;
    ServingStatus::try_from(status).ok()
}

async fn services(addr: &str) -> Vec<String> {
    let mut c = ServerReflectionClient::new(channel(addr));
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = c
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflection")
        .into_inner();
    let msg = stream
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    match msg.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection response {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served_on_every_port() {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    for node in cluster.nodes.values() {
        let client = node.client_addr();
        let serving = wait_until(Duration::from_secs(10), || async {
            health(&client).await == Some(ServingStatus::Serving)
        })
        .await;
        assert!(serving, "node {} client port SERVING", node.id);
        assert_eq!(
            health(&node.controller_addr()).await,
            Some(ServingStatus::Serving)
        );
        let listed = services(&client).await;
        for s in [
            "strom.v1.ControllerService",
            "strom.v1.MetadataService",
            "strom.v1.BrokerService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ] {
            assert!(
                listed.iter().any(|l| l == s),
                "client port lists {s}: {listed:?}"
            );
        }
        // The names Kubernetes probes use.
        for (addr, name) in [
            (&client, "liveness"),
            (&client, "readiness"),
            (&client, "strom.v1.BrokerService"),
            (&node.controller_addr(), "liveness"),
            (&node.controller_addr(), "readiness"),
        ] {
            assert_eq!(
                health_of(addr, name).await,
                Some(ServingStatus::Serving),
                "{name} on {addr}"
            );
        }
        let listed = services(&node.controller_addr()).await;
        for s in [
            "strom.v1.ControllerService",
            "strom.v1.RaftService",
            "strom.v1.MetadataService",
        ] {
            assert!(
                listed.iter().any(|l| l == s),
                "controller port lists {s}: {listed:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_shutting_down_or_unregistered() {
    let options = ClusterOptions::default().set("controlled.shutdown.timeout.ms", "4000");
    let mut cluster = Cluster::start(3, options).await;
    let controller = cluster.controller_leader().await.expect("leader");
    let victim = (1..=3).find(|id| *id != controller).expect("victim");
    // A partition only the victim can lead keeps its controlled shutdown
    // waiting, bounded by controlled.shutdown.timeout.ms.
    let mut c = cluster.controller_client(controller);
    let r = c
        .create_topics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "pinned".into(),
                assignments: vec![ReplicaAssignment {
                    partition: 0,
                    replicas: vec![victim],
                }],
                ..Default::default()
            }],
            validate_only: false,
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
    let addr = cluster.node(victim).client_addr();
    assert_eq!(health(&addr).await, Some(ServingStatus::Serving));
    let pid =
        nix::unistd::Pid::from_raw(i32::try_from(cluster_pid(&mut cluster, victim)).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let not_serving = wait_until(Duration::from_secs(3), || async {
        health(&addr).await == Some(ServingStatus::NotServing)
    })
    .await;
    assert!(not_serving, "NOT_SERVING during controlled shutdown");

    // A broker that cannot reach any controller never registers: NOT_SERVING.
    let dir = tempfile::tempdir().expect("tempdir");
    let port = |_: ()| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port()
    };
    let (client_port, admin_port, dead) = (port(()), port(()), port(()));
    let mut child = Command::new(binary("stromd", "STROMD_BIN"))
        .args(["--node-id", "7", "--roles", "broker"])
        .arg("--controller-quorum-voters")
        .arg(format!("1@127.0.0.1:{dead}"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{client_port}"))
        .arg("--admin-listen")
        .arg(format!("127.0.0.1:{admin_port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn broker");
    let addr = format!("127.0.0.1:{client_port}");
    let answered = wait_until(Duration::from_secs(10), || async {
        health(&addr).await.is_some()
    })
    .await;
    let status = health(&addr).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(answered);
    assert_eq!(status, Some(ServingStatus::NotServing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_fenced() {
    // One combined node is the whole quorum; node 2 is a broker only.
    let timeouts = [
        "broker.session.timeout.ms=3000",
        "broker.heartbeat.interval.ms=500",
    ];
    let mut options = ClusterOptions::default();
    for kv in timeouts {
        let (k, v) = kv.split_once('=').expect("k=v");
        options = options.set(k, v);
    }
    let mut cluster = Cluster::start(1, options).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut cmd, addr) = broker_node(&cluster, dir.path());
    cmd.stderr(std::process::Stdio::null());
    for kv in timeouts {
        cmd.arg("--set").arg(kv);
    }
    let broker = KillOnDrop(cmd.spawn().expect("spawn broker"));
    let serving = wait_until(Duration::from_secs(20), || async {
        health(&addr).await == Some(ServingStatus::Serving)
    })
    .await;
    assert!(serving, "broker SERVING once unfenced");

    // The controller stops answering: after a session timeout the broker
    // has been fenced, and says so; liveness still holds.
    cluster.pause(1);
    let fenced = wait_until(Duration::from_secs(10), || async {
        health(&addr).await == Some(ServingStatus::NotServing)
    })
    .await;
    let readiness = health_of(&addr, "readiness").await;
    let liveness = health_of(&addr, "liveness").await;
    cluster.resume(1);
    assert!(fenced, "NOT_SERVING while fenced");
    assert_eq!(readiness, Some(ServingStatus::NotServing));
    assert_eq!(liveness, Some(ServingStatus::Serving));

    let back = wait_until(Duration::from_secs(20), || async {
        health(&addr).await == Some(ServingStatus::Serving)
    })
    .await;
    drop(broker);
    assert!(back, "SERVING again once unfenced\n{}", cluster.dump_logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_serving_when_its_log_cannot_be_written() {
    // stderr on a full disk: every log line fails with ENOSPC (/dev/full).
    // Linux always has it (devtmpfs, and Docker's default /dev).
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full, which this test needs");
    let cluster = Cluster::start(1, ClusterOptions::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut cmd, addr) = broker_node(&cluster, dir.path());
    cmd.stderr(full);
    let mut broker = KillOnDrop(cmd.spawn().expect("spawn broker"));
    let serving = wait_until(Duration::from_secs(20), || async {
        health(&addr).await == Some(ServingStatus::Serving)
    })
    .await;
    let exited = broker.0.try_wait().expect("wait");
    assert!(
        serving && exited.is_none(),
        "a broker whose log writes fail keeps running and serving (exited: {exited:?})\n{}",
        cluster.dump_logs()
    );
    // It registered and logged all along. More work, and more log lines:
    // it becomes leader of a new partition, and still runs and answers.
    let created = cluster
        .create_topic_assigned(1, "logged", &[&[2]], &[])
        .await
        .expect("create topic");
    assert_eq!(created.error_code, 0, "{created:?}");
    let addrs = Addrs([(2, addr.clone())].into());
    let leads = wait_until(Duration::from_secs(20), || async {
        partition_state(&addrs, 2, "logged", 0)
            .await
            .is_some_and(|(leader, _, _)| leader == 2)
    })
    .await;
    assert!(leads, "node 2 leads logged-0\n{}", cluster.dump_logs());
    assert!(
        broker.0.try_wait().expect("wait").is_none(),
        "still running"
    );
    assert_eq!(health(&addr).await, Some(ServingStatus::Serving));
}

/// The command of a broker-only node 2 joining `cluster`'s quorum, with
/// its data in `dir`, and the address it will serve clients on.
fn broker_node(cluster: &Cluster, dir: &std::path::Path) -> (Command, String) {
    let (client_port, admin_port) = (free_port(), free_port());
    let mut cmd = Command::new(binary("stromd", "STROMD_BIN"));
    cmd.args(["--node-id", "2", "--roles", "broker"])
        .arg("--controller-quorum-voters")
        .arg(cluster.voters())
        .arg("--listen")
        .arg(format!("127.0.0.1:{client_port}"))
        .arg("--admin-listen")
        .arg(format!("127.0.0.1:{admin_port}"))
        .arg("--data-dir")
        .arg(dir);
    (cmd, format!("127.0.0.1:{client_port}"))
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cluster_pid(cluster: &mut Cluster, id: i32) -> u32 {
    cluster.pid(id)
}
