//! A response framed: size, header (v0, or v1 with tagged fields for
//! flexible versions, as the API's schema says) and body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, CreatePartitionsResponse, CreateTopicsResponse,
    DeleteTopicsResponse, FetchResponse, FindCoordinatorResponse, InitProducerIdResponse,
    ListOffsetsResponse, MetadataResponse, OffsetForLeaderEpochResponse, ProduceResponse,
    ResponseHeader,
};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatResponse, DeleteGroupsResponse, DescribeGroupsResponse,
    HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, ListGroupsResponse,
    OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse, SyncGroupResponse,
};
use kafka_protocol::protocol::Encodable;

/// The body of a response.
#[derive(Debug)]
#[allow(missing_docs)]
pub enum Response {
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    Metadata(MetadataResponse),
    FindCoordinator(FindCoordinatorResponse),
    ApiVersions(ApiVersionsResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    InitProducerId(InitProducerIdResponse),
    OffsetForLeaderEpoch(OffsetForLeaderEpochResponse),
    CreatePartitions(CreatePartitionsResponse),
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    OffsetDelete(OffsetDeleteResponse),
    ListGroups(ListGroupsResponse),
    DescribeGroups(DescribeGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
}

impl Response {
    /// The API this answers.
    pub fn api_key(&self) -> ApiKey {
        match self {
            Response::Produce(_) => ApiKey::Produce,
            Response::Fetch(_) => ApiKey::Fetch,
            Response::ListOffsets(_) => ApiKey::ListOffsets,
            Response::Metadata(_) => ApiKey::Metadata,
            Response::FindCoordinator(_) => ApiKey::FindCoordinator,
            Response::ApiVersions(_) => ApiKey::ApiVersions,
            Response::CreateTopics(_) => ApiKey::CreateTopics,
            Response::DeleteTopics(_) => ApiKey::DeleteTopics,
            Response::InitProducerId(_) => ApiKey::InitProducerId,
            Response::OffsetForLeaderEpoch(_) => ApiKey::OffsetForLeaderEpoch,
            Response::CreatePartitions(_) => ApiKey::CreatePartitions,
            Response::JoinGroup(_) => ApiKey::JoinGroup,
            Response::SyncGroup(_) => ApiKey::SyncGroup,
            Response::Heartbeat(_) => ApiKey::Heartbeat,
            Response::LeaveGroup(_) => ApiKey::LeaveGroup,
            Response::OffsetCommit(_) => ApiKey::OffsetCommit,
            Response::OffsetFetch(_) => ApiKey::OffsetFetch,
            Response::OffsetDelete(_) => ApiKey::OffsetDelete,
            Response::ListGroups(_) => ApiKey::ListGroups,
            Response::DescribeGroups(_) => ApiKey::DescribeGroups,
            Response::DeleteGroups(_) => ApiKey::DeleteGroups,
            Response::ConsumerGroupHeartbeat(_) => ApiKey::ConsumerGroupHeartbeat,
        }
    }

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<(), String> {
        let r = match self {
            Response::Produce(b) => b.encode(buf, version),
            Response::Fetch(b) => b.encode(buf, version),
            Response::ListOffsets(b) => b.encode(buf, version),
            Response::Metadata(b) => b.encode(buf, version),
            Response::FindCoordinator(b) => b.encode(buf, version),
            Response::ApiVersions(b) => b.encode(buf, version),
            Response::CreateTopics(b) => b.encode(buf, version),
            Response::DeleteTopics(b) => b.encode(buf, version),
            Response::InitProducerId(b) => b.encode(buf, version),
            Response::OffsetForLeaderEpoch(b) => b.encode(buf, version),
            Response::CreatePartitions(b) => b.encode(buf, version),
            Response::JoinGroup(b) => b.encode(buf, version),
            Response::SyncGroup(b) => b.encode(buf, version),
            Response::Heartbeat(b) => b.encode(buf, version),
            Response::LeaveGroup(b) => b.encode(buf, version),
            Response::OffsetCommit(b) => b.encode(buf, version),
            Response::OffsetFetch(b) => b.encode(buf, version),
            Response::OffsetDelete(b) => b.encode(buf, version),
            Response::ListGroups(b) => b.encode(buf, version),
            Response::DescribeGroups(b) => b.encode(buf, version),
            Response::DeleteGroups(b) => b.encode(buf, version),
            Response::ConsumerGroupHeartbeat(b) => b.encode(buf, version),
        };
        r.map_err(|e| e.to_string())
    }
}

/// A response that cannot be encoded (a field set that its version does
/// not carry: a bug in a handler). The connection closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {key:?} v{version} response: {reason}")]
pub struct EncodeError {
    /// The API.
    pub key: ApiKey,
    /// The version.
    pub version: i16,
    /// What failed.
    pub reason: String,
}

/// `response` to the request `correlation_id`, in `version`, framed.
pub fn encode(
    response: &Response,
    version: i16,
    correlation_id: i32,
) -> Result<Bytes, EncodeError> {
    let key = response.api_key();
    let error = |reason: String| EncodeError {
        key,
        version,
        reason,
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, key.response_header_version(version))
        .map_err(|e| error(e.to_string()))?;
    response.encode_body(&mut buf, version).map_err(error)?;
    let size = i32::try_from(buf.len() - 4).map_err(|_| error("above 2 GiB".into()))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}
