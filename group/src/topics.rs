//! The coordinator's view of the cluster's topics: what the shell passes in
//! from the metadata image (id, name, partition count), so decisions stay
//! pure.

use std::collections::BTreeMap;

use uuid::Uuid;

/// One topic as the coordinator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic id.
    pub id: Uuid,
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
}

/// The topics of the cluster, by name and by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    by_name: BTreeMap<String, TopicInfo>,
    by_id: BTreeMap<Uuid, String>,
}

impl Topics {
    /// A view of `topics`.
    pub fn new(topics: impl IntoIterator<Item = TopicInfo>) -> Self {
        let mut t = Topics::default();
        for info in topics {
            t.by_id.insert(info.id, info.name.clone());
            t.by_name.insert(info.name.clone(), info);
        }
        t
    }

    /// The topic called `name`.
    pub fn by_name(&self, name: &str) -> Option<&TopicInfo> {
        self.by_name.get(name)
    }

    /// The topic with id `id`.
    pub fn by_id(&self, id: &Uuid) -> Option<&TopicInfo> {
        self.by_id.get(id).and_then(|n| self.by_name.get(n))
    }

    /// All topics, by name.
    pub fn iter(&self) -> impl Iterator<Item = &TopicInfo> {
        self.by_name.values()
    }
}
