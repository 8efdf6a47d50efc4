//! Controller benchmarks on a real local three-node cluster (the numbers in
//! docs/benchmarks.md come from here):
//!
//! * `failover`: kill -9 the controller leader → first metadata write
//!   committed by the new leader (p50/p99 over N trials).
//! * `throughput`: partition records committed per second, fsync on.
//! * `propagation`: topic created → served by every broker (p50/p99).
//! * `scale`: 100,000 partitions — snapshot size and time, restart-to-serving
//!   time of a voter.
//!
//! Usage: `controller_bench [failover|throughput|propagation|scale|all] [--trials N]`
//! (build `stromd` first; `scripts/bench-controller` does both).

use std::time::{Duration, Instant};

use strom_integration_tests::{Cluster, ClusterOptions, wait_until};
use strom_proto::v1::{CreatableTopic, CreateTopicsRequest, ErrorCode};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn failover(trials: usize) {
    let mut cluster = Cluster::start(3, ClusterOptions::default()).await;
    let mut samples = Vec::new();
    for trial in 0..trials {
        let leader = cluster.controller_leader().await.expect("leader");
        let via = (1..=3).find(|id| *id != leader).expect("follower");
        cluster.kill(leader);
        let start = Instant::now();
        cluster
            .create_topic(via, &format!("failover-{trial}"), 1, 1, &[])
            .await
            .expect("write after failover");
        samples.push(start.elapsed());
        cluster.start_node(leader);
        cluster.wait_ready(Duration::from_secs(60)).await;
    }
    samples.sort();
    println!(
        "failover: trials={trials} p50={:.0}ms p99={:.0}ms min={:.0}ms max={:.0}ms",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}

async fn throughput() {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    let topics = 40;
    let partitions = 250;
    let writers = 4;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut client = cluster.controller_client(1 + (w % 3));
        tasks.push(tokio::spawn(async move {
            for t in (w..topics).step_by(writers as usize) {
                let req = CreateTopicsRequest {
                    topics: vec![CreatableTopic {
                        name: format!("tp-{t}"),
                        num_partitions: partitions,
                        replication_factor: 3,
                        ..Default::default()
                    }],
                    validate_only: false,
                };
                let r = client
                    .create_topics(req)
                    .await
                    .expect("create")
                    .into_inner();
                assert_eq!(r.topics[0].error_code, ErrorCode::None as i32, "{r:?}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let elapsed = start.elapsed();
    let records = topics * (partitions + 1);
    println!(
        "throughput: {records} records ({topics} topics x {partitions} partitions, RF=3) in {:.2}s = {:.0} partition records/s",
        elapsed.as_secs_f64(),
        f64::from(u32::try_from(topics * partitions).expect("fits")) / elapsed.as_secs_f64()
    );
    // Small batches: one record-pair per entry, the worst case for fsync.
    let start = Instant::now();
    let n = 200;
    for i in 0..n {
        cluster
            .create_topic(1, &format!("small-{i}"), 1, 1, &[])
            .await
            .expect("create");
    }
    let elapsed = start.elapsed();
    println!(
        "throughput: {n} single-partition topics sequentially: {:.0} commits/s ({:.2} ms each)",
        f64::from(n) / elapsed.as_secs_f64(),
        ms(elapsed) / f64::from(n)
    );
}

async fn propagation(trials: usize) {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    let mut samples = Vec::new();
    for i in 0..trials {
        let name = format!("prop-{i}");
        let start = Instant::now();
        cluster
            .create_topic(1, &name, 1, 1, &[])
            .await
            .expect("create");
        for id in 1..=3 {
            loop {
                if cluster
                    .metadata(id, &[&name])
                    .await
                    .is_ok_and(|m| m.topics[0].error_code == 0)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    println!(
        "propagation: trials={trials} p50={:.1}ms p99={:.1}ms max={:.1}ms (create acknowledged + visible on all 3 brokers)",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        ms(samples[samples.len() - 1])
    );
}

async fn scale() {
    let options = ClusterOptions::default().set("metadata.snapshot.interval.entries", "40");
    let mut cluster = Cluster::start(3, options).await;
    let start = Instant::now();
    let topics = 100;
    for t in 0..topics {
        cluster
            .create_topic(1 + (t % 3), &format!("big-{t}"), 1000, 3, &[])
            .await
            .expect("create");
    }
    println!(
        "scale: created 100,000 partitions (RF=3) in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    // Let a snapshot be built over the full image.
    for i in 0..45 {
        cluster
            .create_topic(1, &format!("pad-{i}"), 1, 1, &[])
            .await
            .expect("create");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = cluster.controller_leader().await.expect("leader");
    let victim = (1..=3).find(|id| *id != leader).expect("follower");
    for line in cluster
        .node(victim)
        .logs()
        .lines()
        .filter(|l| l.contains("built metadata snapshot"))
    {
        println!(
            "scale: {}",
            line.split("built metadata snapshot")
                .nth(1)
                .unwrap_or(line)
                .trim()
        );
    }
    cluster.kill(victim);
    let start = Instant::now();
    cluster.start_node(victim);
    let serving = wait_until(Duration::from_secs(120), || async {
        cluster.metadata(victim, &[]).await.is_ok_and(|m| {
            m.topics.iter().map(|t| t.partitions.len()).sum::<usize>() >= 100_000 + 45
        })
    })
    .await;
    assert!(serving, "restarted node did not serve the image");
    let serving_at = start.elapsed();
    let voter_ok = wait_until(Duration::from_secs(60), || async {
        cluster
            .describe()
            .await
            .and_then(|d| d.controller)
            .is_some_and(|c| c.voters.iter().all(|v| v.lag == 0))
    })
    .await;
    println!(
        "scale: restart of voter {victim} → its broker serves all 100,045 partitions after {:.2}s (voter caught up: {voter_ok})",
        serving_at.as_secs_f64()
    );
    for line in cluster
        .node(victim)
        .logs()
        .lines()
        .filter(|l| l.contains("restored metadata image"))
    {
        println!("scale: {}", line.trim());
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("all").to_owned();
    let trials = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1))
        .and_then(|t| t.parse().ok())
        .unwrap_or(20);
    if which == "failover" || which == "all" {
        failover(trials).await;
    }
    if which == "throughput" || which == "all" {
        throughput().await;
    }
    if which == "propagation" || which == "all" {
        propagation(trials.max(50)).await;
    }
    if which == "scale" || which == "all" {
        scale().await;
    }
}
