//! The controller's RocksDB database: one instance per controller node,
//! holding the Raft log, the vote and the latest state-machine snapshot.
//!
//! Column families:
//! * `logs`: log index (u64, big-endian) → bincode-encoded [`Entry`](super::Entry).
//! * `meta`: `vote`, `committed`, `last_purged`, `snapshot_meta`, `snapshot_data`.
//!
//! Every write that Raft relies on for safety (vote, appended entries,
//! truncation) is written with `sync = true`: the WAL is fsynced before the
//! call returns.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};

/// Column family of log entries.
pub(crate) const CF_LOGS: &str = "logs";
/// Column family of vote, committed, purge marker and snapshot.
pub(crate) const CF_META: &str = "meta";

/// Shared handle to the controller database.
#[derive(Clone)]
pub struct RaftDb {
    db: Arc<DB>,
}

impl std::fmt::Debug for RaftDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftDb")
            .field("path", &self.db.path())
            .finish()
    }
}

impl RaftDb {
    /// Opens (or creates) the database under `dir`.
    pub fn open(dir: &Path) -> Result<Self, rocksdb::Error> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        let cfs =
            [CF_LOGS, CF_META].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        Ok(Self { db: Arc::new(db) })
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created at open")
    }

    fn sync_opts(sync: bool) -> WriteOptions {
        let mut w = WriteOptions::default();
        w.set_sync(sync);
        w
    }

    /// Reads a key of the `meta` family.
    pub(crate) fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, rocksdb::Error> {
        self.db.get_cf(self.cf(CF_META), key)
    }

    /// Writes keys of the `meta` family atomically.
    pub(crate) fn put_meta(&self, kvs: &[(&str, &[u8])], sync: bool) -> Result<(), rocksdb::Error> {
        let mut batch = WriteBatch::default();
        for (k, v) in kvs {
            batch.put_cf(self.cf(CF_META), k, v);
        }
        self.db.write_opt(batch, &Self::sync_opts(sync))
    }

    /// Appends encoded log entries atomically and durably.
    pub(crate) fn put_logs(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), rocksdb::Error> {
        let mut batch = WriteBatch::default();
        let cf = self.cf(CF_LOGS);
        for (index, bytes) in entries {
            batch.put_cf(cf, index.to_be_bytes(), bytes);
        }
        self.db.write_opt(batch, &Self::sync_opts(true))
    }

    /// Deletes log entries with index in `[from, to)`, optionally writing a
    /// meta key in the same atomic batch.
    pub(crate) fn delete_logs(
        &self,
        from: u64,
        to: u64,
        meta: Option<(&str, &[u8])>,
    ) -> Result<(), rocksdb::Error> {
        let mut batch = WriteBatch::default();
        if let Some((k, v)) = meta {
            batch.put_cf(self.cf(CF_META), k, v);
        }
        batch.delete_range_cf(self.cf(CF_LOGS), from.to_be_bytes(), to.to_be_bytes());
        self.db.write_opt(batch, &Self::sync_opts(true))
    }

    /// Entries with index in `[from, to)`, in order.
    pub(crate) fn read_logs(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, rocksdb::Error> {
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_LOGS),
            rocksdb::IteratorMode::From(&from.to_be_bytes(), rocksdb::Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            let index = decode_index(&k);
            if index >= to {
                break;
            }
            out.push((index, v.into_vec()));
        }
        Ok(out)
    }

    /// The last log entry, if any.
    pub(crate) fn last_log(&self) -> Result<Option<(u64, Vec<u8>)>, rocksdb::Error> {
        let mut iter = self
            .db
            .iterator_cf(self.cf(CF_LOGS), rocksdb::IteratorMode::End);
        match iter.next() {
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((decode_index(&k), v.into_vec())))
            }
            None => Ok(None),
        }
    }

    /// Flushes memtables and the WAL (used on clean shutdown).
    pub(crate) fn flush(&self) -> Result<(), rocksdb::Error> {
        self.db.flush_wal(true)
    }
}

fn decode_index(key: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = key.len().min(8);
    buf[8 - n..].copy_from_slice(&key[key.len() - n..]);
    u64::from_be_bytes(buf)
}
