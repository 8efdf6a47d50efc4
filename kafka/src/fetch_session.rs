//! KIP-227 incremental fetch sessions: the broker's bounded cache of
//! sessions and the rules every Fetch (v7+) follows against it, as
//! Kafka's `FetchSession.scala`. Pure: no I/O, the clock is an argument
//! ([`Sessions`]); [`FetchSessionCache`] is the shared, locked instance a
//! broker keeps.
//!
//! A Fetch names `(session_id, session_epoch)`:
//! * epoch -1 ([`FINAL_EPOCH`]): a full fetch without a session (what
//!   librdkafka always sends, and Fetch v4–v6 implies); a named session is
//!   closed.
//! * epoch 0 ([`INITIAL_EPOCH`]): a full fetch asking for a new session
//!   (a named session is closed first). The answer carries the new
//!   session's id, or 0 when the cache has no room for it.
//! * epoch > 0: an incremental fetch in that session. The request carries
//!   only the partitions whose fetch position changed (or are new) and
//!   `forgotten_topics_data`; the broker fetches every partition of the
//!   session and answers only those with something new (records, a moved
//!   high watermark, last stable offset or log start, an error, a
//!   divergence). An unknown id is FETCH_SESSION_ID_NOT_FOUND, another
//!   epoch INVALID_FETCH_SESSION_EPOCH, a session created by topic id
//!   (v13+) used by name or the reverse FETCH_SESSION_TOPIC_ID_ERROR: the
//!   request fails as a whole and nothing changes.
//!
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions.
//! When full, a new session evicts (as Kafka's `tryEvict`) the least
//! recently used one if it was idle for [`EVICTION_MS`], else the smallest
//! session older than [`EVICTION_MS`] if the new one has more partitions;
//! otherwise no session is created. (Kafka's privileged follower sessions
//! do not arise: replicas fetch over gRPC.)

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::errors::{
    FETCH_SESSION_ID_NOT_FOUND, FETCH_SESSION_TOPIC_ID_ERROR, INVALID_FETCH_SESSION_EPOCH,
};

/// The session id of a fetch without a session.
pub const INVALID_SESSION_ID: i32 = 0;
/// A full fetch asking for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// A full fetch that wants no session.
pub const FINAL_EPOCH: i32 = -1;
/// How long a session is safe from eviction by a larger one after it is
/// created, and how long it may sit idle before any new session evicts it
/// (Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`, fixed there too).
pub const EVICTION_MS: u64 = 120_000;

/// How a topic is named in a session: by name (Fetch v7–v12) or by id
/// (v13+).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicRef {
    /// By name.
    Name(String),
    /// By topic id.
    Id(Uuid),
}

/// One partition of a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// Its topic.
    pub topic: TopicRef,
    /// Its index.
    pub partition: i32,
}

/// What a client asks of one partition; in a session it keeps asking it
/// until it sends the partition again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// First offset wanted.
    pub fetch_offset: i64,
    /// The leader epoch the client knows (-1: not checked).
    pub current_leader_epoch: i32,
    /// The epoch of the last fetched batch (-1: none).
    pub last_fetched_epoch: i32,
    /// Per-partition byte budget.
    pub max_bytes: i32,
}

/// What an answer said of one partition, as far as a session compares
/// answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// Records were returned.
    pub records: bool,
    /// The high watermark answered.
    pub high_watermark: i64,
    /// The last stable offset answered.
    pub last_stable_offset: i64,
    /// The log start offset answered.
    pub log_start_offset: i64,
    /// The partition answered an error.
    pub error: bool,
    /// The partition answered a diverging epoch.
    pub diverging: bool,
}

/// What the client was last told of a partition. Kafka compares the high
/// watermark and the log start; Strom also compares the last stable
/// offset, so a read_committed consumer learns it moved even when no
/// record came with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Told {
    /// High watermark (-1 after an error, so the partition is answered
    /// again once the error clears).
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
    /// Log start offset.
    pub log_start_offset: i64,
}

