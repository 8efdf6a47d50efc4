//! How a member's read (`ConsumeMemberRecords`) reaches other brokers:
//! the partition leaders (`ConsumeRecords`, `ListOffsets`) and, from a
//! broker that is not the group's coordinator, the coordinator. The
//! [`Peers`] seam; [`GrpcPeers`] serves what this broker leads from its
//! own replicas and dials the others, one lazily connected channel per
//! address.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use strom_proto::StromError;
use strom_proto::v1::broker_service_client::BrokerServiceClient;
use strom_proto::v1::group_service_client::GroupServiceClient;
use strom_proto::v1::records_service_client::RecordsServiceClient;
use strom_proto::v1::{
    ConsumeMemberRecordsRequest, ConsumeMemberRecordsResponse, ConsumeRecordsRequest,
    ConsumeRecordsResponse, ErrorCode, ListOffsetsRequest, ListOffsetsResponse,
};
use tonic::transport::{Channel, Endpoint};

use crate::replica::ReplicaManager;

/// gRPC metadata key of a `ConsumeMemberRecords` forwarded by a broker
/// that is not the coordinator: the receiver does not forward it again.
pub const FORWARDED: &str = "strom-forwarded";

/// Largest answer accepted from a peer (a member's records).
const MAX_MESSAGE: usize = 64 << 20;

/// The other brokers, as a member's read needs them.
pub trait Peers: Send + Sync + Debug {
    /// `ConsumeRecords` on broker `leader`.
    fn consume(
        &self,
        leader: i32,
        req: ConsumeRecordsRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ConsumeRecordsResponse, StromError>>;

    /// `ListOffsets` on broker `leader`.
    fn list_offsets(
        &self,
        leader: i32,
        req: ListOffsetsRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ListOffsetsResponse, StromError>>;

    /// `ConsumeMemberRecords` forwarded to the coordinator at `address`.
    fn forward(
        &self,
        address: String,
        req: ConsumeMemberRecordsRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ConsumeMemberRecordsResponse, StromError>>;
}

/// [`Peers`] over gRPC at the metadata image's addresses; this broker's
/// own partitions are read locally.
#[derive(Debug)]
pub struct GrpcPeers {
    rm: Arc<ReplicaManager>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl GrpcPeers {
    /// Reads `rm`'s partitions locally, dials the rest.
    pub fn new(rm: Arc<ReplicaManager>) -> Self {
        Self {
            rm,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn channel(&self, address: &str) -> Result<Channel, StromError> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = channels.get(address) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| {
                StromError::new(ErrorCode::InvalidRequest, format!("address {address}: {e}"))
            })?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(strom_controller_client::KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(strom_controller_client::KEEP_ALIVE_TIMEOUT);
        let channel = endpoint.connect_lazy();
        // Brokers come and go: keep the map from growing without bound.
        if channels.len() > 1024 {
            channels.clear();
        }
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    fn broker_channel(&self, id: i32) -> Result<Channel, StromError> {
        let address = self
            .rm
            .cache()
            .with_image(|image| image.broker(id).map(strom_proto::convert::broker_address))
            .ok_or_else(|| {
                StromError::new(
                    ErrorCode::LeaderNotAvailable,
                    format!("no address for broker {id}"),
                )
            })?;
        self.channel(&address)
    }
}

/// `call` within `timeout`, its status as a [`StromError`].
async fn within<T>(
    what: &str,
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, StromError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(status)) => Err(StromError::from_status(&status)),
        Err(_) => Err(StromError::new(
            ErrorCode::RequestTimedOut,
            format!("{what} took over {timeout:?}"),
        )),
    }
}

fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.set_timeout(timeout);
    r
}

impl Peers for GrpcPeers {
    fn consume(
        &self,
        leader: i32,
        req: ConsumeRecordsRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ConsumeRecordsResponse, StromError>> {
        Box::pin(async move {
            if leader == self.rm.node_id() {
                return crate::grpc::records::consume_records::consume_records(&self.rm, req).await;
            }
            let mut client = RecordsServiceClient::new(self.broker_channel(leader)?)
                .max_decoding_message_size(MAX_MESSAGE);
            let what = format!("ConsumeRecords on broker {leader}");
            within(
                &what,
                timeout,
                client.consume_records(request(req, timeout)),
            )
            .await
        })
    }

    fn list_offsets(
        &self,
        leader: i32,
        req: ListOffsetsRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ListOffsetsResponse, StromError>> {
        Box::pin(async move {
            if leader == self.rm.node_id() {
                return crate::grpc::list_offsets::list_offsets(&self.rm, req);
            }
            let mut client = BrokerServiceClient::new(self.broker_channel(leader)?);
            let what = format!("ListOffsets on broker {leader}");
            within(&what, timeout, client.list_offsets(request(req, timeout))).await
        })
    }

    fn forward(
        &self,
        address: String,
        req: ConsumeMemberRecordsRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ConsumeMemberRecordsResponse, StromError>> {
        Box::pin(async move {
            let mut client = GroupServiceClient::new(self.channel(&address)?)
                .max_decoding_message_size(MAX_MESSAGE);
            let what = format!("ConsumeMemberRecords at the coordinator {address}");
            let mut req = request(req, timeout);
            req.metadata_mut()
                .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
            within(&what, timeout, client.consume_member_records(req)).await
        })
    }
}
