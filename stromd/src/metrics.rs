//! The Prometheus exposition served on `/metrics`.
//!
//! Gauges are computed at scrape time from the node's own state (the Raft
//! metrics, the replayed image, the broker's standing, the log directories
//! on disk), so they cost nothing between scrapes. Counters are read from
//! the atomics their owners keep: data-plane traffic (`BrokerService`), the
//! partition changes seen while replaying metadata, and the per-RPC families
//! of the tower layer (`rpc.rs`).
//!
//! Cluster-wide gauges (offline partitions, brokers by state, metadata lag
//! per broker) are reported by the active controller only, so that summing
//! them over every node gives the cluster's value, as Kafka's controller
//! metrics. Per-partition series are bounded: see [`LOG_SIZE_SERIES`].

use std::path::Path;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::view::{BrokerView, NodeView};

/// At most this many `strom_log_size_bytes{topic,partition}` series per
/// node: every hosted partition while there are no more, else the largest.
pub(crate) const LOG_SIZE_SERIES: usize = 100;

/// At most this many `strom_last_stable_offset_lag{topic,partition}`
/// series per node: only led partitions whose lag is not zero (an open
/// transaction holds `read_committed` readers back), the largest first.
pub(crate) const LSO_LAG_SERIES: usize = 100;

/// At most this many `strom_group_consumer_lag{group,topic}` series (and
/// of each sibling) per node: the largest lags.
pub(crate) const LAG_SERIES: usize = 1000;

type Labels = Vec<(String, String)>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    registry.register(name, help, ConstCounter::new(value));
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Size on disk of every partition log under `<data-dir>/logs`
/// (`<topic>-<partition>/*.log`), largest first.
pub(crate) fn log_sizes(data_dir: &Path) -> Vec<(String, i32, u64)> {
    let Ok(dirs) = std::fs::read_dir(data_dir.join("logs")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dir in dirs.flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        let Some((topic, partition)) = name
            .rsplit_once('-')
            .and_then(|(t, p)| Some((t.to_owned(), p.parse::<i32>().ok()?)))
        else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        let size: u64 = files
            .flatten()
            .filter(|f| f.file_name().to_string_lossy().ends_with(".log"))
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum();
        out.push((topic, partition, size));
    }
    out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, a.1).cmp(&(&b.0, b.1))));
    out
}