/// One partition held by a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPartition {
    /// Which partition.
    pub key: PartitionKey,
    /// What the client asks of it.
    pub wanted: Wanted,
    /// What it was last told.
    pub told: Told,
    /// Position in the session's fetch order (partitions that returned
    /// records move to the end, so each gets its turn at the response
    /// budget).
    order: u64,
}

impl CachedPartition {
    fn new(key: PartitionKey, wanted: Wanted, answered: &Answered, order: u64) -> Self {
        let mut told = Told {
            high_watermark: answered.high_watermark,
            last_stable_offset: answered.last_stable_offset,
            log_start_offset: answered.log_start_offset,
        };
        if answered.error {
            told.high_watermark = -1;
        }
        Self {
            key,
            wanted,
            told,
            order,
        }
    }
}

/// Whether an incremental answer must include a partition, and what the
/// client then knows of it (Kafka's `maybeUpdateResponseData`).
pub fn must_answer(told: &mut Told, a: &Answered) -> bool {
    let mut answer = a.records || a.diverging;
    if told.high_watermark != a.high_watermark {
        answer = true;
        told.high_watermark = a.high_watermark;
    }
    if told.last_stable_offset != a.last_stable_offset {
        answer = true;
        told.last_stable_offset = a.last_stable_offset;
    }
    if told.log_start_offset != a.log_start_offset {
        answer = true;
        told.log_start_offset = a.log_start_offset;
    }
    if a.error {
        answer = true;
        told.high_watermark = -1;
    }
    answer
}

/// The epoch after `epoch` (wrapping to 1, never back to 0).
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// The session part of one Fetch request.
#[derive(Debug, Clone, Copy)]
pub struct SessionRequest<'a> {
    /// `session_id`.
    pub session_id: i32,
    /// `session_epoch`.
    pub epoch: i32,
    /// The request names topics by id (Fetch v13+).
    pub by_topic_id: bool,
    /// The partitions it carries.
    pub partitions: &'a [(PartitionKey, Wanted)],
    /// `forgotten_topics_data`.
    pub forgotten: &'a [PartitionKey],
}

/// What a Fetch is to do, decided by [`Sessions::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Answer the request's partitions, with session id 0.
    Sessionless,
    /// A full fetch asking for a session: answer the request's partitions,
    /// then [`Sessions::create`].
    Full,
    /// Fetch the session's partitions, then [`Sessions::answered`] says
    /// which to answer.
    Incremental(Incremental),
    /// The request fails as a whole with this Kafka code: no partitions,
    /// session id 0; no session changed.
    Refused(i16),
}

/// An incremental fetch in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incremental {
    /// The session.
    pub id: i32,
    /// The session's epoch after this request (what the client sends
    /// next).
    pub epoch: i32,
    /// Every partition of the session, in fetch order.
    pub partitions: Vec<CachedPartition>,
}

#[derive(Debug)]
struct Session {
    id: i32,
    epoch: i32,
    by_topic_id: bool,
    partitions: BTreeMap<PartitionKey, CachedPartition>,
    next_order: u64,
    created_ms: u64,
    last_used_ms: u64,
}

impl Session {
    fn size(&self) -> usize {
        self.partitions.len()
    }

    fn ordered(&self) -> Vec<CachedPartition> {
        let mut out: Vec<CachedPartition> = self.partitions.values().cloned().collect();
        out.sort_by_key(|p| p.order);
        out
    }

