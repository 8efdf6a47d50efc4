//! A response framed: size, header (v0, or v1 with tagged fields for
//! flexible versions, as the API's schema says) and body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    AlterConfigsResponse, AlterPartitionReassignmentsResponse, ApiKey, ApiVersionsResponse,
    CreatePartitionsResponse, CreateTopicsResponse, DeleteRecordsResponse, DeleteTopicsResponse,
    DescribeClusterResponse, DescribeConfigsResponse, DescribeLogDirsResponse,
    ElectLeadersResponse, FetchResponse, FindCoordinatorResponse, IncrementalAlterConfigsResponse,
    InitProducerIdResponse, ListOffsetsResponse, ListPartitionReassignmentsResponse,
    MetadataResponse, OffsetForLeaderEpochResponse, ProduceResponse, ResponseHeader,
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
    DescribeConfigs(DescribeConfigsResponse),
    IncrementalAlterConfigs(IncrementalAlterConfigsResponse),
    AlterConfigs(AlterConfigsResponse),
    DescribeCluster(DescribeClusterResponse),
    DeleteRecords(DeleteRecordsResponse),
    ElectLeaders(ElectLeadersResponse),
    ListPartitionReassignments(ListPartitionReassignmentsResponse),
    AlterPartitionReassignments(AlterPartitionReassignmentsResponse),
    DescribeLogDirs(DescribeLogDirsResponse),
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
            Response::DescribeConfigs(_) => ApiKey::DescribeConfigs,
            Response::IncrementalAlterConfigs(_) => ApiKey::IncrementalAlterConfigs,
            Response::AlterConfigs(_) => ApiKey::AlterConfigs,
            Response::DescribeCluster(_) => ApiKey::DescribeCluster,
            Response::DeleteRecords(_) => ApiKey::DeleteRecords,
            Response::ElectLeaders(_) => ApiKey::ElectLeaders,
            Response::ListPartitionReassignments(_) => ApiKey::ListPartitionReassignments,
            Response::AlterPartitionReassignments(_) => ApiKey::AlterPartitionReassignments,
            Response::DescribeLogDirs(_) => ApiKey::DescribeLogDirs,
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
            Response::DescribeConfigs(b) => b.encode(buf, version),
            Response::IncrementalAlterConfigs(b) => b.encode(buf, version),
            Response::AlterConfigs(b) => b.encode(buf, version),
            Response::DescribeCluster(b) => b.encode(buf, version),
            Response::DeleteRecords(b) => b.encode(buf, version),
            Response::ElectLeaders(b) => b.encode(buf, version),
            Response::ListPartitionReassignments(b) => b.encode(buf, version),
            Response::AlterPartitionReassignments(b) => b.encode(buf, version),
            Response::DescribeLogDirs(b) => b.encode(buf, version),
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
