//! The Kafka wire-protocol listener (`--kafka-listen`) against real
//! `stromd` processes: bad input on raw sockets, and real Kafka clients —
//! kcat (librdkafka's CLI) and confluent-kafka (Python, bundling
//! librdkafka), in `needs_kafka_clients` (scripts/env.sh installs them and
//! CI fails rather than skips without them). Records cross between the
//! gRPC and Kafka front ends byte for byte.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom_integration_tests::data::{
    Addrs, Outcome, batch, check_acked, partition_state_any, produce_retrying, read_from_leader,
    records, wait_leader_serving,
};
use strom_integration_tests::{Cluster, ClusterOptions, binary, wait_until};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A request frame as a Kafka client sends it.
fn request(key: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Vec<u8> {
    let mut encoded = BytesMut::new();
    body.encode(&mut encoded, version).expect("body encodes");
    framed(key, version, correlation_id, &encoded)
}

/// A valid request header followed by `body`, framed.
fn framed(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("kafka-it")))
        .encode(&mut buf, key.request_header_version(version))
        .expect("header encodes");
    buf.put_slice(body);
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the kafka listener");
    s.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    s
}

/// One response frame: its header (version `header_version`) and body.
fn read_response(s: &mut TcpStream, header_version: i16) -> (i32, Bytes) {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("response size");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).expect("response body");
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, header_version).expect("response header");
    (header.correlation_id, body)
}

/// Whether the broker closed `s` (EOF or reset) without answering.
fn closed_by_broker(s: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(s.read(&mut byte), Ok(0) | Err(_))
}

fn api_versions(s: &mut TcpStream, correlation_id: i32) -> ApiVersionsResponse {
    s.write_all(&request(
        ApiKey::ApiVersions,
        3,
        correlation_id,
        &ApiVersionsRequest::default(),
    ))
    .expect("send");
    let (id, mut body) = read_response(s, 0);
    assert_eq!(id, correlation_id);
    ApiVersionsResponse::decode(&mut body, 3).expect("api versions response")
}

fn end_offset(s: &mut TcpStream, topic: &str) -> i64 {
    let req = ListOffsetsRequest::default().with_topics(vec![
        ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![
                ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1),
            ]),
    ]);
    s.write_all(&request(ApiKey::ListOffsets, 5, 99, &req))
        .expect("send");
    let (_, mut body) = read_response(s, 0);
    let resp = ListOffsetsResponse::decode(&mut body, 5).expect("list offsets response");
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "{resp:?}");
    p.offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_its_connection_and_writes_nothing() {
    let cluster = Cluster::start(
        1,
        ClusterOptions::default()
            .kafka()
            .set("connections.max.idle.ms", "2000"),
    )
    .await;
    cluster
        .create_topic(1, "bad", 1, 1, &[])
        .await
        .expect("create topic");
    let addrs = Addrs::of(&cluster);
    wait_leader_serving(&addrs, "bad", 0, TIMEOUT)
        .await
        .expect("a serving leader");
    let kafka = cluster.node(1).kafka_addr();
    tokio::task::spawn_blocking(move || {
        let mut good = connect(&kafka);
        let served = api_versions(&mut good, 1);
        assert_eq!(served.error_code, 0);
        assert!(
            served
                .api_keys
                .iter()
                .any(|k| k.api_key == ApiKey::Produce as i16)
        );

        // Each of these closes its own connection, unanswered.
        let mut too_large = Vec::new();
        too_large.put_i32(104_857_601);
        let mut unknown_key = Vec::new();
        unknown_key.put_i32(8);
        unknown_key.put_i16(999);
        unknown_key.put_i16(0);
        unknown_key.put_i32(1);
        let mut produce_v2 = Vec::new();
        produce_v2.put_i32(10);
        produce_v2.put_i16(ApiKey::Produce as i16);
        produce_v2.put_i16(2);
        produce_v2.put_i32(1);
        produce_v2.put_i16(-1);
        // A valid Produce v9 header, then garbage where the body goes.
        let garbage = framed(ApiKey::Produce, 9, 5, &[0xde, 0xad, 0xbe, 0xef]);
        let mut negative = Vec::new();
        negative.put_i32(-5);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("frame above socket.request.max.bytes", too_large),
            ("unknown api key", unknown_key),
            ("version not served", produce_v2),
            ("garbage after a valid header", garbage),
            ("negative frame size", negative),
        ];
        for (what, bytes) in cases {
            let mut s = connect(&kafka);
            s.write_all(&bytes).expect(what);
            assert!(closed_by_broker(&mut s), "{what}: the broker answered");
        }
        // A truncated frame: the client goes away mid-frame.
        {
            let mut s = connect(&kafka);
            s.write_all(&[0, 0, 0, 100, 0, 3, 0, 1])
                .expect("partial frame");
            s.shutdown(std::net::Shutdown::Write).expect("half close");
            assert!(closed_by_broker(&mut s), "truncated frame");
        }
        // ApiVersions from the future: UNSUPPORTED_VERSION in v0, with
        // ApiVersions' own range.
        {
            let mut s = connect(&kafka);
            let mut frame = Vec::new();
            frame.put_i32(12);
            frame.put_i16(ApiKey::ApiVersions as i16);
            frame.put_i16(77);
            frame.put_i32(31);
            frame.put_i16(-1);
            frame.put_i16(0);
            s.write_all(&frame).expect("send");
            let (id, mut body) = read_response(&mut s, 0);
            assert_eq!(id, 31);
            let resp = ApiVersionsResponse::decode(&mut body, 0).expect("v0 response");
            assert_eq!(resp.error_code, 35);
            assert_eq!(resp.api_keys.len(), 1);
            assert_eq!(resp.api_keys[0].api_key, ApiKey::ApiVersions as i16);
        }
        // The good connection still serves, pipelined, in order; nothing
        // was written.
        let metadata = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("bad")))),
        ]));
        let mut pipelined = request(ApiKey::Metadata, 12, 10, &metadata);
        pipelined.extend(request(
            ApiKey::ApiVersions,
            3,
            11,
            &ApiVersionsRequest::default(),
        ));
        pipelined.extend(request(ApiKey::Metadata, 4, 12, &metadata));
        good.write_all(&pipelined).expect("pipelined requests");
        let (id, mut body) = read_response(&mut good, 1);
        assert_eq!(id, 10);
        let m = MetadataResponse::decode(&mut body, 12).expect("metadata v12");
        assert_eq!(m.topics[0].error_code, 0);
        assert_eq!(m.topics[0].partitions.len(), 1);
        assert_eq!(m.brokers.len(), 1);
        assert_eq!(read_response(&mut good, 0).0, 11);
        assert_eq!(read_response(&mut good, 0).0, 12);
        assert_eq!(end_offset(&mut good, "bad"), 0, "nothing was written");

        // A client that sends nothing for connections.max.idle.ms is closed.
        let started = Instant::now();
        let mut idle = connect(&kafka);
        assert!(closed_by_broker(&mut idle), "idle connection");
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "closed too early"
        );
    })
    .await
    .expect("bad input checks");
}

