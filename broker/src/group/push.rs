//! The pushed assignment stream's fan-out (`ConsumerGroupAssignmentStream`):
//! one `tokio::sync::watch` channel per member with an open stream. The
//! rule of whom to wake is the pure core's
//! ([`strom_group::wake::members_to_wake`]); this only delivers it.
//!
//! * A watch channel holds one value, so a slow stream never queues: it
//!   sees the latest event, several changes coalesced into one.
//! * A member has at most [`MAX_STREAMS_PER_MEMBER`] streams open.
//! * A member that leaves or is removed gets [`Push::Removed`] and its
//!   channel is dropped; when the coordinator unloads the member's offsets
//!   partition, [`Push::Unloaded`] (the stream ends with NOT_COORDINATOR).

use std::collections::HashMap;
use std::sync::Mutex;

use strom_group::Shard;
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;
use tokio::sync::watch;

/// Streams one member may hold open at once (a client reconnecting may
/// briefly hold two).
pub const MAX_STREAMS_PER_MEMBER: usize = 4;

/// What a stream learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Nothing yet (the channel's initial value).
    Idle,
    /// Heartbeat now. `seq` grows with each push so every push is a change.
    Heartbeat {
        /// Push counter of this member.
        seq: u64,
        /// The group epoch.
        group_epoch: i32,
        /// The target assignment's epoch.
        assignment_epoch: i32,
        /// The member's epoch.
        member_epoch: i32,
    },
    /// The member left or was removed.
    Removed,
    /// The coordinator unloaded the group's partition.
    Unloaded,
}

#[derive(Debug)]
struct Entry {
    partition: i32,
    tx: watch::Sender<Push>,
    seq: u64,
}

/// The open streams of the coordinator, by (group, member).
#[derive(Debug, Default)]
pub struct Pushes {
    members: Mutex<HashMap<(String, String), Entry>>,
}

impl Pushes {
    fn members(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Entry>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a stream for `member` of `group` on offsets partition
    /// `partition`, whose shard is `shard` (locked by the caller, so no
    /// decision runs meanwhile). UNKNOWN_MEMBER_ID if it is not a member;
    /// the stream starts with an event if the member should heartbeat
    /// already.
    pub fn subscribe(
        &self,
        shard: &Shard,
        partition: i32,
        group: &str,
        member: &str,
    ) -> Result<watch::Receiver<Push>, StromError> {
        let Some(g) = shard
            .group(group)
            .filter(|g| g.members.contains_key(member))
        else {
            return Err(StromError::new(
                ErrorCode::UnknownMemberId,
                format!("member {member:?} is not in group {group:?}"),
            ));
        };
        let mut members = self.members();
        let key = (group.to_owned(), member.to_owned());
        let entry = members.entry(key).or_insert_with(|| Entry {
            partition,
            tx: watch::Sender::new(Push::Idle),
            seq: 0,
        });
        if entry.tx.receiver_count() >= MAX_STREAMS_PER_MEMBER {
            return Err(StromError::new(
                ErrorCode::PolicyViolation,
                format!(
                    "member {member:?} of group {group:?} already has {MAX_STREAMS_PER_MEMBER} assignment streams open"
                ),
            ));
        }
        entry.partition = partition;
        let rx = entry.tx.subscribe();
        if strom_group::wake::members_to_wake(g).contains(member) {
            entry.seq += 1;
            let push = heartbeat(entry.seq, g, member);
            entry.tx.send_replace(push);
        }
        Ok(rx)
    }

    /// After a decision's records were replayed into `shard`: pushes a
    /// heartbeat to the members of `groups` that should heartbeat now,
    /// [`Push::Removed`] to those no longer members, and drops channels
    /// nobody listens to any more.
    pub fn after_replay<'a>(&self, shard: &Shard, groups: impl IntoIterator<Item = &'a str>) {
        if self.is_empty() {
            return;
        }
        for group in groups {
            self.push(shard, group, &shard.members_to_wake(group));
        }
    }

    /// After the cluster's topics changed: pushes a heartbeat to the
    /// members whose subscribed topics changed (their heartbeat bumps the
    /// group epoch).
    pub fn after_metadata(&self, shard: &Shard, topics: &strom_group::Topics) {
        if self.is_empty() {
            return;
        }
        for (group, woken) in shard.members_to_wake_for_metadata(topics) {
            self.push(shard, &group, &woken);
        }
    }

    /// Pushes a heartbeat to `woken` of `group`, [`Push::Removed`] to the
    /// group's channels whose member is gone; drops unheard channels.
    fn push(&self, shard: &Shard, group: &str, woken: &std::collections::BTreeSet<String>) {
        let g = shard.group(group);
        self.members().retain(|(gid, mid), entry| {
            if gid != group {
                return true;
            }
            let Some(g) = g.filter(|g| g.members.contains_key(mid)) else {
                entry.tx.send_replace(Push::Removed);
                return false;
            };
            if woken.contains(mid) {
                entry.seq += 1;
                entry.tx.send_replace(heartbeat(entry.seq, g, mid));
            }
            entry.tx.receiver_count() > 0
        });
    }

    /// The coordinator no longer hosts `partition`: its streams end.
    pub fn unloaded(&self, partition: i32) {
        self.members().retain(|_, entry| {
            if entry.partition == partition {
                entry.tx.send_replace(Push::Unloaded);
                false
            } else {
                true
            }
        });
    }

    /// Open channels (members with a stream), for tests and metrics.
    pub fn len(&self) -> usize {
        self.members().len()
    }

    /// Whether no stream is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn heartbeat(seq: u64, g: &strom_group::ConsumerGroup, member: &str) -> Push {
    Push::Heartbeat {
        seq,
        group_epoch: g.epoch,
        assignment_epoch: g.assignment_epoch,
        member_epoch: g.members.get(member).map_or(0, |m| m.current.member_epoch),
    }
}

#[cfg(test)]
#[path = "push_test.rs"]
mod tests;
