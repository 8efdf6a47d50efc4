//! Thin clients on three real nodes: `RecordsService.ProduceRecords`
//! takes records as protobuf messages (no batch codec in the client).

use std::time::{Duration, Instant};

use strom_integration_tests::data::{Addrs, wait_leader_serving};
use strom_integration_tests::{Cluster, ClusterOptions, channel};
use strom_proto::v1::{ErrorCode, IsolationLevel};

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

/// `RecordsService.ConsumeRecords`: decoded records from an offset, at most
/// `max_records`, with the next offset to ask for; a follower answers
/// NOT_LEADER_OR_FOLLOWER naming the leader, a bad offset is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_records_returns_decoded_records() {
    use strom_proto::StromError;
    use strom_proto::v1::records_service_client::RecordsServiceClient;
    use strom_proto::v1::{
        ConsumeRecordsRequest, ProduceRecordsPartition, ProduceRecordsRequest, ProduceRecordsTopic,
        RecordMessage, RecordMessageHeader,
    };
    let mut cluster = Cluster::start(3, options()).await;
    cluster.wait_ready(Duration::from_secs(60)).await;
    create(&cluster, "thin", 1).await;
    let addrs = Addrs::of(&cluster);
    let leader = wait_leader_serving(&addrs, "thin", 0, Duration::from_secs(20))
        .await
        .expect("leader");
    let mut c = RecordsServiceClient::new(channel(&addrs.0[&leader]));
    let records: Vec<RecordMessage> = (0..5)
        .map(|i| RecordMessage {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("v{i}").into_bytes()),
            headers: vec![RecordMessageHeader {
                key: "n".into(),
                value: Some(vec![i]),
            }],
            timestamp_ms: 0,
        })
        .collect();
    let resp = c
        .produce_records(ProduceRecordsRequest {
            acks: -1,
            timeout_ms: 10_000,
            topics: vec![ProduceRecordsTopic {
                topic: "thin".into(),
                partitions: vec![ProduceRecordsPartition {
                    partition: 0,
                    records,
                }],
            }],
        })
        .await
        .expect("produce")
        .into_inner();
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        ErrorCode::None as i32
    );
    let read = |offset: i64, max_records: i32| ConsumeRecordsRequest {
        topic: "thin".into(),
        partition: 0,
        offset,
        max_records,
        max_wait_ms: 1000,
        isolation_level: IsolationLevel::ReadUncommitted as i32,
    };
    let first = c
        .consume_records(read(1, 2))
        .await
        .expect("consume")
        .into_inner();
    type Seen = (i64, Option<Vec<u8>>, Option<Vec<u8>>);
    let got: Vec<Seen> = first
        .records
        .iter()
        .map(|r| (r.offset, r.key.clone(), r.value.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (1, Some(b"k1".to_vec()), Some(b"v1".to_vec())),
            (2, Some(b"k2".to_vec()), Some(b"v2".to_vec())),
        ]
    );
    assert_eq!(first.records[0].headers[0].value, Some(vec![1]));
    assert!(first.records[0].timestamp_ms > 0, "the broker's clock");
    assert_eq!((first.next_offset, first.high_watermark), (3, 5));
    let rest = c
        .consume_records(read(first.next_offset, 0))
        .await
        .expect("consume")
        .into_inner();
    assert_eq!(
        rest.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [3, 4]
    );
    assert_eq!(rest.next_offset, 5);
    // At the end: an empty answer after the wait.
    let started = Instant::now();
    let empty = c
        .consume_records(read(5, 0))
        .await
        .expect("consume")
        .into_inner();
    assert!(empty.records.is_empty() && empty.next_offset == 5);
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Refusals.
    let err = |r: Result<tonic::Response<_>, tonic::Status>| {
        StromError::from_status(&r.expect_err("refused"))
    };
    assert_eq!(
        err(c.consume_records(read(99, 0)).await).code,
        ErrorCode::OffsetOutOfRange
    );
    assert_eq!(
        err(c.consume_records(read(-1, 0)).await).code,
        ErrorCode::InvalidRequest
    );
    let follower = *addrs
        .0
        .keys()
        .find(|id| **id != leader)
        .expect("a follower");
    let e = err(RecordsServiceClient::new(channel(&addrs.0[&follower]))
        .consume_records(read(0, 0))
        .await);
    assert_eq!(e.code, ErrorCode::NotLeaderOrFollower);
    assert_eq!(e.leader.map(|l| l.id), Some(leader));
}
