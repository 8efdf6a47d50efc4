//! The built-in balancer's decisions (issue #20): which reassignments the
//! active controller starts on its own, as Redpanda's partition balancer
//! and Cruise Control do for Kafka. Pure: an image in, records out; the
//! controller runs [`balancer_moves`] on a timer and writes what it
//! returns (the apply step re-checks every move as for an operator's).
//!
//! Mode `node-add` (`balancer.mode`): when the replica counts of two
//! available brokers differ by two or more (typically: a broker was just
//! added and holds nothing), the balancer re-plans every partition
//! with the reassignment planner ([`plan_assignment`]: rack aware, keeps
//! what it can, evens replica counts to within one, followers before
//! preferred leaders) over the available brokers and starts the moves
//! that change a replica set, at most `max_moves` in flight per broker
//! (`reassignment.max.concurrent.moves.per.broker`). It plans one batch at
//! a time: while any reassignment is in progress (the balancer's, an
//! operator's or a decommission's) it starts nothing, and plans again from
//! the new assignment once they are done, so it never fights a move it did
//! not start and converges on an assignment the planner leaves as it is.
//!
//! Available brokers are registered, unfenced, not shutting down and not
//! decommissioning. Partitions with a replica on another broker are left
//! alone: moving replicas off unavailable brokers is the `continuous`
//! mode's job ([`unavailable_moves`]).
//!
//! Mode `continuous` adds, before the filling:
//!
//! * [`unavailable_moves`]: replicas of brokers unavailable for longer than
//!   `balancer.node.unavailable.timeout.ms` move to available brokers;
//! * [`disk_moves`]: replicas move off brokers whose data directory's file
//!   system is fuller than `balancer.disk.threshold.percent`, moving as
//!   little data as possible (the smallest partition that alone brings the
//!   broker under the threshold, else the largest and again), to the
//!   brokers with the most free space that keep the partition's rack
//!   spread, until the broker is projected under the threshold (moves
//!   decided but not yet in the heartbeats' reports counted as done).
//!
//! and after the filling, when no reassignment is in progress (so never
//! fighting a running one), the later goals in order:
//!
//! * [`leader_moves`] (leaders per broker): while two available brokers'
//!   leader counts differ by two or more, a partition the busier one leads
//!   gets an in-sync replica on the idler one as leader and, by a reorder
//!   of its replicas, as preferred leader (so the preferred-leader
//!   rebalancing keeps it there). Metadata only: no data moves;
//! * [`disk_balance_moves`] (disk usage per broker): while the bytes of the
//!   partitions two available brokers hold (by the reported partition
//!   sizes) differ by more than [`DISK_BALANCE_TOLERANCE_PERCENT`] of the
//!   average (and more than [`DISK_BALANCE_MIN_BYTES`]), a replica moves from the heavier to the lighter one, or two
//!   replicas swap between them when replica counts must stay as they are;
//!   each move narrows the pair's difference by at least a tenth, keeps rack spread and
//!   replica counts within the replica goal, and takes no broker over the
//!   disk threshold.
//!
//! What brokers report with their heartbeats (disk use, partition sizes)
//! comes in as a [`UsageReport`]; no goal adds a replica to a broker it
//! would take over the disk threshold.
//!
//! Tests: `balancer_test.rs`.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::image::ClusterImage;
use crate::pb;
use crate::planner::{PartitionAssignment, plan_assignment};
use crate::reassignment::{ReassignmentSpec, alter_reassignments};

/// Broker setting `balancer.mode`.
pub const BALANCER_MODE: &str = "balancer.mode";
/// Broker setting `balancer.node.unavailable.timeout.ms`.
pub const NODE_UNAVAILABLE_TIMEOUT: &str = "balancer.node.unavailable.timeout.ms";
/// Broker setting `balancer.disk.threshold.percent`.
pub const DISK_THRESHOLD_PERCENT: &str = "balancer.disk.threshold.percent";
/// Default `balancer.disk.threshold.percent`.
pub const DEFAULT_DISK_THRESHOLD_PERCENT: u8 = 80;

