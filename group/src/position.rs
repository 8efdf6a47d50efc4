//! Where a member's read of a partition starts (`ConsumeMemberRecords`):
//! the position the client sends, else the group's committed offset, else
//! `auto.offset.reset`. Pure: the host looks up the reset offset.

/// `auto.offset.reset` of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The log start offset.
    Earliest,
    /// The high watermark (Kafka's default).
    Latest,
    /// No reset: the partition is answered with an error.
    None,
}

impl OffsetReset {
    /// Parses Kafka's names; empty is the default, `latest`. `None` for an
    /// unknown name.
    pub fn parse(name: &str) -> Option<OffsetReset> {
        match name {
            "" | "latest" => Some(OffsetReset::Latest),
            "earliest" => Some(OffsetReset::Earliest),
            "none" => Some(OffsetReset::None),
            _ => None,
        }
    }
}

/// Where to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At this offset.
    At(i64),
    /// Look up the log start offset.
    Earliest,
    /// Look up the high watermark.
    Latest,
    /// Nothing given, nothing committed, no reset.
    NoPosition,
}

/// The start of a read: `given` (the client's position), else
/// `committed`, else per `reset`.
pub fn start(given: Option<i64>, committed: Option<i64>, reset: OffsetReset) -> Start {
    match (given, committed, reset) {
        (Some(o), _, _) | (None, Some(o), _) => Start::At(o),
        (None, None, OffsetReset::Earliest) => Start::Earliest,
        (None, None, OffsetReset::Latest) => Start::Latest,
        (None, None, OffsetReset::None) => Start::NoPosition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_given_position_wins_then_the_commit_then_the_reset() {
        use OffsetReset as R;
        let cases = [
            (Some(5), Some(9), R::None, Start::At(5)),
            (None, Some(9), R::None, Start::At(9)),
            (None, None, R::Earliest, Start::Earliest),
            (None, None, R::Latest, Start::Latest),
            (None, None, R::None, Start::NoPosition),
            (Some(0), None, R::Latest, Start::At(0)),
        ];
        for (given, committed, reset, want) in cases {
            assert_eq!(
                start(given, committed, reset),
                want,
                "{given:?} {committed:?} {reset:?}"
            );
        }
        assert_eq!(OffsetReset::parse(""), Some(R::Latest));
        assert_eq!(OffsetReset::parse("earliest"), Some(R::Earliest));
        assert_eq!(OffsetReset::parse("none"), Some(R::None));
        assert_eq!(OffsetReset::parse("smallest"), None);
    }
}
