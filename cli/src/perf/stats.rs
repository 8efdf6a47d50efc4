//! What the perf commands measure and how they print it, line for line as
//! Kafka's `ProducerPerformance` and `ConsumerPerformance` do. Pure: time
//! is passed in.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone};
use serde::Serialize;

/// Kafka's "MB": 1024 × 1024 bytes.
const MB: f64 = 1024.0 * 1024.0;
/// Latency samples kept for percentiles (Kafka keeps up to 500,000).
const MAX_SAMPLES: u64 = 500_000;

/// Per-second rate of `amount` over `elapsed` (0 when no time passed).
fn rate(amount: f64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 { amount / seconds } else { 0.0 }
}

/// Counts of one reporting window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u64,
    bytes: u64,
    total_latency: Duration,
    max_latency: Duration,
}

impl Window {
    fn new(start: Instant) -> Self {
        Self {
            start,
            count: 0,
            bytes: 0,
            total_latency: Duration::ZERO,
            max_latency: Duration::ZERO,
        }
    }
}

/// The producer benchmark's measurements: acknowledged records, their
/// bytes and send-to-acknowledgement latencies.
#[derive(Debug)]
pub(crate) struct ProducerStats {
    start: Instant,
    /// Every `sampling`-th latency, in microseconds.
    samples: Vec<u64>,
    sampling: u64,
    iteration: u64,
    total: Window,
    window: Window,
    errors: u64,
}

/// One periodic line: `N records sent, X records/sec (Y MB/sec), A ms avg
/// latency, M ms max latency.`
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowReport {
    pub(crate) records: u64,
    records_per_sec: f64,
    mb_per_sec: f64,
    avg_latency_ms: f64,
    max_latency_ms: f64,
}

impl fmt::Display for WindowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
            self.records,
            self.records_per_sec,
            self.mb_per_sec,
            self.avg_latency_ms,
            self.max_latency_ms
        )
    }
}

/// The final summary (JSON with `--output json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TotalReport {
    /// Records acknowledged.
    pub(crate) records: u64,
    /// Records that failed.
    pub(crate) errors: u64,
    /// Bytes of acknowledged record values.
    pub(crate) bytes: u64,
    /// From the first send to the end.
    pub(crate) elapsed_ms: u64,
    pub(crate) records_per_sec: f64,
    pub(crate) mb_per_sec: f64,
    pub(crate) avg_latency_ms: f64,
    pub(crate) max_latency_ms: f64,
    pub(crate) p50_latency_ms: f64,
    pub(crate) p95_latency_ms: f64,
    pub(crate) p99_latency_ms: f64,
    pub(crate) p999_latency_ms: f64,
}

impl fmt::Display for TotalReport {
    /// Kafka prints the percentiles as whole milliseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records sent, {:.6} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max \
             latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
            self.records,
            self.records_per_sec,
            self.mb_per_sec,
            self.avg_latency_ms,
            self.max_latency_ms,
            self.p50_latency_ms.floor() as u64,
            self.p95_latency_ms.floor() as u64,
            self.p99_latency_ms.floor() as u64,
            self.p999_latency_ms.floor() as u64,
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl ProducerStats {
    /// Stats for a run of `records` records starting at `start`.
    pub(crate) fn new(records: u64, start: Instant) -> Self {
        let sampling = (records / records.clamp(1, MAX_SAMPLES)).max(1);
        Self {
            start,
            samples: Vec::with_capacity(records.min(MAX_SAMPLES) as usize),
            sampling,
            iteration: 0,
            total: Window::new(start),
            window: Window::new(start),
            errors: 0,
        }
    }

    /// An acknowledged record of `bytes` bytes, `latency` after its send.
    pub(crate) fn record(&mut self, latency: Duration, bytes: usize) {
        for w in [&mut self.total, &mut self.window] {
            w.count += 1;
            w.bytes += bytes as u64;
            w.total_latency += latency;
            w.max_latency = w.max_latency.max(latency);
        }
        if self.iteration.is_multiple_of(self.sampling) {
            self.samples.push(latency.as_micros() as u64);
        }
        self.iteration += 1;
    }

    /// A failed record.
    pub(crate) fn error(&mut self) {
        self.errors += 1;
    }

    /// The window since the last call (or the start), and a new window.
    pub(crate) fn take_window(&mut self, now: Instant) -> WindowReport {
        let w = std::mem::replace(&mut self.window, Window::new(now));
        let elapsed = now.saturating_duration_since(w.start);
        WindowReport {
            records: w.count,
            records_per_sec: rate(w.count as f64, elapsed),
            mb_per_sec: rate(w.bytes as f64, elapsed) / MB,
            avg_latency_ms: if w.count > 0 {
                ms(w.total_latency) / w.count as f64
            } else {
                0.0
            },
            max_latency_ms: ms(w.max_latency),
        }
    }

    /// The summary at `now`.
    pub(crate) fn total(&mut self, now: Instant) -> TotalReport {
        let w = self.total;
        let elapsed = now.saturating_duration_since(self.start);
        self.samples.sort_unstable();
        let percentile = |p: f64| -> f64 {
            if self.samples.is_empty() {
                return 0.0;
            }
            let index = ((p * self.samples.len() as f64) as usize).min(self.samples.len() - 1);
            self.samples[index] as f64 / 1000.0
        };
        TotalReport {
            records: w.count,
            errors: self.errors,
            bytes: w.bytes,
            elapsed_ms: elapsed.as_millis() as u64,
            records_per_sec: rate(w.count as f64, elapsed),
            mb_per_sec: rate(w.bytes as f64, elapsed) / MB,
            avg_latency_ms: if w.count > 0 {
                ms(w.total_latency) / w.count as f64
            } else {
                0.0
            },
            max_latency_ms: ms(w.max_latency),
            p50_latency_ms: percentile(0.5),
            p95_latency_ms: percentile(0.95),
            p99_latency_ms: percentile(0.99),
            p999_latency_ms: percentile(0.999),
        }
    }
}

/// `--throughput`: at most this many records per second (≤ 0: unthrottled).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Throttler {
    per_sec: f64,
}

