//! `strom topics create|list|describe|alter|delete`, with kafka-topics'
//! flags and describe layout.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde::Serialize;
use strom_client::{Admin, Error, ErrorCode, NewTopic, TopicDescription, TopicId, TopicListing};

use crate::output::{Output, Table, id_list};

#[derive(Debug, Subcommand)]
pub(crate) enum TopicsCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topic names.
    List(ListArgs),
    /// Describe topics and their partitions.
    Describe(DescribeArgs),
    /// Increase a topic's partition count.
    Alter(AlterArgs),
    /// Delete a topic.
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Topic name.
    #[arg(long)]
    topic: String,
    /// Number of partitions (not needed with --replica-assignment).
    #[arg(
        long,
        allow_negative_numbers = true,
        required_unless_present = "replica_assignment"
    )]
    partitions: Option<i32>,
    /// Replicas per partition (not needed with --replica-assignment).
    #[arg(
        long,
        allow_negative_numbers = true,
        required_unless_present = "replica_assignment"
    )]
    replication_factor: Option<i32>,
    /// A topic config, e.g. --config min.insync.replicas=2 (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    /// Explicit replicas: partitions separated by ',', brokers by ':'
    /// (0:1:2,1:2:0 puts partition 0 on brokers 0,1,2, partition 1 on 1,2,0).
    #[arg(long, value_name = "ASSIGNMENT")]
    replica_assignment: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Also list internal topics (`__consumer_offsets`).
    #[arg(long)]
    include_internal: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// Only this topic (default: every topic).
    #[arg(long)]
    topic: Option<String>,
    /// Only partitions whose ISR is smaller than their replica list.
    #[arg(long)]
    under_replicated_partitions: bool,
    /// Only partitions without a leader.
    #[arg(long)]
    unavailable_partitions: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AlterArgs {
    /// Topic name.
    #[arg(long)]
    topic: String,
    /// The new total partition count (increase only).
    #[arg(long, allow_negative_numbers = true)]
    partitions: i32,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// Topic name.
    #[arg(long)]
    topic: String,
}

pub(crate) async fn run(
    command: TopicsCommand,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    match command {
        TopicsCommand::Create(args) => create(args, admin, output).await,
        TopicsCommand::List(args) => {
            let mut topics = admin.list_topics().await?;
            if !args.include_internal {
                topics.retain(|t| !t.is_internal);
            }
            output.print(&topics);
            Ok(())
        }
        TopicsCommand::Describe(args) => {
            let names: Vec<String> = args.topic.into_iter().collect();
            let topics = admin.describe_topics(&names).await?;
            let filter = PartitionFilter {
                under_replicated: args.under_replicated_partitions,
                unavailable: args.unavailable_partitions,
            };
            output.print(&Described {
                topics: filter.apply(topics),
                filtered: filter.active(),
            });
            Ok(())
        }
        TopicsCommand::Alter(args) => {
            admin
                .create_partitions(&args.topic, args.partitions)
                .await?;
            output.print(&Altered {
                name: args.topic,
                partitions: args.partitions,
            });
            Ok(())
        }
        TopicsCommand::Delete(args) => {
            let results = admin.delete_topics(vec![args.topic.clone()]).await?;
            let result = results
                .into_iter()
                .find(|r| r.name == args.topic)
                .ok_or_else(|| {
                    Error::strom(
                        ErrorCode::UnknownServerError,
                        format!("no result for topic '{}'", args.topic),
                    )
                })?;
            if let Some(e) = result.error {
                return Err(Error::Strom(e));
            }
            output.print(&Deleted {
                name: result.name,
                topic_id: result.topic_id,
            });
            Ok(())
        }
    }
}

