//! The consumer protocol's embedded messages (Kafka's
//! `ConsumerProtocolSubscription` in JoinGroup's protocol metadata and
//! `ConsumerProtocolAssignment` in SyncGroup's answer): an `int16` version,
//! then the message in that version. Pure conversions, no I/O.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedPartitions,
};
use kafka_protocol::messages::consumer_protocol_subscription::{
    ConsumerProtocolSubscription, TopicPartition as OwnedPartitions,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The newest subscription version this codec knows; a newer one is read
/// as this one (later versions only add fields at the end, as Kafka's
/// `ConsumerProtocol` reads them).
const MAX_SUBSCRIPTION_VERSION: i16 = 3;
/// The assignment version written.
const ASSIGNMENT_VERSION: i16 = 0;

/// A member's subscription as the coordinator needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Subscribed topic names.
    pub topics: Vec<String>,
    /// Partitions owned now, by topic name (v1+; empty before).
    pub owned: Vec<(String, Vec<i32>)>,
    /// `client.rack` (v3+).
    pub rack_id: Option<String>,
}

/// Decodes JoinGroup protocol metadata.
pub fn decode_subscription(mut metadata: Bytes) -> Result<Subscription, String> {
    if metadata.remaining() < 2 {
        return Err("subscription shorter than its version".into());
    }
    let version = metadata.get_i16();
    if version < 0 {
        return Err(format!("subscription version {version} is negative"));
    }
    let s =
        ConsumerProtocolSubscription::decode(&mut metadata, version.min(MAX_SUBSCRIPTION_VERSION))
            .map_err(|e| format!("subscription v{version}: {e}"))?;
    Ok(Subscription {
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned: s
            .owned_partitions
            .iter()
            .map(|tp| (tp.topic.0.to_string(), tp.partitions.clone()))
            .collect(),
        rack_id: s.rack_id.map(|r| r.to_string()),
    })
}

/// Encodes a subscription (DescribeGroups' member metadata), version 1.
pub fn encode_subscription(topics: &[String], owned: &[(String, Vec<i32>)]) -> Bytes {
    let version = 1;
    let s = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_owned_partitions(
            owned
                .iter()
                .map(|(t, ps)| {
                    OwnedPartitions::default()
                        .with_topic(TopicName(StrBytes::from_string(t.clone())))
                        .with_partitions(ps.clone())
                })
                .collect(),
        );
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    s.encode(&mut buf, version)
        .expect("a subscription of strings and ints encodes");
    buf.freeze()
}

/// Encodes an assignment (SyncGroup's answer, DescribeGroups).
pub fn encode_assignment(assigned: &[(String, Vec<i32>)]) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assigned
            .iter()
            .map(|(t, ps)| {
                AssignedPartitions::default()
                    .with_topic(TopicName(StrBytes::from_string(t.clone())))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(ASSIGNMENT_VERSION);
    a.encode(&mut buf, ASSIGNMENT_VERSION)
        .expect("an assignment of strings and ints encodes");
    buf.freeze()
}

/// Decodes an assignment (tests, and a client's view).
pub fn decode_assignment(mut bytes: Bytes) -> Result<Vec<(String, Vec<i32>)>, String> {
    if bytes.remaining() < 2 {
        return Err("assignment shorter than its version".into());
    }
    let version = bytes.get_i16();
    let a = ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3))
        .map_err(|e| format!("assignment v{version}: {e}"))?;
    Ok(a.assigned_partitions
        .into_iter()
        .map(|tp| (tp.topic.0.to_string(), tp.partitions))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription_bytes(version: i16, s: &ConsumerProtocolSubscription) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        s.encode(&mut buf, version).expect("encodes");
        buf.freeze()
    }

    #[test]
    fn subscriptions_decode_in_every_version() {
        let s = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("orders")])
            .with_owned_partitions(vec![
                OwnedPartitions::default()
                    .with_topic(TopicName(StrBytes::from_static_str("orders")))
                    .with_partitions(vec![1, 3]),
            ])
            .with_generation_id(4)
            .with_rack_id(Some(StrBytes::from_static_str("r1")));
        for version in 0..=3 {
            let got = decode_subscription(subscription_bytes(version, &s)).expect("decodes");
            assert_eq!(got.topics, vec!["orders".to_owned()], "v{version}");
            let owned = if version >= 1 {
                vec![("orders".to_owned(), vec![1, 3])]
            } else {
                vec![]
            };
            assert_eq!(got.owned, owned, "v{version}");
            assert_eq!(got.rack_id.is_some(), version >= 3, "v{version}");
        }
    }

    #[test]
    fn bad_subscriptions_are_errors() {
        for bad in [
            Bytes::new(),
            Bytes::from_static(&[0]),
            Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 0]),
            Bytes::from_static(&[0, 0, 0, 0, 0, 5, 0]),
        ] {
            assert!(decode_subscription(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn assignments_round_trip() {
        let a = vec![("orders".to_owned(), vec![0, 2]), ("x".to_owned(), vec![])];
        assert_eq!(
            decode_assignment(encode_assignment(&a)).expect("decodes"),
            a
        );
        let s = decode_subscription(encode_subscription(
            &["orders".to_owned()],
            &[("orders".to_owned(), vec![5])],
        ))
        .expect("decodes");
        assert_eq!(s.owned, vec![("orders".to_owned(), vec![5])]);
    }
}
