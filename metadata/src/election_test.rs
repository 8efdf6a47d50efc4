use super::*;
use crate::ErrorKind;
use crate::image::DEFAULT_MIN_INSYNC_REPLICAS as MIN_ISR;
use crate::testutil::{Cluster, changes, tid};

#[test]
fn leader_choice_rule() {
    use LeaderSource::{Elr, Isr, Unclean};
    // (replicas, isr, elr, alive, unclean allowed) -> (leader, source)
    type Case<'a> = (
        &'a [i32],
        &'a [i32],
        &'a [i32],
        &'a [i32],
        bool,
        Option<(i32, LeaderSource)>,
    );
    let cases: &[Case<'_>] = &[
        // preferred alive and in ISR
        (
            &[1, 2, 3],
            &[1, 2, 3],
            &[],
            &[1, 2, 3],
            false,
            Some((1, Isr)),
        ),
        // ISR order does not matter, replica order does
        (
            &[1, 2, 3],
            &[3, 2, 1],
            &[],
            &[1, 2, 3],
            false,
            Some((1, Isr)),
        ),
        // preferred dead: first alive ISR member in replica order
        (&[1, 2, 3], &[3, 2, 1], &[], &[2, 3], false, Some((2, Isr))),
        // preferred alive but out of the ISR
        (&[1, 2, 3], &[3, 2], &[], &[1, 2, 3], false, Some((2, Isr))),
        (&[1, 2, 3], &[3], &[], &[1, 3], false, Some((3, Isr))),
        // no alive ISR member: offline unless unclean
        (&[1, 2, 3], &[3], &[], &[1, 2], false, None),
        (&[1, 2, 3], &[3], &[], &[2, 1], true, Some((1, Unclean))),
        (&[1, 2, 3], &[3], &[], &[2], true, Some((2, Unclean))),
        // unclean allowed but a clean choice exists: clean wins
        (&[1, 2, 3], &[3], &[], &[1, 3], true, Some((3, Isr))),
        // no alive ISR member, an alive eligible replica: it leads
        (&[1, 2, 3], &[3], &[2], &[1, 2], false, Some((2, Elr))),
        // eligible replicas in replica order, dead ones skipped
        (&[1, 2, 3], &[1], &[3, 2], &[2, 3], false, Some((2, Elr))),
        (&[1, 2, 3], &[1], &[3, 2], &[3], false, Some((3, Elr))),
        // an alive ISR member beats an eligible replica, even the preferred one
        (&[1, 2, 3], &[3], &[1], &[1, 3], false, Some((3, Isr))),
        // an eligible replica beats an unclean choice
        (&[1, 2, 3], &[3], &[2], &[1, 2], true, Some((2, Elr))),
        // eligible replicas all dead: offline, or unclean
        (&[1, 2, 3], &[3], &[2], &[1], false, None),
        (&[1, 2, 3], &[3], &[2], &[1], true, Some((1, Unclean))),
        // nobody alive
        (&[1, 2, 3], &[1, 2, 3], &[], &[], true, None),
    ];
    for (replicas, isr, elr, alive, unclean, want) in cases {
        let got = choose_leader(replicas, isr, elr, |b| alive.contains(&b), *unclean)
            .map(|c| (c.leader, c.source));
        assert_eq!(
            got, *want,
            "replicas {replicas:?} isr {isr:?} elr {elr:?} alive {alive:?} unclean {unclean}"
        );
    }
}

#[test]
fn eligible_leader_replicas_rule() {
    // (current isr, current elr, new isr, min isr) -> new elr; replicas [1, 2, 3]
    type Case<'a> = (&'a [i32], &'a [i32], &'a [i32], usize, &'a [i32]);
    let cases: &[Case<'_>] = &[
        // min.insync.replicas 1: never any
        (&[1, 2, 3], &[], &[1], 1, &[]),
        // still at min.insync.replicas: the high watermark may pass the leaver
        (&[1, 2, 3], &[], &[1, 2], 2, &[]),
        // below it: the leaver holds everything below the frozen high watermark
        (&[1, 2], &[], &[1], 2, &[2]),
        (&[2, 3], &[], &[3], 2, &[2]),
        // two leave at once: both eligible, in replica order
        (&[3, 2, 1], &[], &[1], 3, &[2, 3]),
        // already eligible members stay while the ISR stays below
        (&[3], &[2], &[3], 2, &[2]),
        (&[1, 3], &[2], &[3], 3, &[1, 2]),
        // an eligible replica elected into the ISR leaves the ELR, the
        // member it replaces joins
        (&[3], &[2], &[2], 2, &[3]),
        // back at min.insync.replicas: empty
        (&[3], &[2], &[3, 1], 2, &[]),
        (&[3], &[1, 2], &[3, 2], 2, &[]),
        // a replica that was neither never becomes eligible
        (&[1, 2], &[], &[1], 3, &[2]),
    ];
    for (cur_isr, cur_elr, new_isr, min_isr, want) in cases {
        let got = next_elr(&[1, 2, 3], cur_isr, cur_elr, new_isr, *min_isr);
        assert_eq!(
            got, *want,
            "isr {cur_isr:?} elr {cur_elr:?} -> isr {new_isr:?}, min isr {min_isr}"
        );
    }
}

