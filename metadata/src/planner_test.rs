use std::collections::BTreeMap;

use super::*;
use crate::ErrorKind;

/// Broker ids with their racks.
type Brokers = Vec<(i32, Option<String>)>;

fn brokers(ids: &[i32]) -> Brokers {
    ids.iter().map(|id| (*id, None)).collect()
}

fn racked(list: &[(i32, &str)]) -> Brokers {
    list.iter()
        .map(|(id, r)| (*id, Some(r.to_string())))
        .collect()
}

fn assignment(parts: &[&[i32]]) -> Vec<PartitionAssignment> {
    parts
        .iter()
        .enumerate()
        .map(|(p, r)| PartitionAssignment {
            topic: "t".into(),
            partition: p as i32,
            replicas: r.to_vec(),
        })
        .collect()
}

fn replicas(plan: &[PartitionAssignment]) -> Vec<Vec<i32>> {
    plan.iter().map(|p| p.replicas.clone()).collect()
}

/// Replicas that change brokers between `a` and `b` (order ignored).
fn moved(a: &[PartitionAssignment], b: &[PartitionAssignment]) -> usize {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            y.replicas
                .iter()
                .filter(|r| !x.replicas.contains(r))
                .count()
        })
        .sum()
}

fn loads(plan: &[PartitionAssignment]) -> BTreeMap<i32, usize> {
    let mut m = BTreeMap::new();
    for p in plan {
        for r in &p.replicas {
            *m.entry(*r).or_default() += 1;
        }
    }
    m
}

#[test]
fn proposals() {
    // (brokers, current, expected proposal, replicas moved)
    type Case<'a> = (
        Vec<(i32, Option<String>)>,
        &'a [&'a [i32]],
        &'a [&'a [i32]],
        usize,
    );
    let cases: &[Case<'_>] = &[
        // Already balanced on the same brokers: nothing moves.
        (
            brokers(&[1, 2, 3]),
            &[&[1, 2], &[2, 3], &[3, 1]],
            &[&[1, 2], &[2, 3], &[3, 1]],
            0,
        ),
        // Broker 3 leaves: only its replicas move, to 4.
        (
            brokers(&[1, 2, 4]),
            &[&[1, 2], &[2, 3], &[3, 1]],
            &[&[1, 2], &[2, 4], &[4, 1]],
            2,
        ),
        // All to new brokers {4,5,6} (the seed notes' move).
        (brokers(&[4, 5, 6]), &[&[1, 2, 3]], &[&[4, 5, 6]], 3),
        // A new broker 4 gets its share and no more.
        (
            brokers(&[1, 2, 3, 4]),
            &[&[1, 2], &[2, 3], &[3, 1], &[1, 2]],
            &[&[1, 4], &[2, 3], &[3, 4], &[1, 2]],
            2,
        ),
    ];
    for (i, (b, cur, want, n)) in cases.iter().enumerate() {
        let cur = assignment(cur);
        let plan = plan_assignment(b, &cur).unwrap();
        assert_eq!(replicas(&plan), replicas(&assignment(want)), "case {i}");
        assert_eq!(moved(&cur, &plan), *n, "case {i}");
    }
}

#[test]
fn replicas_spread_over_racks() {
    let b = racked(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
    // Both replicas on rack a: one must leave it.
    let cur = assignment(&[&[1, 2], &[3, 5], &[4, 6], &[5, 1]]);
    let plan = plan_assignment(&b, &cur).unwrap();
    let rack = |id: i32| b.iter().find(|(x, _)| *x == id).unwrap().1.clone();
    for p in &plan {
        assert_ne!(rack(p.replicas[0]), rack(p.replicas[1]), "{p:?}");
    }
    assert_eq!(plan[0].replicas[0], 1, "the preferred leader stays");
    let l = loads(&plan);
    assert!(
        l.values().max().unwrap() - l.values().min().unwrap() <= 1,
        "{l:?}"
    );
}

#[test]
fn many_partitions_end_balanced_and_deterministic() {
    let cur: Vec<PartitionAssignment> = (0..60)
        .map(|p| PartitionAssignment {
            topic: "t".into(),
            partition: p,
            replicas: vec![1 + p % 3, 1 + (p + 1) % 3, 1 + (p + 2) % 3],
        })
        .collect();
    let b = brokers(&[1, 2, 3, 4, 5, 6]);
    let plan = plan_assignment(&b, &cur).unwrap();
    assert_eq!(plan, plan_assignment(&b, &cur).unwrap());
    let l = loads(&plan);
    assert_eq!(l.values().sum::<usize>(), 180);
    assert!(l.values().all(|n| *n == 30), "{l:?}");
    // Half the replicas must move to fill 4-6, and no more.
    assert_eq!(moved(&cur, &plan), 90);
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for p in &plan {
        *leaders.entry(p.replicas[0]).or_default() += 1;
        let mut r = p.replicas.clone();
        r.sort();
        r.dedup();
        assert_eq!(r.len(), 3);
    }
    assert!(
        leaders.values().all(|n| (5..=15).contains(n)),
        "{leaders:?}"
    );
}

#[test]
fn refusals() {
    let cur = assignment(&[&[1, 2, 3]]);
    let cases: Vec<(Brokers, ErrorKind)> = vec![
        (brokers(&[1, 2]), ErrorKind::InvalidReplicationFactor),
        (brokers(&[]), ErrorKind::InvalidRequest),
        (brokers(&[1, 2, 2, 3]), ErrorKind::InvalidRequest),
    ];
    for (b, code) in cases {
        assert_eq!(plan_assignment(&b, &cur).unwrap_err().code, code, "{b:?}");
    }
}