fn controller_metrics(r: &mut Registry, ctl: &strom_controller::Controller) {
    let m = ctl.raft().metrics().borrow().clone();
    let active = ctl.is_leader();
    gauge(
        r,
        "controller_active",
        "1 on the active controller (the Raft leader), else 0",
        i64::from(active),
    );
    gauge(r, "raft_term", "Current Raft term", clamp(m.current_term));
    gauge(
        r,
        "raft_last_log_index",
        "Index of the last entry in the local Raft log",
        m.last_log_index.map_or(-1, clamp),
    );
    gauge(
        r,
        "raft_commit_index",
        "Highest Raft log index this voter knows to be committed",
        ctl.commit_index(),
    );
    gauge(
        r,
        "raft_applied_index",
        "Index of the last entry applied to the metadata image",
        m.last_applied.map_or(-1, |l| clamp(l.index)),
    );
    if let Some(replication) = &m.replication {
        let lag: Family<Labels, Gauge> = Family::default();
        let last = m.last_log_index.unwrap_or(0);
        for (voter, matched) in replication {
            let behind = last.saturating_sub(matched.map_or(0, |l| l.index));
            lag.get_or_create(&labels(&[("voter", voter.to_string())]))
                .set(clamp(behind));
        }
        r.register(
            "raft_voter_lag",
            "Entries each voter is behind the leader (active controller only)",
            lag,
        );
    }
    if !active {
        return;
    }
    let (offline, brokers, offset) = ctl.with_image(|image| {
        let offline = image
            .all_partitions()
            .filter(|(_, _, p)| p.leader < 0)
            .count();
        let mut states = [0i64; 3];
        for b in image.brokers() {
            let i = if b.fenced {
                1
            } else if b.in_controlled_shutdown {
                2
            } else {
                0
            };
            states[i] += 1;
        }
        (offline, states, image.offset())
    });
    gauge(
        r,
        "partitions_offline",
        "Partitions without a leader (active controller only)",
        i64::try_from(offline).unwrap_or(i64::MAX),
    );
    let moving = ctl.reassignment_progress();
    gauge(
        r,
        "partitions_reassigning",
        "Partitions being reassigned (active controller only)",
        i64::try_from(moving.partitions).unwrap_or(i64::MAX),
    );
    gauge(
        r,
        "brokers_decommissioning",
        "Brokers whose replicas are being moved away (active controller only)",
        i64::try_from(moving.decommissioning).unwrap_or(i64::MAX),
    );
    gauge(
        r,
        "reassignment_bytes_copied",
        "Bytes the adding replicas of reassigned partitions hold, as brokers reported (active controller only)",
        moving.bytes_copied,
    );
    gauge(
        r,
        "reassignment_bytes_remaining",
        "Bytes the adding replicas of reassigned partitions still lack, as brokers reported (active controller only)",
        moving.bytes_remaining,
    );
    // The balancer (docs/reassignment.md, "Balancer"): 0 off, 1 balanced,
    // 2 pending (replica counts differ by two or more), 3 moves in progress.
    let view = ctl.with_image(strom_metadata::balancer::balancer_view);
    let disks = ctl.broker_disks();
    let mode = ctl.config().balancer_mode;
    let threshold = ctl.config().balancer_disk_threshold_percent;
    let disk_full = mode == strom_metadata::balancer::BalancerMode::Continuous
        && disks.values().any(|d| d.over(threshold));
    let balancer_state = if mode == strom_metadata::balancer::BalancerMode::Off {
        0
    } else if view.moving > 0 {
        3
    } else if view.unbalanced || disk_full {
        2
    } else {
        1
    };
    gauge(
        r,
        "balancer_state",
        "Balancer: 0 off, 1 balanced, 2 pending (replica counts of available brokers differ by two or more, or in continuous mode a disk is over balancer.disk.threshold.percent), 3 reassignments in progress (active controller only)",
        balancer_state,
    );
    let moves: Family<Labels, prometheus_client::metrics::counter::Counter> = Family::default();
    for (goal, n) in ctl.balancer_started() {
        moves
            .get_or_create(&labels(&[("goal", goal.as_str().to_owned())]))
            .inc_by(n);
    }
    r.register(
        "balancer_partitions_moved",
        "Partitions the balancer started moving since this controller started, by goal (for goal=leaders: partitions given a new leader); rate() is moves per second (active controller only)",
        moves,
    );
    let used: Family<Labels, Gauge> = Family::default();
    let total: Family<Labels, Gauge> = Family::default();
    for (broker, d) in &disks {
        let l = labels(&[("broker", broker.to_string())]);
        used.get_or_create(&l).set(clamp(d.used_bytes));
        total.get_or_create(&l).set(clamp(d.total_bytes));
    }
    r.register(
        "broker_disk_used_bytes",
        "Bytes in use on each broker's data directory file system, as its last heartbeat reported (active controller only)",
        used,
    );
    r.register(
        "broker_disk_total_bytes",
        "Size of each broker's data directory file system, as its last heartbeat reported (active controller only)",
        total,
    );
    let fam: Family<Labels, Gauge> = Family::default();
    for (state, n) in ["unfenced", "fenced", "controlled_shutdown"]
        .iter()
        .zip(brokers)
    {
        fam.get_or_create(&labels(&[("state", (*state).to_owned())]))
            .set(n);
    }
    r.register(
        "brokers",
        "Registered brokers by state (active controller only)",
        fam,
    );
    let lag: Family<Labels, Gauge> = Family::default();
    for (broker, reported) in ctl.broker_metadata_offsets() {
        lag.get_or_create(&labels(&[("broker", broker.to_string())]))
            .set((offset - reported).max(0));
    }
    r.register(
        "broker_metadata_lag",
        "Metadata offsets each broker was behind the committed image at its last heartbeat (active controller only)",
        lag,
    );
}

