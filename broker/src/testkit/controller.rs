//! [`SimController`]: the controller's decisions without Raft. Each
//! decision is one of `strom-metadata`'s pure functions on the current
//! image; its records are applied to the controller's image with
//! [`ClusterImage::apply_batch`] (which re-checks them, as the real state
//! machine does at commit) and appended to the metadata log the brokers
//! replay. `AlterPartition` arrives through [`ControllerClient`] with
//! seeded loss and delay on the request and on the answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use strom_metadata::pb::{Endpoint, MetadataRecord};
use strom_metadata::records::topic_id_from_bytes;
use strom_metadata::{ClusterImage, CreateTopicSpec, MetadataError, Registration, Uuid};
use strom_proto::StromError;
use strom_proto::convert::partition_metadata;
use strom_proto::v1::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, AlterPartitionRequest,
    AlterPartitionResponse, ErrorCode,
};

use super::net::{Faults, Leg};
use super::rng::SharedRng;
use crate::replica::ControllerClient;

/// One committed batch of the metadata log.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Its offset (from 1, one per batch).
    pub offset: i64,
    /// When it was committed.
    pub at: tokio::time::Instant,
    /// The records.
    pub records: Vec<MetadataRecord>,
}

#[derive(Debug)]
struct State {
    image: ClusterImage,
    log: Vec<Committed>,
    next_broker_epoch: i64,
}

#[derive(Debug)]
struct Inner {
    rng: SharedRng,
    default_min_isr: usize,
    state: Mutex<State>,
    faults: Mutex<Faults>,
    /// Brokers cut off from the controller.
    isolated: Mutex<BTreeSet<i32>>,
}

/// The simulated active controller.
#[derive(Debug, Clone)]
pub struct SimController {
    inner: Arc<Inner>,
}

