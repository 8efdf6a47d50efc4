//! The checker: a pure function from a history to the anomalies in it, in
//! the manner of Jepsen's Kafka checker (`jepsen.tests.kafka`). No I/O,
//! no clocks: everything it knows comes from the operations.
//!
//! | anomaly | meaning | fatal |
//! |---|---|---|
//! | `lost-write` | an acknowledged value never read, although reads reached past its offset | yes |
//! | `unseen` | an acknowledged value never read at all (must be zero once the final read after healing is in) | yes |
//! | `inconsistent-offsets` | one offset of a partition seen holding two different records (acks, polls and replica logs compared) | yes |
//! | `duplicate` | one value at two offsets | only for a value sent once on the wire or by an idempotent producer |
//! | `nonmonotonic-send` | one producer's acknowledged offsets in a partition not increasing | yes |
//! | `nonmonotonic-poll` | one consumer's offsets in a partition not increasing between seeks | yes |
//! | `poll-skip` | one consumer jumped over an offset known to hold a record | yes |
//! | `failed-write-visible` | a send that failed definitely was read | yes |
//! | `unknown-value` | a read returned a value nobody sent, or a corrupt payload | yes |
//! | `replica-lost-write` | a replica in the final ISR lacks an acknowledged offset below the final high watermark | yes |
//! | `liveness` | after a heal followed by a quiet period, some partition did not acknowledge a produce and deliver a record written after the heal within the bound | yes |
//! | `malformed-history` | completions without invocations, values sent twice | yes |
//!
//! Histories with a consumer group or transactions get the checks of
//! [`group`] (`nonmonotonic-commit`, `commit-above-hw`, `commit-lost`, `group-skip`,
//! `double-owner`, `unowned-poll`, `group-duplicate`) and [`txn`]
//! (`aborted-read`, `torn-transaction`, `torn-read`, `txn-lost-write`,
//! `txn-duplicate`) as well, and those with consume-transform-produce
//! processors the checks of [`ctp`] (`g1c`, `aborted-read`,
//! `ctp-duplicate`, `ctp-lost`, ...).
//!
//! Duplicates are expected without idempotence: a producer that retries
//! after a timeout may write a record twice. They are counted and reported;
//! they fail the check only for values whose send was a single attempt, or
//! whose producer was idempotent (the broker drops its retried batches).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::history::{Body, HEAL, Op, OpType, Polled, Value};

pub mod ctp;
pub mod group;
pub mod txn;

/// Kinds of anomaly, named as in Jepsen where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// Acknowledged, never read, though reads went past its offset.
    LostWrite,
    /// Acknowledged, never read.
    Unseen,
    /// Two different records at one offset.
    InconsistentOffsets,
    /// One value at two offsets.
    Duplicate,
    /// A producer's offsets went backwards.
    NonmonotonicSend,
    /// A consumer's offsets went backwards.
    NonmonotonicPoll,
    /// A consumer skipped records.
    PollSkip,
    /// A definitely failed send became visible.
    FailedWriteVisible,
    /// A read value nobody sent (or a corrupt payload).
    UnknownValue,
    /// A final-ISR replica lacks an acknowledged record.
    ReplicaLostWrite,
    /// No recovery within the bound after healing.
    Liveness,
    /// The history itself is inconsistent.
    MalformedHistory,
    /// A consumer group's committed offset went back.
    NonmonotonicCommit,
    /// A committed offset above the final high watermark.
    CommitAboveHw,
    /// A member given a partition started below an acknowledged commit.
    CommitLost,
    /// A record below the group's committed offset no member was given.
    GroupSkip,
    /// A partition held by two group members at once.
    DoubleOwner,
    /// A group member returned records of a partition nobody held.
    UnownedPoll,
    /// A record given to group members more than once (not fatal).
    GroupDuplicate,
    /// A `read_committed` reader saw an aborted transaction's value.
    AbortedRead,
    /// The final read saw part of a transaction.
    TornTransaction,
    /// A reader saw part of a transaction and read past the rest.
    TornRead,
    /// A committed transaction's value missing after the run.
    TxnLostWrite,
    /// A transactional value at two offsets.
    TxnDuplicate,
    /// A cycle of write-read dependencies between committed transactions.
    G1c,
    /// An input processed into committed output more than once.
    CtpDuplicate,
    /// An input below the group's committed offset never processed into
    /// committed output.
    CtpLost,
}

