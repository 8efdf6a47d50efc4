//! ControlledShutdown: moves a stopping broker's leaderships away.

use strom_proto::v1::{ControlledShutdownRequest, ControlledShutdownResponse, TopicPartition};

use super::ControllerGrpc;
use super::broker_heartbeat::check_epoch;
use crate::error::Result;

impl ControllerGrpc {
    pub(super) async fn controlled_shutdown_local(
        &self,
        r: ControlledShutdownRequest,
    ) -> Result<ControlledShutdownResponse> {
        self.ctl
            .decide(|image| {
                check_epoch(image, r.broker_id, r.broker_epoch)?;
                let min_isr = self.ctl.default_min_isr(image);
                Ok((
                    strom_metadata::controlled_shutdown(image, r.broker_id, min_isr)?.records,
                    (),
                ))
            })
            .await?;
        let stuck: Vec<TopicPartition> = self.ctl.with_image(|image| {
            image
                .all_partitions()
                .filter(|(_, _, p)| p.leader == r.broker_id)
                .map(|(t, partition, _)| TopicPartition {
                    topic: t.name.clone(),
                    partition,
                })
                .collect()
        });
        tracing::info!(
            broker = r.broker_id,
            remaining = stuck.len(),
            "controlled shutdown step"
        );
        Ok(ControlledShutdownResponse {
            remaining_leaders: i32::try_from(stuck.len()).unwrap_or(i32::MAX),
            stuck,
        })
    }
}
