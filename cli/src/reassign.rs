//! `strom reassign generate|execute|verify|cancel|list`, with
//! kafka-reassign-partitions' flags, plan JSON and messages. Plans are
//! Kafka's `{"version":1,"partitions":[{"topic","partition","replicas",
//! "log_dirs"}]}` (`log_dirs` optional, and only "any"); `generate` uses
//! the rack-aware, minimal-movement planner of `strom-metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use strom_client::{Admin, Error, ErrorCode, PartitionReassignment, TopicPartition};
use strom_metadata::throttle::PlannedMove;
use strom_metadata::{PartitionAssignment, plan_assignment};

use crate::output::{Format, Output, Table};
use crate::throttles;

#[derive(Debug, Subcommand)]
pub(crate) enum ReassignCommand {
    /// Propose a plan moving the given topics onto the given brokers.
    Generate(GenerateArgs),
    /// Start the moves of a plan (prints the current assignment for rollback).
    Execute(ExecuteArgs),
    /// Show, per partition of a plan, whether its move is complete.
    Verify(PlanArgs),
    /// Cancel the moves of a plan still in progress (back to the original replicas).
    Cancel(PlanArgs),
    /// List the reassignments in progress.
    List,
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Kafka's topics file: {"version":1,"topics":[{"topic":"T"}]}.
    #[arg(long, value_name = "FILE")]
    topics_to_move_json_file: PathBuf,
    /// The brokers to place the replicas on: 1,2,3.
    #[arg(long, value_name = "ID,ID,…", value_delimiter = ',', required = true)]
    broker_list: Vec<i32>,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Kafka's plan file:
    /// {"version":1,"partitions":[{"topic":"T","partition":0,"replicas":[1,2]}]}.
    #[arg(long, value_name = "FILE")]
    reassignment_json_file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ExecuteArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Throttle the moves to this many bytes per second: sets
    /// leader.replication.throttled.rate and follower.replication.throttled.rate
    /// on the brokers involved and the topics' *.replication.throttled.replicas
    /// for the moving replicas; `verify` removes them once all is done.
    #[arg(long, value_name = "BYTES_PER_SEC", allow_negative_numbers = true)]
    throttle: Option<i64>,
}

pub(crate) async fn run(
    command: ReassignCommand,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    match command {
        ReassignCommand::Generate(args) => generate(args, admin, output).await,
        ReassignCommand::Execute(args) => execute(args, admin, output).await,
        ReassignCommand::Verify(args) => verify(args, admin, output).await,
        ReassignCommand::Cancel(args) => cancel(args, admin, output).await,
        ReassignCommand::List => {
            let list = admin.list_partition_reassignments(None).await?;
            output.print(&Listing(list));
            Ok(())
        }
    }
}

// ---- files ----

/// Kafka's plan: the JSON `generate` prints and `execute` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Plan {
    version: i64,
    partitions: Vec<PlanPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanPartition {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log_dirs: Option<Vec<String>>,
}

impl Plan {
    fn of(assignments: impl IntoIterator<Item = (TopicPartition, Vec<i32>)>) -> Self {
        Plan {
            version: 1,
            partitions: assignments
                .into_iter()
                .map(|(tp, replicas)| PlanPartition {
                    topic: tp.topic,
                    partition: tp.partition,
                    log_dirs: Some(vec!["any".to_owned(); replicas.len()]),
                    replicas,
                })
                .collect(),
        }
    }

    fn json(&self) -> String {
        serde_json::to_string(self).expect("plans always serialize")
    }

    fn partitions(&self) -> impl Iterator<Item = (TopicPartition, &[i32])> {
        self.partitions.iter().map(|p| {
            (
                TopicPartition::new(p.topic.clone(), p.partition),
                &p.replicas[..],
            )
        })
    }
}

