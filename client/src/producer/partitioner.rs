//! Which partition a record goes to, exactly as Kafka's default partitioner
//! decides: records with a key go to `toPositive(murmur2(key)) %
//! partitions` (so the same key lands on the same partition as with the
//! Java client); records without a key stick to one partition until its
//! batch is closed (filled up or sent), then move to another, chosen at
//! random among the partitions that have a leader (KIP-480's sticky
//! partitioner), which fills batches faster than round robin.

use std::collections::HashMap;

use rand::Rng;

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed `0x9747b28c`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h = SEED ^ length as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which would
/// overflow on `i32::MIN`).
pub fn to_positive(number: i32) -> i32 {
    number & 0x7fff_ffff
}

/// The partition of a record with `key` among `partitions` (> 0) partitions.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    debug_assert!(partitions > 0);
    (to_positive(murmur2(key)) as usize % partitions.max(1)) as i32
}

/// The partition a topic's keyless records stick to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sticky {
    partition: i32,
    /// The batch the last keyless record joined; `None` until one did.
    batch: Option<u64>,
}

/// The sticky choice for records without a key, per topic.
#[derive(Debug)]
pub(crate) struct StickyPartitioner<R> {
    sticky: HashMap<String, Sticky>,
    rng: R,
}

impl<R: Rng> StickyPartitioner<R> {
    pub(crate) fn new(rng: R) -> Self {
        Self {
            sticky: HashMap::new(),
            rng,
        }
    }

    /// The partition for a keyless record of `topic`. `open_batch(p)` tells
    /// the id of partition `p`'s batch that is still open and has room for
    /// the record. The current sticky partition is kept while the batch its
    /// records joined is still that open batch; otherwise a new one is drawn
    /// from `available` (partitions with a leader; all of them when none
    /// has), avoiding the previous one when there is a choice.
    pub(crate) fn partition(
        &mut self,
        topic: &str,
        partitions: usize,
        available: impl FnOnce() -> Vec<i32>,
        open_batch: impl Fn(i32) -> Option<u64>,
    ) -> i32 {
        let previous = self.sticky.get(topic).copied();
        if let Some(sticky) = previous
            && (sticky.partition as usize) < partitions
        {
            match sticky.batch {
                None => return sticky.partition,
                Some(batch) if open_batch(sticky.partition) == Some(batch) => {
                    return sticky.partition;
                }
                Some(_) => {}
            }
        }
        let mut candidates = available();
        if candidates.is_empty() {
            candidates = (0..partitions as i32).collect();
        }
        let previous = previous.map(|s| s.partition);
        let partition = match candidates.as_slice() {
            [] => 0,
            [only] => *only,
            _ => loop {
                let pick = candidates[self.rng.gen_range(0..candidates.len())];
                if Some(pick) != previous {
                    break pick;
                }
            },
        };
        self.sticky.insert(
            topic.to_owned(),
            Sticky {
                partition,
                batch: None,
            },
        );
        partition
    }

    /// Records that a keyless record of `topic` joined batch `batch` of
    /// `partition`.
    pub(crate) fn on_append(&mut self, topic: &str, partition: i32, batch: u64) {
        if let Some(sticky) = self.sticky.get_mut(topic)
            && sticky.partition == partition
        {
            sticky.batch = Some(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn murmur2_matches_kafkas_test_vectors() {
        // From Kafka's UtilsTest.testMurmur2.
        let table: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, want) in table {
            assert_eq!(
                murmur2(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        let table = [
            (0, 0),
            (1, 1),
            (-1, i32::MAX),
            (i32::MIN, 0),
            (i32::MAX, i32::MAX),
            (-973_932_308, 1_173_551_340),
        ];
        for (input, want) in table {
            assert_eq!(to_positive(input), want, "{input}");
        }
    }

    #[test]
    fn keys_map_to_the_java_clients_partition() {
        // toPositive(murmur2(key)) % n, computed from the vectors above.
        let table: &[(&[u8], usize, i32)] = &[
            (b"21", 3, 1_173_551_340 % 3),
            (b"foobar", 10, (-790_332_482i32 & 0x7fff_ffff) % 10),
            (b"abc", 7, 479_470_107 % 7),
            (b"abc", 1, 0),
        ];
        for (key, partitions, want) in table {
            assert_eq!(partition_for_key(key, *partitions), *want);
        }
    }

    fn partitioner(seed: u64) -> StickyPartitioner<StdRng> {
        StickyPartitioner::new(StdRng::seed_from_u64(seed))
    }

    #[test]
    fn keyless_records_stick_while_their_batch_is_open() {
        let mut sticky = partitioner(1);
        let available = [0, 1, 2, 3];
        let first = sticky.partition("t", 4, || available.to_vec(), |_| None);
        // Nothing appended yet: stays.
        assert_eq!(
            sticky.partition("t", 4, || available.to_vec(), |_| None),
            first
        );
        sticky.on_append("t", first, 10);
        for _ in 0..5 {
            let p = sticky.partition(
                "t",
                4,
                || available.to_vec(),
                |p| (p == first).then_some(10),
            );
            assert_eq!(p, first);
        }
        // The batch was closed (full or sent): a different partition.
        let next = sticky.partition("t", 4, || available.to_vec(), |_| None);
        assert_ne!(next, first);
        sticky.on_append("t", next, 11);
        // The batch id changed under us (a new batch): move on again.
        let third = sticky.partition("t", 4, || available.to_vec(), |p| (p == next).then_some(12));
        assert_ne!(third, next);
    }

    #[test]
    fn keyless_records_prefer_partitions_with_a_leader() {
        let mut sticky = partitioner(7);
        for i in 0..50u64 {
            let p = sticky.partition("t", 6, || vec![2, 5], |_| None);
            assert!(p == 2 || p == 5, "{p}");
            sticky.on_append("t", p, i);
        }
        // No partition has a leader: any partition.
        let p = sticky.partition("u", 3, Vec::new, |_| None);
        assert!((0..3).contains(&p));
        // One partition: always it.
        let mut single = partitioner(3);
        for i in 0..5 {
            assert_eq!(single.partition("s", 1, || vec![0], |_| None), 0);
            single.on_append("s", 0, i);
        }
    }

    #[test]
    fn sticky_partition_is_redrawn_when_the_topic_shrank_in_metadata() {
        let mut sticky = partitioner(5);
        let available: Vec<i32> = (0..8).collect();
        let mut p = sticky.partition("t", 8, || available.to_vec(), |_| None);
        while p < 4 {
            sticky.on_append("t", p, 1);
            p = sticky.partition("t", 8, || available.to_vec(), |_| None);
        }
        let q = sticky.partition("t", 4, || vec![0, 1, 2, 3], |_| Some(1));
        assert!(q < 4);
    }
}
