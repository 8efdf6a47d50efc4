use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::config::GroupConfig;
use crate::error::ErrorKind;
use crate::group::iter_assignment;
use crate::records::Assignment;
use crate::shard::{CommitEntry, CommitRequest, HeartbeatResponse};
use crate::topics::TopicInfo;
use uuid::Uuid;

const T1: u128 = 1;

fn topics() -> Topics {
    Topics::new([TopicInfo {
        id: Uuid::from_u128(T1),
        name: "first".into(),
        partitions: 7,
    }])
}

/// A classic client as librdkafka behaves: eager clients give up
/// everything before they rejoin; cooperative ones report what they own
/// and rejoin after revoking.
#[derive(Debug, Clone, Default)]
struct Client {
    id: String,
    instance: Option<String>,
    generation: i32,
    owned: Assignment,
    cooperative: bool,
    must_join: bool,
}

struct World {
    shard: Shard,
    topics: Topics,
    now: i64,
    next_id: u32,
    clients: BTreeMap<String, Client>,
    kip848: BTreeMap<String, (i32, Assignment)>,
}

impl World {
    fn new() -> Self {
        World {
            shard: Shard::new(GroupConfig::default()),
            topics: topics(),
            now: 1_000,
            next_id: 0,
            clients: BTreeMap::new(),
            kip848: BTreeMap::new(),
        }
    }

    fn commit(&mut self, records: &[Record]) {
        self.shard.replay(records);
    }

    fn join_request(&mut self, c: &Client) -> ClassicJoinRequest {
        self.next_id += 1;
        let protocol = if c.cooperative {
            "cooperative-sticky"
        } else {
            "range"
        };
        ClassicJoinRequest {
            group_id: "g".into(),
            member_id: c.id.clone(),
            new_member_id: format!("rdkafka-{:04}", self.next_id),
            instance_id: c.instance.clone(),
            require_known_member_id: true,
            protocol_type: "consumer".into(),
            protocol_names: vec![protocol.into()],
            topics: vec!["first".into()],
            owned: iter_assignment(&c.owned)
                .map(|(_, p)| ("first".to_owned(), vec![p]))
                .collect(),
            client_id: "rdkafka".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 45_000,
            rebalance_timeout_ms: 300_000,
            ..ClassicJoinRequest::default()
        }
    }

    /// Join (twice for MEMBER_ID_REQUIRED), then sync.
    fn join(&mut self, name: &str) {
        let mut c = self.clients[name].clone();
        if !c.cooperative {
            c.owned.clear();
        }
        for _ in 0..2 {
            let req = self.join_request(&c);
            let d = self
                .shard
                .classic_join(&req, &self.topics, self.now)
                .expect("join accepted");
            self.commit(&d.records);
            match d.response {
                ClassicJoinResponse::MemberIdRequired { member_id } => {
                    assert!(d.records.is_empty());
                    c.id = member_id;
                }
                ClassicJoinResponse::Joined {
                    member_id,
                    generation,
                    protocol_name,
                } => {
                    assert_eq!(protocol_name, req.protocol_names[0]);
                    c.id = member_id;
                    c.generation = generation;
                    let s = self
                        .shard
                        .classic_sync(
                            "g",
                            &c.id,
                            c.instance.as_deref(),
                            generation,
                            (Some("consumer"), Some(&protocol_name)),
                            self.now,
                        )
                        .expect("sync accepted");
                    let revoked = iter_assignment(&c.owned)
                        .any(|(t, p)| !s.assignment.get(&t).is_some_and(|ps| ps.contains(&p)));
                    c.owned = s.assignment;
                    c.must_join = c.cooperative && revoked;
                    self.clients.insert(name.to_owned(), c);
                    self.check_single_owner();
                    return;
                }
            }
        }
        panic!("no join after MEMBER_ID_REQUIRED");
    }

    fn heartbeat(&mut self, name: &str) {
        let c = self.clients[name].clone();
        if c.id.is_empty() || c.must_join {
            return self.join(name);
        }
        match self
            .shard
            .classic_heartbeat(
                "g",
                &c.id,
                c.instance.as_deref(),
                c.generation,
                &self.topics,
                self.now,
            )
            .expect("heartbeat accepted")
        {
            ClassicHeartbeatResponse::Ok => {}
            ClassicHeartbeatResponse::RebalanceInProgress => self.join(name),
        }
    }

    fn kip848_heartbeat(&mut self, id: &str) -> HeartbeatResponse {
        let (epoch, owned) = self.kip848.get(id).cloned().unwrap_or_default();
        let req = HeartbeatRequest {
            group_id: "g".into(),
            member_id: id.into(),
            member_epoch: epoch,
            client_id: "grpc".into(),
            rebalance_timeout_ms: Some(300_000),
            subscription: (epoch == 0).then(|| Subscription {
                topic_names: vec!["first".into()],
                topic_regex: None,
            }),
            assignors: Some(vec!["range".into()]),
            owned: Some(owned),
            ..HeartbeatRequest::default()
        };
        let d = self
            .shard
            .heartbeat(&req, &self.topics, self.now)
            .expect("heartbeat accepted");
        self.commit(&d.records);
        self.kip848.insert(
            id.into(),
            (d.response.member_epoch, d.response.assignment.clone()),
        );
        self.check_single_owner();
        d.response
    }

