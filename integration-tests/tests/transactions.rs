//! Transactions on three real nodes, driven through the raw gRPC services
//! (`BrokerService.InitProducerId`, `TransactionService`, transactional
//! produce with hand-built batches):
//! * a commit writes COMMIT markers to every partition of the transaction,
//!   including one the partition leader added at the coordinator itself
//!   (KIP-890 verification), and the last stable offset reaches the end;
//! * an abort writes ABORT markers;
//! * a second incarnation fences the first (zombie): its open transaction
//!   is aborted, its late produce and its commit are refused;
//! * a transaction that outlives its timeout is aborted;
//! * the coordinator killed with -9 right after a commit: the new
//!   coordinator finishes the commit from the transaction log;
//! * offsets committed in a transaction (TxnOffsetCommit) become visible
//!   on commit, are dropped on abort, and OffsetFetch with require_stable
//!   answers UNSTABLE_OFFSET_COMMIT meanwhile;
//! * bad input: each refused with its code, nothing changed.

use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_integration_tests::data::{
    Addrs, broker_client, partition_state_any, wait_leader_serving,
};
use strom_integration_tests::{Cluster, ClusterOptions, channel};
use strom_log::batch::control::marker_of;
use strom_log::batch::{BatchIter, Compression, RecordBatchBuilder};
use strom_proto::StromError;
use strom_proto::v1::group_service_client::GroupServiceClient;
use strom_proto::v1::transaction_service_client::TransactionServiceClient;
use strom_proto::v1::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, CoordinatorKeyType,
    DescribeTransactionsRequest, EndTxnRequest, ErrorCode, FetchPartition, FetchRequest,
    FetchTopic, FindCoordinatorRequest, InitProducerIdRequest, IsolationLevel,
    ListTransactionsRequest, OffsetFetchRequest, ProducePartitionData, ProduceRequest,
    ProduceTopicData, TopicPartitions, TxnOffsetCommitPartition, TxnOffsetCommitRequest, TxnTopic,
};

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false")
        .set("transaction.state.log.num.partitions", "3")
        .set("offsets.topic.num.partitions", "3")
        .set(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "300",
        )
}

