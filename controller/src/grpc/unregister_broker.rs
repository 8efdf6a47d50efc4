//! UnregisterBroker: removes a stopped, drained broker from the cluster
//! (KIP-631); the rules are `strom_metadata::unregister_drained_broker`.

use strom_proto::v1::{UnregisterBrokerRequest, UnregisterBrokerResponse};

use super::ControllerGrpc;
use crate::error::Result;

impl ControllerGrpc {
    pub(super) async fn unregister_broker_local(
        &self,
        r: UnregisterBrokerRequest,
    ) -> Result<UnregisterBrokerResponse> {
        let broker = r.broker_id;
        let (_, offset) = self
            .ctl
            .decide(|image| {
                Ok((
                    strom_metadata::unregister_drained_broker(image, broker)?,
                    (),
                ))
            })
            .await?;
        if let Some(offset) = offset {
            tracing::info!(broker, offset, "unregistered broker");
        }
        Ok(UnregisterBrokerResponse {})
    }
}
