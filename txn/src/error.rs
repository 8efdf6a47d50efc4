//! The crate's one error type: a [`TxnError`] carrying an [`ErrorKind`]
//! named after Kafka's error (and the proto `strom.v1.ErrorCode` of the
//! same name, where the proto has it), with Kafka's number.

/// Result of this crate.
pub type Result<T, E = TxnError> = std::result::Result<T, E>;

/// Why a transaction request was refused, or why a record could not be
/// decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed: an empty or over-long transactional id, a
    /// bad partition, a transactional id the shard does not host.
    InvalidRequest,
    /// `transaction.timeout.ms` is not positive or exceeds
    /// `transaction.max.timeout.ms`.
    InvalidTransactionTimeout,
    /// The producer id is not the one the transactional id holds.
    InvalidProducerIdMapping,
    /// The producer epoch is newer than the coordinator's: the request
    /// cannot come from a producer the coordinator initialised.
    InvalidProducerEpoch,
    /// A newer producer with the same transactional id has fenced this one
    /// (its epoch is older): fatal for the client.
    ProducerFenced,
    /// The transaction is completing (markers are being written): retry.
    ConcurrentTransactions,
    /// The request does not fit the transaction's state (commit of an
    /// aborted transaction, EndTxn without a transaction, ...).
    InvalidTxnState,
    /// The transactional id is not known (describe).
    TransactionalIdNotFound,
    /// The host could not supply a new producer id: retry.
    CoordinatorNotAvailable,
    /// A record of `__transaction_state` cannot be decoded.
    CorruptMessage,
}

impl ErrorKind {
    /// Kafka's name of the error (the proto `ErrorCode` name).
    pub fn code_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "INVALID_REQUEST",
            ErrorKind::InvalidTransactionTimeout => "INVALID_TRANSACTION_TIMEOUT",
            ErrorKind::InvalidProducerIdMapping => "INVALID_PRODUCER_ID_MAPPING",
            ErrorKind::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            ErrorKind::ProducerFenced => "PRODUCER_FENCED",
            ErrorKind::ConcurrentTransactions => "CONCURRENT_TRANSACTIONS",
            ErrorKind::InvalidTxnState => "INVALID_TXN_STATE",
            ErrorKind::TransactionalIdNotFound => "TRANSACTIONAL_ID_NOT_FOUND",
            ErrorKind::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            ErrorKind::CorruptMessage => "CORRUPT_MESSAGE",
        }
    }

    /// Kafka's numeric error code.
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::InvalidRequest => 42,
            ErrorKind::InvalidTransactionTimeout => 50,
            ErrorKind::InvalidProducerIdMapping => 49,
            ErrorKind::InvalidProducerEpoch => 47,
            ErrorKind::ProducerFenced => 90,
            ErrorKind::ConcurrentTransactions => 51,
            ErrorKind::InvalidTxnState => 48,
            ErrorKind::TransactionalIdNotFound => 105,
            ErrorKind::CoordinatorNotAvailable => 15,
            ErrorKind::CorruptMessage => 2,
        }
    }

    /// Whether the client should retry the same request after a backoff.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorKind::ConcurrentTransactions | ErrorKind::CoordinatorNotAvailable
        )
    }
}

/// A refused request or an undecodable record: the kind and a lowercase
/// message that names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.code_name())]
pub struct TxnError {
    /// The error code.
    pub kind: ErrorKind,
    /// What was wrong, for the operator.
    pub message: String,
}

impl TxnError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TxnError {
            kind,
            message: message.into(),
        }
    }
}

impl From<strom_kafka_codec::CodecError> for TxnError {
    fn from(e: strom_kafka_codec::CodecError) -> Self {
        TxnError::new(ErrorKind::CorruptMessage, e.message)
    }
}

/// `return Err(TxnError::new(kind, format!(...)))`.
macro_rules! bail {
    ($kind:ident, $($arg:tt)*) => {
        return Err($crate::error::TxnError::new(
            $crate::error::ErrorKind::$kind,
            format!($($arg)*),
        ))
    };
}
pub(crate) use bail;
