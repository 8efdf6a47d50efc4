//! Strom's error codes onto Kafka's, in one place. Strom's `ErrorCode`
//! mirrors Kafka's numbers (docs/errors.md), so the mapping is the number
//! itself; codes outside Kafka's `int16` range cannot occur but would
//! read as UNKNOWN_SERVER_ERROR.

use strom_proto::v1::ErrorCode;

/// Kafka's UNKNOWN_SERVER_ERROR.
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
/// Kafka's FETCH_SESSION_ID_NOT_FOUND: Strom creates no fetch sessions.
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// Kafka's INVALID_FETCH_SESSION_EPOCH.
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

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
}
