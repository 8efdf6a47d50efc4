use super::*;
use crate::ErrorKind;
use crate::pb::metadata_record::Record;
use crate::testutil::{Cluster, kinds, tid};

fn spec(name: &str, partitions: i32, rf: i32) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        assignment: None,
        configs: BTreeMap::new(),
    }
}

fn with_assignment(name: &str, a: &[&[i32]]) -> CreateTopicSpec {
    CreateTopicSpec {
        assignment: Some(a.iter().map(|p| p.to_vec()).collect()),
        ..spec(name, -1, -1)
    }
}

fn partitions(records: &[pb::MetadataRecord]) -> Vec<pb::PartitionRecord> {
    records
        .iter()
        .filter_map(|r| match &r.record {
            Some(Record::Partition(p)) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// Brokers 1-5; 4 fenced, 5 shutting down: three alive.
fn cluster() -> Cluster {
    let mut c = Cluster::with_brokers(&[1, 2, 3, 4, 5]);
    c.fence_flag(4);
    c.shutdown_flag(5);
    c
}

#[test]
fn create_topic_places_on_alive_brokers_with_full_isr() {
    let mut c = cluster();
    let mut s = spec("orders", 6, 3);
    s.configs.insert("retention.ms".into(), "1000".into());
    let records = create_topic(&c.image, &s, tid("orders"), 1).unwrap();
    assert_eq!(kinds(&records)[0], "topic");
    let parts = partitions(&records);
    assert_eq!(parts.len(), 6);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p.partition, i as i32);
        assert_eq!(p.replicas.len(), 3);
        assert!(p.replicas.iter().all(|r| [1, 2, 3].contains(r)), "{p:?}");
        assert_eq!(p.isr, p.replicas);
        assert_eq!(p.leader, p.replicas[0]);
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
    }
    c.apply(records).unwrap();
    let t = c.image.topic_by_name("orders").unwrap();
    assert_eq!(t.configs["retention.ms"], "1000");
    assert_eq!(c.image.partition_count(), 6);
    assert_eq!(crate::leader_imbalance(&c.image).values().sum::<f64>(), 0.0);
}

#[test]
fn explicit_assignment_keeps_fenced_replicas_out_of_the_isr() {
    let c = cluster();
    let records = create_topic(
        &c.image,
        &with_assignment("a", &[&[4, 1, 5], &[2, 4]]),
        tid("a"),
        0,
    );
    let e = records.unwrap_err();
    assert_eq!(e.code, ErrorKind::InvalidReplicaAssignment, "{e}");
    let records = create_topic(
        &c.image,
        &with_assignment("a", &[&[4, 1, 5], &[2, 4, 3]]),
        tid("a"),
        0,
    )
    .unwrap();
    let parts = partitions(&records);
    assert_eq!((parts[0].isr.clone(), parts[0].leader), (vec![1], 1));
    assert_eq!((parts[1].isr.clone(), parts[1].leader), (vec![2, 3], 2));
    let all_dead =
        create_topic(&c.image, &with_assignment("a", &[&[4, 5]]), tid("a"), 0).unwrap_err();
    assert_eq!(all_dead.code, ErrorKind::InvalidReplicaAssignment);
}

#[test]
fn create_topic_rejections() {
    let mut c = cluster();
    c.topic("taken", &[&[1]]);
    let configs = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
    let cases: Vec<(CreateTopicSpec, Uuid, ErrorKind)> = vec![
        (
            spec("bad name", 1, 1),
            tid("x"),
            ErrorKind::InvalidTopicException,
        ),
        (spec("..", 1, 1), tid("x"), ErrorKind::InvalidTopicException),
        (spec("taken", 1, 1), tid("x"), ErrorKind::TopicAlreadyExists),
        (spec("x", 1, 1), tid("taken"), ErrorKind::TopicAlreadyExists),
        (spec("x", 1, 1), Uuid::nil(), ErrorKind::InvalidRequest),
        (spec("x", 0, 1), tid("x"), ErrorKind::InvalidPartitions),
        (spec("x", -1, 1), tid("x"), ErrorKind::InvalidPartitions),
        (
            spec("x", 1, 0),
            tid("x"),
            ErrorKind::InvalidReplicationFactor,
        ),
        // Five registered, three alive.
        (
            spec("x", 1, 4),
            tid("x"),
            ErrorKind::InvalidReplicationFactor,
        ),
        (
            CreateTopicSpec {
                configs: configs("retention.hours", "1"),
                ..spec("x", 1, 1)
            },
            tid("x"),
            ErrorKind::InvalidConfig,
        ),
        (
            CreateTopicSpec {
                configs: configs("min.insync.replicas", "3"),
                ..spec("x", 1, 2)
            },
            tid("x"),
            ErrorKind::InvalidConfig,
        ),
        (
            CreateTopicSpec {
                num_partitions: 3,
                ..with_assignment("x", &[&[1]])
            },
            tid("x"),
            ErrorKind::InvalidRequest,
        ),
        (
            CreateTopicSpec {
                replication_factor: 2,
                ..with_assignment("x", &[&[1]])
            },
            tid("x"),
            ErrorKind::InvalidRequest,
        ),
        (
            with_assignment("x", &[&[1, 9]]),
            tid("x"),
            ErrorKind::InvalidReplicaAssignment,
        ),
        (
            with_assignment("x", &[&[1, 2], &[3]]),
            tid("x"),
            ErrorKind::InvalidReplicaAssignment,
        ),
        (
            with_assignment("x", &[]),
            tid("x"),
            ErrorKind::InvalidReplicaAssignment,
        ),
        (
            CreateTopicSpec {
                configs: configs("min.insync.replicas", "2"),
                ..with_assignment("x", &[&[1]])
            },
            tid("x"),
            ErrorKind::InvalidConfig,
        ),
    ];
    for (s, id, want) in cases {
        let e = create_topic(&c.image, &s, id, 0).unwrap_err();
        assert_eq!(e.code, want, "{s:?}: {e}");
    }
    // Matching counts alongside an assignment are fine.
    let ok = CreateTopicSpec {
        num_partitions: 1,
        replication_factor: 1,
        ..with_assignment("x", &[&[1]])
    };
    assert!(create_topic(&c.image, &ok, tid("x"), 0).is_ok());
}

#[test]
fn create_topics_rejects_duplicates_and_balances_across_the_request() {
    let c = Cluster::with_brokers(&[1, 2, 3, 4]);
    let req = vec![
        (spec("a", 1, 1), tid("a")),
        (spec("dup", 1, 1), tid("dup1")),
        (spec("b", 1, 1), tid("b")),
        (spec("dup", 1, 1), tid("dup2")),
        (spec("c", 1, 1), tid("c")),
        (spec("d", 1, 1), tid("c")),
        (spec("e", 1, 1), tid("e")),
    ];
    let results = create_topics(&c.image, &req, 3);
    let codes: Vec<Option<ErrorKind>> = results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.code))
        .collect();
    use ErrorKind::InvalidRequest as Dup;
    assert_eq!(
        codes,
        vec![None, Some(Dup), None, Some(Dup), None, Some(Dup), None]
    );
    // Four single-partition topics on four brokers: one leader each.
    let mut leaders: Vec<i32> = results
        .iter()
        .flatten()
        .map(|r| partitions(r)[0].leader)
        .collect();
    leaders.sort();
    assert_eq!(leaders, vec![1, 2, 3, 4]);
}

