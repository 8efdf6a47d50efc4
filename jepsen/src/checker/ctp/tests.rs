//! Hand-made consume-transform-produce histories: clean ones (near
//! misses included), and one built to fail per anomaly (negative
//! controls), table-driven.

use std::collections::BTreeSet;

use super::super::{AnomalyKind as K, CheckOptions, Report, check as check_all};
use super::CTP_FINAL;
use crate::history::{Body, CtpOutput, Op, OpType, Polled, TxnWrite};

#[derive(Default, Clone)]
struct H {
    ops: Vec<Op>,
}

/// A record read: (partition, offset, value).
type Rec = (i32, i64, u64);

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

    /// A transaction of processor `x` that read `reads`, wrote `outputs`
    /// (input value, output partition, output value) and fresh `inputs`
    /// (partition, value), ending `ty`.
    fn txn(
        self,
        x: &str,
        reads: &[Rec],
        outputs: &[(u64, i32, u64)],
        inputs: &[(i32, u64)],
        ty: OpType,
    ) -> Self {
        let body = Body::CtpTxn {
            reads: polled(reads),
            outputs: outputs
                .iter()
                .map(|&(from, partition, value)| CtpOutput {
                    from,
                    partition,
                    value,
                    offset: None,
                })
                .collect(),
            inputs: inputs
                .iter()
                .map(|&(partition, value)| TxnWrite {
                    partition,
                    value,
                    offset: None,
                })
                .collect(),
            offsets: Vec::new(),
            error: None,
        };
        self.push(
            x,
            OpType::Invoke,
            Body::CtpTxn {
                reads: Vec::new(),
                outputs: Vec::new(),
                inputs: Vec::new(),
                offsets: Vec::new(),
                error: None,
            },
        )
        .push(x, ty, body)
    }

    /// The final read of both topics and the group's committed offsets.
    fn final_read(self, input: &[Rec], output: &[Rec], committed: &[(i32, i64)]) -> Self {
        self.push(
            CTP_FINAL,
            OpType::Ok,
            Body::CtpRead {
                topic: "in".into(),
                records: polled(input),
            },
        )
        .push(
            CTP_FINAL,
            OpType::Ok,
            Body::CtpRead {
                topic: "out".into(),
                records: polled(output),
            },
        )
        .push(
            CTP_FINAL,
            OpType::Ok,
            Body::CtpFinal {
                committed: committed.to_vec(),
            },
        )
    }

    fn report(self) -> Report {
        check_all(&self.ops, &CheckOptions::default())
    }
}

fn polled(records: &[Rec]) -> Vec<Polled> {
    records
        .iter()
        .map(|&(partition, offset, v)| Polled {
            partition,
            offset,
            value: Some(v),
        })
        .collect()
}

/// x0 writes input 1 (in 0:0); x1 processes it into output 2 (out 0:0)
/// and writes input 3 (in 1:0); x0 processes 3 into 4 and writes 5, and
/// aborts; x0 processes 3 again into 6 (out 1:2) and writes 7 (in 0:4).
fn chain() -> H {
    H::default()
        .txn("x0", &[], &[], &[(0, 1)], OpType::Ok)
        .txn("x1", &[(0, 0, 1)], &[(1, 0, 2)], &[(1, 3)], OpType::Ok)
        .txn("x0", &[(1, 0, 3)], &[(3, 1, 4)], &[(0, 5)], OpType::Fail)
        .txn("x0", &[(1, 0, 3)], &[(3, 1, 6)], &[(0, 7)], OpType::Ok)
}

const CHAIN_IN: [Rec; 3] = [(0, 0, 1), (0, 4, 7), (1, 0, 3)];
const CHAIN_OUT: [Rec; 2] = [(0, 0, 2), (1, 2, 6)];
const CHAIN_COMMITTED: [(i32, i64); 2] = [(0, 2), (1, 2)];

fn kinds(r: &Report) -> BTreeSet<K> {
    r.kinds()
}

