//! The Raft layer of the controller: openraft's storage, state machine and
//! network, all behind openraft's traits.
//!
//! * [`types`]: the openraft type configuration ([`Proposal`] in, [`ApplyOutcome`] out).
//! * [`store`]: the RocksDB database (log, vote, snapshot).
//! * [`log_store`]: `RaftLogStorage` over it.
//! * [`state_machine`]: `RaftStateMachine` applying batches to the image.
//! * [`feed`]: the committed image and the feed of batches for watchers.
//! * [`network`]: the gRPC client side of `RaftService`.
//! * [`service`]: the gRPC server side of `RaftService`.

pub mod feed;
pub mod log_store;
pub mod network;
pub mod service;
pub mod state_machine;
pub mod store;
pub mod types;

pub use types::{ApplyOutcome, NodeId, Proposal, Raft, TypeConfig};

/// The identity of a quorum carried in every Raft request
/// (`RaftMessage.quorum_fingerprint`): a 64-bit FNV-1a hash of the voters
/// sorted by id, as `"1@host:port,2@host:port"`. Stable across processes,
/// builds and platforms; never 0.
pub fn quorum_fingerprint<'a>(voters: impl IntoIterator<Item = (NodeId, &'a str)>) -> u64 {
    let mut sorted: Vec<(NodeId, &str)> = voters.into_iter().collect();
    sorted.sort_unstable();
    let text = sorted
        .iter()
        .map(|(id, addr)| format!("{id}@{addr}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.max(1)
}

#[cfg(test)]
mod fingerprint_tests {
    use super::quorum_fingerprint;

    #[test]
    fn fingerprint_identifies_the_voter_set() {
        let base = quorum_fingerprint([(1, "a:1"), (2, "b:1"), (3, "c:1")]);
        let table: [(&[(u64, &str)], bool); 5] = [
            // Same voters in another order: same quorum.
            (&[(3, "c:1"), (1, "a:1"), (2, "b:1")], true),
            // Another port of one voter (another cluster on the same host).
            (&[(1, "a:1"), (2, "b:1"), (3, "c:2")], false),
            // Same addresses, ids swapped.
            (&[(2, "a:1"), (1, "b:1"), (3, "c:1")], false),
            // A voter fewer.
            (&[(1, "a:1"), (2, "b:1")], false),
            // A voter more.
            (&[(1, "a:1"), (2, "b:1"), (3, "c:1"), (4, "d:1")], false),
        ];
        for (voters, same) in table {
            let f = quorum_fingerprint(voters.iter().copied());
            assert_eq!(f == base, same, "{voters:?}");
            assert_ne!(f, 0);
        }
        // Pinned: the value travels between nodes, so it must never change.
        assert_eq!(quorum_fingerprint([(1, "x:9")]), 0x8985a4ef47258e99);
    }
}