/// Requests whose array lengths announce far more than the frame holds
/// (kafka-protocol 0.18.0 sized its `Vec`s from them and aborted the
/// process; vendor/kafka-protocol/PATCHES.md): each closes its own
/// connection and the node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_declared_lengths_do_not_take_stromd_down() {
    let mut cluster = Cluster::start(1, ClusterOptions::default().kafka()).await;
    let kafka = cluster.node(1).kafka_addr();
    let checked = tokio::task::spawn_blocking(move || {
        let mut good = connect(&kafka);
        assert_eq!(api_versions(&mut good, 1).error_code, 0);
        let mut nested = Vec::new();
        nested.put_i32(1);
        nested.put_i16(1);
        nested.put_slice(b"t");
        nested.put_i32(1);
        nested.put_i16(1);
        nested.put_i32(i32::MAX);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "metadata v1, i32::MAX topics",
                framed(ApiKey::Metadata, 1, 2, &i32::MAX.to_be_bytes()),
            ),
            (
                "metadata v12, u32::MAX topics (compact array)",
                framed(ApiKey::Metadata, 12, 3, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
            ),
            (
                "create topics v4, i32::MAX assignments in a topic",
                framed(ApiKey::CreateTopics, 4, 4, &nested),
            ),
        ];
        for (what, bytes) in cases {
            let mut s = connect(&kafka);
            s.write_all(&bytes).expect(what);
            assert!(closed_by_broker(&mut s), "{what}: the broker answered");
        }
        assert_eq!(
            api_versions(&mut good, 5).error_code,
            0,
            "the good connection serves"
        );
        assert_eq!(
            api_versions(&mut connect(&kafka), 6).error_code,
            0,
            "new connections are served"
        );
    })
    .await;
    assert!(
        cluster.running().contains(&1),
        "stromd exited:\n{}",
        cluster.dump_logs()
    );
    checked.expect("huge length checks");
}

// Kafka's fetch session error codes (KIP-227).
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

/// One Fetch on `s` at `version` (blocking the test's worker, as a
/// client would).
fn fetch(s: &mut TcpStream, version: i16, req: &FetchRequest) -> FetchResponse {
    tokio::task::block_in_place(|| {
        s.write_all(&request(ApiKey::Fetch, version, 7, req))
            .expect("send fetch");
        let (id, mut body) = read_response(s, ApiKey::Fetch.response_header_version(version));
        assert_eq!(id, 7);
        FetchResponse::decode(&mut body, version).expect("fetch response")
    })
}

