//! The broker's replayed [`ClusterImage`], readable by every handler.

use std::sync::{Arc, RwLock};

use strom_metadata::pb::metadata_record::Record;
use strom_metadata::pb::{ImageSnapshot, MetadataRecord};
use strom_metadata::records::topic_id_from_bytes;
use strom_metadata::{ClusterImage, PartitionState, Uuid};
use tokio::sync::watch;

use super::changes::ChangeCounters;

/// Shared, cheaply cloneable cache of the image.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    image: Arc<RwLock<ClusterImage>>,
    offset_tx: Arc<watch::Sender<i64>>,
    changes: Arc<ChangeCounters>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MetadataCache {
    /// An empty cache (offset -1).
    pub fn new() -> Self {
        let (tx, _) = watch::channel(-1);
        Self {
            image: Arc::new(RwLock::new(ClusterImage::default())),
            offset_tx: Arc::new(tx),
            changes: Arc::default(),
        }
    }

    /// ISR and leader changes seen while replaying, per leader.
    pub fn changes(&self) -> &ChangeCounters {
        &self.changes
    }

    /// Runs `f` on the image; keep it short.
    pub fn with_image<T>(&self, f: impl FnOnce(&ClusterImage) -> T) -> T {
        let image = self.image.read().unwrap_or_else(|e| e.into_inner());
        f(&image)
    }

    /// Offset of the last replayed batch.
    pub fn offset(&self) -> i64 {
        *self.offset_tx.borrow()
    }

    /// Notified whenever the image changes.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.offset_tx.subscribe()
    }

    /// Replaces the image with a snapshot.
    pub(crate) fn install(
        &self,
        snapshot: &ImageSnapshot,
    ) -> Result<(), strom_metadata::MetadataError> {
        let image = ClusterImage::from_snapshot(snapshot)?;
        let offset = image.offset();
        *self.image.write().unwrap_or_else(|e| e.into_inner()) = image;
        self.offset_tx.send_replace(offset);
        Ok(())
    }

    /// Forgets the offset (keeping the image readable) so that the next
    /// watch starts from a snapshot.
    pub(crate) fn invalidate(&self) {
        self.offset_tx.send_replace(-1);
    }

    /// Applies one committed batch.
    pub(crate) fn apply(
        &self,
        offset: i64,
        records: &[MetadataRecord],
    ) -> Result<(), strom_metadata::MetadataError> {
        let mut image = self.image.write().unwrap_or_else(|e| e.into_inner());
        let mut before: Vec<(Uuid, i32, PartitionState)> = Vec::new();
        for r in records {
            if let Some(Record::PartitionChange(c)) = &r.record
                && let Ok(id) = topic_id_from_bytes(&c.topic_id)
                && !before.iter().any(|(t, p, _)| *t == id && *p == c.partition)
                && let Some(state) = image.partition(&id, c.partition)
            {
                before.push((id, c.partition, state.clone()));
            }
        }
        image.apply_batch(offset, records)?;
        for (id, partition, prev) in &before {
            if let Some(now) = image.partition(id, *partition) {
                self.changes.observe(prev, now);
            }
        }
        drop(image);
        self.offset_tx.send_replace(offset);
        Ok(())
    }
}