#[test]
fn delete_topic_removes_it() {
    let mut c = cluster();
    c.topic("t", &[&[1, 2]]);
    assert_eq!(
        delete_topic(&c.image, "nope").unwrap_err().code,
        ErrorKind::UnknownTopicOrPartition
    );
    let records = delete_topic(&c.image, "t").unwrap();
    assert_eq!(kinds(&records), vec!["remove topic"]);
    c.apply(records).unwrap();
    assert!(c.image.topic_by_name("t").is_none());
    assert_eq!(c.image.partition_count(), 0);
    assert_eq!(c.image.partitions_of_broker(1).count(), 0);
}

#[test]
fn create_partitions_adds_only() {
    let mut c = cluster();
    c.topic("t", &[&[1, 2], &[2, 3]]);
    let records = create_partitions(&c.image, "t", 5, None, 0).unwrap();
    let parts = partitions(&records);
    assert_eq!(
        parts.iter().map(|p| p.partition).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert!(
        parts
            .iter()
            .all(|p| p.replicas.len() == 2 && p.isr == p.replicas)
    );
    assert!(
        parts
            .iter()
            .all(|p| p.replicas.iter().all(|r| [1, 2, 3].contains(r)))
    );
    let explicit = create_partitions(&c.image, "t", 3, Some(&[vec![3, 4]]), 0).unwrap();
    assert_eq!(partitions(&explicit)[0].isr, vec![3]);
    type Case<'a> = (&'a str, i32, Option<Vec<Vec<i32>>>, ErrorKind);
    let cases: Vec<Case<'_>> = vec![
        ("nope", 3, None, ErrorKind::UnknownTopicOrPartition),
        ("t", 2, None, ErrorKind::InvalidPartitions),
        ("t", 1, None, ErrorKind::InvalidPartitions),
        ("t", 0, None, ErrorKind::InvalidPartitions),
        (
            "t",
            4,
            Some(vec![vec![1, 2]]),
            ErrorKind::InvalidReplicaAssignment,
        ),
        (
            "t",
            3,
            Some(vec![vec![1, 2, 3]]),
            ErrorKind::InvalidReplicaAssignment,
        ),
        (
            "t",
            3,
            Some(vec![vec![1, 9]]),
            ErrorKind::InvalidReplicaAssignment,
        ),
        (
            "t",
            3,
            Some(vec![vec![4, 5]]),
            ErrorKind::InvalidReplicaAssignment,
        ),
    ];
    for (name, count, a, want) in cases {
        let e = create_partitions(&c.image, name, count, a.as_deref(), 0).unwrap_err();
        assert_eq!(e.code, want, "{name} {count} {a:?}: {e}");
    }
    c.apply(records).unwrap();
    assert_eq!(c.image.topic_by_name("t").unwrap().partitions.len(), 5);
    // RF 2 needs two alive brokers.
    c.fence_flag(2);
    c.fence_flag(3);
    let e = create_partitions(&c.image, "t", 6, None, 0).unwrap_err();
    assert_eq!(e.code, ErrorKind::InvalidReplicationFactor);
}

