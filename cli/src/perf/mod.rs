//! `strom perf produce|consume`: throughput and latency benchmarks with
//! kafka-producer-perf-test's and kafka-consumer-perf-test's output.
//!
//! * `produce.rs`, `consume.rs` — the two commands.
//! * `stats.rs` — the measurements and their report lines (pure).

mod consume;
mod produce;
mod stats;

use std::time::Duration;

use clap::Subcommand;
use strom_client::{ClientConfig, Error};

use crate::output::Output;

#[derive(Debug, Subcommand)]
pub(crate) enum PerfCommand {
    /// Send records as fast as allowed and report throughput and latency.
    Produce(produce::PerfProduceArgs),
    /// Read records from the beginning and report throughput.
    Consume(consume::PerfConsumeArgs),
}

pub(crate) async fn run(
    command: PerfCommand,
    mut client: ClientConfig,
    timeout: Option<Duration>,
    output: &Output,
) -> Result<(), Error> {
    match command {
        PerfCommand::Produce(args) => {
            if let Some(timeout) = timeout {
                client.request_timeout = timeout;
            }
            produce::run(args, client, output).await
        }
        PerfCommand::Consume(args) => consume::run(args, client, timeout, output).await,
    }
}
