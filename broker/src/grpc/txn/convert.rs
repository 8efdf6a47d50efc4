//! Protobuf ↔ domain conversions of `TransactionService`.

use strom_group::{CommitEntry, CommitRequest, TxnCommitRequest};
use strom_proto::StromError;
use strom_proto::v1::{
    DescribeTransactionsResponse, ErrorCode, TransactionListing, TxnOffsetCommitRequest, TxnTopic,
};
use strom_txn::{TopicPartition, TxnListing, TxnMetadata, TxnState};

/// A producer epoch from the wire (an int16 in Kafka's protocol).
pub fn producer_epoch(epoch: i32) -> Result<i16, StromError> {
    i16::try_from(epoch).map_err(|_| {
        StromError::new(
            ErrorCode::InvalidRequest,
            format!("producer epoch {epoch} is not an int16"),
        )
    })
}

/// The partitions of `topics`, in order.
pub fn partitions(topics: Vec<TxnTopic>) -> Vec<TopicPartition> {
    topics
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic;
            t.partitions.into_iter().map(move |p| (topic.clone(), p))
        })
        .collect()
}

/// A TxnOffsetCommit as the group core's request.
pub fn txn_commit(req: TxnOffsetCommitRequest) -> Result<TxnCommitRequest, StromError> {
    Ok(TxnCommitRequest {
        producer_epoch: producer_epoch(req.producer_epoch)?,
        producer_id: req.producer_id,
        commit: CommitRequest {
            group_id: req.group_id,
            member_id: req.member_id,
            member_epoch: req.member_epoch,
            offsets: req
                .offsets
                .into_iter()
                .map(|o| CommitEntry {
                    topic: o.topic,
                    partition: o.partition,
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata,
                })
                .collect(),
        },
    })
}

/// A state filter by Kafka's name.
pub fn state(name: &str) -> Result<TxnState, StromError> {
    TxnState::ALL
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| {
            StromError::new(
                ErrorCode::InvalidRequest,
                format!("unknown transaction state {name:?}"),
            )
        })
}

/// The partitions of a transaction, grouped by topic.
pub fn topics<'a>(partitions: impl IntoIterator<Item = &'a TopicPartition>) -> Vec<TxnTopic> {
    let mut out: Vec<TxnTopic> = Vec::new();
    for (topic, partition) in partitions {
        match out.last_mut() {
            Some(t) if t.topic == *topic => t.partitions.push(*partition),
            _ => out.push(TxnTopic {
                topic: topic.clone(),
                partitions: vec![*partition],
            }),
        }
    }
    out
}

/// A described transactional id.
pub fn described(transactional_id: String, m: &TxnMetadata) -> DescribeTransactionsResponse {
    DescribeTransactionsResponse {
        transactional_id,
        state: m.state.name().to_owned(),
        producer_id: m.producer_id,
        producer_epoch: i32::from(m.producer_epoch),
        transaction_timeout_ms: m.timeout_ms,
        transaction_start_time_ms: m.start_ms,
        topics: topics(&m.partitions),
    }
}

/// A listed transactional id.
pub fn listing(l: TxnListing) -> TransactionListing {
    TransactionListing {
        transactional_id: l.transactional_id,
        producer_id: l.producer_id,
        state: l.state.name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_outside_int16_are_invalid_requests() {
        let table = [
            (0, Some(0)),
            (32767, Some(32767)),
            (32768, None),
            (-1, Some(-1)),
            (-40000, None),
        ];
        for (wire, want) in table {
            match (producer_epoch(wire), want) {
                (Ok(e), Some(w)) => assert_eq!(e, w),
                (Err(e), None) => assert_eq!(e.code, ErrorCode::InvalidRequest),
                (got, want) => panic!("{wire}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn state_names_are_kafkas_and_unknown_ones_refused() {
        for s in TxnState::ALL {
            assert_eq!(state(s.name()).expect("known"), s);
        }
        let e = state("Committed").expect_err("unknown");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn sorted_partitions_group_by_topic() {
        let set: std::collections::BTreeSet<TopicPartition> = [
            ("a".to_owned(), 1),
            ("b".to_owned(), 0),
            ("a".to_owned(), 0),
        ]
        .into();
        let got: Vec<(String, Vec<i32>)> = topics(&set)
            .into_iter()
            .map(|t| (t.topic, t.partitions))
            .collect();
        assert_eq!(
            got,
            vec![("a".to_owned(), vec![0, 1]), ("b".to_owned(), vec![0])]
        );
    }

    #[test]
    fn topics_flatten_to_partitions_in_order() {
        let got = partitions(vec![
            TxnTopic {
                topic: "a".into(),
                partitions: vec![1, 0],
            },
            TxnTopic {
                topic: "b".into(),
                partitions: vec![],
            },
            TxnTopic {
                topic: "c".into(),
                partitions: vec![2],
            },
        ]);
        assert_eq!(
            got,
            vec![
                ("a".to_owned(), 1),
                ("a".to_owned(), 0),
                ("c".to_owned(), 2)
            ]
        );
    }
}
