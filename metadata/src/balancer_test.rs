use std::collections::BTreeMap;

use super::*;
use crate::testutil::Cluster;

/// Runs balancer rounds (every new replica joining the ISR at once, moves
/// completing) until nothing changes; returns the rounds that started
/// moves and the most moves one round started.
fn settle(c: &mut Cluster, max_moves: usize) -> (usize, usize) {
    let (mut rounds, mut most) = (0, 0);
    for _ in 0..100 {
        let records = balancer_moves(&c.image, BalancerMode::NodeAdd, max_moves, 1, &none(), 80);
        if !records.is_empty() {
            rounds += 1;
            most = most.max(records.len());
            c.apply(records).expect("moves apply");
            continue;
        }
        let moving: Vec<(String, i32, Vec<i32>, i32)> = c
            .image
            .all_partitions()
            .filter(|(_, _, s)| s.is_reassigning() && s.adding.iter().any(|r| !s.isr.contains(r)))
            .map(|(t, p, s)| (t.name.clone(), p, s.replicas.clone(), s.leader))
            .collect();
        for (t, p, replicas, leader) in &moving {
            c.set(t, *p, replicas, *leader);
        }
        let completions = crate::complete_reassignments(&c.image, 1);
        if moving.is_empty() && completions.is_empty() {
            return (rounds, most);
        }
        if !completions.is_empty() {
            c.apply(completions).expect("completions apply");
        }
    }
    panic!("the balancer did not settle");
}

fn none() -> UsageReport {
    UsageReport::default()
}

fn counts(c: &Cluster) -> BTreeMap<i32, usize> {
    balancer_view(&c.image).replicas
}

#[test]
fn modes_parse() {
    for (text, mode) in [
        ("off", Some(BalancerMode::Off)),
        ("node-add", Some(BalancerMode::NodeAdd)),
        ("continuous", Some(BalancerMode::Continuous)),
        ("random", None),
        ("Node-Add", None),
    ] {
        assert_eq!(BalancerMode::parse(text), mode, "{text}");
        if let Some(m) = mode {
            assert_eq!(m.as_str(), text);
        }
    }
}

#[test]
fn an_added_broker_is_filled_to_an_even_share() {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    // 12 partitions of RF 2 on 1-3: 8 replicas each.
    let assignment: Vec<Vec<i32>> = (0..12).map(|p| vec![1 + p % 3, 1 + (p + 1) % 3]).collect();
    let refs: Vec<&[i32]> = assignment.iter().map(Vec::as_slice).collect();
    c.topic("t", &refs);
    assert!(
        balancer_moves(&c.image, BalancerMode::NodeAdd, 5, 1, &none(), 80).is_empty(),
        "balanced: nothing to do"
    );
    c.add_broker(4, None);
    assert!(balancer_view(&c.image).unbalanced);
    assert!(
        balancer_moves(&c.image, BalancerMode::Off, 5, 1, &none(), 80).is_empty(),
        "off does nothing"
    );
    let (rounds, most) = settle(&mut c, 2);
    assert!(
        rounds >= 2,
        "at most 2 moves per broker per round: {rounds}"
    );
    assert!(most <= 2, "{most} moves in one round");
    let after = counts(&c);
    assert_eq!(after.values().sum::<usize>(), 24);
    assert!(
        after.values().all(|n| *n == 6),
        "evened to 6 each: {after:?}"
    );
    assert!(!balancer_view(&c.image).unbalanced);
    // Balanced now: nothing more.
    assert!(balancer_moves(&c.image, BalancerMode::NodeAdd, 5, 1, &none(), 80).is_empty());
}

#[test]
fn racks_stay_spread_and_unavailable_brokers_are_left_alone() {
    let mut c = Cluster::with_racks(&[(1, "a"), (2, "b"), (3, "a"), (4, "b")]);
    // Every partition on 1 and 2 (one per rack); 3 and 4 are empty.
    c.topic("t", &[&[1, 2], &[2, 1], &[1, 2], &[2, 1]]);
    // A partition on a fenced broker is not moved by node-add.
    c.add_broker(5, Some("c"));
    c.topic("u", &[&[5, 1]]);
    c.fence_flag(5);
    settle(&mut c, 5);
    for p in 0..4 {
        let s = c.state("t", p);
        let racks: Vec<Option<String>> = s
            .replicas
            .iter()
            .map(|r| c.image.broker(*r).and_then(|b| b.rack.clone()))
            .collect();
        assert_ne!(racks[0], racks[1], "t-{p} kept its rack spread: {s:?}");
    }
    let after = counts(&c);
    assert_eq!(after.get(&5), None, "fenced: not available");
    assert!(after.values().all(|n| *n >= 2), "{after:?}");
    assert_eq!(c.state("u", 0).replicas, vec![5, 1]);
}

