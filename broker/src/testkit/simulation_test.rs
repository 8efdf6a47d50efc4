//! Deterministic simulation of three brokers and the controller's decision
//! logic: the real replica managers, fetchers and ISR senders, over the
//! in-memory network and controller of this kit, on a current-thread
//! runtime with paused time. A seeded generator drives producers (acks=all
//! and acks=1), message loss, delay and reordering on the fetch network
//! and the controller channel, broker crashes and restarts, isolation (a
//! zombie leader) and preferred-leader elections. After every step:
//!
//! * no acknowledged acks=all record is lost: it is at its offset, with
//!   its bytes, on the partition's current leader;
//! * a leader's high watermark never goes backwards within its epoch, and
//!   never passes its log end;
//! * no two brokers lead a partition at the same epoch, ever.
//!
//! Reordering comes from the per-message delays: rounds of different
//! followers, answers of different leaders and `AlterPartition`s overtake
//! each other, and each broker replays the metadata log at its own pace.
//! Crashes stop a broker's manager (its logs are closed, so nothing
//! written is lost; losing the unflushed tail is a later refinement) and a
//! restart registers a new incarnation on the same logs. Half the seeds
//! make the topic `write.caching=false`, so the high watermark counts
//! fsynced ends and the flush jobs run (inline) in every step.
//!
//! Seeds: `STROM_SIM_SEED=n` replays one; `STROM_SIM_SEEDS=n` (or `a..b`)
//! runs a range; the default run takes [`FAST_SEEDS`]. A failure names its
//! seed. `STROM_SIM_VERBOSE=1` prints each step, `STROM_SIM_TRACE=file`
//! writes the run's trace (every step, replica state and message).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use strom_log::batch::{Compression, RecordBatchBuilder};
use tokio::task::JoinSet;

use super::{Cluster, ClusterConfig, Faults, ReplicaView, SharedRng, rng};
use crate::replica::{AppendOrigin, AppendRequest, PartitionAppend};

const TOPIC: &str = "sim";
const PARTITIONS: i32 = 2;
/// Seeds of the default test run.
const FAST_SEEDS: u64 = 24;
/// Driver steps per seed, each a few milliseconds of simulated time.
const STEPS: usize = 600;

/// An acknowledged acks=all batch.
#[derive(Debug, Clone)]
struct Acked {
    partition: i32,
    offset: i64,
    batch: Bytes,
}

/// What the checks remember across steps.
#[derive(Debug, Default)]
struct Model {
    acked: Vec<Acked>,
    /// (partition, leader epoch) → the broker seen leading it.
    epoch_leader: BTreeMap<(i32, i32), i32>,
    /// (broker, partition, leader epoch) → highest high watermark seen.
    leader_hw: BTreeMap<(i32, i32, i32), i64>,
    /// Everything that happened, for the replay check.
    trace: String,
}

type Shared = Arc<Mutex<Model>>;

fn lock(model: &Shared) -> std::sync::MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bytes of a stored batch that the leader does not rewrite: from
/// the CRC on (base offset and partition leader epoch come before it).
fn payload(batch: &Bytes) -> &[u8] {
    batch.get(17..).unwrap_or_default()
}

fn record_batch(value: &str) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.append(0, None, Some(value.as_bytes()), &[]);
    b.build()
}

fn draw(rng: &SharedRng, n: u64) -> u64 {
    rng::with(rng, |r| r.below(n))
}