impl AnomalyKind {
    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::LostWrite => "lost-write",
            AnomalyKind::Unseen => "unseen",
            AnomalyKind::InconsistentOffsets => "inconsistent-offsets",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::NonmonotonicSend => "nonmonotonic-send",
            AnomalyKind::NonmonotonicPoll => "nonmonotonic-poll",
            AnomalyKind::PollSkip => "poll-skip",
            AnomalyKind::FailedWriteVisible => "failed-write-visible",
            AnomalyKind::UnknownValue => "unknown-value",
            AnomalyKind::ReplicaLostWrite => "replica-lost-write",
            AnomalyKind::Liveness => "liveness",
            AnomalyKind::MalformedHistory => "malformed-history",
            AnomalyKind::NonmonotonicCommit => "nonmonotonic-commit",
            AnomalyKind::CommitAboveHw => "commit-above-hw",
            AnomalyKind::CommitLost => "commit-lost",
            AnomalyKind::GroupSkip => "group-skip",
            AnomalyKind::DoubleOwner => "double-owner",
            AnomalyKind::UnownedPoll => "unowned-poll",
            AnomalyKind::GroupDuplicate => "group-duplicate",
            AnomalyKind::AbortedRead => "aborted-read",
            AnomalyKind::TornTransaction => "torn-transaction",
            AnomalyKind::TornRead => "torn-read",
            AnomalyKind::TxnLostWrite => "txn-lost-write",
            AnomalyKind::TxnDuplicate => "txn-duplicate",
            AnomalyKind::G1c => "g1c",
            AnomalyKind::CtpDuplicate => "ctp-duplicate",
            AnomalyKind::CtpLost => "ctp-lost",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One anomaly found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// Which.
    pub kind: AnomalyKind,
    /// The partition concerned, if one.
    pub partition: Option<i32>,
    /// Whether it fails the check.
    pub fatal: bool,
    /// What exactly, with history indexes to look up.
    pub detail: String,
}

/// Settings of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Microseconds after a heal within which every partition must
    /// acknowledge a produce and deliver a record written after the heal.
    /// Checked for heals followed by at least this long without a new
    /// fault.
    pub liveness_bound_us: u64,
    /// The partitions of the topic; when empty, those the history sends to.
    pub partitions: Vec<i32>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            liveness_bound_us: 30_000_000,
            partitions: Vec::new(),
        }
    }
}

/// Counts over the history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Sends acknowledged.
    pub sends_ok: usize,
    /// Sends that definitely failed.
    pub sends_failed: usize,
    /// Sends with unknown outcome (including ones never completed).
    pub sends_indeterminate: usize,
    /// Polls that returned.
    pub polls_ok: usize,
    /// Polls that failed.
    pub polls_failed: usize,
    /// Records returned by polls (with repeats).
    pub records_polled: usize,
    /// Distinct values read.
    pub values_read: usize,
    /// Values at more than one offset.
    pub duplicates: usize,
    /// Acknowledged values never read (lost ones included).
    pub unseen: usize,
    /// Per checked heal: `(heal index, partition, microseconds until both a
    /// produce was acknowledged and a fresh record was consumed)`.
    pub recovery_us: Vec<(u64, i32, u64)>,
    /// Group members' polls that returned records.
    pub group_polls: usize,
    /// Records given to group members (with repeats).
    pub group_records: usize,
    /// Group commits acknowledged.
    pub group_commits_ok: usize,
    /// Records given to group members more than once.
    pub group_duplicates: usize,
    /// Transactions committed (acknowledged).
    pub txns_committed: usize,
    /// Transactions aborted (acknowledged).
    pub txns_aborted: usize,
    /// Transactions with unknown outcome.
    pub txns_indeterminate: usize,
    /// Records read from the transactional topic (with repeats).
    pub txn_records_read: usize,
    /// Transactional values read at more than one offset.
    pub txn_duplicates: usize,
    /// Consume-transform-produce transactions committed (acknowledged).
    pub ctp_txns_committed: usize,
    /// Consume-transform-produce transactions aborted.
    pub ctp_txns_aborted: usize,
    /// Consume-transform-produce transactions with unknown outcome.
    pub ctp_txns_indeterminate: usize,
    /// Inputs processed into committed output.
    pub ctp_inputs_processed: usize,
    /// Inputs processed into committed output more than once.
    pub ctp_duplicates: usize,
}

