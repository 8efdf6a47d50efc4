//! The replicated state machine: applies committed metadata batches to the
//! [`ClusterImage`] and publishes them to metadata watchers.
//!
//! Durability: the image lives in memory; its durable form is the latest
//! snapshot (an encoded `ImageSnapshot` in RocksDB) plus the Raft log after
//! it. On restart the snapshot is loaded and openraft re-applies only the
//! entries after it — never the whole history.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use prost::Message;
use serde::{Deserialize, Serialize};
use strom_metadata::ClusterImage;
use strom_metadata::pb::ImageSnapshot;
use strom_proto::v1::ErrorCode;

use super::feed::MetadataFeed;
use super::store::RaftDb;
use super::types::{
    ApplyOutcome, Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const KEY_SNAPSHOT: &str = "snapshot";

/// A persisted snapshot: openraft's metadata plus the encoded image.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine of one controller.
#[derive(Debug, Clone)]
pub struct StateMachine {
    db: RaftDb,
    feed: Arc<MetadataFeed>,
    applied: Option<LogId>,
    membership: StoredMembership,
    snapshot_seq: Arc<AtomicU64>,
}

impl StateMachine {
    /// Opens the state machine, restoring the image from the stored snapshot.
    pub async fn open(db: RaftDb, feed: Arc<MetadataFeed>) -> Result<Self, StorageError> {
        let mut sm = Self {
            db,
            feed,
            applied: None,
            membership: StoredMembership::default(),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
        };
        let started = std::time::Instant::now();
        if let Some(stored) = sm.load_snapshot().await? {
            let image = decode_image(&stored.data)
                .map_err(|e| StorageIOError::read_snapshot(Some(stored.meta.signature()), &e))?;
            sm.feed.reset(image);
            sm.applied = stored.meta.last_log_id;
            sm.membership = stored.meta.last_membership.clone();
            tracing::info!(
                snapshot = %stored.meta,
                bytes = stored.data.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "restored metadata image from snapshot"
            );
        }
        Ok(sm)
    }

    async fn load_snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        let db = self.db.clone();
        let bytes = tokio::task::spawn_blocking(move || db.get_meta(KEY_SNAPSHOT))
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        match bytes {
            None => Ok(None),
            Some(b) => bincode::deserialize(&b)
                .map(Some)
                .map_err(|e| StorageIOError::read_snapshot(None, &e).into()),
        }
    }

    async fn save_snapshot(&self, stored: &StoredSnapshot) -> Result<(), StorageError> {
        let bytes = bincode::serialize(stored)
            .map_err(|e| StorageIOError::write_snapshot(Some(stored.meta.signature()), &e))?;
        let db = self.db.clone();
        let signature = stored.meta.signature();
        tokio::task::spawn_blocking(move || db.put_meta(&[(KEY_SNAPSHOT, &bytes)], true))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), &e))?
            .map_err(|e| StorageIOError::write_snapshot(Some(signature), &e).into())
    }
}

fn decode_image(bytes: &[u8]) -> Result<ClusterImage, std::io::Error> {
    let snapshot = ImageSnapshot::decode(bytes).map_err(std::io::Error::other)?;
    ClusterImage::from_snapshot(&snapshot).map_err(|e| std::io::Error::other(e.to_string()))
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let started = std::time::Instant::now();
        let feed = self.feed.clone();
        let data = tokio::task::spawn_blocking(move || {
            feed.with_image(|i| i.to_snapshot().encode_to_vec())
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match self.applied {
            Some(l) => format!("{}-{}-{seq}", l.leader_id, l.index),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot { meta, data };
        self.save_snapshot(&stored).await?;
        tracing::info!(
            snapshot = %stored.meta,
            bytes = stored.data.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "built metadata snapshot"
        );
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut outcomes = Vec::new();
        for entry in entries {
            self.applied = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Blank => ApplyOutcome::default(),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    ApplyOutcome::default()
                }
                EntryPayload::Normal(proposal) => {
                    let offset = i64::try_from(entry.log_id.index).unwrap_or(i64::MAX);
                    match self.feed.apply(offset, proposal.records) {
                        Ok(()) => ApplyOutcome::default(),
                        Err(e) => {
                            tracing::debug!(offset, error = %e.message, "metadata batch rejected");
                            let code = ErrorCode::from(e.code);
                            ApplyOutcome {
                                rejected: Some((code as i32, e.message)),
                            }
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let image = decode_image(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.save_snapshot(&stored).await?;
        self.feed.reset(image);
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        tracing::info!(snapshot = %meta, "installed metadata snapshot from leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.load_snapshot().await?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