/// Checks the invariants on the cluster as it is now.
fn check(cluster: &Cluster, model: &Shared, step: usize) -> Result<(), String> {
    let mut m = lock(model);
    for p in 0..PARTITIONS {
        let views = cluster.replicas(TOPIC, p);
        let _ = write!(m.trace, "|{p}:");
        for v in &views {
            let _ = write!(
                m.trace,
                "{}{}e{}h{}l{}",
                v.broker,
                if v.leader { "L" } else { "f" },
                v.leader_epoch,
                v.high_watermark,
                v.log_end_offset
            );
        }
        for v in views.iter().filter(|v| v.leader) {
            let seen = *m
                .epoch_leader
                .entry((p, v.leader_epoch))
                .or_insert(v.broker);
            if seen != v.broker {
                return Err(format!(
                    "step {step}: brokers {seen} and {} both led partition {p} at epoch {}",
                    v.broker, v.leader_epoch
                ));
            }
            if v.high_watermark > v.log_end_offset {
                return Err(format!(
                    "step {step}: leader {} of partition {p} has high watermark {} above its log end {}",
                    v.broker, v.high_watermark, v.log_end_offset
                ));
            }
            let hw = m
                .leader_hw
                .entry((v.broker, p, v.leader_epoch))
                .or_insert(v.high_watermark);
            if v.high_watermark < *hw {
                return Err(format!(
                    "step {step}: leader {} of partition {p} moved its high watermark back from {} to {} in epoch {}",
                    v.broker, *hw, v.high_watermark, v.leader_epoch
                ));
            }
            *hw = v.high_watermark;
        }
        // The current leader, once it has taken the leadership, holds
        // every acknowledged record.
        let current = cluster.controller().with_image(|image| {
            let t = image.topic_by_name(TOPIC)?;
            let s = t.partition(p)?;
            Some((s.leader, s.leader_epoch))
        });
        let Some((leader, epoch)) = current else {
            continue;
        };
        if !views
            .iter()
            .any(|v: &ReplicaView| v.broker == leader && v.leader && v.leader_epoch == epoch)
        {
            continue;
        }
        for a in m.acked.iter().filter(|a| a.partition == p) {
            match cluster.batch_at(leader, TOPIC, p, a.offset) {
                Some(b) if payload(&b) == payload(&a.batch) => {}
                Some(_) => {
                    return Err(format!(
                        "step {step}: acknowledged batch at offset {} of partition {p} replaced on leader {leader} (epoch {epoch})",
                        a.offset
                    ));
                }
                None => {
                    return Err(format!(
                        "step {step}: acknowledged batch at offset {} of partition {p} missing on leader {leader} (epoch {epoch})",
                        a.offset
                    ));
                }
            }
        }
    }
    m.trace.push('\n');
    Ok(())
}

/// Appends one batch to the leader the controller names, in a task.
fn produce(
    cluster: &Cluster,
    producers: &mut JoinSet<()>,
    model: &Shared,
    partition: i32,
    acks: i32,
    n: usize,
) {
    let leader = cluster.controller().with_image(|image| {
        image
            .topic_by_name(TOPIC)
            .and_then(|t| t.partition(partition))
            .map(|s| s.leader)
    });
    let Some(rm) = leader.and_then(|l| cluster.broker(l)) else {
        return;
    };
    let batch = record_batch(&format!("p{partition}-n{n}-acks{acks}"));
    let model = model.clone();
    producers.spawn(async move {
        let appending = rm
            .append(AppendRequest {
                acks,
                timeout_ms: 2_000,
                transactional_id: None,
                origin: AppendOrigin::Client,
                partitions: vec![PartitionAppend {
                    topic: TOPIC.into(),
                    partition,
                    records: batch.clone(),
                }],
            })
            .await;
        let results = appending.wait().await;
        let mut m = lock(&model);
        match results.first().map(|r| &r.result) {
            Some(Ok(a)) => {
                let _ = writeln!(
                    m.trace,
                    "ack p{partition} n{n} acks{acks} @{}",
                    a.base_offset
                );
                if acks == -1 {
                    m.acked.push(Acked {
                        partition,
                        offset: a.base_offset,
                        batch,
                    });
                }
            }
            Some(Err(e)) => {
                let _ = writeln!(m.trace, "nack p{partition} n{n} {}", e.code.as_str_name());
            }
            None => {}
        }
    });
}

fn random_faults(rng: &SharedRng) -> Faults {
    rng::with(rng, |r| Faults {
        loss: r.below(15) as f64 / 100.0,
        max_delay: Duration::from_millis(r.below(40)),
        hang: 0.1,
    })
}

