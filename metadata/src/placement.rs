//! Replica placement: which brokers host the replicas of new partitions.
//!
//! Greedy and load-aware, in three phases. Every count below is the load
//! already in the cluster (`current_load`) plus what this call placed so far.
//!
//! 1. Leaders: each partition's first replica is the broker with the fewest
//!    leaders, then the fewest replicas, then the rack with the fewest
//!    leaders per broker, then a seeded rotation. Its replica is counted at
//!    once, so the followers fill in around the leaders.
//! 2. Followers, partition by partition: among brokers not yet in the
//!    partition, one whose rack holds the fewest replicas of this partition
//!    (racks are distinct when there are at least as many racks as
//!    replicas, and spread evenly otherwise), then the fewest replicas, then
//!    the rack with the fewest replicas per broker, then the most leaders
//!    (so replicas - leaders evens out too), for the first follower the
//!    fewest times second after this leader, then the fewest partitions
//!    shared with the replicas already chosen (a broker's followers spread
//!    over the cluster), then the seeded rotation. The follower that least
//!    often came second after this leader goes second: the second replica is
//!    where leadership moves when the leader fails.
//! 3. Repair: greedy choices can corner themselves (the last partitions only
//!    find busier brokers on allowed racks). While a broker hosts two
//!    replicas more than another, follower slots move along a shortest chain
//!    of swaps that keeps every partition's replicas distinct and its rack
//!    spread no worse. Leaders never move.
//!
//! Brokers without a rack count as a rack of their own each. See
//! docs/metadata.md for how it compares to Kafka's algorithm.

use std::collections::BTreeMap;

use crate::error::{Result, bail};
use crate::image::ClusterImage;

/// How loaded a broker is: replicas hosted and partitions led.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerLoad {
    /// Partitions this broker is a replica of.
    pub replicas: u64,
    /// Partitions whose preferred leader (first replica) this broker is.
    pub leaders: u64,
}

/// The load of every broker that hosts a replica in `image`. Leaders are
/// counted by preferred leader (first replica): that is where leadership
/// returns after a preferred election, so it is what placement balances.
pub fn broker_loads(image: &ClusterImage) -> BTreeMap<i32, BrokerLoad> {
    let mut loads: BTreeMap<i32, BrokerLoad> = BTreeMap::new();
    for (_, _, state) in image.all_partitions() {
        for (i, r) in state.replicas.iter().enumerate() {
            let l = loads.entry(*r).or_default();
            l.replicas += 1;
            if i == 0 {
                l.leaders += 1;
            }
        }
    }
    loads
}

