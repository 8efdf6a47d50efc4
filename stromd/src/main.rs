//! `stromd`: one Strom node — controller, broker, or both.
//!
//! * `config`: flags, `STROM_*` environment and TOML, validated.
//! * `node`: starts the parts, serves gRPC, handles signals.
//! * `view`: what the admin endpoint reads of the node (controller, broker
//!   standing and counters, data directory, RPC metrics).
//! * `admin`: the HTTP admin endpoint (`/healthz`, `/readyz`, `/metrics`).
//! * `metrics`: the Prometheus exposition `/metrics` serves.
//!
//! `admin` uses `metrics`, both read `view`: dependencies point one way.
//! * `rpc`: the tower layer on the gRPC servers (a span and a duration
//!   histogram per request).

mod admin;
mod config;
mod metrics;
mod node;
mod rpc;
mod view;

use std::process::ExitCode;

use clap::Parser;

/// Logs to stderr, filtered by `RUST_LOG` (or `STROM_LOG`) directives,
/// human-readable or one JSON object per line (`--log-format json`).
fn init_tracing(format: config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_from_env("STROM_LOG"))
        .unwrap_or_else(|_| EnvFilter::new("info,openraft=warn,h2=warn,tower=warn,hyper=warn"));
    let json = format == config::LogFormat::Json;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr on a full disk) is
        // dropped: by default the subscriber reports it with `eprintln!`,
        // which panics on the same stderr and took the node down with it.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let args = config::Args::parse();
    init_tracing(args.log_format);
    let config = match config::NodeConfig::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: INVALID_CONFIG: {e:#}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: UNKNOWN_SERVER_ERROR: start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(node::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
