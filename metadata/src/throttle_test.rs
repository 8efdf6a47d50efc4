use std::collections::BTreeMap;

use uuid::Uuid;

use super::*;

#[test]
fn throttled_replica_lists_parse_as_kafka_writes_them() {
    // (value, Ok(config text after parsing) or Err(substring))
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("", Ok("")),
        ("  ", Ok("")),
        ("*", Ok("*")),
        (" * ", Ok("*")),
        ("0:101", Ok("0:101")),
        ("1:102,0:101,0:102", Ok("0:101,0:102,1:102")),
        ("0:101, 1:102 ,", Ok("0:101,1:102")),
        ("0:101,0:101", Ok("0:101")),
        ("0", Err("\"0\" is not partition:broker")),
        ("0:", Err("not partition:broker")),
        (":1", Err("not partition:broker")),
        ("-1:2", Err("not partition:broker")),
        ("0:1:2", Err("not partition:broker")),
        ("a:1", Err("not partition:broker")),
        ("*,0:1", Err("not partition:broker")),
        ("0:99999999999", Err("not partition:broker")),
    ];
    for (value, want) in cases {
        match (ThrottledReplicas::parse(value), want) {
            (Ok(t), Ok(text)) => assert_eq!(t.to_config(), *text, "{value:?}"),
            (Err(why), Err(part)) => assert!(why.contains(part), "{value:?}: {why}"),
            (got, _) => panic!("{value:?}: {got:?}"),
        }
    }
}

fn topic(configs: &[(&str, &str)]) -> TopicImage {
    TopicImage {
        name: "t".to_owned(),
        id: Uuid::nil(),
        configs: configs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        partitions: BTreeMap::new(),
    }
}

fn state(replicas: &[i32], isr: &[i32], adding: &[i32]) -> PartitionState {
    PartitionState {
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader: isr.first().copied().unwrap_or(-1),
        leader_epoch: 1,
        partition_epoch: 1,
        elr: Vec::new(),
        adding: adding.to_vec(),
        removing: replicas
            .iter()
            .copied()
            .filter(|r| !adding.contains(r))
            .take(adding.len())
            .collect(),
    }
}

#[test]
fn only_moving_replicas_out_of_the_isr_are_throttled() {
    let both = |l: &'static str, f: &'static str| {
        topic(&[
            (LEADER_THROTTLED_REPLICAS, l),
            (FOLLOWER_THROTTLED_REPLICAS, f),
        ])
    };
    // (topic, partition state, broker asking, leader-side throttled
    // followers of partition 0 when it leads, follower side throttled)
    type Case = (
        &'static str,
        TopicImage,
        PartitionState,
        i32,
        Vec<i32>,
        bool,
    );
    let cases: Vec<Case> = vec![
        (
            "moving to 4: the leader 1 throttles 4, 4 throttles itself",
            both("0:1,0:2,0:3", "0:4"),
            state(&[1, 2, 3, 4], &[1, 2, 3], &[4]),
            1,
            vec![4],
            false,
        ),
        (
            "the adding replica's own view",
            both("0:1,0:2,0:3", "0:4"),
            state(&[1, 2, 3, 4], &[1, 2, 3], &[4]),
            4,
            vec![],
            true,
        ),
        (
            "the added replica joined the ISR: no throttle left",
            both("0:1,0:2,0:3", "0:4"),
            state(&[1, 2, 3, 4], &[1, 2, 3, 4], &[4]),
            4,
            vec![],
            false,
        ),
        (
            "a follower out of the ISR that is not moving (KIP-542): never throttled, even under *",
            both("*", "*"),
            state(&[1, 2, 3], &[1, 2], &[]),
            3,
            vec![],
            false,
        ),
        (
            "the leader under * throttles only the moving follower, not the lagging old one",
            both("*", "*"),
            state(&[1, 2, 3, 4], &[1, 2], &[4]),
            1,
            vec![4],
            false,
        ),
        (
            "this leader is not listed",
            both("0:2,0:3", "0:4"),
            state(&[1, 2, 3, 4], &[1, 2, 3], &[4]),
            1,
            vec![],
            false,
        ),
        (
            "another partition is listed",
            both("1:1", "1:4"),
            state(&[1, 2, 3, 4], &[1, 2, 3], &[4]),
            4,
            vec![],
            false,
        ),
        (
            "no configs: nothing throttled",
            topic(&[]),
            state(&[1, 2, 3, 4], &[1, 2, 3], &[4]),
            1,
            vec![],
            false,
        ),
        (
            "an unparsable value throttles nothing",
            both("x", "y"),
            state(&[1, 2, 3, 4], &[1, 2, 3], &[4]),
            4,
            vec![],
            false,
        ),
    ];
    for (name, topic, state, node, leader_side, follower_side) in cases {
        assert_eq!(
            leader_throttled_followers(&topic, 0, &state, node),
            leader_side,
            "{name}"
        );
        assert_eq!(
            follower_throttled(&topic, 0, &state, node),
            follower_side,
            "{name}"
        );
    }
}

#[test]
fn a_throttled_plan_lists_current_replicas_as_leaders_and_new_ones_as_followers() {
    let mv = |topic: &str, partition, current: &[i32], target: &[i32]| PlannedMove {
        topic: topic.to_owned(),
        partition,
        current: current.to_vec(),
        target: target.to_vec(),
    };
    let got = reassignment_throttles(&[
        mv("a", 0, &[1, 2, 3], &[4, 5, 6]),
        mv("a", 1, &[2, 3], &[2, 3, 4]),
        // Unchanged (only reordered): no throttle.
        mv("a", 2, &[1, 2], &[2, 1]),
        mv("b", 0, &[1, 2], &[1, 2]),
        // Shrinking: leaders listed, no follower.
        mv("c", 3, &[1, 2, 3], &[1, 2]),
    ]);
    let text: Vec<(String, String, String)> = got
        .into_iter()
        .map(|(t, (l, f))| (t, l.to_config(), f.to_config()))
        .collect();
    assert_eq!(
        text,
        vec![
            (
                "a".to_owned(),
                "0:1,0:2,0:3,1:2,1:3".to_owned(),
                "0:4,0:5,0:6,1:4".to_owned()
            ),
            ("c".to_owned(), "3:1,3:2,3:3".to_owned(), String::new()),
        ]
    );
}
