//! Directed reproductions of problems the fault-injection runs found (see
//! `docs/reliability.md`, "Findings"): fixed ones guard the fix; one that
//! still fails is `#[ignore]`d with the reason (`cargo nextest run -p
//! strom-jepsen --run-ignored all` runs it).

use std::time::Duration;

use bytes::Bytes;
use strom_integration_tests::data::{
    Addrs, Outcome, batch, check_acked, log_on_disk, partition_metadata, partition_state_any,
    produce_retrying, read_from_leader,
};
use strom_integration_tests::{Cluster, ClusterOptions, wait_until};
use strom_jepsen::nemesis::storage;
use strom_proto::v1::{BrokerState, PartitionMetadata};

fn fast_options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false")
}

/// Waits until `topic`-0 has a leader and all three replicas in its ISR.
async fn wait_whole_isr(cluster: &Cluster, addrs: &Addrs, topic: &str) {
    let whole = wait_until(Duration::from_secs(30), || async {
        partition_state_any(addrs, topic, 0)
            .await
            .is_some_and(|(l, _, isr)| l >= 0 && isr.len() == 3)
    })
    .await;
    assert!(whole, "no full ISR\n{}", cluster.dump_logs());
}

/// The incarnation id node `id` registered with.
async fn incarnation(cluster: &Cluster, id: i32) -> String {
    let d = cluster.describe().await.expect("describe");
    d.brokers
        .into_iter()
        .find(|b| b.id == id)
        .map(|b| b.incarnation_id)
        .expect("the broker is registered")
}

/// Produces values `v<i>` for `range` to `topic`-0 one by one with acks=all,
/// each retried until acknowledged; returns (value, offset) per record.
async fn produce_acked(
    addrs: &Addrs,
    topic: &str,
    range: std::ops::Range<usize>,
) -> Vec<(Bytes, i64)> {
    let mut acked = Vec::new();
    for i in range {
        let v = Bytes::from(format!("v{i:05}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        match produce_retrying(addrs, topic, 0, batch(std::slice::from_ref(&v)), deadline).await {
            Outcome::Acked(o) => acked.push((v, o)),
            o => panic!("record {i}: {o:?}"),
        }
    }
    acked
}

/// Finding 3, found by `jepsen --seed 300 --faults kill-leader,kill-all,
/// pause-leader,partition-leader,b2b-failover,power-cut --nodes 5
/// --concurrency 2`: a broker restarted right after a kill -9 is refused
/// with DUPLICATE_BROKER_REGISTRATION while its previous incarnation's
/// lease lives; every controller failover re-arms all leases
/// (`Leases::rearm`), the dead incarnation's included, and the broker gave
/// up after 1.5 session timeouts of refusals (`lifecycle.rs`) and exited.
/// Fixed: the broker retries registration for as long as it is refused, as
/// Kafka's brokers do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_broker_outlasts_a_controller_failover_that_rearms_its_old_lease() {
    let mut cluster = Cluster::start(3, fast_options()).await;
    let controller = cluster.controller_leader().await.expect("a controller");
    let broker = *cluster
        .nodes
        .keys()
        .find(|id| **id != controller)
        .expect("another node");
    cluster.kill(broker);
    cluster.start_node(broker);
    // While the restarted broker waits for its old lease, the controller
    // fails over twice: each new one grants every registered broker, the
    // dead incarnation too, a fresh session timeout.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let Some(active) = cluster.controller_leader().await else {
            continue;
        };
        if active == broker {
            continue;
        }
        cluster.kill(active);
        wait_until(Duration::from_secs(10), || async {
            cluster
                .controller_leader()
                .await
                .is_some_and(|c| c != active)
        })
        .await;
        cluster.start_node(active);
    }
    // Until it has registered, it must keep running (before the fix it
    // gave up after 1.5 session timeouts of refusals and exited).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let ready = loop {
        assert!(
            cluster.running().contains(&broker),
            "node {broker} exited while registering\n{}",
            cluster.dump_logs()
        );
        let unfenced = cluster.describe().await.is_some_and(|d| {
            d.brokers
                .iter()
                .any(|b| b.id == broker && b.state == BrokerState::Unfenced as i32)
        });
        if unfenced || std::time::Instant::now() > deadline {
            break unfenced;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        ready,
        "node {broker} never registered\n{}",
        cluster.dump_logs()
    );
}

