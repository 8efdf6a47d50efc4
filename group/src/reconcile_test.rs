use std::collections::BTreeSet;

use super::*;

fn tid() -> Uuid {
    Uuid::from_u128(1)
}

fn a(ps: &[i32]) -> Assignment {
    if ps.is_empty() {
        return Assignment::new();
    }
    [(tid(), ps.iter().copied().collect())]
        .into_iter()
        .collect()
}

fn cur(
    epoch: i32,
    assigned: &[i32],
    pending: &[i32],
    state: Option<MemberState>,
) -> CurrentAssignment {
    CurrentAssignment {
        member_epoch: epoch,
        previous_member_epoch: 0,
        state,
        assigned: a(assigned),
        pending_revocation: a(pending),
    }
}

#[test]
fn reconciliation_steps() {
    use MemberState::*;
    // (current, target, target epoch, eager, owned report, held by others,
    //  want: epoch, assigned, pending, state)
    type Case<'a> = (
        CurrentAssignment,
        &'a [i32],
        i32,
        bool,
        Option<&'a [i32]>,
        &'a [i32],
        (i32, &'a [i32], &'a [i32], MemberState),
    );
    let cases: Vec<Case<'_>> = vec![
        // A new member takes its whole target when nobody holds it.
        (
            cur(0, &[], &[], None),
            &[0, 1],
            1,
            false,
            None,
            &[],
            (1, &[0, 1], &[], Stable),
        ),
        // ... but waits for partitions another member still holds.
        (
            cur(0, &[], &[], None),
            &[0, 1],
            1,
            false,
            None,
            &[1],
            (1, &[0], &[], UnreleasedPartitions),
        ),
        // Cooperative: keep 0, revoke 2 first, stay at the old epoch.
        (
            cur(1, &[0, 2], &[], Some(Stable)),
            &[0, 1],
            2,
            false,
            None,
            &[],
            (1, &[0], &[2], UnrevokedPartitions),
        ),
        // Still owns 2: nothing moves.
        (
            cur(1, &[0], &[2], Some(UnrevokedPartitions)),
            &[0, 1],
            2,
            false,
            Some(&[0, 2]),
            &[],
            (1, &[0], &[2], UnrevokedPartitions),
        ),
        // No report: nothing moves either.
        (
            cur(1, &[0], &[2], Some(UnrevokedPartitions)),
            &[0, 1],
            2,
            false,
            None,
            &[],
            (1, &[0], &[2], UnrevokedPartitions),
        ),
        // Revoked: advance to epoch 2 and take 1.
        (
            cur(1, &[0], &[2], Some(UnrevokedPartitions)),
            &[0, 1],
            2,
            false,
            Some(&[0]),
            &[],
            (2, &[0, 1], &[], Stable),
        ),
        // Eager: give up everything, even what stays in the target.
        (
            cur(1, &[0, 2], &[], Some(Stable)),
            &[0, 1],
            2,
            true,
            None,
            &[],
            (1, &[], &[0, 2], UnrevokedPartitions),
        ),
        (
            cur(1, &[], &[0, 2], Some(UnrevokedPartitions)),
            &[0, 1],
            2,
            true,
            Some(&[]),
            &[],
            (2, &[0, 1], &[], Stable),
        ),
        // Eager with nothing owned moves on at once.
        (
            cur(1, &[], &[], Some(Stable)),
            &[3],
            2,
            true,
            None,
            &[],
            (2, &[3], &[], Stable),
        ),
        // Unreleased: picks up the partition once its old owner let go.
        (
            cur(2, &[0], &[], Some(UnreleasedPartitions)),
            &[0, 1],
            2,
            false,
            Some(&[0]),
            &[1],
            (2, &[0], &[], UnreleasedPartitions),
        ),
        (
            cur(2, &[0], &[], Some(UnreleasedPartitions)),
            &[0, 1],
            2,
            false,
            Some(&[0]),
            &[],
            (2, &[0, 1], &[], Stable),
        ),
        // Stable and nothing changed.
        (
            cur(2, &[0, 1], &[], Some(Stable)),
            &[0, 1],
            2,
            true,
            Some(&[0, 1]),
            &[5],
            (2, &[0, 1], &[], Stable),
        ),
    ];
    for (i, (current, target, epoch, eager, owned, held, want)) in cases.into_iter().enumerate() {
        let held: BTreeSet<(Uuid, i32)> = held.iter().map(|p| (tid(), *p)).collect();
        let owned = owned.map(a);
        let next = reconcile(&current, &a(target), epoch, eager, owned.as_ref(), &held);
        let got = (
            next.member_epoch,
            next.assigned.clone(),
            next.pending_revocation.clone(),
            next.state,
        );
        assert_eq!(
            got,
            (want.0, a(want.1), a(want.2), Some(want.3)),
            "case {i}"
        );
        // Never takes what another member holds.
        for (t, p) in crate::group::iter_assignment(&next.assigned) {
            let had = current.assigned.get(&t).is_some_and(|s| s.contains(&p));
            assert!(had || !held.contains(&(t, p)), "case {i}: took held {p}");
        }
    }
}