fn broker_metrics(r: &mut Registry, state: &NodeView, broker: &BrokerView) {
    let s = broker.status.borrow().clone();
    gauge(
        r,
        "broker_fenced",
        "1 while this broker is fenced",
        i64::from(s.fenced),
    );
    gauge(r, "broker_epoch", "Current broker epoch", s.epoch);
    gauge(
        r,
        "log_dirs_offline",
        "Log directories of this broker taken offline by a storage error (KIP-112)",
        i64::try_from(broker.log_dirs.offline_dirs().len()).unwrap_or(i64::MAX),
    );
    gauge(
        r,
        "metadata_offset",
        "Offset of the last metadata batch this broker replayed",
        broker.cache.offset(),
    );
    let node = state.node_id;
    let (leaders, under, topics, partitions) = broker.cache.with_image(|image| {
        let mut leaders = 0i64;
        let mut under = 0i64;
        for (_, _, p) in image.all_partitions().filter(|(_, _, p)| p.leader == node) {
            leaders += 1;
            if p.isr.len() < p.replicas.len() {
                under += 1;
            }
        }
        (leaders, under, image.topic_count(), image.partition_count())
    });
    gauge(r, "partitions_led", "Partitions this broker leads", leaders);
    gauge(
        r,
        "partitions_under_replicated",
        "Partitions led by this broker whose ISR is smaller than the replica set",
        under,
    );
    gauge(
        r,
        "topics",
        "Topics in this broker's metadata image",
        i64::try_from(topics).unwrap_or(i64::MAX),
    );
    gauge(
        r,
        "partitions",
        "Partitions in this broker's metadata image",
        i64::try_from(partitions).unwrap_or(i64::MAX),
    );

    let changes = broker.cache.changes().of(node);
    counter(
        r,
        "isr_shrinks",
        "ISR changes that removed replicas, of partitions this broker leads",
        changes.isr_shrinks,
    );
    counter(
        r,
        "isr_expands",
        "ISR changes that added replicas, of partitions this broker leads",
        changes.isr_expands,
    );
    counter(
        r,
        "leader_elections",
        "Leader changes that made this broker a partition's leader",
        changes.leader_elections,
    );

    let t = broker.traffic.counts();
    counter(
        r,
        "bytes_in",
        "Record batch bytes appended by produce requests",
        t.bytes_in,
    );
    counter(
        r,
        "records_in",
        "Records appended by produce requests",
        t.records_in,
    );
    counter(
        r,
        "bytes_out",
        "Record batch bytes returned to consumers",
        t.bytes_out,
    );
    counter(
        r,
        "records_out",
        "Records returned to consumers",
        t.records_out,
    );
    counter(
        r,
        "replication_bytes_out",
        "Record batch bytes returned to follower replicas",
        t.replication_bytes_out,
    );
    counter(
        r,
        "replication_records_out",
        "Records returned to follower replicas",
        t.replication_records_out,
    );
    counter(
        r,
        "produce_requests",
        "Produce requests answered (unary Produce or a ProduceStream message)",
        t.produce_requests,
    );
    r.register(
        "produce_duration_seconds",
        "Produce requests from arrival to answer (append and acks wait), unary Produce or a ProduceStream message",
        broker.traffic.produce_duration(),
    );
    counter(
        r,
        "fetch_requests",
        "Consumer fetch requests answered (unary Fetch or a FetchStream message)",
        t.fetch_requests,
    );
    counter(
        r,
        "replication_fetch_requests",
        "Follower fetch requests answered (unary Fetch or a FetchStream message)",
        t.replication_fetch_requests,
    );

    let sizes = log_sizes(&state.data_dir);
    gauge(
        r,
        "log_partitions",
        "Partition logs hosted on this node",
        i64::try_from(sizes.len()).unwrap_or(i64::MAX),
    );
    gauge(
        r,
        "logs_size_bytes",
        "Bytes of every partition log on this node",
        clamp(sizes.iter().map(|s| s.2).sum()),
    );
    let top: Vec<(String, i32, u64)> = sizes.into_iter().take(LOG_SIZE_SERIES).collect();
    let fam: Family<Labels, Gauge> = Family::default();
    for (topic, partition, size) in &top {
        fam.get_or_create(&labels(&[
            ("topic", topic.clone()),
            ("partition", partition.to_string()),
        ]))
        .set(clamp(*size));
    }
    r.register(
        "log_size_bytes",
        "Bytes of a partition's log on this node (the largest 100 partitions only)",
        fam,
    );

    group_metrics(r, &broker.groups.metrics());
    txn_metrics(r, &broker.transactions.metrics());
    let (commit_duration, abort_duration) = broker.transactions.duration_histograms();
    r.register(
        "txn_commit_duration_seconds",
        "Committed transactions from their start (first partition added) to every COMMIT marker written",
        commit_duration,
    );
    r.register(
        "txn_abort_duration_seconds",
        "Aborted transactions from their start (first partition added) to every ABORT marker written",
        abort_duration,
    );
    producer_metrics(r, &broker.replicas.producer_stats());

    let retention = broker.replicas.retention_stats();
    counter(
        r,
        "log_segments_deleted",
        "Log segments deleted by retention and DeleteRecords (as leader or follower)",
        retention.segments_deleted(),
    );
    counter(
        r,
        "log_segments_deleted_bytes",
        "Bytes of the log segments deleted by retention and DeleteRecords",
        retention.bytes_deleted(),
    );
    let starts: std::collections::HashMap<(String, i32), i64> = broker
        .replicas
        .log_start_offsets()
        .into_iter()
        .map(|(t, p, o)| ((t, p), o))
        .collect();
    let fam: Family<Labels, Gauge> = Family::default();
    for (topic, partition, _) in top.iter() {
        if let Some(start) = starts.get(&(topic.clone(), *partition)) {
            fam.get_or_create(&labels(&[
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
            ]))
            .set(*start);
        }
    }
    r.register(
        "log_start_offset",
        "First readable offset of a partition's log on this node (the largest 100 partitions only)",
        fam,
    );

    // Replication throttles (docs/reassignment.md, "Throttles"): the rate
    // in force per side (0: unthrottled) and the bytes metered.
    let quotas = broker.replicas.replication_quotas();
    let rates: Family<Labels, Gauge> = Family::default();
    let bytes: Family<Labels, prometheus_client::metrics::counter::Counter> = Family::default();
    for (side, quota) in [("leader", &quotas.leader), ("follower", &quotas.follower)] {
        let l = labels(&[("side", side.to_owned())]);
        rates.get_or_create(&l).set(quota.rate().map_or(0, clamp));
        bytes.get_or_create(&l).inc_by(quota.throttled_bytes());
    }
    r.register(
        "replication_throttle_rate_bytes",
        "Replication throttle in force on this broker, bytes/s (leader.replication.throttled.rate, follower.replication.throttled.rate; 0: unthrottled)",
        rates,
    );
    r.register(
        "replication_throttled_bytes",
        "Bytes of throttled (moving) replicas' traffic this broker served as leader or fetched as follower",
        bytes,
    );

    let cleaner = broker.replicas.cleaner_stats();
    counter(
        r,
        "log_cleaner_bytes_read",
        "Bytes the log cleaner read (offset maps and segments rewritten)",
        cleaner.bytes_read(),
    );
    counter(
        r,
        "log_cleaner_bytes_written",
        "Bytes of cleaned segments the log cleaner wrote",
        cleaner.bytes_written(),
    );
    counter(
        r,
        "log_cleaner_passes",
        "Cleaning passes the log cleaner completed",
        cleaner.passes(),
    );
    gauge(
        r,
        "log_cleaner_max_dirty_ratio_percent",
        "Largest dirty ratio of a compacted log at the cleaner's last check, in percent",
        (cleaner.max_dirty_ratio() * 100.0).round() as i64,
    );
    gauge(
        r,
        "log_cleaner_ms_since_last_run",
        "Milliseconds since the log cleaner last completed a pass (-1: never)",
        cleaner.ms_since_last_pass().map_or(-1, clamp),
    );
}

