//! The session rules as data: requests in, decisions out.

use super::*;

fn key(topic: &str, partition: i32) -> PartitionKey {
    PartitionKey {
        topic: TopicRef::Name(topic.into()),
        partition,
    }
}

fn wanted(offset: i64) -> Wanted {
    Wanted {
        fetch_offset: offset,
        current_leader_epoch: -1,
        last_fetched_epoch: -1,
        max_bytes: 1 << 20,
    }
}

/// An answer with high watermark `hw`, `records` or not.
fn ans(hw: i64, records: bool) -> Answered {
    Answered {
        records,
        high_watermark: hw,
        last_stable_offset: hw,
        log_start_offset: 0,
        error: false,
        diverging: false,
    }
}

fn request<'a>(
    id: i32,
    epoch: i32,
    partitions: &'a [(PartitionKey, Wanted)],
    forgotten: &'a [PartitionKey],
) -> SessionRequest<'a> {
    SessionRequest {
        session_id: id,
        epoch,
        by_topic_id: false,
        partitions,
        forgotten,
    }
}

/// A session of `keys` (each answered high watermark 10, no records),
/// created at `now`.
fn created(sessions: &mut Sessions, keys: &[PartitionKey], now: u64) -> i32 {
    let parts: Vec<(PartitionKey, Wanted)> = keys.iter().map(|k| (k.clone(), wanted(0))).collect();
    assert_eq!(
        sessions.begin(&request(0, INITIAL_EPOCH, &parts, &[]), now),
        Begin::Full
    );
    sessions.create(
        false,
        parts
            .into_iter()
            .map(|(k, w)| (k, w, ans(10, false)))
            .collect(),
        now,
    )
}

fn incremental(begin: Begin) -> Incremental {
    match begin {
        Begin::Incremental(inc) => inc,
        other => panic!("not incremental: {other:?}"),
    }
}

fn keys(inc: &Incremental) -> Vec<PartitionKey> {
    inc.partitions.iter().map(|p| p.key.clone()).collect()
}

#[test]
fn full_fetches_create_a_session_only_at_epoch_zero() {
    // (session id, epoch, expected decision)
    let cases = [
        (0, FINAL_EPOCH, Begin::Sessionless),
        (0, INITIAL_EPOCH, Begin::Full),
        (12345, FINAL_EPOCH, Begin::Sessionless),
        (12345, INITIAL_EPOCH, Begin::Full),
        (12345, 1, Begin::Refused(FETCH_SESSION_ID_NOT_FOUND)),
        (0, 1, Begin::Refused(FETCH_SESSION_ID_NOT_FOUND)),
    ];
    for (id, epoch, want) in cases {
        let mut s = Sessions::new(10, 1);
        assert_eq!(
            s.begin(&request(id, epoch, &[], &[]), 0),
            want,
            "{id}/{epoch}"
        );
        assert!(s.is_empty(), "begin alone creates nothing");
    }
    let mut s = Sessions::new(10, 1);
    let id = created(&mut s, &[key("a", 0), key("a", 1)], 0);
    assert_ne!(id, INVALID_SESSION_ID);
    let (epoch, parts) = s.session(id).expect("held");
    assert_eq!(epoch, 1, "the client continues at epoch 1");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].told.high_watermark, 10);
}

#[test]
fn a_full_fetch_naming_a_session_closes_it() {
    for epoch in [INITIAL_EPOCH, FINAL_EPOCH] {
        let mut s = Sessions::new(10, 1);
        let id = created(&mut s, &[key("a", 0)], 0);
        s.begin(&request(id, epoch, &[], &[]), 1);
        assert!(s.session(id).is_none(), "epoch {epoch} closed {id}");
        assert_eq!(
            s.begin(&request(id, 1, &[], &[]), 2),
            Begin::Refused(FETCH_SESSION_ID_NOT_FOUND)
        );
    }
}

