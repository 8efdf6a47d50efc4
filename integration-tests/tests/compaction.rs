//! Log compaction on three real nodes: a compacted topic keeps each key's
//! newest value on every replica, also when its leader is killed with -9
//! while acks=all producers write; keyless records are refused with
//! INVALID_RECORD (the CLI: one line, exit 1).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_integration_tests::data::{
    Addrs, Outcome, partition_state_any, produce_once, produce_retrying, read_all,
    wait_leader_serving,
};
use strom_integration_tests::{Cluster, ClusterOptions, admin_get, binary, wait_until};
use strom_log::batch::{BatchIter, Compression, RecordBatchBuilder};
use strom_proto::v1::ErrorCode;

const TOPIC: &str = "table";
const KEYS: usize = 12;

/// A replica's records: offset → (key, value).
type Records = BTreeMap<i64, (String, String)>;

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false")
        .set("log.cleaner.backoff.ms", "200")
}

/// One batch of `(key, value)` records, CreateTime now.
fn keyed(records: &[(String, String)]) -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    let mut b = RecordBatchBuilder::new(Compression::None);
    for (k, v) in records {
        b.append(now, Some(k.as_bytes()), Some(v.as_bytes()), &[]);
    }
    b.build()
}

/// `offset → (key, value)` of concatenated batches.
fn decode(bytes: Bytes, from: i64, out: &mut BTreeMap<i64, (String, String)>) -> Option<i64> {
    let mut next = None;
    for batch in BatchIter::new(bytes) {
        let batch = batch.ok()?;
        for r in batch.records().expect("decodable records") {
            if r.offset >= from {
                let s =
                    |b: Option<Bytes>| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned();
                out.insert(r.offset, (s(r.key), s(r.value)));
            }
        }
        next = Some(batch.next_offset());
    }
    next
}

/// The records of node `node`'s replica, read from a copy of its log
/// directory (the node must be stopped), and its log end offset.
fn replica_on_disk(cluster: &Cluster, node: i32) -> (BTreeMap<i64, (String, String)>, i64) {
    let src = cluster
        .node(node)
        .data_dir
        .join("logs")
        .join(format!("{TOPIC}-0"));
    let tmp = tempfile::tempdir().expect("temp dir");
    let dst = tmp.path().join("copy");
    std::fs::create_dir_all(&dst).expect("create copy dir");
    for e in std::fs::read_dir(&src).expect("replica dir") {
        let e = e.expect("dir entry");
        std::fs::copy(e.path(), dst.join(e.file_name())).expect("copy log file");
    }
    let log = strom_log::PartitionLog::open(&dst, strom_log::LogConfig::default())
        .expect("open copied log");
    let mut out = BTreeMap::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1 << 20).expect("read copied log");
        match decode(data.records, offset, &mut out) {
            Some(next) => offset = next,
            None => break,
        }
    }
    (out, log.log_end_offset())
}

/// Each key's newest record in `log`: key → (offset, value).
fn newest(log: &BTreeMap<i64, (String, String)>) -> HashMap<String, (i64, String)> {
    let mut out = HashMap::new();
    for (o, (k, v)) in log {
        out.insert(k.clone(), (*o, v.clone()));
    }
    out
}

