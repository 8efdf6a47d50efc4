//! The Rust consumer as a group member against real nodes:
//! * three consumers split a topic's partitions, each partition owned by one
//!   member at a time (checked in the rebalance callbacks, which run before
//!   the consumer reports a revocation and after it takes a partition);
//!   after one closes (leaving at once) the others take its partitions;
//!   every record is delivered;
//! * a rebalance listener that commits on revoke: a member joining causes
//!   no duplicate;
//! * `strom consume --group` with auto commit, killed with -9 and restarted:
//!   it resumes exactly from the group's last commit (no record skipped,
//!   duplicates only since that commit);
//! * a static member restarted within its session gets its partitions
//!   back, the other member keeping its own throughout;
//! * with a 5 s heartbeat interval, a joining member gets its share in
//!   well under half of it: the coordinator pushes the change on the
//!   members' assignment streams and they heartbeat at once;
//! * a member not polled within `max.poll.interval.ms` leaves and rejoins;
//! * 15 s of churn (joins, closes, crashes) while records arrive: one owner
//!   at a time, every record delivered at least once;
//! * `strom perf consume --group` commits on exit and a rerun resumes;
//! * bad input: typed errors.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strom_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, ErrorCode, ListenerFuture, Producer,
    ProducerConfig, ProducerRecord, Properties, RebalanceListener, TopicPartition,
};
use strom_integration_tests::data::{Addrs, wait_leader_serving};
use strom_integration_tests::{Cluster, ClusterOptions, wait_until};

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .set("offsets.topic.num.partitions", "3")
        .set("group.consumer.heartbeat.interval.ms", "500")
}

async fn create(cluster: &Cluster, topic: &str, partitions: i32) {
    cluster
        .create_topic(1, topic, partitions, 1, &[])
        .await
        .expect("create topic");
    let addrs = Addrs::of(cluster);
    for p in 0..partitions {
        wait_leader_serving(&addrs, topic, p, Duration::from_secs(20))
            .await
            .expect("leader serves");
    }
}

/// Produces `values` round-robin over `partitions` partitions; returns the
/// partition and offset of each.
async fn produce(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    values: &[String],
) -> Vec<(i32, i64)> {
    let producer = Producer::connect(ProducerConfig::new(&cluster.bootstrap()).expect("config"))
        .await
        .expect("producer");
    let mut deliveries = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let record = ProducerRecord::new(topic)
            .partition(i as i32 % partitions)
            .value(v.clone());
        deliveries.push(producer.send(record).await.expect("queued"));
    }
    let mut out = Vec::new();
    for d in deliveries {
        let m = d.await.expect("delivered");
        out.push((m.partition, m.offset));
    }
    out
}

fn consumer_config(cluster: &Cluster, group: &str, extra: &[&str]) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(&cluster.bootstrap()).expect("config");
    config
        .set_all(
            [
                &format!("group.id={group}")[..],
                "auto.offset.reset=earliest",
                "session.timeout.ms=6000",
            ]
            .iter()
            .chain(extra),
        )
        .expect("settings");
    config
}

/// Who owns what, as the members' callbacks report it.
#[derive(Default)]
struct Owners {
    owned: BTreeMap<TopicPartition, usize>,
    /// Partitions given to a member while another still owned them.
    violations: Vec<String>,
}

/// Tracks ownership; optionally commits before giving partitions up.
struct Tracker {
    member: usize,
    owners: Arc<Mutex<Owners>>,
    commit_on_revoke: bool,
}

impl RebalanceListener for Tracker {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            if self.commit_on_revoke {
                consumer
                    .commit_sync()
                    .await
                    .expect("commit before revocation");
            }
            let mut o = self.owners.lock().unwrap();
            for tp in partitions {
                if o.owned.get(tp) == Some(&self.member) {
                    o.owned.remove(tp);
                }
            }
        })
    }

    fn on_partitions_assigned<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            let mut o = self.owners.lock().unwrap();
            for tp in partitions {
                if let Some(other) = o.owned.insert(tp.clone(), self.member)
                    && other != self.member
                {
                    let v = format!(
                        "{tp} given to member {} while {other} owned it",
                        self.member
                    );
                    o.violations.push(v);
                }
            }
        })
    }
}

type Delivered = Arc<Mutex<Vec<(usize, TopicPartition, i64, String)>>>;

