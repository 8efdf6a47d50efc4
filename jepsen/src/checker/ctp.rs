//! The consume-transform-produce checks: processors (`x<n>`) of one
//! consumer group poll the input topic with `read_committed` inside their
//! transactions, write an output record per input and fresh values to the
//! input topic, and commit the input offsets in the same transaction;
//! after the run `ctp-final` reads both topics to their ends and the
//! group's committed offsets ([`Body::CtpFinal`]).
//!
//! A transaction counts as committed when its commit was acknowledged, or
//! when its outcome is unknown and the final read holds its writes.
//!
//! | anomaly | meaning | fatal |
//! |---|---|---|
//! | `g1c` | a cycle in the write-read dependency graph of committed transactions (T2 read a value T1 wrote: T1 → T2), a transaction reading its own write included: one of them read a write before it was committed | yes |
//! | `aborted-read` (G1a) | a processor or the final read saw a value of an aborted transaction (or of one of unknown outcome that the final read does not hold) | yes |
//! | `ctp-duplicate` | an input processed into committed output more than once, or processed into committed output although the group's final committed offset is at or below it (it would be processed again) | yes |
//! | `ctp-lost` | an input below the group's final committed offset that no committed output was made from | yes |
//! | `txn-lost-write` | a write of an acknowledged transaction missing from the final read | yes |
//! | `torn-transaction` | the final read holds some but not all writes of a transaction of unknown outcome | yes |
//! | `txn-duplicate` | a value at two offsets | yes |
//! | `unknown-value` | a value no processor wrote, or a corrupt payload | yes |
//!
//! Only write-read edges make the graph: write-write orders (the order of
//! two transactions' records in one partition) are not promised by
//! Kafka's transactions, whose records are appended before they commit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use super::{Anomaly, AnomalyKind, Stats};
use crate::history::{Body, CtpOutput, Op, OpType, Polled, TxnWrite, Value};

/// The process of the final read.
pub const CTP_FINAL: &str = "ctp-final";

/// Most steps of a cycle shown in a report.
const SHOWN_STEPS: usize = 8;

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
    outcome: Outcome,
    reads: Vec<Polled>,
    outputs: Vec<CtpOutput>,
    inputs: Vec<TxnWrite>,
}

impl Txn {
    fn name(&self) -> String {
        format!("{} (op {})", self.process, self.index)
    }
}

/// Which topic a value was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Topic {
    In,
    Out,
}

impl Topic {
    fn name(self) -> &'static str {
        match self {
            Topic::In => "in",
            Topic::Out => "out",
        }
    }
}

/// Everything the history says about the processors.
#[derive(Debug, Default)]
struct Gathered {
    txns: Vec<Txn>,
    /// value → (writing transaction, topic).
    writer: HashMap<Value, (usize, Topic)>,
    /// The final read of each topic, in order.
    final_in: Vec<Polled>,
    final_out: Vec<Polled>,
    /// The group's final committed offsets, once the final read is done.
    committed: Option<BTreeMap<i32, i64>>,
}

fn gather(history: &[Op]) -> Gathered {
    let mut g = Gathered::default();
    let mut open: HashMap<&str, usize> = HashMap::new();
    for op in history {
        match (&op.body, op.ty) {
            (Body::CtpTxn { .. }, OpType::Invoke) => {
                open.insert(&op.process, g.txns.len());
                g.txns.push(Txn {
                    index: op.index,
                    process: op.process.clone(),
                    outcome: Outcome::Unknown,
                    reads: Vec::new(),
                    outputs: Vec::new(),
                    inputs: Vec::new(),
                });
            }
            (
                Body::CtpTxn {
                    reads,
                    outputs,
                    inputs,
                    ..
                },
                ty,
            ) => {
                let Some(t) = open.remove(op.process.as_str()) else {
                    continue;
                };
                let txn = &mut g.txns[t];
                txn.outcome = match ty {
                    OpType::Ok => Outcome::Committed,
                    OpType::Fail => Outcome::Aborted,
                    _ => Outcome::Unknown,
                };
                txn.reads = reads.clone();
                txn.outputs = outputs.clone();
                txn.inputs = inputs.clone();
                for o in outputs {
                    g.writer.insert(o.value, (t, Topic::Out));
                }
                for w in inputs {
                    g.writer.insert(w.value, (t, Topic::In));
                }
            }
            (Body::CtpRead { topic, records }, _) if op.process == CTP_FINAL => {
                match topic.as_str() {
                    "in" => g.final_in.extend_from_slice(records),
                    _ => g.final_out.extend_from_slice(records),
                }
            }
            (Body::CtpFinal { committed }, _) if op.process == CTP_FINAL => {
                g.committed = Some(committed.iter().copied().collect());
            }
            _ => {}
        }
    }
    g
}

