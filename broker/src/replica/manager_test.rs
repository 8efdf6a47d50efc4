//! The real replica manager in one process: it follows an image fed to its
//! metadata cache, takes many leaderships at once, tells listeners, and
//! serves the one append and fetch path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use strom_controller_client::QuorumClient;
use strom_log::batch::{Compression, RecordBatchBuilder};
use strom_metadata::PartitionState;
use strom_metadata::pb::metadata_record::Record;
use strom_metadata::pb::{self, RegisterBrokerRecord, RemoveTopicRecord, TopicRecord};
use strom_metadata::records::{partition_record, record};
use strom_proto::v1::ErrorCode;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    AppendOrigin, AppendRequest, FetchParams, FetchPartition, Isolation, LeadershipChange,
    LeadershipListener, LeadershipRole, PartitionAppend, ReplicaManager, ReplicationConfig,
};
use crate::lifecycle::BrokerStatus;
use crate::metadata::MetadataCache;

const PARTITIONS: i32 = 40;

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<LeadershipChange>>);

impl LeadershipListener for Recorder {
    fn on_change(&self, change: &LeadershipChange) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(change.clone());
    }
}

impl Recorder {
    fn count(&self, role: LeadershipRole) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|c| c.role == role)
            .count()
    }

    async fn wait_for(&self, role: LeadershipRole, n: usize) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while self.count(role) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} {role:?} changes expected, saw {}", self.count(role)));
    }
}

