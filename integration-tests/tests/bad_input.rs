//! Every bad input gets a typed error that names the problem, and changes
//! nothing.

use std::process::Command;
use std::time::Duration;

use strom_integration_tests::{Cluster, ClusterOptions, binary};
use strom_proto::StromError;
use strom_proto::v1::*;

async fn create(cluster: &Cluster, topic: CreatableTopic) -> Result<CreateTopicResult, StromError> {
    let mut c = cluster.controller_client(1);
    let r = c
        .create_topics(CreateTopicsRequest {
            topics: vec![topic],
            validate_only: false,
        })
        .await
        .map_err(|s| StromError::from_status(&s))?;
    let t = r.into_inner().topics.remove(0);
    if t.error_code != 0 {
        return Err(StromError::new(
            ErrorCode::try_from(t.error_code).expect("known code"),
            t.error_message,
        ));
    }
    Ok(t)
}

fn topic(name: &str, partitions: i32, rf: i32) -> CreatableTopic {
    CreatableTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        ..Default::default()
    }
}

/// The committed metadata offset once every node has applied the same
/// one: the leader answers a write after committing it, so agreement means
/// every earlier commit has reached them all.
async fn settled_offset(cluster: &Cluster) -> i64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut seen = Vec::new();
        for id in cluster.nodes.keys() {
            let mut c = cluster.controller_client(*id);
            let mut req = tonic::Request::new(DescribeClusterRequest {});
            req.set_timeout(Duration::from_secs(3));
            seen.push(
                c.describe_cluster(req)
                    .await
                    .ok()
                    .map(|r| r.into_inner().metadata_offset),
            );
        }
        if let Some(Some(first)) = seen.first()
            && seen.iter().all(|o| *o == Some(*first))
        {
            return *first;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metadata offsets per node never agreed: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_requests_get_typed_errors_and_change_nothing() {
    let cluster = Cluster::start(
        3,
        ClusterOptions::default().set("auto.leader.rebalance.enable", "false"),
    )
    .await;
    cluster
        .create_topic(1, "exists", 3, 2, &[])
        .await
        .expect("create");
    let before = settled_offset(&cluster).await;

    let long = "x".repeat(250);
    let cases: Vec<(CreatableTopic, ErrorCode, &str)> = vec![
        (
            topic("bad name", 1, 1),
            ErrorCode::InvalidTopicException,
            "bad name",
        ),
        (topic("", 1, 1), ErrorCode::InvalidTopicException, "empty"),
        (topic(".", 1, 1), ErrorCode::InvalidTopicException, "."),
        (topic("..", 1, 1), ErrorCode::InvalidTopicException, ".."),
        (topic(&long, 1, 1), ErrorCode::InvalidTopicException, "249"),
        (
            topic("exists", 1, 1),
            ErrorCode::TopicAlreadyExists,
            "exists",
        ),
        (
            topic("zero-partitions", 0, 1),
            ErrorCode::InvalidPartitions,
            "partitions",
        ),
        (
            topic("neg-partitions", -3, 1),
            ErrorCode::InvalidPartitions,
            "partitions",
        ),
        (
            topic("zero-rf", 1, 0),
            ErrorCode::InvalidReplicationFactor,
            "replication factor",
        ),
        (
            topic("big-rf", 1, 4),
            ErrorCode::InvalidReplicationFactor,
            "replication factor",
        ),
        (
            CreatableTopic {
                configs: [("no.such.config".into(), "1".into())].into(),
                ..topic("bad-config", 1, 1)
            },
            ErrorCode::InvalidConfig,
            "no.such.config",
        ),
        (
            CreatableTopic {
                configs: [("write.caching".into(), "sometimes".into())].into(),
                ..topic("bad-write-caching", 1, 1)
            },
            ErrorCode::InvalidConfig,
            "write.caching",
        ),
    ];
    for (t, code, mention) in cases {
        let name = t.name.clone();
        let err = create(&cluster, t).await.expect_err(&name);
        assert_eq!(err.code, code, "{name}: {err}");
        assert!(
            err.message.to_lowercase().contains(&mention.to_lowercase()),
            "{name}: message '{}' names '{mention}'",
            err.message
        );
    }

    // Duplicate names within one request.
    let mut c = cluster.controller_client(2);
    let r = c
        .create_topics(CreateTopicsRequest {
            topics: vec![topic("dup", 1, 1), topic("dup", 1, 1)],
            validate_only: false,
        })
        .await
        .expect("request accepted")
        .into_inner();
    // One result per requested topic, in order: as Kafka, every copy of a
    // duplicated name is refused with INVALID_REQUEST and none is created.
    let outcome: Vec<(&str, i32, &str)> = r
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.error_code, t.error_message.as_str()))
        .collect();
    assert_eq!(
        outcome,
        vec![
            (
                "dup",
                ErrorCode::InvalidRequest as i32,
                "topic 'dup' appears more than once in the request"
            ),
            (
                "dup",
                ErrorCode::InvalidRequest as i32,
                "topic 'dup' appears more than once in the request"
            ),
        ],
        "{r:?}"
    );
    assert!(r.topics.iter().all(|t| t.topic_id.is_empty()), "{r:?}");
    let with_dup = settled_offset(&cluster).await;
    assert_eq!(with_dup, before, "a refused duplicate commits nothing");

    // Partition count only grows.
    let r = c
        .create_partitions(CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: "exists".into(),
                count: 2,
                assignments: vec![],
            }],
            validate_only: false,
        })
        .await
        .expect("request accepted")
        .into_inner();
    assert_eq!(
        r.topics[0].error_code,
        ErrorCode::InvalidPartitions as i32,
        "{r:?}"
    );
    // Unknown topics.
    let r = c
        .create_partitions(CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: "nope".into(),
                count: 5,
                assignments: vec![],
            }],
            validate_only: false,
        })
        .await
        .expect("request accepted")
        .into_inner();
    assert_eq!(
        r.topics[0].error_code,
        ErrorCode::UnknownTopicOrPartition as i32
    );
    let r = c
        .delete_topics(DeleteTopicsRequest {
            names: vec!["nope".into()],
        })
        .await
        .expect("accepted")
        .into_inner();
    assert_eq!(
        r.topics[0].error_code,
        ErrorCode::UnknownTopicOrPartition as i32
    );
    let m = cluster.metadata(3, &["nope"]).await.expect("metadata");
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::UnknownTopicOrPartition as i32
    );

    // Missing fields.
    let err = c
        .register_broker(RegisterBrokerRequest {
            broker_id: 9,
            ..Default::default()
        })
        .await
        .expect_err("missing incarnation and endpoints");
    assert_eq!(
        StromError::from_status(&err).code,
        ErrorCode::InvalidRequest
    );
    let err = c
        .broker_heartbeat(BrokerHeartbeatRequest {
            broker_id: 1,
            broker_epoch: 1,
            ..Default::default()
        })
        .await
        .expect_err("stale epoch");
    assert_eq!(
        StromError::from_status(&err).code,
        ErrorCode::StaleBrokerEpoch
    );
    let err = c
        .elect_leaders(ElectLeadersRequest {
            election_type: 7,
            partitions: vec![],
        })
        .await
        .expect_err("unknown election type");
    assert_eq!(
        StromError::from_status(&err).code,
        ErrorCode::InvalidRequest
    );

    // Nothing else changed.
    let after = settled_offset(&cluster).await;
    assert_eq!(after, with_dup, "bad input changed the metadata");
    let m = cluster.metadata(1, &["exists"]).await.expect("metadata");
    assert_eq!(m.topics[0].partitions.len(), 3);
    // Node 1's broker follows the metadata log on its own: no "dup".
    let m = cluster.metadata(1, &["dup"]).await.expect("metadata");
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::UnknownTopicOrPartition as i32,
        "{m:?}"
    );
}

