//! A response framed: size, header (v0, or v1 with tagged fields for
//! flexible versions, as the API's schema says) and body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, AlterConfigsResponse,
    AlterPartitionReassignmentsResponse, ApiKey, ApiVersionsResponse,
    ConsumerGroupHeartbeatResponse, CreatePartitionsResponse, CreateTopicsResponse,
    DeleteGroupsResponse, DeleteRecordsResponse, DeleteTopicsResponse, DescribeClusterResponse,
    DescribeConfigsResponse, DescribeGroupsResponse, DescribeLogDirsResponse,
    DescribeProducersResponse, DescribeTransactionsResponse, ElectLeadersResponse, EndTxnResponse,
    FetchResponse, FindCoordinatorResponse, HeartbeatResponse, IncrementalAlterConfigsResponse,
    InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse, ListGroupsResponse,
    ListOffsetsResponse, ListPartitionReassignmentsResponse, ListTransactionsResponse,
    MetadataResponse, OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse,
    OffsetForLeaderEpochResponse, ProduceResponse, ResponseHeader, SyncGroupResponse,
    TxnOffsetCommitResponse,
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
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    EndTxn(EndTxnResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
    DescribeProducers(DescribeProducersResponse),
    ListTransactions(ListTransactionsResponse),
    DescribeTransactions(DescribeTransactionsResponse),
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
            Response::AddPartitionsToTxn(_) => ApiKey::AddPartitionsToTxn,
            Response::AddOffsetsToTxn(_) => ApiKey::AddOffsetsToTxn,
            Response::EndTxn(_) => ApiKey::EndTxn,
            Response::TxnOffsetCommit(_) => ApiKey::TxnOffsetCommit,
            Response::DescribeProducers(_) => ApiKey::DescribeProducers,
            Response::ListTransactions(_) => ApiKey::ListTransactions,
            Response::DescribeTransactions(_) => ApiKey::DescribeTransactions,
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
            Response::AddPartitionsToTxn(b) => b.encode(buf, version),
            Response::AddOffsetsToTxn(b) => b.encode(buf, version),
            Response::EndTxn(b) => b.encode(buf, version),
            Response::TxnOffsetCommit(b) => b.encode(buf, version),
            Response::DescribeProducers(b) => b.encode(buf, version),
            Response::ListTransactions(b) => b.encode(buf, version),
            Response::DescribeTransactions(b) => b.encode(buf, version),
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

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ProducerId;
    use kafka_protocol::protocol::Decodable;

    use super::*;
    use crate::versions;

    /// Encodes `response` in every served version of its API, and decodes
    /// each back as `R`.
    fn every_version<R: Decodable + std::fmt::Debug>(response: Response) -> Vec<(i16, R)> {
        let key = response.api_key();
        let (min, max) = versions::served_range(key).expect("served");
        (min..=max)
            .map(|v| {
                let mut framed = encode(&response, v, 9).expect("encodes");
                let _size = framed.split_to(4);
                let header = ResponseHeader::decode(&mut framed, key.response_header_version(v))
                    .expect("header");
                assert_eq!(header.correlation_id, 9);
                (v, R::decode(&mut framed, v).expect("decodes"))
            })
            .collect()
    }

    #[test]
    fn end_txn_answers_the_producer_only_from_v5() {
        let r = EndTxnResponse::default()
            .with_producer_id(ProducerId(42))
            .with_producer_epoch(3);
        for (v, back) in every_version::<EndTxnResponse>(Response::EndTxn(r)) {
            let want = if v >= 5 { (42, 3) } else { (-1, -1) };
            assert_eq!((back.producer_id.0, back.producer_epoch), want, "v{v}");
        }
    }

    #[test]
    fn transaction_responses_encode_in_every_served_version() {
        let listed = ListTransactionsResponse::default().with_error_code(15);
        for (v, back) in
            every_version::<ListTransactionsResponse>(Response::ListTransactions(listed))
        {
            assert_eq!(back.error_code, 15, "v{v}");
        }
        let added = AddOffsetsToTxnResponse::default().with_error_code(90);
        for (v, back) in every_version::<AddOffsetsToTxnResponse>(Response::AddOffsetsToTxn(added))
        {
            assert_eq!(back.error_code, 90, "v{v}");
        }
        every_version::<AddPartitionsToTxnResponse>(Response::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default(),
        ));
        every_version::<TxnOffsetCommitResponse>(Response::TxnOffsetCommit(
            TxnOffsetCommitResponse::default(),
        ));
        every_version::<DescribeProducersResponse>(Response::DescribeProducers(
            DescribeProducersResponse::default(),
        ));
        every_version::<DescribeTransactionsResponse>(Response::DescribeTransactions(
            DescribeTransactionsResponse::default(),
        ));
    }
}