#[test]
fn nothing_starts_while_a_reassignment_is_in_progress() {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    c.topic("t", &[&[1, 2], &[2, 3], &[3, 1], &[1, 2], &[2, 3], &[3, 1]]);
    c.add_broker(4, None);
    // An operator's move in flight.
    let (records, _) = crate::alter_reassignments(
        &c.image,
        &[ReassignmentSpec {
            topic: "t".into(),
            partition: 0,
            replicas: Some(vec![1, 3]),
        }],
        1,
    )
    .expect("start");
    c.apply(records).expect("apply");
    assert_eq!(balancer_view(&c.image).moving, 1);
    assert!(balancer_moves(&c.image, BalancerMode::NodeAdd, 5, 1, &none(), 80).is_empty());
}

#[test]
fn replicas_of_gone_brokers_move_to_available_ones_rack_aware() {
    let mut c = Cluster::with_racks(&[(1, "a"), (2, "b"), (3, "c"), (4, "a"), (5, "c")]);
    c.topic("t", &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2], &[1, 2, 4]]);
    assert!(unavailable_moves(&c.image, &[], 5, 1, &none(), 80).is_empty());
    c.fence_flag(3);
    // 3 was on rack c: 5 (rack c) replaces it where that keeps racks spread.
    let records = unavailable_moves(&c.image, &[3], 5, 1, &none(), 80);
    c.apply(records).expect("apply");
    for p in 0..3 {
        let s = c.state("t", p);
        assert!(s.is_reassigning(), "t-{p}: {s:?}");
        assert!(s.adding.contains(&5), "t-{p} gets 5 (rack c): {s:?}");
        assert_eq!(s.removing, vec![3], "t-{p}: {s:?}");
    }
    assert!(!c.state("t", 3).is_reassigning(), "t-3 has no replica on 3");
    // Already moving: nothing more.
    assert!(unavailable_moves(&c.image, &[3], 5, 1, &none(), 80).is_empty());
}

#[test]
fn unavailable_moves_respect_the_concurrency_limit() {
    let mut c = Cluster::with_brokers(&[1, 2, 3, 4]);
    c.topic("t", &[&[1, 3], &[2, 3], &[1, 3], &[2, 3], &[4, 3]]);
    c.fence_flag(3);
    let records = unavailable_moves(&c.image, &[3], 1, 1, &none(), 80);
    c.apply(records).expect("apply");
    let moving: Vec<Vec<i32>> = (0..5)
        .map(|p| c.state("t", p))
        .filter(|s| s.is_reassigning())
        .map(|s| s.adding)
        .collect();
    // One move in flight per receiving broker: at most one each to 1, 2, 4.
    assert!(!moving.is_empty() && moving.len() <= 3, "{moving:?}");
    let mut receivers: Vec<i32> = moving.concat();
    receivers.sort();
    receivers.dedup();
    assert_eq!(receivers.len(), moving.len(), "{moving:?}");
}

const GB: u64 = 1 << 30;

/// A usage report: `(broker, used GB, total GB)` and `(topic, partition,
/// GB)`.
fn usage(disks: &[(i32, u64, u64)], sizes: &[(&str, i32, u64)]) -> UsageReport {
    UsageReport {
        disks: disks
            .iter()
            .map(|(b, used, total)| {
                (
                    *b,
                    DiskUsage {
                        used_bytes: used * GB,
                        total_bytes: total * GB,
                    },
                )
            })
            .collect(),
        partition_bytes: sizes
            .iter()
            .map(|(t, p, gb)| ((crate::testutil::tid(t), *p), gb * GB))
            .collect(),
        replica_bytes: BTreeMap::new(),
    }
}

