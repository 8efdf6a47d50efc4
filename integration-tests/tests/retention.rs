//! Retention and DeleteRecords on three real nodes: segments expire by
//! time (a quiet partition's last segment too, rolled by `segment.ms`) and
//! by size on every replica; consumers below the new log start are reset
//! by `auto.offset.reset` or told the valid range; `strom delete-records`
//! moves the low watermark everywhere and refuses bad input, changing
//! nothing; `retention.ms` changed live (`strom configs alter`) applies.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use strom_client::{Consumer, ConsumerConfig, ErrorCode, Properties, TopicPartition};
use strom_integration_tests::data::{Addrs, batch, produce_once, wait_leader_serving};
use strom_integration_tests::{Cluster, ClusterOptions, admin_get, binary, wait_until};

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false")
        .set("log.retention.check.interval.ms", "200")
}

/// Creates `topic` (three replicas, 1 KiB segments, `configs`) and waits
/// for each partition's leader.
async fn create(cluster: &Cluster, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut all = vec![("segment.bytes", "1024"), ("min.insync.replicas", "2")];
    all.extend_from_slice(configs);
    cluster
        .create_topic(1, topic, partitions, 3, &all)
        .await
        .expect("create topic");
    let addrs = Addrs::of(cluster);
    for p in 0..partitions {
        wait_leader_serving(&addrs, topic, p, Duration::from_secs(20))
            .await
            .expect("leader serves");
    }
}

/// Appends `n` batches of 4 records of 200 bytes (one batch per 1 KiB
/// segment) with acks=all; returns the log end offset.
async fn produce(cluster: &Cluster, topic: &str, partition: i32, n: usize) -> i64 {
    let addrs = Addrs::of(cluster);
    let leader = wait_leader_serving(&addrs, topic, partition, Duration::from_secs(20))
        .await
        .expect("leader serves");
    let mut end = 0;
    for i in 0..n {
        let values: Vec<Bytes> = (0..4)
            .map(|j| Bytes::from(format!("{i:04}-{j}-{}", "v".repeat(193))))
            .collect();
        let base = produce_once(
            &addrs,
            leader,
            topic,
            partition,
            batch(&values),
            -1,
            Duration::from_secs(10),
        )
        .await
        .expect("produce");
        end = base + 4;
    }
    end
}

/// `(base offset, bytes)` of each segment of node `id`'s replica, and
/// whether leftovers of deleted segments are there.
fn segments(cluster: &Cluster, id: i32, topic: &str, partition: i32) -> (Vec<(i64, u64)>, bool) {
    let dir: PathBuf = cluster
        .node(id)
        .data_dir
        .join("logs")
        .join(format!("{topic}-{partition}"));
    let mut out = Vec::new();
    let mut leftovers = false;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".deleted") {
            leftovers = true;
        }
        if let Some(base) = name
            .strip_suffix(".log")
            .and_then(|b| b.parse::<i64>().ok())
        {
            let size = entry.metadata().map_or(0, |m| m.len());
            out.push((base, size));
        }
    }
    out.sort_unstable();
    (out, leftovers)
}

