//! The HTTP admin endpoint: health, readiness and Prometheus metrics.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_integration_tests::data::{Addrs, Outcome, batch, produce_retrying, read_from_leader};
use strom_integration_tests::{Cluster, ClusterOptions, admin_get as get, wait_until};
use strom_proto::v1::{CreatableTopic, CreateTopicsRequest, ReplicaAssignment};

/// A plain HTTP/1.1 GET: (status code, body).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Splits `name{k="v",...}` into the name and its labels, checking the
/// label syntax (escapes included).
fn parse_series(series: &str, line: &str) -> (String, BTreeMap<String, String>) {
    let Some((name, rest)) = series.split_once('{') else {
        return (series.to_owned(), BTreeMap::new());
    };
    let body = rest
        .strip_suffix('}')
        .unwrap_or_else(|| panic!("unterminated labels in '{line}'"));
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert!(valid_name(&key), "bad label name '{key}' in '{line}'");
        assert_eq!(chars.next(), Some('"'), "label value unquoted in '{line}'");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => panic!("bad escape {other:?} in '{line}'"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated label value in '{line}'"),
            }
        }
        assert!(
            labels.insert(key.clone(), value).is_none(),
            "label {key} twice in '{line}'"
        );
        match chars.next() {
            Some(',') | None => {}
            Some(c) => panic!("unexpected '{c}' after a label in '{line}'"),
        }
    }
    (name.to_owned(), labels)
}

/// Parses an OpenMetrics/Prometheus text exposition, checking it the way a
/// scraper would: every sample belongs to the family declared by the last
/// `# TYPE` (with the suffixes its type allows), names and labels are well
/// formed, values parse, histogram buckets are cumulative and end in +Inf
/// equal to `_count`, and the text ends with `# EOF`. Returns the samples as
/// (series as written, value).
fn samples(body: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut family: Option<(String, String)> = None;
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "exposition ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("bad comment line '{line}'"));
            assert!(valid_name(name), "bad metric name in '{line}'");
            assert!(
                name.starts_with("strom_"),
                "metric without the strom_ prefix: {line}"
            );
            match kind {
                Some("TYPE") => {
                    let t = parts.next().unwrap_or_default().to_owned();
                    assert!(
                        ["counter", "gauge", "histogram", "info", "unknown"].contains(&t.as_str()),
                        "unknown type in '{line}'"
                    );
                    assert!(
                        types.insert(name.to_owned(), t.clone()).is_none(),
                        "family {name} declared twice"
                    );
                    family = Some((name.to_owned(), t));
                }
                Some("HELP") | Some("UNIT") => {}
                _ => panic!("unknown comment line '{line}'"),
            }
            continue;
        }
        assert!(!line.is_empty(), "empty line in the exposition");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("malformed sample line '{line}'"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("malformed value in '{line}'")),
        };
        let (name, mut labels) = parse_series(series, line);
        assert!(valid_name(&name), "bad sample name in '{line}'");
        let (fam, t) = family
            .as_ref()
            .unwrap_or_else(|| panic!("sample before any # TYPE: '{line}'"));
        let suffix = name
            .strip_prefix(fam.as_str())
            .unwrap_or_else(|| panic!("sample '{line}' outside its family {fam}"));
        let allowed: &[&str] = match t.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        assert!(
            allowed.contains(&suffix),
            "sample '{line}' has suffix '{suffix}', not allowed for a {t}"
        );
        if t == "histogram" {
            let le = labels.remove("le");
            let key = format!("{fam}{labels:?}");
            match suffix {
                "_bucket" => {
                    let le = le.unwrap_or_else(|| panic!("bucket without le: '{line}'"));
                    let bound = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or_else(|_| panic!("bad le in '{line}'"))
                    };
                    buckets.entry(key).or_default().push((bound, value));
                }
                "_count" => {
                    counts.insert(key, value);
                }
                _ => {}
            }
        }
        out.push((series.to_owned(), value));
    }
    for (key, bs) in &buckets {
        assert!(
            bs.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "buckets of {key} not cumulative: {bs:?}"
        );
        let last = bs.last().expect("buckets");
        assert_eq!(last.0, f64::INFINITY, "buckets of {key} end in +Inf");
        assert_eq!(
            Some(&last.1),
            counts.get(key),
            "+Inf bucket = count of {key}"
        );
    }
    out
}

fn value(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .sum()
}

fn has_series(samples: &[(String, f64)], prefix: &str) -> bool {
    samples.iter().any(|(n, _)| n.starts_with(prefix))
}