/// Runs the consume-transform-produce checks, when the history has them.
pub(super) fn check(history: &[Op], out: &mut Vec<Anomaly>, stats: &mut Stats) {
    let g = gather(history);
    if g.txns.is_empty() && g.final_in.is_empty() && g.final_out.is_empty() {
        return;
    }
    for t in &g.txns {
        match t.outcome {
            Outcome::Committed => stats.ctp_txns_committed += 1,
            Outcome::Aborted => stats.ctp_txns_aborted += 1,
            Outcome::Unknown => stats.ctp_txns_indeterminate += 1,
        }
    }
    let done = g.committed.is_some();
    let final_values: HashSet<(Topic, Value)> = g
        .final_in
        .iter()
        .filter_map(|r| r.value.map(|v| (Topic::In, v)))
        .chain(
            g.final_out
                .iter()
                .filter_map(|r| r.value.map(|v| (Topic::Out, v))),
        )
        .collect();
    let writes = |t: &Txn| -> Vec<(Topic, Value)> {
        t.inputs
            .iter()
            .map(|w| (Topic::In, w.value))
            .chain(t.outputs.iter().map(|o| (Topic::Out, o.value)))
            .collect()
    };
    // Committed: acknowledged, or unknown and visible after the run.
    let committed: Vec<bool> = g
        .txns
        .iter()
        .map(|t| match t.outcome {
            Outcome::Committed => true,
            Outcome::Aborted => false,
            Outcome::Unknown => done && writes(t).iter().any(|w| final_values.contains(w)),
        })
        .collect();
    // Never committed: aborted, or unknown and invisible after the run.
    let never = |t: usize| match g.txns[t].outcome {
        Outcome::Aborted => true,
        Outcome::Unknown => done && !committed[t],
        Outcome::Committed => false,
    };

    // Every read: (reader, op, topic, record).
    let mut reads: Vec<(String, Topic, Polled)> = Vec::new();
    for t in &g.txns {
        for r in &t.reads {
            reads.push((t.name(), Topic::In, *r));
        }
    }
    for r in &g.final_in {
        reads.push((CTP_FINAL.to_owned(), Topic::In, *r));
    }
    for r in &g.final_out {
        reads.push((CTP_FINAL.to_owned(), Topic::Out, *r));
    }

    // Unknown values and aborted reads, once per (reader, value).
    let mut reported: BTreeSet<(String, Option<Value>)> = BTreeSet::new();
    let mut positions: BTreeMap<(Topic, Value), BTreeSet<(i32, i64)>> = BTreeMap::new();
    for (reader, topic, r) in &reads {
        if let Some(v) = r.value {
            positions
                .entry((*topic, v))
                .or_default()
                .insert((r.partition, r.offset));
        }
        let writer = r
            .value
            .and_then(|v| g.writer.get(&v))
            .filter(|(_, t)| t == topic);
        let (kind, detail) = match (r.value, writer) {
            (_, None) => (
                AnomalyKind::UnknownValue,
                format!(
                    "{reader} read {} at {}:{}:{}, written by no processor",
                    r.value
                        .map_or_else(|| "a corrupt payload".to_owned(), |v| v.to_string()),
                    topic.name(),
                    r.partition,
                    r.offset
                ),
            ),
            (Some(v), Some(&(w, _))) if never(w) => (
                AnomalyKind::AbortedRead,
                format!(
                    "G1a: {reader} read {v} at {}:{}:{}, written by the transaction of {}, \
                     which {}",
                    topic.name(),
                    r.partition,
                    r.offset,
                    g.txns[w].name(),
                    if g.txns[w].outcome == Outcome::Aborted {
                        "was aborted"
                    } else {
                        "ended unknown and the final read does not hold"
                    }
                ),
            ),
            _ => continue,
        };
        if reported.insert((reader.clone(), r.value)) {
            out.push(Anomaly {
                kind,
                partition: Some(r.partition),
                fatal: true,
                detail,
            });
        }
    }
    for ((topic, v), at) in &positions {
        if at.len() > 1 {
            stats.txn_duplicates += 1;
            out.push(Anomaly {
                kind: AnomalyKind::TxnDuplicate,
                partition: at.first().map(|a| a.0),
                fatal: true,
                detail: format!(
                    "value {v} read at {} positions of the {} topic: {at:?}",
                    at.len(),
                    topic.name()
                ),
            });
        }
    }

    if done {
        for (t, txn) in g.txns.iter().enumerate() {
            let (visible, missing): (Vec<_>, Vec<_>) = writes(txn)
                .into_iter()
                .partition(|w| final_values.contains(w));
            let show = |ws: &[(Topic, Value)]| -> String {
                let list: Vec<String> = ws
                    .iter()
                    .map(|(topic, v)| format!("{}:{v}", topic.name()))
                    .collect();
                format!("[{}]", list.join(", "))
            };
            match txn.outcome {
                Outcome::Committed if !missing.is_empty() => out.push(Anomaly {
                    kind: AnomalyKind::TxnLostWrite,
                    partition: None,
                    fatal: true,
                    detail: format!(
                        "the committed transaction of {} wrote {}, which the final read did \
                         not see (it saw {})",
                        txn.name(),
                        show(&missing),
                        show(&visible)
                    ),
                }),
                Outcome::Unknown if committed[t] && !missing.is_empty() => out.push(Anomaly {
                    kind: AnomalyKind::TornTransaction,
                    partition: None,
                    fatal: true,
                    detail: format!(
                        "the final read saw {} of the transaction of {} but not {}",
                        show(&visible),
                        txn.name(),
                        show(&missing)
                    ),
                }),
                _ => {}
            }
        }
    }

    g1c(&g, &committed, out);
    exactly_once(&g, &committed, &final_values, out, stats);
}