/// The moves `records` start, as (partition, adding, removing), after
/// applying them.
fn started(
    c: &mut Cluster,
    topic: &str,
    records: Vec<pb::MetadataRecord>,
) -> Vec<(i32, Vec<i32>, Vec<i32>)> {
    c.apply(records).expect("moves apply");
    let n = c
        .image
        .topic_by_name(topic)
        .map_or(0, |t| t.partitions.len());
    (0..n as i32)
        .map(|p| (p, c.state(topic, p)))
        .filter(|(_, s)| s.is_reassigning())
        .map(|(p, s)| (p, s.adding, s.removing))
        .collect()
}

#[test]
fn disk_usage_arithmetic() {
    for (used, total, threshold, over, fits_1) in [
        (80, 100, 80, false, false),
        (81, 100, 80, true, false),
        (79, 100, 80, false, true),
        (0, 0, 80, false, false),
        (100, 100, 100, false, false),
        (99, 100, 100, false, true),
    ] {
        let d = DiskUsage {
            used_bytes: used,
            total_bytes: total,
        };
        assert_eq!(d.over(threshold), over, "{used}/{total} over {threshold}");
        assert_eq!(
            d.fits(1, threshold),
            fits_1,
            "{used}+1/{total} fits {threshold}"
        );
    }
}

