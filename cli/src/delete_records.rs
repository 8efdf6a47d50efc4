//! `strom delete-records`, with kafka-delete-records' flag, JSON file and
//! output: each partition's log start offset moves up to the given offset
//! (-1: the high watermark) on its leader, and the new low watermarks are
//! printed. Every partition is checked before any is changed
//! ([`Admin::delete_records`]), so a refused file deletes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};
use strom_client::{Admin, DeletedRecords, Error, ErrorCode, TopicPartition};

use crate::output::{Output, Table};

#[derive(Debug, Args)]
pub(crate) struct DeleteRecordsArgs {
    /// Kafka's JSON file:
    /// {"version":1,"partitions":[{"topic":"T","partition":0,"offset":5}]};
    /// records below each offset are deleted (-1: below the high watermark).
    #[arg(long, value_name = "FILE")]
    offset_json_file: PathBuf,
}

pub(crate) async fn run(
    args: DeleteRecordsArgs,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    let offsets = read_offsets_file(&args.offset_json_file)?;
    let deleted = admin.delete_records(offsets).await?;
    output.print(&Report(deleted));
    Ok(())
}

/// Kafka's offsets file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OffsetsFile {
    /// Only version 1 exists; optional, as in Kafka.
    version: Option<i64>,
    partitions: Vec<PartitionOffset>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionOffset {
    topic: String,
    partition: i32,
    offset: i64,
}

fn read_offsets_file(path: &Path) -> Result<BTreeMap<TopicPartition, i64>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::strom(
            ErrorCode::InvalidRequest,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    parse_offsets(&text).map_err(|why| {
        Error::strom(
            ErrorCode::InvalidRequest,
            format!("invalid offset json file {}: {why}", path.display()),
        )
    })
}

/// Parses `{"version":1,"partitions":[{"topic","partition","offset"}, …]}`:
/// at least one partition, each once.
fn parse_offsets(text: &str) -> Result<BTreeMap<TopicPartition, i64>, String> {
    let file: OffsetsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(version) = file.version.filter(|v| *v != 1) {
        return Err(format!("version {version} is not supported (only 1)"));
    }
    if file.partitions.is_empty() {
        return Err("it lists no partitions".to_owned());
    }
    let mut offsets = BTreeMap::new();
    let mut duplicates = BTreeSet::new();
    for p in file.partitions {
        let tp = TopicPartition::new(p.topic, p.partition);
        if offsets.contains_key(&tp) {
            duplicates.insert(tp.to_string());
        }
        offsets.insert(tp, p.offset);
    }
    if !duplicates.is_empty() {
        return Err(format!(
            "it lists partitions more than once: {}",
            duplicates.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(offsets)
}

/// The new low watermarks: JSON is the list of
/// `{"topic", "partition", "low_watermark"}`.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Report(Vec<DeletedRecords>);

impl Table for Report {
    fn table(&self) -> Vec<String> {
        let mut lines = vec!["Records delete operation completed:".to_owned()];
        lines.extend(self.0.iter().map(|d| {
            format!(
                "partition: {}-{}\tlow_watermark: {}",
                d.topic, d.partition, d.low_watermark
            )
        }));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_file_parses_kafka_format() {
        let parsed = parse_offsets(
            r#"{"version":1,"partitions":[{"topic":"T","partition":0,"offset":5},{"topic":"U","partition":3,"offset":-1}]}"#,
        )
        .unwrap();
        assert_eq!(
            parsed,
            BTreeMap::from([
                (TopicPartition::new("T", 0), 5),
                (TopicPartition::new("U", 3), -1)
            ])
        );
        let no_version =
            parse_offsets(r#"{"partitions":[{"topic":"T","partition":1,"offset":0}]}"#);
        assert_eq!(no_version.unwrap().len(), 1);
    }

    #[test]
    fn bad_offsets_files_are_rejected() {
        for (text, why) in [
            ("", "EOF"),
            ("[]", "OffsetsFile"),
            (r#"{"version":1,"partitions":[]}"#, "no partitions"),
            (
                r#"{"version":2,"partitions":[{"topic":"T","partition":0,"offset":1}]}"#,
                "version 2",
            ),
            (
                r#"{"partitions":[{"topic":"T","partition":0}]}"#,
                "missing field `offset`",
            ),
            (
                r#"{"partitions":[{"topic":"T","partition":0,"offset":"5"}]}"#,
                "invalid type",
            ),
            (
                r#"{"partitions":[{"topic":"T","partition":0,"offset":1},{"topic":"T","partition":0,"offset":2}]}"#,
                "more than once: T-0",
            ),
            (
                r#"{"partition":[{"topic":"T","partition":0,"offset":1}]}"#,
                "unknown field",
            ),
        ] {
            let err = parse_offsets(text).expect_err(text);
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn unreadable_offsets_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_offsets_file(&dir.path().join("missing.json")).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidRequest));
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        let err = read_offsets_file(&bad).unwrap_err();
        assert!(
            crate::output::error_line(&err)
                .starts_with("error: INVALID_REQUEST: invalid offset json file")
        );
    }

    #[test]
    fn report_prints_kafka_lines_and_json() {
        let report = Report(vec![DeletedRecords {
            topic: "T".into(),
            partition: 0,
            low_watermark: 5,
        }]);
        assert_eq!(
            report.table(),
            [
                "Records delete operation completed:",
                "partition: T-0\tlow_watermark: 5"
            ]
        );
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!([{"topic": "T", "partition": 0, "low_watermark": 5}])
        );
    }
}
