//! DescribeConfigs: forwarded to the controller quorum's DescribeConfigs
//! (the call `strom configs describe` makes), which resolves each config's
//! value and source. Kafka's `configuration_keys` and `include_synonyms`
//! only select what of that answer is sent back.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use strom_proto::v1::{
    ConfigEntry, ConfigResource, DescribeConfigsRequest as ProtoRequest,
    DescribeConfigsResult as ProtoResult,
};

use super::{Broker, text};
use crate::errors::{kafka_code, kafka_code_i32};

/// Answers one DescribeConfigs request.
pub async fn answer(broker: &Broker, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let proto = ProtoRequest {
        resources: req
            .resources
            .iter()
            .map(|r| ConfigResource {
                r#type: i32::from(r.resource_type),
                name: r.resource_name.to_string(),
            })
            .collect(),
    };
    let answer = broker
        .controller
        .call(broker.controller_timeout, async |mut c| {
            c.describe_configs(proto.clone()).await
        })
        .await;
    let results = match answer {
        // One result per resource, in request order.
        Ok(resp) => req
            .resources
            .iter()
            .zip(resp.results)
            .map(|(asked, got)| result(asked, got, req.include_synonyms))
            .collect(),
        Err(e) => req
            .resources
            .iter()
            .map(|asked| {
                DescribeConfigsResult::default()
                    .with_resource_type(asked.resource_type)
                    .with_resource_name(asked.resource_name.clone())
                    .with_error_code(kafka_code(e.code))
                    .with_error_message(Some(text(e.message.clone())))
            })
            .collect(),
    };
    DescribeConfigsResponse::default().with_results(results)
}

fn result(
    asked: &kafka_protocol::messages::describe_configs_request::DescribeConfigsResource,
    got: ProtoResult,
    include_synonyms: bool,
) -> DescribeConfigsResult {
    let out = DescribeConfigsResult::default()
        .with_resource_type(asked.resource_type)
        .with_resource_name(asked.resource_name.clone())
        .with_error_code(kafka_code_i32(got.error_code));
    if !got.error_message.is_empty() {
        return out.with_error_message(Some(text(got.error_message)));
    }
    let wanted = |name: &str| {
        asked
            .configuration_keys
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
    };
    out.with_configs(
        got.configs
            .into_iter()
            .filter(|c| wanted(&c.name))
            .map(|c| entry(c, include_synonyms))
            .collect(),
    )
}

fn entry(c: ConfigEntry, include_synonyms: bool) -> DescribeConfigsResourceResult {
    let synonyms = if include_synonyms {
        c.synonyms
            .into_iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(text(s.name))
                    .with_value(s.value.map(text))
                    .with_source(source(s.source))
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(text(c.name))
        .with_value(c.value.map(text))
        .with_read_only(c.read_only)
        .with_config_source(source(c.source))
        .with_is_sensitive(c.sensitive)
        .with_synonyms(synonyms)
}

/// Strom's `ConfigSource` has Kafka's numbers (0 UNKNOWN … 5 DEFAULT_CONFIG).
fn source(s: i32) -> i8 {
    i8::try_from(s).unwrap_or(0)
}
