//! `strom balancer status`: the built-in balancer's mode (the active
//! controller's `balancer.mode`), whether it has work, each available
//! broker's replica count and disk use, and the moves in progress with
//! their bytes (docs/reassignment.md, "Balancer").

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

/// `status`; JSON `{"mode", "controller", "state", "disk_threshold_percent",
/// "brokers": [{"id", "replicas", "disk_used_bytes", "disk_total_bytes",
/// "disk_used_percent"}], "moves": [{"topic", "partition", "replicas",
/// "adding_replicas", "removing_replicas", "bytes_copied",
/// "bytes_remaining"}]}`.
#[derive(Debug, Serialize)]
struct Status {
    /// `off`, `node-add`, `continuous`, or `unknown` when the active controller is not a
    /// broker (its static settings are not reported).
    mode: String,
    /// The active controller's id.
    controller: Option<i32>,
    /// `off`, `balanced`, `pending` (counts differ by two or more, or in
    /// `continuous` a broker's disk is over the threshold: the balancer
    /// starts moves within a second) or `in_progress`.
    state: &'static str,
    /// The active controller's `balancer.disk.threshold.percent`, when it
    /// is a broker (its static settings are reported).
    disk_threshold_percent: Option<u8>,
    brokers: Vec<BrokerCount>,
    moves: Vec<Move>,
}

#[derive(Debug, Serialize)]
struct BrokerCount {
    id: i32,
    replicas: u32,
    /// The data directory's file system as the broker last reported it;
    /// `null` when unknown.
    disk_used_bytes: Option<u64>,
    disk_total_bytes: Option<u64>,
    disk_used_percent: Option<f64>,
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
    let settings = match controller {
        Some(id) if cluster.brokers.iter().any(|b| b.id == id) => {
            admin.describe_configs(&ConfigResource::Broker(id)).await?
        }
        _ => Vec::new(),
    };
    let setting = |name: &str| {
        settings
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    let mode = setting("balancer.mode").unwrap_or_else(|| "unknown".to_owned());
    let disk_threshold_percent =
        setting("balancer.disk.threshold.percent").and_then(|v| v.parse().ok());
    let brokers: Vec<BrokerCount> = cluster
        .brokers
        .iter()
        .filter(|b| b.state == BrokerState::Unfenced && !b.decommissioning)
        .map(|b| BrokerCount {
            id: b.id,
            replicas: b.replicas,
            disk_used_bytes: b.disk.map(|d| d.0),
            disk_total_bytes: b.disk.map(|d| d.1),
            disk_used_percent: b.disk.map(|(used, total)| percent(used, total)),
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
    let disk_full = disk_threshold_percent.is_some_and(|t: u8| {
        brokers
            .iter()
            .any(|b| b.disk_used_percent.is_some_and(|p| p > f64::from(t)))
    });
    let most = brokers.iter().map(|b| b.replicas).max().unwrap_or(0);
    let least = brokers.iter().map(|b| b.replicas).min().unwrap_or(0);
    let state = if mode == "off" {
        "off"
    } else if !moves.is_empty() {
        "in_progress"
    } else if most >= least + 2 || (mode == "continuous" && disk_full) {
        "pending"
    } else {
        "balanced"
    };
    Ok(Status {
        mode,
        controller,
        state,
        disk_threshold_percent,
        brokers,
        moves,
    })
}

/// `used` of `total` in percent, rounded to one decimal.
fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (used as f64 * 1000.0 / total as f64).round() / 10.0
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
            format!(
                "Disk use per broker{}: {}",
                self.disk_threshold_percent
                    .map_or_else(String::new, |t| format!(" (threshold {t}%)")),
                self.brokers
                    .iter()
                    .map(
                        |b| match (b.disk_used_percent, b.disk_used_bytes, b.disk_total_bytes) {
                            (Some(p), Some(u), Some(t)) =>
                                format!("{}={p:.1}% ({u}/{t} bytes)", b.id),
                            _ => format!("{}=unknown", b.id),
                        }
                    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_shows_disk_use_per_broker() {
        let status = Status {
            mode: "continuous".into(),
            controller: Some(1),
            state: "balanced",
            disk_threshold_percent: Some(80),
            brokers: vec![
                BrokerCount {
                    id: 1,
                    replicas: 3,
                    disk_used_bytes: Some(850),
                    disk_total_bytes: Some(1000),
                    disk_used_percent: Some(percent(850, 1000)),
                },
                BrokerCount {
                    id: 2,
                    replicas: 3,
                    disk_used_bytes: None,
                    disk_total_bytes: None,
                    disk_used_percent: None,
                },
            ],
            moves: Vec::new(),
        };
        assert_eq!(
            status.table()[3],
            "Disk use per broker (threshold 80%): 1=85.0% (850/1000 bytes) 2=unknown"
        );
        for (used, total, want) in [(1, 3, 33.3), (0, 0, 0.0), (2, 3, 66.7), (5, 5, 100.0)] {
            assert_eq!(percent(used, total), want, "{used}/{total}");
        }
    }
}
