//! IncrementalAlterConfigs: each resource's changes are decided by
//! `strom_metadata::configs` and committed as one batch of ConfigRecords
//! (all or nothing), one result per resource. A resource named twice in a
//! request fails with INVALID_REQUEST, as in Kafka.

use std::collections::BTreeMap;

use strom_metadata::configs::{Resource, incremental_alter_configs};
use strom_metadata::{ErrorKind, MetadataError};
use strom_proto::convert::{alter_config, config_resource};
use strom_proto::v1::{
    AlterConfigsResource, AlterConfigsResult, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

use super::ControllerGrpc;
use crate::error::{ControllerError, Result};

impl ControllerGrpc {
    pub(super) async fn incremental_alter_configs_local(
        &self,
        r: IncrementalAlterConfigsRequest,
    ) -> Result<IncrementalAlterConfigsResponse> {
        let parsed: Vec<Result<Resource, MetadataError>> = r
            .resources
            .iter()
            .map(|res| config_resource(res.resource.as_ref().unwrap_or(&Default::default())))
            .collect();
        let mut times: BTreeMap<&Resource, usize> = BTreeMap::new();
        for res in parsed.iter().flatten() {
            *times.entry(res).or_default() += 1;
        }
        let mut results = Vec::with_capacity(r.resources.len());
        for (wire, resource) in r.resources.iter().zip(&parsed) {
            let outcome = match resource {
                Err(e) => Err(ControllerError::from(e.clone())),
                Ok(res) if times[res] > 1 => Err(ControllerError::from(MetadataError::new(
                    ErrorKind::InvalidRequest,
                    format!("{res} appears more than once in the request"),
                ))),
                Ok(res) => self.alter(res, wire, r.validate_only).await,
            };
            let mut result = AlterConfigsResult {
                resource: wire.resource.clone(),
                ..Default::default()
            };
            if let Err(e) = outcome {
                (result.error_code, result.error_message) = super::item_error(e)?;
            }
            results.push(result);
        }
        Ok(IncrementalAlterConfigsResponse { results })
    }

    /// Decides (and unless `validate_only`, commits) one resource's changes.
    async fn alter(
        &self,
        resource: &Resource,
        wire: &AlterConfigsResource,
        validate_only: bool,
    ) -> Result<()> {
        let changes = wire
            .configs
            .iter()
            .map(alter_config)
            .collect::<Result<Vec<_>, _>>()?;
        if validate_only {
            self.ctl
                .with_image(|image| incremental_alter_configs(image, resource, &changes))?;
            return Ok(());
        }
        let (_, offset) = self
            .ctl
            .decide(|image| Ok((incremental_alter_configs(image, resource, &changes)?, ())))
            .await?;
        if let Some(offset) = offset {
            let keys: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
            tracing::info!(%resource, ?keys, offset, "altered configs");
        }
        Ok(())
    }
}
