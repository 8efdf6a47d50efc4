//! The single-owner check on hand-made histories: histories built to fail
//! (the check must report a fatal `double-owner` or `unowned-poll`) and
//! near misses that must not fail (overlaps the history cannot prove).

use super::super::AnomalyKind as K;
use super::tests::H;
use crate::history::OpType;

/// The single-owner anomalies found: (kind, fatal), in report order.
fn owner_anomalies(h: H) -> Vec<(K, bool)> {
    let r = h.report();
    r.anomalies
        .iter()
        .filter(|a| matches!(a.kind, K::DoubleOwner | K::UnownedPoll))
        .map(|a| (a.kind, a.fatal))
        .collect()
}

fn member_commit(h: H, m: &str, offset: i64) -> H {
    h.commit_as(m, &[(0, offset)], OpType::Ok, true)
}

/// g0 joined and holds partition 0, polled 0..3 and committed 3.
fn g0_holds() -> H {
    let h = H::default()
        .event("g0", "joined", &[])
        .event("g0", "assigned", &[0])
        .given("g0", 0, 0..3);
    member_commit(h, "g0", 3)
}

/// g1 joins and is given partition 0 while g0 still records holding it.
fn g1_given_too(h: H) -> H {
    h.event("g1", "joined", &[]).event("g1", "assigned", &[0])
}

#[test]
fn each_double_owner_control_is_reported_fatal() {
    let both_commit = |end: &str| {
        let h = g1_given_too(g0_holds()).given("g0", 0, 3..5);
        let h = member_commit(h, "g0", 5).given("g1", 0, 5..7);
        member_commit(h, "g1", 7).event("g0", end, &[0])
    };
    // (name, history, the anomaly it must raise)
    let cases: Vec<(&str, H, K)> = vec![
        (
            "both members commit as current members inside the overlap, then g0 revokes",
            both_commit("revoked"),
            K::DoubleOwner,
        ),
        (
            "the same, and g0 learns only later that it lost the partition",
            both_commit("lost"),
            K::DoubleOwner,
        ),
        (
            "the same, and g0 never gives the partition up",
            {
                let h = g1_given_too(g0_holds()).given("g1", 0, 3..4);
                let h = member_commit(h, "g1", 4);
                member_commit(h, "g0", 4)
            },
            K::DoubleOwner,
        ),
        (
            "a member polls a partition it revoked while another holds it",
            g1_given_too(g0_holds().event("g0", "revoked", &[0])).given("g0", 0, 3..4),
            K::DoubleOwner,
        ),
        (
            "a member polls a partition it was never given while another holds it",
            g0_holds().event("g1", "joined", &[]).given("g1", 0, 3..4),
            K::DoubleOwner,
        ),
        (
            "a member polls a partition nobody holds",
            H::default().event("g0", "joined", &[]).given("g0", 0, 0..2),
            K::UnownedPoll,
        ),
        (
            "a member polls a partition it lost, nobody else holding it",
            g0_holds().event("g0", "lost", &[0]).given("g0", 0, 3..4),
            K::UnownedPoll,
        ),
    ];
    for (name, h, kind) in cases {
        let found = owner_anomalies(h);
        assert_eq!(found, vec![(kind, true)], "{name}");
    }
}

#[test]
fn overlaps_the_history_cannot_prove_are_not_fatal() {
    // (name, history, how many non-fatal overlaps it must report)
    let cases: Vec<(&str, H, usize)> = vec![
        (
            "a clean handover: g0 revokes before g1 is given the partition",
            {
                let h = g1_given_too(g0_holds().event("g0", "revoked", &[0])).given("g1", 0, 3..5);
                member_commit(h, "g1", 5)
            },
            0,
        ),
        (
            "g0 crashed holding it; g1 is given it after (g0's session expired)",
            {
                let h = g1_given_too(g0_holds().event("g0", "crashed", &[])).given("g1", 0, 3..5);
                member_commit(h, "g1", 5)
            },
            0,
        ),
        (
            "g0 left; g1 is given it after",
            g1_given_too(g0_holds().event("g0", "left", &[])),
            0,
        ),
        (
            "g0's revocation is recorded late and only g0 commits in the overlap (g1 may \
             have been given it after g0's session expired)",
            {
                let h = g1_given_too(g0_holds()).given("g0", 0, 3..4);
                member_commit(h, "g0", 4).event("g0", "revoked", &[0])
            },
            1,
        ),
        (
            "g0 learns late that it was fenced; only g1 commits in the overlap (a zombie)",
            {
                let h = g1_given_too(g0_holds())
                    .given("g0", 0, 3..4)
                    .given("g1", 0, 3..5);
                member_commit(h, "g1", 5).event("g0", "lost", &[0])
            },
            1,
        ),
        (
            "g0's commit was invoked before g1 was given the partition",
            {
                let h = H::default()
                    .event("g0", "joined", &[])
                    .event("g0", "assigned", &[0])
                    .given("g0", 0, 0..3)
                    .push(
                        "g0",
                        OpType::Invoke,
                        crate::history::Body::Commit {
                            offsets: vec![(0, 3)],
                            error: None,
                            as_member: false,
                        },
                    );
                let h = g1_given_too(h).push(
                    "g0",
                    OpType::Ok,
                    crate::history::Body::Commit {
                        offsets: vec![(0, 3)],
                        error: None,
                        as_member: true,
                    },
                );
                let h = member_commit(h.given("g1", 0, 3..5), "g1", 5);
                h.event("g0", "revoked", &[0])
            },
            1,
        ),
        (
            "both commit in the overlap, but not as members (the group may have been empty)",
            {
                let h = g1_given_too(g0_holds()).commit("g0", &[(0, 3)], OpType::Ok);
                h.commit("g1", &[(0, 3)], OpType::Ok)
                    .event("g0", "revoked", &[0])
            },
            1,
        ),
        (
            "g0 crashed unrecorded and rejoined: its new consumer's commits prove nothing \
             about the old one",
            {
                let h = g1_given_too(g0_holds()).event("g0", "joined", &[]);
                let h = member_commit(h, "g0", 3).given("g1", 0, 3..5);
                member_commit(h, "g1", 5)
            },
            1,
        ),
        (
            "members without incarnation marks (an older history): overlaps never fatal, \
             polls not checked",
            {
                let h = H::default()
                    .event("g0", "assigned", &[0])
                    .given("g0", 0, 0..3)
                    .event("g1", "assigned", &[0])
                    .given("g1", 0, 3..5)
                    .given("g2", 0, 5..6);
                let h = member_commit(member_commit(h, "g0", 3), "g1", 5);
                h.event("g0", "revoked", &[0])
            },
            1,
        ),
    ];
    for (name, h, overlaps) in cases {
        let found = owner_anomalies(h);
        assert_eq!(
            found,
            vec![(K::DoubleOwner, false); overlaps],
            "{name}: {found:?}"
        );
    }
}

#[test]
fn a_member_given_a_partition_back_holds_it_again() {
    // Revoked, then assigned again in the same incarnation: its polls are
    // its own, and its two holds are never compared with each other.
    let h = g0_holds()
        .event("g0", "revoked", &[0])
        .event("g0", "assigned", &[0])
        .given("g0", 0, 3..5);
    assert_eq!(owner_anomalies(member_commit(h, "g0", 5)), vec![]);
}
