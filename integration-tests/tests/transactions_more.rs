//! More transactions on three real nodes (issue 22), apart from
//! `transactions.rs` (raw coordinator RPCs) and `transactions_client.rs`
//! (the Rust client):
//! * a `read_committed` fetch waiting at the last stable offset is woken by
//!   the commit's markers, long before its `max_wait_ms`;
//! * `strom transactions list | describe | describe-producers |
//!   find-hanging | abort` end to end: a producer (a `strom produce`
//!   child) killed with -9 inside a transaction holds read_committed
//!   consumers back; the CLI shows it (JSON), find-hanging leaves it to the
//!   coordinator that still owns it, `abort --start-offset` writes its
//!   ABORT marker and consumers move on; typed errors for bad input;
//! * a TxnOffsetCommit for a member id or epoch (generation) that is not
//!   the group's current one is refused with its code and leaves nothing
//!   pending;
//! * an idempotent batch from a producer id the leader does not know, with
//!   a non-zero sequence: UNKNOWN_PRODUCER_ID, nothing written.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_client::{Consumer, ConsumerConfig, Properties};
use strom_integration_tests::data::{Addrs, broker_client, wait_leader_serving};
use strom_integration_tests::{Cluster, ClusterOptions, binary, channel};
use strom_log::batch::{BatchIter, Compression, RecordBatchBuilder};
use strom_proto::StromError;
use strom_proto::v1::group_service_client::GroupServiceClient;
use strom_proto::v1::transaction_service_client::TransactionServiceClient;
use strom_proto::v1::{
    AddPartitionsToTxnRequest, CoordinatorKeyType, EndTxnRequest, ErrorCode, FetchPartition,
    FetchRequest, FetchResponse, FetchTopic, FindCoordinatorRequest, InitProducerIdRequest,
    IsolationLevel, OffsetFetchRequest, ProducePartitionData, ProduceRequest, ProduceTopicData,
    TopicPartitions, TxnOffsetCommitPartition, TxnOffsetCommitRequest, TxnTopic,
};

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false")
        .set("transaction.state.log.num.partitions", "3")
        .set("offsets.topic.num.partitions", "3")
}

async fn create(cluster: &Cluster, topic: &str, partitions: i32) -> Addrs {
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
    addrs
}

fn status(s: &tonic::Status) -> StromError {
    StromError::from_status(s)
}

