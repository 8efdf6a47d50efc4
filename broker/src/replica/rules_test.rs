use std::collections::BTreeMap;

use super::*;

fn progress(leo: i64, caught_up: i64) -> FollowerProgress {
    FollowerProgress {
        log_end_offset: leo,
        durable_end_offset: leo,
        last_caught_up_ms: caught_up,
        last_fetch_ms: caught_up,
        last_fetch_leader_leo: leo,
    }
}

#[test]
fn fetch_updates_caught_up_time() {
    // (previous state, fetch offset, leader leo, now) -> last caught up
    let cases = [
        // reaching the leader's end: caught up now
        (progress(10, 100), 20, 20, 200, 200),
        // behind the current end but at the end as of the previous fetch
        // (leader leo 15 then): caught up at the previous fetch time
        (
            FollowerProgress {
                log_end_offset: 10,
                durable_end_offset: 0,
                last_caught_up_ms: 50,
                last_fetch_ms: 100,
                last_fetch_leader_leo: 15,
            },
            15,
            30,
            200,
            100,
        ),
        // behind both: unchanged
        (
            FollowerProgress {
                log_end_offset: 10,
                durable_end_offset: 0,
                last_caught_up_ms: 50,
                last_fetch_ms: 100,
                last_fetch_leader_leo: 15,
            },
            12,
            30,
            200,
            50,
        ),
        // first fetch ever, behind: unchanged
        (FollowerProgress::new_leader_view(70), 5, 30, 200, 70),
    ];
    for (mut p, offset, leo, now, want) in cases {
        p.on_fetch(offset, offset, leo, now);
        assert_eq!(p.last_caught_up_ms, want, "fetch {offset} leo {leo}");
        assert_eq!(p.log_end_offset, offset);
        assert_eq!(p.last_fetch_leader_leo, leo);
    }
}

#[test]
fn maximal_isr_includes_pending_additions() {
    type Case<'a> = (&'a [i32], Option<&'a [i32]>, &'a [i32]);
    let cases: [Case<'_>; 4] = [
        (&[1, 2], None, &[1, 2]),
        (&[1, 2], Some(&[1, 2, 3]), &[1, 2, 3]),
        // a pending shrink keeps the removed member until committed
        (&[1, 2, 3], Some(&[1, 2]), &[1, 2, 3]),
        (&[1], Some(&[1, 3]), &[1, 3]),
    ];
    for (isr, pending, want) in cases {
        let s = IsrState {
            isr: isr.to_vec(),
            pending: pending.map(<[i32]>::to_vec),
        };
        assert_eq!(
            s.maximal(),
            want.to_vec(),
            "isr {isr:?} pending {pending:?}"
        );
    }
}

#[test]
fn high_watermark_is_min_over_maximal_isr() {
    let followers: BTreeMap<i32, FollowerProgress> = [
        (2, progress(8, 0)),
        (3, progress(5, 0)),
        (4, progress(-1, 0)),
    ]
    .into_iter()
    .collect();
    // (current hw, leader leo, maximal isr, min isr) -> hw
    let cases: [(i64, i64, &[i32], usize, i64); 11] = [
        (0, 10, &[1], 1, 10),      // alone: the leader's end
        (0, 10, &[1, 2], 1, 8),    // slowest member
        (0, 10, &[1, 2, 3], 1, 5), //
        (6, 10, &[1, 2, 3], 1, 6), // never backwards
        (0, 10, &[1, 4], 1, 0),    // unknown position holds it
        (3, 10, &[1, 4], 1, 3),    //
        (0, 10, &[1, 9], 1, 0),    // member never seen: unknown
        // below min.insync.replicas: frozen (KIP-966)
        (2, 10, &[1], 2, 2),
        (2, 10, &[1, 2], 3, 2),
        // at it: moves
        (2, 10, &[1, 2], 2, 8),
        (2, 10, &[1, 2, 3], 3, 5),
    ];
    for (hw, leo, isr, min_isr, want) in cases {
        assert_eq!(
            next_high_watermark(hw, 1, leo, isr, &followers, min_isr, Durability::Cached),
            want,
            "hw {hw} leo {leo} isr {isr:?} min isr {min_isr}"
        );
    }
}

