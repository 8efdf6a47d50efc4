//! IncrementalAlterConfigs: forwarded to the controller quorum's
//! IncrementalAlterConfigs (the call `strom configs alter` makes), which
//! validates every key and value and commits each resource's changes as
//! one batch or not at all. Operation and resource type numbers are
//! Kafka's in both protocols.

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use strom_proto::v1::{
    AlterConfigsResource, AlterableConfig, ConfigResource,
    IncrementalAlterConfigsRequest as ProtoRequest,
};

use super::{Broker, text};
use crate::errors::{kafka_code, kafka_code_i32};

/// Answers one IncrementalAlterConfigs request.
pub async fn answer(
    broker: &Broker,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources: Vec<(i8, kafka_protocol::protocol::StrBytes)> = req
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.clone()))
        .collect();
    let proto = ProtoRequest {
        resources: req
            .resources
            .into_iter()
            .map(|r| AlterConfigsResource {
                resource: Some(ConfigResource {
                    r#type: i32::from(r.resource_type),
                    name: r.resource_name.to_string(),
                }),
                configs: r
                    .configs
                    .into_iter()
                    .map(|c| AlterableConfig {
                        name: c.name.to_string(),
                        op: i32::from(c.config_operation),
                        value: c.value.map(|v| v.to_string()),
                    })
                    .collect(),
            })
            .collect(),
        validate_only: req.validate_only,
    };
    let answer = broker
        .controller
        .call(broker.controller_timeout, async |mut c| {
            c.incremental_alter_configs(proto.clone()).await
        })
        .await;
    let codes: Vec<(i16, String)> = match answer {
        Ok(resp) => resp
            .results
            .into_iter()
            .map(|r| (kafka_code_i32(r.error_code), r.error_message))
            .collect(),
        Err(e) => vec![(kafka_code(e.code), e.message); resources.len()],
    };
    IncrementalAlterConfigsResponse::default().with_responses(responses(resources, codes))
}

/// One response per resource, in request order.
pub(crate) fn responses(
    resources: Vec<(i8, kafka_protocol::protocol::StrBytes)>,
    codes: Vec<(i16, String)>,
) -> Vec<AlterConfigsResourceResponse> {
    resources
        .into_iter()
        .zip(codes)
        .map(|((resource_type, resource_name), (code, message))| {
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource_type)
                .with_resource_name(resource_name)
                .with_error_code(code)
                .with_error_message((!message.is_empty()).then(|| text(message)))
        })
        .collect()
}