#[test]
fn a_chain_of_committed_transactions_processing_each_input_once_has_no_anomaly() {
    let r = chain()
        .final_read(&CHAIN_IN, &CHAIN_OUT, &CHAIN_COMMITTED)
        .report();
    assert_eq!(kinds(&r), BTreeSet::new(), "{r}");
    let s = &r.stats;
    assert_eq!(
        (
            s.ctp_txns_committed,
            s.ctp_txns_aborted,
            s.ctp_txns_indeterminate,
            s.ctp_inputs_processed,
            s.ctp_duplicates
        ),
        (3, 1, 0, 2, 0)
    );
    assert!(r.to_string().contains("consume-transform-produce"), "{r}");
}

#[test]
fn near_misses_are_not_reported() {
    let cases: Vec<(&str, H)> = vec![
        (
            "an unknown transaction seen whole, read by a committed one",
            H::default()
                .txn("x0", &[], &[], &[(0, 1)], OpType::Info)
                .txn("x1", &[(0, 0, 1)], &[(1, 0, 2)], &[], OpType::Ok)
                .final_read(&[(0, 0, 1)], &[(0, 0, 2)], &[(0, 1)]),
        ),
        (
            "an unknown transaction never seen and never read",
            H::default()
                .txn("x0", &[], &[], &[(0, 1)], OpType::Info)
                .final_read(&[], &[], &[]),
        ),
        (
            "transactions reading each other's writes in one direction only",
            H::default()
                .txn("x0", &[], &[], &[(0, 1), (1, 2)], OpType::Ok)
                .txn("x1", &[(0, 0, 1)], &[(1, 0, 3)], &[(1, 4)], OpType::Ok)
                .txn(
                    "x0",
                    &[(1, 0, 2), (1, 1, 4)],
                    &[(2, 1, 5), (4, 1, 6)],
                    &[],
                    OpType::Ok,
                )
                .final_read(
                    &[(0, 0, 1), (1, 0, 2), (1, 1, 4)],
                    &[(0, 0, 3), (1, 0, 5), (1, 1, 6)],
                    &[(0, 1), (1, 2)],
                ),
        ),
        (
            "an input above the committed offset, not processed yet",
            chain().final_read(&CHAIN_IN, &CHAIN_OUT, &[(0, 1), (1, 1)]),
        ),
    ];
    for (name, h) in cases {
        let r = h.report();
        assert_eq!(kinds(&r), BTreeSet::new(), "{name}: {r}");
    }
}

