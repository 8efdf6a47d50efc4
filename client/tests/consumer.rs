//! The consumer against real brokers: leader changes it learns of from a
//! broker's answer (a newer leader epoch, then another leader),
//! out-of-range positions, and offset lookups by position and time.

mod support;

use std::time::Duration;

use strom_broker::testkit::grpc::{Answered, Rpc};
use strom_client::{
    Consumer, Error, ErrorCode, OffsetReset, Producer, ProducerRecord, TopicPartition,
};
use support::{
    consume, consumer_config, consumer_config_at, led_by, outside, produce, producer_config, start,
    values,
};

#[tokio::test]
async fn consumer_reads_in_order_across_a_stale_leader_and_epoch() {
    let cluster = start(3, 1).await;
    cluster.create_topic("t", 1, 2, &[]).await.unwrap();
    let tp = TopicPartition::new("t", 0);
    let state = cluster.partition("t", 0).await.unwrap();
    let first = state.leader;
    let second = *state
        .replicas
        .iter()
        .find(|r| **r != first)
        .expect("another replica");
    let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
    produce(&producer, &tp, &values(30)).await;
    producer.close().await.unwrap();

    // The consumer's only metadata source is a broker whose replay of the
    // metadata log stalls: it keeps naming the first leader at its first
    // epoch.
    let lagging = outside(&state.replicas);
    cluster.lock().await.hold_metadata(lagging, true);
    let bootstrap = cluster.address(lagging).to_string();
    let mut config = consumer_config_at(&bootstrap, OffsetReset::Earliest);
    config.max_poll_records = 7;
    let mut consumer = Consumer::connect(config).await.unwrap();
    consumer.assign([tp.clone()]);
    assert_eq!(consumer.position(&tp).await.unwrap(), 0);

    // The leadership goes to the other replica and comes back (fenced,
    // then a preferred-leader election): the same broker leads, at a
    // newer epoch than the consumer knows, so it answers
    // FENCED_LEADER_EPOCH first.
    cluster.lock().await.controller().fence(first).unwrap();
    cluster
        .wait_until("the second replica leads, both in sync", |c| {
            led_by(c, "t", 0, second, 2)
        })
        .await;
    cluster
        .lock()
        .await
        .controller()
        .rebalance_leaders()
        .unwrap();
    cluster
        .wait_until("the preferred replica leads again", |c| {
            led_by(c, "t", 0, first, 2)
        })
        .await;
    cluster.calls().clear();

    let records = consume(&mut consumer, 30).await;
    let want: Vec<(i64, String)> = values(30)
        .into_iter()
        .zip(0..)
        .map(|(v, o)| (o, v))
        .collect();
    assert_eq!(records, want);
    assert_eq!(consumer.position(&tp).await.unwrap(), 30);
    assert_eq!(consumer.current_lag(&tp), Some(0));
    let answers = cluster.calls().answers("t", 0);
    let first_fetch = answers.iter().find(fetched).unwrap();
    assert_eq!(
        (first_fetch.broker, first_fetch.error),
        (first, ErrorCode::FencedLeaderEpoch),
        "{answers:?}"
    );

    // Then the leader moves to the other replica, which the consumer's
    // metadata never names: the old leader, now a follower at a newer
    // epoch, sends it on.
    cluster.lock().await.controller().fence(first).unwrap();
    cluster
        .wait_until("the second replica leads, both in sync", |c| {
            led_by(c, "t", 0, second, 2)
        })
        .await;
    cluster.calls().clear();
    consumer.seek(&tp, 10).unwrap();
    let again = consume(&mut consumer, 20).await;
    assert_eq!(again, want[10..]);
    let answers = cluster.calls().answers("t", 0);
    assert!(
        answers
            .iter()
            .filter(fetched)
            .any(|a| a.broker == second && a.records > 0),
        "the new leader served the records: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .filter(fetched)
            .all(|a| a.broker == second || a.records == 0),
        "the old one served none: {answers:?}"
    );
    cluster.shutdown().await;
}

/// Whether an answer is to a fetch.
fn fetched(a: &&Answered) -> bool {
    matches!(a.rpc, Rpc::Fetch | Rpc::FetchStream)
}

#[tokio::test]
async fn out_of_range_positions_reset_or_fail_by_policy() {
    let cluster = start(1, 1).await;
    cluster.create_topic("t", 1, 1, &[]).await.unwrap();
    let tp = TopicPartition::new("t", 0);
    let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
    produce(&producer, &tp, &values(20)).await;
    producer.close().await.unwrap();

    let mut strict = Consumer::connect(consumer_config(&cluster, OffsetReset::None))
        .await
        .unwrap();
    strict.assign([tp.clone()]);
    let error = strict.poll(Duration::from_millis(10)).await.unwrap_err();
    assert!(
        matches!(error, Error::InvalidArgument(_)),
        "no position: {error}"
    );
    strict.seek(&tp, 100).unwrap();
    let mut error = None;
    for _ in 0..100 {
        if let Err(e) = strict.poll(Duration::from_millis(50)).await {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("out of range surfaces");
    assert_eq!(error.code(), Some(ErrorCode::OffsetOutOfRange));
    assert!(
        error.to_string().ends_with("valid offsets are 0 to 20"),
        "{error}"
    );

    let mut lenient = Consumer::connect(consumer_config(&cluster, OffsetReset::Earliest))
        .await
        .unwrap();
    lenient.assign([tp.clone()]);
    lenient.seek(&tp, 100).unwrap();
    let records = consume(&mut lenient, 20).await;
    assert_eq!(records.first().map(|r| r.0), Some(0));
    assert_eq!(records.len(), 20);
    cluster.shutdown().await;
}

#[tokio::test]
async fn offsets_queries_and_seeks_by_position_and_time() {
    let cluster = start(1, 1).await;
    cluster.create_topic("t", 1, 1, &[]).await.unwrap();
    let tp = TopicPartition::new("t", 0);
    let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
    for (i, value) in values(10).into_iter().enumerate() {
        let record = ProducerRecord::new("t")
            .partition(0)
            .value(value)
            .timestamp(1_000 + i as i64 * 10);
        producer.send(record).await.unwrap().await.unwrap();
    }
    producer.close().await.unwrap();
    let mut consumer = Consumer::connect(consumer_config(&cluster, OffsetReset::Latest))
        .await
        .unwrap();
    assert_eq!(
        consumer
            .beginning_offsets(std::slice::from_ref(&tp))
            .await
            .unwrap()[&tp],
        0
    );
    assert_eq!(
        consumer
            .end_offsets(std::slice::from_ref(&tp))
            .await
            .unwrap()[&tp],
        10
    );
    let found = consumer
        .offsets_for_times([(tp.clone(), 1_045)])
        .await
        .unwrap();
    assert_eq!(
        found[&tp].map(|f| (f.offset, f.timestamp)),
        Some((5, 1_050))
    );
    let none = consumer
        .offsets_for_times([(tp.clone(), 9_999)])
        .await
        .unwrap();
    assert_eq!(none[&tp], None);
    consumer.assign([tp.clone()]);
    assert_eq!(
        consumer.position(&tp).await.unwrap(),
        10,
        "latest by default"
    );
    consumer.seek_to_timestamp(&tp, 1_071).await.unwrap();
    assert_eq!(consumer.position(&tp).await.unwrap(), 8);
    consumer.seek_to_beginning(&[]).unwrap();
    assert_eq!(consumer.position(&tp).await.unwrap(), 0);
    let error = consumer
        .end_offsets(&[TopicPartition::new("missing", 0)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::UnknownTopicOrPartition));
    cluster.shutdown().await;
}
