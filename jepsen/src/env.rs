//! [`Env`]: the cluster under test with everything the nemesis changes on
//! the machine (nftables rules and cgroups, a tmpfs), torn down in the
//! right order even when a run panics: nodes killed first, then the rules
//! and cgroups removed, then the tmpfs unmounted, then the data dirs
//! deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use strom_integration_tests::data::{Addrs, partition_state_any};
use strom_integration_tests::tmpfs::{self, Tmpfs};
use strom_integration_tests::{Cluster, ClusterOptions};

use crate::nemesis::net::{Cut, Firewall, Ports};

/// How the cluster is set up.
#[derive(Debug, Clone)]
pub struct EnvOptions {
    /// Number of nodes (each a controller and a broker).
    pub nodes: i32,
    /// `--set` settings of every node.
    pub settings: Vec<(String, String)>,
    /// Put every node in a cgroup and create an nftables table, so the
    /// nemesis can partition the network.
    pub firewall: bool,
    /// Put this node's data dir on a tmpfs of this many bytes.
    pub tmpfs: Option<(i32, u64)>,
    /// Preload syncwatch (`jepsen/syncwatch/`) into every node, recording
    /// the fsynced length of each segment file in this journal: the power
    /// cuts keep those bytes and drop any part of the rest.
    pub sync_journal: Option<std::path::PathBuf>,
}

/// The cluster under test and the machine state the nemesis controls.
#[derive(Debug)]
pub struct Env {
    cluster: Option<Cluster>,
    firewall: Option<Firewall>,
    tmpfs: Option<(i32, Tmpfs)>,
    /// Nodes the nemesis killed on purpose.
    killed: BTreeSet<i32>,
    /// Nodes the nemesis paused.
    paused: BTreeSet<i32>,
    /// Partition rules are in place.
    partitioned: bool,
    /// The tmpfs is filled.
    disk_filled: bool,
    /// See [`EnvOptions::sync_journal`].
    sync_journal: Option<std::path::PathBuf>,
}

impl Env {
    /// Lays out the cluster, prepares cgroups, rules and the tmpfs, then
    /// starts every node and waits until the cluster is ready.
    pub async fn start(options: &EnvOptions) -> anyhow::Result<Self> {
        crate::nemesis::net::sweep_stale();
        tmpfs::sweep_stale();
        let mut cluster_options = ClusterOptions::default();
        for (k, v) in &options.settings {
            cluster_options = cluster_options.set(k, v);
        }
        if let Some(journal) = &options.sync_journal {
            cluster_options = cluster_options
                .env("LD_PRELOAD", env!("STROM_SYNCWATCH_LIB"))
                .env("STROM_SYNC_JOURNAL", &journal.display().to_string());
        }
        // Ports are only known once the cluster is laid out; lay it out
        // once without cgroups to learn them, then set the cgroup.
        let mut cluster = Cluster::create(options.nodes, cluster_options);
        let mut env = Env {
            cluster: None,
            firewall: None,
            tmpfs: None,
            killed: BTreeSet::new(),
            paused: BTreeSet::new(),
            partitioned: false,
            disk_filled: false,
            sync_journal: options.sync_journal.clone(),
        };
        if options.firewall {
            let ports: BTreeMap<i32, Ports> = cluster
                .nodes
                .values()
                .map(|n| {
                    (
                        n.id,
                        Ports {
                            client: n.client_port,
                            controller: n.controller_port,
                        },
                    )
                })
                .collect();
            let fw = Firewall::new(ports)?;
            cluster.set_cgroup(fw.cgroup_dir());
            env.firewall = Some(fw);
        }
        if let Some((node, size)) = options.tmpfs {
            let dir = cluster.node(node).data_dir.clone();
            env.tmpfs = Some((node, Tmpfs::mount(&dir, size)?));
        }
        cluster.launch_all();
        env.cluster = Some(cluster);
        env.cluster_mut().wait_ready(Duration::from_secs(60)).await;
        Ok(env)
    }

    /// The journal of fsynced segment lengths, when the nodes record one.
    pub fn sync_journal(&self) -> Option<&std::path::Path> {
        self.sync_journal.as_deref()
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        self.cluster.as_ref().expect("cluster present until drop")
    }

    /// The cluster, mutably.
    pub fn cluster_mut(&mut self) -> &mut Cluster {
        self.cluster.as_mut().expect("cluster present until drop")
    }

    /// Client addresses of the nodes.
    pub fn addrs(&self) -> Addrs {
        Addrs::of(self.cluster())
    }

    /// Node ids.
    pub fn node_ids(&self) -> Vec<i32> {
        self.cluster().nodes.keys().copied().collect()
    }

