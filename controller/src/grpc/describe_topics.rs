//! DescribeTopics: topics as the active controller has committed them.

use strom_proto::convert::metadata_response;
use strom_proto::v1::{MetadataRequest, MetadataResponse};

use super::ControllerGrpc;

impl ControllerGrpc {
    pub(super) fn describe_topics_local(&self, r: MetadataRequest) -> MetadataResponse {
        let controller_id = self
            .ctl
            .leader()
            .map_or(-1, |(id, _)| i32::try_from(id).unwrap_or(-1));
        self.ctl
            .with_image(|image| metadata_response(image, &r.topics, controller_id))
    }
}