/// The exposition of every metric of the node (reads the disk: call it off
/// the async workers).
/// The group coordinator: groups by state (bounded: four states),
/// partitions loaded, rebalances, commits and their total latency.
fn group_metrics(r: &mut Registry, m: &strom_broker::group::GroupMetrics) {
    let fam: Family<Labels, Gauge> = Family::default();
    for (state, n) in &m.groups_by_state {
        fam.get_or_create(&labels(&[("state", (*state).to_owned())]))
            .set(*n);
    }
    r.register(
        "group_coordinator_groups",
        "Consumer groups coordinated by this broker, by state",
        fam,
    );
    gauge(
        r,
        "group_coordinator_partitions_loaded",
        "Offsets-topic partitions whose groups this broker serves",
        m.partitions_loaded,
    );
    gauge(
        r,
        "group_coordinator_partitions_loading",
        "Offsets-topic partitions this broker is loading",
        m.partitions_loading,
    );
    counter(
        r,
        "group_rebalances",
        "Target assignments computed by this broker's coordinator (rebalances)",
        m.rebalances,
    );
    counter(
        r,
        "group_offset_commits",
        "Partition offsets committed through this broker",
        m.offset_commits,
    );
    counter(
        r,
        "group_offset_commit_requests",
        "OffsetCommit requests acknowledged by this broker",
        m.commit_requests,
    );
    counter(
        r,
        "group_offset_commit_latency_microseconds",
        "Total time of the acknowledged OffsetCommit requests (divide by the request count for the mean)",
        m.commit_micros,
    );
    counter(
        r,
        "group_coordinator_write_failures",
        "Offsets-topic writes that failed (the partition was reloaded)",
        m.write_failures,
    );
    // Per group and topic, never per partition; at most LAG_SERIES of
    // each, the largest lags.
    let lag: Family<Labels, Gauge> = Family::default();
    let max: Family<Labels, Gauge> = Family::default();
    let unknown: Family<Labels, Gauge> = Family::default();
    let mut largest: Vec<_> = m.lag.iter().collect();
    largest.sort_by_key(|(_, l)| std::cmp::Reverse(l.lag));
    for ((group, topic), l) in largest.into_iter().take(LAG_SERIES) {
        let key = labels(&[("group", group.clone()), ("topic", topic.clone())]);
        lag.get_or_create(&key).set(l.lag);
        max.get_or_create(&key).set(l.max_partition_lag);
        unknown.get_or_create(&key).set(l.unknown);
    }
    r.register(
        "group_consumer_lag",
        "Records between a group's committed offsets and the log end offsets, summed over the topic's committed partitions (refreshed every group.consumer.lag.interval.ms)",
        lag,
    );
    r.register(
        "group_consumer_lag_max_partition",
        "The largest lag of one partition of the topic in the group",
        max,
    );
    r.register(
        "group_consumer_lag_unknown_partitions",
        "Committed partitions whose end offset the last round could not read (no leader, no answer)",
        unknown,
    );
}

