//! Damage to a stopped node's partition logs: what a power cut does to
//! data only in the page cache (every segment cut back to somewhere between
//! the length its last fsync made durable, as syncwatch recorded it, and
//! its current length), or one byte flipped (bit rot).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::Rng;

/// The active (last) segment of `topic`-`partition` under `data_dir`.
pub fn active_segment(data_dir: &Path, topic: &str, partition: i32) -> Option<PathBuf> {
    let dir = data_dir.join("logs").join(format!("{topic}-{partition}"));
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
}

/// Every segment file (`*.log`) of `topic`-`partition` under `data_dir`,
/// in offset order.
pub fn segments(data_dir: &Path, topic: &str, partition: i32) -> Vec<PathBuf> {
    let dir = data_dir.join("logs").join(format!("{topic}-{partition}"));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The durable length of each file syncwatch saw fsynced, by path and
/// inode: its size before the last successful fsync or fdatasync (journal
/// lines `<size> <inode> <path>`). A missing journal means nothing was
/// fsynced.
pub fn synced_lengths(journal: &Path) -> anyhow::Result<HashMap<(PathBuf, u64), u64>> {
    let text = match std::fs::read_to_string(journal) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", journal.display())),
    };
    let mut synced = HashMap::new();
    for line in text.lines() {
        // A line cut short by a killed writer is skipped.
        let mut fields = line.splitn(3, ' ');
        let (Some(size), Some(inode), Some(path)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(size), Ok(inode)) = (size.parse::<u64>(), inode.parse::<u64>()) else {
            continue;
        };
        synced.insert((PathBuf::from(path), inode), size);
    }
    Ok(synced)
}

/// How much of the unsynced tail a power cut drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// All of it: nothing was written back.
    All,
    /// A random part of it (at least one byte when there is any): the
    /// kernel wrote some back.
    Some,
}

/// Cuts `segment` back to between its durable length in `synced` (0 when
/// never fsynced) and its length, as `cut` says. Returns `(old length, new
/// length)` when it cut.
pub fn cut_unsynced(
    segment: &Path,
    synced: &HashMap<(PathBuf, u64), u64>,
    cut: Cut,
    rng: &mut impl Rng,
) -> anyhow::Result<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(segment).with_context(|| format!("stat {}", segment.display()))?;
    let len = meta.len();
    // syncwatch records the kernel's name of the file.
    let path = std::fs::canonicalize(segment)
        .with_context(|| format!("canonicalize {}", segment.display()))?;
    let synced = synced.get(&(path, meta.ino())).copied().unwrap_or(0);
    if len <= synced {
        return Ok(None);
    }
    let new = match cut {
        Cut::All => synced,
        Cut::Some => rng.gen_range(synced..len),
    };
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .with_context(|| format!("open {}", segment.display()))?;
    f.set_len(new)
        .with_context(|| format!("truncate {}", segment.display()))?;
    f.sync_all().context("sync truncated segment")?;
    Ok(Some((len, new)))
}

