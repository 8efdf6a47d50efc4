//! ApiVersions: the served table of [`crate::versions`].

use kafka_protocol::messages::ApiVersionsResponse;
use strom_proto::v1::ErrorCode;

use crate::errors::kafka_code;
use crate::versions;

/// The answer to a served ApiVersions request.
pub fn answer(_version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(versions::api_versions())
}

/// The answer to an ApiVersions request above the served range, to be
/// encoded in version 0: UNSUPPORTED_VERSION with ApiVersions' own range,
/// so the client retries with a version both sides know (KIP-511).
pub fn unsupported() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(kafka_code(ErrorCode::UnsupportedVersion))
        .with_api_keys(versions::api_versions_only())
}
