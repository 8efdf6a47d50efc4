//! One run: start a cluster, create the topic, run the workload while the
//! nemesis injects faults for `duration`, heal, let the cluster recover,
//! read everything back, compare the replicas on disk, and check the
//! history. The run's directory keeps the history (`history.jsonl`), the
//! report (`report.txt`, `report.json`) and every node's log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use strom_integration_tests::data::{log_on_disk, wait_leader_serving};
use strom_integration_tests::wait_until;

use crate::checker::{self, CheckOptions, Report};
use crate::env::{Env, EnvOptions};
use crate::history::{Body, OpType, Polled, Recorder, decode_value};
use crate::nemesis::{Fault, Nemesis, net};
use crate::workload::{self, Context, Mix, Workload};

/// The topic the workload uses.
pub const TOPIC: &str = "jepsen";

/// The transactional workload's topic.
pub fn txn_topic() -> String {
    format!("{TOPIC}-txn")
}

/// Its replication factor (with `min.insync.replicas=2`).
pub const REPLICATION_FACTOR: usize = 3;

/// Broker session timeout of the cluster (ms); a paused leader is paused
/// longer than this.
const SESSION_TIMEOUT_MS: u64 = 3000;

/// Size of the tmpfs holding the data dir of the node whose disk fills.
const TMPFS_BYTES: u64 = 256 << 20;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Seed of every random choice (faults, their targets, partitions).
    /// Processes are real, so a seed replays the schedule, not the exact
    /// interleaving.
    pub seed: u64,
    /// How long faults are injected.
    pub duration: Duration,
    /// The faults to choose from; none runs the workload alone.
    pub faults: Vec<Fault>,
    /// Nodes (each controller and broker).
    pub nodes: i32,
    /// Partitions of the topic (RF=3, min.insync.replicas=2).
    pub partitions: i32,
    /// Client processes.
    pub mix: Mix,
    /// `acks` of every produce: -1 (all, the default and the promise
    /// under test) or 1 (a negative control the checker must fault).
    pub acks: i32,
    /// Group members commit beyond what they processed (a negative
    /// control the group checks must fault).
    pub broken_commits: bool,
    /// Faults in place at once, at most (each cycle injects between one
    /// and this many, at most one of them destructive).
    pub concurrency: usize,
    /// The topic's `write.caching`: `true` (the default) acknowledges
    /// acks=all writes from the ISR's page caches, `false` from their disks
    /// (the promise the all-node power cuts test).
    pub write_caching: bool,
    /// Pause between two operations of a process.
    pub pace: Duration,
    /// After the final heal, every partition must acknowledge a produce
    /// and deliver a fresh record within this.
    pub liveness_bound: Duration,
    /// The run's directory (created).
    pub dir: PathBuf,
}

impl RunConfig {
    /// The settings of the fast variant CI runs, for `faults`.
    pub fn fast(faults: Vec<Fault>, seed: u64, dir: PathBuf) -> Self {
        let nodes = faults.iter().map(|f| f.min_nodes()).max().unwrap_or(3);
        Self {
            seed,
            duration: Duration::from_secs(12),
            faults,
            nodes,
            partitions: 3,
            mix: Mix {
                client_producers: 2,
                raw_producers: 1,
                consumers: 2,
                group_members: 0,
                txn_producers: 0,
                txn_readers: 0,
                ctp_processors: 0,
            },
            acks: -1,
            broken_commits: false,
            concurrency: 1,
            write_caching: true,
            pace: Duration::from_millis(10),
            liveness_bound: Duration::from_secs(20),
            dir,
        }
    }

    /// The command line of the `jepsen` binary that runs this again.
    pub fn reproduce_command(&self) -> String {
        format!(
            "cargo build --bins && cargo run -p strom-jepsen --bin jepsen -- --seed {} --duration {} \
             --faults {} --nodes {} --partitions {} --client-producers {} --raw-producers {} \
             --consumers {} --acks {} --concurrency {} --pace-ms {} --liveness-bound {} \
             --write-caching {} --group-members {} --txn-producers {} --txn-readers {} \
             --ctp-processors {}{}",
            self.seed,
            self.duration.as_secs(),
            Fault::list_names(&self.faults),
            self.nodes,
            self.partitions,
            self.mix.client_producers,
            self.mix.raw_producers,
            self.mix.consumers,
            if self.acks == 1 { "1" } else { "all" },
            self.concurrency,
            self.pace.as_millis(),
            self.liveness_bound.as_secs(),
            self.write_caching,
            self.mix.group_members,
            self.mix.txn_producers,
            self.mix.txn_readers,
            self.mix.ctp_processors,
            if self.broken_commits {
                " --broken-commits"
            } else {
                ""
            }
        )
    }

