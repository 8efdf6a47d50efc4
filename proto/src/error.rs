//! How a Strom `ErrorCode` travels in a gRPC status, in both directions.
//!
//! The status carries the standard rich error model: `grpc-status-details-bin`
//! holds a `google.rpc.Status` with a `google.rpc.ErrorInfo` whose `domain` is
//! [`ERROR_DOMAIN`], `reason` is the ErrorCode name and metadata holds
//! `error_code` (the number) and, for redirects, `leader_id` and
//! `leader_address`. Any gRPC client can branch on it.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::v1::ErrorCode;

/// The `ErrorInfo.domain` of every Strom error.
pub const ERROR_DOMAIN: &str = "strom.v1";

/// The gRPC status code an [`ErrorCode`] maps onto.
pub fn grpc_code(code: ErrorCode) -> Code {
    use ErrorCode as E;
    match code {
        E::None => Code::Ok,
        E::UnknownTopicOrPartition | E::UnknownTopicId | E::BrokerIdNotRegistered => Code::NotFound,
        E::TopicAlreadyExists | E::DuplicateBrokerRegistration => Code::AlreadyExists,
        E::InvalidTopicException
        | E::InvalidPartitions
        | E::InvalidReplicationFactor
        | E::InvalidReplicaAssignment
        | E::InvalidConfig
        | E::InvalidRequest
        | E::InvalidRequiredAcks
        | E::InvalidTimestamp
        | E::InvalidFetchSize
        | E::CorruptMessage
        | E::InvalidRecord
        | E::RecordTooLarge
        | E::RecordListTooLarge => Code::InvalidArgument,
        E::OffsetOutOfRange => Code::OutOfRange,
        E::RequestTimedOut => Code::DeadlineExceeded,
        E::NotController
        | E::NotLeaderOrFollower
        | E::LeaderNotAvailable
        | E::BrokerNotAvailable
        | E::ReplicaNotAvailable
        | E::NotEnoughReplicas
        | E::NotEnoughReplicasAfterAppend
        | E::NetworkException => Code::Unavailable,
        E::StaleBrokerEpoch
        | E::StaleControllerEpoch
        | E::FencedLeaderEpoch
        | E::UnknownLeaderEpoch
        | E::InvalidUpdateVersion
        | E::IneligibleReplica
        | E::ReassignmentInProgress
        | E::NoReassignmentInProgress
        | E::PreferredLeaderNotAvailable
        | E::EligibleLeadersNotAvailable
        | E::ElectionNotNeeded
        | E::InconsistentClusterId
        | E::OutOfOrderSequenceNumber
        | E::InvalidProducerEpoch
        | E::UnknownProducerId
        | E::PolicyViolation => Code::FailedPrecondition,
        E::InvalidTransactionTimeout => Code::InvalidArgument,
        E::TransactionalIdNotFound => Code::NotFound,
        E::InvalidTxnState
        | E::InvalidProducerIdMapping
        | E::TransactionCoordinatorFenced
        | E::ProducerFenced => Code::FailedPrecondition,
        E::ConcurrentTransactions | E::UnstableOffsetCommit => Code::Unavailable,
        E::UnsupportedVersion => Code::Unimplemented,
        E::KafkaStorageError | E::UnknownServerError => Code::Internal,
        E::GroupIdNotFound => Code::NotFound,
        E::InvalidGroupId
        | E::InvalidSessionTimeout
        | E::InconsistentGroupProtocol
        | E::OffsetMetadataTooLarge => Code::InvalidArgument,
        E::NotCoordinator | E::CoordinatorNotAvailable | E::CoordinatorLoadInProgress => {
            Code::Unavailable
        }
        E::IllegalGeneration
        | E::UnknownMemberId
        | E::FencedInstanceId
        | E::FencedMemberEpoch
        | E::StaleMemberEpoch
        | E::NonEmptyGroup
        | E::GroupSubscribedToTopic => Code::FailedPrecondition,
    }
}

/// A typed Strom error as carried by a gRPC status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StromError {
    /// The error code.
    pub code: ErrorCode,
    /// Human-readable explanation, lowercase, naming the problem.
    pub message: String,
    /// For NOT_CONTROLLER / NOT_LEADER_OR_FOLLOWER: the node to retry on.
    pub leader: Option<LeaderHint>,
}

/// Where the current leader is, when the server knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderHint {
    /// The leader's node id.
    pub id: i32,
    /// The leader's address (host:port); may be empty.
    pub address: String,
}

