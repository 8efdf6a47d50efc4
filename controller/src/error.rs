//! The controller's error type and its one mapping onto gRPC statuses.

use strom_metadata::MetadataError;
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;
use tonic::Status;

/// Errors of controller operations.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// This node is not the active controller.
    #[error("this controller is not the leader")]
    NotController {
        /// The leader's id and controller address, when known.
        leader: Option<(u64, String)>,
    },
    /// The metadata rules refused the request.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The state machine rejected the committed batch.
    #[error("{message}")]
    Rejected {
        /// Why.
        code: ErrorCode,
        /// What.
        message: String,
    },
    /// A request field is missing or invalid.
    #[error("{0}")]
    InvalidRequest(String),
    /// The write did not commit in time.
    #[error("metadata write did not commit within {0:?}")]
    Timeout(std::time::Duration),
    /// Raft stopped or failed; the node is shutting down.
    #[error("raft failure: {0}")]
    Fatal(String),
}

/// Result of controller operations.
pub type Result<T, E = ControllerError> = std::result::Result<T, E>;

impl ControllerError {
    /// The typed error a client sees.
    pub fn to_strom(&self) -> StromError {
        match self {
            Self::NotController { leader } => {
                let e = StromError::new(ErrorCode::NotController, self.to_string());
                match leader {
                    Some((id, addr)) => {
                        e.with_leader(i32::try_from(*id).unwrap_or(-1), addr.clone())
                    }
                    None => e,
                }
            }
            Self::Metadata(m) => StromError::new(ErrorCode::from(m.code), m.message.clone()),
            Self::Rejected { code, message } => StromError::new(*code, message.clone()),
            Self::InvalidRequest(m) => StromError::new(ErrorCode::InvalidRequest, m.clone()),
            Self::Timeout(_) => StromError::new(ErrorCode::RequestTimedOut, self.to_string()),
            Self::Fatal(_) => StromError::new(ErrorCode::UnknownServerError, self.to_string()),
        }
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.to_strom().code
    }
}

impl From<ControllerError> for Status {
    fn from(e: ControllerError) -> Self {
        e.to_strom().to_status()
    }
}
