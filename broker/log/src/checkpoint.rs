//! Small durable state beside the segments, each file replaced atomically
//! (write `name.tmp`, fsync, rename, fsync the directory):
//!
//! - `leader-epoch-checkpoint`: the [`LeaderEpochCache`], Kafka's text format
//!   (`0` version line, entry count, then `epoch start_offset` lines).
//! - `partition.checkpoint`: [`PartitionCheckpoint`] — high watermark,
//!   recovery point and log start offset (version line, then `name value`).
//!
//! A missing or unparsable file is treated as absent (with a warning): the
//! log then recovers from offset 0 and rebuilds the epoch cache from batches.

use std::fs::{self, File};
use std::io::{ErrorKind as IoErrorKind, Write};
use std::path::Path;

use crate::error::{IoContext, Result};

/// File name of the leader-epoch checkpoint.
pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
/// Name of the clean-shutdown marker written by
/// [`PartitionLog::close`](crate::PartitionLog::close) and removed by the
/// next open.
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
/// File name of the partition checkpoint.
pub const PARTITION_CHECKPOINT_FILE: &str = "partition.checkpoint";

/// Epoch → first offset written in that epoch, as Kafka's `LeaderEpochFileCache`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    /// `(epoch, start_offset)` pairs, both strictly increasing.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Latest known epoch.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// Record that `epoch` starts at `start_offset`. Ignored unless the epoch
    /// is newer and the offset not lower than the latest entry's. Returns
    /// whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 {
            return false;
        }
        if let Some(&(e, o)) = self.entries.last()
            && (epoch <= e || start_offset < o)
        {
            return false;
        }
        self.entries.push((epoch, start_offset));
        true
    }

    /// Drop epochs starting at or after `end_offset` (log truncation).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self.entries.partition_point(|&(_, o)| o < end_offset);
        let changed = keep != self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// Forget epochs wholly below `start_offset`; the epoch covering it now
    /// starts there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self.entries.partition_point(|&(_, o)| o < start_offset);
        if below == 0 {
            return false;
        }
        let covering = below - 1;
        let changed = covering > 0 || self.entries[covering].1 != start_offset;
        self.entries.drain(..covering);
        self.entries[0].1 = start_offset;
        changed
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Kafka's `OffsetsForLeaderEpoch`: the largest epoch ≤ `requested` and
    /// the offset where the next epoch starts (or `log_end_offset` for the
    /// latest epoch). `None` if `requested` is newer than every known epoch
    /// or the cache is empty (Kafka's UNDEFINED_EPOCH_OFFSET).
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let &(latest, _) = self.entries.last()?;
        if requested == latest {
            return Some((latest, log_end_offset));
        }
        let higher = self.entries.partition_point(|&(e, _)| e <= requested);
        let &(_, next_start) = self.entries.get(higher)?;
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].0, next_start)),
            None => Some((requested, next_start)),
        }
    }

    pub(crate) fn encode(&self) -> String {
        let mut out = format!("0\n{}\n", self.entries.len());
        for (epoch, offset) in &self.entries {
            out.push_str(&format!("{epoch} {offset}\n"));
        }
        out
    }

    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()?.trim() != "0" {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut cache = LeaderEpochCache::default();
        for _ in 0..count {
            let (epoch, offset) = lines.next()?.trim().split_once(' ')?;
            if !cache.assign(epoch.parse().ok()?, offset.parse().ok()?) {
                return None;
            }
        }
        Some(cache)
    }
}

/// Offsets persisted for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionCheckpoint {
    /// Last checkpointed high watermark.
    pub high_watermark: i64,
    /// Everything below this offset was fsynced.
    pub recovery_point: i64,
    /// First offset visible to reads.
    pub log_start_offset: i64,
}

impl PartitionCheckpoint {
    pub(crate) fn encode(&self) -> String {
        format!(
            "0\nhigh_watermark {}\nrecovery_point {}\nlog_start_offset {}\n",
            self.high_watermark, self.recovery_point, self.log_start_offset
        )
    }

    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()?.trim() != "0" {
            return None;
        }
        let mut field = |name: &str| -> Option<i64> {
            let (key, value) = lines.next()?.trim().split_once(' ')?;
            (key == name).then_some(())?;
            value.parse().ok().filter(|v: &i64| *v >= 0)
        };
        Some(PartitionCheckpoint {
            high_watermark: field("high_watermark")?,
            recovery_point: field("recovery_point")?,
            log_start_offset: field("log_start_offset")?,
        })
    }
}

/// The first offset the log cleaner has not cleaned yet (Kafka's
/// `cleaner-offset-checkpoint`, kept per partition), and the earliest
/// delete horizon of a tombstone kept below it:
/// `0\n<offset>\n<horizon ms, -1 for none>\n`. Files written before the
/// horizon line have two lines (the horizon is then unknown).
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// The cleaner checkpoint's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CleanerCheckpoint {
    pub(crate) first_dirty: i64,
    /// `None`: not recorded (a file of the two-line format).
    pub(crate) delete_horizon_ms: Option<i64>,
}

impl CleanerCheckpoint {
    pub(crate) fn encode(&self) -> String {
        format!(
            "0\n{}\n{}\n",
            self.first_dirty,
            self.delete_horizon_ms.unwrap_or(-1)
        )
    }
}

