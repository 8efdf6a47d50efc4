//! The transaction checks, after what Jepsen found in Redpanda and
//! Bufstream: transactional producers (`t<n>`) write unique values to
//! several partitions of the transactional topic and commit or abort;
//! `read_committed` readers (`r<n>`) poll it from the start; after the run
//! `txn-final` reads it to its end (no transaction left open), then
//! records its `Ends`.
//!
//! | anomaly | meaning | fatal |
//! |---|---|---|
//! | `aborted-read` | a `read_committed` reader saw a value of an aborted transaction | yes |
//! | `torn-transaction` | the final read saw some but not all of a transaction's values | yes |
//! | `torn-read` | a reader saw part of a transaction and read past another of its writes without seeing it | yes |
//! | `txn-lost-write` | a committed transaction's value missing from the final read | yes |
//! | `txn-duplicate` | a transactional value at two offsets | yes |
//! | `unknown-value` | a reader saw a value no transaction wrote, or a corrupt payload | yes |
//!
//! G1c (cycles of write-read dependencies between transactions) needs
//! transactions that read; these write only, so it is checked on the
//! consume-transform-produce processors' transactions ([`super::ctp`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Anomaly, AnomalyKind, Stats};
use crate::history::{Body, Op, OpType, TxnWrite, Value};

/// The process that reads the transactional topic after the run.
pub const TXN_FINAL: &str = "txn-final";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Committed,
    Aborted,
    Unknown,
}

#[derive(Debug)]
struct Txn {
    index: u64,
    process: String,
    writes: Vec<TxnWrite>,
    outcome: Outcome,
}

