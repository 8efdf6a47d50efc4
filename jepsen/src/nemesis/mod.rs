//! The nemesis: faults injected into the running cluster one at a time,
//! each recorded in the history (`invoke` when chosen, `ok` once in place,
//! `info` if it could not be applied), and the heal that undoes all of them.
//!
//! * [`Fault`] — the faults and their names for `--faults`.
//! * `net` — network partitions (cgroups + nftables).
//! * `storage` — truncated or bit-flipped segment files.
//! * `moves` — throttled reassignments and the skews the balancer undoes.

mod moves;
pub mod net;
pub mod storage;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use self::net::Cut;
use crate::env::Env;
use crate::history::{Body, HEAL, OpType, Recorder};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// kill -9 the leader of a random partition (the next one chases the
    /// new leader); healed by restarting it.
    KillLeader,
    /// kill -9 the active controller.
    KillController,
    /// kill -9 the coordinator of the group workload's group or of a
    /// transactional producer's id: the leader of its `__consumer_offsets`
    /// or `__transaction_state` partition.
    KillCoordinator,
    /// kill -9 every node at once (a whole-cluster crash that keeps the
    /// page cache, as a process crash does).
    KillAll,
    /// SIGSTOP a partition leader for longer than the broker session
    /// timeout (a zombie leader); healed by SIGCONT.
    PauseLeader,
    /// SIGSTOP the active controller past the Raft election timeout and
    /// the broker session timeout; healed by SIGCONT.
    PauseController,
    /// Cut a partition leader off from every other node (all ports); clients
    /// still reach it.
    PartitionLeader,
    /// Cut only replication between a partition leader and the other nodes
    /// (client ports), while controller traffic flows.
    PartitionLeaderData,
    /// Split the controller quorum: the active controller (and with five
    /// nodes one more) in a minority.
    PartitionQuorum,
    /// A bridge: two groups that cannot talk to each other, both talking to
    /// one node in between (Jepsen's `bridge`).
    PartitionBridge,
    /// kill -9 a partition leader, then its successor the moment it is
    /// elected, before a fetch round trip (KIP-279). Needs five nodes.
    B2bFailover,
    /// kill -9 a node (a partition leader) and cut each of its segments
    /// back to somewhere between what it fsynced and its length: what a
    /// power cut does to writes still in the page cache.
    PowerCut,
    /// A power cut of every node at once.
    PowerCutAll,
    /// Power cuts of every node one after another, a fraction of a second
    /// apart, while the rest serve (the seed notes' 场景二: the leader
    /// fails, its successor fails before its page cache is written back).
    PowerCutRolling,
    /// kill -9 a follower and flip one byte of its active segment of the
    /// partition it follows.
    Bitflip,
    /// Fill the disk (a tmpfs) of one node.
    DiskFull,
    /// Reassign a random partition (KIP-455): drop one replica, or add back
    /// a missing one (which copies the whole log, throttled as
    /// `strom reassign execute --throttle` does), or reorder the replicas
    /// (a new preferred leader); the move completes on its own; the heal
    /// removes the throttle.
    Reassign,
    /// Give the built-in balancer (`balancer.mode=continuous`, on in runs
    /// with this fault) work: skew the leaders onto one node, or (with more
    /// nodes than replicas) move every replica off one node, throttled; the
    /// balancer's own moves undo it, so there is nothing to heal.
    Balance,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 18] = [
        Fault::KillLeader,
        Fault::KillController,
        Fault::KillCoordinator,
        Fault::KillAll,
        Fault::PauseLeader,
        Fault::PauseController,
        Fault::PartitionLeader,
        Fault::PartitionLeaderData,
        Fault::PartitionQuorum,
        Fault::PartitionBridge,
        Fault::B2bFailover,
        Fault::PowerCut,
        Fault::PowerCutAll,
        Fault::PowerCutRolling,
        Fault::Bitflip,
        Fault::DiskFull,
        Fault::Reassign,
        Fault::Balance,
    ];

    /// The name `--faults` takes.
    pub fn name(self) -> &'static str {
        match self {
            Fault::KillLeader => "kill-leader",
            Fault::KillController => "kill-controller",
            Fault::KillAll => "kill-all",
            Fault::KillCoordinator => "kill-coordinator",
            Fault::PauseController => "pause-controller",
            Fault::PartitionBridge => "partition-bridge",
            Fault::PauseLeader => "pause-leader",
            Fault::PartitionLeader => "partition-leader",
            Fault::PartitionLeaderData => "partition-leader-data",
            Fault::PartitionQuorum => "partition-quorum",
            Fault::B2bFailover => "b2b-failover",
            Fault::PowerCut => "power-cut",
            Fault::PowerCutAll => "power-cut-all",
            Fault::PowerCutRolling => "power-cut-rolling",
            Fault::Bitflip => "bitflip",
            Fault::DiskFull => "disk-full",
            Fault::Reassign => "reassign",
            Fault::Balance => "balance",
        }
    }

    /// Whether it needs the firewall (root, nft, cgroup2).
    pub fn needs_firewall(self) -> bool {
        matches!(
            self,
            Fault::PartitionLeader
                | Fault::PartitionLeaderData
                | Fault::PartitionQuorum
                | Fault::PartitionBridge
        )
    }

    /// Whether it may cost a node its unreplicated data, or restarts every
    /// node: at most one such fault is in place at a time. The promise
    /// covers the loss of one replica's data; a node that lost its tail
    /// and then registers last after a whole-cluster crash is left as the
    /// only ISR member (the ISR never shrinks to nothing) and may lead
    /// with less than was acknowledged — two failures, beyond the promise.
    pub fn destructive(self) -> bool {
        matches!(
            self,
            Fault::PowerCut
                | Fault::PowerCutAll
                | Fault::PowerCutRolling
                | Fault::Bitflip
                | Fault::KillAll
        )
    }

    /// Whether it can lose acknowledged writes of a topic with
    /// `write.caching=true` (the default) by design: every replica loses
    /// its page cache. Only `write.caching=false` topics promise to
    /// survive it.
    pub fn needs_durable_topic(self) -> bool {
        matches!(self, Fault::PowerCutAll | Fault::PowerCutRolling)
    }

    /// The fewest nodes it works with.
    pub fn min_nodes(self) -> i32 {
        if self == Fault::B2bFailover { 5 } else { 3 }
    }

    /// Parses a comma-separated list of names; `all` is every fault, `none`
    /// or an empty list none.
    pub fn parse_list(list: &str) -> Result<Vec<Fault>, String> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "all" => out.extend(Fault::ALL),
                "none" => {}
                n => out.push(n.parse()?),
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Names joined by commas, as `--faults` takes them.
    pub fn list_names(faults: &[Fault]) -> String {
        if faults.is_empty() {
            return "none".into();
        }
        faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown fault '{s}': expected all, none or a list of {}",
                    Fault::list_names(&Fault::ALL)
                )
            })
    }
}

