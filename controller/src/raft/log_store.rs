//! [`RaftLogStorage`] over RocksDB: the durable Raft log and vote.
//!
//! RocksDB calls block (the WAL fsync above all), so every one of them runs
//! on tokio's blocking pool, never on a runtime worker.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError, Vote};

use super::store::RaftDb;
use super::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";

/// The Raft log of one controller.
#[derive(Debug, Clone)]
pub struct LogStore {
    db: RaftDb,
    committed: Arc<AtomicI64>,
}

impl LogStore {
    /// A log store over an open database.
    pub fn new(db: RaftDb) -> Self {
        Self {
            db,
            committed: Arc::new(AtomicI64::new(-1)),
        }
    }

    /// The Raft commit index as last saved by openraft (-1 before the first
    /// commit), shared with the store so metrics can read it at any time.
    pub fn commit_index(&self) -> Arc<AtomicI64> {
        self.committed.clone()
    }

    fn note_committed(&self, committed: Option<&LogId>) {
        let index = committed.map_or(-1, |l| i64::try_from(l.index).unwrap_or(i64::MAX));
        self.committed.fetch_max(index, Ordering::Relaxed);
    }

    async fn blocking<T, F>(&self, f: F) -> std::io::Result<T>
    where
        F: FnOnce(&RaftDb) -> Result<T, rocksdb::Error> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || f(&db)).await {
            Ok(r) => r.map_err(|e| std::io::Error::other(e.to_string())),
            Err(e) => Err(std::io::Error::other(format!("storage task failed: {e}"))),
        }
    }

    async fn read_json<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> std::io::Result<Option<T>> {
        let bytes = self.blocking(move |db| db.get_meta(key)).await?;
        match bytes {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| std::io::Error::other(format!("decode {key}: {e}"))),
        }
    }

    async fn write_json<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
        sync: bool,
    ) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        self.blocking(move |db| db.put_meta(&[(key, &bytes)], sync))
            .await
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(x) => *x,
        Bound::Excluded(x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(x) => x.saturating_add(1),
        Bound::Excluded(x) => *x,
        Bound::Unbounded => u64::MAX,
    };
    (from, to)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (from, to) = bounds(&range);
        let raw = self
            .blocking(move |db| db.read_logs(from, to))
            .await
            .map_err(|e| StorageIOError::read_logs(&e))?;
        raw.into_iter()
            .map(|(index, bytes)| {
                bincode::deserialize::<Entry>(&bytes)
                    .map_err(|e| StorageIOError::read_log_at_index(index, &e).into())
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self
            .read_json(KEY_LAST_PURGED)
            .await
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let last = self
            .blocking(|db| db.last_log())
            .await
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let last_log_id = match last {
            Some((index, bytes)) => Some(
                bincode::deserialize::<Entry>(&bytes)
                    .map_err(|e| StorageIOError::read_log_at_index(index, &e))?
                    .log_id,
            ),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write_json(KEY_VOTE, vote, true)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_json(KEY_VOTE)
            .await
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.note_committed(committed.as_ref());
        // Not needed for safety (Raft recomputes it); written without fsync so
        // that a restart re-applies less.
        self.write_json(KEY_COMMITTED, &committed, false)
            .await
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let c: Option<Option<LogId>> = self
            .read_json(KEY_COMMITTED)
            .await
            .map_err(|e| StorageIOError::read(&e))?;
        let c = c.flatten();
        self.note_committed(c.as_ref());
        Ok(c)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        for entry in entries {
            let bytes = bincode::serialize(&entry)
                .map_err(|e| StorageIOError::write_log_entry(entry.log_id, &e))?;
            encoded.push((entry.log_id.index, bytes));
        }
        let result = self.blocking(move |db| db.put_logs(&encoded)).await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.blocking(move |db| db.delete_logs(log_id.index, u64::MAX, None))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let marker = serde_json::to_vec(&log_id).map_err(|e| StorageIOError::write_logs(&e))?;
        self.blocking(move |db| {
            db.delete_logs(
                0,
                log_id.index.saturating_add(1),
                Some((KEY_LAST_PURGED, &marker)),
            )
        })
        .await
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
