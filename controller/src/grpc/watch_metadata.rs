//! WatchMetadata: streams the metadata log to a broker — a snapshot when
//! needed, then every committed batch in order.

use strom_proto::v1::watch_metadata_response::Event;
use strom_proto::v1::{MetadataDelta, WatchMetadataRequest, WatchMetadataResponse};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{ControllerGrpc, WatchStream};
use crate::raft::feed::{Delta, FeedEvent, MetadataFeed, WatchStart};

fn delta(d: &Delta) -> WatchMetadataResponse {
    WatchMetadataResponse {
        event: Some(Event::Delta(MetadataDelta {
            offset: d.offset,
            records: d.records.clone(),
        })),
    }
}

impl ControllerGrpc {
    pub(super) fn watch_metadata_local(&self, r: WatchMetadataRequest) -> WatchStream {
        let feed = self.ctl.feed().clone();
        let shutdown = self.ctl.inner().shutdown.clone();
        let (tx, rx) = mpsc::channel(256);
        self.ctl.inner().tasks.spawn(async move {
            tokio::select! {
                _ = stream_feed(feed, r.from_offset, tx) => {}
                _ = shutdown.cancelled() => {}
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

/// Sends events until the watcher goes away. A watcher that lags beyond
/// the broadcast buffer, or sees the image replaced, starts over with a
/// fresh snapshot.
async fn stream_feed(
    feed: std::sync::Arc<MetadataFeed>,
    mut offset: i64,
    tx: mpsc::Sender<Result<WatchMetadataResponse, tonic::Status>>,
) {
    loop {
        let (start, mut events) = feed.watch(offset);
        match start {
            WatchStart::Snapshot(snapshot) => {
                offset = snapshot.offset;
                let event = WatchMetadataResponse {
                    event: Some(Event::Snapshot(snapshot)),
                };
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            WatchStart::Resume(deltas) => {
                for d in deltas {
                    offset = d.offset;
                    if tx.send(Ok(delta(&d))).await.is_err() {
                        return;
                    }
                }
            }
        }
        loop {
            match events.recv().await {
                Ok(FeedEvent::Delta(d)) if d.offset > offset => {
                    offset = d.offset;
                    if tx.send(Ok(delta(&d))).await.is_err() {
                        return;
                    }
                }
                Ok(FeedEvent::Delta(_)) => {}
                Ok(FeedEvent::Reset) => {
                    offset = -1;
                    break;
                }
                // Resume from the window if it still covers us, else snapshot.
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
