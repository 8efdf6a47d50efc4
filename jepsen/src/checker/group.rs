//! The consumer-group checks: members of one group (`g<n>`) poll the
//! records topic, commit what they processed and read the committed
//! offsets back; after the run `group-final` reads them once more.
//!
//! | anomaly | meaning | fatal |
//! |---|---|---|
//! | `nonmonotonic-commit` | a committed offset read back (or acknowledged) below one acknowledged before that read (or commit) started | yes |
//! | `commit-above-hw` | an acknowledged or read-back committed offset above the partition's final high watermark | yes |
//! | `commit-lost` | a member given a partition started below a commit acknowledged before it was given it (the coordinator forgot the commit) | yes |
//! | `group-skip` | a record below the group's final committed offset that no member was ever given | yes |
//! | `double-owner` | a partition held by two members at once ([`owners`]: certain cases only) | when certain |
//! | `unowned-poll` | a member returned records of a partition nobody held | yes |
//! | `group-duplicate` | a record given to members more than once (rebalances, crashes before a commit) | no |

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Anomaly, AnomalyKind, Stats};
use crate::history::{Body, Op, OpType};

/// The process that reads the committed offsets after the run.
pub const GROUP_FINAL: &str = "group-final";

/// The process of the records topic's final read, whose `Ends` are the
/// final high watermarks.
const FINAL: &str = "final";

/// Per partition, the highest acknowledged committed offset and the op
/// that acknowledged it.
type Acked = BTreeMap<i32, (i64, u64)>;

