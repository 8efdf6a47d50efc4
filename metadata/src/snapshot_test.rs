use std::time::Instant;

use super::*;
use crate::PartitionState;
use crate::image::DEFAULT_MIN_INSYNC_REPLICAS as MIN_ISR;
use crate::testutil::{Cluster, tid};

#[test]
fn snapshot_round_trip_restores_an_equal_image() {
    let mut c = Cluster::with_racks(&[(1, "a"), (2, "b"), (3, "c"), (4, "a")]);
    c.apply(vec![record(Record::Cluster(pb::ClusterRecord {
        cluster_id: "cid".into(),
    }))])
    .unwrap();
    c.topic("t", &[&[1, 2, 3], &[2, 3, 4], &[3, 4, 1]]);
    c.topic("u", &[&[4, 1]]);
    c.config("t", "retention.ms", "1000");
    c.config("u", "cleanup.policy", "compact");
    c.set("t", 0, &[1, 2], 2);
    c.set("t", 0, &[2], 2);
    c.fence_flag(3);
    c.shutdown_flag(4);
    c.apply(vec![
        config_record(ResourceType::Cluster, String::new(), "a", "b"),
        config_record(ResourceType::Broker, "2".into(), "log.dirs", "/d"),
    ])
    .unwrap();
    let snap = c.image.to_snapshot();
    assert_eq!(snap.offset, c.image.offset());
    let restored = ClusterImage::from_snapshot(&snap).unwrap();
    assert_eq!(restored, c.image);
    // The snapshot of the restored image is the same snapshot.
    assert_eq!(restored.to_snapshot(), snap);
}

#[test]
fn empty_image_round_trips() {
    let image = ClusterImage::default();
    let restored = ClusterImage::from_snapshot(&image.to_snapshot()).unwrap();
    assert_eq!(restored, image);
    assert_eq!(restored.offset(), -1);
}

#[test]
fn a_corrupt_snapshot_is_rejected() {
    let mut c = Cluster::with_brokers(&[1, 2]);
    c.topic("t", &[&[1, 2]]);
    let mut snap = c.image.to_snapshot();
    snap.records.swap(0, 2);
    let last = snap.records.len() - 1;
    snap.records.swap(2, last); // a partition before its topic
    assert!(ClusterImage::from_snapshot(&snap).is_err());
}

/// 100 topics x 1,000 partitions, RF 3 over 30 brokers.
fn big_image() -> ClusterImage {
    let mut records = Vec::with_capacity(100_100);
    let mut c = Cluster::with_brokers(&(0..30).collect::<Vec<_>>());
    for t in 0..100 {
        let name = format!("topic-{t}");
        let id = tid(&name);
        records.push(record(Record::Topic(pb::TopicRecord {
            name,
            topic_id: id.as_bytes().to_vec(),
            configs: Default::default(),
        })));
        for p in 0..1000 {
            let first = (t * 7 + p) % 30;
            let replicas = vec![first, (first + 1) % 30, (first + 2) % 30];
            // Every third partition below min.insync.replicas, with an ELR.
            let (isr, elr) = if p % 3 == 0 {
                (vec![replicas[0]], vec![replicas[2]])
            } else {
                (replicas.clone(), Vec::new())
            };
            let state = PartitionState {
                isr,
                leader: replicas[0],
                replicas,
                leader_epoch: p % 5,
                partition_epoch: p % 7,
                elr,
                adding: Vec::new(),
                removing: Vec::new(),
            };
            records.push(partition_record(id, p, &state));
        }
    }
    c.apply(records).unwrap();
    c.image
}

#[test]
fn hundred_thousand_partitions_snapshot_and_restore() {
    let image = big_image();
    assert_eq!(image.partition_count(), 100_000);
    let started = Instant::now();
    let snap = image.to_snapshot();
    let restored = ClusterImage::from_snapshot(&snap).unwrap();
    let took = started.elapsed();
    assert_eq!(restored, image);
    let replicas: usize = (0..30)
        .map(|b| restored.partitions_of_broker(b).count())
        .sum();
    assert_eq!(replicas, 300_000);
    // Generous bound (debug build, shared machine); typically well under a second.
    assert!(took.as_secs() < 10, "snapshot + restore took {took:?}");

    // A small batch on the big image is cheap and atomic.
    let mut image = restored;
    let before = image.clone();
    let started = Instant::now();
    let bad = vec![
        crate::fence_broker(&image, 0, MIN_ISR).remove(0),
        record(Record::RemoveTopic(pb::RemoveTopicRecord {
            topic_id: tid("topic-0").as_bytes().to_vec(),
        })),
        record(Record::RemoveTopic(pb::RemoveTopicRecord {
            topic_id: tid("topic-0").as_bytes().to_vec(),
        })),
    ];
    let next = image.offset() + 1;
    assert!(image.apply_batch(next, &bad).is_err());
    assert!(started.elapsed().as_millis() < 500);
    assert_eq!(image, before);
}