/// `strom_log_start_offset` of `topic`-`partition` on node `id`.
async fn metric_log_start(cluster: &Cluster, id: i32, topic: &str, partition: i32) -> Option<i64> {
    let port = cluster.node(id).admin_port;
    let (status, body) = tokio::task::spawn_blocking(move || admin_get(port, "/metrics"))
        .await
        .ok()??;
    if status != 200 {
        return None;
    }
    let labels = [
        format!("topic=\"{topic}\""),
        format!("partition=\"{partition}\""),
    ];
    body.lines()
        .filter(|l| l.starts_with("strom_log_start_offset{"))
        .find(|l| labels.iter().all(|label| l.contains(label.as_str())))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Whether every node's replica starts at `start` (metrics) and holds no
/// segment wholly below it, nor leftovers, on disk.
async fn replicas_start_at(cluster: &Cluster, topic: &str, partition: i32, start: i64) -> bool {
    for id in cluster.nodes.keys().copied() {
        if metric_log_start(cluster, id, topic, partition).await != Some(start) {
            return false;
        }
        let (segments, leftovers) = segments(cluster, id, topic, partition);
        let below = segments.windows(2).any(|w| w[1].0 <= start);
        if leftovers || below || segments.first().is_none_or(|s| s.0 > start) {
            return false;
        }
    }
    true
}

fn consumer_config(cluster: &Cluster, reset: &str) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(&cluster.bootstrap()).expect("consumer config");
    config.set("auto.offset.reset", reset).expect("setting");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_segments_expire_by_time_and_size_on_every_replica() {
    let cluster = Cluster::start(3, options()).await;
    create(
        &cluster,
        "expire",
        1,
        &[("retention.ms", "3000"), ("segment.ms", "2000")],
    )
    .await;
    create(&cluster, "size", 1, &[("retention.bytes", "4000")]).await;
    let end = produce(&cluster, "expire", 0, 12).await;
    let size_end = produce(&cluster, "size", 0, 12).await;
    assert_eq!((end, size_end), (48, 48));

    // By time: every closed segment expires, then the quiet partition's
    // last one is rolled by segment.ms and expires too, on every replica.
    let emptied = wait_until(Duration::from_secs(40), || async {
        replicas_start_at(&cluster, "expire", 0, end).await
            && cluster
                .nodes
                .keys()
                .all(|id| segments(&cluster, *id, "expire", 0).0 == [(end, 0)])
    })
    .await;
    assert!(
        emptied,
        "expire-0 not emptied on every replica: {:?}\n{}",
        cluster
            .nodes
            .keys()
            .map(|id| (*id, segments(&cluster, *id, "expire", 0)))
            .collect::<Vec<_>>(),
        cluster.dump_logs()
    );

    // By size: the oldest segments go while the log stays above 4000 bytes.
    let first_kept = AtomicI64::new(0);
    let trimmed = wait_until(Duration::from_secs(20), || async {
        let (node_1, _) = segments(&cluster, 1, "size", 0);
        let Some(&(start, first_size)) = node_1.first() else {
            return false;
        };
        first_kept.store(start, Ordering::Relaxed);
        let total: u64 = node_1.iter().map(|s| s.1).sum();
        start > 0
            && total >= 4000
            && total - first_size < 4000
            && replicas_start_at(&cluster, "size", 0, start).await
    })
    .await;
    let start = first_kept.load(Ordering::Relaxed);
    assert!(
        trimmed,
        "size-0 not trimmed on every replica: {:?}",
        cluster
            .nodes
            .keys()
            .map(|id| (*id, segments(&cluster, *id, "size", 0)))
            .collect::<Vec<_>>()
    );

    // A consumer below the start: reset to it (earliest), or told the
    // valid range (none).
    let tp = TopicPartition::new("size", 0);
    let mut consumer = Consumer::connect(consumer_config(&cluster, "earliest"))
        .await
        .expect("consumer");
    consumer.assign([tp.clone()]);
    assert_eq!(
        consumer
            .beginning_offsets(std::slice::from_ref(&tp))
            .await
            .expect("earliest")[&tp],
        start
    );
    consumer.seek(&tp, 0).expect("seek");
    let mut first = None;
    for _ in 0..50 {
        let records = consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll");
        if let Some(r) = records.first() {
            first = Some(r.offset);
            break;
        }
    }
    assert_eq!(first, Some(start), "reset to the log start");

    let mut strict = Consumer::connect(consumer_config(&cluster, "none"))
        .await
        .expect("consumer");
    strict.assign([tp.clone()]);
    strict.seek(&tp, 0).expect("seek");
    let mut failure = None;
    for _ in 0..50 {
        match strict.poll(Duration::from_millis(200)).await {
            Ok(records) => assert!(records.is_empty(), "nothing below the start"),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("out of range");
    assert_eq!(
        failure.code(),
        Some(ErrorCode::OffsetOutOfRange),
        "{failure}"
    );
    assert!(
        failure
            .to_string()
            .contains(&format!("valid offsets are {start} to {size_end}")),
        "{failure}"
    );
}

fn strom(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(binary("strom", "STROM_BIN"))
        .arg("--bootstrap-server")
        .arg(cluster.bootstrap())
        .args(args)
        .output()
        .expect("run strom")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn beginning_offsets(cluster: &Cluster, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer = Consumer::connect(consumer_config(cluster, "earliest"))
        .await
        .expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer
        .beginning_offsets(&tps)
        .await
        .expect("beginning offsets")
        .into_iter()
        .map(|(tp, o)| (tp.partition, o))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_cli_moves_low_watermarks_and_refuses_bad_input() {
    let cluster = Cluster::start(3, options()).await;
    create(&cluster, "dr", 2, &[]).await;
    create(&cluster, "kept", 1, &[("cleanup.policy", "compact")]).await;
    assert_eq!(produce(&cluster, "dr", 0, 10).await, 40);
    assert_eq!(produce(&cluster, "dr", 1, 3).await, 12);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = |name: &str, json: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, json).expect("write offsets file");
        path.to_string_lossy().into_owned()
    };

    // Refused, one line on stderr, exit 1, nothing changed.
    let missing = dir
        .path()
        .join("missing.json")
        .to_string_lossy()
        .into_owned();
    let cases = [
        (file("bad.json", "{\"version\":1,"), "INVALID_REQUEST"),
        (missing, "INVALID_REQUEST"),
        (
            file(
                "dup.json",
                r#"{"version":1,"partitions":[{"topic":"dr","partition":0,"offset":1},{"topic":"dr","partition":0,"offset":2}]}"#,
            ),
            "INVALID_REQUEST",
        ),
        (
            file(
                "unknown.json",
                r#"{"version":1,"partitions":[{"topic":"dr","partition":0,"offset":4},{"topic":"nope","partition":0,"offset":1}]}"#,
            ),
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
        (
            file(
                "nopart.json",
                r#"{"version":1,"partitions":[{"topic":"dr","partition":0,"offset":4},{"topic":"dr","partition":5,"offset":1}]}"#,
            ),
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
        (
            file(
                "beyond.json",
                r#"{"version":1,"partitions":[{"topic":"dr","partition":0,"offset":4},{"topic":"dr","partition":1,"offset":13}]}"#,
            ),
            "OFFSET_OUT_OF_RANGE",
        ),
        (
            file(
                "negative.json",
                r#"{"version":1,"partitions":[{"topic":"dr","partition":0,"offset":-5}]}"#,
            ),
            "OFFSET_OUT_OF_RANGE",
        ),
        (
            file(
                "compact.json",
                r#"{"version":1,"partitions":[{"topic":"kept","partition":0,"offset":0}]}"#,
            ),
            "POLICY_VIOLATION",
        ),
    ];
    for (path, code) in &cases {
        let c = &cluster;
        let out = tokio::task::block_in_place(|| {
            strom(c, &["delete-records", "--offset-json-file", path])
        });
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{path}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{path}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {code}: ")),
            "{path}: {stderr}"
        );
        assert!(text(&out.stdout).is_empty(), "{path}");
    }
    let beyond = tokio::task::block_in_place(|| {
        strom(
            &cluster,
            &["delete-records", "--offset-json-file", &cases[5].0],
        )
    });
    assert!(
        text(&beyond.stderr).contains("dr-1")
            && text(&beyond.stderr).contains("valid offsets are 0 to 12"),
        "{}",
        text(&beyond.stderr)
    );
    assert_eq!(
        beginning_offsets(&cluster, "dr", 2).await,
        BTreeMap::from([(0, 0), (1, 0)])
    );
    let usage = tokio::task::block_in_place(|| strom(&cluster, &["delete-records"]));
    assert_eq!(usage.status.code(), Some(2));

    // Accepted: Kafka's lines, then every replica follows.
    let good = file(
        "good.json",
        r#"{"version":1,"partitions":[{"topic":"dr","partition":0,"offset":21},{"topic":"dr","partition":1,"offset":-1}]}"#,
    );
    let out = tokio::task::block_in_place(|| {
        strom(&cluster, &["delete-records", "--offset-json-file", &good])
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Records delete operation completed:\npartition: dr-0\tlow_watermark: 21\npartition: dr-1\tlow_watermark: 12\n"
    );
    assert_eq!(
        beginning_offsets(&cluster, "dr", 2).await,
        BTreeMap::from([(0, 21), (1, 12)])
    );
    for (partition, start) in [(0, 21), (1, 12)] {
        let followed = wait_until(Duration::from_secs(20), || {
            replicas_start_at(&cluster, "dr", partition, start)
        })
        .await;
        assert!(
            followed,
            "dr-{partition}: {:?}",
            cluster
                .nodes
                .keys()
                .map(|id| (*id, segments(&cluster, *id, "dr", partition)))
                .collect::<Vec<_>>()
        );
    }

    // JSON output; going back changes nothing.
    let back = file(
        "back.json",
        r#"{"version":1,"partitions":[{"topic":"dr","partition":0,"offset":3}]}"#,
    );
    let out = tokio::task::block_in_place(|| {
        strom(
            &cluster,
            &[
                "--output",
                "json",
                "delete-records",
                "--offset-json-file",
                &back,
            ],
        )
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!([{"topic": "dr", "partition": 0, "low_watermark": 21}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_changed_live_takes_effect_on_every_replica() {
    let cluster = Cluster::start(3, options()).await;
    create(&cluster, "live", 1, &[]).await;
    let end = produce(&cluster, "live", 0, 6).await;
    // The default (7 days) keeps everything.
    assert_eq!(beginning_offsets(&cluster, "live", 1).await[&0], 0);

    let out = tokio::task::block_in_place(|| {
        strom(
            &cluster,
            &[
                "configs",
                "alter",
                "--entity-type",
                "topics",
                "--entity-name",
                "live",
                "--add-config",
                "retention.ms=1000,segment.ms=1000",
            ],
        )
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expired = wait_until(Duration::from_secs(30), || async {
        replicas_start_at(&cluster, "live", 0, end).await
    })
    .await;
    assert!(
        expired,
        "live-0 not expired after retention.ms changed: {:?}",
        cluster
            .nodes
            .keys()
            .map(|id| (*id, segments(&cluster, *id, "live", 0)))
            .collect::<Vec<_>>()
    );
    assert_eq!(beginning_offsets(&cluster, "live", 1).await[&0], end);
}