/// A consumer's Fetch in session `(id, epoch)` carrying `topic`'s
/// `(partition, fetch offset)`s and forgetting its partitions `forget`.
fn session_fetch(
    id: i32,
    epoch: i32,
    topic: &str,
    parts: &[(i32, i64)],
    forget: &[i32],
) -> FetchRequest {
    let name = TopicName(StrBytes::from_string(topic.into()));
    let mut req = FetchRequest::default()
        .with_max_wait_ms(200)
        .with_min_bytes(1)
        .with_session_id(id)
        .with_session_epoch(epoch);
    if !parts.is_empty() {
        req = req.with_topics(vec![
            FetchTopic::default()
                .with_topic(name.clone())
                .with_partitions(
                    parts
                        .iter()
                        .map(|(p, o)| {
                            FetchPartition::default()
                                .with_partition(*p)
                                .with_fetch_offset(*o)
                                .with_partition_max_bytes(1 << 20)
                        })
                        .collect(),
                ),
        ]);
    }
    if !forget.is_empty() {
        req = req.with_forgotten_topics_data(vec![
            ForgottenTopic::default()
                .with_topic(name)
                .with_partitions(forget.to_vec()),
        ]);
    }
    req
}

/// `(partition, high watermark, record offsets)` of each partition an
/// answer holds, in order; every one without error.
fn answered(r: &FetchResponse) -> Vec<(i32, i64, Vec<i64>)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            assert_eq!(p.error_code, 0, "{r:?}");
            let offsets = p
                .records
                .clone()
                .map(|b| records(b).into_iter().map(|(o, _)| o).collect())
                .unwrap_or_default();
            (p.partition_index, p.high_watermark, offsets)
        })
        .collect()
}

/// KIP-227 on a real `stromd`, on raw sockets: a full fetch at epoch 0
/// creates a session; incremental fetches carry only what changed and are
/// answered only with partitions that have something new; forgotten
/// partitions leave the session; a wrong epoch, an unknown session and a
/// switch between topic names and ids refuse the request whole and change
/// nothing; a session outlives its connection; the cache holds
/// `max.incremental.fetch.session.cache.slots` sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_fetch_sessions_follow_kafkas_rules() {
    let cluster = Cluster::start(
        1,
        ClusterOptions::default()
            .kafka()
            .set("max.incremental.fetch.session.cache.slots", "2"),
    )
    .await;
    cluster
        .create_topic(1, "sess", 2, 1, &[])
        .await
        .expect("create topic");
    let addrs = Addrs::of(&cluster);
    for p in 0..2 {
        wait_leader_serving(&addrs, "sess", p, TIMEOUT)
            .await
            .expect("a serving leader");
    }
    let produce = async |partition: i32, n: usize| {
        for i in 0..n {
            let value = Bytes::from(format!("sess-{partition}-{i}"));
            let deadline = Instant::now() + TIMEOUT;
            let o = produce_retrying(&addrs, "sess", partition, batch(&[value]), deadline).await;
            assert!(matches!(o, Outcome::Acked(_)), "{o:?}");
        }
    };
    produce(0, 3).await;
    let kafka = cluster.node(1).kafka_addr();
    let v = 12;
    let mut s = connect(&kafka);

    // Epoch 0: a full fetch creates a session, every partition answered.
    let r = fetch(
        &mut s,
        v,
        &session_fetch(0, 0, "sess", &[(0, 0), (1, 0)], &[]),
    );
    assert_eq!(r.error_code, 0, "{r:?}");
    let id = r.session_id;
    assert_ne!(id, 0, "a session was created");
    assert_eq!(answered(&r), [(0, 3, vec![0, 1, 2]), (1, 0, Vec::new())]);

    // Epoch 1 moves partition 0 past its records: nothing is new, the
    // answer is empty.
    let r = fetch(&mut s, v, &session_fetch(id, 1, "sess", &[(0, 3)], &[]));
    assert_eq!((r.error_code, r.session_id), (0, id), "{r:?}");
    assert!(answered(&r).is_empty(), "{r:?}");

    // Records in partition 1 only: the answer holds partition 1 alone, read
    // at the offset the session keeps. On another connection: a session
    // belongs to the broker.
    produce(1, 2).await;
    let mut s = connect(&kafka);
    let r = fetch(&mut s, v, &session_fetch(id, 2, "sess", &[], &[]));
    assert_eq!(r.session_id, id);
    assert_eq!(answered(&r), [(1, 2, vec![0, 1])]);

    // A replayed epoch is refused whole; the session is unchanged.
    let r = fetch(&mut s, v, &session_fetch(id, 2, "sess", &[(1, 2)], &[]));
    assert_eq!(
        (r.error_code, r.session_id, r.responses.len()),
        (INVALID_FETCH_SESSION_EPOCH, 0, 0),
        "{r:?}"
    );
    let r = fetch(&mut s, v, &session_fetch(id, 3, "sess", &[(1, 2)], &[]));
    assert_eq!((r.error_code, r.session_id), (0, id), "{r:?}");
    assert!(answered(&r).is_empty(), "{r:?}");

    // Forgotten, partition 0's new record is not answered; added back, it is.
    let r = fetch(&mut s, v, &session_fetch(id, 4, "sess", &[], &[0]));
    assert!(answered(&r).is_empty(), "{r:?}");
    produce(0, 1).await;
    let r = fetch(&mut s, v, &session_fetch(id, 5, "sess", &[], &[]));
    assert_eq!((r.error_code, r.session_id), (0, id), "{r:?}");
    assert!(answered(&r).is_empty(), "partition 0 left the session");
    let r = fetch(&mut s, v, &session_fetch(id, 6, "sess", &[(0, 3)], &[]));
    assert_eq!(answered(&r), [(0, 4, vec![3])]);

    // The session names topics by name (v12): continued by id (v13) it is
    // FETCH_SESSION_TOPIC_ID_ERROR; an unknown session
    // FETCH_SESSION_ID_NOT_FOUND. Neither changes the session.
    let r = fetch(&mut s, 13, &session_fetch(id, 7, "sess", &[], &[]));
    assert_eq!(
        (r.error_code, r.session_id),
        (FETCH_SESSION_TOPIC_ID_ERROR, 0)
    );
    let other = if id == i32::MAX { 1 } else { id + 1 };
    let r = fetch(&mut s, v, &session_fetch(other, 1, "sess", &[], &[]));
    assert_eq!(
        (r.error_code, r.session_id),
        (FETCH_SESSION_ID_NOT_FOUND, 0)
    );
    let r = fetch(&mut s, v, &session_fetch(id, 7, "sess", &[(0, 4)], &[]));
    assert_eq!((r.error_code, r.session_id), (0, id), "{r:?}");

    // Two slots: a second session is created; a third is not (both held
    // sessions are recent and as large), yet its full answer comes.
    let full = session_fetch(0, 0, "sess", &[(0, 0), (1, 0)], &[]);
    let second = fetch(&mut s, v, &full).session_id;
    assert!(second != 0 && second != id);
    let r = fetch(&mut s, v, &full);
    assert_eq!(r.session_id, 0, "no room for a third session");
    assert_eq!(answered(&r).len(), 2, "{r:?}");
    // Epoch -1 closes the second session and makes room.
    let r = fetch(
        &mut s,
        v,
        &session_fetch(second, -1, "sess", &[(0, 0)], &[]),
    );
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(answered(&r).len(), 1);
    let r = fetch(&mut s, v, &session_fetch(second, 1, "sess", &[], &[]));
    assert_eq!(r.error_code, FETCH_SESSION_ID_NOT_FOUND);
    assert_ne!(fetch(&mut s, v, &full).session_id, 0, "room again");
    // The first session lives on.
    let r = fetch(&mut s, v, &session_fetch(id, 8, "sess", &[], &[]));
    assert_eq!((r.error_code, r.session_id), (0, id), "{r:?}");
}

