use super::*;
use crate::ErrorKind;
use crate::testutil::{Cluster, changes, kinds, tid};

/// Brokers 1-3. Topic "t":
/// p0 [1,2,3] led by 1; p1 [2,1,3] led by 2; p2 [1,2] ISR [1] led by 1;
/// p3 [3,2] without broker 1; p4 [1,2,3] ISR [1,3] led by 1.
fn cluster() -> Cluster {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    c.raw_topic("t", &[&[1, 2, 3], &[2, 1, 3], &[1, 2], &[3, 2], &[1, 2, 3]]);
    c.set("t", 2, &[1], 1);
    c.set("t", 4, &[1, 3], 1);
    c
}

#[test]
fn fencing_moves_leadership_and_shrinks_isrs() {
    let mut c = cluster();
    c.topic("u", &[&[1, 2]]);
    c.config("u", "unclean.leader.election.enable", "true");
    c.set("u", 0, &[1], 1);
    c.shutdown_flag(3);
    let records = fence_broker(&c.image, 1);
    assert_eq!(kinds(&records)[0], "fence broker");
    let t = tid("t");
    assert_eq!(
        sorted(changes(&records)),
        sorted(vec![
            // p0: out of the ISR, 2 leads.
            (t, 0, Some(2), Some(vec![2, 3])),
            // p1: follower out of the ISR, leader unchanged.
            (t, 1, None, Some(vec![2, 3])),
            // p2: last ISR member: ISR kept, offline.
            (t, 2, Some(-1), None),
            // p4: ISR [3] but 3 is shutting down: offline.
            (t, 4, Some(-1), Some(vec![3])),
            // unclean topic: an alive out-of-ISR replica takes over.
            (tid("u"), 0, Some(2), Some(vec![2])),
        ])
    );
    let before = c.state("t", 0);
    c.apply(records).unwrap();
    assert!(c.image.broker(1).unwrap().fenced);
    let after = c.state("t", 0);
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    assert_eq!(c.state("t", 1).leader_epoch, 0);
    assert_eq!(c.state("t", 2).isr, vec![1]);
    assert!(c.state("t", 2).is_offline());

    // Fencing again emits nothing new; an unknown broker gives nothing.
    assert!(fence_broker(&c.image, 1).is_empty());
    assert!(fence_broker(&c.image, 9).is_empty());
}

#[test]
fn unfencing_elects_leaderless_partitions_it_can_lead() {
    let mut c = cluster();
    c.topic("v", &[&[1, 2]]);
    c.config("v", "unclean.leader.election.enable", "true");
    c.set("v", 0, &[2], 2);
    let recs = fence_broker(&c.image, 1);
    c.apply(recs).unwrap();
    let recs = fence_broker(&c.image, 2);
    c.apply(recs).unwrap();
    // Now t-2 (ISR [1]) and v-0 (ISR [2], unclean) are leaderless.
    assert!(c.state("t", 2).is_offline() && c.state("v", 0).is_offline());
    let records = unfence_broker(&c.image, 1).unwrap();
    assert_eq!(kinds(&records)[0], "unfence broker");
    assert_eq!(
        sorted(changes(&records)),
        sorted(vec![
            (tid("t"), 2, Some(1), None),
            (tid("v"), 0, Some(1), Some(vec![1]))
        ])
    );
    c.apply(records).unwrap();
    assert!(c.image.is_alive(1));
    assert!(unfence_broker(&c.image, 1).unwrap().is_empty());
}

#[test]
fn unfencing_rejects_unknown_and_shutting_down_brokers() {
    let mut c = cluster();
    assert_eq!(
        unfence_broker(&c.image, 9).unwrap_err().code,
        ErrorKind::BrokerIdNotRegistered
    );
    c.shutdown_flag(2);
    assert_eq!(
        unfence_broker(&c.image, 2).unwrap_err().code,
        ErrorKind::InvalidRequest
    );
}