impl StromError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            leader: None,
        }
    }

    /// Adds the leader to retry on.
    pub fn with_leader(mut self, id: i32, address: impl Into<String>) -> Self {
        self.leader = Some(LeaderHint {
            id,
            address: address.into(),
        });
        self
    }

    /// Encodes the error as a gRPC status carrying `ErrorInfo`.
    pub fn to_status(&self) -> Status {
        let mut metadata = HashMap::new();
        metadata.insert("error_code".to_owned(), (self.code as i32).to_string());
        if let Some(leader) = &self.leader {
            metadata.insert("leader_id".to_owned(), leader.id.to_string());
            metadata.insert("leader_address".to_owned(), leader.address.clone());
        }
        let details =
            ErrorDetails::with_error_info(self.code.as_str_name(), ERROR_DOMAIN, metadata);
        let message = format!("{}: {}", self.code.as_str_name(), self.message);
        Status::with_error_details(grpc_code(self.code), message, details)
    }

    /// Decodes a status produced by [`StromError::to_status`]. A status
    /// without Strom details (transport errors, other servers) maps to the
    /// closest code: UNAVAILABLE and cancellations become NETWORK_EXCEPTION,
    /// DEADLINE_EXCEEDED becomes REQUEST_TIMED_OUT, the rest UNKNOWN_SERVER_ERROR.
    pub fn from_status(status: &Status) -> Self {
        if let Some(info) = status.get_details_error_info()
            && info.domain == ERROR_DOMAIN
        {
            let code = info
                .metadata
                .get("error_code")
                .and_then(|c| c.parse::<i32>().ok())
                .and_then(|c| ErrorCode::try_from(c).ok())
                .or_else(|| ErrorCode::from_str_name(&info.reason))
                .unwrap_or(ErrorCode::UnknownServerError);
            let leader = info.metadata.get("leader_id").and_then(|id| {
                Some(LeaderHint {
                    id: id.parse().ok()?,
                    address: info
                        .metadata
                        .get("leader_address")
                        .cloned()
                        .unwrap_or_default(),
                })
            });
            let prefix = format!("{}: ", code.as_str_name());
            let message = status
                .message()
                .strip_prefix(&prefix)
                .unwrap_or(status.message());
            return Self {
                code,
                message: message.to_owned(),
                leader,
            };
        }
        let code = match status.code() {
            Code::Unavailable | Code::Cancelled | Code::Aborted => ErrorCode::NetworkException,
            Code::DeadlineExceeded => ErrorCode::RequestTimedOut,
            Code::InvalidArgument => ErrorCode::InvalidRequest,
            Code::Unimplemented => ErrorCode::UnsupportedVersion,
            // The transport refused a message over its size limit
            // (`socket.request.max.bytes` on the broker) before any Strom
            // code saw it.
            Code::OutOfRange | Code::ResourceExhausted
                if status.message().contains("message length too large") =>
            {
                ErrorCode::RecordListTooLarge
            }
            _ => ErrorCode::UnknownServerError,
        };
        Self::new(code, status.message().to_owned())
    }

    /// Whether retrying (possibly elsewhere) may succeed.
    pub fn is_retriable(&self) -> bool {
        is_retriable(self.code)
    }
}

/// Whether an error code is transient, as Kafka's `RetriableException`.
pub fn is_retriable(code: ErrorCode) -> bool {
    use ErrorCode as E;
    matches!(
        code,
        E::NotController
            | E::NotLeaderOrFollower
            | E::LeaderNotAvailable
            | E::BrokerNotAvailable
            | E::ReplicaNotAvailable
            | E::NotEnoughReplicas
            | E::NotEnoughReplicasAfterAppend
            | E::NetworkException
            | E::RequestTimedOut
            | E::FencedLeaderEpoch
            | E::UnknownLeaderEpoch
            | E::KafkaStorageError
            | E::UnknownServerError
            | E::NotCoordinator
            | E::CoordinatorNotAvailable
            | E::CoordinatorLoadInProgress
            | E::ConcurrentTransactions
            | E::UnstableOffsetCommit
    )
}

impl std::fmt::Display for StromError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str_name(), self.message)
    }
}

impl std::error::Error for StromError {}

impl From<StromError> for Status {
    fn from(e: StromError) -> Self {
        e.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_round_trips_through_status() {
        let cases = [
            StromError::new(ErrorCode::TopicAlreadyExists, "topic 'a' already exists"),
            StromError::new(ErrorCode::NotController, "not the leader").with_leader(2, "h:9093"),
            StromError::new(ErrorCode::UnknownServerError, "boom"),
        ];
        for e in cases {
            let status = e.to_status();
            assert_eq!(status.code(), grpc_code(e.code));
            assert_eq!(StromError::from_status(&status), e);
        }
    }

    #[test]
    fn transaction_codes_keep_kafka_numbers_and_status_codes() {
        // (code, Kafka's number, gRPC status code, retriable)
        let table = [
            (
                ErrorCode::InvalidTxnState,
                48,
                Code::FailedPrecondition,
                false,
            ),
            (
                ErrorCode::InvalidProducerIdMapping,
                49,
                Code::FailedPrecondition,
                false,
            ),
            (
                ErrorCode::InvalidTransactionTimeout,
                50,
                Code::InvalidArgument,
                false,
            ),
            (
                ErrorCode::ConcurrentTransactions,
                51,
                Code::Unavailable,
                true,
            ),
            (
                ErrorCode::TransactionCoordinatorFenced,
                52,
                Code::FailedPrecondition,
                false,
            ),
            (ErrorCode::UnstableOffsetCommit, 88, Code::Unavailable, true),
            (
                ErrorCode::ProducerFenced,
                90,
                Code::FailedPrecondition,
                false,
            ),
            (
                ErrorCode::TransactionalIdNotFound,
                105,
                Code::NotFound,
                false,
            ),
        ];
        for (code, number, status, retriable) in table {
            assert_eq!(code as i32, number, "{}", code.as_str_name());
            assert_eq!(grpc_code(code), status, "{}", code.as_str_name());
            assert_eq!(is_retriable(code), retriable, "{}", code.as_str_name());
            let e = StromError::new(code, "x");
            assert_eq!(StromError::from_status(&e.to_status()), e);
        }
    }

    #[test]
    fn plain_status_maps_to_closest_code() {
        let table = [
            (Status::unavailable("x"), ErrorCode::NetworkException),
            (Status::deadline_exceeded("x"), ErrorCode::RequestTimedOut),
            (Status::internal("x"), ErrorCode::UnknownServerError),
        ];
        for (status, code) in table {
            assert_eq!(StromError::from_status(&status).code, code);
        }
    }
}
