//! Memory of the group coordinator's state (issue #21's "memory per group
//! and per committed offset"): a shard of `strom-group` is filled through
//! its own calls (heartbeats that join members, offset commits replayed as
//! the coordinator replays its log) while a counting allocator measures the
//! bytes it keeps.
//!
//! ```text
//! cargo bench -p strom-group --bench group_memory
//! ```

use std::process::Command;

use strom_group::{
    Assignment, Assignor, CommitEntry, CommitRequest, GroupConfig, HeartbeatRequest, Shard,
    Subscription, TopicInfo, Topics, Uuid,
};

/// This process's resident set in bytes (Linux `/proc/self/statm`).
fn resident_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

const PARTITIONS: i32 = 100;

fn topics() -> Topics {
    Topics::new([TopicInfo {
        id: Uuid::from_u128(1),
        name: "events".into(),
        partitions: PARTITIONS,
    }])
}

/// Commits `per_group` offsets of each of `groups` member-less groups.
fn commit_offsets(shard: &mut Shard, topics: &Topics, groups: usize, per_group: i32) {
    for g in 0..groups {
        let req = CommitRequest {
            group_id: format!("offsets-{g:06}"),
            member_id: String::new(),
            member_epoch: -1,
            offsets: (0..per_group)
                .map(|p| CommitEntry {
                    topic: "events".into(),
                    partition: p,
                    offset: 1_000_000 + i64::from(p),
                    leader_epoch: 3,
                    metadata: String::new(),
                })
                .collect(),
        };
        let records = shard
            .commit_offsets(&req, topics, 1_000)
            .expect("commit accepted");
        shard.replay(&records);
    }
}

/// Joins `members` members to each of `groups` groups subscribed to the
/// topic, each heartbeating until it has its assignment.
fn join_groups(shard: &mut Shard, topics: &Topics, groups: usize, members: usize) {
    for g in 0..groups {
        let group_id = format!("group-{g:06}");
        for m in 0..members {
            let req = HeartbeatRequest {
                group_id: group_id.clone(),
                new_member_id: format!("member-{g:06}-{m}"),
                member_epoch: 0,
                instance_id: None,
                client_id: "bench".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: Some(300_000),
                subscription: Some(Subscription {
                    topic_names: vec!["events".into()],
                    topic_regex: None,
                }),
                assignors: Some(vec![Assignor::CooperativeSticky.name().into()]),
                owned: Some(Assignment::new()),
                ..HeartbeatRequest::default()
            };
            let decision = shard.heartbeat(&req, topics, 1_000).expect("join");
            shard.replay(&decision.records);
        }
    }
}

/// Each case runs in a process of its own (`group_memory CASE`), so that
/// memory freed by one case does not hide the growth of the next.
fn main() {
    let cases = ["offsets", "groups-1", "groups-10"];
    let Some(case) = std::env::args()
        .nth(1)
        .filter(|a| cases.contains(&a.as_str()))
    else {
        let exe = std::env::current_exe().expect("this benchmark's path");
        for case in cases {
            let status = Command::new(&exe).arg(case).status().expect("run a case");
            assert!(status.success(), "case {case} failed");
        }
        return;
    };
    let topics = topics();
    let before = resident_bytes();
    let mut shard = Shard::new(GroupConfig::default());
    match case.as_str() {
        "offsets" => {
            // 10,000 groups × 100 partitions = 1,000,000 committed offsets.
            let (groups, per_group) = (10_000, PARTITIONS);
            commit_offsets(&mut shard, &topics, groups, per_group);
            let bytes = resident_bytes() - before;
            let offsets = groups as i64 * i64::from(per_group);
            println!(
                "committed offsets: {offsets} in {groups} groups: resident +{:.1} MiB, {} bytes \
                 per offset",
                bytes as f64 / f64::from(1 << 20),
                bytes / offsets
            );
        }
        _ => {
            // Groups subscribed to a 100-partition topic, no offsets.
            let (groups, members) = if case == "groups-1" {
                (10_000, 1)
            } else {
                (1_000, 10)
            };
            join_groups(&mut shard, &topics, groups, members);
            let bytes = resident_bytes() - before;
            println!(
                "groups: {groups} of {members} member(s) over {PARTITIONS} partitions: resident \
                 +{:.1} MiB, {} bytes per group, {} bytes per member",
                bytes as f64 / f64::from(1 << 20),
                bytes / groups as i64,
                bytes / (groups * members) as i64
            );
        }
    }
    std::hint::black_box(&shard);
}
