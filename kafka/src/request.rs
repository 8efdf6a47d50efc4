//! A frame decoded into a request, or the reason the connection closes.
//! Pure: no I/O.
//!
//! As Kafka's `SocketServer` and `RequestContext`: a header that cannot be
//! read, an unknown API key, a version not served, a body that does not
//! decode or bytes left after it close the connection without an answer.
//! The one exception is ApiVersions above the served range: it is answered
//! with UNSUPPORTED_VERSION in version 0, so a newer client can retry with
//! a version it shares with this broker (KIP-511).

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AlterConfigsRequest,
    AlterPartitionReassignmentsRequest, ApiKey, ApiVersionsRequest, ConsumerGroupHeartbeatRequest,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest, DeleteRecordsRequest,
    DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    DescribeLogDirsRequest, DescribeProducersRequest, DescribeTransactionsRequest,
    ElectLeadersRequest, EndTxnRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest,
    IncrementalAlterConfigsRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, ListPartitionReassignmentsRequest,
    ListTransactionsRequest, MetadataRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest, RequestHeader,
    SyncGroupRequest, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::Decodable;

use crate::versions;

/// Bytes every request header starts with: api key, api version,
/// correlation id.
const FIXED_HEADER_BYTES: usize = 8;

/// A request this listener serves, decoded.
#[derive(Debug)]
pub struct Request {
    /// Its header.
    pub header: RequestHeader,
    /// The API.
    pub api_key: ApiKey,
    /// Its body.
    pub body: Body,
}

impl Request {
    /// The request's API version.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
}

