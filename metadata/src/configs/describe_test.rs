use super::*;
use crate::ErrorKind;
use crate::configs::{AlterConfig, ConfigSource as S, incremental_alter_configs};
use crate::pb;
use crate::pb::metadata_record::Record;
use crate::records::record;
use crate::testutil::Cluster;

/// Brokers 1..=3, broker 2 started with `--set log.segment.bytes=2048` and
/// `--set replica.fetch.max.bytes=4096`; topic `t` on brokers 2 and 3.
fn cluster() -> Cluster {
    let mut c = Cluster::with_brokers(&[1, 3]);
    c.apply(vec![
        record(Record::RegisterBroker(pb::RegisterBrokerRecord {
            broker_id: 2,
            broker_epoch: 12,
            incarnation_id: "inc-2".into(),
            endpoints: vec![],
            rack: String::new(),
            static_configs: [
                ("log.segment.bytes".to_owned(), "2048".to_owned()),
                ("replica.fetch.max.bytes".to_owned(), "4096".to_owned()),
            ]
            .into(),
        })),
        record(Record::UnfenceBroker(pb::UnfenceBrokerRecord {
            broker_id: 2,
            broker_epoch: 12,
        })),
    ])
    .unwrap();
    c.topic("t", &[&[2, 3], &[3, 2]]);
    c
}

fn alter(c: &mut Cluster, resource: Resource, changes: &[AlterConfig]) {
    let records = incremental_alter_configs(&c.image, &resource, changes).unwrap();
    c.apply(records).unwrap();
}

/// `name` of the entries as (value, source, synonyms as (name, source)).
fn find<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} described"))
}

fn levels(e: &ConfigEntry) -> Vec<(&str, &str, S)> {
    e.synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.value.as_deref().unwrap_or("-"), s.source))
        .collect()
}

#[test]
fn topic_values_come_from_the_topic_then_the_broker_levels_then_the_default() {
    let mut c = cluster();
    let topic = Resource::Topic("t".into());
    let d = describe_configs(&c.image, &topic).unwrap();
    assert_eq!(d.len(), TOPIC_CONFIGS.len());
    assert!(
        d.windows(2).all(|w| w[0].name < w[1].name),
        "sorted by name"
    );
    assert!(d.iter().all(|e| !e.read_only && !e.sensitive));
    // (name, value, source)
    let cases = [
        ("segment.bytes", "2048", S::StaticBroker),
        ("max.message.bytes", "1048576", S::Default),
        ("compression.type", "producer", S::Default),
        ("unclean.leader.election.enable", "false", S::Default),
    ];
    for (name, value, source) in cases {
        let e = find(&d, name);
        assert_eq!(
            (e.value.as_deref(), e.source),
            (Some(value), source),
            "{name}"
        );
    }
    assert_eq!(
        levels(find(&d, "segment.bytes")),
        [
            ("log.segment.bytes", "2048", S::StaticBroker),
            ("log.segment.bytes", "1073741824", S::Default),
        ]
    );

    alter(
        &mut c,
        Resource::BrokerDefault,
        &[AlterConfig::set("log.segment.bytes", "4096")],
    );
    alter(
        &mut c,
        topic.clone(),
        &[AlterConfig::set("segment.bytes", "8192")],
    );
    let d = describe_configs(&c.image, &topic).unwrap();
    let e = find(&d, "segment.bytes");
    assert_eq!(
        (e.value.as_deref(), e.source),
        (Some("8192"), S::DynamicTopic)
    );
    assert_eq!(
        levels(e),
        [
            ("segment.bytes", "8192", S::DynamicTopic),
            ("log.segment.bytes", "4096", S::DynamicDefaultBroker),
            ("log.segment.bytes", "2048", S::StaticBroker),
            ("log.segment.bytes", "1073741824", S::Default),
        ]
    );

    // Deleting the topic's value falls back to the cluster-wide default.
    alter(
        &mut c,
        topic.clone(),
        &[AlterConfig::delete("segment.bytes")],
    );
    let d = describe_configs(&c.image, &topic).unwrap();
    let e = find(&d, "segment.bytes");
    assert_eq!(
        (e.value.as_deref(), e.source),
        (Some("4096"), S::DynamicDefaultBroker)
    );
}