impl Throttler {
    pub(crate) fn new(per_sec: f64) -> Self {
        Self { per_sec }
    }

    /// How long to wait before sending record number `sent` (0-based)
    /// `elapsed` after the start, so the average rate stays at the target.
    pub(crate) fn wait(&self, sent: u64, elapsed: Duration) -> Option<Duration> {
        if self.per_sec <= 0.0 {
            return None;
        }
        let due = Duration::from_secs_f64(sent as f64 / self.per_sec);
        (due > elapsed).then(|| due - elapsed)
    }
}

/// kafka-consumer-perf-test's header line.
pub(crate) const CONSUMER_HEADER: &str = "start.time, end.time, data.consumed.in.MB, MB.sec, \
     data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, \
     fetch.nMsg.sec";

/// The consumer benchmark's result (JSON with `--output json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ConsumerReport {
    pub(crate) start_time: String,
    pub(crate) end_time: String,
    pub(crate) data_consumed_mb: f64,
    pub(crate) mb_per_sec: f64,
    pub(crate) data_consumed_msgs: u64,
    pub(crate) msgs_per_sec: f64,
    /// Always 0: no consumer group joins.
    pub(crate) rebalance_time_ms: u64,
    pub(crate) fetch_time_ms: u64,
    pub(crate) fetch_mb_per_sec: f64,
    pub(crate) fetch_msgs_per_sec: f64,
    /// With `--from-latest`: end-to-end latency, from each record's
    /// producer timestamp (CreateTime) to its arrival here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) end_to_end: Option<EndToEndLatency>,
}

/// Producer-timestamp-to-consumer latency percentiles, in milliseconds
/// (timestamps have millisecond resolution; producer and consumer share a
/// clock only on one machine).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct EndToEndLatency {
    pub(crate) p50_ms: i64,
    pub(crate) p99_ms: i64,
    pub(crate) p999_ms: i64,
    pub(crate) max_ms: i64,
}

impl EndToEndLatency {
    /// Percentiles of `samples` (milliseconds); `None` when empty.
    pub(crate) fn of(mut samples: Vec<i64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |p: f64| samples[((p * samples.len() as f64) as usize).min(samples.len() - 1)];
        Some(Self {
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: samples[samples.len() - 1],
        })
    }

