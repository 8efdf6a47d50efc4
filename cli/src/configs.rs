//! `strom configs describe|alter`, with kafka-configs' flags: topics by
//! name, brokers by id, or every broker's cluster-wide default
//! (`--entity-default`).

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde::Serialize;
use strom_client::{Admin, AlterConfigOp, ConfigEntry, ConfigResource, Error, ErrorCode};

use crate::output::{Output, Table, columns};

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigsCommand {
    /// Show every config of a topic or broker with its value and source.
    Describe(DescribeArgs),
    /// Set or delete configs of a topic or broker; they take effect without
    /// a restart.
    Alter(AlterArgs),
}

/// `--entity-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EntityType {
    /// Topics, by name.
    Topics,
    /// Brokers, by id, or all of them with --entity-default.
    Brokers,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("entity").required(true).args(["entity_name", "entity_default"])))]
pub(crate) struct Entity {
    /// What the configs belong to.
    #[arg(long, value_enum)]
    entity_type: EntityType,
    /// The topic name or broker id.
    #[arg(long, value_name = "NAME")]
    entity_name: Option<String>,
    /// The cluster-wide default of every broker (with --entity-type brokers).
    #[arg(long)]
    entity_default: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    #[command(flatten)]
    entity: Entity,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("changes").required(true).multiple(true).args(["add_config", "delete_config"])))]
pub(crate) struct AlterArgs {
    #[command(flatten)]
    entity: Entity,
    /// Configs to set: k=v,k2=v2 (a value holding commas in brackets:
    /// cleanup.policy=[compact,delete]). Repeatable.
    #[arg(long, value_name = "K=V,K2=V2")]
    add_config: Vec<String>,
    /// Configs to remove, back to the next level's value: k,k2. Repeatable.
    #[arg(long, value_name = "K,K2", value_delimiter = ',')]
    delete_config: Vec<String>,
}

impl ConfigsCommand {
    /// Checks across flags that clap cannot express.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let entity = match self {
            ConfigsCommand::Describe(a) => &a.entity,
            ConfigsCommand::Alter(a) => &a.entity,
        };
        entity.resource().map(|_| ())
    }
}

impl Entity {
    fn resource(&self) -> Result<ConfigResource, String> {
        match (self.entity_type, &self.entity_name) {
            (EntityType::Topics, Some(name)) => Ok(ConfigResource::Topic(name.clone())),
            (EntityType::Topics, None) => {
                Err("--entity-default is only for --entity-type brokers".into())
            }
            (EntityType::Brokers, Some(name)) => match name.trim().parse::<i32>() {
                Ok(id) if id >= 0 => Ok(ConfigResource::Broker(id)),
                _ => Err(format!(
                    "--entity-name of a broker must be its id (a number ≥ 0), got '{name}'"
                )),
            },
            (EntityType::Brokers, None) => Ok(ConfigResource::BrokerDefault),
        }
    }
}

pub(crate) async fn run(
    command: ConfigsCommand,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    match command {
        ConfigsCommand::Describe(args) => {
            let resource = args.entity.resource().map_err(Error::InvalidArgument)?;
            let entries = admin.describe_configs(&resource).await?;
            output.print(&Described(entries));
            Ok(())
        }
        ConfigsCommand::Alter(args) => {
            let resource = args.entity.resource().map_err(Error::InvalidArgument)?;
            let mut ops = Vec::new();
            for add in &args.add_config {
                for (k, v) in parse_add_config(add)? {
                    ops.push(AlterConfigOp::set(k, v));
                }
            }
            for k in args.delete_config.iter().map(|k| k.trim()) {
                if k.is_empty() {
                    return Err(invalid("--delete-config has an empty config name"));
                }
                ops.push(AlterConfigOp::delete(k));
            }
            admin
                .incremental_alter_configs(&resource, ops, false)
                .await?;
            output.print(&Altered::from(&resource));
            Ok(())
        }
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::strom(ErrorCode::InvalidConfig, message)
}

/// Parses kafka-configs' `--add-config`: `k=v` pairs separated by commas,
/// a value with commas in brackets (`k=[a,b]` is `a,b`).
pub(crate) fn parse_add_config(s: &str) -> Result<Vec<(String, String)>, Error> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&s[start..]);
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                invalid(format!("invalid --add-config '{item}': expected KEY=VALUE"))
            })?;
            let k = k.trim();
            if k.is_empty() {
                return Err(invalid(format!(
                    "invalid --add-config '{item}': empty config name"
                )));
            }
            let v = v.trim();
            let v = v
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .unwrap_or(v);
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// `configs describe`: table `NAME VALUE SOURCE`, JSON
/// `[{"name", "value", "source", "read_only", "sensitive"}]`.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Described(Vec<ConfigEntry>);

