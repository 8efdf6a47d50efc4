//! The broker's replayed [`ClusterImage`], readable by every handler.

use std::sync::{Arc, RwLock};

use strom_metadata::ClusterImage;
use strom_metadata::pb::{ImageSnapshot, MetadataRecord};
use tokio::sync::watch;

/// Shared, cheaply cloneable cache of the image.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    image: Arc<RwLock<ClusterImage>>,
    offset_tx: Arc<watch::Sender<i64>>,
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
        }
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
        self.image
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply_batch(offset, records)?;
        self.offset_tx.send_replace(offset);
        Ok(())
    }
}