#[test]
fn disk_moves_decisions() {
    struct Case {
        name: &'static str,
        racks: &'static [(i32, &'static str)],
        assignment: &'static [&'static [i32]],
        disks: &'static [(i32, u64, u64)],
        sizes: &'static [(&'static str, i32, u64)],
        threshold: u8,
        max_moves: usize,
        /// (partition, adding, removing) of the moves started.
        want: &'static [(i32, &'static [i32], &'static [i32])],
    }
    let cases = [
        Case {
            name: "under the threshold: nothing",
            racks: &[(1, "a"), (2, "b"), (3, "c")],
            assignment: &[&[1, 2], &[2, 3]],
            disks: &[(1, 80, 100), (2, 50, 100), (3, 10, 100)],
            sizes: &[("t", 0, 10), ("t", 1, 10)],
            threshold: 80,
            max_moves: 5,
            want: &[],
        },
        Case {
            name: "the least data that brings it under, to the most free space",
            racks: &[(1, "a"), (2, "a"), (3, "a"), (4, "a")],
            assignment: &[&[1, 2], &[1, 2], &[1, 2]],
            // 1 is at 90%: 10 GB must go. The 15 GB partition would do, the
            // 10 GB one does with less copying (to 80%, not over).
            disks: &[(1, 90, 100), (2, 40, 100), (3, 30, 100), (4, 10, 100)],
            sizes: &[("t", 0, 5), ("t", 1, 15), ("t", 2, 10)],
            threshold: 80,
            max_moves: 5,
            want: &[(2, &[4], &[1])],
        },
        Case {
            name: "no partition is enough alone: the largest, then the least that is",
            racks: &[(1, "a"), (2, "a"), (3, "a")],
            assignment: &[&[1], &[1], &[1], &[1]],
            // 97%: 17 GB must go. None is that large: 10 GB leave first,
            // then of the partitions of 7 GB or more the smallest (8 GB).
            disks: &[(1, 97, 100), (2, 10, 100), (3, 40, 100)],
            sizes: &[("t", 0, 10), ("t", 1, 6), ("t", 2, 3), ("t", 3, 8)],
            threshold: 80,
            max_moves: 5,
            want: &[(0, &[2], &[1]), (3, &[2], &[1])],
        },
        Case {
            name: "a partition no broker has room for is passed over",
            racks: &[(1, "a"), (2, "a")],
            assignment: &[&[1], &[1], &[1]],
            // 10 GB must go; the 12 GB partition would take 2 to 81%, so
            // the 8 GB one goes, then the 4 GB one would take 2 over: 1
            // stays over, with nothing left to do.
            disks: &[(1, 90, 100), (2, 69, 100)],
            sizes: &[("t", 0, 12), ("t", 1, 4), ("t", 2, 8)],
            threshold: 80,
            max_moves: 5,
            want: &[(2, &[2], &[1])],
        },
        Case {
            name: "ties go to the first topic and partition",
            racks: &[(1, "a"), (2, "a")],
            assignment: &[&[1], &[1], &[1]],
            disks: &[(1, 85, 100), (2, 0, 100)],
            sizes: &[("t", 0, 5), ("t", 1, 5), ("t", 2, 5)],
            threshold: 80,
            max_moves: 5,
            want: &[(0, &[2], &[1])],
        },
        Case {
            name: "several moves while still over, spread over free brokers",
            racks: &[(1, "a"), (2, "a"), (3, "a"), (4, "a")],
            assignment: &[&[1], &[1], &[1]],
            // 95% on 1: 10 + 10 GB leave before it is under 80%.
            disks: &[(1, 95, 100), (2, 70, 100), (3, 20, 100), (4, 25, 100)],
            sizes: &[("t", 0, 10), ("t", 1, 10), ("t", 2, 2)],
            threshold: 80,
            max_moves: 5,
            want: &[(0, &[3], &[1]), (1, &[4], &[1])],
        },
        Case {
            name: "rack spread kept: the freest broker shares a rack",
            racks: &[(1, "a"), (2, "b"), (3, "b"), (4, "a")],
            assignment: &[&[1, 2]],
            // 3 has the most space but is on 2's rack; 4 (rack a) takes it.
            disks: &[(1, 90, 100), (2, 10, 100), (3, 0, 100), (4, 50, 100)],
            sizes: &[("t", 0, 20)],
            threshold: 80,
            max_moves: 5,
            want: &[(0, &[4], &[1])],
        },
        Case {
            name: "no broker the partition fits under the threshold: nothing",
            racks: &[(1, "a"), (2, "a"), (3, "a")],
            assignment: &[&[1, 2]],
            disks: &[(1, 90, 100), (2, 10, 100), (3, 75, 100)],
            sizes: &[("t", 0, 10)],
            threshold: 80,
            max_moves: 5,
            want: &[],
        },
        Case {
            name: "brokers without a disk report are not targets",
            racks: &[(1, "a"), (2, "a"), (3, "a")],
            assignment: &[&[1, 2]],
            disks: &[(1, 90, 100), (2, 10, 100)],
            sizes: &[("t", 0, 10)],
            threshold: 80,
            max_moves: 5,
            want: &[],
        },
        Case {
            name: "partitions of unknown size are not moved",
            racks: &[(1, "a"), (2, "a"), (3, "a")],
            assignment: &[&[1, 2]],
            disks: &[(1, 90, 100), (2, 10, 100), (3, 10, 100)],
            sizes: &[],
            threshold: 80,
            max_moves: 5,
            want: &[],
        },
        Case {
            name: "the concurrency limit holds",
            racks: &[(1, "a"), (2, "a"), (3, "a")],
            assignment: &[&[1], &[1], &[1], &[1]],
            disks: &[(1, 99, 100), (2, 0, 100), (3, 0, 100)],
            sizes: &[("t", 0, 10), ("t", 1, 10), ("t", 2, 10), ("t", 3, 10)],
            threshold: 50,
            max_moves: 2,
            want: &[(0, &[2], &[1]), (1, &[3], &[1])],
        },
        Case {
            name: "a higher threshold leaves the broker alone",
            racks: &[(1, "a"), (2, "a")],
            assignment: &[&[1]],
            disks: &[(1, 90, 100), (2, 0, 100)],
            sizes: &[("t", 0, 10)],
            threshold: 90,
            max_moves: 5,
            want: &[],
        },
    ];
    for case in cases {
        let mut c = Cluster::with_racks(case.racks);
        c.topic("t", case.assignment);
        let u = usage(case.disks, case.sizes);
        let records = disk_moves(&c.image, &u, case.threshold, case.max_moves, 1);
        let got = started(&mut c, "t", records);
        let want: Vec<(i32, Vec<i32>, Vec<i32>)> = case
            .want
            .iter()
            .map(|(p, a, r)| (*p, a.to_vec(), r.to_vec()))
            .collect();
        assert_eq!(got, want, "{}", case.name);
    }
}

#[test]
fn disk_moves_in_flight_count_as_freed() {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    c.topic("t", &[&[1], &[1], &[1]]);
    // 1 at 90%: one 15 GB move brings it to 75%.
    let u = usage(
        &[(1, 90, 100), (2, 0, 100), (3, 0, 100)],
        &[("t", 0, 15), ("t", 1, 15), ("t", 2, 15)],
    );
    let records = disk_moves(&c.image, &u, 80, 5, 1);
    assert_eq!(started(&mut c, "t", records).len(), 1);
    // The heartbeat still reports 90% while the move runs: nothing more.
    assert!(disk_moves(&c.image, &u, 80, 5, 1).is_empty());
}