/// Runs the group checks, when the history has group operations.
pub(super) fn check(history: &[Op], out: &mut Vec<Anomaly>, stats: &mut Stats) {
    let mut acked: Acked = BTreeMap::new();
    // process → (invoke index, acked at the invocation).
    let mut pending: HashMap<&str, (u64, Acked)> = HashMap::new();
    let mut ends: Option<BTreeMap<i32, i64>> = None;
    // (partition, offset) → how often members were given it.
    let mut delivered: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    // Offsets known to hold a record: every read of the records topic.
    let mut existing: BTreeSet<(i32, i64)> = BTreeSet::new();
    let mut final_committed: Option<(u64, BTreeMap<i32, i64>)> = None;
    let mut last_committed: Option<(u64, BTreeMap<i32, i64>)> = None;
    // Every committed offset seen (acknowledged or read back), for the
    // high-watermark check: (op index, partition, offset).
    let mut committed_seen: Vec<(u64, i32, i64)> = Vec::new();
    let mut any = false;
    // (member, partition) → the acknowledged commit when it was given it,
    // until its first record there.
    let mut starting: HashMap<(&str, i32), Option<(i64, u64)>> = HashMap::new();

    for op in history {
        match (&op.body, op.ty) {
            (Body::GroupPoll { records }, _) => {
                any = true;
                stats.group_polls += 1;
                stats.group_records += records.len();
                for r in records {
                    *delivered.entry((r.partition, r.offset)).or_default() += 1;
                    existing.insert((r.partition, r.offset));
                    if let Some(Some((c, by))) =
                        starting.remove(&(op.process.as_str(), r.partition))
                        && r.offset < c
                    {
                        out.push(Anomaly {
                            kind: AnomalyKind::CommitLost,
                            partition: Some(r.partition),
                            fatal: true,
                            detail: format!(
                                "partition {}: {} started at {} (op {}) though the commit of \
                                 {c} was acknowledged (op {by}) before it was given the partition",
                                r.partition, op.process, r.offset, op.index
                            ),
                        });
                    }
                }
            }
            (Body::Rebalance { event, partitions }, _) => {
                any = true;
                for &p in partitions {
                    if event == "assigned" {
                        starting.insert((op.process.as_str(), p), acked.get(&p).copied());
                    } else {
                        starting.remove(&(op.process.as_str(), p));
                    }
                }
            }
            (Body::Poll { records, .. }, OpType::Ok) => {
                existing.extend(records.iter().map(|r| (r.partition, r.offset)));
            }
            (Body::Ends { offsets, .. }, _) if op.process == FINAL => {
                ends = Some(offsets.iter().copied().collect());
            }
            (Body::Commit { .. } | Body::Committed { .. }, OpType::Invoke) => {
                any = true;
                pending.insert(&op.process, (op.index, acked.clone()));
            }
            (Body::Commit { offsets, .. }, OpType::Ok) => {
                stats.group_commits_ok += 1;
                let before = pending.remove(op.process.as_str());
                for &(p, o) in offsets {
                    committed_seen.push((op.index, p, o));
                    if let Some((inv, before)) = &before
                        && let Some(&(prev, by)) = before.get(&p)
                        && o < prev
                    {
                        out.push(Anomaly {
                            kind: AnomalyKind::NonmonotonicCommit,
                            partition: Some(p),
                            fatal: true,
                            detail: format!(
                                "partition {p}: commit of {o} by {} (ops {inv}..{}) acknowledged \
                                 after the commit of {prev} (op {by}) was: the group went back",
                                op.process, op.index
                            ),
                        });
                    }
                    let e = acked.entry(p).or_insert((o, op.index));
                    if o >= e.0 {
                        *e = (o, op.index);
                    }
                }
            }
            (Body::Committed { offsets, .. }, OpType::Ok) => {
                let before = pending.remove(op.process.as_str());
                let mut read = BTreeMap::new();
                for &(p, o) in offsets {
                    let Some(o) = o else { continue };
                    read.insert(p, o);
                    committed_seen.push((op.index, p, o));
                }
                if let Some((inv, before)) = &before {
                    for (&p, &(prev, by)) in before {
                        let got = read.get(&p).copied();
                        if got.is_none_or(|g| g < prev) {
                            out.push(Anomaly {
                                kind: AnomalyKind::NonmonotonicCommit,
                                partition: Some(p),
                                fatal: true,
                                detail: format!(
                                    "partition {p}: {} read back committed offset {} (ops \
                                     {inv}..{}) after the commit of {prev} was acknowledged \
                                     (op {by})",
                                    op.process,
                                    got.map_or_else(|| "none".to_owned(), |g| g.to_string()),
                                    op.index
                                ),
                            });
                        }
                    }
                }
                if op.process == GROUP_FINAL {
                    final_committed = Some((op.index, read.clone()));
                }
                last_committed = Some((op.index, read));
            }
            (Body::Commit { .. } | Body::Committed { .. }, _) => {
                pending.remove(op.process.as_str());
            }
            _ => {}
        }
    }
    if !any {
        return;
    }
    owners::check(history, out);

    if let Some(ends) = &ends {
        for &(index, p, o) in &committed_seen {
            let hw = ends.get(&p).copied().unwrap_or(0);
            if o > hw {
                out.push(Anomaly {
                    kind: AnomalyKind::CommitAboveHw,
                    partition: Some(p),
                    fatal: true,
                    detail: format!(
                        "partition {p}: committed offset {o} (op {index}) above the final high \
                         watermark {hw}"
                    ),
                });
            }
        }
    }

    // Every record below the final committed offset went to some member.
    if let Some((index, committed)) = final_committed.or(last_committed) {
        for (&p, &c) in &committed {
            let skipped: Vec<i64> = existing
                .range((p, i64::MIN)..(p, c))
                .filter(|k| !delivered.contains_key(k))
                .map(|k| k.1)
                .collect();
            if !skipped.is_empty() {
                out.push(Anomaly {
                    kind: AnomalyKind::GroupSkip,
                    partition: Some(p),
                    fatal: true,
                    detail: format!(
                        "partition {p}: {} record(s) below the committed offset {c} (op {index}) \
                         were never given to a member: offsets {}",
                        skipped.len(),
                        super::ranges(&skipped)
                    ),
                });
            }
        }
    }

    let mut by_partition: BTreeMap<i32, (usize, usize)> = BTreeMap::new();
    for (&(p, _), &n) in &delivered {
        if n > 1 {
            stats.group_duplicates += 1;
            let e = by_partition.entry(p).or_default();
            e.0 += 1;
            e.1 += n - 1;
        }
    }
    for (p, (records, extra)) in by_partition {
        out.push(Anomaly {
            kind: AnomalyKind::GroupDuplicate,
            partition: Some(p),
            fatal: false,
            detail: format!(
                "partition {p}: {records} record(s) given to members more than once \
                 ({extra} extra deliveries)"
            ),
        });
    }
}

mod owners;
#[cfg(test)]
mod owners_tests;
#[cfg(test)]
mod tests;
