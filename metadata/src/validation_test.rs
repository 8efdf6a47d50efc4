use super::*;
use crate::ErrorKind;
use crate::testutil::Cluster;

#[test]
fn topic_names() {
    let long_ok = "a".repeat(249);
    let too_long = "a".repeat(250);
    let cases: &[(&str, Option<&str>)] = &[
        ("orders", None),
        ("Orders.v2_final-1", None),
        ("...", None),
        ("_", None),
        (&long_ok, None),
        ("", Some("empty")),
        (".", Some("cannot be")),
        ("..", Some("cannot be")),
        (&too_long, Some("250 characters")),
        ("a b", Some("' '")),
        ("a/b", Some("'/'")),
        ("tópico", Some("'ó'")),
        ("a:b", Some("':'")),
    ];
    for (name, want) in cases {
        match (validate_topic_name(name), want) {
            (Ok(()), None) => {}
            (Err(e), Some(part)) => {
                assert_eq!(e.code, ErrorKind::InvalidTopicException, "{name}");
                assert!(e.message.contains(part), "{name}: {e}");
            }
            (got, _) => panic!("{name:?}: unexpected {got:?}"),
        }
    }
}

#[test]
fn counts_and_replication_factors() {
    assert!(validate_partition_count(1).is_ok());
    for bad in [0, -1, i32::MIN] {
        assert_eq!(
            validate_partition_count(bad).unwrap_err().code,
            ErrorKind::InvalidPartitions
        );
    }
    // (rf, alive brokers, ok)
    for (rf, alive, ok) in [
        (1, 1, true),
        (3, 3, true),
        (3, 5, true),
        (4, 3, false),
        (0, 3, false),
        (-1, 3, false),
        (1, 0, false),
    ] {
        let r = validate_replication_factor(rf, alive);
        assert_eq!(r.is_ok(), ok, "rf {rf} alive {alive}");
        if let Err(e) = r {
            assert_eq!(e.code, ErrorKind::InvalidReplicationFactor);
        }
    }
    // (current, new, ok)
    for (cur, new, ok) in [
        (3, 4, true),
        (3, 100, true),
        (3, 3, false),
        (3, 2, false),
        (3, 0, false),
    ] {
        let r = validate_partition_increase("t", cur, new);
        assert_eq!(r.is_ok(), ok, "{cur} -> {new}");
        if let Err(e) = r {
            assert_eq!(e.code, ErrorKind::InvalidPartitions);
        }
    }
}

