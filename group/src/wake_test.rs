use super::*;
use crate::group::Member;
use crate::records::{Assignment, CurrentAssignment, RecordValue};

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

/// (id, member epoch, assigned, pending revocation, target)
type M<'a> = (&'a str, i32, &'a [i32], &'a [i32], &'a [i32]);

fn group(epoch: i32, assignment_epoch: i32, members: &[M<'_>]) -> ConsumerGroup {
    let mut g = ConsumerGroup {
        epoch,
        assignment_epoch,
        ..ConsumerGroup::default()
    };
    for (id, member_epoch, assigned, pending, target) in members {
        g.members.insert(
            (*id).to_owned(),
            Member {
                current: CurrentAssignment {
                    member_epoch: *member_epoch,
                    assigned: a(assigned),
                    pending_revocation: a(pending),
                    ..CurrentAssignment::default()
                },
                ..Member::default()
            },
        );
        g.target.insert((*id).to_owned(), a(target));
    }
    g
}

#[test]
fn members_to_wake_follow_the_reconciliation_they_can_make() {
    // (what, group epoch, assignment epoch, members, woken)
    type Case<'a> = (&'a str, i32, i32, Vec<M<'a>>, &'a [&'a str]);
    let cases: Vec<Case<'_>> = vec![
        (
            "stable group: nobody",
            3,
            3,
            vec![("a", 3, &[0, 1], &[], &[0, 1]), ("b", 3, &[2], &[], &[2])],
            &[],
        ),
        (
            "a member left, target not computed yet: everyone",
            4,
            3,
            vec![("a", 3, &[0, 1], &[], &[0, 1]), ("b", 3, &[2], &[], &[2])],
            &["a", "b"],
        ),
        (
            "new target: members behind it, not the one already at it",
            4,
            4,
            vec![("a", 3, &[0, 1, 2], &[], &[0, 1]), ("b", 4, &[], &[], &[2])],
            &["a"],
        ),
        (
            "a member still revoking is not woken; its successor waits",
            4,
            4,
            vec![("a", 3, &[0, 1], &[2], &[0, 1]), ("b", 4, &[], &[], &[2])],
            &[],
        ),
        (
            "the revoked partition is free: its new owner is woken",
            4,
            4,
            vec![("a", 4, &[0, 1], &[], &[0, 1]), ("b", 4, &[], &[], &[2])],
            &["b"],
        ),
        (
            "owning a partition outside the target at the target epoch",
            4,
            4,
            vec![("a", 4, &[0, 1, 2], &[], &[0, 1])],
            &["a"],
        ),
        (
            "a static member gone for a restart (epoch -2) is not woken",
            4,
            3,
            vec![("a", -2, &[0], &[], &[0]), ("b", 3, &[1], &[], &[1])],
            &["b"],
        ),
    ];
    for (what, epoch, assignment_epoch, members, want) in cases {
        let g = group(epoch, assignment_epoch, &members);
        let got: Vec<String> = members_to_wake(&g).into_iter().collect();
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn offset_commits_change_no_group_membership() {
    let commit = Record::put(
        RecordKey::OffsetCommit {
            group: "g1".into(),
            topic: "t".into(),
            partition: 0,
        },
        RecordValue::OffsetCommit(crate::records::OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
        }),
    );
    let bump = Record::put(
        RecordKey::GroupMetadata { group: "g2".into() },
        RecordValue::GroupMetadata {
            epoch: 2,
            metadata_hash: 0,
        },
    );
    assert!(groups_changed(std::slice::from_ref(&commit)).is_empty());
    let both = [commit, bump];
    let changed: Vec<&str> = groups_changed(&both).into_iter().collect();
    assert_eq!(changed, ["g2"]);
}

#[test]
fn a_metadata_change_of_a_subscribed_topic_wakes_every_live_member() {
    use crate::records::MemberMetadata;
    use crate::topics::TopicInfo;
    let topics = |partitions| {
        Topics::new([TopicInfo {
            id: tid(),
            name: "t".into(),
            partitions,
        }])
    };
    let mut g = group(
        2,
        2,
        &[("a", 2, &[0], &[], &[0]), ("b", -2, &[1], &[], &[1])],
    );
    for m in g.members.values_mut() {
        m.metadata = MemberMetadata {
            subscribed_topic_names: vec!["t".into()],
            ..MemberMetadata::default()
        };
    }
    g.metadata_hash = g.subscribed_metadata_hash(&topics(2));
    assert!(members_to_wake_for_metadata(&g, &topics(2)).is_empty());
    let woken: Vec<String> = members_to_wake_for_metadata(&g, &topics(4))
        .into_iter()
        .collect();
    assert_eq!(woken, ["a"], "not the static member gone for a restart");
}
