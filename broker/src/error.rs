//! The broker's error type. Request errors that a client sees per
//! partition are [`PartError`](crate::replica::PartError)s (a Kafka error
//! code and a message); this enum is for the broker's own work: opening and
//! recovering logs, following the metadata log, talking to the controller.

/// What went wrong in the broker's own work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "claim /data/logs/orders-0".
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The partition log failed.
    #[error(transparent)]
    Log(#[from] strom_log::LogError),
    /// A request to the controller quorum failed.
    #[error("controller: {0}")]
    Controller(#[from] strom_proto::StromError),
    /// The connection to the controller failed.
    #[error("controller stream: {0}")]
    Transport(#[from] tonic::Status),
    /// The metadata log could not be applied.
    #[error("metadata: {0}")]
    Metadata(#[from] strom_metadata::MetadataError),
    /// This broker's copy of the metadata diverged from the controller's
    /// log; it starts over from a snapshot.
    #[error("diverged from the metadata log at offset {offset}")]
    MetadataDiverged {
        /// The batch that did not apply.
        offset: i64,
    },
    /// A directory is not a partition log (`<topic>-<partition>`).
    #[error("{0} is not a <topic>-<partition> directory")]
    NotAPartitionDir(String),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The broker's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