#[test]
fn duplicate_names_in_one_request() {
    let dups = duplicate_topic_names(["a", "b", "a", "c", "b", "a"]);
    assert_eq!(dups.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
    assert!(duplicate_topic_names(["a", "b"]).is_empty());
}

#[test]
fn explicit_assignments() {
    let c = Cluster::with_brokers(&[1, 2, 3]);
    type Case<'a> = (&'a [&'a [i32]], Option<usize>, Result<usize, &'a str>);
    let cases: &[Case<'_>] = &[
        (&[&[1, 2], &[2, 3]], None, Ok(2)),
        (&[&[1, 2, 3]], Some(3), Ok(3)),
        (&[], None, Err("empty")),
        (&[&[1, 2], &[3]], None, Err("partition 1 has 1 replicas")),
        (&[&[1, 2]], Some(3), Err("partition 0 has 2 replicas")),
        (&[&[1, 1]], None, Err("more than once")),
        (&[&[1, 4]], None, Err("broker 4, which is not registered")),
        (&[&[1], &[]], None, Err("no replicas")),
    ];
    for (a, rf, want) in cases {
        let a: Vec<Vec<i32>> = a.iter().map(|p| p.to_vec()).collect();
        match (validate_assignment(&c.image, &a, 0, *rf), want) {
            (Ok(got), Ok(w)) => assert_eq!(got, *w),
            (Err(e), Err(part)) => {
                assert_eq!(e.code, ErrorKind::InvalidReplicaAssignment, "{a:?}");
                assert!(e.message.contains(part), "{a:?}: {e}");
            }
            (got, _) => panic!("{a:?}: unexpected {got:?}"),
        }
    }
    // Partition numbers in messages count from `first_partition`.
    let e = validate_assignment(&c.image, &[vec![1, 1]], 7, None).unwrap_err();
    assert!(e.message.contains("partition 7"), "{e}");
}

#[test]
fn topic_configs() {
    // (name, value, replication factor, ok)
    let cases: &[(&str, &str, usize, bool)] = &[
        ("min.insync.replicas", "1", 3, true),
        ("min.insync.replicas", "3", 3, true),
        ("min.insync.replicas", "4", 3, false),
        ("min.insync.replicas", "0", 3, false),
        ("min.insync.replicas", "two", 3, false),
        ("unclean.leader.election.enable", "true", 1, true),
        ("unclean.leader.election.enable", "FALSE", 1, true),
        ("unclean.leader.election.enable", "yes", 1, false),
        ("retention.ms", "-1", 1, true),
        ("retention.ms", "604800000", 1, true),
        ("retention.ms", "-2", 1, false),
        ("retention.ms", "99999999999999999999", 1, false),
        ("retention.bytes", "1073741824", 1, true),
        ("retention.bytes", "1.5", 1, false),
        ("segment.bytes", "1048576", 1, true),
        ("segment.bytes", "64", 1, true),
        ("segment.bytes", "63", 1, false),
        ("segment.bytes", "4294967296", 1, false),
        ("segment.ms", "1", 1, true),
        ("segment.ms", "0", 1, false),
        ("max.message.bytes", "1048588", 1, true),
        ("max.message.bytes", "-1", 1, false),
        ("max.message.bytes", "60", 1, false),
        ("cleanup.policy", "delete", 1, true),
        ("cleanup.policy", "compact", 1, true),
        ("cleanup.policy", "compact,delete", 1, true),
        ("cleanup.policy", "", 1, false),
        ("cleanup.policy", "forever", 1, false),
        ("compression.type", "zstd", 1, false),
        ("compression.type", "producer", 1, true),
        ("compression.type", "brotli", 1, false),
        ("flush.messages", "1", 1, true),
        ("flush.messages", "0", 1, false),
        ("flush.ms", "0", 1, true),
        ("flush.ms", "-1", 1, false),
        ("message.timestamp.type", "CreateTime", 1, true),
        ("message.timestamp.type", "LogAppendTime", 1, true),
        ("message.timestamp.type", "logappendtime", 1, false),
        ("write.caching", "false", 3, true),
        ("write.caching", "true", 1, true),
        ("write.caching", "disabled", 1, false),
        ("write.caching", "", 1, false),
        ("delete.retention.ms", "0", 1, true),
        ("delete.retention.ms", "-1", 1, false),
        ("min.compaction.lag.ms", "1000", 1, true),
        ("min.compaction.lag.ms", "-5", 1, false),
        ("max.compaction.lag.ms", "9223372036854775807", 1, true),
        ("max.compaction.lag.ms", "0", 1, false),
        ("min.cleanable.dirty.ratio", "0.01", 1, true),
        ("min.cleanable.dirty.ratio", "1", 1, true),
        ("min.cleanable.dirty.ratio", "1.5", 1, false),
        ("min.cleanable.dirty.ratio", "half", 1, false),
        ("retention.hours", "1", 1, false),
        ("", "1", 1, false),
        ("leader.replication.throttled.replicas", "0:1,1:2", 1, true),
        ("leader.replication.throttled.replicas", "*", 1, true),
        ("follower.replication.throttled.replicas", "", 1, true),
        ("follower.replication.throttled.replicas", "0:x", 1, false),
    ];
    for (name, value, rf, ok) in cases {
        let r = validate_topic_config(name, value, *rf);
        assert_eq!(r.is_ok(), *ok, "{name}={value} rf {rf}: {r:?}");
        if let Err(e) = r {
            assert_eq!(e.code, ErrorKind::InvalidConfig);
        }
    }
    assert_eq!(topic_config_names().count(), 19);
}
