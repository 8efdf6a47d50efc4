//! The fast variant of the fault-injection suite, run by `scripts/test`:
//! each scenario runs the workload on a real cluster for ~15 s of faults,
//! heals, and checks the history (see `docs/reliability.md`).
//!
//! Seeds are random unless `STROM_JEPSEN_SEED` is set; every failure
//! prints its seed, the run directory (history, report, node logs) and the
//! `jepsen` command that reproduces it. Runs that pass delete their
//! directory.
//!
//! Scenarios that need more than a Linux machine sit in modules named after
//! what they need, so a test runner can leave them out by name:
//! `needs_firewall::` (root, `nft` and the cgroup2 hierarchy: network
//! partitions) and `needs_root::` (mounting a tmpfs). `scripts/test` probes
//! the machine and skips (`--skip needs_firewall::`) what it cannot run,
//! saying why; nextest counts them as skipped. Run on a machine without
//! them otherwise, such a scenario fails with the reason: it never passes
//! without running.

use strom_jepsen::checker::AnomalyKind;
use strom_jepsen::nemesis::Fault;
use strom_jepsen::runner::{self, RunConfig};

/// One scenario at a time even under `cargo test`, which runs a binary's
/// tests in parallel (nextest runs them in the `clusters` group).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn seed() -> u64 {
    std::env::var("STROM_JEPSEN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

/// Fails the test when `config` cannot run on this machine: a scenario that
/// cannot run must not pass. `scripts/test` leaves such tests out (by their
/// `needs_*` module) before they start.
fn require(label: &str, config: &RunConfig) {
    if let Some(why) = config.unavailable() {
        panic!(
            "{label} cannot run on this machine: {why}; scripts/test skips the needs_* tests \
             whose requirement is missing (or pass `-- --skip needs_`)"
        );
    }
}

async fn scenario(label: &str, faults: &[Fault]) {
    scenario_with(label, faults, seed(), |_| {}).await;
}

async fn scenario_with(
    label: &str,
    faults: &[Fault],
    seed: u64,
    configure: impl Fn(&mut RunConfig),
) {
    let _serial = SERIAL.lock().await;
    let dir = runner::run_dir(&runner::default_base_dir(), label, seed);
    let mut config = RunConfig::fast(faults.to_vec(), seed, dir);
    configure(&mut config);
    require(label, &config);
    eprintln!(
        "{label}: seed {seed}, run directory {}",
        config.dir.display()
    );
    let outcome = match runner::run(&config).await {
        Ok(o) => o,
        Err(e) => panic!(
            "{label}: the run could not be set up (seed {seed}): {e:#}\nreproduce with:\n  {}",
            config.reproduce_command()
        ),
    };
    let summary = outcome.summary(&config);
    assert!(outcome.valid(), "{label}: {summary}");
    eprint!("{summary}");
    let _ = std::fs::remove_dir_all(&config.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_writes_survive_killing_partition_leaders() {
    scenario("kill-leader", &[Fault::KillLeader]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_writes_survive_killing_the_active_controller() {
    scenario("kill-controller", &[Fault::KillController]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombie_leader_paused_past_its_session_loses_no_acked_write() {
    scenario("pause-leader", &[Fault::PauseLeader]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_leader_failovers_lose_no_acked_write() {
    scenario("b2b-failover", &[Fault::B2bFailover]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_page_cache_on_one_node_loses_no_acked_write() {
    scenario("power-cut", &[Fault::PowerCut]).await;
}

/// The durable-acknowledgement promise: on a `write.caching=false` topic
/// no acknowledged write is lost when every node loses power at once, or
/// one after another. Two seeds per run (the soak runs more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_topic_loses_no_acked_write_when_every_node_loses_power() {
    let first = seed();
    for seed in [first, first.wrapping_add(1)] {
        scenario_with(
            "power-cut-all-durable",
            &[Fault::PowerCutAll, Fault::PowerCutRolling],
            seed,
            |c| c.write_caching = false,
        )
        .await;
    }
}

/// Throttled reassignments of random partitions (docs/reassignment.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_reassignments_lose_no_acked_write() {
    scenario("reassign", &[Fault::Reassign]).await;
}

/// The built-in balancer's moves: leaderships evened out after a skew, and
/// on four nodes (more than the replication factor) replicas moved back
/// onto a node emptied by a throttled reassignment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balancer_moves_lose_no_acked_write() {
    scenario_with("balance", &[Fault::Balance], seed(), |c| c.nodes = 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_a_follower_segment_loses_no_acked_write() {
    scenario("bitflip", &[Fault::Bitflip]).await;
}

/// The group workload (#21): three members of one consumer group share the
/// topic (one auto-commits, two commit after each poll and before
/// revocation, all leave and rejoin now and then) while the group's
/// coordinator and partition leaders are killed. Committed offsets never
/// go back or above the high watermark, and no record below the final
/// committed offset was skipped; duplicates are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_commits_stay_monotonic_and_skip_nothing_across_coordinator_kills() {
    scenario_with(
        "group-kill",
        &[Fault::KillCoordinator, Fault::KillLeader],
        seed(),
        |c| {
            c.mix.group_members = 3;
            c.mix.consumers = 1;
        },
    )
    .await;
}

/// The same group under paused leaders and coordinators (zombies past
/// their session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_commits_stay_monotonic_across_paused_leaders() {
    scenario_with("group-pause", &[Fault::PauseLeader], seed(), |c| {
        c.mix.group_members = 3;
        c.mix.consumers = 1;
    })
    .await;
}

/// The negative control of the group checks: members that commit three
/// offsets beyond what they processed hand their successors a position
/// past records nobody was given, which the checker must report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_committing_beyond_what_they_processed_are_reported() {
    let _serial = SERIAL.lock().await;
    let seed = seed();
    let label = "group-broken-commits";
    let dir = runner::run_dir(&runner::default_base_dir(), label, seed);
    let mut config = RunConfig::fast(vec![Fault::KillCoordinator], seed, dir);
    config.mix.group_members = 3;
    config.mix.consumers = 1;
    config.broken_commits = true;
    config.duration = std::time::Duration::from_secs(8);
    let outcome = runner::run(&config)
        .await
        .unwrap_or_else(|e| panic!("{label}: the run could not be set up (seed {seed}): {e:#}"));
    let summary = outcome.summary(&config);
    let kinds = outcome.report.kinds();
    assert!(
        kinds.contains(&AnomalyKind::GroupSkip) || kinds.contains(&AnomalyKind::CommitAboveHw),
        "{label}: commits beyond the processed records went unreported: {summary}"
    );
    eprint!("{summary}");
    let _ = std::fs::remove_dir_all(&config.dir);
}

/// The transactional workload (#22): two transactional producers commit or
/// abort transactions over several partitions while two `read_committed`
/// readers poll, and two consume-transform-produce processors (one
/// consumer group, offsets committed inside their transactions) read and
/// write each other's records, while the transaction and group
/// coordinators' brokers and partition leaders are killed. No aborted
/// read (G1a), no write-read cycle (G1c), no torn transaction or torn
/// read, no lost or duplicated committed value, each input processed into
/// committed output exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_stay_atomic_across_coordinator_and_leader_kills() {
    scenario_with(
        "txn-kill",
        &[Fault::KillCoordinator, Fault::KillLeader],
        seed(),
        |c| {
            c.mix.txn_producers = 2;
            c.mix.txn_readers = 2;
            c.mix.ctp_processors = 2;
            c.mix.consumers = 1;
        },
    )
    .await;
}

/// Scenarios that mount a tmpfs.
mod needs_root {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_disk_on_one_node_loses_no_acked_write_and_recovers_once_freed() {
        scenario("disk-full", &[Fault::DiskFull]).await;
    }
}

/// Scenarios that partition the network (root, `nft`, cgroup2); the mix
/// also fills a tmpfs, which root allows.
mod needs_firewall {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leader_cut_off_from_its_peers_loses_no_acked_write() {
        scenario("partition-leader", &[Fault::PartitionLeader]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leader_cut_off_from_replication_only_loses_no_acked_write() {
        scenario("partition-leader-data", &[Fault::PartitionLeaderData]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn controller_quorum_split_loses_no_acked_write() {
        scenario("partition-quorum", &[Fault::PartitionQuorum]).await;
    }

    /// The group and transactional workloads with a partition leader cut
    /// off from its peers (it found finding 8 of docs/reliability.md).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_and_transactions_survive_an_isolated_leader() {
        scenario_with(
            "group-txn-partition",
            &[Fault::PartitionLeader, Fault::KillCoordinator],
            seed(),
            |c| {
                c.mix.group_members = 3;
                c.mix.txn_producers = 2;
                c.mix.txn_readers = 1;
                c.mix.consumers = 1;
            },
        )
        .await;
    }

    /// Every fault that runs on 3 nodes, none left out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mixed_faults_lose_no_acked_write() {
        // On the default write.caching=true topic: the all-node power cuts
        // are the negative control below, not a promise.
        let faults: Vec<Fault> = Fault::ALL
            .into_iter()
            .filter(|f| f.min_nodes() <= 3 && !f.needs_durable_topic())
            .collect();
        scenario("mixed", &faults).await;
    }

    /// The negative control: with acks=1 a leader cut off from its followers
    /// keeps acknowledging writes only it has, which the new leader's log
    /// replaces. The suite must report them, or it could not be trusted to
    /// report anything.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acks_1_writes_of_an_isolated_leader_are_lost_and_the_checker_reports_them() {
        let _serial = SERIAL.lock().await;
        let seed = seed();
        let label = "negative-control";
        let dir = runner::run_dir(&runner::default_base_dir(), label, seed);
        let mut config = RunConfig::fast(vec![Fault::PartitionLeader], seed, dir);
        config.acks = 1;
        config.duration = std::time::Duration::from_secs(8);
        require(label, &config);
        let outcome = runner::run(&config).await.unwrap_or_else(|e| {
            panic!("{label}: the run could not be set up (seed {seed}): {e:#}")
        });
        let summary = outcome.summary(&config);
        let lost = [
            AnomalyKind::LostWrite,
            AnomalyKind::Unseen,
            AnomalyKind::InconsistentOffsets,
        ];
        assert!(
            outcome.report.kinds().iter().any(|k| lost.contains(k)),
            "{label}: acks=1 writes to an isolated leader went unreported: {summary}"
        );
        let _ = std::fs::remove_dir_all(&config.dir);
    }
}

/// The negative control of the durable promise: on a default
/// (`write.caching=true`) topic every replica acknowledges from its page
/// cache, so a power cut of every node loses acknowledged writes, and the
/// checker must say so — or the durable test above would prove nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_topic_loses_acked_writes_to_a_power_cut_of_every_node_and_the_checker_reports_them()
{
    let _serial = SERIAL.lock().await;
    let seed = seed();
    let label = "power-cut-all-cached";
    let dir = runner::run_dir(&runner::default_base_dir(), label, seed);
    let mut config = RunConfig::fast(vec![Fault::PowerCutAll], seed, dir);
    config.write_caching = true;
    require(label, &config);
    let outcome = runner::run(&config)
        .await
        .unwrap_or_else(|e| panic!("{label}: the run could not be set up (seed {seed}): {e:#}"));
    let summary = outcome.summary(&config);
    let lost = [
        AnomalyKind::LostWrite,
        AnomalyKind::Unseen,
        AnomalyKind::InconsistentOffsets,
    ];
    assert!(
        outcome.report.kinds().iter().any(|k| lost.contains(k)),
        "{label}: a power cut of every node lost no acknowledged write of a cached topic, \
         so the nemesis did not bite: {summary}"
    );
    eprint!("{summary}");
    let _ = std::fs::remove_dir_all(&config.dir);
}