#[test]
fn broker_values_come_from_the_broker_then_the_cluster_then_its_static_settings() {
    let mut c = cluster();
    alter(
        &mut c,
        Resource::BrokerDefault,
        &[
            AlterConfig::set("message.max.bytes", "2000"),
            AlterConfig::set("min.insync.replicas", "2"),
        ],
    );
    alter(
        &mut c,
        Resource::Broker(2),
        &[AlterConfig::set("message.max.bytes", "3000")],
    );
    let d = describe_configs(&c.image, &Resource::Broker(2)).unwrap();
    assert_eq!(d.len(), BROKER_CONFIGS.len());
    // (name, value, source, read only)
    let cases = [
        ("message.max.bytes", "3000", S::DynamicBroker, false),
        ("min.insync.replicas", "2", S::DynamicDefaultBroker, true),
        ("log.segment.bytes", "2048", S::StaticBroker, false),
        ("replica.fetch.max.bytes", "4096", S::StaticBroker, true),
        ("log.roll.ms", "604800000", S::Default, false),
        ("broker.session.timeout.ms", "9000", S::Default, true),
    ];
    for (name, value, source, read_only) in cases {
        let e = find(&d, name);
        assert_eq!(
            (e.value.as_deref(), e.source, e.read_only),
            (Some(value), source, read_only),
            "{name}"
        );
    }
    assert_eq!(
        levels(find(&d, "message.max.bytes")),
        [
            ("message.max.bytes", "3000", S::DynamicBroker),
            ("message.max.bytes", "2000", S::DynamicDefaultBroker),
            ("message.max.bytes", "1048576", S::Default),
        ]
    );
    // Broker 1 has no settings of its own.
    let d = describe_configs(&c.image, &Resource::Broker(1)).unwrap();
    let e = find(&d, "message.max.bytes");
    assert_eq!(
        (e.value.as_deref(), e.source),
        (Some("2000"), S::DynamicDefaultBroker)
    );
    assert_eq!(find(&d, "log.segment.bytes").source, S::Default);

    // The cluster-wide default lists the live settings only.
    let d = describe_configs(&c.image, &Resource::BrokerDefault).unwrap();
    assert!(d.iter().all(|e| !e.read_only));
    assert_eq!(
        d.len(),
        BROKER_CONFIGS
            .iter()
            .filter(|b| b.update != Update::ReadOnly)
            .count()
    );
    assert_eq!(find(&d, "message.max.bytes").value.as_deref(), Some("2000"));
    assert_eq!(find(&d, "log.segment.bytes").source, S::Default);
}

#[test]
fn unknown_resources_are_typed_errors() {
    let c = cluster();
    let cases = [
        (
            Resource::Topic("nope".into()),
            ErrorKind::UnknownTopicOrPartition,
        ),
        (Resource::Broker(9), ErrorKind::BrokerIdNotRegistered),
    ];
    for (resource, want) in cases {
        let e = describe_configs(&c.image, &resource).unwrap_err();
        assert_eq!(e.code, want, "{resource}");
    }
}

#[test]
fn live_broker_settings_are_the_cluster_defaults_overridden_per_broker() {
    let mut c = cluster();
    assert!(dynamic_broker_configs(&c.image, 2).is_empty());
    assert_eq!(default_min_isr(&c.image, 2), 2, "the static value");
    alter(
        &mut c,
        Resource::BrokerDefault,
        &[
            AlterConfig::set("log.segment.bytes", "4096"),
            AlterConfig::set("message.max.bytes", "2000"),
            AlterConfig::set("min.insync.replicas", "3"),
        ],
    );
    alter(
        &mut c,
        Resource::Broker(2),
        &[AlterConfig::set("log.segment.bytes", "8192")],
    );
    let two = dynamic_broker_configs(&c.image, 2);
    let one = dynamic_broker_configs(&c.image, 1);
    assert_eq!(two["log.segment.bytes"], "8192");
    assert_eq!(one["log.segment.bytes"], "4096");
    assert_eq!(two["message.max.bytes"], "2000");
    assert_eq!(two["min.insync.replicas"], "3");
    assert_eq!(default_min_isr(&c.image, 2), 3);
    // Values that cannot change live are never applied, even if a record
    // holds one (written by a newer or buggy controller).
    c.apply(vec![
        record(Record::Config(pb::ConfigRecord {
            resource: Some(pb::ConfigResource {
                r#type: pb::config_resource::Type::Broker as i32,
                name: "1".into(),
            }),
            name: "min.insync.replicas".into(),
            value: Some("5".into()),
        })),
        record(Record::Config(pb::ConfigRecord {
            resource: Some(pb::ConfigResource {
                r#type: pb::config_resource::Type::Cluster as i32,
                name: String::new(),
            }),
            name: "replica.fetch.max.bytes".into(),
            value: Some("5".into()),
        })),
    ])
    .unwrap();
    let one = dynamic_broker_configs(&c.image, 1);
    assert_eq!(one["min.insync.replicas"], "3");
    assert!(!one.contains_key("replica.fetch.max.bytes"));
}