/// Kafka's topics-to-move file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    version: Option<i64>,
    topics: Vec<TopicEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicEntry {
    topic: String,
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::strom(
            ErrorCode::InvalidRequest,
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

fn invalid(path: &Path, what: &str) -> impl FnOnce(String) -> Error {
    let path = path.display().to_string();
    let what = what.to_owned();
    move |why| {
        Error::strom(
            ErrorCode::InvalidRequest,
            format!("invalid {what} {path}: {why}"),
        )
    }
}

fn read_plan(path: &Path) -> Result<Plan, Error> {
    parse_plan(&read(path)?).map_err(invalid(path, "reassignment json file"))
}

/// Parses and checks a plan: version 1, at least one partition, each
/// once, each with a non-empty replica list without repeats, `log_dirs`
/// (when given) one "any" per replica.
fn parse_plan(text: &str) -> Result<Plan, String> {
    let plan: Plan = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if plan.version != 1 {
        return Err(format!(
            "version {} is not supported (only 1)",
            plan.version
        ));
    }
    if plan.partitions.is_empty() {
        return Err("it lists no partitions".to_owned());
    }
    let mut seen = BTreeSet::new();
    for p in &plan.partitions {
        let tp = format!("{}-{}", p.topic, p.partition);
        if !seen.insert((p.topic.as_str(), p.partition)) {
            return Err(format!("partition {tp} is listed more than once"));
        }
        if p.replicas.is_empty() {
            return Err(format!("partition {tp} has an empty replica list"));
        }
        let mut ids = BTreeSet::new();
        if let Some(r) = p.replicas.iter().find(|r| !ids.insert(**r)) {
            return Err(format!("partition {tp} lists replica {r} more than once"));
        }
        if let Some(dirs) = &p.log_dirs {
            if dirs.len() != p.replicas.len() {
                return Err(format!(
                    "partition {tp} has {} log_dirs for {} replicas",
                    dirs.len(),
                    p.replicas.len()
                ));
            }
            if let Some(d) = dirs.iter().find(|d| *d != "any") {
                return Err(format!(
                    "partition {tp} names log dir {d:?}: only \"any\" is supported (one log dir per broker)"
                ));
            }
        }
    }
    Ok(plan)
}

fn parse_topics(text: &str) -> Result<Vec<String>, String> {
    let file: TopicsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(v) = file.version.filter(|v| *v != 1) {
        return Err(format!("version {v} is not supported (only 1)"));
    }
    if file.topics.is_empty() {
        return Err("it lists no topics".to_owned());
    }
    let mut seen = BTreeSet::new();
    for t in &file.topics {
        if !seen.insert(t.topic.as_str()) {
            return Err(format!("topic {} is listed more than once", t.topic));
        }
    }
    Ok(file.topics.into_iter().map(|t| t.topic).collect())
}

// ---- commands ----

/// The replicas of `topics`' partitions before any reassignment in
/// progress (its original replicas), by partition.
async fn current_assignment(
    admin: &Admin,
    topics: &[String],
) -> Result<BTreeMap<TopicPartition, Vec<i32>>, Error> {
    let described = admin.describe_topics(topics).await?;
    let moving: BTreeMap<TopicPartition, PartitionReassignment> = admin
        .list_partition_reassignments(None)
        .await?
        .into_iter()
        .map(|r| (TopicPartition::new(r.topic.clone(), r.partition), r))
        .collect();
    let mut out = BTreeMap::new();
    for t in described {
        for p in t.partitions {
            let tp = TopicPartition::new(t.name.clone(), p.partition);
            let replicas = match moving.get(&tp) {
                Some(r) => p
                    .replicas
                    .into_iter()
                    .filter(|b| !r.adding_replicas.contains(b))
                    .collect(),
                None => p.replicas,
            };
            out.insert(tp, replicas);
        }
    }
    Ok(out)
}

async fn generate(args: GenerateArgs, admin: &Admin, output: &Output) -> Result<(), Error> {
    let path = &args.topics_to_move_json_file;
    let topics = parse_topics(&read(path)?).map_err(invalid(path, "topics to move json file"))?;
    let mut seen = BTreeSet::new();
    if let Some(b) = args.broker_list.iter().find(|b| !seen.insert(**b)) {
        return Err(Error::strom(
            ErrorCode::InvalidRequest,
            format!("--broker-list lists broker {b} more than once"),
        ));
    }
    let cluster = admin.describe_cluster().await?;
    let mut brokers = Vec::with_capacity(args.broker_list.len());
    for id in &args.broker_list {
        let Some(b) = cluster.brokers.iter().find(|b| b.id == *id) else {
            return Err(Error::strom(
                ErrorCode::InvalidReplicaAssignment,
                format!("broker {id} in --broker-list is not registered"),
            ));
        };
        brokers.push((b.id, b.rack.clone()));
    }
    let current = current_assignment(admin, &topics).await?;
    let input: Vec<PartitionAssignment> = current
        .iter()
        .map(|(tp, replicas)| PartitionAssignment {
            topic: tp.topic.clone(),
            partition: tp.partition,
            replicas: replicas.clone(),
        })
        .collect();
    let proposed = plan_assignment(&brokers, &input).map_err(|e| {
        Error::strom(
            ErrorCode::from_str_name(e.code.code_name()).unwrap_or(ErrorCode::InvalidRequest),
            e.message,
        )
    })?;
    let report = Generated {
        current: Plan::of(current),
        proposed: Plan::of(
            proposed
                .into_iter()
                .map(|p| (TopicPartition::new(p.topic, p.partition), p.replicas)),
        ),
    };
    output.print(&report);
    Ok(())
}

/// `generate`'s output; JSON `{"current": PLAN, "proposed": PLAN}`.
#[derive(Debug, Serialize)]
struct Generated {
    current: Plan,
    proposed: Plan,
}

impl Table for Generated {
    fn table(&self) -> Vec<String> {
        vec![
            "Current partition replica assignment".to_owned(),
            self.current.json(),
            String::new(),
            "Proposed partition reassignment configuration".to_owned(),
            self.proposed.json(),
        ]
    }
}

fn topics_of(plan: &Plan) -> Vec<String> {
    plan.partitions
        .iter()
        .map(|p| p.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

async fn execute(args: ExecuteArgs, admin: &Admin, output: &Output) -> Result<(), Error> {
    let throttle = args.throttle.map(throttles::check_rate).transpose()?;
    let plan = read_plan(&args.plan.reassignment_json_file)?;
    let current = current_assignment(admin, &topics_of(&plan)).await?;
    let mut rollback = Vec::with_capacity(plan.partitions.len());
    for (tp, _) in plan.partitions() {
        let Some(replicas) = current.get(&tp) else {
            return Err(Error::strom(
                ErrorCode::UnknownTopicOrPartition,
                format!("partition {tp} does not exist"),
            ));
        };
        rollback.push((tp, replicas.clone()));
    }
    let rollback = Plan::of(rollback);
    let requested: Vec<(TopicPartition, Option<Vec<i32>>)> = plan
        .partitions()
        .map(|(tp, replicas)| (tp, Some(replicas.to_vec())))
        .collect();
    let started: Vec<String> = requested.iter().map(|(tp, _)| tp.to_string()).collect();
    // Throttles first (as Kafka), so no byte moves unthrottled; put back if
    // the moves are refused.
    let saved = match throttle {
        Some(rate) => {
            let moves: Vec<PlannedMove> = plan
                .partitions()
                .filter_map(|(tp, target)| {
                    Some(PlannedMove {
                        current: current.get(&tp)?.clone(),
                        target: target.to_vec(),
                        topic: tp.topic,
                        partition: tp.partition,
                    })
                })
                .collect();
            Some(throttles::set(admin, &moves, rate).await?)
        }
        None => None,
    };
    if let Err(e) = admin.alter_partition_reassignments(requested).await {
        if let Some(saved) = &saved {
            throttles::restore(admin, saved).await;
        }
        return Err(e);
    }
    match output.format() {
        Format::Json => {
            let mut report = serde_json::json!({
                "current": rollback,
                "started": started,
            });
            if let Some(rate) = throttle {
                report["throttle"] = serde_json::json!(rate);
            }
            output.json(&report)
        }
        Format::Table => {
            let mut lines = vec![
                "Current partition replica assignment".to_owned(),
                String::new(),
                rollback.json(),
                String::new(),
                "Save this to use as the --reassignment-json-file option during rollback"
                    .to_owned(),
            ];
            if let Some(rate) = throttle {
                lines.push(
                    "Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed."
                        .to_owned(),
                );
                lines.push(format!(
                    "The inter-broker throttle limit was set to {rate} B/s"
                ));
            }
            lines.push(format!(
                "Successfully started partition reassignments for {}",
                started.join(",")
            ));
            output.lines(&lines)
        }
    }
    Ok(())
}

/// One partition's state in `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Verified {
    topic: String,
    partition: i32,
    /// `complete` or `in_progress`.
    state: &'static str,
    bytes_copied: Option<u64>,
    bytes_remaining: Option<u64>,
}

async fn verify(args: PlanArgs, admin: &Admin, output: &Output) -> Result<(), Error> {
    let plan = read_plan(&args.reassignment_json_file)?;
    let partitions: Vec<TopicPartition> = plan.partitions().map(|(tp, _)| tp).collect();
    let moving: BTreeMap<TopicPartition, PartitionReassignment> = admin
        .list_partition_reassignments(Some(partitions))
        .await?
        .into_iter()
        .map(|r| (TopicPartition::new(r.topic.clone(), r.partition), r))
        .collect();
    let current = current_assignment(admin, &topics_of(&plan)).await?;
    let mut rows = Vec::new();
    let mut mismatched = Vec::new();
    for (tp, wanted) in plan.partitions() {
        let row = |state, progress: Option<(u64, u64)>| Verified {
            topic: tp.topic.clone(),
            partition: tp.partition,
            state,
            bytes_copied: progress.map(|p| p.0),
            bytes_remaining: progress.map(|p| p.1),
        };
        if let Some(r) = moving.get(&tp) {
            rows.push(row("in_progress", r.progress_bytes()));
            continue;
        }
        match current.get(&tp) {
            Some(now) if now == wanted => rows.push(row("complete", None)),
            Some(now) => mismatched.push(format!(
                "partition {tp} is not being reassigned, but its replica set is {now:?} rather than {wanted:?}"
            )),
            None => mismatched.push(format!("partition {tp} does not exist")),
        }
    }
    let done = mismatched.is_empty() && rows.iter().all(|r| r.state == "complete");
    output.print(&Verification(rows));
    if done {
        // Every move of the plan is complete: remove its throttles (the
        // broker rates only once no reassignment is left anywhere).
        let still_moving = admin.list_partition_reassignments(None).await?;
        let topics: Vec<String> = topics_of(&plan)
            .into_iter()
            .filter(|t| !still_moving.iter().any(|r| r.topic == *t))
            .collect();
        let cleared = throttles::clear(admin, &topics, !still_moving.is_empty()).await?;
        if output.format() == Format::Table {
            let mut lines = Vec::new();
            if !cleared.brokers.is_empty() {
                lines.push(format!(
                    "Clearing broker-level throttles on brokers {}",
                    ids(&cleared.brokers)
                ));
            }
            if !cleared.topics.is_empty() {
                lines.push(format!(
                    "Clearing topic-level throttles on topic(s) {}",
                    cleared.topics.join(",")
                ));
            }
            output.lines(&lines);
        }
    }
    match mismatched.first() {
        None => Ok(()),
        Some(first) => Err(Error::strom(
            ErrorCode::InvalidReplicaAssignment,
            format!(
                "{} partition(s) do not match the plan (first: {first})",
                mismatched.len()
            ),
        )),
    }
}

/// `verify`'s rows; JSON the list.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Verification(Vec<Verified>);

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl Table for Verification {
    fn table(&self) -> Vec<String> {
        let mut lines = vec!["Status of partition reassignment:".to_owned()];
        for v in &self.0 {
            let tp = format!("{}-{}", v.topic, v.partition);
            lines.push(match (v.state, v.bytes_copied, v.bytes_remaining) {
                ("complete", _, _) => format!("Reassignment of partition {tp} is complete."),
                (_, Some(done), Some(left)) => {
                    let total = done + left;
                    let pct = if total == 0 {
                        100.0
                    } else {
                        done as f64 * 100.0 / total as f64
                    };
                    format!(
                        "Reassignment of partition {tp} is still in progress: {} copied, {} remaining ({pct:.0}%).",
                        mb(done),
                        mb(left)
                    )
                }
                _ => format!("Reassignment of partition {tp} is still in progress."),
            });
        }
        lines
    }
}

async fn cancel(args: PlanArgs, admin: &Admin, output: &Output) -> Result<(), Error> {
    let plan = read_plan(&args.reassignment_json_file)?;
    let requested: Vec<(TopicPartition, Option<Vec<i32>>)> =
        plan.partitions().map(|(tp, _)| (tp, None)).collect();
    let results = admin.alter_partition_reassignments(requested).await?;
    let (cancelled, idle): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.error.is_none());
    if let Some(failed) = idle
        .iter()
        .find(|r| r.error != Some(ErrorCode::NoReassignmentInProgress))
    {
        return Err(Error::strom(
            failed.error.unwrap_or(ErrorCode::UnknownServerError),
            failed.error_message.clone(),
        ));
    }
    let name = |r: &strom_client::ReassignmentResult| format!("{}-{}", r.topic, r.partition);
    let cancelled: Vec<String> = cancelled.iter().map(name).collect();
    let idle: Vec<String> = idle.iter().map(name).collect();
    match output.format() {
        Format::Json => output.json(&serde_json::json!({
            "cancelled": cancelled,
            "not_in_progress": idle,
        })),
        Format::Table => {
            let mut lines = Vec::new();
            if cancelled.is_empty() {
                lines.push("None of the specified partition reassignments are active.".to_owned());
            } else {
                lines.push(format!(
                    "Successfully cancelled partition reassignments for: {}",
                    cancelled.join(",")
                ));
            }
            output.lines(&lines);
        }
    }
    Ok(())
}

/// `list`'s output; JSON the list of reassignments.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Listing(Vec<PartitionReassignment>);

fn ids(list: &[i32]) -> String {
    list.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl Table for Listing {
    fn table(&self) -> Vec<String> {
        if self.0.is_empty() {
            return vec!["No partition reassignments found.".to_owned()];
        }
        let mut lines = vec!["Current partition reassignments:".to_owned()];
        lines.extend(self.0.iter().map(|r| {
            format!(
                "{}-{}: replicas: {}. adding: {}. removing: {}.",
                r.topic,
                r.partition,
                ids(&r.replicas),
                ids(&r.adding_replicas),
                ids(&r.removing_replicas)
            )
        }));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_as_kafka_writes_them_and_bad_ones_are_refused() {
        // (file, Ok(partition count) or Err(substring of the reason))
        let cases: &[(&str, Result<usize, &str>)] = &[
            // The seed notes' hand-written plans (without their typos).
            (
                r#"{"version":1,"partitions":[{"topic":"three","partition":0,"replicas":[0,1]},
                   {"topic":"three","partition":2,"replicas":[1,0]}]}"#,
                Ok(2),
            ),
            (
                r#"{"version":1,"partitions":[{"topic":"four","partition":0,"replicas":[0,1,2],"log_dirs":["any","any","any"]}]}"#,
                Ok(1),
            ),
            ("{", Err("EOF")),
            (
                r#"{"version":2,"partitions":[{"topic":"t","partition":0,"replicas":[1]}]}"#,
                Err("version 2"),
            ),
            (r#"{"version":1,"partitions":[]}"#, Err("no partitions")),
            (
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#,
                Err("more than once"),
            ),
            (
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}"#,
                Err("empty replica list"),
            ),
            (
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,1]}]}"#,
                Err("replica 1 more than once"),
            ),
            (
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["/data"]}]}"#,
                Err("only \"any\""),
            ),
            (
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":[]}]}"#,
                Err("0 log_dirs for 1"),
            ),
            (
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],"extra":1}]}"#,
                Err("unknown field"),
            ),
        ];
        for (text, want) in cases {
            match (parse_plan(text), want) {
                (Ok(plan), Ok(n)) => assert_eq!(plan.partitions.len(), *n, "{text}"),
                (Err(why), Err(part)) => assert!(why.contains(part), "{text}: {why}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }

    #[test]
    fn generated_plans_are_accepted_by_execute() {
        let plan = Plan::of([
            (TopicPartition::new("t", 0), vec![4, 5, 6]),
            (TopicPartition::new("t", 1), vec![5, 6, 4]),
        ]);
        let text = plan.json();
        assert!(text.contains(r#""log_dirs":["any","any","any"]"#), "{text}");
        assert_eq!(parse_plan(&text).unwrap(), plan);
    }

    #[test]
    fn topics_files() {
        assert_eq!(
            parse_topics(r#"{"version":1,"topics":[{"topic":"a"},{"topic":"b"}]}"#).unwrap(),
            vec!["a", "b"]
        );
        assert!(parse_topics(r#"{"topics":[]}"#).is_err());
        assert!(parse_topics(r#"{"topics":[{"topic":"a"},{"topic":"a"}]}"#).is_err());
        assert!(parse_topics(r#"{"version":3,"topics":[{"topic":"a"}]}"#).is_err());
    }
}
