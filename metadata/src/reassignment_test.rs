use super::*;
use crate::ErrorKind;
use crate::testutil::Cluster;

/// Reassign `topic`-`partition` to `replicas`.
fn to(topic: &str, partition: i32, replicas: &[i32]) -> ReassignmentSpec {
    ReassignmentSpec {
        topic: topic.into(),
        partition,
        replicas: Some(replicas.to_vec()),
    }
}

/// Cancel the reassignment of `topic`-`partition`.
fn cancel(topic: &str, partition: i32) -> ReassignmentSpec {
    ReassignmentSpec {
        topic: topic.into(),
        partition,
        replicas: None,
    }
}

/// Brokers 1-6 (6 fenced); "t"-0 on [1,2,3] led by 1, "t"-1 on [2,3,1].
fn cluster() -> Cluster {
    let mut c = Cluster::with_brokers(&[1, 2, 3, 4, 5, 6, 7]);
    c.topic("t", &[&[1, 2, 3], &[2, 3, 1]]);
    c.fence_flag(7);
    c
}

/// Applies a request; panics when it is refused.
fn alter(c: &mut Cluster, specs: &[ReassignmentSpec]) -> Vec<ReassignmentOutcome> {
    let (records, outcomes) = alter_reassignments(&c.image, specs, 2).expect("request accepted");
    c.apply(records).expect("records apply");
    outcomes
}

/// Runs the completion duty once.
fn complete(c: &mut Cluster, min_isr: usize) -> usize {
    let records = complete_reassignments(&c.image, min_isr);
    let n = records.len();
    c.apply(records).expect("completion applies");
    n
}

/// (replicas, adding, removing, isr, leader) of "t"-`p`.
fn view(c: &Cluster, p: i32) -> (Vec<i32>, Vec<i32>, Vec<i32>, Vec<i32>, i32) {
    let s = c.state("t", p);
    (s.replicas, s.adding, s.removing, s.isr, s.leader)
}

#[test]
fn bad_requests_are_refused_whole_and_change_nothing() {
    let c = cluster();
    let ok = to("t", 1, &[4, 5, 6]);
    let cases: Vec<(ReassignmentSpec, ErrorKind)> = vec![
        (to("t", 0, &[]), ErrorKind::InvalidReplicaAssignment),
        (to("t", 0, &[1, 2, 1]), ErrorKind::InvalidReplicaAssignment),
        (to("t", 0, &[1, 2, 9]), ErrorKind::InvalidReplicaAssignment),
        (to("t", 0, &[1, 2, -1]), ErrorKind::InvalidReplicaAssignment),
        // 7 is fenced: it cannot be added.
        (to("t", 0, &[1, 2, 7]), ErrorKind::InvalidReplicaAssignment),
        (to("t", 5, &[1]), ErrorKind::UnknownTopicOrPartition),
        (to("u", 0, &[1]), ErrorKind::UnknownTopicOrPartition),
        (cancel("t", 1), ErrorKind::InvalidRequest),
    ];
    for (bad, code) in cases {
        let e = alter_reassignments(&c.image, &[ok.clone(), bad.clone()], 1).unwrap_err();
        assert_eq!(e.code, code, "{bad:?}: {e}");
    }
    // Nothing was applied: the image is only read.
    assert_eq!(view(&c, 1).0, vec![2, 3, 1]);
}

#[test]
fn move_to_new_brokers_completes_once_every_new_replica_is_in_the_isr() {
    let mut c = cluster();
    alter(&mut c, &[to("t", 0, &[4, 5, 6])]);
    assert_eq!(
        view(&c, 0),
        (
            vec![4, 5, 6, 1, 2, 3],
            vec![4, 5, 6],
            vec![1, 2, 3],
            vec![1, 2, 3],
            1
        )
    );
    assert_eq!(complete(&mut c, 2), 0, "nothing caught up yet");
    c.set("t", 0, &[1, 2, 3, 4, 5], 1);
    assert_eq!(complete(&mut c, 2), 0, "6 still catching up");
    c.set("t", 0, &[1, 2, 3, 4, 5, 6], 1);
    assert_eq!(complete(&mut c, 2), 1);
    // The leader was being removed: a target replica leads.
    assert_eq!(
        view(&c, 0),
        (vec![4, 5, 6], vec![], vec![], vec![4, 5, 6], 4)
    );
    let s = c.state("t", 0);
    assert!(s.leader_epoch > 0);
    assert_eq!(complete(&mut c, 2), 0);
}

#[test]
fn replication_factor_changes() {
    let mut c = cluster();
    // 3 -> 2: nothing to catch up, completes at once.
    alter(&mut c, &[to("t", 0, &[1, 2])]);
    assert_eq!(view(&c, 0), (vec![1, 2], vec![], vec![], vec![1, 2], 1));
    // 2 -> 4: waits for 4 and 5.
    alter(&mut c, &[to("t", 0, &[1, 2, 4, 5])]);
    assert_eq!(
        view(&c, 0),
        (vec![1, 2, 4, 5], vec![4, 5], vec![], vec![1, 2], 1)
    );
    c.set("t", 0, &[1, 2, 4, 5], 1);
    assert_eq!(complete(&mut c, 1), 1);
    assert_eq!(
        view(&c, 0),
        (vec![1, 2, 4, 5], vec![], vec![], vec![1, 2, 4, 5], 1)
    );
}

