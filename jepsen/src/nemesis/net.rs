//! Network partitions between nodes on one machine: every node runs in a
//! cgroup v2 of its own, and an nftables table drops the packets a node's
//! sockets send to another node's ports (`socket cgroupv2` match in the
//! output hook, which loopback traffic passes). The test process stays in
//! its own cgroup, so clients keep reaching every node: exactly "isolated
//! from its peers but not from clients".
//!
//! Dropping what A sends to B's ports and what B sends to A's ports cuts
//! every connection between them both ways: requests never arrive, and
//! answers to requests sent before the cut are never acknowledged.
//!
//! Needs root, `nft`, and the cgroup2 hierarchy mounted at or under
//! `/sys/fs/cgroup`. [`Firewall`]'s `Drop` removes the table and the
//! cgroups.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};

pub use strom_integration_tests::tmpfs::is_root;

/// The ports of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Client port (clients and follower fetches).
    pub client: u16,
    /// Controller port (Raft, heartbeats, AlterPartition).
    pub controller: u16,
}

/// Which traffic a partition cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Everything between the groups.
    All,
    /// Only traffic to client ports: replication (follower fetches) and
    /// forwarded requests, while controller traffic flows.
    ClientPorts,
}

/// The cgroups and the nftables table of one run.
#[derive(Debug)]
pub struct Firewall {
    /// `<cgroup2 mount>/strom-jepsen-<pid>-<n>`.
    dir: PathBuf,
    /// The same, relative to `/sys/fs/cgroup`, as nft resolves it.
    nft_path: String,
    table: String,
    nodes: BTreeMap<i32, Ports>,
}

/// The cgroup2 mount point, from `/proc/self/mountinfo`.
fn cgroup2_mount() -> anyhow::Result<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
    for line in info.lines() {
        // "... <mount point> <options> - <fs type> <source> ..."
        let mut halves = line.split(" - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            continue;
        };
        if right.split_whitespace().next() == Some("cgroup2")
            && let Some(mount) = left.split_whitespace().nth(4)
        {
            return Ok(PathBuf::from(mount));
        }
    }
    bail!("no cgroup2 hierarchy is mounted")
}

