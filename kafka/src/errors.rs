//! Strom's error codes onto Kafka's, in one place. Strom's `ErrorCode`
//! mirrors Kafka's numbers (docs/errors.md), so the mapping is the number
//! itself; codes outside Kafka's `int16` range cannot occur but would
//! read as UNKNOWN_SERVER_ERROR.

use strom_proto::v1::ErrorCode;

/// Kafka's UNKNOWN_SERVER_ERROR.
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
/// Kafka's ILLEGAL_GENERATION: a classic member's commit from another
/// generation (the core says STALE_MEMBER_EPOCH or FENCED_MEMBER_EPOCH).
pub const ILLEGAL_GENERATION: i16 = 22;
/// Kafka's REBALANCE_IN_PROGRESS: a classic member must rejoin.
pub const REBALANCE_IN_PROGRESS: i16 = 27;
/// Kafka's MEMBER_ID_REQUIRED (KIP-394): rejoin with the id given.
pub const MEMBER_ID_REQUIRED: i16 = 79;
/// Kafka's FETCH_SESSION_ID_NOT_FOUND: an incremental fetch names a
/// session the broker does not hold (KIP-227).
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// Kafka's INVALID_FETCH_SESSION_EPOCH: an incremental fetch at another
/// epoch than its session's.
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
/// Kafka's FETCH_SESSION_TOPIC_ID_ERROR: a session created naming topics
/// by id (Fetch v13+) continued by name, or the reverse.
pub const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

/// Kafka's INVALID_PRODUCER_EPOCH, what clients before KIP-588 get for
/// PRODUCER_FENCED.
pub const INVALID_PRODUCER_EPOCH: i16 = 47;

/// The Kafka error code of a transaction request's `code`, in a version
/// of the API: below `fenced_since` (the version that brought
/// PRODUCER_FENCED to it, KIP-588) PRODUCER_FENCED reads as
/// INVALID_PRODUCER_EPOCH, as Kafka answers such clients.
pub fn txn_error_code(code: ErrorCode, version: i16, fenced_since: i16) -> i16 {
    if code == ErrorCode::ProducerFenced && version < fenced_since {
        INVALID_PRODUCER_EPOCH
    } else {
        kafka_code(code)
    }
}
/// Kafka's UNSUPPORTED_ENDPOINT_TYPE: DescribeCluster for controllers sent
/// to a broker.
pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

/// The Kafka error code of `code`.
pub fn kafka_code(code: ErrorCode) -> i16 {
    i16::try_from(code as i32).unwrap_or(UNKNOWN_SERVER_ERROR)
}

/// The Kafka error code of a code carried as `i32` in a proto message.
pub fn kafka_code_i32(code: i32) -> i16 {
    ErrorCode::try_from(code).map_or(UNKNOWN_SERVER_ERROR, kafka_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_kafkas_numbers() {
        let cases = [
            (ErrorCode::None, 0),
            (ErrorCode::UnknownServerError, -1),
            (ErrorCode::OffsetOutOfRange, 1),
            (ErrorCode::UnknownTopicOrPartition, 3),
            (ErrorCode::NotLeaderOrFollower, 6),
            (ErrorCode::TopicAlreadyExists, 36),
            (ErrorCode::NotController, 41),
            (ErrorCode::OutOfOrderSequenceNumber, 45),
            (ErrorCode::FencedLeaderEpoch, 74),
            (ErrorCode::UnknownTopicId, 100),
        ];
        for (code, want) in cases {
            assert_eq!(kafka_code(code), want, "{code:?}");
        }
        assert_eq!(kafka_code_i32(3), 3);
        assert_eq!(kafka_code_i32(123_456), UNKNOWN_SERVER_ERROR);
    }

    #[test]
    fn producer_fenced_reads_as_invalid_epoch_for_older_clients() {
        let cases = [
            (ErrorCode::ProducerFenced, 1, 2, 47),
            (ErrorCode::ProducerFenced, 2, 2, 90),
            (ErrorCode::ProducerFenced, 2, 3, 47),
            (ErrorCode::InvalidTxnState, 0, 2, 48),
            (ErrorCode::None, 0, 2, 0),
        ];
        for (code, version, since, want) in cases {
            assert_eq!(
                txn_error_code(code, version, since),
                want,
                "{code:?} v{version}"
            );
        }
    }
}
