use std::time::Duration;

use tokio::time::Instant;

use super::*;

const MS: Duration = Duration::from_millis(1);

#[test]
fn unthrottled_buckets_grant_everything() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(t0);
    assert_eq!(b.take(10 << 20, t0), Grant::Unlimited);
    b.set_rate(Some(1000), t0);
    b.set_rate(None, t0 + MS);
    assert_eq!(b.take(10 << 20, t0 + MS), Grant::Unlimited);
}

#[test]
fn grants_follow_the_bucket() {
    let t0 = Instant::now();
    // (steps: (ms after t0, op), expected grants)
    enum Op {
        Rate(Option<u64>),
        Take(u64, Grant),
        Settle(u64, u64),
    }
    use Op::*;
    let cases: Vec<(&str, Vec<(u64, Op)>)> = vec![
        (
            "a new throttle starts empty, then fills at the rate",
            vec![
                (0, Rate(Some(100_000))),
                // 10 ms worth (1000 bytes) is the smallest grant.
                (0, Take(50_000, Grant::Wait(Duration::from_millis(10)))),
                (100, Take(50_000, Grant::Bytes(10_000))),
                (100, Take(50_000, Grant::Wait(Duration::from_millis(10)))),
            ],
        ),
        (
            "the bucket holds one window at most",
            vec![
                (0, Rate(Some(1000))),
                (10_000, Take(1 << 20, Grant::Bytes(1000))),
            ],
        ),
        (
            "unused grant goes back",
            vec![
                (0, Rate(Some(1000))),
                (1000, Take(1 << 20, Grant::Bytes(1000))),
                (1000, Settle(1000, 400)),
                (1000, Take(1 << 20, Grant::Bytes(600))),
            ],
        ),
        (
            "reading past the grant leaves a debt paid off first",
            vec![
                (0, Rate(Some(1000))),
                (1000, Take(100, Grant::Bytes(100))),
                // One whole batch of 3000 bytes went out.
                (1000, Settle(100, 3000)),
                // Debt 2000 (900 left, plus 100, minus 3000): 2 s plus the
                // 10-byte smallest grant.
                (1000, Take(100, Grant::Wait(Duration::from_millis(2010)))),
                (4000, Take(100, Grant::Bytes(100))),
            ],
        ),
        (
            "a small want is granted once the bucket holds it",
            vec![
                (0, Rate(Some(100_000))),
                (0, Take(50, Grant::Wait(Duration::from_millis(1)))),
                (1, Take(50, Grant::Bytes(50))),
            ],
        ),
        (
            "a lower rate caps what the bucket holds",
            vec![
                (0, Rate(Some(10_000))),
                (1000, Rate(Some(1000))),
                (1000, Take(1 << 20, Grant::Bytes(1000))),
            ],
        ),
    ];
    for (name, steps) in cases {
        let mut b = TokenBucket::new(t0);
        for (i, (at, op)) in steps.into_iter().enumerate() {
            let now = t0 + MS * u32::try_from(at).expect("small");
            match op {
                Rate(r) => b.set_rate(r, now),
                Take(want, expected) => {
                    let got = b.take(want, now);
                    let close = match (got, expected) {
                        (Grant::Wait(a), Grant::Wait(e)) => {
                            a.abs_diff(e) < Duration::from_micros(50)
                        }
                        (a, e) => a == e,
                    };
                    assert!(
                        close,
                        "{name}, step {i}: got {got:?}, expected {expected:?}"
                    );
                }
                Settle(granted, used) => b.settle(granted, used, now),
            }
        }
    }
}

/// A reader taking as much as it may in 1 MiB fetches whose log reads
/// round up to whole 64 KiB batches, asking again when told: over 20
/// seconds it moves the rate, within one window and one batch.
#[test]
fn a_greedy_reader_moves_the_rate() {
    for rate in [100_000u64, 1_000_000, 20_000_000] {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0);
        b.set_rate(Some(rate), t0);
        let (mut now, end) = (t0, t0 + Duration::from_secs(20));
        let mut moved = 0u64;
        while now < end {
            match b.take(1 << 20, now) {
                Grant::Bytes(g) => {
                    let batch = 64 << 10;
                    let used = g.div_ceil(batch) * batch;
                    b.settle(g, used, now);
                    moved += used;
                    now += Duration::from_millis(2);
                }
                Grant::Wait(d) => now += d,
                Grant::Unlimited => panic!("throttled"),
            }
        }
        let expected = rate * 20;
        let slack = rate + (64 << 10);
        assert!(
            moved.abs_diff(expected) <= slack,
            "rate {rate}: moved {moved}, expected {expected} ± {slack}"
        );
    }
}

#[test]
fn quotas_count_throttled_bytes() {
    let q = ReplicationQuotas::default();
    assert_eq!(q.leader.rate(), None);
    q.leader.set_rate(Some(1 << 30));
    assert_eq!(q.leader.rate(), Some(1 << 30));
    q.leader.settle(Grant::Unlimited, 10);
    q.leader.settle(Grant::Bytes(100), 70);
    assert_eq!(q.leader.throttled_bytes(), 80);
    assert_eq!(q.follower.throttled_bytes(), 0);
}
