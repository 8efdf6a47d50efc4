//! `strom groups list | describe | delete` (and, in `reset_offsets.rs`,
//! `reset-offsets` and `delete-offsets`), mirroring kafka-consumer-groups:
//! its describe views (offsets by default, `--members [--verbose]`,
//! `--state`) and columns.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde::Serialize;
use strom_client::{
    Admin, Consumer, ConsumerConfig, Error, GroupDescription, GroupListing, GroupMemberDescription,
    TopicPartition,
};

use crate::output::{Output, Table, columns};

#[derive(Debug, Subcommand)]
pub(crate) enum GroupsCommand {
    /// List every consumer group of the cluster.
    List,
    /// Describe a group: committed offsets and lag (default), members, or state.
    Describe(DescribeArgs),
    /// Delete a group without members, with its committed offsets.
    Delete(GroupArg),
    /// Reset a group's committed offsets (only while it has no members).
    ResetOffsets(crate::reset_offsets::ResetArgs),
    /// Delete a group's committed offsets of a topic or partition.
    DeleteOffsets(crate::reset_offsets::DeleteOffsetsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GroupArg {
    /// Group id.
    #[arg(long)]
    group: String,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("view").args(["members", "state", "offsets"]))]
pub(crate) struct DescribeArgs {
    /// Group id.
    #[arg(long)]
    group: String,
    /// Show the members and their partitions.
    #[arg(long)]
    members: bool,
    /// With --members: list each member's partitions.
    #[arg(long, requires = "members")]
    verbose: bool,
    /// Show the group's state, assignor and member count.
    #[arg(long)]
    state: bool,
    /// Show committed offsets, log end offsets and lag (the default).
    #[arg(long)]
    offsets: bool,
}

pub(crate) async fn run(
    command: GroupsCommand,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    match command {
        GroupsCommand::List => {
            output.print(&Listing(admin.list_groups().await?));
            Ok(())
        }
        GroupsCommand::Describe(args) => describe(args, admin, output).await,
        GroupsCommand::ResetOffsets(args) => crate::reset_offsets::reset(args, admin, output).await,
        GroupsCommand::DeleteOffsets(args) => {
            crate::reset_offsets::delete_offsets(args, admin, output).await
        }
        GroupsCommand::Delete(args) => {
            admin.delete_group(&args.group).await?;
            output.print(&Deleted { group: args.group });
            Ok(())
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Listing(Vec<GroupListing>);

impl Table for Listing {
    fn table(&self) -> Vec<String> {
        let mut rows = vec![vec![
            "GROUP".to_owned(),
            "STATE".to_owned(),
            "PROTOCOL-TYPE".to_owned(),
            "MEMBERS".to_owned(),
        ]];
        rows.extend(self.0.iter().map(|g| {
            vec![
                g.group.clone(),
                g.state.clone(),
                g.protocol_type.clone(),
                g.members.to_string(),
            ]
        }));
        columns(&rows)
    }
}

#[derive(Debug, Serialize)]
struct Deleted {
    group: String,
}

impl Table for Deleted {
    fn table(&self) -> Vec<String> {
        vec![format!(
            "Deletion of requested consumer groups ('{}') was successful.",
            self.group
        )]
    }
}

/// One row of the offsets view.
#[derive(Debug, Serialize)]
struct OffsetRow {
    topic: String,
    partition: i32,
    current_offset: Option<i64>,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    member_id: Option<String>,
    #[serde(skip)]
    host: Option<String>,
    #[serde(skip)]
    client_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Offsets,
    Members { verbose: bool },
    State,
}

/// `{"group", "state", "assignor", "epoch", "members", "offsets"}`.
#[derive(Debug, Serialize)]
struct Described {
    #[serde(flatten)]
    group: GroupDescription,
    offsets: Vec<OffsetRow>,
    #[serde(skip)]
    view: View,
}

async fn describe(args: DescribeArgs, admin: &Admin, output: &Output) -> Result<(), Error> {
    let view = if args.members {
        View::Members {
            verbose: args.verbose,
        }
    } else if args.state {
        View::State
    } else {
        View::Offsets
    };
    let group = admin.describe_group(&args.group).await?;
    let committed = admin.list_group_offsets(&args.group).await?;
    // Every partition committed or assigned, with its owner.
    let mut rows: BTreeMap<(String, i32), OffsetRow> = BTreeMap::new();
    for c in committed {
        rows.insert(
            (c.topic.clone(), c.partition),
            OffsetRow {
                topic: c.topic,
                partition: c.partition,
                current_offset: Some(c.offset),
                log_end_offset: None,
                lag: None,
                member_id: None,
                host: None,
                client_id: None,
            },
        );
    }
    for m in &group.members {
        for t in &m.assignment {
            for p in &t.partitions {
                let row = rows.entry((t.topic.clone(), *p)).or_insert(OffsetRow {
                    topic: t.topic.clone(),
                    partition: *p,
                    current_offset: None,
                    log_end_offset: None,
                    lag: None,
                    member_id: None,
                    host: None,
                    client_id: None,
                });
                row.member_id = Some(m.member_id.clone());
                row.host = Some(m.host.clone());
                row.client_id = Some(m.client_id.clone());
            }
        }
    }
    if !rows.is_empty() {
        let consumer = Consumer::connect(ConsumerConfig {
            client: admin.config().clone(),
            ..ConsumerConfig::default()
        })
        .await?;
        let tps: Vec<TopicPartition> = rows
            .keys()
            .map(|(t, p)| TopicPartition::new(t.clone(), *p))
            .collect();
        let ends = consumer.end_offsets(&tps).await?;
        for (tp, end) in ends {
            if let Some(row) = rows.get_mut(&(tp.topic.clone(), tp.partition)) {
                row.log_end_offset = Some(end);
                row.lag = row.current_offset.map(|c| (end - c).max(0));
            }
        }
    }
    output.print(&Described {
        group,
        offsets: rows.into_values().collect(),
        view,
    });
    Ok(())
}

fn or_dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

fn partition_count(m: &GroupMemberDescription) -> usize {
    m.assignment.iter().map(|t| t.partitions.len()).sum()
}

impl Table for Described {
    fn table(&self) -> Vec<String> {
        let g = &self.group;
        match self.view {
            View::Offsets => {
                let mut rows = vec![
                    [
                        "GROUP",
                        "TOPIC",
                        "PARTITION",
                        "CURRENT-OFFSET",
                        "LOG-END-OFFSET",
                        "LAG",
                        "CONSUMER-ID",
                        "HOST",
                        "CLIENT-ID",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                ];
                rows.extend(self.offsets.iter().map(|r| {
                    vec![
                        g.group.clone(),
                        r.topic.clone(),
                        r.partition.to_string(),
                        or_dash(&r.current_offset),
                        or_dash(&r.log_end_offset),
                        or_dash(&r.lag),
                        or_dash(&r.member_id),
                        or_dash(&r.host),
                        or_dash(&r.client_id),
                    ]
                }));
                columns(&rows)
            }
            View::Members { verbose } => {
                let mut header = ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]
                    .map(str::to_owned)
                    .to_vec();
                if verbose {
                    header.push("ASSIGNMENT".to_owned());
                }
                let mut rows = vec![header];
                rows.extend(g.members.iter().map(|m| {
                    let mut row = vec![
                        g.group.clone(),
                        m.member_id.clone(),
                        m.host.clone(),
                        m.client_id.clone(),
                        partition_count(m).to_string(),
                    ];
                    if verbose {
                        let a: Vec<String> = m
                            .assignment
                            .iter()
                            .map(|t| {
                                let ps: Vec<String> =
                                    t.partitions.iter().map(i32::to_string).collect();
                                format!("{}({})", t.topic, ps.join(","))
                            })
                            .collect();
                        row.push(if a.is_empty() {
                            "-".to_owned()
                        } else {
                            a.join(",")
                        });
                    }
                    row
                }));
                columns(&rows)
            }
            View::State => columns(&[
                ["GROUP", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"]
                    .map(str::to_owned)
                    .to_vec(),
                vec![
                    g.group.clone(),
                    g.assignor.clone(),
                    g.state.clone(),
                    g.members.len().to_string(),
                ],
            ]),
        }
    }
}