    /// Cuts traffic between `groups` (added to any partition in place).
    pub fn partition(&mut self, groups: &[Vec<i32>], cut: Cut) -> anyhow::Result<String> {
        let fw = self
            .firewall
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no firewall was set up"))?;
        self.partitioned = true;
        fw.partition(groups, cut)
    }

    /// The node whose data dir is a tmpfs, when set up.
    pub fn tmpfs_node(&self) -> Option<i32> {
        self.tmpfs.as_ref().map(|(n, _)| *n)
    }

    /// Fills the tmpfs; returns the node and the bytes written.
    pub fn fill_disk(&mut self) -> anyhow::Result<(i32, u64)> {
        let (node, t) = self
            .tmpfs
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no node runs on a tmpfs"))?;
        self.disk_filled = true;
        Ok((*node, t.fill()?))
    }

    /// Whether node `id` runs.
    pub fn is_running(&mut self, id: i32) -> bool {
        self.cluster_mut().running().contains(&id)
    }

    /// kill -9 `id` (running or paused).
    pub fn kill(&mut self, id: i32) -> anyhow::Result<()> {
        anyhow::ensure!(self.is_running(id), "node {id} is not running");
        self.paused.remove(&id);
        self.cluster_mut().kill(id);
        self.killed.insert(id);
        Ok(())
    }

    /// SIGSTOP `id`.
    pub fn pause(&mut self, id: i32) -> anyhow::Result<()> {
        anyhow::ensure!(self.is_running(id), "node {id} is not running");
        anyhow::ensure!(!self.paused.contains(&id), "node {id} is paused already");
        self.cluster_mut().pause(id);
        self.paused.insert(id);
        Ok(())
    }

    /// `(leader, leader epoch, isr)` of a partition in the freshest image.
    pub async fn partition_state(&self, topic: &str, p: i32) -> Option<(i32, i32, Vec<i32>)> {
        partition_state_any(&self.addrs(), topic, p).await
    }

    /// Undoes every fault: resumes paused nodes, removes the rules, frees
    /// the disk, and starts every node that is not running. Returns what
    /// it did, and separately the nodes that had exited on their own.
    pub fn heal(&mut self) -> anyhow::Result<(Vec<String>, Vec<i32>)> {
        let mut done = Vec::new();
        for id in std::mem::take(&mut self.paused) {
            self.cluster_mut().resume(id);
            done.push(format!("resumed node {id}"));
        }
        if let Some(fw) = &self.firewall
            && std::mem::take(&mut self.partitioned)
        {
            fw.heal()?;
            done.push("removed the partitions".into());
        }
        if let Some((node, t)) = &self.tmpfs
            && std::mem::take(&mut self.disk_filled)
        {
            let node = *node;
            t.drain()?;
            done.push(format!("freed the disk of node {node}"));
            // A broker whose log directory failed keeps it offline (and
            // stays fenced) until it restarts, as in Kafka: the operator's
            // step after fixing the disk.
            if self.cluster_mut().running().contains(&node) {
                self.cluster_mut().restart(node);
                done.push(format!(
                    "restarted node {node} (its log directory may have gone offline)"
                ));
            }
        }
        let running: BTreeSet<i32> = self.cluster_mut().running().into_iter().collect();
        let mut crashed = Vec::new();
        for id in self.node_ids() {
            if running.contains(&id) {
                continue;
            }
            if !self.killed.contains(&id) {
                crashed.push(id);
            }
            self.cluster_mut().start_node(id);
            done.push(format!("started node {id}"));
        }
        self.killed.clear();
        Ok((done, crashed))
    }

    /// Starts again every node that exited on its own, as a supervisor
    /// would (only after a heal: nodes killed by a fault stay down until
    /// healed). Returns their ids.
    pub fn restart_exited(&mut self) -> Vec<i32> {
        let running: BTreeSet<i32> = self.cluster_mut().running().into_iter().collect();
        let mut exited = Vec::new();
        for id in self.node_ids() {
            if !running.contains(&id) && !self.killed.contains(&id) {
                self.cluster_mut().start_node(id);
                exited.push(id);
            }
        }
        exited
    }

    /// Stops every node (kill -9).
    pub fn stop_all(&mut self) {
        for id in self.node_ids() {
            self.cluster_mut().kill(id);
        }
        self.paused.clear();
    }

    /// Copies every node's log into `dir` as `node-<id>.log`.
    pub fn save_logs(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        for n in self.cluster().nodes.values() {
            let path = dir.join(format!("node-{}.log", n.id));
            std::fs::write(&path, n.logs()).with_context(|| format!("write {}", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(c) = &mut self.cluster {
            let ids: Vec<i32> = c.nodes.keys().copied().collect();
            for id in ids {
                c.kill(id);
            }
        }
        self.firewall.take();
        self.tmpfs.take();
        self.cluster.take();
    }
}
