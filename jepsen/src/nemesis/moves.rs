//! The nemeses that move data while the workload runs (issue #20):
//! reassignments of random partitions (KIP-455), their copies throttled as
//! an operator throttles them (`strom reassign execute --throttle`, which
//! sets Kafka's replication throttle configs), and skews that the built-in
//! balancer (`balancer.mode=continuous`, turned on by the runner with the
//! `balance` fault) then undoes with moves of its own.
//!
//! A throttle stays in force until the next heal, which removes it (what
//! `strom reassign verify` does once a plan completes); moves complete on
//! their own, so there is nothing else to heal.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use strom_client::{
    Admin, AlterConfigOp, ClientConfig, ConfigResource, ElectionType, TopicPartition,
};
use strom_integration_tests::binary;

use super::{Nemesis, storage};
use crate::env::Env;
use crate::runner::REPLICATION_FACTOR;

/// The settings `strom reassign execute --throttle` sets, which a heal
/// removes: the broker rates and the topic's throttled replica lists.
const BROKER_THROTTLES: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];
const TOPIC_THROTTLES: [&str; 2] = [
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// The lowest throttle the nemesis sets, bytes/s: above what the workload
/// writes to one partition at its default pace, so a throttled copy still
/// catches up.
const MIN_THROTTLE: u64 = 64 << 10;

/// The bytes of `topic`-`p`'s segments on `data_dir`.
fn log_bytes(data_dir: &Path, topic: &str, p: i32) -> u64 {
    storage::segments(data_dir, topic, p)
        .iter()
        .filter_map(|s| std::fs::metadata(s).ok())
        .map(|m| m.len())
        .sum()
}

impl Nemesis {
    /// An admin client on the cluster (nodes are dialled on first use).
    async fn admin(&mut self, env: &Env) -> anyhow::Result<&Admin> {
        if self.admin.is_none() {
            let config = ClientConfig {
                bootstrap_servers: strom_client::parse_bootstrap_servers(
                    &env.cluster().bootstrap(),
                )
                .context("bootstrap addresses")?,
                ..Default::default()
            }
            .with_request_timeout(Duration::from_secs(5));
            self.admin = Some(Admin::connect(config).await.context("admin client")?);
        }
        Ok(self.admin.as_ref().expect("connected above"))
    }

    /// A throttle for copying `topic`-`p`: its largest log on any node
    /// copied in 2–6 s, at least [`MIN_THROTTLE`].
    fn throttle_for(&self, env: &Env, p: i32, rng: &mut StdRng) -> u64 {
        let bytes = env
            .cluster()
            .nodes
            .values()
            .map(|n| log_bytes(&n.data_dir, &self.topic, p))
            .max()
            .unwrap_or(0);
        (bytes / rng.gen_range(2..=6)).max(MIN_THROTTLE)
    }

    /// Reassigns `topic`-`p`: with fewer replicas than
    /// [`REPLICATION_FACTOR`] (an earlier drop not added back), a node is
    /// added back (its replica copies the whole log); otherwise the
    /// replicas are reordered (a new preferred leader), or, on a node
    /// that is not a replica yet when there is one, one replica moves
    /// there (copying the whole log), or one replica is dropped (its log
    /// deleted) and, once the drop is done, added back as a new replica
    /// that copies the whole log again. Every copy is throttled. The
    /// replication factor ends where it was, as the recovery check
    /// expects.
    pub(super) async fn reassign(
        &mut self,
        env: &mut Env,
        p: i32,
        rng: &mut StdRng,
    ) -> anyhow::Result<String> {
        let t = self.topic.clone();
        let current = self.replicas_of(env, p).await?;
        let nodes = env.node_ids();
        let missing: Vec<i32> = nodes
            .iter()
            .copied()
            .filter(|n| !current.contains(n))
            .collect();
        if let Some(add) = missing.choose(rng) {
            let mut target = current.clone();
            if current.len() < REPLICATION_FACTOR {
                target.push(*add);
            } else if rng.gen_bool(0.5) {
                let slot = rng.gen_range(0..target.len());
                target[slot] = *add;
            } else {
                target.clear();
            }
            if !target.is_empty() {
                let rate = self.throttle_for(env, p, rng);
                self.alter_throttled(env, p, &target, rate).await?;
                return Ok(format!(
                    "reassigned {t}-{p} from {current:?} to {target:?}, throttled to {rate} B/s"
                ));
            }
        }
        if current.len() < 2 || rng.gen_bool(0.3) {
            let mut target = current.clone();
            target.shuffle(rng);
            self.alter(env, p, &target).await?;
            return Ok(format!("reordered {t}-{p} from {current:?} to {target:?}"));
        }
        let dropped = current[rng.gen_range(0..current.len())];
        let fewer: Vec<i32> = current.iter().copied().filter(|r| *r != dropped).collect();
        self.alter(env, p, &fewer).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.replicas_of(env, p).await.ok().as_deref() != Some(&fewer[..]) {
            if Instant::now() > deadline {
                anyhow::bail!(
                    "reassigned {t}-{p} to {fewer:?}, which did not complete within 10 s"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut back = fewer.clone();
        back.insert(rng.gen_range(0..=back.len()), dropped);
        let rate = self.throttle_for(env, p, rng);
        self.alter_throttled(env, p, &back, rate).await?;
        Ok(format!(
            "reassigned {t}-{p} from {current:?} to {fewer:?} (node {dropped} deleted its replica), then to {back:?}, throttled to {rate} B/s"
        ))
    }

    /// Gives the balancer work: with more nodes than replicas, half the
    /// time every replica of one node moves to the others (throttled), so
    /// the balancer's replicas-per-broker goal moves replicas back onto
    /// it; otherwise one node is made the leader of every partition it is
    /// in sync for (its replicas reordered first, then a preferred
    /// election), so its leaders-per-broker goal moves leaderships away.
    pub(super) async fn unbalance(
        &mut self,
        env: &mut Env,
        rng: &mut StdRng,
    ) -> anyhow::Result<String> {
        let mut running = Vec::new();
        for id in env.node_ids() {
            if env.is_running(id) {
                running.push(id);
            }
        }
        let Some(node) = running.choose(rng).copied() else {
            anyhow::bail!("no node runs");
        };
        if env.node_ids().len() > REPLICATION_FACTOR && rng.gen_bool(0.5) {
            self.empty_node(env, node, &running, rng).await
        } else {
            self.skew_leaders(env, node).await
        }
    }

    /// Every partition `node` is a replica of moves that replica to a
    /// running node that is not one yet, throttled.
    async fn empty_node(
        &mut self,
        env: &mut Env,
        node: i32,
        running: &[i32],
        rng: &mut StdRng,
    ) -> anyhow::Result<String> {
        let t = self.topic.clone();
        let mut moved = Vec::new();
        for p in 0..self.partitions {
            let current = self.replicas_of(env, p).await?;
            let Some(slot) = current.iter().position(|r| *r == node) else {
                continue;
            };
            let free: Vec<i32> = running
                .iter()
                .copied()
                .filter(|n| !current.contains(n))
                .collect();
            let Some(to) = free.choose(rng).copied() else {
                continue;
            };
            let mut target = current.clone();
            target[slot] = to;
            let rate = self.throttle_for(env, p, rng);
            match self.alter_throttled(env, p, &target, rate).await {
                Ok(()) => moved.push(format!("{t}-{p} {current:?} -> {target:?} at {rate} B/s")),
                Err(e) => moved.push(format!("{t}-{p} not moved: {e:#}")),
            }
        }
        anyhow::ensure!(!moved.is_empty(), "node {node} holds no replica to move");
        Ok(format!(
            "emptied node {node} for the balancer to fill again: {}",
            moved.join("; ")
        ))
    }

    /// Makes `node` the preferred leader of every partition it is in sync
    /// for and elects it.
    async fn skew_leaders(&mut self, env: &mut Env, node: i32) -> anyhow::Result<String> {
        let t = self.topic.clone();
        let mut skewed = Vec::new();
        for p in 0..self.partitions {
            let Some((leader, _, isr)) = env.partition_state(&t, p).await else {
                continue;
            };
            if leader == node || !isr.contains(&node) {
                continue;
            }
            let mut target = self.replicas_of(env, p).await?;
            target.retain(|r| *r != node);
            target.insert(0, node);
            if self.alter(env, p, &target).await.is_ok() {
                skewed.push(TopicPartition::new(t.clone(), p));
            }
        }
        anyhow::ensure!(
            !skewed.is_empty(),
            "node {node} is in sync for no partition it does not lead"
        );
        let results = self
            .admin(env)
            .await?
            .elect_leaders(ElectionType::Preferred, Some(skewed))
            .await
            .context("preferred election")?;
        let outcome: Vec<String> = results
            .iter()
            .map(|r| match r.error {
                None => format!("{}: elected", r.partition),
                Some(e) => format!("{}: {}", r.partition, e.as_str_name()),
            })
            .collect();
        Ok(format!(
            "skewed leaders onto node {node} for the balancer to even out: {}",
            outcome.join(", ")
        ))
    }

    /// The replicas of `topic`-`p` as the first node that answers knows them.
    pub(super) async fn replicas_of(&self, env: &mut Env, p: i32) -> anyhow::Result<Vec<i32>> {
        let t = self.topic.as_str();
        for id in env.node_ids() {
            if !env.is_running(id) {
                continue;
            }
            if let Ok(meta) = env.cluster().metadata(id, &[t]).await
                && let Some(part) = meta
                    .topics
                    .iter()
                    .flat_map(|x| x.partitions.iter())
                    .find(|x| x.partition == p)
            {
                return Ok(part.replicas.clone());
            }
        }
        anyhow::bail!("no node knows {t}-{p}")
    }

    /// Sends the reassignment of `topic`-`p` to `target` through the first
    /// node that takes it.
    async fn alter(&self, env: &mut Env, p: i32, target: &[i32]) -> anyhow::Result<()> {
        use strom_proto::v1::{
            AlterPartitionReassignmentsRequest, ReassignablePartition, TargetReplicas,
        };
        let mut last = String::new();
        for id in env.node_ids() {
            if !env.is_running(id) {
                continue;
            }
            let request = AlterPartitionReassignmentsRequest {
                partitions: vec![ReassignablePartition {
                    topic: self.topic.clone(),
                    partition: p,
                    replicas: Some(TargetReplicas {
                        ids: target.to_vec(),
                    }),
                }],
            };
            let mut c = env.cluster().controller_client(id);
            match tokio::time::timeout(
                Duration::from_secs(5),
                c.alter_partition_reassignments(request),
            )
            .await
            {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(s)) => last = format!("node {id}: {}", s.message()),
                Err(_) => last = format!("node {id} did not answer within 5 s"),
            }
        }
        anyhow::bail!(
            "no node took the reassignment of {}-{p} to {target:?}: {last}",
            self.topic
        )
    }

    /// Starts the reassignment of `topic`-`p` to `target` as an operator
    /// does, with `strom reassign execute --throttle rate` (which sets the
    /// throttle configs before starting the move).
    async fn alter_throttled(
        &mut self,
        env: &mut Env,
        p: i32,
        target: &[i32],
        rate: u64,
    ) -> anyhow::Result<()> {
        let plan = serde_json::json!({
            "version": 1,
            "partitions": [{"topic": self.topic, "partition": p, "replicas": target}],
        });
        let file =
            std::env::temp_dir().join(format!("strom-jepsen-{}-plan-{p}.json", std::process::id()));
        std::fs::write(&file, plan.to_string())
            .with_context(|| format!("write {}", file.display()))?;
        let mut bootstrap = Vec::new();
        for id in env.node_ids() {
            if env.is_running(id) {
                bootstrap.push(env.cluster().node(id).client_addr());
            }
        }
        // The throttle is in force from the first config it sets.
        self.throttled = true;
        let out = tokio::process::Command::new(binary("strom", "STROM_BIN"))
            .args(["--bootstrap-server", &bootstrap.join(",")])
            .args(["--timeout-ms", "10000", "reassign", "execute"])
            .arg("--reassignment-json-file")
            .arg(&file)
            .args(["--throttle", &rate.to_string()])
            .kill_on_drop(true)
            .output()
            .await
            .context("run strom reassign execute");
        let _ = std::fs::remove_file(&file);
        let out = out?;
        anyhow::ensure!(
            out.status.success(),
            "strom reassign execute --throttle {rate} of {}-{p} to {target:?}: {}",
            self.topic,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// Removes the throttles the moves set, as `strom reassign verify` does
    /// once a plan completes (moves still copying go on unthrottled).
    /// What it did, or nothing when no throttle was set since the last
    /// time.
    pub(super) async fn clear_throttles(&mut self, env: &Env) -> anyhow::Result<Option<String>> {
        if !self.throttled {
            return Ok(None);
        }
        let topic = self.topic.clone();
        let admin = self.admin(env).await?;
        let mut resources = vec![(ConfigResource::Topic(topic), TOPIC_THROTTLES.to_vec())];
        for id in env.node_ids() {
            resources.push((ConfigResource::Broker(id), BROKER_THROTTLES.to_vec()));
        }
        for (resource, keys) in resources {
            let ops = keys.into_iter().map(AlterConfigOp::delete).collect();
            admin
                .incremental_alter_configs(&resource, ops, false)
                .await
                .with_context(|| format!("remove the throttles of {resource}"))?;
        }
        self.throttled = false;
        Ok(Some("removed the replication throttles".into()))
    }

    /// Whether any reassignment is in progress, as the controller says.
    pub(super) async fn reassigning(&mut self, env: &Env) -> anyhow::Result<bool> {
        let moving = self
            .admin(env)
            .await?
            .list_partition_reassignments(None)
            .await
            .context("list reassignments")?;
        Ok(!moving.is_empty())
    }
}
