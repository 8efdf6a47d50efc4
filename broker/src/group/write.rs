//! Writing a group decision through [`crate::internal_topic::write`].

use strom_group::Record;

use crate::internal_topic::write::{self as shared, Encoded};
use crate::replica::{Appended, PartError, ReplicaManager};

/// Appends `records` to the offsets partition at `leader_epoch`.
pub(super) async fn write(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    leader_epoch: i32,
    records: &[Record],
    now_ms: i64,
    timeout_ms: i32,
) -> Result<Appended, PartError> {
    let encoded: Vec<Encoded> = records.iter().map(Record::encode).collect();
    shared::write(
        rm,
        topic,
        partition,
        leader_epoch,
        shared::batch(&encoded, now_ms),
        timeout_ms,
    )
    .await
}
