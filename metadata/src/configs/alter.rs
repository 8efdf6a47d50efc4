//! What `IncrementalAlterConfigs` commits for one resource: every change is
//! checked first (known key, valid value, changeable live at this level),
//! and only then are `ConfigRecord`s emitted, so a resource changes all or
//! nothing. Changes that leave a value as it is emit nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::keys::{ConfigType, Update, broker_config, check_value, topic_config};
use super::{AlterConfig, AlterOp, Resource};
use crate::error::{Result, bail};
use crate::image::{ClusterImage, MIN_INSYNC_REPLICAS};
use crate::pb;
use crate::pb::config_resource::Type as ResourceType;
use crate::pb::metadata_record::Record;
use crate::records::record;
use crate::topics::{alter_topic_configs, clear_elr};

/// Decides one resource's changes: the records to commit as one batch
/// (empty when nothing changes), or the first problem:
/// `INVALID_CONFIG` naming the key (unknown, bad value, not a list for
/// APPEND/SUBTRACT, read-only or only changeable cluster-wide),
/// `INVALID_REQUEST` for a key named twice or a SET without value,
/// `UNKNOWN_TOPIC_OR_PARTITION`, `BROKER_ID_NOT_REGISTERED`.
///
/// A topic's changes are [`alter_topic_configs`]'s (which also resets
/// eligible leader replicas when `min.insync.replicas` changes); so does a
/// change of the cluster-wide `min.insync.replicas`, for every topic that
/// does not set its own.
pub fn incremental_alter_configs(
    image: &ClusterImage,
    resource: &Resource,
    changes: &[AlterConfig],
) -> Result<Vec<pb::MetadataRecord>> {
    let mut seen = BTreeSet::new();
    if let Some(dup) = changes.iter().find(|c| !seen.insert(c.name.as_str())) {
        bail!(
            InvalidRequest,
            "config {} appears more than once for {resource}",
            dup.name
        );
    }
    let current = match resource {
        Resource::Topic(name) => match image.topic_by_name(name) {
            Some(t) => &t.configs,
            None => bail!(UnknownTopicOrPartition, "topic {name} does not exist"),
        },
        Resource::Broker(id) => {
            if image.broker(*id).is_none() {
                bail!(BrokerIdNotRegistered, "broker {id} is not registered");
            }
            image.broker_configs(*id).unwrap_or(&EMPTY)
        }
        Resource::BrokerDefault => image.cluster_configs(),
    };
    let mut new_values: Vec<(String, Option<String>)> = Vec::with_capacity(changes.len());
    for c in changes {
        let (ty, default) = check_key(resource, &c.name)?;
        let value = match c.op {
            AlterOp::Set => match &c.value {
                Some(v) => Some(v.clone()),
                None => bail!(InvalidRequest, "config {} is set without a value", c.name),
            },
            AlterOp::Delete => None,
            AlterOp::Append | AlterOp::Subtract => {
                if !matches!(ty, ConfigType::List(_) | ConfigType::ThrottledReplicas) {
                    bail!(
                        InvalidConfig,
                        "config {} is not a list: it can only be set or deleted",
                        c.name
                    );
                }
                let base = current.get(&c.name).map_or(default, String::as_str);
                Some(edit_list(base, c.value.as_deref().unwrap_or(""), c.op))
            }
        };
        if let Some(v) = &value {
            check_value(&c.name, ty, v)?;
        }
        if current.get(&c.name) != value.as_ref() {
            new_values.push((c.name.clone(), value));
        }
    }
    match resource {
        Resource::Topic(name) => {
            if new_values.is_empty() {
                return Ok(Vec::new());
            }
            alter_topic_configs(image, name, &new_values)
        }
        Resource::Broker(id) => Ok(config_records(
            ResourceType::Broker,
            &id.to_string(),
            new_values,
        )),
        Resource::BrokerDefault => {
            let min_isr_changed = new_values.iter().any(|(k, _)| k == MIN_INSYNC_REPLICAS);
            let mut records = config_records(ResourceType::Cluster, "", new_values);
            if min_isr_changed {
                for t in image
                    .topics()
                    .filter(|t| !t.configs.contains_key(MIN_INSYNC_REPLICAS))
                {
                    records.extend(clear_elr(t));
                }
            }
            Ok(records)
        }
    }
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

/// The key's type and default, if it can be changed at `resource`.
fn check_key(resource: &Resource, name: &str) -> Result<(ConfigType, &'static str)> {
    match resource {
        Resource::Topic(_) => match topic_config(name) {
            Some(def) => Ok((def.ty, def.default)),
            None => bail!(InvalidConfig, "unknown topic config {name:?}"),
        },
        Resource::Broker(_) | Resource::BrokerDefault => {
            let Some(def) = broker_config(name) else {
                bail!(InvalidConfig, "unknown broker config {name:?}");
            };
            match (def.update, resource) {
                (Update::ReadOnly, _) => bail!(
                    InvalidConfig,
                    "broker config {name} is read-only: it takes effect only at startup, so set it \
                     with --set (or the config file) and restart the broker"
                ),
                (Update::ClusterWide, Resource::Broker(_)) => bail!(
                    InvalidConfig,
                    "broker config {name} can only be changed cluster-wide (--entity-default): \
                     controllers and every broker must use the same value"
                ),
                _ => Ok((def.ty, def.default)),
            }
        }
    }
}

/// `base` with the comma-separated `items` appended (those not yet in it)
/// or removed.
fn edit_list(base: &str, items: &str, op: AlterOp) -> String {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut list = split(base);
    for item in split(items) {
        if op == AlterOp::Append {
            if !list.contains(&item) {
                list.push(item);
            }
        } else {
            list.retain(|i| *i != item);
        }
    }
    list.join(",")
}

fn config_records(
    ty: ResourceType,
    owner: &str,
    values: Vec<(String, Option<String>)>,
) -> Vec<pb::MetadataRecord> {
    values
        .into_iter()
        .map(|(name, value)| {
            record(Record::Config(pb::ConfigRecord {
                resource: Some(pb::ConfigResource {
                    r#type: ty as i32,
                    name: owner.to_owned(),
                }),
                name,
                value,
            }))
        })
        .collect()
}

#[cfg(test)]
#[path = "alter_test.rs"]
mod tests;
