//! Consumer groups on three real nodes, through `GroupService` (the
//! consumers here are the test's own heartbeat loops):
//! * the seed's assignor experiment (7 partitions, 3 members): the range
//!   table, a stopped member's partitions stay put until its session
//!   expires, then move as the rules say;
//! * kill -9 of the coordinator while a member commits: no acknowledged
//!   commit is lost, committed offsets never go backwards, and commits
//!   resume within a bound;
//! * churn: members join, leave, are killed and stall at random while they
//!   consume (`RecordsService.ConsumeRecords`) and commit; one owner per
//!   partition at every step, every record delivered at least once, and
//!   each new owner starts exactly at the last acknowledged commit;
//! * `ConsumeMemberRecords`: a member's partitions in one call, on the
//!   coordinator or any broker;
//! * bad input: each refused with its code, nothing changed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use strom_integration_tests::data::{
    Addrs, Outcome, batch, partition_state_any, produce_once, produce_retrying, wait_leader_serving,
};
use strom_integration_tests::{Cluster, ClusterOptions, channel};
use strom_proto::StromError;
use strom_proto::v1::group_service_client::GroupServiceClient;
use strom_proto::v1::records_service_client::RecordsServiceClient;
use strom_proto::v1::{
    ConsumeMemberRecordsRequest, ConsumeRecordsRequest, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, DescribeGroupRequest, ErrorCode, FindCoordinatorRequest,
    MemberPartitionRecords, MemberPosition, OffsetCommitPartition, OffsetCommitRequest,
    OffsetCommitTopic, OffsetFetchRequest, OwnedPartitions, Subscription, TopicPartitions,
};
use tonic::transport::Channel;

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false")
        .set("min.insync.replicas", "2")
        .set("offsets.topic.num.partitions", "5")
}

fn client(addr: &str) -> GroupServiceClient<Channel> {
    GroupServiceClient::new(channel(addr))
}

/// The coordinator of `group`, retried while it is being created or moves.
async fn coordinator(addrs: &Addrs, group: &str, timeout: Duration) -> (i32, String) {
    let deadline = Instant::now() + timeout;
    loop {
        for addr in addrs.0.values() {
            let r = client(addr)
                .find_coordinator(FindCoordinatorRequest {
                    group_id: group.into(),
                    ..Default::default()
                })
                .await;
            if let Ok(r) = r {
                let r = r.into_inner();
                return (r.node_id, r.address);
            }
        }
        assert!(Instant::now() < deadline, "no coordinator for {group}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create(cluster: &Cluster, topic: &str, partitions: i32) {
    cluster
        .create_topic(1, topic, partitions, 3, &[])
        .await
        .expect("create topic");
    let addrs = Addrs::of(cluster);
    for p in 0..partitions {
        wait_leader_serving(&addrs, topic, p, Duration::from_secs(20))
            .await
            .expect("leader serves");
    }
}

fn parts(assignment: &[TopicPartitions]) -> Vec<i32> {
    let mut v: Vec<i32> = assignment
        .iter()
        .flat_map(|t| t.partitions.clone())
        .collect();
    v.sort_unstable();
    v
}

/// A member driven by the test: heartbeats, owns what it is given.
struct Member {
    client_id: String,
    instance_id: Option<String>,
    member_id: String,
    epoch: i32,
    owned: Vec<TopicPartitions>,
}

impl Member {
    fn new(client_id: &str) -> Self {
        Member {
            client_id: client_id.into(),
            instance_id: None,
            member_id: String::new(),
            epoch: 0,
            owned: Vec::new(),
        }
    }

    async fn heartbeat(
        &mut self,
        addrs: &Addrs,
        group: &str,
        assignor: &str,
    ) -> Result<ConsumerGroupHeartbeatResponse, StromError> {
        // As a client does: a coordinator that is not loaded yet (its
        // broker's image names it, its partition is still being taken
        // over) or has moved since FindCoordinator is found again.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.heartbeat_once(addrs, group, assignor).await {
                Err(e)
                    if matches!(
                        e.code,
                        ErrorCode::NotCoordinator
                            | ErrorCode::CoordinatorLoadInProgress
                            | ErrorCode::CoordinatorNotAvailable
                    ) && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    async fn heartbeat_once(
        &mut self,
        addrs: &Addrs,
        group: &str,
        assignor: &str,
    ) -> Result<ConsumerGroupHeartbeatResponse, StromError> {
        let (_, addr) = coordinator(addrs, group, Duration::from_secs(30)).await;
        let joining = self.epoch == 0;
        let req = ConsumerGroupHeartbeatRequest {
            group_id: group.into(),
            member_id: self.member_id.clone(),
            member_epoch: self.epoch,
            client_id: self.client_id.clone(),
            instance_id: self.instance_id.clone(),
            rebalance_timeout_ms: joining.then_some(60_000),
            session_timeout_ms: joining.then_some(6_000),
            subscription: joining.then(|| Subscription {
                topic_names: vec!["first".into()],
                topic_regex: None,
            }),
            assignors: if joining {
                vec![assignor.into()]
            } else {
                vec![]
            },
            assignors_set: joining,
            owned: Some(OwnedPartitions {
                topics: self.owned.clone(),
            }),
            ..ConsumerGroupHeartbeatRequest::default()
        };
        let resp = client(&addr)
            .consumer_group_heartbeat(req)
            .await
            .map_err(|s| StromError::from_status(&s))?
            .into_inner();
        self.member_id = resp.member_id.clone();
        self.epoch = resp.member_epoch;
        self.owned = resp.assignment.clone();
        Ok(resp)
    }
}

/// Heartbeats `members` every 300 ms for `rounds` rounds.
async fn run_members(addrs: &Addrs, members: &mut [&mut Member], rounds: usize) {
    for _ in 0..rounds {
        for m in members.iter_mut() {
            m.heartbeat(addrs, "seed", "range")
                .await
                .expect("heartbeat accepted");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The seed's experiment with the range assignor: 0,1,2 / 3,4 / 5,6; c0
/// stops; until its 6 s session expires c1 and c2 keep 3,4 and 5,6 and
/// nobody takes 0,1,2; then c1 takes 0-3 and c2 4-6 (the range rule; the
/// seed's own table prints 0-4 / 5,6, see docs/groups.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_range_experiment_on_real_brokers() {
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 7).await;
    let addrs = Addrs::of(&cluster);
    let (mut c0, mut c1, mut c2) = (Member::new("c0"), Member::new("c1"), Member::new("c2"));
    run_members(&addrs, &mut [&mut c0, &mut c1, &mut c2], 8).await;
    assert_eq!(
        [parts(&c0.owned), parts(&c1.owned), parts(&c2.owned)],
        [vec![0, 1, 2], vec![3, 4], vec![5, 6]]
    );
    // c0 stops heartbeating.
    let stopped = Instant::now();
    run_members(&addrs, &mut [&mut c1, &mut c2], 10).await;
    if stopped.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            [parts(&c1.owned), parts(&c2.owned)],
            [vec![3, 4], vec![5, 6]]
        );
    }
    let (_, addr) = coordinator(&addrs, "seed", Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        run_members(&addrs, &mut [&mut c1, &mut c2], 1).await;
        if [parts(&c1.owned), parts(&c2.owned)] == [vec![0, 1, 2, 3], vec![4, 5, 6]] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "c1 {:?} c2 {:?}",
            c1.owned,
            c2.owned
        );
    }
    assert!(
        stopped.elapsed() >= Duration::from_secs(6),
        "moved before c0's session expired"
    );
    let d = client(&addr)
        .describe_group(DescribeGroupRequest {
            group_id: "seed".into(),
        })
        .await
        .expect("describe")
        .into_inner();
    assert_eq!((d.members.len(), d.assignor.as_str()), (2, "range"));
    drop(cluster);
}

async fn commit(addr: &str, group: &str, offset: i64) -> Result<(), StromError> {
    client(addr)
        .offset_commit(OffsetCommitRequest {
            group_id: group.into(),
            member_id: String::new(),
            member_epoch: -1,
            topics: vec![OffsetCommitTopic {
                topic: "first".into(),
                partitions: vec![OffsetCommitPartition {
                    partition: 0,
                    offset,
                    leader_epoch: -1,
                    metadata: String::new(),
                }],
            }],
        })
        .await
        .map(|_| ())
        .map_err(|s| StromError::from_status(&s))
}

/// Finds `group`'s coordinator and commits `offset` there, finding it again
/// while it is not serving yet (the image that named it may be ahead of the
/// coordinator's own: NOT_COORDINATOR, as a Kafka client retries). Returns
/// the coordinator's address.
async fn commit_at_coordinator(addrs: &Addrs, group: &str, offset: i64) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, addr) = coordinator(addrs, group, Duration::from_secs(60)).await;
        match commit(&addr, group, offset).await {
            Ok(()) => return addr,
            Err(e)
                if matches!(
                    e.code,
                    ErrorCode::NotCoordinator
                        | ErrorCode::CoordinatorLoadInProgress
                        | ErrorCode::CoordinatorNotAvailable
                ) && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("commit: {e:?}"),
        }
    }
}

