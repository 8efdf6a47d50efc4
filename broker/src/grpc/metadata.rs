//! `MetadataService.Metadata`: served from this broker's replayed image, so
//! a client can bootstrap from any node.

use strom_proto::convert::metadata_response;
use strom_proto::v1::metadata_service_server::MetadataService;
use strom_proto::v1::{MetadataRequest, MetadataResponse};
use tonic::{Request, Response, Status};

use crate::metadata::MetadataCache;

/// Metadata reads from the local image.
#[derive(Clone)]
pub struct MetadataServiceImpl {
    cache: MetadataCache,
    /// Reports the active controller's id, when known.
    controller_id: std::sync::Arc<dyn Fn() -> i32 + Send + Sync>,
}

impl std::fmt::Debug for MetadataServiceImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataServiceImpl")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl MetadataServiceImpl {
    /// Serves `cache`; `controller_id` names the active controller.
    pub fn new(
        cache: MetadataCache,
        controller_id: std::sync::Arc<dyn Fn() -> i32 + Send + Sync>,
    ) -> Self {
        Self {
            cache,
            controller_id,
        }
    }
}

#[tonic::async_trait]
impl MetadataService for MetadataServiceImpl {
    async fn metadata(
        &self,
        req: Request<MetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        let topics = req.into_inner().topics;
        let controller_id = (self.controller_id)();
        Ok(Response::new(self.cache.with_image(|image| {
            metadata_response(image, &topics, controller_id)
        })))
    }
}