/// The transaction coordinator: partitions loaded, transactions completed
/// by outcome, timeout aborts, failed writes.
fn txn_metrics(r: &mut Registry, m: &strom_broker::txn::TxnMetrics) {
    gauge(
        r,
        "txn_coordinator_partitions_loaded",
        "Transaction-log partitions whose transactional ids this broker serves",
        m.partitions_loaded,
    );
    gauge(
        r,
        "txn_coordinator_partitions_loading",
        "Transaction-log partitions this broker is loading",
        m.partitions_loading,
    );
    gauge(
        r,
        "txn_open_transactions",
        "Transactional ids this broker coordinates with a transaction open or completing (Ongoing, PrepareCommit, PrepareAbort)",
        m.open_transactions,
    );
    counter(
        r,
        "txn_commits",
        "Transactions this broker's coordinator completed with COMMIT markers",
        m.commits,
    );
    counter(
        r,
        "txn_aborts",
        "Transactions this broker's coordinator completed with ABORT markers",
        m.aborts,
    );
    counter(
        r,
        "txn_timed_out",
        "Transactions aborted because they outlived transaction.timeout.ms",
        m.timed_out,
    );
    counter(
        r,
        "txn_coordinator_write_failures",
        "Transaction-log writes that failed (the partition was reloaded)",
        m.write_failures,
    );
}

