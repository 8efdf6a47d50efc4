//! Replays the metadata log: WatchMetadata from any controller, resuming
//! from the last replayed offset after a reconnect; the controller sends a
//! snapshot instead when the broker is too far behind.

use std::sync::Arc;
use std::time::Duration;

use strom_controller_client::QuorumClient;
use strom_proto::v1::WatchMetadataRequest;
use strom_proto::v1::watch_metadata_response::Event;
use tokio_util::sync::CancellationToken;

use super::MetadataCache;

/// Runs until `shutdown`.
pub async fn run(
    broker_id: i32,
    quorum: Arc<QuorumClient>,
    cache: MetadataCache,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    while !shutdown.is_cancelled() {
        let Some(addr) = quorum.any_voter() else {
            return;
        };
        let result = tokio::select! {
            r = follow(broker_id, &quorum, &addr, &cache) => r,
            _ = shutdown.cancelled() => return,
        };
        match result {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(e) => {
                tracing::debug!(controller = %addr, error = %e, "metadata stream ended");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn follow(
    broker_id: i32,
    quorum: &QuorumClient,
    addr: &str,
    cache: &MetadataCache,
) -> crate::Result<()> {
    let mut client = quorum.client_for(addr)?;
    let request = WatchMetadataRequest {
        broker_id,
        from_offset: cache.offset(),
    };
    let mut stream = client.watch_metadata(request).await?.into_inner();
    while let Some(msg) = stream.message().await? {
        match msg.event {
            Some(Event::Snapshot(snapshot)) => {
                cache.install(&snapshot)?;
                tracing::debug!(offset = snapshot.offset, "installed metadata snapshot");
            }
            Some(Event::Delta(delta)) => {
                if delta.offset <= cache.offset() {
                    continue;
                }
                if let Err(e) = cache.apply(delta.offset, &delta.records) {
                    // The controller applied this batch, so we must be able
                    // to: start over from a snapshot.
                    tracing::warn!(offset = delta.offset, error = %e, "metadata batch did not apply; re-snapshotting");
                    cache.invalidate();
                    return Err(crate::Error::MetadataDiverged {
                        offset: delta.offset,
                    });
                }
            }
            None => {}
        }
    }
    Ok(())
}
