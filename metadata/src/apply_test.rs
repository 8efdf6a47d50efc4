use super::*;
use crate::ErrorKind;
use crate::records::record;
use crate::testutil::{Cluster, tid};

fn base() -> Cluster {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    c.apply(vec![record(Record::Cluster(pb::ClusterRecord {
        cluster_id: "c1".into(),
    }))])
    .unwrap();
    c.topic("t", &[&[1, 2, 3], &[2, 3, 1]]);
    c
}

fn part(topic: &str, p: i32, replicas: &[i32], isr: &[i32], leader: i32) -> pb::MetadataRecord {
    record(Record::Partition(pb::PartitionRecord {
        topic_id: tid(topic).as_bytes().to_vec(),
        partition: p,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        elr: Vec::new(),
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    }))
}

fn change(
    topic: &str,
    p: i32,
    expected: i32,
    leader: Option<i32>,
    isr: Option<&[i32]>,
    replicas: Option<&[i32]>,
) -> pb::MetadataRecord {
    record(Record::PartitionChange(pb::PartitionChangeRecord {
        topic_id: tid(topic).as_bytes().to_vec(),
        partition: p,
        expected_partition_epoch: expected,
        leader,
        isr: isr.map(|i| pb::ReplicaList::of(i.to_vec())),
        replicas: replicas.map(|r| pb::ReplicaList::of(r.to_vec())),
        elr: None,
        adding_replicas: None,
        removing_replicas: None,
    }))
}

fn topic_rec(name: &str, id: &[u8]) -> pb::MetadataRecord {
    record(Record::Topic(pb::TopicRecord {
        name: name.into(),
        topic_id: id.to_vec(),
        configs: Default::default(),
    }))
}

fn broker_rec(kind: &str, id: i32, epoch: i64) -> pb::MetadataRecord {
    match kind {
        "register" => record(Record::RegisterBroker(pb::RegisterBrokerRecord {
            broker_id: id,
            broker_epoch: epoch,
            incarnation_id: "x".into(),
            endpoints: vec![],
            rack: String::new(),
            static_configs: Default::default(),
        })),
        "fence" => record(Record::FenceBroker(pb::FenceBrokerRecord {
            broker_id: id,
            broker_epoch: epoch,
        })),
        "unfence" => record(Record::UnfenceBroker(pb::UnfenceBrokerRecord {
            broker_id: id,
            broker_epoch: epoch,
        })),
        "shutdown" => record(Record::BrokerControlledShutdown(
            pb::BrokerControlledShutdownRecord {
                broker_id: id,
                broker_epoch: epoch,
            },
        )),
        "unregister" => record(Record::UnregisterBroker(pb::UnregisterBrokerRecord {
            broker_id: id,
            broker_epoch: epoch,
        })),
        _ => unreachable!(),
    }
}

fn config(ty: ResourceType, owner: &str, key: &str, value: Option<&str>) -> pb::MetadataRecord {
    record(Record::Config(pb::ConfigRecord {
        resource: Some(pb::ConfigResource {
            r#type: ty as i32,
            name: owner.into(),
        }),
        name: key.into(),
        value: value.map(String::from),
    }))
}

