//! The sticky assignor (the target of `sticky` and `cooperative-sticky`).

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::{MemberSpec, subscribed_topics};
use crate::records::Assignment;
use crate::topics::Topics;

/// Balanced and sticky:
/// 1. each member keeps the partitions of its previous assignment that
///    still exist, that it still subscribes to and that no member listed
///    before it already kept;
/// 2. a member above its fair share (`ceil(P / M)` when all subscribe to the
///    same topics) gives back its highest partitions;
/// 3. every unassigned partition, in topic-name and index order, goes to
///    the least-loaded subscribed member (ties: smallest member id);
/// 4. while a partition can move from a member with `n` partitions to a
///    subscribed member with at most `n - 2`, it moves (only needed when
///    subscriptions differ).
///
/// A fresh group gets the round-robin layout (7 over 3: 0,3,6 / 1,4 / 2,5);
/// when the first member then leaves, the others keep theirs and share
/// 0,3,6: 0,1,4,6 / 2,3,5 — the seed's table.
pub fn sticky(
    members: &BTreeMap<String, MemberSpec>,
    topics: &Topics,
) -> BTreeMap<String, Assignment> {
    let all: Vec<(Uuid, i32)> = subscribed_topics(members, topics)
        .into_iter()
        .flat_map(|t| (0..t.partitions).map(move |p| (t.id, p)))
        .collect();
    let mut owner: BTreeMap<(Uuid, i32), &String> = BTreeMap::new();
    let mut load: BTreeMap<&String, Vec<(Uuid, i32)>> =
        members.keys().map(|id| (id, Vec::new())).collect();

    // 1. keep what is still valid.
    let exists: BTreeSet<(Uuid, i32)> = all.iter().copied().collect();
    for (id, m) in members {
        for (topic, parts) in &m.previous {
            if !m.subscribed.contains(topic) {
                continue;
            }
            for p in parts {
                let tp = (*topic, *p);
                if exists.contains(&tp) && !owner.contains_key(&tp) {
                    owner.insert(tp, id);
                    load.get_mut(id)
                        .expect("every member has a load entry")
                        .push(tp);
                }
            }
        }
    }

    // 2. shed above the fair share.
    let members_n = members.len().max(1);
    let max_quota = all.len().div_ceil(members_n);
    for parts in load.values_mut() {
        parts.sort();
        while parts.len() > max_quota {
            if let Some(tp) = parts.pop() {
                owner.remove(&tp);
            }
        }
    }
    // With P % M == r, at most r members (or all when r == 0) may hold the
    // maximum; the rest, in member id order from the end, give one back.
    let rem = all.len() % members_n;
    if rem != 0 {
        let at_max: Vec<&String> = load
            .iter()
            .filter(|(_, p)| p.len() == max_quota)
            .map(|(id, _)| *id)
            .collect();
        for id in at_max.iter().skip(rem) {
            let uniform = members
                .values()
                .all(|m| m.subscribed == members[*id].subscribed);
            if !uniform {
                break;
            }
            if let Some(tp) = load.get_mut(id).and_then(Vec::pop) {
                owner.remove(&tp);
            }
        }
    }

    // 3. hand out the rest to the least loaded.
    for tp in &all {
        if owner.contains_key(tp) {
            continue;
        }
        let target = load
            .iter()
            .filter(|(id, _)| members[**id].subscribed.contains(&tp.0))
            .min_by_key(|(id, p)| (p.len(), **id))
            .map(|(id, _)| *id);
        if let Some(id) = target {
            owner.insert(*tp, id);
            load.get_mut(id)
                .expect("every member has a load entry")
                .push(*tp);
        }
    }

    // 4. even out what differing subscriptions left unbalanced.
    for _ in 0..all.len() {
        let mut moved = false;
        let order: Vec<&String> = {
            let mut v: Vec<&String> = load.keys().copied().collect();
            v.sort_by_key(|id| std::cmp::Reverse(load[id].len()));
            v
        };
        'outer: for from in order {
            let mut parts = load[from].clone();
            parts.sort();
            for tp in parts.into_iter().rev() {
                let to = load
                    .iter()
                    .filter(|(id, p)| {
                        members[**id].subscribed.contains(&tp.0) && p.len() + 1 < load[from].len()
                    })
                    .min_by_key(|(id, p)| (p.len(), **id))
                    .map(|(id, _)| *id);
                if let Some(to) = to {
                    load.get_mut(from).expect("present").retain(|x| *x != tp);
                    load.get_mut(to).expect("present").push(tp);
                    moved = true;
                    break 'outer;
                }
            }
        }
        if !moved {
            break;
        }
    }

    load.into_iter()
        .map(|(id, parts)| {
            let mut a = Assignment::new();
            for (t, p) in parts {
                a.entry(t).or_default().insert(p);
            }
            (id.clone(), a)
        })
        .collect()
}