/// The result of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every anomaly, grouped by kind in this order.
    pub anomalies: Vec<Anomaly>,
    /// Counts.
    pub stats: Stats,
}

impl Report {
    /// Whether no fatal anomaly was found.
    pub fn valid(&self) -> bool {
        !self.anomalies.iter().any(|a| a.fatal)
    }

    /// The kinds found, each once, sorted.
    pub fn kinds(&self) -> BTreeSet<AnomalyKind> {
        self.anomalies.iter().map(|a| a.kind).collect()
    }

    /// The fatal kinds found, each once, sorted.
    pub fn fatal_kinds(&self) -> BTreeSet<AnomalyKind> {
        self.anomalies
            .iter()
            .filter(|a| a.fatal)
            .map(|a| a.kind)
            .collect()
    }

    /// How many anomalies of `kind`.
    pub fn count(&self, kind: AnomalyKind) -> usize {
        self.anomalies.iter().filter(|a| a.kind == kind).count()
    }
}

/// How many examples of each kind [`Report`]'s `Display` shows.
const SHOWN_PER_KIND: usize = 8;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(
            f,
            "{}: sends ok {} / failed {} / indeterminate {}; polls ok {} / failed {}; \
             records polled {}, distinct values read {}; duplicates {}; unseen {}",
            if self.valid() { "valid" } else { "INVALID" },
            s.sends_ok,
            s.sends_failed,
            s.sends_indeterminate,
            s.polls_ok,
            s.polls_failed,
            s.records_polled,
            s.values_read,
            s.duplicates,
            s.unseen
        )?;
        if s.group_polls + s.group_commits_ok > 0 {
            writeln!(
                f,
                "group: polls {}, records given {}, commits acknowledged {}, records given \
                 more than once {}",
                s.group_polls, s.group_records, s.group_commits_ok, s.group_duplicates
            )?;
        }
        if s.txns_committed + s.txns_aborted + s.txns_indeterminate > 0 {
            writeln!(
                f,
                "transactions: committed {} / aborted {} / indeterminate {}; records read {}, \
                 duplicates {}",
                s.txns_committed,
                s.txns_aborted,
                s.txns_indeterminate,
                s.txn_records_read,
                s.txn_duplicates
            )?;
        }
        if s.ctp_txns_committed + s.ctp_txns_aborted + s.ctp_txns_indeterminate > 0 {
            writeln!(
                f,
                "consume-transform-produce: transactions committed {} / aborted {} / \
                 indeterminate {}; inputs processed into committed output {}, more than once {}",
                s.ctp_txns_committed,
                s.ctp_txns_aborted,
                s.ctp_txns_indeterminate,
                s.ctp_inputs_processed,
                s.ctp_duplicates
            )?;
        }
        if !s.recovery_us.is_empty() {
            let worst = s.recovery_us.iter().map(|r| r.2).max().unwrap_or(0);
            writeln!(
                f,
                "recovery after heals: worst {:.1} s over {} partition recoveries",
                worst as f64 / 1e6,
                s.recovery_us.len()
            )?;
        }
        let mut by_kind: BTreeMap<AnomalyKind, Vec<&Anomaly>> = BTreeMap::new();
        for a in &self.anomalies {
            by_kind.entry(a.kind).or_default().push(a);
        }
        for (kind, list) in by_kind {
            let fatal = list.iter().filter(|a| a.fatal).count();
            writeln!(f, "{kind}: {} ({fatal} fatal)", list.len())?;
            for a in list.iter().take(SHOWN_PER_KIND) {
                writeln!(f, "  {}", a.detail)?;
            }
            if list.len() > SHOWN_PER_KIND {
                writeln!(f, "  ... {} more", list.len() - SHOWN_PER_KIND)?;
            }
        }
        Ok(())
    }
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pending,
    Ok(i64),
    Fail,
    Info,
}

#[derive(Debug, Clone)]
struct SendInfo {
    process: String,
    partition: i32,
    invoke_index: u64,
    invoke_us: u64,
    outcome: Outcome,
    complete_index: u64,
    complete_us: u64,
    single_attempt: bool,
    idempotent: bool,
}

