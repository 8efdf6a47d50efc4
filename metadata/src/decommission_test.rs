use super::*;
use crate::ErrorKind;
use crate::testutil::Cluster;

/// Racks a (1, 2), b (3, 4), c (5); "t" with 4 partitions of RF 2.
fn cluster() -> Cluster {
    let mut c = Cluster::with_racks(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c")]);
    c.topic("t", &[&[1, 3], &[3, 1], &[1, 5], &[2, 4]]);
    c
}

fn decommission(c: &mut Cluster, id: i32) {
    let records = decommission_broker(&c.image, id).expect("decommission");
    c.apply(records).expect("apply");
}

/// Runs rounds (with every new replica joining the ISR at once) until
/// nothing changes; returns the number of rounds.
fn drain(c: &mut Cluster, max_moves: usize) -> usize {
    for round in 0..50 {
        let records = decommission_moves(&c.image, max_moves, 1);
        let completions = crate::complete_reassignments(&c.image, 1);
        if records.is_empty() && completions.is_empty() {
            // Catch the adding replicas up, as their leaders would.
            let moving: Vec<(String, i32, Vec<i32>, i32)> = c
                .image
                .all_partitions()
                .filter(|(_, _, s)| {
                    s.is_reassigning() && s.adding.iter().any(|r| !s.isr.contains(r))
                })
                .map(|(t, p, s)| (t.name.clone(), p, s.replicas.clone(), s.leader))
                .collect();
            if moving.is_empty() {
                return round;
            }
            for (t, p, replicas, leader) in moving {
                c.set(&t, p, &replicas, leader);
            }
            continue;
        }
        if !records.is_empty() {
            c.apply(records).expect("moves apply");
        } else {
            c.apply(completions).expect("completions apply");
        }
    }
    panic!("decommission did not finish");
}

#[test]
fn refusals() {
    let mut c = cluster();
    assert_eq!(
        decommission_broker(&c.image, 9).unwrap_err().code,
        ErrorKind::BrokerIdNotRegistered
    );
    // RF 2 needs two other live brokers: with 3, 4 and 5 down only 2 is left.
    for b in [3, 4, 5] {
        c.fence_flag(b);
    }
    let e = decommission_broker(&c.image, 1).unwrap_err();
    assert_eq!(e.code, ErrorKind::InvalidReplicationFactor);
    assert!(e.message.contains("topics t"), "{e}");
    assert!(c.image.decommissioning().next().is_none());
}

#[test]
fn leaderships_leave_first_then_every_replica_rack_aware() {
    let mut c = cluster();
    decommission(&mut c, 1);
    assert_eq!(c.image.decommissioning().collect::<Vec<_>>(), vec![1]);
    // Again: nothing more to record.
    assert!(decommission_broker(&c.image, 1).unwrap().is_empty());
    // First round: 1 leads t-0 and t-2; both hand leadership over, and t-1
    // (1 follows) starts moving.
    let first = decommission_moves(&c.image, 1, 1);
    c.apply(first).expect("apply");
    assert_eq!(c.state("t", 0).leader, 3);
    assert_eq!(c.state("t", 2).leader, 5);
    let moving: Vec<i32> = crate::reassignments(&c.image, None)
        .map(|(_, p, _)| p)
        .collect();
    assert_eq!(moving, vec![1], "one move at a time");
    drain(&mut c, 1);
    assert_eq!(c.image.partitions_of_broker(1).count(), 0);
    let rack = |b: i32| c.image.broker(b).unwrap().rack.clone().unwrap();
    for p in 0..4 {
        let s = c.state("t", p);
        assert!(!s.replicas.contains(&1), "{p}: {s:?}");
        assert!(!s.is_reassigning());
        assert_ne!(rack(s.replicas[0]), rack(s.replicas[1]), "{p}: {s:?}");
    }
    assert_eq!(decommission_progress(&c.image, 1), (0, 0));
}

#[test]
fn recommission_stops_new_moves() {
    let mut c = cluster();
    decommission(&mut c, 3);
    let records = recommission_broker(&c.image, 3, 1).unwrap();
    c.apply(records).expect("apply");
    assert!(decommission_moves(&c.image, 5, 1).is_empty());
    assert!(recommission_broker(&c.image, 3, 1).unwrap().is_empty());
    // Snapshots keep the flag.
    decommission(&mut c, 4);
    let back = ClusterImage::from_snapshot(&c.image.to_snapshot()).unwrap();
    assert_eq!(back.decommissioning().collect::<Vec<_>>(), vec![4]);
}

#[test]
fn new_topics_avoid_decommissioning_brokers() {
    let mut c = cluster();
    decommission(&mut c, 5);
    assert!(!c.image.alive_brokers().iter().any(|(id, _)| *id == 5));
}

#[test]
fn recommission_cancels_the_unfinished_moves_of_the_decommission() {
    let mut c = cluster();
    // An operator's move that also takes a replica off 1 (and adds two).
    let (records, _) = crate::alter_reassignments(
        &c.image,
        &[ReassignmentSpec {
            topic: "t".into(),
            partition: 2,
            replicas: Some(vec![2, 3, 4]),
        }],
        1,
    )
    .expect("operator move");
    c.apply(records).expect("apply");
    decommission(&mut c, 1);
    // Round one: leaderships move away and t-1 starts moving off 1.
    let first = decommission_moves(&c.image, 5, 1);
    c.apply(first).expect("apply");
    let second = decommission_moves(&c.image, 5, 1);
    c.apply(second).expect("apply");
    let moving: Vec<(i32, Vec<i32>)> = crate::reassignments(&c.image, None)
        .map(|(_, p, s)| (p, s.removing.clone()))
        .collect();
    assert!(
        moving.iter().any(|(p, r)| *p != 2 && r == &vec![1]),
        "decommission moves in flight: {moving:?}"
    );
    let before: Vec<(i32, Vec<i32>)> = (0..4)
        .map(|p| (p, c.state("t", p).original_replicas()))
        .collect();
    let records = recommission_broker(&c.image, 3, 1).unwrap();
    assert!(records.is_empty(), "3 is not decommissioning");
    let records = recommission_broker(&c.image, 1, 1).unwrap();
    c.apply(records).expect("apply");
    assert!(c.image.decommissioning().next().is_none());
    for (p, original) in before {
        let s = c.state("t", p);
        if p == 2 {
            assert!(s.is_reassigning(), "the operator's move goes on: {s:?}");
        } else {
            assert!(!s.is_reassigning(), "t-{p} cancelled: {s:?}");
            assert_eq!(s.replicas, original, "t-{p} back to its replicas");
            if p < 2 {
                assert!(s.replicas.contains(&1), "t-{p} keeps 1");
            }
        }
    }
}

#[test]
fn unregister_refusals_name_why_and_change_nothing() {
    let mut c = cluster();
    let e = unregister_drained_broker(&c.image, 9).unwrap_err();
    assert_eq!(e.code, ErrorKind::BrokerIdNotRegistered);
    let e = unregister_drained_broker(&c.image, 1).unwrap_err();
    assert_eq!(e.code, ErrorKind::InvalidRequest);
    assert!(e.message.contains("alive"), "{e}");
    c.fence_flag(1);
    let e = unregister_drained_broker(&c.image, 1).unwrap_err();
    assert_eq!(e.code, ErrorKind::InvalidRequest);
    assert!(
        e.message.contains("still hosts 3 replicas (t-0, t-1, t-2)"),
        "{e}"
    );
    assert!(c.image.broker(1).is_some());
}

#[test]
fn a_drained_stopped_broker_is_unregistered_and_its_decommission_ends() {
    let mut c = cluster();
    decommission(&mut c, 1);
    drain(&mut c, 5);
    assert_eq!(c.image.partitions_of_broker(1).count(), 0);
    c.fence_flag(1);
    let records = unregister_drained_broker(&c.image, 1).unwrap();
    c.apply(records).expect("apply");
    assert!(c.image.broker(1).is_none());
    assert!(c.image.decommissioning().next().is_none());
    // A fenced broker that never held anything goes at once too.
    c.add_broker(7, None);
    c.fence_flag(7);
    let records = unregister_drained_broker(&c.image, 7).unwrap();
    c.apply(records).expect("apply");
    assert!(c.image.broker(7).is_none());
}
