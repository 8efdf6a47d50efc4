//! AlterConfigs (Kafka's legacy, non-incremental API): the given configs
//! replace every config set at that resource's own level. Translated onto
//! the controller quorum's DescribeConfigs (which configs are set at that
//! level now) and IncrementalAlterConfigs (SET each given one, DELETE the
//! others set there), so validation and the one-batch commit are the
//! quorum's. The two calls are not one transaction: a config set at the
//! same level by someone else between them survives.

use kafka_protocol::messages::alter_configs_request::AlterConfigsResource as KafkaResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use strom_proto::StromError;
use strom_proto::v1::{
    AlterConfigOpType, AlterConfigsResource, AlterableConfig, ConfigResource, ConfigResourceType,
    ConfigSource, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};

use super::{Broker, text};
use crate::errors::{kafka_code, kafka_code_i32};

/// Answers one AlterConfigs request.
pub async fn answer(broker: &Broker, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let codes = match alter(broker, &req).await {
        Ok(codes) => codes,
        Err(e) => vec![(kafka_code(e.code), e.message); req.resources.len()],
    };
    let responses = req
        .resources
        .iter()
        .zip(codes)
        .map(|(r, (code, message))| {
            AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(code)
                .with_error_message((!message.is_empty()).then(|| text(message)))
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// `(error code, message)` per resource, in request order.
async fn alter(
    broker: &Broker,
    req: &AlterConfigsRequest,
) -> Result<Vec<(i16, String)>, StromError> {
    let resources: Vec<ConfigResource> = req.resources.iter().map(resource).collect();
    let described = broker
        .controller
        .call(broker.controller_timeout, async |mut c| {
            c.describe_configs(DescribeConfigsRequest {
                resources: resources.clone(),
            })
            .await
        })
        .await?;
    // A resource that cannot be described is answered with that error and
    // left out of the change.
    let mut codes = Vec::with_capacity(req.resources.len());
    let mut changes = Vec::new();
    for ((asked, res), got) in req.resources.iter().zip(&resources).zip(described.results) {
        if got.error_code != 0 {
            codes.push(Some((kafka_code_i32(got.error_code), got.error_message)));
            continue;
        }
        codes.push(None);
        let level = own_level(res);
        let given = |name: &str| asked.configs.iter().any(|c| c.name.as_str() == name);
        let mut configs: Vec<AlterableConfig> = asked
            .configs
            .iter()
            .map(|c| AlterableConfig {
                name: c.name.to_string(),
                op: AlterConfigOpType::Set as i32,
                value: c.value.as_ref().map(|v| v.to_string()),
            })
            .collect();
        configs.extend(
            got.configs
                .iter()
                .filter(|e| e.source == level as i32 && !given(&e.name))
                .map(|e| AlterableConfig {
                    name: e.name.clone(),
                    op: AlterConfigOpType::Delete as i32,
                    value: None,
                }),
        );
        changes.push(AlterConfigsResource {
            resource: Some(res.clone()),
            configs,
        });
    }
    let altered = if changes.is_empty() {
        Vec::new()
    } else {
        let proto = IncrementalAlterConfigsRequest {
            resources: changes,
            validate_only: req.validate_only,
        };
        broker
            .controller
            .call(broker.controller_timeout, async |mut c| {
                c.incremental_alter_configs(proto.clone()).await
            })
            .await?
            .results
    };
    let mut altered = altered.into_iter();
    Ok(codes
        .into_iter()
        .map(|c| {
            c.unwrap_or_else(|| {
                altered.next().map_or((0, String::new()), |r| {
                    (kafka_code_i32(r.error_code), r.error_message)
                })
            })
        })
        .collect())
}

fn resource(r: &KafkaResource) -> ConfigResource {
    ConfigResource {
        r#type: i32::from(r.resource_type),
        name: r.resource_name.to_string(),
    }
}

/// The source of a config set at `res` itself.
fn own_level(res: &ConfigResource) -> ConfigSource {
    match ConfigResourceType::try_from(res.r#type) {
        Ok(ConfigResourceType::Broker) if res.name.is_empty() => {
            ConfigSource::DynamicDefaultBrokerConfig
        }
        Ok(ConfigResourceType::Broker) => ConfigSource::DynamicBrokerConfig,
        _ => ConfigSource::DynamicTopicConfig,
    }
}