/// What was seen at one offset: a value, or a payload that did not decode.
type Seen = Option<Value>;

/// Who saw it, for reports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Ack { index: u64 },
    Poll { index: u64 },
    Replica { index: u64, node: i32 },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ack { index } => write!(f, "ack op {index}"),
            Source::Poll { index } => write!(f, "poll op {index}"),
            Source::Replica { index, node } => write!(f, "replica of node {node} (op {index})"),
        }
    }
}

fn show(seen: Seen) -> String {
    seen.map_or_else(|| "<corrupt>".to_owned(), |v| v.to_string())
}

/// Everything gathered from one pass over the history.
#[derive(Debug, Default)]
struct Gathered {
    sends: HashMap<Value, SendInfo>,
    /// Sends in history order of completion, for per-producer order.
    completions: Vec<Value>,
    /// (partition, offset) → what was seen there and first by whom.
    at: BTreeMap<(i32, i64), BTreeMap<Seen, Source>>,
    /// value → positions it was seen at.
    positions: HashMap<Value, BTreeSet<(i32, i64)>>,
    /// Values read by polls.
    polled: HashSet<Value>,
    /// Highest offset polled per partition.
    max_polled: BTreeMap<i32, i64>,
    /// Consumer reads in history order: (process, index, records) and
    /// seeks as records of their own.
    reads: Vec<ReadEvent>,
    replicas: Vec<(u64, i32, i32, i64, Vec<Polled>)>,
    /// Nemesis invocations `(time)` and heal completions `(index, time)`.
    fault_starts: Vec<u64>,
    heals: Vec<(u64, u64)>,
    /// Ok polls: (completion time, records) for liveness.
    polls_at: Vec<(u64, Vec<Polled>)>,
    malformed: Vec<String>,
}

#[derive(Debug)]
enum ReadEvent {
    Seek {
        process: String,
        partition: i32,
        offset: i64,
    },
    Poll {
        process: String,
        index: u64,
        records: Vec<Polled>,
    },
}

impl Gathered {
    fn observe(&mut self, partition: i32, offset: i64, seen: Seen, source: Source) {
        self.at
            .entry((partition, offset))
            .or_default()
            .entry(seen)
            .or_insert(source);
        if let Some(v) = seen {
            self.positions
                .entry(v)
                .or_default()
                .insert((partition, offset));
        }
    }
}

/// Checks a history. Pure: the same history always gives the same report.
pub fn check(history: &[Op], options: &CheckOptions) -> Report {
    let mut g = gather(history);
    let mut report = Report::default();
    let mut stats = Stats::default();
    for s in g.sends.values() {
        match s.outcome {
            Outcome::Ok(_) => stats.sends_ok += 1,
            Outcome::Fail => stats.sends_failed += 1,
            Outcome::Info | Outcome::Pending => stats.sends_indeterminate += 1,
        }
    }
    for op in history {
        if let Body::Poll { records, .. } = &op.body {
            match op.ty {
                OpType::Ok => {
                    stats.polls_ok += 1;
                    stats.records_polled += records.len();
                }
                OpType::Fail | OpType::Info => stats.polls_failed += 1,
                OpType::Invoke => {}
            }
        }
    }
    stats.values_read = g.polled.len();

    let mut out = Vec::new();
    for m in std::mem::take(&mut g.malformed) {
        out.push(Anomaly {
            kind: AnomalyKind::MalformedHistory,
            partition: None,
            fatal: true,
            detail: m,
        });
    }
    lost_and_unseen(&g, &mut out, &mut stats);
    inconsistent_offsets(&g, &mut out);
    duplicates(&g, &mut out, &mut stats);
    nonmonotonic_send(&g, &mut out);
    consumer_order(&g, &mut out);
    failed_visible_and_unknown(&g, &mut out);
    replica_lost_writes(&g, &mut out);
    liveness(&g, options, &mut out, &mut stats);
    group::check(history, &mut out, &mut stats);
    txn::check(history, &mut out, &mut stats);
    ctp::check(history, &mut out, &mut stats);

    out.sort_by_key(|a| (a.kind, a.partition));
    report.anomalies = out;
    report.stats = stats;
    report
}