fn stromd_error(args: &[&str]) -> (i32, String) {
    let out = Command::new(binary("stromd", "STROMD_BIN"))
        .args(args)
        .output()
        .expect("run stromd");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn stromd_refuses_bad_configuration_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("d");
    let data = data.to_str().expect("utf8");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--node-id",
                "1",
                "--controller-quorum-voters",
                "1@127.0.0.1",
                "--data-dir",
                data,
            ],
            "no port",
        ),
        (
            vec![
                "--node-id",
                "1",
                "--controller-quorum-voters",
                "one@127.0.0.1:1",
                "--data-dir",
                data,
            ],
            "invalid node id",
        ),
        (
            vec![
                "--node-id",
                "4",
                "--controller-quorum-voters",
                "1@127.0.0.1:19093",
                "--controller-listen",
                "127.0.0.1:19093",
                "--data-dir",
                data,
            ],
            "not among",
        ),
        (
            vec![
                "--node-id",
                "1",
                "--controller-quorum-voters",
                "1@127.0.0.1:19093",
                "--controller-listen",
                "127.0.0.1:19093",
                "--data-dir",
                "/proc/strom-no",
            ],
            "data dir",
        ),
        (
            vec![
                "--node-id",
                "1",
                "--controller-quorum-voters",
                "1@127.0.0.1:19093",
                "--controller-listen",
                "127.0.0.1:19093",
                "--set",
                "bogus.key=1",
                "--data-dir",
                data,
            ],
            "unknown setting",
        ),
        (
            vec![
                "--node-id",
                "1",
                "--controller-quorum-voters",
                "1@127.0.0.1:19093",
                "--controller-listen",
                "127.0.0.1:19093",
                "--set",
                "log.write.caching=maybe",
                "--data-dir",
                data,
            ],
            "log.write.caching must be true or false",
        ),
    ];
    for (args, want) in cases {
        let (code, stderr) = stromd_error(&args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: one error line in {stderr}");
        assert!(
            lines[0].contains(want),
            "{args:?}: '{}' names '{want}'",
            lines[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_with_the_same_id_is_refused() {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    // Same id, same voters, its own data dir and client port: the controller
    // address of id 2 is taken, so it cannot start.
    let dir = tempfile::tempdir().expect("tempdir");
    let free = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let mut cmd = Command::new(binary("stromd", "STROMD_BIN"));
    cmd.arg("--node-id")
        .arg("2")
        .arg("--controller-quorum-voters")
        .arg(cluster.voters())
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free()))
        .arg("--controller-listen")
        .arg(cluster.node(2).controller_addr())
        .arg("--admin-listen")
        .arg(format!("127.0.0.1:{}", free()))
        .arg("--data-dir")
        .arg(dir.path());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen"), "{stderr}");
    // And the cluster is unharmed.
    let d = cluster.describe().await.expect("describe");
    assert_eq!(
        d.brokers
            .iter()
            .filter(|b| b.state == BrokerState::Unfenced as i32)
            .count(),
        3
    );
}
