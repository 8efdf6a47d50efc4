//! Transaction markers on both sides of WriteTxnMarkers.
//!
//! * The partition leader's side, [`write_local`]: appends each marker to
//!   each of its partitions (acks=all), through the group coordinator for
//!   `__consumer_offsets` partitions so a loaded group shard replays it.
//! * The coordinator's side, [`marker_for`] and [`answer_of`]: one marker
//!   per leader for the partitions a
//!   [`MarkerProgress`](strom_txn::MarkerProgress) still waits for (the
//!   [`channel`](super::channel) puts the markers of many transactions
//!   for one leader into one request), and what each partition's error
//!   code means for it (a deleted partition is found in the coordinator's
//!   own image, not in a leader's answer).

use std::collections::BTreeMap;

use strom_log::batch::control::EndTxnMarker;
use strom_proto::v1::{
    ErrorCode, TxnMarker, TxnMarkerPartitionResult, TxnMarkerResult, TxnTopic,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use strom_txn::{MarkerAnswer, OFFSETS_TOPIC, TopicPartition, TxnResult, WriteMarkers};

use super::config::WRITE_TIMEOUT_MS;
use crate::group::Coordinator;
use crate::replica::{PartError, ReplicaManager};

/// WriteTxnMarkers on this broker: every partition of every marker on its
/// own (an error fails only that partition), all at once; the answers in
/// the request's order.
pub async fn write_local(
    rm: &ReplicaManager,
    groups: Option<&Coordinator>,
    req: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let markers = req.markers.into_iter().map(|m| async move {
        let writes = m
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.clone(), *p)))
            .map(|(topic, partition)| write_one(rm, groups, &m, topic, partition));
        TxnMarkerResult {
            producer_id: m.producer_id,
            partitions: futures::future::join_all(writes).await,
        }
    });
    WriteTxnMarkersResponse {
        markers: futures::future::join_all(markers).await,
    }
}

/// Appends marker `m` to `topic`-`partition` (acks=all), through the group
/// coordinator for an offsets partition.
async fn write_one(
    rm: &ReplicaManager,
    groups: Option<&Coordinator>,
    m: &TxnMarker,
    topic: String,
    partition: i32,
) -> TxnMarkerPartitionResult {
    let marker = EndTxnMarker {
        commit: m.committed,
        coordinator_epoch: m.coordinator_epoch,
    };
    let result = match i16::try_from(m.producer_epoch) {
        Err(_) => Err(PartError::new(
            ErrorCode::InvalidRequest,
            format!("producer epoch {} is not an int16", m.producer_epoch),
        )),
        Ok(epoch) => match groups {
            Some(g) if topic == OFFSETS_TOPIC => {
                g.write_txn_marker(partition, m.producer_id, epoch, marker, WRITE_TIMEOUT_MS)
                    .await
            }
            _ => rm
                .write_txn_marker(
                    &topic,
                    partition,
                    m.producer_id,
                    epoch,
                    marker,
                    WRITE_TIMEOUT_MS,
                )
                .await
                .map(|_| ()),
        },
    };
    let (error_code, error_message) = match result {
        Ok(()) => (ErrorCode::None, String::new()),
        Err(e) => (e.code, e.message),
    };
    TxnMarkerPartitionResult {
        topic,
        partition,
        error_code: error_code as i32,
        error_message,
    }
}

/// The marker of `markers` for `partitions` (all led by one broker), as
/// it travels in a WriteTxnMarkers request.
pub fn marker_for(markers: &WriteMarkers, partitions: &[TopicPartition]) -> TxnMarker {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic).or_default().push(*partition);
    }
    TxnMarker {
        producer_id: markers.producer_id,
        producer_epoch: i32::from(markers.producer_epoch),
        committed: markers.result == TxnResult::Commit,
        coordinator_epoch: markers.coordinator_epoch,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| TxnTopic {
                topic: topic.to_owned(),
                partitions,
            })
            .collect(),
    }
}

/// What a leader's error code for one partition means for the sender
/// (Kafka's `TransactionMarkerRequestCompletionHandler`). An unknown
/// partition is retried: the leader's image may lag the coordinator's.
/// Deletion is read from the coordinator's own image instead.
pub fn answer_of(code: ErrorCode) -> MarkerAnswer {
    match code {
        ErrorCode::None => MarkerAnswer::Written,
        ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => {
            MarkerAnswer::InvalidProducerEpoch
        }
        ErrorCode::TransactionCoordinatorFenced => MarkerAnswer::CoordinatorFenced,
        _ => MarkerAnswer::Retry,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn leader_error_codes_map_to_marker_answers() {
        let table = [
            (ErrorCode::None, MarkerAnswer::Written),
            (ErrorCode::UnknownTopicOrPartition, MarkerAnswer::Retry),
            (ErrorCode::NotLeaderOrFollower, MarkerAnswer::Retry),
            (ErrorCode::NotEnoughReplicas, MarkerAnswer::Retry),
            (ErrorCode::RequestTimedOut, MarkerAnswer::Retry),
            (ErrorCode::CoordinatorLoadInProgress, MarkerAnswer::Retry),
            (ErrorCode::KafkaStorageError, MarkerAnswer::Retry),
            (
                ErrorCode::InvalidProducerEpoch,
                MarkerAnswer::InvalidProducerEpoch,
            ),
            (
                ErrorCode::TransactionCoordinatorFenced,
                MarkerAnswer::CoordinatorFenced,
            ),
        ];
        for (code, answer) in table {
            assert_eq!(answer_of(code), answer, "{}", code.as_str_name());
        }
    }

    #[test]
    fn a_marker_groups_partitions_by_topic_and_carries_the_transaction() {
        let markers = WriteMarkers {
            transactional_id: "t".into(),
            producer_id: 9,
            producer_epoch: 4,
            coordinator_epoch: 2,
            result: TxnResult::Abort,
            partitions: BTreeSet::new(),
        };
        let parts = [
            ("b".to_owned(), 1),
            ("a".to_owned(), 0),
            ("b".to_owned(), 0),
        ];
        let m = &marker_for(&markers, &parts);
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.coordinator_epoch),
            (9, 4, 2)
        );
        assert!(!m.committed);
        let topics: Vec<(&str, &[i32])> = m
            .topics
            .iter()
            .map(|t| (t.topic.as_str(), t.partitions.as_slice()))
            .collect();
        assert_eq!(topics, vec![("a", &[0][..]), ("b", &[1, 0][..])]);
    }
}
