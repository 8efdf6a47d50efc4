//! Standard gRPC health and reflection on every node.

use std::process::Command;
use std::time::Duration;

use strom_integration_tests::{Cluster, ClusterOptions, binary, channel, wait_until};
use strom_proto::v1::{CreatableTopic, CreateTopicsRequest, ReplicaAssignment};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn health(addr: &str) -> Option<ServingStatus> {
    let mut c = HealthClient::new(channel(addr));
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
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
            "grpc.health.v1.Health",
        ] {
            assert!(
                listed.iter().any(|l| l == s),
                "client port lists {s}: {listed:?}"
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

fn cluster_pid(cluster: &mut Cluster, id: i32) -> u32 {
    cluster.pid(id)
}
