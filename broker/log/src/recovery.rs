//! Opening a log directory: clean or unclean, which segments to scan, and
//! how checkpoints are reconciled with what the files really hold.
//!
//! 1. Delete leftover `*.tmp` files, index files without a `.log`, files
//!    of deleted segments (`*.deleted`) and segments wholly below the
//!    checkpointed log start offset: a deletion interrupted by a crash
//!    (`log/retention.rs` checkpoints the new start before any file goes).
//! 2. Read `partition.checkpoint` and `leader-epoch-checkpoint` (a missing or
//!    corrupt file counts as absent: recovery point 0, empty epoch cache).
//! 3. Clean shutdown (marker present): load the last segment's index and
//!    validate its unindexed tail; older segments load lazily.
//!    Unclean: every segment from the one holding the recovery point on is
//!    scanned batch by batch (length, magic, offsets, CRC32C); indexes are
//!    rebuilt, the first invalid batch and everything after it are
//!    truncated, later segments deleted, and epochs newer than the cache
//!    re-learned from batch headers. The recovered segments are then fsynced, so the recovery
//!    point becomes the log end.
//! 4. Clamp log start, high watermark and epochs to what survived, remove
//!    the marker and fsync the directory before any new append.
//!
//! Before all this, an interrupted swap of a cleaned segment
//! (`log/compact.rs`) is settled: a `<base>.log.cleaned` file is deleted
//! (the old segment is whole: roll back), a `<base>.log.swap` file, whole
//! and fsynced, replaces `<base>.log` and the old indexes go (roll
//! forward). The cleaner checkpoint is read with the others.
//!
//! Nothing read from disk can make this panic: every failure is either an
//! I/O error (the directory is unusable) or a truncation.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::checkpoint::{
    CLEAN_SHUTDOWN_FILE, CLEANER_CHECKPOINT_FILE, LEADER_EPOCH_FILE, LeaderEpochCache,
    PARTITION_CHECKPOINT_FILE, PartitionCheckpoint, parse_cleaner_checkpoint, read_text, sync_dir,
};
use crate::config::LogConfig;
use crate::error::{IoContext, Result};
use crate::segment::{
    CLEANED_SUFFIX, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX, Segment,
    TIME_INDEX_SUFFIX, file_name, parse_file_name, remove_if_exists,
};

/// State of a freshly opened log directory.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segments: BTreeMap<i64, Arc<Segment>>,
    pub(crate) epochs: LeaderEpochCache,
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    pub(crate) high_watermark: i64,
    pub(crate) recovery_point: i64,
    /// The cleaner checkpoint (0 when missing or corrupt).
    pub(crate) first_dirty_offset: i64,
    /// The earliest delete horizon of a tombstone below it (-1: none; 0
    /// when not recorded, so the cleaner looks once).
    pub(crate) delete_horizon_ms: i64,
    pub(crate) clean: bool,
    /// Records that were in the log are gone: a damaged tail was cut or
    /// segments deleted, or the log ends below its checkpointed high
    /// watermark.
    pub(crate) lost_records: bool,
}