/// Finding 1, found by `jepsen --seed 13 --faults power-cut`: a leader that
/// lost the unflushed tail of its log (power cut) and came back before the
/// controller fenced it led again at its old epoch from the image, before
/// registering, and its followers truncated acknowledged records to its
/// shorter log. Fixed in `broker/src/replica/manager.rs`: no leadership
/// before the broker has registered and caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_back_from_a_power_cut_before_its_fencing_loses_no_acked_write() {
    let mut cluster = Cluster::start(3, fast_options()).await;
    cluster
        .create_topic(1, "cut", 1, 3, &[("min.insync.replicas", "2")])
        .await
        .expect("create topic");
    let addrs = Addrs::of(&cluster);
    wait_whole_isr(&cluster, &addrs, "cut").await;
    let acked = produce_acked(&addrs, "cut", 0..300).await;
    let (leader, epoch, _) = partition_state_any(&addrs, "cut", 0).await.expect("state");
    let incarnation = incarnation(&cluster, leader).await;
    cluster.kill(leader);
    let segment =
        storage::active_segment(&cluster.node(leader).data_dir, "cut", 0).expect("a segment");
    let len = std::fs::metadata(&segment).expect("stat").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open segment");
    f.set_len(len / 2).expect("cut the tail");
    drop(f);
    // Back before the session timeout: the controller still names it
    // leader at the same epoch.
    cluster.start_node(leader);
    // The damage, if any, is done by the time the node has registered
    // again (it led at its old epoch before registering) and every replica
    // is back in the ISR, caught up with whoever leads.
    let registered = wait_until(Duration::from_secs(30), || async {
        cluster.describe().await.is_some_and(|d| {
            d.brokers.iter().any(|b| {
                b.id == leader
                    && b.incarnation_id != incarnation
                    && b.state == BrokerState::Unfenced as i32
            })
        })
    })
    .await;
    assert!(
        registered,
        "node {leader} never registered again\n{}",
        cluster.dump_logs()
    );
    wait_whole_isr(&cluster, &addrs, "cut").await;
    let (_, log) = read_from_leader(&cluster, "cut", 0, Duration::from_secs(20)).await;
    let problems = check_acked(&acked, &log);
    assert!(
        problems.is_empty(),
        "node {leader} (leader at epoch {epoch}) lost half its segment and came back: {} of {} \
         acknowledged records lost or moved, e.g. {:?}\n{}",
        problems.len(),
        acked.len(),
        &problems[..problems.len().min(5)],
        cluster.dump_logs()
    );
    for id in cluster.running() {
        cluster.kill(id);
    }
    for id in [1, 2, 3] {
        let problems = check_acked(&acked, &log_on_disk(&cluster, id, "cut", 0));
        if id != leader {
            assert!(
                problems.is_empty(),
                "follower {id} cut acknowledged records: {} e.g. {:?}",
                problems.len(),
                &problems[..problems.len().min(5)]
            );
        }
    }
}

