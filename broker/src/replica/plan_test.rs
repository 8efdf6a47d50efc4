//! Table-driven tests of [`plan`](super::plan::plan).

use std::collections::HashMap;

use strom_log::LogConfig;
use strom_metadata::PartitionState;
use uuid::Uuid;

use super::partition::{Keeping, Role, Throttle};
use super::plan::{Assigned, Hosted, Key, Plan, Step, Transition, plan};

const ME: i32 = 1;

fn topic() -> Uuid {
    Uuid::from_u128(7)
}

fn assigned(partition: i32, leader: i32, leader_epoch: i32) -> Assigned {
    Assigned {
        topic: "t".into(),
        topic_id: topic(),
        partition,
        state: PartitionState {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader,
            leader_epoch,
            partition_epoch: leader_epoch,
            elr: Vec::new(),
            adding: Vec::new(),
            removing: Vec::new(),
        },
        log: LogConfig::default(),
        keeping: Keeping {
            min_isr: 1,
            durable: false,
        },
        throttle: Throttle::default(),
    }
}

fn hosted(entries: &[(i32, Role, i32)]) -> HashMap<Key, Hosted> {
    entries
        .iter()
        .map(|&(partition, role, leader_epoch)| {
            ((topic(), partition), Hosted { role, leader_epoch })
        })
        .collect()
}

fn step(assigned: usize, open: bool, transition: Transition) -> Step {
    Step {
        assigned,
        open,
        transition,
    }
}

/// (case, assigned, hosted, registered, expected steps, expected removals)
type Case = (
    &'static str,
    Vec<Assigned>,
    HashMap<Key, Hosted>,
    bool,
    Vec<Step>,
    Vec<i32>,
);

