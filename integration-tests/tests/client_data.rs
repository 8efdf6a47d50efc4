//! The Rust client library and the `strom produce` / `strom consume` CLI
//! against a real 3-node cluster.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use strom_client::{
    Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord, Properties, TopicPartition,
};
use strom_integration_tests::data::{Addrs, partition_state_any, wait_leader_serving};
use strom_integration_tests::{Cluster, ClusterOptions, binary, wait_until};

fn fast_options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false")
}

async fn create(cluster: &Cluster, topic: &str, partitions: i32) {
    cluster
        .create_topic(1, topic, partitions, 3, &[("min.insync.replicas", "2")])
        .await
        .expect("create topic");
    let addrs = Addrs::of(cluster);
    for p in 0..partitions {
        wait_leader_serving(&addrs, topic, p, Duration::from_secs(20))
            .await
            .expect("leader serves");
    }
}

/// Reads every partition of `topic` from the beginning to its current end:
/// `(partition, offset) -> value`.
async fn read_everything(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
) -> BTreeMap<(i32, i64), Bytes> {
    let mut config = ConsumerConfig::new(&cluster.bootstrap()).expect("consumer config");
    config
        .set("auto.offset.reset", "earliest")
        .expect("setting");
    let mut consumer = Consumer::connect(config).await.expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone());
    consumer.seek_to_beginning(&tps).expect("seek");
    let ends = consumer.end_offsets(&tps).await.expect("end offsets");
    let mut out = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut done = true;
        for tp in &tps {
            let end = ends.get(tp).copied().unwrap_or(0);
            if consumer.position(tp).await.expect("position") < end {
                done = false;
            }
        }
        if done {
            return out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "could not read {topic} to its end"
        );
        for r in consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll")
        {
            out.insert((r.partition, r.offset), r.value.unwrap_or_default());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_survives_controlled_shutdown_of_a_leader_without_errors_or_loss() {
    let mut cluster = Cluster::start(3, fast_options()).await;
    create(&cluster, "cs", 3).await;
    let mut config = ProducerConfig::new(&cluster.bootstrap()).expect("producer config");
    config.set("acks", "all").expect("acks");
    config.set("linger.ms", "2").expect("linger");
    let producer = Producer::connect(config).await.expect("producer");

    let queued = Arc::new(AtomicU32::new(0));
    let sender = {
        let producer = producer.clone();
        let queued = queued.clone();
        tokio::spawn(async move {
            let mut deliveries = Vec::new();
            for i in 0..3000u32 {
                queued.store(i, Ordering::Relaxed);
                let value = Bytes::from(format!("cs-{i}"));
                let record = ProducerRecord::new("cs")
                    .key(format!("k{i}"))
                    .value(value.clone());
                deliveries.push((value, producer.send(record).await.expect("queued")));
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            let mut acked = Vec::new();
            let mut errors = Vec::new();
            for (value, d) in deliveries {
                match d.await {
                    Ok(m) => acked.push((value, m.partition, m.offset)),
                    Err(e) => errors.push(format!("{value:?}: {e}")),
                }
            }
            (acked, errors)
        })
    };
    // The shutdown lands mid-stream: a third of the records queued.
    let midway = wait_until(Duration::from_secs(30), || async {
        queued.load(Ordering::Relaxed) >= 1000
    })
    .await;
    assert!(midway, "the producer queued 1000 records");
    let addrs = Addrs::of(&cluster);
    let (leader, _, _) = partition_state_any(&addrs, "cs", 0).await.expect("state");
    let status = cluster.terminate(leader, Duration::from_secs(30));
    assert!(status.success(), "controlled shutdown exit: {status:?}");
    let (acked, errors) = sender.await.expect("sender");
    producer.close().await.expect("close");
    assert!(
        errors.is_empty(),
        "the producer saw errors: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert_eq!(acked.len(), 3000);
    cluster.start_node(leader);
    let log = read_everything(&cluster, "cs", 3).await;
    for (value, partition, offset) in &acked {
        assert_eq!(
            log.get(&(*partition, *offset)),
            Some(value),
            "acknowledged {value:?} at {partition}/{offset}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_where_a_kafka_client_puts_them_and_timestamps_seek() {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    create(&cluster, "keys", 6).await;
    let producer = Producer::connect(ProducerConfig::new(&cluster.bootstrap()).expect("config"))
        .await
        .expect("producer");
    // Kafka's murmur2 test vectors: toPositive(murmur2(key)) % 6.
    let vectors: [(&str, i32); 3] = [
        ("21", -973932308),
        ("foobar", -790332482),
        ("abc", 479470107),
    ];
    for (key, hash) in vectors {
        let want = (hash & 0x7fff_ffff) % 6;
        let record = ProducerRecord::new("keys")
            .key(key)
            .value("v")
            .timestamp(1_000);
        let meta = producer
            .send(record)
            .await
            .expect("queued")
            .await
            .expect("delivered");
        assert_eq!(meta.partition, want, "key {key}");
    }
    let later = ProducerRecord::new("keys")
        .key("abc")
        .value("late")
        .timestamp(5_000);
    let meta = producer
        .send(later)
        .await
        .expect("queued")
        .await
        .expect("delivered");
    producer.close().await.expect("close");

    let mut consumer =
        Consumer::connect(ConsumerConfig::new(&cluster.bootstrap()).expect("config"))
            .await
            .expect("consumer");
    let tp = TopicPartition::new("keys", meta.partition);
    consumer.assign([tp.clone()]);
    consumer
        .seek_to_timestamp(&tp, 2_000)
        .await
        .expect("seek by time");
    assert_eq!(consumer.position(&tp).await.expect("position"), meta.offset);
    let mut got = Vec::new();
    while got.is_empty() {
        got = consumer.poll(Duration::from_secs(2)).await.expect("poll");
    }
    assert_eq!(got[0].value.as_deref(), Some(&b"late"[..]));
    assert_eq!(got[0].timestamp, 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_produce_and_consume_round_trip_as_json() {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    create(&cluster, "cli-data", 1).await;
    let mut child = Command::new(binary("strom", "STROM_BIN"))
        .args([
            "--bootstrap-server",
            &cluster.bootstrap(),
            "--output",
            "json",
        ])
        .args(["produce", "--topic", "cli-data", "--key-separator", ":"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strom produce");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a:one\nb:two\nc:three\n")
        .expect("write stdin");
    let out = child.wait_with_output().expect("strom produce");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acks: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(acks.len(), 3);
    assert_eq!(acks[2]["offset"], 2);
    assert_eq!(acks[2]["key"], "c");

    let out = Command::new(binary("strom", "STROM_BIN"))
        .args([
            "--bootstrap-server",
            &cluster.bootstrap(),
            "--output",
            "json",
        ])
        .args([
            "consume",
            "--topic",
            "cli-data",
            "--from-beginning",
            "--max-messages",
            "3",
        ])
        .output()
        .expect("strom consume");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let values: Vec<&str> = records
        .iter()
        .map(|r| r["value"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(values, ["one", "two", "three"]);
    assert_eq!(records[1]["key"], "b");
    assert_eq!(records[1]["offset"], 1);

    // A bad offset is one line on stderr and exit 1.
    let out = Command::new(binary("strom", "STROM_BIN"))
        .args(["--bootstrap-server", &cluster.bootstrap()])
        .args([
            "consume",
            "--topic",
            "cli-data",
            "--partition",
            "0",
            "--offset",
            "99",
            "--max-messages",
            "1",
        ])
        .output()
        .expect("strom consume");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: OFFSET_OUT_OF_RANGE"), "{err}");
}

/// How often each value of `log` appears.
fn copies(log: &BTreeMap<(i32, i64), Bytes>) -> BTreeMap<Bytes, usize> {
    let mut count = BTreeMap::new();
    for value in log.values() {
        *count.entry(value.clone()).or_insert(0) += 1;
    }
    count
}

/// A producer whose requests time out after 1 s, so that a stalled acks=all
/// wait makes it resend batches the leader already wrote.
async fn impatient_producer(cluster: &Cluster, idempotence: &str) -> Producer {
    let mut config = ProducerConfig::new(&cluster.bootstrap()).expect("producer config");
    for (k, v) in [
        ("request.timeout.ms", "1000"),
        ("delivery.timeout.ms", "60000"),
        ("linger.ms", "0"),
        ("enable.idempotence", idempotence),
    ] {
        config.set(k, v).expect("setting");
    }
    Producer::connect(config).await.expect("producer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resent_batches_are_written_once_only_by_an_idempotent_producer() {
    // A paused follower stays in the ISR for 10 s, holding acks=all while
    // the producer's requests time out and are resent.
    let mut cluster =
        Cluster::start(3, fast_options().set("replica.lag.time.max.ms", "10000")).await;
    let mut seen = BTreeMap::new();
    for (topic, idempotence) in [("resend-idem", "true"), ("resend-plain", "false")] {
        // The pause of the previous round outlasts the 3 s session: that
        // follower is fenced until its heartbeats are answered again.
        cluster.wait_ready(Duration::from_secs(30)).await;
        create(&cluster, topic, 1).await;
        let producer = impatient_producer(&cluster, idempotence).await;
        let record = |i: u32| ProducerRecord::new(topic).value(format!("{topic}-{i}"));
        for i in 0..5 {
            producer
                .send(record(i))
                .await
                .expect("queued")
                .await
                .expect("delivered before the pause");
        }
        let addrs = Addrs::of(&cluster);
        let (leader, _, isr) = partition_state_any(&addrs, topic, 0).await.expect("state");
        let follower = *isr.iter().find(|id| **id != leader).expect("a follower");
        cluster.pause(follower);
        let mut deliveries = Vec::new();
        for i in 5..25 {
            deliveries.push(producer.send(record(i)).await.expect("queued"));
        }
        tokio::time::sleep(Duration::from_millis(3500)).await;
        cluster.resume(follower);
        for d in deliveries {
            d.await.expect("delivered once the follower is back");
        }
        producer.close().await.expect("close");
        let log = read_everything(&cluster, topic, 1).await;
        seen.insert(topic, copies(&log));
    }
    let idem = &seen["resend-idem"];
    assert_eq!(idem.len(), 25, "every record is there");
    let twice: Vec<_> = idem.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    // The control: the same stall makes a plain producer write copies, so
    // the scenario does resend written batches.
    let plain = &seen["resend-plain"];
    assert_eq!(plain.len(), 25);
    assert!(
        plain.values().any(|n| *n > 1),
        "the plain producer wrote no copy: the stall resent nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_writes_each_record_exactly_once_while_leaders_are_killed() {
    let mut cluster = Cluster::start(3, fast_options()).await;
    create(&cluster, "chase-idem", 3).await;
    let mut config = ProducerConfig::new(&cluster.bootstrap()).expect("producer config");
    config.set("request.timeout.ms", "3000").expect("setting");
    config.set("linger.ms", "2").expect("setting");
    let producer = Producer::connect(config).await.expect("producer");
    assert!(producer_is_idempotent_by_default());

    let queued = Arc::new(AtomicU32::new(0));
    let sender = {
        let producer = producer.clone();
        let queued = queued.clone();
        tokio::spawn(async move {
            let mut deliveries = Vec::new();
            for i in 0..4000u32 {
                queued.store(i, Ordering::Relaxed);
                let value = Bytes::from(format!("idem-{i}"));
                let record = ProducerRecord::new("chase-idem")
                    .key(format!("k{i}"))
                    .value(value.clone());
                deliveries.push((value, producer.send(record).await.expect("queued")));
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let mut acked = Vec::new();
            let mut errors = Vec::new();
            for (value, d) in deliveries {
                match d.await {
                    Ok(m) => acked.push((value, m.partition, m.offset)),
                    Err(e) => errors.push(format!("{value:?}: {e}")),
                }
            }
            (acked, errors)
        })
    };
    let addrs = Addrs::of(&cluster);
    for round in 1..=2u32 {
        let midway = wait_until(Duration::from_secs(60), || async {
            queued.load(Ordering::Relaxed) >= 1200 * round
        })
        .await;
        assert!(midway, "the producer queued {} records", 1200 * round);
        let (leader, _, _) = partition_state_any(&addrs, "chase-idem", 0)
            .await
            .expect("state");
        cluster.kill(leader);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cluster.start_node(leader);
    }
    let (acked, errors) = sender.await.expect("sender");
    producer.close().await.expect("close");
    assert!(
        errors.is_empty(),
        "the producer saw errors: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert_eq!(acked.len(), 4000);
    let log = read_everything(&cluster, "chase-idem", 3).await;
    for (value, partition, offset) in &acked {
        assert_eq!(
            log.get(&(*partition, *offset)),
            Some(value),
            "acknowledged {value:?} at {partition}/{offset}"
        );
    }
    let count = copies(&log);
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    assert_eq!(count.len(), 4000, "nothing else in the log");
}

fn producer_is_idempotent_by_default() -> bool {
    ProducerConfig::new("127.0.0.1:1")
        .map(|c| c.idempotence())
        .unwrap_or(false)
}