/// A consumer polling in its own task until `stop`, then closing.
struct Member {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<TopicPartition>>,
}

fn spawn_member(
    mut consumer: Consumer,
    member: usize,
    delivered: Delivered,
    assignments: Arc<Mutex<BTreeMap<usize, Vec<TopicPartition>>>>,
) -> Member {
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let task = tokio::spawn(async move {
        while !stopping.load(Ordering::SeqCst) {
            let records = consumer
                .poll(Duration::from_millis(200))
                .await
                .expect("poll");
            let mut d = delivered.lock().unwrap();
            for r in records {
                let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
                d.push((member, r.topic_partition(), r.offset, value.into_owned()));
            }
            drop(d);
            assignments
                .lock()
                .unwrap()
                .insert(member, consumer.assignment());
        }
        let last = consumer.assignment();
        consumer.close().await.expect("close");
        assignments.lock().unwrap().remove(&member);
        last
    });
    Member { stop, task }
}

/// Whether the members' assignments cover `partitions` partitions of
/// `topic`, each exactly once, over exactly `members` members.
fn split_once(
    assignments: &BTreeMap<usize, Vec<TopicPartition>>,
    members: usize,
    partitions: i32,
) -> bool {
    let mut all: Vec<&TopicPartition> = assignments.values().flatten().collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assignments.len() == members
        && assignments.values().all(|a| !a.is_empty())
        && n == partitions as usize
        && all.len() == n
}

/// Three members split 6 partitions, each owned once at every step; one
/// closes and the other two take its partitions (at once: close leaves);
/// every record is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_split_partitions_and_take_over_when_one_closes() {
    let mut cluster = Cluster::start(1, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "split", 6).await;
    let values: Vec<String> = (0..600).map(|i| format!("v{i}")).collect();
    produce(&cluster, "split", 6, &values).await;

    let owners = Arc::new(Mutex::new(Owners::default()));
    let delivered: Delivered = Arc::default();
    let assignments = Arc::new(Mutex::new(BTreeMap::new()));
    let mut members = Vec::new();
    for m in 0..3 {
        let mut consumer = Consumer::connect(consumer_config(
            &cluster,
            "split-g",
            &[&format!("client.id=c{m}"), "auto.commit.interval.ms=500"],
        ))
        .await
        .expect("consumer");
        consumer.set_rebalance_listener(Tracker {
            member: m,
            owners: owners.clone(),
            commit_on_revoke: false,
        });
        consumer.subscribe(["split"]).await.expect("subscribe");
        members.push(spawn_member(
            consumer,
            m,
            delivered.clone(),
            assignments.clone(),
        ));
    }
    let split = wait_until(Duration::from_secs(60), || async {
        split_once(&assignments.lock().unwrap(), 3, 6)
    })
    .await;
    assert!(
        split,
        "three members never split the partitions: {:?}",
        assignments.lock().unwrap()
    );
    let admin = Admin::connect(ClientConfig::new(&cluster.bootstrap()).unwrap())
        .await
        .unwrap();
    let described = admin.describe_group("split-g").await.expect("describe");
    assert_eq!(described.members.len(), 3, "{described:?}");

    // Member 0 closes: it leaves at once, the others take its partitions
    // well within the 6 s session timeout.
    let closed_at = Instant::now();
    members[0].stop.store(true, Ordering::SeqCst);
    let had = (&mut members[0].task).await.expect("member 0");
    assert!(!had.is_empty());
    let took_over = wait_until(Duration::from_secs(30), || async {
        split_once(&assignments.lock().unwrap(), 2, 6)
    })
    .await;
    assert!(
        took_over,
        "the two remaining members never took all partitions: {:?}",
        assignments.lock().unwrap()
    );
    let took = closed_at.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the takeover took {took:?}: close did not leave at once"
    );
    let described = admin.describe_group("split-g").await.expect("describe");
    assert_eq!(described.members.len(), 2, "{described:?}");

    // Every record delivered at least once.
    let all_seen = wait_until(Duration::from_secs(30), || async {
        let d = delivered.lock().unwrap();
        let seen: BTreeSet<&str> = d.iter().map(|(_, _, _, v)| v.as_str()).collect();
        seen.len() == values.len()
    })
    .await;
    assert!(all_seen, "not every record was delivered");
    for m in members.drain(1..) {
        m.stop.store(true, Ordering::SeqCst);
        m.task.await.expect("member");
    }
    let violations = owners.lock().unwrap().violations.clone();
    assert!(violations.is_empty(), "{violations:?}");
    // All closed: the group is empty, its offsets committed on close.
    let described = admin.describe_group("split-g").await.expect("describe");
    assert!(described.members.is_empty(), "{described:?}");
    let committed: i64 = admin
        .list_group_offsets("split-g")
        .await
        .expect("offsets")
        .iter()
        .map(|o| o.offset)
        .sum();
    assert_eq!(committed, 600, "close commits every position");
}