#[test]
fn disk_moves_project_what_the_reports_do_not_show_yet() {
    struct Case {
        name: &'static str,
        assignment: &'static [&'static [i32]],
        disks: &'static [(i32, u64, u64)],
        sizes: &'static [(&'static str, i32, u64)],
        /// (broker, partition, GB) of what each broker reported holding.
        held: &'static [(i32, i32, u64)],
        want: &'static [(i32, &'static [i32], &'static [i32])],
    }
    let cases = [
        Case {
            name: "a replica moved away but still reported counts as freed",
            // t-0 left 1 for 2; 1's report (90%) still holds its 15 GB.
            assignment: &[&[2], &[1]],
            disks: &[(1, 90, 100), (2, 30, 100), (3, 10, 100)],
            sizes: &[("t", 0, 15), ("t", 1, 5)],
            held: &[(1, 0, 15), (1, 1, 5), (2, 0, 15)],
            want: &[],
        },
        Case {
            name: "the same report without the replica: the broker is over",
            assignment: &[&[2], &[1]],
            disks: &[(1, 90, 100), (2, 30, 100), (3, 10, 100)],
            sizes: &[("t", 0, 15), ("t", 1, 15)],
            held: &[(1, 1, 15), (2, 0, 15)],
            want: &[(1, &[3], &[1])],
        },
        Case {
            name: "a replica moved in but not yet reported counts as used",
            // t-0 moved to 3 (15 GB), whose report does not show it yet:
            // 3 is at 75%, not 60%, and 2 (65%) has more room for t-1.
            assignment: &[&[3], &[1]],
            disks: &[(1, 90, 100), (2, 65, 100), (3, 60, 100)],
            sizes: &[("t", 0, 15), ("t", 1, 10)],
            held: &[(1, 1, 10), (2, 9, 0), (3, 9, 0)],
            want: &[(1, &[2], &[1])],
        },
        Case {
            name: "a replica half copied counts with what is still to copy",
            // t-1 is already 5 of its 10 GB on 3 (a new replica that the
            // image has in place): 3 is at 65%, 2 at 62% gets t-0.
            assignment: &[&[1], &[3]],
            disks: &[(1, 90, 100), (2, 62, 100), (3, 60, 100)],
            sizes: &[("t", 0, 10), ("t", 1, 10)],
            held: &[(1, 0, 10), (2, 9, 0), (3, 1, 5)],
            want: &[(0, &[2], &[1])],
        },
    ];
    for case in cases {
        let mut c = Cluster::with_brokers(&[1, 2, 3]);
        c.topic("t", case.assignment);
        let mut u = usage(case.disks, case.sizes);
        for (b, p, gb) in case.held {
            let held = u.replica_bytes.entry(*b).or_default();
            // Partition 9 does not exist: a report that holds nothing
            // the image knows of.
            if *p != 9 {
                held.insert((crate::testutil::tid("t"), *p), gb * GB);
            }
        }
        let records = disk_moves(&c.image, &u, 80, 5, 1);
        let got = started(&mut c, "t", records);
        let want: Vec<(i32, Vec<i32>, Vec<i32>)> = case
            .want
            .iter()
            .map(|(p, a, r)| (*p, a.to_vec(), r.to_vec()))
            .collect();
        assert_eq!(got, want, "{}", case.name);
    }
}

#[test]
fn disk_moves_count_a_running_move_by_the_reports() {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    c.topic("t", &[&[1], &[1], &[1]]);
    let mut u = usage(
        &[(1, 90, 100), (2, 35, 100), (3, 30, 100)],
        &[("t", 0, 15), ("t", 1, 15), ("t", 2, 15)],
    );
    let t = crate::testutil::tid("t");
    u.replica_bytes
        .insert(1, (0..3).map(|p| ((t, p), 15 * GB)).collect());
    u.replica_bytes.insert(2, BTreeMap::new());
    let records = disk_moves(&c.image, &u, 80, 5, 1);
    assert_eq!(started(&mut c, "t", records), vec![(0, vec![3], vec![1])]);
    // t-0 moves from 1 to 3, which reports 5 of its 15 GB copied (at 30%
    // still): 1 is projected at 75%, nothing more to do.
    u.replica_bytes.insert(3, [((t, 0), 5 * GB)].into());
    assert!(disk_moves(&c.image, &u, 80, 5, 1).is_empty());
    // Were 1 still over with the move counted (81%), the next move goes
    // to 2 (35%): 3 is projected at 30% + 10 GB still to copy.
    u.disks.get_mut(&1).expect("reported").used_bytes = 96 * GB;
    let records = disk_moves(&c.image, &u, 80, 5, 1);
    assert_eq!(
        started(&mut c, "t", records),
        vec![(0, vec![3], vec![1]), (1, vec![2], vec![1])]
    );
}

