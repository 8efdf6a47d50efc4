//! The crate's one error type: a [`GroupError`] carrying an [`ErrorKind`]
//! that mirrors the proto `strom.v1.ErrorCode` of the same name (Kafka's
//! numeric error codes).

/// Result of this crate.
pub type Result<T, E = GroupError> = std::result::Result<T, E>;

/// Why a group request was refused, or why a record could not be decoded.
///
/// Every variant is the CamelCase form of a `strom.v1.ErrorCode` name;
/// [`ErrorKind::code_name`] returns the proto name and [`ErrorKind::code`]
/// Kafka's number, so a front end (gRPC today, the Kafka wire protocol
/// later) maps it without a table of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The group id is empty or too long.
    InvalidGroupId,
    /// The group does not exist.
    GroupIdNotFound,
    /// The member id is not a member of the group.
    UnknownMemberId,
    /// A classic-protocol generation is not the group's current one.
    IllegalGeneration,
    /// The member epoch is older than the member's current epoch.
    StaleMemberEpoch,
    /// The member epoch is not one the coordinator gave this member; the
    /// member must rejoin with epoch 0.
    FencedMemberEpoch,
    /// Another member joined with the same `group.instance.id`.
    FencedInstanceId,
    /// The session timeout is outside the broker's bounds.
    InvalidSessionTimeout,
    /// The member's assignors are unknown, or the group has none in common.
    InconsistentGroupProtocol,
    /// The group still has members.
    NonEmptyGroup,
    /// A member of the group is subscribed to the topic.
    GroupSubscribedToTopic,
    /// The topic or partition does not exist.
    UnknownTopicOrPartition,
    /// The commit's metadata string is longer than `offset.metadata.max.bytes`.
    OffsetMetadataTooLarge,
    /// The request is malformed (a negative offset, a bad regex, ...).
    InvalidRequest,
    /// A record of the offsets topic cannot be decoded.
    CorruptMessage,
}

impl ErrorKind {
    /// The name of the matching `strom.v1.ErrorCode` value, as in the proto file.
    pub fn code_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidGroupId => "INVALID_GROUP_ID",
            ErrorKind::GroupIdNotFound => "GROUP_ID_NOT_FOUND",
            ErrorKind::UnknownMemberId => "UNKNOWN_MEMBER_ID",
            ErrorKind::IllegalGeneration => "ILLEGAL_GENERATION",
            ErrorKind::StaleMemberEpoch => "STALE_MEMBER_EPOCH",
            ErrorKind::FencedMemberEpoch => "FENCED_MEMBER_EPOCH",
            ErrorKind::FencedInstanceId => "FENCED_INSTANCE_ID",
            ErrorKind::InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
            ErrorKind::InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
            ErrorKind::NonEmptyGroup => "NON_EMPTY_GROUP",
            ErrorKind::GroupSubscribedToTopic => "GROUP_SUBSCRIBED_TO_TOPIC",
            ErrorKind::UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            ErrorKind::OffsetMetadataTooLarge => "OFFSET_METADATA_TOO_LARGE",
            ErrorKind::InvalidRequest => "INVALID_REQUEST",
            ErrorKind::CorruptMessage => "CORRUPT_MESSAGE",
        }
    }

    /// Kafka's numeric error code.
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::InvalidGroupId => 24,
            ErrorKind::GroupIdNotFound => 69,
            ErrorKind::UnknownMemberId => 25,
            ErrorKind::IllegalGeneration => 22,
            ErrorKind::StaleMemberEpoch => 113,
            ErrorKind::FencedMemberEpoch => 110,
            ErrorKind::FencedInstanceId => 82,
            ErrorKind::InvalidSessionTimeout => 26,
            ErrorKind::InconsistentGroupProtocol => 23,
            ErrorKind::NonEmptyGroup => 68,
            ErrorKind::GroupSubscribedToTopic => 86,
            ErrorKind::UnknownTopicOrPartition => 3,
            ErrorKind::OffsetMetadataTooLarge => 12,
            ErrorKind::InvalidRequest => 42,
            ErrorKind::CorruptMessage => 2,
        }
    }
}

/// A refused request or an undecodable record: the kind and a lowercase
/// message that names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.code_name())]
pub struct GroupError {
    /// The error code.
    pub kind: ErrorKind,
    /// What was wrong, for the operator.
    pub message: String,
}

impl GroupError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        GroupError {
            kind,
            message: message.into(),
        }
    }
}

impl From<strom_kafka_codec::CodecError> for GroupError {
    fn from(e: strom_kafka_codec::CodecError) -> Self {
        GroupError::new(ErrorKind::CorruptMessage, e.message)
    }
}

/// `return Err(GroupError::new(kind, format!(...)))`.
macro_rules! bail {
    ($kind:ident, $($arg:tt)*) => {
        return Err($crate::error::GroupError::new(
            $crate::error::ErrorKind::$kind,
            format!($($arg)*),
        ))
    };
}
pub(crate) use bail;
