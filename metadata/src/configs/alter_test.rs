use super::*;
use crate::ErrorKind;
use crate::configs::describe_configs;
use crate::pb::metadata_record::Record;
use crate::testutil::{Cluster, changes, kinds, tid};

/// Brokers 1..=3; topic `t` with two partitions on brokers 1 and 2.
fn cluster() -> Cluster {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    c.topic("t", &[&[1, 2], &[2, 1]]);
    c
}

fn set(k: &str, v: &str) -> AlterConfig {
    AlterConfig::set(k, v)
}

fn op(k: &str, op: AlterOp, v: Option<&str>) -> AlterConfig {
    AlterConfig {
        name: k.into(),
        op,
        value: v.map(str::to_owned),
    }
}

/// (owner type, owner, key, value) of each config record.
fn configs(records: &[pb::MetadataRecord]) -> Vec<(i32, String, String, Option<String>)> {
    records
        .iter()
        .filter_map(|r| match &r.record {
            Some(Record::Config(c)) => {
                let res = c.resource.clone().expect("resource");
                Some((res.r#type, res.name, c.name.clone(), c.value.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn bad_changes_are_refused_with_the_reason_and_emit_nothing() {
    let c = cluster();
    let topic = || Resource::Topic("t".into());
    // (resource, changes, error, part of the message)
    let cases: Vec<(Resource, Vec<AlterConfig>, ErrorKind, &str)> = vec![
        (
            topic(),
            vec![set("retention.hours", "1")],
            ErrorKind::InvalidConfig,
            "retention.hours",
        ),
        (
            topic(),
            vec![
                set("segment.bytes", "1048576"),
                set("max.message.bytes", "x"),
            ],
            ErrorKind::InvalidConfig,
            "max.message.bytes",
        ),
        (
            topic(),
            vec![set("min.insync.replicas", "3")],
            ErrorKind::InvalidConfig,
            "replication factor 2",
        ),
        (
            topic(),
            vec![set("compression.type", "zstd")],
            ErrorKind::InvalidConfig,
            "compression.type",
        ),
        (
            topic(),
            vec![op("segment.bytes", AlterOp::Delete, None), set("nope", "1")],
            ErrorKind::InvalidConfig,
            "nope",
        ),
        (
            topic(),
            vec![op("nope", AlterOp::Delete, None)],
            ErrorKind::InvalidConfig,
            "nope",
        ),
        (
            topic(),
            vec![op("segment.bytes", AlterOp::Append, Some("1"))],
            ErrorKind::InvalidConfig,
            "not a list",
        ),
        (
            topic(),
            vec![op("cleanup.policy", AlterOp::Subtract, Some("delete"))],
            ErrorKind::InvalidConfig,
            "cleanup.policy",
        ),
        (
            topic(),
            vec![set("segment.bytes", "1048576"), set("segment.bytes", "2")],
            ErrorKind::InvalidRequest,
            "more than once",
        ),
        (
            topic(),
            vec![op("segment.bytes", AlterOp::Set, None)],
            ErrorKind::InvalidRequest,
            "without a value",
        ),
        (
            Resource::Topic("nope".into()),
            vec![set("segment.bytes", "1048576")],
            ErrorKind::UnknownTopicOrPartition,
            "nope",
        ),
        (
            Resource::Broker(9),
            vec![set("log.segment.bytes", "1048576")],
            ErrorKind::BrokerIdNotRegistered,
            "broker 9",
        ),
        (
            Resource::Broker(1),
            vec![set("segment.bytes", "1048576")],
            ErrorKind::InvalidConfig,
            "unknown broker config \"segment.bytes\"",
        ),
        (
            Resource::Broker(1),
            vec![set("replica.fetch.max.bytes", "1048576")],
            ErrorKind::InvalidConfig,
            "restart",
        ),
        (
            Resource::BrokerDefault,
            vec![op("broker.session.timeout.ms", AlterOp::Delete, None)],
            ErrorKind::InvalidConfig,
            "read-only",
        ),
        (
            Resource::Broker(1),
            vec![set("min.insync.replicas", "2")],
            ErrorKind::InvalidConfig,
            "cluster-wide",
        ),
        (
            Resource::BrokerDefault,
            vec![set("log.segment.bytes", "63")],
            ErrorKind::InvalidConfig,
            "log.segment.bytes",
        ),
        (
            Resource::BrokerDefault,
            vec![set("log.message.timestamp.type", "Now")],
            ErrorKind::InvalidConfig,
            "log.message.timestamp.type",
        ),
    ];
    for (resource, changes, code, part) in cases {
        let e = incremental_alter_configs(&c.image, &resource, &changes)
            .expect_err(&format!("{resource}: {changes:?}"));
        assert_eq!(e.code, code, "{resource}: {changes:?}: {e}");
        assert!(e.message.contains(part), "{resource}: {changes:?}: {e}");
    }
}

#[test]
fn changes_become_config_records_of_their_resource() {
    use pb::config_resource::Type as T;
    let c = cluster();
    let (topic, broker, cluster) = (T::Topic as i32, T::Broker as i32, T::Cluster as i32);
    let some = |v: &str| Some(v.to_owned());
    // (resource, changes, config records as (type, owner, key, value))
    type Want = Vec<(i32, &'static str, &'static str, Option<String>)>;
    let cases: Vec<(Resource, Vec<AlterConfig>, Want)> = vec![
        (
            Resource::Topic("t".into()),
            vec![set("segment.bytes", "1048576"), set("flush.ms", "0")],
            vec![
                (topic, "t", "segment.bytes", some("1048576")),
                (topic, "t", "flush.ms", some("0")),
            ],
        ),
        (
            Resource::Topic("t".into()),
            vec![op("cleanup.policy", AlterOp::Append, Some("compact"))],
            vec![(topic, "t", "cleanup.policy", some("delete,compact"))],
        ),
        (
            Resource::Topic("t".into()),
            // Deleting a value that is not set changes nothing.
            vec![op("retention.ms", AlterOp::Delete, None)],
            vec![],
        ),
        (
            Resource::Broker(2),
            vec![set("message.max.bytes", "2048")],
            vec![(broker, "2", "message.max.bytes", some("2048"))],
        ),
        (
            Resource::BrokerDefault,
            vec![
                set("log.flush.interval.messages", "1"),
                set("min.insync.replicas", "2"),
            ],
            vec![
                (cluster, "", "log.flush.interval.messages", some("1")),
                (cluster, "", "min.insync.replicas", some("2")),
            ],
        ),
    ];
    for (resource, changes, want) in cases {
        let records = incremental_alter_configs(&c.image, &resource, &changes)
            .unwrap_or_else(|e| panic!("{resource}: {e}"));
        let want: Vec<_> = want
            .into_iter()
            .map(|(t, o, k, v)| (t, o.to_owned(), k.to_owned(), v))
            .collect();
        assert_eq!(configs(&records), want, "{resource}");
        // Every batch applies.
        c.clone().apply(records).expect("applies");
    }
}

#[test]
fn lists_append_and_subtract_items_and_no_op_changes_emit_nothing() {
    let mut c = cluster();
    let t = Resource::Topic("t".into());
    let apply = |c: &mut Cluster, changes: &[AlterConfig]| {
        let records = incremental_alter_configs(&c.image, &t, changes).unwrap();
        let n = records.len();
        c.apply(records).unwrap();
        n
    };
    assert_eq!(
        apply(
            &mut c,
            &[op(
                "cleanup.policy",
                AlterOp::Append,
                Some("compact,delete")
            )]
        ),
        1
    );
    let value = |c: &Cluster| c.image.topic_by_name("t").unwrap().configs["cleanup.policy"].clone();
    assert_eq!(value(&c), "delete,compact");
    assert_eq!(
        apply(
            &mut c,
            &[op("cleanup.policy", AlterOp::Subtract, Some("delete"))]
        ),
        1
    );
    assert_eq!(value(&c), "compact");
    assert_eq!(apply(&mut c, &[set("cleanup.policy", "compact")]), 0);
    assert_eq!(
        apply(&mut c, &[op("cleanup.policy", AlterOp::Delete, None)]),
        1
    );
    assert!(c.image.topic_by_name("t").unwrap().configs.is_empty());
}

#[test]
fn a_refused_resource_leaves_every_description_unchanged() {
    let c = cluster();
    let resources = [
        Resource::Topic("t".into()),
        Resource::Broker(1),
        Resource::BrokerDefault,
    ];
    let before: Vec<_> = resources
        .iter()
        .map(|r| describe_configs(&c.image, r).unwrap())
        .collect();
    for r in &resources {
        // A valid change followed by an invalid one: nothing is emitted.
        let changes = match r {
            Resource::Topic(_) => vec![set("segment.bytes", "1048576"), set("flush.ms", "-5")],
            _ => vec![set("log.segment.bytes", "1048576"), set("log.roll.ms", "0")],
        };
        assert!(incremental_alter_configs(&c.image, r, &changes).is_err());
    }
    let after: Vec<_> = resources
        .iter()
        .map(|r| describe_configs(&c.image, r).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_cluster_wide_min_isr_change_resets_eligible_leaders_of_topics_without_their_own() {
    let mut c = cluster();
    c.topic("own", &[&[1, 2]]);
    c.config("own", "min.insync.replicas", "2");
    // Both topics' partition 0 lost broker 2 from the ISR into the ELR.
    for topic in ["t", "own"] {
        let cur = c.state(topic, 0);
        c.apply(vec![crate::records::record(Record::PartitionChange(
            pb::PartitionChangeRecord {
                topic_id: tid(topic).as_bytes().to_vec(),
                partition: 0,
                expected_partition_epoch: cur.partition_epoch,
                leader: None,
                isr: Some(pb::ReplicaList::of(vec![1])),
                replicas: None,
                elr: Some(pb::ReplicaList::of(vec![2])),
                adding_replicas: None,
                removing_replicas: None,
            },
        ))])
        .unwrap();
    }
    let records = incremental_alter_configs(
        &c.image,
        &Resource::BrokerDefault,
        &[set("min.insync.replicas", "2")],
    )
    .unwrap();
    assert_eq!(kinds(&records), ["config", "partition change"]);
    let changed = changes(&records);
    assert_eq!(changed.len(), 1, "{changed:?}");
    c.apply(records).unwrap();
    assert!(c.state("t", 0).elr.is_empty());
    assert_eq!(c.state("own", 0).elr, [2], "the topic's own value holds");
}