async fn fetch(addr: &str, group: &str) -> Result<BTreeMap<(String, i32), i64>, StromError> {
    let r = client(addr)
        .offset_fetch(OffsetFetchRequest {
            group_id: group.into(),
            topics: vec![],
            require_stable: true,
        })
        .await
        .map_err(|s| StromError::from_status(&s))?
        .into_inner();
    Ok(r.partitions
        .into_iter()
        .map(|p| ((p.topic, p.partition), p.offset))
        .collect())
}

/// kill -9 of the broker coordinating the group while commits go on: every
/// acknowledged commit is still there on the new coordinator, the offset
/// never goes backwards, and commits resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_commits_survive_coordinator_kill() {
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 1).await;
    let addrs = Addrs::of(&cluster);
    let (node, mut addr) = coordinator(&addrs, "g", Duration::from_secs(60)).await;
    let mut acked = -1i64;
    let mut offset = 0i64;
    let mut killed_at = None;
    let mut resumed_after = None;
    let mut last_seen = -1i64;
    while offset < 400 {
        offset += 1;
        if offset == 150 {
            cluster.kill(node);
            killed_at = Some(Instant::now());
        }
        match commit(&addr, "g", offset).await {
            Ok(()) => {
                acked = offset;
                if let (Some(k), None) = (killed_at, resumed_after) {
                    resumed_after = Some(k.elapsed());
                }
            }
            Err(e) => {
                assert!(e.is_retriable(), "commit {offset}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                let live = Addrs(
                    addrs
                        .0
                        .iter()
                        .filter(|(id, _)| **id != node || killed_at.is_none())
                        .map(|(id, a)| (*id, a.clone()))
                        .collect(),
                );
                addr = coordinator(&live, "g", Duration::from_secs(60)).await.1;
            }
        }
        if offset % 25 == 0
            && let Ok(f) = fetch(&addr, "g").await
        {
            let seen = f.get(&("first".to_owned(), 0)).copied().unwrap_or(-1);
            assert!(
                seen >= last_seen,
                "offset went back from {last_seen} to {seen}"
            );
            assert!(
                seen >= acked,
                "lost acked commit {acked}: the coordinator has {seen}"
            );
            last_seen = seen;
        }
    }
    let f = fetch(&addr, "g").await.expect("fetch");
    assert_eq!(f.get(&("first".to_owned(), 0)), Some(&acked));
    // The new coordinator's metrics count the commits it took.
    let new_node = addrs
        .0
        .iter()
        .find(|(_, a)| **a == addr)
        .map(|(id, _)| *id)
        .expect("coordinator is a node");
    let port = cluster.node(new_node).admin_port;
    let (status, body) =
        tokio::task::spawn_blocking(move || strom_integration_tests::admin_get(port, "/metrics"))
            .await
            .expect("scrape")
            .expect("metrics answer");
    assert_eq!(status, 200);
    let value = |name: &str| -> Option<f64> {
        body.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert!(
        value("strom_group_offset_commits_total").is_some_and(|v| v > 0.0),
        "{body}"
    );
    assert!(value("strom_group_offset_commit_requests_total").is_some_and(|v| v > 0.0));
    assert_eq!(
        value("strom_group_coordinator_groups{state=\"Empty\"}"),
        Some(1.0),
        "{body}"
    );
    assert!(value("strom_group_coordinator_partitions_loaded").is_some_and(|v| v >= 1.0));
    let resumed = resumed_after.expect("commits resumed after the kill");
    eprintln!("commits resumed {resumed:?} after kill -9 of coordinator {node}");
    assert!(
        resumed < Duration::from_secs(20),
        "resumed after {resumed:?}"
    );
}

