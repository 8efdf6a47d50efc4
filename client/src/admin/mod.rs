//! The admin client: topics, partitions, leader elections, configs,
//! cluster description and record deletion, like Kafka's `Admin`.
//!
//! * `types` — the domain types, serialized in the CLI's JSON shape.
//! * `convert` — protobuf ↔ domain conversions.
//! * `delete_records` — `DeleteRecords` to each partition's leader
//!   (checked everywhere before anything is deleted).
//! * `reassignments` — partition reassignments (KIP-455).
//! * `groups` — consumer groups: list, describe, committed offsets,
//!   delete, on each group's coordinator.
//! * `transactions` — transactions as kafka-transactions sees them: list,
//!   describe, the producers of partitions, aborting a hanging
//!   transaction.
//!
//! Writes go to `ControllerService` on any bootstrap node (brokers forward
//! them to the active controller), except `delete_records`, which goes to
//! each partition's leader. Every call retries transparently on
//! retriable errors (see [`crate::retry::is_retriable`]) with exponential
//! backoff until the request timeout, rotating through the bootstrap servers
//! on transport errors; non-retriable errors return at once.
//!
//! A retried write is not idempotent: a create whose first attempt was
//! applied but whose answer got lost reports TOPIC_ALREADY_EXISTS on the
//! retry (a delete reports UNKNOWN_TOPIC_OR_PARTITION), exactly as with
//! Kafka's admin client.

mod convert;
mod delete_records;
mod groups;
mod reassignments;
mod transactions;
mod types;

use std::sync::Arc;
use std::time::Duration;

use strom_proto::v1 as pb;
use strom_proto::v1::controller_service_client::ControllerServiceClient;
use strom_proto::v1::metadata_service_client::MetadataServiceClient;
use tonic::transport::Channel;

pub use self::groups::{
    CommittedOffset, GroupDescription, GroupListing, GroupMemberDescription, GroupTopicPartitions,
};
pub use self::reassignments::{PartitionReassignment, ReassignmentResult};
pub use self::transactions::{
    ProducerState, TransactionDescription, TransactionListing, producer_at_start_offset,
};
pub use self::types::{
    AlterConfigOp, BrokerDescription, BrokerState, ClusterDescription, ConfigEntry, ConfigResource,
    ConfigSource, ConfigSynonym, ControllerQuorum, CreateTopicResult, DeleteTopicResult,
    DeletedRecords, ElectionResult, ElectionType, Metadata, NewTopic, PartitionDescription,
    TopicDescription, TopicId, TopicListing, TopicPartition, VoterDescription, error_code_name,
};
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::pool::{ChannelPool, MAX_MESSAGE_SIZE as MAX_RESPONSE};
use crate::retry;

/// A handle on a cluster for administrative operations. Cheap to clone;
/// clones share connections.
#[derive(Debug, Clone)]
pub struct Admin {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    pool: Arc<ChannelPool>,
}

/// A tonic request carrying the time the caller still waits for it.
fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

