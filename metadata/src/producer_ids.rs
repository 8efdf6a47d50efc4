//! Producer ids: the controller hands them to brokers in blocks (Kafka's
//! `AllocateProducerIds`), each block recorded in the metadata log, so an
//! id is unique in the cluster forever, across controller failovers and
//! restarts. A broker gives ids of its block to the producers that ask
//! (`InitProducerId`) and asks for the next block before this one runs
//! out.

use crate::error::{Result, bail};
use crate::image::ClusterImage;
use crate::pb;
use crate::pb::metadata_record::Record;
use crate::records::record;

/// Ids per block, as Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// A range of producer ids owned by one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdBlock {
    /// The first id of the block.
    pub first: i64,
    /// How many ids it holds.
    pub len: i64,
}

/// Decides the next block for broker `broker_id` at `broker_epoch`: the
/// block and the record that takes it. Only a registered broker at its
/// current epoch gets one (`BROKER_ID_NOT_REGISTERED`,
/// `STALE_BROKER_EPOCH`), so a fenced zombie incarnation cannot take ids.
/// Fails with `INVALID_REQUEST` once the id space is exhausted.
pub fn allocate_producer_ids(
    image: &ClusterImage,
    broker_id: i32,
    broker_epoch: i64,
) -> Result<(ProducerIdBlock, pb::MetadataRecord)> {
    let Some(broker) = image.broker(broker_id) else {
        bail!(
            BrokerIdNotRegistered,
            "broker {broker_id} is not registered"
        );
    };
    if broker.epoch != broker_epoch {
        bail!(
            StaleBrokerEpoch,
            "broker {broker_id} epoch {broker_epoch} is not its current epoch {}",
            broker.epoch
        );
    }
    let first = image.next_producer_id();
    let Some(next) = first.checked_add(PRODUCER_ID_BLOCK_SIZE) else {
        bail!(InvalidRequest, "the producer id space is exhausted");
    };
    let block = ProducerIdBlock {
        first,
        len: PRODUCER_ID_BLOCK_SIZE,
    };
    let rec = record(Record::ProducerIds(pb::ProducerIdsRecord {
        broker_id,
        broker_epoch,
        next_producer_id: next,
    }));
    Ok((block, rec))
}

#[cfg(test)]
#[path = "producer_ids_test.rs"]
mod tests;