/// A listener committing on revoke: a member joining a group that has
/// consumed everything causes no duplicate, and the new records are all
/// delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committing_on_revoke_avoids_duplicates_when_a_member_joins() {
    let mut cluster = Cluster::start(1, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "revoke", 4).await;
    let first: Vec<String> = (0..400).map(|i| format!("a{i}")).collect();
    produce(&cluster, "revoke", 4, &first).await;

    let owners = Arc::new(Mutex::new(Owners::default()));
    let delivered: Delivered = Arc::default();
    let assignments = Arc::new(Mutex::new(BTreeMap::new()));
    let mut members = Vec::new();
    let start_member = |m: usize| {
        let cluster = &cluster;
        let owners = owners.clone();
        let delivered = delivered.clone();
        let assignments = assignments.clone();
        async move {
            let mut consumer = Consumer::connect(consumer_config(
                cluster,
                "revoke-g",
                &[&format!("client.id=c{m}"), "enable.auto.commit=false"],
            ))
            .await
            .expect("consumer");
            consumer.set_rebalance_listener(Tracker {
                member: m,
                owners,
                commit_on_revoke: true,
            });
            consumer.subscribe(["revoke"]).await.expect("subscribe");
            spawn_member(consumer, m, delivered, assignments)
        }
    };
    members.push(start_member(0).await);
    let consumed = wait_until(Duration::from_secs(60), || async {
        delivered.lock().unwrap().len() >= 400
    })
    .await;
    assert!(consumed, "member 0 did not consume the first records");

    members.push(start_member(1).await);
    let split = wait_until(Duration::from_secs(60), || async {
        split_once(&assignments.lock().unwrap(), 2, 4)
    })
    .await;
    assert!(split, "{:?}", assignments.lock().unwrap());
    let second: Vec<String> = (0..400).map(|i| format!("b{i}")).collect();
    produce(&cluster, "revoke", 4, &second).await;
    let consumed = wait_until(Duration::from_secs(60), || async {
        delivered.lock().unwrap().len() >= 800
    })
    .await;
    // Give a duplicate time to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for m in members {
        m.stop.store(true, Ordering::SeqCst);
        m.task.await.expect("member");
    }
    let d = delivered.lock().unwrap();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, _, v) in d.iter() {
        *count.entry(v).or_default() += 1;
    }
    let duplicates: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(consumed, "only {} of 800 records delivered", d.len());
    assert_eq!(count.len(), 800, "every record delivered");
    assert!(duplicates.is_empty(), "duplicates: {duplicates:?}");
    assert!(
        d.iter().any(|(m, _, _, v)| *m == 1 && v.starts_with('b')),
        "the new member consumed"
    );
    let o = owners.lock().unwrap();
    assert!(o.violations.is_empty(), "{:?}", o.violations);
}

fn strom(cluster: &Cluster, args: &[&str]) -> Command {
    let mut c = Command::new(strom_integration_tests::binary("strom", "STROM_BIN"));
    c.arg("--bootstrap-server")
        .arg(cluster.bootstrap())
        .args(args);
    c
}

/// A `strom consume --group` process whose JSON lines are collected.
struct ConsumeProcess {
    child: Child,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
}

fn start_consume(cluster: &Cluster, group: &str, topic: &str) -> ConsumeProcess {
    let mut child = strom(
        cluster,
        &[
            "--output",
            "json",
            "consume",
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--consumer-props",
            "auto.commit.interval.ms=300",
            "session.timeout.ms=6000",
            "max.poll.records=20",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start strom consume");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line) {
                sink.lock().unwrap().push(v);
            }
        }
    });
    ConsumeProcess { child, lines }
}

