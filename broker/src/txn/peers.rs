//! The transaction coordinator's calls to other brokers: WriteTxnMarkers
//! to partition leaders, and a leader's KIP-890 AddPartitionsToTxn to the
//! coordinator of a transactional id. Behind [`TxnPeers`] so tests can
//! answer in-process; [`GrpcTxnPeers`] dials the addresses of the
//! metadata image.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use strom_proto::StromError;
use strom_proto::v1::transaction_service_client::TransactionServiceClient;
use strom_proto::v1::{
    AddPartitionsToTxnRequest, ErrorCode, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use tonic::transport::{Channel, Endpoint};

use crate::metadata::MetadataCache;

/// Calls to another broker's `TransactionService`.
pub trait TxnPeers: Send + Sync + std::fmt::Debug {
    /// WriteTxnMarkers at `broker`.
    fn write_markers(
        &self,
        broker: i32,
        req: WriteTxnMarkersRequest,
    ) -> BoxFuture<'_, Result<WriteTxnMarkersResponse, StromError>>;

    /// AddPartitionsToTxn at `broker` (the transactional id's coordinator).
    fn add_partitions(
        &self,
        broker: i32,
        req: AddPartitionsToTxnRequest,
    ) -> BoxFuture<'_, Result<(), StromError>>;
}

/// How long one call to a peer may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// [`TxnPeers`] over gRPC, one lazily dialled channel per broker address.
#[derive(Debug)]
pub struct GrpcTxnPeers {
    cache: MetadataCache,
    channels: Mutex<HashMap<i32, (String, Channel)>>,
}

impl GrpcTxnPeers {
    /// Peers at the addresses `cache` holds.
    pub fn new(cache: MetadataCache) -> Self {
        Self {
            cache,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, broker: i32) -> Result<TransactionServiceClient<Channel>, StromError> {
        let address = self
            .cache
            .with_image(|image| {
                image
                    .broker(broker)
                    .map(strom_proto::convert::broker_address)
            })
            .ok_or_else(|| {
                StromError::new(
                    ErrorCode::BrokerNotAvailable,
                    format!("broker {broker} is not registered"),
                )
            })?;
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((a, channel)) = channels.get(&broker)
            && *a == address
        {
            return Ok(TransactionServiceClient::new(channel.clone()));
        }
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| {
                StromError::new(
                    ErrorCode::BrokerNotAvailable,
                    format!("broker {broker} has a bad address {address:?}: {e}"),
                )
            })?
            .connect_timeout(Duration::from_millis(500))
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true);
        let channel = endpoint.connect_lazy();
        channels.insert(broker, (address, channel.clone()));
        Ok(TransactionServiceClient::new(channel))
    }
}

impl TxnPeers for GrpcTxnPeers {
    fn write_markers(
        &self,
        broker: i32,
        req: WriteTxnMarkersRequest,
    ) -> BoxFuture<'_, Result<WriteTxnMarkersResponse, StromError>> {
        Box::pin(async move {
            let mut client = self.client(broker)?;
            client
                .write_txn_markers(req)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| StromError::from_status(&s))
        })
    }

    fn add_partitions(
        &self,
        broker: i32,
        req: AddPartitionsToTxnRequest,
    ) -> BoxFuture<'_, Result<(), StromError>> {
        Box::pin(async move {
            let mut client = self.client(broker)?;
            client
                .add_partitions_to_txn(req)
                .await
                .map(|_| ())
                .map_err(|s| StromError::from_status(&s))
        })
    }
}
