//! Consumer groups over Kafka's classic group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit/Fetch) against real
//! `stromd` processes: the classic requests are heartbeats of the same
//! group state machine gRPC members use (docs/kafka.md, "Consumer
//! groups").
//!
//! * Bad input on raw sockets: wrong protocol type, unknown member,
//!   stale generation: Kafka's error codes, and nothing changes.
//! * In `needs_kafka_clients` (confluent-kafka and kafka-python, from
//!   scripts/env.sh's venv): two members with `range` and with
//!   `cooperative-sticky` (and with KIP-848's ConsumerGroupHeartbeat) split
//!   the partitions, one leaves and the other
//!   takes over, a restarted member resumes at the committed offsets; a
//!   gRPC member and a Kafka member split one group's partitions.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, RequestHeader, ResponseHeader,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom_integration_tests::data::{Addrs, wait_leader_serving};
use strom_integration_tests::{Cluster, ClusterOptions, wait_until};

const TIMEOUT: Duration = Duration::from_secs(60);

const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const MEMBER_ID_REQUIRED: i16 = 79;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// A connection speaking the Kafka protocol, one request at a time.
struct Conn {
    stream: TcpStream,
    next_id: i32,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect to the kafka listener");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("read timeout");
        Conn { stream, next_id: 1 }
    }

    fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        let id = self.next_id;
        self.next_id += 1;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(s("kafka-groups-it")))
            .encode(&mut buf, key.request_header_version(version))
            .expect("header encodes");
        body.encode(&mut buf, version).expect("body encodes");
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).expect("send");
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).expect("response size");
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).expect("response body");
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, key.response_header_version(version))
            .expect("response header");
        assert_eq!(header.correlation_id, id);
        Resp::decode(&mut body, version).expect("response body decodes")
    }
}

/// The Kafka address of `group`'s coordinator, once it answers.
fn coordinator(bootstrap: &str, group: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut c = Conn::open(bootstrap);
        let r: FindCoordinatorResponse = c.call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(s(group))
                .with_key_type(0),
        );
        if r.error_code == 0 {
            return format!("{}:{}", r.host.as_str(), r.port);
        }
        assert!(
            Instant::now() < deadline,
            "no coordinator for {group}: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A connection to `group`'s coordinator once it serves the group (it
/// answers a heartbeat of an unknown member with UNKNOWN_MEMBER_ID, not
/// NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS), as a client retries.
fn coordinated(bootstrap: &str, group: &str) -> Conn {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut c = Conn::open(&coordinator(bootstrap, group));
        let r: HeartbeatResponse = c.call(
            ApiKey::Heartbeat,
            3,
            &HeartbeatRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_generation_id(1)
                .with_member_id(s("nobody")),
        );
        if r.error_code == UNKNOWN_MEMBER_ID {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "the coordinator of {group} never served it: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn subscription(topic: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    ConsumerProtocolSubscription::default()
        .with_topics(vec![s(topic)])
        .encode(&mut buf, 1)
        .expect("subscription encodes");
    buf.freeze()
}

fn join(group: &str, member: &str, protocol_type: &str, topic: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(60_000)
        .with_member_id(s(member))
        .with_protocol_type(s(protocol_type))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(subscription(topic)),
        ])
}

fn commit(
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset),
                ]),
        ])
}

fn committed(c: &mut Conn, group: &str, topic: &str) -> i64 {
    let r: OffsetFetchResponse = c.call(
        ApiKey::OffsetFetch,
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_indexes(vec![0]),
            ])),
    );
    assert_eq!(r.error_code, 0, "{r:?}");
    r.topics[0].partitions[0].committed_offset
}

