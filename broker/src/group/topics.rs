//! The metadata image as the pure core's [`Topics`].

use strom_group::{TopicInfo, Topics};
use strom_metadata::ClusterImage;

/// The cluster's topics, internal ones included (a regex never matches
/// them; the core skips `__` names).
pub(super) fn topics(image: &ClusterImage) -> Topics {
    Topics::new(image.topics().map(|t| TopicInfo {
        id: t.id,
        name: t.name.clone(),
        partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
    }))
}
