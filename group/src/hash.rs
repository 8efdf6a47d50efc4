//! Which `__consumer_offsets` partition hosts a group: Kafka's
//! `Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`, with
//! Java's `String.hashCode` over UTF-16 code units.

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over the UTF-16
/// code units, in wrapping 32-bit arithmetic.
pub fn java_string_hash_code(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Kafka's `Utils.abs`: `i32::MIN` maps to 0 (not to itself).
fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN { 0 } else { n.abs() }
}

/// The offsets-topic partition of `group_id` among `num_partitions`
/// (which must be positive).
pub fn offsets_partition_for(group_id: &str, num_partitions: i32) -> i32 {
    debug_assert!(
        num_partitions > 0,
        "offsets.topic.num.partitions is positive"
    );
    kafka_abs(java_string_hash_code(group_id)) % num_partitions.max(1)
}

#[cfg(test)]
#[path = "hash_test.rs"]
mod tests;
