use super::*;
use crate::ErrorKind;
use crate::image::DEFAULT_MIN_INSYNC_REPLICAS as MIN_ISR;
use crate::testutil::{Cluster, changes, tid};

/// Brokers 1-4 (4 fenced, 3 shutting down at times); "t"-0 [1,2,3,4] led
/// by 1 with ISR [1,2], leader epoch 1, partition epoch 2.
fn cluster() -> Cluster {
    let mut c = Cluster::with_brokers(&[1, 2, 3, 4, 5]);
    c.topic("t", &[&[1, 2, 3, 4]]);
    c.set("t", 0, &[1, 2], 2);
    c.set("t", 0, &[1, 2], 1);
    c.fence_flag(4);
    c
}

#[test]
fn alter_partition_checks() {
    let c = cluster();
    let s = c.state("t", 0);
    assert_eq!((s.leader, s.leader_epoch, s.partition_epoch), (1, 2, 2));
    let t = tid("t");
    let other = tid("other");
    // (broker, broker epoch, topic, partition, leader epoch, partition epoch, new isr, result)
    type Case<'a> = (i32, i64, Uuid, i32, i32, i32, &'a [i32], Option<ErrorKind>);
    let cases: &[Case<'_>] = &[
        (1, 11, t, 0, 2, 2, &[1], None),
        (1, 11, t, 0, 2, 2, &[1, 2, 3], None),
        (1, 11, t, 0, 2, 2, &[2, 1], None),
        (
            9,
            19,
            t,
            0,
            2,
            2,
            &[1],
            Some(ErrorKind::BrokerIdNotRegistered),
        ),
        (1, 10, t, 0, 2, 2, &[1], Some(ErrorKind::StaleBrokerEpoch)),
        (1, 11, other, 0, 2, 2, &[1], Some(ErrorKind::UnknownTopicId)),
        (
            1,
            11,
            t,
            1,
            2,
            2,
            &[1],
            Some(ErrorKind::UnknownTopicOrPartition),
        ),
        (
            2,
            12,
            t,
            0,
            2,
            2,
            &[2],
            Some(ErrorKind::NotLeaderOrFollower),
        ),
        (1, 11, t, 0, 1, 2, &[1], Some(ErrorKind::FencedLeaderEpoch)),
        (
            1,
            11,
            t,
            0,
            3,
            2,
            &[1],
            Some(ErrorKind::NotLeaderOrFollower),
        ),
        (
            1,
            11,
            t,
            0,
            2,
            1,
            &[1],
            Some(ErrorKind::InvalidUpdateVersion),
        ),
        (
            1,
            11,
            t,
            0,
            2,
            3,
            &[1],
            Some(ErrorKind::InvalidUpdateVersion),
        ),
        (1, 11, t, 0, 2, 2, &[], Some(ErrorKind::InvalidRequest)),
        (1, 11, t, 0, 2, 2, &[1, 1], Some(ErrorKind::InvalidRequest)),
        (1, 11, t, 0, 2, 2, &[1, 5], Some(ErrorKind::InvalidRequest)),
        (1, 11, t, 0, 2, 2, &[2, 3], Some(ErrorKind::InvalidRequest)),
        (
            1,
            11,
            t,
            0,
            2,
            2,
            &[1, 2, 4],
            Some(ErrorKind::IneligibleReplica),
        ),
    ];
    for (i, &(b, be, topic, p, le, pe, isr, want)) in cases.iter().enumerate() {
        let r = alter_partition(&c.image, b, be, &topic, p, le, pe, isr, MIN_ISR);
        assert_eq!(r.as_ref().err().map(|e| e.code), want, "case {i}: {r:?}");
        if let Ok(records) = r {
            assert_eq!(
                changes(&records),
                vec![(t, 0, None, Some(isr.to_vec()))],
                "case {i}"
            );
            let mut c = c.clone();
            c.apply(records).unwrap();
            let after = c.state("t", 0);
            assert_eq!(
                (
                    after.isr.as_slice(),
                    after.leader_epoch,
                    after.partition_epoch
                ),
                (isr, 2, 3)
            );
        }
    }
}

#[test]
fn shutting_down_replicas_cannot_join_but_may_stay() {
    let mut c = cluster();
    c.set("t", 0, &[1, 2], 1);
    c.shutdown_flag(2);
    c.shutdown_flag(3);
    let s = c.state("t", 0);
    let call = |isr: &[i32]| {
        alter_partition(
            &c.image,
            1,
            11,
            &tid("t"),
            0,
            s.leader_epoch,
            s.partition_epoch,
            isr,
            MIN_ISR,
        )
    };
    assert_eq!(
        call(&[1, 2, 3]).unwrap_err().code,
        ErrorKind::IneligibleReplica
    );
    assert_eq!(call(&[1, 2]).unwrap(), vec![]); // unchanged: no record
    assert_eq!(changes(&call(&[1]).unwrap()).len(), 1);
}
