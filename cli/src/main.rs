//! `strom`, Strom's command-line tool. Its commands, flags, output and exit
//! codes are a public contract documented in docs/cli.md.
//!
//! One file per command group: `cluster.rs`, `brokers.rs`, `topics.rs`,
//! `configs.rs`, `leader_election.rs`, `delete_records.rs`, `reassign.rs`,
//! `groups.rs`, `transactions.rs`, `produce.rs`, `consume.rs`, `perf/` (producer and consumer
//! benchmarks), `dev.rs`; all output goes through `output.rs`, progress
//! indicators through `progress.rs`.

mod balancer;
mod brokers;
mod cluster;
mod configs;
mod consume;
mod delete_records;
mod dev;
mod groups;
mod leader_election;
mod output;
mod perf;
mod produce;
mod progress;
mod reassign;
mod reset_offsets;
mod throttles;
mod topics;
mod transactions;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use strom_client::{Admin, ClientConfig, DEFAULT_BOOTSTRAP_SERVER, Error};

use crate::output::{Format, Output};

/// Command-line tool for Strom, a Kafka-style distributed commit log.
#[derive(Debug, Parser)]
#[command(name = "strom", version, about, propagate_version = true)]
struct Cli {
    /// Nodes to contact: HOST:PORT[,HOST:PORT…] (any node's client port).
    #[arg(
        long,
        global = true,
        env = "STROM_BOOTSTRAP_SERVER",
        value_name = "HOST:PORT[,HOST:PORT…]",
        default_value = DEFAULT_BOOTSTRAP_SERVER,
        value_parser = parse_bootstrap
    )]
    bootstrap_server: Bootstrap,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Give up on a request (retries included) after this many milliseconds
    /// (default 30000). For `strom dev`: the readiness wait (default 60000);
    /// for `consume`: exit after this long without a new record (default:
    /// never); for `perf consume`: the same (default 10000).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

/// The parsed `--bootstrap-server` list.
#[derive(Debug, Clone)]
struct Bootstrap(Vec<String>);

fn parse_bootstrap(s: &str) -> Result<Bootstrap, String> {
    strom_client::parse_bootstrap_servers(s)
        .map(Bootstrap)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Describe the cluster: controller quorum and brokers.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Decommission and recommission brokers; describe their load.
    #[command(subcommand)]
    Brokers(brokers::BrokersCommand),
    /// The built-in balancer (`balancer.mode`): its state and moves.
    #[command(subcommand)]
    Balancer(balancer::BalancerCommand),
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// List, describe and delete consumer groups.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// List and describe transactions, describe a partition's producers,
    /// find and abort hanging transactions (as kafka-transactions).
    #[command(subcommand)]
    Transactions(transactions::TransactionsCommand),
    /// Describe and change topic and broker configs, live.
    #[command(subcommand)]
    Configs(configs::ConfigsCommand),
    /// Run preferred or unclean leader elections.
    LeaderElection(leader_election::LeaderElectionArgs),
    /// Delete the records of partitions below given offsets.
    DeleteRecords(delete_records::DeleteRecordsArgs),
    /// Move partition replicas between brokers: generate, execute, verify,
    /// cancel and list reassignment plans (Kafka's JSON).
    #[command(subcommand)]
    Reassign(reassign::ReassignCommand),
    /// Send records read from stdin, one per line.
    Produce(produce::ProduceArgs),
    /// Print records of a topic.
    Consume(consume::ConsumeArgs),
    /// Measure producer or consumer throughput and latency.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// Start a local cluster of combined nodes; Ctrl-C stops it.
    Dev(dev::DevArgs),
}

impl Command {
    /// Checks across flags that clap cannot express; a message is a usage error.
    fn validate(&self) -> Result<(), String> {
        match self {
            Command::Dev(args) => args.validate(),
            Command::Consume(args) => args.validate(),
            Command::Configs(command) => command.validate(),
            _ => Ok(()),
        }
    }

