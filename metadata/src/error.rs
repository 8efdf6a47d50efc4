//! The crate's one error type: a [`MetadataError`] carrying an [`ErrorKind`]
//! that mirrors the proto `strom.v1.ErrorCode` of the same name.

/// Result of this crate.
pub type Result<T, E = MetadataError> = std::result::Result<T, E>;

/// Why a record was rejected at apply time, or why a decision could not be
/// made.
///
/// Every variant is named exactly as the CamelCase form of a
/// `strom.v1.ErrorCode` (proto/strom/v1/common.proto), so the mapping to the
/// wire code is by name: [`ErrorKind::code_name`] returns the proto enum name
/// (`"INVALID_TOPIC_EXCEPTION"`), which `ErrorCode::from_str_name` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The topic name is invalid.
    InvalidTopicException,
    /// A topic of that name (or id) already exists.
    TopicAlreadyExists,
    /// The topic or partition does not exist.
    UnknownTopicOrPartition,
    /// The topic id does not exist.
    UnknownTopicId,
    /// The partition count is invalid (≤ 0, a decrease, or not contiguous).
    InvalidPartitions,
    /// The replication factor is invalid.
    InvalidReplicationFactor,
    /// An explicit replica assignment is invalid.
    InvalidReplicaAssignment,
    /// A config name or value is invalid.
    InvalidConfig,
    /// The request (or record) is inconsistent with the image.
    InvalidRequest,
    /// A broker epoch is not the broker's current one.
    StaleBrokerEpoch,
    /// The broker id is not registered.
    BrokerIdNotRegistered,
    /// Another live incarnation holds this broker id.
    DuplicateBrokerRegistration,
    /// A change was computed against a partition epoch that is no longer current.
    InvalidUpdateVersion,
    /// The request's leader epoch is older than the partition's.
    FencedLeaderEpoch,
    /// A proposed ISR member is fenced or shutting down.
    IneligibleReplica,
    /// The broker is not the leader of the partition.
    NotLeaderOrFollower,
    /// The preferred replica is not alive or not in the ISR.
    PreferredLeaderNotAvailable,
    /// No eligible replica can become leader.
    EligibleLeadersNotAvailable,
    /// The wanted leader already leads.
    ElectionNotNeeded,
    /// A record is malformed (no payload, a topic id that is not 16 bytes,
    /// an unparsable config owner). Kafka would say `INVALID_RECORD`; the
    /// nearest code Strom's proto has is `CORRUPT_MESSAGE`.
    CorruptMessage,
    /// The partition is being reassigned and this change must wait.
    ReassignmentInProgress,
    /// A cancel names a partition that is not being reassigned.
    NoReassignmentInProgress,
}

impl ErrorKind {
    /// The name of the matching `strom.v1.ErrorCode` value, as in the proto file.
    pub fn code_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidTopicException => "INVALID_TOPIC_EXCEPTION",
            ErrorKind::TopicAlreadyExists => "TOPIC_ALREADY_EXISTS",
            ErrorKind::UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            ErrorKind::UnknownTopicId => "UNKNOWN_TOPIC_ID",
            ErrorKind::InvalidPartitions => "INVALID_PARTITIONS",
            ErrorKind::InvalidReplicationFactor => "INVALID_REPLICATION_FACTOR",
            ErrorKind::InvalidReplicaAssignment => "INVALID_REPLICA_ASSIGNMENT",
            ErrorKind::InvalidConfig => "INVALID_CONFIG",
            ErrorKind::InvalidRequest => "INVALID_REQUEST",
            ErrorKind::StaleBrokerEpoch => "STALE_BROKER_EPOCH",
            ErrorKind::BrokerIdNotRegistered => "BROKER_ID_NOT_REGISTERED",
            ErrorKind::DuplicateBrokerRegistration => "DUPLICATE_BROKER_REGISTRATION",
            ErrorKind::InvalidUpdateVersion => "INVALID_UPDATE_VERSION",
            ErrorKind::FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            ErrorKind::IneligibleReplica => "INELIGIBLE_REPLICA",
            ErrorKind::NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            ErrorKind::PreferredLeaderNotAvailable => "PREFERRED_LEADER_NOT_AVAILABLE",
            ErrorKind::EligibleLeadersNotAvailable => "ELIGIBLE_LEADERS_NOT_AVAILABLE",
            ErrorKind::ElectionNotNeeded => "ELECTION_NOT_NEEDED",
            ErrorKind::CorruptMessage => "CORRUPT_MESSAGE",
            ErrorKind::ReassignmentInProgress => "REASSIGNMENT_IN_PROGRESS",
            ErrorKind::NoReassignmentInProgress => "NO_REASSIGNMENT_IN_PROGRESS",
        }
    }
}

/// A rejected record or decision: what kind of error, and a lowercase message
/// naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MetadataError {
    /// The error kind (maps onto the proto `ErrorCode`).
    pub code: ErrorKind,
    /// Human-readable explanation, lowercase, without trailing punctuation.
    pub message: String,
}

impl MetadataError {
    /// An error of `code` with `message`.
    pub fn new(code: ErrorKind, message: impl Into<String>) -> Self {
        MetadataError {
            code,
            message: message.into(),
        }
    }
}

/// Shorthand: `Err(MetadataError)` of `kind` with a formatted message.
macro_rules! bail {
    ($kind:ident, $($arg:tt)+) => {
        return Err($crate::error::MetadataError::new(
            $crate::error::ErrorKind::$kind,
            format!($($arg)+),
        ))
    };
}

/// Shorthand: a `MetadataError` of `kind` with a formatted message.
macro_rules! err {
    ($kind:ident, $($arg:tt)+) => {
        $crate::error::MetadataError::new($crate::error::ErrorKind::$kind, format!($($arg)+))
    };
}

pub(crate) use {bail, err};