    fn add(&mut self, name: &str, cooperative: bool, instance: Option<&str>) {
        self.clients.insert(
            name.into(),
            Client {
                cooperative,
                instance: instance.map(str::to_owned),
                ..Client::default()
            },
        );
        self.join(name);
    }

    /// Heartbeats every client (and KIP-848 member) until nothing changes.
    fn settle(&mut self) {
        for _ in 0..20 {
            let before: Vec<(String, i32, Assignment)> = self
                .clients
                .values()
                .map(|c| (c.id.clone(), c.generation, c.owned.clone()))
                .collect();
            let before_848 = self.kip848.clone();
            let names: Vec<String> = self.clients.keys().cloned().collect();
            for n in names {
                self.heartbeat(&n);
            }
            let ids: Vec<String> = self.kip848.keys().cloned().collect();
            for id in ids {
                self.kip848_heartbeat(&id);
            }
            let after: Vec<(String, i32, Assignment)> = self
                .clients
                .values()
                .map(|c| (c.id.clone(), c.generation, c.owned.clone()))
                .collect();
            if before == after
                && before_848 == self.kip848
                && self.shard.group("g").map(|g| g.state()) == Some(GroupState::Stable)
            {
                return;
            }
        }
        panic!("group did not settle: {:?}", self.shard.group("g"));
    }

    fn check_single_owner(&self) {
        let mut seen = BTreeSet::new();
        let owned = self
            .clients
            .values()
            .map(|c| &c.owned)
            .chain(self.kip848.values().map(|(_, o)| o));
        for o in owned {
            for tp in iter_assignment(o) {
                assert!(seen.insert(tp), "{tp:?} owned twice");
            }
        }
    }

    fn owned(&self, name: &str) -> Vec<i32> {
        iter_assignment(&self.clients[name].owned)
            .map(|(_, p)| p)
            .collect()
    }
}

use crate::group::GroupState;

#[test]
fn classic_members_split_the_partitions_and_take_over_on_leave() {
    for cooperative in [false, true] {
        let mut w = World::new();
        w.add("a", cooperative, None);
        w.settle();
        assert_eq!(
            w.owned("a"),
            vec![0, 1, 2, 3, 4, 5, 6],
            "coop {cooperative}"
        );
        w.add("b", cooperative, None);
        w.settle();
        // range over ids rdkafka-0001 (a) < rdkafka-0004 (b); sticky balances.
        let (a, b) = (w.owned("a"), w.owned("b"));
        assert_eq!(
            (a.len(), b.len()),
            (4, 3),
            "coop {cooperative}: {a:?} {b:?}"
        );
        if !cooperative {
            assert_eq!((a, b), (vec![0, 1, 2, 3], vec![4, 5, 6]));
        }
        let b = w.clients.remove("b").expect("b");
        let records = w
            .shard
            .classic_leave(
                "g",
                &ClassicLeave {
                    member_id: b.id,
                    instance_id: None,
                },
                &w.topics,
                w.now,
            )
            .expect("leave accepted");
        w.commit(&records);
        w.settle();
        assert_eq!(
            w.owned("a"),
            vec![0, 1, 2, 3, 4, 5, 6],
            "coop {cooperative}"
        );
    }
}

#[test]
fn a_classic_and_a_kip848_member_share_a_group() {
    let mut w = World::new();
    w.add("classic", false, None);
    w.settle();
    w.kip848_heartbeat("grpc-member");
    w.settle();
    let classic = w.owned("classic");
    let grpc: Vec<i32> = iter_assignment(&w.kip848["grpc-member"].1)
        .map(|(_, p)| p)
        .collect();
    // range, members sorted by id: grpc-member < rdkafka-0001.
    assert_eq!((grpc, classic), (vec![0, 1, 2, 3], vec![4, 5, 6]));
}

#[test]
fn a_static_member_rejoining_under_a_new_id_keeps_its_partitions() {
    let mut w = World::new();
    w.add("a", false, Some("instance-a"));
    w.add("b", false, None);
    w.settle();
    let before = w.owned("a");
    let epoch = w.shard.group("g").expect("group").epoch;
    let old = w.clients["a"].clone();
    // Restart: a new incarnation without a member id.
    w.clients.insert(
        "a".into(),
        Client {
            instance: Some("instance-a".into()),
            ..Client::default()
        },
    );
    w.join("a");
    assert_eq!(w.owned("a"), before);
    assert_eq!(
        w.shard.group("g").expect("group").epoch,
        epoch,
        "no rebalance"
    );
    let fenced = w
        .shard
        .classic_heartbeat(
            "g",
            &old.id,
            Some("instance-a"),
            old.generation,
            &w.topics,
            w.now,
        )
        .expect_err("old incarnation fenced");
    assert_eq!(fenced.kind, ErrorKind::FencedInstanceId);
}