#[test]
fn filling_never_takes_a_broker_over_the_disk_threshold() {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    let assignment: Vec<Vec<i32>> = (0..12).map(|p| vec![1 + p % 3, 1 + (p + 1) % 3]).collect();
    let refs: Vec<&[i32]> = assignment.iter().map(Vec::as_slice).collect();
    c.topic("t", &refs);
    c.add_broker(4, None);
    let sizes: Vec<(&str, i32, u64)> = (0..12).map(|p| ("t", p, 1)).collect();
    // 4 is at the threshold: the filling would move 6 replicas there.
    let full = usage(
        &[(1, 10, 100), (2, 10, 100), (3, 10, 100), (4, 80, 100)],
        &sizes,
    );
    assert!(balancer_moves(&c.image, BalancerMode::NodeAdd, 5, 1, &full, 80).is_empty());
    let roomy = usage(
        &[(1, 10, 100), (2, 10, 100), (3, 10, 100), (4, 0, 100)],
        &sizes,
    );
    assert!(!balancer_moves(&c.image, BalancerMode::NodeAdd, 5, 1, &roomy, 80).is_empty());
}

#[test]
fn unavailable_moves_skip_brokers_the_move_would_fill() {
    let mut c = Cluster::with_brokers(&[1, 2, 3, 4]);
    c.topic("t", &[&[1, 3]]);
    c.fence_flag(3);
    // 2 holds fewer replicas but would go over the threshold: 4 takes it.
    c.topic("u", &[&[4]]);
    let u = usage(&[(1, 0, 100), (2, 75, 100), (4, 0, 100)], &[("t", 0, 10)]);
    let records = unavailable_moves(&c.image, &[3], 5, 1, &u, 80);
    let got = started(&mut c, "t", records);
    assert_eq!(got, vec![(0, vec![4], vec![3])]);
}

/// Leader counts of the available brokers.
fn leader_counts(c: &Cluster) -> BTreeMap<i32, usize> {
    let mut n: BTreeMap<i32, usize> = counts(c).keys().map(|b| (*b, 0)).collect();
    for (_, _, s) in c.image.all_partitions() {
        if let Some(x) = n.get_mut(&s.leader) {
            *x += 1;
        }
    }
    n
}

