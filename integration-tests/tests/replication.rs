//! The replicated data path on real processes: RF=3, min.insync.replicas=2,
//! acks=all unless stated. Producers here are raw `BrokerService` calls
//! with a simple retry loop, so what is checked is the broker's promise:
//! an acknowledged record is never lost or moved, and replicas never
//! diverge.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_integration_tests::data::{
    Addrs, Outcome, batch, check_acked, check_prefix_consistent, log_on_disk, partition_state_any,
    produce_once, produce_retrying, read_from_leader, wait_leader_serving,
};
use strom_integration_tests::{Cluster, ClusterOptions, wait_until};
use strom_proto::v1::ErrorCode;

fn fast_options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("replica.lag.time.max.ms", "5000")
        .set("auto.leader.rebalance.enable", "false")
}

/// Creates `topic` (1 partition, RF=3, min ISR `min_isr`) and waits until
/// all three replicas are in the ISR.
async fn create_replicated(cluster: &Cluster, topic: &str, min_isr: &str) {
    cluster
        .create_topic(1, topic, 1, 3, &[("min.insync.replicas", min_isr)])
        .await
        .expect("create topic");
    wait_isr(cluster, topic, 3, Duration::from_secs(30)).await;
    wait_leader_serving(&Addrs::of(cluster), topic, 0, Duration::from_secs(10))
        .await
        .expect("leader serves");
}

async fn wait_isr(cluster: &Cluster, topic: &str, size: usize, timeout: Duration) {
    let addrs = Addrs::of(cluster);
    let ok = wait_until(timeout, || async {
        partition_state_any(&addrs, topic, 0)
            .await
            .is_some_and(|(l, _, isr)| l >= 0 && isr.len() == size)
    })
    .await;
    assert!(
        ok,
        "{topic}-0 did not reach an ISR of {size} within {timeout:?}: {:?}\n{}",
        partition_state_any(&addrs, topic, 0).await,
        cluster.dump_logs()
    );
}

async fn leader(cluster: &Cluster, topic: &str) -> (i32, i32, Vec<i32>) {
    let addrs = Addrs::of(cluster);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = partition_state_any(&addrs, topic, 0).await
            && s.0 >= 0
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}-0 has no leader\n{}",
            cluster.dump_logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until a leader other than `old` (at a newer epoch) leads.
async fn wait_new_leader(cluster: &Cluster, topic: &str, old: i32, old_epoch: i32) -> (i32, i32) {
    let addrs = Addrs::of(cluster);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((l, e, _)) = partition_state_any(&addrs, topic, 0).await
            && l >= 0
            && l != old
            && e > old_epoch
        {
            return (l, e);
        }
        assert!(
            Instant::now() < deadline,
            "no new leader for {topic}-0\n{}",
            cluster.dump_logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Acknowledged `(value, offset)`s, and every other outcome described.
type ProducerHistory = (Vec<(Bytes, i64)>, Vec<String>);

/// A producer task sending unique values one batch at a time until
/// stopped; returns every acknowledged `(value, offset)` and the number of
/// values that ended otherwise.
fn spawn_producer(
    addrs: Addrs,
    topic: &'static str,
    stop: Arc<AtomicBool>,
    prefix: &'static str,
) -> tokio::task::JoinHandle<ProducerHistory> {
    tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut other = Vec::new();
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let value = Bytes::from(format!("{prefix}-{i}"));
            i += 1;
            let deadline = Instant::now() + Duration::from_secs(40);
            match produce_retrying(
                &addrs,
                topic,
                0,
                batch(std::slice::from_ref(&value)),
                deadline,
            )
            .await
            {
                Outcome::Acked(offset) => acked.push((value, offset)),
                o => other.push(format!("{value:?}: {o:?}")),
            }
        }
        (acked, other)
    })
}