/// Bad input: a typed error each, and nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_group_requests_are_refused() {
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 1).await;
    let addrs = Addrs::of(&cluster);
    let addr = commit_at_coordinator(&addrs, "g", 7).await;
    let code = |r: Result<(), StromError>| r.expect_err("refused").code;
    let mut c = client(&addr);
    let bad_topic = c
        .offset_commit(OffsetCommitRequest {
            group_id: "g".into(),
            member_id: String::new(),
            member_epoch: -1,
            topics: vec![OffsetCommitTopic {
                topic: "nope".into(),
                partitions: vec![OffsetCommitPartition {
                    partition: 0,
                    offset: 1,
                    leader_epoch: -1,
                    metadata: String::new(),
                }],
            }],
        })
        .await
        .map(|_| ())
        .map_err(|s| StromError::from_status(&s));
    assert_eq!(code(bad_topic), ErrorCode::UnknownTopicOrPartition);
    assert_eq!(
        code(commit(&addr, "g", -5).await),
        ErrorCode::InvalidRequest
    );
    assert_eq!(code(commit(&addr, "", 1).await), ErrorCode::InvalidGroupId);
    let describe = c
        .describe_group(DescribeGroupRequest {
            group_id: "never-seen".into(),
        })
        .await
        .map(|_| ())
        .map_err(|s| StromError::from_status(&s));
    // The unknown group may hash to another coordinator's partition.
    assert!(matches!(
        code(describe),
        ErrorCode::GroupIdNotFound | ErrorCode::NotCoordinator
    ));
    let mut m = Member::new("x");
    let bad_session = client(&addr)
        .consumer_group_heartbeat(ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_epoch: 0,
            client_id: "x".into(),
            session_timeout_ms: Some(1000),
            subscription: Some(Subscription {
                topic_names: vec!["first".into()],
                topic_regex: None,
            }),
            ..ConsumerGroupHeartbeatRequest::default()
        })
        .await
        .map(|_| ())
        .map_err(|s| StromError::from_status(&s));
    assert_eq!(code(bad_session), ErrorCode::InvalidSessionTimeout);
    let bad_assignor = m.heartbeat(&addrs, "g", "uniform").await.map(|_| ());
    assert_eq!(code(bad_assignor), ErrorCode::InconsistentGroupProtocol);
    // Clients never write the offsets topic.
    let leader = wait_leader_serving(&addrs, "__consumer_offsets", 0, Duration::from_secs(20))
        .await
        .expect("offsets partition has a leader");
    let produced = produce_once(
        &addrs,
        leader,
        "__consumer_offsets",
        0,
        batch(&["x".into()]),
        -1,
        Duration::from_secs(5),
    )
    .await
    .map(|_| ());
    assert_eq!(code(produced), ErrorCode::InvalidTopicException);
    // Nothing changed.
    let f = fetch(&addr, "g").await.expect("fetch");
    assert_eq!(f.get(&("first".to_owned(), 0)), Some(&7));
}

fn strom(cluster: &Cluster, args: &[&str]) -> std::process::Output {
    std::process::Command::new(strom_integration_tests::binary("strom", "STROM_BIN"))
        .arg("--bootstrap-server")
        .arg(cluster.bootstrap())
        .args(args)
        .output()
        .expect("run strom")
}