/// Why partitions cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("network partitions need root (nftables and cgroups)".into());
    }
    // Listing tables, not just `--version`: it also needs the kernel's
    // nf_tables.
    match Command::new("nft").args(["list", "tables"]).output() {
        Err(_) => return Some("network partitions need nft (apt-get install nftables)".into()),
        Ok(o) if !o.status.success() => {
            return Some(format!(
                "network partitions need nftables, and `nft list tables` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(_) => {}
    }
    match cgroup2_mount() {
        Ok(m) if m.starts_with("/sys/fs/cgroup") => None,
        Ok(m) => Some(format!(
            "the cgroup2 hierarchy is mounted at {}, not under /sys/fs/cgroup where nft looks",
            m.display()
        )),
        Err(e) => Some(e.to_string()),
    }
}

fn nft(script: &str) -> anyhow::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run nft")?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .context("write nft script")?;
    let out = child.wait_with_output().context("wait for nft")?;
    if !out.status.success() {
        bail!(
            "nft failed: {}\nscript:\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Whether the process `pid` (from a table or cgroup name) is gone.
fn dead(pid: &str) -> bool {
    pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists()
}

/// Removes what runs of processes that no longer exist left behind (a run
/// killed by SIGKILL or a test timeout runs no `Drop`): their nftables
/// tables, their cgroups, and the `stromd` processes still in those cgroups.
/// Best effort; does nothing where partitions are unavailable.
pub fn sweep_stale() {
    if unavailable().is_some() {
        return;
    }
    if let Ok(out) = Command::new("nft").args(["list", "tables"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "table inet strom_jepsen_<pid>_<n>"
            let Some(name) = line.strip_prefix("table inet strom_jepsen_") else {
                continue;
            };
            if name.split('_').next().is_some_and(dead) {
                let _ = nft(&format!("delete table inet strom_jepsen_{name}\n"));
                eprintln!("jepsen: removed the stale nftables table strom_jepsen_{name}");
            }
        }
    }
    let Ok(mount) = cgroup2_mount() else { return };
    let Ok(entries) = std::fs::read_dir(&mount) else {
        return;
    };
    for dir in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(rest) = name.strip_prefix("strom-jepsen-") else {
            continue;
        };
        if !rest.split('-').next().is_some_and(dead) {
            continue;
        }
        let children: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|e| {
                e.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        for child in &children {
            // Kills the nodes a dead run leaked.
            let _ = std::fs::write(child.join("cgroup.kill"), "1");
        }
        for child in &children {
            for _ in 0..50 {
                if std::fs::remove_dir(child).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        if std::fs::remove_dir(&dir).is_ok() {
            eprintln!("jepsen: removed the stale cgroup {}", dir.display());
        }
    }
}

impl Firewall {
    /// Creates a cgroup per node (`<dir>/node-<id>`) and an empty table.
    pub fn new(nodes: BTreeMap<i32, Ports>) -> anyhow::Result<Self> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let mount = cgroup2_mount()?;
        let name = format!(
            "strom-jepsen-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = mount.join(&name);
        let rel = mount
            .strip_prefix("/sys/fs/cgroup")
            .context("cgroup2 mount under /sys/fs/cgroup")?;
        let nft_path = if rel.as_os_str().is_empty() {
            name.clone()
        } else {
            format!("{}/{name}", rel.display())
        };
        let table = name.replace('-', "_");
        let fw = Self {
            dir,
            nft_path,
            table,
            nodes,
        };
        for id in fw.nodes.keys() {
            let d = fw.dir.join(format!("node-{id}"));
            std::fs::create_dir_all(&d)
                .with_context(|| format!("create cgroup {}", d.display()))?;
        }
        nft(&format!(
            "add table inet {t}\nadd chain inet {t} out {{ type filter hook output priority 0; policy accept; }}\n",
            t = fw.table
        ))?;
        Ok(fw)
    }

    /// The cgroup directory whose `node-<id>` children the nodes run in.
    pub fn cgroup_dir(&self) -> &Path {
        &self.dir
    }

    /// Adds rules: nodes in different `groups` cannot talk (`cut` says
    /// which traffic). Nodes in no group are unaffected; rules added
    /// before stay until [`heal`](Self::heal).
    pub fn partition(&self, groups: &[Vec<i32>], cut: Cut) -> anyhow::Result<String> {
        let mut script = String::new();
        let mut pairs = Vec::new();
        for (i, ga) in groups.iter().enumerate() {
            for (j, gb) in groups.iter().enumerate() {
                if i == j {
                    continue;
                }
                for a in ga {
                    for b in gb {
                        let ports = self.nodes[b];
                        let dports = match cut {
                            Cut::All => format!("{{ {}, {} }}", ports.client, ports.controller),
                            Cut::ClientPorts => ports.client.to_string(),
                        };
                        script.push_str(&format!(
                            "add rule inet {} out socket cgroupv2 level 2 \"{}/node-{a}\" tcp dport {dports} drop\n",
                            self.table, self.nft_path
                        ));
                        pairs.push(format!("{a}->{b}"));
                    }
                }
            }
        }
        nft(&script)?;
        Ok(format!("dropping {cut:?} traffic {}", pairs.join(" ")))
    }

    /// Removes every rule.
    pub fn heal(&self) -> anyhow::Result<()> {
        nft(&format!("flush chain inet {} out\n", self.table))
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        if let Err(e) = nft(&format!("delete table inet {}\n", self.table)) {
            eprintln!("jepsen: removing nftables table {}: {e}", self.table);
        }
        // The nodes are gone by now, but the kernel frees a cgroup a
        // moment after its last process.
        for id in self.nodes.keys() {
            let d = self.dir.join(format!("node-{id}"));
            for _ in 0..50 {
                if std::fs::remove_dir(&d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            eprintln!("jepsen: removing cgroup {}: {e}", self.dir.display());
        }
    }
}
