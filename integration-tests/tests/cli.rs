//! The `strom` CLI against a real cluster: tables, JSON, and one-line
//! typed errors with exit code 1.

use std::process::{Command, Output};

use strom_integration_tests::{Cluster, ClusterOptions, binary};

fn strom(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(binary("strom", "STROM_BIN"))
        .arg("--bootstrap-server")
        .arg(cluster.bootstrap())
        .args(args)
        .output()
        .expect("run strom")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_creates_describes_and_deletes_topics() {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    let c = &cluster;
    let out = tokio::task::block_in_place(|| {
        strom(
            c,
            &[
                "topics",
                "create",
                "--topic",
                "orders",
                "--partitions",
                "3",
                "--replication-factor",
                "3",
            ],
        )
    });
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Created topic orders"),
        "{}",
        stdout(&out)
    );

    let out = tokio::task::block_in_place(|| {
        strom(
            c,
            &[
                "--output", "json", "topics", "describe", "--topic", "orders",
            ],
        )
    });
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("describe JSON");
    let topic = &json[0];
    assert_eq!(topic["name"], "orders");
    assert_eq!(topic["partitions"].as_array().expect("partitions").len(), 3);
    for p in topic["partitions"].as_array().expect("partitions") {
        assert_eq!(p["replicas"].as_array().expect("replicas").len(), 3);
        assert!(p["leader"].is_i64(), "{p}");
        assert!(p["isr"].as_array().is_some() && p["leader_epoch"].is_i64());
    }

    let out =
        tokio::task::block_in_place(|| strom(c, &["topics", "describe", "--topic", "orders"]));
    assert!(
        stdout(&out).contains("Topic: orders\tPartition: 0\tLeader: "),
        "{}",
        stdout(&out)
    );

    let out =
        tokio::task::block_in_place(|| strom(c, &["--output", "json", "cluster", "describe"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("cluster JSON");
    assert_eq!(
        json["controller"]["voters"]
            .as_array()
            .expect("voters")
            .len(),
        3
    );
    assert_eq!(json["brokers"].as_array().expect("brokers").len(), 3);
    assert!(
        json["brokers"]
            .as_array()
            .expect("brokers")
            .iter()
            .all(|b| b["state"] == "unfenced")
    );

    let out = tokio::task::block_in_place(|| strom(c, &["topics", "delete", "--topic", "orders"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tokio::task::block_in_place(|| strom(c, &["--output", "json", "topics", "list"]));
    assert!(!stdout(&out).contains("\"orders\""), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_bad_input_prints_one_error_line_and_exits_1() {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    let c = &cluster;
    let ok = tokio::task::block_in_place(|| {
        strom(
            c,
            &[
                "topics",
                "create",
                "--topic",
                "keep",
                "--partitions",
                "2",
                "--replication-factor",
                "2",
            ],
        )
    });
    assert!(ok.status.success(), "{}", stderr(&ok));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "topics",
                "create",
                "--topic",
                "a b",
                "--partitions",
                "1",
                "--replication-factor",
                "1",
            ],
            "INVALID_TOPIC_EXCEPTION",
        ),
        (
            vec![
                "topics",
                "create",
                "--topic",
                "keep",
                "--partitions",
                "1",
                "--replication-factor",
                "1",
            ],
            "TOPIC_ALREADY_EXISTS",
        ),
        (
            vec![
                "topics",
                "create",
                "--topic",
                "z",
                "--partitions",
                "0",
                "--replication-factor",
                "1",
            ],
            "INVALID_PARTITIONS",
        ),
        (
            vec![
                "topics",
                "create",
                "--topic",
                "z",
                "--partitions",
                "1",
                "--replication-factor",
                "5",
            ],
            "INVALID_REPLICATION_FACTOR",
        ),
        (
            vec![
                "topics",
                "create",
                "--topic",
                "z",
                "--partitions",
                "1",
                "--replication-factor",
                "0",
            ],
            "INVALID_REPLICATION_FACTOR",
        ),
        (
            vec!["topics", "alter", "--topic", "keep", "--partitions", "1"],
            "INVALID_PARTITIONS",
        ),
        (
            vec!["topics", "delete", "--topic", "missing"],
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
        (
            vec!["topics", "describe", "--topic", "missing"],
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
    ];
    for (args, code) in cases {
        let out = tokio::task::block_in_place(|| strom(c, &args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: exactly one stderr line: {err}");
        assert!(
            lines[0].starts_with(&format!("error: {code}: ")),
            "{args:?}: {err}"
        );
    }
    // Nothing changed.
    let out = tokio::task::block_in_place(|| strom(c, &["--output", "json", "topics", "describe"]));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let names: Vec<&str> = json
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, vec!["keep"]);
    assert_eq!(
        json[0]["partitions"].as_array().expect("partitions").len(),
        2
    );
    // Usage errors exit 2.
    let out = tokio::task::block_in_place(|| strom(c, &["topics", "create", "--partitions", "x"]));
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_preferred_leader_election_restores_preferred_leaders() {
    let options = ClusterOptions::default()
        .set("auto.leader.rebalance.enable", "false")
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500");
    let mut cluster = Cluster::start(3, options).await;
    cluster
        .create_topic(1, "elect", 6, 3, &[])
        .await
        .expect("create");
    let controller = cluster.controller_leader().await.expect("leader");
    let victim = (1..=3)
        .find(|id| *id != controller)
        .expect("non-controller");
    cluster.kill(victim);
    let moved = strom_integration_tests::wait_until(std::time::Duration::from_secs(15), || async {
        cluster
            .metadata(controller, &["elect"])
            .await
            .is_ok_and(|m| {
                let parts = &m.topics[0].partitions;
                // (An image that does not have the topic yet lists none.)
                parts.len() == 6 && parts.iter().all(|p| p.leader != victim && p.leader >= 0)
            })
    })
    .await;
    assert!(moved, "leaders moved off the killed broker");
    cluster.start_node(victim);
    // Back in every ISR, but not leading: no automatic rebalance.
    let back = strom_integration_tests::wait_until(std::time::Duration::from_secs(30), || async {
        cluster
            .metadata(controller, &["elect"])
            .await
            .is_ok_and(|m| {
                let parts = &m.topics[0].partitions;
                parts.len() == 6 && parts.iter().all(|p| p.isr.contains(&victim))
            })
    })
    .await;
    assert!(
        back,
        "broker {victim} rejoined the ISRs\n{}",
        cluster.dump_logs()
    );
    let c = &cluster;
    let out = tokio::task::block_in_place(|| {
        strom(
            c,
            &[
                "--output",
                "json",
                "leader-election",
                "--election-type",
                "preferred",
                "--all-topic-partitions",
            ],
        )
    });
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("election JSON");
    assert!(
        json.as_array().is_some_and(|a| !a.is_empty()),
        "elections reported: {json}"
    );
    // The node's image replays the election shortly after it is committed.
    let preferred =
        strom_integration_tests::wait_until(std::time::Duration::from_secs(5), || async {
            cluster
                .metadata(controller, &["elect"])
                .await
                .is_ok_and(|m| {
                    m.topics[0]
                        .partitions
                        .iter()
                        .all(|p| p.leader == p.replicas[0])
                })
        })
        .await;
    assert!(preferred, "every partition led by its preferred replica");
}
