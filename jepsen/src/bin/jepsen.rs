//! `jepsen`: the long (soak) variant of the fault-injection suite, or the
//! checker alone on a recorded history.
//!
//! ```sh
//! cargo build --bins
//! cargo run -p strom-jepsen --bin jepsen -- --duration 600 --faults all --nodes 5
//! cargo run -p strom-jepsen --bin jepsen -- --check target/jepsen/<run>/history.jsonl
//! ```
//!
//! Exits 0 when the history is valid, 1 when the checker (or the run) found
//! a problem, 2 when the run could not be set up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use strom_jepsen::checker::{self, CheckOptions};
use strom_jepsen::history::read_history;
use strom_jepsen::nemesis::Fault;
use strom_jepsen::runner::{self, RunConfig};
use strom_jepsen::workload::Mix;

/// Runs Strom under faults and checks the history (see docs/reliability.md).
#[derive(Debug, Parser)]
#[command(name = "jepsen")]
struct Args {
    /// Seed of every random choice; random when not given (printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds of fault injection.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Faults to choose from, comma-separated: all, none, kill-leader,
    /// kill-controller, kill-all, pause-leader, pause-controller,
    /// partition-leader, partition-leader-data, partition-quorum,
    /// partition-bridge, b2b-failover, power-cut, power-cut-all,
    /// power-cut-rolling, bitflip, disk-full, reassign, balance.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Nodes (5 are needed for b2b-failover; `all` with 3 nodes leaves it out).
    #[arg(long)]
    nodes: Option<i32>,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Producers using strom_client::Producer.
    #[arg(long, default_value_t = 2)]
    client_producers: usize,
    /// Producers making single raw Produce attempts.
    #[arg(long, default_value_t = 1)]
    raw_producers: usize,
    /// Consumers.
    #[arg(long, default_value_t = 2)]
    consumers: usize,
    /// acks of every produce: all, or 1 (a negative control: the leader
    /// alone acknowledges, so failovers lose records and the checker must
    /// say so).
    #[arg(long, default_value = "all", value_parser = ["all", "-1", "1"])]
    acks: String,
    /// The topic's write.caching: true (the default, acknowledged from the
    /// ISR's page caches) or false (from their disks: what power-cut-all
    /// and power-cut-rolling must not break).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    write_caching: bool,
    /// Faults in place at once, at most (at most one destroying data).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Milliseconds between two operations of one process.
    #[arg(long, default_value_t = 10)]
    pace_ms: u64,
    /// Seconds after the final heal within which every partition must
    /// serve produce and fetch again.
    #[arg(long, default_value_t = 20)]
    liveness_bound: u64,
    /// Members of a consumer group sharing the topic (the group workload).
    #[arg(long, default_value_t = 0)]
    group_members: usize,
    /// Group members commit beyond what they processed (a negative
    /// control: the checker must report it).
    #[arg(long)]
    broken_commits: bool,
    /// Transactional producers writing to `<topic>-txn` (the transactional
    /// workload).
    #[arg(long, default_value_t = 0)]
    txn_producers: usize,
    /// `read_committed` readers of the transactional topic.
    #[arg(long, default_value_t = 0)]
    txn_readers: usize,
    /// Consume-transform-produce processors: a consumer group reading
    /// `<topic>-ctp-in` and writing `<topic>-ctp-out` in transactions that
    /// commit the input offsets (the G1c and exactly-once workload).
    #[arg(long, default_value_t = 0)]
    ctp_processors: usize,
    /// Parent of the run directory (default: <target dir>/jepsen).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only check this history file (JSON lines) and print the report.
    #[arg(long)]
    check: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.check {
        return check_only(path, &args);
    }
    let mut faults = match Fault::parse_list(&args.faults) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // `all` with fewer than five nodes leaves out what needs five.
    let all = args.faults.split(',').any(|f| f.trim() == "all");
    let nodes = args.nodes.unwrap_or(if all {
        3
    } else {
        faults.iter().map(|f| f.min_nodes()).max().unwrap_or(3)
    });
    if all {
        faults.retain(|f| f.min_nodes() <= nodes);
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let base = args.out.clone().unwrap_or_else(runner::default_base_dir);
    let config = RunConfig {
        seed,
        duration: Duration::from_secs(args.duration),
        faults,
        nodes,
        partitions: args.partitions,
        mix: Mix {
            client_producers: args.client_producers,
            raw_producers: args.raw_producers,
            consumers: args.consumers,
            group_members: args.group_members,
            txn_producers: args.txn_producers,
            txn_readers: args.txn_readers,
            ctp_processors: args.ctp_processors,
        },
        broken_commits: args.broken_commits,
        acks: if args.acks == "1" { 1 } else { -1 },
        concurrency: args.concurrency,
        write_caching: args.write_caching,
        pace: Duration::from_millis(args.pace_ms),
        liveness_bound: Duration::from_secs(args.liveness_bound),
        dir: runner::run_dir(&base, "run", seed),
    };
    if let Some(why) = config.unavailable() {
        eprintln!("error: {why}");
        return ExitCode::from(2);
    }
    eprintln!(
        "jepsen: seed {seed}, faults {}, {} nodes, {} s; writing {}",
        Fault::list_names(&config.faults),
        config.nodes,
        args.duration,
        config.dir.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Ctrl-C or SIGTERM drops the run, whose guards stop the nodes and
    // remove the rules, cgroups and tmpfs it set up.
    let result = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            r = runner::run(&config) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
        }
    });
    let Some(result) = result else {
        eprintln!(
            "jepsen: interrupted; cleaned up. History so far: {}",
            config.dir.join("history.jsonl").display()
        );
        return ExitCode::from(130);
    };
    match result {
        Ok(outcome) => {
            print!("{}", outcome.summary(&config));
            if outcome.valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!(
                "error: the run could not be set up: {e:#}\nseed {seed}; reproduce with:\n  {}",
                config.reproduce_command()
            );
            ExitCode::from(2)
        }
    }
}

fn check_only(path: &std::path::Path, args: &Args) -> ExitCode {
    let history = match read_history(path) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let report = checker::check(
        &history,
        &CheckOptions {
            liveness_bound_us: args.liveness_bound * 1_000_000,
            partitions: (0..args.partitions).collect(),
        },
    );
    print!("{report}");
    if report.valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
