//! Retention and DeleteRecords on three real replica managers (the
//! testkit's in-process cluster, paused time): the leader moves its log
//! start, followers learn it from fetch responses and delete the same
//! segments; retention by time, by size and through `segment.ms` rolls of
//! a quiet partition reaches every replica; consumers below the start get
//! OFFSET_OUT_OF_RANGE and ListOffsets earliest the new start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use strom_log::batch::{Compression, RecordBatchBuilder};
use strom_proto::v1::{ErrorCode, ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use tempfile::TempDir;

use super::{
    AppendOrigin, AppendRequest, FetchParams, FetchPartition, Isolation, PartitionAppend,
    RecordsToDelete, ReplicaManager,
};
use crate::testkit::{Cluster, ClusterConfig};

const TOPIC: &str = "r";
/// The testkit clock's reading when the cluster starts.
const BASE_MS: i64 = 1_700_000_000_000;
/// Batches appended; each holds 4 records of 60-byte values (~350 bytes).
const BATCHES: i64 = 24;
const RECORDS: i64 = 4 * BATCHES;

fn batch(timestamp: i64, n: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None);
    for i in 0..4 {
        let value = format!("{n:>4}-{i}-{}", "x".repeat(53));
        b.append(timestamp, None, Some(value.as_bytes()), &[]);
    }
    b.build()
}

/// `ms` simulated milliseconds, ten at a time, each followed by the
/// metadata log's delivery and the controller's duties.
async fn run_for(cluster: &mut Cluster, ms: u64) {
    for _ in 0..ms / 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        cluster.tick().expect("tick");
    }
}

/// Runs the cluster until `done` holds, for at most `ms` simulated ms.
async fn run_until(cluster: &mut Cluster, what: &str, ms: u64, done: impl Fn(&Cluster) -> bool) {
    for _ in 0..ms / 10 {
        if done(cluster) {
            return;
        }
        run_for(cluster, 10).await;
    }
    assert!(done(cluster), "{what}: not within {ms} simulated ms");
}

/// Three brokers checking retention every 100 ms, and the topic with
/// `configs` (one partition, three replicas, 1 KiB segments).
async fn cluster_with(configs: &[(&str, &str)]) -> (TempDir, Cluster) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ClusterConfig::default();
    config.replication.retention_check_interval = Duration::from_millis(100);
    let mut cluster = Cluster::new(config, dir.path(), 19);
    for id in cluster.ids() {
        cluster.start(id).expect("start");
    }
    run_for(&mut cluster, 200).await;
    let mut topic_configs: BTreeMap<String, String> = configs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    topic_configs.insert("segment.bytes".into(), "1024".into());
    let id = cluster.topic_id();
    cluster
        .controller()
        .create_topic(TOPIC, 1, 3, topic_configs, id)
        .expect("create topic");
    run_until(&mut cluster, "a leader and two followers", 5_000, |c| {
        let views = c.replicas(TOPIC, 0);
        views.len() == 3 && views.iter().filter(|v| v.leader).count() == 1
    })
    .await;
    (dir, cluster)
}

fn leader(cluster: &Cluster) -> (i32, std::sync::Arc<ReplicaManager>) {
    let id = cluster
        .replicas(TOPIC, 0)
        .iter()
        .find(|v| v.leader)
        .map(|v| v.broker)
        .expect("a leader");
    (id, cluster.broker(id).expect("running"))
}

/// Appends `BATCHES` batches with record timestamp `timestamp` and waits
/// until every replica holds them below its high watermark.
async fn produce_all(cluster: &mut Cluster, timestamp: i64) {
    let (_, rm) = leader(cluster);
    for n in 0..BATCHES {
        let appended = rm
            .append(AppendRequest {
                acks: 1,
                timeout_ms: 2_000,
                transactional_id: None,
                origin: AppendOrigin::Client,
                partitions: vec![PartitionAppend {
                    topic: TOPIC.into(),
                    partition: 0,
                    records: batch(timestamp, n),
                }],
            })
            .await
            .wait()
            .await;
        assert!(appended[0].result.is_ok(), "{:?}", appended[0].result);
    }
    run_until(cluster, "every replica caught up", 5_000, |c| {
        c.replicas(TOPIC, 0)
            .iter()
            .all(|v| v.log_end_offset == RECORDS && v.high_watermark == RECORDS)
    })
    .await;
}