fn image_records(topic_id: Uuid) -> Vec<pb::MetadataRecord> {
    let mut records = vec![
        record(Record::RegisterBroker(RegisterBrokerRecord {
            broker_id: 1,
            broker_epoch: 1,
            incarnation_id: "test".into(),
            endpoints: Vec::new(),
            rack: String::new(),
            static_configs: Default::default(),
        })),
        record(Record::Topic(TopicRecord {
            name: "t".into(),
            topic_id: topic_id.as_bytes().to_vec(),
            configs: Default::default(),
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
    records.extend((0..PARTITIONS).map(|p| partition_record(topic_id, p, &state)));
    records
}

fn batch(configure: impl FnOnce(RecordBatchBuilder) -> RecordBatchBuilder) -> Bytes {
    let mut b = configure(RecordBatchBuilder::new(Compression::None));
    b.append(1, Some(b"key"), Some(b"value"), &[]);
    b.build()
}

fn append(partition: i32, records: Bytes) -> AppendRequest {
    AppendRequest {
        acks: -1,
        timeout_ms: 5_000,
        transactional_id: None,
        origin: AppendOrigin::Client,
        partitions: vec![PartitionAppend {
            topic: "t".into(),
            partition,
            records,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_manager_leads_many_partitions_serves_appends_and_tells_listeners() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = MetadataCache::new();
    let topic_id = Uuid::new_v4();
    cache
        .apply(1, &image_records(topic_id))
        .expect("image applies");
    let (status_tx, status) = watch::channel(BrokerStatus {
        epoch: 1,
        fenced: false,
        caught_up: true,
        shutting_down: false,
    });
    let rm = ReplicaManager::new(
        1,
        ReplicationConfig::default(),
        dir.path(),
        cache.clone(),
        Arc::new(QuorumClient::new(BTreeMap::new())),
        status.clone(),
        super::LogDirHealth::new(&dir.path().join("logs")),
    );
    let recorder = Arc::new(Recorder::default());
    rm.add_listener(recorder.clone());
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(rm.clone().run(status, shutdown.clone()));

    let n = usize::try_from(PARTITIONS).expect("small");
    recorder.wait_for(LeadershipRole::Leader, n).await;

    // acks=all: the single-replica ISR has it at once.
    let results = rm.append(append(3, batch(|b| b))).await.wait().await;
    let appended = results[0].result.as_ref().expect("appended");
    assert_eq!((appended.base_offset, appended.last_offset), (0, 0));

    // A transactional batch that would start a transaction is verified at
    // the transaction coordinator first (KIP-890): without the producer's
    // transactional id it is refused, and nothing is written.
    let refused = rm
        .append(append(
            3,
            batch(|b| b.producer(9, 0, 0).transactional(true)),
        ))
        .await
        .wait()
        .await;
    let e = refused[0].result.as_ref().expect_err("refused");
    assert_eq!(e.code, ErrorCode::InvalidRequest, "{e}");
    // With one, but no coordinator on this broker, it is refused too.
    let mut with_id = append(3, batch(|b| b.producer(9, 0, 0).transactional(true)));
    with_id.transactional_id = Some("t".into());
    let refused = rm.append(with_id).await.wait().await;
    let e = refused[0].result.as_ref().expect_err("refused");
    assert_eq!(e.code, ErrorCode::CoordinatorNotAvailable, "{e}");

    // An idempotent batch is written once: its retry is answered with the
    // original offsets, a gap in its sequences is refused.
    for _ in 0..2 {
        let results = rm
            .append(append(3, batch(|b| b.producer(9, 0, 0))))
            .await
            .wait()
            .await;
        let appended = results[0].result.as_ref().expect("appended");
        assert_eq!((appended.base_offset, appended.last_offset), (1, 1));
    }
    let gap = rm
        .append(append(3, batch(|b| b.producer(9, 0, 5))))
        .await
        .wait()
        .await;
    let e = gap[0].result.as_ref().expect_err("refused");
    assert_eq!(e.code, ErrorCode::OutOfOrderSequenceNumber);

    // A partition that does not exist, beside one that does.
    let mut two = append(3, batch(|b| b));
    two.partitions.push(PartitionAppend {
        topic: "t".into(),
        partition: PARTITIONS,
        records: batch(|b| b),
    });
    let results = rm.append(two).await.wait().await;
    assert_eq!(results[0].result.as_ref().map(|a| a.base_offset), Ok(2));
    assert_eq!(
        results[1].result.as_ref().map_err(|e| e.code),
        Err(ErrorCode::UnknownTopicOrPartition)
    );

    let fetched = rm
        .fetch(FetchParams {
            replica_id: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 1 << 20,
            isolation: Isolation::ReadUncommitted,
            partitions: vec![FetchPartition {
                topic: "t".into(),
                topic_id: Some(topic_id),
                partition: 3,
                fetch_offset: 0,
                current_leader_epoch: 0,
                last_fetched_epoch: -1,
                durable_offset: -1,
                max_bytes: 1 << 20,
            }],
        })
        .await
        .expect("fetch");
    assert_eq!(fetched[0].error, None);
    assert_eq!(fetched[0].high_watermark, 3);
    let batches: Vec<_> = strom_log::batch::BatchIter::new(fetched[0].records.clone())
        .collect::<Result<_, _>>()
        .expect("batches");
    assert_eq!(batches.len(), 3);

    // A fetch that names the wrong topic id is refused for that partition.
    let wrong = rm
        .fetch(FetchParams {
            replica_id: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 0,
            isolation: Isolation::ReadUncommitted,
            partitions: vec![FetchPartition {
                topic: "t".into(),
                topic_id: Some(Uuid::new_v4()),
                partition: 3,
                fetch_offset: 0,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                durable_offset: -1,
                max_bytes: 1 << 20,
            }],
        })
        .await
        .expect("fetch");
    assert_eq!(
        wrong[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::UnknownTopicId)
    );

    // Deleting the topic removes every replica, and listeners hear it.
    cache
        .apply(
            2,
            &[record(Record::RemoveTopic(RemoveTopicRecord {
                topic_id: topic_id.as_bytes().to_vec(),
            }))],
        )
        .expect("remove applies");
    recorder.wait_for(LeadershipRole::Removed, n).await;
    let gone = rm.append(append(3, batch(|b| b))).await.wait().await;
    assert_eq!(
        gone[0].result.as_ref().map_err(|e| e.code),
        Err(ErrorCode::UnknownTopicOrPartition)
    );

    shutdown.cancel();
    run.await.expect("replica manager ends");
    drop(status_tx);
}
