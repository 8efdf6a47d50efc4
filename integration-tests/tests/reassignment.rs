//! Partition reassignment on real processes (issue #20): plans executed
//! with the `strom reassign` CLI while acks=all producers write, with the
//! controller or a target replica killed half way, cancelled, and changing
//! the replication factor; bad plans refused with one error line.
//!
//! Nodes 1-3 are combined (controller quorum + broker), 4-6 broker-only, so
//! "move {1,2,3} -> {4,5,6}" moves every replica off the quorum's nodes.

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_client::{Admin, ClientConfig, TopicPartition};
use strom_integration_tests::data::{
    Addrs, Outcome, batch, check_acked, produce_retrying, read_from_leader, wait_leader_serving,
};
use strom_integration_tests::{Cluster, ClusterOptions, admin_get, binary, wait_until};

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("replica.lag.time.max.ms", "5000")
        .set("auto.leader.rebalance.enable", "false")
        .broker_only(3)
}

fn strom(cluster: &Cluster, args: &[&str]) -> Output {
    tokio::task::block_in_place(|| {
        Command::new(binary("strom", "STROM_BIN"))
            .arg("--bootstrap-server")
            .arg(cluster.bootstrap())
            .args(args)
            .output()
            .expect("run strom")
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Runs `strom` and expects success; returns stdout.
fn strom_ok(cluster: &Cluster, args: &[&str]) -> String {
    let out = strom(cluster, args);
    assert!(
        out.status.success(),
        "strom {args:?} failed: {}{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

async fn admin(cluster: &Cluster) -> Admin {
    let config = ClientConfig {
        bootstrap_servers: strom_client::parse_bootstrap_servers(&cluster.bootstrap())
            .expect("addresses"),
        ..Default::default()
    }
    .with_request_timeout(Duration::from_secs(20));
    Admin::connect(config).await.expect("admin")
}

/// Writes a plan file moving `topic`'s partitions to the given replicas.
fn plan_file(dir: &tempfile::TempDir, name: &str, topic: &str, replicas: &[&[i32]]) -> String {
    let partitions: Vec<serde_json::Value> = replicas
        .iter()
        .enumerate()
        .map(|(p, r)| serde_json::json!({"topic": topic, "partition": p, "replicas": r}))
        .collect();
    let path = dir.path().join(name);
    std::fs::write(
        &path,
        serde_json::json!({"version": 1, "partitions": partitions}).to_string(),
    )
    .expect("write plan");
    path.display().to_string()
}

/// (replicas, isr) of `topic`-`p` as the controller sees it.
async fn replicas(admin: &Admin, topic: &str, p: i32) -> (Vec<i32>, Vec<i32>) {
    let t = admin
        .describe_topics(&[topic.to_owned()])
        .await
        .expect("describe");
    let part = t[0]
        .partitions
        .iter()
        .find(|x| x.partition == p)
        .expect("partition")
        .clone();
    (part.replicas, part.isr)
}

/// Waits until no reassignment is in progress and `topic`-0 has `want`
/// replicas, all in the ISR.
async fn wait_moved(
    cluster: &Cluster,
    admin: &Admin,
    topic: &str,
    want: &[i32],
    timeout: Duration,
) {
    let ok = wait_until(timeout, || async {
        let idle = admin
            .list_partition_reassignments(Some(vec![TopicPartition::new(topic, 0)]))
            .await
            .is_ok_and(|l| l.is_empty());
        if !idle {
            return false;
        }
        let Ok(t) = admin.describe_topics(&[topic.to_owned()]).await else {
            return false;
        };
        let p = &t[0].partitions[0];
        let mut isr = p.isr.clone();
        isr.sort();
        let mut sorted = want.to_vec();
        sorted.sort();
        p.replicas == want && isr == sorted
    })
    .await;
    assert!(
        ok,
        "{topic}-0 did not move to {want:?} within {timeout:?}: {:?}\n{}",
        admin.describe_topics(&[topic.to_owned()]).await,
        cluster.dump_logs()
    );
}

/// An acks=all producer writing batches of 10 records of `size` bytes to
/// `topic`-`partition` until stopped; every batch must end acknowledged
/// (leader changes are retried). Returns (value, offset) of every record.
fn start_producer(
    addrs: Addrs,
    topic: &'static str,
    partition: i32,
    size: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(Bytes, i64)>> {
    tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let values: Vec<Bytes> = (0..10)
                .map(|i| {
                    let mut v = format!("{topic}-{partition}-{n}-{i}-").into_bytes();
                    v.resize(size.max(v.len()), b'x');
                    Bytes::from(v)
                })
                .collect();
            n += 1;
            let deadline = Instant::now() + Duration::from_secs(30);
            match produce_retrying(&addrs, topic, partition, batch(&values), deadline).await {
                Outcome::Acked(base) => {
                    acked.extend(values.into_iter().zip(base..));
                }
                other => panic!("batch {n} of {topic}-{partition} not acknowledged: {other:?}"),
            }
        }
        acked
    })
}

/// Produces `batches` batches to `topic`-0 (acks=all) and returns them.
async fn fill(
    cluster: &Cluster,
    topic: &'static str,
    batches: usize,
    size: usize,
) -> Vec<(Bytes, i64)> {
    fill_partition(cluster, topic, 0, batches, size).await
}

/// Produces `batches` batches to `topic`-`partition` (acks=all) and
/// returns them.
async fn fill_partition(
    cluster: &Cluster,
    topic: &'static str,
    partition: i32,
    batches: usize,
    size: usize,
) -> Vec<(Bytes, i64)> {
    let addrs = Addrs::of(cluster);
    let mut acked = Vec::new();
    for n in 0..batches {
        let values: Vec<Bytes> = (0..10)
            .map(|i| {
                let mut v = format!("{topic}-fill-{n}-{i}-").into_bytes();
                v.resize(size.max(v.len()), b'y');
                Bytes::from(v)
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        match produce_retrying(&addrs, topic, partition, batch(&values), deadline).await {
            Outcome::Acked(base) => acked.extend(values.into_iter().zip(base..)),
            other => panic!("fill batch {n} of {topic}-{partition}: {other:?}"),
        }
    }
    acked
}

/// Every acknowledged record is in `topic`-0's log, in order.
async fn check_nothing_lost(cluster: &Cluster, topic: &str, acked: &[(Bytes, i64)]) {
    check_partition_lost_nothing(cluster, topic, 0, acked).await;
}

/// Every acknowledged record is in the partition's log, in order.
async fn check_partition_lost_nothing(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    acked: &[(Bytes, i64)],
) {
    let (_, log) = read_from_leader(cluster, topic, partition, Duration::from_secs(30)).await;
    let problems = check_acked(acked, &log);
    assert!(problems.is_empty(), "{topic}-{partition}: {problems:?}");
    let offsets: Vec<i64> = log.iter().map(|(o, _)| *o).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "{topic}-{partition}: log out of order"
    );
}

async fn create(cluster: &Cluster, topic: &str, assignment: &[&[i32]]) {
    cluster
        .create_topic_assigned(1, topic, assignment, &[("min.insync.replicas", "2")])
        .await
        .expect("create topic");
    wait_leader_serving(&Addrs::of(cluster), topic, 0, Duration::from_secs(20))
        .await
        .expect("leader serves");
}

fn partition_dir_exists(cluster: &Cluster, node: i32, topic: &str) -> bool {
    cluster
        .node(node)
        .data_dir
        .join("logs")
        .join(format!("{topic}-0"))
        .exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn move_to_new_brokers_under_acks_all_load_loses_nothing() {
    let cluster = Cluster::start(3, options()).await;
    let admin = admin(&cluster).await;
    create(&cluster, "moving", &[&[1, 2, 3]]).await;
    let mut acked = fill(&cluster, "moving", 200, 1000).await;

    let stop = Arc::new(AtomicBool::new(false));
    let producer = start_producer(Addrs::of(&cluster), "moving", 0, 200, stop.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = plan_file(&dir, "plan.json", "moving", &[&[4, 5, 6]]);
    let out = strom_ok(
        &cluster,
        &["reassign", "execute", "--reassignment-json-file", &plan],
    );
    assert!(
        out.contains("Current partition replica assignment"),
        "{out}"
    );
    assert!(out.contains(r#""replicas":[1,2,3]"#), "{out}");
    assert!(
        out.contains("Successfully started partition reassignments for moving-0"),
        "{out}"
    );

    wait_moved(
        &cluster,
        &admin,
        "moving",
        &[4, 5, 6],
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    acked.extend(producer.await.expect("producer"));
    let verify = strom_ok(
        &cluster,
        &[
            "--output",
            "json",
            "reassign",
            "verify",
            "--reassignment-json-file",
            &plan,
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(verify.trim()).expect("verify json");
    assert_eq!(rows[0]["state"], "complete", "{verify}");
    check_nothing_lost(&cluster, "moving", &acked).await;
    // The removed replicas delete their logs.
    let gone = wait_until(Duration::from_secs(20), || async {
        (1..=3).all(|n| !partition_dir_exists(&cluster, n, "moving"))
    })
    .await;
    assert!(
        gone,
        "old replicas kept their logs\n{}",
        cluster.dump_logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn move_completes_after_the_active_controller_is_killed() {
    let mut cluster = Cluster::start(3, options()).await;
    let admin = admin(&cluster).await;
    create(&cluster, "failover", &[&[1, 2, 3]]).await;
    let acked = fill(&cluster, "failover", 300, 1000).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = plan_file(&dir, "plan.json", "failover", &[&[4, 5, 6]]);
    // 6 cannot catch up while paused: the controller dies mid-move.
    cluster.pause(6);
    strom_ok(
        &cluster,
        &["reassign", "execute", "--reassignment-json-file", &plan],
    );
    let controller = cluster
        .controller_leader()
        .await
        .expect("controller leader");
    cluster.kill(controller);
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.resume(6);
    wait_moved(
        &cluster,
        &admin,
        "failover",
        &[4, 5, 6],
        Duration::from_secs(60),
    )
    .await;
    check_nothing_lost(&cluster, "failover", &acked).await;
    // The killed node, restarted, drops the replica it no longer holds.
    cluster.start_node(controller);
    let gone = wait_until(Duration::from_secs(30), || async {
        !partition_dir_exists(&cluster, controller, "failover")
    })
    .await;
    assert!(
        gone,
        "node {controller} kept its removed replica\n{}",
        cluster.dump_logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn move_completes_after_a_target_replica_is_killed() {
    let mut cluster = Cluster::start(3, options()).await;
    let admin = admin(&cluster).await;
    create(&cluster, "target", &[&[1, 2, 3]]).await;
    let acked = fill(&cluster, "target", 300, 1000).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = plan_file(&dir, "plan.json", "target", &[&[4, 5, 6]]);
    // 6 cannot catch up while paused: it dies mid-move.
    cluster.pause(6);
    strom_ok(
        &cluster,
        &["reassign", "execute", "--reassignment-json-file", &plan],
    );
    cluster.kill(6);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let moving = admin
        .list_partition_reassignments(None)
        .await
        .expect("list");
    assert_eq!(moving.len(), 1, "6 is down: the move cannot complete yet");
    cluster.start_node(6);
    wait_moved(
        &cluster,
        &admin,
        "target",
        &[4, 5, 6],
        Duration::from_secs(60),
    )
    .await;
    check_nothing_lost(&cluster, "target", &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_half_way_restores_the_original_replicas() {
    let mut cluster = Cluster::start(3, options()).await;
    let admin = admin(&cluster).await;
    create(&cluster, "cancelled", &[&[1, 2, 3]]).await;
    let acked = fill(&cluster, "cancelled", 100, 1000).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = plan_file(&dir, "plan.json", "cancelled", &[&[1, 2, 4]]);
    // 4 cannot catch up while paused: the move stays half way.
    cluster.pause(4);
    strom_ok(
        &cluster,
        &["reassign", "execute", "--reassignment-json-file", &plan],
    );
    let list = strom_ok(&cluster, &["reassign", "list"]);
    assert!(
        list.contains("cancelled-0: replicas: 1,2,4,3. adding: 4. removing: 3."),
        "{list}"
    );
    let verify = strom_ok(
        &cluster,
        &["reassign", "verify", "--reassignment-json-file", &plan],
    );
    assert!(verify.contains("is still in progress"), "{verify}");
    // The active controller's metrics count the move.
    let active = cluster
        .controller_leader()
        .await
        .expect("controller leader");
    let metrics = admin_get(cluster.node(active).admin_port, "/metrics")
        .expect("metrics")
        .1;
    assert!(
        metrics
            .lines()
            .any(|l| l == "strom_partitions_reassigning 1"),
        "{metrics}"
    );
    let out = strom_ok(
        &cluster,
        &["reassign", "cancel", "--reassignment-json-file", &plan],
    );
    assert!(
        out.contains("Successfully cancelled partition reassignments for: cancelled-0"),
        "{out}"
    );
    assert_eq!(replicas(&admin, "cancelled", 0).await.0, vec![1, 2, 3]);
    // A second cancel finds nothing to cancel.
    let again = strom_ok(
        &cluster,
        &["reassign", "cancel", "--reassignment-json-file", &plan],
    );
    assert!(again.contains("None of the specified"), "{again}");
    cluster.resume(4);
    wait_moved(
        &cluster,
        &admin,
        "cancelled",
        &[1, 2, 3],
        Duration::from_secs(30),
    )
    .await;
    check_nothing_lost(&cluster, "cancelled", &acked).await;
    let gone = wait_until(Duration::from_secs(20), || async {
        !partition_dir_exists(&cluster, 4, "cancelled")
    })
    .await;
    assert!(
        gone,
        "4 kept the replica of a cancelled move\n{}",
        cluster.dump_logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replication_factor_changes_through_plans() {
    let cluster = Cluster::start(3, options()).await;
    let admin = admin(&cluster).await;
    cluster
        .create_topic_assigned(1, "rf", &[&[1]], &[])
        .await
        .expect("create topic");
    wait_leader_serving(&Addrs::of(&cluster), "rf", 0, Duration::from_secs(20))
        .await
        .expect("leader serves");
    let acked = fill(&cluster, "rf", 100, 500).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // 1 -> 3, as the seed notes' §4.3.7 plan (no log_dirs).
    let up = plan_file(&dir, "up.json", "rf", &[&[1, 2, 3]]);
    strom_ok(
        &cluster,
        &["reassign", "execute", "--reassignment-json-file", &up],
    );
    wait_moved(&cluster, &admin, "rf", &[1, 2, 3], Duration::from_secs(60)).await;
    let verify = strom_ok(
        &cluster,
        &["reassign", "verify", "--reassignment-json-file", &up],
    );
    assert!(
        verify.contains("Reassignment of partition rf-0 is complete."),
        "{verify}"
    );
    // 3 -> 2: nothing to copy, done at once.
    let down = plan_file(&dir, "down.json", "rf", &[&[2, 3]]);
    strom_ok(
        &cluster,
        &["reassign", "execute", "--reassignment-json-file", &down],
    );
    wait_moved(&cluster, &admin, "rf", &[2, 3], Duration::from_secs(30)).await;
    check_nothing_lost(&cluster, "rf", &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generated_plans_are_executed_as_printed() {
    let cluster = Cluster::start(3, options()).await;
    let admin = admin(&cluster).await;
    cluster
        .create_topic_assigned(1, "gen", &[&[1, 2], &[2, 3], &[3, 1]], &[])
        .await
        .expect("create topic");
    let dir = tempfile::tempdir().expect("temp dir");
    let topics = dir.path().join("topics.json");
    std::fs::write(&topics, r#"{"version":1,"topics":[{"topic":"gen"}]}"#).expect("write");
    let out = strom_ok(
        &cluster,
        &[
            "--output",
            "json",
            "reassign",
            "generate",
            "--topics-to-move-json-file",
            &topics.display().to_string(),
            "--broker-list",
            "1,2,4",
        ],
    );
    let generated: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let proposed = &generated["proposed"];
    for p in proposed["partitions"].as_array().expect("partitions") {
        let r = p["replicas"].as_array().expect("replicas");
        assert!(!r.contains(&serde_json::json!(3)), "{out}");
        assert_eq!(p["log_dirs"], serde_json::json!(["any", "any"]), "{out}");
    }
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, proposed.to_string()).expect("write plan");
    let plan = plan.display().to_string();
    strom_ok(
        &cluster,
        &["reassign", "execute", "--reassignment-json-file", &plan],
    );
    let done = wait_until(Duration::from_secs(60), || async {
        admin
            .list_partition_reassignments(None)
            .await
            .is_ok_and(|l| l.is_empty())
    })
    .await;
    assert!(
        done,
        "generated plan did not complete\n{}",
        cluster.dump_logs()
    );
    for p in 0..3 {
        assert!(!replicas(&admin, "gen", p).await.0.contains(&3));
    }
    // The table form prints both plans, each on one line after its title.
    let table = strom_ok(
        &cluster,
        &[
            "reassign",
            "generate",
            "--topics-to-move-json-file",
            &topics.display().to_string(),
            "--broker-list",
            "1,2,4",
        ],
    );
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "Current partition replica assignment", "{table}");
    assert!(
        lines[1].starts_with(r#"{"version":1,"partitions":["#),
        "{table}"
    );
    assert_eq!(
        lines[3], "Proposed partition reassignment configuration",
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_plans_are_refused_with_one_line_and_change_nothing() {
    let mut cluster = Cluster::start(3, options()).await;
    let admin = admin(&cluster).await;
    create(&cluster, "keep", &[&[1, 2, 3]]).await;
    // Broker 6 stops and is fenced once its session expires.
    cluster.kill(6);
    let fenced = wait_until(Duration::from_secs(20), || async {
        admin.describe_cluster().await.is_ok_and(|c| {
            c.brokers
                .iter()
                .any(|b| b.id == 6 && b.state == strom_client::BrokerState::Fenced)
        })
    })
    .await;
    assert!(fenced, "broker 6 was not fenced");
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).expect("write");
        path.display().to_string()
    };
    let p = |parts: &str| format!(r#"{{"version":1,"partitions":[{parts}]}}"#);
    let cases: Vec<(String, &str)> = vec![
        (write("malformed.json", "{not json"), "INVALID_REQUEST"),
        (
            write(
                "version.json",
                r#"{"version":2,"partitions":[{"topic":"keep","partition":0,"replicas":[1,2,4]}]}"#,
            ),
            "INVALID_REQUEST",
        ),
        (
            write(
                "topic.json",
                &p(r#"{"topic":"nope","partition":0,"replicas":[1,2,4]}"#),
            ),
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
        (
            write(
                "partition.json",
                &p(r#"{"topic":"keep","partition":7,"replicas":[1,2,4]}"#),
            ),
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
        (
            write(
                "twice.json",
                &p(
                    r#"{"topic":"keep","partition":0,"replicas":[1,2,4]},{"topic":"keep","partition":0,"replicas":[4,5]}"#,
                ),
            ),
            "INVALID_REQUEST",
        ),
        (
            write(
                "replica.json",
                &p(r#"{"topic":"keep","partition":0,"replicas":[1,4,4]}"#),
            ),
            "INVALID_REQUEST",
        ),
        (
            write(
                "unknown.json",
                &p(r#"{"topic":"keep","partition":0,"replicas":[1,2,99]}"#),
            ),
            "INVALID_REPLICA_ASSIGNMENT",
        ),
        (
            write(
                "fenced.json",
                &p(r#"{"topic":"keep","partition":0,"replicas":[1,2,6]}"#),
            ),
            "INVALID_REPLICA_ASSIGNMENT",
        ),
        (
            write(
                "empty.json",
                &p(r#"{"topic":"keep","partition":0,"replicas":[]}"#),
            ),
            "INVALID_REQUEST",
        ),
    ];
    for (file, code) in &cases {
        let out = strom(
            &cluster,
            &["reassign", "execute", "--reassignment-json-file", file],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {err}");
        assert_eq!(err.lines().count(), 1, "{file}: {err}");
        assert!(
            err.starts_with(&format!("error: {code}: ")),
            "{file}: {err}"
        );
    }
    // A generate onto an unknown broker, or with too few brokers.
    let topics = write(
        "topics.json",
        r#"{"version":1,"topics":[{"topic":"keep"}]}"#,
    );
    for (list, code) in [
        ("1,2,99", "INVALID_REPLICA_ASSIGNMENT"),
        ("1,2", "INVALID_REPLICATION_FACTOR"),
    ] {
        let out = strom(
            &cluster,
            &[
                "reassign",
                "generate",
                "--topics-to-move-json-file",
                &topics,
                "--broker-list",
                list,
            ],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{list}: {err}");
        assert!(
            err.starts_with(&format!("error: {code}: ")),
            "{list}: {err}"
        );
    }
    // Nothing changed.
    assert_eq!(replicas(&admin, "keep", 0).await.0, vec![1, 2, 3]);
    assert!(
        admin
            .list_partition_reassignments(None)
            .await
            .expect("list")
            .is_empty()
    );
    // Cancelling with no move in progress is not an error.
    let plan = write(
        "ok.json",
        &p(r#"{"topic":"keep","partition":0,"replicas":[1,2,4]}"#),
    );
    let out = strom_ok(
        &cluster,
        &["reassign", "cancel", "--reassignment-json-file", &plan],
    );
    assert!(out.contains("None of the specified"), "{out}");
    let list = strom_ok(&cluster, &["reassign", "list"]);
    assert!(list.contains("No partition reassignments found."), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decommission_under_load_moves_leaderships_then_every_replica() {
    let mut cluster = Cluster::start(3, options()).await;
    let admin = admin(&cluster).await;
    create(&cluster, "drain", &[&[4, 5, 1]]).await;
    cluster
        .create_topic_assigned(1, "drain-more", &[&[4, 2], &[3, 4], &[4, 6], &[5, 6]], &[])
        .await
        .expect("create topic");
    let mut acked = fill(&cluster, "drain", 100, 1000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let producer = start_producer(Addrs::of(&cluster), "drain", 0, 200, stop.clone());
    let out = strom_ok(
        &cluster,
        &["brokers", "decommission", "--broker-id", "4", "--wait"],
    );
    assert!(out.contains("Decommissioning broker 4:"), "{out}");
    assert!(
        out.contains("Broker 4 holds no replica: it can be stopped."),
        "{out}"
    );
    stop.store(true, Ordering::Relaxed);
    acked.extend(producer.await.expect("producer"));
    let described = strom_ok(&cluster, &["--output", "json", "brokers", "describe"]);
    let rows: serde_json::Value = serde_json::from_str(described.trim()).expect("json");
    let four = rows
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["id"] == 4)
        .expect("broker 4")
        .clone();
    assert_eq!(four["replicas"], 0, "{described}");
    assert_eq!(four["leaders"], 0, "{described}");
    assert_eq!(four["decommissioning"], true, "{described}");
    // Stopped now, it leaves every partition fully replicated.
    cluster.kill(4);
    for (topic, partitions) in [("drain", 1), ("drain-more", 4)] {
        for p in 0..partitions {
            let (r, isr) = replicas(&admin, topic, p).await;
            assert!(!r.contains(&4), "{topic}-{p}: {r:?}");
            assert_eq!(isr.len(), r.len(), "{topic}-{p}: {r:?} isr {isr:?}");
        }
    }
    check_nothing_lost(&cluster, "drain", &acked).await;
    // Recommissioning stops the drain: new topics may use 4 again once it
    // is back.
    strom_ok(&cluster, &["brokers", "recommission", "--broker-id", "4"]);
    let described = strom_ok(&cluster, &["--output", "json", "brokers", "describe"]);
    assert!(
        !described.contains(r#""decommissioning":true"#),
        "{described}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decommission_is_refused_when_too_few_brokers_would_remain() {
    let cluster = Cluster::start(3, options()).await;
    cluster
        .create_topic_assigned(1, "wide", &[&[1, 2, 3, 4, 5, 6]], &[])
        .await
        .expect("create topic");
    for (args, code) in [
        (
            vec!["brokers", "decommission", "--broker-id", "2"],
            "INVALID_REPLICATION_FACTOR",
        ),
        (
            vec!["brokers", "decommission", "--broker-id", "99"],
            "BROKER_ID_NOT_REGISTERED",
        ),
        (
            vec!["brokers", "recommission", "--broker-id", "99"],
            "BROKER_ID_NOT_REGISTERED",
        ),
    ] {
        let out = strom(&cluster, &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("error: {code}: ")),
            "{args:?}: {err}"
        );
        if code == "INVALID_REPLICATION_FACTOR" {
            assert!(err.contains("wide"), "{err}");
        }
    }
    let described = strom_ok(&cluster, &["--output", "json", "brokers", "describe"]);
    assert!(
        !described.contains(r#""decommissioning":true"#),
        "{described}"
    );
}

/// Bytes in the `.log` segments of `topic`-0 on `node`.
fn log_bytes(cluster: &Cluster, node: i32, topic: &str) -> u64 {
    let dir = cluster
        .node(node)
        .data_dir
        .join("logs")
        .join(format!("{topic}-0"));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Samples `topic`-0's log size on `node` every 100 ms until it reaches
/// `total` bytes (or `timeout` passes): (seconds since the start, bytes).
async fn copy_samples(
    cluster: &Cluster,
    node: i32,
    topic: &str,
    total: u64,
    timeout: Duration,
) -> Vec<(f64, u64)> {
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < timeout {
        let bytes = log_bytes(cluster, node, topic);
        samples.push((start.elapsed().as_secs_f64(), bytes));
        if bytes >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    samples
}

/// Bytes per second between the first sample at or above `from` and the
/// first at or above `to`.
fn copy_rate(samples: &[(f64, u64)], from: u64, to: u64) -> Option<f64> {
    let a = samples.iter().find(|(_, b)| *b >= from)?;
    let b = samples.iter().find(|(_, b)| *b >= to)?;
    (b.0 > a.0).then(|| (b.1 - a.1) as f64 / (b.0 - a.0))
}

/// The value and source of `name` at `resource`.
async fn config(
    admin: &Admin,
    resource: strom_client::ConfigResource,
    name: &str,
) -> (Option<String>, strom_client::ConfigSource) {
    let entries = admin.describe_configs(&resource).await.expect("describe");
    let e = entries
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} missing"));
    (e.value, e.source)
}

/// Kafka's throttled move (KIP-73, with KIP-542's fix): `--throttle` sets
/// the broker rates and the topic's throttled replicas, the new replica
/// copies at the throttle (±25%), a follower catching up that is not being
/// moved is not slowed down even under `*`, and `verify` removes every
/// throttle once the move is complete. Bad throttles are refused first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttled_move_copies_at_the_throttle_and_verify_removes_it() {
    use strom_client::{ConfigResource, ConfigSource};
    const RATE: u64 = 1_000_000;
    let mut cluster = Cluster::start(
        3,
        ClusterOptions::default()
            .set("broker.session.timeout.ms", "3000")
            .set("broker.heartbeat.interval.ms", "500")
            .set("replica.lag.time.max.ms", "5000")
            .set("auto.leader.rebalance.enable", "false")
            .broker_only(1),
    )
    .await;
    let admin = admin(&cluster).await;
    create(&cluster, "throttled", &[&[1, 2, 3]]).await;
    create(&cluster, "lagging", &[&[1, 2, 3]]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = plan_file(&dir, "plan.json", "throttled", &[&[1, 2, 4]]);

    // Bad throttles: one typed line, exit 1, nothing changed.
    for bad in ["0", "-5"] {
        let out = strom(
            &cluster,
            &[
                "reassign",
                "execute",
                "--reassignment-json-file",
                &plan,
                "--throttle",
                bad,
            ],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--throttle {bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: INVALID_CONFIG: "), "{err}");
        assert!(err.contains("--throttle"), "{err}");
    }
    let bad_list = strom(
        &cluster,
        &[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "throttled",
            "--add-config",
            "leader.replication.throttled.replicas=0-1",
        ],
    );
    assert_eq!(bad_list.status.code(), Some(1));
    assert!(
        text(&bad_list.stderr).starts_with("error: INVALID_CONFIG: "),
        "{}",
        text(&bad_list.stderr)
    );
    assert!(
        admin
            .list_partition_reassignments(None)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        config(
            &admin,
            ConfigResource::Topic("throttled".into()),
            "leader.replication.throttled.replicas"
        )
        .await
        .1,
        ConfigSource::DefaultConfig
    );

    // 10 MB to move at 1 MB/s.
    fill(&cluster, "throttled", 100, 10_000).await;
    let total = log_bytes(&cluster, 1, "throttled");
    assert!(total >= 10_000_000, "{total}");
    let out = strom_ok(
        &cluster,
        &[
            "reassign",
            "execute",
            "--reassignment-json-file",
            &plan,
            "--throttle",
            &RATE.to_string(),
        ],
    );
    assert!(
        out.contains("The inter-broker throttle limit was set to 1000000 B/s"),
        "{out}"
    );
    let samples = copy_samples(&cluster, 4, "throttled", total, Duration::from_secs(60)).await;
    // Steady state: from 1 MB copied to 9 MB copied.
    let rate = copy_rate(&samples, 1_000_000, 9_000_000);
    println!("throttled copy: {rate:?} B/s at a throttle of {RATE} B/s");
    let rate = rate.unwrap_or_else(|| panic!("the copy did not progress: {samples:?}"));
    assert!(
        (0.75..=1.25).contains(&(rate / RATE as f64)),
        "copied at {rate:.0} B/s, throttle {RATE} B/s: {samples:?}"
    );
    assert_eq!(
        config(
            &admin,
            ConfigResource::Topic("throttled".into()),
            "leader.replication.throttled.replicas"
        )
        .await,
        (
            Some("0:1,0:2,0:3".to_owned()),
            ConfigSource::DynamicTopicConfig
        )
    );
    assert_eq!(
        config(
            &admin,
            ConfigResource::Topic("throttled".into()),
            "follower.replication.throttled.replicas"
        )
        .await,
        (Some("0:4".to_owned()), ConfigSource::DynamicTopicConfig)
    );
    wait_moved(
        &cluster,
        &admin,
        "throttled",
        &[1, 2, 4],
        Duration::from_secs(60),
    )
    .await;
    let metrics = admin_get(cluster.node(4).admin_port, "/metrics")
        .expect("metrics")
        .1;
    let throttled_bytes: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"strom_replication_throttled_bytes_total{side="follower"} "#)
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no follower throttled bytes: {metrics}"));
    assert!(throttled_bytes >= total / 2, "{throttled_bytes} of {total}");

    // KIP-542: with every replica of `lagging` listed and the rates still
    // set, broker 3 catching up after a crash (out of the ISR, but not
    // being moved) copies unthrottled.
    for key in [
        "leader.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
    ] {
        admin
            .incremental_alter_configs(
                &ConfigResource::Topic("lagging".into()),
                vec![strom_client::AlterConfigOp::set(key, "*")],
                false,
            )
            .await
            .expect("throttle every replica");
    }
    cluster.kill(3);
    fill(&cluster, "lagging", 100, 10_000).await;
    let total = log_bytes(&cluster, 1, "lagging");
    let before = log_bytes(&cluster, 3, "lagging");
    cluster.start_node(3);
    let samples = copy_samples(&cluster, 3, "lagging", total, Duration::from_secs(60)).await;
    // From the last sample before it grew to the first complete one: a
    // lower bound of the rate (the whole copy may fit between two samples).
    let grew = samples
        .iter()
        .rposition(|(_, b)| *b <= before)
        .and_then(|i| Some((samples[i], samples.iter().find(|(_, b)| *b >= total)?)));
    let ((t0, b0), (t1, b1)) = grew
        .map(|(a, b)| (a, *b))
        .unwrap_or_else(|| panic!("3 did not catch up: {samples:?}"));
    let rate = (b1 - b0) as f64 / (t1 - t0).max(0.001);
    println!("catch-up copy outside the throttle: {rate:.0} B/s");
    assert!(
        rate > 2.0 * RATE as f64,
        "a follower catching up was throttled: {rate:.0} B/s: {samples:?}"
    );

    // verify: complete, and every throttle is removed.
    let verify = strom_ok(
        &cluster,
        &["reassign", "verify", "--reassignment-json-file", &plan],
    );
    assert!(
        verify.contains("Reassignment of partition throttled-0 is complete."),
        "{verify}"
    );
    assert!(
        verify.contains("Clearing broker-level throttles on brokers 1,2,3,4"),
        "{verify}"
    );
    assert!(
        verify.contains("Clearing topic-level throttles on topic(s) throttled"),
        "{verify}"
    );
    for b in 1..=4 {
        for key in [
            "leader.replication.throttled.rate",
            "follower.replication.throttled.rate",
        ] {
            assert_eq!(
                config(&admin, ConfigResource::Broker(b), key).await.1,
                ConfigSource::DefaultConfig,
                "{key} on broker {b}"
            );
        }
    }
    for key in [
        "leader.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
    ] {
        assert_eq!(
            config(&admin, ConfigResource::Topic("throttled".into()), key)
                .await
                .1,
            ConfigSource::DefaultConfig,
            "{key}"
        );
    }
}

/// `balancer.mode=node-add`: a fourth broker joins a cluster whose 3
/// brokers hold 4 replicas each, and the balancer moves replicas onto it
/// until every broker holds 3, without losing a record; `strom balancer
/// status` reports the mode and, at the end, a balanced cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_add_balancer_fills_a_new_broker() {
    let mut cluster = Cluster::create(
        3,
        ClusterOptions::default()
            .set("broker.session.timeout.ms", "3000")
            .set("broker.heartbeat.interval.ms", "500")
            .set("replica.lag.time.max.ms", "5000")
            .set("auto.leader.rebalance.enable", "false")
            .set("balancer.mode", "node-add")
            .set("reassignment.max.concurrent.moves.per.broker", "2")
            .broker_only(1),
    );
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.wait_ready(Duration::from_secs(60)).await;
    let admin = admin(&cluster).await;
    // 6 partitions of RF 2: 4 replicas on each of 1-3.
    let assignment: [&[i32]; 6] = [&[1, 2], &[2, 3], &[3, 1], &[1, 2], &[2, 3], &[3, 1]];
    cluster
        .create_topic_assigned(1, "spread", &assignment, &[])
        .await
        .expect("create topic");
    wait_leader_serving(&Addrs::of(&cluster), "spread", 0, Duration::from_secs(20))
        .await
        .expect("leader serves");
    let acked = fill(&cluster, "spread", 50, 1000).await;
    let status = strom_ok(&cluster, &["--output", "json", "balancer", "status"]);
    let status: serde_json::Value = serde_json::from_str(status.trim()).expect("status json");
    assert_eq!(status["mode"], "node-add", "{status}");
    assert_eq!(status["state"], "balanced", "{status}");

    cluster.start_node(4);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let balanced = wait_until(Duration::from_secs(90), || async {
        let Ok(moving) = admin.list_partition_reassignments(None).await else {
            return false;
        };
        let Ok(c) = admin.describe_cluster().await else {
            return false;
        };
        moving.is_empty() && c.brokers.len() == 4 && c.brokers.iter().all(|b| b.replicas == 3)
    })
    .await;
    assert!(
        balanced,
        "the balancer did not fill broker 4: {:?}\n{}",
        admin.describe_cluster().await,
        cluster.dump_logs()
    );
    // Every partition is fully replicated on distinct brokers.
    let t = admin
        .describe_topics(&["spread".to_owned()])
        .await
        .expect("describe");
    for p in &t[0].partitions {
        assert_eq!(p.replicas.len(), 2, "{p:?}");
        assert_ne!(p.replicas[0], p.replicas[1], "{p:?}");
        let mut isr = p.isr.clone();
        isr.sort();
        let mut replicas = p.replicas.clone();
        replicas.sort();
        assert_eq!(isr, replicas, "{p:?}");
    }
    check_nothing_lost(&cluster, "spread", &acked).await;
    let status = strom_ok(&cluster, &["balancer", "status"]);
    assert!(status.contains("Balancer mode: node-add"), "{status}");
    assert!(status.contains("State: balanced"), "{status}");
    assert!(
        status.contains("Replicas per broker: 1=3 2=3 3=3 4=3"),
        "{status}"
    );
    let active = cluster
        .controller_leader()
        .await
        .expect("controller leader");
    let metrics = admin_get(cluster.node(active).admin_port, "/metrics")
        .expect("metrics")
        .1;
    assert!(
        metrics.lines().any(|l| l == "strom_balancer_state 1"),
        "balanced: {metrics}"
    );
}

/// `balancer.mode=continuous`: a broker killed for longer than
/// `balancer.node.unavailable.timeout.ms` has its replicas moved to the
/// available brokers, and the partition is fully replicated again without
/// it, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn continuous_balancer_moves_replicas_off_an_unavailable_broker() {
    let mut cluster = Cluster::start(
        3,
        ClusterOptions::default()
            .set("broker.session.timeout.ms", "3000")
            .set("broker.heartbeat.interval.ms", "500")
            .set("replica.lag.time.max.ms", "5000")
            .set("auto.leader.rebalance.enable", "false")
            .set("balancer.mode", "continuous")
            .set("balancer.node.unavailable.timeout.ms", "2000")
            .broker_only(1),
    )
    .await;
    let admin = admin(&cluster).await;
    create(&cluster, "stranded", &[&[1, 2, 4]]).await;
    let acked = fill(&cluster, "stranded", 50, 1000).await;
    let started = Instant::now();
    cluster.kill(4);
    let healed = wait_until(Duration::from_secs(60), || async {
        let Ok(moving) = admin.list_partition_reassignments(None).await else {
            return false;
        };
        let Ok(t) = admin.describe_topics(&["stranded".to_owned()]).await else {
            return false;
        };
        let p = &t[0].partitions[0];
        moving.is_empty() && p.replicas.len() == 3 && !p.replicas.contains(&4) && p.isr.len() == 3
    })
    .await;
    assert!(
        healed,
        "the replica on 4 was not moved: {:?}\n{}",
        admin.describe_topics(&["stranded".to_owned()]).await,
        cluster.dump_logs()
    );
    // Not before the broker was unavailable for the timeout (plus its
    // session timeout, before which it is not known to be gone).
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    check_nothing_lost(&cluster, "stranded", &acked).await;
    let status = strom_ok(&cluster, &["balancer", "status"]);
    assert!(status.contains("Balancer mode: continuous"), "{status}");
}

/// Waits until the controller has `id` fenced.
async fn wait_fenced(cluster: &Cluster, id: i32) -> bool {
    wait_until(Duration::from_secs(20), || async {
        cluster.describe().await.is_some_and(|d| {
            d.brokers
                .iter()
                .any(|b| b.id == id && b.state == strom_proto::v1::BrokerState::Fenced as i32)
        })
    })
    .await
}

/// `strom brokers recommission` cancels the decommission's unfinished moves
/// (KIP-455 cancel: back to the original replicas), and `strom brokers
/// unregister` (KIP-631) removes a drained broker only once it is stopped,
/// refusing with one typed line naming why before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recommission_cancels_unfinished_moves_and_a_drained_stopped_broker_unregisters() {
    let mut cluster = Cluster::start(3, options()).await;
    let admin = admin(&cluster).await;
    create(&cluster, "slow", &[&[4, 5]]).await;
    cluster
        .create_topic_assigned(1, "kept", &[&[6, 1]], &[])
        .await
        .expect("create topic");
    let acked = fill(&cluster, "slow", 200, 1000).await;
    // Throttle every move to 100 kB/s so the drain of 2 MB takes a while.
    strom_ok(
        &cluster,
        &[
            "configs",
            "alter",
            "--entity-type",
            "brokers",
            "--entity-default",
            "--add-config",
            "leader.replication.throttled.rate=100000,follower.replication.throttled.rate=100000",
        ],
    );
    strom_ok(
        &cluster,
        &[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "slow",
            "--add-config",
            "leader.replication.throttled.replicas=*,follower.replication.throttled.replicas=*",
        ],
    );
    strom_ok(&cluster, &["brokers", "decommission", "--broker-id", "4"]);
    let moving = wait_until(Duration::from_secs(20), || async {
        admin
            .list_partition_reassignments(None)
            .await
            .is_ok_and(|l| l.iter().any(|r| r.removing_replicas == [4]))
    })
    .await;
    assert!(moving, "the decommission did not start moving slow-0");
    strom_ok(&cluster, &["brokers", "recommission", "--broker-id", "4"]);
    assert!(
        admin
            .list_partition_reassignments(None)
            .await
            .expect("list")
            .is_empty(),
        "the unfinished move is cancelled"
    );
    let (mut r, _) = replicas(&admin, "slow", 0).await;
    r.sort();
    assert_eq!(r, vec![4, 5], "back to the original replicas");
    let described = strom_ok(&cluster, &["--output", "json", "brokers", "describe"]);
    assert!(
        !described.contains(r#""decommissioning":true"#),
        "{described}"
    );

    // Unregistering is refused while the broker is alive, or hosts replicas.
    let refused = |cluster: &Cluster, id: &str, code: &str, why: &str| {
        let out = strom(cluster, &["brokers", "unregister", "--broker-id", id]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "unregister {id}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("error: {code}: ")), "{err}");
        assert!(err.contains(why), "{err}");
    };
    refused(&cluster, "4", "INVALID_REQUEST", "alive");
    refused(&cluster, "99", "BROKER_ID_NOT_REGISTERED", "99");
    cluster.kill(6);
    assert!(wait_fenced(&cluster, 6).await, "6 fenced");
    refused(
        &cluster,
        "6",
        "INVALID_REQUEST",
        "still hosts 1 replicas (kept-0)",
    );

    // Drained (unthrottled now) and stopped, 4 goes.
    for (kind, name, keys) in [
        (
            "brokers",
            None,
            "leader.replication.throttled.rate,follower.replication.throttled.rate",
        ),
        (
            "topics",
            Some("slow"),
            "leader.replication.throttled.replicas,follower.replication.throttled.replicas",
        ),
    ] {
        let mut args = vec!["configs", "alter", "--entity-type", kind];
        match name {
            Some(n) => args.extend(["--entity-name", n]),
            None => args.push("--entity-default"),
        }
        args.extend(["--delete-config", keys]);
        strom_ok(&cluster, &args);
    }
    strom_ok(
        &cluster,
        &["brokers", "decommission", "--broker-id", "4", "--wait"],
    );
    refused(&cluster, "4", "INVALID_REQUEST", "alive");
    cluster.kill(4);
    assert!(wait_fenced(&cluster, 4).await, "4 fenced");
    let out = strom_ok(&cluster, &["brokers", "unregister", "--broker-id", "4"]);
    assert!(out.contains("Broker 4 is unregistered."), "{out}");
    let described = strom_ok(&cluster, &["--output", "json", "brokers", "describe"]);
    let rows: serde_json::Value = serde_json::from_str(described.trim()).expect("json");
    assert!(
        !rows.as_array().expect("rows").iter().any(|r| r["id"] == 4),
        "{described}"
    );
    let (r, isr) = replicas(&admin, "slow", 0).await;
    assert!(!r.contains(&4), "{r:?}");
    assert_eq!(isr.len(), 2, "{r:?} isr {isr:?}");
    check_nothing_lost(&cluster, "slow", &acked).await;
}

/// Leaders per broker of `topic` (offline partitions left out), as the
/// controller sees them.
async fn leader_counts(
    admin: &Admin,
    topic: &str,
) -> Option<std::collections::BTreeMap<i32, usize>> {
    let t = admin.describe_topics(&[topic.to_owned()]).await.ok()?;
    let mut counts = std::collections::BTreeMap::new();
    for p in &t.first()?.partitions {
        *counts.entry(p.leader?).or_insert(0) += 1;
    }
    Some(counts)
}

/// The sum of `series` (a metric name with its labels) on the active
/// controller's `/metrics`, 0 when absent.
async fn controller_metric(cluster: &Cluster, series: &str) -> f64 {
    let Some(active) = cluster.controller_leader().await else {
        return 0.0;
    };
    admin_get(cluster.node(active).admin_port, "/metrics")
        .map(|(_, body)| {
            body.lines()
                .filter_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0)
}

/// `balancer.mode=continuous`, leaders per broker: the leaders of six
/// partitions, skewed onto broker 1 (replicas reordered with 1 first, then
/// a preferred election) while an acks=all producer writes to each, become
/// even within one per broker and stay so; no acknowledged record is lost
/// and no producer sees anything but retriable leader changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn continuous_balancer_evens_skewed_leaders_under_acks_all_load() {
    const PARTITIONS: i32 = 6;
    const TOPIC: &str = "leaders";
    let cluster = Cluster::start(
        3,
        ClusterOptions::default()
            .set("broker.session.timeout.ms", "3000")
            .set("broker.heartbeat.interval.ms", "500")
            .set("replica.lag.time.max.ms", "5000")
            .set("auto.leader.rebalance.enable", "false")
            .set("balancer.mode", "continuous"),
    )
    .await;
    let admin = admin(&cluster).await;
    // Even to begin with: each broker first in two partitions.
    let rotations: [[i32; 3]; 3] = [[1, 2, 3], [2, 3, 1], [3, 1, 2]];
    let assignment: Vec<&[i32]> = (0..PARTITIONS as usize)
        .map(|p| &rotations[p % 3][..])
        .collect();
    cluster
        .create_topic_assigned(1, TOPIC, &assignment, &[("min.insync.replicas", "2")])
        .await
        .expect("create topic");
    let addrs = Addrs::of(&cluster);
    for p in 0..PARTITIONS {
        wait_leader_serving(&addrs, TOPIC, p, Duration::from_secs(20))
            .await
            .expect("leader serves");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..PARTITIONS)
        .map(|p| start_producer(Addrs::of(&cluster), TOPIC, p, 200, stop.clone()))
        .collect();
    // Every replica in sync, so broker 1 can be elected everywhere.
    let in_sync = wait_until(Duration::from_secs(30), || async {
        admin
            .describe_topics(&[TOPIC.to_owned()])
            .await
            .is_ok_and(|t| t[0].partitions.iter().all(|p| p.isr.len() == 3))
    })
    .await;
    assert!(in_sync, "replicas not in sync\n{}", cluster.dump_logs());
    let moved_before = controller_metric(
        &cluster,
        r#"strom_balancer_partitions_moved_total{goal="leaders"}"#,
    )
    .await;

    // Skew: broker 1 first in every replica list (a reorder, applied at
    // once), then a preferred election moves every leadership to it.
    let skewed: Vec<(TopicPartition, Option<Vec<i32>>)> = (0..PARTITIONS)
        .map(|p| {
            let mut r = rotations[p as usize % 3].to_vec();
            r.retain(|b| *b != 1);
            r.insert(0, 1);
            (TopicPartition::new(TOPIC, p), Some(r))
        })
        .collect();
    let results = admin
        .alter_partition_reassignments(skewed)
        .await
        .expect("reorder the replicas");
    assert!(results.iter().all(|r| r.error.is_none()), "{results:?}");
    let partitions: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    let elected = admin
        .elect_leaders(strom_client::ElectionType::Preferred, Some(partitions))
        .await
        .expect("preferred election");
    // Broker 1 now leads the four partitions it did not lead (it already
    // led the other two: ELECTION_NOT_NEEDED). Two are enough to skew the
    // counts by two (4/1/1), should a replica have dropped out of an ISR
    // under the load.
    let won = elected.iter().filter(|r| r.error.is_none()).count();
    assert!(won >= 2, "the skew did not happen: {elected:?}");

    // The balancer evens them out: 2 per broker.
    let even = |c: &std::collections::BTreeMap<i32, usize>| {
        c.values().sum::<usize>() == PARTITIONS as usize
            && (1..=3).all(|b| c.get(&b).copied().unwrap_or(0) == 2)
    };
    let evened = wait_until(Duration::from_secs(30), || async {
        leader_counts(&admin, TOPIC).await.is_some_and(|c| even(&c))
            && controller_metric(
                &cluster,
                r#"strom_balancer_partitions_moved_total{goal="leaders"}"#,
            )
            .await
                > moved_before
    })
    .await;
    assert!(
        evened,
        "leaders not evened by the balancer: {:?}, moves {}\n{}",
        leader_counts(&admin, TOPIC).await,
        controller_metric(
            &cluster,
            r#"strom_balancer_partitions_moved_total{goal="leaders"}"#
        )
        .await,
        cluster.dump_logs()
    );
    // ... and leaves them so: nothing is left to do.
    let moved = controller_metric(
        &cluster,
        r#"strom_balancer_partitions_moved_total{goal="leaders"}"#,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = leader_counts(&admin, TOPIC).await.expect("leaders");
    assert!(even(&counts), "{counts:?}");
    assert_eq!(
        controller_metric(
            &cluster,
            r#"strom_balancer_partitions_moved_total{goal="leaders"}"#
        )
        .await,
        moved,
        "the balancer kept moving leaders"
    );

    stop.store(true, Ordering::Relaxed);
    for (p, producer) in (0..PARTITIONS).zip(producers) {
        let acked = producer.await.expect("producer");
        assert!(!acked.is_empty(), "{TOPIC}-{p}: nothing acknowledged");
        check_partition_lost_nothing(&cluster, TOPIC, p, &acked).await;
    }
}

/// Tests that put every node's data dir on a tmpfs of its own (root
/// mounts them); `scripts/test` skips them without root
/// (`strom_test_skips` in scripts/env.sh) and `.ci/run` requires them.
mod needs_root {
    use super::*;

    /// Each node's file system.
    const DISK: u64 = 256 << 20;
    /// `balancer.disk.threshold.percent`.
    const THRESHOLD: u64 = 50;
    /// Bytes of one fill batch (10 records of 100 kB).
    const BATCH: u64 = 1_000_000;

    /// Every broker's reported disk use (bytes in use, size), once all
    /// three have reported.
    async fn disks(admin: &Admin) -> Option<std::collections::BTreeMap<i32, (u64, u64)>> {
        let c = admin.describe_cluster().await.ok()?;
        let disks: std::collections::BTreeMap<i32, (u64, u64)> = c
            .brokers
            .iter()
            .filter_map(|b| Some((b.id, b.disk?)))
            .collect();
        (disks.len() == 3).then_some(disks)
    }

    /// `balancer.mode=continuous`, disk threshold: each node's data dir is
    /// a tmpfs of its own, so each broker reports the use of its own file
    /// system. Broker 1 holds a large and a small partition, broker 2 a
    /// medium one, broker 3 an empty one (replica counts even: only the
    /// disk goal has work). Once broker 1's disk is over
    /// `balancer.disk.threshold.percent`, the balancer moves the least data
    /// that takes it back under: the small partition (the large one would
    /// too, copying more), to the broker with the most free space (3, not
    /// 2); 3 stays under the threshold, nothing else moves and nothing
    /// acknowledged is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn continuous_balancer_moves_the_least_data_off_a_disk_over_the_threshold() {
        const TOPIC: &str = "disk";
        let cluster = Cluster::start(
            3,
            ClusterOptions::default()
                .set("broker.session.timeout.ms", "3000")
                .set("broker.heartbeat.interval.ms", "500")
                .set("replica.lag.time.max.ms", "5000")
                .set("auto.leader.rebalance.enable", "false")
                .set("balancer.mode", "continuous")
                .set("balancer.disk.threshold.percent", &THRESHOLD.to_string())
                .tmpfs_data_dirs(DISK),
        )
        .await;
        let admin = admin(&cluster).await;
        cluster
            .create_topic_assigned(1, TOPIC, &[&[1], &[1], &[2], &[3]], &[])
            .await
            .expect("create topic");
        let addrs = Addrs::of(&cluster);
        for p in 0..4 {
            wait_leader_serving(&addrs, TOPIC, p, Duration::from_secs(20))
                .await
                .expect("leader serves");
        }
        let reported = wait_until(Duration::from_secs(20), || async {
            disks(&admin).await.is_some()
        })
        .await;
        assert!(reported, "not every broker reports its disk use");
        let before = disks(&admin).await.expect("disks");
        println!("disk use before filling: {before:?}");
        for (id, (used, total)) in &before {
            // Each node reports its own tmpfs, not the machine's disk.
            assert_eq!(*total, DISK, "broker {id}: {used}/{total}");
        }
        let limit = DISK * THRESHOLD / 100;
        let used = |id: i32| before[&id].0;
        // Broker 1 ends `OVER` past the threshold with both partitions, and
        // back under it without either: the small one (larger than `OVER`)
        // is the least data to move. 3 has the most free space (2 holds the
        // medium one) and would stay under the threshold with either.
        const OVER: u64 = 4 << 20;
        let small = 16 * BATCH;
        let medium = 20 * BATCH;
        let large = (limit + OVER)
            .checked_sub(used(1) + small)
            .expect("broker 1 starts under the threshold");
        assert!(
            large > small + BATCH
                && used(3) + large + OVER <= limit
                && used(3) < used(2) + medium
                && small > OVER + 2 * BATCH,
            "sizes do not fit the test's disks: {before:?}, large {large}"
        );
        let batches = |bytes: u64| usize::try_from(bytes.div_ceil(BATCH)).expect("fits");
        // 2 first (less free space than 3), then 1's large partition, then
        // its small one, which takes it over the threshold.
        let acked_medium = fill_partition(&cluster, TOPIC, 2, batches(medium), 100_000).await;
        let acked_large = fill_partition(&cluster, TOPIC, 0, batches(large), 100_000).await;
        let acked_small = fill_partition(&cluster, TOPIC, 1, batches(small), 100_000).await;

        let moved = wait_until(Duration::from_secs(90), || async {
            let Ok(moving) = admin.list_partition_reassignments(None).await else {
                return false;
            };
            let Some(d) = disks(&admin).await else {
                return false;
            };
            moving.is_empty()
                && replicas(&admin, TOPIC, 1).await == (vec![3], vec![3])
                && d[&1].0 <= limit
        })
        .await;
        assert!(
            moved,
            "the small partition did not leave broker 1: {:?}, disks {:?} (limit {limit})\n{}",
            admin.describe_topics(&[TOPIC.to_owned()]).await,
            disks(&admin).await,
            cluster.dump_logs()
        );
        let after = disks(&admin).await.expect("disks");
        println!("disk use after the move: {after:?} (limit {limit})");
        assert!(after.values().all(|(used, _)| *used <= limit), "{after:?}");
        // Only the disk goal moved anything, and only the small partition.
        assert!(
            controller_metric(
                &cluster,
                r#"strom_balancer_partitions_moved_total{goal="disk_threshold"}"#
            )
            .await
                >= 1.0
        );
        for (p, want) in [(0, 1), (2, 2), (3, 3)] {
            assert_eq!(
                replicas(&admin, TOPIC, p).await.0,
                vec![want],
                "{TOPIC}-{p}"
            );
        }
        for (p, acked) in [(0, &acked_large), (1, &acked_small), (2, &acked_medium)] {
            check_partition_lost_nothing(&cluster, TOPIC, p, acked).await;
        }
        let moved_log = cluster
            .node(1)
            .data_dir
            .join("logs")
            .join(format!("{TOPIC}-1"));
        let gone = wait_until(Duration::from_secs(20), || async { !moved_log.exists() }).await;
        assert!(gone, "broker 1 kept the moved replica's log");
    }
}