fn gather(history: &[Op]) -> Gathered {
    let mut g = Gathered::default();
    // process → the invocation it waits on.
    let mut open: HashMap<&str, &Op> = HashMap::new();
    for op in history {
        match (&op.body, op.ty) {
            (Body::Seek { partition, offset }, _) => g.reads.push(ReadEvent::Seek {
                process: op.process.clone(),
                partition: *partition,
                offset: *offset,
            }),
            (Body::GroupPoll { records }, _) => {
                for r in records {
                    g.observe(
                        r.partition,
                        r.offset,
                        r.value,
                        Source::Poll { index: op.index },
                    );
                }
            }
            // Single lines, and reads of another topic.
            (
                Body::Rebalance { .. }
                | Body::Ends { .. }
                | Body::TxnPoll { .. }
                | Body::CtpRead { .. }
                | Body::CtpFinal { .. },
                _,
            ) => {}
            (
                Body::Replica {
                    node,
                    partition,
                    high_watermark,
                    records,
                },
                _,
            ) => {
                for r in records {
                    g.observe(
                        r.partition,
                        r.offset,
                        r.value,
                        Source::Replica {
                            index: op.index,
                            node: *node,
                        },
                    );
                }
                g.replicas.push((
                    op.index,
                    *node,
                    *partition,
                    *high_watermark,
                    records.clone(),
                ));
            }
            (_, OpType::Invoke) => {
                if let Some(prev) = open.insert(&op.process, op) {
                    g.malformed.push(format!(
                        "process {} invoked op {} while op {} was open",
                        op.process, op.index, prev.index
                    ));
                }
                match &op.body {
                    Body::Send {
                        partition,
                        value,
                        single_attempt,
                        idempotent,
                        ..
                    } => {
                        if let Some(prev) = g.sends.get(value) {
                            g.malformed.push(format!(
                                "value {value} sent twice (ops {} and {})",
                                prev.invoke_index, op.index
                            ));
                            continue;
                        }
                        g.sends.insert(
                            *value,
                            SendInfo {
                                process: op.process.clone(),
                                partition: *partition,
                                invoke_index: op.index,
                                invoke_us: op.time_us,
                                outcome: Outcome::Pending,
                                complete_index: 0,
                                complete_us: 0,
                                single_attempt: *single_attempt,
                                idempotent: *idempotent,
                            },
                        );
                    }
                    Body::Nemesis { fault, .. } if fault != HEAL => g.fault_starts.push(op.time_us),
                    _ => {}
                }
            }
            (_, ty) => {
                let Some(inv) = open.remove(op.process.as_str()) else {
                    g.malformed.push(format!(
                        "op {} of process {} completes nothing",
                        op.index, op.process
                    ));
                    continue;
                };
                if std::mem::discriminant(&inv.body) != std::mem::discriminant(&op.body) {
                    g.malformed.push(format!(
                        "op {} completes op {} of another kind",
                        op.index, inv.index
                    ));
                    continue;
                }
                complete(&mut g, inv, op, ty);
            }
        }
    }
    g
}

fn complete(g: &mut Gathered, inv: &Op, op: &Op, ty: OpType) {
    match &op.body {
        Body::Send {
            partition,
            value,
            offset,
            ..
        } => {
            let Body::Send { value: invoked, .. } = &inv.body else {
                return;
            };
            if invoked != value {
                g.malformed.push(format!(
                    "op {} completes the send of {value}, but op {} sent {invoked}",
                    op.index, inv.index
                ));
                return;
            }
            let Some(s) = g
                .sends
                .get_mut(value)
                .filter(|s| s.invoke_index == inv.index)
            else {
                return;
            };
            s.outcome = match (ty, offset) {
                (OpType::Ok, Some(o)) => Outcome::Ok(*o),
                (OpType::Ok, None) => {
                    g.malformed
                        .push(format!("op {} acknowledges without an offset", op.index));
                    Outcome::Info
                }
                (OpType::Fail, _) => Outcome::Fail,
                _ => Outcome::Info,
            };
            s.complete_index = op.index;
            s.complete_us = op.time_us;
            if let (OpType::Ok, Some(o)) = (ty, offset) {
                g.completions.push(*value);
                g.observe(
                    *partition,
                    *o,
                    Some(*value),
                    Source::Ack { index: op.index },
                );
            }
        }
        Body::Poll { records, .. } if ty == OpType::Ok => {
            for r in records {
                g.observe(
                    r.partition,
                    r.offset,
                    r.value,
                    Source::Poll { index: op.index },
                );
                if let Some(v) = r.value {
                    g.polled.insert(v);
                }
                let max = g.max_polled.entry(r.partition).or_insert(r.offset);
                *max = (*max).max(r.offset);
            }
            g.reads.push(ReadEvent::Poll {
                process: op.process.clone(),
                index: op.index,
                records: records.clone(),
            });
            g.polls_at.push((op.time_us, records.clone()));
        }
        Body::Nemesis { fault, .. } if ty == OpType::Ok && fault == HEAL => {
            g.heals.push((op.index, op.time_us));
        }
        _ => {}
    }
}