#[test]
fn incremental_fetches_carry_changes_and_forget() {
    let mut s = Sessions::new(10, 1);
    let (a0, a1, b0) = (key("a", 0), key("a", 1), key("b", 0));
    let id = created(&mut s, &[a0.clone(), a1.clone()], 0);

    // Epoch 1: no partitions sent: the session's two are fetched at their
    // cached offsets.
    let inc = incremental(s.begin(&request(id, 1, &[], &[]), 1));
    assert_eq!((inc.id, inc.epoch), (id, 2));
    assert_eq!(keys(&inc), [a0.clone(), a1.clone()]);
    assert!(inc.partitions.iter().all(|p| p.wanted.fetch_offset == 0));

    // Epoch 2: a0 moved to offset 5, b0 added, a1 forgotten.
    let changed = [(a0.clone(), wanted(5)), (b0.clone(), wanted(7))];
    let inc = incremental(s.begin(&request(id, 2, &changed, std::slice::from_ref(&a1)), 2));
    assert_eq!(inc.epoch, 3);
    assert_eq!(keys(&inc), [a0.clone(), b0.clone()]);
    assert_eq!(inc.partitions[0].wanted.fetch_offset, 5);
    assert_eq!(inc.partitions[1].wanted.fetch_offset, 7);

    // Forgetting everything ends the session.
    let all = [a0, b0];
    assert_eq!(s.begin(&request(id, 3, &[], &all), 3), Begin::Sessionless);
    assert!(s.session(id).is_none());
}

#[test]
fn a_wrong_epoch_or_topic_naming_refuses_and_changes_nothing() {
    let mut s = Sessions::new(10, 1);
    let id = created(&mut s, &[key("a", 0)], 0);
    let added = [(key("z", 9), wanted(3))];
    // (epoch, by topic id, expected code)
    let cases = [
        (2, false, INVALID_FETCH_SESSION_EPOCH),
        (7, false, INVALID_FETCH_SESSION_EPOCH),
        (1, true, FETCH_SESSION_TOPIC_ID_ERROR),
    ];
    for (epoch, by_id, code) in cases {
        let req = SessionRequest {
            by_topic_id: by_id,
            ..request(id, epoch, &added, &[])
        };
        assert_eq!(s.begin(&req, 1), Begin::Refused(code), "{epoch}/{by_id}");
        let (held_epoch, parts) = s.session(id).expect("still held");
        assert_eq!(held_epoch, 1, "epoch unchanged");
        assert_eq!(parts.len(), 1, "nothing added");
    }
    // The right epoch still works; a replay of it no longer does.
    let inc = incremental(s.begin(&request(id, 1, &[], &[]), 2));
    assert_eq!(inc.epoch, 2);
    assert_eq!(
        s.begin(&request(id, 1, &[], &[]), 3),
        Begin::Refused(INVALID_FETCH_SESSION_EPOCH)
    );
}

#[test]
fn epochs_wrap_to_one() {
    let cases = [
        (0, 1),
        (1, 2),
        (i32::MAX - 1, i32::MAX),
        (i32::MAX, 1),
        (-1, -1),
    ];
    for (epoch, next) in cases {
        assert_eq!(next_epoch(epoch), next, "{epoch}");
    }
}

#[test]
fn an_incremental_answer_includes_only_what_changed() {
    // (told hw/lso/log start, answered, must answer, told after)
    let told = Told {
        high_watermark: 10,
        last_stable_offset: 10,
        log_start_offset: 0,
    };
    let with = |f: fn(&mut Answered)| {
        let mut a = ans(10, false);
        f(&mut a);
        a
    };
    let cases: Vec<(&str, Answered, bool, Told)> = vec![
        ("nothing new", ans(10, false), false, told),
        ("records", ans(10, true), true, told),
        (
            "high watermark moved",
            with(|a| {
                a.high_watermark = 12;
                a.last_stable_offset = 12;
            }),
            true,
            Told {
                high_watermark: 12,
                last_stable_offset: 12,
                ..told
            },
        ),
        (
            "last stable offset moved",
            with(|a| a.last_stable_offset = 8),
            true,
            Told {
                last_stable_offset: 8,
                ..told
            },
        ),
        (
            "log start moved",
            with(|a| a.log_start_offset = 4),
            true,
            Told {
                log_start_offset: 4,
                ..told
            },
        ),
        (
            "an error (hw forgotten, so the partition is answered once it clears)",
            with(|a| a.error = true),
            true,
            Told {
                high_watermark: -1,
                ..told
            },
        ),
        ("a divergence", with(|a| a.diverging = true), true, told),
    ];
    for (what, a, want, after) in cases {
        let mut t = told;
        assert_eq!(must_answer(&mut t, &a), want, "{what}");
        assert_eq!(t, after, "{what}");
    }
}