#[test]
fn every_precondition_is_checked_at_apply_and_a_rejected_record_changes_nothing() {
    let fresh = tid("fresh").as_bytes().to_vec();
    let cases: Vec<(&str, pb::MetadataRecord, ErrorKind)> = vec![
        (
            "empty record",
            pb::MetadataRecord { record: None },
            ErrorKind::CorruptMessage,
        ),
        (
            "second different cluster id",
            record(Record::Cluster(pb::ClusterRecord {
                cluster_id: "c2".into(),
            })),
            ErrorKind::InvalidRequest,
        ),
        (
            "register with same epoch",
            broker_rec("register", 1, 11),
            ErrorKind::StaleBrokerEpoch,
        ),
        (
            "register with older epoch",
            broker_rec("register", 1, 5),
            ErrorKind::StaleBrokerEpoch,
        ),
        (
            "fence unknown broker",
            broker_rec("fence", 9, 1),
            ErrorKind::BrokerIdNotRegistered,
        ),
        (
            "fence stale epoch",
            broker_rec("fence", 1, 10),
            ErrorKind::StaleBrokerEpoch,
        ),
        (
            "unfence stale epoch",
            broker_rec("unfence", 1, 12),
            ErrorKind::StaleBrokerEpoch,
        ),
        (
            "shutdown stale epoch",
            broker_rec("shutdown", 2, 1),
            ErrorKind::StaleBrokerEpoch,
        ),
        (
            "unregister stale epoch",
            broker_rec("unregister", 3, 1),
            ErrorKind::StaleBrokerEpoch,
        ),
        (
            "unregister unknown",
            broker_rec("unregister", 7, 17),
            ErrorKind::BrokerIdNotRegistered,
        ),
        (
            "topic bad name",
            topic_rec("a/b", &fresh),
            ErrorKind::InvalidTopicException,
        ),
        (
            "topic name used",
            topic_rec("t", &fresh),
            ErrorKind::TopicAlreadyExists,
        ),
        (
            "topic id used",
            topic_rec("u", tid("t").as_bytes()),
            ErrorKind::TopicAlreadyExists,
        ),
        (
            "topic id 15 bytes",
            topic_rec("u", &[1; 15]),
            ErrorKind::CorruptMessage,
        ),
        (
            "topic id nil",
            topic_rec("u", &[0; 16]),
            ErrorKind::CorruptMessage,
        ),
        (
            "partition of unknown topic",
            part("nope", 0, &[1], &[1], 1),
            ErrorKind::UnknownTopicId,
        ),
        (
            "partition exists",
            part("t", 0, &[1], &[1], 1),
            ErrorKind::InvalidPartitions,
        ),
        (
            "partition skips one",
            part("t", 3, &[1], &[1], 1),
            ErrorKind::InvalidPartitions,
        ),
        (
            "partition no replicas",
            part("t", 2, &[], &[], -1),
            ErrorKind::InvalidRequest,
        ),
        (
            "partition dup replicas",
            part("t", 2, &[1, 1], &[1], 1),
            ErrorKind::InvalidRequest,
        ),
        (
            "partition isr not subset",
            part("t", 2, &[1, 2], &[3], 3),
            ErrorKind::InvalidRequest,
        ),
        (
            "partition empty isr",
            part("t", 2, &[1, 2], &[], -1),
            ErrorKind::InvalidRequest,
        ),
        (
            "partition leader not in isr",
            part("t", 2, &[1, 2], &[1], 2),
            ErrorKind::InvalidRequest,
        ),
        (
            "change of unknown topic",
            change("nope", 0, 0, Some(2), None, None),
            ErrorKind::UnknownTopicId,
        ),
        (
            "change of unknown partition",
            change("t", 5, 0, Some(2), None, None),
            ErrorKind::UnknownTopicOrPartition,
        ),
        (
            "change with stale partition epoch",
            change("t", 0, 7, Some(2), None, None),
            ErrorKind::InvalidUpdateVersion,
        ),
        (
            "change leader outside isr",
            change("t", 0, 0, Some(3), Some(&[1, 2]), None),
            ErrorKind::InvalidRequest,
        ),
        (
            "change isr outside replicas",
            change("t", 0, 0, None, Some(&[1, 4]), None),
            ErrorKind::InvalidRequest,
        ),
        (
            "change to empty isr",
            change("t", 0, 0, Some(-1), Some(&[]), None),
            ErrorKind::InvalidRequest,
        ),
        (
            "change replicas dropping the leader",
            change("t", 0, 0, None, Some(&[1]), Some(&[2, 3])),
            ErrorKind::InvalidRequest,
        ),
        (
            "remove unknown topic",
            record(Record::RemoveTopic(pb::RemoveTopicRecord {
                topic_id: fresh.clone(),
            })),
            ErrorKind::UnknownTopicId,
        ),
        (
            "config of unknown topic",
            config(ResourceType::Topic, "nope", "retention.ms", Some("1")),
            ErrorKind::UnknownTopicOrPartition,
        ),
        (
            "config of non-numeric broker",
            config(ResourceType::Broker, "x", "k", Some("1")),
            ErrorKind::CorruptMessage,
        ),
        (
            "config of unspecified owner",
            config(ResourceType::Unspecified, "", "k", Some("1")),
            ErrorKind::CorruptMessage,
        ),
        (
            "config without name",
            config(ResourceType::Cluster, "", "", Some("1")),
            ErrorKind::CorruptMessage,
        ),
    ];
    let mut c = base();
    let before = c.image.clone();
    for (name, rec, want) in cases {
        let err = c.try_apply(vec![rec]).expect_err(name);
        assert_eq!(err.code, want, "{name}: {err}");
        assert_eq!(c.image, before, "{name}: image changed");
    }
}