fn lost_and_unseen(g: &Gathered, out: &mut Vec<Anomaly>, stats: &mut Stats) {
    let mut acked: Vec<(&Value, &SendInfo, i64)> = g
        .sends
        .iter()
        .filter_map(|(v, s)| match s.outcome {
            Outcome::Ok(o) => Some((v, s, o)),
            _ => None,
        })
        .collect();
    acked.sort_by_key(|(v, s, o)| (s.partition, *o, **v));
    for (v, s, o) in acked {
        if g.polled.contains(v) {
            continue;
        }
        stats.unseen += 1;
        let max = g.max_polled.get(&s.partition).copied().unwrap_or(-1);
        let (kind, why) = if o <= max {
            (
                AnomalyKind::LostWrite,
                format!("reads of partition {} reached offset {max}", s.partition),
            )
        } else {
            (
                AnomalyKind::Unseen,
                format!("reads of partition {} stopped at offset {max}", s.partition),
            )
        };
        out.push(Anomaly {
            kind,
            partition: Some(s.partition),
            fatal: true,
            detail: format!(
                "value {v} acknowledged at {}-{o} (op {}) was never read; {why}",
                s.partition, s.complete_index
            ),
        });
    }
}

fn inconsistent_offsets(g: &Gathered, out: &mut Vec<Anomaly>) {
    for ((p, o), seen) in &g.at {
        if seen.len() < 2 {
            continue;
        }
        let what: Vec<String> = seen
            .iter()
            .map(|(s, src)| format!("{} ({src})", show(*s)))
            .collect();
        out.push(Anomaly {
            kind: AnomalyKind::InconsistentOffsets,
            partition: Some(*p),
            fatal: true,
            detail: format!("offset {p}-{o} holds {}", what.join(" and ")),
        });
    }
}

fn duplicates(g: &Gathered, out: &mut Vec<Anomaly>, stats: &mut Stats) {
    let mut dups: Vec<(&Value, &BTreeSet<(i32, i64)>)> =
        g.positions.iter().filter(|(_, at)| at.len() > 1).collect();
    dups.sort();
    for (v, at) in dups {
        stats.duplicates += 1;
        let send = g.sends.get(v);
        let single = send.is_some_and(|s| s.single_attempt);
        let idempotent = send.is_some_and(|s| s.idempotent);
        let places: Vec<String> = at.iter().map(|(p, o)| format!("{p}-{o}")).collect();
        out.push(Anomaly {
            kind: AnomalyKind::Duplicate,
            partition: at.first().map(|(p, _)| *p),
            fatal: single || idempotent,
            detail: format!(
                "value {v} is at {}{}",
                places.join(", "),
                if single {
                    " although it was sent once"
                } else if idempotent {
                    " although an idempotent producer sent it"
                } else {
                    " (the producer may have retried)"
                }
            ),
        });
    }
}

fn nonmonotonic_send(g: &Gathered, out: &mut Vec<Anomaly>) {
    let mut last: HashMap<(&str, i32), (Value, i64, u64)> = HashMap::new();
    for v in &g.completions {
        let s = &g.sends[v];
        let Outcome::Ok(o) = s.outcome else { continue };
        let key = (s.process.as_str(), s.partition);
        if let Some((pv, po, pi)) = last.get(&key)
            && o <= *po
        {
            out.push(Anomaly {
                kind: AnomalyKind::NonmonotonicSend,
                partition: Some(s.partition),
                fatal: true,
                detail: format!(
                    "{} sent {pv} (acked at {po}, op {pi}) before {v} (acked at {o}, op {})",
                    s.process, s.complete_index
                ),
            });
        }
        last.insert(key, (*v, o, s.complete_index));
    }
}