fn printed(p: &ConsumeProcess) -> Vec<(i32, i64, String)> {
    p.lines
        .lock()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["partition"].as_i64().unwrap() as i32,
                v["offset"].as_i64().unwrap(),
                v["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Auto commit: `strom consume --group` killed with -9 while records
/// arrive, then restarted, resumes exactly at the group's last commit:
/// nothing skipped, duplicates only since that commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_group_consumer_resumes_from_its_last_auto_commit_after_kill_9() {
    let mut cluster = Cluster::start(1, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "resume", 3).await;
    let admin = Admin::connect(ClientConfig::new(&cluster.bootstrap()).unwrap())
        .await
        .unwrap();

    let mut first = start_consume(&cluster, "resume-g", "resume");
    // Records arrive in rounds while the consumer runs; it is killed in
    // the middle of them.
    let mut produced = Vec::new();
    let mut round = 0;
    let produce_round = async |round: i32| {
        let values: Vec<String> = (0..30).map(|i| format!("r{round}-{i}")).collect();
        produce(&cluster, "resume", 3, &values).await;
        values
    };
    while round < 10 {
        produced.extend(produce_round(round).await);
        round += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let some = wait_until(Duration::from_secs(60), || async {
        printed(&first).len() >= 150
    })
    .await;
    assert!(some, "the first consumer printed {}", printed(&first).len());
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    let before_kill = printed(&first);
    let committed: BTreeMap<i32, i64> = admin
        .list_group_offsets("resume-g")
        .await
        .expect("offsets")
        .into_iter()
        .map(|o| (o.partition, o.offset))
        .collect();
    assert!(!committed.is_empty(), "auto commit committed nothing");
    for round in 10..20 {
        produced.extend(produce_round(round).await);
    }

    let mut second = start_consume(&cluster, "resume-g", "resume");
    let all = wait_until(Duration::from_secs(60), || async {
        let seen: BTreeSet<String> = before_kill
            .iter()
            .chain(printed(&second).iter())
            .map(|(_, _, v)| v.clone())
            .collect();
        seen.len() == produced.len()
    })
    .await;
    let after = printed(&second);
    second.child.kill().expect("kill");
    second.child.wait().expect("reaped");
    assert!(
        all,
        "records skipped: {} printed before the kill, {} after, {} produced",
        before_kill.len(),
        after.len(),
        produced.len()
    );
    // Per partition: the restart starts exactly at the last commit, which
    // is never beyond what the first run printed.
    for p in 0..3 {
        let last_printed = before_kill
            .iter()
            .filter(|(q, _, _)| *q == p)
            .map(|(_, o, _)| *o)
            .max()
            .unwrap_or(-1);
        let first_after = after
            .iter()
            .filter(|(q, _, _)| *q == p)
            .map(|(_, o, _)| *o)
            .min()
            .expect("records after the restart");
        let commit = committed.get(&p).copied().unwrap_or(0);
        assert!(
            commit <= last_printed + 1,
            "partition {p}: committed {commit} beyond the printed {last_printed}"
        );
        assert_eq!(
            first_after, commit,
            "partition {p}: the restart must resume at the last commit"
        );
    }
}

/// Bad input: each a typed error, nothing joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_group_settings_are_typed_errors() {
    let mut cluster = Cluster::start(1, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "bad", 1).await;

    // A session timeout outside the broker's bounds (6 s to 30 min).
    let mut consumer = Consumer::connect(consumer_config(
        &cluster,
        "bad-g",
        &["session.timeout.ms=1000"],
    ))
    .await
    .unwrap();
    consumer.subscribe(["bad"]).await.unwrap();
    let error = loop {
        match consumer.poll(Duration::from_millis(500)).await {
            Err(e) => break e,
            Ok(records) => assert!(records.is_empty()),
        }
    };
    assert_eq!(
        error.code(),
        Some(ErrorCode::InvalidSessionTimeout),
        "{error}"
    );
    drop(consumer);

    // An unknown assignor and subscribe without group.id.
    let unknown = ConsumerConfig::from_properties([
        &format!("bootstrap.servers={}", cluster.bootstrap())[..],
        "group.id=g",
        "partition.assignment.strategy=fair",
    ])
    .unwrap_err();
    assert!(
        unknown.to_string().contains("unknown assignor"),
        "{unknown}"
    );
    let mut plain = Consumer::connect(ConsumerConfig::new(&cluster.bootstrap()).unwrap())
        .await
        .unwrap();
    let error = plain.subscribe(["bad"]).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::InvalidGroupId));

    let admin = Admin::connect(ClientConfig::new(&cluster.bootstrap()).unwrap())
        .await
        .unwrap();
    let listed = admin.list_groups().await.unwrap();
    assert!(
        listed.iter().all(|g| g.members == 0),
        "nothing joined: {listed:?}"
    );

    // The CLI: one line on stderr, exit 1 (a refused request, not clap's
    // usage error 2).
    for args in [
        &[
            "consume",
            "--topic",
            "bad",
            "--group",
            "g",
            "--partition",
            "0",
        ][..],
        &["consume", "--topic", "bad", "--group", "g", "--offset", "5"],
        &[
            "consume",
            "--topic",
            "bad",
            "--partition",
            "0",
            "--consumer-props",
            "group.id=g",
        ],
        &[
            "consume",
            "--topic",
            "bad",
            "--group",
            "g",
            "--consumer-props",
            "partition.assignment.strategy=fair",
        ],
        &[
            "consume",
            "--topic",
            "bad",
            "--group",
            "g",
            "--consumer-props",
            "session.timeout.ms=1000",
        ],
    ] {
        let out = strom(&cluster, args).output().expect("run strom");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

/// Polls `consumer` until `check` holds on its assignment (or panics).
async fn poll_until(
    consumer: &mut Consumer,
    what: &str,
    check: impl Fn(&[TopicPartition]) -> bool,
) -> Vec<TopicPartition> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        consumer
            .poll(Duration::from_millis(100))
            .await
            .expect("poll");
        let a = consumer.assignment();
        if check(&a) {
            return a;
        }
        assert!(Instant::now() < deadline, "{what}: assignment {a:?}");
    }
}

