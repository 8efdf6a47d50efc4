use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::records::MemberState;
use crate::topics::TopicInfo;

fn tid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn topics(first_partitions: i32) -> Topics {
    Topics::new([
        TopicInfo {
            id: tid(1),
            name: "first".into(),
            partitions: first_partitions,
        },
        TopicInfo {
            id: tid(2),
            name: "other".into(),
            partitions: 2,
        },
    ])
}

/// A coordinator shard with its log, and clients that own what they are
/// told and report it back, as a real consumer does.
struct World {
    shard: Shard,
    log: Vec<Record>,
    topics: Topics,
    now: i64,
    /// member id -> (epoch, owned)
    clients: BTreeMap<String, (i32, Assignment)>,
}

impl World {
    fn new() -> Self {
        World {
            shard: Shard::new(GroupConfig::default()),
            log: Vec::new(),
            topics: topics(7),
            now: 1_000,
            clients: BTreeMap::new(),
        }
    }

    fn commit(&mut self, records: Vec<Record>) {
        self.shard.replay(&records);
        self.log.extend(records);
    }

    fn try_hb(&mut self, req: HeartbeatRequest) -> Result<HeartbeatResponse> {
        let d = self.shard.heartbeat(&req, &self.topics, self.now)?;
        self.commit(d.records);
        Ok(d.response)
    }

    fn join(&mut self, client: &str, instance: Option<&str>, assignor: Assignor) -> String {
        let resp = self
            .try_hb(HeartbeatRequest {
                group_id: "g".into(),
                new_member_id: format!("{client}-{}", self.clients.len()),
                member_epoch: 0,
                instance_id: instance.map(str::to_owned),
                client_id: client.into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: Some(300_000),
                subscription: Some(Subscription {
                    topic_names: vec!["first".into()],
                    topic_regex: None,
                }),
                assignors: Some(vec![assignor.name().into()]),
                owned: Some(Assignment::new()),
                ..HeartbeatRequest::default()
            })
            .expect("join accepted");
        self.clients
            .insert(resp.member_id.clone(), (resp.member_epoch, resp.assignment));
        resp.member_id
    }

    fn hb(&mut self, member: &str) -> Result<HeartbeatResponse> {
        let (epoch, owned) = self.clients[member].clone();
        let resp = self.try_hb(HeartbeatRequest {
            group_id: "g".into(),
            member_id: member.into(),
            member_epoch: epoch,
            owned: Some(owned),
            ..HeartbeatRequest::default()
        })?;
        self.clients.insert(
            member.to_owned(),
            (resp.member_epoch, resp.assignment.clone()),
        );
        Ok(resp)
    }

    /// Heartbeats every listed member until nothing changes.
    fn settle(&mut self, members: &[&str]) {
        for _ in 0..20 {
            let before = self.clients.clone();
            for m in members {
                self.hb(m).expect("heartbeat accepted");
                self.check_single_owner();
            }
            if before == self.clients {
                return;
            }
        }
        panic!("group did not settle: {:?}", self.shard.group("g"));
    }

    fn check_single_owner(&self) {
        let mut seen = BTreeSet::new();
        for (m, (_, owned)) in &self.clients {
            for tp in crate::group::iter_assignment(owned) {
                assert!(seen.insert(tp), "{tp:?} owned twice (second: {m})");
            }
        }
    }