/// Sum of a series over the given nodes (0 for nodes that do not answer).
fn sum_over(cluster: &Cluster, ids: &[i32], name: &str) -> f64 {
    ids.iter()
        .filter_map(|id| get(cluster.node(*id).admin_port, "/metrics"))
        .map(|(_, body)| value(&samples(&body), name))
        .sum()
}

fn cluster_sum(cluster: &Cluster, name: &str) -> f64 {
    let ids: Vec<i32> = cluster.nodes.keys().copied().collect();
    sum_over(cluster, &ids, name)
}

async fn eventually(cluster: &Cluster, what: &str, mut f: impl FnMut(&Cluster) -> bool) {
    let ok = wait_until(Duration::from_secs(20), || {
        let r = tokio::task::block_in_place(|| f(cluster));
        async move { r }
    })
    .await;
    assert!(ok, "{what}\n{}", cluster.dump_logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoint_reports_health_readiness_and_metrics() {
    let options = ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false");
    let mut cluster = Cluster::start(3, options).await;
    cluster
        .create_topic(1, "watched", 6, 3, &[])
        .await
        .expect("create");
    for node in cluster.nodes.values() {
        assert_eq!(get(node.admin_port, "/healthz").map(|r| r.0), Some(200));
        let ready = wait_until(Duration::from_secs(10), || async {
            get(node.admin_port, "/readyz").is_some_and(|r| r.0 == 200)
        })
        .await;
        assert!(ready, "node {} ready", node.id);
        assert_eq!(get(node.admin_port, "/nope").map(|r| r.0), Some(404));
    }
    eventually(&cluster, "exactly one active controller", |c| {
        cluster_sum(c, "strom_controller_active") == 1.0
    })
    .await;
    let c = &cluster;
    assert_eq!(
        tokio::task::block_in_place(|| cluster_sum(c, "strom_partitions_under_replicated")),
        0.0
    );
    assert_eq!(
        tokio::task::block_in_place(|| cluster_sum(c, "strom_partitions_offline")),
        0.0
    );

    // Traffic: 10 batches of 5 records produced with acks=all, read back.
    let addrs = Addrs::of(&cluster);
    let mut produced_bytes = 0;
    for i in 0..10 {
        let values: Vec<Bytes> = (0..5)
            .map(|j| Bytes::from(format!("value-{i}-{j}")))
            .collect();
        let b = batch(&values);
        produced_bytes += b.len();
        let deadline = Instant::now() + Duration::from_secs(20);
        let outcome = produce_retrying(&addrs, "watched", 0, b, deadline).await;
        assert!(matches!(outcome, Outcome::Acked(_)), "{outcome:?}");
    }
    let (_, read) = read_from_leader(&cluster, "watched", 0, Duration::from_secs(10)).await;
    assert_eq!(read.len(), 50);
    let c = &cluster;
    tokio::task::block_in_place(|| {
        assert_eq!(cluster_sum(c, "strom_records_in_total"), 50.0);
        assert_eq!(
            cluster_sum(c, "strom_bytes_in_total"),
            produced_bytes as f64
        );
        assert!(cluster_sum(c, "strom_records_out_total") >= 50.0);
        assert!(cluster_sum(c, "strom_bytes_out_total") >= produced_bytes as f64);
        // Every answered produce request (retries included) is timed.
        let requests = cluster_sum(c, "strom_produce_requests_total");
        assert!(requests >= 10.0, "{requests} produce requests");
        assert_eq!(
            cluster_sum(c, "strom_produce_duration_seconds_count"),
            requests
        );
    });
    // Both followers fetch every record.
    eventually(&cluster, "followers replicate the 50 records", |c| {
        cluster_sum(c, "strom_replication_records_out_total") >= 100.0
    })
    .await;
    let body = get(cluster.node(1).admin_port, "/metrics")
        .expect("metrics")
        .1;
    let s = samples(&body);
    for prefix in [
        "strom_build_info{",
        "strom_raft_commit_index",
        "strom_raft_applied_index",
        "strom_metadata_offset",
        "strom_isr_shrinks_total",
        "strom_isr_expands_total",
        "strom_leader_elections_total",
        "strom_log_partitions",
        "strom_logs_size_bytes",
        "strom_log_size_bytes{topic=\"watched\",partition=\"0\"}",
        "strom_rpc_duration_seconds_count{service=\"strom.v1.MetadataService\",method=\"Metadata\"}",
        "strom_rpc_responses_total{service=\"strom.v1.MetadataService\",method=\"Metadata\",code=\"OK\"}",
    ] {
        assert!(has_series(&s, prefix), "node 1 reports {prefix}:\n{body}");
    }
    assert!(value(&s, "strom_raft_commit_index") > 0.0);
    assert!(value(&s, "strom_logs_size_bytes") > 0.0);
    let active = cluster.controller_leader().await.expect("leader");
    let active_body = get(cluster.node(active).admin_port, "/metrics")
        .expect("metrics")
        .1;
    let s = samples(&active_body);
    for id in 1..=3 {
        assert!(
            has_series(&s, &format!("strom_broker_metadata_lag{{broker=\"{id}\"}}")),
            "the active controller reports broker {id}'s metadata lag:\n{active_body}"
        );
    }

    // A topic only the victim hosts goes offline with it.
    let controller = active;
    let victim = (1..=3).find(|id| *id != controller).expect("victim");
    let mut client = cluster.controller_client(controller);
    let r = client
        .create_topics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "alone".into(),
                assignments: vec![ReplicaAssignment {
                    partition: 0,
                    replicas: vec![victim],
                }],
                ..Default::default()
            }],
            validate_only: false,
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
    let survivors: Vec<i32> = (1..=3).filter(|id| *id != victim).collect();
    let shrinks_before =
        tokio::task::block_in_place(|| sum_over(&cluster, &survivors, "strom_isr_shrinks_total"));
    let expands_before =
        tokio::task::block_in_place(|| sum_over(&cluster, &survivors, "strom_isr_expands_total"));

    // Kill a broker that is not the controller: its partitions lose a
    // replica, so the survivors' leaders report them under-replicated.
    cluster.kill(victim);
    eventually(
        &cluster,
        "under-replicated gauge counts the 6 partitions missing a replica, offline gauge the lone one",
        |c| {
            cluster_sum(c, "strom_partitions_under_replicated") == 6.0
                && cluster_sum(c, "strom_partitions_offline") == 1.0
        },
    )
    .await;
    let c = &cluster;
    tokio::task::block_in_place(|| {
        assert_eq!(cluster_sum(c, "strom_brokers{state=\"fenced\"}"), 1.0);
        let shrinks = sum_over(c, &survivors, "strom_isr_shrinks_total") - shrinks_before;
        assert!(
            shrinks >= 6.0,
            "the survivors count the 6 ISR shrinks, got {shrinks}"
        );
    });

    cluster.start_node(victim);
    eventually(
        &cluster,
        "gauges return to zero once the broker is back",
        |c| {
            cluster_sum(c, "strom_partitions_under_replicated") == 0.0
                && cluster_sum(c, "strom_partitions_offline") == 0.0
                && get(c.node(victim).admin_port, "/readyz").is_some_and(|r| r.0 == 200)
        },
    )
    .await;
    let c = &cluster;
    let expands = tokio::task::block_in_place(|| {
        sum_over(c, &survivors, "strom_isr_expands_total") - expands_before
    });
    assert!(
        expands >= 6.0,
        "the leaders count the 6 ISR expands, got {expands}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_a_span_per_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port()
    };
    let (client, controller, admin) = (free(), free(), free());
    let log_path = dir.path().join("stromd.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child =
        std::process::Command::new(strom_integration_tests::binary("stromd", "STROMD_BIN"))
            .args(["--node-id", "1", "--log-format", "json"])
            .arg("--controller-quorum-voters")
            .arg(format!("1@127.0.0.1:{controller}"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{client}"))
            .arg("--controller-listen")
            .arg(format!("127.0.0.1:{controller}"))
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{admin}"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "info,stromd::rpc=debug")
            .env_remove("STROM_LOG_FORMAT")
            .stderr(log)
            .spawn()
            .expect("spawn stromd");
    let ready = wait_until(Duration::from_secs(20), || async {
        get(admin, "/readyz").is_some_and(|r| r.0 == 200)
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "node ready");
    let text = std::fs::read_to_string(&log_path).expect("read log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let in_span = |l: &serde_json::Value| {
        l["span"]["name"] == "rpc"
            && l["span"]["service"] == "strom.v1.ControllerService"
            && l["span"]["method"] == "RegisterBroker"
    };
    assert!(
        lines
            .iter()
            .any(|l| in_span(l) && l["fields"]["message"] == "registered broker"),
        "the handler's own log line carries its request's span:\n{text}"
    );
    assert!(
        lines.iter().any(|l| in_span(l)
            && l["fields"]["message"] == "rpc answered"
            && l["fields"]["code"] == "OK"
            && l["fields"]["elapsed_ms"].is_number()),
        "a JSON line of the RegisterBroker request in its rpc span:\n{text}"
    );
}