impl Table for Described {
    fn table(&self) -> Vec<String> {
        let mut rows = vec![["NAME", "VALUE", "SOURCE"].map(str::to_owned).to_vec()];
        rows.extend(self.0.iter().map(|e| {
            let value = match (&e.value, e.sensitive) {
                (_, true) => "(sensitive)".to_owned(),
                (Some(v), false) => v.clone(),
                (None, false) => "null".to_owned(),
            };
            vec![e.name.clone(), value, e.source.as_str().to_owned()]
        }));
        columns(&rows)
    }
}

/// `configs alter`: Kafka's confirmation line; JSON
/// `{"entity_type", "entity_name"}` (`entity_name` null for the default).
#[derive(Debug, Serialize)]
struct Altered {
    entity_type: &'static str,
    entity_name: Option<String>,
}

impl From<&ConfigResource> for Altered {
    fn from(r: &ConfigResource) -> Self {
        match r {
            ConfigResource::Topic(t) => Altered {
                entity_type: "topics",
                entity_name: Some(t.clone()),
            },
            ConfigResource::Broker(id) => Altered {
                entity_type: "brokers",
                entity_name: Some(id.to_string()),
            },
            ConfigResource::BrokerDefault => Altered {
                entity_type: "brokers",
                entity_name: None,
            },
        }
    }
}

impl Table for Altered {
    fn table(&self) -> Vec<String> {
        vec![match (self.entity_type, &self.entity_name) {
            ("topics", Some(t)) => format!("Completed updating config for topic {t}."),
            (_, Some(id)) => format!("Completed updating config for broker {id}."),
            (_, None) => "Completed updating default config for brokers in the cluster.".to_owned(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_config_splits_pairs_and_keeps_bracketed_lists() {
        let ok = |s: &str| parse_add_config(s).unwrap();
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(ok("a=1"), pairs(&[("a", "1")]));
        assert_eq!(ok("a=1, b.c=x=y ,"), pairs(&[("a", "1"), ("b.c", "x=y")]));
        assert_eq!(
            ok("cleanup.policy=[compact,delete],x=2"),
            pairs(&[("cleanup.policy", "compact,delete"), ("x", "2")])
        );
        for bad in ["a", "=1", "a=1,b"] {
            let e = parse_add_config(bad).unwrap_err();
            assert_eq!(e.code(), Some(ErrorCode::InvalidConfig), "{bad}");
        }
    }

    #[test]
    fn describe_table_has_name_value_source_columns() {
        let entry = |name: &str, value: Option<&str>, source, sensitive| ConfigEntry {
            name: name.into(),
            value: value.map(str::to_owned),
            source,
            read_only: false,
            sensitive,
            synonyms: vec![],
        };
        use strom_client::ConfigSource as S;
        let table = Described(vec![
            entry(
                "min.insync.replicas",
                Some("2"),
                S::DynamicTopicConfig,
                false,
            ),
            entry("secret", None, S::StaticBrokerConfig, true),
        ])
        .table();
        assert_eq!(
            table,
            [
                "NAME                 VALUE        SOURCE",
                "min.insync.replicas  2            DYNAMIC_TOPIC_CONFIG",
                "secret               (sensitive)  STATIC_BROKER_CONFIG",
            ]
        );
    }

    #[test]
    fn alter_confirms_like_kafka() {
        let line = |r: ConfigResource| Altered::from(&r).table().remove(0);
        assert_eq!(
            line(ConfigResource::Topic("t".into())),
            "Completed updating config for topic t."
        );
        assert_eq!(
            line(ConfigResource::Broker(2)),
            "Completed updating config for broker 2."
        );
        assert_eq!(
            line(ConfigResource::BrokerDefault),
            "Completed updating default config for brokers in the cluster."
        );
    }
}
