//! The committed metadata image and the feed of committed batches that
//! `WatchMetadata` streams to brokers.
//!
//! The feed keeps the most recent batches in memory. A watcher that resumes
//! from an offset still covered by that window gets the missing batches; one
//! that is older (or unknown) gets a snapshot of the image first. A watcher
//! that falls so far behind that the broadcast channel overflows is
//! re-snapshotted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use strom_metadata::pb::MetadataRecord;
use strom_metadata::{ClusterImage, MetadataError};
use tokio::sync::broadcast;

/// One committed batch.
#[derive(Debug)]
pub struct Delta {
    /// Metadata offset (Raft log index) of the batch.
    pub offset: i64,
    /// Its records.
    pub records: Vec<MetadataRecord>,
}

/// What the feed broadcasts.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    /// A batch was applied.
    Delta(Arc<Delta>),
    /// The image was replaced (snapshot installed): watchers re-snapshot.
    Reset,
}

/// Where a new watcher starts.
#[derive(Debug)]
pub enum WatchStart {
    /// Resume: these batches follow the watcher's offset.
    Resume(Vec<Arc<Delta>>),
    /// Start over from this image snapshot.
    Snapshot(strom_metadata::pb::ImageSnapshot),
}

#[derive(Debug)]
struct Window {
    deltas: VecDeque<Arc<Delta>>,
    /// Every batch with offset > `floor` is in `deltas`.
    floor: i64,
}

/// The image plus its feed; shared by the state machine and the services.
#[derive(Debug)]
pub struct MetadataFeed {
    image: RwLock<ClusterImage>,
    window: Mutex<Window>,
    capacity: usize,
    tx: broadcast::Sender<FeedEvent>,
}

impl MetadataFeed {
    /// An empty image whose feed keeps `capacity` recent batches.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self {
            image: RwLock::new(ClusterImage::default()),
            window: Mutex::new(Window {
                deltas: VecDeque::new(),
                floor: -1,
            }),
            capacity: capacity.max(16),
            tx,
        }
    }

    /// Runs `f` on the current image (under a read lock: keep it short).
    pub fn with_image<T>(&self, f: impl FnOnce(&ClusterImage) -> T) -> T {
        let image = self.image.read().unwrap_or_else(|e| e.into_inner());
        f(&image)
    }

    /// Offset of the last applied batch.
    pub fn offset(&self) -> i64 {
        self.with_image(|i| i.offset())
    }

    /// Applies a committed batch atomically and publishes it.
    ///
    /// A batch at or below the image's offset is already part of the image
    /// (a snapshot taken while later entries were being applied covers
    /// them) and is skipped, so replaying the log after a snapshot is
    /// idempotent.
    pub(crate) fn apply(
        &self,
        offset: i64,
        records: Vec<MetadataRecord>,
    ) -> Result<(), MetadataError> {
        {
            let mut image = self.image.write().unwrap_or_else(|e| e.into_inner());
            if offset <= image.offset() {
                return Ok(());
            }
            image.apply_batch(offset, &records)?;
        }
        let delta = Arc::new(Delta { offset, records });
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        window.deltas.push_back(delta.clone());
        while window.deltas.len() > self.capacity {
            if let Some(old) = window.deltas.pop_front() {
                window.floor = old.offset;
            }
        }
        // No receivers is fine.
        let _ = self.tx.send(FeedEvent::Delta(delta));
        Ok(())
    }

    /// Replaces the image (snapshot restored or installed).
    pub(crate) fn reset(&self, image: ClusterImage) {
        let offset = image.offset();
        *self.image.write().unwrap_or_else(|e| e.into_inner()) = image;
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        window.deltas.clear();
        window.floor = offset;
        let _ = self.tx.send(FeedEvent::Reset);
    }

    /// Subscribes a watcher that has replayed up to `from_offset` (-1: nothing).
    ///
    /// Every batch after the returned start point reaches the receiver; the
    /// watcher skips batches at or below the offset it has.
    pub fn watch(&self, from_offset: i64) -> (WatchStart, broadcast::Receiver<FeedEvent>) {
        // Subscribe before reading the image: a batch applied after the
        // image read is published after the subscription, so none is missed.
        let window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        let current = self.offset();
        if from_offset >= window.floor && from_offset <= current && from_offset >= 0 {
            let deltas = window
                .deltas
                .iter()
                .filter(|d| d.offset > from_offset)
                .cloned()
                .collect();
            return (WatchStart::Resume(deltas), rx);
        }
        drop(window);
        let snapshot = self.with_image(|i| i.to_snapshot());
        (WatchStart::Snapshot(snapshot), rx)
    }
}

#[cfg(test)]
mod tests {
    use strom_metadata::pb::{ClusterRecord, metadata_record::Record};

    use super::*;

    fn feed_with_offsets(n: i64) -> MetadataFeed {
        let feed = MetadataFeed::new(16);
        let cluster = MetadataRecord {
            record: Some(Record::Cluster(ClusterRecord {
                cluster_id: "c".into(),
            })),
        };
        feed.apply(1, vec![cluster]).expect("first batch");
        for offset in 2..=n {
            feed.apply(offset, vec![]).expect("batch");
        }
        feed
    }

    #[test]
    fn watchers_resume_inside_the_window_and_snapshot_outside_it() {
        let feed = feed_with_offsets(20); // keeps 16 batches: 5..=20
        let table: [(i64, Option<Vec<i64>>); 6] = [
            (10, Some((11..=20).collect())),
            (20, Some(vec![])),
            (4, Some((5..=20).collect())),
            (3, None),
            (-1, None),
            (25, None),
        ];
        for (from, want) in table {
            let (start, _rx) = feed.watch(from);
            match (start, want) {
                (WatchStart::Resume(deltas), Some(want)) => {
                    assert_eq!(
                        deltas.iter().map(|d| d.offset).collect::<Vec<_>>(),
                        want,
                        "from {from}"
                    );
                }
                (WatchStart::Snapshot(s), None) => assert_eq!(s.offset, 20, "from {from}"),
                (start, want) => panic!("from {from}: got {start:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn replayed_batches_are_skipped_and_new_ones_broadcast() {
        let feed = feed_with_offsets(5);
        let (_, mut rx) = feed.watch(5);
        feed.apply(5, vec![])
            .expect("replay of an applied offset is a no-op");
        feed.apply(6, vec![]).expect("next batch");
        match rx.try_recv() {
            Ok(FeedEvent::Delta(d)) => assert_eq!(d.offset, 6),
            other => panic!("expected delta 6, got {other:?}"),
        }
        assert!(
            rx.try_recv().is_err(),
            "the replayed batch was not broadcast"
        );
        feed.reset(ClusterImage::default());
        assert!(matches!(rx.try_recv(), Ok(FeedEvent::Reset)));
    }
}
