//! What `DescribeConfigs` answers, and the live broker settings a broker
//! applies: each config's value in force with the precedence topic >
//! per-broker > cluster-wide default > static > built-in default.
//!
//! Static values are what each broker reported in its registration
//! (`RegisterBrokerRecord.static_configs`), so any controller can describe
//! any broker, even one that is down (its last registration). A topic's
//! static default is taken from the lowest-numbered broker hosting one of
//! its replicas that set it (brokers should agree; `configs describe
//! --entity-type brokers` shows each one's).

use std::collections::BTreeMap;

use super::keys::{BROKER_CONFIGS, BrokerConfigDef, TOPIC_CONFIGS, Update, broker_config};
use super::{ConfigEntry, ConfigSource, ConfigSynonym, Resource};
use crate::error::{Result, bail};
use crate::image::{ClusterImage, MIN_INSYNC_REPLICAS, TopicImage};

/// The live values of `broker_id`'s dynamic settings, by key: cluster-wide
/// defaults, overridden by the broker's own for per-broker settings. Only
/// keys that can change live ([`Update`]) are included; the broker applies
/// them over its static settings.
pub fn dynamic_broker_configs(image: &ClusterImage, broker_id: i32) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in image.cluster_configs() {
        if broker_config(k).is_some_and(|d| d.update != Update::ReadOnly) {
            out.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in image.broker_configs(broker_id).into_iter().flatten() {
        if broker_config(k).is_some_and(|d| d.update == Update::PerBroker) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// `min.insync.replicas` for topics that do not set it: the cluster-wide
/// dynamic value, else `static_default` (the node's `--set`). Controllers
/// and brokers both use it, so they agree on eligible leader replicas.
pub fn default_min_isr(image: &ClusterImage, static_default: usize) -> usize {
    image
        .cluster_configs()
        .get(MIN_INSYNC_REPLICAS)
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|v| *v >= 1)
        .unwrap_or(static_default)
}

/// Every config of `resource` with its value in force, source and
/// synonyms, by name. `UNKNOWN_TOPIC_OR_PARTITION` for a topic that does
/// not exist, `BROKER_ID_NOT_REGISTERED` for an unknown broker.
pub fn describe_configs(image: &ClusterImage, resource: &Resource) -> Result<Vec<ConfigEntry>> {
    let mut entries = match resource {
        Resource::Topic(name) => {
            let Some(topic) = image.topic_by_name(name) else {
                bail!(UnknownTopicOrPartition, "topic {name} does not exist");
            };
            describe_topic(image, topic)
        }
        Resource::Broker(id) => {
            let Some(b) = image.broker(*id) else {
                bail!(BrokerIdNotRegistered, "broker {id} is not registered");
            };
            let dynamic = image.broker_configs(*id);
            BROKER_CONFIGS
                .iter()
                .map(|def| {
                    let own = dynamic
                        .filter(|_| def.update == Update::PerBroker)
                        .and_then(|m| m.get(def.name));
                    let levels = [
                        own.map(|v| (ConfigSource::DynamicBroker, v.as_str())),
                        cluster_value(image, def).map(|v| (ConfigSource::DynamicDefaultBroker, v)),
                        b.static_configs
                            .get(def.name)
                            .map(|v| (ConfigSource::StaticBroker, v.as_str())),
                    ];
                    broker_entry(def, def.update != Update::PerBroker, &levels)
                })
                .collect()
        }
        Resource::BrokerDefault => BROKER_CONFIGS
            .iter()
            .filter(|def| def.update != Update::ReadOnly)
            .map(|def| {
                let levels =
                    [cluster_value(image, def).map(|v| (ConfigSource::DynamicDefaultBroker, v))];
                broker_entry(def, false, &levels)
            })
            .collect(),
    };
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The cluster-wide dynamic value of a live setting.
fn cluster_value<'a>(image: &'a ClusterImage, def: &BrokerConfigDef) -> Option<&'a str> {
    if def.update == Update::ReadOnly {
        return None;
    }
    image.cluster_configs().get(def.name).map(String::as_str)
}

/// An entry of a broker setting from the levels that set it (highest
/// first), falling back to the default.
fn broker_entry(
    def: &BrokerConfigDef,
    read_only: bool,
    levels: &[Option<(ConfigSource, &str)>],
) -> ConfigEntry {
    let mut synonyms: Vec<ConfigSynonym> = levels
        .iter()
        .flatten()
        .map(|(source, v)| synonym(def.name, v, *source, def.sensitive))
        .collect();
    synonyms.push(synonym(
        def.name,
        def.default,
        ConfigSource::Default,
        def.sensitive,
    ));
    entry(def.name, read_only, def.sensitive, synonyms)
}

fn synonym(name: &str, value: &str, source: ConfigSource, sensitive: bool) -> ConfigSynonym {
    ConfigSynonym {
        name: name.to_owned(),
        value: (!sensitive).then(|| value.to_owned()),
        source,
    }
}

/// The entry whose value is the first synonym's.
fn entry(
    name: &str,
    read_only: bool,
    sensitive: bool,
    synonyms: Vec<ConfigSynonym>,
) -> ConfigEntry {
    let first = synonyms.first().expect("every config has a default");
    ConfigEntry {
        name: name.to_owned(),
        value: first.value.clone(),
        source: first.source,
        read_only,
        sensitive,
        synonyms,
    }
}

fn describe_topic(image: &ClusterImage, topic: &TopicImage) -> Vec<ConfigEntry> {
    // Brokers hosting the topic, lowest id first: the static default comes
    // from the first that set it.
    let mut hosts: Vec<i32> = topic
        .partitions
        .values()
        .flat_map(|p| p.replicas.iter().copied())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = topic.configs.get(def.name) {
                synonyms.push(synonym(def.name, v, ConfigSource::DynamicTopic, false));
            }
            if let Some(broker_def) = def.broker_synonym.and_then(broker_config) {
                if let Some(v) = cluster_value(image, broker_def) {
                    synonyms.push(synonym(
                        broker_def.name,
                        v,
                        ConfigSource::DynamicDefaultBroker,
                        false,
                    ));
                }
                let statics = hosts
                    .iter()
                    .filter_map(|id| image.broker(*id))
                    .find_map(|b| b.static_configs.get(broker_def.name));
                if let Some(v) = statics {
                    synonyms.push(synonym(
                        broker_def.name,
                        v,
                        ConfigSource::StaticBroker,
                        false,
                    ));
                }
                synonyms.push(synonym(
                    broker_def.name,
                    broker_def.default,
                    ConfigSource::Default,
                    false,
                ));
            } else {
                synonyms.push(synonym(def.name, def.default, ConfigSource::Default, false));
            }
            entry(def.name, false, false, synonyms)
        })
        .collect()
}

#[cfg(test)]
#[path = "describe_test.rs"]
mod tests;
