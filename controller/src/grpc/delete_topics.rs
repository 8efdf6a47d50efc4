//! DeleteTopics: one RemoveTopicRecord per topic.

use strom_proto::v1::{DeleteTopicResult, DeleteTopicsRequest, DeleteTopicsResponse};

use super::ControllerGrpc;
use crate::error::Result;

impl ControllerGrpc {
    pub(super) async fn delete_topics_local(
        &self,
        r: DeleteTopicsRequest,
    ) -> Result<DeleteTopicsResponse> {
        let mut results = Vec::with_capacity(r.names.len());
        for name in &r.names {
            let mut result = DeleteTopicResult {
                name: name.clone(),
                ..Default::default()
            };
            let outcome = self
                .ctl
                .decide(|image| {
                    let id = image.topic_by_name(name).map(|t| t.id);
                    Ok((strom_metadata::delete_topic(image, name)?, id))
                })
                .await;
            match outcome {
                Ok((id, _)) => {
                    if let Some(id) = id {
                        result.topic_id = id.as_bytes().to_vec();
                    }
                    tracing::info!(topic = %name, "deleted topic");
                }
                Err(e) => (result.error_code, result.error_message) = super::item_error(e)?,
            }
            results.push(result);
        }
        Ok(DeleteTopicsResponse { topics: results })
    }
}
