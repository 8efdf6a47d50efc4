//! The log cleaner: compaction of every hosted replica whose
//! `cleanup.policy` includes `compact`, on `log.cleaner.threads` dedicated
//! threads (never the async workers), as Kafka's `LogCleaner`.
//!
//! Each thread owns an [`OffsetMap`] of `log.cleaner.dedupe.buffer.size /
//! log.cleaner.threads` bytes and loops: pick the dirtiest log that is due
//! ([`pick`]: a log whose oldest dirty record passed
//! `max.compaction.lag.ms` first, then the highest dirty ratio at or above
//! its `min.cleanable.dirty.ratio`), clean it, and when none is due sleep
//! `log.cleaner.backoff.ms`. Leaders and followers clean their own copies
//! independently: offsets never change, so replicas stay comparable offset
//! by offset. A pass reads and writes through strom-log's reader (the
//! partition's writer is free meanwhile, produce goes on) and takes the
//! writer only to swap each cleaned segment in and to record the pass
//! (`strom_log`'s `log/compact.rs`). Reads and writes are throttled to
//! `log.cleaner.io.max.bytes.per.second` ([`Throttle`]).
//!
//! Shutdown: the manager cancels the cleaner and joins its threads before
//! it closes the logs; a pass stops between segments.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strom_log::{Cleanable, LogError, OffsetMap};
use tokio_util::sync::CancellationToken;

use super::manager::ReplicaManager;
use super::partition::Partition;

