//! Table-driven tests of [`plan`](super::plan::plan).

use std::collections::HashMap;

use strom_log::LogConfig;
use strom_metadata::PartitionState;
use uuid::Uuid;

use super::partition::Role;
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
        },
        log: LogConfig::default(),
        min_isr: 1,
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