/// The disk usage goal leaves brokers alone whose partition bytes differ by
/// at most this percentage of the average per available broker.
pub const DISK_BALANCE_TOLERANCE_PERCENT: u64 = 10;
/// ... and whose partition bytes differ by at most this much: smaller
/// differences are not worth copying data for.
pub const DISK_BALANCE_MIN_BYTES: u64 = 128 << 20;

/// Use of the file system holding a broker's data directory, as its last
/// heartbeat reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes in use (total minus what is available to the broker).
    pub used_bytes: u64,
    /// Size of the file system in bytes.
    pub total_bytes: u64,
}

impl DiskUsage {
    /// Percentage in use (0 for an empty file system).
    pub fn percent(&self) -> f64 {
        if self.total_bytes == 0 {
            return 0.0;
        }
        self.used_bytes as f64 * 100.0 / self.total_bytes as f64
    }

    /// More than `threshold` percent is in use.
    pub fn over(&self, threshold: u8) -> bool {
        u128::from(self.used_bytes) * 100 > u128::from(threshold) * u128::from(self.total_bytes)
    }

    /// `extra` more bytes keep the use at or under `threshold` percent.
    pub fn fits(&self, extra: u64, threshold: u8) -> bool {
        (u128::from(self.used_bytes) + u128::from(extra)) * 100
            <= u128::from(threshold) * u128::from(self.total_bytes)
    }

    /// Bytes free.
    pub fn free(&self) -> u64 {
        self.total_bytes.saturating_sub(self.used_bytes)
    }
}

/// What brokers reported with their heartbeats, for the disk goals. Soft
/// state: the active controller keeps the last reports in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageReport {
    /// Disk use per broker; brokers without a report are absent.
    pub disks: BTreeMap<i32, DiskUsage>,
    /// Size of each partition (topic id, partition) in bytes: the largest
    /// size any of its replicas reported.
    pub partition_bytes: BTreeMap<(Uuid, i32), u64>,
    /// What each broker reported it holds on disk: bytes per replica
    /// (topic id, partition). Brokers without a report are absent; the disk
    /// goal then estimates what moves in flight add and free.
    pub replica_bytes: BTreeMap<i32, BTreeMap<(Uuid, i32), u64>>,
}

impl UsageReport {
    /// The reported size of `topic`-`partition`, 0 when unknown.
    pub fn bytes(&self, topic: Uuid, partition: i32) -> u64 {
        self.partition_bytes
            .get(&(topic, partition))
            .copied()
            .unwrap_or(0)
    }

    /// Adding `extra` bytes keeps `broker` at or under `threshold` percent
    /// (true when it reported no disk use).
    fn fits(&self, broker: i32, extra: u64, threshold: u8) -> bool {
        self.disks
            .get(&broker)
            .is_none_or(|d| d.fits(extra, threshold))
    }
}

/// What the balancer does (`balancer.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BalancerMode {
    /// Nothing (the default).
    #[default]
    Off,
    /// Fill brokers that hold far fewer replicas than the others.
    NodeAdd,
    /// `NodeAdd`, and move the replicas of brokers unavailable for longer
    /// than `balancer.node.unavailable.timeout.ms` to available ones.
    Continuous,
}

impl BalancerMode {
    /// Parses the setting's value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "off" => Some(BalancerMode::Off),
            "node-add" => Some(BalancerMode::NodeAdd),
            "continuous" => Some(BalancerMode::Continuous),
            _ => None,
        }
    }

    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            BalancerMode::Off => "off",
            BalancerMode::NodeAdd => "node-add",
            BalancerMode::Continuous => "continuous",
        }
    }
}

/// The balancer's goals, in the order they run (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BalancerGoal {
    /// Replicas off brokers unavailable for too long ([`unavailable_moves`]).
    Unavailable,
    /// Replicas off brokers over the disk threshold ([`disk_moves`]).
    DiskThreshold,
    /// Replicas per broker ([`balancer_moves`]).
    Replicas,
    /// Leaders per broker ([`leader_moves`]).
    Leaders,
    /// Disk usage per broker ([`disk_balance_moves`]).
    DiskUsage,
}

