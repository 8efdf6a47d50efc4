//! `strom leader-election`, with kafka-leader-election's flags, JSON file
//! and messages.

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args, ValueEnum};
use serde::{Deserialize, Serialize};
use strom_client::{Admin, ElectionResult, ElectionType, Error, ErrorCode, TopicPartition};

use crate::output::{Output, Table};

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("partitions_to_elect")
        .required(true)
        .args(["all_topic_partitions", "topic", "path_to_json_file"])
))]
pub(crate) struct LeaderElectionArgs {
    /// Which replica may become leader.
    #[arg(long, value_enum, ignore_case = true)]
    election_type: ElectionKind,
    /// Elect for every partition of every topic.
    #[arg(long)]
    all_topic_partitions: bool,
    /// The topic of the one partition to elect for (with --partition).
    #[arg(long, requires = "partition")]
    topic: Option<String>,
    /// The partition to elect for (with --topic).
    #[arg(long, requires = "topic")]
    partition: Option<i32>,
    /// Kafka's JSON file: {"partitions":[{"topic":"T","partition":0}]}.
    #[arg(long, value_name = "FILE")]
    path_to_json_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ElectionKind {
    /// The first assigned replica, when alive and in the ISR.
    Preferred,
    /// Any alive replica, even outside the ISR (may lose data).
    Unclean,
}

impl From<ElectionKind> for ElectionType {
    fn from(kind: ElectionKind) -> Self {
        match kind {
            ElectionKind::Preferred => ElectionType::Preferred,
            ElectionKind::Unclean => ElectionType::Unclean,
        }
    }
}

pub(crate) async fn run(
    args: LeaderElectionArgs,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    let partitions = match (&args.path_to_json_file, args.topic, args.partition) {
        (Some(path), _, _) => Some(read_partitions_file(path)?),
        (None, Some(topic), Some(partition)) => Some(vec![TopicPartition::new(topic, partition)]),
        _ => None,
    };
    let kind = ElectionType::from(args.election_type);
    let results = admin.elect_leaders(kind, partitions).await?;
    let report = Report { kind, results };
    output.print(&report);
    report.outcome()
}

/// Kafka's election file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionsFile {
    partitions: Vec<TopicPartition>,
}

fn read_partitions_file(path: &Path) -> Result<Vec<TopicPartition>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::strom(
            ErrorCode::InvalidRequest,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    parse_partitions(&text).map_err(|why| {
        Error::strom(
            ErrorCode::InvalidRequest,
            format!("invalid election file {}: {why}", path.display()),
        )
    })
}

/// Parses `{"partitions":[{"topic":"T","partition":0}, …]}`; it must list
/// at least one partition, each once.
fn parse_partitions(text: &str) -> Result<Vec<TopicPartition>, String> {
    let file: PartitionsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if file.partitions.is_empty() {
        return Err("it lists no partitions".to_owned());
    }
    let mut seen = std::collections::BTreeSet::new();
    for tp in &file.partitions {
        if !seen.insert(tp) {
            return Err(format!("partition {tp} is listed more than once"));
        }
    }
    Ok(file.partitions)
}

/// The election's outcome: JSON is the list of results.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Report {
    #[serde(skip)]
    kind: ElectionType,
    results: Vec<ElectionResult>,
}

impl Report {
    /// Exit status: failure when any partition failed for a reason other
    /// than ELECTION_NOT_NEEDED.
    fn outcome(&self) -> Result<(), Error> {
        let failed: Vec<&ElectionResult> = self.results.iter().filter(|r| r.failed()).collect();
        let Some(first) = failed.first() else {
            return Ok(());
        };
        let list: Vec<String> = failed
            .iter()
            .map(|r| r.topic_partition().to_string())
            .collect();
        let code = first.error.unwrap_or(ErrorCode::UnknownServerError);
        Err(Error::strom(
            code,
            format!(
                "leader election ({}) failed for {} partition(s): {} (first: {})",
                self.kind,
                failed.len(),
                list.join(", "),
                first.error_message
            ),
        ))
    }
}