#[test]
fn a_batch_with_one_bad_record_applies_nothing() {
    let mut c = base();
    let before = c.image.clone();
    let id = tid("new");
    let batch = vec![
        topic_rec("new", id.as_bytes()),
        part("new", 0, &[1, 2], &[1, 2], 1),
        part("new", 1, &[2, 3], &[2, 3], 2),
        change("new", 1, 0, Some(3), None, Some(&[3, 2])),
        change("t", 0, 0, Some(2), Some(&[2, 3]), None),
        change("t", 1, 0, None, Some(&[2, 3]), Some(&[2, 3, 4])),
        config(ResourceType::Topic, "t", "retention.ms", Some("5")),
        config(ResourceType::Broker, "1", "log.dirs", Some("/x")),
        config(ResourceType::Cluster, "", "a", Some("b")),
        broker_rec("fence", 1, 11),
        broker_rec("unregister", 3, 13),
        broker_rec("register", 3, 20),
        record(Record::RemoveTopic(pb::RemoveTopicRecord {
            topic_id: tid("t").as_bytes().to_vec(),
        })),
        // Rejected: stale epoch (the change above bumped partition 0 of "t" away,
        // and the topic is gone anyway).
        change("t", 0, 0, Some(1), None, None),
    ];
    let err = c.try_apply(batch.clone()).unwrap_err();
    assert_eq!(err.code, ErrorKind::UnknownTopicId, "{err}");
    assert!(
        err.message.starts_with("record 13 (partition change)"),
        "{err}"
    );
    assert_eq!(c.image, before);
    assert_eq!(c.image.partitions_of_broker(3).count(), 2);

    // Without the bad record the same batch applies.
    c.apply(batch[..13].to_vec()).unwrap();
    assert!(c.image.topic_by_name("t").is_none());
    assert_eq!(c.image.partition(&id, 1).unwrap().replicas, vec![3, 2]);
    assert_eq!(c.image.broker_configs(1).unwrap()["log.dirs"], "/x");
    assert_eq!(c.image.partition_count(), 2);
    assert_eq!(c.image.partitions_of_broker(1).count(), 1);
}

#[test]
fn records_may_refer_to_what_earlier_records_of_the_batch_created() {
    let mut c = base();
    c.apply(vec![
        topic_rec("n", tid("n").as_bytes()),
        part("n", 0, &[1, 2], &[1, 2], 1),
        change("n", 0, 0, Some(2), Some(&[2]), None),
        change("n", 0, 1, None, Some(&[2, 1]), None),
        config(ResourceType::Topic, "n", "retention.ms", Some("1")),
    ])
    .unwrap();
    let s = c.state("n", 0);
    assert_eq!(
        (s.leader, s.isr.clone(), s.leader_epoch, s.partition_epoch),
        (2, vec![2, 1], 1, 2)
    );
}

#[test]
fn partition_change_bumps_epochs_and_replaces_fields() {
    // (leader, isr, replicas) -> (leader, isr, replicas, leader_epoch, partition_epoch)
    type Case<'a> = (
        Option<i32>,
        Option<&'a [i32]>,
        Option<&'a [i32]>,
        i32,
        &'a [i32],
        &'a [i32],
        i32,
        i32,
    );
    let cases: &[Case<'_>] = &[
        (None, Some(&[1, 2]), None, 1, &[1, 2], &[1, 2, 3], 0, 1),
        (Some(2), None, None, 2, &[1, 2, 3], &[1, 2, 3], 1, 1),
        // The leader field present with the same value still bumps the leader epoch.
        (Some(1), None, None, 1, &[1, 2, 3], &[1, 2, 3], 1, 1),
        (Some(-1), Some(&[3]), None, -1, &[3], &[1, 2, 3], 1, 1),
        (None, Some(&[1]), Some(&[1, 4]), 1, &[1], &[1, 4], 0, 1),
    ];
    for (i, &(leader, isr, replicas, l, want_isr, want_replicas, le, pe)) in
        cases.iter().enumerate()
    {
        let mut c = base();
        c.apply(vec![change("t", 0, 0, leader, isr, replicas)])
            .unwrap();
        let s = c.state("t", 0);
        assert_eq!(
            (
                s.leader,
                s.isr.as_slice(),
                s.replicas.as_slice(),
                s.leader_epoch,
                s.partition_epoch
            ),
            (l, want_isr, want_replicas, le, pe),
            "case {i}"
        );
        let on4 = c.image.partitions_of_broker(4).count();
        assert_eq!(
            on4,
            usize::from(want_replicas.contains(&4)),
            "case {i} index"
        );
    }
}

