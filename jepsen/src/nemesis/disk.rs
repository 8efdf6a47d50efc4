//! A node's data dir on a small tmpfs, so the nemesis can fill its disk
//! (a filler file written until ENOSPC) and free it again. Needs root for
//! `mount`; [`Tmpfs`]'s `Drop` unmounts.

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
const FILLER: &str = "jepsen-filler";

/// Source name of the tmpfs mounts, followed by the owning process id.
const SOURCE_PREFIX: &str = "strom-jepsen-";

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
        let Some(pid) = source.strip_prefix(SOURCE_PREFIX) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = Command::new("umount").arg("-l").arg(target).status();
            eprintln!("jepsen: unmounted the stale tmpfs {target}");
        }
    }
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes on `path` (created if missing).
    pub fn mount(path: &Path, size: u64) -> anyhow::Result<Self> {
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