/// Runs the transaction checks, when the history has transactions.
pub(super) fn check(history: &[Op], out: &mut Vec<Anomaly>, stats: &mut Stats) {
    let mut txns: Vec<Txn> = Vec::new();
    let mut open: HashMap<&str, usize> = HashMap::new();
    // value → (transaction, position in its writes).
    let mut of_value: HashMap<Value, usize> = HashMap::new();
    // reader → what it saw: values, and the highest offset per partition.
    let mut seen: BTreeMap<&str, (BTreeSet<Value>, BTreeMap<i32, i64>)> = BTreeMap::new();
    // value → positions it was read at.
    let mut positions: BTreeMap<Value, BTreeSet<(i32, i64)>> = BTreeMap::new();
    let mut reads: Vec<(u64, &str, i32, i64, Option<Value>)> = Vec::new();
    let mut final_done = false;

    for op in history {
        match (&op.body, op.ty) {
            (Body::Txn { writes, .. }, OpType::Invoke) => {
                open.insert(&op.process, txns.len());
                for w in writes {
                    of_value.insert(w.value, txns.len());
                }
                txns.push(Txn {
                    index: op.index,
                    process: op.process.clone(),
                    writes: writes.clone(),
                    outcome: Outcome::Unknown,
                });
            }
            (Body::Txn { writes, .. }, ty) => {
                let Some(t) = open.remove(op.process.as_str()) else {
                    continue;
                };
                let txn = &mut txns[t];
                txn.outcome = match ty {
                    OpType::Ok => Outcome::Committed,
                    OpType::Fail => Outcome::Aborted,
                    _ => Outcome::Unknown,
                };
                // The completion carries the acknowledged offsets.
                for w in writes {
                    if let Some(mine) = txn.writes.iter_mut().find(|m| m.value == w.value) {
                        mine.offset = mine.offset.or(w.offset);
                    }
                }
            }
            (Body::TxnPoll { records }, _) => {
                let reader = seen.entry(op.process.as_str()).or_default();
                for r in records {
                    let max = reader.1.entry(r.partition).or_insert(r.offset);
                    *max = (*max).max(r.offset);
                    if let Some(v) = r.value {
                        reader.0.insert(v);
                        positions
                            .entry(v)
                            .or_default()
                            .insert((r.partition, r.offset));
                    }
                    reads.push((
                        op.index,
                        op.process.as_str(),
                        r.partition,
                        r.offset,
                        r.value,
                    ));
                }
            }
            (Body::Ends { .. }, _) if op.process == TXN_FINAL => final_done = true,
            _ => {}
        }
    }
    if txns.is_empty() && reads.is_empty() {
        return;
    }
    for t in &txns {
        match t.outcome {
            Outcome::Committed => stats.txns_committed += 1,
            Outcome::Aborted => stats.txns_aborted += 1,
            Outcome::Unknown => stats.txns_indeterminate += 1,
        }
    }
    stats.txn_records_read = reads.len();

    // Unknown values and aborted reads, once per (reader, value).
    let mut reported: BTreeSet<(&str, Option<Value>)> = BTreeSet::new();
    for &(index, reader, p, o, v) in &reads {
        let txn = v.and_then(|v| of_value.get(&v)).map(|&t| &txns[t]);
        let (kind, detail) = match (v, txn) {
            (_, None) => (
                AnomalyKind::UnknownValue,
                format!(
                    "{reader} read {} at {p}:{o} (op {index}), written by no transaction",
                    v.map_or_else(|| "a corrupt payload".to_owned(), |v| v.to_string())
                ),
            ),
            (Some(v), Some(t)) if t.outcome == Outcome::Aborted => (
                AnomalyKind::AbortedRead,
                format!(
                    "{reader} read {v} at {p}:{o} (op {index}), written by the transaction of \
                     {} (op {}) that was aborted",
                    t.process, t.index
                ),
            ),
            _ => continue,
        };
        if reported.insert((reader, v)) {
            out.push(Anomaly {
                kind,
                partition: Some(p),
                fatal: true,
                detail,
            });
        }
    }

    for (v, at) in &positions {
        if at.len() > 1 {
            stats.txn_duplicates += 1;
            out.push(Anomaly {
                kind: AnomalyKind::TxnDuplicate,
                partition: at.first().map(|a| a.0),
                fatal: true,
                detail: format!("value {v} read at {} positions: {at:?}", at.len()),
            });
        }
    }

    // Where each value ended up: the final read, else its acknowledgement.
    let final_reads = seen.get(TXN_FINAL);
    let position_of = |w: &TxnWrite| -> Option<(i32, i64)> {
        positions
            .get(&w.value)
            .and_then(|a| a.first().copied())
            .or(w.offset.map(|o| (w.partition, o)))
    };

    if final_done {
        let final_values = final_reads.map(|r| &r.0);
        let saw = |v: Value| final_values.is_some_and(|s| s.contains(&v));
        for t in &txns {
            let visible: Vec<Value> = t
                .writes
                .iter()
                .map(|w| w.value)
                .filter(|v| saw(*v))
                .collect();
            let missing: Vec<Value> = t
                .writes
                .iter()
                .map(|w| w.value)
                .filter(|v| !saw(*v))
                .collect();
            match t.outcome {
                Outcome::Committed if !missing.is_empty() => out.push(Anomaly {
                    kind: AnomalyKind::TxnLostWrite,
                    partition: None,
                    fatal: true,
                    detail: format!(
                        "the committed transaction of {} (op {}) wrote {missing:?}, which the \
                         final read did not see (it saw {visible:?})",
                        t.process, t.index
                    ),
                }),
                Outcome::Unknown if !visible.is_empty() && !missing.is_empty() => {
                    out.push(Anomaly {
                        kind: AnomalyKind::TornTransaction,
                        partition: None,
                        fatal: true,
                        detail: format!(
                            "the final read saw {visible:?} of the transaction of {} (op {}) \
                             but not {missing:?}",
                            t.process, t.index
                        ),
                    })
                }
                _ => {}
            }
        }
    }

    // Torn reads: a reader that saw part of a transaction read past
    // another of its writes without seeing it.
    for (reader, (values, max)) in &seen {
        let mut torn: BTreeSet<usize> = BTreeSet::new();
        for v in values {
            let Some(&t) = of_value.get(v) else { continue };
            if torn.contains(&t) {
                continue;
            }
            for w in &txns[t].writes {
                if values.contains(&w.value) {
                    continue;
                }
                let Some((p, o)) = position_of(w) else {
                    continue;
                };
                if max.get(&p).is_some_and(|m| *m > o) {
                    torn.insert(t);
                    out.push(Anomaly {
                        kind: AnomalyKind::TornRead,
                        partition: Some(p),
                        fatal: true,
                        detail: format!(
                            "{reader} saw {v} of the transaction of {} (op {}) and read \
                             partition {p} up to {} without its value {} at offset {o}",
                            txns[t].process, txns[t].index, max[&p], w.value
                        ),
                    });
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