impl Admin {
    /// Validates `config` and prepares connections. Nodes are dialled
    /// lazily, on the first request.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        config.validate()?;
        let pool = Arc::new(ChannelPool::new(
            config.bootstrap_servers.clone(),
            config.connect_timeout,
        ));
        Ok(Self {
            inner: Arc::new(Inner { config, pool }),
        })
    }

    /// The config this client was created with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Calls `ControllerService` with retries.
    async fn controller<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T>
    where
        F: FnMut(ControllerServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let inner = &self.inner;
        retry::call(&inner.config, &inner.pool, what, |channel, timeout| {
            f(
                ControllerServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE),
                timeout,
            )
        })
        .await
    }

    /// Creates topics; one result per topic, in request order. With
    /// `validate_only` the controller checks the request and creates nothing.
    /// Per-topic failures are in the results; `Err` means the whole request failed.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Result<Vec<CreateTopicResult>> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let message = pb::CreateTopicsRequest {
            topics: topics.into_iter().map(Into::into).collect(),
            validate_only,
        };
        let response = self
            .controller("create topics", |mut c, timeout| {
                let message = message.clone();
                async move { c.create_topics(request(message, timeout)).await }
            })
            .await?;
        Ok(response.topics.into_iter().map(Into::into).collect())
    }

    /// Creates one topic and returns its id; the topic's error becomes
    /// [`Error::Strom`] (e.g. TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR).
    pub async fn create_topic(&self, topic: NewTopic) -> Result<TopicId> {
        let name = topic.name.clone();
        let results = self.create_topics(vec![topic], false).await?;
        single_result(results, &name, |r| &r.name)?.into_result()
    }

    /// Deletes topics by name; one result per topic.
    pub async fn delete_topics(&self, names: Vec<String>) -> Result<Vec<DeleteTopicResult>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let message = pb::DeleteTopicsRequest { names };
        let response = self
            .controller("delete topics", |mut c, timeout| {
                let message = message.clone();
                async move { c.delete_topics(request(message, timeout)).await }
            })
            .await?;
        Ok(response.topics.into_iter().map(Into::into).collect())
    }

    /// Deletes one topic; its error becomes [`Error::Strom`]
    /// (e.g. UNKNOWN_TOPIC_OR_PARTITION).
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let results = self.delete_topics(vec![name.to_owned()]).await?;
        match single_result(results, name, |r| &r.name)?.error {
            Some(e) => Err(Error::Strom(e)),
            None => Ok(()),
        }
    }

    /// Grows `topic` to `total` partitions (the count only increases); the
    /// controller places the new partitions.
    pub async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let message = pb::CreatePartitionsRequest {
            topics: vec![pb::CreatePartitionsTopic {
                name: topic.to_owned(),
                count: total,
                assignments: Vec::new(),
            }],
            validate_only: false,
        };
        let response = self
            .controller("create partitions", |mut c, timeout| {
                let message = message.clone();
                async move { c.create_partitions(request(message, timeout)).await }
            })
            .await?;
        let result = single_result(response.topics, topic, |r| &r.name)?;
        match crate::error::item_error(result.error_code, &result.error_message) {
            Some(e) => Err(Error::Strom(e)),
            None => Ok(()),
        }
    }

    /// The controller quorum and the registered brokers.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let response = self
            .controller("describe cluster", |mut c, timeout| async move {
                c.describe_cluster(request(pb::DescribeClusterRequest {}, timeout))
                    .await
            })
            .await?;
        Ok(response.into())
    }

    /// The answering node's own metadata image (`MetadataService`, served
    /// by any broker; may lag the controller slightly). `topics` empty means
    /// every topic; requested topics that do not exist are in `topic_errors`.
    pub async fn metadata(&self, topics: &[String]) -> Result<Metadata> {
        let message = pb::MetadataRequest {
            topics: topics.to_vec(),
        };
        let inner = &self.inner;
        let response = retry::call(
            &inner.config,
            &inner.pool,
            "metadata",
            |channel, timeout| {
                let message = message.clone();
                async move {
                    MetadataServiceClient::new(channel)
                        .max_decoding_message_size(MAX_RESPONSE)
                        .metadata(request(message, timeout))
                        .await
                }
            },
        )
        .await?;
        Ok(response.into())
    }

    /// Topics as the controller sees them (committed state, so a topic just
    /// created is visible), sorted by name; `topics` empty means every topic.
    /// A requested topic that does not exist fails the call with
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn describe_topics(&self, topics: &[String]) -> Result<Vec<TopicDescription>> {
        let message = pb::MetadataRequest {
            topics: topics.to_vec(),
        };
        let response = self
            .controller("describe topics", |mut c, timeout| {
                let message = message.clone();
                async move { c.describe_topics(request(message, timeout)).await }
            })
            .await?;
        let metadata = Metadata::from(response);
        if let Some(error) = metadata.topic_errors.into_values().next() {
            return Err(Error::Strom(error));
        }
        Ok(metadata.topics)
    }

    /// Every topic's name and id, sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicListing>> {
        let topics = self.describe_topics(&[]).await?;
        Ok(topics
            .into_iter()
            .map(|t| TopicListing {
                name: t.name,
                topic_id: t.topic_id,
                is_internal: t.is_internal,
            })
            .collect())
    }

    /// Runs preferred or unclean leader elections for `partitions`, or for
    /// every partition when `None`. Per-partition outcomes (including
    /// ELECTION_NOT_NEEDED) are in the results, sorted by topic and partition.
    pub async fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<ElectionResult>> {
        if partitions.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let message = pb::ElectLeadersRequest {
            election_type: pb::ElectionType::from(kind) as i32,
            partitions: partitions
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
        };
        let response = self
            .controller("elect leaders", |mut c, timeout| {
                let message = message.clone();
                async move { c.elect_leaders(request(message, timeout)).await }
            })
            .await?;
        let mut results: Vec<ElectionResult> =
            response.results.into_iter().map(Into::into).collect();
        results.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(results)
    }

    /// Every config of `resource` with its value in force and source
    /// (Kafka's `describeConfigs`), by name. Fails with
    /// UNKNOWN_TOPIC_OR_PARTITION or BROKER_ID_NOT_REGISTERED for a
    /// resource that does not exist.
    pub async fn describe_configs(&self, resource: &ConfigResource) -> Result<Vec<ConfigEntry>> {
        let message = pb::DescribeConfigsRequest {
            resources: vec![resource.into()],
        };
        let response = self
            .controller("describe configs", |mut c, timeout| {
                let message = message.clone();
                async move { c.describe_configs(request(message, timeout)).await }
            })
            .await?;
        let result = response.results.into_iter().next().ok_or_else(|| {
            Error::strom(
                pb::ErrorCode::UnknownServerError,
                format!("the response holds no result for {resource}"),
            )
        })?;
        if let Some(e) = crate::error::item_error(result.error_code, &result.error_message) {
            return Err(Error::Strom(e));
        }
        Ok(result.configs.into_iter().map(Into::into).collect())
    }

    /// Applies `ops` to `resource`, all or nothing (Kafka's
    /// `incrementalAlterConfigs`); the changes take effect on every broker
    /// without a restart. With `validate_only` the controller checks them
    /// and changes nothing. A refused change fails with INVALID_CONFIG
    /// naming the key (unknown key, bad value, read-only setting),
    /// UNKNOWN_TOPIC_OR_PARTITION or BROKER_ID_NOT_REGISTERED.
    pub async fn incremental_alter_configs(
        &self,
        resource: &ConfigResource,
        ops: Vec<AlterConfigOp>,
        validate_only: bool,
    ) -> Result<()> {
        let message = pb::IncrementalAlterConfigsRequest {
            resources: vec![pb::AlterConfigsResource {
                resource: Some(resource.into()),
                configs: ops.into_iter().map(Into::into).collect(),
            }],
            validate_only,
        };
        let response = self
            .controller("alter configs", |mut c, timeout| {
                let message = message.clone();
                async move { c.incremental_alter_configs(request(message, timeout)).await }
            })
            .await?;
        let result = response.results.into_iter().next().ok_or_else(|| {
            Error::strom(
                pb::ErrorCode::UnknownServerError,
                format!("the response holds no result for {resource}"),
            )
        })?;
        match crate::error::item_error(result.error_code, &result.error_message) {
            Some(e) => Err(Error::Strom(e)),
            None => Ok(()),
        }
    }
}

/// The result for `name` among a batch response's results.
fn single_result<R>(results: Vec<R>, name: &str, name_of: impl Fn(&R) -> &String) -> Result<R> {
    results
        .into_iter()
        .find(|r| name_of(r) == name)
        .ok_or_else(|| {
            Error::strom(
                pb::ErrorCode::UnknownServerError,
                format!("the response holds no result for topic '{name}'"),
            )
        })
}

#[cfg(test)]
mod tests;