/// Per broker: (log start, segment base offsets) of its replica.
fn logs(cluster: &Cluster) -> BTreeMap<i32, (i64, Vec<i64>)> {
    cluster
        .running()
        .into_iter()
        .filter_map(|id| {
            let part = cluster.broker(id)?.partition(TOPIC, 0).ok()?;
            let reader = part.reader();
            let bases = reader
                .segments()
                .expect("segments")
                .iter()
                .map(|s| s.base_offset)
                .collect();
            Some((id, (reader.log_start_offset(), bases)))
        })
        .collect()
}

/// The partition directory of broker `id`'s replica.
fn partition_dir(dir: &TempDir, id: i32) -> PathBuf {
    dir.path()
        .join(format!("broker-{id}"))
        .join("logs")
        .join(format!("{TOPIC}-0"))
}

/// `.log` files, and leftovers of deleted segments, in a partition directory.
fn files(dir: &TempDir, id: i32) -> (Vec<String>, usize) {
    let mut logs = Vec::new();
    let mut deleted = 0;
    for entry in std::fs::read_dir(partition_dir(dir, id)).expect("list") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".log") {
            logs.push(name);
        } else if name.ends_with(".deleted") {
            deleted += 1;
        }
    }
    logs.sort();
    (logs, deleted)
}

/// Every replica starts at `start`, with the same segments, whose files
/// (and nothing else) are on disk.
fn assert_replicas_agree(cluster: &Cluster, dir: &TempDir, start: i64) {
    let logs = logs(cluster);
    assert_eq!(logs.len(), 3, "{logs:?}");
    let leader_bases = &logs[&leader(cluster).0].1;
    for (id, (log_start, bases)) in &logs {
        assert_eq!(*log_start, start, "broker {id}: {logs:?}");
        assert_eq!(
            bases, leader_bases,
            "broker {id} keeps other segments: {logs:?}"
        );
        assert!(bases[0] <= start, "broker {id}: {logs:?}");
        assert!(
            bases.get(1).is_none_or(|b| *b > start),
            "broker {id} keeps a segment below the start: {logs:?}"
        );
        let (files, deleted) = files(dir, *id);
        let expected: Vec<String> = bases.iter().map(|b| format!("{b:020}.log")).collect();
        assert_eq!(files, expected, "broker {id}");
        assert_eq!(deleted, 0, "broker {id} left .deleted files");
    }
}

async fn consumer_fetch(rm: &ReplicaManager, offset: i64) -> Option<ErrorCode> {
    let fetched = rm
        .fetch(FetchParams {
            replica_id: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 1 << 20,
            isolation: Isolation::ReadUncommitted,
            partitions: vec![FetchPartition {
                topic: TOPIC.into(),
                topic_id: None,
                partition: 0,
                fetch_offset: offset,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                max_bytes: 1 << 20,
                durable_offset: -1,
            }],
        })
        .await
        .expect("fetch");
    fetched[0].error.as_ref().map(|e| e.code)
}

fn earliest(rm: &ReplicaManager) -> i64 {
    let response = crate::grpc::list_offsets::list_offsets(
        rm,
        ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                topic: TOPIC.into(),
                partitions: vec![ListOffsetsPartition {
                    partition: 0,
                    timestamp: -2,
                    current_leader_epoch: -1,
                }],
            }],
        },
    )
    .expect("a known isolation level");
    response.topics[0].partitions[0].offset
}