impl BalancerGoal {
    /// Every goal, in order.
    pub const ALL: [BalancerGoal; 5] = [
        BalancerGoal::Unavailable,
        BalancerGoal::DiskThreshold,
        BalancerGoal::Replicas,
        BalancerGoal::Leaders,
        BalancerGoal::DiskUsage,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            BalancerGoal::Unavailable => "unavailable",
            BalancerGoal::DiskThreshold => "disk_threshold",
            BalancerGoal::Replicas => "replicas",
            BalancerGoal::Leaders => "leaders",
            BalancerGoal::DiskUsage => "disk_usage",
        }
    }
}

/// What the balancer sees, for `strom balancer status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BalancerView {
    /// Replicas per available broker (moving partitions counted with every
    /// replica they have now).
    pub replicas: BTreeMap<i32, usize>,
    /// Two available brokers' replica counts differ by two or more: the
    /// balancer has work.
    pub unbalanced: bool,
    /// Reassignments in progress.
    pub moving: usize,
}

/// The brokers the balancer may place replicas on.
fn available(image: &ClusterImage) -> Vec<(i32, Option<String>)> {
    image
        .brokers()
        .filter(|b| b.is_alive() && !image.is_decommissioning(b.id))
        .map(|b| (b.id, b.rack.clone()))
        .collect()
}

/// Replica counts of the available brokers and whether two of them differ
/// by two or more.
pub fn balancer_view(image: &ClusterImage) -> BalancerView {
    let mut replicas: BTreeMap<i32, usize> = available(image)
        .into_iter()
        .map(|(id, _)| (id, 0))
        .collect();
    let mut moving = 0;
    for (_, _, s) in image.all_partitions() {
        if s.is_reassigning() {
            moving += 1;
        }
        for r in &s.replicas {
            if let Some(n) = replicas.get_mut(r) {
                *n += 1;
            }
        }
    }
    let most = replicas.values().max().copied().unwrap_or(0);
    let least = replicas.values().min().copied().unwrap_or(0);
    let unbalanced = most >= least + 2;
    BalancerView {
        replicas,
        unbalanced,
        moving,
    }
}

/// One round of the balancer (see the module doc): the records of the
/// reassignments to start now, or none. `default_min_isr` is
/// `min.insync.replicas` for topics without the config.
///
/// A move that would add a replica to a broker the `usage` says it would
/// take over `disk_threshold` percent is left out.
pub fn balancer_moves(
    image: &ClusterImage,
    mode: BalancerMode,
    max_moves: usize,
    default_min_isr: usize,
    usage: &UsageReport,
    disk_threshold: u8,
) -> Vec<pb::MetadataRecord> {
    if mode == BalancerMode::Off || max_moves == 0 {
        return Vec::new();
    }
    let view = balancer_view(image);
    if view.moving > 0 || !view.unbalanced {
        return Vec::new();
    }
    let brokers = available(image);
    let mut sizes = Vec::new();
    let current: Vec<PartitionAssignment> = image
        .all_partitions()
        .filter(|(_, _, s)| s.replicas.iter().all(|r| view.replicas.contains_key(r)))
        .map(|(t, p, s)| {
            sizes.push(usage.bytes(t.id, p));
            PartitionAssignment {
                topic: t.name.clone(),
                partition: p,
                replicas: s.replicas.clone(),
            }
        })
        .collect();
    let mut added: BTreeMap<i32, u64> = BTreeMap::new();
    let Ok(proposed) = plan_assignment(&brokers, &current) else {
        return Vec::new();
    };
    let mut in_flight: BTreeMap<i32, usize> = BTreeMap::new();
    let mut specs = Vec::new();
    for ((cur, next), size) in current.iter().zip(proposed).zip(sizes) {
        let gaining: Vec<i32> = next
            .replicas
            .iter()
            .copied()
            .filter(|r| !cur.replicas.contains(r))
            .collect();
        if gaining.iter().any(|b| {
            !usage.fits(
                *b,
                added.get(b).copied().unwrap_or(0) + size,
                disk_threshold,
            )
        }) {
            continue;
        }
        let changed: Vec<i32> = next
            .replicas
            .iter()
            .filter(|r| !cur.replicas.contains(r))
            .chain(cur.replicas.iter().filter(|r| !next.replicas.contains(r)))
            .copied()
            .collect();
        if changed.is_empty() {
            continue;
        }
        if changed
            .iter()
            .any(|b| in_flight.get(b).copied().unwrap_or(0) >= max_moves)
        {
            continue;
        }
        for b in changed {
            *in_flight.entry(b).or_default() += 1;
        }
        for b in gaining {
            *added.entry(b).or_default() += size;
        }
        specs.push(ReassignmentSpec {
            topic: next.topic,
            partition: next.partition,
            replicas: Some(next.replicas),
        });
    }
    if specs.is_empty() {
        return Vec::new();
    }
    alter_reassignments(image, &specs, default_min_isr)
        .map(|(records, _)| records)
        .unwrap_or_default()
}