/// `strom groups list | describe | delete` and `topics list
/// --include-internal`, as docs/cli.md says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lists_describes_and_deletes_groups() {
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 7).await;
    let addrs = Addrs::of(&cluster);
    let (mut a, mut b) = (Member::new("ca"), Member::new("cb"));
    let mut members = [&mut a, &mut b];
    for _ in 0..6 {
        for m in members.iter_mut() {
            m.heartbeat(&addrs, "cli-g", "roundrobin")
                .await
                .expect("heartbeat");
        }
    }
    let (_, addr) = coordinator(&addrs, "cli-g", Duration::from_secs(10)).await;
    client(&addr)
        .offset_commit(OffsetCommitRequest {
            group_id: "cli-g".into(),
            member_id: a.member_id.clone(),
            member_epoch: a.epoch,
            topics: vec![OffsetCommitTopic {
                topic: "first".into(),
                partitions: vec![OffsetCommitPartition {
                    partition: a.owned[0].partitions[0],
                    offset: 0,
                    leader_epoch: -1,
                    metadata: String::new(),
                }],
            }],
        })
        .await
        .expect("commit");
    let c = &cluster;
    let out = tokio::task::block_in_place(|| strom(c, &["--output", "json", "groups", "list"]));
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list[0]["group"], "cli-g");
    assert_eq!(list[0]["members"], 2);
    assert_eq!(list[0]["protocol_type"], "consumer");

    let out = tokio::task::block_in_place(|| {
        strom(
            c,
            &["--output", "json", "groups", "describe", "--group", "cli-g"],
        )
    });
    assert!(out.status.success(), "{out:?}");
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(d["assignor"], "roundrobin");
    assert_eq!(d["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(d["offsets"].as_array().map(Vec::len), Some(7), "{d}");

    let out = tokio::task::block_in_place(|| strom(c, &["groups", "describe", "--group", "cli-g"]));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.starts_with(
            "GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID"
        ),
        "{text}"
    );
    let out = tokio::task::block_in_place(|| {
        strom(c, &["groups", "describe", "--group", "cli-g", "--state"])
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains("roundrobin"));

    // Refusals: one line on stderr, exit 1.
    let out = tokio::task::block_in_place(|| strom(c, &["groups", "delete", "--group", "cli-g"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.starts_with("error: NON_EMPTY_GROUP: "), "{err}");
    let out = tokio::task::block_in_place(|| {
        strom(c, &["groups", "describe", "--group", "no-such-group"])
    });
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.starts_with("error: GROUP_ID_NOT_FOUND: "), "{err}");

    // Internal topics only on request.
    let out = tokio::task::block_in_place(|| strom(c, &["topics", "list"]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("__consumer_offsets"));
    let out = tokio::task::block_in_place(|| strom(c, &["topics", "list", "--include-internal"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("__consumer_offsets"));
    let out = tokio::task::block_in_place(|| {
        strom(
            c,
            &["--output", "json", "topics", "list", "--include-internal"],
        )
    });
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("topics JSON");
    let internal: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter(|t| t["is_internal"] == serde_json::json!(true))
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(internal, ["__consumer_offsets"], "{listed}");

    // Once its members leave, the group can be deleted.
    for m in [&a, &b] {
        client(&addr)
            .consumer_group_heartbeat(ConsumerGroupHeartbeatRequest {
                group_id: "cli-g".into(),
                member_id: m.member_id.clone(),
                member_epoch: -1,
                ..ConsumerGroupHeartbeatRequest::default()
            })
            .await
            .expect("leave");
    }
    let out = tokio::task::block_in_place(|| strom(c, &["groups", "delete", "--group", "cli-g"]));
    assert!(out.status.success(), "{out:?}");
    let out = tokio::task::block_in_place(|| strom(c, &["--output", "json", "groups", "list"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

/// Heartbeats `members` once each, retrying retriable errors (a coordinator
/// moving) until `timeout`.
async fn round(addrs: &Addrs, group: &str, assignor: &str, members: &mut [&mut Member]) {
    for m in members.iter_mut() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match m.heartbeat(addrs, group, assignor).await {
                Ok(_) => break,
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{}: {e}", m.client_id),
            }
        }
    }
}

async fn group_epoch(addrs: &Addrs, group: &str) -> i32 {
    let (_, addr) = coordinator(addrs, group, Duration::from_secs(30)).await;
    client(&addr)
        .describe_group(DescribeGroupRequest {
            group_id: group.into(),
        })
        .await
        .expect("describe")
        .into_inner()
        .epoch
}

/// A static member (group.instance.id) that leaves for a restart and comes
/// back within its session timeout gets its partitions back, under a new
/// member id, with no rebalance: the group epoch does not move and the
/// other member's partitions never change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restart_gets_its_partitions_back_without_rebalance() {
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 7).await;
    let addrs = Addrs::of(&cluster);
    let mut a = Member::new("sa");
    a.instance_id = Some("instance-a".into());
    let mut b = Member::new("sb");
    b.instance_id = Some("instance-b".into());
    for _ in 0..6 {
        round(&addrs, "static", "range", &mut [&mut a, &mut b]).await;
    }
    let (a_parts, b_parts) = (parts(&a.owned), parts(&b.owned));
    assert_eq!(a_parts.len() + b_parts.len(), 7);
    let epoch = group_epoch(&addrs, "static").await;
    // a leaves for a restart (epoch -2) ...
    let (_, addr) = coordinator(&addrs, "static", Duration::from_secs(10)).await;
    let left = client(&addr)
        .consumer_group_heartbeat(ConsumerGroupHeartbeatRequest {
            group_id: "static".into(),
            member_id: a.member_id.clone(),
            member_epoch: -2,
            instance_id: a.instance_id.clone(),
            ..ConsumerGroupHeartbeatRequest::default()
        })
        .await
        .expect("static leave")
        .into_inner();
    assert_eq!(left.member_epoch, -2);
    // ... b runs on, and nobody takes a's partitions meanwhile ...
    for _ in 0..4 {
        round(&addrs, "static", "range", &mut [&mut b]).await;
        assert_eq!(parts(&b.owned), b_parts);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // ... and a new incarnation with the same instance id takes them back.
    let mut a2 = Member::new("sa");
    a2.instance_id = Some("instance-a".into());
    for _ in 0..3 {
        round(&addrs, "static", "range", &mut [&mut a2, &mut b]).await;
    }
    assert_ne!(a2.member_id, a.member_id);
    assert_eq!(parts(&a2.owned), a_parts);
    assert_eq!(parts(&b.owned), b_parts);
    assert_eq!(group_epoch(&addrs, "static").await, epoch, "no rebalance");
}

/// kill -9 of the coordinator while a cooperative-sticky group is stable:
/// the new coordinator loads the members from the log, so every member
/// keeps its member id, epoch and partitions (no rejoin, no rebalance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_membership_survives_coordinator_kill() {
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 7).await;
    let addrs = Addrs::of(&cluster);
    let (mut x, mut y, mut z) = (Member::new("kx"), Member::new("ky"), Member::new("kz"));
    for _ in 0..8 {
        round(
            &addrs,
            "failover",
            "cooperative-sticky",
            &mut [&mut x, &mut y, &mut z],
        )
        .await;
    }
    let before: Vec<(String, i32, Vec<i32>)> = [&x, &y, &z]
        .iter()
        .map(|m| (m.member_id.clone(), m.epoch, parts(&m.owned)))
        .collect();
    let (node, _) = coordinator(&addrs, "failover", Duration::from_secs(10)).await;
    cluster.kill(node);
    let killed = Instant::now();
    let live = Addrs(
        addrs
            .0
            .iter()
            .filter(|(id, _)| **id != node)
            .map(|(id, a)| (*id, a.clone()))
            .collect(),
    );
    for _ in 0..3 {
        round(
            &live,
            "failover",
            "cooperative-sticky",
            &mut [&mut x, &mut y, &mut z],
        )
        .await;
    }
    eprintln!(
        "group served again {:?} after kill -9 of coordinator {node}",
        killed.elapsed()
    );
    let after: Vec<(String, i32, Vec<i32>)> = [&x, &y, &z]
        .iter()
        .map(|m| (m.member_id.clone(), m.epoch, parts(&m.owned)))
        .collect();
    assert_eq!(after, before);
}

/// `strom groups reset-offsets` (dry run changes nothing; each spec; clamped
/// to the log; refused while the group has members, naming them) and
/// `groups delete-offsets`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_resets_and_deletes_offsets() {
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 2).await;
    let addrs = Addrs::of(&cluster);
    let leader = wait_leader_serving(&addrs, "first", 0, Duration::from_secs(20))
        .await
        .expect("leader");
    let values: Vec<bytes::Bytes> = (0..10).map(|i| format!("v{i}").into()).collect();
    produce_once(
        &addrs,
        leader,
        "first",
        0,
        batch(&values),
        -1,
        Duration::from_secs(10),
    )
    .await
    .expect("produce");
    let addr = commit_at_coordinator(&addrs, "rg", 5).await;
    let c = &cluster;
    let committed = || async {
        fetch(&addr, "rg")
            .await
            .expect("fetch")
            .get(&("first".to_owned(), 0))
            .copied()
    };
    let run = |args: &[&str]| {
        let mut all = vec!["--output", "json", "groups"];
        all.extend_from_slice(args);
        tokio::task::block_in_place(|| strom(c, &all))
    };
    let new_offsets = |out: &std::process::Output| -> Vec<(String, i64, i64)> {
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v.as_array()
            .expect("array")
            .iter()
            .map(|o| {
                (
                    o["topic"].as_str().unwrap_or_default().to_owned(),
                    o["partition"].as_i64().unwrap_or(-1),
                    o["new_offset"].as_i64().unwrap_or(-1),
                )
            })
            .collect()
    };
    let out = run(&[
        "reset-offsets",
        "--group",
        "rg",
        "--topic",
        "first",
        "--to-earliest",
        "--dry-run",
    ]);
    assert_eq!(
        new_offsets(&out),
        [("first".to_owned(), 0, 0), ("first".to_owned(), 1, 0)]
    );
    assert_eq!(committed().await, Some(5), "a dry run changes nothing");
    let out = run(&[
        "reset-offsets",
        "--group",
        "rg",
        "--topic",
        "first:0",
        "--shift-by",
        "-2",
        "--execute",
    ]);
    assert_eq!(new_offsets(&out), [("first".to_owned(), 0, 3)]);
    assert_eq!(committed().await, Some(3));
    let out = run(&[
        "reset-offsets",
        "--group",
        "rg",
        "--all-topics",
        "--to-offset",
        "99",
        "--execute",
    ]);
    assert_eq!(
        new_offsets(&out),
        [("first".to_owned(), 0, 10)],
        "clamped to the log end"
    );
    let out = run(&[
        "reset-offsets",
        "--group",
        "rg",
        "--topic",
        "first:0",
        "--by-duration",
        "PT1H",
        "--execute",
    ]);
    assert_eq!(new_offsets(&out), [("first".to_owned(), 0, 0)]);
    assert_eq!(committed().await, Some(0));
    let out = run(&[
        "reset-offsets",
        "--group",
        "rg",
        "--topic",
        "first:0",
        "--by-duration",
        "soon",
        "--execute",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));

    // With a member, the reset is refused and names it.
    let mut m = Member::new("busy");
    m.heartbeat(&addrs, "rg", "range").await.expect("join");
    let out = run(&[
        "reset-offsets",
        "--group",
        "rg",
        "--topic",
        "first",
        "--to-latest",
        "--execute",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.starts_with("error: NON_EMPTY_GROUP: "), "{err}");
    assert!(err.contains(&m.member_id), "{err}");
    assert_eq!(committed().await, Some(0), "nothing changed");
    // Nor can its subscribed topic's offsets be deleted.
    let out = run(&["delete-offsets", "--group", "rg", "--topic", "first"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.starts_with("error: GROUP_SUBSCRIBED_TO_TOPIC: "),
        "{err}"
    );
    client(&addr)
        .consumer_group_heartbeat(ConsumerGroupHeartbeatRequest {
            group_id: "rg".into(),
            member_id: m.member_id.clone(),
            member_epoch: -1,
            ..ConsumerGroupHeartbeatRequest::default()
        })
        .await
        .expect("leave");
    let out = run(&["delete-offsets", "--group", "rg", "--topic", "first:0"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(committed().await, None);
}

/// What the churn's members consumed and committed, as the test saw it.
#[derive(Debug, Default)]
struct Ledger {
    /// Leader address of each partition of "first" (no broker fails here).
    leaders: BTreeMap<i32, String>,
    /// Offsets delivered per partition, to any member.
    delivered: BTreeMap<i32, BTreeSet<i64>>,
    /// Records delivered, duplicates included.
    deliveries: usize,
    /// The last acknowledged commit per partition.
    committed: BTreeMap<i32, i64>,
    /// Commits after it that failed with a retriable error: they may be in
    /// the log all the same.
    uncertain: BTreeMap<i32, BTreeSet<i64>>,
    /// Each member's next offset in each partition it consumes.
    positions: BTreeMap<String, BTreeMap<i32, i64>>,
    /// Partitions taken by a member (first owners included).
    takeovers: usize,
}

impl Ledger {
    /// `m` consumes what it owns after a heartbeat: a partition it just
    /// got starts at the group's committed offset (0 without one), which
    /// must be exactly the last acknowledged commit (a later start is a gap,
    /// an earlier one a commit gone back); then up to `max` records from
    /// each owned partition, and one commit of the positions.
    async fn consume(&mut self, addrs: &Addrs, m: &Member, max: i32) {
        let owned: BTreeSet<i32> = parts(&m.owned).into_iter().collect();
        let mut positions = self.positions.remove(&m.member_id).unwrap_or_default();
        // Revoked: the member stops consuming them at once.
        positions.retain(|p, _| owned.contains(p));
        let new: Vec<i32> = owned
            .iter()
            .copied()
            .filter(|p| !positions.contains_key(p))
            .collect();
        if !new.is_empty() {
            let fetched = loop {
                let (_, addr) = coordinator(addrs, "churn", Duration::from_secs(30)).await;
                match fetch(&addr, "churn").await {
                    Ok(f) => break f,
                    Err(e) if e.is_retriable() => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    Err(e) => panic!("offset fetch: {e}"),
                }
            };
            for p in new {
                let start = fetched
                    .get(&("first".to_owned(), p))
                    .copied()
                    .filter(|o| *o >= 0)
                    .unwrap_or(0);
                let last = self.committed.get(&p).copied().unwrap_or(0);
                let maybe = self.uncertain.remove(&p).unwrap_or_default();
                assert!(
                    start == last || maybe.contains(&start),
                    "{} takes partition {p} at {start}, the last acknowledged commit is {last} \
                     (unacknowledged ones: {maybe:?})",
                    m.member_id
                );
                self.committed.insert(p, start);
                positions.insert(p, start);
                self.takeovers += 1;
            }
        }
        for (p, position) in positions.iter_mut() {
            let mut c =
                RecordsServiceClient::new(strom_integration_tests::channel(&self.leaders[p]));
            let read = c
                .consume_records(ConsumeRecordsRequest {
                    topic: "first".into(),
                    partition: *p,
                    offset: *position,
                    max_records: max,
                    max_wait_ms: 0,
                    isolation_level: strom_proto::v1::IsolationLevel::ReadUncommitted as i32,
                })
                .await
                .expect("the leader serves ConsumeRecords")
                .into_inner();
            let delivered = self.delivered.entry(*p).or_default();
            for r in &read.records {
                assert_eq!(r.offset, *position, "records in order, no hole");
                delivered.insert(r.offset);
                *position = r.offset + 1;
                self.deliveries += 1;
            }
            *position = (*position).max(read.next_offset);
        }
        if !positions.is_empty() {
            let (_, addr) = coordinator(addrs, "churn", Duration::from_secs(30)).await;
            let committed = client(&addr)
                .offset_commit(OffsetCommitRequest {
                    group_id: "churn".into(),
                    member_id: m.member_id.clone(),
                    member_epoch: m.epoch,
                    topics: vec![OffsetCommitTopic {
                        topic: "first".into(),
                        partitions: positions
                            .iter()
                            .map(|(p, o)| OffsetCommitPartition {
                                partition: *p,
                                offset: *o,
                                leader_epoch: -1,
                                metadata: String::new(),
                            })
                            .collect(),
                    }],
                })
                .await;
            match committed {
                Ok(_) => {
                    for (p, o) in &positions {
                        self.committed.insert(*p, *o);
                        self.uncertain.remove(p);
                    }
                }
                // A member the group moved on from (a newer epoch, its
                // session expired): its commit changes nothing.
                Err(s) => {
                    let e = StromError::from_status(&s);
                    assert!(
                        matches!(
                            e.code,
                            ErrorCode::StaleMemberEpoch
                                | ErrorCode::FencedMemberEpoch
                                | ErrorCode::UnknownMemberId
                        ) || e.is_retriable(),
                        "commit: {e}"
                    );
                    if e.is_retriable() {
                        for (p, o) in &positions {
                            self.uncertain.entry(*p).or_default().insert(*o);
                        }
                    }
                }
            }
        }
        self.positions.insert(m.member_id.clone(), positions);
    }
}

/// Produces `n` records to `first`-`p`.
async fn produce_to(addrs: &Addrs, p: i32, n: usize, tag: &str) {
    let values: Vec<Bytes> = (0..n)
        .map(|i| Bytes::from(format!("{tag}-{p}-{i}")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    match produce_retrying(addrs, "first", p, batch(&values), deadline).await {
        Outcome::Acked(_) => {}
        other => panic!("produce to first-{p}: {other:?}"),
    }
}

/// Churn on real brokers: five members join, heartbeat, consume and
/// commit, leave, are killed (stop without leaving) and stall at random
/// for 20 s while records keep arriving. After every step no partition is
/// owned by two members the coordinator still counts, and a member taking
/// a partition starts exactly at the last acknowledged commit (no gap
/// between the old owner's last commit and the new owner's start). When
/// the churn stops, the survivors own every partition exactly once and
/// read to the end: every record was delivered at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_keeps_every_partition_single_owned_and_delivers_every_record() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = rand::random();
    eprintln!("churn seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 7).await;
    let addrs = Addrs::of(&cluster);
    let mut ledger = Ledger::default();
    for p in 0..7 {
        let (leader, _, _) = partition_state_any(&addrs, "first", p)
            .await
            .expect("a leader");
        ledger.leaders.insert(p, addrs.0[&leader].clone());
        produce_to(&addrs, p, 50, "before").await;
    }
    let mut members: Vec<Option<Member>> = (0..5).map(|_| None).collect();
    let mut incarnation = 0;
    let started = Instant::now();
    let mut steps = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let i = rng.gen_range(0..members.len());
        match rng.gen_range(0..11) {
            // Heartbeat (joining if needed), then consume and commit.
            0..=6 => {
                let m = members[i].get_or_insert_with(|| {
                    incarnation += 1;
                    Member::new(&format!("churn{i}-{incarnation}"))
                });
                match m.heartbeat(&addrs, "churn", "cooperative-sticky").await {
                    Ok(_) => ledger.consume(&addrs, m, 5).await,
                    Err(e) => {
                        assert!(
                            matches!(
                                e.code,
                                ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch
                            ) || e.is_retriable(),
                            "{e}"
                        );
                        if !e.is_retriable() {
                            members[i] = None; // fenced: it lost its partitions
                        }
                    }
                }
            }
            // Leave.
            7 => {
                if let Some(m) = members[i].take()
                    && m.epoch > 0
                {
                    let (_, addr) = coordinator(&addrs, "churn", Duration::from_secs(10)).await;
                    let _ = client(&addr)
                        .consumer_group_heartbeat(ConsumerGroupHeartbeatRequest {
                            group_id: "churn".into(),
                            member_id: m.member_id.clone(),
                            member_epoch: -1,
                            ..ConsumerGroupHeartbeatRequest::default()
                        })
                        .await;
                }
            }
            // Killed: gone without a word; its session expires.
            8 => members[i] = None,
            // Records keep arriving.
            9 => produce_to(&addrs, rng.gen_range(0..7), 5, &format!("step{steps}")).await,
            // Stalls a while (others go on).
            _ => tokio::time::sleep(Duration::from_millis(rng.gen_range(0..400))).await,
        }
        steps += 1;
        check_single_owner(&addrs, &members).await;
    }
    // The churn stops: the survivors heartbeat until the dead expire.
    if members.iter().all(Option::is_none) {
        members[0] = Some(Member::new("churn-last"));
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let mut live: Vec<&mut Member> = members.iter_mut().flatten().collect();
        round(&addrs, "churn", "cooperative-sticky", &mut live).await;
        for m in members.iter().flatten() {
            ledger.consume(&addrs, m, 5).await;
        }
        check_single_owner(&addrs, &members).await;
        let owned: Vec<i32> = {
            let mut v: Vec<i32> = members
                .iter()
                .flatten()
                .flat_map(|m| parts(&m.owned))
                .collect();
            v.sort_unstable();
            v
        };
        if owned == (0..7).collect::<Vec<i32>>() {
            break;
        }
        assert!(Instant::now() < deadline, "did not settle: {owned:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The owners read everything: every record was delivered at least once.
    let mut ends = BTreeMap::new();
    for p in 0..7 {
        let hw = loop {
            let mut c =
                RecordsServiceClient::new(strom_integration_tests::channel(&ledger.leaders[&p]));
            if let Ok(r) = c
                .consume_records(ConsumeRecordsRequest {
                    topic: "first".into(),
                    partition: p,
                    offset: 0,
                    max_records: 1,
                    max_wait_ms: 0,
                    isolation_level: strom_proto::v1::IsolationLevel::ReadUncommitted as i32,
                })
                .await
            {
                break r.into_inner().high_watermark;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        ends.insert(p, hw);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ends
        .iter()
        .any(|(p, end)| ledger.committed.get(p).copied().unwrap_or(0) < *end)
    {
        assert!(
            Instant::now() < deadline,
            "not consumed to the end: committed {:?}, ends {ends:?}",
            ledger.committed
        );
        let mut live: Vec<&mut Member> = members.iter_mut().flatten().collect();
        round(&addrs, "churn", "cooperative-sticky", &mut live).await;
        for m in members.iter().flatten() {
            ledger.consume(&addrs, m, 500).await;
        }
    }
    for (p, end) in &ends {
        let delivered = ledger.delivered.get(p).cloned().unwrap_or_default();
        let missing: Vec<i64> = (0..*end).filter(|o| !delivered.contains(o)).collect();
        assert!(missing.is_empty(), "first-{p}: never delivered {missing:?}");
    }
    let records: i64 = ends.values().sum();
    eprintln!(
        "churn: {steps} steps, {records} records, {} deliveries, {} takeovers",
        ledger.deliveries, ledger.takeovers
    );
    assert!(ledger.takeovers > 7, "partitions changed owners");
}

/// No partition owned by two members the coordinator still counts.
async fn check_single_owner(addrs: &Addrs, members: &[Option<Member>]) {
    let (_, addr) = coordinator(addrs, "churn", Duration::from_secs(30)).await;
    let Ok(d) = client(&addr)
        .describe_group(DescribeGroupRequest {
            group_id: "churn".into(),
        })
        .await
    else {
        return;
    };
    let current: std::collections::BTreeSet<String> = d
        .into_inner()
        .members
        .into_iter()
        .map(|m| m.member_id)
        .collect();
    let mut owners: BTreeMap<i32, &str> = BTreeMap::new();
    for m in members.iter().flatten() {
        if !current.contains(&m.member_id) {
            continue;
        }
        for p in parts(&m.owned) {
            if let Some(other) = owners.insert(p, &m.member_id) {
                panic!("partition {p} owned by {other} and {}", m.member_id);
            }
        }
    }
}

/// `strom_group_consumer_lag{group, topic}` (and its max-partition
/// sibling) on node `id`'s /metrics, if there.
async fn lag_metric(cluster: &Cluster, id: i32, group: &str, topic: &str) -> Option<(i64, i64)> {
    let port = cluster.node(id).admin_port;
    let Ok(Some((200, body))) =
        tokio::task::spawn_blocking(move || strom_integration_tests::admin_get(port, "/metrics"))
            .await
    else {
        return None;
    };
    let find = |name: &str| {
        body.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| l.contains(&format!("group=\"{group}\"")))
            .find(|l| l.contains(&format!("topic=\"{topic}\"")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
    };
    Some((
        find("strom_group_consumer_lag")?,
        find("strom_group_consumer_lag_max_partition")?,
    ))
}

/// The coordinator reads the end offsets of its groups' committed
/// partitions from their leaders on a timer: the lag per group and topic
/// follows new records and new commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_metric_follows_records_and_commits() {
    let mut cluster =
        Cluster::start(3, options().set("group.consumer.lag.interval.ms", "300")).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 7).await;
    let addrs = Addrs::of(&cluster);
    produce_to(&addrs, 0, 10, "lag").await;
    produce_to(&addrs, 1, 4, "lag").await;
    let commit_all = |offsets: Vec<(i32, i64)>| {
        let addrs = addrs.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (_, addr) = coordinator(&addrs, "lagging", Duration::from_secs(60)).await;
                let r = client(&addr)
                    .offset_commit(OffsetCommitRequest {
                        group_id: "lagging".into(),
                        member_id: String::new(),
                        member_epoch: -1,
                        topics: vec![OffsetCommitTopic {
                            topic: "first".into(),
                            partitions: offsets
                                .iter()
                                .map(|(p, o)| OffsetCommitPartition {
                                    partition: *p,
                                    offset: *o,
                                    leader_epoch: -1,
                                    metadata: String::new(),
                                })
                                .collect(),
                        }],
                    })
                    .await;
                match r {
                    Ok(_) => return addr,
                    Err(s) => {
                        let e = StromError::from_status(&s);
                        assert!(e.is_retriable() && Instant::now() < deadline, "commit: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
    };
    let coordinator_addr = commit_all(vec![(0, 3), (1, 4)]).await;
    let id = *addrs
        .0
        .iter()
        .find(|(_, a)| **a == coordinator_addr)
        .expect("the coordinator is a node")
        .0;
    let wait_lag = |want: (i64, i64)| {
        let cluster = &cluster;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got = lag_metric(cluster, id, "lagging", "first").await;
                if got == Some(want) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "lag {got:?}, want {want:?} (lag, max partition lag)"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // p0: 10 - 3, p1: 4 - 4.
    wait_lag((7, 7)).await;
    // New records raise it without a commit.
    produce_to(&addrs, 1, 5, "more").await;
    wait_lag((12, 7)).await;
    // Commits at the end bring it to 0.
    commit_all(vec![(0, 10), (1, 9)]).await;
    wait_lag((0, 0)).await;
    // One series per group and topic: no partition label.
    let port = cluster.node(id).admin_port;
    let body =
        tokio::task::spawn_blocking(move || strom_integration_tests::admin_get(port, "/metrics"))
            .await
            .expect("scrape")
            .expect("metrics")
            .1;
    let series: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("strom_group_consumer_lag{"))
        .collect();
    assert_eq!(series.len(), 1, "{series:?}");
    assert!(!series[0].contains("partition"), "{series:?}");
}

/// `ConsumeMemberRecords` for `member` through `addr`, read from
/// `positions` (else the committed offsets, else per `reset`).
async fn read_as_member(
    addr: &str,
    group: &str,
    member: &Member,
    epoch: i32,
    positions: &[(i32, i64)],
    reset: &str,
) -> Result<Vec<MemberPartitionRecords>, StromError> {
    client(addr)
        .consume_member_records(ConsumeMemberRecordsRequest {
            group_id: group.into(),
            member_id: member.member_id.clone(),
            member_epoch: epoch,
            positions: positions
                .iter()
                .map(|(partition, offset)| MemberPosition {
                    topic: "first".into(),
                    partition: *partition,
                    offset: *offset,
                })
                .collect(),
            auto_offset_reset: reset.into(),
            ..ConsumeMemberRecordsRequest::default()
        })
        .await
        .map(|r| r.into_inner().partitions)
        .map_err(|s| StromError::from_status(&s))
}

/// A partition's answer: (partition, start, values, next offset, error).
fn summary(p: &MemberPartitionRecords) -> (i32, i64, Vec<String>, i64, i32) {
    let values = p
        .records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    (p.partition, p.offset, values, p.next_offset, p.error)
}

fn values(p: i32, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m-{p}-{i}")).collect()
}

/// A thin client reads every partition it owns with one
/// `ConsumeMemberRecords`, on the coordinator or through any other broker
/// (which forwards): from the committed offsets, else the reset, or from
/// the positions it gives; a stale or unknown member is refused, and a
/// partition without a position under `none` answers its own error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_reads_its_partitions_in_one_call_on_any_broker() {
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 4).await;
    let addrs = Addrs::of(&cluster);
    for p in 0..4 {
        produce_to(&addrs, p, 5, "m").await;
    }
    let group = "member-read";
    let (mut a, mut b) = (Member::new("a"), Member::new("b"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        round(&addrs, group, "range", &mut [&mut a, &mut b]).await;
        if parts(&a.owned).len() == 2 && parts(&b.owned).len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "a {:?} b {:?}", a.owned, b.owned);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ours, theirs) = (parts(&a.owned), parts(&b.owned));
    let (coordinator_id, coordinator_addr) =
        coordinator(&addrs, group, Duration::from_secs(30)).await;
    let other = addrs
        .0
        .iter()
        .find(|(id, _)| **id != coordinator_id)
        .map(|(_, addr)| addr.clone())
        .expect("a broker that is not the coordinator");
    // a commits 2 on its first partition.
    client(&coordinator_addr)
        .offset_commit(OffsetCommitRequest {
            group_id: group.into(),
            member_id: a.member_id.clone(),
            member_epoch: a.epoch,
            topics: vec![OffsetCommitTopic {
                topic: "first".into(),
                partitions: vec![OffsetCommitPartition {
                    partition: ours[0],
                    offset: 2,
                    leader_epoch: -1,
                    metadata: String::new(),
                }],
            }],
        })
        .await
        .expect("commit");

    // Through another broker: from the commit, else the earliest.
    let got = read_as_member(&other, group, &a, a.epoch, &[], "earliest")
        .await
        .expect("read through a non-coordinator");
    let got: Vec<_> = got.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (ours[0], 2, values(ours[0], 2..5), 5, 0),
            (ours[1], 0, values(ours[1], 0..5), 5, 0),
        ]
    );
    // At the coordinator, from given positions; latest for the rest.
    let got = read_as_member(
        &coordinator_addr,
        group,
        &a,
        a.epoch,
        &[(ours[1], 4)],
        "latest",
    )
    .await
    .expect("read at the coordinator");
    let got: Vec<_> = got.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (ours[0], 2, values(ours[0], 2..5), 5, 0),
            (ours[1], 4, values(ours[1], 4..5), 5, 0),
        ]
    );
    // b reads its own; with `none`, its partitions without a commit answer
    // OFFSET_OUT_OF_RANGE each, and the call itself succeeds.
    let got = read_as_member(&other, group, &b, b.epoch, &[], "none")
        .await
        .expect("read b");
    assert_eq!(got.iter().map(|p| p.partition).collect::<Vec<_>>(), theirs);
    assert!(
        got.iter()
            .all(|p| p.error == ErrorCode::OffsetOutOfRange as i32 && p.records.is_empty()),
        "{got:?}"
    );
    let got = read_as_member(&other, group, &b, b.epoch, &[], "latest")
        .await
        .expect("read b from latest");
    assert!(
        got.iter().all(|p| p.offset == 5 && p.records.is_empty()),
        "{got:?}"
    );

    // Refusals: the whole call, with its code.
    assert!(a.epoch > 1, "b's join moved a on: {}", a.epoch);
    let zombie = Member::new("zombie");
    /// (member, epoch, positions, reset, refusal)
    type Case<'a> = (&'a Member, i32, Vec<(i32, i64)>, &'a str, ErrorCode);
    let cases: Vec<Case<'_>> = vec![
        (&a, a.epoch - 1, vec![], "", ErrorCode::StaleMemberEpoch),
        (&a, a.epoch + 1, vec![], "", ErrorCode::FencedMemberEpoch),
        (&zombie, 1, vec![], "", ErrorCode::UnknownMemberId),
        (
            &a,
            a.epoch,
            vec![(ours[0], -1)],
            "",
            ErrorCode::InvalidRequest,
        ),
        (&a, a.epoch, vec![], "smallest", ErrorCode::InvalidRequest),
    ];
    for (member, epoch, positions, reset, want) in cases {
        for addr in [&coordinator_addr, &other] {
            let err = read_as_member(addr, group, member, epoch, &positions, reset)
                .await
                .expect_err("refused");
            assert_eq!(
                err.code, want,
                "{epoch} {positions:?} {reset:?} at {addr}: {err}"
            );
        }
    }
}
