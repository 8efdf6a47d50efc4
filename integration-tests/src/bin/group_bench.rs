//! Consumer-group benchmarks (issue #21) on a real local three-node
//! cluster. The members are this program's own KIP-848 heartbeat loops
//! over `GroupService` (as a thin client runs them): each heartbeats every
//! `heartbeat_interval_ms` the coordinator answers, at once after its
//! assignment changed, to report what it now owns (it takes and gives up
//! partitions without delay: the measurement is the coordinator's and the
//! protocol's, not an application's), and at once when the coordinator
//! pushes an event on the member's `ConsumerGroupAssignmentStream` (so a
//! rebalance is not bounded below by the heartbeat interval).
//!
//! * `grow`: `--members` (10) members consume a topic of `--from` (100)
//!   partitions; the topic grows to `--to` (1,000). Time from the
//!   CreatePartitions answer until every partition is owned by exactly one
//!   member (every member runs its new assignment).
//! * `join`: `--members` (50) − 1 members share `--partitions` (1,000); the
//!   last one joins. Time from its first heartbeat until every partition is
//!   owned exactly once, all members at the new group epoch, the newcomer
//!   with its share.
//! * `commit`: `--groups` (10) member-less groups each commit
//!   `--partitions` / groups (100) partitions every `--interval-ms` (1000),
//!   so `--partitions` (1,000) offsets per second, for `--seconds` (30):
//!   committed offsets per second and OffsetCommit latency p50 / p99 / max.
//! * `failover`: one group (`--members`, 3) on a 12-partition topic, its
//!   members committing; kill -9 of the broker coordinating it. Time until
//!   the group consumes again: a member's heartbeat and commit accepted by
//!   the new coordinator. `--trials` (5); p50 and p99.
//!
//! Usage: `group_bench grow|join|commit|failover [--members N] [--from N]
//! [--to N] [--partitions N] [--groups N] [--interval-ms N] [--seconds N]
//! [--trials N] [--replication-factor N] [--heartbeat-ms N]`.
//! `--heartbeat-ms` (500) is the brokers' `group.consumer.heartbeat.interval.ms`.
//! `scripts/bench-groups` builds release binaries and points `STROMD_BIN` at
//! them; docs/benchmarks.md records the command lines and numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strom_integration_tests::data::{Addrs, wait_leader_serving};
use strom_integration_tests::{Cluster, ClusterOptions, channel};
use strom_proto::StromError;
use strom_proto::v1::group_service_client::GroupServiceClient;
use strom_proto::v1::{
    ConsumerGroupAssignmentStreamRequest, ConsumerGroupHeartbeatRequest, CreatePartitionsRequest,
    CreatePartitionsTopic, ErrorCode, FindCoordinatorRequest, OffsetCommitPartition,
    OffsetCommitRequest, OffsetCommitTopic, OwnedPartitions, Subscription, TopicPartitions,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "bench";

/// What each member task last reported to the coordinator.
#[derive(Debug, Clone, Default)]
struct MemberView {
    member_id: String,
    epoch: i32,
    owned: BTreeSet<i32>,
}

type Views = Arc<Mutex<BTreeMap<usize, MemberView>>>;

fn lock(views: &Views) -> std::sync::MutexGuard<'_, BTreeMap<usize, MemberView>> {
    views.lock().unwrap_or_else(|e| e.into_inner())
}

