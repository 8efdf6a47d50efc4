//! Transactions through the Rust client's transactional producer and the
//! `strom` CLI, on three real nodes (the raw-RPC tests of the coordinator
//! are in `transactions.rs`):
//! * a transaction over several partitions is invisible to a
//!   `read_committed` consumer until it commits (the last stable offset
//!   holds readers back although the records are written), then visible
//!   whole; an aborted one never;
//! * zombie fencing: a second producer with the same transactional id
//!   fences the first, whose commit fails with a fatal error and whose
//!   writes never become visible;
//! * consume-transform-produce (`src/bin/txn_transform.rs`, a child
//!   process) while the processor, the transaction coordinator's broker
//!   and a partition leader are killed with -9: the output holds each
//!   input record exactly once;
//! * `strom produce --transactional-id … [--abort]` and
//!   `strom consume --isolation-level read_committed`;
//! * a hanging transaction (a `strom produce` process stopped in the middle
//!   of one) aborted after `transaction.timeout.ms`, with the open
//!   transaction and its LSO lag in `/metrics` while it hangs, not after.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use strom_client::{
    Consumer, ConsumerConfig, Error, ErrorCode, Producer, ProducerConfig, ProducerRecord,
    Properties, TopicPartition,
};
use strom_integration_tests::data::{Addrs, partition_state_any, wait_leader_serving};
use strom_integration_tests::{Cluster, ClusterOptions, binary, channel, wait_until};
use strom_proto::v1::group_service_client::GroupServiceClient;
use strom_proto::v1::{CoordinatorKeyType, FindCoordinatorRequest};

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false")
        .set("transaction.state.log.num.partitions", "3")
        .set("offsets.topic.num.partitions", "3")
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

fn producer_config(cluster: &Cluster, transactional_id: &str) -> ProducerConfig {
    ProducerConfig::from_properties([
        format!("bootstrap.servers={}", cluster.bootstrap()),
        format!("transactional.id={transactional_id}"),
        "max.block.ms=60000".to_owned(),
    ])
    .expect("producer config")
}

async fn transactional_producer(cluster: &Cluster, transactional_id: &str) -> Producer {
    let producer = Producer::connect(producer_config(cluster, transactional_id))
        .await
        .expect("producer");
    producer
        .init_transactions()
        .await
        .expect("init transactions");
    producer
}

fn consumer_config(cluster: &Cluster, isolation: &str) -> ConsumerConfig {
    ConsumerConfig::from_properties([
        format!("bootstrap.servers={}", cluster.bootstrap()),
        format!("isolation.level={isolation}"),
        "auto.offset.reset=earliest".to_owned(),
    ])
    .expect("consumer config")
}

/// Everything of `topic` a consumer at `isolation` reads from the start up
/// to the end it sees (the last stable offset under `read_committed`):
/// the values per partition, in offset order.
async fn read_to_end(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    isolation: &str,
) -> BTreeMap<i32, Vec<String>> {
    let mut consumer = Consumer::connect(consumer_config(cluster, isolation))
        .await
        .expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone());
    consumer.seek_to_beginning(&tps).expect("seek");
    let ends = consumer.end_offsets(&tps).await.expect("end offsets");
    let mut out: BTreeMap<i32, Vec<String>> = (0..partitions).map(|p| (p, Vec::new())).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let mut done = true;
        for tp in &tps {
            if consumer.position(tp).await.expect("position") < ends[tp] {
                done = false;
            }
        }
        if done {
            return out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic} not read to its end {ends:?} in time"
        );
        for r in consumer
            .poll(Duration::from_millis(300))
            .await
            .expect("poll")
        {
            let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
            out.entry(r.partition).or_default().push(value.into_owned());
        }
    }
}

/// Sends `count` records to every partition (values `{prefix}-{p}-{i}`) and
/// waits until the leaders acknowledged them (flush).
async fn send_to_each(producer: &Producer, topic: &str, partitions: i32, prefix: &str, count: i32) {
    for i in 0..count {
        for p in 0..partitions {
            producer
                .send(
                    ProducerRecord::new(topic)
                        .partition(p)
                        .value(format!("{prefix}-{p}-{i}")),
                )
                .await
                .expect("send");
        }
    }
    producer.flush().await.expect("flush");
}

