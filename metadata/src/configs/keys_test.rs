use std::collections::BTreeSet;

use super::*;
use crate::ErrorKind;

#[test]
fn names_are_unique_and_defaults_valid() {
    let mut names = BTreeSet::new();
    for d in TOPIC_CONFIGS {
        assert!(names.insert(d.name), "topic config {} twice", d.name);
        check_value(d.name, d.ty, d.default)
            .unwrap_or_else(|e| panic!("default of {}: {e}", d.name));
    }
    let mut names = BTreeSet::new();
    for d in BROKER_CONFIGS {
        assert!(names.insert(d.name), "broker config {} twice", d.name);
        check_value(d.name, d.ty, d.default)
            .unwrap_or_else(|e| panic!("default of {}: {e}", d.name));
    }
}

#[test]
fn a_topic_default_is_its_broker_synonyms_default() {
    for d in TOPIC_CONFIGS {
        if let Some(b) = d.broker_synonym.and_then(broker_config) {
            assert_eq!(d.default, b.default, "{} vs {}", d.name, b.name);
            assert_eq!(d.ty, b.ty, "{} vs {}", d.name, b.name);
            assert_ne!(
                b.update,
                Update::ReadOnly,
                "{}: the default of a topic config must be changeable live",
                b.name
            );
        }
    }
}

#[test]
fn values_are_checked_against_their_type() {
    use ConfigType as T;
    // (type, value, ok)
    let cases: &[(ConfigType, &str, bool)] = &[
        (T::Int { min: 1 }, "1", true),
        (T::Int { min: 1 }, " 7 ", true),
        (T::Int { min: 1 }, "0", false),
        (T::Int { min: 1 }, "2147483648", false),
        (T::Int { min: 1 }, "1.0", false),
        (T::IntRange { min: 1, max: 100 }, "1", true),
        (T::IntRange { min: 1, max: 100 }, "100", true),
        (T::IntRange { min: 1, max: 100 }, "0", false),
        (T::IntRange { min: 1, max: 100 }, "101", false),
        (T::IntRange { min: 1, max: 100 }, "80.5", false),
        (T::Long { min: -1 }, "-1", true),
        (T::Long { min: -1 }, "9223372036854775807", true),
        (T::Long { min: -1 }, "9223372036854775808", false),
        (T::Long { min: -1 }, "-2", false),
        (T::Double { min: 0.0, max: 1.0 }, "0.5", true),
        (T::Double { min: 0.0, max: 1.0 }, "1.5", false),
        (T::Double { min: 0.0, max: 1.0 }, "NaN", false),
        (T::Bool, "TRUE", true),
        (T::Bool, "yes", false),
        (T::Choice(&["a", "b"]), "b", true),
        (T::Choice(&["a", "b"]), "B", false),
        (T::List(&["x", "y"]), "x,y", true),
        (T::List(&["x", "y"]), "y", true),
        (T::List(&["x", "y"]), "", false),
        (T::List(&["x", "y"]), "x,z", false),
        (T::ThrottledReplicas, "", true),
        (T::ThrottledReplicas, "*", true),
        (T::ThrottledReplicas, "0:1,1:2", true),
        (T::ThrottledReplicas, "0-1", false),
    ];
    for (ty, value, ok) in cases {
        let r = check_value("k.name", *ty, value);
        assert_eq!(r.is_ok(), *ok, "{ty:?} {value:?}: {r:?}");
        if let Err(e) = r {
            assert_eq!(e.code, ErrorKind::InvalidConfig);
            assert!(e.message.contains("k.name"), "names the key: {e}");
        }
    }
}