/// Where a consumer stands in one partition.
#[derive(Debug, Clone, Copy)]
enum Position {
    /// Sought to this offset, nothing read since.
    Sought(i64),
    /// Last read this offset (in op `index`).
    Read { offset: i64, index: u64 },
}

fn consumer_order(g: &Gathered, out: &mut Vec<Anomaly>) {
    let known = |p: i32, from: i64, to: i64| -> Option<i64> {
        // The first offset in [from, to) known to hold a record.
        g.at.range((p, from)..(p, to)).next().map(|((_, o), _)| *o)
    };
    let mut pos: HashMap<(&str, i32), Position> = HashMap::new();
    for e in &g.reads {
        match e {
            ReadEvent::Seek {
                process,
                partition,
                offset,
            } => {
                pos.insert((process, *partition), Position::Sought(*offset));
            }
            ReadEvent::Poll {
                process,
                index,
                records,
            } => {
                for r in records {
                    let key = (process.as_str(), r.partition);
                    let p = r.partition;
                    match pos.get(&key) {
                        Some(Position::Read {
                            offset: prev,
                            index: prev_index,
                        }) => {
                            if r.offset <= *prev {
                                out.push(Anomaly {
                                    kind: AnomalyKind::NonmonotonicPoll,
                                    partition: Some(p),
                                    fatal: true,
                                    detail: format!(
                                        "{process} read {p}-{} (op {index}) after {p}-{prev} (op {prev_index})",
                                        r.offset
                                    ),
                                });
                            } else if let Some(skipped) = known(p, prev + 1, r.offset) {
                                out.push(Anomaly {
                                    kind: AnomalyKind::PollSkip,
                                    partition: Some(p),
                                    fatal: true,
                                    detail: format!(
                                        "{process} read {p}-{prev} (op {prev_index}) then {p}-{} (op {index}), skipping {p}-{skipped}",
                                        r.offset
                                    ),
                                });
                            }
                        }
                        Some(Position::Sought(at)) => {
                            if r.offset < *at {
                                out.push(Anomaly {
                                    kind: AnomalyKind::NonmonotonicPoll,
                                    partition: Some(p),
                                    fatal: true,
                                    detail: format!(
                                        "{process} read {p}-{} (op {index}) after seeking to {at}",
                                        r.offset
                                    ),
                                });
                            } else if let Some(skipped) = known(p, *at, r.offset) {
                                out.push(Anomaly {
                                    kind: AnomalyKind::PollSkip,
                                    partition: Some(p),
                                    fatal: true,
                                    detail: format!(
                                        "{process} sought {p}-{at} then read {p}-{} (op {index}), skipping {p}-{skipped}",
                                        r.offset
                                    ),
                                });
                            }
                        }
                        None => {}
                    }
                    pos.insert(
                        key,
                        Position::Read {
                            offset: r.offset,
                            index: *index,
                        },
                    );
                }
            }
        }
    }
}

fn failed_visible_and_unknown(g: &Gathered, out: &mut Vec<Anomaly>) {
    for ((p, o), seen) in &g.at {
        for (s, src) in seen {
            let detail = match s {
                None => format!("corrupt record at {p}-{o} ({src})"),
                Some(v) => match g.sends.get(v) {
                    None => format!("value {v} at {p}-{o} ({src}) was never sent"),
                    Some(send) if send.outcome == Outcome::Fail => {
                        out.push(Anomaly {
                            kind: AnomalyKind::FailedWriteVisible,
                            partition: Some(*p),
                            fatal: true,
                            detail: format!(
                                "value {v} failed definitely (op {}) but is at {p}-{o} ({src})",
                                send.complete_index
                            ),
                        });
                        continue;
                    }
                    Some(_) => continue,
                },
            };
            out.push(Anomaly {
                kind: AnomalyKind::UnknownValue,
                partition: Some(*p),
                fatal: true,
                detail,
            });
        }
    }
}

