//! Sends ISR changes decided by partition leaders to the controller
//! (`AlterPartition`), at most one in flight per partition.
//!
//! The request carries the leader epoch and the partition epoch the change
//! was computed against; the controller rejects a stale one
//! (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION) and the leader recomputes
//! on the newer state, which its metadata image delivers. While a change is
//! pending, the high watermark waits for the maximal ISR (KIP-497).

use std::sync::Arc;

use strom_proto::v1::{AlterPartitionRequest, ErrorCode};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::partition::{IsrChange, Partition};
use super::seams::ControllerClient;
use crate::lifecycle::BrokerStatus;

/// Submits ISR changes. Each request runs on a task of its own, owned by
/// the sender: [`IsrSender::shutdown`] cancels and awaits them.
#[derive(Debug, Clone)]
pub(crate) struct IsrSender {
    node_id: i32,
    controller: Arc<dyn ControllerClient>,
    status: watch::Receiver<BrokerStatus>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl IsrSender {
    pub(crate) fn new(
        node_id: i32,
        controller: Arc<dyn ControllerClient>,
        status: watch::Receiver<BrokerStatus>,
    ) -> Self {
        Self {
            node_id,
            controller,
            status,
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// Abandons the requests in flight and waits for their tasks.
    pub(crate) async fn shutdown(&self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Sends `change` for `part` unless another change is in flight.
    pub(crate) fn submit(&self, part: Arc<Partition>, change: IsrChange) {
        let epoch = self.status.borrow().epoch;
        if epoch <= 0 || !part.set_pending(&change) {
            return;
        }
        let request = AlterPartitionRequest {
            broker_id: self.node_id,
            broker_epoch: epoch,
            topic_id: part.topic_id.as_bytes().to_vec(),
            partition: part.index,
            leader_epoch: change.leader_epoch,
            partition_epoch: change.partition_epoch,
            new_isr: change.new_isr.clone(),
        };
        let controller = self.controller.clone();
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            let call = controller.alter_partition(request.clone());
            let result = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                r = call => r,
            };
            let committed = match result {
                Ok(resp) => {
                    let code = ErrorCode::try_from(resp.error_code)
                        .unwrap_or(ErrorCode::UnknownServerError);
                    if code == ErrorCode::None {
                        tracing::info!(topic = %part.topic, partition = part.index, isr = ?request.new_isr, "ISR changed");
                    } else {
                        tracing::info!(topic = %part.topic, partition = part.index, isr = ?request.new_isr, code = code.as_str_name(), message = %resp.error_message, "ISR change refused");
                    }
                    resp.partition
                        .map(|p| (p.leader_epoch, p.partition_epoch, p.isr))
                }
                Err(e) => {
                    tracing::info!(topic = %part.topic, partition = part.index, error = %e, "ISR change not sent");
                    None
                }
            };
            part.complete_pending(committed);
        });
    }
}