#[test]
fn leader_moves_decisions() {
    struct Case {
        name: &'static str,
        brokers: &'static [i32],
        fenced: &'static [i32],
        /// (replicas, isr); the first replica leads.
        partitions: &'static [(&'static [i32], &'static [i32])],
        /// Leaders per available broker afterwards.
        want: &'static [(i32, usize)],
    }
    let cases = [
        Case {
            name: "balanced: nothing",
            brokers: &[1, 2, 3],
            fenced: &[],
            partitions: &[
                (&[1, 2, 3], &[1, 2, 3]),
                (&[2, 3, 1], &[2, 3, 1]),
                (&[3, 1, 2], &[3, 1, 2]),
            ],
            want: &[(1, 1), (2, 1), (3, 1)],
        },
        Case {
            name: "one broker leads everything: evened to within one",
            brokers: &[1, 2, 3],
            fenced: &[],
            partitions: &[
                (&[1, 2, 3], &[1, 2, 3]),
                (&[1, 2, 3], &[1, 2, 3]),
                (&[1, 2, 3], &[1, 2, 3]),
                (&[1, 3, 2], &[1, 3, 2]),
                (&[1, 3, 2], &[1, 3, 2]),
                (&[1, 2, 3], &[1, 2, 3]),
            ],
            want: &[(1, 2), (2, 2), (3, 2)],
        },
        Case {
            name: "only in-sync replicas take over",
            brokers: &[1, 2, 3],
            fenced: &[],
            partitions: &[
                (&[1, 2, 3], &[1]),
                (&[1, 2, 3], &[1]),
                (&[1, 2, 3], &[1, 3]),
            ],
            want: &[(1, 2), (2, 0), (3, 1)],
        },
        Case {
            name: "unavailable brokers are not given leaderships",
            brokers: &[1, 2, 3],
            fenced: &[3],
            partitions: &[
                (&[1, 3, 2], &[1, 3, 2]),
                (&[1, 3, 2], &[1, 3, 2]),
                (&[1, 3, 2], &[1, 3, 2]),
                (&[1, 3, 2], &[1, 3, 2]),
            ],
            want: &[(1, 2), (2, 2)],
        },
    ];
    for case in cases {
        let mut c = Cluster::with_brokers(case.brokers);
        let assignment: Vec<&[i32]> = case.partitions.iter().map(|(r, _)| *r).collect();
        c.raw_topic("t", &assignment);
        for (p, (r, isr)) in case.partitions.iter().enumerate() {
            if isr.len() < r.len() {
                c.set("t", p as i32, isr, r[0]);
            }
        }
        for b in case.fenced {
            c.fence_flag(*b);
        }
        let records = leader_moves(&c.image);
        c.apply(records).expect("leader moves apply");
        let want: BTreeMap<i32, usize> = case.want.iter().copied().collect();
        assert_eq!(leader_counts(&c), want, "{}", case.name);
        for p in 0..case.partitions.len() as i32 {
            let s = c.state("t", p);
            assert!(s.isr.contains(&s.leader), "{}: t-{p} {s:?}", case.name);
            let mut set = s.replicas.clone();
            set.sort();
            let mut before = case.partitions[p as usize].0.to_vec();
            before.sort();
            assert_eq!(set, before, "{}: t-{p} keeps its replicas", case.name);
            if s.leader != case.partitions[p as usize].0[0] {
                assert_eq!(s.replicas[0], s.leader, "{}: preferred follows", case.name);
            }
        }
        assert!(leader_moves(&c.image).is_empty(), "{}: settled", case.name);
    }
}

#[test]
fn leader_moves_wait_for_reassignments() {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    c.topic("t", &[&[1, 2], &[1, 2], &[1, 3], &[1, 3]]);
    let (records, _) = crate::alter_reassignments(
        &c.image,
        &[ReassignmentSpec {
            topic: "t".into(),
            partition: 0,
            replicas: Some(vec![1, 3]),
        }],
        1,
    )
    .expect("start");
    c.apply(records).expect("apply");
    assert!(leader_moves(&c.image).is_empty());
}

#[test]
fn disk_balance_decisions() {
    struct Case {
        name: &'static str,
        racks: &'static [(i32, &'static str)],
        assignment: &'static [&'static [i32]],
        sizes: &'static [u64],
        disks: &'static [(i32, u64, u64)],
        /// (partition, adding, removing) of the moves started.
        want: &'static [(i32, &'static [i32], &'static [i32])],
    }
    let cases = [
        Case {
            name: "within the tolerance: nothing",
            racks: &[(1, "a"), (2, "a")],
            assignment: &[&[1], &[2]],
            sizes: &[10, 11],
            disks: &[],
            want: &[],
        },
        Case {
            name: "equal replica counts: a big and a small replica swap",
            racks: &[(1, "a"), (2, "a")],
            assignment: &[&[1], &[1], &[2], &[2]],
            sizes: &[10, 10, 1, 1],
            disks: &[],
            want: &[(0, &[2], &[1]), (2, &[1], &[2])],
        },
        Case {
            name: "a broker with fewer replicas takes one",
            racks: &[(1, "a"), (2, "a"), (3, "a")],
            assignment: &[&[1], &[1], &[2], &[3]],
            sizes: &[6, 6, 6, 1],
            disks: &[],
            want: &[(0, &[3], &[1])],
        },
        Case {
            name: "rack spread kept: the heaviest cannot shed to a broker on its partner's rack",
            racks: &[(1, "a"), (2, "b"), (3, "a")],
            assignment: &[&[1, 2], &[2, 1], &[2]],
            sizes: &[10, 10, 4],
            disks: &[],
            want: &[(0, &[3], &[1]), (2, &[3], &[2])],
        },
        Case {
            name: "never over the disk threshold",
            racks: &[(1, "a"), (2, "a")],
            assignment: &[&[1], &[1], &[2], &[2]],
            sizes: &[10, 10, 1, 1],
            disks: &[(1, 50, 100), (2, 75, 100)],
            want: &[],
        },
    ];
    for case in cases {
        let mut c = Cluster::with_racks(case.racks);
        c.raw_topic("t", case.assignment);
        let sizes: Vec<(&str, i32, u64)> = case
            .sizes
            .iter()
            .enumerate()
            .map(|(p, s)| ("t", p as i32, *s))
            .collect();
        let u = usage(case.disks, &sizes);
        let records = disk_balance_moves(&c.image, &u, 80, 5, 1);
        let got = started(&mut c, "t", records);
        let want: Vec<(i32, Vec<i32>, Vec<i32>)> = case
            .want
            .iter()
            .map(|(p, a, r)| (*p, a.to_vec(), r.to_vec()))
            .collect();
        assert_eq!(got, want, "{}", case.name);
        if !want.is_empty() {
            assert!(
                disk_balance_moves(&c.image, &u, 80, 5, 1).is_empty(),
                "{}: nothing more while moving",
                case.name
            );
        }
    }
}