/// The body of a served request.
#[derive(Debug)]
#[allow(missing_docs)]
pub enum Body {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    FindCoordinator(FindCoordinatorRequest),
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    InitProducerId(InitProducerIdRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    CreatePartitions(CreatePartitionsRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    EndTxn(EndTxnRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    DescribeProducers(DescribeProducersRequest),
    ListTransactions(ListTransactionsRequest),
    DescribeTransactions(DescribeTransactionsRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    OffsetDelete(OffsetDeleteRequest),
    ListGroups(ListGroupsRequest),
    DescribeGroups(DescribeGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    DescribeConfigs(DescribeConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    AlterConfigs(AlterConfigsRequest),
    DescribeCluster(DescribeClusterRequest),
    DeleteRecords(DeleteRecordsRequest),
    ElectLeaders(ElectLeadersRequest),
    ListPartitionReassignments(ListPartitionReassignmentsRequest),
    AlterPartitionReassignments(AlterPartitionReassignmentsRequest),
    DescribeLogDirs(DescribeLogDirsRequest),
}

/// What a frame is.
#[derive(Debug)]
pub enum Decoded {
    /// A served request.
    Request(Box<Request>),
    /// ApiVersions above the served range: answered with
    /// UNSUPPORTED_VERSION and ApiVersions' own range, in version 0.
    UnsupportedApiVersions {
        /// To answer with.
        correlation_id: i32,
    },
}

/// Why a frame closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Shorter than the fixed part of a request header.
    #[error("request of {0} bytes is shorter than a request header")]
    TooShort(usize),
    /// An API key Kafka does not define.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// A version (or an API) this listener does not serve.
    #[error("{key:?} version {version} is not served")]
    Unsupported {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The header or body does not decode, or bytes follow the body.
    #[error("malformed {key:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        key: ApiKey,
        /// Its version.
        version: i16,
        /// What did not decode.
        reason: String,
    },
}

/// Decodes one frame.
pub fn decode(mut frame: Bytes) -> Result<Decoded, RequestError> {
    if frame.len() < FIXED_HEADER_BYTES {
        return Err(RequestError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let key = ApiKey::try_from(raw_key).map_err(|()| RequestError::UnknownApiKey(raw_key))?;
    if !versions::is_served(key, version) {
        if key == ApiKey::ApiVersions && version >= 0 {
            return Ok(Decoded::UnsupportedApiVersions { correlation_id });
        }
        return Err(RequestError::Unsupported { key, version });
    }
    let malformed = |reason: String| RequestError::Malformed {
        key,
        version,
        reason,
    };
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))
        .map_err(|e| malformed(format!("header: {e}")))?;
    let body = decode_body(key, &mut frame, version).map_err(malformed)?;
    if frame.has_remaining() {
        return Err(malformed(format!(
            "{} bytes follow the body",
            frame.remaining()
        )));
    }
    Ok(Decoded::Request(Box::new(Request {
        header,
        api_key: key,
        body,
    })))
}

fn decode_body(key: ApiKey, buf: &mut Bytes, version: i16) -> Result<Body, String> {
    macro_rules! body {
        ($variant:ident, $ty:ty) => {
            Body::$variant(<$ty>::decode(buf, version).map_err(|e| e.to_string())?)
        };
    }
    Ok(match key {
        ApiKey::Produce => body!(Produce, ProduceRequest),
        ApiKey::Fetch => body!(Fetch, FetchRequest),
        ApiKey::ListOffsets => body!(ListOffsets, ListOffsetsRequest),
        ApiKey::Metadata => body!(Metadata, MetadataRequest),
        ApiKey::FindCoordinator => body!(FindCoordinator, FindCoordinatorRequest),
        ApiKey::ApiVersions => body!(ApiVersions, ApiVersionsRequest),
        ApiKey::CreateTopics => body!(CreateTopics, CreateTopicsRequest),
        ApiKey::DeleteTopics => body!(DeleteTopics, DeleteTopicsRequest),
        ApiKey::InitProducerId => body!(InitProducerId, InitProducerIdRequest),
        ApiKey::OffsetForLeaderEpoch => body!(OffsetForLeaderEpoch, OffsetForLeaderEpochRequest),
        ApiKey::CreatePartitions => body!(CreatePartitions, CreatePartitionsRequest),
        ApiKey::AddPartitionsToTxn => body!(AddPartitionsToTxn, AddPartitionsToTxnRequest),
        ApiKey::AddOffsetsToTxn => body!(AddOffsetsToTxn, AddOffsetsToTxnRequest),
        ApiKey::EndTxn => body!(EndTxn, EndTxnRequest),
        ApiKey::TxnOffsetCommit => body!(TxnOffsetCommit, TxnOffsetCommitRequest),
        ApiKey::DescribeProducers => body!(DescribeProducers, DescribeProducersRequest),
        ApiKey::ListTransactions => body!(ListTransactions, ListTransactionsRequest),
        ApiKey::DescribeTransactions => body!(DescribeTransactions, DescribeTransactionsRequest),
        ApiKey::JoinGroup => body!(JoinGroup, JoinGroupRequest),
        ApiKey::SyncGroup => body!(SyncGroup, SyncGroupRequest),
        ApiKey::Heartbeat => body!(Heartbeat, HeartbeatRequest),
        ApiKey::LeaveGroup => body!(LeaveGroup, LeaveGroupRequest),
        ApiKey::OffsetCommit => body!(OffsetCommit, OffsetCommitRequest),
        ApiKey::OffsetFetch => body!(OffsetFetch, OffsetFetchRequest),
        ApiKey::OffsetDelete => body!(OffsetDelete, OffsetDeleteRequest),
        ApiKey::ListGroups => body!(ListGroups, ListGroupsRequest),
        ApiKey::DescribeGroups => body!(DescribeGroups, DescribeGroupsRequest),
        ApiKey::DeleteGroups => body!(DeleteGroups, DeleteGroupsRequest),
        ApiKey::ConsumerGroupHeartbeat => {
            body!(ConsumerGroupHeartbeat, ConsumerGroupHeartbeatRequest)
        }
        ApiKey::DescribeConfigs => body!(DescribeConfigs, DescribeConfigsRequest),
        ApiKey::IncrementalAlterConfigs => {
            body!(IncrementalAlterConfigs, IncrementalAlterConfigsRequest)
        }
        ApiKey::AlterConfigs => body!(AlterConfigs, AlterConfigsRequest),
        ApiKey::DescribeCluster => body!(DescribeCluster, DescribeClusterRequest),
        ApiKey::DeleteRecords => body!(DeleteRecords, DeleteRecordsRequest),
        ApiKey::ElectLeaders => body!(ElectLeaders, ElectLeadersRequest),
        ApiKey::ListPartitionReassignments => body!(
            ListPartitionReassignments,
            ListPartitionReassignmentsRequest
        ),
        ApiKey::AlterPartitionReassignments => body!(
            AlterPartitionReassignments,
            AlterPartitionReassignmentsRequest
        ),
        ApiKey::DescribeLogDirs => body!(DescribeLogDirs, DescribeLogDirsRequest),
        other => return Err(format!("{other:?} is served but has no decoder")),
    })
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    /// A request as a client encodes it (without the size prefix).
    fn encoded(key: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> BytesMut {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test")))
            .encode(&mut buf, key.request_header_version(version))
            .expect("header encodes");
        body.encode(&mut buf, version).expect("body encodes");
        buf
    }

    fn metadata() -> MetadataRequest {
        MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("t")))),
        ]))
    }

    #[test]
    fn served_requests_decode_in_every_served_version() {
        for version in 1..=12 {
            let frame = encoded(ApiKey::Metadata, version, 7, &metadata()).freeze();
            match decode(frame) {
                Ok(Decoded::Request(r)) => {
                    assert_eq!(
                        (r.api_key, r.version(), r.header.correlation_id),
                        (ApiKey::Metadata, version, 7)
                    );
                    assert!(matches!(r.body, Body::Metadata(_)));
                }
                other => panic!("metadata v{version}: {other:?}"),
            }
        }
        for version in 0..=4 {
            let frame = encoded(
                ApiKey::ApiVersions,
                version,
                1,
                &ApiVersionsRequest::default(),
            )
            .freeze();
            assert!(
                matches!(decode(frame), Ok(Decoded::Request(_))),
                "api versions v{version}"
            );
        }
    }