async fn create(args: CreateArgs, admin: &Admin, output: &Output) -> Result<(), Error> {
    let configs = parse_configs(&args.configs)?;
    let assignment = args
        .replica_assignment
        .as_deref()
        .map(parse_replica_assignment)
        .transpose()?;
    let mut topic = NewTopic::new(
        &args.topic,
        args.partitions.unwrap_or(0),
        args.replication_factor.unwrap_or(0),
    );
    topic.configs = configs;
    if let Some(assignment) = assignment {
        topic.num_partitions = args.partitions.unwrap_or(assignment.len() as i32);
        topic.replication_factor = args
            .replication_factor
            .unwrap_or_else(|| assignment.first().map_or(0, |r| r.len() as i32));
        topic.replica_assignment = assignment;
    }
    let results = admin.create_topics(vec![topic], false).await?;
    let result = results
        .into_iter()
        .find(|r| r.name == args.topic)
        .ok_or_else(|| {
            Error::strom(
                ErrorCode::UnknownServerError,
                format!("no result for topic '{}'", args.topic),
            )
        })?;
    let created = Created {
        name: result.name.clone(),
        partitions: result.num_partitions,
        replication_factor: result.replication_factor,
        topic_id: result.into_result()?,
    };
    output.print(&created);
    Ok(())
}

/// Checks with the controller that `topic` exists (and has `partition`,
/// when given) before data commands start, so that a typo fails at once
/// rather than after the producer's `max.block.ms`. Returns the topic's
/// partition count.
pub(crate) async fn check_partition(
    client: &strom_client::ClientConfig,
    topic: &str,
    partition: Option<i32>,
) -> Result<i32, Error> {
    let admin = Admin::connect(client.clone()).await?;
    let described = admin.describe_topics(&[topic.to_owned()]).await?;
    let count = described
        .iter()
        .find(|t| t.name == topic)
        .map_or(0, |t| t.partitions.len() as i32);
    if count == 0 {
        return Err(Error::strom(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic '{topic}' does not exist"),
        ));
    }
    if let Some(p) = partition
        && p >= count
    {
        return Err(Error::strom(
            ErrorCode::UnknownTopicOrPartition,
            format!("partition {p} of topic '{topic}' does not exist (it has {count} partitions)"),
        ));
    }
    Ok(count)
}

/// Parses repeated `--config KEY=VALUE`; a missing `=`, an empty key or a
/// key given twice is INVALID_CONFIG.
pub(crate) fn parse_configs(configs: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut parsed = BTreeMap::new();
    for config in configs {
        let invalid = |why: &str| {
            Error::strom(
                ErrorCode::InvalidConfig,
                format!("invalid config '{config}': {why}"),
            )
        };
        let (key, value) = config
            .split_once('=')
            .ok_or_else(|| invalid("expected KEY=VALUE"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid("empty config name"));
        }
        if parsed.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(invalid("config given more than once"));
        }
    }
    Ok(parsed)
}