/// `continuous` mode's first goal: the replicas of `gone` (brokers
/// unavailable for longer than `balancer.node.unavailable.timeout.ms`, as
/// the active controller measured) move to available brokers, each
/// replaced in place by the available broker not yet a replica on the rack
/// the fewest of the partition's other replicas use, then holding the
/// fewest replicas (moves in flight counted), then the lowest id; at most
/// `max_moves` moves in flight per broker gaining a replica. Partitions
/// already moving are left to finish; a broker the move would take over
/// `disk_threshold` percent (by `usage`) is not chosen. The records of the
/// moves to start now, or none.
pub fn unavailable_moves(
    image: &ClusterImage,
    gone: &[i32],
    max_moves: usize,
    default_min_isr: usize,
    usage: &UsageReport,
    disk_threshold: u8,
) -> Vec<pb::MetadataRecord> {
    if gone.is_empty() || max_moves == 0 {
        return Vec::new();
    }
    let brokers = available(image);
    let rack = |id: i32| image.broker(id).and_then(|b| b.rack.clone());
    let mut load: BTreeMap<i32, usize> = brokers.iter().map(|(id, _)| (*id, 0)).collect();
    let mut in_flight: BTreeMap<i32, usize> = BTreeMap::new();
    for (_, _, s) in image.all_partitions() {
        for r in &s.replicas {
            if let Some(n) = load.get_mut(r) {
                *n += 1;
            }
        }
        for a in &s.adding {
            *in_flight.entry(*a).or_default() += 1;
        }
    }
    let mut added: BTreeMap<i32, u64> = BTreeMap::new();
    let mut specs = Vec::new();
    for (topic, p, s) in image.all_partitions() {
        if s.is_reassigning() || !s.replicas.iter().any(|r| gone.contains(r)) {
            continue;
        }
        let size = usage.bytes(topic.id, p);
        let mut target = s.replicas.clone();
        let mut ok = true;
        for slot in 0..target.len() {
            if !gone.contains(&target[slot]) {
                continue;
            }
            let others: Vec<Option<String>> = target
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != slot)
                .map(|(_, r)| rack(*r))
                .collect();
            let pick = brokers
                .iter()
                .filter(|(id, _)| {
                    !target.contains(id)
                        && in_flight.get(id).copied().unwrap_or(0) < max_moves
                        && usage.fits(
                            *id,
                            added.get(id).copied().unwrap_or(0) + size,
                            disk_threshold,
                        )
                })
                .min_by_key(|(id, r)| {
                    let shared = r.as_ref().map_or(0, |r| {
                        others.iter().filter(|o| o.as_ref() == Some(r)).count()
                    });
                    (shared, load.get(id).copied().unwrap_or(0), *id)
                })
                .map(|(id, _)| *id);
            match pick {
                Some(b) => {
                    target[slot] = b;
                    *load.entry(b).or_default() += 1;
                    *in_flight.entry(b).or_default() += 1;
                    *added.entry(b).or_default() += size;
                }
                None => ok = false,
            }
        }
        if ok {
            specs.push(ReassignmentSpec {
                topic: topic.name.clone(),
                partition: p,
                replicas: Some(target),
            });
        }
    }
    if specs.is_empty() {
        return Vec::new();
    }
    alter_reassignments(image, &specs, default_min_isr)
        .map(|(records, _)| records)
        .unwrap_or_default()
}

/// How many of `replicas` other than the one at `slot` are on `rack`.
fn sharing(image: &ClusterImage, replicas: &[i32], slot: usize, rack: Option<&String>) -> usize {
    let Some(rack) = rack else {
        return 0;
    };
    replicas
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            *i != slot && image.broker(**r).and_then(|b| b.rack.as_ref()) == Some(rack)
        })
        .count()
}

