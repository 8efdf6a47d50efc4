use super::*;

fn c(group: &str, topic: &str, partition: i32, offset: i64) -> CommittedOffset {
    CommittedOffset {
        group_id: group.into(),
        topic: topic.into(),
        partition,
        offset,
    }
}

/// Leader → (topic, partitions).
type Plan = Vec<(i32, Vec<(String, Vec<i32>)>)>;

#[test]
fn end_offsets_are_asked_once_per_partition_from_its_leader() {
    let committed = [
        c("g1", "a", 0, 5),
        c("g2", "a", 0, 7), // same partition, another group: asked once
        c("g1", "a", 1, 0),
        c("g1", "b", 0, 0),
        c("g1", "b", 9, 0), // no leader: left out
    ];
    let leaders: HashMap<(&str, i32), i32> = [(("a", 0), 1), (("a", 1), 2), (("b", 0), 1)]
        .into_iter()
        .collect();
    let plan = end_offset_requests(&committed, |t, p| leaders.get(&(t, p)).copied());
    let got: Plan = plan
        .into_iter()
        .map(|(leader, topics)| {
            (
                leader,
                topics
                    .into_iter()
                    .map(|(t, ps)| (t, ps.into_iter().collect()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, vec![("a".into(), vec![0]), ("b".into(), vec![0])]),
            (2, vec![("a".into(), vec![1])]),
        ]
    );
}

#[test]
fn lag_is_summed_per_group_and_topic() {
    let ends: HashMap<(String, i32), i64> = [
        (("a".to_owned(), 0), 100),
        (("a".to_owned(), 1), 50),
        (("b".to_owned(), 0), 10),
    ]
    .into_iter()
    .collect();
    // (committed offsets, group, topic, want)
    let table: Vec<(Vec<CommittedOffset>, &str, &str, TopicLag)> = vec![
        (
            vec![c("g", "a", 0, 90), c("g", "a", 1, 20)],
            "g",
            "a",
            TopicLag {
                lag: 40,
                max_partition_lag: 30,
                partitions: 2,
                unknown: 0,
            },
        ),
        (
            // Caught up, and a commit ahead of an older end offset.
            vec![c("g", "a", 0, 100), c("g", "a", 1, 60)],
            "g",
            "a",
            TopicLag {
                lag: 0,
                max_partition_lag: 0,
                partitions: 2,
                unknown: 0,
            },
        ),
        (
            // A partition whose end is unknown is counted apart.
            vec![c("g", "b", 0, 4), c("g", "b", 3, 0)],
            "g",
            "b",
            TopicLag {
                lag: 6,
                max_partition_lag: 6,
                partitions: 1,
                unknown: 1,
            },
        ),
        (
            // Groups do not mix.
            vec![c("g", "a", 0, 0), c("h", "a", 0, 99)],
            "h",
            "a",
            TopicLag {
                lag: 1,
                max_partition_lag: 1,
                partitions: 1,
                unknown: 0,
            },
        ),
    ];
    for (committed, group, topic, want) in table {
        let got = lag(&committed, &ends);
        assert_eq!(
            got.get(&(group.to_owned(), topic.to_owned())),
            Some(&want),
            "{committed:?}"
        );
    }
}

#[test]
fn lag_has_one_series_per_group_and_topic_whatever_the_partitions() {
    let committed: Vec<CommittedOffset> = (0..1000).map(|p| c("g", "a", p, 0)).collect();
    let ends: HashMap<(String, i32), i64> = (0..1000).map(|p| (("a".to_owned(), p), 3)).collect();
    let got = lag(&committed, &ends);
    assert_eq!(got.len(), 1);
    assert_eq!(got[&("g".to_owned(), "a".to_owned())].lag, 3000);
}
