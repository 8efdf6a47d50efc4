//! Producer ids for `InitProducerId`: this broker hands out ids from a
//! block the controller gave it (`AllocateProducerIds`, recorded in the
//! metadata log), and takes the next block when one runs out. Ids are
//! unique in the cluster forever; a broker that restarts takes a fresh
//! block and never reuses its old one's leftovers.

use std::sync::Arc;

use strom_proto::StromError;
use strom_proto::v1::{AllocateProducerIdsRequest, ErrorCode};
use tokio::sync::{Mutex, watch};

use super::seams::ControllerClient;
use crate::lifecycle::BrokerStatus;

/// The ids `[next, end)` of the current block.
#[derive(Debug, Clone, Copy)]
struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids; see the module docs.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    node_id: i32,
    controller: Arc<dyn ControllerClient>,
    status: watch::Receiver<BrokerStatus>,
    /// Held across a block allocation: callers meanwhile wait for it
    /// instead of each taking a block.
    block: Mutex<Option<Block>>,
}

impl ProducerIds {
    pub(crate) fn new(
        node_id: i32,
        controller: Arc<dyn ControllerClient>,
        status: watch::Receiver<BrokerStatus>,
    ) -> Self {
        Self {
            node_id,
            controller,
            status,
            block: Mutex::new(None),
        }
    }

    /// The next unused producer id.
    pub(crate) async fn next_id(&self) -> Result<i64, StromError> {
        let mut block = self.block.lock().await;
        loop {
            if let Some(b) = block.as_mut()
                && b.next < b.end
            {
                let id = b.next;
                b.next += 1;
                return Ok(id);
            }
            *block = Some(self.allocate().await?);
        }
    }

    async fn allocate(&self) -> Result<Block, StromError> {
        let epoch = self.status.borrow().epoch;
        if epoch <= 0 {
            return Err(StromError::new(
                ErrorCode::BrokerNotAvailable,
                "this broker is not registered yet: it has no producer ids to give",
            ));
        }
        let resp = self
            .controller
            .allocate_producer_ids(AllocateProducerIdsRequest {
                broker_id: self.node_id,
                broker_epoch: epoch,
            })
            .await?;
        if resp.producer_id_start < 0 || resp.producer_id_len <= 0 {
            return Err(StromError::new(
                ErrorCode::UnknownServerError,
                format!(
                    "the controller answered an empty producer id block ({}, {})",
                    resp.producer_id_start, resp.producer_id_len
                ),
            ));
        }
        tracing::info!(
            first = resp.producer_id_start,
            len = resp.producer_id_len,
            "took a block of producer ids"
        );
        Ok(Block {
            next: resp.producer_id_start,
            end: resp.producer_id_start + i64::from(resp.producer_id_len),
        })
    }
}
