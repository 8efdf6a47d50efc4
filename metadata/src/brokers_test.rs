use super::*;
use crate::ErrorKind;
use crate::image::DEFAULT_MIN_INSYNC_REPLICAS as MIN_ISR;
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
    let records = fence_broker(&c.image, 1, MIN_ISR);
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
    assert!(fence_broker(&c.image, 1, MIN_ISR).is_empty());
    assert!(fence_broker(&c.image, 9, MIN_ISR).is_empty());
}

#[test]
fn unfencing_elects_leaderless_partitions_it_can_lead() {
    let mut c = cluster();
    c.topic("v", &[&[1, 2]]);
    c.config("v", "unclean.leader.election.enable", "true");
    c.set("v", 0, &[2], 2);
    let recs = fence_broker(&c.image, 1, MIN_ISR);
    c.apply(recs).unwrap();
    let recs = fence_broker(&c.image, 2, MIN_ISR);
    c.apply(recs).unwrap();
    // Now t-2 (ISR [1]) and v-0 (ISR [2], unclean) are leaderless.
    assert!(c.state("t", 2).is_offline() && c.state("v", 0).is_offline());
    let records = unfence_broker(&c.image, 1, MIN_ISR).unwrap();
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
    assert!(unfence_broker(&c.image, 1, MIN_ISR).unwrap().is_empty());
}

#[test]
fn unfencing_rejects_unknown_and_shutting_down_brokers() {
    let mut c = cluster();
    assert_eq!(
        unfence_broker(&c.image, 9, MIN_ISR).unwrap_err().code,
        ErrorKind::BrokerIdNotRegistered
    );
    c.shutdown_flag(2);
    assert_eq!(
        unfence_broker(&c.image, 2, MIN_ISR).unwrap_err().code,
        ErrorKind::InvalidRequest
    );
}

#[test]
fn controlled_shutdown_moves_leaderships_and_reports_stuck_ones() {
    let mut c = cluster();
    c.raw_topic("w", &[&[1, 3], &[3, 1]]);
    let recs = fence_broker(&c.image, 3, MIN_ISR);
    c.apply(recs).unwrap();
    // Now: t-0 ISR [1,2]; t-1 [2,1] led by 2; t-2, t-4, w-0, w-1 ISR [1] led by 1.
    let t = tid("t");
    let plan = controlled_shutdown(&c.image, 1, MIN_ISR).unwrap();
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
    let again = controlled_shutdown(&c.image, 1, MIN_ISR).unwrap();
    assert!(again.records.is_empty());
    assert_eq!(again.stuck.len(), 4);

    // Broker 3 comes back and the leader lets it rejoin w-0's ISR: w-0 can move.
    let recs = unfence_broker(&c.image, 3, MIN_ISR).unwrap();
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
        MIN_ISR,
    )
    .unwrap();
    c.apply(recs).unwrap();
    let step = controlled_shutdown(&c.image, 1, MIN_ISR).unwrap();
    assert_eq!(
        changes(&step.records),
        vec![(tid("w"), 0, Some(3), Some(vec![3]))]
    );
    c.apply(step.records).unwrap();
    assert_eq!(remaining_leaderships(&c.image, 1), 3);
    assert_eq!(
        controlled_shutdown(&c.image, 9, MIN_ISR).unwrap_err().code,
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
        let reg = Registration {
            broker_id: *id,
            incarnation_id: inc.to_string(),
            endpoints: ep(),
            rack: Some("r1".into()),
            damaged: Vec::new(),
            static_configs: Default::default(),
        };
        let r = register_broker(&c.image, &reg, *alive, *epoch, MIN_ISR);
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
    let reg = Registration {
        broker_id: 1,
        incarnation_id: "inc-1b".into(),
        endpoints: ep(),
        ..Registration::default()
    };
    let records = register_broker(&c.image, &reg, false, 50, MIN_ISR).unwrap();
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
        unregister_broker(&c.image, 9, MIN_ISR).unwrap_err().code,
        ErrorKind::BrokerIdNotRegistered
    );
    let records = unregister_broker(&c.image, 1, MIN_ISR).unwrap();
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

/// Brokers 1-3, topic "j" [1,2,3] led by 1, min.insync.replicas 2 (the
/// jepsen topic's settings).
fn elr_cluster() -> Cluster {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    c.topic("j", &[&[1, 2, 3]]);
    c.config("j", "min.insync.replicas", "2");
    c
}

/// One step of a broker's life, decided and applied as the controller would.
#[derive(Debug, Clone, Copy)]
enum Step {
    Fence(i32),
    Unfence(i32),
    /// A new incarnation registers; `true`: its replica of j-0 lost records.
    Register(i32, bool),
    Shutdown(i32),
}

fn run(c: &mut Cluster, step: Step) {
    let records = match step {
        Step::Fence(b) => fence_broker(&c.image, b, MIN_ISR),
        Step::Unfence(b) => unfence_broker(&c.image, b, MIN_ISR).unwrap(),
        Step::Register(b, lost) => {
            let epoch = c.image.broker(b).map_or(1, |r| r.epoch + 1);
            let reg = Registration {
                broker_id: b,
                incarnation_id: format!("inc-{b}-{epoch}"),
                endpoints: ep(),
                damaged: if lost { vec![(tid("j"), 0)] } else { vec![] },
                ..Registration::default()
            };
            register_broker(&c.image, &reg, false, epoch, MIN_ISR).unwrap()
        }
        Step::Shutdown(b) => controlled_shutdown(&c.image, b, MIN_ISR).unwrap().records,
    };
    c.apply(records).unwrap();
}

