//! ElectLeaders: preferred or unclean elections, one result per partition.

use strom_metadata::ElectionKind;
use strom_proto::StromError;
use strom_proto::v1::{
    ElectLeaderResult, ElectLeadersRequest, ElectLeadersResponse, ElectionType, ErrorCode,
};

use super::ControllerGrpc;
use crate::error::{ControllerError, Result};

impl ControllerGrpc {
    pub(super) async fn elect_leaders_local(
        &self,
        r: ElectLeadersRequest,
    ) -> Result<ElectLeadersResponse> {
        let kind = match ElectionType::try_from(r.election_type) {
            Ok(ElectionType::Preferred) => ElectionKind::Preferred,
            Ok(ElectionType::Unclean) => ElectionKind::Unclean,
            Err(_) => {
                return Err(ControllerError::InvalidRequest(format!(
                    "unknown election_type {}",
                    r.election_type
                )));
            }
        };
        let wanted: Option<Vec<(String, i32)>> = (!r.partitions.is_empty()).then(|| {
            r.partitions
                .iter()
                .map(|p| (p.topic.clone(), p.partition))
                .collect()
        });
        let (results, _) = self
            .ctl
            .decide(|image| {
                let min_isr = self.ctl.default_min_isr(image);
                let (records, results) =
                    strom_metadata::elect_leaders(image, kind, wanted.as_deref(), min_isr);
                Ok((records, results))
            })
            .await?;
        let results = results
            .into_iter()
            .map(|res| {
                let (code, message) = match &res.error {
                    None => (ErrorCode::None, String::new()),
                    Some(e) => {
                        let s = StromError::from(e);
                        (s.code, s.message)
                    }
                };
                ElectLeaderResult {
                    topic: res.topic,
                    partition: res.partition,
                    error_code: code as i32,
                    error_message: message,
                    leader: res.leader,
                }
            })
            .collect();
        Ok(ElectLeadersResponse { results })
    }
}