/// The address of the coordinator of `key`, retried while its internal
/// topic is created or its leader moves.
async fn coordinator(addrs: &Addrs, key: &str, key_type: CoordinatorKeyType) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        for addr in addrs.0.values() {
            if let Ok(r) = GroupServiceClient::new(channel(addr))
                .find_coordinator(FindCoordinatorRequest {
                    group_id: key.into(),
                    key_type: key_type as i32,
                })
                .await
            {
                let r = r.into_inner();
                return (r.node_id, r.address);
            }
        }
        assert!(Instant::now() < deadline, "no coordinator for {key}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `call` at the coordinator of `key`, retried through retriable errors
/// (the coordinator loading or moving): the answer or the first refusal.
async fn at_coordinator<T, F, Fut>(
    addrs: &Addrs,
    key: &str,
    key_type: CoordinatorKeyType,
    mut call: F,
) -> Result<T, StromError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (_, addr) = coordinator(addrs, key, key_type).await;
        match call(addr).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(s) => {
                let e = status(&s);
                if !e.is_retriable() || Instant::now() >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// InitProducerId for `transactional_id` (retried while the coordinator
/// loads): its producer id and epoch.
async fn init(addrs: &Addrs, transactional_id: &str) -> (i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (node, _) = coordinator(addrs, transactional_id, CoordinatorKeyType::Transaction).await;
        let r = broker_client(addrs, node)
            .init_producer_id(InitProducerIdRequest {
                transactional_id: transactional_id.into(),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
            })
            .await;
        let e = match r {
            Ok(r) => {
                let r = r.into_inner();
                if r.error_code == ErrorCode::None as i32 {
                    return (
                        r.producer_id,
                        i16::try_from(r.producer_epoch).expect("int16 epoch"),
                    );
                }
                let code =
                    ErrorCode::try_from(r.error_code).unwrap_or(ErrorCode::UnknownServerError);
                StromError::new(code, r.error_message)
            }
            Err(s) => status(&s),
        };
        assert!(
            e.is_retriable() && Instant::now() < deadline,
            "init {transactional_id}: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn add_partitions(
    addrs: &Addrs,
    transactional_id: &str,
    (producer_id, epoch): (i64, i16),
    topic: &str,
    partitions: &[i32],
) -> Result<(), StromError> {
    let req = AddPartitionsToTxnRequest {
        transactional_id: transactional_id.into(),
        producer_id,
        producer_epoch: i32::from(epoch),
        topics: vec![TxnTopic {
            topic: topic.into(),
            partitions: partitions.to_vec(),
        }],
    };
    at_coordinator(
        addrs,
        transactional_id,
        CoordinatorKeyType::Transaction,
        |addr| {
            let req = req.clone();
            async move {
                TransactionServiceClient::new(channel(&addr))
                    .add_partitions_to_txn(req)
                    .await
            }
        },
    )
    .await
    .map(|_| ())
}

async fn end_txn(
    addrs: &Addrs,
    transactional_id: &str,
    (producer_id, epoch): (i64, i16),
    committed: bool,
) -> Result<(), StromError> {
    let req = EndTxnRequest {
        transactional_id: transactional_id.into(),
        producer_id,
        producer_epoch: i32::from(epoch),
        committed,
    };
    at_coordinator(
        addrs,
        transactional_id,
        CoordinatorKeyType::Transaction,
        |addr| {
            let req = req.clone();
            async move {
                TransactionServiceClient::new(channel(&addr))
                    .end_txn(req)
                    .await
            }
        },
    )
    .await
    .map(|_| ())
}

/// A batch of `values` from the producer at `seq`: transactional or only
/// idempotent.
fn producer_batch(
    (producer_id, epoch): (i64, i16),
    seq: i32,
    transactional: bool,
    values: &[&str],
) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None)
        .producer(producer_id, epoch, seq)
        .transactional(transactional);
    for v in values {
        b.append(1, None, Some(v.as_bytes()), &[]);
    }
    b.build()
}

/// Produces `records` to the leader of `topic`-`partition` (acks=all) as
/// the transactional producer `transactional_id` (empty: none): the base
/// offset or the partition's refusal.
async fn produce(
    addrs: &Addrs,
    transactional_id: &str,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> Result<i64, StromError> {
    let leader = wait_leader_serving(addrs, topic, partition, Duration::from_secs(20))
        .await
        .expect("leader serves");
    let resp = broker_client(addrs, leader)
        .produce(ProduceRequest {
            acks: -1,
            timeout_ms: 5000,
            topics: vec![ProduceTopicData {
                topic: topic.into(),
                partitions: vec![ProducePartitionData { partition, records }],
            }],
            transactional_id: transactional_id.into(),
        })
        .await
        .map_err(|s| status(&s))?
        .into_inner();
    let p = resp
        .topics
        .into_iter()
        .next()
        .and_then(|t| t.partitions.into_iter().next())
        .expect("one partition answered");
    if p.error_code == ErrorCode::None as i32 {
        Ok(p.base_offset)
    } else {
        let code = ErrorCode::try_from(p.error_code).unwrap_or(ErrorCode::UnknownServerError);
        Err(StromError::new(code, p.error_message))
    }
}

fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    isolation: IsolationLevel,
    max_wait_ms: i32,
) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        replica_epoch: -1,
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 8 << 20,
        isolation_level: isolation as i32,
        topics: vec![FetchTopic {
            topic: topic.into(),
            topic_id: Vec::new(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 4 << 20,
                replica_durable_offset: 0,
            }],
        }],
    }
}

/// What one partition of a fetch answer holds: (high watermark, last
/// stable offset, values of its data records below the high watermark).
fn fetched(resp: FetchResponse) -> (i64, i64, Vec<String>) {
    let p = resp
        .topics
        .into_iter()
        .next()
        .and_then(|t| t.partitions.into_iter().next())
        .expect("one partition");
    assert_eq!(p.error_code, ErrorCode::None as i32, "{}", p.error_message);
    let mut values = Vec::new();
    for b in BatchIter::new(p.records) {
        let b = b.expect("a whole batch");
        if b.is_control() || b.base_offset() >= p.high_watermark {
            continue;
        }
        for r in b.records().expect("decodable records") {
            values.push(String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned());
        }
    }
    (p.high_watermark, p.last_stable_offset, values)
}

