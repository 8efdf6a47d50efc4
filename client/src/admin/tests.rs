//! Conversions and the JSON shape documented in docs/cli.md.

use serde_json::{Value, json};
use strom_proto::v1 as pb;

use super::*;

const ID: &str = "0191f3a4-5b6c-7d8e-9f00-112233445566";

fn topic_id() -> TopicId {
    ID.parse().unwrap()
}

fn cluster() -> ClusterDescription {
    pb::DescribeClusterResponse {
        cluster_id: "c-1".into(),
        controller: Some(pb::ControllerQuorum {
            leader_id: 2,
            leader_epoch: 7,
            voters: vec![
                pb::VoterDescription {
                    id: 2,
                    address: "h2:9093".into(),
                    lag: -1,
                },
                pb::VoterDescription {
                    id: 1,
                    address: "h1:9093".into(),
                    lag: 0,
                },
            ],
        }),
        brokers: vec![
            pb::BrokerDescription {
                id: 2,
                address: "h2:9092".into(),
                rack: String::new(),
                state: pb::BrokerState::ControlledShutdown as i32,
                epoch: 5,
                incarnation_id: "x".into(),
                ..Default::default()
            },
            pb::BrokerDescription {
                id: 1,
                address: "h1:9092".into(),
                rack: "r1".into(),
                state: pb::BrokerState::Unfenced as i32,
                epoch: 4,
                incarnation_id: "y".into(),
                ..Default::default()
            },
        ],
        metadata_offset: 99,
    }
    .into()
}

fn topic() -> TopicDescription {
    pb::TopicMetadata {
        name: "orders".into(),
        topic_id: topic_id().as_bytes().to_vec(),
        error_code: 0,
        configs: [("min.insync.replicas".to_owned(), "2".to_owned())].into(),
        partitions: vec![
            pb::PartitionMetadata {
                partition: 1,
                leader: -1,
                leader_epoch: 3,
                partition_epoch: 9,
                replicas: vec![2, 3],
                isr: vec![2],
                offline_replicas: vec![3],
                elr: vec![],
            },
            pb::PartitionMetadata {
                partition: 0,
                leader: 1,
                leader_epoch: 2,
                partition_epoch: 4,
                replicas: vec![1, 2],
                isr: vec![1, 2],
                offline_replicas: vec![],
                elr: vec![],
            },
        ],
        is_internal: false,
    }
    .into()
}

#[test]
fn cluster_json_has_exactly_the_documented_shape() {
    let json = serde_json::to_value(cluster()).unwrap();
    assert_eq!(
        json,
        json!({
            "cluster_id": "c-1",
            "controller": {
                "leader_id": 2,
                "leader_epoch": 7,
                "voters": [
                    {"id": 1, "address": "h1:9093", "lag": 0},
                    {"id": 2, "address": "h2:9093", "lag": null},
                ],
            },
            "brokers": [
                {"id": 1, "address": "h1:9092", "rack": "r1", "state": "unfenced"},
                {"id": 2, "address": "h2:9092", "rack": null, "state": "controlled_shutdown"},
            ],
        })
    );
}

#[test]
fn unknown_controller_leader_is_null_and_cluster_not_ready() {
    let response = pb::DescribeClusterResponse {
        controller: Some(pb::ControllerQuorum {
            leader_id: -1,
            ..Default::default()
        }),
        ..Default::default()
    };
    let cluster = ClusterDescription::from(response);
    assert_eq!(cluster.controller.leader_id, None);
    assert!(!cluster.is_ready(0));
    let json = serde_json::to_value(&cluster).unwrap();
    assert_eq!(json["controller"]["leader_id"], Value::Null);
}

#[test]
fn cluster_is_ready_only_when_all_brokers_are_unfenced() {
    let mut cluster = cluster();
    assert!(!cluster.is_ready(2), "broker 2 is shutting down");
    cluster.brokers[1].state = BrokerState::Unfenced;
    assert!(cluster.is_ready(2));
    assert!(!cluster.is_ready(3), "a third broker has not registered");
}

