//! `BrokerService` on a real 3-node cluster: produce, fetch, ListOffsets and
//! OffsetsForLeaderEpoch, and every kind of bad input getting its typed
//! error while nothing is written and the broker keeps serving.

use std::time::Duration;

use bytes::Bytes;
use strom_integration_tests::data::{
    Addrs, batch, broker_client, partition_state_any, produce_once, read_all, wait_leader_serving,
};
use strom_integration_tests::{Cluster, ClusterOptions, wait_until};
use strom_proto::StromError;
use strom_proto::v1::*;

async fn cluster_with_topic(
    topic: &str,
    configs: &[(&str, &str)],
    options: ClusterOptions,
) -> (Cluster, Addrs, i32) {
    let cluster = Cluster::start(3, options).await;
    cluster
        .create_topic(1, topic, 1, 3, configs)
        .await
        .expect("create");
    let addrs = Addrs::of(&cluster);
    let ok = wait_until(Duration::from_secs(30), || async {
        partition_state_any(&addrs, topic, 0)
            .await
            .is_some_and(|(l, _, isr)| l >= 0 && isr.len() == 3)
    })
    .await;
    assert!(ok, "topic not fully replicated\n{}", cluster.dump_logs());
    let leader = wait_leader_serving(&addrs, topic, 0, Duration::from_secs(10))
        .await
        .expect("leader serves");
    (cluster, addrs, leader)
}

async fn fetch_one(
    addrs: &Addrs,
    node: i32,
    topic: &str,
    partition: i32,
    offset: i64,
    epoch: i32,
) -> FetchPartitionResponse {
    let mut c = broker_client(addrs, node);
    let resp = c
        .fetch(FetchRequest {
            replica_id: -1,
            replica_epoch: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 1 << 20,
            isolation_level: 0,
            topics: vec![FetchTopic {
                topic: topic.into(),
                topic_id: Vec::new(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    current_leader_epoch: epoch,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                    replica_durable_offset: 0,
                }],
            }],
        })
        .await
        .expect("fetch call")
        .into_inner();
    resp.topics[0].partitions[0].clone()
}

async fn list_offset(
    addrs: &Addrs,
    node: i32,
    topic: &str,
    timestamp: i64,
) -> ListOffsetsPartitionResponse {
    let mut c = broker_client(addrs, node);
    let resp = c
        .list_offsets(ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                topic: topic.into(),
                partitions: vec![ListOffsetsPartition {
                    partition: 0,
                    timestamp,
                    current_leader_epoch: -1,
                }],
            }],
        })
        .await
        .expect("list offsets call")
        .into_inner();
    resp.topics[0].partitions[0].clone()
}

/// A consumer fetch of partition 0 of `topic` from `offset`.
fn consumer_fetch(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        replica_epoch: -1,
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 0,
        topics: vec![FetchTopic {
            topic: topic.into(),
            topic_id: Vec::new(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
                replica_durable_offset: 0,
            }],
        }],
    }
}

