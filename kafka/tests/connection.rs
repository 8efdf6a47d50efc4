//! The listener on a real socket over a broker core with an empty image
//! (no controller, no partitions): framing, pipelining, bad input, the
//! idle timeout and shutdown. Produce and fetch against real clusters are
//! in `integration-tests/tests/kafka.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom_broker::replica::{LogDirHealth, ReplicationConfig};
use strom_broker::{BrokerStatus, MetadataCache, ReplicaManager};
use strom_controller_client::QuorumClient;
use strom_kafka::fetch_session::FetchSessionCache;
use strom_kafka::{Broker, KafkaListener, ListenerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Served {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn serve(config: ListenerConfig) -> Served {
    let dir = tempfile::tempdir().expect("temp dir");
    let quorum = Arc::new(QuorumClient::new(BTreeMap::new()));
    let replicas = ReplicaManager::new(
        1,
        ReplicationConfig::default(),
        dir.path(),
        MetadataCache::new(),
        quorum.clone(),
        tokio::sync::watch::channel(BrokerStatus::default()).1,
        LogDirHealth::new(&dir.path().join("logs")),
    );
    let broker = Arc::new(Broker {
        replicas,
        groups: None,
        transactions: None,
        controller: quorum,
        controller_timeout: Duration::from_secs(1),
        fetch_sessions: FetchSessionCache::new(1000),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let stop = CancellationToken::new();
    let task = tokio::spawn(KafkaListener::new(listener, broker, config).run(stop.clone()));
    Served {
        addr,
        stop,
        task,
        _dir: dir,
    }
}

fn request(key: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test")))
        .encode(&mut buf, key.request_header_version(version))
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

async fn response(s: &mut TcpStream, key: ApiKey, version: i16) -> (i32, Bytes) {
    let size = tokio::time::timeout(Duration::from_secs(10), s.read_i32())
        .await
        .expect("an answer in time")
        .expect("response size");
    let mut body = vec![0u8; usize::try_from(size).expect("size")];
    s.read_exact(&mut body).await.expect("body");
    let mut body = Bytes::from(body);
    let header =
        ResponseHeader::decode(&mut body, key.response_header_version(version)).expect("header");
    (header.correlation_id, body)
}

/// Whether the listener closed `s` without answering.
async fn closed(s: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let served = serve(ListenerConfig::default()).await;
    let mut s = TcpStream::connect(served.addr).await.expect("connect");
    let mut bytes = request(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    bytes.extend(request(
        ApiKey::Metadata,
        12,
        2,
        &MetadataRequest::default(),
    ));
    bytes.extend(request(
        ApiKey::ApiVersions,
        0,
        3,
        &ApiVersionsRequest::default(),
    ));
    bytes.extend(request(
        ApiKey::Metadata,
        1,
        4,
        &MetadataRequest::default().with_topics(None),
    ));
    s.write_all(&bytes).await.expect("send");

    let (id, mut body) = response(&mut s, ApiKey::ApiVersions, 3).await;
    assert_eq!(id, 1);
    let versions = ApiVersionsResponse::decode(&mut body, 3).expect("v3");
    assert_eq!(versions.error_code, 0);
    assert_eq!(versions.api_keys.len(), strom_kafka::versions::SERVED.len());
    let (id, mut body) = response(&mut s, ApiKey::Metadata, 12).await;
    assert_eq!(id, 2);
    let metadata = MetadataResponse::decode(&mut body, 12).expect("v12");
    assert_eq!(
        metadata.controller_id.0, 1,
        "the answering broker forwards admin requests"
    );
    assert!(metadata.topics.is_empty() && metadata.brokers.is_empty());
    let (id, mut body) = response(&mut s, ApiKey::ApiVersions, 0).await;
    assert_eq!(id, 3);
    assert_eq!(
        ApiVersionsResponse::decode(&mut body, 0)
            .expect("v0")
            .error_code,
        0
    );
    assert_eq!(response(&mut s, ApiKey::Metadata, 1).await.0, 4);
    served.stop.cancel();
    served.task.await.expect("listener stops");
}

#[tokio::test]
async fn bad_input_closes_only_its_connection() {
    let served = serve(ListenerConfig {
        max_request_bytes: 1000,
        ..Default::default()
    })
    .await;
    let mut good = TcpStream::connect(served.addr).await.expect("connect");

    let mut oversized = Vec::new();
    oversized.put_i32(1001);
    let mut unknown_key = Vec::new();
    unknown_key.put_i32(8);
    unknown_key.put_i16(999);
    unknown_key.put_i16(0);
    unknown_key.put_i32(1);
    let mut not_served = Vec::new();
    not_served.put_i32(10);
    not_served.put_i16(ApiKey::JoinGroup as i16);
    not_served.put_i16(5);
    not_served.put_i32(1);
    not_served.put_i16(-1);
    let mut trailing = request(ApiKey::Metadata, 12, 1, &MetadataRequest::default());
    trailing.extend_from_slice(b"xyz");
    let size = (trailing.len() - 4) as i32;
    trailing[..4].copy_from_slice(&size.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("above socket.request.max.bytes", oversized),
        ("unknown api key", unknown_key),
        ("api not served", not_served),
        ("bytes after the body", trailing),
        (
            "header shorter than its fixed part",
            vec![0, 0, 0, 3, 0, 3, 0],
        ),
    ];
    for (what, bytes) in cases {
        let mut s = TcpStream::connect(served.addr).await.expect("connect");
        s.write_all(&bytes).await.expect(what);
        assert!(closed(&mut s).await, "{what}: answered");
    }
    // ApiVersions above the served range: UNSUPPORTED_VERSION, in v0.
    let mut s = TcpStream::connect(served.addr).await.expect("connect");
    let mut future = Vec::new();
    future.put_i32(12);
    future.put_i16(ApiKey::ApiVersions as i16);
    future.put_i16(9);
    future.put_i32(77);
    future.put_i32(0);
    s.write_all(&future).await.expect("send");
    let (id, mut body) = response(&mut s, ApiKey::ApiVersions, 0).await;
    assert_eq!(id, 77);
    let answer = ApiVersionsResponse::decode(&mut body, 0).expect("v0");
    assert_eq!(answer.error_code, 35);
    assert_eq!(answer.api_keys.len(), 1);
    assert_eq!(
        (
            answer.api_keys[0].min_version,
            answer.api_keys[0].max_version
        ),
        (0, 4)
    );

    good.write_all(&request(
        ApiKey::ApiVersions,
        3,
        5,
        &ApiVersionsRequest::default(),
    ))
    .await
    .expect("send");
    assert_eq!(response(&mut good, ApiKey::ApiVersions, 3).await.0, 5);
    served.stop.cancel();
    served.task.await.expect("listener stops");
}

#[tokio::test]
async fn idle_connections_are_closed_and_busy_ones_kept() {
    let served = serve(ListenerConfig {
        idle_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut idle = TcpStream::connect(served.addr).await.expect("connect");
    let mut busy = TcpStream::connect(served.addr).await.expect("connect");
    for i in 0..6 {
        busy.write_all(&request(
            ApiKey::ApiVersions,
            3,
            i,
            &ApiVersionsRequest::default(),
        ))
        .await
        .expect("send");
        assert_eq!(response(&mut busy, ApiKey::ApiVersions, 3).await.0, i);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed(&mut idle).await, "idle connection kept");
    served.stop.cancel();
    served.task.await.expect("listener stops");
}

#[tokio::test]
async fn stopping_the_listener_ends_its_connections() {
    let served = serve(ListenerConfig::default()).await;
    let mut s = TcpStream::connect(served.addr).await.expect("connect");
    s.write_all(&request(
        ApiKey::ApiVersions,
        3,
        1,
        &ApiVersionsRequest::default(),
    ))
    .await
    .expect("send");
    assert_eq!(response(&mut s, ApiKey::ApiVersions, 3).await.0, 1);
    served.stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), served.task)
        .await
        .expect("the listener waits for its connections and stops")
        .expect("no panic");
    assert!(closed(&mut s).await, "the connection outlived the listener");
}

/// A request header (v1, or v2 for flexible versions) followed by `body`,
/// framed.
fn raw_request(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test")))
        .encode(&mut buf, key.request_header_version(version))
        .expect("header");
    buf.put_slice(body);
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

/// Lengths that announce far more than the frame holds: a decoder that
/// sized its `Vec` from them before reading would ask for hundreds of GiB
/// and abort the whole process (an allocation failure is not a panic).
#[tokio::test]
async fn huge_declared_lengths_close_only_their_connection() {
    let served = serve(ListenerConfig::default()).await;
    let mut good = TcpStream::connect(served.addr).await.expect("connect");
    // Metadata v1: topics is an int32-length array.
    let array = i32::MAX.to_be_bytes().to_vec();
    // Metadata v12 (flexible): topics is a compact array, its length an
    // unsigned varint (u32::MAX here).
    let compact_array = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    // CreateTopics v4: topics array holding one topic whose name is fine
    // and whose assignments array is huge.
    let mut nested = Vec::new();
    nested.put_i32(1);
    nested.put_i16(1);
    nested.put_slice(b"t");
    nested.put_i32(1);
    nested.put_i16(1);
    nested.put_i32(i32::MAX);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "metadata v1 array of i32::MAX topics",
            raw_request(ApiKey::Metadata, 1, 1, &array),
        ),
        (
            "metadata v12 compact array of u32::MAX topics",
            raw_request(ApiKey::Metadata, 12, 2, &compact_array),
        ),
        (
            "create topics v4 nested array of i32::MAX assignments",
            raw_request(ApiKey::CreateTopics, 4, 3, &nested),
        ),
    ];
    for (what, bytes) in cases {
        let mut s = TcpStream::connect(served.addr).await.expect("connect");
        s.write_all(&bytes).await.expect(what);
        assert!(closed(&mut s).await, "{what}: answered");
    }
    good.write_all(&request(
        ApiKey::ApiVersions,
        3,
        9,
        &ApiVersionsRequest::default(),
    ))
    .await
    .expect("send");
    assert_eq!(response(&mut good, ApiKey::ApiVersions, 3).await.0, 9);
    served.stop.cancel();
    served.task.await.expect("listener stops");
}

/// The admin APIs answer from the core they translate to: DescribeCluster
/// and DescribeLogDirs from this broker (an empty image, an empty log
/// directory), DescribeConfigs and ElectLeaders from the controller quorum,
/// which this broker cannot reach (no voters): one error per resource, as
/// Kafka answers, never a closed connection.
#[tokio::test]
async fn admin_requests_are_answered_from_the_core() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{
        DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
        DescribeConfigsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse,
        ElectLeadersRequest, ElectLeadersResponse, TopicName,
    };

    let served = serve(ListenerConfig::default()).await;
    let mut s = TcpStream::connect(served.addr).await.expect("connect");

    s.write_all(&request(
        ApiKey::DescribeCluster,
        1,
        1,
        &DescribeClusterRequest::default().with_endpoint_type(1),
    ))
    .await
    .expect("send");
    let (id, mut body) = response(&mut s, ApiKey::DescribeCluster, 1).await;
    assert_eq!(id, 1);
    let cluster = DescribeClusterResponse::decode(&mut body, 1).expect("v1");
    assert_eq!((cluster.error_code, cluster.controller_id.0), (0, 1));
    assert!(cluster.brokers.is_empty());

    // Controllers' endpoints are not a broker's to describe.
    s.write_all(&request(
        ApiKey::DescribeCluster,
        1,
        2,
        &DescribeClusterRequest::default().with_endpoint_type(2),
    ))
    .await
    .expect("send");
    let (_, mut body) = response(&mut s, ApiKey::DescribeCluster, 1).await;
    let refused = DescribeClusterResponse::decode(&mut body, 1).expect("v1");
    assert_eq!(
        refused.error_code,
        strom_kafka::errors::UNSUPPORTED_ENDPOINT_TYPE
    );

    s.write_all(&request(
        ApiKey::DescribeLogDirs,
        4,
        3,
        &DescribeLogDirsRequest::default().with_topics(None),
    ))
    .await
    .expect("send");
    let (_, mut body) = response(&mut s, ApiKey::DescribeLogDirs, 4).await;
    let dirs = DescribeLogDirsResponse::decode(&mut body, 4).expect("v4");
    assert_eq!(dirs.results.len(), 1);
    assert_eq!(dirs.results[0].error_code, 0);
    assert!(dirs.results[0].log_dir.ends_with("logs"), "{dirs:?}");
    assert!(dirs.results[0].topics.is_empty());

    let resources = vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("t")),
        DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str("1")),
    ];
    s.write_all(&request(
        ApiKey::DescribeConfigs,
        4,
        4,
        &DescribeConfigsRequest::default().with_resources(resources),
    ))
    .await
    .expect("send");
    let (_, mut body) = response(&mut s, ApiKey::DescribeConfigs, 4).await;
    let configs = DescribeConfigsResponse::decode(&mut body, 4).expect("v4");
    let answered: Vec<(i8, &str, bool)> = configs
        .results
        .iter()
        .map(|r| (r.resource_type, r.resource_name.as_str(), r.error_code != 0))
        .collect();
    assert_eq!(answered, [(2, "t", true), (4, "1", true)]);

    let elect = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_topic_partitions(Some(vec![
            TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![0, 1]),
        ]));
    s.write_all(&request(ApiKey::ElectLeaders, 2, 5, &elect))
        .await
        .expect("send");
    let (_, mut body) = response(&mut s, ApiKey::ElectLeaders, 2).await;
    let elected = ElectLeadersResponse::decode(&mut body, 2).expect("v2");
    let partitions: Vec<(i32, bool)> = elected.replica_election_results[0]
        .partition_result
        .iter()
        .map(|p| (p.partition_id, p.error_code != 0))
        .collect();
    assert_eq!(partitions, [(0, true), (1, true)]);
    served.stop.cancel();
    served.task.await.expect("listener stops");
}