/// Flips one random bit of one random byte of `segment`. Returns
/// `(position, old byte, new byte)`, or `None` for an empty file.
pub fn flip_byte(segment: &Path, rng: &mut impl Rng) -> anyhow::Result<Option<(u64, u8, u8)>> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment)
        .with_context(|| format!("open {}", segment.display()))?;
    let len = f.metadata().context("stat segment")?.len();
    if len == 0 {
        return Ok(None);
    }
    let pos = rng.gen_range(0..len);
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(pos)).context("seek")?;
    f.read_exact(&mut b).context("read byte")?;
    let old = b[0];
    b[0] ^= 1 << rng.gen_range(0..8);
    f.seek(SeekFrom::Start(pos)).context("seek")?;
    f.write_all(&b).context("write byte")?;
    f.sync_all().context("sync segment")?;
    Ok(Some((pos, old, b[0])))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn the_active_segment_is_the_one_with_the_highest_base_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("logs").join("t-1");
        std::fs::create_dir_all(&p).unwrap();
        for name in [
            "00000000000000000000.log",
            "00000000000000000042.log",
            "00000000000000000042.index",
        ] {
            std::fs::write(p.join(name), b"x").unwrap();
        }
        assert_eq!(
            active_segment(dir.path(), "t", 1),
            Some(p.join("00000000000000000042.log"))
        );
        assert_eq!(active_segment(dir.path(), "t", 2), None);
    }

    #[test]
    fn damage_stays_within_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.log");
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..50 {
            std::fs::write(&f, vec![0xaau8; 1000]).unwrap();
            let (pos, before, after) = flip_byte(&f, &mut rng).unwrap().unwrap();
            let data = std::fs::read(&f).unwrap();
            assert_eq!((before, data[pos as usize]), (0xaa, after));
            assert_eq!((before ^ after).count_ones(), 1);
            assert_eq!(data.iter().filter(|b| **b != 0xaa).count(), 1);
        }
        std::fs::write(&f, b"").unwrap();
        assert_eq!(flip_byte(&f, &mut rng).unwrap(), None);
    }

    /// A power cut keeps every fsynced byte and drops all or part of the
    /// rest; a later file of the same name (another inode) counts as never
    /// fsynced.
    #[test]
    fn power_cuts_keep_the_synced_bytes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::canonicalize(dir.path()).unwrap().join("s.log");
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..50 {
            std::fs::write(&f, vec![0xaau8; 1000]).unwrap();
            let ino = std::fs::metadata(&f).unwrap().ino();
            let synced = HashMap::from([((f.clone(), ino), 600)]);
            let (old, new) = cut_unsynced(&f, &synced, Cut::Some, &mut rng)
                .unwrap()
                .unwrap();
            assert_eq!(old, 1000);
            assert!((600..1000).contains(&new), "{new}");
            assert_eq!(std::fs::metadata(&f).unwrap().len(), new);
            assert_eq!(
                cut_unsynced(&f, &synced, Cut::All, &mut rng).unwrap(),
                (new > 600).then_some((new, 600))
            );
            assert_eq!(cut_unsynced(&f, &synced, Cut::All, &mut rng).unwrap(), None);
        }
        let synced = HashMap::from([((f.clone(), u64::MAX), 600)]);
        std::fs::write(&f, vec![0xaau8; 1000]).unwrap();
        assert_eq!(
            cut_unsynced(&f, &synced, Cut::All, &mut rng).unwrap(),
            Some((1000, 0))
        );
    }

    /// syncwatch, preloaded into another process, records the size a file
    /// had when it was fsynced, and nothing for what followed.
    #[test]
    fn syncwatch_records_what_a_process_fsynced() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let logs = base.join("logs").join("t-0");
        std::fs::create_dir_all(&logs).unwrap();
        let segment = logs.join("00000000000000000000.log");
        let other = base.join("other.log");
        let journal = base.join("journal");
        let script = "import os, sys\n\
             for path in sys.argv[1:]:\n\
             \x20   f = open(path, 'ab')\n\
             \x20   f.write(b'x' * 100); f.flush(); os.fsync(f.fileno())\n\
             \x20   f.write(b'y' * 50); f.flush(); os.fdatasync(f.fileno())\n\
             \x20   f.write(b'z' * 7); f.flush()\n";
        let status = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&segment)
            .arg(&other)
            .env("LD_PRELOAD", env!("STROM_SYNCWATCH_LIB"))
            .env("STROM_SYNC_JOURNAL", &journal)
            .status()
            .expect("run python3");
        assert!(status.success());
        let synced = synced_lengths(&journal).unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(&segment).unwrap().ino();
        assert_eq!(synced.get(&(segment.clone(), ino)), Some(&150));
        assert_eq!(
            synced.len(),
            1,
            "only segment files are watched: {synced:?}"
        );
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), 157);
    }
}