/// The write-read graph of committed transactions, and its cycles: one
/// reported per strongly connected component that has one.
fn g1c(g: &Gathered, committed: &[bool], out: &mut Vec<Anomaly>) {
    let n = g.txns.len();
    // edges[w] = (reader, value read), deduplicated by reader.
    let mut edges: Vec<Vec<(usize, Value)>> = vec![Vec::new(); n];
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    for (r, txn) in g.txns.iter().enumerate() {
        if !committed[r] {
            continue;
        }
        for read in &txn.reads {
            let Some(v) = read.value else { continue };
            let Some(&(w, Topic::In)) = g.writer.get(&v) else {
                continue;
            };
            if committed[w] && seen.insert((w, r)) {
                edges[w].push((r, v));
            }
        }
    }
    for component in components(&edges) {
        let s = component[0];
        let self_loop = edges[s].iter().any(|(r, _)| *r == s);
        if component.len() == 1 && !self_loop {
            continue;
        }
        let inside: HashSet<usize> = component.iter().copied().collect();
        let cycle = cycle_through(&edges, s, &inside);
        let mut steps: Vec<String> = cycle
            .iter()
            .take(SHOWN_STEPS)
            .map(|&(w, v, r)| {
                format!(
                    "{} wrote {v}, read by {}",
                    g.txns[w].name(),
                    g.txns[r].name()
                )
            })
            .collect();
        if cycle.len() > SHOWN_STEPS {
            steps.push(format!("... {} more steps", cycle.len() - SHOWN_STEPS));
        }
        out.push(Anomaly {
            kind: AnomalyKind::G1c,
            partition: None,
            fatal: true,
            detail: format!(
                "G1c: a write-read cycle of {} committed transaction(s) ({} in its \
                 component): {}",
                cycle.len(),
                component.len(),
                steps.join("; ")
            ),
        });
    }
}

/// The strongly connected components of a graph (Kosaraju, iterative:
/// histories hold thousands of transactions).
fn components(edges: &[Vec<(usize, Value)>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut reverse: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (w, list) in edges.iter().enumerate() {
        for &(r, _) in list {
            reverse[r].push(w);
        }
    }
    // Post-order of a depth-first search of the graph.
    let mut visited = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for start in 0..n {
        if visited[start] {
            continue;
        }
        visited[start] = true;
        let mut stack = vec![(start, 0usize)];
        while let Some((node, next)) = stack.last_mut() {
            if let Some(&(succ, _)) = edges[*node].get(*next) {
                *next += 1;
                if !visited[succ] {
                    visited[succ] = true;
                    stack.push((succ, 0));
                }
            } else {
                order.push(*node);
                stack.pop();
            }
        }
    }
    // Reverse graph, in reverse post-order: each search is a component.
    let mut assigned = vec![false; n];
    let mut out = Vec::new();
    for &start in order.iter().rev() {
        if assigned[start] {
            continue;
        }
        assigned[start] = true;
        let mut component = vec![start];
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for &pred in &reverse[node] {
                if !assigned[pred] {
                    assigned[pred] = true;
                    component.push(pred);
                    stack.push(pred);
                }
            }
        }
        out.push(component);
    }
    out
}