/// Parses kafka-topics' `--replica-assignment`: partitions separated by
/// `,`, broker ids by `:`. Anything but non-negative integers is
/// INVALID_REPLICA_ASSIGNMENT; the controller checks the rest (brokers
/// exist, equal lengths, no duplicates).
pub(crate) fn parse_replica_assignment(text: &str) -> Result<Vec<Vec<i32>>, Error> {
    let invalid = |why: String| {
        Error::strom(
            ErrorCode::InvalidReplicaAssignment,
            format!("invalid replica assignment '{text}': {why}"),
        )
    };
    text.split(',')
        .enumerate()
        .map(|(partition, replicas)| {
            let replicas = replicas.trim();
            if replicas.is_empty() {
                return Err(invalid(format!("partition {partition} has no replicas")));
            }
            replicas
                .split(':')
                .map(|id| {
                    id.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|id| *id >= 0)
                        .ok_or_else(|| {
                            invalid(format!("partition {partition}: '{id}' is not a broker id"))
                        })
                })
                .collect()
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct Created {
    name: String,
    topic_id: TopicId,
    partitions: i32,
    replication_factor: i32,
}

impl Table for Created {
    fn table(&self) -> Vec<String> {
        vec![format!("Created topic {}.", self.name)]
    }
}

#[derive(Debug, Serialize)]
struct Deleted {
    name: String,
    topic_id: Option<TopicId>,
}

impl Table for Deleted {
    fn table(&self) -> Vec<String> {
        vec![format!("Deleted topic {}.", self.name)]
    }
}

#[derive(Debug, Serialize)]
struct Altered {
    name: String,
    partitions: i32,
}

impl Table for Altered {
    fn table(&self) -> Vec<String> {
        vec![format!(
            "Increased the partition count of topic {} to {}.",
            self.name, self.partitions
        )]
    }
}

impl Table for Vec<TopicListing> {
    fn table(&self) -> Vec<String> {
        self.iter().map(|t| t.name.clone()).collect()
    }
}

/// `--under-replicated-partitions` / `--unavailable-partitions`: keep the
/// partitions matching either flag, and the topics that still have some.
#[derive(Debug, Clone, Copy)]
struct PartitionFilter {
    under_replicated: bool,
    unavailable: bool,
}

impl PartitionFilter {
    fn active(&self) -> bool {
        self.under_replicated || self.unavailable
    }

    fn apply(&self, topics: Vec<TopicDescription>) -> Vec<TopicDescription> {
        if !self.active() {
            return topics;
        }
        topics
            .into_iter()
            .filter_map(|mut topic| {
                topic.partitions.retain(|p| {
                    (self.under_replicated && p.is_under_replicated())
                        || (self.unavailable && p.is_unavailable())
                });
                (!topic.partitions.is_empty()).then_some(topic)
            })
            .collect()
    }
}

/// The result of `topics describe`: JSON is the list of topics; the table
/// has kafka-topics' layout (partition lines only when filtering).
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Described {
    topics: Vec<TopicDescription>,
    #[serde(skip)]
    filtered: bool,
}

impl Table for Described {
    fn table(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for topic in &self.topics {
            if !self.filtered {
                let configs: Vec<String> = topic
                    .configs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                lines.push(format!(
                    "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                    topic.name,
                    topic.topic_id,
                    topic.partitions.len(),
                    topic.replication_factor(),
                    configs.join(",")
                ));
            }
            for p in &topic.partitions {
                let leader = p
                    .leader
                    .map_or_else(|| "none".to_owned(), |l| l.to_string());
                let mut line = format!(
                    "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                    topic.name,
                    p.partition,
                    leader,
                    id_list(&p.replicas),
                    id_list(&p.isr)
                );
                if !p.elr.is_empty() {
                    line.push_str(&format!("\tElr: {}", id_list(&p.elr)));
                }
                lines.push(line);
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use strom_client::PartitionDescription;

    use super::*;

    fn partition(
        partition: i32,
        leader: Option<i32>,
        replicas: &[i32],
        isr: &[i32],
    ) -> PartitionDescription {
        PartitionDescription {
            partition,
            leader,
            leader_epoch: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            elr: vec![],
            partition_epoch: 0,
            offline_replicas: vec![],
        }
    }

    fn topic() -> TopicDescription {
        TopicDescription {
            name: "T".into(),
            topic_id: "00000000-0000-0000-0000-0000000000aa".parse().unwrap(),
            configs: [
                ("a.b".to_owned(), "1".to_owned()),
                ("c".to_owned(), "x".to_owned()),
            ]
            .into(),
            partitions: vec![
                partition(0, Some(1), &[1, 2, 3], &[1, 2, 3]),
                partition(1, Some(2), &[2, 3, 1], &[2]),
                PartitionDescription {
                    elr: vec![1],
                    ..partition(2, None, &[3, 1, 2], &[3])
                },
            ],
            is_internal: false,
        }
    }

    #[test]
    fn replica_assignment_parses_like_kafka_topics() {
        assert_eq!(
            parse_replica_assignment("0:1:2,1:2:0").unwrap(),
            [vec![0, 1, 2], vec![1, 2, 0]]
        );
        assert_eq!(parse_replica_assignment("5").unwrap(), [vec![5]]);
        assert_eq!(
            parse_replica_assignment(" 1 : 2 , 2:1").unwrap(),
            [vec![1, 2], vec![2, 1]]
        );
    }

    #[test]
    fn malformed_replica_assignment_is_a_typed_error() {
        for text in ["", "0:1,", "0:a", "0::1", "-1:0", "0,,1", "1:2147483648"] {
            let err = parse_replica_assignment(text).unwrap_err();
            assert_eq!(
                err.code(),
                Some(ErrorCode::InvalidReplicaAssignment),
                "{text:?}"
            );
            assert!(
                crate::output::error_line(&err).starts_with("error: INVALID_REPLICA_ASSIGNMENT: ")
            );
        }
    }

    #[test]
    fn configs_parse_key_value_pairs() {
        let configs = parse_configs(&[
            "min.insync.replicas=2".into(),
            "x=a=b".into(),
            "empty=".into(),
        ])
        .unwrap();
        assert_eq!(configs["min.insync.replicas"], "2");
        assert_eq!(configs["x"], "a=b");
        assert_eq!(configs["empty"], "");
    }

    #[test]
    fn malformed_configs_are_invalid_config() {
        for bad in [
            vec!["novalue".to_owned()],
            vec!["=v".to_owned()],
            vec!["a=1".to_owned(), "a=2".to_owned()],
        ] {
            assert_eq!(
                parse_configs(&bad).unwrap_err().code(),
                Some(ErrorCode::InvalidConfig),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn describe_table_matches_kafka_topics_layout() {
        let described = Described {
            topics: vec![topic()],
            filtered: false,
        };
        assert_eq!(
            described.table(),
            [
                "Topic: T\tTopicId: 00000000-0000-0000-0000-0000000000aa\tPartitionCount: 3\tReplicationFactor: 3\tConfigs: a.b=1,c=x",
                "\tTopic: T\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2,3",
                "\tTopic: T\tPartition: 1\tLeader: 2\tReplicas: 2,3,1\tIsr: 2",
                "\tTopic: T\tPartition: 2\tLeader: none\tReplicas: 3,1,2\tIsr: 3\tElr: 1",
            ]
        );
    }

    #[test]
    fn filters_keep_matching_partitions_only() {
        let table = [
            (true, false, vec![1, 2]),
            (false, true, vec![2]),
            (true, true, vec![1, 2]),
            (false, false, vec![0, 1, 2]),
        ];
        for (under_replicated, unavailable, want) in table {
            let filter = PartitionFilter {
                under_replicated,
                unavailable,
            };
            let topics = filter.apply(vec![topic()]);
            let got: Vec<i32> = topics[0].partitions.iter().map(|p| p.partition).collect();
            assert_eq!(got, want);
        }
        let mut healthy = topic();
        healthy.partitions.truncate(1);
        let filter = PartitionFilter {
            under_replicated: true,
            unavailable: true,
        };
        assert!(
            filter.apply(vec![healthy]).is_empty(),
            "topics without matches are dropped"
        );
        let filtered = Described {
            topics: filter.apply(vec![topic()]),
            filtered: true,
        };
        assert!(
            filtered
                .table()
                .iter()
                .all(|l| l.starts_with("\tTopic: T\tPartition: "))
        );
    }

    #[test]
    fn describe_json_is_the_list_of_topics() {
        let described = Described {
            topics: vec![topic()],
            filtered: false,
        };
        let json = serde_json::to_value(&described).unwrap();
        let first = &json[0];
        let mut keys: Vec<&String> = first.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["configs", "name", "partitions", "topic_id"]);
        assert_eq!(first["partitions"][2]["leader"], serde_json::Value::Null);
        assert_eq!(first["topic_id"], "00000000-0000-0000-0000-0000000000aa");
    }

    #[test]
    fn create_and_list_json_shapes() {
        let created = Created {
            name: "T".into(),
            topic_id: topic().topic_id,
            partitions: 3,
            replication_factor: 2,
        };
        assert_eq!(
            serde_json::to_value(&created).unwrap(),
            serde_json::json!({"name": "T", "topic_id": "00000000-0000-0000-0000-0000000000aa", "partitions": 3, "replication_factor": 2})
        );
        assert_eq!(created.table(), ["Created topic T."]);
        let listing = vec![TopicListing {
            name: "T".into(),
            topic_id: topic().topic_id,
            is_internal: false,
        }];
        assert_eq!(listing.table(), ["T"]);
    }
}