/// `strom_log_cleaner_passes` of node `id`.
async fn cleaner_passes(cluster: &Cluster, id: i32) -> u64 {
    let port = cluster.node(id).admin_port;
    let Ok(Some((200, body))) =
        tokio::task::spawn_blocking(move || admin_get(port, "/metrics")).await
    else {
        return 0;
    };
    body.lines()
        .find(|l| l.starts_with("strom_log_cleaner_passes"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topic_survives_a_leader_kill_with_each_keys_newest_value_on_every_replica() {
    let mut cluster = Cluster::start(3, options()).await;
    cluster
        .create_topic(
            1,
            TOPIC,
            1,
            3,
            &[
                ("cleanup.policy", "compact"),
                ("segment.bytes", "1024"),
                ("min.insync.replicas", "2"),
                ("min.cleanable.dirty.ratio", "0.1"),
            ],
        )
        .await
        .expect("create topic");
    let addrs = Addrs::of(&cluster);
    let first_leader = wait_leader_serving(&addrs, TOPIC, 0, Duration::from_secs(20))
        .await
        .expect("leader serves");

    // Keyless records are refused on a compacted topic, nothing written.
    let mut keyless = RecordBatchBuilder::new(Compression::None);
    keyless.append(0, None, Some(b"no key"), &[]);
    let refused = produce_once(
        &addrs,
        first_leader,
        TOPIC,
        0,
        keyless.build(),
        -1,
        Duration::from_secs(5),
    )
    .await
    .expect_err("a keyless record is refused");
    assert_eq!(refused.code, ErrorCode::InvalidRecord, "{refused:?}");
    // So are the CLI's: a typed one-line error, exit 1, nothing written.
    let bootstrap = cluster.bootstrap();
    let cli = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(binary("strom", "STROM_BIN"))
            .args([
                "--bootstrap-server",
                &bootstrap,
                "produce",
                "--topic",
                TOPIC,
                "--acks",
                "all",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run strom produce");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"no key here\n")
            .expect("write stdin");
        child.wait_with_output().expect("strom produce output")
    })
    .await
    .expect("cli task");
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert_eq!(cli.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error: INVALID_RECORD: ")),
        "stderr: {stderr}"
    );
    let (high_watermark, nothing) = read_all(&addrs, first_leader, TOPIC, 0)
        .await
        .expect("read the empty topic");
    assert_eq!((high_watermark, nothing.len()), (0, 0));

    // Writers: rounds of every key, acks=all, retried across the failover.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let addrs = addrs.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut acked: Vec<(String, String, i64)> = Vec::new();
            let mut unknown = 0;
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) && round < 2_000 {
                round += 1;
                for chunk in (0..KEYS).collect::<Vec<_>>().chunks(3) {
                    let records: Vec<(String, String)> = chunk
                        .iter()
                        .map(|k| {
                            (
                                format!("key-{k}"),
                                format!("value-{k}-{round}-{}", "x".repeat(40)),
                            )
                        })
                        .collect();
                    let deadline = Instant::now() + Duration::from_secs(30);
                    match produce_retrying(&addrs, TOPIC, 0, keyed(&records), deadline).await {
                        Outcome::Acked(base) => {
                            for (i, (k, v)) in records.into_iter().enumerate() {
                                acked.push((k, v, base + i as i64));
                            }
                        }
                        Outcome::Indeterminate(_) => unknown += 1,
                        Outcome::Failed(e) => panic!("produce failed: {e:?}"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (acked, unknown)
        })
    };

    // Kill the leader mid-way, bring it back, write on a while.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.kill(first_leader);
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.start_node(first_leader);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, unknown) = writer.await.expect("writer");
    assert!(
        acked.len() >= KEYS * 10,
        "too few writes acknowledged: {}",
        acked.len()
    );

    // Healing: the old leader back in the ISR, every node cleaned since.
    let healed = wait_until(Duration::from_secs(60), || async {
        partition_state_any(&addrs, TOPIC, 0)
            .await
            .is_some_and(|(leader, _, isr)| leader >= 0 && isr.len() == 3)
    })
    .await;
    assert!(healed, "ISR not healed\n{}", cluster.dump_logs());
    let mut passes_before = HashMap::new();
    for id in cluster.nodes.keys().copied() {
        passes_before.insert(id, cleaner_passes(&cluster, id).await);
    }
    // One more round makes every replica dirty again after it caught up.
    let leader = wait_leader_serving(&addrs, TOPIC, 0, Duration::from_secs(20))
        .await
        .expect("leader");
    let mut last_round = Vec::new();
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(3) {
        let records: Vec<(String, String)> = chunk
            .iter()
            .map(|k| (format!("key-{k}"), format!("final-{k}-{}", "y".repeat(400))))
            .collect();
        let base = produce_once(
            &addrs,
            leader,
            TOPIC,
            0,
            keyed(&records),
            -1,
            Duration::from_secs(10),
        )
        .await
        .expect("final produce");
        for (i, (k, v)) in records.into_iter().enumerate() {
            last_round.push((k, v, base + i as i64));
        }
    }
    let cleaned = wait_until(Duration::from_secs(60), || async {
        for id in cluster.nodes.keys().copied() {
            if cleaner_passes(&cluster, id).await <= passes_before[&id] {
                return false;
            }
        }
        true
    })
    .await;
    assert!(
        cleaned,
        "not every node ran a cleaning pass\n{}",
        cluster.dump_logs()
    );

    // A consumer from offset 0 sees each key's newest value.
    let expected: HashMap<String, (i64, String)> = acked
        .iter()
        .chain(&last_round)
        .map(|(k, v, o)| (k.clone(), (*o, v.clone())))
        .fold(HashMap::new(), |mut m, (k, (o, v))| {
            if m.get(&k).is_none_or(|(prev, _)| *prev < o) {
                m.insert(k, (o, v));
            }
            m
        });
    // (Values name their key: "value-<k>-..." and "final-<k>-...".)
    let (_, consumed) = read_all(&addrs, leader, TOPIC, 0)
        .await
        .expect("read from 0");
    let mut seen: HashMap<String, (i64, String)> = HashMap::new();
    for (o, v) in consumed {
        let v = String::from_utf8_lossy(&v).into_owned();
        let k = format!("key-{}", v.split('-').nth(1).unwrap_or_default());
        seen.insert(k, (o, v));
    }
    for (k, (offset, value)) in &expected {
        let (found, found_value) = seen
            .get(k)
            .unwrap_or_else(|| panic!("a consumer from 0 never sees {k}"));
        assert!(
            found >= offset,
            "a consumer sees {k} last at {found}, acknowledged at {offset}"
        );
        if found == offset {
            assert_eq!(found_value, value, "a consumer sees {k} at {offset}");
        }
    }

    // Every replica: the same log end, the same record wherever two hold
    // one, each key's newest record the newest acknowledged (or a later
    // unacknowledged write), and duplicates gone.
    let ids: Vec<i32> = cluster.nodes.keys().copied().collect();
    // A follower stops cleanly on SIGTERM (its cleaner threads end with
    // it); the others are killed -9: the copies are read after the
    // recovery a restart would run.
    let follower = *ids.iter().find(|id| **id != leader).expect("a follower");
    let status = cluster.terminate(follower, Duration::from_secs(30));
    assert!(status.success(), "node {follower} exited with {status:?}");
    for id in &ids {
        if *id != follower {
            cluster.kill(*id);
        }
    }
    let replicas: Vec<(i32, Records, i64)> = ids
        .iter()
        .map(|id| {
            let (log, end) = replica_on_disk(&cluster, *id);
            (*id, log, end)
        })
        .collect();
    let ends: Vec<i64> = replicas.iter().map(|r| r.2).collect();
    assert!(
        ends.windows(2).all(|w| w[0] == w[1]),
        "log ends differ: {ends:?}"
    );
    for (i, (a, la, _)) in replicas.iter().enumerate() {
        for (b, lb, _) in &replicas[i + 1..] {
            for (o, ra) in la {
                if let Some(rb) = lb.get(o) {
                    assert_eq!(ra, rb, "offset {o}: node {a} and node {b} differ");
                }
            }
        }
        let table = newest(la);
        assert_eq!(table.len(), KEYS, "node {a}: keys {table:?}");
        for (k, (offset, value)) in &expected {
            let (found, found_value) = &table[k];
            assert!(
                found >= offset,
                "node {a}: {k}'s newest is at {found}, acknowledged at {offset}"
            );
            if found == offset {
                assert_eq!(found_value, value, "node {a}: {k} at {offset}");
            }
        }
        assert!(
            (la.len() as i64) < ends[0] / 2,
            "node {a} holds {} records of {}: not compacted",
            la.len(),
            ends[0]
        );
    }
    eprintln!(
        "acked {} writes, {unknown} indeterminate; log end {}",
        acked.len(),
        ends[0]
    );
}