/// Found by the CI run of `faults::mixed_faults_lose_no_acked_write` (seed
/// 11920580819585367876): every node was killed; while they were down the
/// controller fenced the brokers one after another, each fencing shrinking
/// the ISR, until only the last one fenced was left in it. That replica
/// then lost the tail of its log (a flipped bit: recovery cut the damaged
/// batch, acknowledged records with it), came back, and as the sole ISR
/// member was elected leader with the shorter log; the others truncated to
/// it and new records reused acknowledged offsets. Fixed with Kafka's
/// KIP-966: the replica that left the ISR when it fell below
/// min.insync.replicas stays an eligible leader replica (the high
/// watermark no longer moves), and a broker reports the replicas that lost
/// records in recovery when it registers, which takes them out of the ISR
/// and eligible replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_isr_member_back_with_a_damaged_log_does_not_lead() {
    // Controllers 1-3; the partition lives on broker-only nodes 4-6, so all
    // its replicas can be down while the quorum goes on fencing them.
    let mut cluster = Cluster::start(3, fast_options().broker_only(3)).await;
    cluster
        .create_topic_assigned(1, "elr", &[&[4, 5, 6]], &[("min.insync.replicas", "2")])
        .await
        .expect("create topic");
    let addrs = Addrs::of(&cluster);
    wait_whole_isr(&cluster, &addrs, "elr").await;
    let mut acked = produce_acked(&addrs, "elr", 0..200).await;

    // Every replica dies; the controller fences them one by one.
    for id in [4, 5, 6] {
        cluster.kill(id);
    }
    // Node 1's image (a combined node): (leader, isr, elr).
    let view = |p: PartitionMetadata| (p.leader, p.isr, p.elr);
    let state = || async { partition_metadata(&addrs, 1, "elr", 0).await.map(view) };
    let all_fenced = wait_until(Duration::from_secs(30), || async {
        cluster.describe().await.is_some_and(|d| {
            d.brokers
                .iter()
                .filter(|b| b.id >= 4)
                .all(|b| b.state == BrokerState::Fenced as i32)
        }) && state()
            .await
            .is_some_and(|(l, isr, elr)| l < 0 && isr.len() == 1 && elr.len() == 1)
    })
    .await;
    let (_, isr, elr) = state().await.expect("node 1 answers");
    assert!(
        all_fenced,
        "expected no leader, one ISR member and one eligible replica, got isr {isr:?} elr {elr:?}\n{}",
        cluster.dump_logs()
    );
    let (last, eligible) = (isr[0], elr[0]);
    let third = [4, 5, 6]
        .into_iter()
        .find(|id| *id != last && *id != eligible)
        .expect("a third replica");

    // The last ISR member loses its newest (acknowledged) batch to a
    // flipped bit, and comes back alone.
    let segment =
        storage::active_segment(&cluster.node(last).data_dir, "elr", 0).expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read segment");
    let at = bytes.len() - 3;
    bytes[at] ^= 0x10;
    std::fs::write(&segment, &bytes).expect("write segment");
    cluster.start_node(last);
    let unfenced = |id: i32| {
        let cluster = &cluster;
        async move {
            cluster.describe().await.is_some_and(|d| {
                d.brokers
                    .iter()
                    .any(|b| b.id == id && b.state == BrokerState::Unfenced as i32)
            })
        }
    };
    let back = wait_until(Duration::from_secs(30), || unfenced(last)).await;
    assert!(back, "node {last} never unfenced\n{}", cluster.dump_logs());
    // Its registration names the damaged replica; the controller then
    // moves the eligible replica into the ISR in its place.
    let replaced = wait_until(Duration::from_secs(10), || async {
        state()
            .await
            .is_some_and(|(_, isr, elr)| isr == vec![eligible] && elr.is_empty())
    })
    .await;
    let (leader, isr, elr) = state().await.expect("node 1 answers");
    assert!(
        replaced && leader != last && isr == vec![eligible] && elr.is_empty(),
        "node {last} lost acknowledged records but is leader {leader}, isr {isr:?}, elr {elr:?}; \
         the eligible replica {eligible} must take its place\n{}",
        cluster.dump_logs()
    );

    // The eligible replica comes back and leads; nothing acknowledged is lost.
    cluster.start_node(eligible);
    cluster.start_node(third);
    let whole = wait_until(Duration::from_secs(60), || async {
        state()
            .await
            .is_some_and(|(l, isr, _)| l == eligible && isr.len() == 3)
    })
    .await;
    assert!(
        whole,
        "ISR never whole again under node {eligible}: {:?}\n{}",
        state().await,
        cluster.dump_logs()
    );
    acked.extend(produce_acked(&addrs, "elr", 200..220).await);
    let (_, log) = read_from_leader(&cluster, "elr", 0, Duration::from_secs(20)).await;
    let problems = check_acked(&acked, &log);
    assert!(
        problems.is_empty(),
        "{} of {} acknowledged records lost or moved, e.g. {:?}\n{}",
        problems.len(),
        acked.len(),
        &problems[..problems.len().min(5)],
        cluster.dump_logs()
    );
    for id in cluster.running() {
        cluster.kill(id);
    }
    for id in [4, 5, 6] {
        let problems = check_acked(&acked, &log_on_disk(&cluster, id, "elr", 0));
        assert!(
            problems.is_empty(),
            "replica {id} differs from what was acknowledged: {} e.g. {:?}",
            problems.len(),
            &problems[..problems.len().min(5)]
        );
    }
}

/// Tests that mount a tmpfs (root).
mod needs_root {
    use strom_jepsen::env::{Env, EnvOptions};

    use super::*;

    /// Finding 4, found by `jepsen --seed 5 --faults disk-full`: a leader
    /// whose disk was full kept its partitions and answered every produce
    /// with KAFKA_STORAGE_ERROR until the disk was freed. Fixed as Kafka's
    /// KIP-112: the write error takes the log directory offline, the
    /// broker's next heartbeat reports it, and the controller fences the
    /// broker, so its leaderships move to the other ISR members at once.
    /// The directory stays offline until the broker restarts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leader_on_a_full_disk_hands_its_leadership_over() {
        assert!(
            strom_jepsen::nemesis::net::is_root(),
            "mounting a tmpfs needs root (scripts/test skips needs_root:: tests otherwise)"
        );
        let full = 1;
        let mut env = Env::start(&EnvOptions {
            nodes: 3,
            settings: vec![
                ("broker.session.timeout.ms".into(), "3000".into()),
                ("broker.heartbeat.interval.ms".into(), "500".into()),
                ("auto.leader.rebalance.enable".into(), "false".into()),
            ],
            firewall: false,
            tmpfs: Some((full, 64 << 20)),
            sync_journal: None,
        })
        .await
        .expect("environment");
        let addrs = env.addrs();
        let topic = "full-disk";
        env.cluster()
            .create_topic_assigned(2, topic, &[&[full, 2, 3]], &[("min.insync.replicas", "2")])
            .await
            .expect("create topic");
        wait_whole_isr(env.cluster(), &addrs, topic).await;
        let mut acked = produce_acked(&addrs, topic, 0..20).await;
        let (leader, epoch, _) = partition_state_any(&addrs, topic, 0).await.expect("state");
        assert_eq!(leader, full);

