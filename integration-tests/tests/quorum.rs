//! The controller quorum: formation, leader kills during writes, catch-up
//! of a lagging voter through a snapshot.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_integration_tests::{Cluster, ClusterOptions, wait_until};
use strom_proto::v1::{BrokerState, ErrorCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_form_a_quorum_with_three_unfenced_brokers() {
    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    let d = cluster.describe().await.expect("describe");
    let controller = d.controller.expect("controller section");
    assert!(
        (1..=3).contains(&controller.leader_id),
        "one leader among the voters: {controller:?}"
    );
    assert!(controller.leader_epoch >= 1);
    let voters: Vec<i32> = controller.voters.iter().map(|v| v.id).collect();
    assert_eq!(voters, vec![1, 2, 3]);
    let unfenced: Vec<i32> = d
        .brokers
        .iter()
        .filter(|b| b.state == BrokerState::Unfenced as i32)
        .map(|b| b.id)
        .collect();
    assert_eq!(unfenced, vec![1, 2, 3]);
    assert!(!d.cluster_id.is_empty());
    // Every node agrees on who leads.
    for id in 1..=3 {
        let m = cluster.metadata(id, &[]).await.expect("metadata");
        assert_eq!(m.cluster_id, d.cluster_id);
        assert_eq!(m.brokers.len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_topic_creations_survive_repeated_controller_leader_kills() {
    let mut cluster = Cluster::start(3, ClusterOptions::default()).await;
    let acked: Arc<Mutex<Vec<(String, i32)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Two writers create topics through different nodes while the leader is killed.
    let mut writers = Vec::new();
    for w in 0..2 {
        let addrs: Vec<String> = cluster.nodes.values().map(|n| n.client_addr()).collect();
        let acked = acked.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("t-{w}-{i}");
                let partitions = 1 + (i % 4);
                let addr = &addrs[(i as usize + w) % addrs.len()];
                let mut client =
                    strom_proto::v1::controller_service_client::ControllerServiceClient::new(
                        strom_integration_tests::channel(addr),
                    );
                let mut req = tonic::Request::new(strom_proto::v1::CreateTopicsRequest {
                    topics: vec![strom_proto::v1::CreatableTopic {
                        name: name.clone(),
                        num_partitions: partitions,
                        replication_factor: 2,
                        ..Default::default()
                    }],
                    validate_only: false,
                });
                req.set_timeout(Duration::from_secs(5));
                if let Ok(r) = client.create_topics(req).await
                    && r.get_ref().topics[0].error_code == ErrorCode::None as i32
                {
                    acked.lock().expect("lock").push((name, partitions));
                }
                i += 1;
            }
        }));
    }

    for _round in 0..4 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let leader = cluster
            .controller_leader()
            .await
            .expect("a leader before the kill");
        cluster.kill(leader);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cluster.start_node(leader);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    cluster.wait_ready(Duration::from_secs(30)).await;

    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 10,
        "the writers made progress: {} topics acknowledged",
        acked.len()
    );
    // Every acknowledged creation is on every node, whole.
    for id in 1..=3 {
        let ok = wait_until(Duration::from_secs(15), || async {
            let Ok(m) = cluster.metadata(id, &[]).await else {
                return false;
            };
            acked.iter().all(|(name, partitions)| {
                m.topics
                    .iter()
                    .any(|t| &t.name == name && t.partitions.len() == *partitions as usize)
            })
        })
        .await;
        let m = cluster.metadata(id, &[]).await.expect("metadata");
        let have: BTreeSet<&str> = m.topics.iter().map(|t| t.name.as_str()).collect();
        assert!(
            ok,
            "node {id} lacks acknowledged topics: {:?}\n{}",
            acked
                .iter()
                .filter(|(n, _)| !have.contains(n.as_str()))
                .collect::<Vec<_>>(),
            cluster.dump_logs()
        );
        // None is half-applied: every topic has the partitions it was created with, numbered 0..n.
        for t in &m.topics {
            let ids: Vec<i32> = t.partitions.iter().map(|p| p.partition).collect();
            assert_eq!(
                ids,
                (0..ids.len() as i32).collect::<Vec<_>>(),
                "topic {} partitions",
                t.name
            );
            assert!(!ids.is_empty(), "topic {} has no partition", t.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voter_far_behind_catches_up_through_a_snapshot() {
    let options = ClusterOptions::default()
        .set("metadata.snapshot.interval.entries", "50")
        .set("metadata.log.retained.entries", "10");
    let mut cluster = Cluster::start(3, options).await;
    let leader = cluster.controller_leader().await.expect("leader");
    let lagger = (1..=3).find(|id| *id != leader).expect("a follower");
    let via = (1..=3).find(|id| *id != lagger).expect("a live node");
    cluster.kill(lagger);
    for i in 0..150 {
        cluster
            .create_topic(via, &format!("lag-{i}"), 1, 2, &[])
            .await
            .expect("create while a voter is down");
    }
    cluster.start_node(lagger);
    let caught_up = wait_until(Duration::from_secs(30), || async {
        let Some(d) = cluster.describe().await else {
            return false;
        };
        let Some(c) = d.controller else { return false };
        c.voters.iter().any(|v| v.id == lagger && v.lag == 0)
    })
    .await;
    assert!(
        caught_up,
        "voter {lagger} did not catch up\n{}",
        cluster.dump_logs()
    );
    assert!(
        cluster
            .node(lagger)
            .logs()
            .contains("installed metadata snapshot from leader"),
        "voter {lagger} caught up without a snapshot although the log was purged"
    );
    // Its broker sees everything too.
    let ok = wait_until(Duration::from_secs(15), || async {
        cluster
            .metadata(lagger, &[])
            .await
            .is_ok_and(|m| m.topics.len() == 150)
    })
    .await;
    assert!(ok, "broker {lagger} did not replay all topics");
}

/// A node forwarding an admin request to the active controller must notice
/// when that controller stops answering (paused, cut off) and let the client
/// retry on the new leader, instead of holding the request on a dead
/// connection until the client gives up. The client here behaves like the
/// CLI: one call with a budget, each attempt given the time left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_admin_requests_fail_over_when_the_controller_leader_is_paused() {
    let mut cluster = Cluster::start(3, ClusterOptions::default()).await;
    let created = cluster
        .create_topic(1, "fwd", 1, 3, &[])
        .await
        .expect("create topic");
    assert_eq!(created.error_code, ErrorCode::None as i32, "{created:?}");
    let leader = cluster.controller_leader().await.expect("a leader");
    let via = (1..=3).find(|id| *id != leader).expect("another node");
    let config = strom_client::ClientConfig::new(&cluster.node(via).client_addr())
        .expect("config")
        .with_request_timeout(Duration::from_secs(20));
    let admin = strom_client::Admin::connect(config)
        .await
        .expect("admin client");
    // Warm the forwarding connection from `via` to the leader.
    let before = admin
        .describe_topics(&["fwd".to_owned()])
        .await
        .expect("describe through a follower");
    assert_eq!(before.len(), 1);

    cluster.pause(leader);
    let after = admin.describe_topics(&["fwd".to_owned()]).await;
    let new_leader = cluster.controller_leader().await;
    cluster.resume(leader);
    let after = after.unwrap_or_else(|e| {
        panic!(
            "describe through node {via} with controller {leader} paused \
             (new leader {new_leader:?}): {e}\n{}",
            cluster.dump_logs()
        )
    });
    assert_eq!(after.len(), 1);
    assert_ne!(new_leader, Some(leader), "a new controller was elected");
}

/// A controller of another cluster that reaches this quorum's address (a
/// reused port, a stale node) is refused before openraft sees its request
/// (INCONSISTENT_CLUSTER_ID), as is a request meant for another node: a
/// vote for a far higher term then moves neither the term nor the
/// leadership. (Found by the fault-injection suite: a foreign leader's
/// AppendEntries crashed a controller.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_requests_from_another_quorum_or_for_another_node_are_refused() {
    use strom_proto::v1::RaftMessage;
    use strom_proto::v1::raft_service_client::RaftServiceClient;

    let cluster = Cluster::start(3, ClusterOptions::default()).await;
    let before = cluster
        .describe()
        .await
        .and_then(|d| d.controller)
        .expect("controller section");
    let target = (1..=3)
        .find(|id| *id != before.leader_id)
        .expect("a follower");
    let voters = strom_controller::parse_voters(cluster.voters()).expect("voters");
    let ours = strom_controller::raft::quorum_fingerprint(
        voters.iter().map(|(id, addr)| (*id, addr.as_str())),
    );
    // A candidate of the same id as a real voter, at a far higher term.
    let vote = openraft::raft::VoteRequest::<u64>::new(openraft::Vote::new(1_000_000, 3), None);
    let payload = bincode::serialize(&vote).expect("encode vote");
    let mut client = RaftServiceClient::new(strom_integration_tests::channel(
        &cluster.node(target).controller_addr(),
    ));
    for (what, fingerprint, target_id) in [
        ("another quorum", ours ^ 0x5a5a, target),
        ("another node", ours, target + 10),
        ("no identity", 0, target),
    ] {
        let refused = client
            .vote(RaftMessage {
                payload: payload.clone(),
                quorum_fingerprint: fingerprint,
                target_id,
            })
            .await
            .expect_err(what);
        let e = strom_proto::StromError::from_status(&refused);
        assert_eq!(e.code, ErrorCode::InconsistentClusterId, "{what}: {e}");
    }
    // Nothing moved: the quorum still commits, and once the target has
    // applied that commit (so the leader has exchanged AppendEntries with
    // it since the votes) the leader and term are the same.
    let created = cluster
        .create_topic(target, "after-foreign-vote", 1, 3, &[])
        .await
        .expect("create topic");
    assert_eq!(created.error_code, ErrorCode::None as i32, "{created:?}");
    let describe = |id: i32| {
        let mut c = cluster.controller_client(id);
        async move {
            let mut req = tonic::Request::new(strom_proto::v1::DescribeClusterRequest {});
            req.set_timeout(Duration::from_secs(3));
            c.describe_cluster(req).await.ok().map(|r| r.into_inner())
        }
    };
    let committed = describe(before.leader_id)
        .await
        .expect("the leader answers")
        .metadata_offset;
    let applied = wait_until(Duration::from_secs(10), || async {
        describe(target)
            .await
            .is_some_and(|d| d.metadata_offset >= committed)
    })
    .await;
    assert!(
        applied,
        "node {target} never applied offset {committed}\n{}",
        cluster.dump_logs()
    );
    let after = describe(before.leader_id)
        .await
        .and_then(|d| d.controller)
        .expect("controller section");
    assert_eq!(
        (after.leader_id, after.leader_epoch),
        (before.leader_id, before.leader_epoch),
        "leadership or term moved\n{}",
        cluster.dump_logs()
    );
}