/// The cleaner's settings (Kafka's broker setting names).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.threads`: cleaner threads; 0 disables compaction.
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: offset-map memory of all threads.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.max.bytes.per.second`: read plus write rate of all
    /// threads together; `f64::MAX` (Kafka's default) is unthrottled.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: sleep when no log is due.
    pub backoff: Duration,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            threads: 1,
            dedupe_buffer_size: 128 << 20,
            io_max_bytes_per_second: f64::MAX,
            backoff: Duration::from_millis(15_000),
        }
    }
}

/// What the cleaner did since the broker started, for metrics.
#[derive(Debug, Default)]
pub struct CleanerStats {
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    passes: AtomicU64,
    /// Wall-clock ms of the end of the last pass, 0 before the first.
    last_pass_ms: AtomicI64,
    /// Largest dirty ratio of a compacted log at the last check, in
    /// millionths.
    max_dirty_ratio_ppm: AtomicU64,
}

impl CleanerStats {
    /// Bytes the cleaner read.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Bytes of cleaned segments it wrote.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Passes completed.
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    /// Largest dirty ratio among the compacted logs at the last check.
    pub fn max_dirty_ratio(&self) -> f64 {
        self.max_dirty_ratio_ppm.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// Milliseconds since the last pass ended, `None` before the first.
    pub fn ms_since_last_pass(&self) -> Option<u64> {
        match self.last_pass_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some(u64::try_from(now_ms().saturating_sub(at)).unwrap_or(0)),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A candidate log: whether it is due ([`Cleanable::is_due`]), due by max
/// lag, its dirty ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) due: bool,
    pub(crate) max_lag_due: bool,
    pub(crate) dirty_ratio: f64,
}

impl Candidate {
    fn new(cleanable: &Cleanable, min_cleanable_dirty_ratio: f64) -> Self {
        Self {
            due: cleanable.is_due(min_cleanable_dirty_ratio),
            max_lag_due: cleanable.max_lag_due,
            dirty_ratio: cleanable.dirty_ratio(),
        }
    }
}

/// Which candidate to clean: among the due ones, those past
/// `max.compaction.lag.ms` first, then the dirtiest (a log due only for its
/// expired tombstones comes last). `None` if none is due.
pub(crate) fn pick(candidates: &[Candidate]) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.due)
        .max_by(|(_, a), (_, b)| {
            (a.max_lag_due, a.dirty_ratio)
                .partial_cmp(&(b.max_lag_due, b.dirty_ratio))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(i, _)| i)
}

/// `log.cleaner.io.max.bytes.per.second`: how long to sleep after `bytes`
/// were moved `elapsed` into the current one-second window, so the window
/// stays at or below `rate`. Pure.
pub(crate) fn throttle_delay(bytes: u64, elapsed: Duration, rate: f64) -> Duration {
    if !rate.is_finite() || rate <= 0.0 || rate >= f64::MAX / 2.0 {
        return Duration::ZERO;
    }
    let due = Duration::from_secs_f64(bytes as f64 / rate);
    due.saturating_sub(elapsed)
}

/// Sleeps a cleaner thread to keep its I/O under the configured rate.
#[derive(Debug)]
struct Throttle {
    rate: f64,
    window_start: Instant,
    bytes: u64,
}

impl Throttle {
    fn new(rate: f64) -> Self {
        Throttle {
            rate,
            window_start: Instant::now(),
            bytes: 0,
        }
    }

    fn on_io(&mut self, bytes: u64) {
        self.bytes += bytes;
        let elapsed = self.window_start.elapsed();
        let delay = throttle_delay(self.bytes, elapsed, self.rate);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        if self.window_start.elapsed() >= Duration::from_secs(1) {
            self.window_start = Instant::now();
            self.bytes = 0;
        }
    }
}

/// The running cleaner: its threads and what they share.
#[derive(Debug)]
pub(crate) struct Cleaner {
    threads: Vec<JoinHandle<()>>,
    shutdown: CancellationToken,
}

impl Cleaner {
    /// Start `config.threads` cleaner threads over `manager`'s replicas.
    pub(crate) fn start(manager: &Arc<ReplicaManager>, shutdown: CancellationToken) -> Self {
        let config = manager.config().cleaner.clone();
        let runtime = tokio::runtime::Handle::current();
        let busy: Arc<Mutex<HashSet<(String, i32)>>> = Arc::default();
        let map_bytes = usize::try_from(config.dedupe_buffer_size / config.threads.max(1) as u64)
            .unwrap_or(usize::MAX);
        // Each thread gets its share of the rate.
        let rate = config.io_max_bytes_per_second / config.threads.max(1) as f64;
        let threads = (0..config.threads)
            .filter_map(|i| {
                let worker = Worker {
                    manager: Arc::clone(manager),
                    runtime: runtime.clone(),
                    busy: Arc::clone(&busy),
                    shutdown: shutdown.clone(),
                    backoff: config.backoff,
                };
                std::thread::Builder::new()
                    .name(format!("log-cleaner-{i}"))
                    .spawn(move || worker.run(map_bytes, rate))
                    .inspect_err(|e| tracing::error!(error = %e, "starting a log cleaner thread"))
                    .ok()
            })
            .collect();
        Cleaner { threads, shutdown }
    }

    /// Stop the threads (a pass stops between segments) and wait for them.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let threads = self.threads;
        let joined = tokio::task::spawn_blocking(move || {
            for t in threads {
                if t.join().is_err() {
                    tracing::error!("a log cleaner thread panicked");
                }
            }
        })
        .await;
        if let Err(e) = joined {
            tracing::error!(error = %e, "joining the log cleaner threads");
        }
    }
}

struct Worker {
    manager: Arc<ReplicaManager>,
    runtime: tokio::runtime::Handle,
    busy: Arc<Mutex<HashSet<(String, i32)>>>,
    shutdown: CancellationToken,
    backoff: Duration,
}

impl Worker {
    fn run(self, map_bytes: usize, rate: f64) {
        lower_priority();
        let mut map = OffsetMap::with_memory(map_bytes);
        let mut throttle = Throttle::new(rate);
        tracing::info!(
            map_bytes,
            keys = map.capacity(),
            "log cleaner thread started"
        );
        while !self.shutdown.is_cancelled() {
            let cleaned = self.clean_dirtiest(&mut map, &mut throttle);
            if !cleaned {
                // Wait the backoff, waking for shutdown. A plain thread
                // sleep: the runtime's timers (paused in simulations) are
                // left alone.
                let until = Instant::now() + self.backoff;
                while !self.shutdown.is_cancelled() {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::sleep(left.min(Duration::from_millis(100)));
                }
            }
        }
    }

    /// Clean the log most due, if any: whether one was cleaned.
    fn clean_dirtiest(&self, map: &mut OffsetMap, throttle: &mut Throttle) -> bool {
        if self.manager.log_dir_health().is_offline() {
            return false;
        }
        let busy = lock(&self.busy).clone();
        let mut parts = Vec::new();
        let mut candidates = Vec::new();
        let mut max_ratio: f64 = 0.0;
        for part in self.manager.hosted() {
            let reader = part.reader();
            let config = reader.config();
            if !config.cleanup_policy.compact || busy.contains(&(part.topic.clone(), part.index)) {
                continue;
            }
            match reader.cleanable() {
                Ok(Some(c)) => {
                    max_ratio = max_ratio.max(c.dirty_ratio());
                    candidates.push(Candidate::new(&c, config.min_cleanable_dirty_ratio));
                    parts.push((part, c));
                }
                Ok(None) => {}
                Err(e) => self.failed(&part, &e),
            }
        }
        let stats = self.manager.cleaner_stats();
        stats
            .max_dirty_ratio_ppm
            .store((max_ratio * 1e6) as u64, Ordering::Relaxed);
        let Some(chosen) = pick(&candidates) else {
            return false;
        };
        let (part, cleanable) = parts.swap_remove(chosen);
        let key = (part.topic.clone(), part.index);
        if !lock(&self.busy).insert(key.clone()) {
            return false;
        }
        let result = self.clean(&part, &cleanable, map, throttle);
        lock(&self.busy).remove(&key);
        match result {
            Ok(()) => true,
            Err(e) => {
                self.failed(&part, &e);
                false
            }
        }
    }

    fn failed(&self, part: &Partition, e: &LogError) {
        self.manager.log_dir_health().check(e);
        tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "log cleaning failed");
    }

    /// One pass over `part`'s log.
    fn clean(
        &self,
        part: &Arc<Partition>,
        cleanable: &Cleanable,
        map: &mut OffsetMap,
        throttle: &mut Throttle,
    ) -> Result<(), LogError> {
        let started = Instant::now();
        let reader = part.reader();
        let mut io = |bytes: u64| throttle.on_io(bytes);
        let Some(mut pass) = reader.begin_cleaning(cleanable, map, &mut io)? else {
            return Ok(());
        };
        let mut swapped = 0;
        for base in pass.segments().to_vec() {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            let Some(cleaned) = reader.clean_segment(&mut pass, map, base, &mut io)? else {
                continue;
            };
            let done = self
                .runtime
                .block_on(part.with_writer(move |log, _| log.swap_cleaned(cleaned)));
            match done {
                Ok(true) => swapped += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(topic = %part.topic, partition = part.index, error = %e.message, "swapping a cleaned segment");
                    return Ok(());
                }
            }
        }
        pass.stats.segments_cleaned = swapped;
        let stats = pass.stats;
        let first_dirty = pass.first_dirty_offset();
        let map_end = pass.map_end();
        let recorded = self
            .runtime
            .block_on(part.with_writer(move |log, _| log.finish_cleaning(&pass)));
        if let Err(e) = recorded {
            tracing::warn!(topic = %part.topic, partition = part.index, error = %e.message, "recording a cleaning pass");
        }
        let totals = self.manager.cleaner_stats();
        totals
            .bytes_read
            .fetch_add(stats.bytes_read, Ordering::Relaxed);
        totals
            .bytes_written
            .fetch_add(stats.bytes_written, Ordering::Relaxed);
        totals.passes.fetch_add(1, Ordering::Relaxed);
        totals.last_pass_ms.store(now_ms(), Ordering::Relaxed);
        tracing::info!(
            topic = %part.topic,
            partition = part.index,
            first_dirty,
            map_end,
            dirty_ratio = cleanable.dirty_ratio(),
            keys = stats.map_keys,
            segments = stats.segments_cleaned,
            bytes_read = stats.bytes_read,
            bytes_written = stats.bytes_written,
            records_removed = stats.records_removed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "cleaned log"
        );
        Ok(())
    }
}

/// Cleaning is background work: the calling thread runs under
/// `SCHED_BATCH` at nice 10, so produce, fetch and replication win the CPU
/// when they compete (the disk is shared through
/// `log.cleaner.io.max.bytes.per.second`). Best effort: a refusal is
/// logged and the thread runs at normal priority.
fn lower_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    // The crate maps 0..=99 onto nice 19..=-20 (rounding down): 22 is
    // nice 10 (the test below checks it).
    let Ok(priority) = 22u8.try_into().map(ThreadPriority::Crossplatform) else {
        return;
    };
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), priority, policy) {
        tracing::warn!(error = ?e, "cannot lower the log cleaner thread's priority");
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_due_log_is_picked() {
        // A log of 1000 bytes, `dirty_ratio` of them dirty.
        let c = |max_lag_due, dirty_ratio: f64, min_ratio| {
            let dirty_bytes = (dirty_ratio * 1000.0).round() as u64;
            Candidate::new(
                &Cleanable {
                    first_dirty_offset: 0,
                    first_uncleanable_offset: 10,
                    clean_bytes: 1000 - dirty_bytes,
                    dirty_bytes,
                    max_lag_due,
                    tombstones_due: false,
                },
                min_ratio,
            )
        };
        let tombstones = Candidate::new(
            &Cleanable {
                first_dirty_offset: 10,
                first_uncleanable_offset: 10,
                clean_bytes: 100,
                dirty_bytes: 0,
                max_lag_due: false,
                tombstones_due: true,
            },
            0.5,
        );
        let cases: Vec<(&str, Vec<Candidate>, Option<usize>)> = vec![
            ("nothing", vec![], None),
            ("below the ratio", vec![c(false, 0.4, 0.5)], None),
            ("at the ratio", vec![c(false, 0.5, 0.5)], Some(0)),
            (
                "the dirtiest",
                vec![c(false, 0.6, 0.5), c(false, 0.9, 0.5), c(false, 0.7, 0.5)],
                Some(1),
            ),
            (
                "max lag first",
                vec![c(false, 0.9, 0.5), c(true, 0.1, 0.5)],
                Some(1),
            ),
            (
                "per-log ratio",
                vec![c(false, 0.9, 0.95), c(false, 0.3, 0.2)],
                Some(1),
            ),
            (
                "expired tombstones alone make a clean log due",
                vec![c(false, 0.4, 0.5), tombstones],
                Some(1),
            ),
            (
                "a dirty log before a log with expired tombstones",
                vec![tombstones, c(false, 0.6, 0.5)],
                Some(1),
            ),
        ];
        for (name, candidates, expected) in cases {
            assert_eq!(pick(&candidates), expected, "{name}");
        }
    }

    /// Field `n` (1-based, as proc(5)) of /proc/thread-self/stat.
    #[cfg(target_os = "linux")]
    fn stat_field(n: usize) -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        // Fields after the command name, which is in parentheses.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        rest.split(' ')
            .nth(n - 3)
            .expect("field")
            .parse()
            .expect("number")
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cleaner_threads_run_at_batch_priority() {
        const SCHED_BATCH: i64 = 3;
        let before = stat_field(19);
        let (nice, policy) = std::thread::spawn(|| {
            lower_priority();
            (stat_field(19), stat_field(41))
        })
        .join()
        .expect("thread");
        assert_eq!((nice, policy), (10, SCHED_BATCH));
        assert_eq!(stat_field(19), before, "only the cleaner thread changed");
    }

    #[test]
    fn throttle_delay_keeps_the_rate() {
        let ms = Duration::from_millis;
        let cases = [
            ("unthrottled", 1 << 30, ms(1), f64::MAX, Duration::ZERO),
            ("under the rate", 1_000, ms(500), 10_000.0, Duration::ZERO),
            ("over: wait the rest", 10_000, ms(250), 10_000.0, ms(750)),
            ("exactly on time", 5_000, ms(500), 10_000.0, Duration::ZERO),
        ];
        for (name, bytes, elapsed, rate, expected) in cases {
            assert_eq!(throttle_delay(bytes, elapsed, rate), expected, "{name}");
        }
    }
}
