use super::*;
use crate::testutil::{Cluster, changes, tid};

/// Brokers 1-3; "t" with 10 partitions whose preferred leader is 1 (p0-p9),
/// 4 preferring 2 (p10-p13) and 1 preferring 3 (p14).
fn cluster() -> Cluster {
    let mut c = Cluster::with_brokers(&[1, 2, 3]);
    let mut a: Vec<&[i32]> = vec![&[1, 2, 3]; 10];
    a.extend([&[2, 3, 1][..]; 4]);
    a.push(&[3, 1, 2]);
    c.topic("t", &a);
    c
}

#[test]
fn imbalance_ratio_is_kafkas() {
    let mut c = cluster();
    assert_eq!(
        leader_imbalance(&c.image),
        BTreeMap::from([(1, 0.0), (2, 0.0), (3, 0.0)])
    );
    // Broker 1: 2 of 10 led by another; broker 2: 2 of 4; broker 3: its 1 partition is offline.
    c.set("t", 0, &[1, 2, 3], 2);
    c.set("t", 1, &[1, 2, 3], 2);
    c.set("t", 10, &[2, 3, 1], 3);
    c.set("t", 11, &[2, 3, 1], 1);
    c.set("t", 14, &[3, 1, 2], -1);
    let got = leader_imbalance(&c.image);
    assert_eq!(got, BTreeMap::from([(1, 0.2), (2, 0.5), (3, 1.0)]));
}

#[test]
fn rebalance_moves_leaders_of_brokers_over_the_threshold_only() {
    let mut c = cluster();
    c.set("t", 0, &[1, 2, 3], 2); // broker 1: 1/10 = 10%, not above 10%
    c.set("t", 10, &[2, 3, 1], 3); // broker 2: 1/4 = 25%
    c.set("t", 11, &[3, 1], 3); // broker 2 preferred but not in ISR: skipped
    c.set("t", 14, &[1, 2], 1); // broker 3: 100% but 3 not in ISR
    let t = tid("t");
    let records = rebalance_leaders(&c.image, DEFAULT_LEADER_IMBALANCE_PERCENTAGE);
    assert_eq!(changes(&records), vec![(t, 10, Some(2), None)]);
    // A lower threshold includes broker 1.
    let records = rebalance_leaders(&c.image, 5.0);
    assert_eq!(
        changes(&records),
        vec![(t, 0, Some(1), None), (t, 10, Some(2), None)]
    );
    // The preferred replica must be alive.
    c.fence_flag(2);
    assert_eq!(
        changes(&rebalance_leaders(&c.image, 5.0)),
        vec![(t, 0, Some(1), None)]
    );
    c.apply(rebalance_leaders(&c.image, 5.0)).unwrap();
    assert_eq!(leader_imbalance(&c.image)[&1], 0.0);
}