/// The internal topics whose partition leaders coordinate groups and
/// transactions, and their partition count (the brokers' default
/// `offsets.topic.num.partitions` and
/// `transaction.state.log.num.partitions`).
const GROUP_OFFSETS_TOPIC: &str = "__consumer_offsets";
const TXN_STATE_TOPIC: &str = "__transaction_state";
const COORDINATOR_PARTITIONS: i32 = 50;

/// Injects faults and heals them, recording both.
#[derive(Debug)]
pub struct Nemesis {
    recorder: Arc<Recorder>,
    topic: String,
    partitions: i32,
    /// Nodes that exited on their own, found when healing.
    pub crashed: Vec<i32>,
    /// Admin client of the moves (connected on first use).
    admin: Option<strom_client::Admin>,
    /// A move set replication throttles that no heal has removed yet.
    throttled: bool,
}

impl Nemesis {
    /// A nemesis acting on `topic`.
    pub fn new(recorder: Arc<Recorder>, topic: &str, partitions: i32) -> Self {
        Self {
            recorder,
            topic: topic.to_owned(),
            partitions,
            crashed: Vec::new(),
            admin: None,
            throttled: false,
        }
    }

    fn record(&self, ty: OpType, fault: &str, detail: String) {
        self.recorder.record(
            "nemesis",
            ty,
            Body::Nemesis {
                fault: fault.to_owned(),
                detail,
            },
        );
    }

    /// Injects `fault`, recording it.
    pub async fn inject(&mut self, env: &mut Env, fault: Fault, rng: &mut StdRng) {
        self.record(OpType::Invoke, fault.name(), String::new());
        match self.apply(env, fault, rng).await {
            Ok(detail) => self.record(OpType::Ok, fault.name(), detail),
            Err(e) => self.record(OpType::Info, fault.name(), format!("not applied: {e:#}")),
        }
    }