#[test]
fn each_negative_control_is_reported() {
    let cases: Vec<(&str, H, Vec<K>)> = vec![
        (
            "two committed transactions that read each other's write (G1c)",
            H::default()
                .txn("x0", &[(1, 0, 11)], &[(11, 0, 12)], &[(0, 10)], OpType::Ok)
                .txn("x1", &[(0, 0, 10)], &[(10, 1, 13)], &[(1, 11)], OpType::Ok)
                .final_read(
                    &[(0, 0, 10), (1, 0, 11)],
                    &[(0, 0, 12), (1, 0, 13)],
                    &[(0, 1), (1, 1)],
                ),
            vec![K::G1c],
        ),
        (
            "a cycle of three through a transaction of unknown outcome that committed (G1c)",
            H::default()
                .txn("x0", &[(2, 0, 12)], &[(12, 2, 22)], &[(0, 10)], OpType::Ok)
                .txn(
                    "x1",
                    &[(0, 0, 10)],
                    &[(10, 0, 20)],
                    &[(1, 11)],
                    OpType::Info,
                )
                .txn("x2", &[(1, 0, 11)], &[(11, 1, 21)], &[(2, 12)], OpType::Ok)
                .final_read(
                    &[(0, 0, 10), (1, 0, 11), (2, 0, 12)],
                    &[(0, 0, 20), (1, 0, 21), (2, 0, 22)],
                    &[(0, 1), (1, 1), (2, 1)],
                ),
            vec![K::G1c],
        ),
        (
            "a transaction that read its own write before committing (G1c)",
            H::default()
                .txn("x0", &[(0, 0, 20)], &[(20, 0, 21)], &[(0, 20)], OpType::Ok)
                .final_read(&[(0, 0, 20)], &[(0, 0, 21)], &[(0, 1)]),
            vec![K::G1c],
        ),
        (
            "a processor read a value of an aborted transaction (G1a)",
            chain()
                .txn("x1", &[(0, 2, 5)], &[(5, 0, 8)], &[], OpType::Ok)
                .final_read(
                    &CHAIN_IN,
                    &[(0, 0, 2), (0, 3, 8), (1, 2, 6)],
                    &[(0, 3), (1, 2)],
                ),
            vec![K::AbortedRead],
        ),
        (
            "the final read saw an aborted output (G1a)",
            chain().final_read(
                &CHAIN_IN,
                &[(0, 0, 2), (1, 1, 4), (1, 2, 6)],
                &CHAIN_COMMITTED,
            ),
            vec![K::AbortedRead],
        ),
        (
            "a processor read a value of an unknown transaction that never committed (G1a)",
            H::default()
                .txn("x0", &[], &[], &[(0, 1)], OpType::Info)
                .txn("x1", &[(0, 0, 1)], &[(1, 0, 2)], &[], OpType::Ok)
                .final_read(&[], &[(0, 0, 2)], &[(0, 1)]),
            vec![K::AbortedRead],
        ),
        (
            "an input processed into two committed outputs",
            chain()
                .txn("x1", &[(0, 0, 1)], &[(1, 0, 9)], &[], OpType::Ok)
                .final_read(
                    &CHAIN_IN,
                    &[(0, 0, 2), (0, 3, 9), (1, 2, 6)],
                    &CHAIN_COMMITTED,
                ),
            vec![K::CtpDuplicate],
        ),
        (
            "an input processed into committed output above the committed offset",
            chain().final_read(&CHAIN_IN, &CHAIN_OUT, &[(0, 0), (1, 2)]),
            vec![K::CtpDuplicate],
        ),
        (
            "an input below the committed offset never processed",
            chain().final_read(&CHAIN_IN, &CHAIN_OUT, &[(0, 5), (1, 2)]),
            vec![K::CtpLost],
        ),
        (
            "an output of an acknowledged transaction missing after the run",
            chain().final_read(&CHAIN_IN, &[(0, 0, 2)], &[(0, 2), (1, 0)]),
            vec![K::TxnLostWrite],
        ),
        (
            "half of an unknown transaction seen after the run",
            H::default()
                .txn("x0", &[], &[], &[(0, 1)], OpType::Ok)
                .txn("x1", &[(0, 0, 1)], &[(1, 0, 2)], &[(1, 3)], OpType::Info)
                .final_read(&[(0, 0, 1)], &[(0, 0, 2)], &[(0, 1)]),
            vec![K::TornTransaction],
        ),
        (
            "an input at two offsets",
            chain().final_read(
                &[(0, 0, 1), (0, 4, 7), (0, 5, 7), (1, 0, 3)],
                &CHAIN_OUT,
                &CHAIN_COMMITTED,
            ),
            vec![K::TxnDuplicate],
        ),
        (
            "an output no processor wrote",
            chain().final_read(
                &CHAIN_IN,
                &[(0, 0, 2), (0, 1, 99), (1, 2, 6)],
                &CHAIN_COMMITTED,
            ),
            vec![K::UnknownValue],
        ),
    ];
    for (name, h, want) in cases {
        let r = h.report();
        let want: BTreeSet<K> = want.into_iter().collect();
        assert_eq!(kinds(&r), want, "{name}: {r}");
        assert!(!r.valid(), "{name}: {r}");
    }
}

#[test]
fn a_cycle_is_shown_step_by_step() {
    let r = H::default()
        .txn("x0", &[(1, 0, 11)], &[(11, 0, 12)], &[(0, 10)], OpType::Ok)
        .txn("x1", &[(0, 0, 10)], &[(10, 1, 13)], &[(1, 11)], OpType::Ok)
        .final_read(
            &[(0, 0, 10), (1, 0, 11)],
            &[(0, 0, 12), (1, 0, 13)],
            &[(0, 1), (1, 1)],
        )
        .report();
    let g1c: Vec<&str> = r
        .anomalies
        .iter()
        .filter(|a| a.kind == K::G1c)
        .map(|a| a.detail.as_str())
        .collect();
    assert_eq!(g1c.len(), 1, "{r}");
    assert!(
        g1c[0].contains("x0 (op 0) wrote 10, read by x1 (op 2)")
            && g1c[0].contains("x1 (op 2) wrote 11, read by x0 (op 0)"),
        "{}",
        g1c[0]
    );
}