#[test]
fn answered_records_what_was_told_and_rotates_partitions_with_records() {
    let mut s = Sessions::new(10, 1);
    let (a0, a1, a2) = (key("a", 0), key("a", 1), key("a", 2));
    let id = created(&mut s, &[a0.clone(), a1.clone(), a2.clone()], 0);
    let inc = incremental(s.begin(&request(id, 1, &[], &[]), 1));
    // a0 has records, a1 nothing new, a2 a new high watermark.
    let included = s.answered(&inc, &[ans(10, true), ans(10, false), ans(11, false)]);
    assert_eq!(included, [true, false, true]);
    let inc = incremental(s.begin(&request(id, 2, &[], &[]), 2));
    assert_eq!(keys(&inc), [a1, a2, a0], "a0 returned records: last now");
    assert_eq!(inc.partitions[1].told.high_watermark, 11);
    // Nothing new anywhere: an empty answer.
    let included = s.answered(&inc, &[ans(10, false), ans(11, false), ans(10, false)]);
    assert_eq!(included, [false, false, false]);
    // A session that moved on records nothing from a stale answer.
    let stale = inc.clone();
    let _ = s.begin(&request(id, 3, &[], &[]), 3);
    assert_eq!(s.answered(&stale, &[ans(20, false); 3]), [true, true, true]);
    let (_, parts) = s.session(id).expect("held");
    assert!(parts.iter().all(|p| p.told.high_watermark != 20));
}

#[test]
fn a_full_cache_evicts_as_kafka_does() {
    let min = EVICTION_MS + 1;
    // (existing sessions as (size, created, last used), new size, now,
    // created, index of the evicted one)
    type Case = (
        &'static str,
        Vec<(usize, u64, u64)>,
        usize,
        u64,
        bool,
        Option<usize>,
    );
    let cases: Vec<Case> = vec![
        ("room: nothing evicted", vec![(1, 0, 0)], 1, 0, true, None),
        (
            "full, all recent and as large: no session",
            vec![(2, 0, 0), (2, 0, 0)],
            2,
            10,
            false,
            None,
        ),
        (
            "full, an idle session is evicted whatever its size",
            vec![(5, 0, 0), (1, 0, 50)],
            1,
            min,
            true,
            Some(0),
        ),
        (
            "full, none idle: the smallest old session gives way to a larger one",
            vec![(3, 0, min), (1, 0, min), (2, 0, min)],
            2,
            min,
            true,
            Some(1),
        ),
        (
            "full, none idle: an old session as large as the new one stays",
            vec![(2, 0, min), (2, 0, min)],
            2,
            min,
            false,
            None,
        ),
        (
            "full, none idle: a recently created small session stays",
            vec![(1, 10, min)],
            5,
            min,
            false,
            None,
        ),
    ];
    for (what, existing, size, now, create, evicted) in cases {
        let slots = if what.starts_with("room") {
            existing.len() + 1
        } else {
            existing.len()
        };
        let mut s = Sessions::new(slots, 7);
        let mut ids = Vec::new();
        for (i, (n, created_at, last_used)) in existing.iter().enumerate() {
            let keys: Vec<PartitionKey> =
                (0..*n as i32).map(|p| key(&format!("t{i}"), p)).collect();
            let id = created(&mut s, &keys, *created_at);
            assert_ne!(id, INVALID_SESSION_ID, "{what}: setup");
            if last_used > created_at {
                // An incremental fetch touches it.
                let epoch = s.session(id).expect("held").0;
                incremental(s.begin(&request(id, epoch, &[], &[]), *last_used));
            }
            ids.push(id);
        }
        let keys: Vec<PartitionKey> = (0..size as i32).map(|p| key("new", p)).collect();
        let id = created(&mut s, &keys, now);
        assert_eq!(id != INVALID_SESSION_ID, create, "{what}");
        for (i, old) in ids.iter().enumerate() {
            assert_eq!(
                s.session(*old).is_none(),
                evicted == Some(i),
                "{what}: session {i}"
            );
        }
        assert_eq!(s.evictions(), u64::from(evicted.is_some()), "{what}");
        assert!(s.len() <= slots, "{what}: bounded");
    }
}

#[test]
fn no_slots_means_no_sessions() {
    let mut s = Sessions::new(0, 1);
    assert_eq!(created(&mut s, &[key("a", 0)], 0), INVALID_SESSION_ID);
    assert!(s.is_empty());
}

#[test]
fn session_ids_are_distinct_and_never_zero() {
    let mut s = Sessions::new(500, 3);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..500 {
        let id = created(&mut s, &[key("a", i)], 0);
        assert!(id > 0);
        assert!(seen.insert(id), "{id} twice");
    }
}