        env.fill_disk().expect("fill the disk");
        // Records big enough that the full leader's next append needs a
        // page it cannot get.
        for i in 20..60 {
            let v = Bytes::from(format!("v{i:05}-{}", "x".repeat(8192)));
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            match produce_retrying(&addrs, topic, 0, batch(std::slice::from_ref(&v)), deadline)
                .await
            {
                Outcome::Acked(o) => acked.push((v, o)),
                o => panic!(
                    "record {i} not acknowledged with node {full}'s disk full: {o:?}\n{}",
                    env.cluster().dump_logs()
                ),
            }
        }
        let (leader, new_epoch, isr) = partition_state_any(&addrs, topic, 0).await.expect("state");
        assert!(
            leader != full && new_epoch > epoch && !isr.contains(&full),
            "leader {leader} epoch {new_epoch} isr {isr:?}: node {full} still leads or is in the ISR\n{}",
            env.cluster().dump_logs()
        );
        let logs = env.cluster().node(full).logs();
        assert!(
            logs.contains("log directory offline"),
            "node {full} never took its log directory offline"
        );
        let fenced = env.cluster().describe().await.is_some_and(|d| {
            d.brokers
                .iter()
                .any(|b| b.id == full && b.state == BrokerState::Fenced as i32)
        });
        assert!(fenced, "node {full} is not fenced");
        // Operators see it: /readyz names the directory, /metrics counts it.
        let port = env.cluster().node(full).admin_port;
        let ready = strom_integration_tests::admin_get(port, "/readyz");
        assert!(
            ready
                .as_ref()
                .is_some_and(|(status, body)| *status == 503 && body.contains("log directory")),
            "{ready:?}"
        );
        let metrics = strom_integration_tests::admin_get(port, "/metrics");
        assert!(
            metrics
                .as_ref()
                .is_some_and(|(_, body)| body.lines().any(|l| l == "strom_log_dirs_offline 1")),
            "no strom_log_dirs_offline 1 in /metrics"
        );

        // Freeing the disk and restarting the broker brings it back.
        let (done, _) = env.heal().expect("heal");
        assert!(
            done.iter()
                .any(|d| d.contains(&format!("restarted node {full}"))),
            "{done:?}"
        );
        wait_whole_isr(env.cluster(), &addrs, topic).await;
        let (_, log) = read_from_leader(env.cluster(), topic, 0, Duration::from_secs(20)).await;
        let problems = check_acked(&acked, &log);
        assert!(problems.is_empty(), "{problems:?}");
    }
}

mod needs_firewall {
    use strom_client::{Consumer, ConsumerConfig, OffsetReset, TopicPartition};
    use strom_jepsen::env::{Env, EnvOptions};
    use strom_jepsen::nemesis::net::Cut;

    use super::*;

    /// A group consumer on `bootstrap` that starts at the committed offsets
    /// (else at the earliest), committing only by hand.
    fn group_consumer(bootstrap: &str, group: &str) -> ConsumerConfig {
        let mut config = ConsumerConfig::new(bootstrap).expect("valid bootstrap list");
        config.group_id = Some(group.to_owned());
        config.auto_offset_reset = OffsetReset::Earliest;
        config.enable_auto_commit = false;
        config.session_timeout = Duration::from_secs(6);
        config.client.request_timeout = Duration::from_secs(5);
        config.client.connect_timeout = Duration::from_millis(500);
        config
    }