/// The disk use of each available broker with a disk report, as it will
/// be once what the image already decided has happened on disk: bytes of
/// replicas the broker still reports but no longer keeps (being removed, or
/// moved away or deleted and not yet gone from its last report) count as
/// freed; bytes of partitions it keeps but has not copied yet (being added,
/// or a report older than the move's completion) count as used. For a
/// broker whose replica sizes are not in `usage`, a replica being added
/// counts with the partition's whole size and one being removed as freed.
fn projected_disks(
    image: &ClusterImage,
    usage: &UsageReport,
    brokers: &[(i32, Option<String>)],
) -> BTreeMap<i32, DiskUsage> {
    let mut disks: BTreeMap<i32, DiskUsage> = brokers
        .iter()
        .filter_map(|(id, _)| Some((*id, *usage.disks.get(id)?)))
        .collect();
    let mut keeps: BTreeMap<i32, std::collections::BTreeSet<(Uuid, i32)>> = BTreeMap::new();
    for (t, p, s) in image.all_partitions() {
        let size = usage.bytes(t.id, p);
        for b in s.replicas.iter().filter(|r| !s.removing.contains(r)) {
            keeps.entry(*b).or_default().insert((t.id, p));
            let Some(d) = disks.get_mut(b) else { continue };
            let missing = match usage.replica_bytes.get(b) {
                Some(held) => size.saturating_sub(held.get(&(t.id, p)).copied().unwrap_or(0)),
                None if s.adding.contains(b) => size,
                None => 0,
            };
            d.used_bytes = d.used_bytes.saturating_add(missing);
        }
        for b in &s.removing {
            if usage.replica_bytes.contains_key(b) {
                continue;
            }
            if let Some(d) = disks.get_mut(b) {
                d.used_bytes = d.used_bytes.saturating_sub(size);
            }
        }
    }
    for (b, held) in &usage.replica_bytes {
        let Some(d) = disks.get_mut(b) else { continue };
        let kept = keeps.get(b);
        let leaving: u64 = held
            .iter()
            .filter(|(key, _)| kept.is_none_or(|k| !k.contains(*key)))
            .map(|(_, bytes)| *bytes)
            .sum();
        d.used_bytes = d.used_bytes.saturating_sub(leaving);
    }
    disks
}

/// A partition the disk goal may move off a broker over the threshold.
#[derive(Debug, Clone)]
struct DiskCandidate<'a> {
    size: u64,
    topic: &'a str,
    partition: i32,
    /// The replicas with the target in the full broker's place.
    next: Vec<i32>,
    target: i32,
}

