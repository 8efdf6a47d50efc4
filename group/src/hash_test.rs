use super::*;

#[test]
fn hash_code_matches_java() {
    // Values computed by Java's String.hashCode.
    let cases: &[(&str, i32)] = &[
        ("", 0),
        ("a", 97),
        ("test", 3556498),
        ("hello world", 1794106052),
        ("console-consumer-12345", 158455506),
        // Outside the BMP: two UTF-16 code units.
        ("😀", 1772899),
    ];
    for (s, want) in cases {
        assert_eq!(java_string_hash_code(s), *want, "{s:?}");
    }
}

#[test]
fn partition_is_abs_hash_mod_count() {
    // "test" is the seed's example group: 3556498 % 50 = 48.
    assert_eq!(offsets_partition_for("test", 50), 48);
    assert_eq!(offsets_partition_for("a", 50), 47);
    assert_eq!(offsets_partition_for("console-consumer-12345", 50), 6);
    for g in ["x", "group-1", "orders", "Aa", "BB"] {
        let p = offsets_partition_for(g, 50);
        assert!((0..50).contains(&p));
    }
    // "Aa" and "BB" collide in Java, so they share a coordinator.
    assert_eq!(
        offsets_partition_for("Aa", 50),
        offsets_partition_for("BB", 50)
    );
    assert_eq!(kafka_abs(i32::MIN), 0);
}
