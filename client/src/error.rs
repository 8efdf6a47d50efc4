//! The client's error type and how a tonic status becomes one.

use strom_proto::v1::ErrorCode;
pub use strom_proto::{LeaderHint, StromError};

pub use crate::config::ConfigError;
use tonic::Code;
use tonic_types::StatusExt;

/// Result of every client operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a client operation failed. Cheap to clone, so one failure can be
/// handed to every record of a failed batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A typed error answered by a server (or a per-item error of a batch).
    #[error("{0}")]
    Strom(StromError),
    /// The node could not be reached or the connection broke.
    #[error("cannot reach {address}: {}", one_line(.source.message()))]
    Transport {
        /// The node's `host:port`.
        address: String,
        /// The status tonic reported.
        #[source]
        source: tonic::Status,
    },
    /// The operation (retries included) did not finish within the request timeout.
    #[error("{what}")]
    Timeout {
        /// What timed out, and the last error seen before that.
        what: String,
    },
    /// Invalid input detected by the client before sending anything.
    #[error("{0}")]
    InvalidArgument(String),
    /// A producer or consumer setting is unknown or has an invalid value.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The producer was closed; no more records are accepted.
    #[error("{0}")]
    Closed(String),
    /// A transactional call the producer's state does not allow (before
    /// `init_transactions`, `begin_transaction` twice, a send outside a
    /// transaction, ...). Nothing was sent.
    #[error("{0}")]
    IllegalState(String),
    /// The transactional producer failed for good (fenced by a newer
    /// incarnation of its transactional id, ...): only `close` is left.
    #[error("fatal transactional producer error: {0}")]
    FatalTransaction(Box<Error>),
    /// The transaction cannot commit: call `abort_transaction`, after which
    /// the producer can begin the next one.
    #[error("the transaction must be aborted: {0}")]
    AbortableTransaction(Box<Error>),
}

impl Error {
    /// The Strom error code this error corresponds to: the server's code,
    /// NETWORK_EXCEPTION for transport errors, REQUEST_TIMED_OUT for
    /// timeouts, INVALID_CONFIG for settings, INVALID_TXN_STATE for a
    /// transactional call out of turn, the cause's code for a fatal or
    /// abortable transaction error, and `None` for client-side argument
    /// errors and a closed producer.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Strom(e) => Some(e.code),
            Error::Transport { .. } => Some(ErrorCode::NetworkException),
            Error::Timeout { .. } => Some(ErrorCode::RequestTimedOut),
            Error::Config(_) => Some(ErrorCode::InvalidConfig),
            Error::InvalidArgument(_) | Error::Closed(_) => None,
            Error::IllegalState(_) => Some(ErrorCode::InvalidTxnState),
            Error::FatalTransaction(e) | Error::AbortableTransaction(e) => e.code(),
        }
    }

    /// The explanation without the error-code prefix, on one line.
    pub fn detail(&self) -> String {
        match self {
            Error::Strom(e) => one_line(&e.message),
            Error::FatalTransaction(e) => {
                format!("fatal transactional producer error: {}", e.detail())
            }
            Error::AbortableTransaction(e) => {
                format!("the transaction must be aborted: {}", e.detail())
            }
            other => one_line(&other.to_string()),
        }
    }

    /// A typed error with a code and message, as a server would answer it.
    pub fn strom(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Strom(StromError::new(code, message))
    }

    /// Converts a status returned by a call to `address`. A status carrying
    /// Strom's `ErrorInfo` is a server answer; a bare UNAVAILABLE, UNKNOWN or
    /// CANCELLED status is a transport failure; other bare statuses map to
    /// the closest code (see [`StromError::from_status`]).
    pub fn from_status(address: &str, status: tonic::Status) -> Self {
        let has_strom_details = status
            .get_details_error_info()
            .is_some_and(|info| info.domain == strom_proto::error::ERROR_DOMAIN);
        if !has_strom_details
            && matches!(
                status.code(),
                Code::Unavailable | Code::Unknown | Code::Cancelled
            )
        {
            return Error::Transport {
                address: address.to_owned(),
                source: status,
            };
        }
        Error::Strom(StromError::from_status(&status))
    }
}

impl From<StromError> for Error {
    fn from(e: StromError) -> Self {
        Error::Strom(e)
    }
}

/// Decodes a wire error code; unknown numbers become UNKNOWN_SERVER_ERROR.
pub(crate) fn error_code(code: i32) -> ErrorCode {
    ErrorCode::try_from(code).unwrap_or(ErrorCode::UnknownServerError)
}

/// A per-item error of a batch response, `None` for NONE.
pub(crate) fn item_error(code: i32, message: &str) -> Option<StromError> {
    match error_code(code) {
        ErrorCode::None => None,
        code => Some(StromError::new(code, message)),
    }
}

/// Collapses line breaks so an error always prints on one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_status_is_a_server_error_even_when_unavailable() {
        let status = StromError::new(ErrorCode::NotController, "no leader").to_status();
        let err = Error::from_status("h:1", status);
        assert!(matches!(&err, Error::Strom(e) if e.code == ErrorCode::NotController));
        assert_eq!(err.code(), Some(ErrorCode::NotController));
        assert_eq!(err.detail(), "no leader");
    }

    #[test]
    fn bare_unavailable_status_is_a_transport_error() {
        let err = Error::from_status(
            "h:1",
            tonic::Status::unavailable("tcp connect error\nrefused"),
        );
        assert!(matches!(&err, Error::Transport { address, .. } if address == "h:1"));
        assert_eq!(err.code(), Some(ErrorCode::NetworkException));
        assert_eq!(err.detail(), "cannot reach h:1: tcp connect error refused");
    }

    #[test]
    fn bare_statuses_map_to_closest_code() {
        let table = [
            (
                tonic::Status::deadline_exceeded("x"),
                ErrorCode::RequestTimedOut,
            ),
            (
                tonic::Status::unimplemented("x"),
                ErrorCode::UnsupportedVersion,
            ),
            (tonic::Status::internal("x"), ErrorCode::UnknownServerError),
        ];
        for (status, code) in table {
            assert_eq!(Error::from_status("h:1", status).code(), Some(code));
        }
    }

    #[test]
    fn unknown_wire_codes_become_unknown_server_error() {
        assert_eq!(error_code(36), ErrorCode::TopicAlreadyExists);
        assert_eq!(error_code(12345), ErrorCode::UnknownServerError);
        assert!(item_error(0, "").is_none());
        assert_eq!(
            item_error(37, "bad").map(|e| e.code),
            Some(ErrorCode::InvalidPartitions)
        );
    }
}