pub(crate) fn open_dir(dir: &Path, config: &LogConfig) -> Result<Recovered> {
    fs::create_dir_all(dir).context(|| format!("create log directory {}", dir.display()))?;
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    let clean = marker.exists();
    let interval = config.index_interval_bytes;

    // 0. Settle an interrupted swap of a cleaned segment.
    settle_cleaner_swaps(dir)?;

    // 1. Inventory.
    let mut log_bases = Vec::new();
    let mut index_files = Vec::new();
    for entry in fs::read_dir(dir).context(|| format!("list log directory {}", dir.display()))? {
        let entry = entry.context(|| format!("list log directory {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") || name.ends_with(DELETED_SUFFIX) {
            remove_if_exists(&entry.path())?;
            continue;
        }
        match parse_file_name(name) {
            Some((base, LOG_SUFFIX)) => log_bases.push(base),
            Some((base, suffix)) if suffix == INDEX_SUFFIX || suffix == TIME_INDEX_SUFFIX => {
                index_files.push((base, entry.path()));
            }
            _ => {}
        }
    }
    log_bases.sort_unstable();
    for (base, path) in index_files {
        if log_bases.binary_search(&base).is_err() {
            remove_if_exists(&path)?;
        }
    }

    // 2. Checkpoints.
    let checkpoint = read_text(dir, PARTITION_CHECKPOINT_FILE)?.and_then(|text| {
        let parsed = PartitionCheckpoint::decode(&text);
        if parsed.is_none() {
            tracing::warn!(dir = %dir.display(), "ignoring corrupt partition checkpoint");
        }
        parsed
    });
    let cleaner =
        read_text(dir, CLEANER_CHECKPOINT_FILE)?.and_then(|text| parse_cleaner_checkpoint(&text));
    let first_dirty_offset = cleaner.map_or(0, |c| c.first_dirty);
    let delete_horizon_ms = match cleaner.and_then(|c| c.delete_horizon_ms) {
        Some(h) => h,
        None if first_dirty_offset > 0 => 0,
        None => -1,
    };
    let mut epochs = read_text(dir, LEADER_EPOCH_FILE)?
        .and_then(|text| LeaderEpochCache::decode(&text))
        .unwrap_or_default();

    // Segments wholly below the checkpointed log start were being deleted
    // (the start is checkpointed first): finish the job. The last segment
    // always stays.
    let checkpointed_start = checkpoint.map_or(0, |c| c.log_start_offset);
    let below_start = log_bases
        .windows(2)
        .take_while(|w| w[1] <= checkpointed_start)
        .count();
    for base in log_bases.drain(..below_start) {
        tracing::info!(dir = %dir.display(), base, "deleting a segment below the log start");
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&dir.join(crate::segment::file_name(base, suffix)))?;
        }
    }

    let mut segments = BTreeMap::new();
    for &base in &log_bases {
        segments.insert(base, Arc::new(Segment::open(dir, base, interval)?));
    }
    if segments.is_empty() {
        let base = checkpoint.map_or(0, |c| c.log_start_offset);
        segments.insert(base, Arc::new(Segment::create(dir, base, interval)?));
    }

    // 3. Load or recover.
    let mut lost_records = false;
    let recovery_point = if clean {
        let last = segments.values().next_back().expect("at least one segment");
        let cut = last.load(true)?;
        if cut > 0 {
            tracing::warn!(dir = %dir.display(), cut, "clean log had an invalid tail");
            lost_records = true;
        }
        None
    } else {
        let from = checkpoint.map_or(0, |c| c.recovery_point);
        let first_base = segments.range(..=from).next_back().map_or_else(
            || *segments.keys().next().expect("at least one segment"),
            |(&b, _)| b,
        );
        let bases: Vec<i64> = segments.range(first_base..).map(|(&b, _)| b).collect();
        tracing::info!(dir = %dir.display(), from, segments = bases.len(), "recovering log after unclean shutdown");
        // The first segment to delete, with everything after it: after a
        // torn or corrupt batch, or where offsets stop being dense between
        // segments (a missing or emptied file).
        let mut delete_from = None;
        let mut expected_base: Option<i64> = None;
        for (i, &base) in bases.iter().enumerate() {
            if expected_base.is_some_and(|next| next != base) {
                delete_from = Some(base);
                break;
            }
            let segment = &segments[&base];
            let cut = segment.recover(&mut |batch| {
                // Batches wholly below the log start are invisible.
                if batch.last_offset >= checkpointed_start {
                    epochs.assign(batch.leader_epoch, batch.base_offset);
                }
            })?;
            if cut > 0 {
                lost_records = true;
                delete_from = bases.get(i + 1).copied();
                break;
            }
            expected_base = Some(segment.next_offset()?);
        }
        if let Some(first_doomed) = delete_from {
            lost_records = true;
            let doomed: Vec<i64> = segments.range(first_doomed..).map(|(&b, _)| b).collect();
            for base in doomed {
                if let Some(segment) = segments.remove(&base) {
                    tracing::warn!(base, "deleting segment after the end of the recovered log");
                    segment.delete_files()?;
                }
            }
        }
        for segment in segments.range(first_base..).map(|(_, s)| s) {
            segment.sync()?;
            segment.write_index_files(true)?;
        }
        Some(())
    };

    // 4. Reconcile.
    let last = segments.values().next_back().expect("at least one segment");
    let first_base = *segments.keys().next().expect("at least one segment");
    let log_end_offset = last.next_offset()?;
    let log_start_offset = checkpoint
        .map_or(first_base, |c| c.log_start_offset.max(first_base))
        .min(log_end_offset);
    let checkpointed_hw = checkpoint.map_or(log_start_offset, |c| c.high_watermark);
    if checkpointed_hw > log_end_offset {
        tracing::warn!(dir = %dir.display(), checkpointed_hw, log_end_offset, "log ends below its checkpointed high watermark");
        lost_records = true;
    }
    let high_watermark = checkpointed_hw.clamp(log_start_offset, log_end_offset);
    let _ = recovery_point;
    // Epochs starting beyond the surviving data are gone; one starting exactly
    // at the log end (e.g. after retention emptied the log) is kept.
    epochs.truncate_from_end(log_end_offset + 1);
    epochs.truncate_from_start(log_start_offset);

    remove_if_exists(&marker)?;
    sync_dir(dir).context(|| format!("fsync log directory {}", dir.display()))?;
    Ok(Recovered {
        segments,
        epochs,
        log_start_offset,
        log_end_offset,
        high_watermark,
        // Clean: everything was fsynced by close. Unclean: the recovered
        // segments were fsynced above.
        recovery_point: log_end_offset,
        first_dirty_offset,
        delete_horizon_ms,
        clean,
        lost_records,
    })
}

/// Delete `*.log.cleaned` files (a swap that had not begun) and complete
/// `*.log.swap` ones (see the module docs).
fn settle_cleaner_swaps(dir: &Path) -> Result<()> {
    let mut settled = false;
    for entry in fs::read_dir(dir).context(|| format!("list log directory {}", dir.display()))? {
        let entry = entry.context(|| format!("list log directory {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(CLEANED_SUFFIX) {
            tracing::info!(dir = %dir.display(), file = name, "deleting an unfinished cleaned segment");
            remove_if_exists(&entry.path())?;
            settled = true;
            continue;
        }
        let Some(log_name) = name.strip_suffix(SWAP_SUFFIX) else {
            continue;
        };
        let Some((base, LOG_SUFFIX)) = parse_file_name(log_name) else {
            continue;
        };
        tracing::info!(dir = %dir.display(), base, "completing the swap of a cleaned segment");
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&dir.join(file_name(base, suffix)))?;
        }
        fs::rename(entry.path(), dir.join(log_name))
            .context(|| format!("rename {name} to {log_name}"))?;
        settled = true;
    }
    if settled {
        sync_dir(dir).context(|| format!("fsync log directory {}", dir.display()))?;
    }
    Ok(())
}