fn code(r: &Result<i64, StromError>) -> Option<ErrorCode> {
    r.as_ref().err().map(|e| e.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_fetch_and_offsets_round_trip() {
    let (cluster, addrs, leader) = cluster_with_topic(
        "rt",
        &[("min.insync.replicas", "2")],
        ClusterOptions::default(),
    )
    .await;
    let values: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("v{i}"))).collect();
    let first = produce_once(
        &addrs,
        leader,
        "rt",
        0,
        batch(&values[..5]),
        -1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(first, Ok(0));
    let second = produce_once(
        &addrs,
        leader,
        "rt",
        0,
        batch(&values[5..]),
        -1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(second, Ok(5));
    let (hw, log) = read_all(&addrs, leader, "rt", 0).await.expect("read");
    assert_eq!(hw, 10);
    assert_eq!(
        log,
        values
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, v)| (i as i64, v))
            .collect::<Vec<_>>()
    );

    // A fetch starting inside a batch returns that whole batch.
    let mid = fetch_one(&addrs, leader, "rt", 0, 7, -1).await;
    assert_eq!(mid.error_code, 0);
    assert_eq!(mid.high_watermark, 10);
    let recs = strom_integration_tests::data::records(mid.records);
    assert_eq!(recs.first().map(|(o, _)| *o), Some(5));

    assert_eq!(list_offset(&addrs, leader, "rt", -2).await.offset, 0);
    assert_eq!(list_offset(&addrs, leader, "rt", -1).await.offset, 10);
    let by_time = list_offset(&addrs, leader, "rt", 0).await;
    assert_eq!(by_time.offset, 0);
    let future = list_offset(&addrs, leader, "rt", i64::MAX / 2).await;
    assert_eq!(future.offset, -1, "no record is that late");

    let mut c = broker_client(&addrs, leader);
    let (_, epoch, _) = partition_state_any(&addrs, "rt", 0).await.expect("state");
    let e = c
        .offsets_for_leader_epoch(OffsetsForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderTopic {
                topic: "rt".into(),
                partitions: vec![OffsetForLeaderPartition {
                    partition: 0,
                    current_leader_epoch: epoch,
                    leader_epoch: epoch,
                }],
            }],
        })
        .await
        .expect("offsets for leader epoch")
        .into_inner();
    let p = &e.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, epoch, 10));

    // A long poll at the end waits for new data and returns it.
    let addrs2 = addrs.clone();
    let poll = tokio::spawn(async move {
        let mut c = broker_client(&addrs2, leader);
        c.fetch(FetchRequest {
            replica_id: -1,
            replica_epoch: -1,
            max_wait_ms: 10_000,
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation_level: 0,
            topics: vec![FetchTopic {
                topic: "rt".into(),
                topic_id: Vec::new(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 10,
                    current_leader_epoch: -1,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                    replica_durable_offset: 0,
                }],
            }],
        })
        .await
        .expect("long poll")
        .into_inner()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the long poll returned without data");
    produce_once(
        &addrs,
        leader,
        "rt",
        0,
        batch(&[Bytes::from("late")]),
        -1,
        Duration::from_secs(5),
    )
    .await
    .expect("produce");
    let got = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("woken")
        .expect("task");
    let recs = strom_integration_tests::data::records(got.topics[0].partitions[0].records.clone());
    assert_eq!(recs, vec![(10, Bytes::from("late"))]);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_typed_errors_and_writes_nothing() {
    let options = ClusterOptions::default().set("socket.request.max.bytes", "1048576");
    let (cluster, addrs, leader) =
        cluster_with_topic("bad", &[("max.message.bytes", "2048")], options).await;
    let t = Duration::from_secs(5);
    let ok = produce_once(&addrs, leader, "bad", 0, batch(&[Bytes::from("ok")]), -1, t).await;
    assert_eq!(ok, Ok(0));

    // Unknown topic and partition.
    let r = produce_once(&addrs, leader, "nope", 0, batch(&[Bytes::from("x")]), -1, t).await;
    assert_eq!(code(&r), Some(ErrorCode::UnknownTopicOrPartition));
    let r = produce_once(&addrs, leader, "bad", 7, batch(&[Bytes::from("x")]), -1, t).await;
    assert_eq!(code(&r), Some(ErrorCode::UnknownTopicOrPartition));
    let r = produce_once(&addrs, leader, "bad", -1, batch(&[Bytes::from("x")]), -1, t).await;
    assert_eq!(code(&r), Some(ErrorCode::UnknownTopicOrPartition));

    // Corrupt bytes: a flipped byte inside the CRC-covered part, and garbage.
    let mut corrupt = batch(&[Bytes::from("corrupt")]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let r = produce_once(&addrs, leader, "bad", 0, Bytes::from(corrupt), -1, t).await;
    assert_eq!(code(&r), Some(ErrorCode::CorruptMessage));
    let r = produce_once(
        &addrs,
        leader,
        "bad",
        0,
        Bytes::from_static(b"not a batch at all"),
        -1,
        t,
    )
    .await;
    assert_eq!(code(&r), Some(ErrorCode::CorruptMessage));
    let r = produce_once(&addrs, leader, "bad", 0, Bytes::new(), -1, t).await;
    assert_eq!(code(&r), Some(ErrorCode::CorruptMessage));

    // Over max.message.bytes (topic config 2048).
    let r = produce_once(
        &addrs,
        leader,
        "bad",
        0,
        batch(&[Bytes::from(vec![b'x'; 4096])]),
        -1,
        t,
    )
    .await;
    assert_eq!(code(&r), Some(ErrorCode::RecordTooLarge));

    // acks outside -1, 0, 1.
    let r = produce_once(&addrs, leader, "bad", 0, batch(&[Bytes::from("x")]), 2, t).await;
    assert_eq!(code(&r), Some(ErrorCode::InvalidRequiredAcks));

    // Produce to a follower names the leader.
    let follower = (1..=3).find(|id| *id != leader).expect("follower");
    let mut c = broker_client(&addrs, follower);
    let resp = c
        .produce(ProduceRequest {
            acks: -1,
            timeout_ms: 5000,
            topics: vec![ProduceTopicData {
                topic: "bad".into(),
                partitions: vec![ProducePartitionData {
                    partition: 0,
                    records: batch(&[Bytes::from("x")]),
                }],
            }],
            transactional_id: String::new(),
        })
        .await
        .expect("produce call")
        .into_inner();
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::NotLeaderOrFollower as i32);
    let hint = p.current_leader.as_ref().expect("leader hint");
    assert_eq!(hint.leader_id, leader);
    assert_eq!(hint.leader_address, cluster.node(leader).client_addr());

    // A request over socket.request.max.bytes fails as a whole.
    let huge = produce_once(
        &addrs,
        leader,
        "bad",
        0,
        Bytes::from(vec![0u8; 2 << 20]),
        -1,
        t,
    )
    .await;
    assert_eq!(
        code(&huge),
        Some(ErrorCode::RecordListTooLarge),
        "an oversized request fails as a whole: {huge:?}"
    );

    // Fetch: negative and out-of-range offsets, stale epochs, bad sizes.
    let neg = fetch_one(&addrs, leader, "bad", 0, -5, -1).await;
    assert_eq!(neg.error_code, ErrorCode::OffsetOutOfRange as i32);
    let past = fetch_one(&addrs, leader, "bad", 0, 1000, -1).await;
    assert_eq!(past.error_code, ErrorCode::OffsetOutOfRange as i32);
    assert!(
        past.error_message.contains("[0, 1]"),
        "message names the valid range: {}",
        past.error_message
    );
    let (_, epoch, _) = partition_state_any(&addrs, "bad", 0).await.expect("state");
    let stale = fetch_one(&addrs, leader, "bad", 0, 0, epoch - 1).await;
    if epoch > 0 {
        assert_eq!(stale.error_code, ErrorCode::FencedLeaderEpoch as i32);
    }
    let ahead = fetch_one(&addrs, leader, "bad", 0, 0, epoch + 1).await;
    assert_eq!(ahead.error_code, ErrorCode::UnknownLeaderEpoch as i32);
    let on_follower = fetch_one(&addrs, follower, "bad", 0, 0, -1).await;
    assert_eq!(
        on_follower.error_code,
        ErrorCode::NotLeaderOrFollower as i32
    );
    let lo = list_offset(&addrs, leader, "bad", -7).await;
    assert_eq!(lo.error_code, ErrorCode::InvalidRequest as i32);

    // Nothing but the first record was written, and the broker still serves.
    let (hw, log) = read_all(&addrs, leader, "bad", 0).await.expect("read");
    assert_eq!(hw, 1);
    assert_eq!(log, vec![(0, Bytes::from("ok"))]);
    let again = produce_once(
        &addrs,
        leader,
        "bad",
        0,
        batch(&[Bytes::from("still")]),
        -1,
        t,
    )
    .await;
    assert_eq!(again, Ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_stream_answers_each_request_in_order_and_ends_on_a_rejected_one() {
    let (cluster, addrs, leader) = cluster_with_topic(
        "fs",
        &[("min.insync.replicas", "2")],
        ClusterOptions::default(),
    )
    .await;
    let t = Duration::from_secs(5);
    let values: Vec<Bytes> = (0..4).map(|i| Bytes::from(format!("s{i}"))).collect();
    assert_eq!(
        produce_once(&addrs, leader, "fs", 0, batch(&values[..2]), -1, t).await,
        Ok(0)
    );
    assert_eq!(
        produce_once(&addrs, leader, "fs", 0, batch(&values[2..]), -1, t).await,
        Ok(2)
    );

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut c = broker_client(&addrs, leader);
    // Two requests queued before the call: answered in order.
    tx.send(consumer_fetch("fs", 2, 0)).await.expect("queue");
    tx.send(consumer_fetch("fs", 0, 0)).await.expect("queue");
    let mut responses = c
        .fetch_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("open stream")
        .into_inner();
    let mut next = async || {
        let r = tokio::time::timeout(Duration::from_secs(10), responses.message())
            .await
            .expect("answered in time");
        r.map(|m| m.map(|m| m.topics[0].partitions[0].clone()))
    };
    let first = next().await.expect("first").expect("first response");
    assert_eq!(
        strom_integration_tests::data::records(first.records),
        vec![(2, values[2].clone()), (3, values[3].clone())]
    );
    let second = next().await.expect("second").expect("second response");
    assert_eq!(second.high_watermark, 4);
    assert_eq!(
        strom_integration_tests::data::records(second.records).len(),
        4
    );

    // A long poll on the stream waits for new data like unary Fetch.
    tx.send(consumer_fetch("fs", 4, 10_000))
        .await
        .expect("queue");
    let produced = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        produce_once(
            &addrs,
            leader,
            "fs",
            0,
            batch(&[Bytes::from("late")]),
            -1,
            t,
        )
        .await
    };
    let (polled, produced) = tokio::join!(next(), produced);
    assert_eq!(produced, Ok(4));
    let polled = polled.expect("polled").expect("poll response");
    assert_eq!(
        strom_integration_tests::data::records(polled.records),
        vec![(4, Bytes::from("late"))]
    );

    // A partition error is an answer, and the stream goes on.
    tx.send(consumer_fetch("fs", 1000, 0)).await.expect("queue");
    let past = next().await.expect("past").expect("past response");
    assert_eq!(past.error_code, ErrorCode::OffsetOutOfRange as i32);

    // A request the call rejects ends the stream with its typed status.
    let mut bad = consumer_fetch("fs", 0, 0);
    bad.max_wait_ms = -1;
    tx.send(bad).await.expect("queue");
    let status = next()
        .await
        .expect_err("the stream ends with the rejection");
    assert_eq!(
        StromError::from_status(&status).code,
        ErrorCode::InvalidRequest,
        "{status:?}"
    );

    // A FetchSession whose round is abandoned mid-wait never hands that
    // round's late answer to the next request.
    let mut session = strom_proto::FetchSession::new(broker_client(&addrs, leader));
    let first = session
        .fetch(consumer_fetch("fs", 0, 0), Duration::from_secs(10))
        .await
        .expect("first round");
    assert_eq!(first.topics[0].partitions[0].high_watermark, 5);
    let abandoned = session
        .fetch(consumer_fetch("fs", 5, 5_000), Duration::from_millis(300))
        .await
        .expect_err("the long poll outlasts the round's timeout");
    assert_eq!(abandoned.code(), tonic::Code::DeadlineExceeded);
    assert_eq!(
        produce_once(
            &addrs,
            leader,
            "fs",
            0,
            batch(&[Bytes::from("after")]),
            -1,
            t
        )
        .await,
        Ok(5)
    );
    let next = session
        .fetch(consumer_fetch("fs", 3, 0), Duration::from_secs(10))
        .await
        .expect("round after the abandoned one");
    let got = strom_integration_tests::data::records(next.topics[0].partitions[0].records.clone());
    assert_eq!(
        got.first().map(|(o, _)| *o),
        Some(2),
        "answers offset 3's batch: {got:?}"
    );
    assert!(!session.is_unary());

    // Nothing the rejected request carried was written, and the broker still serves.
    let (hw, log) = read_all(&addrs, leader, "fs", 0).await.expect("read");
    assert_eq!(hw, 6);
    assert_eq!(log.len(), 6);
    drop(cluster);
}

fn stream_produce(id: u64, acks: i32, timeout_ms: i32, value: &str) -> ProduceStreamRequest {
    ProduceStreamRequest {
        correlation_id: id,
        request: Some(ProduceRequest {
            acks,
            timeout_ms,
            transactional_id: String::new(),
            topics: vec![ProduceTopicData {
                topic: "ps".into(),
                partitions: vec![ProducePartitionData {
                    partition: 0,
                    records: batch(&[Bytes::from(value.to_owned())]),
                }],
            }],
        }),
    }
}

/// `(correlation id, error code, base offset)` of a stream answer.
fn stream_answer(answer: ProduceStreamResponse) -> (u64, i32, i64) {
    let p = &answer.response.expect("a response").topics[0].partitions[0];
    (answer.correlation_id, p.error_code, p.base_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_stream_appends_in_arrival_order_and_answers_in_completion_order() {
    let (mut cluster, addrs, leader) = cluster_with_topic(
        "ps",
        &[("min.insync.replicas", "1")],
        ClusterOptions::default(),
    )
    .await;
    let follower = *addrs
        .0
        .keys()
        .find(|id| **id != leader)
        .expect("a follower");
    let ok = ErrorCode::None as i32;

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    // Two requests queued before the call: appended in arrival order.
    tx.send(stream_produce(1, 1, 5_000, "a")).expect("queue");
    tx.send(stream_produce(2, 1, 5_000, "b")).expect("queue");
    let mut answers = broker_client(&addrs, leader)
        .produce_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .expect("open stream")
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), answers.message())
            .await
            .expect("answered in time")
    };
    let mut first_two = vec![
        stream_answer(next().await.expect("answer").expect("first")),
        stream_answer(next().await.expect("answer").expect("second")),
    ];
    first_two.sort();
    assert_eq!(first_two, vec![(1, ok, 0), (2, ok, 1)]);

    // With a follower stopped, an acks=all request waits (and times out),
    // and the acks=1 request sent after it is answered first.
    cluster.pause(follower);
    tx.send(stream_produce(3, -1, 1_500, "c")).expect("queue");
    tx.send(stream_produce(4, 1, 5_000, "d")).expect("queue");
    let early = stream_answer(next().await.expect("answer").expect("early"));
    assert_eq!(early, (4, ok, 3), "the acks=1 request is not held back");
    let late = stream_answer(next().await.expect("answer").expect("late"));
    assert_eq!(
        late,
        (3, ErrorCode::RequestTimedOut as i32, -1),
        "the acks=all request times out while the follower is stopped"
    );

    // Reusing the id of an unanswered request ends the stream with
    // INVALID_REQUEST, and the second request is not written.
    tx.send(stream_produce(5, -1, 10_000, "e")).expect("queue");
    tx.send(stream_produce(5, 1, 5_000, "not written"))
        .expect("queue");
    let status = next().await.expect_err("the stream ends");
    assert_eq!(
        StromError::from_status(&status).code,
        ErrorCode::InvalidRequest,
        "{status:?}"
    );
    cluster.resume(follower);

    // A message without a request ends a stream the same way.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tx.send(ProduceStreamRequest {
        correlation_id: 1,
        request: None,
    })
    .expect("queue");
    let mut answers = broker_client(&addrs, leader)
        .produce_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .expect("open stream")
        .into_inner();
    let status = tokio::time::timeout(Duration::from_secs(10), answers.message())
        .await
        .expect("answered in time")
        .expect_err("the stream ends");
    assert_eq!(
        StromError::from_status(&status).code,
        ErrorCode::InvalidRequest,
        "{status:?}"
    );

    // The log holds every appended request once, in arrival order; the
    // unacknowledged ones (c, e) included, the refused one not.
    let settled = wait_until(Duration::from_secs(30), || async {
        read_all(&addrs, leader, "ps", 0)
            .await
            .is_ok_and(|(hw, _)| hw == 5)
    })
    .await;
    assert!(settled, "the follower catches up\n{}", cluster.dump_logs());
    let (_, log) = read_all(&addrs, leader, "ps", 0).await.expect("read");
    let values: Vec<Bytes> = log.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, ["a", "b", "c", "d", "e"].map(Bytes::from).to_vec());
    drop(cluster);
}
