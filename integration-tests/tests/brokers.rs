//! Broker lifecycle: fencing on lost lease, controlled shutdown, automatic
//! preferred-leader rebalancing.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_integration_tests::{Cluster, ClusterOptions, wait_until};
use strom_proto::v1::{BrokerState, MetadataRequest, MetadataResponse, PartitionMetadata};

fn fast_options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
}

fn partitions(m: &MetadataResponse, topic: &str) -> BTreeMap<i32, PartitionMetadata> {
    m.topics
        .iter()
        .find(|t| t.name == topic)
        .map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition, p.clone()))
                .collect()
        })
        .unwrap_or_default()
}

async fn broker_state(cluster: &Cluster, id: i32) -> Option<i32> {
    let d = cluster.describe().await?;
    d.brokers.iter().find(|b| b.id == id).map(|b| b.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_broker_is_fenced_and_its_partitions_move_to_isr_members() {
    let mut cluster = Cluster::start(
        3,
        fast_options().set("auto.leader.rebalance.enable", "false"),
    )
    .await;
    let controller = cluster.controller_leader().await.expect("leader");
    let victim = (1..=3)
        .find(|id| *id != controller)
        .expect("a non-controller node");
    let survivor = (1..=3).find(|id| *id != victim).expect("survivor");
    cluster
        .create_topic(survivor, "fence", 6, 3, &[])
        .await
        .expect("create");
    let ok = wait_until(Duration::from_secs(10), || async {
        cluster
            .metadata(survivor, &["fence"])
            .await
            .is_ok_and(|m| partitions(&m, "fence").len() == 6)
    })
    .await;
    assert!(ok);
    let before = partitions(
        &cluster
            .metadata(survivor, &["fence"])
            .await
            .expect("metadata"),
        "fence",
    );
    let led_by_victim: Vec<i32> = before
        .values()
        .filter(|p| p.leader == victim)
        .map(|p| p.partition)
        .collect();
    assert!(
        !led_by_victim.is_empty(),
        "placement gives every broker some leaders: {before:?}"
    );

    cluster.kill(victim);
    let fenced = wait_until(Duration::from_secs(15), || async {
        broker_state(&cluster, victim).await == Some(BrokerState::Fenced as i32)
    })
    .await;
    assert!(
        fenced,
        "broker {victim} was not fenced after the session timeout"
    );

    let after = partitions(
        &cluster
            .metadata(survivor, &["fence"])
            .await
            .expect("metadata"),
        "fence",
    );
    for (id, p) in &after {
        assert_ne!(
            p.leader, victim,
            "partition {id} still led by the dead broker"
        );
        assert!(
            p.leader >= 0,
            "partition {id} is offline although two ISR members live"
        );
        assert!(p.isr.contains(&p.leader), "leader of {id} is in its ISR");
        assert!(!p.isr.contains(&victim), "dead broker left the ISR of {id}");
        if led_by_victim.contains(id) {
            assert!(
                p.leader_epoch > before[id].leader_epoch,
                "leader epoch of {id} bumped: {} -> {}",
                before[id].leader_epoch,
                p.leader_epoch
            );
        }
    }

    cluster.start_node(victim);
    let unfenced = wait_until(Duration::from_secs(20), || async {
        broker_state(&cluster, victim).await == Some(BrokerState::Unfenced as i32)
    })
    .await;
    assert!(
        unfenced,
        "broker {victim} was not unfenced after restart\n{}",
        cluster.dump_logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controlled_shutdown_moves_leadership_before_the_process_exits() {
    let mut cluster = Cluster::start(
        3,
        fast_options().set("auto.leader.rebalance.enable", "false"),
    )
    .await;
    cluster
        .create_topic(1, "graceful", 6, 3, &[])
        .await
        .expect("create");
    let controller = cluster.controller_leader().await.expect("leader");
    let victim = (1..=3)
        .find(|id| *id != controller)
        .expect("non-controller");
    let observer = (1..=3).find(|id| *id != victim).expect("observer");
    let ok = wait_until(Duration::from_secs(10), || async {
        cluster
            .metadata(observer, &["graceful"])
            .await
            .is_ok_and(|m| {
                let p = partitions(&m, "graceful");
                p.len() == 6 && p.values().any(|p| p.leader == victim)
            })
    })
    .await;
    assert!(ok, "victim leads some partitions before shutdown");

    let status = cluster.terminate(victim, Duration::from_secs(30));
    assert!(status.success(), "graceful exit: {status:?}");
    // Right after the exit — well before any session timeout could fence it —
    // the victim leads nothing in the committed metadata.
    let m = cluster
        .controller_client(observer)
        .describe_topics(MetadataRequest {
            topics: vec!["graceful".into()],
        })
        .await
        .expect("describe topics")
        .into_inner();
    let still: Vec<i32> = partitions(&m, "graceful")
        .values()
        .filter(|p| p.leader == victim)
        .map(|p| p.partition)
        .collect();
    assert!(
        still.is_empty(),
        "partitions {still:?} still led by {victim} after its controlled shutdown"
    );
    assert!(cluster.node(victim).logs().contains("no leaderships left"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_rebalance_restores_preferred_leaders_after_a_broker_returns() {
    let options = fast_options()
        .set("leader.imbalance.check.interval.seconds", "1")
        .set("leader.imbalance.per.broker.percentage", "0");
    let mut cluster = Cluster::start(3, options).await;
    cluster
        .create_topic(1, "balance", 6, 3, &[])
        .await
        .expect("create");
    let controller = cluster.controller_leader().await.expect("leader");
    let victim = (1..=3)
        .find(|id| *id != controller)
        .expect("non-controller");
    let observer = controller;

    cluster.kill(victim);
    let moved = wait_until(Duration::from_secs(15), || async {
        cluster
            .metadata(observer, &["balance"])
            .await
            .is_ok_and(|m| {
                let p = partitions(&m, "balance");
                p.len() == 6 && p.values().all(|p| p.leader != victim && p.leader >= 0)
            })
    })
    .await;
    assert!(moved, "leaders moved off the dead broker");

    cluster.start_node(victim);
    let preferred = wait_until(Duration::from_secs(30), || async {
        cluster
            .metadata(observer, &["balance"])
            .await
            .is_ok_and(|m| {
                let p = partitions(&m, "balance");
                p.len() == 6 && p.values().all(|p| p.leader == p.replicas[0])
            })
    })
    .await;
    let m = cluster
        .metadata(observer, &["balance"])
        .await
        .expect("metadata");
    assert!(
        preferred,
        "preferred leaders not restored: {:?}\n{}",
        partitions(&m, "balance"),
        cluster.dump_logs()
    );
    assert!(
        partitions(&m, "balance")
            .values()
            .any(|p| p.leader == victim)
    );
}