/// Parse the cleaner checkpoint (`None` if malformed).
pub(crate) fn parse_cleaner_checkpoint(text: &str) -> Option<CleanerCheckpoint> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let first_dirty = lines
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|v: &i64| *v >= 0)?;
    let delete_horizon_ms = match lines.next().map(str::trim) {
        None | Some("") => None,
        Some(line) => Some(line.parse().ok().filter(|v: &i64| *v >= -1)?),
    };
    Some(CleanerCheckpoint {
        first_dirty,
        delete_horizon_ms,
    })
}

/// Replace `dir/name` atomically and durably.
pub(crate) fn write_atomic(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(contents.as_ref())?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        sync_dir(dir)
    };
    write().context(|| format!("write checkpoint {name}"))
}

/// fsync a directory so created, renamed and deleted entries are durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Read `dir/name` as text; `None` if missing or not UTF-8.
pub(crate) fn read_text(dir: &Path, name: &str) -> Result<Option<String>> {
    match fs::read(dir.join(name)) {
        Ok(bytes) => Ok(String::from_utf8(bytes).ok()),
        Err(e) if e.kind() == IoErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context(|| format!("read checkpoint {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut cache = LeaderEpochCache::default();
        for &(e, o) in entries {
            assert!(cache.assign(e, o));
        }
        cache
    }

    #[test]
    fn assign_ignores_stale_epochs_and_offsets() {
        let mut cache = cache(&[(1, 0), (3, 10)]);
        assert!(!cache.assign(3, 20), "same epoch");
        assert!(!cache.assign(2, 20), "older epoch");
        assert!(!cache.assign(4, 5), "offset goes backwards");
        assert!(cache.assign(4, 10));
        assert_eq!(cache.latest_epoch(), Some(4));
    }

    #[test]
    fn end_offset_for_epoch_follows_kafka() {
        let cache = cache(&[(1, 0), (3, 10), (5, 25)]);
        let leo = 40;
        let cases = [
            (5, Some((5, 40))), // latest epoch: log end offset
            (3, Some((3, 25))), // known epoch: start of the next one
            (4, Some((3, 25))), // unknown epoch: floor epoch, next start
            (0, Some((0, 0))),  // below every epoch: requested epoch, first start
            (6, None),          // newer than the leader knows
        ];
        for (requested, expected) in cases {
            assert_eq!(
                cache.end_offset_for(requested, leo),
                expected,
                "epoch {requested}"
            );
        }
        assert_eq!(LeaderEpochCache::default().end_offset_for(1, leo), None);
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache(&[(1, 0), (3, 10), (5, 25)]);
        assert!(c.truncate_from_end(25));
        assert_eq!(c.entries(), &[(1, 0), (3, 10)]);
        assert!(!c.truncate_from_end(11));
        let mut c = cache(&[(1, 0), (3, 10), (5, 25)]);
        assert!(c.truncate_from_start(12));
        assert_eq!(c.entries(), &[(3, 12), (5, 25)]);
        assert!(!c.truncate_from_start(12));
        assert!(c.truncate_from_start(30));
        assert_eq!(c.entries(), &[(5, 30)]);
    }

    #[test]
    fn checkpoint_files_round_trip_and_reject_garbage() {
        let c = cache(&[(1, 0), (3, 10)]);
        assert_eq!(c.encode(), "0\n2\n1 0\n3 10\n");
        assert_eq!(LeaderEpochCache::decode(&c.encode()), Some(c));
        assert_eq!(LeaderEpochCache::decode("0\n2\n1 0\n"), None);
        assert_eq!(LeaderEpochCache::decode("0\n2\n3 10\n1 0\n"), None);
        let p = PartitionCheckpoint {
            high_watermark: 5,
            recovery_point: 4,
            log_start_offset: 1,
        };
        assert_eq!(PartitionCheckpoint::decode(&p.encode()), Some(p));
        assert_eq!(PartitionCheckpoint::decode("0\nhigh_watermark x\n"), None);
        assert_eq!(PartitionCheckpoint::decode(""), None);
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_atomic(dir.path(), "f", "one").expect("write");
        write_atomic(dir.path(), "f", "two").expect("write");
        assert_eq!(
            read_text(dir.path(), "f").expect("read").as_deref(),
            Some("two")
        );
        assert!(!dir.path().join("f.tmp").exists());
        assert_eq!(read_text(dir.path(), "missing").expect("read"), None);
    }

    #[test]
    fn cleaner_checkpoints_parse_old_and_new_formats() {
        let cp = |first_dirty, delete_horizon_ms| {
            Some(CleanerCheckpoint {
                first_dirty,
                delete_horizon_ms,
            })
        };
        let cases = [
            ("0\n42\n", cp(42, None)),
            ("0\n42\n-1\n", cp(42, Some(-1))),
            ("0\n42\n1700000000000\n", cp(42, Some(1_700_000_000_000))),
            ("0\n42\n\n", cp(42, None)),
            ("1\n42\n", None),
            ("0\n-3\n", None),
            ("0\nx\n", None),
            ("0\n42\n-2\n", None),
            ("0\n42\nsoon\n", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_cleaner_checkpoint(text), expected, "{text:?}");
        }
        let written = CleanerCheckpoint {
            first_dirty: 7,
            delete_horizon_ms: Some(99),
        };
        assert_eq!(parse_cleaner_checkpoint(&written.encode()), Some(written));
    }
}
