//! The single-owner check: a partition is never owned by two members of
//! the group at once.
//!
//! The history shows ownership from the members' side only: a member
//! *incarnation* (a consumer, from its `joined` mark to its `left` or
//! `crashed` mark) holds a partition from its `assigned` event to its
//! `revoked` or `lost` event, or to the incarnation's end. The
//! coordinator's side is not recorded, and a member's ownership may end
//! there before the member learns it (its session expired while it was cut
//! off: it records `lost` later, or `revoked` after a long callback; a
//! crashed member is removed whenever its session expires). So an overlap
//! of two members' recorded ownerships is not by itself a violation. What
//! is certain:
//!
//! * `double-owner` (fatal), a poll: a member returned records of a
//!   partition it did not hold (never assigned in this incarnation, or
//!   after it recorded revoking or losing it) while another member held
//!   it. The client stops returning a partition's records before it
//!   records the revocation; nothing excuses this.
//! * `unowned-poll` (fatal): the same with no other holder.
//! * `double-owner` (fatal), an overlap: member B's ownership of `p`
//!   starts while member A's is open, and *both* made a member commit
//!   (`as_member`, acknowledged) invoked after B's `assigned` and
//!   acknowledged before the end of their own ownership. An acknowledged
//!   member commit proves the coordinator held the member as current at
//!   some instant of the call. A member is current without a break from
//!   its grant of `p` on (a removal shows as `lost` before any rejoin), and
//!   it reports releasing `p` only after recording `revoked`. So at the
//!   later of the two grants the coordinator gave `p` to one member while
//!   the other, current and not having released it, still held it.
//! * `double-owner` (not fatal): any other overlap of recorded
//!   ownerships (one side may have been removed by session expiry), and
//!   every overlap involving a member whose incarnation has no `joined`
//!   mark (histories from before the marks).
//!
//! Time is the history's order: indexes are taken under one lock with the
//! real-time order of the recordings.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::super::{Anomaly, AnomalyKind};
use crate::history::{Body, Op, OpType};

/// Index standing for "not ended within the history".
const OPEN: u64 = u64::MAX;

/// One consumer of one member process.
#[derive(Debug)]
struct Incarnation<'a> {
    process: &'a str,
    /// Began with a `joined` mark: its start is known.
    marked: bool,
    /// Acknowledged member commits: (invoke index, ok index).
    commits: Vec<(u64, u64)>,
}

/// One incarnation's hold of one partition, as it recorded it.
#[derive(Debug, Clone, Copy)]
struct Hold {
    incarnation: usize,
    /// The `assigned` event's index.
    start: u64,
    /// The index of the event that ended it, [`OPEN`] if none.
    end: u64,
    /// What ended it.
    how: &'static str,
}

#[derive(Debug, Default)]
struct Owners<'a> {
    incarnations: Vec<Incarnation<'a>>,
    /// process → its current incarnation.
    current: HashMap<&'a str, usize>,
    /// partition → every hold, in start order.
    holds: BTreeMap<i32, Vec<Hold>>,
    /// (incarnation, partition) → index in `holds[partition]` while open.
    open: HashMap<(usize, i32), usize>,
    /// process → the invoke index of its commit in flight.
    invoked: HashMap<&'a str, u64>,
}

impl<'a> Owners<'a> {
    fn incarnation(&mut self, process: &'a str) -> usize {
        if let Some(&i) = self.current.get(process) {
            return i;
        }
        self.begin(process, false)
    }

    fn begin(&mut self, process: &'a str, marked: bool) -> usize {
        self.incarnations.push(Incarnation {
            process,
            marked,
            commits: Vec::new(),
        });
        let i = self.incarnations.len() - 1;
        self.current.insert(process, i);
        i
    }

    fn release(&mut self, incarnation: usize, partition: i32, at: u64, how: &'static str) {
        if let Some(k) = self.open.remove(&(incarnation, partition))
            && let Some(h) = self
                .holds
                .get_mut(&partition)
                .and_then(|list| list.get_mut(k))
        {
            h.end = at;
            h.how = how;
        }
    }

    /// Ends the incarnation's every open hold at `at`.
    fn end(&mut self, incarnation: usize, at: u64, how: &'static str) {
        let held: Vec<i32> = self
            .open
            .keys()
            .filter(|(i, _)| *i == incarnation)
            .map(|(_, p)| *p)
            .collect();
        for p in held {
            self.release(incarnation, p, at, how);
        }
    }

    /// The incarnations other than `me` holding `partition` now.
    fn holders(&self, partition: i32, me: usize) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .open
            .keys()
            .filter(|(i, p)| *p == partition && *i != me)
            .map(|(i, _)| *i)
            .collect();
        out.sort_unstable();
        out
    }

    fn name(&self, incarnation: usize) -> &str {
        self.incarnations[incarnation].process
    }

    /// A member commit of `incarnation` invoked after `after` and
    /// acknowledged before `before`.
    fn commit_within(&self, incarnation: usize, after: u64, before: u64) -> Option<(u64, u64)> {
        self.incarnations[incarnation]
            .commits
            .iter()
            .copied()
            .find(|&(inv, ok)| inv > after && ok < before)
    }
}

