//! Which members should heartbeat now: the rule behind the pushed
//! assignment stream (`ConsumerGroupAssignmentStream`). After a decision's
//! records are replayed, the host asks [`members_to_wake`] for each group
//! the records touched and pushes an event to those members, which then
//! heartbeat at once instead of waiting for their interval.
//!
//! A member is woken when a heartbeat now would move it:
//! * the group epoch is ahead of the target assignment (a member left or
//!   was removed; the next heartbeat computes the new target);
//! * its epoch is behind the target assignment's (it must revoke, or take
//!   the new epoch);
//! * it owns a partition outside its target (it must revoke it);
//! * a partition of its target that it does not own is free (its old
//!   owner revoked it or was removed): it can take it now.
//!
//! * the subscribed topics' metadata changed (a topic created or deleted,
//!   partitions added, a new topic matching a regex:
//!   [`members_to_wake_for_metadata`]): the next heartbeat bumps the group
//!   epoch, and the target computed then wakes the others in turn.
//!
//! A member still revoking (`pending_revocation`) is not woken: its last
//! answer told it what to give up, and it heartbeats by itself once done.
//! A static member that left for a restart (epoch -2) has nobody to wake.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::group::{ConsumerGroup, iter_assignment};
use crate::records::{Record, RecordKey};
use crate::topics::Topics;

/// The members of `group` that should heartbeat now (see the module doc).
pub fn members_to_wake(group: &ConsumerGroup) -> BTreeSet<String> {
    let assigning = group.epoch > group.assignment_epoch;
    let mut holders: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    for m in group.members.values() {
        for tp in m.held() {
            *holders.entry(tp).or_default() += 1;
        }
    }
    let empty = BTreeMap::new();
    group
        .members
        .iter()
        .filter(|(_, m)| !m.is_static_left() && m.current.pending_revocation.is_empty())
        .filter(|(id, m)| {
            if assigning || m.current.member_epoch < group.assignment_epoch {
                return true;
            }
            let target = group.target.get(*id).unwrap_or(&empty);
            let owns =
                |(t, p): &(Uuid, i32)| m.current.assigned.get(t).is_some_and(|s| s.contains(p));
            let in_target = |(t, p): &(Uuid, i32)| target.get(t).is_some_and(|s| s.contains(p));
            iter_assignment(&m.current.assigned).any(|tp| !in_target(&tp))
                || iter_assignment(target).any(|tp| !owns(&tp) && !holders.contains_key(&tp))
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// Every live member of `group` when its subscribed topics' metadata in
/// `topics` differs from what its epoch was computed for; none otherwise.
pub fn members_to_wake_for_metadata(group: &ConsumerGroup, topics: &Topics) -> BTreeSet<String> {
    if group.members.is_empty() || group.subscribed_metadata_hash(topics) == group.metadata_hash {
        return BTreeSet::new();
    }
    group
        .members
        .iter()
        .filter(|(_, m)| !m.is_static_left())
        .map(|(id, _)| id.clone())
        .collect()
}

/// The groups whose membership or assignment `records` change (offset
/// commits change neither).
pub fn groups_changed(records: &[Record]) -> BTreeSet<&str> {
    records
        .iter()
        .filter(|r| !matches!(r.key, RecordKey::OffsetCommit { .. }))
        .map(|r| r.key.group())
        .collect()
}

#[cfg(test)]
#[path = "wake_test.rs"]
mod tests;
