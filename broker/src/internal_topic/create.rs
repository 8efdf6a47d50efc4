//! Creating an internal topic on first use: one CreateTopics at a time
//! through the controller quorum, compacted, its replication factor capped
//! by the live brokers (Kafka does the same for `__consumer_offsets` and
//! `__transaction_state`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use strom_controller_client::QuorumClient;
use strom_proto::v1::{CreatableTopic, CreateTopicsRequest, ErrorCode};
use tokio_util::task::TaskTracker;

use crate::metadata::MetadataCache;

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopicSpec {
    /// The topic name.
    pub name: &'static str,
    /// Its partition count.
    pub partitions: i32,
    /// The replication factor wanted; capped by the live brokers.
    pub replication_factor: i32,
}

/// Creates one internal topic, at most one attempt at a time.
#[derive(Debug)]
pub struct InternalTopicCreator {
    spec: InternalTopicSpec,
    quorum: Option<Arc<QuorumClient>>,
    timeout: Duration,
    creating: Arc<AtomicBool>,
}

impl InternalTopicCreator {
    /// Creates `spec` through `quorum` (none: the topic must exist already).
    pub fn new(
        spec: InternalTopicSpec,
        quorum: Option<Arc<QuorumClient>>,
        timeout: Duration,
    ) -> Self {
        Self {
            spec,
            quorum,
            timeout,
            creating: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The CreateTopics entry for `alive` live brokers.
    pub fn creatable(&self, alive: usize) -> CreatableTopic {
        let rf = self
            .spec
            .replication_factor
            .min(i32::try_from(alive).unwrap_or(i32::MAX))
            .max(1);
        CreatableTopic {
            name: self.spec.name.to_owned(),
            num_partitions: self.spec.partitions,
            replication_factor: rf,
            assignments: Vec::new(),
            configs: [("cleanup.policy".to_owned(), "compact".to_owned())]
                .into_iter()
                .collect(),
        }
    }

    /// Starts creating the topic on `tasks`, unless an attempt runs.
    pub fn start(
        &self,
        cache: &MetadataCache,
        tasks: &TaskTracker,
        runtime: &tokio::runtime::Handle,
    ) {
        let Some(quorum) = self.quorum.clone() else {
            return;
        };
        if self.creating.swap(true, Ordering::SeqCst) {
            return;
        }
        let alive = cache.with_image(|i| i.alive_brokers().len());
        let topic = self.creatable(alive);
        let creating = self.creating.clone();
        let timeout = self.timeout;
        tasks.spawn_on(
            async move {
                let name = topic.name.clone();
                let rf = topic.replication_factor;
                let result = quorum
                    .call(timeout, |mut c| {
                        let req = CreateTopicsRequest {
                            topics: vec![topic.clone()],
                            validate_only: false,
                        };
                        async move { c.create_topics(req).await }
                    })
                    .await;
                match result.map(|r| r.topics.into_iter().next()) {
                    Ok(Some(t))
                        if t.error_code == ErrorCode::None as i32
                            || t.error_code == ErrorCode::TopicAlreadyExists as i32 =>
                    {
                        tracing::info!(topic = %name, replication_factor = rf, "created internal topic");
                    }
                    Ok(t) => tracing::warn!(topic = %name, result = ?t, "creating internal topic failed"),
                    Err(e) => tracing::warn!(topic = %name, error = %e, "creating internal topic failed"),
                }
                creating.store(false, Ordering::SeqCst);
            },
            runtime,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_factor_is_capped_by_live_brokers() {
        // (wanted rf, alive brokers, rf created)
        let table = [(3, 5, 3), (3, 3, 3), (3, 1, 1), (3, 0, 1), (1, 3, 1)];
        for (rf, alive, want_rf) in table {
            let c = InternalTopicCreator::new(
                InternalTopicSpec {
                    name: "__transaction_state",
                    partitions: 50,
                    replication_factor: rf,
                },
                None,
                Duration::from_secs(1),
            );
            let t = c.creatable(alive);
            assert_eq!(t.replication_factor, want_rf, "{rf} {alive}");
            assert_eq!(t.num_partitions, 50);
            assert_eq!(t.name, "__transaction_state");
            assert_eq!(
                t.configs.get("cleanup.policy").map(String::as_str),
                Some("compact")
            );
        }
    }
}
