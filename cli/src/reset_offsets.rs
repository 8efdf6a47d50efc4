//! `strom groups reset-offsets` and `groups delete-offsets`, as
//! kafka-consumer-groups: the new offsets are computed here from the log's
//! offsets and committed without a member, only while the group is empty.

use std::collections::BTreeMap;

use clap::{ArgGroup, Args};
use serde::Serialize;
use strom_client::{
    Admin, CommittedOffset, Consumer, ConsumerConfig, Error, ErrorCode, TopicPartition,
};

use crate::output::{Output, Table, columns};

#[derive(Debug, Args)]
#[command(group = ArgGroup::new("scope").required(true).args(["topic", "all_topics"]))]
#[command(group = ArgGroup::new("spec").required(true).args([
    "to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime", "by_duration", "to_current",
]))]
#[command(group = ArgGroup::new("mode").required(true).args(["dry_run", "execute"]))]
pub(crate) struct ResetArgs {
    /// Group id.
    #[arg(long)]
    group: String,
    /// A topic, or some of its partitions: T or T:P,P… (repeatable).
    #[arg(long, value_name = "T[:P,P…]")]
    topic: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    /// The log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// The log end offset.
    #[arg(long)]
    to_latest: bool,
    /// This offset (clamped to the log).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    to_offset: Option<i64>,
    /// The committed offset plus N (N may be negative; clamped to the log).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    shift_by: Option<i64>,
    /// The first offset at or after this UTC time: YYYY-MM-DDTHH:mm:SS.sss.
    #[arg(long, value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// The first offset at or after now minus this ISO-8601 duration: PnDTnHnMnS.
    #[arg(long, value_name = "DURATION")]
    by_duration: Option<String>,
    /// The committed offset (the log end where nothing is committed).
    #[arg(long)]
    to_current: bool,
    /// Print the new offsets; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    execute: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteOffsetsArgs {
    /// Group id.
    #[arg(long)]
    group: String,
    /// A topic, or one partition of it: T or T:P.
    #[arg(long, value_name = "T[:P]")]
    topic: String,
}

/// Parses `T` or `T:P,P…`.
fn topic_spec(s: &str) -> Result<(String, Option<Vec<i32>>), Error> {
    match s.split_once(':') {
        None => Ok((s.to_owned(), None)),
        Some((t, ps)) => {
            let parts: Result<Vec<i32>, _> =
                ps.split(',').map(|p| p.trim().parse::<i32>()).collect();
            match parts {
                Ok(p) if !t.is_empty() && !p.is_empty() && p.iter().all(|p| *p >= 0) => {
                    Ok((t.to_owned(), Some(p)))
                }
                _ => Err(Error::InvalidArgument(format!(
                    "--topic must be T or T:P,P… with partition numbers, got '{s}'"
                ))),
            }
        }
    }
}