/// (leader, isr, elr) of j-0.
fn j0(c: &Cluster) -> (i32, Vec<i32>, Vec<i32>) {
    let s = c.state("j", 0);
    (s.leader, s.isr, s.elr)
}

#[test]
fn eligible_leader_replicas_through_broker_failures() {
    use Step::*;
    type Case<'a> = (&'a str, &'a [Step], (i32, &'a [i32], &'a [i32]));
    let cases: &[Case<'_>] = &[
        (
            "one follower down: ISR still at min",
            &[Fence(3)],
            (1, &[1, 2], &[]),
        ),
        (
            "below min: the leaver is eligible",
            &[Fence(3), Fence(2)],
            (1, &[1], &[2]),
        ),
        (
            "last ISR member down: an alive eligible replica leads at once",
            &[Fence(3), Fence(2), Unfence(2), Fence(1)],
            (2, &[2], &[1]),
        ),
        (
            "everyone down: the last member stays in the ISR, leaderless",
            &[Fence(1), Fence(2), Fence(3)],
            (-1, &[3], &[2]),
        ),
        (
            "an eligible replica back first leads; the old ISR member becomes eligible",
            &[Fence(1), Fence(2), Fence(3), Register(2, false), Unfence(2)],
            (2, &[2], &[3]),
        ),
        (
            // The CI failure: kill-all, then the last ISR member loses its
            // tail and comes back first. It must not lead.
            "last ISR member back damaged: an eligible replica replaces it",
            &[Fence(1), Fence(2), Fence(3), Register(3, true)],
            (-1, &[2], &[]),
        ),
        (
            "damaged last member back first, unfenced: still not leader",
            &[Fence(1), Fence(2), Fence(3), Register(3, true), Unfence(3)],
            (-1, &[2], &[]),
        ),
        (
            "...and the eligible replica leads once back",
            &[
                Fence(1),
                Fence(2),
                Fence(3),
                Register(3, true),
                Unfence(3),
                Register(2, false),
                Unfence(2),
            ],
            (2, &[2], &[]),
        ),
        (
            "a damaged eligible replica loses its eligibility",
            &[
                Fence(1),
                Fence(2),
                Fence(3),
                Register(2, true),
                Register(3, false),
                Unfence(3),
            ],
            (3, &[3], &[]),
        ),
        (
            "an undamaged restart keeps the last member",
            &[Fence(1), Fence(2), Fence(3), Register(3, false), Unfence(3)],
            (3, &[3], &[2]),
        ),
        (
            "controlled shutdown of the only ISR member hands over to an eligible replica",
            &[Fence(3), Fence(2), Unfence(2), Shutdown(1)],
            (2, &[2], &[1]),
        ),
        (
            "unfencing an ISR member while one leads changes nothing",
            &[Fence(3), Fence(2), Unfence(2)],
            (1, &[1], &[2]),
        ),
    ];
    for (name, steps, (leader, isr, elr)) in cases {
        let mut c = elr_cluster();
        for step in *steps {
            run(&mut c, *step);
        }
        assert_eq!(j0(&c), (*leader, isr.to_vec(), elr.to_vec()), "{name}");
    }
}

#[test]
fn a_damaged_last_isr_member_stays_when_no_replica_is_eligible() {
    // min.insync.replicas 1: no ELR ever, so the damaged replica is the best
    // copy known and keeps its place (as before KIP-966).
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    c.topic("j", &[&[1, 2, 3]]);
    for step in [
        Step::Fence(1),
        Step::Fence(2),
        Step::Fence(3),
        Step::Register(3, true),
        Step::Unfence(3),
    ] {
        run(&mut c, step);
    }
    assert_eq!(j0(&c), (3, vec![3], vec![]));
}

#[test]
fn registration_ignores_damaged_replicas_of_deleted_partitions() {
    let c = elr_cluster();
    let reg = Registration {
        broker_id: 1,
        incarnation_id: "inc-1b".into(),
        endpoints: ep(),
        damaged: vec![(tid("j"), 7), (tid("gone"), 0)],
        ..Registration::default()
    };
    let with = register_broker(&c.image, &reg, false, 50, MIN_ISR).unwrap();
    let without = Registration {
        damaged: Vec::new(),
        ..reg
    };
    assert_eq!(
        with,
        register_broker(&c.image, &without, false, 50, MIN_ISR).unwrap()
    );
}

#[test]
fn isr_changes_by_the_leader_and_config_changes_keep_the_elr_right() {
    let mut c = elr_cluster();
    let alter = |c: &Cluster, isr: &[i32]| {
        let s = c.state("j", 0);
        crate::alter_partition(
            &c.image,
            1,
            11,
            &tid("j"),
            0,
            s.leader_epoch,
            s.partition_epoch,
            isr,
            MIN_ISR,
        )
        .unwrap()
    };
    c.apply(alter(&c, &[1])).unwrap();
    assert_eq!(j0(&c), (1, vec![1], vec![2, 3]));
    c.apply(alter(&c, &[1, 3])).unwrap();
    assert_eq!(j0(&c), (1, vec![1, 3], vec![]));
    c.apply(alter(&c, &[1])).unwrap();
    assert_eq!(j0(&c), (1, vec![1], vec![3]));
    // Lowering min.insync.replicas could let the high watermark pass 3.
    let recs = crate::alter_topic_configs(
        &c.image,
        "j",
        &[("min.insync.replicas".into(), Some("1".into()))],
    )
    .unwrap();
    assert_eq!(kinds(&recs), vec!["config", "partition change"]);
    c.apply(recs).unwrap();
    assert_eq!(j0(&c), (1, vec![1], vec![]));
}