impl SimController {
    /// A controller with an empty image; `default_min_isr` is
    /// `min.insync.replicas` for topics without the config.
    pub fn new(rng: SharedRng, default_min_isr: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                rng,
                default_min_isr,
                state: Mutex::new(State {
                    image: ClusterImage::default(),
                    log: Vec::new(),
                    next_broker_epoch: 1,
                }),
                faults: Mutex::new(Faults::NONE),
                isolated: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the faults of the `AlterPartition` channel from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.inner.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// Cuts broker `id` off from the controller (its `AlterPartition`s
    /// fail), or reconnects it.
    pub fn isolate(&self, id: i32, isolated: bool) {
        let mut set = self
            .inner
            .isolated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if isolated {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    fn is_isolated(&self, id: i32) -> bool {
        self.inner
            .isolated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// Decides with `decide` on the current image and commits the records
    /// (none: nothing is committed). Returns the log's last offset.
    pub fn decide(
        &self,
        decide: impl FnOnce(&ClusterImage, usize) -> Result<Vec<MetadataRecord>, MetadataError>,
    ) -> Result<i64, MetadataError> {
        let mut st = self.state();
        // As the real controller: a cluster-wide dynamic value wins.
        let min_isr =
            strom_metadata::configs::default_min_isr(&st.image, self.inner.default_min_isr);
        let records = decide(&st.image, min_isr)?;
        if records.is_empty() {
            return Ok(st.image.offset());
        }
        let offset = st.image.offset().max(0) + 1;
        st.image.apply_batch(offset, &records)?;
        st.log.push(Committed {
            offset,
            at: tokio::time::Instant::now(),
            records,
        });
        Ok(offset)
    }

    /// Reads the controller's image.
    pub fn with_image<T>(&self, f: impl FnOnce(&ClusterImage) -> T) -> T {
        f(&self.state().image)
    }

    /// The committed batch at index `i` of the log (from 0), if any.
    pub fn batch(&self, i: usize) -> Option<Committed> {
        self.state().log.get(i).cloned()
    }

    /// Registers broker `id` (incarnation `incarnation`, reachable at
    /// `endpoints`) with a new broker epoch; returns the epoch and the offset
    /// of the registration. A registration starts fenced.
    pub fn register(
        &self,
        id: i32,
        incarnation: &str,
        endpoints: Vec<Endpoint>,
    ) -> Result<(i64, i64), MetadataError> {
        let epoch = {
            let mut st = self.state();
            st.next_broker_epoch += 1;
            st.next_broker_epoch
        };
        let registration = Registration {
            broker_id: id,
            incarnation_id: incarnation.to_owned(),
            endpoints,
            rack: None,
            damaged: Vec::new(),
            static_configs: Default::default(),
        };
        let offset = self.decide(|image, min_isr| {
            strom_metadata::register_broker(image, &registration, false, epoch, min_isr)
        })?;
        Ok((epoch, offset))
    }

    /// Fences broker `id` (its lease expired): out of every ISR, new
    /// leaders where it led.
    pub fn fence(&self, id: i32) -> Result<i64, MetadataError> {
        self.decide(|image, min_isr| Ok(strom_metadata::fence_broker(image, id, min_isr)))
    }

    /// Unfences broker `id` (caught up): leaders for the partitions only it
    /// can lead.
    pub fn unfence(&self, id: i32) -> Result<i64, MetadataError> {
        self.decide(|image, min_isr| strom_metadata::unfence_broker(image, id, min_isr))
    }

    /// Moves leaderships back to preferred replicas where possible.
    pub fn rebalance_leaders(&self) -> Result<i64, MetadataError> {
        self.decide(|image, _| Ok(strom_metadata::rebalance_leaders(image, 0.0)))
    }

    /// Creates a topic placed over the alive brokers.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        configs: BTreeMap<String, String>,
        topic_id: Uuid,
    ) -> Result<i64, MetadataError> {
        let spec = CreateTopicSpec {
            name: name.to_owned(),
            num_partitions: partitions,
            replication_factor,
            assignment: None,
            configs,
        };
        self.decide(|image, _| strom_metadata::create_topic(image, &spec, topic_id, 0))
    }

    /// Decides one `AlterPartition`, as `controller/src/grpc/alter_partition.rs`.
    fn alter_partition_now(&self, r: &AlterPartitionRequest) -> AlterPartitionResponse {
        let Ok(topic_id) = topic_id_from_bytes(&r.topic_id) else {
            return AlterPartitionResponse {
                error_code: ErrorCode::UnknownTopicId as i32,
                error_message: "bad topic id".into(),
                partition: None,
            };
        };
        let outcome = self.decide(|image, min_isr| {
            strom_metadata::alter_partition(
                image,
                r.broker_id,
                r.broker_epoch,
                &topic_id,
                r.partition,
                r.leader_epoch,
                r.partition_epoch,
                &r.new_isr,
                min_isr,
            )
        });
        let (error_code, error_message) = match outcome {
            Ok(_) => (ErrorCode::None, String::new()),
            Err(e) => (ErrorCode::from(e.code), e.message),
        };
        let partition = self.with_image(|image| {
            image
                .partition(&topic_id, r.partition)
                .map(|p| partition_metadata(image, r.partition, p))
        });
        AlterPartitionResponse {
            error_code: error_code as i32,
            error_message,
            partition,
        }
    }

    async fn leg(&self, broker: i32) -> Result<(), StromError> {
        let faults = *self.inner.faults.lock().unwrap_or_else(|e| e.into_inner());
        let (leg, delay) = faults.draw(&self.inner.rng);
        tokio::time::sleep(delay).await;
        if self.is_isolated(broker) {
            return Err(StromError::new(
                ErrorCode::NetworkException,
                "simulated: broker cut off from the controller",
            ));
        }
        match leg {
            Leg::Delivered => Ok(()),
            Leg::Failed => Err(StromError::new(
                ErrorCode::NetworkException,
                "simulated: controller message lost",
            )),
            // The real client gives up after its timeout.
            Leg::Hung => {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                Err(StromError::new(
                    ErrorCode::RequestTimedOut,
                    "simulated: controller did not answer",
                ))
            }
        }
    }
}

impl ControllerClient for SimController {
    fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> BoxFuture<'_, Result<AlterPartitionResponse, StromError>> {
        Box::pin(async move {
            self.leg(request.broker_id).await?;
            let response = self.alter_partition_now(&request);
            // The answer may be lost after the change was committed: the
            // leader learns of it from the metadata log.
            self.leg(request.broker_id).await?;
            Ok(response)
        })
    }

    fn allocate_producer_ids(
        &self,
        request: AllocateProducerIdsRequest,
    ) -> BoxFuture<'_, Result<AllocateProducerIdsResponse, StromError>> {
        Box::pin(async move {
            self.leg(request.broker_id).await?;
            let mut block = None;
            self.decide(|image, _| {
                let (b, record) = strom_metadata::producer_ids::allocate_producer_ids(
                    image,
                    request.broker_id,
                    request.broker_epoch,
                )?;
                block = Some(b);
                Ok(vec![record])
            })
            .map_err(StromError::from)?;
            let block = block.expect("decided above");
            self.leg(request.broker_id).await?;
            Ok(AllocateProducerIdsResponse {
                producer_id_start: block.first,
                producer_id_len: i32::try_from(block.len).unwrap_or(i32::MAX),
            })
        })
    }
}