#[test]
fn alter_topic_configs_validates_and_emits_config_records() {
    let mut c = cluster();
    c.topic("t", &[&[1, 2]]);
    let set = |k: &str, v: Option<&str>| vec![(k.to_string(), v.map(String::from))];
    let records =
        alter_topic_configs(&c.image, "t", &set("min.insync.replicas", Some("2"))).unwrap();
    c.apply(records).unwrap();
    assert_eq!(
        c.image.topic_by_name("t").unwrap().configs["min.insync.replicas"],
        "2"
    );
    let records = alter_topic_configs(&c.image, "t", &set("min.insync.replicas", None)).unwrap();
    c.apply(records).unwrap();
    assert!(c.image.topic_by_name("t").unwrap().configs.is_empty());
    let cases = [
        (
            "t",
            set("min.insync.replicas", Some("3")),
            ErrorKind::InvalidConfig,
        ),
        ("t", set("nope", None), ErrorKind::InvalidConfig),
        (
            "t",
            set("cleanup.policy", Some("x")),
            ErrorKind::InvalidConfig,
        ),
        (
            "u",
            set("retention.ms", Some("1")),
            ErrorKind::UnknownTopicOrPartition,
        ),
    ];
    for (topic, changes, want) in cases {
        assert_eq!(
            alter_topic_configs(&c.image, topic, &changes)
                .unwrap_err()
                .code,
            want,
            "{changes:?}"
        );
    }
}
