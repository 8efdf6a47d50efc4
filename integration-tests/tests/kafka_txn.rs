//! Transactions over the Kafka listener against real `stromd` processes:
//! * raw requests: EndTxn with a wrong epoch, an old epoch, another
//!   producer id or an unknown transactional id gets Kafka's error code
//!   and changes nothing (DescribeTransactions); a commit in transaction
//!   version 0 (EndTxn v3) keeps the epoch, in version 2 (EndTxn v5) bumps
//!   it; ListTransactions and DescribeProducers show the result;
//! * confluent-kafka (librdkafka, in `needs_kafka_clients`): a committed
//!   transaction is visible to read_committed consumers over Kafka and
//!   over gRPC, an aborted one never; a consume-transform-produce loop
//!   commits its consumer offsets with the transaction
//!   (send_offsets_to_transaction), checked with `strom groups describe`;
//!   a second producer with the same transactional.id fences the first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, DescribeProducersRequest,
    DescribeProducersResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    InitProducerIdRequest, InitProducerIdResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, RequestHeader, ResponseHeader, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom_integration_tests::data::{Addrs, wait_leader_serving};
use strom_integration_tests::{Cluster, ClusterOptions, binary};

const TIMEOUT: Duration = Duration::from_secs(60);

// Kafka's error codes.
const NONE: i16 = 0;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const PRODUCER_FENCED: i16 = 90;
/// Retriable while the coordinator is created, loads or moves, or an
/// abort completes.
const RETRIABLE: [i16; 4] = [14, 15, 16, 51];

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .kafka()
        .set("transaction.state.log.num.partitions", "3")
        .set("offsets.topic.num.partitions", "3")
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// A connection speaking raw Kafka requests.
struct Raw {
    stream: TcpStream,
    next_id: i32,
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect to the kafka listener");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("read timeout");
        Raw { stream, next_id: 1 }
    }

    /// Sends `body` as `key` v`version` and decodes the answer as `R`.
    fn call<R: Decodable>(&mut self, key: ApiKey, version: i16, body: &impl Encodable) -> R {
        let id = self.next_id;
        self.next_id += 1;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(s("kafka-txn-it")))
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
        R::decode(&mut body, version).expect("response body decodes")
    }
}

/// `f` until it answers a code that is not retriable.
fn retried<R>(what: &str, mut f: impl FnMut() -> (i16, R)) -> (i16, R) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (code, r) = f();
        if !RETRIABLE.contains(&code) {
            return (code, r);
        }
        assert!(Instant::now() < deadline, "{what}: still error {code}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Kafka address of `transactional_id`'s coordinator.
fn coordinator(any: &str, transactional_id: &str) -> String {
    let mut raw = Raw::connect(any);
    let (_, r) = retried("find coordinator", || {
        let r: FindCoordinatorResponse = raw.call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(s(transactional_id))
                .with_key_type(1),
        );
        (r.error_code, r)
    });
    assert_eq!(r.error_code, NONE, "{r:?}");
    format!("{}:{}", r.host, r.port)
}

fn init(raw: &mut Raw, transactional_id: &str) -> (i64, i16) {
    let (code, r) = retried("init producer id", || {
        let r: InitProducerIdResponse = raw.call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s(transactional_id))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
        (r.error_code, r)
    });
    assert_eq!(code, NONE, "{r:?}");
    (r.producer_id.0, r.producer_epoch)
}

fn add_partition(raw: &mut Raw, id: &str, (pid, epoch): (i64, i16), topic: &str) -> i16 {
    let r: AddPartitionsToTxnResponse = raw.call(
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s(id)))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![0]),
            ]),
    );
    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

fn end_txn(
    raw: &mut Raw,
    version: i16,
    id: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
) -> EndTxnResponse {
    raw.call(
        ApiKey::EndTxn,
        version,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit),
    )
}

/// (state, producer id, epoch, partitions) of `id`.
fn describe(raw: &mut Raw, id: &str) -> (String, i64, i16, Vec<(String, Vec<i32>)>) {
    let r: DescribeTransactionsResponse = raw.call(
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(s(id))]),
    );
    let t = &r.transaction_states[0];
    assert_eq!(t.error_code, NONE, "{r:?}");
    (
        t.transaction_state.to_string(),
        t.producer_id.0,
        t.producer_epoch,
        t.topics
            .iter()
            .map(|d| (d.topic.0.to_string(), d.partitions.clone()))
            .collect(),
    )
}

