use super::*;
use crate::testutil::{Cluster, tid};

#[test]
fn partition_helpers() {
    let mut c = Cluster::with_brokers(&[1, 2, 3, 4]);
    c.raw_topic("t", &[&[1, 2, 3], &[4, 5, 1]]);
    c.set("t", 0, &[1, 2], 1);
    c.fence_flag(2);
    c.shutdown_flag(3);
    // Broker 5 is not registered, 2 is fenced; 3 shutting down is still online.
    assert_eq!(offline_replicas(&c.image, "t", 0), Some(vec![2]));
    assert_eq!(offline_replicas(&c.image, "t", 1), Some(vec![5]));
    assert_eq!(offline_replicas(&c.image, "t", 2), None);
    assert_eq!(offline_replicas(&c.image, "u", 0), None);
    let s0 = c.state("t", 0);
    assert!(under_replicated(&s0) && !is_offline(&s0));
    c.set("t", 0, &[1, 2], -1);
    assert!(is_offline(&c.state("t", 0)));
    assert!(!under_replicated(&c.state("t", 1)));
}

#[test]
fn accessors() {
    let mut c = Cluster::with_brokers(&[2, 1]);
    c.raw_topic("b", &[&[1, 2], &[2, 1]]);
    c.raw_topic("a", &[&[2]]);
    let names: Vec<&str> = c.image.topics().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(
        c.image.brokers().map(|b| b.id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(c.image.topic_by_id(&tid("a")).unwrap().name, "a");
    assert_eq!(c.image.partition_count(), 3);
    assert_eq!(c.image.topic_count(), 2);
    assert_eq!(c.image.leader_count(2), 2);
    assert_eq!(c.image.partitions_of_broker(1).count(), 2);
    assert_eq!(c.image.alive_brokers(), vec![(1, None), (2, None)]);
    assert_eq!(c.image.all_partitions().count(), 3);
}
