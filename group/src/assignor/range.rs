//! The range assignor.

use std::collections::BTreeMap;

use super::{MemberSpec, subscribed_topics};
use crate::records::Assignment;
use crate::topics::Topics;

/// Per topic: the subscribed members sorted by id take consecutive ranges of
/// partitions; the first `partitions % members` take one extra.
/// 7 partitions over 3 members: 0,1,2 / 3,4 / 5,6.
pub fn range(
    members: &BTreeMap<String, MemberSpec>,
    topics: &Topics,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = BTreeMap::new();
    for topic in subscribed_topics(members, topics) {
        let subs: Vec<&String> = members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(&topic.id))
            .map(|(id, _)| id)
            .collect();
        let n = subs.len() as i32;
        let per = topic.partitions / n;
        let extra = topic.partitions % n;
        let mut next = 0;
        for (i, id) in subs.into_iter().enumerate() {
            let count = per + i32::from((i as i32) < extra);
            let parts = out
                .entry(id.clone())
                .or_default()
                .entry(topic.id)
                .or_default();
            parts.extend(next..next + count);
            next += count;
        }
    }
    out
}