#[test]
fn broker_states_serialize_as_documented() {
    let table = [
        (pb::BrokerState::Unfenced, "unfenced"),
        (pb::BrokerState::Fenced, "fenced"),
        (pb::BrokerState::ControlledShutdown, "controlled_shutdown"),
        (pb::BrokerState::Unspecified, "fenced"),
    ];
    for (wire, text) in table {
        let state = BrokerState::from(wire);
        assert_eq!(serde_json::to_value(state).unwrap(), json!(text));
        assert_eq!(state.as_str(), text);
    }
}

#[test]
fn topic_json_has_exactly_the_documented_shape() {
    let json = serde_json::to_value(vec![topic()]).unwrap();
    assert_eq!(
        json,
        json!([{
            "name": "orders",
            "topic_id": ID,
            "configs": {"min.insync.replicas": "2"},
            "partitions": [
                {"partition": 0, "leader": 1, "leader_epoch": 2, "replicas": [1, 2], "isr": [1, 2], "elr": []},
                {"partition": 1, "leader": null, "leader_epoch": 3, "replicas": [2, 3], "isr": [2], "elr": []},
            ],
        }])
    );
}

#[test]
fn topic_json_round_trips_for_scripts_and_tests() {
    let json = serde_json::to_string(&topic()).unwrap();
    let back: TopicDescription = serde_json::from_str(&json).unwrap();
    assert_eq!(back.name, "orders");
    assert_eq!(back.topic_id, topic_id());
    assert_eq!(back.partitions[1].leader, None);
}

#[test]
fn partition_health_predicates() {
    let topic = topic();
    let (healthy, offline) = (&topic.partitions[0], &topic.partitions[1]);
    assert!(!healthy.is_under_replicated() && !healthy.is_unavailable());
    assert!(offline.is_under_replicated() && offline.is_unavailable());
    assert_eq!(topic.replication_factor(), 2);
}

