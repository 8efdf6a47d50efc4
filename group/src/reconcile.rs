//! How one member moves toward its target assignment (KIP-848's
//! reconciliation), as a pure function. The single-owner rule lives here:
//! a partition is added to a member only when no other member holds it
//! (assigned or pending revocation).

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::group::iter_assignment;
use crate::records::{Assignment, CurrentAssignment, MemberState};

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, p) in iter_assignment(a) {
        if !b.get(&t).is_some_and(|s| s.contains(&p)) {
            out.entry(t).or_default().insert(p);
        }
    }
    out
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    iter_assignment(a).any(|(t, p)| b.get(&t).is_some_and(|s| s.contains(&p)))
}

/// The member's next current assignment.
///
/// * `owned`: what the member reported owning in this heartbeat (`None`
///   when it did not report).
/// * `held_by_others`: every partition another member holds.
/// * `eager`: the group's assignor is eager: a member gives up everything
///   before it takes its next assignment.
///
/// Steps: a member in `UNREVOKED_PARTITIONS` stays there until it reports
/// owning none of its pending partitions. A member behind the target epoch
/// first revokes (everything when eager, else what is not in its target),
/// then moves to the target epoch. At the target epoch it keeps what is in
/// its target and adds what no one else holds; it is `STABLE` once it
/// holds its whole target, `UNRELEASED_PARTITIONS` until then.
pub fn reconcile(
    current: &CurrentAssignment,
    target: &Assignment,
    target_epoch: i32,
    eager: bool,
    owned: Option<&Assignment>,
    held_by_others: &BTreeSet<(Uuid, i32)>,
) -> CurrentAssignment {
    let mut c = current.clone();
    if !c.pending_revocation.is_empty() {
        match owned {
            Some(o) if !intersects(o, &c.pending_revocation) => c.pending_revocation.clear(),
            _ => return c,
        }
    }
    let behind = c.member_epoch < target_epoch;
    let to_revoke = if behind && eager {
        c.assigned.clone()
    } else {
        minus(&c.assigned, target)
    };
    if !to_revoke.is_empty() {
        c.assigned = minus(&c.assigned, &to_revoke);
        c.pending_revocation = to_revoke;
        c.state = Some(MemberState::UnrevokedPartitions);
        return c;
    }
    if behind {
        c.previous_member_epoch = c.member_epoch;
        c.member_epoch = target_epoch;
    }
    for (t, p) in iter_assignment(target) {
        if !held_by_others.contains(&(t, p)) {
            c.assigned.entry(t).or_default().insert(p);
        }
    }
    c.state = Some(if c.assigned == *target {
        MemberState::Stable
    } else {
        MemberState::UnreleasedPartitions
    });
    c
}

#[cfg(test)]
#[path = "reconcile_test.rs"]
mod tests;