    /// Whether the command moves data and benefits from worker threads
    /// (the producer's sender, decompression, the caller's loop).
    fn moves_data(&self) -> bool {
        matches!(
            self,
            Command::Produce(_) | Command::Consume(_) | Command::Perf(_)
        )
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = cli.command.validate() {
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit();
    }
    let output = Output::new(cli.output);
    let mut builder = if cli.command.moves_data() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            output.error(&Error::InvalidArgument(format!(
                "cannot start the async runtime: {e}"
            )));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, &output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output.error(&e);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, output: &Output) -> Result<(), Error> {
    let timeout = cli.timeout_ms.map(Duration::from_millis);
    if let Command::Dev(args) = cli.command {
        return dev::run(args, timeout, output).await;
    }
    let mut config = ClientConfig {
        bootstrap_servers: cli.bootstrap_server.0,
        ..Default::default()
    };
    match cli.command {
        Command::Consume(args) => return consume::run(args, config, timeout, output).await,
        Command::Perf(command) => return perf::run(command, config, timeout, output).await,
        _ => {}
    }
    if let Some(timeout) = timeout {
        config.request_timeout = timeout;
    }
    if let Command::Produce(args) = cli.command {
        return produce::run(args, config, output).await;
    }
    let admin = Admin::connect(config).await?;
    match cli.command {
        Command::Cluster(command) => cluster::run(command, &admin, output).await,
        Command::Brokers(command) => brokers::run(command, &admin, output).await,
        Command::Balancer(command) => balancer::run(command, &admin, output).await,
        Command::Topics(command) => topics::run(command, &admin, output).await,
        Command::Groups(command) => groups::run(command, &admin, output).await,
        Command::Transactions(command) => transactions::run(command, &admin, output).await,
        Command::Configs(command) => configs::run(command, &admin, output).await,
        Command::LeaderElection(args) => leader_election::run(args, &admin, output).await,
        Command::DeleteRecords(args) => delete_records::run(args, &admin, output).await,
        Command::Reassign(command) => reassign::run(command, &admin, output).await,
        Command::Dev(_) | Command::Produce(_) | Command::Consume(_) | Command::Perf(_) => {
            unreachable!("handled above")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_are_reported_by_clap_with_exit_code_2() {
        let cases: &[&[&str]] = &[
            &["strom", "topics", "create"],
            &[
                "strom",
                "--bootstrap-server",
                "nohost",
                "cluster",
                "describe",
            ],
            &["strom", "--output", "yaml", "topics", "list"],
            &[
                "strom",
                "topics",
                "create",
                "--topic",
                "t",
                "--partitions",
                "x",
                "--replication-factor",
                "1",
            ],
            &["strom", "leader-election", "--election-type", "preferred"],
            &[
                "strom",
                "leader-election",
                "--election-type",
                "fast",
                "--all-topic-partitions",
            ],
            &[
                "strom",
                "leader-election",
                "--election-type",
                "preferred",
                "--topic",
                "t",
            ],
            &[
                "strom",
                "leader-election",
                "--election-type",
                "preferred",
                "--all-topic-partitions",
                "--topic",
                "t",
                "--partition",
                "0",
            ],
            &["strom", "dev", "--nodes", "0"],
            &["strom", "produce", "--topic", "t", "--partition", "-1"],
            &["strom", "produce", "--topic", "t", "--acks", "2"],
            &[
                "strom",
                "produce",
                "--topic",
                "t",
                "--compression",
                "brotli",
            ],
            &["strom", "consume", "--topic", "t", "--offset", "5"],
            &[
                "strom",
                "consume",
                "--topic",
                "t",
                "--offset",
                "-3",
                "--partition",
                "0",
            ],
            &[
                "strom",
                "consume",
                "--topic",
                "t",
                "--from-beginning",
                "--offset",
                "latest",
            ],
            &[
                "strom",
                "perf",
                "produce",
                "--topic",
                "t",
                "--num-records",
                "10",
                "--record-size",
                "10",
                "--throughput",
                "0",
            ],
            &["strom", "perf", "consume", "--topic", "t"],
            &["strom", "delete-records"],
            &["strom", "transactions", "describe"],
            &[
                "strom",
                "transactions",
                "describe-producers",
                "--topic",
                "t",
            ],
            &[
                "strom",
                "transactions",
                "describe-producers",
                "--topic",
                "t",
                "--partition",
                "-1",
            ],
            &["strom", "transactions", "find-hanging"],
            &[
                "strom",
                "transactions",
                "find-hanging",
                "--partition",
                "0",
                "--broker-id",
                "1",
            ],
            &[
                "strom",
                "transactions",
                "find-hanging",
                "--broker-id",
                "1",
                "--max-transaction-timeout",
                "x",
            ],
            &[
                "strom",
                "transactions",
                "abort",
                "--topic",
                "t",
                "--partition",
                "0",
            ],
            &["strom", "configs", "describe", "--entity-type", "topics"],
            &[
                "strom",
                "configs",
                "describe",
                "--entity-type",
                "topics",
                "--entity-default",
            ],
            &[
                "strom",
                "configs",
                "describe",
                "--entity-type",
                "brokers",
                "--entity-name",
                "b1",
            ],
            &[
                "strom",
                "configs",
                "describe",
                "--entity-type",
                "groups",
                "--entity-name",
                "g",
            ],
            &[
                "strom",
                "configs",
                "alter",
                "--entity-type",
                "topics",
                "--entity-name",
                "t",
            ],
            &[
                "strom",
                "configs",
                "alter",
                "--entity-type",
                "brokers",
                "--entity-name",
                "1",
                "--entity-default",
                "--add-config",
                "a=1",
            ],
        ];
        for args in cases {
            let code = match Cli::try_parse_from(*args) {
                // Cross-flag checks run after parsing and exit like clap's.
                Ok(cli) => {
                    let message = cli.command.validate().unwrap_err();
                    Cli::command()
                        .error(clap::error::ErrorKind::ValueValidation, message)
                        .exit_code()
                }
                Err(err) => err.exit_code(),
            };
            assert_eq!(code, 2, "{args:?}");
        }
    }

    #[test]
    fn data_commands_parse_kafka_style_flags() {
        let cli = Cli::try_parse_from([
            "strom",
            "perf",
            "produce",
            "--topic",
            "t",
            "--num-records",
            "1000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            "acks=1",
            "linger.ms=10",
            "--output",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.output, Format::Json);
        assert!(cli.command.moves_data());
        let cli = Cli::try_parse_from([
            "strom",
            "consume",
            "--topic",
            "t",
            "--partition",
            "2",
            "--offset",
            "17",
            "--max-messages",
            "5",
            "--print-key",
        ])
        .unwrap();
        cli.command.validate().unwrap();
        Cli::try_parse_from([
            "strom",
            "produce",
            "--topic",
            "t",
            "--key-separator",
            ":",
            "--acks",
            "0",
            "--compression",
            "zstd",
        ])
        .unwrap();
    }

    #[test]
    fn transactions_commands_parse_kafka_transactions_flags() {
        let cases: &[&[&str]] = &[
            &["strom", "transactions", "list"],
            &[
                "strom",
                "transactions",
                "describe",
                "--transactional-id",
                "tx",
            ],
            &[
                "strom",
                "transactions",
                "describe-producers",
                "--topic",
                "t",
                "--partition",
                "0",
            ],
            &["strom", "transactions", "find-hanging", "--broker-id", "1"],
            &[
                "strom",
                "transactions",
                "find-hanging",
                "--broker-id",
                "1",
                "--max-transaction-timeout",
                "5",
            ],
            &[
                "strom",
                "transactions",
                "find-hanging",
                "--topic",
                "t",
                "--partition",
                "2",
            ],
            &[
                "strom",
                "transactions",
                "abort",
                "--topic",
                "t",
                "--partition",
                "0",
                "--start-offset",
                "17",
            ],
        ];
        for args in cases {
            Cli::try_parse_from(*args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn global_flags_parse_anywhere() {
        let cli = Cli::try_parse_from([
            "strom",
            "topics",
            "list",
            "--output",
            "json",
            "--bootstrap-server",
            "a:1,b:2",
            "--timeout-ms",
            "500",
        ])
        .unwrap();
        assert_eq!(cli.bootstrap_server.0, ["a:1", "b:2"]);
        assert_eq!(cli.output, Format::Json);
        assert_eq!(cli.timeout_ms, Some(500));
    }

    #[test]
    fn create_accepts_an_assignment_instead_of_counts() {
        Cli::try_parse_from([
            "strom",
            "topics",
            "create",
            "--topic",
            "t",
            "--replica-assignment",
            "0:1,1:0",
        ])
        .unwrap();
        Cli::try_parse_from([
            "strom",
            "topics",
            "create",
            "--topic",
            "t",
            "--partitions",
            "-1",
            "--replication-factor",
            "1",
        ])
        .unwrap();
    }

    #[test]
    fn transactional_flags_need_a_transactional_id() {
        let base = ["strom", "produce", "--topic", "t"];
        let table: &[(&[&str], bool)] = &[
            (&["--transactional-id", "x"], true),
            (
                &[
                    "--transactional-id",
                    "x",
                    "--transaction-size",
                    "10",
                    "--abort",
                ],
                true,
            ),
            (&["--transaction-size", "10"], false),
            (&["--abort"], false),
            (
                &["--transactional-id", "x", "--transaction-size", "0"],
                false,
            ),
        ];
        for (extra, ok) in table {
            let args = base.iter().chain(extra.iter());
            assert_eq!(Cli::try_parse_from(args).is_ok(), *ok, "{extra:?}");
        }
        let perf = [
            "strom",
            "perf",
            "produce",
            "--topic",
            "t",
            "--num-records",
            "10",
            "--record-size",
            "10",
        ];
        let table: &[(&[&str], bool)] = &[
            (&["--transactional-id", "x"], true),
            (&["--transaction-duration-ms", "100"], true),
            (&["--transaction-duration-ms", "0"], false),
        ];
        for (extra, ok) in table {
            let args = perf.iter().chain(extra.iter());
            assert_eq!(Cli::try_parse_from(args).is_ok(), *ok, "{extra:?}");
        }
    }
}