#[test]
fn bad_classic_requests_are_refused_and_change_nothing() {
    let mut w = World::new();
    w.add("a", false, None);
    w.settle();
    let a = w.clients["a"].clone();
    let group_before = w.shard.group("g").cloned();
    let mut wrong_type = w.join_request(&a);
    wrong_type.protocol_type = "connect".into();
    let mut unknown_assignor = w.join_request(&a);
    unknown_assignor.protocol_names = vec!["my-assignor".into()];
    let mut unknown_member = w.join_request(&a);
    unknown_member.member_id = "never-issued".into();
    let mut bad_timeout = w.join_request(&a);
    bad_timeout.session_timeout_ms = 10;
    let cases = [
        (wrong_type, ErrorKind::InconsistentGroupProtocol),
        (unknown_assignor, ErrorKind::InconsistentGroupProtocol),
        (unknown_member, ErrorKind::UnknownMemberId),
        (bad_timeout, ErrorKind::InvalidSessionTimeout),
    ];
    for (req, want) in cases {
        let e = w
            .shard
            .classic_join(&req, &w.topics, w.now)
            .expect_err("refused");
        assert_eq!(e.kind, want, "{req:?}");
    }
    let t = w.topics.clone();
    let hb = |w: &mut World, id: &str, generation: i32| {
        w.shard
            .classic_heartbeat("g", id, None, generation, &t, w.now)
            .expect_err("refused")
            .kind
    };
    assert_eq!(
        hb(&mut w, "nobody", a.generation),
        ErrorKind::UnknownMemberId
    );
    assert_eq!(
        hb(&mut w, &a.id, a.generation - 1),
        ErrorKind::IllegalGeneration
    );
    assert_eq!(
        hb(&mut w, &a.id, a.generation + 1),
        ErrorKind::IllegalGeneration
    );
    let sync = w
        .shard
        .classic_sync("g", &a.id, None, a.generation + 1, (None, None), w.now)
        .expect_err("stale generation");
    assert_eq!(sync.kind, ErrorKind::IllegalGeneration);
    let sync = w
        .shard
        .classic_sync(
            "g",
            &a.id,
            None,
            a.generation,
            (Some("consumer"), Some("roundrobin")),
            w.now,
        )
        .expect_err("wrong protocol name");
    assert_eq!(sync.kind, ErrorKind::InconsistentGroupProtocol);
    let leave = w
        .shard
        .classic_leave(
            "g",
            &ClassicLeave {
                member_id: "nobody".into(),
                instance_id: None,
            },
            &t,
            w.now,
        )
        .expect_err("unknown member");
    assert_eq!(leave.kind, ErrorKind::UnknownMemberId);
    // A commit at an old generation is refused (the front end answers
    // ILLEGAL_GENERATION).
    let commit = w
        .shard
        .commit_offsets(
            &CommitRequest {
                group_id: "g".into(),
                member_id: a.id.clone(),
                member_epoch: a.generation - 1,
                offsets: vec![CommitEntry {
                    topic: "first".into(),
                    partition: 0,
                    offset: 5,
                    leader_epoch: -1,
                    metadata: String::new(),
                }],
            },
            &t,
            w.now,
        )
        .expect_err("stale generation");
    assert_eq!(commit.kind, ErrorKind::StaleMemberEpoch);
    assert_eq!(w.shard.group("g").cloned(), group_before, "nothing changed");
    // And the member is still fine.
    assert_eq!(
        w.shard
            .classic_heartbeat("g", &a.id, None, a.generation, &t, w.now)
            .expect("heartbeat"),
        ClassicHeartbeatResponse::Ok
    );
}

#[test]
fn an_issued_member_id_is_forgotten_after_its_session_timeout() {
    let mut w = World::new();
    let c = Client::default();
    let req = w.join_request(&c);
    let d = w
        .shard
        .classic_join(&req, &w.topics, w.now)
        .expect("member id required");
    let ClassicJoinResponse::MemberIdRequired { member_id } = d.response else {
        panic!("{:?}", d.response);
    };
    w.now += 45_001;
    let t = w.topics.clone();
    assert!(w.shard.expire(&t, w.now).is_empty());
    let mut again = w.join_request(&c);
    again.member_id = member_id;
    let e = w
        .shard
        .classic_join(&again, &t, w.now)
        .expect_err("forgotten");
    assert_eq!(e.kind, ErrorKind::UnknownMemberId);
}

#[test]
fn a_classic_member_that_stops_heartbeating_is_removed_at_its_session_timeout() {
    let mut w = World::new();
    w.add("a", false, None);
    w.add("b", false, None);
    w.settle();
    let b = w.clients.remove("b").expect("b");
    w.now += 30_000;
    w.heartbeat("a");
    w.now += 16_000;
    let t = w.topics.clone();
    let records = w.shard.expire(&t, w.now);
    w.commit(&records);
    let g = w.shard.group("g").expect("group");
    assert!(!g.members.contains_key(&b.id));
    w.settle();
    assert_eq!(w.owned("a"), vec![0, 1, 2, 3, 4, 5, 6]);
}