async fn cluster_with_topic(topic: &str, partitions: i32) -> Cluster {
    let cluster = Cluster::start(3, ClusterOptions::default().kafka()).await;
    cluster
        .create_topic(1, topic, partitions, 3, &[])
        .await
        .expect("create topic");
    let addrs = Addrs::of(&cluster);
    for p in 0..partitions {
        wait_leader_serving(&addrs, topic, p, TIMEOUT)
            .await
            .expect("a serving leader");
    }
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_requests_with_bad_members_get_kafkas_errors_and_change_nothing() {
    let cluster = cluster_with_topic("classic-bad", 2).await;
    let bootstrap = cluster.nodes.values().next().expect("a node").kafka_addr();
    tokio::task::spawn_blocking(move || {
        let (g, t) = ("classic-bad-g", "classic-bad");
        let mut c = coordinated(&bootstrap, g);

        // A protocol type other than "consumer".
        let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join(g, "", "connect", t));
        assert_eq!(r.error_code, INCONSISTENT_GROUP_PROTOCOL, "{r:?}");
        // A member id never handed out.
        let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join(g, "made-up", "consumer", t));
        assert_eq!(r.error_code, UNKNOWN_MEMBER_ID, "{r:?}");

        // KIP-394: the first join gets an id, the second joins with it.
        let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join(g, "", "consumer", t));
        assert_eq!(r.error_code, MEMBER_ID_REQUIRED, "{r:?}");
        let member = r.member_id.to_string();
        assert!(member.starts_with("kafka-groups-it-"), "{member}");
        let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join(g, &member, "consumer", t));
        assert_eq!(r.error_code, 0, "{r:?}");
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert_ne!(r.leader.as_str(), member, "the coordinator assigns");
        let generation = r.generation_id;
        assert!(generation > 0);

        let sync = |generation: i32, member: &str| {
            SyncGroupRequest::default()
                .with_group_id(GroupId(s(g)))
                .with_generation_id(generation)
                .with_member_id(s(member))
        };
        let r: SyncGroupResponse = c.call(ApiKey::SyncGroup, 3, &sync(generation + 1, &member));
        assert_eq!(r.error_code, ILLEGAL_GENERATION, "{r:?}");
        let r: SyncGroupResponse = c.call(ApiKey::SyncGroup, 3, &sync(generation, "nobody"));
        assert_eq!(r.error_code, UNKNOWN_MEMBER_ID, "{r:?}");
        let r: SyncGroupResponse = c.call(ApiKey::SyncGroup, 3, &sync(generation, &member));
        assert_eq!(r.error_code, 0, "{r:?}");
        let mut bytes = r.assignment.clone();
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        bytes = bytes.slice(2..);
        let a = ConsumerProtocolAssignment::decode(&mut bytes, version).expect("assignment");
        assert_eq!(a.assigned_partitions.len(), 1);
        assert_eq!(a.assigned_partitions[0].topic.0.as_str(), t);
        assert_eq!(a.assigned_partitions[0].partitions, vec![0, 1]);

        let hb = |generation: i32, member: &str| {
            HeartbeatRequest::default()
                .with_group_id(GroupId(s(g)))
                .with_generation_id(generation)
                .with_member_id(s(member))
        };
        let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, 3, &hb(generation, "nobody"));
        assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);
        let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, 3, &hb(generation - 1, &member));
        assert_eq!(r.error_code, ILLEGAL_GENERATION);
        let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, 3, &hb(generation, &member));
        assert_eq!(r.error_code, 0);

        // A zombie's commit (old or future generation, unknown member) is
        // refused and moves nothing.
        for (gen_, who) in [
            (generation - 1, member.as_str()),
            (generation + 5, member.as_str()),
            (generation, "nobody"),
        ] {
            let r: OffsetCommitResponse =
                c.call(ApiKey::OffsetCommit, 7, &commit(g, who, gen_, t, 42));
            let code = r.topics[0].partitions[0].error_code;
            assert!(
                code == ILLEGAL_GENERATION || code == UNKNOWN_MEMBER_ID,
                "{gen_} {who}: {r:?}"
            );
        }
        assert_eq!(committed(&mut c, g, t), -1, "nothing committed");
        let r: OffsetCommitResponse = c.call(
            ApiKey::OffsetCommit,
            7,
            &commit(g, &member, generation, t, 42),
        );
        assert_eq!(r.topics[0].partitions[0].error_code, 0, "{r:?}");
        assert_eq!(committed(&mut c, g, t), 42);

        // Leaving: an unknown member is refused, the real one leaves.
        let leave = |member: &str| {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s(g)))
                .with_members(vec![MemberIdentity::default().with_member_id(s(member))])
        };
        let r: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, 3, &leave("nobody"));
        assert_eq!(r.members[0].error_code, UNKNOWN_MEMBER_ID, "{r:?}");
        let d: DescribeGroupsResponse = c.call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(g))]),
        );
        assert_eq!(d.groups[0].members.len(), 1, "{d:?}");
        assert_eq!(d.groups[0].group_state.as_str(), "Stable", "{d:?}");
        assert_eq!(d.groups[0].protocol_data.as_str(), "range", "{d:?}");
        let r: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, 3, &leave(&member));
        assert_eq!(r.members[0].error_code, 0, "{r:?}");
        let d: DescribeGroupsResponse = c.call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(g))]),
        );
        assert!(d.groups[0].members.is_empty(), "{d:?}");
        assert_eq!(d.groups[0].group_state.as_str(), "Empty", "{d:?}");
        assert_eq!(committed(&mut c, g, t), 42, "offsets outlive the members");
    })
    .await
    .expect("bad input checks");
}