/// Two consumers polled in turn until they split `n` partitions.
async fn poll_both_until_split(a: &mut Consumer, b: &mut Consumer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        a.poll(Duration::from_millis(50)).await.expect("poll a");
        b.poll(Duration::from_millis(50)).await.expect("poll b");
        let (x, y) = (a.assignment(), b.assignment());
        if !x.is_empty()
            && !y.is_empty()
            && x.len() + y.len() == n
            && x.iter().all(|tp| !y.contains(tp))
        {
            return;
        }
        assert!(Instant::now() < deadline, "never split: {x:?} / {y:?}");
    }
}

/// The pushed assignment stream: with `group.consumer.heartbeat.interval.ms`
/// at 5 s, a member joining makes the existing member release partitions
/// and the newcomer obtain them well before any member's next heartbeat
/// would have told them (here: under half the interval).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_member_gets_its_share_well_within_the_heartbeat_interval() {
    let interval = Duration::from_millis(5000);
    let mut cluster = Cluster::start(
        1,
        ClusterOptions::default()
            .set("offsets.topic.num.partitions", "3")
            .set(
                "group.consumer.heartbeat.interval.ms",
                &interval.as_millis().to_string(),
            ),
    )
    .await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "pushed", 6).await;
    for assignor in ["cooperative-sticky", "range"] {
        let group = format!("pushed-{assignor}");
        let strategy = format!("partition.assignment.strategy={assignor}");
        let connect = |client: &'static str| {
            Consumer::connect(consumer_config(
                &cluster,
                &group,
                &[&format!("client.id={client}"), &strategy],
            ))
        };
        let mut a = connect("a").await.unwrap();
        a.subscribe(["pushed"]).await.unwrap();
        poll_until(&mut a, "a alone", |x| x.len() == 6).await;
        let mut b = connect("b").await.unwrap();
        let started = Instant::now();
        b.subscribe(["pushed"]).await.unwrap();
        poll_both_until_split(&mut a, &mut b, 6).await;
        let took = started.elapsed();
        assert!(
            took < interval / 2,
            "{assignor}: the split took {took:?} with a {interval:?} heartbeat interval"
        );
        // And when b leaves, a takes everything back as fast.
        let started = Instant::now();
        b.close().await.unwrap();
        poll_until(&mut a, "a alone again", |x| x.len() == 6).await;
        let took = started.elapsed();
        assert!(
            took < interval / 2,
            "{assignor}: taking b's partitions back took {took:?}"
        );
        a.close().await.unwrap();
    }
}

