//! Log recovery before registration, as Kafka's `LogManager` loads every
//! log before its broker registers.
//!
//! A replica whose recovery lost records (a damaged tail cut, segments
//! deleted, or a log ending below its checkpointed high watermark) may lack
//! acknowledged records. The controller must learn that before it can elect
//! the replica: the broker reports it in `RegisterBroker`, and the controller
//! removes the replica from its partition's ISR and eligible leader replicas.
//! Only the open that found the damage knows of it, so a marker file in the
//! partition directory keeps it until a registration carrying it succeeded
//! (a crash in between reports it again at the next start).

use std::path::{Path, PathBuf};

use strom_log::{LogConfig, PartitionLog};
use uuid::Uuid;

use super::manager::read_topic_id;

/// In a partition directory: the replica lost records in recovery and no
/// controller has been told yet.
pub const LOST_RECORDS_MARKER_FILE: &str = "replica.lost-records";

/// A local replica that lost records in recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedReplica {
    /// Topic id (from the directory's `partition.metadata`).
    pub topic_id: Uuid,
    /// Partition index (from the directory name).
    pub partition: i32,
    /// The partition directory.
    pub dir: PathBuf,
}

/// Opens every partition log under `log_dir` (running recovery where the
/// last shutdown was unclean) and closes it again, so the replica manager
/// later opens clean logs. Returns the replicas that lost records, now or
/// at an earlier start whose report no controller received. Directories
/// that cannot be read or opened are logged and skipped: the replica manager
/// meets the same error when the image assigns them.
pub fn recover_local_logs(log_dir: &Path) -> Vec<DamagedReplica> {
    let entries = match std::fs::read_dir(log_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::error!(dir = %log_dir.display(), error = %e, "cannot list partition logs");
            return Vec::new();
        }
    };
    let mut damaged = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        match recover_one(&dir) {
            Ok(Some(replica)) => damaged.push(replica),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "skipping a partition log at startup")
            }
        }
    }
    damaged.sort_by(|a, b| a.dir.cmp(&b.dir));
    damaged
}

fn recover_one(dir: &Path) -> crate::Result<Option<DamagedReplica>> {
    let partition = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once('-'))
        .and_then(|(_, p)| p.parse::<i32>().ok())
        .filter(|p| *p >= 0)
        .ok_or_else(|| crate::Error::NotAPartitionDir(dir.display().to_string()))?;
    let Some(topic_id) = read_topic_id(dir).map_err(|source| crate::Error::Io {
        context: format!("read partition metadata in {}", dir.display()),
        source,
    })?
    else {
        // Never claimed (created and abandoned before its metadata file):
        // the replica manager claims or removes it.
        return Ok(None);
    };
    let marker = dir.join(LOST_RECORDS_MARKER_FILE);
    let reported_before = marker.exists();
    let log = PartitionLog::open(dir, LogConfig::default())?;
    let lost_now = log.lost_records_in_recovery();
    if lost_now {
        tracing::warn!(dir = %dir.display(), log_end_offset = log.log_end_offset(),
            "partition log lost records in recovery: reporting the replica to the controller");
    }
    // A failed close (say, a full disk) only costs the next open a recovery.
    if let Err(e) = log.close() {
        tracing::warn!(dir = %dir.display(), error = %e, "closing a recovered partition log");
    }
    if !lost_now && !reported_before {
        return Ok(None);
    }
    if lost_now
        && let Err(e) =
            std::fs::write(&marker, b"").and_then(|()| std::fs::File::open(dir)?.sync_all())
    {
        // Still reported now; only a crash before registering would forget it.
        tracing::warn!(file = %marker.display(), error = %e, "cannot persist the lost-records report");
    }
    Ok(Some(DamagedReplica {
        topic_id,
        partition,
        dir: dir.to_owned(),
    }))
}

/// Removes the markers of `replicas` once a controller accepted a
/// registration reporting them.
pub fn clear_lost_records_markers(replicas: &[DamagedReplica]) {
    for r in replicas {
        let marker = r.dir.join(LOST_RECORDS_MARKER_FILE);
        match std::fs::remove_file(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %marker.display(), error = %e, "cannot remove marker"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: usize) -> bytes::Bytes {
        let mut b = strom_log::RecordBatchBuilder::new(strom_log::Compression::None);
        for i in 0..records {
            b.append(1, None, Some(&vec![b'v'; 40 + i]), &[]);
        }
        b.build()
    }

    /// Writes a log of three batches (HW at its end) into `<root>/<name>`,
    /// claimed for `topic_id`, and crashes it (no close).
    fn crashed_log(root: &Path, name: &str, topic_id: Uuid) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        super::super::manager::claim_dir(&dir, topic_id).unwrap();
        let mut log = PartitionLog::open(&dir, LogConfig::default()).unwrap();
        for _ in 0..3 {
            log.append_as_leader(batch(2), 1).unwrap();
        }
        log.set_high_watermark(log.log_end_offset());
        log.checkpoint().unwrap();
        drop(log);
        dir
    }

    fn cut_active_segment(dir: &Path, bytes: u64) {
        let seg = dir.join("00000000000000000000.log");
        let len = std::fs::metadata(&seg).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - bytes)
            .unwrap();
    }

    #[test]
    fn damaged_replicas_are_reported_until_the_report_is_delivered() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let intact = crashed_log(root.path(), "orders-0", a);
        let torn = crashed_log(root.path(), "orders-1", a);
        let other = crashed_log(root.path(), "pay-ments-12", b);
        cut_active_segment(&torn, 7);
        cut_active_segment(&other, 3);
        std::fs::create_dir_all(root.path().join("not-a-partition")).unwrap();
        std::fs::create_dir_all(root.path().join("unclaimed-3")).unwrap();

        let want = vec![
            DamagedReplica {
                topic_id: a,
                partition: 1,
                dir: torn.clone(),
            },
            DamagedReplica {
                topic_id: b,
                partition: 12,
                dir: other.clone(),
            },
        ];
        assert_eq!(recover_local_logs(root.path()), want);
        // Not delivered (say, a crash before registering): reported again,
        // although the logs now open clean.
        assert_eq!(recover_local_logs(root.path()), want);
        clear_lost_records_markers(&want);
        assert_eq!(recover_local_logs(root.path()), vec![]);
        // Every log was left closed cleanly for the replica manager.
        for dir in [intact, torn, other] {
            assert!(dir.join(strom_log::log::CLEAN_SHUTDOWN_FILE).exists());
        }
        assert_eq!(recover_local_logs(&root.path().join("missing")), vec![]);
    }
}
