//! Damage to a stopped node's partition logs: the tail of an active
//! segment lost (what a power cut does to data only in the page cache —
//! Strom does not fsync on append by default, so any tail of the active
//! segment may be lost), or one byte flipped (bit rot).

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

/// Cuts up to `max_cut` bytes (at least one) off the end of `segment`.
/// Returns `(old length, new length)`, or `None` for an empty file.
pub fn truncate_tail(
    segment: &Path,
    max_cut: u64,
    rng: &mut impl Rng,
) -> anyhow::Result<Option<(u64, u64)>> {
    let len = std::fs::metadata(segment)
        .with_context(|| format!("stat {}", segment.display()))?
        .len();
    if len == 0 {
        return Ok(None);
    }
    let cut = rng.gen_range(1..=len.min(max_cut.max(1)));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .with_context(|| format!("open {}", segment.display()))?;
    f.set_len(len - cut)
        .with_context(|| format!("truncate {}", segment.display()))?;
    f.sync_all().context("sync truncated segment")?;
    Ok(Some((len, len - cut)))
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
            let (old, new) = truncate_tail(&f, 300, &mut rng).unwrap().unwrap();
            assert_eq!(old, 1000);
            assert!((700..1000).contains(&new), "{new}");
            assert_eq!(std::fs::metadata(&f).unwrap().len(), new);

            std::fs::write(&f, vec![0xaau8; 1000]).unwrap();
            let (pos, before, after) = flip_byte(&f, &mut rng).unwrap().unwrap();
            let data = std::fs::read(&f).unwrap();
            assert_eq!((before, data[pos as usize]), (0xaa, after));
            assert_eq!((before ^ after).count_ones(), 1);
            assert_eq!(data.iter().filter(|b| **b != 0xaa).count(), 1);
        }
        std::fs::write(&f, b"").unwrap();
        assert_eq!(truncate_tail(&f, 10, &mut rng).unwrap(), None);
        assert_eq!(flip_byte(&f, &mut rng).unwrap(), None);
    }
}