    /// (what, frame, the error expected)
    type Case = (&'static str, BytesMut, fn(&RequestError) -> bool);

    #[test]
    fn bad_frames_are_refused_by_reason() {
        let mut unknown_key = BytesMut::new();
        unknown_key.put_i16(999);
        unknown_key.put_i16(0);
        unknown_key.put_i32(1);
        let mut trailing = encoded(ApiKey::Metadata, 12, 3, &metadata());
        trailing.put_slice(b"junk");
        let full = encoded(ApiKey::Metadata, 4, 3, &metadata());
        let truncated = full.clone().split_to(full.len() - 1);
        let mut garbage_body = encoded(ApiKey::ApiVersions, 3, 3, &ApiVersionsRequest::default());
        garbage_body.truncate(garbage_body.len() - 3);
        garbage_body.put_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let cases: Vec<Case> = vec![
            ("empty", BytesMut::new(), |e| {
                matches!(e, RequestError::TooShort(0))
            }),
            (
                "short header",
                BytesMut::from(&[0u8, 3, 0, 1, 0][..]),
                |e| matches!(e, RequestError::TooShort(5)),
            ),
            ("unknown api key", unknown_key, |e| {
                matches!(e, RequestError::UnknownApiKey(999))
            }),
            ("trailing bytes", trailing, |e| {
                matches!(e, RequestError::Malformed { .. })
            }),
            ("truncated body", truncated, |e| {
                matches!(e, RequestError::Malformed { .. })
            }),
            ("garbage after the header", garbage_body, |e| {
                matches!(e, RequestError::Malformed { .. })
            }),
        ];
        for (what, frame, want) in cases {
            match decode(frame.freeze()) {
                Err(e) if want(&e) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn versions_not_served_close_except_api_versions() {
        let mut produce_v2 = BytesMut::new();
        produce_v2.put_i16(ApiKey::Produce as i16);
        produce_v2.put_i16(2);
        produce_v2.put_i32(1);
        produce_v2.put_i16(-1);
        assert_eq!(
            decode(produce_v2.freeze()).expect_err("produce v2 is not served"),
            RequestError::Unsupported {
                key: ApiKey::Produce,
                version: 2
            }
        );
        let mut describe_acls = BytesMut::new();
        describe_acls.put_i16(ApiKey::DescribeAcls as i16);
        describe_acls.put_i16(1);
        describe_acls.put_i32(1);
        describe_acls.put_i16(-1);
        assert!(matches!(
            decode(describe_acls.freeze()),
            Err(RequestError::Unsupported {
                key: ApiKey::DescribeAcls,
                ..
            })
        ));
        // ApiVersions from the future: answered, whatever follows.
        let mut future = BytesMut::new();
        future.put_i16(ApiKey::ApiVersions as i16);
        future.put_i16(99);
        future.put_i32(42);
        future.put_slice(b"whatever a future header holds");
        assert!(matches!(
            decode(future.freeze()),
            Ok(Decoded::UnsupportedApiVersions { correlation_id: 42 })
        ));
    }

    /// Every served API and version, its body made of filler bytes with a
    /// huge length (an int32 of i32::MAX, an unsigned varint of u32::MAX)
    /// written at each position: decoding returns, an error or a request,
    /// and never sizes an allocation from the length (that would abort the
    /// test binary: vendor/kafka-protocol/PATCHES.md).
    #[test]
    fn no_declared_length_makes_decoding_allocate_beyond_the_frame() {
        const BODY: usize = 48;
        let huge: [&[u8]; 2] = [&i32::MAX.to_be_bytes(), &[0xff, 0xff, 0xff, 0xff, 0x0f]];
        let mut bounded = 0;
        for &(key, min, max) in versions::SERVED {
            for version in min..=max {
                for filler in [0x00u8, 0x01] {
                    for length in huge {
                        for at in 0..BODY - length.len() {
                            let mut body = vec![filler; BODY];
                            body[at..at + length.len()].copy_from_slice(length);
                            let mut frame = BytesMut::new();
                            RequestHeader::default()
                                .with_request_api_key(key as i16)
                                .with_request_api_version(version)
                                .encode(&mut frame, key.request_header_version(version))
                                .expect("header encodes");
                            frame.put_slice(&body);
                            if let Err(RequestError::Malformed { reason, .. }) =
                                decode(frame.freeze())
                                && reason.contains("bytes left")
                            {
                                bounded += 1;
                            }
                        }
                    }
                }
            }
        }
        // The lengths reached the decoders (not stopped at the header) and
        // were refused for what they announced.
        assert!(bounded > 100, "{bounded} lengths refused by the bound");
    }
}