    fn owned(&self, member: &str) -> Vec<i32> {
        self.clients[member]
            .1
            .get(&tid(1))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// The seed's experiment through the coordinator: 3 consumers on 7
/// partitions; c0 stops; until its session expires its partitions stay
/// with it (nobody consumes them), then they move as the seed's tables say
/// (range and roundrobin rows corrected, see assignor_test.rs).
#[test]
fn seed_experiment_through_heartbeats() {
    type Row<'a> = (Assignor, [&'a [i32]; 3], [&'a [i32]; 2]);
    let rows: &[Row<'_>] = &[
        (
            Assignor::Range,
            [&[0, 1, 2], &[3, 4], &[5, 6]],
            [&[0, 1, 2, 3], &[4, 5, 6]],
        ),
        (
            Assignor::RoundRobin,
            [&[0, 3, 6], &[1, 4], &[2, 5]],
            [&[0, 2, 4, 6], &[1, 3, 5]],
        ),
        // Members join one after another, and each join is a rebalance, so
        // sticky keeps history: c0 had all 7, kept 0-3 when c1 came, kept
        // 0-2 when c2 came. The seed's sticky table assumes a simultaneous
        // start (assignor_test.rs checks it for that case).
        (
            Assignor::Sticky,
            [&[0, 1, 2], &[4, 5], &[3, 6]],
            [&[0, 2, 4, 5], &[1, 3, 6]],
        ),
        (
            Assignor::CooperativeSticky,
            [&[0, 1, 2], &[4, 5], &[3, 6]],
            [&[0, 2, 4, 5], &[1, 3, 6]],
        ),
    ];
    for (assignor, three, two) in rows {
        let mut w = World::new();
        let c0 = w.join("c0", None, *assignor);
        let c1 = w.join("c1", None, *assignor);
        let c2 = w.join("c2", None, *assignor);
        w.settle(&[&c0, &c1, &c2]);
        let got: Vec<Vec<i32>> = [&c0, &c1, &c2].iter().map(|m| w.owned(m)).collect();
        let want: Vec<Vec<i32>> = three.iter().map(|p| p.to_vec()).collect();
        assert_eq!(got, want, "{assignor:?}: 3 members");
        assert_eq!(
            w.shard.group("g").map(ConsumerGroup::state),
            Some(GroupState::Stable)
        );

        // c0 stops. Within its session timeout nothing moves.
        w.now += 44_000;
        w.settle(&[&c1, &c2]);
        let records = w.shard.expire(&w.topics, w.now);
        assert!(records.is_empty(), "{assignor:?}: expired early");
        assert_eq!(
            [w.owned(&c1), w.owned(&c2)],
            [three[1].to_vec(), three[2].to_vec()]
        );

        // After it, c1 and c2 share all seven.
        w.now += 2_000;
        let records = w.shard.expire(&w.topics, w.now);
        assert!(!records.is_empty(), "{assignor:?}: c0 not expired");
        w.commit(records);
        w.clients.remove(&c0);
        w.settle(&[&c1, &c2]);
        assert_eq!(
            [w.owned(&c1), w.owned(&c2)],
            [two[0].to_vec(), two[1].to_vec()],
            "{assignor:?}: after c0 left"
        );
    }
}

#[test]
fn eager_members_revoke_everything_before_the_new_assignment() {
    let mut w = World::new();
    let a = w.join("a", None, Assignor::Range);
    w.settle(&[&a]);
    assert_eq!(w.owned(&a), [0, 1, 2, 3, 4, 5, 6]);
    let b = w.join("b", None, Assignor::Range);
    // a's next heartbeat takes everything away, even 0-3 that it keeps.
    w.hb(&a).expect("ok");
    assert_eq!(w.owned(&a), Vec::<i32>::new());
    w.settle(&[&a, &b]);
    assert_eq!(
        [w.owned(&a), w.owned(&b)],
        [vec![0, 1, 2, 3], vec![4, 5, 6]]
    );
}

#[test]
fn cooperative_members_keep_unaffected_partitions() {
    let mut w = World::new();
    let a = w.join("a", None, Assignor::CooperativeSticky);
    w.settle(&[&a]);
    let b = w.join("b", None, Assignor::CooperativeSticky);
    w.hb(&a).expect("ok");
    // a never drops below the partitions it keeps.
    let kept = w.owned(&a);
    assert_eq!(kept.len(), 4, "{kept:?}");
    w.settle(&[&a, &b]);
    assert_eq!(w.owned(&a), kept);
    assert_eq!(w.owned(&b).len(), 3);
}

#[test]
fn static_member_restart_within_session_keeps_its_partitions_without_rebalance() {
    let mut w = World::new();
    let a = w.join("a", Some("inst-a"), Assignor::Range);
    let b = w.join("b", Some("inst-b"), Assignor::Range);
    w.settle(&[&a, &b]);
    let before = w.owned(&a);
    let epoch = w.shard.group("g").map(|g| g.epoch);
    // a leaves for a restart (epoch -2), and comes back with a new member id.
    let (e, owned) = w.clients[&a].clone();
    let resp = w
        .try_hb(HeartbeatRequest {
            group_id: "g".into(),
            member_id: a.clone(),
            member_epoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH,
            owned: Some(owned),
            ..HeartbeatRequest::default()
        })
        .expect("static leave");
    assert_eq!(resp.member_epoch, LEAVE_GROUP_STATIC_MEMBER_EPOCH);
    assert!(e > 0);
    w.clients.remove(&a);
    w.now += 10_000;
    w.settle(&[&b]);
    let a2 = w.join("a", Some("inst-a"), Assignor::Range);
    assert_ne!(a2, a);
    w.settle(&[&a2, &b]);
    assert_eq!(w.owned(&a2), before);
    assert_eq!(w.shard.group("g").map(|g| g.epoch), epoch, "no rebalance");
    // The old member id is gone: its zombie is fenced.
    let err = w
        .try_hb(HeartbeatRequest {
            group_id: "g".into(),
            member_id: a,
            member_epoch: e,
            instance_id: Some("inst-a".into()),
            ..HeartbeatRequest::default()
        })
        .expect_err("fenced");
    assert_eq!(err.kind, ErrorKind::FencedInstanceId);
}

#[test]
fn static_member_that_does_not_return_is_removed_after_its_session() {
    let mut w = World::new();
    let a = w.join("a", Some("inst-a"), Assignor::Range);
    let b = w.join("b", None, Assignor::Range);
    w.settle(&[&a, &b]);
    let (_, owned) = w.clients[&a].clone();
    w.try_hb(HeartbeatRequest {
        group_id: "g".into(),
        member_id: a.clone(),
        member_epoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH,
        owned: Some(owned),
        ..HeartbeatRequest::default()
    })
    .expect("static leave");
    w.clients.remove(&a);
    w.now += 46_000;
    w.settle(&[&b]);
    let r = w.shard.expire(&w.topics, w.now);
    w.commit(r);
    w.settle(&[&b]);
    assert_eq!(w.owned(&b), [0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_removed() {
    let mut w = World::new();
    let a = w.join("a", None, Assignor::CooperativeSticky);
    w.settle(&[&a]);
    let b = w.join("b", None, Assignor::CooperativeSticky);
    // a learns it must revoke but never reports it did (owned unchanged).
    let (e, owned) = w.clients[&a].clone();
    w.try_hb(HeartbeatRequest {
        group_id: "g".into(),
        member_id: a.clone(),
        member_epoch: e,
        owned: Some(owned.clone()),
        ..HeartbeatRequest::default()
    })
    .expect("ok");
    w.now += 299_000;
    for _ in 0..3 {
        w.hb(&b).expect("ok");
        w.try_hb(HeartbeatRequest {
            group_id: "g".into(),
            member_id: a.clone(),
            member_epoch: e,
            owned: Some(owned.clone()),
            ..HeartbeatRequest::default()
        })
        .expect("ok");
    }
    assert!(w.shard.expire(&w.topics, w.now).is_empty());
    w.now += 2_000;
    let r = w.shard.expire(&w.topics, w.now);
    w.commit(r);
    w.clients.remove(&a);
    w.settle(&[&b]);
    assert_eq!(w.owned(&b), [0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn partitions_added_to_a_subscribed_topic_rebalance_the_group() {
    let mut w = World::new();
    let a = w.join("a", None, Assignor::CooperativeSticky);
    let b = w.join("b", None, Assignor::CooperativeSticky);
    w.settle(&[&a, &b]);
    w.topics = topics(10);
    w.settle(&[&a, &b]);
    assert_eq!(w.owned(&a).len() + w.owned(&b).len(), 10);
}

#[test]
fn regex_subscription_picks_up_new_topics_but_not_internal_ones() {
    let mut w = World::new();
    w.topics = Topics::new([
        TopicInfo {
            id: tid(1),
            name: "orders-eu".into(),
            partitions: 2,
        },
        TopicInfo {
            id: tid(3),
            name: "__consumer_offsets".into(),
            partitions: 50,
        },
    ]);
    let d = w
        .shard
        .heartbeat(
            &HeartbeatRequest {
                group_id: "g".into(),
                new_member_id: "r-1".into(),
                member_epoch: 0,
                subscription: Some(Subscription {
                    topic_names: vec![],
                    topic_regex: Some("orders-.*|__.*".into()),
                }),
                owned: Some(Assignment::new()),
                ..HeartbeatRequest::default()
            },
            &w.topics,
            w.now,
        )
        .expect("join");
    w.commit(d.records);
    assert_eq!(
        d.response.assignment.keys().copied().collect::<Vec<_>>(),
        [tid(1)]
    );
    w.clients.insert(
        "r-1".into(),
        (d.response.member_epoch, d.response.assignment),
    );
    w.topics = Topics::new(w.topics.iter().cloned().chain([TopicInfo {
        id: tid(4),
        name: "orders-us".into(),
        partitions: 1,
    }]));
    w.settle(&["r-1"]);
    assert!(w.clients["r-1"].1.contains_key(&tid(4)));
}

#[test]
fn bad_heartbeats_are_refused_and_change_nothing() {
    let mut w = World::new();
    let a = w.join("a", None, Assignor::Range);
    w.settle(&[&a]);
    let base = HeartbeatRequest {
        group_id: "g".into(),
        new_member_id: "x-1".into(),
        member_epoch: 0,
        subscription: Some(Subscription {
            topic_names: vec!["first".into()],
            topic_regex: None,
        }),
        ..HeartbeatRequest::default()
    };
    let long = "g".repeat(256);
    let cases: Vec<(HeartbeatRequest, ErrorKind)> = vec![
        (
            HeartbeatRequest {
                group_id: String::new(),
                ..base.clone()
            },
            ErrorKind::InvalidGroupId,
        ),
        (
            HeartbeatRequest {
                group_id: long,
                ..base.clone()
            },
            ErrorKind::InvalidGroupId,
        ),
        (
            HeartbeatRequest {
                session_timeout_ms: Some(5_999),
                ..base.clone()
            },
            ErrorKind::InvalidSessionTimeout,
        ),
        (
            HeartbeatRequest {
                session_timeout_ms: Some(1_800_001),
                ..base.clone()
            },
            ErrorKind::InvalidSessionTimeout,
        ),
        (
            HeartbeatRequest {
                assignors: Some(vec!["uniform".into()]),
                ..base.clone()
            },
            ErrorKind::InconsistentGroupProtocol,
        ),
        (
            HeartbeatRequest {
                assignors: Some(vec![]),
                ..base.clone()
            },
            ErrorKind::InconsistentGroupProtocol,
        ),
        // a uses range only: a roundrobin-only member has none in common.
        (
            HeartbeatRequest {
                assignors: Some(vec!["roundrobin".into()]),
                ..base.clone()
            },
            ErrorKind::InconsistentGroupProtocol,
        ),
        (
            HeartbeatRequest {
                subscription: Some(Subscription {
                    topic_names: vec![],
                    topic_regex: Some("(".into()),
                }),
                ..base.clone()
            },
            ErrorKind::InvalidRequest,
        ),
        (
            HeartbeatRequest {
                subscription: None,
                ..base.clone()
            },
            ErrorKind::InvalidRequest,
        ),
        (
            HeartbeatRequest {
                member_id: "nobody".into(),
                member_epoch: 3,
                ..base.clone()
            },
            ErrorKind::UnknownMemberId,
        ),
        (
            HeartbeatRequest {
                member_id: a.clone(),
                member_epoch: 99,
                ..base.clone()
            },
            ErrorKind::FencedMemberEpoch,
        ),
        (
            HeartbeatRequest {
                member_id: "nobody".into(),
                member_epoch: -1,
                ..base.clone()
            },
            ErrorKind::UnknownMemberId,
        ),
        (
            HeartbeatRequest {
                member_epoch: -7,
                ..base.clone()
            },
            ErrorKind::InvalidRequest,
        ),
        (
            HeartbeatRequest {
                instance_id: Some(String::new()),
                ..base.clone()
            },
            ErrorKind::InvalidRequest,
        ),
    ];
    let before = w.shard.group("g").cloned();
    for (req, want) in cases {
        let err = w.try_hb(req.clone()).expect_err("refused");
        assert_eq!(err.kind, want, "{req:?}: {err}");
    }
    assert_eq!(w.shard.group("g").cloned(), before);
}

#[test]
fn commits_are_checked_against_the_member_epoch() {
    let mut w = World::new();
    let a = w.join("a", None, Assignor::CooperativeSticky);
    w.settle(&[&a]);
    let epoch = w.clients[&a].0;
    let entry = |topic: &str, partition: i32, offset: i64| CommitEntry {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch: -1,
        metadata: String::new(),
    };
    let req = |member: &str, member_epoch: i32, offsets: Vec<CommitEntry>| CommitRequest {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch,
        offsets,
    };
    let cases: Vec<(CommitRequest, Option<ErrorKind>)> = vec![
        (req(&a, epoch, vec![entry("first", 0, 10)]), None),
        (
            req(&a, epoch - 1, vec![entry("first", 0, 5)]),
            Some(ErrorKind::StaleMemberEpoch),
        ),
        (
            req(&a, epoch + 1, vec![entry("first", 0, 5)]),
            Some(ErrorKind::FencedMemberEpoch),
        ),
        (
            req("", -1, vec![entry("first", 0, 5)]),
            Some(ErrorKind::UnknownMemberId),
        ),
        (
            req("zombie", 1, vec![entry("first", 0, 5)]),
            Some(ErrorKind::UnknownMemberId),
        ),
        (
            req(&a, epoch, vec![entry("nope", 0, 5)]),
            Some(ErrorKind::UnknownTopicOrPartition),
        ),
        (
            req(&a, epoch, vec![entry("first", 7, 5)]),
            Some(ErrorKind::UnknownTopicOrPartition),
        ),
        (
            req(&a, epoch, vec![entry("first", 1, 1), entry("first", 0, -1)]),
            Some(ErrorKind::InvalidRequest),
        ),
        (
            req(
                &a,
                epoch,
                vec![CommitEntry {
                    metadata: "m".repeat(4097),
                    ..entry("first", 0, 1)
                }],
            ),
            Some(ErrorKind::OffsetMetadataTooLarge),
        ),
    ];
    for (r, want) in cases {
        match (w.shard.commit_offsets(&r, &w.topics, w.now), want) {
            (Ok(records), None) => w.commit(records),
            (Err(e), Some(k)) => assert_eq!(e.kind, k, "{r:?}: {e}"),
            (got, want) => panic!("{r:?}: got {got:?}, want {want:?}"),
        }
    }
    let fetched = w.shard.fetch_offsets("g", None).expect("fetch");
    assert_eq!(fetched.len(), 1, "the refused commits changed nothing");
    assert_eq!(fetched[0].1.as_ref().map(|v| v.offset), Some(10));
}

#[test]
fn a_group_without_members_takes_manual_commits() {
    let mut w = World::new();
    let r = w
        .shard
        .commit_offsets(
            &CommitRequest {
                group_id: "manual".into(),
                member_id: String::new(),
                member_epoch: -1,
                offsets: vec![CommitEntry {
                    topic: "first".into(),
                    partition: 3,
                    offset: 17,
                    leader_epoch: 2,
                    metadata: "m".into(),
                }],
            },
            &w.topics,
            w.now,
        )
        .expect("accepted");
    w.commit(r);
    let got = w
        .shard
        .fetch_offsets("manual", Some(&[("first".into(), 3), ("first".into(), 4)]))
        .expect("fetch");
    assert_eq!(
        got[0].1.as_ref().map(|v| (v.offset, v.leader_epoch)),
        Some((17, 2))
    );
    assert_eq!(got[1].1, None);
    let listing = w.shard.list_groups();
    assert_eq!(listing.len(), 1);
    assert_eq!(
        (listing[0].state, listing[0].protocol_type.as_str()),
        (GroupState::Empty, "")
    );
    // Unknown groups have no offsets, and are not found by describe.
    assert!(
        w.shard
            .fetch_offsets("other", None)
            .expect("fetch")
            .is_empty()
    );
    assert_eq!(
        w.shard.describe_group("other").expect_err("unknown").kind,
        ErrorKind::GroupIdNotFound
    );
}

#[test]
fn delete_group_and_offsets_rules() {
    let mut w = World::new();
    let a = w.join("a", None, Assignor::Range);
    w.settle(&[&a]);
    let epoch = w.clients[&a].0;
    let commit = |topic: &str| CommitRequest {
        group_id: "g".into(),
        member_id: a.clone(),
        member_epoch: epoch,
        offsets: vec![CommitEntry {
            topic: topic.into(),
            partition: 0,
            offset: 3,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    for t in ["first", "other"] {
        let r = w
            .shard
            .commit_offsets(&commit(t), &w.topics, w.now)
            .expect("ok");
        w.commit(r);
    }
    let err = w.shard.delete_group("g").expect_err("has members");
    assert_eq!(err.kind, ErrorKind::NonEmptyGroup);
    assert!(err.message.contains(&a), "names the members: {err}");
    let err = w
        .shard
        .delete_offsets("g", &[("first".into(), 0)], &w.topics)
        .expect_err("subscribed");
    assert_eq!(err.kind, ErrorKind::GroupSubscribedToTopic);
    let r = w
        .shard
        .delete_offsets("g", &[("other".into(), 0)], &w.topics)
        .expect("not subscribed");
    w.commit(r);
    assert_eq!(w.shard.fetch_offsets("g", None).expect("ok").len(), 1);
    // a leaves; the group is empty and can be deleted.
    let (e, _) = w.clients[&a].clone();
    w.try_hb(HeartbeatRequest {
        group_id: "g".into(),
        member_id: a.clone(),
        member_epoch: LEAVE_GROUP_MEMBER_EPOCH,
        ..HeartbeatRequest::default()
    })
    .expect("leave");
    assert!(e > 0);
    assert_eq!(
        w.shard.describe_group("g").expect("exists").state,
        GroupState::Empty
    );
    let r = w.shard.delete_group("g").expect("empty");
    w.commit(r);
    assert_eq!(
        w.shard.describe_group("g").expect_err("gone").kind,
        ErrorKind::GroupIdNotFound
    );
    assert!(w.shard.list_groups().is_empty());
    assert_eq!(
        w.shard.delete_group("g").expect_err("gone").kind,
        ErrorKind::GroupIdNotFound
    );
}

#[test]
fn offsets_of_empty_groups_expire_after_retention() {
    let mut w = World::new();
    let commit = |partition: i32| CommitRequest {
        group_id: "manual".into(),
        member_id: String::new(),
        member_epoch: -1,
        offsets: vec![CommitEntry {
            topic: "first".into(),
            partition,
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    let r = w
        .shard
        .commit_offsets(&commit(0), &w.topics, w.now)
        .expect("ok");
    w.commit(r);
    w.now += 1_000;
    let r = w
        .shard
        .commit_offsets(&commit(1), &w.topics, w.now)
        .expect("ok");
    w.commit(r);
    let retention = w.shard.config().offsets_retention_ms;
    assert!(w.shard.expire_offsets(w.now + retention - 1_001).is_empty());
    let r = w.shard.expire_offsets(w.now + retention - 1_000);
    assert_eq!(r.len(), 1);
    w.commit(r);
    let r = w.shard.expire_offsets(w.now + retention);
    w.commit(r);
    assert!(w.shard.list_groups().is_empty());
}

/// A broker that loads the partition replays the log and reaches the same
/// state as the one that wrote it.
#[test]
fn replaying_the_log_rebuilds_the_same_state() {
    let mut w = World::new();
    let a = w.join("a", Some("ia"), Assignor::CooperativeSticky);
    let b = w.join("b", None, Assignor::CooperativeSticky);
    w.settle(&[&a, &b]);
    let c = w.join("c", None, Assignor::CooperativeSticky);
    w.hb(&a).expect("ok");
    let epoch = w.clients[&a].0;
    let r = w
        .shard
        .commit_offsets(
            &CommitRequest {
                group_id: "g".into(),
                member_id: a.clone(),
                member_epoch: epoch,
                offsets: vec![CommitEntry {
                    topic: "first".into(),
                    partition: 0,
                    offset: 5,
                    leader_epoch: -1,
                    metadata: String::new(),
                }],
            },
            &w.topics,
            w.now,
        )
        .expect("ok");
    w.commit(r);
    // Through the codec, as a load reads the log.
    let mut loaded = Shard::new(GroupConfig::default());
    let decoded: Vec<Record> = w
        .log
        .iter()
        .map(|r| {
            let (k, v) = r.encode();
            Record::decode(&k, v.as_deref()).expect("decodes")
        })
        .collect();
    loaded.replay(&decoded);
    assert_eq!(loaded.group("g"), w.shard.group("g"));
    assert_eq!(loaded.offsets("g"), w.shard.offsets("g"));
    // The loaded coordinator carries on where the old one stopped.
    w.shard = loaded;
    w.shard.start_sessions(w.now);
    w.settle(&[&a, &b, &c]);
    let member_state = w.shard.group("g").map(|g| {
        g.members
            .values()
            .all(|m| m.current.state == Some(MemberState::Stable))
    });
    assert_eq!(member_state, Some(true));
}

fn offset_commit(group: &str, topic: &str, partition: i32, offset: i64) -> CommitRequest {
    CommitRequest {
        group_id: group.into(),
        member_id: String::new(),
        member_epoch: -1,
        offsets: vec![CommitEntry {
            topic: topic.into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    }
}

fn committed(shard: &Shard, group: &str, topic: &str, partition: i32) -> Option<i64> {
    shard
        .offsets(group)
        .and_then(|o| o.get(&(topic.to_owned(), partition)))
        .map(|v| v.offset)
}

#[test]
fn transactional_offsets_become_visible_at_commit_and_vanish_at_abort() {
    let topics = topics(4);
    let mut shard = Shard::new(GroupConfig::default());
    let txn = |offset: i64, producer_id: i64| TxnCommitRequest {
        commit: offset_commit("g", "first", 0, offset),
        producer_id,
        producer_epoch: 0,
    };
    // Committed 5 earlier.
    let plain = shard
        .commit_offsets(&offset_commit("g", "first", 0, 5), &topics, 1)
        .unwrap();
    shard.replay(&plain);

    // Producer 7 commits 10 in its transaction: pending, not visible.
    let records = shard.txn_commit_offsets(&txn(10, 7), &topics, 2).unwrap();
    shard.replay_transactional(7, &records);
    assert_eq!(committed(&shard, "g", "first", 0), Some(5));
    assert!(shard.has_pending_offsets("g", Some(("first", 0))));
    assert!(!shard.has_pending_offsets("g", Some(("first", 1))));
    assert_eq!(
        shard.delete_group("g").unwrap_err().kind,
        ErrorKind::NonEmptyGroup
    );
    assert!(
        shard.expire_offsets(i64::MAX / 2).is_empty(),
        "offsets of a group in a transaction do not expire"
    );
    // Its COMMIT marker makes it visible.
    shard.replay_marker(7, true);
    assert_eq!(committed(&shard, "g", "first", 0), Some(10));
    assert!(!shard.has_pending_offsets("g", None));

    // Producer 8 commits 20, then aborts: dropped.
    let records = shard.txn_commit_offsets(&txn(20, 8), &topics, 3).unwrap();
    shard.replay_transactional(8, &records);
    shard.replay_marker(8, false);
    assert_eq!(committed(&shard, "g", "first", 0), Some(10));
    assert!(!shard.has_pending_offsets("g", None));

    // A later plain commit wins over an earlier transactional one whose
    // marker comes after it (as Kafka: the later record in the log).
    let records = shard.txn_commit_offsets(&txn(30, 9), &topics, 4).unwrap();
    shard.replay_transactional(9, &records);
    let plain = shard
        .commit_offsets(&offset_commit("g", "first", 0, 40), &topics, 5)
        .unwrap();
    shard.replay(&plain);
    shard.replay_marker(9, true);
    assert_eq!(committed(&shard, "g", "first", 0), Some(40));

    // A marker of a producer without pending offsets changes nothing.
    shard.replay_marker(99, true);
    assert_eq!(committed(&shard, "g", "first", 0), Some(40));
}

#[test]
fn transactional_offset_commit_bad_input() {
    let topics = topics(4);
    let shard = Shard::new(GroupConfig::default());
    let cases: &[(&str, TxnCommitRequest, ErrorKind)] = &[
        (
            "no producer id",
            TxnCommitRequest {
                commit: offset_commit("g", "first", 0, 1),
                producer_id: -1,
                producer_epoch: 0,
            },
            ErrorKind::InvalidRequest,
        ),
        (
            "no epoch",
            TxnCommitRequest {
                commit: offset_commit("g", "first", 0, 1),
                producer_id: 1,
                producer_epoch: -1,
            },
            ErrorKind::InvalidRequest,
        ),
        (
            "unknown partition",
            TxnCommitRequest {
                commit: offset_commit("g", "first", 9, 1),
                producer_id: 1,
                producer_epoch: 0,
            },
            ErrorKind::UnknownTopicOrPartition,
        ),
        (
            "negative offset",
            TxnCommitRequest {
                commit: offset_commit("g", "first", 0, -2),
                producer_id: 1,
                producer_epoch: 0,
            },
            ErrorKind::InvalidRequest,
        ),
        (
            "empty group",
            TxnCommitRequest {
                commit: offset_commit("", "first", 0, 1),
                producer_id: 1,
                producer_epoch: 0,
            },
            ErrorKind::InvalidGroupId,
        ),
    ];
    for (name, req, kind) in cases {
        assert_eq!(
            shard.txn_commit_offsets(req, &topics, 1).unwrap_err().kind,
            *kind,
            "{name}"
        );
    }
}

#[test]
fn committed_offsets_lists_every_group_s_offsets_for_the_lag() {
    let mut w = World::new();
    let commit = |group: &str, partition: i32, offset: i64| CommitRequest {
        group_id: group.into(),
        member_id: String::new(),
        member_epoch: -1,
        offsets: vec![CommitEntry {
            topic: "first".into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    for (group, partition, offset) in [("g", 0, 5), ("g", 1, 7), ("h", 0, 9), ("g", 0, 6)] {
        let r = w
            .shard
            .commit_offsets(&commit(group, partition, offset), &w.topics, w.now)
            .expect("a group without members takes commits");
        w.commit(r);
    }
    let got: Vec<(String, String, i32, i64)> = w
        .shard
        .committed_offsets()
        .into_iter()
        .map(|c| (c.group_id, c.topic, c.partition, c.offset))
        .collect();
    assert_eq!(
        got,
        [
            ("g".into(), "first".into(), 0, 6),
            ("g".into(), "first".into(), 1, 7),
            ("h".into(), "first".into(), 0, 9),
        ]
    );
}

#[test]
fn a_member_reads_what_it_owns_at_its_current_epoch() {
    let mut w = World::new();
    let a = w.join("a", None, Assignor::CooperativeSticky);
    w.settle(&[&a]);
    let (epoch, owned) = w.clients[&a].clone();
    assert_eq!(w.shard.member_assignment("g", &a, epoch).unwrap(), owned);
    let cases: Vec<(&str, &str, i32, ErrorKind)> = vec![
        ("g", &a, epoch - 1, ErrorKind::StaleMemberEpoch),
        ("g", &a, epoch + 1, ErrorKind::FencedMemberEpoch),
        ("g", "zombie", 1, ErrorKind::UnknownMemberId),
        ("g", "", -1, ErrorKind::UnknownMemberId),
        ("g", &a, 0, ErrorKind::UnknownMemberId),
        ("nope", &a, epoch, ErrorKind::GroupIdNotFound),
        ("", &a, epoch, ErrorKind::InvalidGroupId),
    ];
    for (group, member, member_epoch, want) in cases {
        let err = w
            .shard
            .member_assignment(group, member, member_epoch)
            .expect_err("refused");
        assert_eq!(err.kind, want, "{group:?} {member:?} {member_epoch}: {err}");
    }
}