#[test]
fn disk_balance_converges_within_the_tolerance_keeping_replica_counts() {
    let mut c = Cluster::with_brokers(&[1, 2, 3, 4]);
    // 16 partitions of RF 2, evenly counted, sizes 1..=16 GB piled so that
    // brokers 1 and 2 hold the big ones.
    let assignment: Vec<Vec<i32>> = (0..16)
        .map(|p| if p >= 8 { vec![1, 2] } else { vec![3, 4] })
        .collect();
    let refs: Vec<&[i32]> = assignment.iter().map(Vec::as_slice).collect();
    c.topic("t", &refs);
    let sizes: Vec<(&str, i32, u64)> = (0..16).map(|p| ("t", p, p as u64 + 1)).collect();
    let u = usage(&[], &sizes);
    let before = counts(&c);
    for _ in 0..50 {
        let records = disk_balance_moves(&c.image, &u, 80, 2, 1);
        if records.is_empty() {
            break;
        }
        c.apply(records).expect("moves apply");
        let moving: Vec<(String, i32, Vec<i32>, i32)> = c
            .image
            .all_partitions()
            .filter(|(_, _, s)| s.is_reassigning())
            .map(|(t, p, s)| (t.name.clone(), p, s.replicas.clone(), s.leader))
            .collect();
        for (t, p, replicas, leader) in &moving {
            c.set(t, *p, replicas, *leader);
        }
        let done = crate::complete_reassignments(&c.image, 1);
        c.apply(done).expect("completions apply");
    }
    assert!(
        disk_balance_moves(&c.image, &u, 80, 2, 1).is_empty(),
        "settled"
    );
    let bytes = broker_bytes(&c.image, &u);
    let most = bytes.values().max().copied().unwrap_or(0);
    let least = bytes.values().min().copied().unwrap_or(0);
    let avg = bytes.values().sum::<u64>() / 4;
    assert!(
        most - least <= avg * DISK_BALANCE_TOLERANCE_PERCENT / 100 + 16 * GB / 2,
        "bytes evened: {bytes:?}"
    );
    assert!(
        most - least < 60 * GB,
        "much better than the start: {bytes:?}"
    );
    assert_eq!(counts(&c), before, "replica counts unchanged");
}

#[test]
fn disk_balance_ignores_differences_below_the_byte_floor() {
    const MIB: u64 = 1 << 20;
    for (each, moves) in [(50 * MIB, 0), (100 * MIB, 1)] {
        let mut c = Cluster::with_brokers(&[1, 2]);
        c.topic("t", &[&[1], &[1], &[2]]);
        let u = UsageReport {
            disks: BTreeMap::new(),
            partition_bytes: [(0, each), (1, each), (2, 0)]
                .into_iter()
                .map(|(p, b)| ((crate::testutil::tid("t"), p), b))
                .collect(),
            replica_bytes: BTreeMap::new(),
        };
        let records = disk_balance_moves(&c.image, &u, 80, 5, 1);
        let got = started(&mut c, "t", records);
        assert_eq!(got.len(), moves, "{} MiB apart: {got:?}", 2 * each / MIB);
    }
}