    /// Adds or updates the request's partitions and drops the forgotten
    /// ones (Kafka's `FetchSession.update`). A partition first seen here
    /// has been told nothing: its first answer includes it.
    fn update(&mut self, partitions: &[(PartitionKey, Wanted)], forgotten: &[PartitionKey]) {
        for (key, wanted) in partitions {
            match self.partitions.get_mut(key) {
                Some(p) => p.wanted = *wanted,
                None => {
                    let order = self.next_order;
                    self.next_order += 1;
                    self.partitions.insert(
                        key.clone(),
                        CachedPartition {
                            key: key.clone(),
                            wanted: *wanted,
                            told: Told {
                                high_watermark: -1,
                                last_stable_offset: -1,
                                log_start_offset: -1,
                            },
                            order,
                        },
                    );
                }
            }
        }
        for key in forgotten {
            self.partitions.remove(key);
        }
    }
}

/// The broker's sessions (pure: the clock is an argument).
#[derive(Debug)]
pub struct Sessions {
    slots: usize,
    sessions: HashMap<i32, Session>,
    ids: StdRng,
    evictions: u64,
}

impl Sessions {
    /// An empty cache of at most `slots` sessions (0: never creates one);
    /// session ids drawn from a generator seeded with `seed`.
    pub fn new(slots: usize, seed: u64) -> Self {
        Self {
            slots,
            sessions: HashMap::new(),
            ids: StdRng::seed_from_u64(seed),
            evictions: 0,
        }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Sessions evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The partitions of session `id` in fetch order and its epoch, if held.
    pub fn session(&self, id: i32) -> Option<(i32, Vec<CachedPartition>)> {
        self.sessions.get(&id).map(|s| (s.epoch, s.ordered()))
    }

    /// Decides what a Fetch does (Kafka's `FetchManager.newContext`).
    pub fn begin(&mut self, req: &SessionRequest<'_>, now_ms: u64) -> Begin {
        if req.epoch == INITIAL_EPOCH || req.epoch == FINAL_EPOCH {
            // Any session a full fetch names is closed.
            if req.session_id != INVALID_SESSION_ID {
                self.sessions.remove(&req.session_id);
            }
            return if req.epoch == FINAL_EPOCH {
                Begin::Sessionless
            } else {
                Begin::Full
            };
        }
        let Some(session) = self.sessions.get_mut(&req.session_id) else {
            return Begin::Refused(FETCH_SESSION_ID_NOT_FOUND);
        };
        if session.epoch != req.epoch {
            return Begin::Refused(INVALID_FETCH_SESSION_EPOCH);
        }
        if session.by_topic_id != req.by_topic_id {
            return Begin::Refused(FETCH_SESSION_TOPIC_ID_ERROR);
        }
        session.update(req.partitions, req.forgotten);
        if session.partitions.is_empty() {
            self.sessions.remove(&req.session_id);
            return Begin::Sessionless;
        }
        session.last_used_ms = now_ms;
        session.epoch = next_epoch(session.epoch);
        Begin::Incremental(Incremental {
            id: session.id,
            epoch: session.epoch,
            partitions: session.ordered(),
        })
    }

    /// After a [`Begin::Full`] answer: creates a session of `partitions`
    /// with what each was answered, evicting one if the cache is full and
    /// the rules allow (Kafka's `maybeCreateSession`); its id, or
    /// [`INVALID_SESSION_ID`] when none was created.
    pub fn create(
        &mut self,
        by_topic_id: bool,
        partitions: Vec<(PartitionKey, Wanted, Answered)>,
        now_ms: u64,
    ) -> i32 {
        let mut cached = BTreeMap::new();
        for (order, (key, wanted, answered)) in partitions.into_iter().enumerate() {
            let p = CachedPartition::new(key.clone(), wanted, &answered, order as u64);
            cached.insert(key, p);
        }
        if self.sessions.len() >= self.slots && !self.try_evict(cached.len(), now_ms) {
            return INVALID_SESSION_ID;
        }
        let id = loop {
            let id = self.ids.gen_range(1..i32::MAX);
            if !self.sessions.contains_key(&id) {
                break id;
            }
        };
        let next_order = cached.len() as u64;
        self.sessions.insert(
            id,
            Session {
                id,
                epoch: next_epoch(INITIAL_EPOCH),
                by_topic_id,
                partitions: cached,
                next_order,
                created_ms: now_ms,
                last_used_ms: now_ms,
            },
        );
        id
    }

    /// Makes room for a session of `size` partitions (Kafka's `tryEvict`):
    /// the least recently used session if it has been idle for
    /// [`EVICTION_MS`]; else the smallest (then lowest id) session created
    /// more than [`EVICTION_MS`] ago, if it holds fewer partitions than
    /// `size`. Whether one was evicted.
    fn try_evict(&mut self, size: usize, now_ms: u64) -> bool {
        let Some(lru) = self
            .sessions
            .values()
            .min_by_key(|s| (s.last_used_ms, s.id))
            .map(|s| (s.id, s.last_used_ms))
        else {
            return false;
        };
        let victim = if now_ms.saturating_sub(lru.1) > EVICTION_MS {
            Some(lru.0)
        } else {
            self.sessions
                .values()
                .filter(|s| now_ms.saturating_sub(s.created_ms) > EVICTION_MS)
                .min_by_key(|s| (s.size(), s.id))
                .filter(|s| s.size() < size)
                .map(|s| s.id)
        };
        match victim {
            Some(id) => {
                self.sessions.remove(&id);
                self.evictions += 1;
                true
            }
            None => false,
        }
    }

    /// After a [`Begin::Incremental`] fetch answered `answers` (one per
    /// partition of `inc`, in its order): which partitions the answer
    /// includes. The session records what they were told and moves those
    /// that returned records to the end of its order, unless the session
    /// moved on meanwhile (closed, evicted, or a later request of its
    /// own), in which case nothing is recorded.
    pub fn answered(&mut self, inc: &Incremental, answers: &[Answered]) -> Vec<bool> {
        let mut session = self
            .sessions
            .get_mut(&inc.id)
            .filter(|s| s.epoch == inc.epoch);
        inc.partitions
            .iter()
            .zip(answers)
            .map(|(p, a)| {
                let mut told = p.told;
                let answer = must_answer(&mut told, a);
                if let Some(s) = session.as_deref_mut() {
                    let order = if a.records {
                        s.next_order += 1;
                        Some(s.next_order - 1)
                    } else {
                        None
                    };
                    if let Some(cached) = s.partitions.get_mut(&p.key) {
                        cached.told = told;
                        if let Some(order) = order {
                            cached.order = order;
                        }
                    }
                }
                answer
            })
            .collect()
    }
}

/// A broker's fetch sessions, shared by its Kafka connections (a client
/// keeps its session across reconnects, as with Kafka).
#[derive(Debug)]
pub struct FetchSessionCache {
    sessions: Mutex<Sessions>,
    started: Instant,
}

impl FetchSessionCache {
    /// A cache of at most `slots` sessions
    /// (`max.incremental.fetch.session.cache.slots`; 0 turns sessions off).
    pub fn new(slots: usize) -> Self {
        Self {
            sessions: Mutex::new(Sessions::new(slots, rand::random())),
            started: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // The critical sections are pure and cannot leave the cache half
        // changed, so a poisoned lock's state is still sound.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`Sessions::begin`] now.
    pub fn begin(&self, req: &SessionRequest<'_>) -> Begin {
        let now = self.now_ms();
        self.lock().begin(req, now)
    }

    /// [`Sessions::create`] now.
    pub fn create(
        &self,
        by_topic_id: bool,
        partitions: Vec<(PartitionKey, Wanted, Answered)>,
    ) -> i32 {
        let now = self.now_ms();
        self.lock().create(by_topic_id, partitions, now)
    }

    /// [`Sessions::answered`].
    pub fn answered(&self, inc: &Incremental, answers: &[Answered]) -> Vec<bool> {
        self.lock().answered(inc, answers)
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
#[path = "fetch_session_test.rs"]
mod tests;
