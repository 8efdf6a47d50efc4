//! The producer against real brokers: leader changes it learns of from a
//! broker's answer, ProduceStream and the unary fallback, retriable and
//! fatal partition errors, the delivery timeout, acks=0, callbacks,
//! keyed partitioning and missing topics.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_broker::testkit::grpc::{Rpc, settled};
use strom_client::producer::partition_for_key;
use strom_client::{Acks, Compression, ErrorCode, Producer, ProducerRecord, TopicPartition};
use support::{
    led_by, other, outside, produce, producer_config, producer_config_at, start, stored_values,
    values,
};

#[tokio::test]
async fn producer_follows_leader_hints_and_keeps_partition_order() {
    let cluster = start(3, 1).await;
    cluster.create_topic("t", 1, 2, &[]).await.unwrap();
    let tp = TopicPartition::new("t", 0);
    let state = cluster.partition("t", 0).await.unwrap();
    let old = state.leader;
    let new = *state
        .replicas
        .iter()
        .find(|r| **r != old)
        .expect("another replica");
    // The producer's only metadata source is a broker whose replay of the
    // metadata log stalls: it keeps naming the old leader.
    let lagging = outside(&state.replicas);
    cluster.lock().await.hold_metadata(lagging, true);
    // The leader moves: the controller fences it (a lapsed lease) and the
    // follower takes over; the old leader, still up, follows it and names
    // it in its answers.
    cluster.lock().await.controller().fence(old).unwrap();
    cluster
        .wait_until("the follower leads, both in sync", |c| {
            led_by(c, "t", 0, new, 2)
        })
        .await;

    let mut config = producer_config_at(&cluster.address(lagging).to_string());
    config.batch_size = 200; // several batches, several per request
    config.compression = Compression::Lz4;
    let producer = Producer::connect(config).await.unwrap();
    let offsets = produce(&producer, &tp, &values(50)).await;
    let offsets: Vec<i64> = offsets.into_iter().map(Result::unwrap).collect();
    assert_eq!(offsets, (0..50).collect::<Vec<_>>());
    producer.close().await.unwrap();
    assert_eq!(stored_values(&cluster, new, &tp).await, values(50));

    let answers = cluster.calls().answers("t", 0);
    assert_eq!(
        (answers[0].broker, answers[0].error),
        (old, ErrorCode::NotLeaderOrFollower),
        "first sent to the stale leader: {answers:?}"
    );
    let accepted = answers
        .iter()
        .position(|a| a.error == ErrorCode::None)
        .unwrap();
    assert!(
        answers[accepted..]
            .iter()
            .all(|a| a.broker == new && a.error == ErrorCode::None),
        "then only to the hinted one: {answers:?}"
    );
    // One answer per request partition: fewer answers than the batches
    // written means some requests carried several.
    let batches = cluster.lock().await.batches(new, "t", 0).len();
    assert!(
        answers.len() - accepted < batches,
        "batches travel together: {} requests wrote {batches} batches",
        answers.len() - accepted
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn producer_streams_its_requests_and_falls_back_to_unary_calls() {
    for unary_only in [false, true] {
        let cluster = start(1, 1).await;
        cluster.create_topic("t", 1, 1, &[]).await.unwrap();
        // A broker from before ProduceStream answers it UNIMPLEMENTED.
        cluster.serve_produce_stream(!unary_only);
        let mut config = producer_config(&cluster);
        config.linger = Duration::ZERO;
        let producer = Producer::connect(config).await.unwrap();
        let tp = TopicPartition::new("t", 0);
        for round in 0..3 {
            let offsets = produce(&producer, &tp, &values(4)).await;
            let offsets: Vec<i64> = offsets.into_iter().map(Result::unwrap).collect();
            assert_eq!(offsets.len(), 4, "unary only: {unary_only}");
            assert_eq!(offsets[0], round * 4, "unary only: {unary_only}");
        }
        producer.close().await.unwrap();
        assert_eq!(
            stored_values(&cluster, 1, &tp).await,
            [values(4), values(4), values(4)].concat(),
            "unary only: {unary_only}"
        );
        // One stream serves every request; without it, unary calls do.
        let calls = cluster.calls();
        let streams = usize::from(!unary_only);
        assert_eq!(
            calls.count(Rpc::ProduceStream),
            streams,
            "unary only: {unary_only}"
        );
        assert_eq!(
            calls.count(Rpc::Produce) >= 3,
            unary_only,
            "unary only: {unary_only}"
        );
        cluster.shutdown().await;
    }
}

/// Topic `t` with two partitions on both brokers of a two-broker cluster,
/// `min.insync.replicas = 2` and records of at most 1 KiB; returns the
/// leader of partition 0.
async fn guarded_topic(cluster: &support::Brokers) -> i32 {
    cluster
        .create_topic(
            "t",
            2,
            2,
            &[("min.insync.replicas", "2"), ("max.message.bytes", "1024")],
        )
        .await
        .unwrap();
    cluster.partition("t", 0).await.unwrap().leader
}

/// Crashes `follower` and waits until the leader of `t`-0 has only itself
/// in the ISR: acks=all writes are refused with NOT_ENOUGH_REPLICAS.
async fn shrink_isr(cluster: &support::Brokers, leader: i32, follower: i32) {
    cluster.crash(follower).await;
    cluster
        .wait_until("the ISR of t-0 is the leader alone", |c| {
            let isr = c.controller().with_image(|i| {
                i.topic_by_name("t")
                    .and_then(|t| t.partition(0))
                    .map(|p| p.isr.clone())
            });
            isr == Some(vec![leader]) && settled(c)
        })
        .await;
}

#[tokio::test]
async fn retriable_errors_are_retried_and_fatal_ones_fail_the_records() {
    let cluster = start(2, 2).await;
    let leader = guarded_topic(&cluster).await;
    let follower = other(leader);
    shrink_isr(&cluster, leader, follower).await;

    let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
    let p0 = TopicPartition::new("t", 0);
    let mut p0_deliveries = Vec::new();
    for value in values(3) {
        let record = ProducerRecord::new("t").partition(0).value(value);
        p0_deliveries.push(producer.send(record).await.unwrap());
    }
    let too_large = ProducerRecord::new("t")
        .partition(1)
        .value("x".repeat(2_000));
    let p1_delivery = producer.send(too_large).await.unwrap();
    let calls = cluster.calls().clone();
    cluster
        .wait_until("t-0 refused with NOT_ENOUGH_REPLICAS", |_| {
            calls
                .answers("t", 0)
                .iter()
                .any(|a| a.error == ErrorCode::NotEnoughReplicas)
        })
        .await;

    // The follower comes back and rejoins the ISR: the retries land.
    cluster.restart(follower).await.unwrap();
    let mut offsets = Vec::new();
    for delivery in p0_deliveries {
        offsets.push(delivery.await.unwrap().offset);
    }
    assert_eq!(offsets, [0, 1, 2]);
    assert_eq!(stored_values(&cluster, leader, &p0).await, values(3));
    let error = p1_delivery.await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::RecordTooLarge), "{error}");
    producer.close().await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test]
