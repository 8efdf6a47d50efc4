//! `strom cluster describe`.

use clap::Subcommand;
use strom_client::{Admin, ClusterDescription, Error};

use crate::output::{Output, Table, columns};

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Show the cluster id, the controller quorum and every registered broker.
    Describe,
}

pub(crate) async fn run(
    command: ClusterCommand,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    match command {
        ClusterCommand::Describe => {
            let cluster = admin.describe_cluster().await?;
            output.print(&cluster);
            Ok(())
        }
    }
}

impl Table for ClusterDescription {
    fn table(&self) -> Vec<String> {
        let quorum = &self.controller;
        let leader = match quorum.leader_id {
            Some(id) => format!("{id} (epoch {})", quorum.leader_epoch),
            None => "none".to_owned(),
        };
        let mut lines = vec![
            format!("Cluster id: {}", self.cluster_id),
            format!("Controller leader: {leader}"),
        ];
        lines.push("Voters:".to_owned());
        let mut voters = vec![vec![
            "ID".to_owned(),
            "ADDRESS".to_owned(),
            "LAG".to_owned(),
        ]];
        voters.extend(quorum.voters.iter().map(|v| {
            let lag = v
                .lag
                .map_or_else(|| "unknown".to_owned(), |l| l.to_string());
            vec![v.id.to_string(), v.address.clone(), lag]
        }));
        lines.extend(columns(&voters).into_iter().map(|l| format!("  {l}")));
        lines.push("Brokers:".to_owned());
        let mut brokers = vec![
            ["ID", "ADDRESS", "RACK", "STATE"]
                .map(str::to_owned)
                .to_vec(),
        ];
        brokers.extend(self.brokers.iter().map(|b| {
            let rack = b.rack.clone().unwrap_or_else(|| "-".to_owned());
            vec![
                b.id.to_string(),
                b.address.clone(),
                rack,
                b.state.as_str().to_owned(),
            ]
        }));
        lines.extend(columns(&brokers).into_iter().map(|l| format!("  {l}")));
        lines
    }
}

#[cfg(test)]
mod tests {
    use strom_client::{BrokerDescription, BrokerState, ControllerQuorum, VoterDescription};

    use super::*;

    #[test]
    fn table_lists_quorum_and_brokers() {
        let cluster = ClusterDescription {
            cluster_id: "c-1".into(),
            controller: ControllerQuorum {
                leader_id: Some(1),
                leader_epoch: 4,
                voters: vec![
                    VoterDescription {
                        id: 1,
                        address: "h1:9093".into(),
                        lag: Some(0),
                    },
                    VoterDescription {
                        id: 2,
                        address: "h2:9093".into(),
                        lag: None,
                    },
                ],
            },
            brokers: vec![BrokerDescription {
                id: 1,
                address: "h1:9092".into(),
                rack: None,
                state: BrokerState::Fenced,
                epoch: 1,
                incarnation_id: String::new(),
                replicas: 0,
                leaders: 0,
                bytes: None,
                decommissioning: false,
                disk: None,
            }],
            metadata_offset: 0,
        };
        assert_eq!(
            cluster.table(),
            [
                "Cluster id: c-1",
                "Controller leader: 1 (epoch 4)",
                "Voters:",
                "  ID  ADDRESS  LAG",
                "  1   h1:9093  0",
                "  2   h2:9093  unknown",
                "Brokers:",
                "  ID  ADDRESS  RACK  STATE",
                "  1   h1:9092  -     fenced",
            ]
        );
    }
}
