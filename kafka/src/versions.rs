//! The APIs and versions this listener serves: the one table ApiVersions
//! answers from and every request is checked against. An API or version
//! absent here is never tried by a client (it negotiates from
//! ApiVersions); one sent anyway closes the connection, as Kafka does.
//!
//! A version is listed only when everything it carries is served: e.g.
//! Produce stops at v12 (v13 names topics by id) and ListOffsets at v6
//! (v7 adds the max-timestamp lookup Strom does not have),
//! AddPartitionsToTxn at v3 (v4+ is brokers verifying for each other),
//! TxnOffsetCommit at v4 (v5 is transaction version 2's implicit add) and
//! ListTransactions at v0 (v1 filters by duration, v2 by pattern).

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::ApiVersion;

/// `(api, min version, max version)` served.
pub const SERVED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::ListTransactions, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    // The classic group protocol and offsets (docs/kafka.md, "Consumer
    // groups"). OffsetCommit stops at v8 and OffsetFetch at v8: v9 carries
    // KIP-848 member epochs for ConsumerGroupHeartbeat members.
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::DescribeLogDirs, 1, 4),
];

/// The served range of `key`, if served at all.
pub fn served_range(key: ApiKey) -> Option<(i16, i16)> {
    SERVED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// Whether `version` of `key` is served.
pub fn is_served(key: ApiKey, version: i16) -> bool {
    served_range(key).is_some_and(|(min, max)| (min..=max).contains(&version))
}

/// ApiVersions' list of every served API.
pub fn api_versions() -> Vec<ApiVersion> {
    SERVED
        .iter()
        .map(|(k, min, max)| version(*k, *min, *max))
        .collect()
}

/// ApiVersions' own range only: what an ApiVersions request of an
/// unsupported version is answered with (KIP-511).
pub fn api_versions_only() -> Vec<ApiVersion> {
    let (min, max) = served_range(ApiKey::ApiVersions).expect("ApiVersions is served");
    vec![version(ApiKey::ApiVersions, min, max)]
}

fn version(key: ApiKey, min: i16, max: i16) -> ApiVersion {
    ApiVersion::default()
        .with_api_key(key as i16)
        .with_min_version(min)
        .with_max_version(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_range_is_one_the_codec_knows() {
        for (key, min, max) in SERVED {
            let known = key.valid_versions();
            assert!(
                known.min <= *min && *min <= *max && *max <= known.max,
                "{key:?} {min}..={max} outside {known}"
            );
        }
    }

    #[test]
    fn served_versions_are_checked_by_range() {
        let cases = [
            (ApiKey::Produce, 2, false),
            (ApiKey::Produce, 3, true),
            (ApiKey::Produce, 12, true),
            (ApiKey::Produce, 13, false),
            (ApiKey::ApiVersions, 0, true),
            (ApiKey::ApiVersions, 5, false),
            (ApiKey::JoinGroup, 0, true),
            (ApiKey::OffsetCommit, 9, false),
            (ApiKey::EndTxn, 0, true),
            (ApiKey::EndTxn, 6, false),
        ];
        for (key, version, want) in cases {
            assert_eq!(is_served(key, version), want, "{key:?} v{version}");
        }
    }
}
