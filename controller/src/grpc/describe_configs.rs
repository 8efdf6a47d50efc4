//! DescribeConfigs: every config of each resource with its value in force
//! and source, from the committed image (static broker settings as the
//! brokers registered them), one result per resource.

use strom_metadata::configs::describe_configs;
use strom_proto::convert::config_resource;
use strom_proto::v1::{
    ConfigEntry, DescribeConfigsRequest, DescribeConfigsResponse, DescribeConfigsResult,
};

use super::ControllerGrpc;
use crate::error::ControllerError;

impl ControllerGrpc {
    pub(super) fn describe_configs_local(
        &self,
        r: DescribeConfigsRequest,
    ) -> DescribeConfigsResponse {
        let results = r
            .resources
            .into_iter()
            .map(|resource| {
                let described = config_resource(&resource)
                    .and_then(|res| self.ctl.with_image(|image| describe_configs(image, &res)));
                let mut result = DescribeConfigsResult {
                    resource: Some(resource),
                    ..Default::default()
                };
                match described {
                    Ok(entries) => result.configs = entries.iter().map(ConfigEntry::from).collect(),
                    Err(e) => {
                        let e = ControllerError::from(e).to_strom();
                        result.error_code = e.code as i32;
                        result.error_message = e.message;
                    }
                }
                result
            })
            .collect();
        DescribeConfigsResponse { results }
    }
}