impl Table for Report {
    fn table(&self) -> Vec<String> {
        let names = |pred: &dyn Fn(&ElectionResult) -> bool| -> Vec<String> {
            self.results
                .iter()
                .filter(|r| pred(r))
                .map(|r| r.topic_partition().to_string())
                .collect()
        };
        let mut lines = Vec::new();
        let succeeded = names(&|r| r.error.is_none());
        if !succeeded.is_empty() {
            lines.push(format!(
                "Successfully completed leader election ({}) for partitions {}",
                self.kind,
                succeeded.join(", ")
            ));
        }
        let noop = names(&|r| r.error == Some(ErrorCode::ElectionNotNeeded));
        if !noop.is_empty() {
            lines.push(format!(
                "Valid replica already elected for partitions {}",
                noop.join(", ")
            ));
        }
        for r in self.results.iter().filter(|r| r.failed()) {
            let code = r.error.map_or("UNKNOWN_SERVER_ERROR", |c| c.as_str_name());
            lines.push(format!(
                "Error completing leader election ({}) for partition: {}: {code}: {}",
                self.kind,
                r.topic_partition(),
                r.error_message
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(partition: i32, error: Option<ErrorCode>, leader: Option<i32>) -> ElectionResult {
        ElectionResult {
            topic: "T".into(),
            partition,
            error,
            error_message: error.map(|_| "why".to_owned()).unwrap_or_default(),
            leader,
        }
    }

    #[test]
    fn election_file_parses_kafka_format() {
        let parsed = parse_partitions(
            r#"{"partitions":[{"topic":"T","partition":0},{"topic":"U","partition":3}]}"#,
        )
        .unwrap();
        assert_eq!(
            parsed,
            [TopicPartition::new("T", 0), TopicPartition::new("U", 3)]
        );
    }

    #[test]
    fn bad_election_files_are_rejected() {
        for text in [
            "",
            "[]",
            r#"{"partitions":[]}"#,
            r#"{"partitions":[{"topic":"T"}]}"#,
            r#"{"partitions":[{"topic":"T","partition":"0"}]}"#,
            r#"{"partitions":[{"topic":"T","partition":0},{"topic":"T","partition":0}]}"#,
            r#"{"partition":[{"topic":"T","partition":0}]}"#,
        ] {
            assert!(parse_partitions(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn unreadable_election_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_partitions_file(&dir.path().join("missing.json")).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidRequest));
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        let err = read_partitions_file(&bad).unwrap_err();
        assert!(
            crate::output::error_line(&err)
                .starts_with("error: INVALID_REQUEST: invalid election file")
        );
    }

    #[test]
    fn report_prints_kafka_messages_and_fails_on_real_errors() {
        let report = Report {
            kind: ElectionType::Preferred,
            results: vec![
                result(0, None, Some(1)),
                result(1, None, Some(2)),
                result(2, Some(ErrorCode::ElectionNotNeeded), Some(3)),
                result(3, Some(ErrorCode::PreferredLeaderNotAvailable), None),
            ],
        };
        assert_eq!(
            report.table(),
            [
                "Successfully completed leader election (PREFERRED) for partitions T-0, T-1",
                "Valid replica already elected for partitions T-2",
                "Error completing leader election (PREFERRED) for partition: T-3: PREFERRED_LEADER_NOT_AVAILABLE: why",
            ]
        );
        let err = report.outcome().unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::PreferredLeaderNotAvailable));
        assert_eq!(
            serde_json::to_value(&report).unwrap()[3],
            serde_json::json!({"topic": "T", "partition": 3, "error": "PREFERRED_LEADER_NOT_AVAILABLE", "leader": null})
        );
    }

    #[test]
    fn election_not_needed_is_success() {
        let report = Report {
            kind: ElectionType::Unclean,
            results: vec![result(0, Some(ErrorCode::ElectionNotNeeded), Some(1))],
        };
        report.outcome().unwrap();
    }
}
