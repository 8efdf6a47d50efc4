//! `strom consume`: prints records of a topic, like kafka-console-consumer:
//! without a group every partition (or one) is assigned directly; with
//! `--group G` the consumer joins G (subscribe), starts from the group's
//! committed offsets and commits as configured (auto commit by default, and
//! on exit).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use serde::Serialize;
use strom_client::{
    ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, Error, IsolationLevel, OffsetReset,
    Properties, TopicPartition,
};
use tokio::time::Instant;

use crate::output::{Format, Output};
use crate::{progress, topics};

/// Poll slice: the longest the loop waits before checking its limits.
const POLL: Duration = Duration::from_millis(500);

/// `--offset`: where each partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartOffset {
    /// The log start.
    Earliest,
    /// The end: only new records.
    Latest,
    /// This offset (one partition only).
    At(i64),
}

impl FromStr for StartOffset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "earliest" => Ok(StartOffset::Earliest),
            "latest" => Ok(StartOffset::Latest),
            n => match n.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(StartOffset::At(n)),
                _ => Err(format!(
                    "expected a non-negative offset, earliest or latest, got '{s}'"
                )),
            },
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Read only this partition (default: all of them).
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Where to start: an offset (needs --partition), earliest or latest
    /// (default latest: only new records).
    #[arg(
        long,
        value_name = "N|earliest|latest",
        conflicts_with = "from_beginning"
    )]
    offset: Option<StartOffset>,
    /// Start at the beginning of each partition (same as --offset earliest).
    #[arg(long)]
    from_beginning: bool,
    /// Join this consumer group: the group assigns the partitions, which
    /// start from its committed offsets (else per --offset/--from-beginning,
    /// default latest); positions are committed as configured
    /// (enable.auto.commit, default true) and on exit.
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// Exit after this many records.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_messages: Option<u64>,
    /// read_uncommitted (default) or read_committed.
    #[arg(long, value_parser = parse_isolation, default_value = "read_uncommitted")]
    isolation_level: IsolationLevel,
    /// Print keys too (table: key, a tab, value; null keys print as "null").
    #[arg(long)]
    print_key: bool,
    /// Other consumer settings by their Kafka name, e.g. fetch.min.bytes=1024.
    #[arg(long, alias = "consumer-property", value_name = "KEY=VALUE", num_args = 1..)]
    consumer_props: Vec<String>,
}

fn parse_isolation(s: &str) -> Result<IsolationLevel, String> {
    s.parse()
        .map_err(|e: strom_client::ConfigError| e.to_string())
}

impl ConsumeArgs {
    /// A numeric offset names a position in one partition (a usage error).
    /// The group's own conflicts are request errors, checked by
    /// [`check_group_flags`] in `run`, because a group can also come from
    /// `--consumer-property group.id=G`.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(StartOffset::At(_)) = self.offset
            && self.partition.is_none()
            && self.group.is_none()
        {
            return Err("--offset N needs --partition (an offset belongs to one partition)".into());
        }
        Ok(())
    }

    fn start(&self) -> StartOffset {
        match (self.from_beginning, self.offset) {
            (true, _) => StartOffset::Earliest,
            (false, Some(start)) => start,
            (false, None) => StartOffset::Latest,
        }
    }
}

/// Builds a consumer config: defaults, then `props`, then `apply`.
pub(crate) fn consumer_config(
    client: ClientConfig,
    props: &[String],
    apply: impl FnOnce(&mut ConsumerConfig),
) -> Result<ConsumerConfig, Error> {
    let mut config = ConsumerConfig {
        client,
        ..ConsumerConfig::default()
    };
    config.set_all(props)?;
    apply(&mut config);
    config.validate()?;
    Ok(config)
}

/// One record as JSON: `{"topic", "partition", "offset", "timestamp",
/// "key", "value", "headers": [{"key", "value"}]}`; bytes as (lossy) UTF-8.
#[derive(Debug, Serialize)]
struct RecordJson<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<HeaderJson<'a>>,
}

#[derive(Debug, Serialize)]
struct HeaderJson<'a> {
    key: &'a str,
    value: Option<String>,
}