fn until(end: u64, how: &str) -> String {
    if end == OPEN {
        "still held at the end".to_owned()
    } else {
        format!("until op {end}, {how}")
    }
}

/// Runs the single-owner check over the group members' events.
pub(super) fn check(history: &[Op], out: &mut Vec<Anomaly>) {
    let mut o = Owners::default();
    for op in history {
        let process = op.process.as_str();
        match (&op.body, op.ty) {
            (Body::Rebalance { event, partitions }, _) => match event.as_str() {
                "joined" => {
                    if let Some(&old) = o.current.get(process) {
                        o.end(old, op.index, "rejoined without an end mark");
                    }
                    o.begin(process, true);
                }
                "left" | "crashed" => {
                    let i = o.incarnation(process);
                    o.end(
                        i,
                        op.index,
                        if event == "left" { "left" } else { "crashed" },
                    );
                    o.current.remove(process);
                }
                "assigned" => {
                    let i = o.incarnation(process);
                    for &p in partitions {
                        if o.open.contains_key(&(i, p)) {
                            continue;
                        }
                        let list = o.holds.entry(p).or_default();
                        list.push(Hold {
                            incarnation: i,
                            start: op.index,
                            end: OPEN,
                            how: "",
                        });
                        o.open.insert((i, p), list.len() - 1);
                    }
                }
                "revoked" | "lost" => {
                    let i = o.incarnation(process);
                    let how = if event == "revoked" {
                        "revoked"
                    } else {
                        "lost"
                    };
                    for &p in partitions {
                        o.release(i, p, op.index, how);
                    }
                }
                _ => {}
            },
            (Body::GroupPoll { records }, _) => {
                let i = o.incarnation(process);
                if !o.incarnations[i].marked {
                    continue;
                }
                let polled: BTreeSet<i32> = records.iter().map(|r| r.partition).collect();
                for p in polled {
                    if o.open.contains_key(&(i, p)) {
                        continue;
                    }
                    let others = o.holders(p, i);
                    let (kind, whom) = if others.is_empty() {
                        (AnomalyKind::UnownedPoll, "nobody held it".to_owned())
                    } else {
                        let names: Vec<&str> = others.iter().map(|&h| o.name(h)).collect();
                        (
                            AnomalyKind::DoubleOwner,
                            format!("{} held it", names.join(", ")),
                        )
                    };
                    out.push(Anomaly {
                        kind,
                        partition: Some(p),
                        fatal: true,
                        detail: format!(
                            "partition {p}: {process} returned its records (op {}) without \
                             holding it; {whom}",
                            op.index
                        ),
                    });
                }
            }
            (Body::Commit { .. }, OpType::Invoke) => {
                o.invoked.insert(process, op.index);
            }
            (Body::Commit { as_member, .. }, ty) => {
                let inv = o.invoked.remove(process);
                if ty == OpType::Ok
                    && *as_member
                    && let Some(inv) = inv
                {
                    let i = o.incarnation(process);
                    o.incarnations[i].commits.push((inv, op.index));
                }
            }
            _ => {}
        }
    }

    for (&p, holds) in &o.holds {
        for (k, a) in holds.iter().enumerate() {
            for b in &holds[k + 1..] {
                if b.incarnation == a.incarnation || b.start > a.end {
                    continue;
                }
                let (ia, ib) = (
                    &o.incarnations[a.incarnation],
                    &o.incarnations[b.incarnation],
                );
                let proof = (ia.marked && ib.marked)
                    .then(|| {
                        let ca = o.commit_within(a.incarnation, b.start, a.end)?;
                        let cb = o.commit_within(b.incarnation, b.start, b.end)?;
                        Some((ca, cb))
                    })
                    .flatten();
                let (an, bn) = (ia.process, ib.process);
                let detail = match proof {
                    Some((ca, cb)) => format!(
                        "partition {p}: {bn} was given it (op {}) while {an} held it (since op \
                         {}, {}); both committed as current members inside the overlap ({an}: \
                         ops {}..{}, {bn}: ops {}..{}): the coordinator gave it to two members \
                         at once",
                        b.start,
                        a.start,
                        until(a.end, a.how),
                        ca.0,
                        ca.1,
                        cb.0,
                        cb.1
                    ),
                    None => format!(
                        "partition {p}: {bn} was given it (op {}) while {an} still recorded \
                         holding it (since op {}, {}); indeterminate: no member commit of both \
                         inside the overlap shows that neither had been removed",
                        b.start,
                        a.start,
                        until(a.end, a.how)
                    ),
                };
                out.push(Anomaly {
                    kind: AnomalyKind::DoubleOwner,
                    partition: Some(p),
                    fatal: proof.is_some(),
                    detail,
                });
            }
        }
    }
}