/// The coordinator of `transactional_id`, retried while
/// `__transaction_state` is created or its leader moves.
async fn coordinator(addrs: &Addrs, transactional_id: &str) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        for addr in addrs.0.values() {
            let r = GroupServiceClient::new(channel(addr))
                .find_coordinator(FindCoordinatorRequest {
                    group_id: transactional_id.into(),
                    key_type: CoordinatorKeyType::Transaction as i32,
                })
                .await;
            if let Ok(r) = r {
                let r = r.into_inner();
                return (r.node_id, r.address);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no coordinator for {transactional_id}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn txn_client(addr: &str) -> TransactionServiceClient<tonic::transport::Channel> {
    TransactionServiceClient::new(channel(addr))
}

fn status(s: &tonic::Status) -> StromError {
    StromError::from_status(s)
}

/// One InitProducerId at the current coordinator.
async fn init_once(
    addrs: &Addrs,
    transactional_id: &str,
    timeout_ms: i32,
) -> Result<(i64, i16), StromError> {
    let (node, _) = coordinator(addrs, transactional_id).await;
    let r = broker_client(addrs, node)
        .init_producer_id(InitProducerIdRequest {
            transactional_id: transactional_id.into(),
            transaction_timeout_ms: timeout_ms,
            producer_id: -1,
            producer_epoch: -1,
        })
        .await
        .map_err(|s| status(&s))?
        .into_inner();
    if r.error_code == ErrorCode::None as i32 {
        Ok((
            r.producer_id,
            i16::try_from(r.producer_epoch).expect("int16 epoch"),
        ))
    } else {
        let code = ErrorCode::try_from(r.error_code).unwrap_or(ErrorCode::UnknownServerError);
        Err(StromError::new(code, r.error_message))
    }
}

/// InitProducerId, retried through retriable errors (the coordinator
/// loading or moving, an aborting previous incarnation): the answer or the
/// first refusal.
async fn init_try(
    addrs: &Addrs,
    transactional_id: &str,
    timeout_ms: i32,
) -> Result<(i64, i16), StromError> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        match init_once(addrs, transactional_id, timeout_ms).await {
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

async fn init(addrs: &Addrs, transactional_id: &str, timeout_ms: i32) -> (i64, i16) {
    init_try(addrs, transactional_id, timeout_ms)
        .await
        .unwrap_or_else(|e| panic!("init {transactional_id}: {e}"))
}

/// A TransactionService call at the current coordinator, retried through
/// retriable errors.
async fn at_coordinator<T, F, Fut>(
    addrs: &Addrs,
    transactional_id: &str,
    mut call: F,
) -> Result<T, StromError>
where
    F: FnMut(TransactionServiceClient<tonic::transport::Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (_, addr) = coordinator(addrs, transactional_id).await;
        match call(txn_client(&addr)).await {
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
    at_coordinator(addrs, transactional_id, |mut c| {
        let req = req.clone();
        async move { c.add_partitions_to_txn(req).await }
    })
    .await
    .map(|_| ())
}

async fn end_txn(
    addrs: &Addrs,
    transactional_id: &str,
    (producer_id, epoch): (i64, i16),
    committed: bool,
) -> Result<(i64, i16), StromError> {
    let req = EndTxnRequest {
        transactional_id: transactional_id.into(),
        producer_id,
        producer_epoch: i32::from(epoch),
        committed,
    };
    let r = at_coordinator(addrs, transactional_id, |mut c| {
        let req = req.clone();
        async move { c.end_txn(req).await }
    })
    .await?;
    Ok((
        r.producer_id,
        i16::try_from(r.producer_epoch).expect("int16 epoch"),
    ))
}

/// A transactional batch of `values` from the producer at `seq`.
fn txn_batch((producer_id, epoch): (i64, i16), seq: i32, values: &[&str]) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None)
        .producer(producer_id, epoch, seq)
        .transactional(true);
    for v in values {
        b.append(1, None, Some(v.as_bytes()), &[]);
    }
    b.build()
}

/// Produces `records` to the leader of `topic`-`partition` as the
/// transactional producer `transactional_id` (empty: none).
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

/// What a partition holds, read from its leader up to the high watermark.
#[derive(Debug, Default)]
struct Log {
    /// (offset, producer id, is transactional) of each data batch.
    data: Vec<(i64, i64, bool)>,
    /// (offset, producer id, producer epoch, commit) of each marker.
    markers: Vec<(i64, i64, i16, bool)>,
    high_watermark: i64,
    last_stable_offset: i64,
}

async fn read_log(addrs: &Addrs, topic: &str, partition: i32) -> Log {
    let leader = wait_leader_serving(addrs, topic, partition, Duration::from_secs(20))
        .await
        .expect("leader serves");
    let resp = broker_client(addrs, leader)
        .fetch(FetchRequest {
            replica_id: -1,
            replica_epoch: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 8 << 20,
            isolation_level: IsolationLevel::ReadUncommitted as i32,
            topics: vec![FetchTopic {
                topic: topic.into(),
                topic_id: Vec::new(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: 0,
                    current_leader_epoch: -1,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 4 << 20,
                    replica_durable_offset: 0,
                }],
            }],
        })
        .await
        .expect("fetch")
        .into_inner();
    let p = resp
        .topics
        .into_iter()
        .next()
        .and_then(|t| t.partitions.into_iter().next())
        .expect("one partition");
    let mut log = Log {
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        ..Log::default()
    };
    for b in BatchIter::new(p.records) {
        let b = b.expect("a whole batch");
        if b.base_offset() >= p.high_watermark {
            break;
        }
        if b.is_control() {
            let m = marker_of(&b, 0).expect("a marker").expect("a marker");
            log.markers
                .push((b.base_offset(), m.producer_id, m.producer_epoch, m.commit));
        } else {
            log.data
                .push((b.base_offset(), b.producer_id(), b.is_transactional()));
        }
    }
    log
}

/// Waits until `topic`-`partition` holds a marker of `producer_id`;
/// returns the log.
async fn wait_marker(addrs: &Addrs, topic: &str, partition: i32, producer_id: i64) -> Log {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = read_log(addrs, topic, partition).await;
        if log.markers.iter().any(|m| m.1 == producer_id) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no marker of producer {producer_id} in {topic}-{partition}: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_and_abort_write_markers_to_every_partition_of_the_transaction() {
    let cluster = Cluster::start(3, options()).await;
    let addrs = create(&cluster, "out", 2).await;

    // Commit: out-0 added by the producer, out-1 by its leader (KIP-890).
    let id = "tx-commit";
    let producer = init(&addrs, id, 60_000).await;
    assert_eq!(producer.1, 0, "a new transactional id starts at epoch 0");
    add_partitions(&addrs, id, producer, "out", &[0])
        .await
        .expect("add out-0");
    produce(&addrs, id, "out", 0, txn_batch(producer, 0, &["a", "b"]))
        .await
        .expect("produce to out-0");
    produce(&addrs, id, "out", 1, txn_batch(producer, 0, &["c"]))
        .await
        .expect("produce to out-1, verified and added by its leader");
    let next = end_txn(&addrs, id, producer, true).await.expect("commit");
    assert_eq!(
        next,
        (producer.0, producer.1 + 1),
        "every EndTxn bumps the epoch"
    );
    for p in 0..2 {
        let log = wait_marker(&addrs, "out", p, producer.0).await;
        let (at, _, epoch, commit) = *log.markers.last().expect("marker");
        assert!(commit, "out-{p}: a COMMIT marker: {log:?}");
        assert_eq!(epoch, next.1, "markers carry the bumped epoch");
        assert!(
            log.data
                .iter()
                .all(|(o, pid, txn)| *o < at && *pid == producer.0 && *txn),
            "out-{p}: the transaction's batches come before its marker: {log:?}"
        );
        assert_eq!(
            log.last_stable_offset, log.high_watermark,
            "out-{p}: nothing is left open"
        );
    }

    // The coordinator describes and lists it once complete.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = at_coordinator(&addrs, id, |mut c| async move {
            c.describe_transactions(DescribeTransactionsRequest {
                transactional_id: id.into(),
            })
            .await
        })
        .await
        .expect("describe");
        if d.state == "CompleteCommit" {
            assert_eq!(
                (d.producer_id, d.producer_epoch),
                (next.0, i32::from(next.1))
            );
            assert!(d.topics.is_empty(), "{d:?}");
            break;
        }
        assert_eq!(d.state, "PrepareCommit", "{d:?}");
        assert!(Instant::now() < deadline, "never completed: {d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = at_coordinator(&addrs, id, |mut c| async move {
        c.list_transactions(ListTransactionsRequest {
            state_filters: vec!["CompleteCommit".into()],
            producer_id_filters: vec![],
        })
        .await
    })
    .await
    .expect("list");
    assert!(
        listed
            .transactions
            .iter()
            .any(|t| t.transactional_id == id && t.producer_id == producer.0),
        "{listed:?}"
    );

    // Abort, with the epoch EndTxn returned.
    add_partitions(&addrs, id, next, "out", &[0, 1])
        .await
        .expect("add both");
    for p in 0..2 {
        produce(&addrs, id, "out", p, txn_batch(next, 0, &["x"]))
            .await
            .expect("produce");
    }
    let after = end_txn(&addrs, id, next, false).await.expect("abort");
    assert_eq!(after, (producer.0, next.1 + 1));
    for p in 0..2 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = read_log(&addrs, "out", p).await;
            if log.markers.len() == 2 {
                let (_, _, epoch, commit) = log.markers[1];
                assert!(!commit, "out-{p}: an ABORT marker: {log:?}");
                assert_eq!(epoch, after.1);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "out-{p}: no abort marker: {log:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The previous epoch's late batch is refused: it would otherwise open
    // a transaction nobody ends (KAFKA-17754).
    let late = produce(&addrs, id, "out", 0, txn_batch(next, 1, &["late"]))
        .await
        .expect_err("a batch of the finished transaction's epoch");
    assert!(
        matches!(
            late.code,
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced
        ),
        "{late}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_incarnation_fences_the_zombie_and_aborts_its_transaction() {
    let cluster = Cluster::start(3, options()).await;
    let addrs = create(&cluster, "out", 1).await;
    let id = "tx-zombie";
    let zombie = init(&addrs, id, 60_000).await;
    add_partitions(&addrs, id, zombie, "out", &[0])
        .await
        .expect("add");
    produce(&addrs, id, "out", 0, txn_batch(zombie, 0, &["z1"]))
        .await
        .expect("produce");

    // The second incarnation: its first attempt aborts the zombie's
    // transaction (CONCURRENT_TRANSACTIONS), the retry gets a newer epoch.
    let fresh = init(&addrs, id, 60_000).await;
    assert_eq!(fresh.0, zombie.0);
    assert!(fresh.1 > zombie.1 + 1, "{fresh:?} after {zombie:?}");
    let log = wait_marker(&addrs, "out", 0, zombie.0).await;
    assert!(
        !log.markers[0].3,
        "the zombie's transaction is aborted: {log:?}"
    );

    // The zombie's sends and commit are refused.
    let e = produce(&addrs, id, "out", 0, txn_batch(zombie, 1, &["z2"]))
        .await
        .expect_err("zombie produce");
    assert!(
        matches!(
            e.code,
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced
        ),
        "{e}"
    );
    let e = end_txn(&addrs, id, zombie, true)
        .await
        .expect_err("zombie commit");
    assert_eq!(e.code, ErrorCode::ProducerFenced, "{e}");
    let e = add_partitions(&addrs, id, zombie, "out", &[0])
        .await
        .expect_err("zombie add");
    assert_eq!(e.code, ErrorCode::ProducerFenced, "{e}");

    // The new incarnation works.
    add_partitions(&addrs, id, fresh, "out", &[0])
        .await
        .expect("add");
    produce(&addrs, id, "out", 0, txn_batch(fresh, 0, &["f"]))
        .await
        .expect("produce");
    end_txn(&addrs, id, fresh, true).await.expect("commit");
    let log = read_log(&addrs, "out", 0).await;
    assert!(
        log.data.iter().all(|(_, pid, _)| *pid == zombie.0),
        "{log:?}"
    );
    assert_eq!(log.data.len(), 2, "z1 and f, never z2: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let cluster = Cluster::start(3, options()).await;
    let addrs = create(&cluster, "out", 1).await;
    let id = "tx-timeout";
    let producer = init(&addrs, id, 1_000).await;
    add_partitions(&addrs, id, producer, "out", &[0])
        .await
        .expect("add");
    produce(&addrs, id, "out", 0, txn_batch(producer, 0, &["t"]))
        .await
        .expect("produce");
    let log = wait_marker(&addrs, "out", 0, producer.0).await;
    let (_, _, epoch, commit) = log.markers[0];
    assert!(!commit, "the timer aborts: {log:?}");
    assert!(epoch > producer.1, "the abort fences the producer's epoch");
    assert_eq!(log.last_stable_offset, log.high_watermark);
    let e = end_txn(&addrs, id, producer, true)
        .await
        .expect_err("commit after the timeout");
    assert_eq!(e.code, ErrorCode::ProducerFenced, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_completes_after_the_coordinator_is_killed() {
    let mut cluster = Cluster::start(3, options()).await;
    let addrs = create(&cluster, "out", 3).await;
    let id = "tx-failover";
    let producer = init(&addrs, id, 60_000).await;
    add_partitions(&addrs, id, producer, "out", &[0, 1, 2])
        .await
        .expect("add");
    for p in 0..3 {
        produce(&addrs, id, "out", p, txn_batch(producer, 0, &["v"]))
            .await
            .expect("produce");
    }
    let (old, _) = coordinator(&addrs, id).await;
    let next = end_txn(&addrs, id, producer, true).await.expect("commit");
    cluster.kill(old);

    // The new coordinator loads the log, finds the PrepareCommit and
    // finishes: every partition gets its COMMIT marker ...
    let live = Addrs(
        addrs
            .0
            .iter()
            .filter(|(n, _)| **n != old)
            .map(|(n, a)| (*n, a.clone()))
            .collect(),
    );
    for p in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while partition_state_any(&live, "out", p)
            .await
            .is_none_or(|(leader, _, _)| leader == old || leader < 0)
        {
            assert!(Instant::now() < deadline, "out-{p} kept no live leader");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = wait_marker(&live, "out", p, producer.0).await;
        assert!(log.markers.iter().all(|m| m.3), "out-{p}: {log:?}");
    }
    // ... and completes the transaction: the next InitProducerId is
    // answered (not CONCURRENT_TRANSACTIONS for ever) at a newer epoch.
    let deadline = Instant::now() + Duration::from_secs(30);
    while coordinator(&live, id).await.0 == old {
        assert!(Instant::now() < deadline, "the coordinator never moved");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = init(&live, id, 60_000).await;
    assert_eq!(again, (producer.0, next.1 + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_transactional_input_is_refused_with_its_code() {
    let cluster = Cluster::start(3, options()).await;
    let addrs = create(&cluster, "out", 1).await;
    let id = "tx-bad";

    let e = init_try(&addrs, id, 900_001)
        .await
        .expect_err("timeout above transaction.max.timeout.ms");
    assert_eq!(e.code, ErrorCode::InvalidTransactionTimeout, "{e}");
    let e = init_try(&addrs, id, 0).await.expect_err("zero timeout");
    assert_eq!(e.code, ErrorCode::InvalidTransactionTimeout, "{e}");
    let long = "x".repeat(256);
    let e = GroupServiceClient::new(channel(&addrs.0[&1]))
        .find_coordinator(FindCoordinatorRequest {
            group_id: long.clone(),
            key_type: CoordinatorKeyType::Transaction as i32,
        })
        .await
        .map(|_| ())
        .map_err(|s| status(&s))
        .expect_err("over-long transactional id");
    assert_eq!(e.code, ErrorCode::InvalidRequest, "{e}");
    let e = txn_client(&addrs.0[&1])
        .add_partitions_to_txn(AddPartitionsToTxnRequest {
            transactional_id: String::new(),
            producer_id: 1,
            producer_epoch: 0,
            topics: vec![TxnTopic {
                topic: "out".into(),
                partitions: vec![0],
            }],
        })
        .await
        .map(|_| ())
        .map_err(|s| status(&s))
        .expect_err("empty transactional id");
    assert_eq!(e.code, ErrorCode::InvalidRequest, "{e}");

    let e = at_coordinator(&addrs, id, |mut c| async move {
        c.describe_transactions(DescribeTransactionsRequest {
            transactional_id: id.into(),
        })
        .await
    })
    .await
    .expect_err("describe before init");
    assert_eq!(e.code, ErrorCode::TransactionalIdNotFound, "{e}");
    let e = txn_client(&addrs.0[&1])
        .list_transactions(ListTransactionsRequest {
            state_filters: vec!["Committed".into()],
            producer_id_filters: vec![],
        })
        .await
        .map(|_| ())
        .map_err(|s| status(&s))
        .expect_err("unknown state filter");
    assert_eq!(e.code, ErrorCode::InvalidRequest, "{e}");

    // Calls before InitProducerId.
    let e = add_partitions(&addrs, id, (1, 0), "out", &[0])
        .await
        .expect_err("add before init");
    assert_eq!(e.code, ErrorCode::InvalidProducerIdMapping, "{e}");
    let e = end_txn(&addrs, id, (1, 0), true)
        .await
        .expect_err("commit before init");
    assert_eq!(e.code, ErrorCode::InvalidProducerIdMapping, "{e}");

    let producer = init(&addrs, id, 60_000).await;
    // Committing nothing, adding what does not exist, the wrong producer.
    let e = end_txn(&addrs, id, producer, true)
        .await
        .expect_err("commit without a transaction");
    assert_eq!(e.code, ErrorCode::InvalidTxnState, "{e}");
    let e = add_partitions(&addrs, id, producer, "missing", &[0])
        .await
        .expect_err("unknown topic");
    assert_eq!(e.code, ErrorCode::UnknownTopicOrPartition, "{e}");
    let e = add_partitions(&addrs, id, (producer.0 + 1000, 0), "out", &[0])
        .await
        .expect_err("another producer id");
    assert_eq!(e.code, ErrorCode::InvalidProducerIdMapping, "{e}");
    let e = add_partitions(&addrs, id, producer, "__transaction_state", &[0])
        .await
        .expect_err("the transaction log in a transaction");
    assert_eq!(e.code, ErrorCode::InvalidRequest, "{e}");
    let e = at_coordinator(&addrs, id, |mut c| async move {
        c.add_offsets_to_txn(AddOffsetsToTxnRequest {
            transactional_id: id.into(),
            producer_id: producer.0,
            producer_epoch: i32::from(producer.1),
            group_id: String::new(),
        })
        .await
    })
    .await
    .expect_err("empty group id");
    assert_eq!(e.code, ErrorCode::InvalidRequest, "{e}");

    // Transactional batches without the transactional id, and client
    // writes to the transaction log.
    let e = produce(&addrs, "", "out", 0, txn_batch(producer, 0, &["v"]))
        .await
        .expect_err("transactional batch without its id");
    assert_eq!(e.code, ErrorCode::InvalidRequest, "{e}");
    let e = produce(
        &addrs,
        "",
        "__transaction_state",
        0,
        strom_integration_tests::data::batch(&[Bytes::from_static(b"x")]),
    )
    .await
    .expect_err("client write to the transaction log");
    assert_eq!(e.code, ErrorCode::InvalidTopicException, "{e}");

    // Nothing of it changed anything: the producer's first transaction
    // works at the epoch it was given.
    let log = read_log(&addrs, "out", 0).await;
    assert!(log.data.is_empty() && log.markers.is_empty(), "{log:?}");
    add_partitions(&addrs, id, producer, "out", &[0])
        .await
        .expect("add");
    produce(&addrs, id, "out", 0, txn_batch(producer, 0, &["ok"]))
        .await
        .expect("produce");
    end_txn(&addrs, id, producer, true).await.expect("commit");
    wait_marker(&addrs, "out", 0, producer.0).await;
}

/// The group's coordinator address.
async fn group_coordinator(addrs: &Addrs, group: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        for addr in addrs.0.values() {
            if let Ok(r) = GroupServiceClient::new(channel(addr))
                .find_coordinator(FindCoordinatorRequest {
                    group_id: group.into(),
                    key_type: CoordinatorKeyType::Group as i32,
                })
                .await
            {
                return r.into_inner().address;
            }
        }
        assert!(Instant::now() < deadline, "no coordinator for {group}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// OffsetFetch of in-0 for `group`, retrying while the coordinator loads:
/// the offset, or the refusal (UNSTABLE_OFFSET_COMMIT).
async fn fetch_offset(addrs: &Addrs, group: &str, require_stable: bool) -> Result<i64, StromError> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let addr = group_coordinator(addrs, group).await;
        let r = GroupServiceClient::new(channel(&addr))
            .offset_fetch(OffsetFetchRequest {
                group_id: group.into(),
                topics: vec![TopicPartitions {
                    topic: "in".into(),
                    partitions: vec![0],
                }],
                require_stable,
            })
            .await;
        match r {
            Ok(r) => return Ok(r.into_inner().partitions[0].offset),
            Err(s) => {
                let e = status(&s);
                let loading = matches!(
                    e.code,
                    ErrorCode::CoordinatorLoadInProgress
                        | ErrorCode::NotCoordinator
                        | ErrorCode::CoordinatorNotAvailable
                );
                if !loading || Instant::now() >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn txn_commit_offset(
    addrs: &Addrs,
    transactional_id: &str,
    (producer_id, epoch): (i64, i16),
    group: &str,
    offset: i64,
) -> Result<(), StromError> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let addr = group_coordinator(addrs, group).await;
        let r = txn_client(&addr)
            .txn_offset_commit(TxnOffsetCommitRequest {
                transactional_id: transactional_id.into(),
                group_id: group.into(),
                producer_id,
                producer_epoch: i32::from(epoch),
                member_id: String::new(),
                member_epoch: -1,
                offsets: vec![TxnOffsetCommitPartition {
                    topic: "in".into(),
                    partition: 0,
                    offset,
                    leader_epoch: -1,
                    metadata: String::new(),
                }],
            })
            .await;
        match r {
            Ok(_) => return Ok(()),
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

async fn add_offsets(
    addrs: &Addrs,
    transactional_id: &str,
    (producer_id, epoch): (i64, i16),
    group: &str,
) -> Result<(), StromError> {
    at_coordinator(addrs, transactional_id, |mut c| async move {
        c.add_offsets_to_txn(AddOffsetsToTxnRequest {
            transactional_id: transactional_id.into(),
            producer_id,
            producer_epoch: i32::from(epoch),
            group_id: group.into(),
        })
        .await
    })
    .await
    .map(|_| ())
}

/// Waits until OffsetFetch with require_stable answers; returns the offset.
async fn stable_offset(addrs: &Addrs, group: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match fetch_offset(addrs, group, true).await {
            Ok(o) => return o,
            Err(e) if e.code == ErrorCode::UnstableOffsetCommit => {
                assert!(Instant::now() < deadline, "offsets never became stable");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("offset fetch: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_committed_in_a_transaction_are_visible_only_once_it_commits() {
    let cluster = Cluster::start(3, options()).await;
    let addrs = create(&cluster, "in", 1).await;
    let (id, group) = ("tx-offsets", "g-offsets");
    let producer = init(&addrs, id, 60_000).await;

    // Without AddOffsetsToTxn the offsets partition is added by the group
    // coordinator's verification at the transaction coordinator (KIP-890).
    txn_commit_offset(&addrs, id, producer, group, 42)
        .await
        .expect("txn offset commit");
    let e = fetch_offset(&addrs, group, true)
        .await
        .expect_err("pending offsets are unstable");
    assert_eq!(e.code, ErrorCode::UnstableOffsetCommit, "{e}");
    assert_eq!(
        fetch_offset(&addrs, group, false).await.expect("fetch"),
        -1,
        "a pending offset is not visible"
    );
    let next = end_txn(&addrs, id, producer, true).await.expect("commit");
    assert_eq!(stable_offset(&addrs, group).await, 42, "visible on commit");

    // Abort: the pending offset is dropped.
    add_offsets(&addrs, id, next, group)
        .await
        .expect("add offsets");
    txn_commit_offset(&addrs, id, next, group, 50)
        .await
        .expect("txn offset commit");
    end_txn(&addrs, id, next, false).await.expect("abort");
    assert_eq!(stable_offset(&addrs, group).await, 42, "dropped on abort");

    // A fenced epoch cannot commit offsets.
    let e = txn_commit_offset(&addrs, id, producer, group, 60)
        .await
        .expect_err("old epoch");
    assert!(
        matches!(
            e.code,
            ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch
        ),
        "{e}"
    );
    assert_eq!(stable_offset(&addrs, group).await, 42);
}