#[test]
fn out_of_sync_replicas_by_lag_time() {
    let followers: BTreeMap<i32, FollowerProgress> = [
        (2, progress(100, 0)),     // at the leader's end: in sync however old
        (3, progress(50, 1_000)),  // behind, caught up 29 s ago
        (4, progress(50, 0)),      // behind, caught up 30.001 s ago
        (5, progress(-1, 25_000)), // new leader's view, inside the window
    ]
    .into_iter()
    .collect();
    let got = out_of_sync_replicas(1, 100, &[1, 2, 3, 4, 5, 6], &followers, 30_001, 30_000);
    assert_eq!(got, vec![4]);
    // nobody lags with a log end the follower reached
    assert!(out_of_sync_replicas(1, 50, &[1, 3, 4], &followers, 90_000, 30_000).is_empty());
}

#[test]
fn join_isr_needs_hw_and_epoch_start() {
    // (follower leo, hw, epoch start) -> may join
    let cases = [
        (10, 10, 5, true),
        (12, 10, 5, true),
        (9, 10, 5, false),   // below the high watermark
        (10, 10, 11, false), // missing the start of the leader's epoch
        (11, 10, 11, true),
    ];
    for (leo, hw, start, want) in cases {
        assert_eq!(
            may_join_isr(&progress(leo, 0), hw, start, Durability::Cached),
            want,
            "leo {leo} hw {hw} start {start}"
        );
    }
}

/// A follower's durable end: what it reports, never above its log end.
#[test]
fn fetch_records_the_durable_end_capped_at_the_log_end() {
    // (fetch offset, reported durable offset) -> durable end
    let cases = [(10, 10, 10), (10, 4, 4), (10, -1, -1), (10, 12, 10)];
    for (offset, durable, want) in cases {
        let mut p = FollowerProgress::new_leader_view(0);
        p.on_fetch(offset, durable, 20, 5);
        assert_eq!(
            p.durable_end_offset, want,
            "fetch {offset} durable {durable}"
        );
    }
}

fn progress_synced(leo: i64, durable: i64) -> FollowerProgress {
    FollowerProgress {
        durable_end_offset: durable,
        ..progress(leo, 0)
    }
}

/// `write.caching=false`: the high watermark is the smallest durable end
/// over the maximal ISR, the leader's included; `Cached` ignores durable
/// ends.
#[test]
fn synced_high_watermark_is_min_durable_end_over_maximal_isr() {
    let followers: BTreeMap<i32, FollowerProgress> = [
        (2, progress_synced(10, 7)),
        (3, progress_synced(9, 9)),
        (4, progress_synced(10, -1)),
        (5, progress_synced(6, 10)), // stale report above its end
    ]
    .into_iter()
    .collect();
    let synced = |d| Durability::Synced {
        leader_durable_end: d,
    };
    // (current hw, leader leo, durability, maximal isr, min isr) -> hw
    type Case<'a> = (i64, i64, Durability, &'a [i32], usize, i64);
    let cases: [Case<'_>; 12] = [
        (0, 10, Durability::Cached, &[1, 2], 1, 10), // log ends
        (0, 10, synced(10), &[1, 2], 1, 7),          // follower's disk
        (0, 10, synced(5), &[1, 2], 1, 5),           // leader's disk
        (0, 10, synced(10), &[1], 1, 10),            // alone: its own disk
        (0, 10, synced(3), &[1], 1, 3),              //
        (0, 10, synced(12), &[1], 1, 10),            // never above the leader's end
        (0, 10, synced(10), &[1, 2, 3], 1, 7),       //
        (8, 10, synced(10), &[1, 2, 3], 1, 8),       // never backwards
        (0, 10, synced(10), &[1, 4], 1, 0),          // durable end unknown
        (0, 10, synced(10), &[1, 5], 1, 6),          // capped at its log end
        (0, 10, synced(10), &[1, 9], 1, 0),          // never seen
        (2, 10, synced(10), &[1], 2, 2),             // below min ISR: frozen
    ];
    for (hw, leo, durability, isr, min_isr, want) in cases {
        assert_eq!(
            next_high_watermark(hw, 1, leo, isr, &followers, min_isr, durability),
            want,
            "hw {hw} leo {leo} {durability:?} isr {isr:?} min isr {min_isr}"
        );
    }
}

#[test]
fn synced_topics_join_the_isr_only_with_the_high_watermark_on_disk() {
    let synced = Durability::Synced {
        leader_durable_end: 100,
    };
    // (log end, durable end, hw, epoch start, durability) -> may join
    let cases = [
        (10, 4, 10, 5, Durability::Cached, true), // cached: the log end counts
        (10, 4, 10, 5, synced, false),            // the hw is not on its disk yet
        (10, 10, 10, 5, synced, true),
        (12, 11, 10, 11, synced, true),
        (12, 10, 10, 11, synced, false), // epoch start not on disk
    ];
    for (leo, durable, hw, start, durability, want) in cases {
        assert_eq!(
            may_join_isr(&progress_synced(leo, durable), hw, start, durability),
            want,
            "leo {leo} durable {durable} hw {hw} start {start} {durability:?}"
        );
    }
}