#[test]
fn election_result_json_names_the_error_code() {
    let results: Vec<ElectionResult> = [
        pb::ElectLeaderResult {
            topic: "t".into(),
            partition: 0,
            error_code: 0,
            error_message: String::new(),
            leader: 1,
        },
        pb::ElectLeaderResult {
            topic: "t".into(),
            partition: 1,
            error_code: pb::ErrorCode::EligibleLeadersNotAvailable as i32,
            error_message: "no live replica".into(),
            leader: -1,
        },
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    assert_eq!(
        serde_json::to_value(&results).unwrap(),
        json!([
            {"topic": "t", "partition": 0, "error": null, "leader": 1},
            {"topic": "t", "partition": 1, "error": "ELIGIBLE_LEADERS_NOT_AVAILABLE", "leader": null},
        ])
    );
    assert!(!results[0].failed() && results[1].failed());
    let back: Vec<ElectionResult> =
        serde_json::from_value(serde_json::to_value(&results).unwrap()).unwrap();
    assert_eq!(
        back[1].error,
        Some(pb::ErrorCode::EligibleLeadersNotAvailable)
    );
}

#[test]
fn metadata_separates_missing_topics() {
    let response = pb::MetadataResponse {
        cluster_id: "c".into(),
        controller_id: -1,
        brokers: vec![],
        topics: vec![
            pb::TopicMetadata {
                name: "gone".into(),
                error_code: pb::ErrorCode::UnknownTopicOrPartition as i32,
                ..Default::default()
            },
            pb::TopicMetadata {
                name: "b".into(),
                topic_id: topic_id().as_bytes().to_vec(),
                ..Default::default()
            },
        ],
        metadata_offset: 3,
    };
    let metadata = Metadata::from(response);
    assert_eq!(metadata.controller_id, None);
    assert_eq!(metadata.topics.len(), 1);
    let error = &metadata.topic_errors["gone"];
    assert_eq!(error.code, pb::ErrorCode::UnknownTopicOrPartition);
    assert_eq!(error.message, "topic 'gone' does not exist");
}

#[test]
fn new_topic_becomes_a_creatable_topic_with_numbered_assignments() {
    let topic = NewTopic::new("t", 0, 0)
        .with_replica_assignment(vec![vec![0, 1, 2], vec![1, 2, 0]])
        .with_config("cleanup.policy", "compact");
    let wire = pb::CreatableTopic::from(topic);
    assert_eq!(wire.assignments.len(), 2);
    assert_eq!(wire.assignments[1].partition, 1);
    assert_eq!(wire.assignments[1].replicas, [1, 2, 0]);
    assert_eq!(wire.configs["cleanup.policy"], "compact");
}

#[test]
fn create_result_maps_per_topic_errors() {
    let ok = CreateTopicResult::from(pb::CreateTopicResult {
        name: "t".into(),
        topic_id: topic_id().as_bytes().to_vec(),
        ..Default::default()
    });
    assert_eq!(ok.into_result().unwrap(), topic_id());
    let exists = CreateTopicResult::from(pb::CreateTopicResult {
        name: "t".into(),
        error_code: pb::ErrorCode::TopicAlreadyExists as i32,
        error_message: "topic 't' already exists".into(),
        ..Default::default()
    });
    let error = exists.into_result().unwrap_err();
    assert_eq!(error.code(), Some(pb::ErrorCode::TopicAlreadyExists));
    assert_eq!(error.detail(), "topic 't' already exists");
}

#[test]
fn topic_ids_print_as_uuid_text() {
    assert_eq!(topic_id().to_string(), ID);
    assert_eq!(TopicId::from_bytes(&[]), None);
    assert_eq!(TopicId::from_bytes(&[0; 16]), None);
    assert!("nope".parse::<TopicId>().is_err());
}

#[test]
fn config_entry_json_has_exactly_the_documented_shape() {
    let entry = ConfigEntry::from(pb::ConfigEntry {
        name: "segment.bytes".into(),
        value: Some("1048576".into()),
        source: pb::ConfigSource::DynamicTopicConfig as i32,
        read_only: false,
        sensitive: false,
        synonyms: vec![pb::ConfigSynonym {
            name: "log.segment.bytes".into(),
            value: Some("1073741824".into()),
            source: pb::ConfigSource::DefaultConfig as i32,
        }],
    });
    assert_eq!(entry.synonyms[0].source, ConfigSource::DefaultConfig);
    assert_eq!(
        serde_json::to_value(&entry).unwrap(),
        json!({
            "name": "segment.bytes",
            "value": "1048576",
            "source": "DYNAMIC_TOPIC_CONFIG",
            "read_only": false,
            "sensitive": false,
        })
    );
    let secret = ConfigEntry::from(pb::ConfigEntry {
        name: "k".into(),
        value: None,
        source: pb::ConfigSource::StaticBrokerConfig as i32,
        read_only: true,
        sensitive: true,
        synonyms: vec![],
    });
    assert_eq!(serde_json::to_value(&secret).unwrap()["value"], Value::Null);
    for (source, name) in [
        (
            pb::ConfigSource::DynamicBrokerConfig,
            "DYNAMIC_BROKER_CONFIG",
        ),
        (
            pb::ConfigSource::DynamicDefaultBrokerConfig,
            "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ),
        (pb::ConfigSource::StaticBrokerConfig, "STATIC_BROKER_CONFIG"),
        (pb::ConfigSource::DefaultConfig, "DEFAULT_CONFIG"),
    ] {
        let s = ConfigSource::from(source);
        assert_eq!(serde_json::to_value(s).unwrap(), json!(name));
        assert_eq!(s.as_str(), name);
    }
}

#[test]
fn config_resources_and_ops_become_wire_messages() {
    let cases = [
        (
            ConfigResource::Topic("t".into()),
            pb::ConfigResourceType::Topic,
            "t",
        ),
        (
            ConfigResource::Broker(2),
            pb::ConfigResourceType::Broker,
            "2",
        ),
        (
            ConfigResource::BrokerDefault,
            pb::ConfigResourceType::Broker,
            "",
        ),
    ];
    for (resource, ty, name) in cases {
        let wire = pb::ConfigResource::from(&resource);
        assert_eq!((wire.r#type, wire.name.as_str()), (ty as i32, name));
    }
    let set = pb::AlterableConfig::from(AlterConfigOp::set("a", "1"));
    assert_eq!(
        (set.op, set.value.as_deref()),
        (pb::AlterConfigOpType::Set as i32, Some("1"))
    );
    let delete = pb::AlterableConfig::from(AlterConfigOp::delete("a"));
    assert_eq!(
        (delete.op, delete.value),
        (pb::AlterConfigOpType::Delete as i32, None)
    );
}