/// Chooses replicas for `num_partitions` new partitions numbered from
/// `first_partition`, `replication_factor` each, over `brokers` (alive broker
/// ids with their racks). `current_load` is the existing load per broker
/// (missing brokers count as empty); `seed` breaks ties, so the result is a
/// pure function of the arguments. The first replica of each partition is
/// its preferred leader.
pub fn assign_replicas(
    brokers: &[(i32, Option<String>)],
    num_partitions: i32,
    replication_factor: i32,
    first_partition: i32,
    current_load: &BTreeMap<i32, BrokerLoad>,
    seed: u64,
) -> Result<Vec<Vec<i32>>> {
    if num_partitions < 1 {
        bail!(
            InvalidPartitions,
            "number of partitions must be at least 1, got {num_partitions}"
        );
    }
    if replication_factor < 1 || replication_factor as usize > brokers.len() {
        bail!(
            InvalidReplicationFactor,
            "replication factor {replication_factor} is not between 1 and the {} available brokers",
            brokers.len()
        );
    }
    let mut sorted: Vec<(i32, Option<&str>)> = brokers
        .iter()
        .map(|(id, rack)| (*id, rack.as_deref()))
        .collect();
    sorted.sort();
    if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!(InvalidRequest, "broker {} is listed twice", w[0].0);
    }
    let n = sorted.len();
    let rf = replication_factor as usize;

    // Rack index per broker: named racks share an index, rackless brokers get their own.
    let mut rack_ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rack_of = Vec::with_capacity(n);
    let mut next_rack = 0;
    for (_, rack) in &sorted {
        let idx = match rack {
            Some(r) => *rack_ids.entry(r).or_insert_with(|| {
                next_rack += 1;
                next_rack - 1
            }),
            None => {
                next_rack += 1;
                next_rack - 1
            }
        };
        rack_of.push(idx);
    }

    let mut leaders: Vec<u64> = sorted
        .iter()
        .map(|(id, _)| current_load.get(id).map_or(0, |l| l.leaders))
        .collect();
    let mut replicas: Vec<u64> = sorted
        .iter()
        .map(|(id, _)| current_load.get(id).map_or(0, |l| l.replicas))
        .collect();
    // Partitions shared by each pair of brokers, within this call.
    let mut shared = vec![0u32; n * n];
    // How often broker j was the second replica of a partition led by i.
    let mut successor = vec![0u32; n * n];
    let start = (splitmix64(seed) % n as u64) as usize;

    // Seeded rotation: the position of broker i in partition p's tie-break order.
    let rotation = |p: i64, i: usize| {
        let offset = (start as i64 + p).rem_euclid(n as i64) as usize;
        (i + n - offset) % n
    };
    let partition_ids = (0..num_partitions).map(|k| i64::from(first_partition) + i64::from(k));

    // Per rack: size, and replicas and leaders hosted (scaled by the rack
    // size so that racks of different sizes compare fairly).
    let mut rack_size = vec![0u64; next_rack];
    let mut rack_replicas = vec![0u64; next_rack];
    let mut rack_leaders = vec![0u64; next_rack];
    for i in 0..n {
        rack_size[rack_of[i]] += 1;
        rack_replicas[rack_of[i]] += replicas[i];
        rack_leaders[rack_of[i]] += leaders[i];
    }
    let per_broker = |total: u64, rack: usize| total * 1_000_000 / rack_size[rack];

    // Phase 1: every partition's leader, fewest leaders first. Its replica is
    // counted at once, so followers (phase 2) fill around the leaders.
    let mut out: Vec<Vec<usize>> = Vec::with_capacity(num_partitions as usize);
    for p in partition_ids.clone() {
        let leader = (0..n)
            .min_by_key(|&i| {
                let rack = rack_of[i];
                (
                    leaders[i],
                    replicas[i],
                    per_broker(rack_leaders[rack], rack),
                    rotation(p, i),
                )
            })
            .expect("at least one broker");
        leaders[leader] += 1;
        replicas[leader] += 1;
        rack_leaders[rack_of[leader]] += 1;
        rack_replicas[rack_of[leader]] += 1;
        out.push(vec![leader]);
    }

    // Phase 2: followers, rack-spread first, then fewest replicas, then
    // fewest partitions shared with the replicas already chosen.
    let mut in_partition = vec![false; n];
    let mut rack_use = vec![0u32; next_rack];
    for (chosen, p) in out.iter_mut().zip(partition_ids) {
        let leader = chosen[0];
        in_partition[leader] = true;
        rack_use[rack_of[leader]] += 1;
        while chosen.len() < rf {
            let next = (0..n)
                .filter(|&i| !in_partition[i])
                .min_by_key(|&i| {
                    let rack = rack_of[i];
                    let pairs: u32 = chosen.iter().map(|&c| shared[c * n + i]).sum();
                    let second = if chosen.len() == 1 {
                        successor[leader * n + i]
                    } else {
                        0
                    };
                    (
                        rack_use[rack],
                        replicas[i],
                        per_broker(rack_replicas[rack], rack),
                        std::cmp::Reverse(leaders[i]),
                        second,
                        pairs,
                        rotation(p, i),
                    )
                })
                .expect("replication factor is at most the broker count");
            chosen.push(next);
            replicas[next] += 1;
            rack_replicas[rack_of[next]] += 1;
            in_partition[next] = true;
            rack_use[rack_of[next]] += 1;
        }
        // The second replica takes over when the leader fails: make it the
        // follower that has least often been this leader's second.
        if let Some(second) = (1..chosen.len())
            .min_by_key(|&x| (successor[leader * n + chosen[x]], rotation(p, chosen[x])))
        {
            chosen.swap(1, second);
            successor[leader * n + chosen[1]] += 1;
        }
        for (x, &a) in chosen.iter().enumerate() {
            in_partition[a] = false;
            rack_use[rack_of[a]] -= 1;
            for &b in &chosen[x + 1..] {
                shared[a * n + b] += 1;
                shared[b * n + a] += 1;
            }
        }
    }
    rebalance_followers(&mut out, &mut replicas, &rack_of);
    let out = out
        .into_iter()
        .map(|c| c.into_iter().map(|i| sorted[i].0).collect())
        .collect();
    Ok(out)
}

