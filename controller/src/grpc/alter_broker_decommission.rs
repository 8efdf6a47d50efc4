//! AlterBrokerDecommission: marks a broker decommissioning (its replicas
//! then move away, leaderships first) or recommissions it.

use strom_proto::v1::{AlterBrokerDecommissionRequest, AlterBrokerDecommissionResponse};

use super::ControllerGrpc;
use crate::error::Result;

impl ControllerGrpc {
    pub(super) async fn alter_broker_decommission_local(
        &self,
        r: AlterBrokerDecommissionRequest,
    ) -> Result<AlterBrokerDecommissionResponse> {
        let broker = r.broker_id;
        let (_, offset) = self
            .ctl
            .decide(|image| {
                let records = if r.decommission {
                    strom_metadata::decommission_broker(image, broker)?
                } else {
                    strom_metadata::recommission_broker(
                        image,
                        broker,
                        self.ctl.default_min_isr(image),
                    )?
                };
                Ok((records, ()))
            })
            .await?;
        if let Some(offset) = offset {
            tracing::info!(
                broker,
                decommission = r.decommission,
                offset,
                "broker decommission changed"
            );
        }
        let (replicas, leaders) = self
            .ctl
            .with_image(|image| strom_metadata::decommission_progress(image, broker));
        Ok(AlterBrokerDecommissionResponse {
            remaining_replicas: i32::try_from(replicas).unwrap_or(i32::MAX),
            remaining_leaders: i32::try_from(leaders).unwrap_or(i32::MAX),
        })
    }
}