/// A static member that closes (epoch -2) keeps its partitions: the other
/// member does not get them, and the member restarted with the same
/// instance id gets the same ones back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_gets_its_partitions_back_after_a_restart() {
    let mut cluster = Cluster::start(1, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "static", 4).await;
    let connect = |extra: &'static [&'static str]| {
        Consumer::connect(consumer_config(&cluster, "static-g", extra))
    };
    let mut a = connect(&["group.instance.id=a", "client.id=a"])
        .await
        .unwrap();
    let mut b = connect(&["client.id=b"]).await.unwrap();
    a.subscribe(["static"]).await.unwrap();
    b.subscribe(["static"]).await.unwrap();
    poll_both_until_split(&mut a, &mut b, 4).await;
    let had = a.assignment();
    let b_had = b.assignment();
    a.close().await.expect("close");
    // For 3 s (of the 6 s session) b keeps exactly its own partitions.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        b.poll(Duration::from_millis(100)).await.expect("poll");
        assert_eq!(
            b.assignment(),
            b_had,
            "the static member's partitions moved"
        );
    }
    let mut a2 = connect(&["group.instance.id=a", "client.id=a"])
        .await
        .unwrap();
    a2.subscribe(["static"]).await.unwrap();
    let got = poll_until(&mut a2, "restarted static member", |x| !x.is_empty()).await;
    assert_eq!(got, had, "the same partitions come back");
    b.poll(Duration::from_millis(100)).await.expect("poll");
    assert_eq!(b.assignment(), b_had, "no rebalance for b");
    a2.close().await.unwrap();
    b.close().await.unwrap();
}

/// A member not polled within `max.poll.interval.ms` leaves the group (the
/// other member takes everything) and rejoins on its next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_and_rejoins_on_the_next_poll() {
    let mut cluster = Cluster::start(1, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "slow", 4).await;
    let connect = |extra: &'static [&'static str]| {
        Consumer::connect(consumer_config(&cluster, "slow-g", extra))
    };
    let mut slow = connect(&["client.id=slow", "max.poll.interval.ms=2000"])
        .await
        .unwrap();
    let mut busy = connect(&["client.id=busy"]).await.unwrap();
    slow.subscribe(["slow"]).await.unwrap();
    busy.subscribe(["slow"]).await.unwrap();
    poll_both_until_split(&mut slow, &mut busy, 4).await;
    // `slow` is not polled: after 2 s it leaves, and `busy` takes all.
    let started = Instant::now();
    poll_until(&mut busy, "busy takes all", |x| x.len() == 4).await;
    assert!(started.elapsed() < Duration::from_secs(15));
    // The next poll drops the lost partitions and rejoins.
    slow.poll(Duration::from_millis(10)).await.expect("poll");
    assert!(slow.assignment().is_empty(), "lost partitions dropped");
    poll_both_until_split(&mut slow, &mut busy, 4).await;
    slow.close().await.unwrap();
    busy.close().await.unwrap();
}

