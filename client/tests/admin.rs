//! The admin client's record deletion against real brokers: requests go
//! to each partition's leader (following the old leader's hint when
//! metadata lags), every partition is checked before any is changed, and
//! refused requests change nothing.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use strom_broker::testkit::grpc::Rpc;
use strom_client::{
    Admin, ClientConfig, Consumer, DeletedRecords, ErrorCode, OffsetReset, Producer, TopicPartition,
};
use support::{consumer_config, led_by, outside, produce, producer_config, start, values};

#[tokio::test]
async fn admin_deletes_records_at_the_leaders_after_checking_every_partition() {
    let cluster = start(3, 1).await;
    cluster.create_topic("t", 2, 2, &[]).await.unwrap();
    let (t0, t1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
    let producer = Producer::connect(producer_config(&cluster)).await.unwrap();
    for tp in [&t0, &t1] {
        let offsets = produce(&producer, tp, &values(10)).await;
        assert!(offsets.iter().all(Result::is_ok), "{offsets:?}");
    }
    producer.close().await.unwrap();

    // t-0's leadership moves while the broker the admin asks for metadata
    // stalls, still naming the old leader: the admin learns of the new one
    // from the old one's answer.
    let state = cluster.partition("t", 0).await.unwrap();
    let first = state.leader;
    let second = *state
        .replicas
        .iter()
        .find(|r| **r != first)
        .expect("RF=2: another replica");
    let lagging = outside(&state.replicas);
    cluster.lock().await.hold_metadata(lagging, true);
    cluster.lock().await.controller().fence(first).unwrap();
    cluster
        .wait_until("the second replica leads t-0, both in sync", |c| {
            // The fenced broker is alive: the controller unfences it and it
            // rejoins the ISR, so only that end state is stable.
            led_by(c, "t", 0, second, 2)
        })
        .await;
    let admin = Admin::connect(ClientConfig {
        bootstrap_servers: vec![cluster.address(lagging).to_string()],
        retry_backoff: Duration::from_millis(1),
        retry_backoff_max: Duration::from_millis(5),
        ..ClientConfig::default()
    })
    .await
    .unwrap();

    // Refused: one partition beyond its high watermark, an unknown topic,
    // an unknown partition. Nothing is deleted anywhere.
    let refused = [
        (
            BTreeMap::from([(t0.clone(), 4), (t1.clone(), 11)]),
            ErrorCode::OffsetOutOfRange,
        ),
        (
            BTreeMap::from([(TopicPartition::new("nope", 0), 1)]),
            ErrorCode::UnknownTopicOrPartition,
        ),
        (
            BTreeMap::from([(TopicPartition::new("t", 7), 1)]),
            ErrorCode::UnknownTopicOrPartition,
        ),
    ];
    for (offsets, code) in refused {
        let err = admin.delete_records(offsets.clone()).await.unwrap_err();
        assert_eq!(err.code(), Some(code), "{offsets:?}: {err}");
    }
    let beyond = admin
        .delete_records(BTreeMap::from([(t1.clone(), 11)]))
        .await
        .unwrap_err();
    assert!(
        beyond.to_string().contains("t-1")
            && beyond.to_string().contains("valid offsets are 0 to 10"),
        "{beyond}"
    );
    assert!(
        cluster.calls().calls().iter().all(|c| c.rpc
            != Rpc::DeleteRecords {
                validate_only: false
            }),
        "refused requests were only checked"
    );
    let consumer = Consumer::connect(consumer_config(&cluster, OffsetReset::Earliest))
        .await
        .unwrap();
    let starts = consumer
        .beginning_offsets(&[t0.clone(), t1.clone()])
        .await
        .unwrap();
    assert_eq!(starts, BTreeMap::from([(t0.clone(), 0), (t1.clone(), 0)]));

    // Both valid: -1 is the high watermark.
    cluster.calls().clear();
    let done = admin
        .delete_records(BTreeMap::from([(t0.clone(), 4), (t1.clone(), -1)]))
        .await
        .unwrap();
    assert_eq!(
        done,
        [
            DeletedRecords {
                topic: "t".into(),
                partition: 0,
                low_watermark: 4
            },
            DeletedRecords {
                topic: "t".into(),
                partition: 1,
                low_watermark: 10
            },
        ]
    );
    let starts = consumer
        .beginning_offsets(&[t0.clone(), t1.clone()])
        .await
        .unwrap();
    assert_eq!(starts, BTreeMap::from([(t0, 4), (t1, 10)]));
    let calls = cluster.calls().calls();
    let first_delete = calls
        .iter()
        .position(|c| {
            c.rpc
                == Rpc::DeleteRecords {
                    validate_only: false,
                }
        })
        .expect("a deletion");
    assert!(
        calls[..first_delete].iter().any(|c| c.rpc
            == Rpc::DeleteRecords {
                validate_only: true
            }),
        "checks come first: {calls:?}"
    );
    assert!(
        calls[first_delete..].iter().all(|c| c.rpc
            != Rpc::DeleteRecords {
                validate_only: true
            }),
        "{calls:?}"
    );
    let answered = cluster.calls().answers("t", 0);
    assert!(
        answered
            .iter()
            .any(|a| a.broker == first && a.error == ErrorCode::NotLeaderOrFollower),
        "the old leader refused: {answered:?}"
    );
    assert!(
        answered.iter().any(|a| a.broker == second
            && a.rpc
                == Rpc::DeleteRecords {
                    validate_only: false
                }
            && a.error == ErrorCode::None),
        "the new leader deleted: {answered:?}"
    );
    cluster.shutdown().await;
}