async fn retries_end_at_the_delivery_timeout_naming_the_last_error() {
    let cluster = start(2, 2).await;
    let leader = guarded_topic(&cluster).await;
    // The follower stays down: every attempt is refused.
    shrink_isr(&cluster, leader, other(leader)).await;
    let tp = TopicPartition::new("t", 0);
    let mut config = producer_config(&cluster);
    config.linger = Duration::ZERO;
    config.client.request_timeout = Duration::from_millis(100);
    config.delivery_timeout = Duration::from_millis(200);
    let producer = Producer::connect(config).await.unwrap();
    let error = produce(&producer, &tp, &values(1))
        .await
        .remove(0)
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::RequestTimedOut));
    assert!(
        error
            .to_string()
            .contains("last error: NOT_ENOUGH_REPLICAS"),
        "{error}"
    );
    producer.close().await.unwrap();
    assert!(stored_values(&cluster, leader, &tp).await.is_empty());
    cluster.shutdown().await;
}

#[tokio::test]
async fn acks_zero_reports_offset_minus_one_and_still_writes() {
    let cluster = start(1, 1).await;
    cluster.create_topic("t", 1, 1, &[]).await.unwrap();
    let mut config = producer_config(&cluster);
    config.acks = Acks::None;
    let producer = Producer::connect(config).await.unwrap();
    let tp = TopicPartition::new("t", 0);
    let offsets = produce(&producer, &tp, &values(5)).await;
    assert!(offsets.into_iter().all(|o| o.unwrap() == -1));
    producer.close().await.unwrap();
    // acks=0 answers nothing; the records arrive all the same.
    cluster
        .wait_until("five records written", |c| {
            c.replicas("t", 0).iter().any(|r| r.log_end_offset == 5)
        })
        .await;
    assert_eq!(stored_values(&cluster, 1, &tp).await, values(5));
    cluster.shutdown().await;
}

