//! BrokerHeartbeat: renews a broker's lease; unfences it once caught up.

use strom_metadata::{ErrorKind, MetadataError};
use strom_proto::v1::{BrokerHeartbeatRequest, BrokerHeartbeatResponse};

use super::ControllerGrpc;
use crate::error::Result;

/// The current registration of `broker` if `epoch` is its epoch.
pub(super) fn check_epoch(
    image: &strom_metadata::ClusterImage,
    broker: i32,
    epoch: i64,
) -> Result<strom_metadata::BrokerRegistration, MetadataError> {
    let b = image.broker(broker).ok_or_else(|| {
        MetadataError::new(
            ErrorKind::BrokerIdNotRegistered,
            format!("broker {broker} is not registered"),
        )
    })?;
    if b.epoch != epoch {
        return Err(MetadataError::new(
            ErrorKind::StaleBrokerEpoch,
            format!(
                "broker {broker} epoch {epoch} is not the current epoch {}",
                b.epoch
            ),
        ));
    }
    Ok(b.clone())
}

impl ControllerGrpc {
    pub(super) async fn broker_heartbeat_local(
        &self,
        r: BrokerHeartbeatRequest,
    ) -> Result<BrokerHeartbeatResponse> {
        let b = self
            .ctl
            .with_image(|image| check_epoch(image, r.broker_id, r.broker_epoch))?;
        self.ctl
            .inner()
            .leases
            .renew_at(r.broker_id, &b.incarnation_id, r.metadata_offset);
        self.ctl
            .inner()
            .sizes
            .report_total(r.broker_id, r.log_dir_bytes);
        self.ctl
            .inner()
            .sizes
            .report_disk(r.broker_id, r.disk_used_bytes, r.disk_total_bytes);
        self.ctl.inner().sizes.report(
            r.broker_id,
            r.replica_sizes.iter().filter_map(|s| {
                let id = uuid::Uuid::from_slice(&s.topic_id).ok()?;
                Some((id, s.partition, s.size_bytes))
            }),
        );
        // The broker's registration is the record at offset ≈ its epoch:
        // having replayed that far, it knows the cluster as of joining.
        let caught_up = r.metadata_offset >= b.epoch;
        // A broker with an offline log directory cannot serve its replicas:
        // fence it (moving its leaderships, shrinking ISRs) and keep it
        // fenced, as for a broker asking to stay fenced.
        let want_fence = r.want_fence || !r.offline_log_dirs.is_empty();
        if !r.offline_log_dirs.is_empty() && !b.fenced {
            tracing::warn!(broker = r.broker_id, offline_log_dirs = ?r.offline_log_dirs, "broker reports offline log directories: fencing it");
        }
        let mut fenced = b.fenced;
        if fenced && caught_up && !want_fence && !b.in_controlled_shutdown {
            self.ctl
                .decide(|image| {
                    let b = check_epoch(image, r.broker_id, r.broker_epoch)?;
                    Ok((
                        if b.fenced {
                            strom_metadata::unfence_broker(
                                image,
                                r.broker_id,
                                self.ctl.default_min_isr(image),
                            )?
                        } else {
                            vec![]
                        },
                        (),
                    ))
                })
                .await?;
            fenced = false;
            tracing::info!(
                broker = r.broker_id,
                "unfenced broker: caught up with metadata"
            );
        } else if !fenced && want_fence {
            self.ctl
                .decide(|image| {
                    let b = check_epoch(image, r.broker_id, r.broker_epoch)?;
                    Ok((
                        if b.fenced {
                            vec![]
                        } else {
                            strom_metadata::fence_broker(
                                image,
                                r.broker_id,
                                self.ctl.default_min_isr(image),
                            )
                        },
                        (),
                    ))
                })
                .await?;
            fenced = true;
        }
        let should_shut_down = (b.in_controlled_shutdown || r.want_shutdown)
            && self
                .ctl
                .with_image(|image| strom_metadata::remaining_leaderships(image, r.broker_id))
                == 0;
        Ok(BrokerHeartbeatResponse {
            is_caught_up: caught_up,
            is_fenced: fenced,
            should_shut_down,
            heartbeat_interval_ms: i32::try_from(
                self.ctl.config().broker_heartbeat_interval.as_millis(),
            )
            .unwrap_or(i32::MAX),
        })
    }
}