fn replica_lost_writes(g: &Gathered, out: &mut Vec<Anomaly>) {
    for (index, node, partition, hw, records) in &g.replicas {
        let held: HashSet<i64> = records.iter().map(|r| r.offset).collect();
        let mut missing: Vec<(i64, Value)> = g
            .sends
            .iter()
            .filter_map(|(v, s)| match s.outcome {
                Outcome::Ok(o) if s.partition == *partition && o < *hw && !held.contains(&o) => {
                    Some((o, *v))
                }
                _ => None,
            })
            .collect();
        missing.sort();
        for (o, v) in missing {
            out.push(Anomaly {
                kind: AnomalyKind::ReplicaLostWrite,
                partition: Some(*partition),
                fatal: true,
                detail: format!(
                    "node {node}'s replica (op {index}) lacks {partition}-{o} (value {v}) below the high watermark {hw}"
                ),
            });
        }
    }
}

/// When, after `heal_us`, partition `p` both acknowledged a produce and
/// delivered to a consumer a record whose send was invoked after the heal:
/// the later of the two completion times.
fn recovered_at(g: &Gathered, p: i32, heal_us: u64) -> Option<u64> {
    let acked = g
        .sends
        .values()
        .filter(|s| s.partition == p && s.complete_us > heal_us)
        .filter(|s| matches!(s.outcome, Outcome::Ok(_)))
        .map(|s| s.complete_us)
        .min()?;
    let consumed = g
        .polls_at
        .iter()
        .filter(|(t, _)| *t > heal_us)
        .find(|(_, records)| {
            records.iter().any(|r| {
                r.partition == p
                    && r.value
                        .and_then(|v| g.sends.get(&v))
                        .is_some_and(|s| s.invoke_us > heal_us)
            })
        })
        .map(|(t, _)| *t)?;
    Some(acked.max(consumed))
}

fn partitions_of(g: &Gathered, options: &CheckOptions) -> Vec<i32> {
    if !options.partitions.is_empty() {
        return options.partitions.clone();
    }
    let set: BTreeSet<i32> = g.sends.values().map(|s| s.partition).collect();
    set.into_iter().collect()
}

fn liveness(g: &Gathered, options: &CheckOptions, out: &mut Vec<Anomaly>, stats: &mut Stats) {
    let bound = options.liveness_bound_us;
    let partitions = partitions_of(g, options);
    for (index, heal_us) in &g.heals {
        let next_fault = g.fault_starts.iter().copied().filter(|t| t > heal_us).min();
        if next_fault.is_some_and(|t| t - heal_us < bound) {
            continue;
        }
        for p in &partitions {
            match recovered_at(g, *p, *heal_us) {
                Some(t) if t - heal_us <= bound => {
                    stats.recovery_us.push((*index, *p, t - heal_us));
                }
                found => out.push(Anomaly {
                    kind: AnomalyKind::Liveness,
                    partition: Some(*p),
                    fatal: true,
                    detail: match found {
                        Some(t) => format!(
                            "partition {p} recovered {:.1} s after the heal (op {index}), beyond the bound of {:.1} s",
                            (t - heal_us) as f64 / 1e6,
                            bound as f64 / 1e6
                        ),
                        None => format!(
                            "partition {p} never acknowledged a produce and delivered a record written after the heal (op {index})"
                        ),
                    },
                }),
            }
        }
    }
}

/// Whether every partition recovered after the heal at `heal_us`: the
/// runner polls this to end the recovery window early.
pub fn recovered(history: &[Op], heal_us: u64, partitions: &[i32]) -> bool {
    let g = gather(history);
    partitions
        .iter()
        .all(|p| recovered_at(&g, *p, heal_us).is_some())
}

#[cfg(test)]
mod tests;

/// `[1, 2, 3, 7]` as `1..=3, 7` (at most 20 ranges shown).
fn ranges(offsets: &[i64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < offsets.len() {
        let start = offsets[i];
        let mut end = start;
        while i + 1 < offsets.len() && offsets[i + 1] == end + 1 {
            i += 1;
            end = offsets[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}..={end}")
        });
        i += 1;
    }
    if out.len() > 20 {
        let n = out.len() - 20;
        out.truncate(20);
        out.push(format!("... {n} more"));
    }
    out.join(", ")
}