/// Brokers 1-4; topic "t": p0 [1,2,3] led by 2; p1 [2,3,1] led by 2; p2
/// [3,1,2] led by 1 with 3 fenced; p3 [1,3,2] with 1 out of the ISR; p4
/// [4,1,2] led by 1 with 4 shutting down.
fn cluster() -> Cluster {
    let mut c = Cluster::with_brokers(&[1, 2, 3, 4, 5]);
    c.topic(
        "t",
        &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2], &[1, 3, 2], &[4, 1, 2]],
    );
    c.set("t", 0, &[1, 2, 3], 2);
    c.set("t", 2, &[3, 1, 2], 1);
    c.set("t", 3, &[3, 2], 3);
    c.set("t", 4, &[4, 1, 2], 1);
    c.fence_flag(3);
    c.shutdown_flag(4);
    c
}

fn err_of(r: &ElectionResult) -> Option<ErrorKind> {
    r.error.as_ref().map(|e| e.code)
}

#[test]
fn preferred_election_results() {
    let mut c = cluster();
    let ask: Vec<(String, i32)> = [
        ("t", 0),
        ("t", 1),
        ("t", 2),
        ("t", 3),
        ("t", 4),
        ("t", 9),
        ("x", 0),
    ]
    .iter()
    .map(|(t, p)| (t.to_string(), *p))
    .collect();
    let (records, results) = elect_leaders(&c.image, ElectionKind::Preferred, Some(&ask), MIN_ISR);
    let got: Vec<(i32, Option<ErrorKind>, i32)> = results
        .iter()
        .map(|r| (r.partition, err_of(r), r.leader))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, None, 1),
            (1, Some(ErrorKind::ElectionNotNeeded), 2),
            (2, Some(ErrorKind::PreferredLeaderNotAvailable), 1),
            (3, Some(ErrorKind::PreferredLeaderNotAvailable), 3),
            (4, Some(ErrorKind::PreferredLeaderNotAvailable), 1),
            (9, Some(ErrorKind::UnknownTopicOrPartition), -1),
            (0, Some(ErrorKind::UnknownTopicOrPartition), -1),
        ]
    );
    assert_eq!(changes(&records), vec![(tid("t"), 0, Some(1), None)]);
    let before = c.state("t", 0);
    c.apply(records).unwrap();
    let after = c.state("t", 0);
    assert_eq!(after.leader, 1);
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    assert_eq!(after.partition_epoch, before.partition_epoch + 1);
}

#[test]
fn electing_all_partitions_omits_those_not_needed() {
    let c = cluster();
    let (records, results) = elect_leaders(&c.image, ElectionKind::Preferred, None, MIN_ISR);
    let got: Vec<(i32, Option<ErrorKind>)> =
        results.iter().map(|r| (r.partition, err_of(r))).collect();
    assert_eq!(
        got,
        vec![
            (0, None),
            (2, Some(ErrorKind::PreferredLeaderNotAvailable)),
            (3, Some(ErrorKind::PreferredLeaderNotAvailable)),
            (4, Some(ErrorKind::PreferredLeaderNotAvailable)),
        ]
    );
    assert_eq!(records.len(), 1);
}

#[test]
fn unclean_election_results() {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    c.topic("u", &[&[3, 1, 2], &[1, 2, 3], &[3, 2, 1], &[2, 3, 1]]);
    // p0 [3,1,2]: ISR [3], 3 dead -> unclean picks 1, ISR [1].
    // p1 [1,2,3]: led by 1 -> not needed.
    // p2 [3,2,1]: ISR [3,2], leaderless, 2 alive -> clean choice 2, ISR kept.
    // p3 [2,3,1]: ISR [3], 3 dead -> unclean picks 2 (first alive replica).
    c.set("u", 0, &[3], 3);
    c.set("u", 2, &[3, 2], 3);
    c.set("u", 3, &[3], 3);
    c.fence_flag(3);
    for p in [0, 2, 3] {
        let isr = c.state("u", p).isr;
        c.set("u", p, &isr, -1);
    }
    let all: Vec<(String, i32)> = (0..4).map(|p| ("u".to_string(), p)).collect();
    let (records, results) = elect_leaders(&c.image, ElectionKind::Unclean, Some(&all), MIN_ISR);
    let got: Vec<(i32, Option<ErrorKind>, i32)> = results
        .iter()
        .map(|r| (r.partition, err_of(r), r.leader))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, None, 1),
            (1, Some(ErrorKind::ElectionNotNeeded), 1),
            (2, None, 2),
            (3, None, 2),
        ]
    );
    assert_eq!(
        changes(&records),
        vec![
            (tid("u"), 0, Some(1), Some(vec![1])),
            (tid("u"), 2, Some(2), None),
            (tid("u"), 3, Some(2), Some(vec![2])),
        ]
    );
    c.apply(records).unwrap();
    assert_eq!(c.state("u", 0).isr, vec![1]);

    // With every replica fenced there is no eligible leader.
    for b in [1, 2] {
        let recs = crate::fence_broker(&c.image, b, MIN_ISR);
        c.apply(recs).unwrap();
    }
    let (records, results) =
        elect_leaders(&c.image, ElectionKind::Unclean, Some(&all[..1]), MIN_ISR);
    assert!(records.is_empty());
    assert_eq!(
        err_of(&results[0]),
        Some(ErrorKind::EligibleLeadersNotAvailable)
    );
}