#[tokio::test]
async fn callbacks_hear_each_outcome_once_before_close_returns() {
    let cluster = start(1, 1).await;
    // Partition 1 gets records too large for the topic: they fail for good.
    cluster
        .create_topic("t", 2, 1, &[("max.message.bytes", "1024")])
        .await
        .unwrap();
    for acks in [Acks::All, Acks::None] {
        let mut config = producer_config(&cluster);
        config.acks = acks;
        config.batch_size = 200;
        let producer = Producer::connect(config).await.unwrap();
        // (partition, value index, outcome), in the order heard.
        type Heard = Vec<(i32, usize, Result<i64, ErrorCode>)>;
        let heard: Arc<Mutex<Heard>> = Arc::default();
        for i in 0..40 {
            let (partition, value) = if i % 10 == 9 {
                (1, "x".repeat(2_000))
            } else {
                (0, format!("v{i}"))
            };
            let heard = heard.clone();
            let record = ProducerRecord::new("t").partition(partition).value(value);
            producer
                .send_with_callback(record, move |outcome| {
                    let outcome = outcome.map(|m| m.offset).map_err(|e| e.code().unwrap());
                    heard.lock().unwrap().push((partition, i, outcome));
                    // A panicking callback must not stop the others.
                    assert!(i != 3, "callback 3 panics on purpose");
                })
                .await
                .unwrap();
        }
        producer.close().await.unwrap();
        let mut heard = std::mem::take(&mut *heard.lock().unwrap());
        heard.sort_by_key(|(_, i, _)| *i);
        assert_eq!(heard.len(), 40, "acks {acks:?}: each callback once");
        let mut p0_offsets = Vec::new();
        let mut p1_failed = 0;
        for (partition, i, outcome) in heard {
            match (acks, partition, outcome) {
                (Acks::None, _, Ok(-1)) => {}
                (Acks::All, 0, Ok(offset)) => p0_offsets.push(offset),
                (Acks::All, 1, Err(ErrorCode::RecordTooLarge)) => p1_failed += 1,
                other => panic!("record {i}: unexpected {other:?}"),
            }
        }
        if acks == Acks::All {
            assert_eq!(p1_failed, 4, "the failed records hear the error");
            let first = p0_offsets[0];
            let want: Vec<i64> = (first..first + 36).collect();
            assert_eq!(p0_offsets, want, "partition order kept");
        }
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn keyed_records_land_where_the_java_client_puts_them() {
    let cluster = start(1, 1).await;
    cluster.create_topic("t", 3, 1, &[]).await.unwrap();
    let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
    for key in ["21", "foobar", "abc", "a-little-bit-long-string"] {
        let delivery = producer
            .send(ProducerRecord::new("t").key(key).value(key))
            .await
            .unwrap();
        let metadata = delivery.await.unwrap();
        let partition = partition_for_key(key.as_bytes(), 3);
        assert_eq!(metadata.partition, partition, "{key}");
        let tp = TopicPartition::new("t", partition);
        assert!(
            stored_values(&cluster, 1, &tp)
                .await
                .contains(&key.to_owned()),
            "{key} stored in partition {partition}"
        );
    }
    let keyless = producer
        .send(ProducerRecord::new("t").value("x"))
        .await
        .unwrap();
    assert!((0..3).contains(&keyless.await.unwrap().partition));
    producer.close().await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test]
async fn send_to_a_missing_topic_fails_after_max_block() {
    let cluster = start(1, 1).await;
    cluster.create_topic("t", 1, 1, &[]).await.unwrap();
    let mut config = producer_config(&cluster);
    config.max_block = Duration::from_millis(50);
    let producer = Producer::connect(config).await.unwrap();
    let error = producer
        .send(ProducerRecord::new("nope").value("v"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::UnknownTopicOrPartition));
    assert_eq!(
        error.detail(),
        "topic 'nope' not present in metadata after 50 ms"
    );
    let error = producer
        .send(ProducerRecord::new("t").partition(3).value("v"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::UnknownTopicOrPartition));
    producer.close().await.unwrap();
    cluster.shutdown().await;
}