    /// The table line.
    pub(crate) fn line(&self) -> String {
        format!(
            "end-to-end latency: {} ms 50th, {} ms 99th, {} ms 99.9th, {} ms max.",
            self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

/// Kafka's `yyyy-MM-dd HH:mm:ss:SSS`.
pub(crate) fn format_time<Tz: TimeZone>(time: &DateTime<Tz>) -> String
where
    Tz::Offset: fmt::Display,
{
    time.format("%Y-%m-%d %H:%M:%S:%3f").to_string()
}

impl ConsumerReport {
    /// The report of `messages` records of `bytes` bytes (keys and values)
    /// read between `start` and `end`.
    pub(crate) fn new<Tz: TimeZone>(
        start: &DateTime<Tz>,
        end: &DateTime<Tz>,
        bytes: u64,
        messages: u64,
    ) -> Self
    where
        Tz::Offset: fmt::Display,
    {
        let elapsed = (end.clone() - start.clone())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let mb = bytes as f64 / MB;
        Self {
            start_time: format_time(start),
            end_time: format_time(end),
            data_consumed_mb: mb,
            mb_per_sec: rate(mb, elapsed),
            data_consumed_msgs: messages,
            msgs_per_sec: rate(messages as f64, elapsed),
            rebalance_time_ms: 0,
            fetch_time_ms: elapsed.as_millis() as u64,
            fetch_mb_per_sec: rate(mb, elapsed),
            fetch_msgs_per_sec: rate(messages as f64, elapsed),
            end_to_end: None,
        }
    }

    /// The data line under [`CONSUMER_HEADER`].
    pub(crate) fn line(&self) -> String {
        format!(
            "{}, {}, {:.4}, {:.4}, {}, {:.4}, {}, {}, {:.4}, {:.4}",
            self.start_time,
            self.end_time,
            self.data_consumed_mb,
            self.mb_per_sec,
            self.data_consumed_msgs,
            self.msgs_per_sec,
            self.rebalance_time_ms,
            self.fetch_time_ms,
            self.fetch_mb_per_sec,
            self.fetch_msgs_per_sec
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn end_to_end_percentiles() {
        assert_eq!(EndToEndLatency::of(Vec::new()), None);
        let e = EndToEndLatency::of((1..=1000).rev().collect()).expect("samples");
        assert_eq!(
            (e.p50_ms, e.p99_ms, e.p999_ms, e.max_ms),
            (501, 991, 1000, 1000)
        );
        assert_eq!(
            e.line(),
            "end-to-end latency: 501 ms 50th, 991 ms 99th, 1000 ms 99.9th, 1000 ms max."
        );
    }

    #[test]
    fn producer_lines_have_kafkas_format() {
        let start = Instant::now();
        let mut stats = ProducerStats::new(4, start);
        for latency_ms in [2, 4, 6, 8] {
            stats.record(Duration::from_millis(latency_ms), 1024 * 1024);
        }
        stats.error();
        let window = stats.take_window(start + Duration::from_secs(2));
        assert_eq!(
            window.to_string(),
            "4 records sent, 2.0 records/sec (2.00 MB/sec), 5.0 ms avg latency, 8.0 ms max latency."
        );
        let total = stats.total(start + Duration::from_secs(4));
        assert_eq!(
            total.to_string(),
            "4 records sent, 1.000000 records/sec (1.00 MB/sec), 5.00 ms avg latency, 8.00 ms max \
             latency, 6 ms 50th, 8 ms 95th, 8 ms 99th, 8 ms 99.9th."
        );
        assert_eq!(
            (total.records, total.errors, total.elapsed_ms),
            (4, 1, 4000)
        );
    }

    #[test]
    fn windows_restart_and_empty_ones_are_zero() {
        let start = Instant::now();
        let mut stats = ProducerStats::new(10, start);
        stats.record(Duration::from_millis(1), 10);
        stats.take_window(start + Duration::from_secs(5));
        let empty = stats.take_window(start + Duration::from_secs(10));
        assert_eq!(empty.records, 0);
        assert_eq!(empty.avg_latency_ms, 0.0);
        let nothing = ProducerStats::new(0, start).total(start);
        assert_eq!(
            nothing.to_string(),
            "0 records sent, 0.000000 records/sec (0.00 MB/sec), 0.00 ms avg latency, 0.00 ms max \
             latency, 0 ms 50th, 0 ms 95th, 0 ms 99th, 0 ms 99.9th."
        );
    }

    #[test]
    fn percentiles_sample_like_kafka() {
        let start = Instant::now();
        // 1,000,000 records keep every second latency.
        let mut stats = ProducerStats::new(1_000_000, start);
        for i in 0..1000u64 {
            stats.record(Duration::from_micros(i * 1000), 1);
        }
        assert_eq!(stats.samples.len(), 500);
        let total = stats.total(start + Duration::from_secs(1));
        assert_eq!(total.p50_latency_ms, 500.0);
        assert_eq!(total.p999_latency_ms, 998.0);
        assert_eq!(total.max_latency_ms, 999.0);
    }

    #[test]
    fn throttler_keeps_the_average_rate() {
        let throttle = Throttler::new(100.0);
        let table = [
            (0, 0, None),
            (10, 50, Some(50)),
            (10, 100, None),
            (10, 150, None),
            (200, 1000, Some(1000)),
        ];
        for (sent, elapsed_ms, wait_ms) in table {
            assert_eq!(
                throttle.wait(sent, Duration::from_millis(elapsed_ms)),
                wait_ms.map(Duration::from_millis),
                "sent {sent} after {elapsed_ms} ms"
            );
        }
        assert_eq!(Throttler::new(-1.0).wait(1_000_000, Duration::ZERO), None);
    }

    #[test]
    fn consumer_line_has_kafkas_format() {
        let start = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap();
        let end = start + chrono::Duration::milliseconds(5_123);
        let report = ConsumerReport::new(&start, &end, 100 * 1024 * 1024, 100_000);
        assert_eq!(
            CONSUMER_HEADER,
            "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, \
             rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
        );
        assert_eq!(
            report.line(),
            "2024-05-01 10:00:00:000, 2024-05-01 10:00:05:123, 100.0000, 19.5198, 100000, \
             19519.8126, 0, 5123, 19.5198, 19519.8126"
        );
    }
}
