//! The crate's single error type and the classification the broker maps to
//! Kafka error codes.

use std::io;

/// Result alias used throughout the crate.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Everything that can go wrong in the partition log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A batch failed framing, magic, CRC or record validation.
    #[error("corrupt message: {reason}")]
    CorruptMessage {
        /// What was wrong with it.
        reason: String,
    },
    /// A well-formed record the log refuses: a record without a key in a
    /// compacted log (Kafka's `InvalidRecordException`).
    #[error("invalid record: {reason}")]
    InvalidRecord {
        /// Why it was refused.
        reason: String,
    },
    /// A batch is larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge {
        /// Size of the offending batch in bytes.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A read asked for an offset outside `[log_start, log_end]`.
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The requested offset.
        requested: i64,
        /// The log start offset at the time of the request.
        log_start: i64,
        /// The log end offset at the time of the request.
        log_end: i64,
    },
    /// A follower append carried offsets that do not continue the log.
    #[error("unexpected append offset {offset}, expected log end offset {log_end}")]
    UnexpectedAppendOffset {
        /// Base offset of the offending batch.
        offset: i64,
        /// The offset the log expected at least.
        log_end: i64,
    },
    /// An idempotent batch from an epoch older than its producer's current
    /// one: a fenced zombie producer.
    #[error("producer {producer_id} epoch {epoch} is older than its current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The epoch the partition knows.
        current: i16,
    },
    /// An idempotent batch whose first sequence does not follow the
    /// producer's last one: a record in between is missing.
    #[error(
        "out of order sequence from producer {producer_id} epoch {epoch}: expected {expected}, got {got}"
    )]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The sequence the partition expected.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
    /// An idempotent batch past sequence 0 from a producer this partition
    /// does not know (its state expired): the client bumps its epoch.
    #[error(
        "unknown producer id {producer_id} (first sequence {first_seq}): its state expired or never reached this partition"
    )]
    UnknownProducerId {
        /// The producer id.
        producer_id: i64,
        /// The batch's first sequence.
        first_seq: i32,
    },
    /// A batch that does not fit its producer's transaction state: a
    /// non-transactional batch while the producer has a transaction open in
    /// this partition (Kafka's `INVALID_TXN_STATE`).
    #[error("producer {producer_id}: {reason}")]
    InvalidTxnState {
        /// The producer id.
        producer_id: i64,
        /// What did not fit.
        reason: String,
    },
    /// A transaction marker from a coordinator older than the one that
    /// last wrote a marker for the producer (Kafka's
    /// `TRANSACTION_COORDINATOR_FENCED`).
    #[error(
        "marker for producer {producer_id} from coordinator epoch {coordinator_epoch}, older than {current}"
    )]
    TransactionCoordinatorFenced {
        /// The producer id.
        producer_id: i64,
        /// The marker's coordinator epoch.
        coordinator_epoch: i32,
        /// The coordinator epoch the partition knows.
        current: i32,
    },
    /// A configuration value is out of range.
    #[error("invalid config {name}: {reason}")]
    InvalidConfig {
        /// Kafka dotted name of the setting.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// An I/O error on the log directory; the partition should go offline.
    #[error("{context}")]
    Io {
        /// What was being done, e.g. "open segment 00000000000000000042.log".
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Coarse classification of a [`LogError`], one variant per Kafka error code
/// the broker returns for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `CORRUPT_MESSAGE`.
    CorruptMessage,
    /// `INVALID_RECORD`.
    InvalidRecord,
    /// `RECORD_TOO_LARGE`.
    RecordTooLarge,
    /// `OFFSET_OUT_OF_RANGE`.
    OffsetOutOfRange,
    /// A replication bug (Kafka's `UnexpectedAppendOffsetException`); the
    /// fetcher should mark the partition failed.
    UnexpectedAppendOffset,
    /// Invalid topic configuration (`INVALID_CONFIG`).
    InvalidConfig,
    /// `INVALID_PRODUCER_EPOCH`.
    InvalidProducerEpoch,
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER`.
    OutOfOrderSequence,
    /// `UNKNOWN_PRODUCER_ID`.
    UnknownProducerId,
    /// `INVALID_TXN_STATE`.
    InvalidTxnState,
    /// `TRANSACTION_COORDINATOR_FENCED`.
    TransactionCoordinatorFenced,
    /// `KAFKA_STORAGE_ERROR`: the log directory failed.
    Storage,
}

impl LogError {
    /// The Kafka error this maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LogError::CorruptMessage { .. } => ErrorKind::CorruptMessage,
            LogError::InvalidRecord { .. } => ErrorKind::InvalidRecord,
            LogError::RecordTooLarge { .. } => ErrorKind::RecordTooLarge,
            LogError::OffsetOutOfRange { .. } => ErrorKind::OffsetOutOfRange,
            LogError::UnexpectedAppendOffset { .. } => ErrorKind::UnexpectedAppendOffset,
            LogError::InvalidConfig { .. } => ErrorKind::InvalidConfig,
            LogError::InvalidProducerEpoch { .. } => ErrorKind::InvalidProducerEpoch,
            LogError::OutOfOrderSequence { .. } => ErrorKind::OutOfOrderSequence,
            LogError::UnknownProducerId { .. } => ErrorKind::UnknownProducerId,
            LogError::InvalidTxnState { .. } => ErrorKind::InvalidTxnState,
            LogError::TransactionCoordinatorFenced { .. } => {
                ErrorKind::TransactionCoordinatorFenced
            }
            LogError::Io { .. } => ErrorKind::Storage,
        }
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        LogError::CorruptMessage {
            reason: reason.into(),
        }
    }
}

/// Attach context to I/O errors.
pub(crate) trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| LogError::Io {
            context: context(),
            source,
        })
    }
}
