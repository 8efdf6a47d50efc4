//! Hand-made histories, one per anomaly (and the near misses that must not
//! be reported), checked table-driven.

use std::collections::BTreeSet;

use super::*;
use crate::history::{Body, HEAL, Op, OpType, Polled};

use AnomalyKind as K;

/// Builds a history; every op takes 1 ms unless placed with `at`.
#[derive(Default)]
struct H {
    ops: Vec<Op>,
    t: u64,
}

impl H {
    fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, process: &str, ty: OpType, body: Body) {
        self.ops.push(Op {
            index: self.ops.len() as u64,
            time_us: self.t,
            process: process.into(),
            ty,
            body,
        });
        self.t += 1_000;
    }

    /// Continues at `secs` seconds.
    fn at(mut self, secs: f64) -> Self {
        self.t = (secs * 1e6) as u64;
        self
    }

    fn send(
        self,
        process: &str,
        p: i32,
        v: u64,
        ty: OpType,
        offset: Option<i64>,
        once: bool,
    ) -> Self {
        self.send_as(process, p, v, ty, offset, once, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_as(
        mut self,
        process: &str,
        p: i32,
        v: u64,
        ty: OpType,
        offset: Option<i64>,
        once: bool,
        idempotent: bool,
    ) -> Self {
        let body = |offset| Body::Send {
            partition: p,
            value: v,
            offset,
            error: None,
            single_attempt: once,
            idempotent,
        };
        self.push(process, OpType::Invoke, body(None));
        self.push(process, ty, body(offset));
        self
    }

    /// A retrying producer's acknowledged send.
    fn ok(self, process: &str, p: i32, v: u64, o: i64) -> Self {
        self.send(process, p, v, OpType::Ok, Some(o), false)
    }

    /// An idempotent (retrying) producer's acknowledged send.
    fn ok_idempotent(self, process: &str, p: i32, v: u64, o: i64) -> Self {
        self.send_as(process, p, v, OpType::Ok, Some(o), false, true)
    }

    /// A single-attempt producer's acknowledged send.
    fn ok_once(self, process: &str, p: i32, v: u64, o: i64) -> Self {
        self.send(process, p, v, OpType::Ok, Some(o), true)
    }

    fn fail(self, process: &str, p: i32, v: u64) -> Self {
        self.send(process, p, v, OpType::Fail, None, true)
    }

    fn info(self, process: &str, p: i32, v: u64) -> Self {
        self.send(process, p, v, OpType::Info, None, false)
    }

    /// A poll returning `(partition, offset, value)`; value `None` is a
    /// corrupt payload.
    fn poll_raw(mut self, process: &str, records: &[(i32, i64, Option<u64>)]) -> Self {
        self.push(
            process,
            OpType::Invoke,
            Body::Poll {
                records: Vec::new(),
                error: None,
            },
        );
        self.push(
            process,
            OpType::Ok,
            Body::Poll {
                records: records
                    .iter()
                    .map(|(partition, offset, value)| Polled {
                        partition: *partition,
                        offset: *offset,
                        value: *value,
                    })
                    .collect(),
                error: None,
            },
        );
        self
    }

    fn poll(self, process: &str, records: &[(i32, i64, u64)]) -> Self {
        let r: Vec<_> = records.iter().map(|(p, o, v)| (*p, *o, Some(*v))).collect();
        self.poll_raw(process, &r)
    }

    fn seek(mut self, process: &str, p: i32, o: i64) -> Self {
        self.push(
            process,
            OpType::Ok,
            Body::Seek {
                partition: p,
                offset: o,
            },
        );
        self
    }

    fn nemesis(mut self, fault: &str) -> Self {
        let body = Body::Nemesis {
            fault: fault.into(),
            detail: String::new(),
        };
        self.push("nemesis", OpType::Invoke, body.clone());
        self.push("nemesis", OpType::Ok, body);
        self
    }

    fn replica(mut self, node: i32, p: i32, hw: i64, records: &[(i64, u64)]) -> Self {
        self.push(
            "replicas",
            OpType::Ok,
            Body::Replica {
                node,
                partition: p,
                high_watermark: hw,
                records: records
                    .iter()
                    .map(|(o, v)| Polled {
                        partition: p,
                        offset: *o,
                        value: Some(*v),
                    })
                    .collect(),
            },
        );
        self
    }

    fn raw(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }
}

fn kinds(list: &[AnomalyKind]) -> BTreeSet<AnomalyKind> {
    list.iter().copied().collect()
}

fn options() -> CheckOptions {
    CheckOptions {
        liveness_bound_us: 10_000_000,
        partitions: Vec::new(),
    }
}

#[test]
fn each_anomaly_is_found_in_its_hand_made_history() {
    // (name, history, every kind reported, the fatal ones)
    let table: Vec<(&str, H, &[AnomalyKind], &[AnomalyKind])> = vec![
        (
            "clean: two producers, one consumer reads everything in order",
            H::new()
                .ok("p0", 0, 1, 0)
                .ok("p1", 0, 2, 1)
                .ok("p0", 1, 3, 0)
                .seek("c0", 0, 0)
                .seek("c0", 1, 0)
                .poll("c0", &[(0, 0, 1), (1, 0, 3)])
                .poll("c0", &[(0, 1, 2)]),
            &[],
            &[],
        ),
        (
            "lost-write: reads reach past an acked offset that nobody read",
            H::new()
                .ok("p0", 0, 10, 0)
                .ok("p0", 0, 11, 1)
                .ok("p0", 0, 12, 2)
                .ok("p0", 0, 13, 3)
                .seek("c0", 0, 0)
                .poll("c0", &[(0, 0, 10), (0, 1, 11)])
                .seek("c1", 0, 3)
                .poll("c1", &[(0, 3, 13)]),
            &[K::LostWrite],
            &[K::LostWrite],
        ),
        (
            "unseen: an acked value above everything read",
            H::new()
                .ok("p0", 0, 10, 0)
                .ok("p0", 0, 11, 1)
                .seek("c0", 0, 0)
                .poll("c0", &[(0, 0, 10)]),
            &[K::Unseen],
            &[K::Unseen],
        ),
        (
            "indeterminate sends never read are not unseen",
            H::new()
                .ok("p0", 0, 10, 0)
                .info("p0", 0, 11)
                .fail("p0", 0, 12)
                .poll("c0", &[(0, 0, 10)]),
            &[],
            &[],
        ),
        (
            "inconsistent-offsets: two readers see different values at one offset",
            H::new()
                .info("p0", 0, 10)
                .info("p1", 0, 11)
                .poll("c0", &[(0, 0, 10)])
                .poll("c1", &[(0, 0, 11)]),
            &[K::InconsistentOffsets],
            &[K::InconsistentOffsets],
        ),
        (
            "inconsistent-offsets with lost-write: the acked offset was overwritten",
            H::new()
                .ok("p0", 0, 10, 0)
                .info("p1", 0, 11)
                .poll("c0", &[(0, 0, 11)]),
            &[K::InconsistentOffsets, K::LostWrite],
            &[K::InconsistentOffsets, K::LostWrite],
        ),
        (
            "duplicate of a retried send is reported but not fatal",
            H::new()
                .ok("p0", 0, 10, 1)
                .poll("c0", &[(0, 0, 10), (0, 1, 10)]),
            &[K::Duplicate],
            &[],
        ),
        (
            "duplicate of a single-attempt send is fatal",
            H::new()
                .ok_once("p0", 0, 10, 0)
                .poll("c0", &[(0, 0, 10), (0, 1, 10)]),
            &[K::Duplicate],
            &[K::Duplicate],
        ),
        (
            "duplicate of an idempotent producer's send is fatal",
            H::new()
                .ok_idempotent("p0", 0, 10, 1)
                .poll("c0", &[(0, 0, 10), (0, 1, 10)]),
            &[K::Duplicate],
            &[K::Duplicate],
        ),
        (
            "duplicate across partitions",
            H::new()
                .info("p0", 0, 10)
                .poll("c0", &[(0, 0, 10), (1, 0, 10)]),
            &[K::Duplicate],
            &[],
        ),
        (
            "nonmonotonic-send: a producer's later send acked at a lower offset",
            H::new()
                .ok("p0", 0, 10, 5)
                .ok("p0", 0, 11, 3)
                .seek("c0", 0, 3)
                .poll("c0", &[(0, 3, 11)])
                .seek("c0", 0, 5)
                .poll("c0", &[(0, 5, 10)]),
            &[K::NonmonotonicSend],
            &[K::NonmonotonicSend],
        ),
        (
            "offsets of different partitions or producers are not compared",
            H::new()
                .ok("p0", 0, 10, 5)
                .ok("p0", 1, 11, 3)
                .ok("p1", 0, 12, 4)
                .poll("c0", &[(0, 4, 12), (0, 5, 10), (1, 3, 11)]),
            &[],
            &[],
        ),
        (
            "nonmonotonic-poll: a consumer reads an offset again without seeking",
            H::new()
                .ok("p0", 0, 10, 0)
                .ok("p0", 0, 11, 1)
                .poll("c0", &[(0, 0, 10), (0, 1, 11)])
                .poll("c0", &[(0, 1, 11)]),
            &[K::NonmonotonicPoll],
            &[K::NonmonotonicPoll],
        ),
        (
            "nonmonotonic-poll: reading below the position sought",
            H::new()
                .ok("p0", 0, 10, 0)
                .ok("p0", 0, 11, 1)
                .seek("c0", 0, 1)
                .poll("c0", &[(0, 0, 10), (0, 1, 11)]),
            &[K::NonmonotonicPoll],
            &[K::NonmonotonicPoll],
        ),
        (
            "a seek back between polls is not nonmonotonic",
            H::new()
                .ok("p0", 0, 10, 0)
                .poll("c0", &[(0, 0, 10)])
                .seek("c0", 0, 0)
                .poll("c0", &[(0, 0, 10)]),
            &[],
            &[],
        ),
        (
            "poll-skip: a consumer jumps over an offset another consumer read",
            H::new()
                .ok("p0", 0, 10, 0)
                .ok("p0", 0, 11, 1)
                .ok("p0", 0, 12, 2)
                .poll("c0", &[(0, 0, 10)])
                .poll("c0", &[(0, 2, 12)])
                .poll("c1", &[(0, 1, 11)]),
            &[K::PollSkip],
            &[K::PollSkip],
        ),
        (
            "poll-skip right after a seek",
            H::new()
                .ok("p0", 0, 10, 0)
                .ok("p0", 0, 11, 1)
                .seek("c0", 0, 0)
                .poll("c0", &[(0, 1, 11)])
                .poll("c1", &[(0, 0, 10)]),
            &[K::PollSkip],
            &[K::PollSkip],
        ),
        (
            "a gap nobody knows a record in is not a skip",
            H::new()
                .ok("p0", 0, 10, 0)
                .ok("p0", 0, 11, 2)
                .poll("c0", &[(0, 0, 10), (0, 2, 11)]),
            &[],
            &[],
        ),
        (
            "failed-write-visible: a definitely failed send is read",
            H::new().fail("p0", 0, 10).poll("c0", &[(0, 0, 10)]),
            &[K::FailedWriteVisible],
            &[K::FailedWriteVisible],
        ),
        (
            "unknown-value: a value nobody sent, and a corrupt payload",
            H::new()
                .info("p0", 0, 10)
                .poll_raw("c0", &[(0, 0, Some(10)), (0, 1, Some(99)), (0, 2, None)]),
            &[K::UnknownValue],
            &[K::UnknownValue],
        ),
        (
            "replica-lost-write: a final-ISR replica lacks an acked offset below the high watermark",
            H::new()
                .ok("p0", 0, 10, 0)
                .ok("p0", 0, 11, 1)
                .poll("c0", &[(0, 0, 10), (0, 1, 11)])
                .replica(1, 0, 2, &[(0, 10), (1, 11)])
                .replica(2, 0, 2, &[(0, 10)]),
            &[K::ReplicaLostWrite],
            &[K::ReplicaLostWrite],
        ),
        (
            "diverging replicas are inconsistent offsets",
            H::new()
                .ok("p0", 0, 10, 0)
                .info("p0", 0, 11)
                .poll("c0", &[(0, 0, 10)])
                .replica(1, 0, 1, &[(0, 10)])
                .replica(2, 0, 1, &[(0, 11)]),
            &[K::InconsistentOffsets],
            &[K::InconsistentOffsets],
        ),
        (
            "malformed: a completion without invocation, a value sent twice",
            H::new()
                .ok("p0", 0, 10, 0)
                .ok("p1", 0, 10, 1)
                .poll("c0", &[(0, 0, 10), (0, 1, 10)])
                .raw(Op {
                    index: 99,
                    time_us: 1,
                    process: "p7".into(),
                    ty: OpType::Ok,
                    body: Body::Poll {
                        records: Vec::new(),
                        error: None,
                    },
                }),
            &[K::MalformedHistory, K::Duplicate],
            &[K::MalformedHistory],
        ),
    ];
    for (name, h, expected, fatal) in table {
        let report = check(&h.ops, &options());
        assert_eq!(report.kinds(), kinds(expected), "{name}:\n{report}");
        assert_eq!(report.fatal_kinds(), kinds(fatal), "{name}:\n{report}");
        assert_eq!(report.valid(), fatal.is_empty(), "{name}");
    }
}

#[test]
fn lost_and_unseen_values_are_counted_one_by_one() {
    let h = H::new()
        .ok("p0", 0, 10, 0)
        .ok("p0", 0, 11, 1)
        .ok("p0", 0, 12, 2)
        .ok("p0", 0, 13, 3)
        .ok("p0", 0, 14, 4)
        .seek("c0", 0, 2)
        .poll("c0", &[(0, 2, 12)]);
    let report = check(&h.ops, &options());
    assert_eq!(report.count(K::LostWrite), 2, "{report}");
    assert_eq!(report.count(K::Unseen), 2, "{report}");
    assert_eq!(report.stats.unseen, 4);
    assert_eq!(report.stats.sends_ok, 5);
}

#[test]
fn liveness_is_judged_after_heals_followed_by_a_quiet_period() {
    let recovered = |h: H| {
        h.at(5.0)
            .ok("p0", 0, 20, 0)
            .ok("p0", 1, 21, 0)
            .poll("c0", &[(0, 0, 20), (1, 0, 21)])
    };
    // (name, history, liveness anomalies expected)
    let table: Vec<(&str, H, usize)> = vec![
        (
            "recovers within the bound",
            recovered(H::new().nemesis("kill").at(2.0).nemesis(HEAL)),
            0,
        ),
        (
            "no acknowledged produce after the heal, for either partition",
            H::new()
                .ok("p0", 0, 1, 0)
                .ok("p0", 1, 2, 0)
                .poll("c0", &[(0, 0, 1), (1, 0, 2)])
                .nemesis("kill")
                .at(2.0)
                .nemesis(HEAL)
                .at(4.0)
                .info("p0", 0, 3)
                .info("p0", 1, 4),
            2,
        ),
        (
            "records written before the heal do not prove recovery",
            H::new()
                .nemesis("kill")
                .info("p0", 0, 1)
                .at(2.0)
                .nemesis(HEAL)
                .at(3.0)
                .ok("p0", 0, 5, 1)
                .poll("c0", &[(0, 0, 1)]),
            1,
        ),
        (
            "recovery beyond the bound",
            H::new()
                .nemesis("kill")
                .at(2.0)
                .nemesis(HEAL)
                .at(20.0)
                .ok("p0", 0, 20, 0)
                .poll("c0", &[(0, 0, 20)]),
            1,
        ),
        (
            "a heal followed soon by the next fault is not judged",
            H::new()
                .nemesis("kill")
                .at(2.0)
                .nemesis(HEAL)
                .at(4.0)
                .nemesis("pause")
                .at(30.0)
                .ok("p0", 0, 20, 0)
                .poll("c0", &[(0, 0, 20)]),
            0,
        ),
    ];
    for (name, h, expected) in table {
        let report = check(&h.ops, &options());
        assert_eq!(report.count(K::Liveness), expected, "{name}:\n{report}");
    }
    let report = check(
        &recovered(H::new().nemesis("kill").at(2.0).nemesis(HEAL)).ops,
        &options(),
    );
    assert_eq!(report.stats.recovery_us.len(), 2);
    assert!(report.stats.recovery_us.iter().all(|r| r.2 <= 3_100_000));
}

#[test]
fn liveness_covers_partitions_that_received_nothing_when_named() {
    let h = H::new()
        .nemesis("kill")
        .at(1.0)
        .nemesis(HEAL)
        .at(2.0)
        .ok("p0", 0, 1, 0)
        .poll("c0", &[(0, 0, 1)]);
    let opts = CheckOptions {
        partitions: vec![0, 1],
        ..options()
    };
    let report = check(&h.ops, &opts);
    assert_eq!(report.count(K::Liveness), 1, "{report}");
    assert_eq!(report.anomalies[0].partition, Some(1));
}

#[test]
fn recovered_tells_the_runner_when_every_partition_is_back() {
    let h = H::new().nemesis("kill").at(1.0).nemesis(HEAL);
    let heal_us = h.ops.last().map(|o| o.time_us).unwrap();
    assert!(!recovered(&h.ops, heal_us, &[0]));
    let h = h.at(2.0).ok("p0", 0, 1, 0);
    assert!(!recovered(&h.ops, heal_us, &[0]), "acked but not consumed");
    let h = h.poll("c0", &[(0, 0, 1)]);
    assert!(recovered(&h.ops, heal_us, &[0]));
    assert!(!recovered(&h.ops, heal_us, &[0, 1]));
}

#[test]
fn the_report_names_ops_to_look_up() {
    let h = H::new()
        .ok("p0", 0, 10, 0)
        .ok("p0", 0, 11, 1)
        .poll("c0", &[(0, 0, 10)]);
    let report = check(&h.ops, &options());
    let text = report.to_string();
    assert!(text.starts_with("INVALID"), "{text}");
    assert!(
        text.contains("value 11 acknowledged at 0-1 (op 3) was never read"),
        "{text}"
    );
}