/// Phase 3: greedy choices can paint themselves into a corner (the last
/// partitions find only busier brokers on allowed racks). While some broker
/// hosts at least two replicas more than another, move follower slots along
/// a shortest chain: `lo` takes a slot from `b1`, `b1` takes one from `b2`,
/// ... up to a broker with at least two more replicas than `lo`. Every move
/// keeps the partition's replicas distinct and its rack spread no worse;
/// leaders never move. Each chain lowers the sum of squared counts, so this
/// ends; it stops when no chain exists (e.g. a new broker already holds a
/// replica of every new partition).
fn rebalance_followers(out: &mut [Vec<usize>], replicas: &mut [u64], rack_of: &[usize]) {
    let n = replicas.len();
    let mut failed = vec![false; n];
    loop {
        let max = *replicas.iter().max().expect("at least one broker");
        let mut candidates: Vec<usize> = (0..n)
            .filter(|&i| !failed[i] && replicas[i] + 2 <= max)
            .collect();
        candidates.sort_by_key(|&i| (replicas[i], i));
        let Some(&lo) = candidates.first() else {
            return;
        };
        match find_chain(out, replicas, rack_of, lo) {
            Some(chain) if apply_chain(out, rack_of, lo, &chain) => {
                let hi = chain.last().expect("non-empty chain").2;
                replicas[lo] += 1;
                replicas[hi] -= 1;
                failed.iter_mut().for_each(|f| *f = false);
            }
            _ => failed[lo] = true,
        }
    }
}

/// One move of a chain: (partition, slot, broker giving the slot up); the
/// taker is the previous giver (or `lo` for the first move).
type Move = (usize, usize, usize);

/// Breadth-first search for the shortest chain from `lo` to a broker with at
/// least two replicas more.
fn find_chain(
    out: &[Vec<usize>],
    replicas: &[u64],
    rack_of: &[usize],
    lo: usize,
) -> Option<Vec<Move>> {
    let n = replicas.len();
    let mut slots_of: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (p, chosen) in out.iter().enumerate() {
        for (s, &b) in chosen.iter().enumerate().skip(1) {
            slots_of[b].push((p, s));
        }
    }
    let mut prev: Vec<Option<(usize, usize, usize)>> = vec![None; n];
    let mut seen = vec![false; n];
    seen[lo] = true;
    let mut queue = std::collections::VecDeque::from([lo]);
    while let Some(u) = queue.pop_front() {
        for v in 0..n {
            if seen[v] {
                continue;
            }
            let Some(&(p, s)) = slots_of[v]
                .iter()
                .find(|&&(p, s)| can_take(&out[p], rack_of, u, s))
            else {
                continue;
            };
            seen[v] = true;
            prev[v] = Some((u, p, s));
            if replicas[v] >= replicas[lo] + 2 {
                let mut chain = Vec::new();
                let mut at = v;
                while at != lo {
                    let (from, p, s) = prev[at].expect("reached through prev");
                    chain.push((p, s, at));
                    at = from;
                }
                chain.reverse();
                return Some(chain);
            }
            queue.push_back(v);
        }
    }
    None
}

/// Whether broker `u` may take slot `s` of partition `chosen`: not already a
/// replica, and its rack not more used by the other replicas than the rack
/// of the broker it replaces.
fn can_take(chosen: &[usize], rack_of: &[usize], u: usize, s: usize) -> bool {
    if chosen.contains(&u) {
        return false;
    }
    let v = chosen[s];
    let others = |rack: usize| {
        chosen
            .iter()
            .enumerate()
            .filter(|&(i, &b)| i != s && rack_of[b] == rack)
            .count()
    };
    rack_of[u] == rack_of[v] || others(rack_of[u]) <= others(rack_of[v])
}

/// Applies a chain starting at `lo`, checking every move against the state
/// the earlier moves left; undoes it and returns false if one is not allowed.
fn apply_chain(out: &mut [Vec<usize>], rack_of: &[usize], lo: usize, chain: &[Move]) -> bool {
    let mut taker = lo;
    for (k, &(p, s, giver)) in chain.iter().enumerate() {
        if out[p][s] != giver || !can_take(&out[p], rack_of, taker, s) {
            for &(p, s, giver) in chain[..k].iter().rev() {
                out[p][s] = giver;
            }
            return false;
        }
        out[p][s] = taker;
        taker = giver;
    }
    true
}

/// SplitMix64: a tiny, well-mixed hash of the seed (no randomness of its own).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
#[path = "placement_test.rs"]
mod tests;