fn wait_state(raw: &mut Raw, id: &str, want: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let got = describe(raw, id).0;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{id} is {got}, not {want}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_txn_bad_input_gets_kafkas_codes_and_changes_nothing() {
    let cluster = Cluster::start(1, options()).await;
    cluster
        .create_topic(1, "raw", 1, 1, &[])
        .await
        .expect("create topic");
    wait_leader_serving(&Addrs::of(&cluster), "raw", 0, TIMEOUT)
        .await
        .expect("a serving leader");
    let kafka = cluster.node(1).kafka_addr();
    tokio::task::spawn_blocking(move || {
        let id = "raw-txn";
        let at = coordinator(&kafka, id);
        let mut raw = Raw::connect(&at);
        init(&mut raw, id);
        // A second incarnation: epoch 1, so an older one exists.
        let p = init(&mut raw, id);
        assert_eq!(p.1, 1);
        assert_eq!(add_partition(&mut raw, id, p, "raw"), NONE);
        let ongoing = (
            "Ongoing".to_owned(),
            p.0,
            p.1,
            vec![("raw".to_owned(), vec![0])],
        );
        assert_eq!(describe(&mut raw, id), ongoing);

        let cases = [
            ("newer epoch", 3, id, (p.0, p.1 + 1), INVALID_PRODUCER_EPOCH),
            ("older epoch", 3, id, (p.0, p.1 - 1), PRODUCER_FENCED),
            (
                "older epoch, a client before KIP-588",
                1,
                id,
                (p.0, p.1 - 1),
                INVALID_PRODUCER_EPOCH,
            ),
            (
                "another producer id",
                3,
                id,
                (p.0 + 1000, p.1),
                INVALID_PRODUCER_ID_MAPPING,
            ),
            (
                "unknown transactional id",
                3,
                "raw-unknown",
                p,
                INVALID_PRODUCER_ID_MAPPING,
            ),
        ];
        for (what, version, txn, caller, want) in cases {
            let at_txn = coordinator(&kafka, txn);
            let mut conn = Raw::connect(&at_txn);
            // (retried while the id's transaction log partition loads)
            let (code, r) = retried(what, || {
                let r = end_txn(&mut conn, version, txn, caller, true);
                (r.error_code, r)
            });
            assert_eq!(code, want, "{what}: {r:?}");
            assert_eq!(describe(&mut raw, id), ongoing, "{what} changed the state");
        }

        // Transaction version 0 (EndTxn v3, librdkafka): the epoch stays.
        let r = end_txn(&mut raw, 3, id, p, true);
        assert_eq!(r.error_code, NONE, "{r:?}");
        wait_state(&mut raw, id, "CompleteCommit");
        assert_eq!(describe(&mut raw, id).2, p.1, "v3 keeps the epoch");
        // Its retry is answered again; an abort now is refused.
        assert_eq!(end_txn(&mut raw, 3, id, p, true).error_code, NONE);
        assert_eq!(end_txn(&mut raw, 3, id, p, false).error_code, 48);

        // Transaction version 2 (EndTxn v5): bumped, and answered.
        assert_eq!(add_partition(&mut raw, id, p, "raw"), NONE);
        let r = end_txn(&mut raw, 5, id, p, true);
        assert_eq!(r.error_code, NONE, "{r:?}");
        assert_eq!((r.producer_id.0, r.producer_epoch), (p.0, p.1 + 1));
        wait_state(&mut raw, id, "CompleteCommit");

        let r: ListTransactionsResponse = raw.call(
            ApiKey::ListTransactions,
            0,
            &ListTransactionsRequest::default().with_state_filters(vec![s("CompleteCommit")]),
        );
        assert_eq!(r.error_code, NONE);
        assert!(
            r.transaction_states
                .iter()
                .any(|t| t.transactional_id.0.as_str() == id && t.producer_id.0 == p.0),
            "{r:?}"
        );
        let r: ListTransactionsResponse = raw.call(
            ApiKey::ListTransactions,
            0,
            &ListTransactionsRequest::default().with_state_filters(vec![s("Bogus")]),
        );
        assert_eq!(r.unknown_state_filters, vec![s("Bogus")]);
        assert!(r.transaction_states.is_empty(), "{r:?}");

        // The partition's leader tracks the producer from its markers.
        let mut leader = Raw::connect(&kafka);
        let r: DescribeProducersResponse = leader.call(
            ApiKey::DescribeProducers,
            0,
            &DescribeProducersRequest::default().with_topics(vec![
                TopicRequest::default()
                    .with_name(TopicName(s("raw")))
                    .with_partition_indexes(vec![0]),
            ]),
        );
        let part = &r.topics[0].partitions[0];
        assert_eq!(part.error_code, NONE, "{r:?}");
        let producer = part
            .active_producers
            .iter()
            .find(|a| a.producer_id.0 == p.0)
            .unwrap_or_else(|| panic!("producer {} not described: {r:?}", p.0));
        assert_eq!(producer.producer_epoch, i32::from(p.1) + 1, "{r:?}");
        assert_eq!(producer.current_txn_start_offset, -1, "{r:?}");
    })
    .await
    .expect("raw transaction checks");
}

/// Tests that run confluent-kafka.
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

    fn python(script: &str) -> Command {
        let python = std::env::var("STROM_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut c = Command::new(python);
        c.arg(format!("{}/kafka/{script}", env!("CARGO_MANIFEST_DIR")));
        c
    }

    fn strom(cluster: &Cluster) -> Command {
        let mut c = Command::new(binary("strom", "STROM_BIN"));
        c.arg("--bootstrap-server").arg(cluster.bootstrap());
        c
    }

    fn json_lines(out: &Output) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    /// `key:value` of each record, sorted.
    fn sorted_key_values(records: &[serde_json::Value]) -> Vec<String> {
        let mut out: Vec<String> = records
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r["key"].as_str().unwrap_or(""),
                    r["value"].as_str().unwrap_or("")
                )
            })
            .collect();
        out.sort();
        out
    }

    fn lines(prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{prefix}-k{i}:{prefix} {i}"))
            .collect()
    }

    async fn cluster_with_topics(topics: &[(&str, i32)]) -> Cluster {
        let cluster = Cluster::start(3, options()).await;
        let addrs = Addrs::of(&cluster);
        for (topic, partitions) in topics {
            cluster
                .create_topic(1, topic, *partitions, 3, &[])
                .await
                .expect("create topic");
            for p in 0..*partitions {
                wait_leader_serving(&addrs, topic, p, TIMEOUT)
                    .await
                    .expect("a serving leader");
            }
        }
        cluster
    }

    fn read(bootstrap: &str, topic: &str, partitions: i32, isolation: &str) -> Vec<String> {
        let out = run(
            python("confluent_txn.py").args([
                "read",
                bootstrap,
                topic,
                &partitions.to_string(),
                isolation,
            ]),
            "",
        );
        sorted_key_values(&json_lines(&out))
    }

    /// [`read`] until it gives `want` (sorted): the markers of a
    /// committed transaction are written after EndTxn is answered, so the
    /// last stable offset reaches them a moment later. Under
    /// read_committed every read on the way holds only records of `want`:
    /// nothing aborted or uncommitted is ever visible.
    fn read_until(bootstrap: &str, topic: &str, partitions: i32, isolation: &str, want: &[String]) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let got = read(bootstrap, topic, partitions, isolation);
            if got == want {
                return;
            }
            if isolation == "read_committed" {
                let stray: Vec<&String> = got.iter().filter(|r| !want.contains(r)).collect();
                assert!(
                    stray.is_empty(),
                    "{topic}: visible but not committed: {stray:?}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "{topic} at {isolation}: {got:?}, not {want:?}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn confluent_commit_is_visible_to_read_committed_and_abort_never() {
        let cluster = cluster_with_topics(&[("txn", 3)]).await;
        let bootstrap = cluster.kafka_bootstrap();
        let c = &cluster;
        tokio::task::block_in_place(|| {
            let first = lines("first", 30);
            let aborted = lines("aborted", 30);
            let last = lines("last", 30);
            for (records, how) in [(&first, "commit"), (&aborted, "abort"), (&last, "commit")] {
                let out = run(
                    python("confluent_txn.py").args(["produce", &bootstrap, "txn", "ck-txn", how]),
                    &records.join("\n"),
                );
                assert_eq!(json_lines(&out)[0]["result"], how);
            }
            let mut committed = [first.clone(), last.clone()].concat();
            committed.sort();
            // read_committed over Kafka: the committed records, no aborted
            // one.
            read_until(&bootstrap, "txn", 3, "read_committed", &committed);
            // read_uncommitted: the aborted records are in the log.
            let mut everything = [first, aborted, last].concat();
            everything.sort();
            assert_eq!(read(&bootstrap, "txn", 3, "read_uncommitted"), everything);
            // Strom's own read_committed consumer, over gRPC.
            let out = run(
                strom(c).args([
                    "--output",
                    "json",
                    "--timeout-ms",
                    "10000",
                    "consume",
                    "--topic",
                    "txn",
                    "--from-beginning",
                    "--isolation-level",
                    "read_committed",
                    "--print-key",
                ]),
                "",
            );
            assert_eq!(sorted_key_values(&json_lines(&out)), committed);
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn confluent_consume_transform_produce_commits_offsets_with_the_transaction() {
        let cluster = cluster_with_topics(&[("ctp-in", 1), ("ctp-out", 1)]).await;
        let bootstrap = cluster.kafka_bootstrap();
        let c = &cluster;
        tokio::task::block_in_place(|| {
            let input = lines("in", 40);
            run(
                python("confluent_client.py").args(["produce", &bootstrap, "ctp-in", "0"]),
                &input.join("\n"),
            );
            // Four transactions of 10; the last aborted.
            let out = run(
                python("confluent_txn.py").args([
                    "ctp",
                    &bootstrap,
                    "ctp-in",
                    "ctp-out",
                    "ctp-group",
                    "ctp-txn",
                    "40",
                    "10",
                    "abort-last",
                ]),
                "",
            );
            let done = &json_lines(&out)[0];
            assert_eq!(
                (done["committed"].as_i64(), done["aborted"].as_i64()),
                (Some(30), Some(10))
            );
            let mut want: Vec<String> = input[..30]
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once(':').expect("key:value");
                    format!("{k}:{}", v.to_uppercase())
                })
                .collect();
            want.sort();
            read_until(&bootstrap, "ctp-out", 1, "read_committed", &want);
            // The group's offset moved with the committed transactions
            // only: 30, not 40 (visible once the last COMMIT marker reached
            // the offsets partition; never above 30 on the way).
            let deadline = Instant::now() + TIMEOUT;
            loop {
                let out = run(
                    strom(c).args([
                        "--output",
                        "json",
                        "groups",
                        "describe",
                        "--group",
                        "ctp-group",
                    ]),
                    "",
                );
                let described: serde_json::Value =
                    serde_json::from_slice(&out.stdout).expect("groups describe json");
                let offset = described["offsets"]
                    .as_array()
                    .and_then(|o| {
                        o.iter()
                            .find(|o| o["topic"] == "ctp-in" && o["partition"] == 0)
                    })
                    .and_then(|o| o["current_offset"].as_i64());
                if offset == Some(30) {
                    break;
                }
                assert!(offset.is_none_or(|o| o <= 30), "{described}");
                assert!(Instant::now() < deadline, "{described}");
                std::thread::sleep(Duration::from_millis(300));
            }
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn confluent_second_producer_fences_the_first() {
        let cluster = cluster_with_topics(&[("fence", 1)]).await;
        let bootstrap = cluster.kafka_bootstrap();
        tokio::task::block_in_place(|| {
            let out = run(
                python("confluent_txn.py").args(["fence", &bootstrap, "fence", "fence-txn"]),
                "",
            );
            let r = &json_lines(&out)[0];
            assert_eq!(r["b"], "committed", "{r}");
            assert_eq!(r["a_fatal"], true, "the zombie's error is fatal: {r}");
            // librdkafka raises the fence as _FENCED (its own code for
            // PRODUCER_FENCED / INVALID_PRODUCER_EPOCH).
            let fenced = ["_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"];
            assert!(
                fenced.iter().any(|f| r["a_error"] == *f),
                "the zombie's error is a fence: {r}"
            );
            // Nothing of the fenced producer is visible.
            read_until(
                &bootstrap,
                "fence",
                1,
                "read_committed",
                &["b:winner".to_owned()],
            );
        });
    }
}
