//! Thin clients on three real nodes: `RecordsService.ProduceRecords`
//! takes records as protobuf messages (no batch codec in the client).

use std::time::{Duration, Instant};

use strom_integration_tests::data::{Addrs, wait_leader_serving};
use strom_integration_tests::{Cluster, ClusterOptions, channel};
use strom_proto::v1::ErrorCode;

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false")
        .set("offsets.topic.num.partitions", "5")
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

/// `RecordsService.ProduceRecords` (thin clients): records as protobuf
/// messages — keys, null values, headers, timestamps — land through the
/// produce path and read back as sent; an unknown topic, an empty partition
/// and the internal offsets topic are refused per partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_records_appends_protobuf_records() {
    use strom_proto::v1::records_service_client::RecordsServiceClient;
    use strom_proto::v1::{
        ProduceRecordsPartition, ProduceRecordsRequest, ProduceRecordsTopic, RecordMessage,
        RecordMessageHeader,
    };
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "first", 1).await;
    let addrs = Addrs::of(&cluster);
    let leader = wait_leader_serving(&addrs, "first", 0, Duration::from_secs(20))
        .await
        .expect("leader");
    let partition = |topic: &str, records: Vec<RecordMessage>| ProduceRecordsTopic {
        topic: topic.into(),
        partitions: vec![ProduceRecordsPartition {
            partition: 0,
            records,
        }],
    };
    let record = |key: Option<&str>, value: Option<&str>| RecordMessage {
        key: key.map(|k| k.as_bytes().to_vec()),
        value: value.map(|v| v.as_bytes().to_vec()),
        headers: vec![RecordMessageHeader {
            key: "h".into(),
            value: Some(b"hv".to_vec()),
        }],
        timestamp_ms: 1_700_000_000_000,
    };
    let resp = RecordsServiceClient::new(channel(&addrs.0[&leader]))
        .produce_records(ProduceRecordsRequest {
            acks: -1,
            timeout_ms: 10_000,
            topics: vec![
                partition(
                    "first",
                    vec![
                        record(Some("k1"), Some("v1")),
                        record(None, Some("v2")),
                        record(Some("k3"), None),
                    ],
                ),
                partition("nope", vec![record(None, Some("x"))]),
                partition("__consumer_offsets", vec![record(None, Some("x"))]),
            ],
        })
        .await
        .expect("produce records")
        .into_inner();
    let codes: Vec<(String, i32, i64)> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic.clone(), p.error_code, p.base_offset))
        })
        .collect();
    assert_eq!(codes[0], ("first".to_owned(), ErrorCode::None as i32, 0));
    assert_eq!(codes[1].1, ErrorCode::UnknownTopicOrPartition as i32);
    assert!(
        codes[2].1 == ErrorCode::InvalidTopicException as i32
            || codes[2].1 == ErrorCode::UnknownTopicOrPartition as i32
            || codes[2].1 == ErrorCode::NotLeaderOrFollower as i32,
        "{codes:?}"
    );
    let empty = RecordsServiceClient::new(channel(&addrs.0[&leader]))
        .produce_records(ProduceRecordsRequest {
            acks: 1,
            timeout_ms: 10_000,
            topics: vec![partition("first", vec![])],
        })
        .await
        .expect("answer")
        .into_inner();
    assert_eq!(
        empty.topics[0].partitions[0].error_code,
        ErrorCode::CorruptMessage as i32
    );
    // Read back with the Rust consumer: keys, values, headers, timestamps.
    let mut consumer = strom_client::Consumer::connect(
        strom_client::ConsumerConfig::new(&cluster.bootstrap()).expect("config"),
    )
    .await
    .expect("consumer");
    let tp = strom_client::TopicPartition::new("first", 0);
    consumer.assign([tp.clone()]);
    consumer.seek_to_beginning(&[tp]).expect("seek");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 3 && Instant::now() < deadline {
        got.extend(
            consumer
                .poll(Duration::from_millis(500))
                .await
                .expect("poll"),
        );
    }
    let seen: Vec<(Option<String>, Option<String>, i64, usize)> = got
        .iter()
        .map(|r| {
            (
                r.key
                    .as_ref()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                r.value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                r.timestamp,
                r.headers.len(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Some("k1".into()), Some("v1".into()), 1_700_000_000_000, 1),
            (None, Some("v2".into()), 1_700_000_000_000, 1),
            (Some("k3".into()), None, 1_700_000_000_000, 1),
        ]
    );
}