/// Tests that run real Kafka clients (confluent-kafka, kafka-python).
mod needs_kafka_clients {
    use super::*;

    fn python(script: &str) -> Command {
        let python = std::env::var("STROM_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut c = Command::new(python);
        c.arg(format!("{}/kafka/{script}", env!("CARGO_MANIFEST_DIR")));
        c
    }

    /// `n` records on each of `partitions` partitions, produced over Kafka;
    /// values `<topic>-<partition>-<i>` from `first`.
    fn produce(bootstrap: &str, topic: &str, partitions: i32, first: usize, n: usize) {
        for p in 0..partitions {
            let input: String = (first..first + n)
                .map(|i| format!("k{i}:{topic}-{p}-{i}\n"))
                .collect();
            let mut child = python("confluent_client.py")
                .args(["produce", bootstrap, topic, &p.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn producer");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
            let out = child.wait_with_output().expect("producer");
            assert!(
                out.status.success(),
                "produce: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// A group member process (integration-tests/kafka/group_member.py)
    /// whose JSON lines are collected.
    struct Member {
        child: Child,
        stdin: Option<ChildStdin>,
        lines: Arc<Mutex<Vec<serde_json::Value>>>,
    }

    impl Member {
        fn start(client: &str, bootstrap: &str, group: &str, topic: &str, strategy: &str) -> Self {
            let mut child = python("group_member.py")
                .args([client, bootstrap, group, topic, strategy])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn member");
            let stdout = child.stdout.take().expect("stdout");
            let lines: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(v) = serde_json::from_str(&line) {
                        sink.lock().expect("lines").push(v);
                    }
                }
            });
            Member {
                stdin: child.stdin.take(),
                child,
                lines,
            }
        }

        /// The member's current assignment, as it last reported it.
        fn assignment(&self) -> Option<Vec<i64>> {
            let lines = self.lines.lock().expect("lines");
            lines.iter().rev().find_map(|v| {
                v.get("assignment")
                    .and_then(|a| a.as_array())
                    .map(|a| a.iter().filter_map(|p| p.as_i64()).collect())
            })
        }

        /// (partition, offset, value) of every record it read.
        fn records(&self) -> Vec<(i64, i64, String)> {
            let lines = self.lines.lock().expect("lines");
            lines
                .iter()
                .filter_map(|v| v.get("record").and_then(|r| r.as_array()).cloned())
                .filter_map(|r| {
                    Some((
                        r.first()?.as_i64()?,
                        r.get(1)?.as_i64()?,
                        r.get(2)?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        }

        /// Closes the consumer (it leaves the group) and waits for its exit.
        async fn close(mut self) {
            if let Some(mut stdin) = self.stdin.take() {
                let _ = stdin.write_all(b"close\n");
            }
            let exited = wait_until(TIMEOUT, || {
                let done = matches!(self.child.try_wait(), Ok(Some(_)));
                async move { done }
            })
            .await;
            if !exited {
                let _ = self.child.kill();
                panic!("member did not close");
            }
            let lines = self.lines.lock().expect("lines");
            assert!(
                lines.iter().any(|v| v.get("closed").is_some()),
                "member did not close cleanly: {:?}",
                lines.iter().rev().take(5).collect::<Vec<_>>()
            );
        }
    }

    impl Drop for Member {
        fn drop(&mut self) {
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    fn split(a: &Member, b: &Member, partitions: i64) -> bool {
        let (Some(x), Some(y)) = (a.assignment(), b.assignment()) else {
            return false;
        };
        let mut all: Vec<i64> = x.iter().chain(&y).copied().collect();
        all.sort_unstable();
        !x.is_empty() && !y.is_empty() && all == (0..partitions).collect::<Vec<_>>()
    }

    /// Two members split the partitions, one leaves and the other takes
    /// them all, every record is read, and a new member resumes exactly
    /// at the committed offsets.
    async fn split_take_over_and_resume(cluster: &Cluster, client: &str, strategy: &str) {
        let topic = format!("{client}-{strategy}");
        let group = format!("{topic}-g");
        const PARTITIONS: i32 = 4;
        const FIRST: usize = 20;
        const MORE: usize = 5;
        cluster
            .create_topic(1, &topic, PARTITIONS, 3, &[])
            .await
            .expect("create topic");
        let addrs = Addrs::of(cluster);
        for p in 0..PARTITIONS {
            wait_leader_serving(&addrs, &topic, p, TIMEOUT)
                .await
                .expect("a serving leader");
        }
        let bootstrap = cluster.kafka_bootstrap();
        let (b2, t2) = (bootstrap.clone(), topic.clone());
        tokio::task::spawn_blocking(move || produce(&b2, &t2, PARTITIONS, 0, FIRST))
            .await
            .expect("produce");
        let all: Vec<i64> = (0..i64::from(PARTITIONS)).collect();

        let a = Member::start(client, &bootstrap, &group, &topic, strategy);
        assert!(
            wait_until(TIMEOUT, || async { a.assignment() == Some(all.clone()) }).await,
            "{client} {strategy}: the first member never got every partition: {:?}",
            a.assignment()
        );
        let b = Member::start(client, &bootstrap, &group, &topic, strategy);
        assert!(
            wait_until(TIMEOUT, || async { split(&a, &b, PARTITIONS.into()) }).await,
            "{client} {strategy}: the members never split the partitions: {:?} {:?}",
            a.assignment(),
            b.assignment()
        );
        let (x, y) = (
            a.assignment().unwrap_or_default(),
            b.assignment().unwrap_or_default(),
        );
        assert_eq!(
            (x.len(), y.len()),
            (2, 2),
            "{client} {strategy}: {x:?} {y:?}"
        );

        let b_records = b.records();
        b.close().await;
        assert!(
            wait_until(TIMEOUT, || async { a.assignment() == Some(all.clone()) }).await,
            "{client} {strategy}: the remaining member never took over: {:?}",
            a.assignment()
        );
        let want = PARTITIONS as usize * FIRST;
        assert!(
            wait_until(TIMEOUT, || async {
                let mut seen: Vec<String> = a
                    .records()
                    .into_iter()
                    .chain(b_records.iter().cloned())
                    .map(|r| r.2)
                    .collect();
                seen.sort();
                seen.dedup();
                seen.len() == want
            })
            .await,
            "{client} {strategy}: not every record was read"
        );
        a.close().await;

        // A restarted member resumes at the committed offsets.
        let admin = strom_client::Admin::connect(
            strom_client::ClientConfig::new(&cluster.bootstrap()).expect("config"),
        )
        .await
        .expect("admin");
        let committed: BTreeMap<i64, i64> = admin
            .list_group_offsets(&group)
            .await
            .expect("committed offsets")
            .into_iter()
            .map(|o| (i64::from(o.partition), o.offset))
            .collect();
        assert_eq!(committed.len(), PARTITIONS as usize, "{committed:?}");
        assert!(
            committed.values().all(|o| (1..=FIRST as i64).contains(o)),
            "{committed:?}"
        );
        let (b2, t2) = (bootstrap.clone(), topic.clone());
        tokio::task::spawn_blocking(move || produce(&b2, &t2, PARTITIONS, FIRST, MORE))
            .await
            .expect("produce");
        let c = Member::start(client, &bootstrap, &group, &topic, strategy);
        let expected: usize = committed
            .values()
            .map(|o| (FIRST + MORE) - *o as usize)
            .sum();
        assert!(
            wait_until(TIMEOUT, || async { c.records().len() >= expected }).await,
            "{client} {strategy}: the restarted member read {} of {expected}",
            c.records().len()
        );
        for (p, from) in &committed {
            let first = c.records().iter().filter(|r| r.0 == *p).map(|r| r.1).min();
            assert_eq!(first, Some(*from), "{client} {strategy}: partition {p}");
        }
        c.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn classic_members_split_take_over_and_resume() {
        let cluster = cluster_with_topic("warm-up", 1).await;
        split_take_over_and_resume(&cluster, "confluent", "range").await;
        split_take_over_and_resume(&cluster, "confluent", "cooperative-sticky").await;
        split_take_over_and_resume(&cluster, "kafka-python", "range").await;
    }

    /// The same with KIP-848's protocol (ConsumerGroupHeartbeat).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kip848_members_split_take_over_and_resume() {
        let cluster = cluster_with_topic("warm-up", 1).await;
        split_take_over_and_resume(&cluster, "confluent-848", "range").await;
    }

    /// A gRPC member (`strom consume --group`) and a Kafka member share one
    /// group and split its partitions.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_grpc_member_and_a_kafka_member_split_one_group() {
        let (topic, group) = ("mixed-g-topic", "mixed-g");
        let cluster = cluster_with_topic(topic, 4).await;
        let mut grpc = Command::new(strom_integration_tests::binary("strom", "STROM_BIN"))
            .args([
                "--bootstrap-server",
                &cluster.bootstrap(),
                "consume",
                "--topic",
                topic,
                "--group",
                group,
                "--consumer-props",
                "client.id=grpc-member",
                "session.timeout.ms=6000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strom consume");
        let kafka = Member::start(
            "confluent",
            &cluster.kafka_bootstrap(),
            group,
            topic,
            "range",
        );
        let admin = strom_client::Admin::connect(
            strom_client::ClientConfig::new(&cluster.bootstrap()).expect("config"),
        )
        .await
        .expect("admin");
        let last: Arc<Mutex<Option<String>>> = Arc::default();
        let split = wait_until(TIMEOUT, || {
            let described = admin.describe_group(group);
            let kafka_view = kafka.assignment();
            let last = last.clone();
            async move {
                let Ok(d) = described.await else { return false };
                let by_client: BTreeMap<String, Vec<i64>> = d
                    .members
                    .iter()
                    .map(|m| {
                        let mut ps: Vec<i64> = m
                            .assignment
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| i64::from(*p)))
                            .collect();
                        ps.sort_unstable();
                        (m.client_id.clone(), ps)
                    })
                    .collect();
                *last.lock().expect("last") =
                    Some(format!("{by_client:?} kafka sees {kafka_view:?}"));
                let (Some(g), Some(k)) = (
                    by_client.get("grpc-member"),
                    by_client.get("confluent-range"),
                ) else {
                    return false;
                };
                let mut all: Vec<i64> = g.iter().chain(k).copied().collect();
                all.sort_unstable();
                d.members.len() == 2
                    && g.len() == 2
                    && k.len() == 2
                    && all == vec![0, 1, 2, 3]
                    && kafka_view.as_ref() == Some(k)
            }
        })
        .await;
        let _ = grpc.kill();
        let _ = grpc.wait();
        assert!(
            split,
            "the members never split the group: {:?}",
            last.lock().expect("last")
        );
        kafka.close().await;
    }
}