/// Producer state and transactions of the replicas: producer ids tracked,
/// led partitions with open transactions, and the last-stable-offset lag
/// of the partitions where it is not zero (bounded: [`LSO_LAG_SERIES`]).
fn producer_metrics(r: &mut Registry, s: &strom_broker::replica::ProducerStats) {
    gauge(
        r,
        "producer_ids",
        "Producer ids tracked by the idempotence state of this broker's replicas (leaders and followers)",
        clamp(s.producer_ids),
    );
    gauge(
        r,
        "partitions_with_open_transactions",
        "Partitions this broker leads with at least one open transaction",
        clamp(s.partitions_with_open_transactions),
    );
    let fam: Family<Labels, Gauge> = Family::default();
    for l in s.lso_lag.iter().take(LSO_LAG_SERIES) {
        fam.get_or_create(&labels(&[
            ("topic", l.topic.clone()),
            ("partition", l.partition.to_string()),
        ]))
        .set(l.lag);
    }
    r.register(
        "last_stable_offset_lag",
        "High watermark minus last stable offset of a partition this broker leads: records read_committed consumers wait for (only partitions with a lag, the largest 100)",
        fam,
    );
}

pub(crate) fn render(state: &NodeView) -> String {
    let mut r = Registry::with_prefix("strom");
    let build: Family<Labels, Gauge> = Family::default();
    build
        .get_or_create(&labels(&[(
            "version",
            env!("CARGO_PKG_VERSION").to_owned(),
        )]))
        .set(1);
    r.register("build_info", "Version of this stromd (always 1)", build);
    if let Some(ctl) = &state.controller {
        controller_metrics(&mut r, ctl);
    }
    if let Some(broker) = &state.broker {
        broker_metrics(&mut r, state, broker);
    }
    state.rpc.register(&mut r);
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &r) {
        tracing::warn!(error = %e, "encode metrics");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sizes_sum_segments_per_partition_largest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        for (name, files) in [
            (
                "orders-0",
                vec![
                    ("00000000000000000000.log", 10),
                    ("00000000000000000000.index", 99),
                ],
            ),
            (
                "orders-1",
                vec![
                    ("00000000000000000000.log", 30),
                    ("00000000000000000042.log", 5),
                ],
            ),
            ("my-topic-12", vec![("00000000000000000000.log", 20)]),
            ("not a partition", vec![("x.log", 1)]),
        ] {
            std::fs::create_dir_all(logs.join(name)).expect("mkdir");
            for (f, n) in files {
                std::fs::write(logs.join(name).join(f), vec![0u8; n]).expect("write");
            }
        }
        assert_eq!(
            log_sizes(dir.path()),
            vec![
                ("orders".to_owned(), 1, 35),
                ("my-topic".to_owned(), 12, 20),
                ("orders".to_owned(), 0, 10),
            ]
        );
        assert!(log_sizes(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn consumer_lag_is_one_series_per_group_and_topic_largest_first() {
        use strom_broker::group::TopicLag;
        let mut m = strom_broker::group::GroupMetrics::default();
        for i in 0..LAG_SERIES + 5 {
            let lag = i64::try_from(i).expect("small");
            m.lag.insert(
                (format!("g{i}"), "t".to_owned()),
                TopicLag {
                    lag,
                    max_partition_lag: lag,
                    partitions: 3,
                    unknown: 0,
                },
            );
        }
        let mut r = Registry::with_prefix("strom");
        group_metrics(&mut r, &m);
        let mut text = String::new();
        encode(&mut text, &r).expect("encode");
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("strom_group_consumer_lag{"))
            .collect();
        assert_eq!(series.len(), LAG_SERIES);
        // The smallest lags (g0..g4) are the ones left out.
        assert!(series.iter().all(|l| !l.contains("group=\"g4\"")));
        assert!(
            series
                .iter()
                .any(|l| l.contains("group=\"g1004\"") && l.ends_with(" 1004"))
        );
        assert!(series.iter().all(|l| !l.contains("partition")));
    }
}
