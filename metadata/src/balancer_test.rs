use std::collections::BTreeMap;

use super::*;
use crate::testutil::Cluster;

/// Runs balancer rounds (every new replica joining the ISR at once, moves
/// completing) until nothing changes; returns the rounds that started
/// moves and the most moves one round started.
fn settle(c: &mut Cluster, max_moves: usize) -> (usize, usize) {
    let (mut rounds, mut most) = (0, 0);
    for _ in 0..100 {
        let records = balancer_moves(&c.image, BalancerMode::NodeAdd, max_moves, 1);
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
        balancer_moves(&c.image, BalancerMode::NodeAdd, 5, 1).is_empty(),
        "balanced: nothing to do"
    );
    c.add_broker(4, None);
    assert!(balancer_view(&c.image).unbalanced);
    assert!(
        balancer_moves(&c.image, BalancerMode::Off, 5, 1).is_empty(),
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
    assert!(balancer_moves(&c.image, BalancerMode::NodeAdd, 5, 1).is_empty());
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
    assert!(balancer_moves(&c.image, BalancerMode::NodeAdd, 5, 1).is_empty());
}

#[test]
fn replicas_of_gone_brokers_move_to_available_ones_rack_aware() {
    let mut c = Cluster::with_racks(&[(1, "a"), (2, "b"), (3, "c"), (4, "a"), (5, "c")]);
    c.topic("t", &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2], &[1, 2, 4]]);
    assert!(unavailable_moves(&c.image, &[], 5, 1).is_empty());
    c.fence_flag(3);
    // 3 was on rack c: 5 (rack c) replaces it where that keeps racks spread.
    let records = unavailable_moves(&c.image, &[3], 5, 1);
    c.apply(records).expect("apply");
    for p in 0..3 {
        let s = c.state("t", p);
        assert!(s.is_reassigning(), "t-{p}: {s:?}");
        assert!(s.adding.contains(&5), "t-{p} gets 5 (rack c): {s:?}");
        assert_eq!(s.removing, vec![3], "t-{p}: {s:?}");
    }
    assert!(!c.state("t", 3).is_reassigning(), "t-3 has no replica on 3");
    // Already moving: nothing more.
    assert!(unavailable_moves(&c.image, &[3], 5, 1).is_empty());
}

#[test]
fn unavailable_moves_respect_the_concurrency_limit() {
    let mut c = Cluster::with_brokers(&[1, 2, 3, 4]);
    c.topic("t", &[&[1, 3], &[2, 3], &[1, 3], &[2, 3], &[4, 3]]);
    c.fence_flag(3);
    let records = unavailable_moves(&c.image, &[3], 1, 1);
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
