//! The client side of `RaftService`: how a controller reaches its peers.
//!
//! Payloads are openraft's own types encoded with bincode inside a protobuf
//! `RaftMessage`; responses carry `Result<response, RaftError>`.

use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use strom_proto::v1::RaftMessage;
use strom_proto::v1::raft_service_client::RaftServiceClient;
use tonic::transport::{Channel, Endpoint};

use super::types::{NodeId, TypeConfig};

/// Creates one connection per peer.
#[derive(Debug, Clone)]
pub struct NetworkFactory {
    connect_timeout: Duration,
    fingerprint: u64,
}

impl NetworkFactory {
    /// A factory whose connections time out connecting after
    /// `connect_timeout` and whose requests carry the quorum `fingerprint`
    /// ([`super::quorum_fingerprint`]).
    pub fn new(connect_timeout: Duration, fingerprint: u64) -> Self {
        Self {
            connect_timeout,
            fingerprint,
        }
    }
}

/// A lazily connected channel to one peer controller.
#[derive(Debug)]
pub struct PeerConnection {
    target: NodeId,
    client: Option<RaftServiceClient<Channel>>,
    address: String,
    connect_timeout: Duration,
    fingerprint: u64,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConnection {
        PeerConnection {
            target,
            client: None,
            address: node.addr.clone(),
            connect_timeout: self.connect_timeout,
            fingerprint: self.fingerprint,
        }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl PeerConnection {
    fn client(&mut self) -> Result<RaftServiceClient<Channel>, NetworkError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{}", self.address))
            .map_err(|e| NetworkError::new(&e))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        let client = RaftServiceClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(strom_proto::MAX_CONTROL_MESSAGE_BYTES)
            .max_encoding_message_size(strom_proto::MAX_CONTROL_MESSAGE_BYTES);
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn call<Req, Resp, E>(
        &mut self,
        rpc: Rpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let payload =
            bincode::serialize(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = self.client().map_err(RPCError::Network)?;
        let mut request = tonic::Request::new(RaftMessage {
            payload,
            quorum_fingerprint: self.fingerprint,
            target_id: i32::try_from(self.target).unwrap_or(-1),
        });
        request.set_timeout(option.hard_ttl());
        let response = match rpc {
            Rpc::Vote => client.vote(request).await,
            Rpc::Append => client.append_entries(request).await,
            Rpc::Snapshot => client.install_snapshot(request).await,
        };
        let message = match response {
            Ok(r) => r.into_inner(),
            Err(status) => {
                // Connection refused or reset: back off; anything else: retry.
                return Err(match status.code() {
                    tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::new(&status)),
                    _ => RPCError::Network(NetworkError::new(&status)),
                });
            }
        };
        let result: Result<Resp, RaftError<NodeId, E>> = bincode::deserialize(&message.payload)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

#[derive(Debug, Clone, Copy)]
enum Rpc {
    Vote,
    Append,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        self.call(Rpc::Append, &req, &option).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.call(Rpc::Snapshot, &req, &option).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        self.call(Rpc::Vote, &req, &option).await
    }
}
