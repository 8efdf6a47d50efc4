use strom_group::{
    Assignment, GroupConfig, HeartbeatRequest, Record, Shard, Subscription, TopicInfo, Topics, Uuid,
};

use super::*;

fn topics(partitions: i32) -> Topics {
    Topics::new([TopicInfo {
        id: Uuid::from_u128(1),
        name: "t".into(),
        partitions,
    }])
}

/// Applies a heartbeat's decision as the host does; the changed groups.
fn beat(shard: &mut Shard, req: HeartbeatRequest, topics: &Topics) -> (String, Vec<Record>) {
    let d = shard.heartbeat(&req, topics, 1_000).expect("heartbeat");
    shard.replay(&d.records);
    (d.response.member_id, d.records)
}

fn join(shard: &mut Shard, id: &str, topics: &Topics) -> Vec<Record> {
    beat(
        shard,
        HeartbeatRequest {
            group_id: "g".into(),
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: Some(60_000),
            subscription: Some(Subscription {
                topic_names: vec!["t".into()],
                topic_regex: None,
            }),
            assignors: Some(vec!["cooperative-sticky".into()]),
            owned: Some(Assignment::new()),
            ..HeartbeatRequest::default()
        },
        topics,
    )
    .1
}

fn heartbeats(rx: &mut watch::Receiver<Push>) -> bool {
    rx.has_changed().unwrap_or(false) && matches!(*rx.borrow_and_update(), Push::Heartbeat { .. })
}

#[test]
fn a_join_pushes_to_the_member_that_must_give_up_partitions() {
    let t = topics(4);
    let mut shard = Shard::new(GroupConfig::default());
    join(&mut shard, "a", &t);
    let pushes = Pushes::default();
    let mut a = pushes
        .subscribe(&shard, 0, "g", "a")
        .expect("a is a member");
    assert!(!heartbeats(&mut a), "a is stable: nothing to tell");
    let records = join(&mut shard, "b", &t);
    pushes.after_replay(&shard, strom_group::wake::groups_changed(&records));
    assert!(heartbeats(&mut a), "a must revoke for b");
    // b waits for a's partitions: opening its stream now tells it nothing.
    let mut b = pushes
        .subscribe(&shard, 0, "g", "b")
        .expect("b is a member");
    assert!(!heartbeats(&mut b));
}

#[test]
fn streams_end_when_the_member_leaves_or_the_partition_unloads() {
    let t = topics(2);
    let mut shard = Shard::new(GroupConfig::default());
    join(&mut shard, "a", &t);
    join(&mut shard, "b", &t);
    let pushes = Pushes::default();
    assert_eq!(
        pushes.subscribe(&shard, 0, "g", "nobody").unwrap_err().code,
        ErrorCode::UnknownMemberId
    );
    let mut a = pushes.subscribe(&shard, 0, "g", "a").unwrap();
    let mut b = pushes.subscribe(&shard, 0, "g", "b").unwrap();
    let (_, records) = beat(
        &mut shard,
        HeartbeatRequest {
            group_id: "g".into(),
            member_id: "a".into(),
            member_epoch: -1,
            ..HeartbeatRequest::default()
        },
        &t,
    );
    pushes.after_replay(&shard, strom_group::wake::groups_changed(&records));
    a.borrow_and_update();
    assert_eq!(*a.borrow(), Push::Removed);
    assert!(a.has_changed().is_err(), "a's channel is dropped");
    assert!(heartbeats(&mut b), "b learns that the group changed");
    pushes.unloaded(0);
    assert_eq!(*b.borrow_and_update(), Push::Unloaded);
    assert!(pushes.is_empty());
}

#[test]
fn a_member_holds_a_bounded_number_of_streams() {
    let t = topics(1);
    let mut shard = Shard::new(GroupConfig::default());
    join(&mut shard, "a", &t);
    let pushes = Pushes::default();
    let open: Vec<_> = (0..MAX_STREAMS_PER_MEMBER)
        .map(|_| pushes.subscribe(&shard, 0, "g", "a").unwrap())
        .collect();
    assert_eq!(
        pushes.subscribe(&shard, 0, "g", "a").unwrap_err().code,
        ErrorCode::PolicyViolation
    );
    drop(open);
    pushes.subscribe(&shard, 0, "g", "a").expect("room again");
}

#[test]
fn a_new_partition_of_a_subscribed_topic_wakes_the_members() {
    let mut shard = Shard::new(GroupConfig::default());
    join(&mut shard, "a", &topics(2));
    let pushes = Pushes::default();
    let mut a = pushes.subscribe(&shard, 0, "g", "a").unwrap();
    pushes.after_metadata(&shard, &topics(2));
    assert!(!heartbeats(&mut a));
    pushes.after_metadata(&shard, &topics(3));
    assert!(heartbeats(&mut a));
}