/// Fetches `topic`-`partition` from its leader without waiting.
async fn fetch_now(addrs: &Addrs, topic: &str, partition: i32) -> (i64, i64, Vec<String>) {
    let leader = wait_leader_serving(addrs, topic, partition, Duration::from_secs(20))
        .await
        .expect("leader serves");
    let resp = broker_client(addrs, leader)
        .fetch(fetch_request(
            topic,
            partition,
            0,
            IsolationLevel::ReadUncommitted,
            0,
        ))
        .await
        .expect("fetch")
        .into_inner();
    fetched(resp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_committed_fetch_waiting_for_the_lso_returns_once_the_transaction_commits() {
    let cluster = Cluster::start(3, options()).await;
    let addrs = create(&cluster, "wake", 1).await;
    let id = "tx-wake";
    let producer = init(&addrs, id).await;
    add_partitions(&addrs, id, producer, "wake", &[0])
        .await
        .expect("add");
    produce(
        &addrs,
        id,
        "wake",
        0,
        producer_batch(producer, 0, true, &["a", "b"]),
    )
    .await
    .expect("produce");
    // Written and replicated, held back by the open transaction.
    let (hw, lso, _) = fetch_now(&addrs, "wake", 0).await;
    assert_eq!((hw, lso), (2, 0), "the open transaction holds the LSO");

    // A read_committed fetch at the LSO parks: nothing below it to return.
    const MAX_WAIT_MS: i32 = 60_000;
    let leader = wait_leader_serving(&addrs, "wake", 0, Duration::from_secs(20))
        .await
        .expect("leader serves");
    let mut client = broker_client(&addrs, leader);
    let fetch = tokio::spawn(async move {
        client
            .fetch(fetch_request(
                "wake",
                0,
                0,
                IsolationLevel::ReadCommitted,
                MAX_WAIT_MS,
            ))
            .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !fetch.is_finished(),
        "a read_committed fetch returned while the transaction was open"
    );

    let committed_at = Instant::now();
    end_txn(&addrs, id, producer, true).await.expect("commit");
    let resp = tokio::time::timeout(Duration::from_secs(20), fetch)
        .await
        .expect("the commit's markers wake the waiting fetch long before its max wait")
        .expect("fetch task")
        .expect("fetch")
        .into_inner();
    let waited = committed_at.elapsed();
    assert!(
        waited < Duration::from_millis(u64::try_from(MAX_WAIT_MS).expect("positive") / 2),
        "woken {waited:?} after the commit"
    );
    let (hw, lso, values) = fetched(resp);
    assert_eq!(values, ["a", "b"], "the committed records");
    assert_eq!(lso, hw, "the marker moved the LSO to the end");
}

fn strom(cluster: &Cluster, args: &[&str]) -> std::process::Output {
    Command::new(binary("strom", "STROM_BIN"))
        .arg("--bootstrap-server")
        .arg(cluster.bootstrap())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run strom")
}

/// `strom --output json ARGS`, expected to succeed: its JSON.
fn strom_json(cluster: &Cluster, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = tokio::task::block_in_place(|| strom(cluster, &all));
    assert!(
        out.status.success(),
        "strom {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "strom {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `strom ARGS`, expected to fail with exit code 1 and one typed line on
/// stderr: that line.
fn strom_error(cluster: &Cluster, args: &[&str]) -> String {
    let out = tokio::task::block_in_place(|| strom(cluster, args));
    assert_eq!(
        out.status.code(),
        Some(1),
        "strom {args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).trim_end().to_owned()
}

/// The values of `topic` a `read_committed` `strom consume` prints (it
/// stops after 3 s without records).
fn consume_committed(cluster: &Cluster, topic: &str) -> Vec<String> {
    let out = tokio::task::block_in_place(|| {
        strom(
            cluster,
            &[
                "--output",
                "json",
                "consume",
                "--topic",
                topic,
                "--from-beginning",
                "--isolation-level",
                "read_committed",
                "--timeout-ms",
                "3000",
            ],
        )
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut values: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["value"].as_str().expect("value").to_owned()
        })
        .collect();
    values.sort();
    values
}

/// The producers `describe-producers` shows for `topic`-0.
fn producers(cluster: &Cluster, topic: &str) -> Vec<serde_json::Value> {
    strom_json(
        cluster,
        &[
            "transactions",
            "describe-producers",
            "--topic",
            topic,
            "--partition",
            "0",
        ],
    )
    .as_array()
    .expect("a JSON array")
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_cli_lists_describes_finds_and_aborts_an_open_transaction() {
    let cluster = Cluster::start(3, options()).await;
    let addrs = create(&cluster, "ops", 1).await;
    let c = &cluster;

    // A producer dies inside a transaction: `strom produce` with records
    // sent and stdin still open, killed with -9. Its transaction timeout
    // (10 min) outlives the test: only the CLI ends it.
    let mut dying = Command::new(binary("strom", "STROM_BIN"))
        .arg("--bootstrap-server")
        .arg(cluster.bootstrap())
        .args([
            "produce",
            "--topic",
            "ops",
            "--partition",
            "0",
            "--transactional-id",
            "ops-dead",
            "--producer-property",
            "transaction.timeout.ms=600000",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strom produce");
    dying
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"dead-0\ndead-1\ndead-2\n")
        .expect("write stdin");
    let deadline = Instant::now() + Duration::from_secs(60);
    let open = loop {
        let open: Vec<serde_json::Value> = producers(c, "ops")
            .into_iter()
            .filter(|p| !p["current_transaction_start_offset"].is_null())
            .collect();
        if !open.is_empty() {
            break open;
        }
        assert!(
            Instant::now() < deadline,
            "the producer's transaction never reached the partition"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    dying.kill().expect("kill -9 the producer");
    dying.wait().expect("reap the producer");
    assert_eq!(open.len(), 1, "{open:?}");
    let dead_pid = open[0]["producer_id"].as_i64().expect("producer_id");
    let start = open[0]["current_transaction_start_offset"]
        .as_i64()
        .expect("start offset");
    assert_eq!(
        start, 0,
        "the transaction holds the partition's first record"
    );

    // list and describe show it open at its coordinator.
    let listed = strom_json(c, &["transactions", "list"]);
    let entry = listed
        .as_array()
        .expect("a JSON array")
        .iter()
        .find(|t| t["transactional_id"] == "ops-dead")
        .unwrap_or_else(|| panic!("ops-dead not listed: {listed}"))
        .clone();
    assert_eq!(entry["producer_id"].as_i64(), Some(dead_pid), "{entry}");
    assert_eq!(entry["state"], "Ongoing", "{entry}");
    let d = strom_json(
        c,
        &["transactions", "describe", "--transactional-id", "ops-dead"],
    );
    assert_eq!(d["state"], "Ongoing", "{d}");
    assert_eq!(d["producer_id"].as_i64(), Some(dead_pid), "{d}");
    assert_eq!(d["transaction_timeout_ms"].as_i64(), Some(600_000), "{d}");
    assert_eq!(
        d["topic_partitions"],
        serde_json::json!([{"topic": "ops", "partition": 0}]),
        "{d}"
    );
    assert_eq!(d["coordinator_id"], entry["coordinator"], "{d}");
    assert!(d["transaction_duration_ms"].as_i64().is_some(), "{d}");

    // Another producer commits after it: read_committed consumers are
    // held back by the dead one's open transaction.
    let out = tokio::task::block_in_place(|| {
        let mut child = Command::new(binary("strom", "STROM_BIN"))
            .arg("--bootstrap-server")
            .arg(c.bootstrap())
            .args([
                "produce",
                "--topic",
                "ops",
                "--partition",
                "0",
                "--transactional-id",
                "ops-live",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run strom produce");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"live-0\nlive-1\n")
            .expect("write stdin");
        child.wait_with_output().expect("strom output")
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (hw, lso, _) = fetch_now(&addrs, "ops", 0).await;
    assert!(
        lso == start && hw >= start + 3,
        "the open transaction holds the last stable offset at its start: hw {hw}, lso {lso}"
    );
    assert_eq!(consume_committed(c, "ops"), Vec::<String>::new());

    // find-hanging: with a zero timeout the open transaction is a
    // candidate, but its coordinator still has the partition in it (it
    // will abort it after its timeout): not hanging.
    let hanging = strom_json(
        c,
        &[
            "transactions",
            "find-hanging",
            "--topic",
            "ops",
            "--max-transaction-timeout",
            "0",
        ],
    );
    assert_eq!(hanging, serde_json::json!([]), "{hanging}");
    let by_broker = strom_json(
        c,
        &[
            "transactions",
            "find-hanging",
            "--broker-id",
            "1",
            "--max-transaction-timeout",
            "0",
        ],
    );
    assert_eq!(by_broker, serde_json::json!([]), "{by_broker}");

    // Bad input: typed errors, nothing changed.
    let e = strom_error(
        c,
        &[
            "transactions",
            "abort",
            "--topic",
            "ops",
            "--partition",
            "0",
            "--start-offset",
            "1",
        ],
    );
    assert!(e.starts_with("error: INVALID_TXN_STATE: "), "{e}");
    let e = strom_error(
        c,
        &[
            "transactions",
            "describe",
            "--transactional-id",
            "no-such-id",
        ],
    );
    assert!(e.starts_with("error: TRANSACTIONAL_ID_NOT_FOUND: "), "{e}");
    let e = strom_error(
        c,
        &[
            "transactions",
            "describe-producers",
            "--topic",
            "missing",
            "--partition",
            "0",
        ],
    );
    assert!(e.starts_with("error: UNKNOWN_TOPIC_OR_PARTITION: "), "{e}");
    let e = strom_error(c, &["transactions", "find-hanging", "--broker-id", "99"]);
    assert!(e.starts_with("error: BROKER_ID_NOT_REGISTERED: "), "{e}");
    assert_eq!(consume_committed(c, "ops"), Vec::<String>::new());

    // abort by start offset: the ABORT marker moves the last stable
    // offset; consumers read the later committed records, never the dead
    // producer's.
    let aborted = strom_json(
        c,
        &[
            "transactions",
            "abort",
            "--topic",
            "ops",
            "--partition",
            "0",
            "--start-offset",
            &start.to_string(),
        ],
    );
    assert_eq!(aborted["producer_id"].as_i64(), Some(dead_pid), "{aborted}");
    assert_eq!(aborted["start_offset"].as_i64(), Some(start), "{aborted}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (hw, lso, _) = fetch_now(&addrs, "ops", 0).await;
        if lso == hw {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the abort never moved the LSO: hw {hw}, lso {lso}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let read = consume_committed(c, "ops");
        if !read.is_empty() {
            assert_eq!(read, ["live-0", "live-1"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "read_committed consumers never moved on"
        );
    }
    let after = producers(c, "ops");
    assert!(
        after
            .iter()
            .all(|p| p["current_transaction_start_offset"].is_null()),
        "{after:?}"
    );
    // Aborting it again: nothing starts there any more.
    let e = strom_error(
        c,
        &[
            "transactions",
            "abort",
            "--topic",
            "ops",
            "--partition",
            "0",
            "--start-offset",
            &start.to_string(),
        ],
    );
    assert!(e.starts_with("error: INVALID_TXN_STATE: "), "{e}");
}

/// The committed offset of `group` for in-0 (require_stable): the offset
/// (-1: none) or the refusal.
async fn fetch_offset(addrs: &Addrs, group: &str) -> Result<i64, StromError> {
    at_coordinator(addrs, group, CoordinatorKeyType::Group, |addr| async move {
        GroupServiceClient::new(channel(&addr))
            .offset_fetch(OffsetFetchRequest {
                group_id: group.into(),
                topics: vec![TopicPartitions {
                    topic: "in".into(),
                    partitions: vec![0],
                }],
                require_stable: true,
            })
            .await
    })
    .await
    .map(|r| r.partitions[0].offset)
}

/// TxnOffsetCommit of in-0 at `offset` as `member_id` at `member_epoch`.
async fn txn_commit_offset(
    addrs: &Addrs,
    transactional_id: &str,
    (producer_id, epoch): (i64, i16),
    group: &str,
    (member_id, member_epoch): (&str, i32),
    offset: i64,
) -> Result<(), StromError> {
    let req = TxnOffsetCommitRequest {
        transactional_id: transactional_id.into(),
        group_id: group.into(),
        producer_id,
        producer_epoch: i32::from(epoch),
        member_id: member_id.into(),
        member_epoch,
        offsets: vec![TxnOffsetCommitPartition {
            topic: "in".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    at_coordinator(addrs, group, CoordinatorKeyType::Group, |addr| {
        let req = req.clone();
        async move {
            TransactionServiceClient::new(channel(&addr))
                .txn_offset_commit(req)
                .await
        }
    })
    .await
    .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn txn_offset_commit_for_a_generation_that_is_not_current_is_refused() {
    let cluster = Cluster::start(3, options()).await;
    let addrs = create(&cluster, "in", 1).await;
    let (id, group) = ("tx-generation", "g-generation");

    // A member of the group, at its current epoch (generation).
    let mut consumer = Consumer::connect(
        ConsumerConfig::from_properties([
            format!("bootstrap.servers={}", cluster.bootstrap()),
            format!("group.id={group}"),
            "enable.auto.commit=false".to_owned(),
        ])
        .expect("consumer config"),
    )
    .await
    .expect("consumer");
    consumer.subscribe(["in"]).await.expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(40);
    let member = loop {
        consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll");
        let m = consumer.group_metadata().expect("group metadata");
        if m.generation_id > 0 {
            break m;
        }
        assert!(Instant::now() < deadline, "the consumer never joined");
    };
    let epoch = member.generation_id;
    let producer = init(&addrs, id).await;

    let refused = [
        (
            member.member_id.as_str(),
            epoch + 1,
            ErrorCode::FencedMemberEpoch,
        ),
        ("not-a-member", epoch, ErrorCode::UnknownMemberId),
        ("", -1, ErrorCode::UnknownMemberId),
    ];
    for (member_id, member_epoch, code) in refused {
        let e = txn_commit_offset(&addrs, id, producer, group, (member_id, member_epoch), 7)
            .await
            .expect_err("a member that is not current");
        assert_eq!(e.code, code, "{member_id:?} at {member_epoch}: {e}");
    }
    if epoch > 1 {
        let e = txn_commit_offset(
            &addrs,
            id,
            producer,
            group,
            (&member.member_id, epoch - 1),
            7,
        )
        .await
        .expect_err("an older epoch");
        assert_eq!(e.code, ErrorCode::StaleMemberEpoch, "{e}");
    }
    // Nothing pending: a stable fetch answers (no UNSTABLE_OFFSET_COMMIT)
    // with nothing committed, also after the transaction commits.
    assert_eq!(fetch_offset(&addrs, group).await.expect("fetch"), -1);
    match end_txn(&addrs, id, producer, true).await {
        Ok(()) => {}
        // The refusals added nothing to the transaction.
        Err(e) if e.code == ErrorCode::InvalidTxnState => {}
        Err(e) => panic!("commit: {e}"),
    }
    assert_eq!(fetch_offset(&addrs, group).await.expect("fetch"), -1);

    // The current member commits inside the next transaction.
    let producer = init(&addrs, id).await;
    let m = consumer.group_metadata().expect("group metadata");
    txn_commit_offset(
        &addrs,
        id,
        producer,
        group,
        (&m.member_id, m.generation_id),
        7,
    )
    .await
    .expect("the current member commits");
    end_txn(&addrs, id, producer, true).await.expect("commit");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match fetch_offset(&addrs, group).await {
            Ok(7) => break,
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("the committed offset never became visible: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_producer_id_with_a_non_zero_sequence_is_refused_and_writes_nothing() {
    let cluster = Cluster::start(3, options()).await;
    let addrs = create(&cluster, "idem", 1).await;
    // A producer id no InitProducerId handed out: the leader has no state
    // for it.
    let stranger = (4_000_000_000_i64, 0_i16);
    let e = produce(
        &addrs,
        "",
        "idem",
        0,
        producer_batch(stranger, 5, false, &["late"]),
    )
    .await
    .expect_err("an unknown producer in the middle of its sequence");
    assert_eq!(e.code, ErrorCode::UnknownProducerId, "{e}");
    let (hw, _, values) = fetch_now(&addrs, "idem", 0).await;
    assert_eq!((hw, values.len()), (0, 0), "nothing written");

    // The same producer from sequence 0 is a new producer: accepted; a gap
    // after it is OUT_OF_ORDER_SEQUENCE_NUMBER, also not written.
    produce(
        &addrs,
        "",
        "idem",
        0,
        producer_batch(stranger, 0, false, &["first"]),
    )
    .await
    .expect("sequence 0 starts a producer");
    let e = produce(
        &addrs,
        "",
        "idem",
        0,
        producer_batch(stranger, 7, false, &["gap"]),
    )
    .await
    .expect_err("a sequence gap");
    assert_eq!(e.code, ErrorCode::OutOfOrderSequenceNumber, "{e}");
    let (hw, _, values) = fetch_now(&addrs, "idem", 0).await;
    assert_eq!((hw, values), (1, vec!["first".to_owned()]));
}