#[test]
fn the_isr_never_drops_below_min_insync_replicas_because_of_a_move() {
    let mut c = cluster();
    // 3 -> 2 while 2 is out of the ISR: the ISR would become [1] < 2.
    c.set("t", 0, &[1, 3], 1);
    alter(&mut c, &[to("t", 0, &[1, 2])]);
    assert_eq!(view(&c, 0).1, Vec::<i32>::new());
    assert_eq!(view(&c, 0).2, vec![3]);
    assert_eq!(complete(&mut c, 2), 0);
    // With min.insync.replicas=1, or once 2 is back, it completes.
    c.set("t", 0, &[1, 2, 3], 1);
    assert_eq!(complete(&mut c, 2), 1);
    assert_eq!(view(&c, 0), (vec![1, 2], vec![], vec![], vec![1, 2], 1));
}

#[test]
fn a_replica_in_both_sets_but_out_of_the_isr_does_not_block_completion() {
    // KAFKA-19975: [1,2,3] -> [1,2,4] with 2 dead and out of the ISR.
    let mut c = cluster();
    c.fence_flag(2);
    c.set("t", 0, &[1, 3], 1);
    alter(&mut c, &[to("t", 0, &[1, 2, 4])]);
    assert_eq!(complete(&mut c, 2), 0);
    c.set("t", 0, &[1, 3, 4], 1);
    assert_eq!(complete(&mut c, 2), 1);
    assert_eq!(view(&c, 0), (vec![1, 2, 4], vec![], vec![], vec![1, 4], 1));
}

#[test]
fn cancel_restores_the_original_replicas() {
    let mut c = cluster();
    alter(&mut c, &[to("t", 0, &[4, 5, 6])]);
    c.set("t", 0, &[1, 2, 3, 4], 1);
    let out = alter(&mut c, &[cancel("t", 0), cancel("t", 1)]);
    assert_eq!(out[0].error, None);
    assert_eq!(
        out[1].error.as_ref().map(|e| e.code),
        Some(ErrorKind::NoReassignmentInProgress)
    );
    assert_eq!(
        view(&c, 0),
        (vec![1, 2, 3], vec![], vec![], vec![1, 2, 3], 1)
    );
    assert_eq!(complete(&mut c, 1), 0);
}

#[test]
fn a_new_target_replaces_the_reassignment_in_progress() {
    let mut c = cluster();
    alter(&mut c, &[to("t", 0, &[4, 5, 6])]);
    c.set("t", 0, &[1, 2, 3, 4], 1);
    // The original replicas stay [1,2,3]; 4 stays (in the ISR), 5 and 6 leave.
    alter(&mut c, &[to("t", 0, &[1, 2, 4])]);
    assert_eq!(
        view(&c, 0),
        (vec![1, 2, 4], vec![], vec![], vec![1, 2, 4], 1),
        "4 already caught up, so the new move completes at once"
    );
    // Back to the original set in another order: a plain reorder.
    alter(&mut c, &[to("t", 0, &[4, 2, 1])]);
    assert_eq!(
        view(&c, 0),
        (vec![4, 2, 1], vec![], vec![], vec![1, 2, 4], 1)
    );
    // The same list again changes nothing.
    let (records, _) = alter_reassignments(&c.image, &[to("t", 0, &[4, 2, 1])], 1).unwrap();
    assert!(records.is_empty());
}

#[test]
fn a_dead_leader_is_not_kept_at_completion() {
    let mut c = cluster();
    alter(&mut c, &[to("t", 0, &[2, 4])]);
    c.set("t", 0, &[1, 2, 3, 4], 1);
    c.fence_flag(2);
    c.fence_flag(4);
    // No alive target replica in the ISR: wait.
    assert_eq!(complete(&mut c, 1), 0);
}

#[test]
fn reassignments_lists_only_moving_partitions() {
    let mut c = cluster();
    alter(&mut c, &[to("t", 1, &[4, 5, 6])]);
    let all: Vec<i32> = reassignments(&c.image, None).map(|(_, p, _)| p).collect();
    assert_eq!(all, vec![1]);
    let filter = vec![("t".to_string(), 0)];
    assert_eq!(reassignments(&c.image, Some(&filter)).count(), 0);
}

#[test]
fn snapshots_keep_reassignments() {
    let mut c = cluster();
    alter(&mut c, &[to("t", 0, &[4, 5, 6])]);
    let snap = c.image.to_snapshot();
    let back = ClusterImage::from_snapshot(&snap).unwrap();
    assert_eq!(back, c.image);
}
