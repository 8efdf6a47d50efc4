//! Hand-made transactional histories: a clean one, and one per anomaly
//! (negative controls), table-driven.

use super::super::{AnomalyKind as K, CheckOptions, Report, check as check_all};
use super::TXN_FINAL;
use crate::history::{Body, Op, OpType, Polled, TxnWrite};

#[derive(Default)]
struct H {
    ops: Vec<Op>,
}

impl H {
    fn push(mut self, process: &str, ty: OpType, body: Body) -> Self {
        let index = self.ops.len() as u64;
        self.ops.push(Op {
            index,
            time_us: index * 1_000,
            process: process.into(),
            ty,
            body,
        });
        self
    }

    /// A transaction writing `(partition, value, offset)`, ending `ty`.
    fn txn(self, t: &str, writes: &[(i32, u64, i64)], ty: OpType) -> Self {
        let planned = writes
            .iter()
            .map(|&(partition, value, _)| TxnWrite {
                partition,
                value,
                offset: None,
            })
            .collect();
        let done = writes
            .iter()
            .map(|&(partition, value, offset)| TxnWrite {
                partition,
                value,
                offset: (ty == OpType::Ok).then_some(offset),
            })
            .collect();
        self.push(
            t,
            OpType::Invoke,
            Body::Txn {
                writes: planned,
                commit: ty != OpType::Fail,
                error: None,
            },
        )
        .push(
            t,
            ty,
            Body::Txn {
                writes: done,
                commit: ty != OpType::Fail,
                error: None,
            },
        )
    }

    /// A reader's poll of `(partition, offset, value)`.
    fn read(self, r: &str, records: &[(i32, i64, u64)]) -> Self {
        let records = records
            .iter()
            .map(|&(partition, offset, v)| Polled {
                partition,
                offset,
                value: Some(v),
            })
            .collect();
        self.push(r, OpType::Ok, Body::TxnPoll { records })
    }

    /// The final read: `records`, then its end marker.
    fn final_read(self, records: &[(i32, i64, u64)]) -> Self {
        self.read(TXN_FINAL, records).push(
            TXN_FINAL,
            OpType::Ok,
            Body::Ends {
                topic: "jepsen-txn".into(),
                offsets: Vec::new(),
            },
        )
    }

    fn report(self) -> Report {
        check_all(&self.ops, &CheckOptions::default())
    }
}

/// T0 commits 1 at 0:0 and 2 at 1:0; T1 aborts 3 at 0:1 and 4 at 1:1
/// (the aborted records and markers take offsets too); T2 commits 5 at
/// 0:3 and 6 at 1:3.
fn three_txns() -> H {
    H::default()
        .txn("t0", &[(0, 1, 0), (1, 2, 0)], OpType::Ok)
        .txn("t1", &[(0, 3, 1), (1, 4, 1)], OpType::Fail)
        .txn("t0", &[(0, 5, 3), (1, 6, 3)], OpType::Ok)
}

fn kinds(r: &Report) -> Vec<K> {
    let mut k: Vec<K> = r.anomalies.iter().map(|a| a.kind).collect();
    k.sort();
    k.dedup();
    k
}

#[test]
fn atomic_reads_of_committed_transactions_have_no_anomaly() {
    let r = three_txns()
        .read("r0", &[(0, 0, 1), (1, 0, 2)])
        .read("r0", &[(0, 3, 5)])
        .final_read(&[(0, 0, 1), (0, 3, 5), (1, 0, 2), (1, 3, 6)])
        .report();
    assert_eq!(kinds(&r), vec![], "{r}");
    assert_eq!(
        (
            r.stats.txns_committed,
            r.stats.txns_aborted,
            r.stats.txns_indeterminate
        ),
        (2, 1, 0)
    );
}

#[test]
fn an_indeterminate_transaction_may_be_seen_whole_or_not_at_all() {
    for seen in [vec![], vec![(0, 1, 7), (1, 1, 8)]] {
        let mut all = vec![(0, 0, 1), (1, 0, 2)];
        all.extend(seen);
        let r = H::default()
            .txn("t0", &[(0, 1, 0), (1, 2, 0)], OpType::Ok)
            .txn("t1", &[(0, 7, 0), (1, 8, 0)], OpType::Info)
            .final_read(&all)
            .report();
        assert_eq!(kinds(&r), vec![], "{all:?}: {r}");
    }
}

#[test]
fn each_negative_control_is_reported() {
    let cases: Vec<(&str, H, K)> = vec![
        (
            "a reader sees an aborted value",
            three_txns()
                .read("r0", &[(0, 0, 1), (0, 1, 3)])
                .final_read(&[(0, 0, 1), (0, 3, 5), (1, 0, 2), (1, 3, 6)]),
            K::AbortedRead,
        ),
        (
            "a committed value missing after the run",
            three_txns().final_read(&[(0, 0, 1), (0, 3, 5), (1, 0, 2)]),
            K::TxnLostWrite,
        ),
        (
            "the final read sees half of an indeterminate transaction",
            H::default()
                .txn("t1", &[(0, 7, 0), (1, 8, 0)], OpType::Info)
                .final_read(&[(0, 0, 7)]),
            K::TornTransaction,
        ),
        (
            "a reader reads past the rest of a transaction it saw part of",
            three_txns()
                .read("r0", &[(0, 0, 1), (0, 3, 5)])
                .read("r0", &[(1, 3, 6)])
                .final_read(&[(0, 0, 1), (0, 3, 5), (1, 0, 2), (1, 3, 6)]),
            K::TornRead,
        ),
        (
            "a committed value at two offsets",
            three_txns().final_read(&[(0, 0, 1), (0, 3, 5), (0, 4, 5), (1, 0, 2), (1, 3, 6)]),
            K::TxnDuplicate,
        ),
        (
            "a value no transaction wrote",
            three_txns().read("r0", &[(0, 0, 99)]).final_read(&[
                (0, 0, 1),
                (0, 3, 5),
                (1, 0, 2),
                (1, 3, 6),
            ]),
            K::UnknownValue,
        ),
    ];
    for (name, h, kind) in cases {
        let r = h.report();
        assert!(
            kinds(&r).contains(&kind),
            "{name}: {kind} not reported: {r}"
        );
        assert!(!r.valid(), "{name}: {r}");
        assert!(
            kinds(&r).iter().all(|k| *k == kind
                || matches!(
                    (kind, k),
                    (K::UnknownValue, K::TornRead) | (K::TxnDuplicate, K::TornRead)
                )),
            "{name}: other anomalies besides {kind}: {r}"
        );
    }
}
