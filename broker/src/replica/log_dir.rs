//! The health of the broker's log directory (Kafka's KIP-112).
//!
//! A write error in the log directory (a full disk, an I/O error) takes it
//! offline: every replica in it stops serving (KAFKA_STORAGE_ERROR), the
//! broker's heartbeats name it in `offline_log_dirs`, and the controller
//! fences the broker, which moves its leaderships to other ISR members and
//! takes its replicas out of every ISR. Before this, a leader whose disk
//! was full kept its partitions and left them unavailable
//! (docs/reliability.md, finding 4).
//!
//! As in Kafka, a directory stays offline until the broker restarts: the
//! failed writes may have left partial batches, and the restart's recovery
//! (which also reports replicas that lost records) is what makes the logs
//! trustworthy again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strom_log::{ErrorKind, LogError};
use tokio::sync::watch;

/// Shared view of whether the log directory is online.
#[derive(Debug, Clone)]
pub struct LogDirHealth {
    dir: Arc<PathBuf>,
    /// `Some(reason)` once offline.
    offline: Arc<watch::Sender<Option<String>>>,
}

impl LogDirHealth {
    /// The directory `dir`, online.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: Arc::new(dir.to_path_buf()),
            offline: Arc::new(watch::channel(None).0),
        }
    }

    /// The directory's path.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the directory is offline.
    pub fn is_offline(&self) -> bool {
        self.offline.borrow().is_some()
    }

    /// The directories offline, as heartbeats report them.
    pub fn offline_dirs(&self) -> Vec<String> {
        if self.is_offline() {
            vec![self.dir.display().to_string()]
        } else {
            Vec::new()
        }
    }

    /// Why the directory went offline, if it did.
    pub fn reason(&self) -> Option<String> {
        self.offline.borrow().clone()
    }

    /// Notified when the directory goes offline.
    pub fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.offline.subscribe()
    }

    /// Takes the directory offline if `e` is a storage failure (not a
    /// client's bad batch or an offset out of range); returns whether it
    /// is offline now.
    pub fn check(&self, e: &LogError) -> bool {
        if is_dir_failure(e) {
            self.fail(&e.to_string());
        }
        self.is_offline()
    }

    /// Takes the directory offline for `reason` (the first reason stays).
    pub fn fail(&self, reason: &str) {
        let first = self.offline.send_if_modified(|r| {
            if r.is_some() {
                return false;
            }
            *r = Some(reason.to_owned());
            true
        });
        if first {
            tracing::error!(dir = %self.dir.display(), reason, "log directory offline: its replicas stop serving and the controller moves their leaderships away; restart the broker once the disk is fixed");
        }
    }
}

/// Whether `e` means the directory cannot be written or read: an I/O error,
/// as opposed to a request's bad data.
pub(crate) fn is_dir_failure(e: &LogError) -> bool {
    e.kind() == ErrorKind::Storage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_storage_errors_take_the_directory_offline() {
        let health = LogDirHealth::new(Path::new("/data/logs"));
        let mut changes = health.subscribe();
        assert!(!health.check(&LogError::CorruptMessage {
            reason: "bad crc".into()
        }));
        assert!(health.offline_dirs().is_empty());
        assert!(!changes.has_changed().expect("sender alive"));

        let full = LogError::Io {
            context: "append to segment 00000000000000000000.log".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        assert!(health.check(&full));
        assert!(changes.has_changed().expect("sender alive"));
        assert_eq!(health.offline_dirs(), vec!["/data/logs".to_owned()]);
        let reason = health.reason().expect("offline");
        assert!(reason.contains("append to segment"), "{reason}");

        // The first reason stays; later failures change nothing.
        changes.borrow_and_update();
        health.fail("another");
        assert!(!changes.has_changed().expect("sender alive"));
        assert_eq!(health.reason(), Some(reason));
    }
}
