//! DescribeCluster: the quorum (leader, voters, lag) and the brokers.

use strom_proto::v1::{
    BrokerDescription, ControllerQuorum, DescribeClusterResponse, VoterDescription,
};

use super::ControllerGrpc;

impl ControllerGrpc {
    pub(super) fn describe_cluster_local(&self) -> DescribeClusterResponse {
        let metrics = self.ctl.raft().metrics().borrow().clone();
        let last = metrics.last_log_index.unwrap_or(0);
        let voters = self
            .ctl
            .config()
            .voters
            .iter()
            .map(|(id, address)| {
                let lag = match &metrics.replication {
                    _ if metrics.current_leader == Some(*id) && metrics.replication.is_some() => 0,
                    // Leader: how far each voter's matched index is behind.
                    Some(replication) => match replication.get(id) {
                        Some(matched) => {
                            let m = matched.map_or(0, |l| l.index);
                            i64::try_from(last.saturating_sub(m)).unwrap_or(i64::MAX)
                        }
                        None => -1,
                    },
                    None => -1,
                };
                VoterDescription {
                    id: i32::try_from(*id).unwrap_or(-1),
                    address: address.clone(),
                    lag,
                }
            })
            .collect();
        let leader_id = metrics
            .current_leader
            .map_or(-1, |l| i32::try_from(l).unwrap_or(-1));
        let (cluster_id, brokers, offset) = self.ctl.with_image(|image| {
            (
                image.cluster_id().unwrap_or_default().to_owned(),
                image
                    .brokers()
                    .map(|b| {
                        let mut d = BrokerDescription::from(b);
                        d.replicas = i32::try_from(image.partitions_of_broker(b.id).count())
                            .unwrap_or(i32::MAX);
                        d.leaders = i32::try_from(image.leader_count(b.id)).unwrap_or(i32::MAX);
                        d.decommissioning = image.is_decommissioning(b.id);
                        d.bytes = self.ctl.inner().sizes.total(b.id).unwrap_or(-1);
                        if let Some(disk) = self.ctl.inner().sizes.disk(b.id) {
                            d.disk_used_bytes = i64::try_from(disk.used_bytes).unwrap_or(i64::MAX);
                            d.disk_total_bytes =
                                i64::try_from(disk.total_bytes).unwrap_or(i64::MAX);
                        }
                        d
                    })
                    .collect(),
                image.offset(),
            )
        });
        DescribeClusterResponse {
            cluster_id,
            controller: Some(ControllerQuorum {
                leader_id,
                leader_epoch: i64::try_from(metrics.current_term).unwrap_or(i64::MAX),
                voters,
            }),
            brokers,
            metadata_offset: offset,
        }
    }
}