    /// Polls until a poll returns records; returns their offsets.
    async fn first_offsets(consumer: &mut Consumer, within: Duration) -> Vec<i64> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(500)).await {
                Ok(records) if !records.is_empty() => {
                    return records.iter().map(|r| r.offset).collect();
                }
                Ok(_) => {}
                Err(e) => eprintln!("poll: {e}"),
            }
        }
        Vec::new()
    }

    /// Finding 8, found by the group workload (`jepsen --seed
    /// 6013565326138027178 --faults partition-leader,kill-coordinator`): a
    /// member given a partition started at offset 0 though the group had
    /// committed 271. The partition's old leader, cut off from every other
    /// node, still named itself leader to clients that asked it; its log
    /// ended below the committed offset, so it answered the member's fetch
    /// with OFFSET_OUT_OF_RANGE and the member reset to
    /// `auto.offset.reset=earliest`. Fixed as Kafka's KIP-320: a position
    /// carries the leader epoch of the record before it (the committed
    /// offset's, or the last one returned), and the consumer fetches only
    /// from a leader at that epoch or a later one, asking another node for
    /// metadata while its image names an older leader.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cut_off_leader_never_resets_a_committed_position() {
        let mut env = Env::start(&EnvOptions {
            nodes: 3,
            settings: vec![
                ("broker.session.timeout.ms".into(), "3000".into()),
                ("broker.heartbeat.interval.ms".into(), "500".into()),
                ("auto.leader.rebalance.enable".into(), "false".into()),
            ],
            firewall: true,
            tmpfs: None,
            sync_journal: None,
        })
        .await
        .expect("environment");
        let addrs = env.addrs();
        let topic = "stale-leader";
        let isolated = 1;
        env.cluster()
            .create_topic_assigned(
                2,
                topic,
                &[&[isolated, 2, 3]],
                &[("min.insync.replicas", "2")],
            )
            .await
            .expect("create topic");
        wait_whole_isr(env.cluster(), &addrs, topic).await;
        produce_acked(&addrs, topic, 0..50).await;

        // A group whose coordinator is not on the node to be cut off (so
        // both of its images name the same coordinator); committing an
        // offset creates the offsets topic.
        let fresh = format!("{},{}", addrs.0[&2], addrs.0[&3]);
        let mut group = None;
        for i in 0..50 {
            let id = format!("stale-{i}");
            let p = strom_group::offsets_partition_for(&id, 50);
            let mut c = Consumer::connect(group_consumer(&fresh, &id))
                .await
                .expect("connect");
            let tp = TopicPartition::new(topic, 0);
            let offsets = [(tp, strom_client::OffsetAndMetadata::new(0))].into();
            if let Err(e) = c.commit_sync_offsets(offsets).await {
                panic!("first commit of {id}: {e}\n{}", env.cluster().dump_logs());
            }
            let leader = partition_state_any(&addrs, "__consumer_offsets", p)
                .await
                .map(|(l, _, _)| l);
            if leader.is_some_and(|l| l != isolated) {
                group = Some(id);
                break;
            }
        }
        let group = group.expect("a group coordinated away from node 1");

        // Cut the leader off; the controller fences it and moves the
        // leadership; 50 more records go to the new leader.
        let (_, epoch, _) = partition_state_any(&addrs, topic, 0).await.expect("state");
        env.partition(&[vec![isolated], vec![2, 3]], Cut::All)
            .expect("cut node 1 off");
        let moved = wait_until(Duration::from_secs(30), || async {
            partition_state_any(&addrs, topic, 0)
                .await
                .is_some_and(|(l, e, _)| l != isolated && e > epoch)
        })
        .await;
        assert!(
            moved,
            "the leadership never moved\n{}",
            env.cluster().dump_logs()
        );
        produce_acked(&addrs, topic, 50..100).await;

        // A member reads everything from the new leader and commits 100,
        // with the new leader's epoch.
        let mut first = Consumer::connect(group_consumer(&fresh, &group))
            .await
            .expect("connect");
        first.subscribe([topic]).await.expect("subscribe");
        let mut read = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        while read < 100 && std::time::Instant::now() < deadline {
            if let Ok(records) = first.poll(Duration::from_millis(500)).await {
                read = records.last().map_or(read, |r| r.offset + 1);
            }
        }
        assert_eq!(read, 100, "the first member did not read everything");
        first.commit_sync().await.expect("commit 100");
        first.close().await.expect("close");

        // The next member asks the cut-off node first: its image still
        // names itself leader at the old epoch, and its log ends at 50.
        let stale_first = format!("{},{fresh}", addrs.0[&isolated]);
        let mut next = Consumer::connect(group_consumer(&stale_first, &group))
            .await
            .expect("connect");
        next.subscribe([topic]).await.expect("subscribe");
        produce_acked(&addrs, topic, 100..110).await;
        let offsets = first_offsets(&mut next, Duration::from_secs(40)).await;
        assert_eq!(
            offsets.first(),
            Some(&100),
            "the next member did not start at the committed offset 100: {offsets:?}\n{}",
            env.cluster().dump_logs()
        );
        let _ = next.close().await;
        env.heal().expect("heal");
    }
}
