//! `strom balancer status`: the built-in balancer's mode (the active
//! controller's `balancer.mode`), whether it has work, each available
//! broker's replica count and the moves in progress with their bytes
//! (docs/reassignment.md, "Balancer").

use clap::Subcommand;
use serde::Serialize;
use strom_client::{Admin, BrokerState, ConfigResource, Error};

use crate::output::{Output, Table};

#[derive(Debug, Subcommand)]
pub(crate) enum BalancerCommand {
    /// The balancer's mode, state, replicas per broker and moves in progress.
    Status,
}

pub(crate) async fn run(
    command: BalancerCommand,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    match command {
        BalancerCommand::Status => {
            let status = status(admin).await?;
            output.print(&status);
            Ok(())
        }
    }
}

/// `status`; JSON `{"mode", "controller", "state", "brokers": [{"id",
/// "replicas"}], "moves": [{"topic", "partition", "replicas",
/// "adding_replicas", "removing_replicas", "bytes_copied",
/// "bytes_remaining"}]}`.
#[derive(Debug, Serialize)]
struct Status {
    /// `off`, `node-add`, `continuous`, or `unknown` when the active controller is not a
    /// broker (its static settings are not reported).
    mode: String,
    /// The active controller's id.
    controller: Option<i32>,
    /// `off`, `balanced`, `pending` (counts differ by two or more: the
    /// balancer starts moves within a second) or `in_progress`.
    state: &'static str,
    brokers: Vec<BrokerCount>,
    moves: Vec<Move>,
}

#[derive(Debug, Serialize)]
struct BrokerCount {
    id: i32,
    replicas: u32,
}

#[derive(Debug, Serialize)]
struct Move {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
    adding_replicas: Vec<i32>,
    removing_replicas: Vec<i32>,
    bytes_copied: Option<u64>,
    bytes_remaining: Option<u64>,
}

async fn status(admin: &Admin) -> Result<Status, Error> {
    let cluster = admin.describe_cluster().await?;
    let controller = cluster.controller.leader_id;
    let mode = match controller {
        Some(id) if cluster.brokers.iter().any(|b| b.id == id) => admin
            .describe_configs(&ConfigResource::Broker(id))
            .await?
            .into_iter()
            .find(|e| e.name == "balancer.mode")
            .and_then(|e| e.value)
            .unwrap_or_else(|| "unknown".to_owned()),
        _ => "unknown".to_owned(),
    };
    let brokers: Vec<BrokerCount> = cluster
        .brokers
        .iter()
        .filter(|b| b.state == BrokerState::Unfenced && !b.decommissioning)
        .map(|b| BrokerCount {
            id: b.id,
            replicas: b.replicas,
        })
        .collect();
    let moves: Vec<Move> = admin
        .list_partition_reassignments(None)
        .await?
        .into_iter()
        .map(|r| {
            let progress = r.progress_bytes();
            Move {
                bytes_copied: progress.map(|p| p.0),
                bytes_remaining: progress.map(|p| p.1),
                topic: r.topic,
                partition: r.partition,
                replicas: r.replicas,
                adding_replicas: r.adding_replicas,
                removing_replicas: r.removing_replicas,
            }
        })
        .collect();
    let most = brokers.iter().map(|b| b.replicas).max().unwrap_or(0);
    let least = brokers.iter().map(|b| b.replicas).min().unwrap_or(0);
    let state = if mode == "off" {
        "off"
    } else if !moves.is_empty() {
        "in_progress"
    } else if most >= least + 2 {
        "pending"
    } else {
        "balanced"
    };
    Ok(Status {
        mode,
        controller,
        state,
        brokers,
        moves,
    })
}

fn ids(list: &[i32]) -> String {
    list.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl Table for Status {
    fn table(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "Balancer mode: {} (active controller {})",
                self.mode,
                self.controller
                    .map_or_else(|| "unknown".to_owned(), |c| c.to_string())
            ),
            format!("State: {}", self.state),
            format!(
                "Replicas per broker: {}",
                self.brokers
                    .iter()
                    .map(|b| format!("{}={}", b.id, b.replicas))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            format!("Moves in progress: {}", self.moves.len()),
        ];
        for m in &self.moves {
            let bytes = match (m.bytes_copied, m.bytes_remaining) {
                (Some(c), Some(r)) => format!(" ({c} bytes copied, {r} remaining)"),
                _ => String::new(),
            };
            lines.push(format!(
                "  {}-{}: replicas: {}. adding: {}. removing: {}.{bytes}",
                m.topic,
                m.partition,
                ids(&m.replicas),
                ids(&m.adding_replicas),
                ids(&m.removing_replicas)
            ));
        }
        lines
    }
}
