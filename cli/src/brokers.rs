//! `strom brokers decommission|recommission|unregister|describe`: drain a
//! broker of its replicas (leaderships first, rack aware, a few moves at a
//! time), stop a pending drain (cancelling its unfinished moves), remove a
//! stopped drained broker from the cluster, and show each broker's load.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;
use strom_client::{Admin, BrokerState, Error};

use crate::output::{Format, Output, Table};

#[derive(Debug, Subcommand)]
pub(crate) enum BrokersCommand {
    /// Move every replica off a broker, its leaderships first; once it holds
    /// none it can be stopped.
    Decommission(DecommissionArgs),
    /// Stop a pending decommission; its moves that have not finished are
    /// cancelled (the partitions go back to their original replicas).
    Recommission(BrokerArgs),
    /// Remove a stopped broker that holds no replica from the cluster
    /// (Kafka's UnregisterBroker).
    Unregister(BrokerArgs),
    /// Each broker's state, replicas, leaderships, bytes and whether it is
    /// being decommissioned.
    Describe,
}

#[derive(Debug, Args)]
pub(crate) struct DecommissionArgs {
    /// The broker to drain.
    #[arg(long, value_name = "N")]
    broker_id: i32,
    /// Wait until the broker holds no replica, printing progress.
    #[arg(long)]
    wait: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BrokerArgs {
    /// The broker.
    #[arg(long, value_name = "N")]
    broker_id: i32,
}

pub(crate) async fn run(
    command: BrokersCommand,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    match command {
        BrokersCommand::Decommission(args) => {
            let id = args.broker_id;
            let (mut replicas, mut leaders) = admin.alter_broker_decommission(id, true).await?;
            progress(output, id, replicas, leaders);
            if args.wait {
                while replicas > 0 || leaders > 0 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let now = broker_load(admin, id).await?;
                    if now != (replicas, leaders) {
                        (replicas, leaders) = now;
                        progress(output, id, replicas, leaders);
                    }
                }
                if output.format() == Format::Table {
                    output.lines(&[format!("Broker {id} holds no replica: it can be stopped.")]);
                }
            }
            Ok(())
        }
        BrokersCommand::Recommission(args) => {
            admin
                .alter_broker_decommission(args.broker_id, false)
                .await?;
            if output.format() == Format::Table {
                output.lines(&[format!(
                    "Broker {} is no longer being decommissioned.",
                    args.broker_id
                )]);
            } else {
                output.json(&serde_json::json!({"id": args.broker_id, "decommissioning": false}));
            }
            Ok(())
        }
        BrokersCommand::Unregister(args) => {
            admin.unregister_broker(args.broker_id).await?;
            if output.format() == Format::Table {
                output.lines(&[format!("Broker {} is unregistered.", args.broker_id)]);
            } else {
                output.json(&serde_json::json!({"id": args.broker_id, "unregistered": true}));
            }
            Ok(())
        }
        BrokersCommand::Describe => {
            let cluster = admin.describe_cluster().await?;
            let rows = cluster
                .brokers
                .into_iter()
                .map(|b| BrokerRow {
                    id: b.id,
                    state: b.state,
                    replicas: b.replicas,
                    leaders: b.leaders,
                    bytes: b.bytes,
                    decommissioning: b.decommissioning,
                })
                .collect();
            output.print(&Brokers(rows));
            Ok(())
        }
    }
}

/// The replicas and leaderships `id` still holds.
async fn broker_load(admin: &Admin, id: i32) -> Result<(u32, u32), Error> {
    let cluster = admin.describe_cluster().await?;
    Ok(cluster
        .brokers
        .iter()
        .find(|b| b.id == id)
        .map_or((0, 0), |b| (b.replicas, b.leaders)))
}

fn progress(output: &Output, id: i32, replicas: u32, leaders: u32) {
    match output.format() {
        Format::Table => output.lines(&[format!(
            "Decommissioning broker {id}: {replicas} replicas and {leaders} leaderships left."
        )]),
        Format::Json => output.json(&serde_json::json!({
            "id": id,
            "replicas": replicas,
            "leaders": leaders,
            "decommissioning": true,
        })),
    }
}

/// One broker in `describe`.
#[derive(Debug, Serialize)]
struct BrokerRow {
    id: i32,
    state: BrokerState,
    replicas: u32,
    leaders: u32,
    bytes: Option<u64>,
    decommissioning: bool,
}

/// `describe`'s rows; JSON the list.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Brokers(Vec<BrokerRow>);

impl Table for Brokers {
    fn table(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{:<6} {:<20} {:>9} {:>8} {:>14} {}",
            "ID", "STATE", "REPLICAS", "LEADERS", "BYTES", "DECOMMISSIONING"
        )];
        for b in &self.0 {
            let state = serde_json::to_value(b.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            lines.push(format!(
                "{:<6} {:<20} {:>9} {:>8} {:>14} {}",
                b.id,
                state,
                b.replicas,
                b.leaders,
                b.bytes.map_or_else(|| "-".to_owned(), |n| n.to_string()),
                b.decommissioning
            ));
        }
        lines
    }
}
