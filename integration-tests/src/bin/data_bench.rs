//! Data-path benchmarks on a real local three-node cluster, driving
//! `strom perf produce` / `strom perf consume` (the numbers in
//! docs/benchmarks.md come from here):
//!
//! * `throughput`: 1 KiB and 100 B records; RF=3 acks=all (min ISR 2) and
//!   RF=1 acks=1; 1 and 6 partitions. Each case runs unthrottled, then at
//!   50% of the rate it reached: three runs of the producer alone (produce
//!   latency, as kafka-producer-perf-test measures it; the median run by
//!   p99 is reported, with each run's p99), and one with a tailing
//!   `perf consume --from-latest` measuring end-to-end latency. Each run
//!   starts after `sync`, so none pays for the writeback of the one before.
//!   The brokers run with `log.cache.drop.behind.bytes` (16 MiB; set with
//!   `--cache-drop-behind BYTES`, 0 for the default of keeping the page
//!   cache): on the benchmark VM, whose host takes back freed guest memory,
//!   a page cache that grows into all free memory costs host faults on
//!   every append (docs/benchmarks.md, "Page cache on a reclaiming VM").
//! * `failover`: kill -9 the partition leader during a steady acks=all
//!   produce; detection (kill → broker fenced), election (kill → new leader
//!   in metadata) and client recovery (longest produce stall) per trial.
//!
//! * `failover-many`: partition-leader failover with many partitions per
//!   broker (`--partitions N`, RF=3 on three nodes, so every broker hosts N
//!   replicas and leads about N/3): kill -9 the broker leading the most,
//!   then time fencing, the election of every partition it led, and until
//!   each of them accepts an acks=all produce at its new leader. What the
//!   partition count adds is "writable after fencing" at N against N=1.
//!
//! * `durable`: `write.caching=false` against the default in the same run,
//!   RF=3 acks=all 1 KiB on 1 and 6 partitions (unthrottled, then p99 at
//!   50% load), beside one fdatasync per record on the same disk.
//!
//! * `idempotence`: the idempotent producer against a plain one, same run.
//!
//! * `transactions` (issue 22): `strom perf produce --transactional-id
//!   --transaction-duration-ms 100` (a commit every 100 ms) against the
//!   same non-transactional (idempotent) producer, same run, RF=3
//!   acks=all 1 KiB on 1 and 6 partitions, unthrottled: the throughput
//!   ratio.
//!
//! * `txn-latency` (issue 22): transactions of one 1 KiB record per
//!   partition, over 1 and 10 partitions (RF=3), one after another through
//!   the Rust client; the time from `begin_transaction` to the commit's
//!   acknowledgement, p50 / p99 / max over `--transactions N` (1,000).
//!
//! * `compaction`: produce p99 at 50% load on one topic while the log
//!   cleaner keeps cleaning another, against the same background load on a
//!   delete-policy topic (nothing to clean).
//!
//! * `leader-moves` (issue 20): leadership moves per second when the
//!   balancer (`balancer.mode=continuous`, its leaders-per-broker goal)
//!   rebalances the leaders of `--partitions N` (1,000) partitions, RF=3 on
//!   three brokers, all created led by broker 1: moves counted by
//!   `strom_balancer_partitions_moved_total{goal="leaders"}`, timed from
//!   the topic's creation until every node's metadata shows the leaders
//!   even, and until every moved partition's new leader serves it.
//!
//! * `move-throughput` (issue 20): an unthrottled reassignment of
//!   `--bytes N` (1 GiB) over four partitions, RF=1, from broker 1 to
//!   broker 4, against a raw copy (read, write, fsync) of the same segment
//!   files from node 1's data dir to node 4's in the same run.
//!
//! * `decommission` (issue 20): time for `strom brokers decommission
//!   --wait` of broker 4, unthrottled, holding `--bytes N` (2 GiB) over
//!   `--partitions N` (100) partitions of RF=2 (the other replica on 1-3).
//!
//! * `throttled-move` (issue 20): produce p99 at 50% load (1 partition,
//!   RF=3, acks=all, led by broker 1) without a move, then while four
//!   RF=1 partitions move from broker 1 to broker 4 with `strom reassign
//!   execute --throttle N` (`--throttle`, 20 MB/s); the producer's full
//!   rate is measured first unless `--rate R` (records/s) gives it. The
//!   moved partitions hold `--bytes N` (default: 1.5 × the throttle × the
//!   runs' length), so the move outlasts the runs; reported: both p99s,
//!   the move's rate during the runs and the throttle metrics.
//!
//! * `producer-restart` (issue 22): restart time of a broker holding
//!   `--producers N` (100,000) producer ids: one node, one RF=1 partition
//!   written by N idempotent producers (one batch each, raw produce
//!   requests), against the same partition written by one producer in N
//!   batches; per case a clean restart (SIGTERM: the producer state is
//!   snapshotted at shutdown) and a kill -9 (recovery rebuilds it from the
//!   last snapshot and the batches after it), each timed from the start of
//!   the process until the partition serves again, with the broker's
//!   `strom_producer_ids` after it.
//!
//! Usage: `data_bench [throughput|failover|failover-many|durable|idempotence|transactions|txn-latency|producer-restart|compaction|leader-moves|move-throughput|decommission|throttled-move|all] [--trials N] [--producers N]
//! [--records N] [--partitions N] [--bytes N] [--transactions N] [--cache-drop-behind BYTES] [--throttle BYTES] [--rate R]`;
//! `DATA_BENCH_CASES=1024/3/1,1024/3/6` (size/replication/partitions)
//! limits `throughput` to those cases.
//! `scripts/bench-data` builds release binaries and points `STROMD_BIN` /
//! `STROM_BIN` at them.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use strom_client::{Producer, ProducerConfig, ProducerRecord, Properties};

use strom_integration_tests::data::{
    Addrs, batch, broker_client, partition_metadata_all, partition_state_any, wait_leader_serving,
};
use strom_integration_tests::{Cluster, ClusterOptions, admin_get, binary};
use strom_proto::v1::BrokerState;
use strom_proto::v1::{ErrorCode, ProducePartitionData, ProduceRequest, ProduceTopicData};

/// Producer settings of the unthrottled runs (documented with the results).
const THROUGHPUT_PROPS: &[&str] = &[
    "linger.ms=5",
    "batch.size=262144",
    "max.request.size=4194304",
];
/// Runs of the producer alone at 50% load per case; the table shows the
/// median one (by p99) and every run's p99.
const LATENCY_RUNS: usize = 3;

/// Producer settings of the 50%-load latency runs: no linger, so latency is
/// the cluster's, not a batching delay chosen by the client.
const LATENCY_PROPS: &[&str] = &[
    "linger.ms=0",
    "batch.size=262144",
    "max.request.size=4194304",
];

/// The machine's CPU time counters (`/proc/stat`, first line): busy and
/// steal (time the hypervisor ran something else while this guest wanted
/// the CPU), and the total, in clock ticks.
#[derive(Debug, Clone, Copy, Default)]
struct CpuTicks {
    busy: u64,
    steal: u64,
    total: u64,
}

impl CpuTicks {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let at = |i: usize| fields.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        let (idle, steal) = (at(3) + at(4), at(7));
        let total: u64 = fields.iter().take(8).sum();
        Self {
            busy: total.saturating_sub(idle + steal),
            steal,
            total,
        }
    }

    /// `(busy %, steal %)` of the machine between `self` and `later`.
    fn percent_until(self, later: Self) -> (f64, f64) {
        let total = later.total.saturating_sub(self.total).max(1) as f64;
        (
            100.0 * later.busy.saturating_sub(self.busy) as f64 / total,
            100.0 * later.steal.saturating_sub(self.steal) as f64 / total,
        )
    }
}

/// Writes every dirty page on the machine back to disk and waits for it
/// (`sync`), so a measurement does not start behind the writeback of what
/// ran before it (the build, or the previous full-speed run).
fn settle() {
    let synced = Command::new("sync").status().is_ok_and(|s| s.success());
    if !synced {
        eprintln!("warning: sync failed; the next measurement may include earlier writeback");
    }
}

