//! Hand-made group histories: a clean one, and one per anomaly (the
//! negative controls: a checker that passes these would prove nothing).

use super::super::{AnomalyKind as K, CheckOptions, Report, check as check_all};
use super::GROUP_FINAL;
use crate::history::{Body, Op, OpType, Polled};

#[derive(Default)]
pub(super) struct H {
    ops: Vec<Op>,
}

impl H {
    pub(super) fn push(mut self, process: &str, ty: OpType, body: Body) -> Self {
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

    /// Member `m` is given `offsets` of partition `p` (value = offset + 1000).
    pub(super) fn given(self, m: &str, p: i32, offsets: std::ops::Range<i64>) -> Self {
        let records = offsets
            .map(|o| Polled {
                partition: p,
                offset: o,
                value: Some(1000 + o as u64),
            })
            .collect();
        self.push(m, OpType::Ok, Body::GroupPoll { records })
    }

    pub(super) fn commit(self, m: &str, offsets: &[(i32, i64)], ty: OpType) -> Self {
        self.commit_as(m, offsets, ty, false)
    }

    /// A commit; `as_member`: acknowledged with the member's id and epoch.
    pub(super) fn commit_as(
        self,
        m: &str,
        offsets: &[(i32, i64)],
        ty: OpType,
        as_member: bool,
    ) -> Self {
        let body = |error, as_member| Body::Commit {
            offsets: offsets.to_vec(),
            error,
            as_member,
        };
        let error = (ty != OpType::Ok).then(|| "timed out".to_owned());
        self.push(m, OpType::Invoke, body(None, false)).push(
            m,
            ty,
            body(error, as_member && ty == OpType::Ok),
        )
    }

    /// A rebalance event (`assigned`, `revoked`, `lost`) or an
    /// incarnation mark (`joined`, `left`, `crashed`) of member `m`.
    pub(super) fn event(self, m: &str, event: &str, partitions: &[i32]) -> Self {
        self.push(
            m,
            OpType::Ok,
            Body::Rebalance {
                event: event.into(),
                partitions: partitions.to_vec(),
            },
        )
    }

    fn committed(self, m: &str, offsets: &[(i32, Option<i64>)]) -> Self {
        self.push(
            m,
            OpType::Invoke,
            Body::Committed {
                offsets: Vec::new(),
                error: None,
            },
        )
        .push(
            m,
            OpType::Ok,
            Body::Committed {
                offsets: offsets.to_vec(),
                error: None,
            },
        )
    }

    /// The final read of the records topic: every partition's records
    /// (`0..end`) and its end offsets.
    fn final_read(mut self, ends: &[(i32, i64)]) -> Self {
        for &(p, end) in ends {
            let records: Vec<Polled> = (0..end)
                .map(|o| Polled {
                    partition: p,
                    offset: o,
                    value: Some(1000 + o as u64),
                })
                .collect();
            let inv = Body::Poll {
                records: Vec::new(),
                error: None,
            };
            self = self.push("final", OpType::Invoke, inv).push(
                "final",
                OpType::Ok,
                Body::Poll {
                    records,
                    error: None,
                },
            );
        }
        self.push(
            "final",
            OpType::Ok,
            Body::Ends {
                topic: "jepsen".into(),
                offsets: ends.to_vec(),
            },
        )
    }

    pub(super) fn report(self) -> Report {
        check_all(&self.ops, &CheckOptions::default())
    }
}

/// Group anomalies only: the hand-made histories have no sends, so the
/// records checks would call every read value unknown.
fn group_kinds(r: &Report) -> Vec<K> {
    let group = [
        K::NonmonotonicCommit,
        K::CommitLost,
        K::CommitAboveHw,
        K::GroupSkip,
        K::GroupDuplicate,
    ];
    let mut k: Vec<K> = r
        .anomalies
        .iter()
        .map(|a| a.kind)
        .filter(|k| group.contains(k))
        .collect();
    k.dedup();
    k
}

/// Two members hand partition 0 over at the committed offset 5.
fn handover() -> H {
    H::default()
        .push(
            "g0",
            OpType::Ok,
            Body::Rebalance {
                event: "assigned".into(),
                partitions: vec![0],
            },
        )
        .given("g0", 0, 0..5)
        .commit("g0", &[(0, 5)], OpType::Ok)
        .push(
            "g0",
            OpType::Ok,
            Body::Rebalance {
                event: "revoked".into(),
                partitions: vec![0],
            },
        )
        .given("g1", 0, 5..8)
        .commit("g1", &[(0, 8)], OpType::Ok)
        .committed("g1", &[(0, Some(8))])
}

#[test]
fn clean_handover_between_owners_has_no_group_anomaly() {
    let r = handover()
        .committed(GROUP_FINAL, &[(0, Some(8))])
        .final_read(&[(0, 10)])
        .report();
    assert_eq!(group_kinds(&r), vec![], "{r}");
    assert_eq!(r.stats.group_commits_ok, 2);
    assert_eq!(r.stats.group_records, 8);
}

#[test]
fn each_negative_control_is_reported() {
    // (name, history, the anomaly it must raise, whether fatal)
    let cases: Vec<(&str, H, K, bool)> = vec![
        (
            "read back below an acknowledged commit",
            handover()
                .committed("g0", &[(0, Some(5))])
                .committed(GROUP_FINAL, &[(0, Some(8))])
                .final_read(&[(0, 10)]),
            K::NonmonotonicCommit,
            true,
        ),
        (
            "read back nothing after an acknowledged commit",
            handover()
                .committed("g0", &[(0, None)])
                .committed(GROUP_FINAL, &[(0, Some(8))])
                .final_read(&[(0, 10)]),
            K::NonmonotonicCommit,
            true,
        ),
        (
            "an acknowledged commit below an earlier one",
            handover()
                .commit("g0", &[(0, 3)], OpType::Ok)
                .committed(GROUP_FINAL, &[(0, Some(8))])
                .final_read(&[(0, 10)]),
            K::NonmonotonicCommit,
            true,
        ),
        (
            "a commit above the high watermark",
            handover()
                .commit("g1", &[(0, 12)], OpType::Ok)
                .committed(GROUP_FINAL, &[(0, Some(12))])
                .final_read(&[(0, 8)]),
            K::CommitAboveHw,
            true,
        ),
        (
            "the next owner starts after records nobody was given",
            H::default()
                .given("g0", 0, 0..5)
                .commit("g0", &[(0, 7)], OpType::Ok)
                .given("g1", 0, 7..9)
                .commit("g1", &[(0, 9)], OpType::Ok)
                .committed(GROUP_FINAL, &[(0, Some(9))])
                .final_read(&[(0, 10)]),
            K::GroupSkip,
            true,
        ),
        (
            "the next owner starts below an acknowledged commit",
            handover()
                .push(
                    "g2",
                    OpType::Ok,
                    Body::Rebalance {
                        event: "assigned".into(),
                        partitions: vec![0],
                    },
                )
                .given("g2", 0, 6..8)
                .committed(GROUP_FINAL, &[(0, Some(8))])
                .final_read(&[(0, 10)]),
            K::CommitLost,
            true,
        ),
        (
            "records given twice across a handover",
            H::default()
                .given("g0", 0, 0..5)
                .commit("g0", &[(0, 3)], OpType::Ok)
                .given("g1", 0, 3..6)
                .commit("g1", &[(0, 6)], OpType::Ok)
                .committed(GROUP_FINAL, &[(0, Some(6))])
                .final_read(&[(0, 6)]),
            K::GroupDuplicate,
            false,
        ),
    ];
    for (name, h, kind, fatal) in cases {
        let r = h.report();
        // Duplicates come with some of the others (a restart below a
        // commit re-delivers); they are only information.
        let found: Vec<K> = group_kinds(&r)
            .into_iter()
            .filter(|k| *k == kind || *k != K::GroupDuplicate)
            .collect();
        assert_eq!(found, vec![kind], "{name}: {r}");
        assert!(
            r.anomalies
                .iter()
                .filter(|a| a.kind == kind)
                .all(|a| a.fatal == fatal),
            "{name}: {r}"
        );
    }
}

#[test]
fn an_unacknowledged_commit_may_be_lost() {
    // The commit of 9 timed out: reading back 8 is no regression.
    let r = handover()
        .commit("g1", &[(0, 9)], OpType::Info)
        .committed(GROUP_FINAL, &[(0, Some(8))])
        .final_read(&[(0, 10)])
        .report();
    assert_eq!(group_kinds(&r), vec![], "{r}");
}

#[test]
fn skipped_offsets_are_named_as_ranges() {
    let r = H::default()
        .given("g0", 0, 0..2)
        .given("g0", 0, 5..6)
        .given("g0", 0, 7..9)
        .commit("g0", &[(0, 9)], OpType::Ok)
        .committed(GROUP_FINAL, &[(0, Some(9))])
        .final_read(&[(0, 9)])
        .report();
    let skip = r
        .anomalies
        .iter()
        .find(|a| a.kind == K::GroupSkip)
        .expect("a skip");
    assert!(skip.detail.contains("offsets 2..=4, 6"), "{}", skip.detail);
}
