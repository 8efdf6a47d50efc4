//! The round-robin assignor.

use std::collections::BTreeMap;

use super::{MemberSpec, subscribed_topics};
use crate::records::Assignment;
use crate::topics::Topics;

/// All subscribed partitions, sorted by topic name then index, dealt in turn
/// over the members sorted by id; a member not subscribed to a partition's
/// topic is skipped. 7 partitions over 3 members: 0,3,6 / 1,4 / 2,5.
pub fn roundrobin(
    members: &BTreeMap<String, MemberSpec>,
    topics: &Topics,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = BTreeMap::new();
    let ids: Vec<&String> = members.keys().collect();
    if ids.is_empty() {
        return out;
    }
    let mut turn = 0usize;
    for topic in subscribed_topics(members, topics) {
        for p in 0..topic.partitions {
            // Find the next member (circularly) subscribed to this topic;
            // one exists because the topic is in someone's subscription.
            for _ in 0..ids.len() {
                let id = ids[turn % ids.len()];
                turn += 1;
                if members[id].subscribed.contains(&topic.id) {
                    out.entry(id.clone())
                        .or_default()
                        .entry(topic.id)
                        .or_default()
                        .insert(p);
                    break;
                }
            }
        }
    }
    out
}
