//! RegisterBroker: a broker process (re)joins and gets its broker epoch.

use strom_metadata::{ErrorKind, MetadataError, Registration, Uuid};
use strom_proto::v1::{RegisterBrokerRequest, RegisterBrokerResponse};

use super::{ControllerGrpc, missing};
use crate::error::Result;

impl ControllerGrpc {
    pub(super) async fn register_broker_local(
        &self,
        r: RegisterBrokerRequest,
    ) -> Result<RegisterBrokerResponse> {
        if r.broker_id < 0 {
            return Err(missing("broker_id"));
        }
        if r.incarnation_id.is_empty() {
            return Err(missing("incarnation_id"));
        }
        if r.endpoints.is_empty()
            || r.endpoints
                .iter()
                .any(|e| e.host.is_empty() || e.port == 0 || e.port > 65535)
        {
            return Err(missing("endpoints"));
        }
        let leases = &self.ctl.inner().leases;
        if leases.held_by_other(r.broker_id, &r.incarnation_id) {
            return Err(MetadataError::new(
                ErrorKind::DuplicateBrokerRegistration,
                format!(
                    "broker id {} is held by another live broker process",
                    r.broker_id
                ),
            )
            .into());
        }
        let mut damaged = Vec::with_capacity(r.damaged_replicas.len());
        for d in &r.damaged_replicas {
            let Ok(topic_id) = Uuid::from_slice(&d.topic_id) else {
                return Err(MetadataError::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "damaged replica topic id has {} bytes, not 16",
                        d.topic_id.len()
                    ),
                )
                .into());
            };
            damaged.push((topic_id, d.partition));
        }
        let ctl = self.ctl.clone();
        let registration = Registration {
            broker_id: r.broker_id,
            incarnation_id: r.incarnation_id.clone(),
            endpoints: r.endpoints.clone(),
            rack: (!r.rack.is_empty()).then(|| r.rack.clone()),
            damaged,
            static_configs: r
                .static_configs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let ((epoch, cluster_id), _) = self
            .ctl
            .decide(|image| {
                let cluster_id = image.cluster_id().unwrap_or_default().to_owned();
                if !r.cluster_id.is_empty() && !cluster_id.is_empty() && r.cluster_id != cluster_id
                {
                    return Err(MetadataError::new(
                        ErrorKind::InvalidRequest,
                        format!(
                            "broker {} has data of cluster {} but this cluster is {}",
                            r.broker_id, r.cluster_id, cluster_id
                        ),
                    ));
                }
                // Strictly above every index in the log: the previous
                // decision (if any) was applied before we got the lock.
                let epoch = ctl.next_log_index();
                // A new process replacing a live registration first has the
                // old one's leaderships moved away (register_broker emits that).
                let records = strom_metadata::register_broker(
                    image,
                    &registration,
                    false,
                    epoch,
                    ctl.default_min_isr(image),
                )?;
                Ok((records, (epoch, cluster_id)))
            })
            .await?;
        leases.renew(r.broker_id, &r.incarnation_id);
        if !registration.damaged.is_empty() {
            tracing::warn!(broker = r.broker_id, damaged = ?registration.damaged,
                "broker registered with replicas that lost records: out of their ISR and eligible leaders");
        }
        tracing::info!(broker = r.broker_id, epoch, incarnation = %r.incarnation_id, "registered broker");
        Ok(RegisterBrokerResponse {
            broker_epoch: epoch,
            cluster_id,
        })
    }
}