fn strom(cluster: &Cluster) -> Command {
    let mut c = Command::new(binary("strom", "STROM_BIN"));
    c.arg("--bootstrap-server").arg(cluster.bootstrap());
    c
}

fn perf_produce(
    cluster: &Cluster,
    topic: &str,
    records: u64,
    size: usize,
    acks: &str,
    throughput: f64,
    props: &[&str],
) -> serde_json::Value {
    perf_produce_with(cluster, topic, records, size, acks, throughput, props, &[])
}

/// [`perf_produce`] with more `perf produce` flags (`extra`).
#[allow(clippy::too_many_arguments)]
fn perf_produce_with(
    cluster: &Cluster,
    topic: &str,
    records: u64,
    size: usize,
    acks: &str,
    throughput: f64,
    props: &[&str],
    extra: &[&str],
) -> serde_json::Value {
    let out = strom(cluster)
        .args(["--output", "json", "perf", "produce", "--topic", topic])
        .args(extra)
        .args(["--num-records", &records.to_string()])
        .args(["--record-size", &size.to_string()])
        .args(["--throughput", &format!("{throughput:.0}")])
        .args(["--acks", acks])
        .arg("--producer-props")
        .args(props)
        .stderr(Stdio::inherit())
        .output()
        .expect("run strom perf produce");
    assert!(out.status.success(), "perf produce failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().expect("a summary line");
    serde_json::from_str(last).expect("perf produce JSON summary")
}

fn f(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

async fn create(cluster: &Cluster, topic: &str, partitions: i32, rf: i32) {
    create_with(cluster, topic, partitions, rf, &[]).await;
}

async fn create_with(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    rf: i32,
    extra: &[(&str, &str)],
) {
    let mut configs: Vec<(&str, &str)> = extra.to_vec();
    if rf == 3 {
        configs.push(("min.insync.replicas", "2"));
    }
    cluster
        .create_topic(1, topic, partitions, rf, &configs)
        .await
        .expect("create topic");
    let addrs = Addrs::of(cluster);
    for p in 0..partitions {
        wait_leader_serving(&addrs, topic, p, Duration::from_secs(30))
            .await
            .expect("leader serves");
    }
}

async fn throughput(records_1k: u64, drop_behind: u64) {
    eprintln!("brokers: log.cache.drop.behind.bytes={drop_behind}");
    let cluster = Cluster::start(
        3,
        ClusterOptions::default().set("log.cache.drop.behind.bytes", &drop_behind.to_string()),
    )
    .await;
    println!(
        "| record | replication | partitions | records/s | MB/s | p50 ms | p99 ms | p99.9 ms | at 50%, median run: p50 / p99 / p99.9 ms | at 50%: p99 of each run, ms | CPU at 50%: busy / steal | at 50% with a tailing consumer: produce p99 ms | end-to-end at 50%: p50 / p99 / p99.9 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    // DATA_BENCH_CASES=1024/3/1,1024/3/6 (size/replication/partitions)
    // runs only those cases, e.g. for an A/B of two builds.
    let only: Option<Vec<String>> = std::env::var("DATA_BENCH_CASES")
        .ok()
        .map(|v| v.split(',').map(|c| c.trim().to_owned()).collect());
    for (size, records) in [(1024usize, records_1k), (100, records_1k * 4)] {
        for (rf, acks) in [(3, "all"), (1, "1")] {
            for partitions in [1, 6] {
                if only
                    .as_ref()
                    .is_some_and(|o| !o.contains(&format!("{size}/{rf}/{partitions}")))
                {
                    continue;
                }
                let topic = format!("perf-{size}-rf{rf}-p{partitions}");
                create(&cluster, &topic, partitions, rf).await;
                settle();
                let full = perf_produce(
                    &cluster,
                    &topic,
                    records,
                    size,
                    acks,
                    -1.0,
                    THROUGHPUT_PROPS,
                );
                let rate = f(&full, "records_per_sec");
                let half_records = (rate * 0.5 * 10.0) as u64; // about 10 s
                // Half speed, the producer alone (as kafka-producer-perf-test
                // measures produce latency).
                let half_speed = || {
                    perf_produce(
                        &cluster,
                        &topic,
                        half_records,
                        size,
                        acks,
                        rate * 0.5,
                        LATENCY_PROPS,
                    )
                };
                // Three runs: one 10 s run's p99 moves with any single
                // stall of the shared machine, the median run's much less.
                let before = CpuTicks::now();
                let mut alone: Vec<serde_json::Value> = (0..LATENCY_RUNS)
                    .map(|_| {
                        settle();
                        half_speed()
                    })
                    .collect();
                let (busy, steal) = before.percent_until(CpuTicks::now());
                let each_p99 = alone
                    .iter()
                    .map(|run| format!("{:.1}", f(run, "p99_latency_ms")))
                    .collect::<Vec<_>>()
                    .join(", ");
                alone.sort_by(|a, b| f(a, "p99_latency_ms").total_cmp(&f(b, "p99_latency_ms")));
                let alone = &alone[alone.len() / 2];
                // Half speed again, with a consumer tailing the topic for
                // end-to-end latency.
                settle();
                let consumer = strom(&cluster)
                    .args([
                        "--output",
                        "json",
                        "--timeout-ms",
                        "15000",
                        "perf",
                        "consume",
                    ])
                    .args(["--topic", &topic, "--from-latest"])
                    .args(["--messages", &half_records.to_string()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("spawn perf consume");
                // Let the consumer find the end before producing.
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let tailed = half_speed();
                let out = consumer.wait_with_output().expect("perf consume");
                let text = String::from_utf8_lossy(&out.stdout);
                let e2e: serde_json::Value = text
                    .lines()
                    .last()
                    .and_then(|l| serde_json::from_str(l).ok())
                    .unwrap_or_default();
                let e = &e2e["end_to_end"];
                println!(
                    "| {size} B | RF={rf} acks={acks} | {partitions} | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} / {:.1} / {:.1} | {each_p99} | {busy:.0}% / {steal:.0}% | {:.1} | {} / {} / {} |",
                    rate,
                    f(&full, "mb_per_sec"),
                    f(&full, "p50_latency_ms"),
                    f(&full, "p99_latency_ms"),
                    f(&full, "p999_latency_ms"),
                    f(alone, "p50_latency_ms"),
                    f(alone, "p99_latency_ms"),
                    f(alone, "p999_latency_ms"),
                    f(&tailed, "p99_latency_ms"),
                    e["p50_ms"],
                    e["p99_ms"],
                    e["p999_ms"],
                );
                // The cases write tens of gigabytes each: free the disk
                // (and the page cache) before the next one.
                let deleted = strom(&cluster)
                    .args(["topics", "delete", "--topic", &topic])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !deleted {
                    eprintln!("warning: could not delete topic {topic}");
                }
            }
        }
    }
}

/// Records per second of the naive way to durable acknowledgements: each
/// `size`-byte record appended to a file in `dir` and fdatasynced on its
/// own before the next, for `duration`.
fn raw_fsync_per_record(dir: &std::path::Path, size: usize, duration: Duration) -> f64 {
    use std::io::Write;
    let path = dir.join("raw-fsync-bench.log");
    let mut file = std::fs::File::create(&path).expect("create raw fsync file");
    let record = vec![0x5au8; size];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        file.write_all(&record).expect("write");
        file.sync_data().expect("fdatasync");
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    rate
}

/// `write.caching=false` against the default, same run: RF=3 acks=all 1 KiB
/// records on 1 and 6 partitions, unthrottled and at 50% of the rate each
/// reached (the median of three runs by p99), beside the rate of one
/// fdatasync per record on the same disk.
async fn durable(records: u64, drop_behind: u64) {
    eprintln!("brokers: log.cache.drop.behind.bytes={drop_behind}");
    let cluster = Cluster::start(
        3,
        ClusterOptions::default().set("log.cache.drop.behind.bytes", &drop_behind.to_string()),
    )
    .await;
    settle();
    let raw = raw_fsync_per_record(&cluster.node(1).data_dir, 1024, Duration::from_secs(5));
    println!("raw fdatasync per 1 KiB record on the brokers' disk: {raw:.0} records/s");
    println!();
    println!(
        "| write.caching | partitions | records/s | MB/s | p50 ms | p99 ms | at 50%, median run: p50 / p99 / p99.9 ms | at 50%: p99 of each run, ms | vs raw fsync per record |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for partitions in [1, 6] {
        for caching in ["true", "false"] {
            let topic = format!("durable-{caching}-p{partitions}");
            create_with(
                &cluster,
                &topic,
                partitions,
                3,
                &[("write.caching", caching)],
            )
            .await;
            settle();
            let full = perf_produce(
                &cluster,
                &topic,
                records,
                1024,
                "all",
                -1.0,
                THROUGHPUT_PROPS,
            );
            let rate = f(&full, "records_per_sec");
            let (half, each_p99) = latency_runs(&cluster, &topic, rate * 0.5, LATENCY_PROPS);
            let half = &half;
            println!(
                "| {caching} | {partitions} | {rate:.0} | {:.1} | {:.0} | {:.0} | {:.1} / {:.1} / {:.1} | {each_p99} | {:.1}× |",
                f(&full, "mb_per_sec"),
                f(&full, "p50_latency_ms"),
                f(&full, "p99_latency_ms"),
                f(half, "p50_latency_ms"),
                f(half, "p99_latency_ms"),
                f(half, "p999_latency_ms"),
                rate / raw,
            );
            delete_topic(&cluster, &topic);
        }
    }
}

/// The idempotent producer against a plain one, same run: RF=3 acks=all
/// 1 KiB records on 1 and 6 partitions, unthrottled and at 50% of the
/// plain producer's rate (the median of three runs by p99).
async fn idempotence(records: u64, drop_behind: u64) {
    let cluster = Cluster::start(
        3,
        ClusterOptions::default().set("log.cache.drop.behind.bytes", &drop_behind.to_string()),
    )
    .await;
    println!(
        "| enable.idempotence | partitions | records/s | MB/s | p50 ms | p99 ms | at 50% of plain, median run: p50 / p99 / p99.9 ms | at 50%: p99 of each run, ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for partitions in [1, 6] {
        let mut plain_rate = None;
        for idempotence in ["false", "true"] {
            let topic = format!("idempotence-{idempotence}-p{partitions}");
            create_with(&cluster, &topic, partitions, 3, &[]).await;
            settle();
            let setting = format!("enable.idempotence={idempotence}");
            let with = |base: &[&'static str]| -> Vec<String> {
                base.iter()
                    .map(|p| (*p).to_owned())
                    .chain([setting.clone()])
                    .collect()
            };
            let throughput_props = with(THROUGHPUT_PROPS);
            let latency_props = with(LATENCY_PROPS);
            let full = perf_produce(
                &cluster,
                &topic,
                records,
                1024,
                "all",
                -1.0,
                &str_refs(&throughput_props),
            );
            let rate = f(&full, "records_per_sec");
            // Both producers run their latency test at half the plain one's rate.
            let half_rate = *plain_rate.get_or_insert(rate) * 0.5;
            let (half, each_p99) =
                latency_runs(&cluster, &topic, half_rate, &str_refs(&latency_props));
            let half = &half;
            println!(
                "| {idempotence} | {partitions} | {rate:.0} | {:.1} | {:.0} | {:.0} | {:.1} / {:.1} / {:.1} | {each_p99} |",
                f(&full, "mb_per_sec"),
                f(&full, "p50_latency_ms"),
                f(&full, "p99_latency_ms"),
                f(half, "p50_latency_ms"),
                f(half, "p99_latency_ms"),
                f(half, "p999_latency_ms"),
            );
            delete_topic(&cluster, &topic);
        }
    }
}

async fn transactions(records: u64, drop_behind: u64) {
    let cluster = Cluster::start(
        3,
        ClusterOptions::default().set("log.cache.drop.behind.bytes", &drop_behind.to_string()),
    )
    .await;
    println!(
        "| producer | partitions | records/s | MB/s | p50 ms | p99 ms | throughput vs non-transactional |"
    );
    println!("|---|---|---|---|---|---|---|");
    for partitions in [1, 6] {
        let mut plain_rate = None;
        for transactional in [false, true] {
            let topic = format!("transactions-{transactional}-p{partitions}");
            create_with(&cluster, &topic, partitions, 3, &[]).await;
            settle();
            let id = format!("bench-{topic}");
            let extra: Vec<&str> = if transactional {
                vec![
                    "--transactional-id",
                    &id,
                    "--transaction-duration-ms",
                    "100",
                ]
            } else {
                Vec::new()
            };
            let full = perf_produce_with(
                &cluster,
                &topic,
                records,
                1024,
                "all",
                -1.0,
                THROUGHPUT_PROPS,
                &extra,
            );
            let rate = f(&full, "records_per_sec");
            let plain = *plain_rate.get_or_insert(rate);
            println!(
                "| {} | {partitions} | {rate:.0} | {:.1} | {:.0} | {:.0} | {:.1}% |",
                if transactional {
                    "transactional, commit every 100 ms"
                } else {
                    "idempotent"
                },
                f(&full, "mb_per_sec"),
                f(&full, "p50_latency_ms"),
                f(&full, "p99_latency_ms"),
                rate / plain * 100.0,
            );
            delete_topic(&cluster, &topic);
        }
    }
}

async fn txn_latency(transactions: u64) {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    let payload = bytes::Bytes::from(vec![b'x'; 1024]);
    println!("| partitions | transactions | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for partitions in [1, 10] {
        let topic = format!("txn-latency-p{partitions}");
        create_with(&cluster, &topic, partitions, 3, &[]).await;
        let config = ProducerConfig::from_properties([
            format!("bootstrap.servers={}", cluster.bootstrap()),
            format!("transactional.id=bench-{topic}"),
            "linger.ms=0".to_owned(),
        ])
        .expect("producer config");
        let producer = Producer::connect(config).await.expect("producer");
        producer
            .init_transactions()
            .await
            .expect("init transactions");
        // Warm-up: connections, metadata, the partitions' producer state.
        let mut samples = Vec::new();
        for i in 0..transactions + 10 {
            let started = Instant::now();
            producer.begin_transaction().expect("begin");
            for p in 0..partitions {
                producer
                    .send(
                        ProducerRecord::new(topic.as_str())
                            .partition(p)
                            .value(payload.clone()),
                    )
                    .await
                    .expect("send");
            }
            producer.commit_transaction().await.expect("commit");
            if i >= 10 {
                samples.push(started.elapsed());
            }
        }
        producer.close().await.expect("close");
        samples.sort();
        println!(
            "| {partitions} | {transactions} | {:.2} | {:.2} | {:.2} |",
            ms(percentile(&samples, 0.5)),
            ms(percentile(&samples, 0.99)),
            ms(*samples.last().expect("samples")),
        );
        delete_topic(&cluster, &topic);
    }
}

/// [`LATENCY_RUNS`] runs of `perf produce` at `rate` records/s for 10 s
/// each: the median run by p99, and every run's p99.
fn latency_runs(
    cluster: &Cluster,
    topic: &str,
    rate: f64,
    props: &[&str],
) -> (serde_json::Value, String) {
    let mut runs: Vec<serde_json::Value> = (0..LATENCY_RUNS)
        .map(|_| {
            settle();
            perf_produce(
                cluster,
                topic,
                (rate * 10.0) as u64,
                1024,
                "all",
                rate,
                props,
            )
        })
        .collect();
    let each_p99 = runs
        .iter()
        .map(|run| format!("{:.1}", f(run, "p99_latency_ms")))
        .collect::<Vec<_>>()
        .join(", ");
    runs.sort_by(|a, b| f(a, "p99_latency_ms").total_cmp(&f(b, "p99_latency_ms")));
    (runs.swap_remove(runs.len() / 2), each_p99)
}

fn delete_topic(cluster: &Cluster, topic: &str) {
    let deleted = strom(cluster)
        .args(["topics", "delete", "--topic", topic])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !deleted {
        eprintln!("warning: could not delete topic {topic}");
    }
}

/// Distinct keys of the compaction benchmark's background load.
const CHURN_KEYS: u64 = 50_000;
/// Its rate while the latency runs, records/s (1 KiB values).
const CHURN_RATE: u64 = 2_000;

/// The sum over the nodes of one counter of their `/metrics`.
fn metric_sum(cluster: &Cluster, name: &str) -> f64 {
    (1..=3)
        .filter_map(|id| admin_get(cluster.node(id).admin_port, "/metrics"))
        .flat_map(|(_, body)| {
            body.lines()
                .filter(|l| l.starts_with(name) && !l.starts_with('#'))
                .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// The cleaner's totals on all nodes: bytes read, bytes written, passes.
fn cleaner_totals(cluster: &Cluster) -> [f64; 3] {
    [
        metric_sum(cluster, "strom_log_cleaner_bytes_read"),
        metric_sum(cluster, "strom_log_cleaner_bytes_written"),
        metric_sum(cluster, "strom_log_cleaner_passes"),
    ]
}

/// Keyed 1 KiB records to `topic` over [`CHURN_KEYS`] keys: `preload`
/// records as fast as they go, then [`CHURN_RATE`] a second until `stop`.
/// Runs on a thread of its own with its own runtime, beside the latency
/// runs' `strom perf` processes. Returns the records sent at the rate.
fn churn_load(
    bootstrap: String,
    topic: String,
    preload: u64,
    stop: Arc<AtomicBool>,
    preloaded: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut config = ProducerConfig::new(&bootstrap).expect("producer config");
            for (k, v) in [
                ("acks", "all"),
                ("linger.ms", "5"),
                ("batch.size", "262144"),
            ] {
                config.set(k, v).expect("producer setting");
            }
            let producer = Producer::connect(config).await.expect("producer");
            let value = bytes::Bytes::from(vec![b'v'; 1024]);
            let record = |i: u64| {
                ProducerRecord::new(topic.clone())
                    .key(format!("key-{:06}", i % CHURN_KEYS))
                    .value(value.clone())
            };
            let mut pending = Vec::new();
            for i in 0..preload {
                pending.push(producer.send(record(i)).await.expect("queued"));
            }
            for d in pending {
                d.await.expect("preload delivered");
            }
            let _ = preloaded.send(());
            let mut sent = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                for _ in 0..CHURN_RATE / 100 {
                    // Not awaited: delivery failures show as latency in
                    // the measured topic.
                    drop(producer.send(record(preload + sent)).await);
                    sent += 1;
                }
            }
            let _ = producer.close().await;
            sent
        })
    })
}

/// Produce p99 at 50% load while the log cleaner works beside it
/// (issue #19: within 5 ms of the same run without it). The same
/// background load of keyed records goes to a compacted topic, which the
/// cleaner keeps cleaning (1 MiB segments, `min.cleanable.dirty.ratio=0.01`,
/// `log.cleaner.backoff.ms=100`), or, as the control, to a delete-policy
/// topic (nothing to clean); meanwhile `strom perf produce` measures
/// another topic at half its unthrottled rate.
async fn compaction(records: u64, drop_behind: u64) {
    let cluster = Cluster::start(
        3,
        ClusterOptions::default()
            .set("log.cache.drop.behind.bytes", &drop_behind.to_string())
            .set("log.cleaner.backoff.ms", "100"),
    )
    .await;
    let target = "cleaner-latency";
    create_with(&cluster, target, 1, 3, &[]).await;
    settle();
    let full = perf_produce(
        &cluster,
        target,
        records,
        1024,
        "all",
        -1.0,
        THROUGHPUT_PROPS,
    );
    let half_rate = f(&full, "records_per_sec") * 0.5;
    println!(
        "measured topic: 1 partition, RF=3, acks=all, 1 KiB; unthrottled {:.0} records/s, latency runs at {half_rate:.0}/s",
        f(&full, "records_per_sec")
    );
    println!(
        "background: {} keyed records preloaded, then {CHURN_RATE}/s over {CHURN_KEYS} keys, 3 partitions",
        2 * CHURN_KEYS
    );
    println!();
    println!(
        "| background topic | cleaner during the runs: MB read / MB written / passes (3 nodes) | at 50%, median run: p50 / p99 / p99.9 ms | p99 of each run, ms |"
    );
    println!("|---|---|---|---|");
    for policy in ["delete", "compact"] {
        let churn = format!("churn-{policy}");
        let mut extra = vec![("cleanup.policy", policy), ("segment.bytes", "1048576")];
        if policy == "compact" {
            extra.push(("min.cleanable.dirty.ratio", "0.01"));
        }
        create_with(&cluster, &churn, 3, 3, &extra).await;
        let stop = Arc::new(AtomicBool::new(false));
        let (preloaded, preload_done) = std::sync::mpsc::channel();
        let load = churn_load(
            cluster.bootstrap(),
            churn.clone(),
            2 * CHURN_KEYS,
            Arc::clone(&stop),
            preloaded,
        );
        preload_done
            .recv_timeout(Duration::from_secs(300))
            .expect("preload done");
        // The cleaner starts on the preloaded segments.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = cleaner_totals(&cluster);
        let (half, each_p99) = latency_runs(&cluster, target, half_rate, LATENCY_PROPS);
        let after = cleaner_totals(&cluster);
        stop.store(true, Ordering::Relaxed);
        let sent = load.join().expect("background load");
        eprintln!("{churn}: {sent} background records during the runs");
        println!(
            "| {policy} | {:.0} / {:.0} / {:.0} | {:.1} / {:.1} / {:.1} | {each_p99} |",
            (after[0] - before[0]) / 1e6,
            (after[1] - before[1]) / 1e6,
            after[2] - before[2],
            f(&half, "p50_latency_ms"),
            f(&half, "p99_latency_ms"),
            f(&half, "p999_latency_ms"),
        );
        delete_topic(&cluster, &churn);
    }
}

fn str_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// After `victim` was killed at `killed`: how long until the controller
/// fenced it, and until `elected` says its leaderships moved.
async fn time_failover<F, Fut>(
    cluster: &Cluster,
    victim: i32,
    killed: Instant,
    trial: usize,
    mut elected: F,
) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (mut fenced_at, mut elected_at) = (None, None);
    while fenced_at.is_none() || elected_at.is_none() {
        if fenced_at.is_none()
            && let Some(d) = cluster.describe().await
            && d.brokers
                .iter()
                .any(|b| b.id == victim && b.state == BrokerState::Fenced as i32)
        {
            fenced_at = Some(killed.elapsed());
        }
        if elected_at.is_none() && elected().await {
            elected_at = Some(killed.elapsed());
        }
        assert!(
            killed.elapsed() < Duration::from_secs(90),
            "no failover in trial {trial}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (
        fenced_at.unwrap_or_default(),
        elected_at.unwrap_or_default(),
    )
}

async fn failover(trials: usize) {
    let session_ms = 9000u64;
    let mut cluster = Cluster::start(3, ClusterOptions::default()).await;
    create(&cluster, "failover", 1, 3).await;
    let addrs = Addrs::of(&cluster);
    let (mut detection, mut election, mut recovery) = (Vec::new(), Vec::new(), Vec::new());
    for trial in 0..trials {
        let (leader, epoch, _) = partition_state_any(&addrs, "failover", 0)
            .await
            .expect("state");
        // A steady producer (1000 records/s of 1 KiB) whose longest
        // latency is the client's recovery time.
        let producer = strom(&cluster)
            .args([
                "--output",
                "json",
                "--timeout-ms",
                "30000",
                "perf",
                "produce",
            ])
            .args([
                "--topic",
                "failover",
                "--num-records",
                "25000",
                "--record-size",
                "1024",
            ])
            .args(["--throughput", "1000", "--acks", "all"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn perf produce");
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.kill(leader);
        let killed = Instant::now();
        let (fenced, elected) = time_failover(&cluster, leader, killed, trial, || async {
            partition_state_any(&addrs, "failover", 0)
                .await
                .is_some_and(|(l, e, _)| l >= 0 && l != leader && e > epoch)
        })
        .await;
        let out = producer.wait_with_output().expect("perf produce");
        let text = String::from_utf8_lossy(&out.stdout);
        let summary: serde_json::Value = text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        let stall = Duration::from_secs_f64(f(&summary, "max_latency_ms") / 1000.0);
        let (d, e) = (fenced, elected);
        println!(
            "trial {trial}: leader {leader} killed; fenced after {:.0} ms, new leader after {:.0} ms, longest produce latency {:.0} ms, errors {}",
            ms(d),
            ms(e),
            ms(stall),
            summary["errors"]
        );
        detection.push(d);
        election.push(e);
        recovery.push(stall);
        cluster.start_node(leader);
        cluster.wait_ready(Duration::from_secs(60)).await;
    }
    for v in [&mut detection, &mut election, &mut recovery] {
        v.sort();
    }
    println!(
        "failover over {trials} trials (broker.session.timeout.ms={session_ms}): detection p50 {:.0} ms p99 {:.0} ms; election p50 {:.0} ms p99 {:.0} ms; client recovery (longest produce latency) p50 {:.0} ms p99 {:.0} ms",
        ms(percentile(&detection, 0.5)),
        ms(percentile(&detection, 0.99)),
        ms(percentile(&election, 0.5)),
        ms(percentile(&election, 0.99)),
        ms(percentile(&recovery, 0.5)),
        ms(percentile(&recovery, 0.99)),
    );
}

/// Every partition of `topic` as `(partition, leader, leader epoch)`, from
/// the first node among `via` that answers.
async fn leaders(addrs: &Addrs, via: &[i32], topic: &str) -> Option<Vec<(i32, i32, i32)>> {
    for id in via {
        if let Some(parts) = partition_metadata_all(addrs, *id, topic).await {
            return Some(
                parts
                    .into_iter()
                    .map(|p| (p.partition, p.leader, p.leader_epoch))
                    .collect(),
            );
        }
    }
    None
}

async fn failover_many(partitions: i32, trials: usize) {
    let topic = "failover-many";
    let mut cluster = Cluster::start(3, ClusterOptions::default()).await;
    create(&cluster, topic, partitions, 3).await;
    let addrs = Addrs::of(&cluster);
    let value = bytes::Bytes::from_static(b"failover");
    let (mut fenced_all, mut elected_all, mut writable_all, mut after_fence) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for trial in 0..trials {
        let before = leaders(&addrs, &[1, 2, 3], topic).await.expect("metadata");
        let mut counts = std::collections::BTreeMap::<i32, usize>::new();
        for (_, leader, _) in &before {
            *counts.entry(*leader).or_default() += 1;
        }
        let victim = counts
            .iter()
            .max_by_key(|(id, n)| (**n, -**id))
            .map(|(id, _)| *id)
            .expect("a leader");
        let led: Vec<(i32, i32)> = before
            .iter()
            .filter(|(_, l, _)| *l == victim)
            .map(|(p, _, e)| (*p, *e))
            .collect();
        let others: Vec<i32> = (1..=3).filter(|id| *id != victim).collect();
        cluster.kill(victim);
        let killed = Instant::now();
        let (fenced, elected) = time_failover(&cluster, victim, killed, trial, || async {
            leaders(&addrs, &others, topic).await.is_some_and(|now| {
                led.iter().all(|(p, e)| {
                    now.iter()
                        .any(|(q, l, f)| q == p && *l >= 0 && *l != victim && f > e)
                })
            })
        })
        .await;
        // Every partition the victim led takes an acks=all write at its new
        // leader: one produce request per leader for all its partitions,
        // as a client's sender sends them, repeated for those refused.
        let mut pending: Vec<i32> = led.iter().map(|(p, _)| *p).collect();
        while !pending.is_empty() {
            let now = leaders(&addrs, &others, topic).await.unwrap_or_default();
            let mut by_leader = std::collections::BTreeMap::<i32, Vec<i32>>::new();
            for p in &pending {
                let leader = now
                    .iter()
                    .find(|(q, _, _)| q == p)
                    .map_or(-1, |(_, l, _)| *l);
                by_leader.entry(leader).or_default().push(*p);
            }
            let mut errors = std::collections::BTreeMap::<String, usize>::new();
            let mut refused = by_leader.remove(&-1).unwrap_or_default();
            if !refused.is_empty() {
                errors.insert("no leader".into(), refused.len());
            }
            let requests = by_leader.into_iter().map(|(leader, parts)| {
                let (addrs, value) = (addrs.clone(), value.clone());
                async move {
                    let request = ProduceRequest {
                        acks: -1,
                        timeout_ms: 2000,
                        topics: vec![ProduceTopicData {
                            topic: topic.into(),
                            partitions: parts
                                .iter()
                                .map(|p| ProducePartitionData {
                                    partition: *p,
                                    records: batch(std::slice::from_ref(&value)),
                                })
                                .collect(),
                        }],
                        transactional_id: String::new(),
                    };
                    let answer = tokio::time::timeout(
                        Duration::from_secs(4),
                        broker_client(&addrs, leader).produce(request),
                    )
                    .await;
                    (parts, answer)
                }
            });
            for (parts, answer) in futures::future::join_all(requests).await {
                match answer {
                    Ok(Ok(resp)) => {
                        for p in resp
                            .into_inner()
                            .topics
                            .into_iter()
                            .flat_map(|t| t.partitions)
                        {
                            if p.error_code != ErrorCode::None as i32 {
                                let code = ErrorCode::try_from(p.error_code)
                                    .map_or("?", |c| c.as_str_name());
                                *errors.entry(code.to_owned()).or_default() += 1;
                                refused.push(p.partition);
                            }
                        }
                    }
                    Ok(Err(status)) => {
                        *errors.entry(status.code().to_string()).or_default() += parts.len();
                        refused.extend(parts);
                    }
                    Err(_) => {
                        *errors.entry("no answer".into()).or_default() += parts.len();
                        refused.extend(parts);
                    }
                }
            }
            pending = refused;
            if !errors.is_empty() {
                println!(
                    "  at {:.0} ms: {} partitions not yet writable: {errors:?}",
                    ms(killed.elapsed()),
                    pending.len()
                );
            }
            assert!(
                killed.elapsed() < Duration::from_secs(120),
                "partitions never writable in trial {trial}: {pending:?}"
            );
        }
        let writable = killed.elapsed();
        let (f, e) = (fenced, elected);
        println!(
            "trial {trial}: broker {victim} (leader of {} of {partitions}) killed; fenced after {:.0} ms, every leader elected after {:.0} ms, every partition writable after {:.0} ms ({:.0} ms after fencing)",
            led.len(),
            ms(f),
            ms(e),
            ms(writable),
            ms(writable.saturating_sub(f))
        );
        // How long each survivor's replica manager took to follow the
        // image changes of the failover (its own log line).
        for id in &others {
            let took: Vec<String> = cluster
                .node(*id)
                .logs()
                .lines()
                .filter(|l| l.contains("followed the metadata image"))
                .rev()
                .take(2)
                .map(|l| {
                    let field = |k: &str| {
                        l.split(k)
                            .nth(1)
                            .and_then(|r| r.split_whitespace().next())
                            .unwrap_or("?")
                            .to_owned()
                    };
                    format!(
                        "{} role changes in {} ms",
                        field("role_changes="),
                        field("elapsed_ms=")
                    )
                })
                .collect();
            println!("  node {id}: {}", took.join("; "));
        }
        fenced_all.push(f);
        elected_all.push(e);
        writable_all.push(writable);
        after_fence.push(writable.saturating_sub(f));
        cluster.start_node(victim);
        cluster.wait_ready(Duration::from_secs(120)).await;
        // Back in every ISR before the next trial kills someone else.
        let back = strom_integration_tests::wait_until(Duration::from_secs(120), || {
            let addrs = addrs.clone();
            async move {
                partition_metadata_all(&addrs, 1, topic)
                    .await
                    .is_some_and(|ps| ps.iter().all(|p| p.isr.len() == 3))
            }
        })
        .await;
        assert!(back, "ISR not restored after trial {trial}");
    }
    for v in [
        &mut fenced_all,
        &mut elected_all,
        &mut writable_all,
        &mut after_fence,
    ] {
        v.sort();
    }
    println!(
        "failover-many, {partitions} partitions RF=3 on 3 brokers, {trials} trials: fenced p50 {:.0} ms; all elected p50 {:.0} ms; all writable p50 {:.0} ms p99 {:.0} ms; writable after fencing p50 {:.0} ms p99 {:.0} ms",
        ms(percentile(&fenced_all, 0.5)),
        ms(percentile(&elected_all, 0.5)),
        ms(percentile(&writable_all, 0.5)),
        ms(percentile(&writable_all, 0.99)),
        ms(percentile(&after_fence, 0.5)),
        ms(percentile(&after_fence, 0.99)),
    );
}

/// The sum of one metric's series (`name{labels} value` lines starting
/// with `prefix`) over every node's `/metrics`.
fn metric_all(cluster: &Cluster, prefix: &str) -> f64 {
    cluster
        .nodes
        .values()
        .filter_map(|n| admin_get(n.admin_port, "/metrics"))
        .flat_map(|(_, body)| {
            body.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Leaders per broker of `topic` in node `via`'s image, if it answers.
async fn leader_counts(
    addrs: &Addrs,
    via: i32,
    topic: &str,
) -> Option<std::collections::BTreeMap<i32, usize>> {
    let parts = partition_metadata_all(addrs, via, topic).await?;
    let mut counts = std::collections::BTreeMap::new();
    for p in parts {
        *counts.entry(p.leader).or_insert(0) += 1;
    }
    Some(counts)
}

/// `leader-moves`: see the module doc.
async fn leader_moves(partitions: i32) {
    let cluster = Cluster::start(
        3,
        ClusterOptions::default()
            .set("balancer.mode", "continuous")
            .set("auto.leader.rebalance.enable", "false"),
    )
    .await;
    let addrs = Addrs::of(&cluster);
    let topic = "leaders";
    let assignment: Vec<&[i32]> = (0..partitions).map(|_| &[1, 2, 3][..]).collect();
    let start = Instant::now();
    cluster
        .create_topic_assigned(1, topic, &assignment, &[])
        .await
        .expect("create topic");
    let created = start.elapsed();
    let metric = "strom_balancer_partitions_moved_total{goal=\"leaders\"}";
    let mut first_move = None;
    let mut even = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if first_move.is_none() && metric_all(&cluster, metric) > 0.0 {
            first_move = Some(start.elapsed());
        }
        let mut views = Vec::new();
        for id in 1..=3 {
            views.push(leader_counts(&addrs, id, topic).await);
        }
        let balanced = views.iter().all(|v| {
            v.as_ref().is_some_and(|c| {
                let total: usize = c.values().sum();
                let most = c.values().max().copied().unwrap_or(0);
                let least = (1..=3)
                    .map(|b| c.get(&b).copied().unwrap_or(0))
                    .min()
                    .unwrap_or(0);
                total == partitions as usize && most <= least + 1
            })
        });
        if balanced {
            even = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let even = even.expect("leaders evened within 600 s");
    let moves = metric_all(&cluster, metric);
    // Every partition's (new) leader serves it.
    let serving: Vec<Option<i32>> = futures::stream::iter(0..partitions)
        .map(|p| {
            let addrs = addrs.clone();
            async move { wait_leader_serving(&addrs, topic, p, Duration::from_secs(120)).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let served = start.elapsed();
    assert!(serving.iter().all(Option::is_some), "every leader serves");
    println!(
        "leader-moves, {partitions} partitions RF=3 on 3 brokers, all led by broker 1: {moves:.0} leadership moves; topic created in {:.0} ms, first move counted at {} ms, leaders even on every node at {:.0} ms ({:.0} moves/s from creation), every leader serving at {:.0} ms ({:.0} moves/s)",
        ms(created),
        first_move.map_or_else(|| "-".to_owned(), |d| format!("{:.0}", ms(d))),
        ms(even),
        moves / even.as_secs_f64(),
        ms(served),
        moves / served.as_secs_f64(),
    );
}

/// Produces about `bytes` of 1 KiB records to `topic` (acks=1), as fast as
/// they go.
fn produce_bytes(cluster: &Cluster, topic: &str, bytes: u64, acks: &str) {
    let records = (bytes / 1024).max(1);
    let r = perf_produce(cluster, topic, records, 1024, acks, -1.0, THROUGHPUT_PROPS);
    eprintln!(
        "{topic}: {records} records of 1 KiB at {:.1} MB/s",
        f(&r, "mb_per_sec")
    );
}

/// The `.log`/`.index`/... files of every partition of `topic` on `node`.
fn partition_files(cluster: &Cluster, node: i32, topic: &str) -> Vec<std::path::PathBuf> {
    let Ok(dirs) = std::fs::read_dir(cluster.node(node).data_dir.join("logs")) else {
        return Vec::new();
    };
    let prefix = format!("{topic}-");
    dirs.flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with(&prefix))
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect()
}

/// Copies `files` into `dest` (read, write, fsync each, then the
/// directory); returns the bytes copied.
fn raw_copy(files: &[std::path::PathBuf], dest: &std::path::Path) -> u64 {
    std::fs::create_dir_all(dest).expect("create the copy's directory");
    let mut total = 0;
    for (i, src) in files.iter().enumerate() {
        let to = dest.join(format!(
            "{i}-{}",
            src.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ));
        total += std::fs::copy(src, &to).expect("copy a segment file");
        std::fs::File::open(&to)
            .and_then(|f| f.sync_all())
            .expect("fsync the copy");
    }
    std::fs::File::open(dest)
        .and_then(|d| d.sync_all())
        .expect("fsync the copy's directory");
    total
}

async fn admin_of(cluster: &Cluster) -> strom_client::Admin {
    let config = strom_client::ClientConfig {
        bootstrap_servers: strom_client::parse_bootstrap_servers(&cluster.bootstrap())
            .expect("addresses"),
        ..Default::default()
    }
    .with_request_timeout(Duration::from_secs(30));
    strom_client::Admin::connect(config).await.expect("admin")
}

/// Waits until no reassignment is in progress; the time it took.
async fn wait_no_reassignment(admin: &strom_client::Admin, timeout: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if admin
            .list_partition_reassignments(None)
            .await
            .is_ok_and(|l| l.is_empty())
        {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("reassignments still in progress after {timeout:?}");
}

/// `move-throughput`: see the module doc.
async fn move_throughput(bytes: u64) {
    const PARTITIONS: i32 = 4;
    let cluster = Cluster::start(3, ClusterOptions::default().broker_only(1)).await;
    let admin = admin_of(&cluster).await;
    let topic = "moved";
    let assignment: Vec<&[i32]> = (0..PARTITIONS).map(|_| &[1][..]).collect();
    cluster
        .create_topic_assigned(1, topic, &assignment, &[])
        .await
        .expect("create topic");
    let addrs = Addrs::of(&cluster);
    for p in 0..PARTITIONS {
        wait_leader_serving(&addrs, topic, p, Duration::from_secs(30))
            .await
            .expect("leader serves");
    }
    produce_bytes(&cluster, topic, bytes, "1");
    settle();
    // The raw copy: node 1's segment files into node 4's data dir.
    let files = partition_files(&cluster, 1, topic);
    let dest = cluster.node(4).data_dir.join("raw-copy");
    let start = Instant::now();
    let copied = raw_copy(&files, &dest);
    let raw = start.elapsed();
    std::fs::remove_dir_all(&dest).expect("remove the raw copy");
    settle();
    // The move, unthrottled.
    let moves: Vec<(strom_client::TopicPartition, Option<Vec<i32>>)> = (0..PARTITIONS)
        .map(|p| (strom_client::TopicPartition::new(topic, p), Some(vec![4])))
        .collect();
    let start = Instant::now();
    let results = admin
        .alter_partition_reassignments(moves)
        .await
        .expect("start the moves");
    assert!(results.iter().all(|r| r.error.is_none()), "{results:?}");
    wait_no_reassignment(&admin, Duration::from_secs(3600)).await;
    let moved = start.elapsed();
    let moved_bytes = log_bytes(&cluster, 4, topic);
    let mbps = |b: u64, d: Duration| b as f64 / 1e6 / d.as_secs_f64();
    println!(
        "move-throughput, {PARTITIONS} partitions RF=1 from broker 1 to broker 4, unthrottled: raw copy {copied} bytes in {:.0} ms ({:.1} MB/s); move of {moved_bytes} log bytes in {:.0} ms ({:.1} MB/s, {:.0}% of raw)",
        ms(raw),
        mbps(copied, raw),
        ms(moved),
        mbps(moved_bytes, moved),
        100.0 * mbps(moved_bytes, moved) / mbps(copied, raw),
    );
}

/// `decommission`: see the module doc.
async fn decommission(bytes: u64, partitions: i32) {
    let cluster = Cluster::start(3, ClusterOptions::default().broker_only(1)).await;
    let admin = admin_of(&cluster).await;
    let topic = "drained";
    let replicas: Vec<[i32; 2]> = (0..partitions).map(|p| [4, 1 + p % 3]).collect();
    let assignment: Vec<&[i32]> = replicas.iter().map(|r| &r[..]).collect();
    cluster
        .create_topic_assigned(1, topic, &assignment, &[])
        .await
        .expect("create topic");
    let addrs = Addrs::of(&cluster);
    for p in 0..partitions {
        wait_leader_serving(&addrs, topic, p, Duration::from_secs(30))
            .await
            .expect("leader serves");
    }
    produce_bytes(&cluster, topic, bytes, "all");
    // Every follower caught up before the clock starts.
    let caught_up = strom_integration_tests::wait_until(Duration::from_secs(600), || {
        let addrs = addrs.clone();
        async move {
            partition_metadata_all(&addrs, 1, topic)
                .await
                .is_some_and(|ps| ps.iter().all(|p| p.isr.len() == 2))
        }
    })
    .await;
    assert!(caught_up, "followers caught up");
    let held = log_bytes(&cluster, 4, topic);
    settle();
    let start = Instant::now();
    let out = strom(&cluster)
        .args(["brokers", "decommission", "--broker-id", "4", "--wait"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("run strom brokers decommission");
    assert!(out.success(), "decommission failed");
    let took = start.elapsed();
    wait_no_reassignment(&admin, Duration::from_secs(60)).await;
    println!(
        "decommission of broker 4 holding {held} log bytes over {partitions} partitions (RF=2), unthrottled, reassignment.max.concurrent.moves.per.broker=5: {:.1} s ({:.1} MB/s)",
        took.as_secs_f64(),
        held as f64 / 1e6 / took.as_secs_f64(),
    );
}

/// The `.log` bytes of `topic` on `node`.
fn log_bytes(cluster: &Cluster, node: i32, topic: &str) -> u64 {
    partition_files(cluster, node, topic)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// One series of node `id`'s `/metrics` (the line starting with `series`).
fn node_metric(cluster: &Cluster, id: i32, series: &str) -> Option<f64> {
    let (_, body) = admin_get(cluster.node(id).admin_port, "/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// One idempotent batch of one 100-byte record from `producer_id` at
/// `seq`.
fn producer_record(producer_id: i64, seq: i32) -> bytes::Bytes {
    let mut b = strom_log::RecordBatchBuilder::new(strom_log::Compression::None).producer(
        producer_id,
        0,
        seq,
    );
    b.append(1_700_000_000_000, None, Some(&[b'p'; 100]), &[]);
    b.build()
}

/// Writes `batches` idempotent batches to `topic`-0 on node 1, 32 requests
/// in flight: from `batches` producer ids (one batch each) when `many`,
/// else from one producer id.
async fn write_producers(addrs: &Addrs, topic: &str, batches: i64, many: bool) {
    // One connection for every request (HTTP/2 streams): a connection per
    // request would leave 100,000 sockets in TIME_WAIT and run out of
    // local ports.
    let client = broker_client(addrs, 1);
    futures::stream::iter(0..batches)
        .map(|i| {
            let (producer_id, seq) = if many {
                (1_000_000 + i, 0)
            } else {
                (
                    1_000_000,
                    i32::try_from(i).expect("fewer than 2^31 batches"),
                )
            };
            let mut client = client.clone();
            let topic = topic.to_owned();
            async move {
                let resp = client
                    .produce(ProduceRequest {
                        acks: 1,
                        timeout_ms: 30_000,
                        topics: vec![ProduceTopicData {
                            topic,
                            partitions: vec![ProducePartitionData {
                                partition: 0,
                                records: producer_record(producer_id, seq),
                            }],
                        }],
                        transactional_id: String::new(),
                    })
                    .await
                    .expect("produce")
                    .into_inner();
                let code = resp.topics[0].partitions[0].error_code;
                assert_eq!(code, ErrorCode::None as i32, "produce refused: {code}");
            }
        })
        // In order for one producer: its sequences must arrive in order.
        .buffered(if many { 32 } else { 1 })
        .collect::<Vec<()>>()
        .await;
}

/// Restarts node 1 (`clean`: SIGTERM, else kill -9) and times from the
/// process start until `topic`-0 serves again.
async fn timed_restart(cluster: &mut Cluster, topic: &str, clean: bool) -> Duration {
    if clean {
        let status = cluster.terminate(1, Duration::from_secs(120));
        assert!(status.success(), "stromd exited with {status}");
    } else {
        cluster.kill(1);
    }
    settle();
    let started = Instant::now();
    cluster.start_node(1);
    let addrs = Addrs::of(cluster);
    wait_leader_serving(&addrs, topic, 0, Duration::from_secs(600))
        .await
        .expect("the partition serves after the restart");
    started.elapsed()
}

/// `producer-restart`: see the module doc.
async fn producer_restart(producers: i64) {
    println!(
        "| partition written by | batches | restart | time to serve, s | strom_producer_ids after |"
    );
    println!("|---|---|---|---|---|");
    for many in [true, false] {
        let mut cluster = Cluster::start(1, ClusterOptions::default()).await;
        let topic = if many {
            "many-producers"
        } else {
            "one-producer"
        };
        create(&cluster, topic, 1, 1).await;
        let addrs = Addrs::of(&cluster);
        let started = Instant::now();
        write_producers(&addrs, topic, producers, many).await;
        eprintln!(
            "{topic}: {producers} batches written in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let who = if many {
            format!("{producers} producer ids")
        } else {
            "1 producer id".to_owned()
        };
        for clean in [true, false] {
            let took = timed_restart(&mut cluster, topic, clean).await;
            let ids = node_metric(&cluster, 1, "strom_producer_ids ").unwrap_or(f64::NAN);
            println!(
                "| {who} | {producers} | {} | {:.2} | {ids} |",
                if clean { "SIGTERM" } else { "kill -9" },
                took.as_secs_f64()
            );
        }
    }
}

/// `throttled-move`: see the module doc.
async fn throttled_move(records: u64, rate: Option<u64>, throttle: u64, bytes: Option<u64>) {
    const PARTITIONS: i32 = 4;
    /// Seconds of one latency run ([`latency_runs`]).
    const RUN_SECS: u64 = 10;
    let cluster = Cluster::start(3, ClusterOptions::default().broker_only(1)).await;
    let admin = admin_of(&cluster).await;
    let measured = "produce-latency";
    cluster
        .create_topic_assigned(1, measured, &[&[1, 2, 3]], &[("min.insync.replicas", "2")])
        .await
        .expect("create topic");
    let moved = "moved";
    let assignment: Vec<&[i32]> = (0..PARTITIONS).map(|_| &[1][..]).collect();
    cluster
        .create_topic_assigned(1, moved, &assignment, &[])
        .await
        .expect("create topic");
    let addrs = Addrs::of(&cluster);
    wait_leader_serving(&addrs, measured, 0, Duration::from_secs(30))
        .await
        .expect("leader serves");
    for p in 0..PARTITIONS {
        wait_leader_serving(&addrs, moved, p, Duration::from_secs(30))
            .await
            .expect("leader serves");
    }
    // Enough to keep the move going through every latency run and the
    // pauses between them (sync, process start), with half as much again.
    let runs_secs = LATENCY_RUNS as u64 * RUN_SECS;
    let bytes = bytes.unwrap_or(throttle * runs_secs * 3 / 2);
    produce_bytes(&cluster, moved, bytes, "1");
    let full_rate = match rate {
        Some(r) => r as f64,
        None => {
            settle();
            let full = perf_produce(
                &cluster,
                measured,
                records,
                1024,
                "all",
                -1.0,
                THROUGHPUT_PROPS,
            );
            f(&full, "records_per_sec")
        }
    };
    let half_rate = full_rate * 0.5;
    println!(
        "measured topic: 1 partition on brokers 1,2,3 (leader 1), RF=3, acks=all, 1 KiB records; {} {full_rate:.0} records/s, latency runs at {half_rate:.0}/s ({} runs of {RUN_SECS} s)",
        if rate.is_some() {
            "given rate"
        } else {
            "unthrottled"
        },
        LATENCY_RUNS,
    );
    println!(
        "move: {PARTITIONS} partitions of {moved} (RF=1, {} log bytes) from broker 1 to broker 4, `strom reassign execute --throttle {throttle}`",
        log_bytes(&cluster, 1, moved)
    );
    println!();
    println!(
        "| move | at 50%, median run: p50 / p99 / p99.9 ms | p99 of each run, ms | move during the runs: MB copied, MB/s |"
    );
    println!("|---|---|---|---|");
    let (alone, alone_each) = latency_runs(&cluster, measured, half_rate, LATENCY_PROPS);
    println!(
        "| none | {:.1} / {:.1} / {:.1} | {alone_each} | - |",
        f(&alone, "p50_latency_ms"),
        f(&alone, "p99_latency_ms"),
        f(&alone, "p999_latency_ms"),
    );

    // The move, throttled as an operator throttles it.
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = dir.path().join("plan.json");
    let partitions: Vec<serde_json::Value> = (0..PARTITIONS)
        .map(|p| serde_json::json!({"topic": moved, "partition": p, "replicas": [4]}))
        .collect();
    std::fs::write(
        &plan,
        serde_json::json!({"version": 1, "partitions": partitions}).to_string(),
    )
    .expect("write the plan");
    let plan = plan.display().to_string();
    let started = strom(&cluster)
        .args(["reassign", "execute", "--reassignment-json-file", &plan])
        .args(["--throttle", &throttle.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("run strom reassign execute");
    assert!(started.success(), "reassign execute failed");
    // The copy is under way before the clock starts.
    let copying = strom_integration_tests::wait_until(Duration::from_secs(60), || async {
        log_bytes(&cluster, 4, moved) > 0
    })
    .await;
    assert!(copying, "the move did not start copying within 60 s");
    let throttle_in_force = [
        (1, "strom_replication_throttle_rate_bytes{side=\"leader\"}"),
        (
            4,
            "strom_replication_throttle_rate_bytes{side=\"follower\"}",
        ),
    ]
    .map(|(id, series)| node_metric(&cluster, id, series).unwrap_or(f64::NAN));
    let (b0, t0) = (log_bytes(&cluster, 4, moved), Instant::now());
    let (during, during_each) = latency_runs(&cluster, measured, half_rate, LATENCY_PROPS);
    let (b1, took) = (log_bytes(&cluster, 4, moved), t0.elapsed());
    let still_moving = admin
        .list_partition_reassignments(None)
        .await
        .is_ok_and(|l| !l.is_empty());
    let copied = b1.saturating_sub(b0);
    let move_rate = copied as f64 / took.as_secs_f64();
    println!(
        "| throttled to {:.0} MB/s | {:.1} / {:.1} / {:.1} | {during_each} | {:.0} MB, {:.1} MB/s |",
        throttle as f64 / 1e6,
        f(&during, "p50_latency_ms"),
        f(&during, "p99_latency_ms"),
        f(&during, "p999_latency_ms"),
        copied as f64 / 1e6,
        move_rate / 1e6,
    );
    println!();
    println!(
        "p99 with the move minus without: {:+.1} ms (goal: within 5 ms); the move copied at {:.0}% of the throttle; throttle rates in force: leader side on broker 1 {:.0} B/s, follower side on broker 4 {:.0} B/s; throttled bytes: {:.0} served by broker 1, {:.0} fetched by broker 4",
        f(&during, "p99_latency_ms") - f(&alone, "p99_latency_ms"),
        100.0 * move_rate / throttle as f64,
        throttle_in_force[0],
        throttle_in_force[1],
        node_metric(
            &cluster,
            1,
            "strom_replication_throttled_bytes_total{side=\"leader\"}"
        )
        .unwrap_or(f64::NAN),
        node_metric(
            &cluster,
            4,
            "strom_replication_throttled_bytes_total{side=\"follower\"}"
        )
        .unwrap_or(f64::NAN),
    );
    if !still_moving {
        println!(
            "warning: the move completed before the last latency run ended: the runs were not all beside it (give more --bytes)"
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("all", String::as_str).to_owned();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let trials = value("--trials").unwrap_or(20) as usize;
    let records = value("--records").unwrap_or(2_000_000);
    let drop_behind = value("--cache-drop-behind").unwrap_or(16 << 20);
    let partitions = value("--partitions").map_or(1000, |p| i32::try_from(p).unwrap_or(1000));
    let bytes = value("--bytes");
    match mode.as_str() {
        "throughput" => throughput(records, drop_behind).await,
        "failover" => failover(trials).await,
        "failover-many" => failover_many(partitions, trials).await,
        "durable" => durable(records, drop_behind).await,
        "idempotence" => idempotence(records, drop_behind).await,
        "transactions" => transactions(records, drop_behind).await,
        "txn-latency" => txn_latency(value("--transactions").unwrap_or(1000).max(1)).await,
        "producer-restart" => {
            let producers =
                value("--producers").map_or(100_000, |n| i64::try_from(n).unwrap_or(100_000));
            producer_restart(producers.max(1)).await
        }
        "compaction" => compaction(records, drop_behind).await,
        "leader-moves" => leader_moves(partitions).await,
        "move-throughput" => move_throughput(bytes.unwrap_or(1 << 30)).await,
        "throttled-move" => {
            let throttle = value("--throttle").unwrap_or(20_000_000);
            throttled_move(records, value("--rate"), throttle, bytes).await
        }
        "decommission" => {
            let partitions = value("--partitions").map_or(100, |p| i32::try_from(p).unwrap_or(100));
            decommission(bytes.unwrap_or(2 << 30), partitions).await
        }
        "all" => {
            throughput(records, drop_behind).await;
            failover(trials).await;
        }
        other => {
            eprintln!(
                "unknown mode {other}: use throughput, failover, failover-many, durable, idempotence, transactions, txn-latency, producer-restart, compaction, leader-moves, move-throughput, decommission, throttled-move or all"
            );
            std::process::exit(2);
        }
    }
}