#[test]
fn controlled_shutdown_moves_leaderships_and_reports_stuck_ones() {
    let mut c = cluster();
    c.raw_topic("w", &[&[1, 3], &[3, 1]]);
    let recs = fence_broker(&c.image, 3);
    c.apply(recs).unwrap();
    // Now: t-0 ISR [1,2]; t-1 [2,1] led by 2; t-2, t-4, w-0, w-1 ISR [1] led by 1.
    let t = tid("t");
    let plan = controlled_shutdown(&c.image, 1).unwrap();
    assert_eq!(kinds(&plan.records)[0], "broker controlled shutdown");
    assert_eq!(
        changes(&plan.records),
        vec![(t, 0, Some(2), Some(vec![2])), (t, 1, None, Some(vec![2]))]
    );
    let mut want_stuck = vec![
        ("t".to_string(), 2),
        ("t".to_string(), 4),
        ("w".to_string(), 0),
        ("w".to_string(), 1),
    ];
    want_stuck.sort();
    let mut stuck = plan.stuck.clone();
    stuck.sort();
    assert_eq!(stuck, want_stuck);
    c.apply(plan.records).unwrap();
    assert!(c.image.broker(1).unwrap().in_controlled_shutdown);
    assert_eq!(remaining_leaderships(&c.image, 1), 4);

    // A second step emits no second shutdown record and nothing new.
    let again = controlled_shutdown(&c.image, 1).unwrap();
    assert!(again.records.is_empty());
    assert_eq!(again.stuck.len(), 4);

    // Broker 3 comes back and the leader lets it rejoin w-0's ISR: w-0 can move.
    let recs = unfence_broker(&c.image, 3).unwrap();
    c.apply(recs).unwrap();
    let s = c.state("w", 0);
    let epoch = c.image.broker(1).unwrap().epoch;
    let recs = crate::alter_partition(
        &c.image,
        1,
        epoch,
        &tid("w"),
        0,
        s.leader_epoch,
        s.partition_epoch,
        &[1, 3],
    )
    .unwrap();
    c.apply(recs).unwrap();
    let step = controlled_shutdown(&c.image, 1).unwrap();
    assert_eq!(
        changes(&step.records),
        vec![(tid("w"), 0, Some(3), Some(vec![3]))]
    );
    c.apply(step.records).unwrap();
    assert_eq!(remaining_leaderships(&c.image, 1), 3);
    assert_eq!(
        controlled_shutdown(&c.image, 9).unwrap_err().code,
        ErrorKind::BrokerIdNotRegistered
    );
}

fn sorted(mut v: Vec<crate::testutil::Change>) -> Vec<crate::testutil::Change> {
    v.sort();
    v
}

fn ep() -> Vec<pb::Endpoint> {
    vec![pb::Endpoint {
        name: "client".into(),
        host: "h".into(),
        port: 1,
    }]
}

#[test]
fn registration_rules() {
    let c = cluster();
    // (broker, incarnation, lease alive, epoch, result)
    let cases: &[(i32, &str, bool, i64, Option<ErrorKind>)] = &[
        (7, "new", false, 1, None),
        (1, "inc-1", true, 100, None),
        (1, "other", false, 100, None),
        (
            1,
            "other",
            true,
            100,
            Some(ErrorKind::DuplicateBrokerRegistration),
        ),
        (1, "inc-1", true, 11, Some(ErrorKind::StaleBrokerEpoch)),
        (1, "inc-1", true, 5, Some(ErrorKind::StaleBrokerEpoch)),
        (-1, "x", false, 1, Some(ErrorKind::InvalidRequest)),
        (8, "", false, 1, Some(ErrorKind::InvalidRequest)),
    ];
    for (id, inc, alive, epoch, want) in cases {
        let r = register_broker(&c.image, *id, inc, ep(), Some("r1".into()), *alive, *epoch);
        assert_eq!(
            r.as_ref().err().map(|e| e.code),
            *want,
            "{id} {inc} {alive} {epoch}"
        );
        if let Ok(records) = r {
            let mut c = c.clone();
            c.apply(records).unwrap();
            let b = c.image.broker(*id).unwrap();
            assert!(b.fenced && b.epoch == *epoch && b.rack.as_deref() == Some("r1"));
        }
    }
}

#[test]
fn re_registration_hands_over_the_old_incarnations_leaderships() {
    let c = cluster();
    let records = register_broker(&c.image, 1, "inc-1b", ep(), None, false, 50).unwrap();
    assert_eq!(kinds(&records).last(), Some(&"register broker"));
    let t = tid("t");
    assert_eq!(
        changes(&records),
        vec![
            (t, 0, Some(2), Some(vec![2, 3])),
            (t, 1, None, Some(vec![2, 3])),
            (t, 2, Some(-1), None),
            (t, 4, Some(3), Some(vec![3])),
        ]
    );
    let mut c = c;
    c.apply(records).unwrap();
    assert_eq!(remaining_leaderships(&c.image, 1), 0);
}

#[test]
fn unregistering_hands_over_then_removes() {
    let mut c = cluster();
    assert_eq!(
        unregister_broker(&c.image, 9).unwrap_err().code,
        ErrorKind::BrokerIdNotRegistered
    );
    let records = unregister_broker(&c.image, 1).unwrap();
    assert_eq!(kinds(&records).last(), Some(&"unregister broker"));
    assert_eq!(changes(&records).len(), 4);
    c.apply(records).unwrap();
    assert!(c.image.broker(1).is_none());
    assert_eq!(remaining_leaderships(&c.image, 1), 0);
    // t-2's last ISR member is gone: offline, ISR kept for a later unclean election.
    assert_eq!(
        (c.state("t", 2).leader, c.state("t", 2).isr.clone()),
        (-1, vec![1])
    );
}