fn text(bytes: Option<&Bytes>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// How a record prints.
fn render(record: &ConsumerRecord, format: Format, print_key: bool) -> String {
    match format {
        Format::Json => serde_json::to_string(&RecordJson {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            key: text(record.key.as_ref()),
            value: text(record.value.as_ref()),
            headers: record
                .headers
                .iter()
                .map(|h| HeaderJson {
                    key: &h.key,
                    value: text(h.value.as_ref()),
                })
                .collect(),
        })
        .expect("output values always serialize"),
        Format::Table => {
            let value = text(record.value.as_ref()).unwrap_or_else(|| "null".to_owned());
            if print_key {
                let key = text(record.key.as_ref()).unwrap_or_else(|| "null".to_owned());
                format!("{key}\t{value}")
            } else {
                value
            }
        }
    }
}

pub(crate) async fn run(
    args: ConsumeArgs,
    client: ClientConfig,
    idle_timeout: Option<Duration>,
    output: &Output,
) -> Result<(), Error> {
    let start = args.start();
    let config = consumer_config(client.clone(), &args.consumer_props, |c| {
        c.isolation_level = args.isolation_level;
        c.auto_offset_reset = match start {
            StartOffset::Earliest => OffsetReset::Earliest,
            StartOffset::Latest => OffsetReset::Latest,
            // An explicit offset out of range is an error, not a jump.
            StartOffset::At(_) => OffsetReset::None,
        };
        if let Some(group) = &args.group {
            c.group_id = Some(group.clone());
        }
    })?;
    // A group given as --consumer-property group.id=G joins it too.
    let grouped = config.group_id.is_some();
    check_group_flags(grouped, args.partition, args.offset)?;
    let count = topics::check_partition(&client, &args.topic, args.partition).await?;
    let mut consumer = Consumer::connect(config).await?;
    if grouped {
        consumer.subscribe([args.topic.clone()]).await?;
    } else {
        let partitions: Vec<TopicPartition> = match args.partition {
            Some(p) => vec![TopicPartition::new(args.topic.clone(), p)],
            None => (0..count)
                .map(|p| TopicPartition::new(args.topic.clone(), p))
                .collect(),
        };
        consumer.assign(partitions.clone());
        match start {
            StartOffset::Earliest => consumer.seek_to_beginning(&partitions)?,
            StartOffset::Latest => consumer.seek_to_end(&partitions)?,
            StartOffset::At(offset) => consumer.seek(&partitions[0], offset)?,
        }
    }
    let progress = progress::counter("records", !std::io::stdout().is_terminal());
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut consumed = 0u64;
    let mut last_record = Instant::now();
    let outcome = loop {
        if args.max_messages.is_some_and(|max| consumed >= max) {
            break Ok(());
        }
        let wait = match idle_timeout {
            Some(idle) => {
                let left = idle.saturating_sub(last_record.elapsed());
                if left.is_zero() {
                    break Ok(());
                }
                left.min(POLL)
            }
            None => POLL,
        };
        let records = tokio::select! {
            polled = consumer.poll(wait) => polled,
            _ = &mut interrupted => break Ok(()),
        };
        let records = match records {
            Ok(records) => records,
            Err(e) => break Err(e),
        };
        if records.is_empty() {
            continue;
        }
        last_record = Instant::now();
        let room = args.max_messages.map_or(u64::MAX, |max| max - consumed);
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        if grouped && records.len() > room {
            // Records past --max-messages are not printed: move back so
            // the final commit does not skip them.
            if let Err(e) = rewind(&mut consumer, &records[room..]) {
                break Err(e);
            }
        }
        let lines: Vec<String> = records
            .iter()
            .take(room)
            .map(|r| render(r, output.format(), args.print_key))
            .collect();
        consumed += lines.len() as u64;
        progress.inc(lines.len() as u64);
        if !progress.suspend(|| output.try_lines(&lines)) {
            break Ok(()); // stdout closed, e.g. `| head`
        }
    };
    progress.finish_and_clear();
    // Commits (with auto commit) and leaves the group at once.
    let closed = consumer.close().await;
    let outcome = outcome.and(closed);
    // On failure the error line is the only thing on stderr.
    if output.format() == Format::Table && outcome.is_ok() {
        eprintln!("Processed a total of {consumed} messages");
    }
    outcome
}

/// A group assigns the partitions and starts them from its committed
/// offsets: `--partition` and `--offset N` contradict it. Refused as a
/// request error (exit 1, one line on stderr) before anything connects.
pub(crate) fn check_group_flags(
    grouped: bool,
    partition: Option<i32>,
    offset: Option<StartOffset>,
) -> Result<(), Error> {
    if !grouped {
        return Ok(());
    }
    if partition.is_some() {
        return Err(Error::InvalidArgument(
            "--partition cannot be used with a group (the group assigns partitions)".into(),
        ));
    }
    if let Some(StartOffset::At(_)) = offset {
        return Err(Error::InvalidArgument(
            "--offset N cannot be used with a group (the group starts from its committed \
             offsets; --offset earliest|latest only sets auto.offset.reset)"
                .into(),
        ));
    }
    Ok(())
}

/// Moves each partition of `unprinted` back to its first unprinted record.
pub(crate) fn rewind(consumer: &mut Consumer, unprinted: &[ConsumerRecord]) -> Result<(), Error> {
    let mut first: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for r in unprinted {
        let at = first.entry(r.topic_partition()).or_insert(r.offset);
        *at = (*at).min(r.offset);
    }
    for (tp, offset) in first {
        consumer.seek(&tp, offset)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use strom_client::{Header, TimestampType};

    use super::*;

    fn record(key: Option<&'static str>, value: Option<&'static str>) -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 1,
            offset: 42,
            timestamp: 1_700_000_000_000,
            timestamp_type: TimestampType::CreateTime,
            key: key.map(|k| Bytes::from_static(k.as_bytes())),
            value: value.map(|v| Bytes::from_static(v.as_bytes())),
            headers: vec![
                Header {
                    key: "trace".into(),
                    value: Some(Bytes::from_static(b"abc")),
                },
                Header {
                    key: "empty".into(),
                    value: None,
                },
            ],
            leader_epoch: Some(3),
        }
    }

    #[test]
    fn records_render_as_documented() {
        let r = record(Some("k"), Some("v"));
        assert_eq!(render(&r, Format::Table, false), "v");
        assert_eq!(render(&r, Format::Table, true), "k\tv");
        let nulls = record(None, None);
        assert_eq!(render(&nulls, Format::Table, true), "null\tnull");
        let json: serde_json::Value =
            serde_json::from_str(&render(&r, Format::Json, false)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "topic": "t", "partition": 1, "offset": 42, "timestamp": 1_700_000_000_000i64,
                "key": "k", "value": "v",
                "headers": [{"key": "trace", "value": "abc"}, {"key": "empty", "value": null}]
            })
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&nulls, Format::Json, true)).unwrap();
        assert_eq!(json["key"], serde_json::Value::Null);
        assert_eq!(json["value"], serde_json::Value::Null);
    }

    #[test]
    fn a_group_refuses_partition_and_numeric_offset_as_request_errors() {
        let table = [
            (false, Some(0), Some(StartOffset::At(5)), true),
            (false, None, None, true),
            (true, None, None, true),
            (true, None, Some(StartOffset::Earliest), true),
            (true, None, Some(StartOffset::Latest), true),
            (true, Some(0), None, false),
            (true, None, Some(StartOffset::At(5)), false),
            (true, Some(1), Some(StartOffset::At(5)), false),
        ];
        for (grouped, partition, offset, ok) in table {
            let checked = check_group_flags(grouped, partition, offset);
            assert_eq!(checked.is_ok(), ok, "{grouped} {partition:?} {offset:?}");
            if let Err(e) = checked {
                // INVALID_REQUEST: the CLI prints one line and exits 1.
                assert_eq!(e.code(), None, "{e}");
                assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
            }
        }
    }

    #[test]
    fn a_group_with_partition_parses_and_is_left_to_run() {
        use clap::Parser;

        // Not a usage error (exit 2): `run` refuses it with exit 1.
        let cli = crate::Cli::try_parse_from([
            "strom",
            "consume",
            "--topic",
            "t",
            "--group",
            "g",
            "--partition",
            "0",
        ])
        .unwrap();
        cli.command.validate().unwrap();
        let cli = crate::Cli::try_parse_from([
            "strom", "consume", "--topic", "t", "--group", "g", "--offset", "5",
        ])
        .unwrap();
        cli.command.validate().unwrap();
    }

    #[test]
    fn start_offsets_parse() {
        let table = [
            ("earliest", Ok(StartOffset::Earliest)),
            ("latest", Ok(StartOffset::Latest)),
            ("0", Ok(StartOffset::At(0))),
            ("12345", Ok(StartOffset::At(12345))),
        ];
        for (text, want) in table {
            assert_eq!(text.parse::<StartOffset>(), want);
        }
        for bad in ["-1", "begin", ""] {
            assert!(bad.parse::<StartOffset>().is_err(), "{bad}");
        }
    }
}