/// Churn while records arrive: members join, close, and crash (dropped
/// without close: no commit, no leave; their session expires) at random
/// for 15 s. Every partition is owned by one member at a time (the
/// callbacks; a crashed member owns nothing from its crash on), and once a
/// member stays, every record produced was delivered at least once: no
/// gap between an old owner's last commit and a new owner's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_delivers_every_record_with_one_owner_at_a_time() {
    let mut cluster = Cluster::start(1, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "churn", 6).await;

    let producing = Arc::new(AtomicBool::new(true));
    let bootstrap = cluster.bootstrap();
    let producer_task = {
        let producing = producing.clone();
        tokio::spawn(async move {
            let producer = Producer::connect(ProducerConfig::new(&bootstrap).expect("config"))
                .await
                .expect("producer");
            let mut sent = Vec::new();
            let mut n = 0u64;
            while producing.load(Ordering::SeqCst) {
                let mut deliveries = Vec::new();
                for _ in 0..20 {
                    let value = format!("c{n}");
                    n += 1;
                    let record = ProducerRecord::new("churn").value(value.clone());
                    deliveries.push((value, producer.send(record).await.expect("queued")));
                }
                for (value, d) in deliveries {
                    d.await.expect("delivered");
                    sent.push(value);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sent
        })
    };

    let owners = Arc::new(Mutex::new(Owners::default()));
    let delivered: Delivered = Arc::default();
    let assignments = Arc::new(Mutex::new(BTreeMap::new()));
    let start_member = |m: usize| {
        let cluster = &cluster;
        let owners = owners.clone();
        let delivered = delivered.clone();
        let assignments = assignments.clone();
        async move {
            let mut consumer = Consumer::connect(consumer_config(
                cluster,
                "churn-g",
                &[
                    &format!("client.id=c{m}"),
                    "auto.commit.interval.ms=200",
                    "partition.assignment.strategy=cooperative-sticky",
                ],
            ))
            .await
            .expect("consumer");
            consumer.set_rebalance_listener(Tracker {
                member: m,
                owners,
                commit_on_revoke: false,
            });
            consumer.subscribe(["churn"]).await.expect("subscribe");
            spawn_member(consumer, m, delivered, assignments)
        }
    };

    let mut live: BTreeMap<usize, Member> = BTreeMap::new();
    let mut next_id = 0usize;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let (mut joins, mut closes, mut crashes) = (0, 0, 0);
    let churn_until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < churn_until {
        let action = random(3);
        if live.is_empty() || (action == 0 && live.len() < 4) {
            live.insert(next_id, start_member(next_id).await);
            next_id += 1;
            joins += 1;
        } else if live.len() > 1 {
            let keys: Vec<usize> = live.keys().copied().collect();
            let victim = keys[random(keys.len() as u64) as usize];
            let member = live.remove(&victim).expect("live member");
            if action == 1 {
                member.stop.store(true, Ordering::SeqCst);
                member.task.await.expect("close");
                closes += 1;
            } else {
                member.task.abort();
                let _ = member.task.await;
                // A crashed process owns nothing any more.
                owners
                    .lock()
                    .unwrap()
                    .owned
                    .retain(|_, owner| *owner != victim);
                assignments.lock().unwrap().remove(&victim);
                crashes += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(300 + random(700))).await;
    }
    producing.store(false, Ordering::SeqCst);
    let sent = producer_task.await.expect("producer");
    assert!(joins > 2 && closes + crashes > 2, "too little churn");

    let all = wait_until(Duration::from_secs(60), || async {
        let d = delivered.lock().unwrap();
        let seen: BTreeSet<&str> = d.iter().map(|(_, _, _, v)| v.as_str()).collect();
        sent.iter().all(|v| seen.contains(v.as_str()))
    })
    .await;
    for (_, m) in live {
        m.stop.store(true, Ordering::SeqCst);
        m.task.await.expect("member");
    }
    let d = delivered.lock().unwrap();
    let seen: BTreeSet<&str> = d.iter().map(|(_, _, _, v)| v.as_str()).collect();
    let missing: Vec<&String> = sent.iter().filter(|v| !seen.contains(v.as_str())).collect();
    assert!(
        all,
        "{} of {} records never delivered (joins {joins}, closes {closes}, crashes {crashes}), e.g. {:?}",
        missing.len(),
        sent.len(),
        &missing[..missing.len().min(5)]
    );
    let violations = owners.lock().unwrap().violations.clone();
    assert!(violations.is_empty(), "{violations:?}");
    eprintln!(
        "churn: {} records, {} deliveries, joins {joins}, closes {closes}, crashes {crashes}",
        sent.len(),
        d.len()
    );
}

/// `strom perf consume --group`: reads as a member, commits on exit, and a
/// second run resumes after the committed records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_consume_with_a_group_commits_and_resumes() {
    let mut cluster = Cluster::start(1, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "perf", 3).await;
    let values: Vec<String> = (0..300).map(|i| format!("p{i}")).collect();
    produce(&cluster, "perf", 3, &values).await;
    let run = |messages: &str| {
        strom(
            &cluster,
            &[
                "--timeout-ms",
                "3000",
                "perf",
                "consume",
                "--topic",
                "perf",
                "--messages",
                messages,
                "--group",
                "perf-g",
            ],
        )
        .output()
        .expect("run strom")
    };
    let out = run("300");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = Admin::connect(ClientConfig::new(&cluster.bootstrap()).unwrap())
        .await
        .unwrap();
    let committed: i64 = admin
        .list_group_offsets("perf-g")
        .await
        .expect("offsets")
        .iter()
        .map(|o| o.offset)
        .sum();
    assert_eq!(committed, 300, "every read record committed on exit");
    let described = admin.describe_group("perf-g").await.expect("describe");
    assert!(described.members.is_empty(), "left on exit: {described:?}");
    // Nothing after the commit: the second run times out reading none.
    let out = run("1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "resumed after the commit: {stderr}");
    assert!(stderr.contains("consumed 0 of 1"), "{stderr}");
}