#[test]
fn plans_follow_the_image() {
    use Transition::*;
    let follower_of = |leader| Role::Follower { leader };
    let table: Vec<Case> = vec![
        (
            "a new partition led here is opened and led",
            vec![assigned(0, ME, 1)],
            hosted(&[]),
            true,
            vec![step(0, true, Leader)],
            vec![],
        ),
        (
            "a new partition led elsewhere is opened and followed",
            vec![assigned(0, 2, 1)],
            hosted(&[]),
            true,
            vec![step(0, true, Follower)],
            vec![],
        ),
        (
            "before registration a leadership waits, the log still opens",
            vec![assigned(0, ME, 4)],
            hosted(&[]),
            false,
            vec![step(0, true, Wait)],
            vec![],
        ),
        (
            "before registration following goes ahead",
            vec![assigned(0, 3, 4)],
            hosted(&[]),
            false,
            vec![step(0, true, Follower)],
            vec![],
        ),
        (
            "same leader and epoch: an update",
            vec![assigned(0, ME, 2), assigned(1, 2, 5)],
            hosted(&[(0, Role::Leader, 2), (1, follower_of(2), 5)]),
            true,
            vec![step(0, false, Update), step(1, false, Update)],
            vec![],
        ),
        (
            "a new epoch for the same leader makes it leader again",
            vec![assigned(0, ME, 3)],
            hosted(&[(0, Role::Leader, 2)]),
            true,
            vec![step(0, false, Leader)],
            vec![],
        ),
        (
            "a follower named leader becomes leader",
            vec![assigned(0, ME, 3)],
            hosted(&[(0, follower_of(2), 2)]),
            true,
            vec![step(0, false, Leader)],
            vec![],
        ),
        (
            "a leader that lost the leadership follows",
            vec![assigned(0, 2, 3)],
            hosted(&[(0, Role::Leader, 2)]),
            true,
            vec![step(0, false, Follower)],
            vec![],
        ),
        (
            "a new leader at a new epoch is followed anew",
            vec![assigned(0, 3, 3)],
            hosted(&[(0, follower_of(2), 2)]),
            true,
            vec![step(0, false, Follower)],
            vec![],
        ),
        (
            "an offline partition (no leader) is followed with nobody to fetch from",
            vec![assigned(0, -1, 3)],
            hosted(&[(0, Role::Leader, 2)]),
            true,
            vec![step(0, false, Follower)],
            vec![],
        ),
        (
            "a stopped replica still assigned is taken up again",
            vec![assigned(0, 2, 3)],
            hosted(&[(0, Role::None, 3)]),
            true,
            vec![step(0, false, Follower)],
            vec![],
        ),
        (
            "replicas no longer assigned are removed, sorted",
            vec![assigned(1, 2, 1)],
            hosted(&[
                (3, Role::Leader, 1),
                (1, follower_of(2), 1),
                (0, follower_of(3), 1),
            ]),
            true,
            vec![step(0, false, Update)],
            vec![0, 3],
        ),
        (
            "an empty image removes everything",
            vec![],
            hosted(&[(0, Role::Leader, 1)]),
            true,
            vec![],
            vec![0],
        ),
    ];
    for (case, assigned, hosted, registered, steps, remove) in table {
        let got = plan(ME, &assigned, &hosted, registered);
        let want = Plan {
            steps,
            remove: remove.into_iter().map(|p| (topic(), p)).collect(),
        };
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn a_thousand_new_leaderships_are_one_plan() {
    let assigned: Vec<Assigned> = (0..1000)
        .map(|p| assigned(p, if p % 3 == 0 { ME } else { 2 }, 1))
        .collect();
    let plan = plan(ME, &assigned, &HashMap::new(), true);
    assert_eq!(plan.steps.len(), 1000);
    assert_eq!(plan.role_changes(), 1000);
    assert!(plan.steps.iter().all(|s| s.open));
    assert_eq!(
        plan.steps
            .iter()
            .filter(|s| s.transition == Transition::Leader)
            .count(),
        334
    );
}

#[test]
fn topic_configs_override_the_log_defaults() {
    use strom_log::CleanupPolicy;
    use strom_metadata::TopicImage;

    use super::plan::log_config;

    let topic = |configs: &[(&str, &str)]| TopicImage {
        name: "t".into(),
        id: topic(),
        configs: configs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        partitions: Default::default(),
    };
    let defaults = LogConfig {
        retention_bytes: Some(1 << 30),
        ..LogConfig::default()
    };
    let untouched = log_config(&defaults, &topic(&[]));
    assert_eq!(untouched, defaults);

    let c = log_config(
        &defaults,
        &topic(&[
            ("retention.ms", "60000"),
            ("retention.bytes", "-1"),
            ("segment.ms", "1000"),
            ("cleanup.policy", "compact,delete"),
        ]),
    );
    assert_eq!(c.retention_ms, Some(60_000));
    assert_eq!(c.retention_bytes, None, "-1 is unlimited");
    assert_eq!(c.segment_ms, 1_000);
    assert_eq!(
        c.cleanup_policy,
        CleanupPolicy {
            delete: true,
            compact: true
        }
    );

    let c = log_config(
        &defaults,
        &topic(&[("retention.ms", "-1"), ("retention.bytes", "4096")]),
    );
    assert_eq!((c.retention_ms, c.retention_bytes), (None, Some(4096)));
}

mod settings {
    use strom_log::{LogConfig, TimestampType};
    use strom_metadata::configs::{AlterConfig, Resource, incremental_alter_configs};
    use strom_metadata::pb::metadata_record::Record;
    use strom_metadata::pb::{Endpoint, RegisterBrokerRecord, TopicRecord};
    use strom_metadata::records::{partition_record, record};
    use strom_metadata::{ClusterImage, PartitionState, Uuid};

    use crate::replica::ReplicationConfig;
    use crate::replica::plan::{defaults, log_config, min_isr};

    /// Brokers 1 and 2, and topic `t` with one partition on both.
    fn image() -> ClusterImage {
        let mut image = ClusterImage::new();
        let broker = |id: i32| {
            record(Record::RegisterBroker(RegisterBrokerRecord {
                broker_id: id,
                broker_epoch: 1,
                incarnation_id: format!("inc-{id}"),
                endpoints: vec![Endpoint::default()],
                rack: String::new(),
                static_configs: Default::default(),
            }))
        };
        let topic = record(Record::Topic(TopicRecord {
            name: "t".into(),
            topic_id: Uuid::from_u128(7).as_bytes().to_vec(),
            configs: Default::default(),
        }));
        let partition = partition_record(
            Uuid::from_u128(7),
            0,
            &PartitionState {
                replicas: vec![1, 2],
                isr: vec![1, 2],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                elr: Vec::new(),
                adding: Vec::new(),
                removing: Vec::new(),
            },
        );
        image
            .apply_batch(0, &[broker(1), broker(2), topic, partition])
            .expect("apply");
        image
    }

    fn alter(image: &mut ClusterImage, resource: Resource, changes: &[AlterConfig]) {
        let records = incremental_alter_configs(image, &resource, changes).expect("valid");
        let offset = image.offset() + 1;
        image.apply_batch(offset, &records).expect("apply");
    }

    /// (segment.bytes, max.message.bytes, flush.messages, timestamp type, min ISR)
    type Want = (u64, usize, Option<u64>, TimestampType, usize);

    fn settings_of_t(image: &ClusterImage, config: &ReplicationConfig, node: i32) -> Want {
        let (d, ignored) = defaults(config, image, node);
        assert!(ignored.is_empty(), "{ignored:?}");
        let t = image.topic_by_name("t").expect("topic");
        let log = log_config(&d.log, t);
        (
            log.segment_bytes,
            log.max_message_bytes,
            log.flush_messages,
            log.message_timestamp_type,
            min_isr(d.min_insync_replicas, t),
        )
    }

    #[test]
    fn precedence_is_topic_then_broker_then_cluster_then_static() {
        use TimestampType::*;
        let config = ReplicationConfig {
            min_insync_replicas: 2,
            log: LogConfig {
                segment_bytes: 1 << 20,
                ..LogConfig::default()
            },
            ..ReplicationConfig::default()
        };
        let mut image = image();
        let mb = 1 << 20;
        let cluster = Resource::BrokerDefault;
        let t = Resource::Topic("t".into());
        // (change, resource, want on broker 1, want on broker 2)
        let steps: Vec<(Vec<AlterConfig>, Resource, Want, Want)> = vec![
            (
                vec![],
                cluster.clone(),
                (mb, mb as usize, None, CreateTime, 2),
                (mb, mb as usize, None, CreateTime, 2),
            ),
            (
                vec![
                    AlterConfig::set("log.segment.bytes", "4096"),
                    AlterConfig::set("log.flush.interval.messages", "10"),
                    AlterConfig::set("log.message.timestamp.type", "LogAppendTime"),
                    AlterConfig::set("min.insync.replicas", "1"),
                ],
                cluster.clone(),
                (4096, mb as usize, Some(10), LogAppendTime, 1),
                (4096, mb as usize, Some(10), LogAppendTime, 1),
            ),
            (
                vec![AlterConfig::set("log.segment.bytes", "8192")],
                Resource::Broker(2),
                (4096, mb as usize, Some(10), LogAppendTime, 1),
                (8192, mb as usize, Some(10), LogAppendTime, 1),
            ),
            (
                vec![
                    AlterConfig::set("segment.bytes", "65536"),
                    AlterConfig::set("max.message.bytes", "100"),
                    AlterConfig::set("flush.messages", "9223372036854775807"),
                    AlterConfig::set("message.timestamp.type", "CreateTime"),
                    AlterConfig::set("min.insync.replicas", "2"),
                ],
                t.clone(),
                (65536, 100, None, CreateTime, 2),
                (65536, 100, None, CreateTime, 2),
            ),
            (
                vec![
                    AlterConfig::delete("segment.bytes"),
                    AlterConfig::delete("min.insync.replicas"),
                ],
                t,
                (4096, 100, None, CreateTime, 1),
                (8192, 100, None, CreateTime, 1),
            ),
            (
                vec![
                    AlterConfig::delete("log.segment.bytes"),
                    AlterConfig::delete("min.insync.replicas"),
                ],
                cluster,
                (mb, 100, None, CreateTime, 2),
                (8192, 100, None, CreateTime, 2),
            ),
        ];
        for (i, (changes, resource, one, two)) in steps.into_iter().enumerate() {
            if !changes.is_empty() {
                alter(&mut image, resource, &changes);
            }
            assert_eq!(settings_of_t(&image, &config, 1), one, "step {i}, broker 1");
            assert_eq!(settings_of_t(&image, &config, 2), two, "step {i}, broker 2");
        }
    }

    #[test]
    fn throttle_rates_are_live_per_broker_or_cluster_wide() {
        let config = ReplicationConfig::default();
        let mut image = image();
        let rates = |image: &ClusterImage, node| {
            let (d, ignored) = defaults(&config, image, node);
            assert!(ignored.is_empty(), "{ignored:?}");
            (d.leader_throttled_rate, d.follower_throttled_rate)
        };
        assert_eq!(rates(&image, 1), (None, None), "unthrottled by default");
        alter(
            &mut image,
            Resource::BrokerDefault,
            &[AlterConfig::set(
                "leader.replication.throttled.rate",
                "1000",
            )],
        );
        alter(
            &mut image,
            Resource::Broker(2),
            &[
                AlterConfig::set("follower.replication.throttled.rate", "500"),
                AlterConfig::set("leader.replication.throttled.rate", "9223372036854775807"),
            ],
        );
        assert_eq!(rates(&image, 1), (Some(1000), None));
        assert_eq!(
            rates(&image, 2),
            (None, Some(500)),
            "Long.MAX_VALUE: unthrottled"
        );
        alter(
            &mut image,
            Resource::Broker(2),
            &[
                AlterConfig::delete("follower.replication.throttled.rate"),
                AlterConfig::delete("leader.replication.throttled.rate"),
            ],
        );
        assert_eq!(rates(&image, 2), (Some(1000), None));
    }

    #[test]
    fn throttles_follow_the_topic_lists_and_the_move() {
        use crate::replica::partition::Throttle;
        use crate::replica::plan::assigned;

        let config = ReplicationConfig::default();
        let mut image = image();
        // A move adding replica 2 to t-0: 2 is being added, out of the ISR.
        let moving = record(Record::PartitionChange(
            strom_metadata::pb::PartitionChangeRecord {
                topic_id: Uuid::from_u128(7).as_bytes().to_vec(),
                partition: 0,
                expected_partition_epoch: 0,
                leader: None,
                isr: Some(strom_metadata::pb::ReplicaList::of(vec![1])),
                replicas: Some(strom_metadata::pb::ReplicaList::of(vec![1, 2])),
                elr: None,
                adding_replicas: Some(strom_metadata::pb::ReplicaList::of(vec![2])),
                removing_replicas: None,
            },
        ));
        let offset = image.offset() + 1;
        image.apply_batch(offset, &[moving]).expect("apply");
        let throttle_of = |image: &ClusterImage, node| {
            let (d, _) = defaults(&config, image, node);
            assigned(image, node, &d)
                .into_iter()
                .next()
                .map(|a| a.throttle)
                .expect("assigned")
        };
        assert_eq!(throttle_of(&image, 1), Throttle::default(), "no lists");
        alter(
            &mut image,
            Resource::Topic("t".into()),
            &[
                AlterConfig::set("leader.replication.throttled.replicas", "0:1"),
                AlterConfig::set("follower.replication.throttled.replicas", "0:2"),
            ],
        );
        assert_eq!(
            throttle_of(&image, 1),
            Throttle {
                followers: vec![2],
                follower: false
            }
        );
        assert_eq!(
            throttle_of(&image, 2),
            Throttle {
                followers: vec![],
                follower: true
            }
        );
    }
}