/// A shortest cycle through `s` within `inside`, as (writer, value,
/// reader) steps.
fn cycle_through(
    edges: &[Vec<(usize, Value)>],
    s: usize,
    inside: &HashSet<usize>,
) -> Vec<(usize, Value, usize)> {
    // Breadth-first from s; parent[node] = (previous node, value).
    let mut parent: HashMap<usize, (usize, Value)> = HashMap::new();
    let mut queue = VecDeque::from([s]);
    let mut back: Option<(usize, Value)> = None;
    while let Some(node) = queue.pop_front() {
        for &(succ, v) in &edges[node] {
            if succ == s {
                back = Some((node, v));
                break;
            }
            if inside.contains(&succ) && !parent.contains_key(&succ) {
                parent.insert(succ, (node, v));
                queue.push_back(succ);
            }
        }
        if back.is_some() {
            break;
        }
    }
    let Some((last, v)) = back else {
        return Vec::new();
    };
    let mut steps = vec![(last, v, s)];
    let mut node = last;
    while node != s {
        let (prev, v) = parent[&node];
        steps.push((prev, v, node));
        node = prev;
    }
    steps.reverse();
    steps
}

/// Each committed input processed into committed output exactly once:
/// the outputs of committed transactions the final read holds, traced
/// back to their inputs, against the group's final committed offsets.
fn exactly_once(
    g: &Gathered,
    committed_txn: &[bool],
    final_values: &HashSet<(Topic, Value)>,
    out: &mut Vec<Anomaly>,
    stats: &mut Stats,
) {
    let Some(committed) = &g.committed else {
        return;
    };
    // input value → the committed outputs made from it.
    let mut made: BTreeMap<Value, BTreeSet<(Value, usize)>> = BTreeMap::new();
    for (t, txn) in g.txns.iter().enumerate() {
        if !committed_txn[t] {
            // Its outputs in the final read are aborted reads.
            continue;
        }
        for o in &txn.outputs {
            if final_values.contains(&(Topic::Out, o.value)) {
                made.entry(o.from).or_default().insert((o.value, t));
            }
        }
    }
    stats.ctp_inputs_processed = made.len();
    for (from, outputs) in &made {
        if outputs.len() > 1 {
            stats.ctp_duplicates += 1;
            let by: Vec<String> = outputs
                .iter()
                .map(|(v, t)| format!("{v} by {}", g.txns[*t].name()))
                .collect();
            out.push(Anomaly {
                kind: AnomalyKind::CtpDuplicate,
                partition: None,
                fatal: true,
                detail: format!(
                    "input {from} was processed into {} committed outputs: {}",
                    outputs.len(),
                    by.join(", ")
                ),
            });
        }
    }
    let mut checked: HashSet<Value> = HashSet::new();
    for r in &g.final_in {
        let Some(v) = r.value else { continue };
        if !checked.insert(v) {
            continue;
        }
        let c = committed.get(&r.partition).copied().unwrap_or(0);
        match (r.offset < c, made.get(&v)) {
            (true, None) => out.push(Anomaly {
                kind: AnomalyKind::CtpLost,
                partition: Some(r.partition),
                fatal: true,
                detail: format!(
                    "input {v} at {}:{} is below the group's committed offset {c}, but no \
                     committed output was made from it",
                    r.partition, r.offset
                ),
            }),
            (false, Some(outputs)) => {
                let by: Vec<String> = outputs
                    .iter()
                    .map(|(o, t)| format!("{o} by {}", g.txns[*t].name()))
                    .collect();
                out.push(Anomaly {
                    kind: AnomalyKind::CtpDuplicate,
                    partition: Some(r.partition),
                    fatal: true,
                    detail: format!(
                        "input {v} at {}:{} was processed into committed output ({}), but the \
                         group's committed offset {c} would have it processed again",
                        r.partition,
                        r.offset,
                        by.join(", ")
                    ),
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