/// Stops every node (kill -9) and checks the replicas' logs on disk
/// against each other and against the acknowledged records.
fn check_replicas_on_disk(
    cluster: &mut Cluster,
    topic: &str,
    acked: &[(Bytes, i64)],
    replicas: &[i32],
) {
    for id in cluster.running() {
        cluster.kill(id);
    }
    let logs: Vec<(i32, Vec<(i64, Bytes)>)> = replicas
        .iter()
        .map(|id| (*id, log_on_disk(cluster, *id, topic, 0)))
        .collect();
    let problems = check_prefix_consistent(&logs);
    assert!(problems.is_empty(), "replicas diverge: {problems:?}");
    for (id, log) in &logs {
        let problems = check_acked(acked, log);
        assert!(
            problems.is_empty(),
            "node {id} lacks acknowledged records: {:?}",
            &problems[..problems.len().min(10)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_writes_survive_chasing_the_leader() {
    let mut cluster = Cluster::start(3, fast_options()).await;
    create_replicated(&cluster, "chase", "2").await;
    let stop = Arc::new(AtomicBool::new(false));
    let producer = spawn_producer(Addrs::of(&cluster), "chase", stop.clone(), "chase");

    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (old, epoch, _) = leader(&cluster, "chase").await;
        cluster.kill(old);
        wait_new_leader(&cluster, "chase", old, epoch).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.start_node(old);
        wait_isr(&cluster, "chase", 3, Duration::from_secs(40)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, other) = producer.await.expect("producer task");
    assert!(
        acked.len() >= 20,
        "too few acknowledged records: {} ({other:?})",
        acked.len()
    );

    let (hw, log) = read_from_leader(&cluster, "chase", 0, Duration::from_secs(20)).await;
    let problems = check_acked(&acked, &log);
    assert!(
        problems.is_empty(),
        "lost or moved acknowledged records: {problems:?}"
    );
    let max_acked = acked.iter().map(|(_, o)| *o).max().unwrap_or(-1);
    assert!(
        hw > max_acked,
        "high watermark {hw} below acked offset {max_acked}"
    );
    check_replicas_on_disk(&mut cluster, "chase", &acked, &[1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_follower_leaves_isr_and_rejoins_after_catching_up() {
    let mut cluster = Cluster::start(3, fast_options()).await;
    create_replicated(&cluster, "follow", "2").await;
    let addrs = Addrs::of(&cluster);
    let mut acked = Vec::new();
    let produce = async |acked: &mut Vec<(Bytes, i64)>, from: usize, n: usize| {
        for i in from..from + n {
            let v = Bytes::from(format!("follow-{i}"));
            let deadline = Instant::now() + Duration::from_secs(30);
            match produce_retrying(
                &addrs,
                "follow",
                0,
                batch(std::slice::from_ref(&v)),
                deadline,
            )
            .await
            {
                Outcome::Acked(o) => acked.push((v, o)),
                o => panic!("record {i} not acknowledged: {o:?}"),
            }
        }
    };
    produce(&mut acked, 0, 30).await;
    let (lead, _, isr) = leader(&cluster, "follow").await;
    let follower = *isr.iter().find(|r| **r != lead).expect("a follower");
    cluster.kill(follower);
    // Produce continues with the two others once the follower is out.
    produce(&mut acked, 30, 30).await;
    let addrs2 = addrs.clone();
    let out = wait_until(Duration::from_secs(30), || async {
        partition_state_any(&addrs2, "follow", 0)
            .await
            .is_some_and(|(_, _, isr)| !isr.contains(&follower))
    })
    .await;
    assert!(out, "follower {follower} never left the ISR");
    cluster.start_node(follower);
    wait_isr(&cluster, "follow", 3, Duration::from_secs(40)).await;
    produce(&mut acked, 60, 10).await;
    let (_, log) = read_from_leader(&cluster, "follow", 0, Duration::from_secs(20)).await;
    let problems = check_acked(&acked, &log);
    assert!(problems.is_empty(), "{problems:?}\n{}", cluster.dump_logs());
    check_replicas_on_disk(&mut cluster, "follow", &acked, &[1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isr_below_min_insync_replicas_refuses_acks_all_and_writes_nothing() {
    let mut cluster = Cluster::start(3, fast_options()).await;
    create_replicated(&cluster, "strict", "3").await;
    let addrs = Addrs::of(&cluster);
    let (lead, _, isr) = leader(&cluster, "strict").await;
    let ok = produce_once(
        &addrs,
        lead,
        "strict",
        0,
        batch(&[Bytes::from("before")]),
        -1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(ok, Ok(0), "with a full ISR acks=all succeeds");
    let follower = *isr.iter().find(|r| **r != lead).expect("a follower");
    cluster.kill(follower);
    wait_isr(&cluster, "strict", 2, Duration::from_secs(30)).await;
    let (lead, _, _) = leader(&cluster, "strict").await;
    let (hw_before, _) = read_from_leader(&cluster, "strict", 0, Duration::from_secs(10)).await;
    for _ in 0..3 {
        let err = produce_once(
            &addrs,
            lead,
            "strict",
            0,
            batch(&[Bytes::from("refused")]),
            -1,
            Duration::from_secs(5),
        )
        .await
        .expect_err("acks=all below min ISR must fail");
        assert_eq!(err.code, ErrorCode::NotEnoughReplicas, "{err}");
    }
    let (hw_after, log) = read_from_leader(&cluster, "strict", 0, Duration::from_secs(10)).await;
    assert_eq!(hw_before, hw_after);
    assert!(log.iter().all(|(_, v)| v != "refused"));
    // acks=1 does not need the ISR.
    let one = produce_once(
        &addrs,
        lead,
        "strict",
        0,
        batch(&[Bytes::from("acks1")]),
        1,
        Duration::from_secs(5),
    )
    .await;
    assert!(one.is_ok(), "acks=1 still writes: {one:?}");
    cluster.start_node(follower);
    wait_isr(&cluster, "strict", 3, Duration::from_secs(40)).await;
    // The leader applies the new ISR a moment after other nodes may show it.
    let back = produce_retrying(
        &addrs,
        "strict",
        0,
        batch(&[Bytes::from("after")]),
        Instant::now() + Duration::from_secs(10),
    )
    .await;
    assert!(
        matches!(back, Outcome::Acked(_)),
        "acks=all works again once the ISR is whole: {back:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_leader_acknowledges_nothing_with_its_stale_epoch() {
    let mut cluster = Cluster::start(3, fast_options()).await;
    create_replicated(&cluster, "zombie", "2").await;
    let addrs = Addrs::of(&cluster);
    let mut acked = Vec::new();
    for i in 0..20 {
        let v = Bytes::from(format!("before-{i}"));
        match produce_retrying(
            &addrs,
            "zombie",
            0,
            batch(std::slice::from_ref(&v)),
            Instant::now() + Duration::from_secs(20),
        )
        .await
        {
            Outcome::Acked(o) => acked.push((v, o)),
            o => panic!("{o:?}"),
        }
    }
    let (old, epoch, _) = leader(&cluster, "zombie").await;
    cluster.pause(old);
    // Requests sent to the paused leader wait in its socket.
    let zombie_writes: Vec<_> = (0..5)
        .map(|i| {
            let addrs = addrs.clone();
            tokio::spawn(async move {
                produce_once(
                    &addrs,
                    old,
                    "zombie",
                    0,
                    batch(&[Bytes::from(format!("zombie-{i}"))]),
                    -1,
                    Duration::from_secs(8),
                )
                .await
            })
        })
        .collect();
    let (new, _) = wait_new_leader(&cluster, "zombie", old, epoch).await;
    for i in 0..20 {
        let v = Bytes::from(format!("after-{i}"));
        match produce_retrying(
            &addrs,
            "zombie",
            0,
            batch(std::slice::from_ref(&v)),
            Instant::now() + Duration::from_secs(20),
        )
        .await
        {
            Outcome::Acked(o) => acked.push((v, o)),
            o => panic!("{o:?}\n{}", cluster.dump_logs()),
        }
    }
    cluster.resume(old);
    for w in zombie_writes {
        let r = w.await.expect("zombie task");
        assert!(r.is_err(), "the deposed leader acknowledged a write: {r:?}");
    }
    // The old leader rejoins as a follower of the new one, truncating what
    // it wrote on its own.
    wait_isr(&cluster, "zombie", 3, Duration::from_secs(40)).await;
    let (now_leader, _, _) = leader(&cluster, "zombie").await;
    assert_ne!(now_leader, -1);
    let _ = new;
    let (_, log) = read_from_leader(&cluster, "zombie", 0, Duration::from_secs(20)).await;
    let problems = check_acked(&acked, &log);
    assert!(problems.is_empty(), "{problems:?}\n{}", cluster.dump_logs());
    let zombies: Vec<_> = log
        .iter()
        .filter(|(_, v)| v.starts_with(b"zombie"))
        .collect();
    assert!(
        zombies.is_empty(),
        "a write sent only to the deposed leader {old} became visible: {zombies:?} (log len {})\n{}",
        log.len(),
        cluster.dump_logs()
    );
    check_replicas_on_disk(&mut cluster, "zombie", &acked, &[1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_leader_failovers_keep_replicas_consistent() {
    // Five nodes, so the controller quorum survives losing two of the
    // partition's three replicas.
    let mut cluster = Cluster::start(5, fast_options()).await;
    create_replicated(&cluster, "b2b", "2").await;
    let (_, _, replicas) = leader(&cluster, "b2b").await;
    let stop = Arc::new(AtomicBool::new(false));
    let producer = spawn_producer(Addrs::of(&cluster), "b2b", stop.clone(), "b2b");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // First failover, then kill the new leader the moment it is elected,
    // before the remaining follower had a fetch round trip with it.
    let (first, epoch, _) = leader(&cluster, "b2b").await;
    cluster.kill(first);
    let (second, epoch2) = wait_new_leader(&cluster, "b2b", first, epoch).await;
    cluster.kill(second);
    wait_new_leader(&cluster, "b2b", second, epoch2).await;
    cluster.start_node(first);
    cluster.start_node(second);
    wait_isr(&cluster, "b2b", 3, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, other) = producer.await.expect("producer");
    assert!(!acked.is_empty(), "nothing acknowledged: {other:?}");
    let (_, log) = read_from_leader(&cluster, "b2b", 0, Duration::from_secs(20)).await;
    let problems = check_acked(&acked, &log);
    assert!(problems.is_empty(), "{problems:?}");
    check_replicas_on_disk(&mut cluster, "b2b", &acked, &replicas);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controlled_shutdown_of_a_leader_loses_nothing_and_shows_no_errors() {
    let mut cluster = Cluster::start(3, fast_options()).await;
    create_replicated(&cluster, "graceful", "2").await;
    let stop = Arc::new(AtomicBool::new(false));
    let producer = spawn_producer(Addrs::of(&cluster), "graceful", stop.clone(), "g");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (old, _, _) = leader(&cluster, "graceful").await;
    let status = cluster.terminate(old, Duration::from_secs(30));
    assert!(status.success(), "controlled shutdown exit: {status:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.start_node(old);
    wait_isr(&cluster, "graceful", 3, Duration::from_secs(40)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, other) = producer.await.expect("producer");
    assert!(other.is_empty(), "the producer saw failures: {other:?}");
    let (_, log) = read_from_leader(&cluster, "graceful", 0, Duration::from_secs(20)).await;
    let problems = check_acked(&acked, &log);
    assert!(problems.is_empty(), "{problems:?}\n{}", cluster.dump_logs());
    check_replicas_on_disk(&mut cluster, "graceful", &acked, &[1, 2, 3]);
}
