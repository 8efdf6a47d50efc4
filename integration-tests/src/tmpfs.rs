//! A node's data dir on a small tmpfs of its own: a file system whose size
//! and use a test controls (the balancer's disk goals read them from
//! statvfs), and that the fault-injection nemesis can fill (a filler file
//! written until ENOSPC) and free again. Needs root for `mount`
//! ([`is_root`]; tests that mount sit in `needs_root::` modules, which
//! `scripts/test` skips without root); [`Tmpfs`]'s `Drop` unmounts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A mounted tmpfs.
#[derive(Debug)]
pub struct Tmpfs {
    path: PathBuf,
}

/// Name of the filler file at the tmpfs root.
const FILLER: &str = "strom-filler";

/// Source name of the tmpfs mounts, followed by the owning process id.
const SOURCE_PREFIX: &str = "strom-tmpfs-";
/// The prefix mounts had before the tmpfs moved into the harness.
const OLD_SOURCE_PREFIX: &str = "strom-jepsen-";

/// Whether this process runs as root (effective uid 0), as mounting needs.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    })
}

/// Unmounts (lazily) the tmpfs of runs whose process no longer exists.
pub fn sweep_stale() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(target), Some("tmpfs")) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some(pid) = source
            .strip_prefix(SOURCE_PREFIX)
            .or_else(|| source.strip_prefix(OLD_SOURCE_PREFIX))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = Command::new("umount").arg("-l").arg(target).status();
            eprintln!("unmounted the stale tmpfs {target}");
        }
    }
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes on `path` (created if missing).
    pub fn mount(path: &Path, size: u64) -> anyhow::Result<Self> {
        if !is_root() {
            bail!(
                "mounting a tmpfs on {} needs root (tests that do sit in needs_root:: \
                 modules, which scripts/test skips when not root)",
                path.display()
            );
        }
        std::fs::create_dir_all(path).with_context(|| format!("create {}", path.display()))?;
        // The source names this process, so a later run can unmount it
        // should this one die without running `Drop`.
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}")])
            .arg(format!("{SOURCE_PREFIX}{}", std::process::id()))
            .arg(path)
            .output()
            .context("run mount")?;
        if !out.status.success() {
            bail!(
                "mount tmpfs on {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// Fills the file system: writes the filler until ENOSPC. Returns the
    /// bytes written.
    pub fn fill(&self) -> anyhow::Result<u64> {
        let path = self.path.join(FILLER);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("create {}", path.display()))?;
        let chunk = vec![0u8; 1 << 16];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => return Err(e).context("write filler"),
            }
        }
        Ok(written)
    }

    /// Frees what [`fill`](Self::fill) took.
    pub fn drain(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(self.path.join(FILLER)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("remove filler"),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a process we did not start?): detach it lazily
            // rather than leave it mounted.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}