/// Tests that run real Kafka clients (kcat, confluent-kafka).
mod needs_kafka_clients {
    use super::*;

    fn run(cmd: &mut Command, stdin: &str) -> Output {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    fn kcat(bootstrap: &str) -> Command {
        let mut c = Command::new("kcat");
        c.arg("-b").arg(bootstrap);
        c
    }

    fn python() -> Command {
        let python = std::env::var("STROM_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut c = Command::new(python);
        c.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/kafka/confluent_client.py"
        ));
        c
    }

    /// `integration-tests/kafka/SCRIPT` under the test Python.
    fn python_script(script: &str) -> Command {
        let python = std::env::var("STROM_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut c = Command::new(python);
        c.arg(format!("{}/kafka/{script}", env!("CARGO_MANIFEST_DIR")));
        c
    }

    /// One JSON object printed by an admin script run with `args`.
    fn admin(script: &str, args: &[&str]) -> serde_json::Value {
        let out = run(python_script(script).args(args), "");
        let line = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{args:?}: {line}: {e}"))
    }

    fn strom(cluster: &Cluster) -> Command {
        let mut c = Command::new(binary("strom", "STROM_BIN"));
        c.arg("--bootstrap-server").arg(cluster.bootstrap());
        c
    }

    /// `key:value` lines.
    fn lines(prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{prefix}-k{i}:{prefix} value {i} ü ✓"))
            .collect()
    }

    fn json_lines(out: &Output) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    fn key_values(records: &[serde_json::Value]) -> Vec<String> {
        records
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r["key"].as_str().unwrap_or(""),
                    r["value"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    async fn cluster_with_topic(topic: &str) -> Cluster {
        let cluster = Cluster::start(3, ClusterOptions::default().kafka()).await;
        cluster
            .create_topic(1, topic, 1, 3, &[])
            .await
            .expect("create topic");
        let addrs = Addrs::of(&cluster);
        wait_leader_serving(&addrs, topic, 0, TIMEOUT)
            .await
            .expect("a serving leader");
        cluster
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kcat_lists_metadata_produces_and_consumes() {
        let cluster = cluster_with_topic("kcat").await;
        let bootstrap = cluster.kafka_bootstrap();
        let expected_brokers: Vec<String> =
            cluster.nodes.values().map(|n| n.kafka_addr()).collect();
        tokio::task::spawn_blocking(move || {
            let out = run(kcat(&bootstrap).args(["-L", "-J", "-t", "kcat"]), "");
            let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kcat -L -J");
            let mut brokers: Vec<String> = meta["brokers"]
                .as_array()
                .expect("brokers")
                .iter()
                .map(|b| b["name"].as_str().expect("name").to_owned())
                .collect();
            brokers.sort();
            let mut want = expected_brokers.clone();
            want.sort();
            assert_eq!(brokers, want, "{meta}");
            let topic = &meta["topics"][0];
            assert_eq!(topic["topic"], "kcat", "{meta}");
            let p = &topic["partitions"][0];
            assert_eq!(
                p["replicas"].as_array().expect("replicas").len(),
                3,
                "{meta}"
            );
            assert_eq!(p["isrs"].as_array().expect("isrs").len(), 3, "{meta}");
            assert!(p["leader"].as_i64().expect("leader") >= 1, "{meta}");

            let sent = lines("kcat", 50);
            run(
                kcat(&bootstrap).args(["-P", "-t", "kcat", "-p", "0", "-K", ":"]),
                &(sent.join("\n") + "\n"),
            );
            let out = run(
                kcat(&bootstrap).args([
                    "-C",
                    "-t",
                    "kcat",
                    "-p",
                    "0",
                    "-o",
                    "beginning",
                    "-c",
                    "50",
                    "-e",
                    "-f",
                    "%k:%s\n",
                ]),
                "",
            );
            let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned)
                .collect();
            assert_eq!(got, sent);
        })
        .await
        .expect("kcat checks");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn confluent_idempotent_producer_and_assigned_consumer() {
        let cluster = cluster_with_topic("confluent").await;
        let bootstrap = cluster.kafka_bootstrap();
        tokio::task::spawn_blocking(move || {
            let sent = lines("ck", 200);
            let out = run(
                python().args(["produce", &bootstrap, "confluent", "0"]),
                &sent.join("\n"),
            );
            let acked = json_lines(&out);
            assert_eq!(acked.len(), 200);
            let offsets: Vec<i64> = acked
                .iter()
                .map(|r| r["offset"].as_i64().expect("offset"))
                .collect();
            assert_eq!(
                offsets,
                (0..200).collect::<Vec<_>>(),
                "idempotent: each record once, in order"
            );
            let out = run(
                python().args(["consume", &bootstrap, "confluent", "0", "200"]),
                "",
            );
            assert_eq!(key_values(&json_lines(&out)), sent);
        })
        .await
        .expect("confluent-kafka checks");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_cross_between_grpc_and_kafka_byte_for_byte() {
        let cluster = cluster_with_topic("mixed").await;
        let bootstrap = cluster.kafka_bootstrap();
        let c = &cluster;
        tokio::task::block_in_place(|| {
            // gRPC in (strom produce), Kafka out (kcat).
            let over_grpc = lines("grpc", 30);
            run(
                strom(c).args([
                    "produce",
                    "--topic",
                    "mixed",
                    "--partition",
                    "0",
                    "--key-separator",
                    ":",
                ]),
                &(over_grpc.join("\n") + "\n"),
            );
            let out = run(
                kcat(&bootstrap).args([
                    "-C",
                    "-t",
                    "mixed",
                    "-p",
                    "0",
                    "-o",
                    "beginning",
                    "-c",
                    "30",
                    "-e",
                    "-f",
                    "%k:%s\n",
                ]),
                "",
            );
            let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned)
                .collect();
            assert_eq!(got, over_grpc);
            // Kafka in (confluent-kafka), gRPC out (strom consume).
            let over_kafka = lines("kafka", 30);
            run(
                python().args(["produce", &bootstrap, "mixed", "0"]),
                &over_kafka.join("\n"),
            );
            let out = run(
                strom(c).args([
                    "--output",
                    "json",
                    "consume",
                    "--topic",
                    "mixed",
                    "--partition",
                    "0",
                    "--offset",
                    "earliest",
                    "--max-messages",
                    "60",
                    "--print-key",
                ]),
                "",
            );
            let all = key_values(&json_lines(&out));
            assert_eq!(all, [over_grpc.clone(), over_kafka].concat());
        });
    }

    /// confluent-kafka's AdminClient: DescribeCluster, DescribeConfigs,
    /// IncrementalAlterConfigs and AlterConfigs (an unknown key refused,
    /// nothing changed), CreatePartitions, DeleteRecords and ElectLeaders,
    /// each answered by the same controller or replica-manager call as
    /// over gRPC.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn confluent_admin_client_configs_partitions_records_and_cluster() {
        let cluster = cluster_with_topic("admin").await;
        let bootstrap = cluster.kafka_bootstrap();
        let kafka_ports: Vec<i64> = (1..=3)
            .map(|id| {
                let addr = cluster.node(id).kafka_addr();
                addr.rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("port")
            })
            .collect();
        let b = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            let bootstrap = b;
            let a = "confluent_admin.py";
            let described = admin(a, &["describe-cluster", &bootstrap]);
            assert!(
                !described["cluster_id"].as_str().unwrap_or("").is_empty(),
                "{described}"
            );
            let ports: Vec<i64> = described["brokers"]
                .as_array()
                .expect("brokers")
                .iter()
                .map(|b| b["port"].as_i64().expect("port"))
                .collect();
            assert_eq!(
                ports, kafka_ports,
                "brokers at their Kafka listeners: {described}"
            );

            let config = |name: &str| {
                let d = admin(a, &["describe-configs", &bootstrap, "topic", "admin"]);
                d["configs"][name].clone()
            };
            assert_eq!(config("retention.ms")["source"], "DEFAULT_CONFIG");
            let ok = admin(
                a,
                &[
                    "alter-configs",
                    &bootstrap,
                    "topic",
                    "admin",
                    "set:retention.ms=3600000",
                ],
            );
            assert_eq!(ok["ok"], true, "{ok}");
            let retention = config("retention.ms");
            assert_eq!(
                (retention["value"].as_str(), retention["source"].as_str()),
                (Some("3600000"), Some("DYNAMIC_TOPIC_CONFIG")),
                "{retention}"
            );
            // An unknown key refuses the whole resource: nothing changed.
            let refused = admin(
                a,
                &[
                    "alter-configs",
                    &bootstrap,
                    "topic",
                    "admin",
                    "set:retention.ms=7200000",
                    "set:no.such.config=1",
                ],
            );
            assert_eq!(refused["error"], "INVALID_CONFIG", "{refused}");
            assert_eq!(config("retention.ms")["value"], "3600000");
            let missing = admin(
                a,
                &["describe-configs", &bootstrap, "topic", "no-such-topic"],
            );
            assert_eq!(missing["error"], "UNKNOWN_TOPIC_OR_PART", "{missing}");
            // (librdkafka names UNKNOWN_TOPIC_OR_PARTITION so.)
            // AlterConfigs replaces the topic's own configs: retention.ms
            // is no longer set on the topic.
            let ok = admin(
                a,
                &[
                    "legacy-alter-configs",
                    &bootstrap,
                    "topic",
                    "admin",
                    "max.message.bytes=200000",
                ],
            );
            assert_eq!(ok["ok"], true, "{ok}");
            assert_eq!(config("retention.ms")["source"], "DEFAULT_CONFIG");
            let max = config("max.message.bytes");
            assert_eq!(
                (max["value"].as_str(), max["source"].as_str()),
                (Some("200000"), Some("DYNAMIC_TOPIC_CONFIG")),
                "{max}"
            );

            let ok = admin(a, &["create-partitions", &bootstrap, "admin", "3"]);
            assert_eq!(ok["ok"], true, "{ok}");
            let fewer = admin(a, &["create-partitions", &bootstrap, "admin", "2"]);
            assert_eq!(fewer["error"], "INVALID_PARTITIONS", "{fewer}");

            let sent = lines("dr", 10);
            run(
                python().args(["produce", &bootstrap, "admin", "0"]),
                &sent.join("\n"),
            );
            let deleted = admin(a, &["delete-records", &bootstrap, "admin", "0", "4"]);
            assert_eq!(deleted["low_watermark"], 4, "{deleted}");
            let beyond = admin(a, &["delete-records", &bootstrap, "admin", "0", "100"]);
            assert_eq!(beyond["error"], "OFFSET_OUT_OF_RANGE", "{beyond}");
            let out = run(
                python().args(["consume", &bootstrap, "admin", "0", "6"]),
                "",
            );
            assert_eq!(key_values(&json_lines(&out)), sent[4..].to_vec());

            let elected = admin(a, &["elect-leaders", &bootstrap, "preferred", "admin", "0"]);
            assert!(
                elected["result"].is_null() || elected["result"] == "ELECTION_NOT_NEEDED",
                "{elected}"
            );
            let unknown = admin(
                a,
                &[
                    "elect-leaders",
                    &bootstrap,
                    "preferred",
                    "no-such-topic",
                    "0",
                ],
            );
            assert_eq!(unknown["result"], "UNKNOWN_TOPIC_OR_PART", "{unknown}");
        })
        .await
        .expect("admin client checks");
        let m = cluster.metadata(1, &["admin"]).await.expect("metadata");
        assert_eq!(m.topics[0].partitions.len(), 3, "partitions created");
    }

    /// kafka-python's KafkaAdminClient: AlterPartitionReassignments moves a
    /// replica (a reassignment to an unknown broker refused as a whole),
    /// ListPartitionReassignments, DescribeLogDirs on the new replica's
    /// broker.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_python_admin_reassigns_and_describes_log_dirs() {
        let cluster = Cluster::start(3, ClusterOptions::default().kafka()).await;
        cluster
            .create_topic_assigned(1, "moving", &[&[1]], &[])
            .await
            .expect("create topic");
        let addrs = Addrs::of(&cluster);
        wait_leader_serving(&addrs, "moving", 0, TIMEOUT)
            .await
            .expect("a serving leader");
        let bootstrap = cluster.kafka_bootstrap();
        let b = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            let bootstrap = b;
            let a = "kafka_python_admin.py";
            run(
                python().args(["produce", &bootstrap, "moving", "0"]),
                &lines("mv", 20).join("\n"),
            );
            let refused = admin(a, &["reassign", &bootstrap, "moving", "0", "99"]);
            assert!(
                refused["error"].is_string() || refused["result"].is_string(),
                "a reassignment to an unknown broker is refused: {refused}"
            );
            let moved = admin(a, &["reassign", &bootstrap, "moving", "0", "2"]);
            assert!(moved["result"].is_null(), "{moved}");
            let listed = admin(a, &["list-reassignments", &bootstrap]);
            assert!(listed["reassignments"].is_array(), "{listed}");
        })
        .await
        .expect("reassignment requests");
        let moved = wait_until(TIMEOUT, || async {
            cluster
                .metadata(1, &["moving"])
                .await
                .is_ok_and(|m| m.topics[0].partitions[0].replicas == [2])
        })
        .await;
        assert!(moved, "the replica moved to broker 2");
        let b = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            let dirs = admin("kafka_python_admin.py", &["describe-log-dirs", &b, "2"]);
            let partitions = &dirs["dirs"][0]["partitions"];
            assert_eq!(dirs["dirs"][0]["error"], 0, "{dirs}");
            assert!(
                partitions
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["topic"] == "moving"
                        && p["partition"] == 0
                        && p["size"].as_i64().is_some_and(|s| s > 0))),
                "{dirs}"
            );
            let listed = admin("kafka_python_admin.py", &["list-reassignments", &b]);
            assert_eq!(listed["reassignments"], serde_json::json!([]), "{listed}");
        })
        .await
        .expect("log dirs");
    }

    /// kafka-python fetches in incremental sessions (librdkafka never
    /// does): records produced into partitions while it consumes reach it
    /// through incremental answers, and its session handler never finds
    /// an answer breaking KIP-227's rules.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_python_consumes_through_incremental_fetch_sessions() {
        let cluster = Cluster::start(1, ClusterOptions::default().kafka()).await;
        cluster
            .create_topic(1, "incr", 4, 1, &[])
            .await
            .expect("create topic");
        let addrs = Addrs::of(&cluster);
        for p in 0..4 {
            wait_leader_serving(&addrs, "incr", p, TIMEOUT)
                .await
                .expect("a serving leader");
        }
        let bootstrap = cluster.kafka_bootstrap();
        // Partitions 0 and 2 get records before the consumer starts, 1
        // while it runs (only through incremental fetches), 3 none.
        let plan: [(i32, usize); 2] = [(0, 30), (2, 20)];
        let mut sent = Vec::new();
        for (p, n) in plan {
            let values = lines(&format!("incr{p}"), n);
            run(
                python().args(["produce", &bootstrap, "incr", &p.to_string()]),
                &values.join("\n"),
            );
            sent.push((p, values));
        }
        let late = lines("incr1", 25);
        let total = 30 + 20 + late.len();
        let consumer = python_script("kafka_python_fetch.py")
            .args(["consume", &bootstrap, "incr", "4", &total.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kafka-python consumer");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let b = bootstrap.clone();
        let late_values = late.clone();
        tokio::task::spawn_blocking(move || {
            for chunk in late_values.chunks(5) {
                run(
                    python().args(["produce", &b, "incr", "1"]),
                    &chunk.join("\n"),
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        })
        .await
        .expect("late records");
        sent.push((1, late));
        let out = tokio::task::spawn_blocking(move || consumer.wait_with_output())
            .await
            .expect("consumer task")
            .expect("consumer output");
        assert!(
            out.status.success(),
            "consumer failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        let lines = json_lines(&out);
        let (summary, got) = lines.split_last().expect("a summary line");
        let sessions = &summary["sessions"];
        for (p, values) in &sent {
            let read: Vec<String> = got
                .iter()
                .filter(|r| r["partition"] == *p)
                .map(|r| r["value"].as_str().unwrap_or("").to_owned())
                .collect();
            let want: Vec<String> = values
                .iter()
                .map(|l| l.split_once(':').map_or("", |(_, v)| v).to_owned())
                .collect();
            assert_eq!(read, want, "partition {p}");
        }
        assert!(sessions["created"].as_i64() >= Some(1), "{sessions}");
        assert!(sessions["incremental"].as_i64() >= Some(1), "{sessions}");
        assert_eq!(sessions["invalid"], 0, "{sessions}");
        assert_eq!(sessions["refused"], 0, "{sessions}");
    }

    /// The replication tests' leader chase driven by librdkafka: an
    /// idempotent acks=all producer sends through the Kafka listener while
    /// the partition's leader is killed three times in a row. Every record
    /// acknowledged without error is read back, over gRPC and over Kafka,
    /// exactly once at its acknowledged offset; no value appears twice in
    /// the log (idempotence across the failovers).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn librdkafka_acked_records_survive_chasing_the_leader() {
        let mut cluster = Cluster::start(
            3,
            ClusterOptions::default()
                .kafka()
                .set("broker.session.timeout.ms", "3000")
                .set("broker.heartbeat.interval.ms", "500")
                .set("replica.lag.time.max.ms", "5000")
                .set("auto.leader.rebalance.enable", "false"),
        )
        .await;
        cluster
            .create_topic(1, "kchase", 1, 3, &[("min.insync.replicas", "2")])
            .await
            .expect("create topic");
        wait_full_isr(&cluster, "kchase").await;
        let bootstrap = cluster.kafka_bootstrap();
        let mut producer = python()
            .args(["chase", &bootstrap, "kchase", "0", "kchase"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the producer");
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let (old, epoch) = leader_of(&cluster, "kchase", None).await;
            cluster.kill(old);
            leader_of(&cluster, "kchase", Some((old, epoch))).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            cluster.start_node(old);
            wait_full_isr(&cluster, "kchase").await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        drop(producer.stdin.take());
        let out = tokio::task::spawn_blocking(move || producer.wait_with_output())
            .await
            .expect("producer task")
            .expect("producer output");
        assert!(
            out.status.success(),
            "producer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = json_lines(&out);
        let (summary, acked) = lines.split_last().expect("a summary line");
        let acked: Vec<(Bytes, i64)> = acked
            .iter()
            .map(|r| {
                (
                    Bytes::from(r["value"].as_str().expect("value").to_owned()),
                    r["offset"].as_i64().expect("offset"),
                )
            })
            .collect();
        assert!(
            acked.len() >= 100,
            "too few acknowledged records: {} ({summary})",
            acked.len()
        );
        // Over gRPC: every acknowledged record at its offset, nothing twice.
        let (hw, log) = read_from_leader(&cluster, "kchase", 0, TIMEOUT).await;
        let problems = check_acked(&acked, &log);
        assert!(
            problems.is_empty(),
            "lost or moved acknowledged records ({summary}): {:?}",
            &problems[..problems.len().min(10)]
        );
        let mut seen = std::collections::BTreeSet::new();
        let twice: Vec<&Bytes> = log
            .iter()
            .map(|(_, v)| v)
            .filter(|v| !seen.insert(*v))
            .collect();
        assert!(
            twice.is_empty(),
            "values written twice: {:?}",
            &twice[..twice.len().min(10)]
        );
        let max_acked = acked.iter().map(|(_, o)| *o).max().unwrap_or(-1);
        assert!(
            hw > max_acked,
            "high watermark {hw} below acked offset {max_acked}"
        );
        // Over Kafka (librdkafka): the same log, record for record.
        let b = bootstrap.clone();
        let n = log.len().to_string();
        let out = tokio::task::spawn_blocking(move || {
            run(python().args(["consume", &b, "kchase", "0", &n]), "")
        })
        .await
        .expect("kafka consumer");
        let over_kafka: Vec<(i64, String)> = json_lines(&out)
            .iter()
            .map(|r| {
                (
                    r["offset"].as_i64().expect("offset"),
                    r["value"].as_str().expect("value").to_owned(),
                )
            })
            .collect();
        let over_grpc: Vec<(i64, String)> = log
            .iter()
            .map(|(o, v)| (*o, String::from_utf8_lossy(v).into_owned()))
            .collect();
        assert_eq!(over_kafka, over_grpc);
    }

    /// The leader of `topic`-0 and its epoch; with `Some(old)`, waits for
    /// a leader other than `old.0` at a newer epoch.
    async fn leader_of(cluster: &Cluster, topic: &str, old: Option<(i32, i32)>) -> (i32, i32) {
        let addrs = Addrs::of(cluster);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some((l, e, _)) = partition_state_any(&addrs, topic, 0).await
                && l >= 0
                && old.is_none_or(|(o, oe)| l != o && e > oe)
            {
                return (l, e);
            }
            assert!(
                Instant::now() < deadline,
                "no (new) leader for {topic}-0\n{}",
                cluster.dump_logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until all three replicas of `topic`-0 are in the ISR and its
    /// leader serves.
    async fn wait_full_isr(cluster: &Cluster, topic: &str) {
        let addrs = Addrs::of(cluster);
        let full = wait_until(TIMEOUT, || async {
            partition_state_any(&addrs, topic, 0)
                .await
                .is_some_and(|(l, _, isr)| l >= 0 && isr.len() == 3)
        })
        .await;
        assert!(
            full,
            "{topic}-0 never had a full ISR\n{}",
            cluster.dump_logs()
        );
        wait_leader_serving(&addrs, topic, 0, TIMEOUT)
            .await
            .expect("a serving leader");
    }
}