/// One seeded run; returns its trace (with every network message when
/// `record_legs`).
async fn simulate(seed: u64, record_legs: bool) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let mut cluster = Cluster::new(ClusterConfig::default(), dir.path(), seed);
    let err = |e: strom_metadata::MetadataError| e.to_string();
    for id in cluster.ids() {
        cluster.start(id).map_err(err)?;
    }
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        cluster.tick().map_err(err)?;
    }
    let write_caching = if draw(cluster.rng(), 2) == 0 {
        "false"
    } else {
        "true"
    };
    let configs = [
        ("min.insync.replicas".to_owned(), "2".to_owned()),
        ("write.caching".to_owned(), write_caching.to_owned()),
    ]
    .into();
    let topic_id = cluster.topic_id();
    cluster
        .controller()
        .create_topic(TOPIC, PARTITIONS, 3, configs, topic_id)
        .map_err(err)?;

    if record_legs {
        cluster.net().record();
    }
    let rng = cluster.rng().clone();
    let model: Shared = Arc::default();
    let mut producers = JoinSet::new();
    let mut isolated: Option<i32> = None;
    let mut legs_seen = 0;
    for step in 0..STEPS {
        let running = cluster.running();
        let stopped: Vec<i32> = cluster
            .ids()
            .into_iter()
            .filter(|id| !running.contains(id))
            .collect();
        let action = draw(&rng, 100);
        let event = match action {
            0..40 => {
                let partition = i32::try_from(draw(&rng, PARTITIONS as u64)).unwrap_or(0);
                let acks = if draw(&rng, 3) == 0 { 1 } else { -1 };
                produce(&cluster, &mut producers, &model, partition, acks, step);
                format!("produce p{partition} acks{acks}")
            }
            40..42 if running.len() > 1 => {
                let id = running[usize::try_from(draw(&rng, running.len() as u64)).unwrap_or(0)];
                cluster.crash(id).await;
                format!("crash {id}")
            }
            42..47 if !stopped.is_empty() => {
                let id = stopped[usize::try_from(draw(&rng, stopped.len() as u64)).unwrap_or(0)];
                cluster.start(id).map_err(err)?;
                format!("restart {id}")
            }
            47..48 if isolated.is_none() && !running.is_empty() => {
                let id = running[usize::try_from(draw(&rng, running.len() as u64)).unwrap_or(0)];
                cluster.isolate(id, true);
                isolated = Some(id);
                format!("isolate {id}")
            }
            48..52 if isolated.is_some() => {
                let id = isolated.take().unwrap_or_default();
                cluster.isolate(id, false);
                format!("heal {id}")
            }
            52..54 => {
                cluster.controller().rebalance_leaders().map_err(err)?;
                "rebalance leaders".to_owned()
            }
            54..58 => {
                let (net, ctl) = (random_faults(&rng), random_faults(&rng));
                cluster.net().set_faults(net);
                cluster.controller().set_faults(ctl);
                format!("faults net {net:?} controller {ctl:?}")
            }
            _ => String::new(),
        };
        let pause = Duration::from_millis(1 + draw(&rng, 20));
        tokio::time::sleep(pause).await;
        cluster.tick().map_err(err)?;
        if verbose() {
            eprintln!("step {step} {event}");
        }
        {
            let mut m = lock(&model);
            let _ = write!(m.trace, "{step} {event}");
        }
        check(&cluster, &model, step).map_err(|e| format!("{e} (after: {event})"))?;
        for l in cluster.net().recorded().iter().skip(legs_seen) {
            let mut m = lock(&model);
            m.trace.push_str(l);
            m.trace.push('\n');
        }
        legs_seen = cluster.net().recorded().len();
    }

    // Heal everything; the cluster must settle with every acknowledged
    // record on every ISR member.
    cluster.net().set_faults(Faults::NONE);
    cluster.controller().set_faults(Faults::NONE);
    if let Some(id) = isolated {
        cluster.isolate(id, false);
    }
    for id in cluster.ids() {
        cluster.start(id).map_err(err)?;
    }
    for step in STEPS..STEPS + 400 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        cluster.tick().map_err(err)?;
        check(&cluster, &model, step)?;
    }
    producers.shutdown().await;
    let acked = lock(&model).acked.clone();
    for p in 0..PARTITIONS {
        let isr = cluster.controller().with_image(|image| {
            image
                .topic_by_name(TOPIC)
                .and_then(|t| t.partition(p))
                .map(|s| s.isr.clone())
                .unwrap_or_default()
        });
        for r in isr {
            for a in acked.iter().filter(|a| a.partition == p) {
                let stored = cluster.batch_at(r, TOPIC, p, a.offset);
                if stored.as_ref().map(payload) != Some(payload(&a.batch)) {
                    return Err(format!(
                        "after healing: acknowledged batch at offset {} of partition {p} not on ISR member {r}",
                        a.offset
                    ));
                }
            }
        }
    }
    let trace = std::mem::take(&mut lock(&model).trace);
    cluster.shutdown().await;
    Ok(trace)
}