proptest::proptest! {
    /// Whatever the positions, a synced high watermark never passes an
    /// offset some maximal-ISR member has not fsynced (unless it already
    /// was there), never goes backwards, and is never above the cached one.
    #[test]
    fn synced_high_watermark_never_passes_an_unsynced_member(
        current in 0i64..50,
        leader_leo in 0i64..100,
        leader_durable in -1i64..100,
        members in proptest::collection::vec((0i64..100, -1i64..100), 0..4),
        min_isr in 1usize..4,
    ) {
        let leader_durable = leader_durable.min(leader_leo);
        let mut followers = BTreeMap::new();
        let mut isr = vec![1];
        for (i, (leo, durable)) in members.iter().enumerate() {
            let id = i as i32 + 2;
            isr.push(id);
            followers.insert(id, progress_synced(*leo, *durable));
        }
        let synced = Durability::Synced { leader_durable_end: leader_durable };
        let hw = next_high_watermark(current, 1, leader_leo, &isr, &followers, min_isr, synced);
        let cached = next_high_watermark(current, 1, leader_leo, &isr, &followers, min_isr, Durability::Cached);
        proptest::prop_assert!(hw >= current);
        proptest::prop_assert!(hw <= cached);
        if hw > current {
            proptest::prop_assert!(hw <= leader_durable);
            for f in followers.values() {
                proptest::prop_assert!(hw <= f.durable_end_offset.min(f.log_end_offset));
            }
        }
    }
}

#[test]
fn acks_all_completion() {
    // (hw, required, maximal isr size, min isr) -> status
    let cases = [
        (10, 11, 3, 2, AcksAll::Pending),
        (11, 11, 3, 2, AcksAll::Done),
        (11, 11, 2, 2, AcksAll::Done),
        (11, 11, 1, 2, AcksAll::DoneBelowMinIsr),
        (20, 11, 1, 1, AcksAll::Done),
    ];
    for (hw, required, size, min, want) in cases {
        assert_eq!(
            acks_all_status(hw, required, size, min),
            want,
            "hw {hw} required {required} isr {size} min {min}"
        );
    }
}

#[test]
fn leader_detects_divergence() {
    // (fetch offset, last fetched epoch, leader end for epoch, log start) -> diverging
    let cases = [
        // no epoch yet (empty follower): nothing to compare
        (0, -1, None, 0, None),
        // same epoch, leader has at least as much
        (50, 3, Some((3, 80)), 0, None),
        (80, 3, Some((3, 80)), 0, None),
        // same epoch, leader's epoch ended earlier: follower has extra records
        (90, 3, Some((3, 80)), 0, Some((3, 80))),
        // the leader never had epoch 4 (its largest below is 3)
        (90, 4, Some((3, 85)), 0, Some((3, 85))),
        // epoch 4 unknown but it would still be consistent? no: epoch smaller
        (85, 4, Some((3, 85)), 0, Some((3, 85))),
        // leader knows nothing at or below: start over at its log start
        (40, 2, None, 30, Some((-1, 30))),
    ];
    for (offset, epoch, leader, start, want) in cases {
        assert_eq!(
            diverging_epoch(offset, epoch, leader, start),
            want,
            "offset {offset} epoch {epoch} leader {leader:?}"
        );
    }
}

#[test]
fn follower_truncates_by_epochs_not_high_watermark() {
    // (diverging, follower end for that epoch, follower leo) -> truncate to
    let cases = [
        // KIP-101: follower has epoch 3 up to 90, leader's epoch 3 ended at 80
        ((3, 80), Some((3, 90)), 90, 80),
        // follower's epoch 3 ended earlier than the leader's: keep its end
        ((3, 80), Some((3, 70)), 75, 70),
        // KIP-279: follower lacks epoch 3; its largest earlier (2) ends at 60
        ((3, 80), Some((2, 60)), 90, 60),
        // follower has nothing at or below: leader's end bounds it
        ((3, 80), None, 90, 80),
        ((3, 80), None, 50, 50),
        // leader knows no epoch: its log start
        ((-1, 30), Some((2, 60)), 90, 30),
    ];
    for (div, follower, leo, want) in cases {
        assert_eq!(
            truncation_offset(div, follower, leo),
            want,
            "diverging {div:?} follower {follower:?} leo {leo}"
        );
    }
}