/// `continuous` mode's disk goal: for each available broker whose disk is
/// over `threshold` percent (fullest first, by [`projected_disks`]: moves
/// decided but not yet visible in the reports count as done), replicas move
/// off it until it is projected at or under the threshold, moving as little
/// data as possible: the smallest partition whose move alone brings the
/// broker under the threshold, or, when none is that large, the largest
/// one, then again (ties: topic name, then partition). Candidates are
/// partitions of known non-zero size it is a replica of, not moving, that
/// have a target: the available broker with the most free space that is
/// not yet a replica, that the partition's size keeps at or under the
/// threshold, and whose rack the partition's other replicas use no more
/// than the full broker's (rack spread kept). The broker is replaced in
/// place. At most `max_moves` moves involve each broker (the gaining and
/// the losing one), moves in flight counted. Brokers without a disk report
/// are neither sources nor targets. The records of the moves to start now,
/// or none.
pub fn disk_moves(
    image: &ClusterImage,
    usage: &UsageReport,
    threshold: u8,
    max_moves: usize,
    default_min_isr: usize,
) -> Vec<pb::MetadataRecord> {
    if max_moves == 0 {
        return Vec::new();
    }
    let brokers = available(image);
    let mut disks = projected_disks(image, usage, &brokers);
    let mut in_flight: BTreeMap<i32, usize> = BTreeMap::new();
    for (_, _, s) in image.all_partitions() {
        for r in s.adding.iter().chain(&s.removing) {
            *in_flight.entry(*r).or_default() += 1;
        }
    }
    let mut full: Vec<(i32, DiskUsage)> = disks
        .iter()
        .filter(|(_, d)| d.over(threshold))
        .map(|(id, d)| (*id, *d))
        .collect();
    full.sort_by(|a, b| b.1.percent().total_cmp(&a.1.percent()).then(a.0.cmp(&b.0)));
    let mut taken = std::collections::BTreeSet::new();
    let mut specs = Vec::new();
    for (source, _) in full {
        let source_rack = image.broker(source).and_then(|b| b.rack.as_ref());
        while let Some(disk) = disks.get(&source).copied() {
            if !disk.over(threshold) || in_flight.get(&source).copied().unwrap_or(0) >= max_moves {
                break;
            }
            // Bytes to free to be at or under the threshold.
            let allowed = u128::from(threshold) * u128::from(disk.total_bytes) / 100;
            let need = u64::try_from(u128::from(disk.used_bytes).saturating_sub(allowed))
                .unwrap_or(u64::MAX);
            let mut candidates: Vec<DiskCandidate<'_>> = Vec::new();
            for (t, p, s) in image.all_partitions() {
                let size = usage.bytes(t.id, p);
                if size == 0
                    || s.is_reassigning()
                    || taken.contains(&(t.name.as_str(), p))
                    || !s.replicas.contains(&source)
                {
                    continue;
                }
                let Some(slot) = s.replicas.iter().position(|r| *r == source) else {
                    continue;
                };
                let spread = sharing(image, &s.replicas, slot, source_rack);
                let pick = brokers
                    .iter()
                    .filter(|(id, rack)| {
                        !s.replicas.contains(id)
                            && in_flight.get(id).copied().unwrap_or(0) < max_moves
                            && disks.get(id).is_some_and(|d| d.fits(size, threshold))
                            && sharing(image, &s.replicas, slot, rack.as_ref()) <= spread
                    })
                    .max_by_key(|(id, _)| {
                        (
                            disks.get(id).map_or(0, DiskUsage::free),
                            std::cmp::Reverse(*id),
                        )
                    })
                    .map(|(id, _)| *id);
                if let Some(target) = pick {
                    let mut next = s.replicas.clone();
                    next[slot] = target;
                    candidates.push(DiskCandidate {
                        size,
                        topic: t.name.as_str(),
                        partition: p,
                        next,
                        target,
                    });
                }
            }
            let by_name = |a: &DiskCandidate<'_>, b: &DiskCandidate<'_>| {
                a.topic.cmp(b.topic).then(a.partition.cmp(&b.partition))
            };
            let enough = candidates
                .iter()
                .filter(|c| c.size >= need)
                .min_by(|a, b| a.size.cmp(&b.size).then(by_name(a, b)));
            let chosen = enough.or_else(|| {
                candidates
                    .iter()
                    .max_by(|a, b| a.size.cmp(&b.size).then(by_name(b, a)))
            });
            let Some(c) = chosen.cloned() else {
                break;
            };
            if let Some(d) = disks.get_mut(&source) {
                d.used_bytes = d.used_bytes.saturating_sub(c.size);
            }
            if let Some(d) = disks.get_mut(&c.target) {
                d.used_bytes = d.used_bytes.saturating_add(c.size);
            }
            *in_flight.entry(source).or_default() += 1;
            *in_flight.entry(c.target).or_default() += 1;
            taken.insert((c.topic, c.partition));
            specs.push(ReassignmentSpec {
                topic: c.topic.to_owned(),
                partition: c.partition,
                replicas: Some(c.next),
            });
        }
    }
    if specs.is_empty() {
        return Vec::new();
    }
    alter_reassignments(image, &specs, default_min_isr)
        .map(|(records, _)| records)
        .unwrap_or_default()
}