    /// Heals every fault, recording it.
    pub async fn heal(&mut self, env: &mut Env) {
        self.record(OpType::Invoke, HEAL, String::new());
        match env.heal() {
            Ok((mut done, crashed)) => {
                // A throttle left in place slows only replicas being added
                // (never the ISR), so the heal stands either way.
                // Bounded: nodes the heal started may not serve yet.
                match tokio::time::timeout(Duration::from_secs(8), self.clear_throttles(env)).await
                {
                    Ok(Ok(Some(cleared))) => done.push(cleared),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => done.push(format!("the replication throttles stay: {e:#}")),
                    Err(_) => {
                        done.push("the replication throttles stay: no answer within 8 s".into())
                    }
                }
                let mut detail = done.join("; ");
                if !crashed.is_empty() {
                    detail.push_str(&format!("; nodes {crashed:?} had exited on their own"));
                }
                self.crashed.extend(crashed);
                self.record(OpType::Ok, HEAL, detail);
            }
            Err(e) => self.record(OpType::Info, HEAL, format!("{e:#}")),
        }
    }

    /// Waits until no reassignment has been in progress for a second and a
    /// half (the balancer starts a pending move within one), or `timeout`
    /// passes: `Err` saying what still moves. After the final heal every
    /// move must finish, the nemesis' own and the balancer's.
    pub async fn wait_moves_done(&mut self, env: &Env, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut idle_since: Option<Instant> = None;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.reassigning(env).await {
                Ok(false) => {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= Duration::from_millis(1500) {
                        return Ok(());
                    }
                }
                Ok(true) => {
                    idle_since = None;
                    last = "reassignments in progress".into();
                }
                Err(e) => {
                    idle_since = None;
                    last = format!("{e:#}");
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!(
            "moves did not finish within {timeout:?} of healing: {last}"
        ))
    }

    async fn leader_of(&self, env: &Env, p: i32) -> anyhow::Result<(i32, i32, Vec<i32>)> {
        match env.partition_state(&self.topic, p).await {
            Some(s) if s.0 >= 0 => Ok(s),
            s => anyhow::bail!("{}-{p} has no leader ({s:?})", self.topic),
        }
    }

    /// kill -9 `node`, then drop the unsynced part of its segments.
    fn power_cut(&self, env: &mut Env, node: i32, rng: &mut StdRng) -> anyhow::Result<String> {
        env.kill(node)?;
        self.cut_node(env, node, rng)
    }

    /// Drops the unsynced part of every segment of the topic on stopped
    /// `node`: all of it or a random part (the kernel wrote some back),
    /// chosen once per node.
    fn cut_node(&self, env: &Env, node: i32, rng: &mut StdRng) -> anyhow::Result<String> {
        let Some(journal) = env.sync_journal() else {
            anyhow::bail!("the nodes record no sync journal: a power cut needs one");
        };
        let synced = storage::synced_lengths(journal)?;
        let dir = env.cluster().node(node).data_dir.clone();
        let cut = if rng.gen_bool(0.5) {
            storage::Cut::All
        } else {
            storage::Cut::Some
        };
        let mut cuts = Vec::new();
        for q in 0..self.partitions {
            for seg in storage::segments(&dir, &self.topic, q) {
                if let Some((old, new)) = storage::cut_unsynced(&seg, &synced, cut, rng)? {
                    cuts.push(format!(
                        "{}-{q} {} {old} -> {new} bytes",
                        self.topic,
                        seg.file_name().unwrap_or_default().to_string_lossy()
                    ));
                }
            }
        }
        Ok(format!(
            "node {node} lost {} of its unsynced page cache: {}",
            if cut == storage::Cut::All {
                "all"
            } else {
                "part"
            },
            if cuts.is_empty() {
                "nothing unsynced".to_owned()
            } else {
                cuts.join(", ")
            }
        ))
    }

    async fn apply(
        &mut self,
        env: &mut Env,
        fault: Fault,
        rng: &mut StdRng,
    ) -> anyhow::Result<String> {
        let p = rng.gen_range(0..self.partitions);
        let t = &self.topic;
        match fault {
            Fault::KillLeader => {
                let (l, e, _) = self.leader_of(env, p).await?;
                env.kill(l)?;
                Ok(format!("killed node {l}, leader of {t}-{p} at epoch {e}"))
            }
            Fault::KillController => {
                let Some(c) = env.cluster().controller_leader().await else {
                    anyhow::bail!("no active controller");
                };
                env.kill(c)?;
                Ok(format!("killed node {c}, the active controller"))
            }
            Fault::KillCoordinator => {
                // The group's, one of the first two transactional ids', the
                // processors' group's or the first processor's id, starting
                // at a random one: the first whose internal topic exists (a
                // run may have only one of the workloads).
                let ids = [
                    (
                        GROUP_OFFSETS_TOPIC,
                        crate::workload::group::GROUP_ID.to_owned(),
                    ),
                    (TXN_STATE_TOPIC, "jepsen-t0".to_owned()),
                    (TXN_STATE_TOPIC, "jepsen-t1".to_owned()),
                    (
                        GROUP_OFFSETS_TOPIC,
                        crate::workload::ctp::CTP_GROUP.to_owned(),
                    ),
                    (TXN_STATE_TOPIC, "jepsen-x0".to_owned()),
                ];
                let first = rng.gen_range(0..ids.len());
                let mut why = Vec::new();
                for k in 0..ids.len() {
                    let (topic, id) = &ids[(first + k) % ids.len()];
                    let q = strom_group::offsets_partition_for(id, COORDINATOR_PARTITIONS);
                    match env.partition_state(topic, q).await {
                        Some((l, e, _)) if l >= 0 => {
                            env.kill(l)?;
                            return Ok(format!(
                                "killed node {l}, coordinator of {id} (leader of {topic}-{q} at \
                                 epoch {e})"
                            ));
                        }
                        s => why.push(format!("{topic}-{q} ({id}): {s:?}")),
                    }
                }
                anyhow::bail!("no coordinator has a leader: {}", why.join(", "))
            }
            Fault::KillAll => {
                let mut killed = Vec::new();
                for id in env.node_ids() {
                    if env.kill(id).is_ok() {
                        killed.push(id);
                    }
                }
                anyhow::ensure!(!killed.is_empty(), "no node runs");
                Ok(format!("killed nodes {killed:?}"))
            }
            Fault::PauseController => {
                let Some(c) = env.cluster().controller_leader().await else {
                    anyhow::bail!("no active controller");
                };
                env.pause(c)?;
                Ok(format!("paused node {c}, the active controller"))
            }
            Fault::PartitionBridge => {
                let mut ids = env.node_ids();
                ids.shuffle(rng);
                let bridge = ids.pop().expect("three nodes or more");
                let (a, b) = ids.split_at(ids.len() / 2);
                let rules = env.partition(&[a.to_vec(), b.to_vec()], Cut::All)?;
                Ok(format!(
                    "{a:?} and {b:?} cut apart, both reaching node {bridge}: {rules}"
                ))
            }
            Fault::PauseLeader => {
                let (l, e, _) = self.leader_of(env, p).await?;
                env.pause(l)?;
                Ok(format!("paused node {l}, leader of {t}-{p} at epoch {e}"))
            }
            Fault::PartitionLeader | Fault::PartitionLeaderData => {
                let (l, e, _) = self.leader_of(env, p).await?;
                let others: Vec<i32> = env.node_ids().into_iter().filter(|n| *n != l).collect();
                let cut = if fault == Fault::PartitionLeader {
                    Cut::All
                } else {
                    Cut::ClientPorts
                };
                let rules = env.partition(&[vec![l], others], cut)?;
                Ok(format!(
                    "isolated node {l}, leader of {t}-{p} at epoch {e}: {rules}"
                ))
            }
            Fault::PartitionQuorum => {
                let Some(c) = env.cluster().controller_leader().await else {
                    anyhow::bail!("no active controller");
                };
                let mut others: Vec<i32> = env.node_ids().into_iter().filter(|n| *n != c).collect();
                others.shuffle(rng);
                let mut minority = vec![c];
                let minority_size = (env.node_ids().len() - 1) / 2;
                minority.extend(others.drain(..minority_size - 1));
                let rules = env.partition(&[minority.clone(), others.clone()], Cut::All)?;
                Ok(format!(
                    "minority {minority:?} (with the active controller {c}) | majority {others:?}: {rules}"
                ))
            }
            Fault::B2bFailover => {
                if env.node_ids().len() < 5 {
                    anyhow::bail!("needs five nodes");
                }
                let (l1, e1, _) = self.leader_of(env, p).await?;
                env.kill(l1)?;
                let deadline = Instant::now() + Duration::from_secs(15);
                loop {
                    if let Some((l2, e2, _)) = env.partition_state(t, p).await
                        && l2 >= 0
                        && l2 != l1
                        && e2 > e1
                    {
                        env.kill(l2)?;
                        return Ok(format!(
                            "killed node {l1}, leader of {t}-{p} at epoch {e1}, then node {l2} as soon as it led at epoch {e2}"
                        ));
                    }
                    if Instant::now() > deadline {
                        anyhow::bail!("killed node {l1}; no new leader of {t}-{p} within 15 s");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Fault::PowerCut => {
                // A partition leader when there is one: its loss is the one
                // its followers could be made to follow.
                let node = match self.leader_of(env, p).await {
                    Ok((l, _, _)) => l,
                    Err(_) => {
                        let mut ids = Vec::new();
                        for id in env.node_ids() {
                            if env.is_running(id) {
                                ids.push(id);
                            }
                        }
                        let Some(node) = ids.choose(rng).copied() else {
                            anyhow::bail!("no node runs");
                        };
                        node
                    }
                };
                self.power_cut(env, node, rng)
            }
            Fault::Reassign => self.reassign(env, p, rng).await,
            Fault::Balance => self.unbalance(env, rng).await,
            Fault::PowerCutAll => {
                let mut cuts = Vec::new();
                for id in env.node_ids() {
                    if env.is_running(id) {
                        env.kill(id)?;
                    }
                }
                for id in env.node_ids() {
                    cuts.push(self.cut_node(env, id, rng)?);
                }
                Ok(format!("cut the power of every node: {}", cuts.join("; ")))
            }
            Fault::PowerCutRolling => {
                let mut ids = env.node_ids();
                ids.shuffle(rng);
                let mut cuts = Vec::new();
                for (i, id) in ids.into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1000))).await;
                    }
                    if env.is_running(id) {
                        cuts.push(self.power_cut(env, id, rng)?);
                    }
                }
                Ok(format!(
                    "cut the power of every node in turn: {}",
                    cuts.join("; ")
                ))
            }
            Fault::Bitflip => {
                let (l, _, isr) = self.leader_of(env, p).await?;
                let followers: Vec<i32> = isr.into_iter().filter(|r| *r != l).collect();
                let Some(f) = followers.choose(rng).copied() else {
                    anyhow::bail!("{t}-{p} has no follower in its ISR");
                };
                env.kill(f)?;
                let dir = env.cluster().node(f).data_dir.clone();
                let Some(seg) = storage::active_segment(&dir, t, p) else {
                    anyhow::bail!("killed node {f}; it has no segment of {t}-{p}");
                };
                match storage::flip_byte(&seg, rng)? {
                    Some((pos, old, new)) => Ok(format!(
                        "killed node {f}, follower of {t}-{p}, and flipped byte {pos} of {} from {old:#04x} to {new:#04x}",
                        seg.display()
                    )),
                    None => anyhow::bail!("killed node {f}; {} is empty", seg.display()),
                }
            }
            Fault::DiskFull => {
                let (node, bytes) = env.fill_disk()?;
                Ok(format!(
                    "filled the disk of node {node} ({} MiB written)",
                    bytes >> 20
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse_by_name() {
        let table: [(&str, Result<Vec<Fault>, ()>); 5] = [
            ("kill-leader", Ok(vec![Fault::KillLeader])),
            (
                "pause-leader, kill-leader,pause-leader",
                Ok(vec![Fault::KillLeader, Fault::PauseLeader]),
            ),
            ("all", Ok(Fault::ALL.to_vec())),
            ("none", Ok(vec![])),
            ("kill-everything", Err(())),
        ];
        for (input, expected) in table {
            assert_eq!(
                Fault::parse_list(input).map_err(|_| ()),
                expected,
                "{input}"
            );
        }
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>(), Ok(f));
        }
        assert_eq!(
            Fault::list_names(&[Fault::PowerCut, Fault::DiskFull]),
            "power-cut,disk-full"
        );
    }
}