#[test]
fn stale_partition_epoch_is_rejected_after_a_change() {
    let mut c = base();
    c.apply(vec![change("t", 0, 0, None, Some(&[1, 2]), None)])
        .unwrap();
    let err = c
        .try_apply(vec![change("t", 0, 0, None, Some(&[1]), None)])
        .unwrap_err();
    assert_eq!(err.code, ErrorKind::InvalidUpdateVersion);
    assert_eq!(c.state("t", 0).isr, vec![1, 2]);
}

#[test]
fn broker_lifecycle_flags() {
    let mut c = base();
    c.apply(vec![broker_rec("shutdown", 2, 12)]).unwrap();
    assert!(c.image.broker(2).unwrap().in_controlled_shutdown);
    assert!(!c.image.is_alive(2));
    c.apply(vec![broker_rec("register", 2, 30)]).unwrap();
    let b = c.image.broker(2).unwrap();
    assert!(b.fenced && !b.in_controlled_shutdown && b.epoch == 30);
    c.apply(vec![broker_rec("unfence", 2, 30)]).unwrap();
    assert!(c.image.is_alive(2));
    c.apply(vec![broker_rec("fence", 2, 30)]).unwrap();
    assert!(c.image.broker(2).unwrap().fenced);
    c.apply(vec![broker_rec("unregister", 2, 30)]).unwrap();
    assert!(c.image.broker(2).is_none());
}

#[test]
fn cluster_id_is_set_once() {
    let mut c = Cluster::default();
    assert_eq!(c.image.cluster_id(), None);
    let rec = |id: &str| {
        record(Record::Cluster(pb::ClusterRecord {
            cluster_id: id.into(),
        }))
    };
    c.apply(vec![rec("a")]).unwrap();
    c.apply(vec![rec("a")]).unwrap();
    assert_eq!(
        c.try_apply(vec![rec("b")]).unwrap_err().code,
        ErrorKind::InvalidRequest
    );
    assert_eq!(c.image.cluster_id(), Some("a"));
}

#[test]
fn offsets_must_increase() {
    let mut image = ClusterImage::default();
    assert_eq!(image.offset(), -1);
    image.apply_batch(0, &[]).unwrap();
    image.apply_batch(5, &[]).unwrap();
    assert_eq!(image.offset(), 5);
    assert_eq!(
        image.apply_batch(5, &[]).unwrap_err().code,
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        image.apply_batch(3, &[]).unwrap_err().code,
        ErrorKind::InvalidRequest
    );
    assert_eq!(image.offset(), 5);
}

#[test]
fn configs_are_set_and_removed() {
    let mut c = base();
    c.apply(vec![
        config(ResourceType::Cluster, "", "x", Some("1")),
        config(ResourceType::Broker, "2", "y", Some("2")),
        config(ResourceType::Topic, "t", "retention.ms", Some("3")),
    ])
    .unwrap();
    assert_eq!(c.image.cluster_configs()["x"], "1");
    assert_eq!(c.image.broker_configs(2).unwrap()["y"], "2");
    assert_eq!(
        c.image.topic_by_name("t").unwrap().configs["retention.ms"],
        "3"
    );
    c.apply(vec![
        config(ResourceType::Cluster, "", "x", None),
        config(ResourceType::Broker, "2", "y", None),
        config(ResourceType::Topic, "t", "retention.ms", None),
    ])
    .unwrap();
    assert!(c.image.cluster_configs().is_empty());
    assert!(c.image.broker_configs(2).is_none());
    assert!(c.image.topic_by_name("t").unwrap().configs.is_empty());
}