/// The leaders-per-broker goal (see the module doc): partitions whose
/// leader is the available broker with the most leaders get, while some
/// available broker in their ISR leads at least two fewer, that broker
/// (the one leading fewest, then the lowest id) as leader, first in their
/// replica list. One record per partition; none while any reassignment is
/// in progress, or when leader counts differ by at most one.
pub fn leader_moves(image: &ClusterImage) -> Vec<pb::MetadataRecord> {
    let view = balancer_view(image);
    if view.moving > 0 {
        return Vec::new();
    }
    let mut leaders: BTreeMap<i32, usize> = view.replicas.keys().map(|b| (*b, 0)).collect();
    for (_, _, s) in image.all_partitions() {
        if let Some(n) = leaders.get_mut(&s.leader) {
            *n += 1;
        }
    }
    let mut changed: BTreeMap<(Uuid, i32), crate::image::PartitionState> = BTreeMap::new();
    loop {
        let mut busiest: Vec<(i32, usize)> = leaders.iter().map(|(b, n)| (*b, *n)).collect();
        busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut moved = false;
        for (from, count) in busiest {
            // The partition `from` leads with the idlest eligible follower.
            let best = image
                .all_partitions()
                .filter(|(t, p, s)| s.leader == from && !changed.contains_key(&(t.id, *p)))
                .filter_map(|(t, p, s)| {
                    let to = s
                        .isr
                        .iter()
                        .filter(|r| **r != from)
                        .filter_map(|r| Some((*r, *leaders.get(r)?)))
                        .filter(|(_, n)| n + 2 <= count)
                        .min_by_key(|(r, n)| (*n, *r))?;
                    Some((to, t.id, p, s))
                })
                .min_by_key(|((to, n), id, p, _)| (*n, *to, *id, *p));
            let Some(((to, _), id, p, s)) = best else {
                continue;
            };
            let mut next = s.clone();
            next.replicas.retain(|r| *r != to);
            next.replicas.insert(0, to);
            next.leader = to;
            changed.insert((id, p), next);
            *leaders.entry(from).or_default() -= 1;
            *leaders.entry(to).or_default() += 1;
            moved = true;
            break;
        }
        if !moved {
            break;
        }
    }
    changed
        .into_iter()
        .filter_map(|((id, p), next)| {
            let cur = image.partition(&id, p)?;
            crate::reassignment::change_record(id, p, cur, &next)
        })
        .collect()
}

/// A partition (topic id, index) with its size in bytes.
type PartitionSize = ((Uuid, i32), u64);

/// Bytes of the partitions each available broker holds, by `usage`.
fn broker_bytes(image: &ClusterImage, usage: &UsageReport) -> BTreeMap<i32, u64> {
    let mut bytes: BTreeMap<i32, u64> = available(image).into_iter().map(|(b, _)| (b, 0)).collect();
    for (t, p, s) in image.all_partitions() {
        let size = usage.bytes(t.id, p);
        for r in &s.replicas {
            if let Some(n) = bytes.get_mut(r) {
                *n += size;
            }
        }
    }
    bytes
}