/// `STROM_SIM_VERBOSE=1` prints every step.
fn verbose() -> bool {
    std::env::var_os("STROM_SIM_VERBOSE").is_some()
}

/// Real time one seed may take. Simulated time moves only while every
/// task waits; a task that loops without waiting (a busy retry) stops it,
/// and this turns that hang into a failure naming the seed.
const WATCHDOG: Duration = Duration::from_secs(60);

fn run_seed(seed: u64, record_legs: bool) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("sim-seed-{seed}"))
        .spawn(move || {
            let _ = tx.send(run_seed_here(seed, record_legs));
        })
        .map_err(|e| format!("spawn the simulation thread: {e}"))?;
    match rx.recv_timeout(WATCHDOG) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "no end after {WATCHDOG:?} of real time: simulated time stopped moving, \
             some task loops without waiting"
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err("the simulation panicked".to_owned())
        }
    }
}

fn run_seed_here(seed: u64, record_legs: bool) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(simulate(seed, record_legs))
}

/// `STROM_SIM_SEED=n`: that seed; `STROM_SIM_SEEDS=n`: seeds `0..n`;
/// `STROM_SIM_SEEDS=a..b`: seeds `a..b`; else `0..FAST_SEEDS`.
fn seeds() -> Vec<u64> {
    let var = |name| std::env::var(name).ok();
    if let Some(seed) = var("STROM_SIM_SEED").and_then(|v| v.parse::<u64>().ok()) {
        return vec![seed];
    }
    let range = var("STROM_SIM_SEEDS").and_then(|v| match v.split_once("..") {
        Some((a, b)) => Some(a.parse::<u64>().ok()?..b.parse::<u64>().ok()?),
        None => Some(0..v.parse::<u64>().ok()?),
    });
    range.unwrap_or(0..FAST_SEEDS).collect()
}

#[test]
fn acked_writes_survive_crashes_isolation_loss_and_elections() {
    for seed in seeds() {
        let started = std::time::Instant::now();
        let trace_file = std::env::var_os("STROM_SIM_TRACE");
        match run_seed(seed, trace_file.is_some()) {
            Ok(trace) if let Some(path) = &trace_file => {
                std::fs::write(path, &trace).expect("write the trace");
            }
            Ok(trace) => eprintln!(
                "seed {seed}: ok, {} trace lines in {:?}",
                trace.lines().count(),
                started.elapsed()
            ),
            Err(e) => panic!("seed {seed} failed: {e}\nreplay with STROM_SIM_SEED={seed}"),
        }
    }
}

#[test]
fn a_seed_replays_exactly() {
    let seed = seeds().first().copied().unwrap_or(0);
    let first = run_seed(seed, true).expect("first run");
    let second = run_seed(seed, true).expect("second run");
    if first != second {
        let at = first
            .lines()
            .zip(second.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "seed {seed} ran differently twice; first difference at line {at}:\n{:?}\n{:?}",
            first.lines().nth(at),
            second.lines().nth(at)
        );
    }
}