/// The group's coordinator address, found through any node.
async fn coordinator(addrs: &Addrs, group: &str) -> String {
    loop {
        for addr in addrs.0.values() {
            let found = GroupServiceClient::new(channel(addr))
                .find_coordinator(FindCoordinatorRequest {
                    group_id: group.into(),
                    ..Default::default()
                })
                .await;
            if let Ok(r) = found {
                return r.into_inner().address;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A member: joins `group` on the topic and heartbeats until `stop`,
/// publishing its epoch and partitions in `views[index]`.
async fn member(addrs: Addrs, group: String, index: usize, views: Views, stop: CancellationToken) {
    let mut view = MemberView::default();
    let mut addr = coordinator(&addrs, &group).await;
    let pushed = Arc::new(Notify::new());
    let mut listener: Option<Listener> = None;
    while !stop.is_cancelled() {
        if view.epoch > 0
            && listener.as_ref().is_none_or(|l| {
                l.member_id != view.member_id || l.addr != addr || l.task.is_finished()
            })
        {
            listener = Some(Listener::open(
                &addr,
                &group,
                &view.member_id,
                pushed.clone(),
            ));
        }
        let joining = view.epoch == 0;
        let req = ConsumerGroupHeartbeatRequest {
            group_id: group.clone(),
            member_id: view.member_id.clone(),
            member_epoch: view.epoch,
            client_id: format!("bench-{index:03}"),
            rebalance_timeout_ms: joining.then_some(60_000),
            session_timeout_ms: joining.then_some(10_000),
            subscription: joining.then(|| Subscription {
                topic_names: vec![TOPIC.into()],
                topic_regex: None,
            }),
            assignors: if joining {
                vec!["cooperative-sticky".into()]
            } else {
                vec![]
            },
            assignors_set: joining,
            owned: Some(OwnedPartitions {
                topics: vec![TopicPartitions {
                    topic: TOPIC.into(),
                    partitions: view.owned.iter().copied().collect(),
                }],
            }),
            ..ConsumerGroupHeartbeatRequest::default()
        };
        let mut c = GroupServiceClient::new(channel(&addr));
        let answer = tokio::select! {
            a = c.consumer_group_heartbeat(req) => a,
            _ = stop.cancelled() => break,
        };
        match answer {
            Ok(r) => {
                let r = r.into_inner();
                let owned: BTreeSet<i32> = r
                    .assignment
                    .iter()
                    .filter(|t| t.topic == TOPIC)
                    .flat_map(|t| t.partitions.iter().copied())
                    .collect();
                let changed = owned != view.owned || r.member_epoch != view.epoch;
                view = MemberView {
                    member_id: r.member_id,
                    epoch: r.member_epoch,
                    owned,
                };
                let interval = Duration::from_millis(r.heartbeat_interval_ms.max(10) as u64);
                lock(&views).insert(index, view.clone());
                if changed {
                    continue; // report the new ownership at once
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = pushed.notified() => {}
                    _ = stop.cancelled() => break,
                }
            }
            Err(s) => {
                let e = StromError::from_status(&s);
                if matches!(
                    e.code,
                    ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch
                ) {
                    view = MemberView::default();
                    lock(&views).insert(index, view.clone());
                }
                addr = coordinator(&addrs, &group).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // Leaves at once.
    let view = lock(&views).remove(&index).unwrap_or_default();
    if view.epoch > 0 {
        let _ = GroupServiceClient::new(channel(&addr))
            .consumer_group_heartbeat(ConsumerGroupHeartbeatRequest {
                group_id: group,
                member_id: view.member_id,
                member_epoch: -1,
                ..ConsumerGroupHeartbeatRequest::default()
            })
            .await;
    }
}

/// A member's pushed assignment stream: wakes the member at each event;
/// aborted when dropped.
#[derive(Debug)]
struct Listener {
    member_id: String,
    addr: String,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    fn open(addr: &str, group: &str, member_id: &str, pushed: Arc<Notify>) -> Listener {
        let req = ConsumerGroupAssignmentStreamRequest {
            group_id: group.into(),
            member_id: member_id.into(),
        };
        let ch = channel(addr);
        let task = tokio::spawn(async move {
            let Ok(stream) = GroupServiceClient::new(ch)
                .consumer_group_assignment_stream(req)
                .await
            else {
                return;
            };
            let mut stream = stream.into_inner();
            while let Ok(Some(_)) = stream.message().await {
                pushed.notify_one();
            }
        });
        Listener {
            member_id: member_id.into(),
            addr: addr.into(),
            task,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `members` members own the `partitions` partitions, each exactly
/// once, all at one epoch; the epoch.
fn settled(views: &Views, members: usize, partitions: i32) -> Option<i32> {
    let views = lock(views);
    if views.len() != members {
        return None;
    }
    let mut seen = BTreeSet::new();
    for v in views.values() {
        for p in &v.owned {
            if !seen.insert(*p) {
                return None;
            }
        }
    }
    let epochs: BTreeSet<i32> = views.values().map(|v| v.epoch).collect();
    (seen.len() == usize::try_from(partitions).unwrap_or(0)
        && seen.iter().all(|p| (0..partitions).contains(p))
        && epochs.len() == 1)
        .then(|| epochs.into_iter().next().unwrap_or(0))
}

/// Waits (polling every 2 ms) until `done` holds; the time it took.
async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

fn options(heartbeat_ms: u64) -> ClusterOptions {
    ClusterOptions::default()
        .set(
            "group.consumer.heartbeat.interval.ms",
            &heartbeat_ms.to_string(),
        )
        .set("auto.leader.rebalance.enable", "false")
}

async fn create(cluster: &Cluster, partitions: i32, rf: i32) {
    let configs: &[(&str, &str)] = if rf >= 3 {
        &[("min.insync.replicas", "2")]
    } else {
        &[]
    };
    cluster
        .create_topic(1, TOPIC, partitions, rf, configs)
        .await
        .expect("create topic");
    wait_serving(cluster, 0..partitions).await;
}

async fn wait_serving(cluster: &Cluster, partitions: std::ops::Range<i32>) {
    let addrs = Addrs::of(cluster);
    for p in partitions {
        wait_leader_serving(&addrs, TOPIC, p, Duration::from_secs(120))
            .await
            .expect("leader serves");
    }
}

fn spawn_members(
    addrs: &Addrs,
    group: &str,
    range: std::ops::Range<usize>,
    views: &Views,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    range
        .map(|i| {
            tokio::spawn(member(
                addrs.clone(),
                group.into(),
                i,
                views.clone(),
                stop.clone(),
            ))
        })
        .collect()
}

async fn stop_all(stop: CancellationToken, tasks: Vec<tokio::task::JoinHandle<()>>) {
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
}

async fn grow(args: &Args) {
    let (members, from, to) = (
        args.members(10),
        args.get("--from", 100),
        args.get("--to", 1000),
    );
    let cluster = Cluster::start(3, options(args.heartbeat_ms())).await;
    create(&cluster, i32::try_from(from).expect("--from"), args.rf()).await;
    let addrs = Addrs::of(&cluster);
    let views: Views = Arc::default();
    let stop = CancellationToken::new();
    let tasks = spawn_members(&addrs, "grow", 0..members, &views, &stop);
    let from = i32::try_from(from).expect("--from");
    let to = i32::try_from(to).expect("--to");
    let joined = wait_for("the group settles", Duration::from_secs(120), || {
        settled(&views, members, from).is_some()
    })
    .await;
    eprintln!("{members} members own {from} partitions after {joined:?}");
    let started = Instant::now();
    let r = cluster
        .controller_client(1)
        .create_partitions(CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: TOPIC.into(),
                count: to,
                assignments: vec![],
            }],
            validate_only: false,
        })
        .await
        .expect("create partitions")
        .into_inner();
    assert!(
        r.topics
            .iter()
            .all(|t| t.error_code == ErrorCode::None as i32),
        "{r:?}"
    );
    let answered = started.elapsed();
    let rebalanced = wait_for("the grown topic is split", Duration::from_secs(300), || {
        settled(&views, members, to).is_some()
    })
    .await;
    println!(
        "grow: {members} members, {from} -> {to} partitions (replication factor {}, heartbeat {} ms): \
         CreatePartitions answered in {} ms; every member runs its new assignment {} ms after it",
        args.rf(),
        args.heartbeat_ms(),
        answered.as_millis(),
        rebalanced.as_millis()
    );
    stop_all(stop, tasks).await;
}

async fn join(args: &Args) {
    let (members, partitions) = (args.members(50), args.get("--partitions", 1000));
    let partitions = i32::try_from(partitions).expect("--partitions");
    let cluster = Cluster::start(3, options(args.heartbeat_ms())).await;
    create(&cluster, partitions, args.rf()).await;
    let addrs = Addrs::of(&cluster);
    let views: Views = Arc::default();
    let stop = CancellationToken::new();
    let mut tasks = spawn_members(&addrs, "join", 0..members - 1, &views, &stop);
    wait_for("the group settles", Duration::from_secs(300), || {
        settled(&views, members - 1, partitions).is_some()
    })
    .await;
    let before = settled(&views, members - 1, partitions).unwrap_or(0);
    let share = usize::try_from(partitions).unwrap_or(0) / members;
    tasks.extend(spawn_members(
        &addrs,
        "join",
        members - 1..members,
        &views,
        &stop,
    ));
    let took = wait_for(
        "the newcomer runs its share",
        Duration::from_secs(300),
        || {
            settled(&views, members, partitions).is_some_and(|epoch| epoch > before)
                && lock(&views)
                    .get(&(members - 1))
                    .is_some_and(|v| v.owned.len() >= share)
        },
    )
    .await;
    println!(
        "join: member {members} joins {} members over {partitions} partitions (replication factor {}, \
         heartbeat {} ms): every member runs its new assignment {} ms after its first heartbeat",
        members - 1,
        args.rf(),
        args.heartbeat_ms(),
        took.as_millis()
    );
    stop_all(stop, tasks).await;
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn commit(args: &Args) {
    let groups = args.get("--groups", 10).max(1) as usize;
    let partitions = i32::try_from(args.get("--partitions", 1000)).expect("--partitions");
    let interval = Duration::from_millis(args.get("--interval-ms", 1000));
    let seconds = Duration::from_secs(args.get("--seconds", 30));
    let cluster = Cluster::start(3, options(args.heartbeat_ms())).await;
    create(&cluster, partitions, args.rf()).await;
    let addrs = Addrs::of(&cluster);
    let per_group = (partitions as usize).div_ceil(groups);
    // Warm-up: every group's coordinator is up (the offsets topic is created
    // on first use) before the clock starts.
    for g in 0..groups {
        let group = format!("commit-{g}");
        loop {
            let addr = coordinator(&addrs, &group).await;
            let warm = GroupServiceClient::new(channel(&addr))
                .offset_commit(OffsetCommitRequest {
                    group_id: group.clone(),
                    member_id: String::new(),
                    member_epoch: -1,
                    topics: vec![],
                })
                .await;
            if warm.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for g in 0..groups {
        let (addrs, latencies, failed) = (addrs.clone(), latencies.clone(), failed.clone());
        let mine: Vec<i32> = (0..partitions)
            .skip(g * per_group)
            .take(per_group)
            .collect();
        tasks.push(tokio::spawn(async move {
            let group = format!("commit-{g}");
            let mut addr = coordinator(&addrs, &group).await;
            let mut next = Instant::now();
            let mut offset = 0i64;
            while started.elapsed() < seconds {
                tokio::time::sleep_until(next.into()).await;
                next += interval;
                offset += 1;
                let req = OffsetCommitRequest {
                    group_id: group.clone(),
                    member_id: String::new(),
                    member_epoch: -1,
                    topics: vec![OffsetCommitTopic {
                        topic: TOPIC.into(),
                        partitions: mine
                            .iter()
                            .map(|p| OffsetCommitPartition {
                                partition: *p,
                                offset,
                                leader_epoch: -1,
                                metadata: String::new(),
                            })
                            .collect(),
                    }],
                };
                let sent = Instant::now();
                match GroupServiceClient::new(channel(&addr))
                    .offset_commit(req)
                    .await
                {
                    Ok(_) => latencies
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((sent.elapsed(), mine.len())),
                    Err(s) => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        eprintln!("commit of {group}: {}", StromError::from_status(&s));
                        addr = coordinator(&addrs, &group).await;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed();
    let done = latencies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let offsets: usize = done.iter().map(|(_, n)| n).sum();
    let mut sorted: Vec<Duration> = done.iter().map(|(d, _)| *d).collect();
    sorted.sort();
    println!(
        "commit: {groups} groups x {per_group} partitions every {} ms for {} s (replication factor {}): \
         {} requests ({} failed), {:.0} offsets/s; OffsetCommit latency p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms",
        interval.as_millis(),
        seconds.as_secs(),
        args.rf(),
        sorted.len(),
        failed.load(std::sync::atomic::Ordering::Relaxed),
        offsets as f64 / elapsed.as_secs_f64(),
        percentile(&sorted, 0.5).as_secs_f64() * 1e3,
        percentile(&sorted, 0.99).as_secs_f64() * 1e3,
        sorted.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

async fn failover(args: &Args) {
    let trials = args.get("--trials", 5) as usize;
    let members = args.members(3);
    let mut cluster = Cluster::start(
        3,
        options(args.heartbeat_ms())
            .set("offsets.topic.num.partitions", "5")
            .set("min.insync.replicas", "2"),
    )
    .await;
    create(&cluster, 12, 3).await;
    let mut times = Vec::new();
    for trial in 0..trials {
        let addrs = Addrs::of(&cluster);
        let group = format!("failover-{trial}");
        let views: Views = Arc::default();
        let stop = CancellationToken::new();
        let tasks = spawn_members(&addrs, &group, 0..members, &views, &stop);
        wait_for("the group settles", Duration::from_secs(120), || {
            settled(&views, members, 12).is_some()
        })
        .await;
        let victim_addr = coordinator(&addrs, &group).await;
        let victim = *addrs
            .0
            .iter()
            .find(|(_, a)| **a == victim_addr)
            .expect("the coordinator is a node")
            .0;
        cluster.kill(victim);
        let killed = Instant::now();
        let survivors = Addrs(
            addrs
                .0
                .iter()
                .filter(|(id, _)| **id != victim)
                .map(|(id, a)| (*id, a.clone()))
                .collect(),
        );
        // Consumes again: a member's commit is accepted by the new
        // coordinator, under the epoch its heartbeat there gave it.
        loop {
            let addr = coordinator(&survivors, &group).await;
            if addr != victim_addr {
                let view = lock(&views).values().next().cloned().unwrap_or_default();
                let committed = GroupServiceClient::new(channel(&addr))
                    .offset_commit(OffsetCommitRequest {
                        group_id: group.clone(),
                        member_id: view.member_id.clone(),
                        member_epoch: view.epoch,
                        topics: vec![OffsetCommitTopic {
                            topic: TOPIC.into(),
                            partitions: view
                                .owned
                                .iter()
                                .map(|p| OffsetCommitPartition {
                                    partition: *p,
                                    offset: 1,
                                    leader_epoch: -1,
                                    metadata: String::new(),
                                })
                                .collect(),
                        }],
                    })
                    .await;
                if committed.is_ok() && view.epoch > 0 {
                    break;
                }
            }
            assert!(
                killed.elapsed() < Duration::from_secs(120),
                "no commit accepted within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = killed.elapsed();
        eprintln!("trial {trial}: broker {victim} killed; the group commits again after {took:?}");
        times.push(took);
        stop_all(stop, tasks).await;
        cluster.restart(victim);
        cluster.wait_ready(Duration::from_secs(120)).await;
        wait_serving(&cluster, 0..12).await;
    }
    times.sort();
    println!(
        "failover: kill -9 of the group's coordinator, {trials} trials, {members} members: \
         the group commits again after p50 {} ms, p99 {} ms (broker.session.timeout.ms default)",
        percentile(&times, 0.5).as_millis(),
        percentile(&times, 0.99).as_millis()
    );
}

/// `--flag N` arguments.
#[derive(Debug)]
struct Args(Vec<String>);

impl Args {
    fn get(&self, flag: &str, default: u64) -> u64 {
        self.0
            .iter()
            .position(|a| a == flag)
            .and_then(|i| self.0.get(i + 1))
            .map(|v| {
                v.parse::<u64>().unwrap_or_else(|_| {
                    eprintln!("error: {flag} takes a number, got '{v}'");
                    std::process::exit(2)
                })
            })
            .unwrap_or(default)
    }

    fn members(&self, default: u64) -> usize {
        let n = self.get("--members", default);
        if n < 2 {
            eprintln!("error: --members must be at least 2");
            std::process::exit(2);
        }
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    fn rf(&self) -> i32 {
        i32::try_from(self.get("--replication-factor", 3).clamp(1, 3)).unwrap_or(3)
    }

    fn heartbeat_ms(&self) -> u64 {
        self.get("--heartbeat-ms", 500).max(1)
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    let args = Args(args);
    match mode.as_str() {
        "grow" => grow(&args).await,
        "join" => join(&args).await,
        "commit" => commit(&args).await,
        "failover" => failover(&args).await,
        other => {
            eprintln!("unknown mode '{other}': use grow, join, commit or failover");
            std::process::exit(2);
        }
    }
}