/// Milliseconds of an ISO-8601 duration `PnDTnHnMnS` (each part optional,
/// seconds may have a fraction).
pub(crate) fn parse_duration_ms(s: &str) -> Result<i64, Error> {
    let bad = || Error::InvalidArgument(format!("--by-duration must be PnDTnHnMnS, got '{s}'"));
    let rest = s.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut ms: f64 = 0.0;
    let mut any = false;
    let mut eat = |part: &str, units: &[(char, f64)]| -> Result<(), Error> {
        let mut num = String::new();
        let mut order = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let pos = units.iter().position(|(u, _)| *u == c).ok_or_else(bad)?;
            if pos < order || num.is_empty() {
                return Err(bad());
            }
            let v: f64 = num.parse().map_err(|_| bad())?;
            ms += v * units[pos].1;
            any = true;
            order = pos + 1;
            num.clear();
        }
        if num.is_empty() { Ok(()) } else { Err(bad()) }
    };
    eat(days, &[('D', 86_400_000.0)])?;
    eat(time, &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1_000.0)])?;
    if !any || (s.contains('T') && time.is_empty()) {
        return Err(bad());
    }
    Ok(ms.round() as i64)
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:mm:SS[.sss]`, read as UTC.
pub(crate) fn parse_datetime_ms(s: &str) -> Result<i64, Error> {
    let parsed =
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| {
            Error::InvalidArgument(format!(
                "--to-datetime must be YYYY-MM-DDTHH:mm:SS.sss, got '{s}'"
            ))
        })?;
    Ok(parsed.and_utc().timestamp_millis())
}

#[derive(Debug, Serialize)]
struct NewOffset {
    group: String,
    topic: String,
    partition: i32,
    new_offset: i64,
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct NewOffsets(Vec<NewOffset>);

impl Table for NewOffsets {
    fn table(&self) -> Vec<String> {
        let mut rows = vec![
            ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]
                .map(str::to_owned)
                .to_vec(),
        ];
        rows.extend(self.0.iter().map(|o| {
            vec![
                o.group.clone(),
                o.topic.clone(),
                o.partition.to_string(),
                o.new_offset.to_string(),
            ]
        }));
        columns(&rows)
    }
}

/// Refuses to touch a group that has members, naming them.
async fn ensure_empty(admin: &Admin, group: &str) -> Result<(), Error> {
    match admin.describe_group(group).await {
        Ok(d) if !d.members.is_empty() => {
            let ids: Vec<String> = d.members.into_iter().map(|m| m.member_id).collect();
            Err(Error::strom(
                ErrorCode::NonEmptyGroup,
                format!(
                    "offsets of group '{group}' can only be reset while it has no members; it has {}",
                    ids.join(", ")
                ),
            ))
        }
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(ErrorCode::GroupIdNotFound) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) async fn reset(args: ResetArgs, admin: &Admin, output: &Output) -> Result<(), Error> {
    let by_duration = args
        .by_duration
        .as_deref()
        .map(parse_duration_ms)
        .transpose()?;
    let to_datetime = args
        .to_datetime
        .as_deref()
        .map(parse_datetime_ms)
        .transpose()?;
    ensure_empty(admin, &args.group).await?;
    let committed: BTreeMap<(String, i32), i64> = admin
        .list_group_offsets(&args.group)
        .await?
        .into_iter()
        .map(|c| ((c.topic, c.partition), c.offset))
        .collect();
    let mut partitions: Vec<TopicPartition> = Vec::new();
    if args.all_topics {
        partitions.extend(
            committed
                .keys()
                .map(|(t, p)| TopicPartition::new(t.clone(), *p)),
        );
    }
    for spec in &args.topic {
        let (topic, parts) = topic_spec(spec)?;
        let parts = match parts {
            Some(p) => p,
            None => {
                let d = admin.describe_topics(std::slice::from_ref(&topic)).await?;
                d.into_iter()
                    .flat_map(|t| t.partitions.into_iter().map(|p| p.partition))
                    .collect()
            }
        };
        partitions.extend(
            parts
                .into_iter()
                .map(|p| TopicPartition::new(topic.clone(), p)),
        );
    }
    partitions.sort();
    partitions.dedup();
    let consumer = Consumer::connect(ConsumerConfig {
        client: admin.config().clone(),
        ..ConsumerConfig::default()
    })
    .await?;
    let begin = consumer.beginning_offsets(&partitions).await?;
    let end = consumer.end_offsets(&partitions).await?;
    let at_time = match to_datetime.or_else(|| by_duration.map(|d| now_ms() - d)) {
        Some(ts) => Some(
            consumer
                .offsets_for_times(partitions.iter().map(|tp| (tp.clone(), ts.max(0))))
                .await?,
        ),
        None => None,
    };
    let mut out = Vec::with_capacity(partitions.len());
    for tp in &partitions {
        let (lo, hi) = (
            begin.get(tp).copied().unwrap_or(0),
            end.get(tp).copied().unwrap_or(0),
        );
        let current = committed.get(&(tp.topic.clone(), tp.partition)).copied();
        let target = if args.to_earliest {
            lo
        } else if args.to_latest {
            hi
        } else if let Some(n) = args.to_offset {
            n
        } else if let Some(n) = args.shift_by {
            current.unwrap_or(hi).saturating_add(n)
        } else if let Some(found) = &at_time {
            found.get(tp).copied().flatten().map_or(hi, |o| o.offset)
        } else {
            current.unwrap_or(hi)
        };
        out.push(NewOffset {
            group: args.group.clone(),
            topic: tp.topic.clone(),
            partition: tp.partition,
            new_offset: target.clamp(lo, hi.max(lo)),
        });
    }
    if args.execute && !out.is_empty() {
        let offsets: Vec<CommittedOffset> = out
            .iter()
            .map(|o| CommittedOffset {
                topic: o.topic.clone(),
                partition: o.partition,
                offset: o.new_offset,
            })
            .collect();
        admin.alter_group_offsets(&args.group, &offsets).await?;
    }
    output.print(&NewOffsets(out));
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Debug, Serialize)]
struct DeletedOffset {
    topic: String,
    partition: i32,
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct DeletedOffsets(Vec<DeletedOffset>);

impl Table for DeletedOffsets {
    fn table(&self) -> Vec<String> {
        let mut rows = vec![["TOPIC", "PARTITION", "STATUS"].map(str::to_owned).to_vec()];
        rows.extend(self.0.iter().map(|o| {
            vec![
                o.topic.clone(),
                o.partition.to_string(),
                "Successful".to_owned(),
            ]
        }));
        columns(&rows)
    }
}

pub(crate) async fn delete_offsets(
    args: DeleteOffsetsArgs,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    let (topic, parts) = topic_spec(&args.topic)?;
    let partitions: Vec<(String, i32)> = match parts {
        Some(p) => p.into_iter().map(|p| (topic.clone(), p)).collect(),
        None => admin
            .list_group_offsets(&args.group)
            .await?
            .into_iter()
            .filter(|c| c.topic == topic)
            .map(|c| (c.topic, c.partition))
            .collect(),
    };
    admin.delete_group_offsets(&args.group, &partitions).await?;
    output.print(&DeletedOffsets(
        partitions
            .into_iter()
            .map(|(topic, partition)| DeletedOffset { topic, partition })
            .collect(),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_datetimes_parse_as_kafka_documents() {
        let cases: &[(&str, Option<i64>)] = &[
            ("PT1H", Some(3_600_000)),
            ("P1DT2H3M4S", Some(93_784_000)),
            ("PT0.5S", Some(500)),
            ("P2D", Some(172_800_000)),
            ("PT90M", Some(5_400_000)),
            ("P", None),
            ("PT", None),
            ("1H", None),
            ("PT1X", None),
            ("PTH", None),
            ("PT1S2M", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration_ms(s).ok(), *want, "{s}");
        }
        assert_eq!(
            parse_datetime_ms("1970-01-01T00:00:01.500").ok(),
            Some(1_500)
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T12:00:00").ok(),
            Some(1_709_208_000_000)
        );
        assert!(parse_datetime_ms("2024-13-01T00:00:00.000").is_err());
        assert!(topic_spec("t:0,x").is_err());
        assert_eq!(
            topic_spec("t:0,2").ok(),
            Some(("t".to_owned(), Some(vec![0, 2])))
        );
    }
}