fn to_delete(offset: i64) -> Vec<RecordsToDelete> {
    vec![RecordsToDelete {
        topic: TOPIC.into(),
        partition: 0,
        offset,
    }]
}

#[tokio::test(start_paused = true)]
async fn followers_follow_the_leaders_log_start_and_delete_the_same_segments() {
    let (dir, mut cluster) = cluster_with(&[]).await;
    produce_all(&mut cluster, BASE_MS).await;
    let (leader_id, rm) = leader(&cluster);
    let before = logs(&cluster);
    assert!(before[&leader_id].1.len() > 4, "small segments: {before:?}");
    let target = before[&leader_id].1[3] + 2;

    // Checked only: nothing moves.
    let checked = rm.delete_records(to_delete(-1), true).await;
    assert_eq!(checked, [Ok(RECORDS)]);
    let refused = rm.delete_records(to_delete(RECORDS + 1), true).await;
    let refused = refused[0].as_ref().expect_err("beyond the high watermark");
    assert_eq!(refused.code, ErrorCode::OffsetOutOfRange);
    assert!(
        refused
            .message
            .contains(&format!("valid offsets are 0 to {RECORDS}")),
        "{refused}"
    );
    let refused = rm.delete_records(to_delete(RECORDS + 1), false).await;
    assert_eq!(
        refused[0].as_ref().map_err(|e| e.code),
        Err(ErrorCode::OffsetOutOfRange)
    );
    let unknown = rm
        .delete_records(
            vec![RecordsToDelete {
                topic: "nope".into(),
                partition: 0,
                offset: 1,
            }],
            false,
        )
        .await;
    assert_eq!(
        unknown[0].as_ref().map_err(|e| e.code),
        Err(ErrorCode::UnknownTopicOrPartition)
    );
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader_id)
        .expect("a follower");
    let at_follower = cluster
        .broker(follower)
        .expect("running")
        .delete_records(to_delete(1), false)
        .await;
    assert_eq!(
        at_follower[0].as_ref().map_err(|e| e.code),
        Err(ErrorCode::NotLeaderOrFollower)
    );
    assert_eq!(
        logs(&cluster),
        before,
        "refused and checked requests changed nothing"
    );

    // Deleted on the leader at once; followers follow.
    let deleted = rm.delete_records(to_delete(target), false).await;
    assert_eq!(deleted, [Ok(target)]);
    assert_eq!(logs(&cluster)[&leader_id].0, target);
    assert_eq!(earliest(&rm), target);
    assert_eq!(
        consumer_fetch(&rm, target - 1).await,
        Some(ErrorCode::OffsetOutOfRange)
    );
    assert_eq!(consumer_fetch(&rm, target).await, None);
    run_until(
        &mut cluster,
        "followers at the leader's start",
        3_000,
        |c| {
            logs(c)
                .values()
                .all(|(start, bases)| *start == target && bases[0] <= target && bases[1] > target)
        },
    )
    .await;
    assert_replicas_agree(&cluster, &dir, target);

    // Going back is a no-op that answers the current start.
    assert_eq!(rm.delete_records(to_delete(1), false).await, [Ok(target)]);
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn old_records_expire_on_every_replica_even_when_the_partition_goes_quiet() {
    let (dir, mut cluster) =
        cluster_with(&[("retention.ms", "600000"), ("segment.ms", "2000")]).await;
    // Records an hour old: every closed segment is expired at once.
    produce_all(&mut cluster, BASE_MS - 3_600_000).await;
    run_until(
        &mut cluster,
        "closed segments deleted by time",
        1_000,
        |c| {
            let (_, rm) = leader(c);
            logs(c)[&leader(c).0].0 > 0 && earliest(&rm) > 0
        },
    )
    .await;
    // Quiet now: segment.ms rolls the active segment, which then expires
    // too; the log is empty at its end on every replica.
    run_until(&mut cluster, "every replica emptied", 10_000, |c| {
        logs(c)
            .values()
            .all(|(start, bases)| *start == RECORDS && bases == &[RECORDS])
    })
    .await;
    assert_replicas_agree(&cluster, &dir, RECORDS);
    let (_, rm) = leader(&cluster);
    assert_eq!(
        consumer_fetch(&rm, 0).await,
        Some(ErrorCode::OffsetOutOfRange)
    );
    assert_eq!(consumer_fetch(&rm, RECORDS).await, None);
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_oldest_segments_go_when_a_partition_outgrows_retention_bytes() {
    let (dir, mut cluster) = cluster_with(&[("retention.bytes", "3000")]).await;
    produce_all(&mut cluster, BASE_MS).await;
    run_until(
        &mut cluster,
        "size retention on every replica",
        3_000,
        |c| {
            let logs = logs(c);
            let start = logs[&leader(c).0].0;
            start > 0
                && logs
                    .values()
                    .all(|(s, bases)| *s == start && bases.get(1).is_none_or(|b| *b > start))
        },
    )
    .await;
    let (leader_id, rm) = leader(&cluster);
    let part = rm.partition(TOPIC, 0).expect("hosted");
    let segments = part.reader().segments().expect("segments");
    // As Kafka: the oldest segments go while the log stays at least
    // retention.bytes large without them.
    let total: u64 = segments.iter().map(|s| s.size_bytes).sum();
    assert!(total >= 3000, "too much went: {segments:?}");
    assert!(
        total - segments[0].size_bytes < 3000,
        "the oldest segment could have gone too: {segments:?}"
    );
    let start = logs(&cluster)[&leader_id].0;
    assert_eq!(start, segments[0].base_offset);
    assert_replicas_agree(&cluster, &dir, start);
    cluster.shutdown().await;
}

/// CPU time of every thread of this process so far (`/proc/self/task/*/schedstat`).
#[cfg(feature = "bench")]
fn process_cpu() -> Duration {
    let nanos: u64 = std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

/// docs/benchmarks.md, "Retention sweep": the CPU one retention pass costs
/// a broker hosting `STROM_BENCH_PARTITIONS` (10,000) partition leaders of
/// `STROM_BENCH_SEGMENTS` (1) one-batch segments each, the last active
/// (every segment holds a file descriptor: partitions × segments must stay
/// below `ulimit -n`). Run:
/// `cargo test --release -p strom-broker --features bench --lib retention_sweep_cost -- --nocapture`
/// (logs on /dev/shm when it exists, so fsyncs do not dominate the wall
/// time). Steady sweeps find nothing due; then the clock jumps two hours
/// and one sweep rolls every active segment and deletes every segment.
#[cfg(feature = "bench")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_sweep_cost_with_10000_partitions() {
    use std::sync::Arc;

    use strom_controller_client::QuorumClient;
    use strom_log::ManualClock;
    use strom_metadata::PartitionState;
    use strom_metadata::pb::metadata_record::Record;
    use strom_metadata::pb::{RegisterBrokerRecord, TopicRecord};
    use strom_metadata::records::{partition_record, record};
    use tokio::sync::watch;
    use tokio_util::sync::CancellationToken;
    use uuid::Uuid;

    use super::{Blocking, GrpcPeers, LogDirHealth, ReplicationConfig, Seams};
    use crate::lifecycle::BrokerStatus;
    use crate::metadata::MetadataCache;

    let env = |name: &str, default: i32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let partitions = env("STROM_BENCH_PARTITIONS", 10_000);
    let segments = env("STROM_BENCH_SEGMENTS", 1);
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").expect("temp dir")
    } else {
        tempfile::tempdir().expect("temp dir")
    };
    let topic_id = Uuid::new_v4();
    let mut records = vec![
        record(Record::RegisterBroker(RegisterBrokerRecord {
            broker_id: 1,
            broker_epoch: 1,
            incarnation_id: "bench".into(),
            endpoints: Vec::new(),
            rack: String::new(),
            static_configs: Default::default(),
        })),
        record(Record::Topic(TopicRecord {
            name: TOPIC.into(),
            topic_id: topic_id.as_bytes().to_vec(),
            // Every batch its own segment; expired after an hour.
            configs: [
                ("segment.bytes", "100"),
                ("segment.ms", "3600000"),
                ("retention.ms", "3600000"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        })),
    ];
    let state = PartitionState {
        replicas: vec![1],
        isr: vec![1],
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        elr: Vec::new(),
        adding: Vec::new(),
        removing: Vec::new(),
    };
    records.extend((0..partitions).map(|p| partition_record(topic_id, p, &state)));
    let cache = MetadataCache::new();
    cache.apply(1, &records).expect("image applies");
    let (_status_tx, status) = watch::channel(BrokerStatus {
        epoch: 1,
        fenced: false,
        caught_up: true,
        shutting_down: false,
    });
    let config = ReplicationConfig {
        // The loop's own timer stays out of the way: the test sweeps.
        retention_check_interval: Duration::from_secs(24 * 3600),
        ..ReplicationConfig::default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let clock = Arc::new(ManualClock::new(now));
    let seams = Seams {
        controller: Arc::new(QuorumClient::new(BTreeMap::new())),
        peers: Arc::new(GrpcPeers::new(config.clone(), cache.clone())),
        clock: clock.clone(),
        blocking: Blocking::Pool,
    };
    let rm = ReplicaManager::with_seams(
        1,
        config,
        dir.path(),
        cache,
        seams,
        status.clone(),
        LogDirHealth::new(&dir.path().join("logs")),
    );
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(rm.clone().run(status, shutdown.clone()));

    let started = std::time::Instant::now();
    for p in 0..partitions {
        for n in 0..i64::from(segments) {
            loop {
                let appended = rm
                    .append(AppendRequest {
                        acks: 1,
                        timeout_ms: 5_000,
                        transactional_id: None,
                        origin: AppendOrigin::Client,
                        partitions: vec![PartitionAppend {
                            topic: TOPIC.into(),
                            partition: p,
                            records: batch(now, n),
                        }],
                    })
                    .await
                    .wait()
                    .await;
                match &appended[0].result {
                    Ok(_) => break,
                    Err(e) if e.code == ErrorCode::NotLeaderOrFollower => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err(e) => panic!("append to partition {p}: {e}"),
                }
            }
        }
    }
    eprintln!(
        "setup: {partitions} partitions x {segments} segments in {:?}",
        started.elapsed()
    );

    let sweep = |label: &'static str| {
        let rm = rm.clone();
        async move {
            let (cpu, wall) = (process_cpu(), std::time::Instant::now());
            rm.retention_sweep().await;
            let (cpu, wall) = (process_cpu() - cpu, wall.elapsed());
            eprintln!(
                "{label}: cpu {:.1} ms, wall {:.1} ms, segments deleted so far {}",
                cpu.as_secs_f64() * 1e3,
                wall.as_secs_f64() * 1e3,
                rm.retention_stats().segments_deleted()
            );
            cpu
        }
    };
    let mut steady = Vec::new();
    for _ in 0..5 {
        steady.push(sweep("sweep, nothing due").await);
    }
    steady.sort();
    eprintln!(
        "nothing due: median cpu {:.1} ms per sweep (goal < 100 ms)",
        steady[2].as_secs_f64() * 1e3
    );
    assert_eq!(rm.retention_stats().segments_deleted(), 0);

    clock.advance(2 * 3_600_000);
    sweep("sweep rolling every active segment and deleting every segment").await;
    let all = u64::try_from(partitions * segments).expect("positive");
    assert_eq!(rm.retention_stats().segments_deleted(), all);
    for _ in 0..3 {
        sweep("sweep after, nothing due").await;
    }
    shutdown.cancel();
    run.await.expect("replica manager ends");
}