/// [`read_to_end`] at `read_committed` until `done` holds of what it read
/// (a commit is answered once decided; its markers follow), at most 30 s.
async fn read_committed_until(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    done: impl Fn(&BTreeMap<i32, Vec<String>>) -> bool,
) -> BTreeMap<i32, Vec<String>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let read = read_to_end(cluster, topic, partitions, "read_committed").await;
        if done(&read) || tokio::time::Instant::now() > deadline {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn values_with(read: &BTreeMap<i32, Vec<String>>, prefix: &str) -> usize {
    read.values()
        .flatten()
        .filter(|v| v.starts_with(&format!("{prefix}-")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_consumers_see_a_transaction_whole_after_commit_and_never_an_aborted_one() {
    let cluster = Cluster::start(3, options()).await;
    create(&cluster, "atomic", 3).await;
    let producer = transactional_producer(&cluster, "atomic-writer").await;

    // Written, but held back by the last stable offset until the commit.
    producer.begin_transaction().expect("begin");
    send_to_each(&producer, "atomic", 3, "first", 10).await;
    let uncommitted = read_to_end(&cluster, "atomic", 3, "read_uncommitted").await;
    assert_eq!(values_with(&uncommitted, "first"), 30, "{uncommitted:?}");
    let committed = read_to_end(&cluster, "atomic", 3, "read_committed").await;
    assert_eq!(
        values_with(&committed, "first"),
        0,
        "the open transaction is visible: {committed:?}"
    );
    producer.commit_transaction().await.expect("commit");
    let committed =
        read_committed_until(&cluster, "atomic", 3, |r| values_with(r, "first") == 30).await;
    for p in 0..3 {
        let want: Vec<String> = (0..10).map(|i| format!("first-{p}-{i}")).collect();
        assert_eq!(committed[&p], want, "partition {p}");
    }

    // Aborted: written, never visible; the next transaction is.
    producer.begin_transaction().expect("begin");
    send_to_each(&producer, "atomic", 3, "aborted", 10).await;
    producer.abort_transaction().await.expect("abort");
    producer.begin_transaction().expect("begin");
    send_to_each(&producer, "atomic", 3, "third", 5).await;
    producer.commit_transaction().await.expect("commit");
    let uncommitted = read_to_end(&cluster, "atomic", 3, "read_uncommitted").await;
    assert_eq!(values_with(&uncommitted, "aborted"), 30, "the abort wrote");
    let committed =
        read_committed_until(&cluster, "atomic", 3, |r| values_with(r, "third") == 15).await;
    assert_eq!(values_with(&committed, "aborted"), 0, "{committed:?}");
    assert_eq!(values_with(&committed, "first"), 30);
    assert_eq!(values_with(&committed, "third"), 15);

    // An abort with records not sent yet fails them, and they never show.
    producer.begin_transaction().expect("begin");
    let pending = producer
        .send(ProducerRecord::new("atomic").partition(0).value("late-0-0"))
        .await
        .expect("send");
    producer.abort_transaction().await.expect("abort");
    let _ = pending.await;
    let committed = read_to_end(&cluster, "atomic", 3, "read_committed").await;
    assert_eq!(values_with(&committed, "late"), 0, "{committed:?}");
    producer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_producer_fails_fatally_and_nothing_it_writes_becomes_visible() {
    let cluster = Cluster::start(3, options()).await;
    create(&cluster, "fenced", 2).await;

    // Calls out of turn are typed errors, nothing sent.
    let zombie = Producer::connect(producer_config(&cluster, "fence-me"))
        .await
        .expect("producer");
    let err = zombie.begin_transaction().expect_err("before init");
    assert!(matches!(err, Error::IllegalState(_)), "{err}");
    assert_eq!(err.code(), Some(ErrorCode::InvalidTxnState));
    zombie.init_transactions().await.expect("init");
    let err = zombie
        .send(ProducerRecord::new("fenced").value("outside"))
        .await
        .expect_err("outside a transaction");
    assert!(matches!(err, Error::IllegalState(_)), "{err}");
    zombie.begin_transaction().expect("begin");
    let err = zombie.begin_transaction().expect_err("begin twice");
    assert!(matches!(err, Error::IllegalState(_)), "{err}");
    send_to_each(&zombie, "fenced", 1, "zombie-before", 5).await;

    // The new incarnation fences it and aborts its transaction.
    let successor = transactional_producer(&cluster, "fence-me").await;
    // Partition 0 saw the zombie's epoch; partition 1 did not, so its
    // first batch is checked at the coordinator (KIP-890).
    for p in 0..2 {
        let delivery = zombie
            .send(
                ProducerRecord::new("fenced")
                    .partition(p)
                    .value(format!("zombie-after-{p}-0")),
            )
            .await;
        if let Ok(delivery) = delivery {
            let outcome = delivery.await;
            assert!(outcome.is_err(), "a fenced producer's record was written");
        }
    }
    let err = zombie
        .commit_transaction()
        .await
        .expect_err("fenced commit");
    assert!(matches!(err, Error::FatalTransaction(_)), "{err}");
    assert!(
        matches!(
            err.code(),
            Some(ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch)
        ),
        "{err}"
    );
    // Only close is left.
    let err = zombie.abort_transaction().await.expect_err("after fatal");
    assert!(matches!(err, Error::FatalTransaction(_)), "{err}");
    let err = zombie.begin_transaction().expect_err("after fatal");
    assert!(matches!(err, Error::FatalTransaction(_)), "{err}");
    zombie.close().await.expect("close");

    successor.begin_transaction().expect("begin");
    send_to_each(&successor, "fenced", 2, "successor", 5).await;
    successor.commit_transaction().await.expect("commit");
    let committed =
        read_committed_until(&cluster, "fenced", 2, |r| values_with(r, "successor") == 10).await;
    let all: Vec<&String> = committed.values().flatten().collect();
    assert_eq!(all.len(), 10, "{committed:?}");
    assert!(
        all.iter().all(|v| v.starts_with("successor-")),
        "{committed:?}"
    );
    successor.close().await.expect("close");
}

/// The node coordinating `transactional_id` now.
async fn coordinator_of(cluster: &Cluster, transactional_id: &str) -> i32 {
    let addrs = Addrs::of(cluster);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        for addr in addrs.0.values() {
            if let Ok(r) = GroupServiceClient::new(channel(addr))
                .find_coordinator(FindCoordinatorRequest {
                    group_id: transactional_id.into(),
                    key_type: CoordinatorKeyType::Transaction as i32,
                })
                .await
            {
                return r.into_inner().node_id;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no coordinator for {transactional_id}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The processing client as a child process (see `src/bin/txn_transform.rs`).
/// The consume-transform-produce child process, kept running as a
/// supervisor would: an incarnation that exits (the processor exits on any
/// error, and the faults cause errors) is replaced by a new one, which
/// fences the old and aborts what it left open. Each incarnation's output
/// goes to its own file, shown when the test fails.
struct Processor {
    child: Child,
    incarnations: usize,
    logs: std::path::PathBuf,
}

impl Processor {
    fn start(cluster: &Cluster) -> Self {
        let logs = cluster.dir().join("processor");
        std::fs::create_dir_all(&logs).expect("processor log dir");
        let child = Self::spawn(cluster, &logs, 1);
        Processor {
            child,
            incarnations: 1,
            logs,
        }
    }

    fn spawn(cluster: &Cluster, logs: &std::path::Path, incarnation: usize) -> Child {
        let log = std::fs::File::create(logs.join(format!("{incarnation}.log")))
            .expect("processor log file");
        let err = log.try_clone().expect("processor log file");
        Command::new(env!("CARGO_BIN_EXE_txn_transform"))
            .args([
                cluster.bootstrap().as_str(),
                "ctp-in",
                "3",
                "ctp-out",
                "ctp-group",
                "ctp-processor",
                "100",
            ])
            // The error that ended an incarnation, without a backtrace.
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0")
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("start txn_transform")
    }

    /// Starts a new incarnation when the current one has exited.
    fn supervise(&mut self, cluster: &Cluster) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            self.incarnations += 1;
            self.child = Self::spawn(cluster, &self.logs, self.incarnations);
        }
    }

    fn kill(&mut self) {
        self.child.kill().expect("kill -9 the processor");
        let _ = self.child.wait();
    }

    /// The last lines of every incarnation's output.
    fn logs(&self) -> String {
        let mut out = String::new();
        for i in 1..=self.incarnations {
            let text =
                std::fs::read_to_string(self.logs.join(format!("{i}.log"))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- processor incarnation {i} ---\n"));
            for l in &lines[lines.len().saturating_sub(15)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Waits, restarting the processor whenever it exits, until `n`
    /// distinct output records are committed; panics with the processor's
    /// and the nodes' logs after `timeout`.
    async fn until_processed(&mut self, cluster: &Cluster, n: usize, timeout: Duration) {
        let done = wait_until(timeout, || {
            self.supervise(cluster);
            processed(cluster, n)
        })
        .await;
        if !done {
            let got = output_counts(cluster).await.len();
            self.kill();
            panic!(
                "{got} of {n} records processed after {timeout:?}\n{}\n{}",
                self.logs(),
                cluster.dump_logs()
            );
        }
    }
}

/// Output values read with read_committed so far, however many times each.
async fn output_counts(cluster: &Cluster) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for v in read_to_end(cluster, "ctp-out", 3, "read_committed")
        .await
        .into_values()
        .flatten()
    {
        *counts.entry(v).or_insert(0) += 1;
    }
    counts
}

/// Whether at least `n` distinct output records are committed.
async fn processed(cluster: &Cluster, n: usize) -> bool {
    output_counts(cluster).await.len() >= n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_holds_each_input_once_across_kill_9() {
    const RECORDS: usize = 900;
    let mut cluster = Cluster::start(3, options()).await;
    create(&cluster, "ctp-in", 3).await;
    create(&cluster, "ctp-out", 3).await;
    let input = Producer::connect(
        ProducerConfig::from_properties([format!("bootstrap.servers={}", cluster.bootstrap())])
            .expect("config"),
    )
    .await
    .expect("producer");
    for i in 0..RECORDS {
        input
            .send(
                ProducerRecord::new("ctp-in")
                    .key(format!("k{i}"))
                    .value(format!("in-{i}")),
            )
            .await
            .expect("send");
    }
    input.flush().await.expect("flush");
    input.close().await.expect("close");

    let mut processor = Processor::start(&cluster);
    let deadline = Duration::from_secs(90);

    // 1. The processing client, killed -9 in the middle of its work.
    processor.until_processed(&cluster, 150, deadline).await;
    processor.kill();

    // 2. The transaction coordinator's broker.
    processor.until_processed(&cluster, 350, deadline).await;
    let coordinator = coordinator_of(&cluster, "ctp-processor").await;
    cluster.kill(coordinator);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(coordinator);

    // 3. The leader of an output partition.
    processor.until_processed(&cluster, 550, deadline).await;
    let addrs = Addrs::of(&cluster);
    let (leader, _, _) = partition_state_any(&addrs, "ctp-out", 0)
        .await
        .expect("leader of ctp-out-0");
    cluster.kill(leader);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(leader);

    processor
        .until_processed(&cluster, RECORDS, Duration::from_secs(120))
        .await;
    processor.kill();
    eprintln!(
        "processed by {} processor incarnations\n{}",
        processor.incarnations,
        processor.logs()
    );

    // A new incarnation aborts whatever the last one left open, so that
    // the last stable offset reaches the end.
    let last = transactional_producer(&cluster, "ctp-processor").await;
    last.close().await.expect("close");
    let counts = output_counts(&cluster).await;
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "duplicates: {duplicates:?}");
    for i in 0..RECORDS {
        assert_eq!(counts.get(&format!("out-in-{i}")), Some(&1), "record {i}");
    }
    assert_eq!(counts.len(), RECORDS, "unexpected output records");
}

fn strom(cluster: &Cluster, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(binary("strom", "STROM_BIN"))
        .arg("--bootstrap-server")
        .arg(cluster.bootstrap())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strom");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("strom output")
}

fn consumed_values(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["value"].as_str().expect("value").to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_transactions_are_visible_to_read_committed_only_when_committed() {
    let cluster = Cluster::start(3, options()).await;
    create(&cluster, "cli-txn", 2).await;
    let c = &cluster;
    let lines = |prefix: &str| -> String { (0..6).map(|i| format!("{prefix}{i}\n")).collect() };

    let aborted = lines("aborted-");
    let out = tokio::task::block_in_place(|| {
        strom(
            c,
            &[
                "produce",
                "--topic",
                "cli-txn",
                "--transactional-id",
                "cli-1",
                "--transaction-size",
                "4",
                "--abort",
            ],
            &aborted,
        )
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = lines("committed-");
    let out = tokio::task::block_in_place(|| {
        strom(
            c,
            &[
                "produce",
                "--topic",
                "cli-txn",
                "--transactional-id",
                "cli-1",
                "--transaction-size",
                "4",
            ],
            &committed,
        )
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let consume = |isolation: &'static str| {
        tokio::task::block_in_place(|| {
            strom(
                c,
                &[
                    "--output",
                    "json",
                    "consume",
                    "--topic",
                    "cli-txn",
                    "--from-beginning",
                    "--isolation-level",
                    isolation,
                    "--timeout-ms",
                    "5000",
                ],
                "",
            )
        })
    };
    let out = consume("read_committed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = consumed_values(&out);
    seen.sort();
    let mut want: Vec<String> = (0..6).map(|i| format!("committed-{i}")).collect();
    want.sort();
    assert_eq!(seen, want, "read_committed");
    let out = consume("read_uncommitted");
    assert_eq!(
        consumed_values(&out).len(),
        12,
        "the aborted records were written"
    );

    // A bad transactional id: one typed line, exit 1.
    let out = tokio::task::block_in_place(|| {
        strom(
            c,
            &[
                "produce",
                "--topic",
                "cli-txn",
                "--producer-property",
                "transaction.timeout.ms=999999999",
                "--transactional-id",
                "cli-2",
            ],
            "x\n",
        )
    });
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: INVALID_TRANSACTION_TIMEOUT: "),
        "{stderr}"
    );
}

/// Node `id`'s `/metrics`, or empty when it did not answer.
async fn metrics(cluster: &Cluster, id: i32) -> String {
    let port = cluster.node(id).admin_port;
    tokio::task::spawn_blocking(move || strom_integration_tests::admin_get(port, "/metrics"))
        .await
        .expect("metrics task")
        .map(|(_, body)| body)
        .unwrap_or_default()
}

/// The sum over the nodes of the series of `name` whose labels include
/// `labels` (`key="value"` each); 0 when no node has one.
async fn metric(cluster: &Cluster, name: &str, labels: &[&str]) -> f64 {
    let mut sum = 0.0;
    for id in 1..=3 {
        for line in metrics(cluster, id).await.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            // The series itself, not one whose name merely starts alike.
            let (series_labels, value) = match rest.split_once(' ') {
                Some((l, v)) if l.is_empty() || l.starts_with('{') => (l, v),
                _ => continue,
            };
            if labels.iter().all(|want| series_labels.contains(want))
                && let Ok(v) = value.trim().parse::<f64>()
            {
                sum += v;
            }
        }
    }
    sum
}

/// Waits (at most 30 s) until [`metric`] equals `want`; its last value.
async fn metric_reaches(cluster: &Cluster, name: &str, labels: &[&str], want: f64) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = metric(cluster, name, labels).await;
        if v == want || tokio::time::Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The high watermark and the last stable offset of `tp`.
async fn hw_and_lso(
    uncommitted: &Consumer,
    committed: &Consumer,
    tp: &TopicPartition,
) -> (i64, i64) {
    let tps = [tp.clone()];
    let hw = uncommitted.end_offsets(&tps).await.expect("end offsets")[tp];
    let lso = committed.end_offsets(&tps).await.expect("end offsets")[tp];
    (hw, lso)
}

/// A child process killed with -9 when dropped (a failed test leaves no
/// stopped client behind).
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A truly hanging transaction: a `strom produce` client process begins a
/// transaction, writes two records to a partition and then stops (its
/// stdin stays open, then it is SIGSTOPped), never committing or aborting.
/// While it hangs, the last stable offset holds `read_committed` readers
/// back (records written after it by another producer are not returned)
/// and the metrics show the transaction open: one open transaction at its
/// coordinator, one partition with an open transaction at the leader, a
/// last-stable-offset lag of 2 plus the records written after it. The
/// coordinator aborts it once `transaction.timeout.ms` passed: the LSO
/// reaches the high watermark, a `read_committed` consumer gets everything
/// but the two records, and the metrics show nothing open and one
/// transaction timed out. Resumed, the stopped client cannot commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_transaction_is_aborted_after_its_timeout_and_read_committed_readers_move_on() {
    let cluster = Cluster::start(
        3,
        options().set(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "300",
        ),
    )
    .await;
    create(&cluster, "hang", 1).await;
    let tp = TopicPartition::new("hang", 0);
    let plain = Producer::connect(
        ProducerConfig::from_properties([format!("bootstrap.servers={}", cluster.bootstrap())])
            .expect("config"),
    )
    .await
    .expect("producer");
    send_to_each(&plain, "hang", 1, "before", 3).await;

    let mut client = KillOnDrop(Some(
        Command::new(binary("strom", "STROM_BIN"))
            .arg("--bootstrap-server")
            .arg(cluster.bootstrap())
            .args([
                "produce",
                "--topic",
                "hang",
                "--partition",
                "0",
                "--transactional-id",
                "hanging",
                "--linger-ms",
                "0",
                "--producer-property",
                "transaction.timeout.ms=10000",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run strom produce"),
    ));
    let child = client.0.as_mut().expect("the client");
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"open-1\nopen-2\n")
        .and_then(|()| stdin.flush())
        .expect("write stdin");

    let uncommitted = Consumer::connect(consumer_config(&cluster, "read_uncommitted"))
        .await
        .expect("consumer");
    let committed = Consumer::connect(consumer_config(&cluster, "read_committed"))
        .await
        .expect("consumer");
    // The two records reached the partition; the transaction is open.
    let written = wait_until(Duration::from_secs(30), || async {
        hw_and_lso(&uncommitted, &committed, &tp).await == (5, 3)
    })
    .await;
    assert!(
        written,
        "the transaction's records were not written (hw, lso) = {:?}",
        hw_and_lso(&uncommitted, &committed, &tp).await
    );
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP the client");

    // Written after the open transaction: held back by the LSO.
    send_to_each(&plain, "hang", 1, "during", 3).await;
    assert_eq!(hw_and_lso(&uncommitted, &committed, &tp).await, (8, 3));
    let read = read_to_end(&cluster, "hang", 1, "read_committed").await;
    assert_eq!(read[&0], ["before-0-0", "before-0-1", "before-0-2"]);

    let open = metric_reaches(&cluster, "strom_txn_open_transactions", &[], 1.0).await;
    assert_eq!(open, 1.0, "open transactions while it hangs");
    let partitions = metric(&cluster, "strom_partitions_with_open_transactions", &[]).await;
    assert_eq!(partitions, 1.0, "partitions with an open transaction");
    let lag = metric(
        &cluster,
        "strom_last_stable_offset_lag",
        &["topic=\"hang\"", "partition=\"0\""],
    )
    .await;
    assert_eq!(lag, 5.0, "LSO lag: the 2 open records and the 3 after them");
    assert_eq!(
        metric(&cluster, "strom_txn_timed_out_total", &[]).await,
        0.0
    );

    // The coordinator aborts it after transaction.timeout.ms.
    let aborted = wait_until(Duration::from_secs(40), || async {
        let (hw, lso) = hw_and_lso(&uncommitted, &committed, &tp).await;
        hw == lso && hw > 8
    })
    .await;
    assert!(
        aborted,
        "the hanging transaction was not aborted: (hw, lso) = {:?}",
        hw_and_lso(&uncommitted, &committed, &tp).await
    );
    assert_eq!(
        metric_reaches(&cluster, "strom_txn_timed_out_total", &[], 1.0).await,
        1.0,
        "transactions timed out"
    );
    assert_eq!(
        metric_reaches(&cluster, "strom_txn_open_transactions", &[], 0.0).await,
        0.0,
        "open transactions after the abort"
    );
    assert_eq!(
        metric_reaches(
            &cluster,
            "strom_partitions_with_open_transactions",
            &[],
            0.0
        )
        .await,
        0.0
    );
    assert_eq!(
        metric(
            &cluster,
            "strom_last_stable_offset_lag",
            &["topic=\"hang\"", "partition=\"0\""],
        )
        .await,
        0.0,
        "no LSO lag after the abort"
    );

    // Everything but the aborted records, and what follows.
    send_to_each(&plain, "hang", 1, "after", 2).await;
    let read = read_to_end(&cluster, "hang", 1, "read_committed").await;
    assert_eq!(
        read[&0],
        [
            "before-0-0",
            "before-0-1",
            "before-0-2",
            "during-0-0",
            "during-0-1",
            "during-0-2",
            "after-0-0",
            "after-0-1"
        ]
    );

    // Resumed with its stdin closed, the client tries to commit: refused.
    kill(pid, Signal::SIGCONT).expect("SIGCONT the client");
    drop(stdin);
    let child = client.0.take().expect("the client");
    let out = tokio::task::block_in_place(|| child.wait_with_output()).expect("client output");
    assert!(
        !out.status.success(),
        "a commit after the timeout abort must fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = read_to_end(&cluster, "hang", 1, "read_committed").await;
    assert_eq!(values_with(&read, "open"), 0, "{read:?}");
    plain.close().await.expect("close");
}