    /// Why this cannot run on this machine, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        self.faults.iter().find_map(|f| unavailable(*f))
    }
}

/// Why `fault` cannot run on this machine, if it cannot: partitions need
/// root, nftables and cgroup2; a full disk needs root to mount a tmpfs.
pub fn unavailable(fault: Fault) -> Option<String> {
    if fault.needs_firewall() {
        return net::unavailable();
    }
    if fault == Fault::DiskFull && !net::is_root() {
        return Some("a full disk needs root to mount a tmpfs".into());
    }
    None
}

/// What a run found.
#[derive(Debug)]
pub struct RunOutcome {
    /// The checker's report.
    pub report: Report,
    /// Problems outside the history that fail the run (the final read
    /// could not finish, a node crashed).
    pub problems: Vec<String>,
    /// Observations that do not fail it.
    pub notes: Vec<String>,
    /// The run's directory.
    pub dir: PathBuf,
    /// The time from start to end.
    pub elapsed: Duration,
}

impl RunOutcome {
    /// Whether the run found nothing wrong.
    pub fn valid(&self) -> bool {
        self.report.valid() && self.problems.is_empty()
    }

    /// A human summary: verdict, report, problems, notes, and for a failed
    /// run its seed and how to reproduce it.
    pub fn summary(&self, config: &RunConfig) -> String {
        let mut s = format!(
            "jepsen run {} (seed {}, faults {}{}{}, {:.0} s) in {}\n{}",
            if self.valid() { "passed" } else { "FAILED" },
            config.seed,
            Fault::list_names(&config.faults),
            if config.acks == 1 { ", acks=1" } else { "" },
            if config.write_caching {
                ""
            } else {
                ", write.caching=false"
            },
            self.elapsed.as_secs_f64(),
            self.dir.display(),
            self.report
        );
        for p in &self.problems {
            s.push_str(&format!("problem: {p}\n"));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        if !self.valid() {
            s.push_str(&format!(
                "seed {}; history {}; reproduce with:\n  {}\n",
                config.seed,
                self.dir.join("history.jsonl").display(),
                config.reproduce_command()
            ));
        }
        s
    }
}

/// The cluster's settings: fast failure detection, as the replication
/// tests use; with the `balance` fault, the built-in balancer on
/// (`continuous`, every goal).
fn settings(faults: &[Fault]) -> Vec<(String, String)> {
    let mut settings = vec![
        ("broker.session.timeout.ms", SESSION_TIMEOUT_MS.to_string()),
        ("broker.heartbeat.interval.ms", "500".to_owned()),
        ("replica.lag.time.max.ms", "5000".to_owned()),
        ("auto.leader.rebalance.enable", "false".to_owned()),
    ];
    if faults.contains(&Fault::Balance) {
        settings.push(("balancer.mode", "continuous".to_owned()));
    }
    settings
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// Runs `config`. Errors are failures to set up the run (the cluster did
/// not start, the topic could not be created), not findings.
pub async fn run(config: &RunConfig) -> anyhow::Result<RunOutcome> {
    let started = Instant::now();
    if let Some(f) = config.faults.iter().find(|f| f.min_nodes() > config.nodes) {
        anyhow::bail!("fault {f} needs at least {} nodes", f.min_nodes());
    }
    std::fs::create_dir_all(&config.dir)
        .with_context(|| format!("create {}", config.dir.display()))?;
    let recorder = Arc::new(Recorder::new(Some(&config.dir.join("history.jsonl")))?);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let tmpfs_node = rng.gen_range(1..=config.nodes);
    let options = EnvOptions {
        nodes: config.nodes,
        settings: settings(&config.faults),
        firewall: config.faults.iter().any(|f| f.needs_firewall()),
        tmpfs: config
            .faults
            .contains(&Fault::DiskFull)
            .then_some((tmpfs_node, TMPFS_BYTES)),
        sync_journal: Some(config.dir.join("sync-journal")),
    };
    let mut env = Env::start(&options).await?;
    let result = drive(config, &mut env, recorder.clone(), &mut rng).await;
    let saved = env.save_logs(&config.dir);
    drop(env);
    let (mut problems, notes) = result?;
    saved?;

    let history = recorder.snapshot();
    let report = checker::check(
        &history,
        &CheckOptions {
            liveness_bound_us: u64::try_from(config.liveness_bound.as_micros()).unwrap_or(u64::MAX),
            partitions: (0..config.partitions).collect(),
        },
    );
    if report.stats.sends_ok == 0 {
        problems.push("no send was acknowledged: the run tested nothing".into());
    }
    let outcome = RunOutcome {
        report,
        problems,
        notes,
        dir: config.dir.clone(),
        elapsed: started.elapsed(),
    };
    std::fs::write(config.dir.join("report.txt"), outcome.summary(config))
        .context("write report.txt")?;
    std::fs::write(
        config.dir.join("report.json"),
        serde_json::to_string_pretty(&outcome.report).context("serialize report")?,
    )
    .context("write report.json")?;
    Ok(outcome)
}

/// Problems and notes of a run.
type Findings = (Vec<String>, Vec<String>);

async fn drive(
    config: &RunConfig,
    env: &mut Env,
    recorder: Arc<Recorder>,
    rng: &mut StdRng,
) -> anyhow::Result<Findings> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    if config.write_caching
        && let Some(f) = config.faults.iter().find(|f| f.needs_durable_topic())
    {
        notes.push(format!(
            "{f} on a write.caching=true topic: every replica may lose acknowledged writes \
             still in its page cache (a negative control; --write-caching false is the promise)"
        ));
    }
    let write_caching = config.write_caching.to_string();
    env.cluster()
        .create_topic(
            1,
            TOPIC,
            config.partitions,
            REPLICATION_FACTOR as i32,
            &[
                ("min.insync.replicas", "2"),
                ("segment.bytes", "131072"),
                ("write.caching", &write_caching),
            ],
        )
        .await
        .map_err(|e| anyhow::anyhow!("create topic {TOPIC}: {e}"))?;
    let mut topics = vec![TOPIC.to_owned()];
    if config.mix.txn_producers > 0 {
        env.cluster()
            .create_topic(
                1,
                &txn_topic(),
                config.partitions,
                REPLICATION_FACTOR as i32,
                &[("min.insync.replicas", "2"), ("segment.bytes", "131072")],
            )
            .await
            .map_err(|e| anyhow::anyhow!("create topic {}: {e}", txn_topic()))?;
        topics.push(txn_topic());
    }
    if config.mix.ctp_processors > 0 {
        for topic in [
            workload::ctp::input_topic(TOPIC),
            workload::ctp::output_topic(TOPIC),
        ] {
            env.cluster()
                .create_topic(
                    1,
                    &topic,
                    config.partitions,
                    REPLICATION_FACTOR as i32,
                    &[("min.insync.replicas", "2"), ("segment.bytes", "131072")],
                )
                .await
                .map_err(|e| anyhow::anyhow!("create topic {topic}: {e}"))?;
            topics.push(topic);
        }
    }
    for topic in &topics {
        for p in 0..config.partitions {
            let full = wait_until(Duration::from_secs(30), || async {
                env.partition_state(topic, p)
                    .await
                    .is_some_and(|(l, _, isr)| l >= 0 && isr.len() == REPLICATION_FACTOR)
            })
            .await;
            anyhow::ensure!(full, "{topic}-{p} did not get a full ISR");
            wait_leader_serving(&env.addrs(), topic, p, Duration::from_secs(10))
                .await
                .with_context(|| format!("{topic}-{p} has no serving leader"))?;
        }
    }
    let context = Context::new(
        recorder.clone(),
        TOPIC,
        config.partitions,
        env.addrs(),
        env.cluster().bootstrap(),
        config.pace,
        config.acks,
        config.broken_commits,
    );
    let workload = Workload::start(context, config.mix, config.seed);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut nemesis = Nemesis::new(recorder.clone(), TOPIC, config.partitions);
    let faults_end = Instant::now() + config.duration;
    if !config.faults.is_empty() {
        loop {
            let mut held = Duration::ZERO;
            let mut destroyed = false;
            for _ in 0..rng.gen_range(1..=config.concurrency.max(1)) {
                let fault = *config.faults.choose(rng).expect("faults is not empty");
                if fault.destructive() && std::mem::replace(&mut destroyed, true) {
                    continue;
                }
                nemesis.inject(env, fault, rng).await;
                held = held.max(hold(fault, rng));
            }
            tokio::time::sleep(held).await;
            let rest = Duration::from_millis(rng.gen_range(2000..5000));
            if Instant::now() + rest >= faults_end {
                break;
            }
            nemesis.heal(env).await;
            tokio::time::sleep(rest).await;
        }
    } else {
        tokio::time::sleep(config.duration).await;
    }
    nemesis.heal(env).await;
    let heal_us = recorder.now_us();

    // Recovery: the workload continues until every partition serves again
    // (or the liveness bound passes; the checker judges), then until every
    // replica is back in its ISR, so the replicas compared below are whole.
    // A node that exits meanwhile is started again, as a supervisor would,
    // and reported below.
    let partitions: Vec<i32> = (0..config.partitions).collect();
    let recovery_end = Instant::now() + config.liveness_bound + Duration::from_secs(1);
    while Instant::now() < recovery_end
        && !recorder.with_ops(|ops| checker::recovered(ops, heal_us, &partitions))
    {
        nemesis.crashed.extend(env.restart_exited());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every move finishes (the nemesis' and the balancer's), so the
    // replicas compared below are the partition's for good.
    if config
        .faults
        .iter()
        .any(|f| matches!(f, Fault::Reassign | Fault::Balance))
        && let Err(e) = nemesis.wait_moves_done(env, Duration::from_secs(60)).await
    {
        problems.push(e);
    }
    for p in 0..config.partitions {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut whole = false;
        while !whole && Instant::now() < deadline {
            nemesis.crashed.extend(env.restart_exited());
            whole = env
                .partition_state(TOPIC, p)
                .await
                .is_some_and(|(l, _, isr)| l >= 0 && isr.len() == REPLICATION_FACTOR);
            if !whole {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if !whole {
            // Every fault is healed and every node runs: replicas that stay
            // out of the ISR are a replication bug, and the replicas compared
            // below would not all be whole.
            problems.push(format!(
                "{TOPIC}-{p} did not get its full ISR back within 30 s of healing \
                 (leader, leader epoch, isr): {:?}",
                env.partition_state(TOPIC, p).await
            ));
        }
    }
    workload.stop().await;
    nemesis.crashed.extend(env.restart_exited());

    let bootstrap = env.cluster().bootstrap();
    let ends = match workload::final_read(
        &recorder,
        &bootstrap,
        TOPIC,
        config.partitions,
        Duration::from_secs(60),
    )
    .await
    {
        Ok(ends) => ends,
        Err(e) => {
            problems.push(e);
            Default::default()
        }
    };

    if config.mix.group_members > 0
        && let Err(e) = workload::group::final_committed(
            &recorder,
            &bootstrap,
            TOPIC,
            config.partitions,
            Duration::from_secs(30),
        )
        .await
    {
        problems.push(e);
    }
    // Both transactional final reads wait for the transactions left open
    // to time out: at once, so the run waits for that once.
    let txn_limit = workload::txn::TRANSACTION_TIMEOUT * 3 + Duration::from_secs(30);
    let (txn_final, ctp_final) = tokio::join!(
        async {
            if config.mix.txn_producers > 0 {
                workload::txn::final_read(
                    &recorder,
                    &bootstrap,
                    &txn_topic(),
                    config.partitions,
                    txn_limit,
                )
                .await
            } else {
                Ok(())
            }
        },
        async {
            if config.mix.ctp_processors > 0 {
                workload::ctp::final_read(
                    &recorder,
                    &bootstrap,
                    TOPIC,
                    config.partitions,
                    txn_limit,
                )
                .await
            } else {
                Ok(())
            }
        }
    );
    problems.extend(txn_final.err());
    problems.extend(ctp_final.err());

    let mut states = Vec::new();
    for p in 0..config.partitions {
        states.push((p, env.partition_state(TOPIC, p).await));
    }
    // A node that exited on its own since the last heal.
    let running = env.cluster_mut().running();
    for id in env.node_ids() {
        if !running.contains(&id) {
            nemesis.crashed.push(id);
        }
    }
    env.stop_all();
    for (p, state) in states {
        // Without the replicas on disk the run cannot tell whether they
        // diverged: a run that checked less than it claims fails.
        let (Some((_, _, isr)), Some(hw)) = (&state, ends.get(&p).copied()) else {
            problems.push(format!(
                "{TOPIC}-{p}: replicas not compared on disk ({})",
                match (&state, ends.get(&p)) {
                    (None, None) => "no partition state and no end offset from the final read",
                    (None, Some(_)) => "no node answered with the partition's state",
                    (Some(_), _) => "no end offset: the final read did not finish",
                }
            ));
            continue;
        };
        if isr.is_empty() {
            problems.push(format!(
                "{TOPIC}-{p}: replicas not compared on disk (empty ISR: {state:?})"
            ));
            continue;
        }
        for &node in isr {
            replica_snapshot(env, &recorder, node, p, hw, &mut problems);
        }
    }
    nemesis.crashed.sort();
    nemesis.crashed.dedup();
    for id in &nemesis.crashed {
        let what = format!("node {id} exited on its own (see node-{id}.log in the run directory)");
        if env.tmpfs_node() == Some(*id) {
            notes.push(format!("{what} while its disk could fill"));
        } else {
            problems.push(what);
        }
    }
    Ok((problems, notes))
}

/// How long a fault stays in place.
fn hold(fault: Fault, rng: &mut StdRng) -> Duration {
    let ms = match fault {
        // Beyond the session timeout, so the controller fences it.
        Fault::PauseLeader | Fault::PauseController => {
            SESSION_TIMEOUT_MS + rng.gen_range(1500..4000)
        }
        // Sometimes back before the session timeout: the restarted node
        // replaces a registration whose lease is still alive, and the
        // controller still names it leader.
        Fault::KillLeader | Fault::KillController | Fault::KillCoordinator | Fault::PowerCut
            if rng.gen_bool(0.25) =>
        {
            rng.gen_range(300..2000)
        }
        _ => rng.gen_range(3000..7000),
    };
    Duration::from_millis(ms)
}

/// Records node `node`'s replica of `p` below `hw`, read from its data dir
/// (the node is stopped) with the same recovery the node would run.
fn replica_snapshot(
    env: &Env,
    recorder: &Recorder,
    node: i32,
    p: i32,
    hw: i64,
    problems: &mut Vec<String>,
) {
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        log_on_disk(env.cluster(), node, TOPIC, p)
    }));
    match read {
        Ok(records) => {
            let records: Vec<Polled> = records
                .into_iter()
                .filter(|(o, _)| *o < hw)
                .map(|(offset, v)| Polled {
                    partition: p,
                    offset,
                    value: decode_value(&v),
                })
                .collect();
            recorder.record(
                "replicas",
                OpType::Ok,
                Body::Replica {
                    node,
                    partition: p,
                    high_watermark: hw,
                    records,
                },
            );
        }
        Err(_) => problems.push(format!(
            "node {node}'s log of {TOPIC}-{p} could not be read back from disk"
        )),
    }
}

/// `target/jepsen` next to the running executable's target dir (where
/// `stromd` is taken from): the default parent of run directories.
pub fn default_base_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    // target/debug → target
    dir.pop();
    dir.join("jepsen")
}

/// A fresh run directory under `base`: `<label>-<seed>-<unix time>`.
pub fn run_dir(base: &Path, label: &str, seed: u64) -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    base.join(format!("{label}-{seed}-{now}"))
}
