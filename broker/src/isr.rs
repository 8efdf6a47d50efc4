//! ISR expansion by partition leaders, through AlterPartition.
//!
//! Kafka's leader adds a follower back to the ISR once the follower's fetch
//! has reached the leader's log end. Until the replicated data path exists,
//! a partition holds no records, so every live replica is caught up the
//! moment it is unfenced; this task asks the controller to add it. The
//! replica manager of the data path replaces the "caught up" test with the
//! follower's fetch position and keeps this AlterPartition plumbing.

use std::sync::Arc;

use strom_controller::QuorumClient;
use strom_proto::v1::{AlterPartitionRequest, ErrorCode};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::BrokerStatus;
use crate::metadata::MetadataCache;

/// One ISR change the leader wants.
#[derive(Debug, Clone, PartialEq)]
struct Expansion {
    request: AlterPartitionRequest,
}

fn wanted(cache: &MetadataCache, broker_id: i32, broker_epoch: i64) -> Vec<Expansion> {
    cache.with_image(|image| {
        image
            .all_partitions()
            .filter(|(_, _, p)| p.leader == broker_id)
            .filter_map(|(t, partition, p)| {
                let add: Vec<i32> = p
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| !p.isr.contains(r) && image.is_alive(*r))
                    .collect();
                if add.is_empty() {
                    return None;
                }
                let mut new_isr = p.isr.clone();
                new_isr.extend(add);
                Some(Expansion {
                    request: AlterPartitionRequest {
                        broker_id,
                        broker_epoch,
                        topic_id: t.id.as_bytes().to_vec(),
                        partition,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        new_isr,
                    },
                })
            })
            .collect()
    })
}

/// Runs until `shutdown`: after every metadata change, expands the ISR of
/// the partitions this broker leads.
pub async fn run(
    broker_id: i32,
    quorum: Arc<QuorumClient>,
    cache: MetadataCache,
    status: watch::Receiver<BrokerStatus>,
    shutdown: CancellationToken,
) {
    let mut changes = cache.subscribe();
    loop {
        let s = status.borrow().clone();
        if !s.fenced && !s.shutting_down && s.epoch > 0 {
            for e in wanted(&cache, broker_id, s.epoch) {
                let req = e.request;
                let result = quorum
                    .call(std::time::Duration::from_secs(5), |mut c| {
                        let r = req.clone();
                        async move { c.alter_partition(r).await }
                    })
                    .await;
                match result {
                    Ok(resp) if resp.error_code == ErrorCode::None as i32 => {
                        tracing::info!(partition = req.partition, isr = ?req.new_isr, "expanded ISR");
                    }
                    // Stale epochs resolve once the newer metadata arrives.
                    Ok(resp) => {
                        tracing::debug!(code = resp.error_code, message = %resp.error_message, "ISR expansion refused")
                    }
                    Err(e) => tracing::debug!(error = %e, "ISR expansion failed"),
                }
            }
        }
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