/// The disk usage per broker goal (see the module doc): the records of the
/// moves to start now, at most `max_moves` per broker, or none. Nothing
/// while a reassignment is in progress, or while the available brokers'
/// partition bytes differ by at most [`DISK_BALANCE_TOLERANCE_PERCENT`] of
/// their average or [`DISK_BALANCE_MIN_BYTES`], whichever is more.
pub fn disk_balance_moves(
    image: &ClusterImage,
    usage: &UsageReport,
    disk_threshold: u8,
    max_moves: usize,
    default_min_isr: usize,
) -> Vec<pb::MetadataRecord> {
    let view = balancer_view(image);
    if view.moving > 0 || max_moves == 0 || view.replicas.len() < 2 {
        return Vec::new();
    }
    let mut bytes = broker_bytes(image, usage);
    let mut counts = view.replicas.clone();
    let tolerance =
        (bytes.values().sum::<u64>() / bytes.len() as u64 * DISK_BALANCE_TOLERANCE_PERCENT / 100)
            .max(DISK_BALANCE_MIN_BYTES);
    let mut replicas: BTreeMap<(Uuid, i32), (String, Vec<i32>)> = image
        .all_partitions()
        .filter(|(_, _, s)| s.replicas.iter().all(|r| counts.contains_key(r)))
        .map(|(t, p, s)| ((t.id, p), (t.name.clone(), s.replicas.clone())))
        .collect();
    let mut in_flight: BTreeMap<i32, usize> = BTreeMap::new();
    let mut added: BTreeMap<i32, u64> = BTreeMap::new();
    let mut moved: std::collections::BTreeSet<(Uuid, i32)> = std::collections::BTreeSet::new();
    let rack = |b: i32| image.broker(b).and_then(|b| b.rack.clone());
    // Moving `key`'s replica from `from` to `to` keeps its rack spread.
    let keeps_racks = |replicas: &[i32], from: i32, to: i32| {
        let slot = replicas.iter().position(|r| *r == from);
        slot.is_some_and(|slot| {
            sharing(image, replicas, slot, rack(to).as_ref())
                <= sharing(image, replicas, slot, rack(from).as_ref())
        })
    };
    loop {
        let mut order: Vec<(i32, u64)> = bytes.iter().map(|(b, n)| (*b, *n)).collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut action = None;
        'pairs: for (heavy, hb) in &order {
            for (light, lb) in order.iter().rev() {
                if lb >= hb || hb - lb <= tolerance {
                    break;
                }
                if in_flight.get(heavy).copied().unwrap_or(0) >= max_moves
                    || in_flight.get(light).copied().unwrap_or(0) >= max_moves
                {
                    continue;
                }
                let spread = hb - lb;
                // Replicas that may leave `from` for `to`, with their sizes.
                let movable = |from: i32, to: i32| -> Vec<PartitionSize> {
                    replicas
                        .iter()
                        .filter(|(key, (_, r))| {
                            !moved.contains(key)
                                && r.contains(&from)
                                && !r.contains(&to)
                                && keeps_racks(r, from, to)
                        })
                        .map(|(key, _)| (*key, usage.bytes(key.0, key.1)))
                        .collect()
                };
                let out = movable(*heavy, *light);
                let back = movable(*light, *heavy);
                let one_way = counts.get(light) < counts.get(heavy);
                let light_fits = |net: u64| {
                    usage.fits(
                        *light,
                        added.get(light).copied().unwrap_or(0) + net,
                        disk_threshold,
                    )
                };
                // (distance from the ideal, moving out, moving back)
                let mut best: Option<(u64, PartitionSize, Option<PartitionSize>)> = None;
                let mut consider = |d: u64, o: PartitionSize, b: Option<PartitionSize>| {
                    // The pair's new difference is |spread - 2d|: at
                    // least a tenth narrower than now.
                    let after = spread.abs_diff(2 * d);
                    if d == 0 || spread - after.min(spread) < spread.div_ceil(10) || !light_fits(d)
                    {
                        return;
                    }
                    if best.as_ref().is_none_or(|(a, ..)| after < *a) {
                        best = Some((after, o, b));
                    }
                };
                for o in &out {
                    if one_way {
                        consider(o.1, *o, None);
                    }
                    for b in &back {
                        if b.1 < o.1 {
                            consider(o.1 - b.1, *o, Some(*b));
                        }
                    }
                }
                if let Some((_, o, b)) = best {
                    action = Some((*heavy, *light, o, b));
                    break 'pairs;
                }
            }
        }
        let Some((heavy, light, out, back)) = action else {
            break;
        };
        let mut shift = |key: (Uuid, i32), size: u64, from: i32, to: i32| {
            if let Some((_, r)) = replicas.get_mut(&key) {
                for slot in r.iter_mut().filter(|b| **b == from) {
                    *slot = to;
                }
            }
            moved.insert(key);
            if let Some(n) = bytes.get_mut(&from) {
                *n = n.saturating_sub(size);
            }
            *bytes.entry(to).or_default() += size;
            *added.entry(to).or_default() += size;
            if let Some(n) = counts.get_mut(&from) {
                *n = n.saturating_sub(1);
            }
            *counts.entry(to).or_default() += 1;
        };
        shift(out.0, out.1, heavy, light);
        if let Some(b) = back {
            shift(b.0, b.1, light, heavy);
        }
        *in_flight.entry(heavy).or_default() += 1;
        *in_flight.entry(light).or_default() += 1;
    }
    let specs: Vec<ReassignmentSpec> = moved
        .iter()
        .filter_map(|key| {
            let (topic, r) = replicas.get(key)?;
            Some(ReassignmentSpec {
                topic: topic.clone(),
                partition: key.1,
                replicas: Some(r.clone()),
            })
        })
        .collect();
    if specs.is_empty() {
        return Vec::new();
    }
    alter_reassignments(image, &specs, default_min_isr)
        .map(|(records, _)| records)
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "balancer_test.rs"]
mod tests;
