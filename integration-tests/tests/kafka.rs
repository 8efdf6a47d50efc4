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
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom_integration_tests::data::{Addrs, wait_leader_serving};
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
}
