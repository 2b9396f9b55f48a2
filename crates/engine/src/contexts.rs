//! Approvals handed out by pre-checks (gateway mode), waiting for the audit of the LLM call each one allowed.
//!
//! Every approval expires [`CONTEXT_TTL`] after it is given, so approvals expire in the order they are given.
//! A queue in that order lets each new approval drop the expired ones at its front: the cost per approval is
//! constant, whatever the number held. (Sweeping the whole map instead, once it held half its capacity, cost
//! a pass over hundreds of thousands of entries on every pre-check once a steady load kept that many alive.)
//!
//! Memory is bounded: at most `capacity` approvals are held. When a new one would exceed that, the oldest is
//! dropped, the one closest to expiring; its LLM call, if it still comes, is refused as an unknown context.
//!
//! Nothing here grows in one piece. The approvals are spread over [`SHARDS`] maps by their (random) ids, and
//! the queue is a list of fixed-size chunks, so that growing never copies everything held at once. (One map
//! growing past 60,000 approvals, with the page faults of its new table, held the request worker for 30 ms at
//! 10,000 pre-checks a second: the tail of that load, BENCHMARKS.md, thirteenth run.)

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use types::UnixMillis;

/// How long a pre-check's approval may be used for its LLM call.
pub const CONTEXT_TTL: Duration = Duration::from_secs(300);

/// Approvals held at most unless configured (`ControlOptions::max_approvals`, `gateway.max_approvals`). Each
/// takes about 100 bytes, a few hundred with the map's and the queue's spare room: a server holding a million
/// measured about 400 MB resident in all (BENCHMARKS.md, eighth run).
pub const DEFAULT_MAX_APPROVALS: usize = 1_000_000;

const PREFIX: &str = "ctx_";

/// An approval as held: who it was given to, for which query, by which decision, until when.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Approval {
    owner: Owner,
    pub query_hash: [u8; 32],
    pub decision_id: Box<str>,
    pub expires_at: UnixMillis,
}

impl std::fmt::Debug for Approval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approval")
            .field("decision_id", &self.decision_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The client an approval belongs to: a digest of its tenant and key id, so that an approval holds 16 bytes
/// for them instead of two strings.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Owner([u8; 16]);

impl Owner {
    fn of(tenant: &str, key_id: &str) -> Owner {
        let mut hasher = Sha256::new();
        hasher.update((tenant.len() as u64).to_le_bytes());
        hasher.update(tenant.as_bytes());
        hasher.update(key_id.as_bytes());
        let digest = hasher.finalize();
        let mut owner = [0; 16];
        owner.copy_from_slice(&digest[..16]);
        Owner(owner)
    }
}

/// Why an approval cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContextError {
    Unknown,
    Expired,
    OtherClient,
}

impl ContextError {
    pub fn message(self) -> &'static str {
        match self {
            ContextError::Unknown => {
                "unknown context_id: call /api/policy/pre-check first (contexts are valid 5 minutes)"
            }
            ContextError::Expired => "expired context_id: approvals are valid 5 minutes",
            ContextError::OtherClient => "this context_id belongs to another client",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Contexts {
    inner: Mutex<Inner>,
    capacity: usize,
}

/// How many maps the approvals are spread over.
const SHARDS: usize = 256;
/// Entries per chunk of the expiry queue.
const CHUNK: usize = 4096;

#[derive(Debug)]
struct Inner {
    by_id: ById,
    /// Approvals dropped before their expiry to stay within the capacity, since start.
    dropped_early: u64,
    /// Every id handed out and not yet dropped from here, oldest first, with its expiry. An id used meanwhile
    /// is no longer in `by_id`; its entry here is dropped in its turn.
    order: Queue,
}

impl Inner {
    /// Drops the oldest id; true if its approval was still held (not used yet).
    fn drop_front(&mut self) -> bool {
        self.order.pop_front().is_some_and(|(_, id)| self.by_id.remove(id).is_some())
    }
}

/// The approvals by id, in [`SHARDS`] maps chosen by the id's low bits (ids are random).
#[derive(Debug)]
struct ById {
    shards: Vec<HashMap<u128, Approval>>,
    len: usize,
}

impl ById {
    fn new() -> ById {
        ById { shards: (0..SHARDS).map(|_| HashMap::new()).collect(), len: 0 }
    }

    fn shard(&mut self, id: u128) -> &mut HashMap<u128, Approval> {
        let index = (id % SHARDS as u128) as usize;
        &mut self.shards[index]
    }

    fn insert(&mut self, id: u128, approval: Approval) {
        if self.shard(id).insert(id, approval).is_none() {
            self.len += 1;
        }
    }

    fn get(&mut self, id: u128) -> Option<&Approval> {
        self.shard(id).get(&id)
    }

    fn remove(&mut self, id: u128) -> Option<Approval> {
        let removed = self.shard(id).remove(&id);
        self.len -= usize::from(removed.is_some());
        removed
    }
}

/// A first-in, first-out queue of fixed-size chunks.
#[derive(Debug, Default)]
struct Queue {
    chunks: VecDeque<VecDeque<(UnixMillis, u128)>>,
    len: usize,
}

impl Queue {
    fn push_back(&mut self, entry: (UnixMillis, u128)) {
        if self.chunks.back().is_none_or(|chunk| chunk.len() == CHUNK) {
            self.chunks.push_back(VecDeque::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.back_mut() {
            chunk.push_back(entry);
            self.len += 1;
        }
    }

    fn front(&self) -> Option<&(UnixMillis, u128)> {
        self.chunks.front().and_then(VecDeque::front)
    }

    fn pop_front(&mut self) -> Option<(UnixMillis, u128)> {
        let chunk = self.chunks.front_mut()?;
        let entry = chunk.pop_front();
        if chunk.is_empty() {
            self.chunks.pop_front();
        }
        self.len -= usize::from(entry.is_some());
        entry
    }
}

/// The state of the approvals, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalStats {
    /// Approvals waiting for their LLM call's audit (expired ones are dropped as new ones come).
    pub held: usize,
    /// Approvals dropped before their expiry to stay within the capacity, since start: each one's LLM call,
    /// if it still comes, is refused as an unknown context.
    pub dropped_early: u64,
}

/// What a pre-check approved, to be held.
pub(crate) struct NewApproval<'a> {
    pub tenant: &'a str,
    pub key_id: &'a str,
    pub query: &'a str,
    pub decision_id: &'a str,
    pub expires_at: UnixMillis,
}

impl Contexts {
    pub fn new(capacity: usize) -> Contexts {
        let inner = Inner { by_id: ById::new(), dropped_early: 0, order: Queue::default() };
        Contexts { inner: Mutex::new(inner), capacity: capacity.max(1) }
    }

    /// Holds an approval until its expiry and returns its context id (`ctx_` and 32 random lowercase hex
    /// digits). `now` drops the approvals that expired by then.
    pub fn approve(&self, approval: NewApproval<'_>, now: UnixMillis) -> String {
        let held = Approval {
            owner: Owner::of(approval.tenant, approval.key_id),
            query_hash: Sha256::digest(approval.query.as_bytes()).into(),
            decision_id: approval.decision_id.into(),
            expires_at: approval.expires_at,
        };
        let id = uuid::Uuid::new_v4();
        let mut inner = self.lock();
        while inner.order.front().is_some_and(|&(expires_at, _)| expires_at <= now) {
            inner.drop_front();
        }
        while inner.order.len >= self.capacity {
            if inner.drop_front() {
                inner.dropped_early += 1;
            }
        }
        inner.order.push_back((held.expires_at, id.as_u128()));
        inner.by_id.insert(id.as_u128(), held);
        drop(inner);
        format!("{PREFIX}{}", id.simple())
    }

    /// Takes the approval out (it is used once) if it belongs to this client and has not expired at `now`. An
    /// approval of another client stays, for its own client to use.
    pub fn take(
        &self,
        context_id: &str,
        tenant: &str,
        key_id: &str,
        now: UnixMillis,
    ) -> Result<Approval, ContextError> {
        let id = parse(context_id).ok_or(ContextError::Unknown)?;
        let owner = Owner::of(tenant, key_id);
        let mut inner = self.lock();
        let approval = inner.by_id.get(id).ok_or(ContextError::Unknown)?;
        if approval.expires_at <= now {
            inner.by_id.remove(id);
            return Err(ContextError::Expired);
        }
        if approval.owner != owner {
            return Err(ContextError::OtherClient);
        }
        inner.by_id.remove(id).ok_or(ContextError::Unknown)
    }

    /// How many approvals are held, and how many were dropped early since start, for the metrics.
    pub fn stats(&self) -> ApprovalStats {
        let inner = self.lock();
        ApprovalStats { held: inner.by_id.len, dropped_early: inner.dropped_early }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.by_id.len, inner.order.len)
    }
}

/// The id behind a context id, only for the exact form [`Contexts::approve`] hands out.
fn parse(context_id: &str) -> Option<u128> {
    let hex = context_id.strip_prefix(PREFIX)?;
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u128::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMillis = UnixMillis(1_700_000_000_000);

    fn approval(expires_at: UnixMillis) -> NewApproval<'static> {
        NewApproval { tenant: "acme", key_id: "k1", query: "hello", decision_id: "d1", expires_at }
    }

    fn later(ms: i64) -> UnixMillis {
        T0.plus_millis(ms)
    }

    #[test]
    fn an_approval_is_used_once_by_its_own_client_before_it_expires() {
        let contexts = Contexts::new(10);
        let id = contexts.approve(approval(later(1_000)), T0);
        assert!(id.starts_with("ctx_") && id.len() == 36, "{id}");
        assert_eq!(contexts.take(&id, "acme", "k2", T0), Err(ContextError::OtherClient));
        assert_eq!(contexts.take(&id, "other", "k1", T0), Err(ContextError::OtherClient));
        let taken = contexts.take(&id, "acme", "k1", later(999)).expect("its own client, in time");
        assert_eq!(&*taken.decision_id, "d1");
        assert_eq!(taken.query_hash, <[u8; 32]>::from(Sha256::digest(b"hello")));
        assert_eq!(contexts.take(&id, "acme", "k1", later(999)), Err(ContextError::Unknown));
    }

    #[test]
    fn an_expired_approval_is_refused_and_dropped() {
        let contexts = Contexts::new(10);
        let id = contexts.approve(approval(later(1_000)), T0);
        assert_eq!(contexts.take(&id, "acme", "k1", later(1_000)), Err(ContextError::Expired));
        assert_eq!(contexts.take(&id, "acme", "k1", later(1)), Err(ContextError::Unknown));
    }

    #[test]
    fn owners_do_not_collide_by_moving_the_boundary_between_tenant_and_key() {
        assert_ne!(Owner::of("ab", "c").0, Owner::of("a", "bc").0);
    }

    #[test]
    fn only_the_exact_form_handed_out_is_recognised() {
        let contexts = Contexts::new(10);
        let id = contexts.approve(approval(later(1_000)), T0);
        let hex = &id[4..];
        for other in [
            format!("ctx_{}", hex.to_uppercase()),
            format!("ctx_+{}", &hex[1..]),
            format!("CTX_{hex}"),
            format!("ctx_{hex}0"),
            hex.to_owned(),
            String::new(),
            "ctx_".to_owned(),
        ] {
            assert_eq!(contexts.take(&other, "acme", "k1", T0), Err(ContextError::Unknown), "{other}");
        }
        assert!(contexts.take(&id, "acme", "k1", T0).is_ok());
    }

    #[test]
    fn expired_approvals_are_dropped_as_new_ones_come_without_a_sweep() {
        let contexts = Contexts::new(100);
        let old: Vec<String> = (1..=10).map(|i| contexts.approve(approval(later(i)), T0)).collect();
        assert_eq!(contexts.held(), (10, 10));
        // At 5 ms, the approvals expiring at 1..=5 ms are dropped; the five others stay.
        let new = contexts.approve(approval(later(1_000)), later(5));
        assert_eq!(contexts.held(), (6, 6));
        assert_eq!(contexts.stats(), ApprovalStats { held: 6, dropped_early: 0 }, "expiry is not early");
        assert_eq!(contexts.take(&old[4], "acme", "k1", later(5)), Err(ContextError::Unknown));
        assert!(contexts.take(&old[5], "acme", "k1", later(5)).is_ok());
        assert!(contexts.take(&new, "acme", "k1", later(5)).is_ok());
    }

    #[test]
    fn past_capacity_the_oldest_approval_gives_way() {
        let contexts = Contexts::new(3);
        let ids: Vec<String> = (0..5).map(|i| contexts.approve(approval(later(1_000 + i)), T0)).collect();
        assert_eq!(contexts.held(), (3, 3));
        assert_eq!(contexts.stats(), ApprovalStats { held: 3, dropped_early: 2 });
        for gone in &ids[..2] {
            assert_eq!(contexts.take(gone, "acme", "k1", T0), Err(ContextError::Unknown));
        }
        for kept in &ids[2..] {
            assert!(contexts.take(kept, "acme", "k1", T0).is_ok());
        }
        // Used approvals leave their place in the queue behind; it is dropped in its turn and bounded too.
        let more: Vec<String> = (0..3).map(|i| contexts.approve(approval(later(2_000 + i)), T0)).collect();
        assert_eq!(contexts.held(), (3, 3));
        assert_eq!(contexts.stats().dropped_early, 2, "used approvals are not counted as dropped");
        assert!(more.iter().all(|id| contexts.take(id, "acme", "k1", T0).is_ok()));
    }

    #[test]
    fn across_chunks_and_shards_the_oldest_give_way_and_the_rest_are_found() {
        let contexts = Contexts::new(2 * CHUNK + 7);
        let total = 3 * CHUNK + 100;
        let ids: Vec<String> =
            (0..total).map(|i| contexts.approve(approval(later(10_000 + i as i64)), T0)).collect();
        let kept = 2 * CHUNK + 7;
        assert_eq!(contexts.held(), (kept, kept));
        assert_eq!(contexts.stats().dropped_early, (total - kept) as u64);
        let (gone, held) = ids.split_at(total - kept);
        assert_eq!(contexts.take(&gone[gone.len() - 1], "acme", "k1", T0), Err(ContextError::Unknown));
        // Take every other held approval; the rest expire in order, chunk after chunk.
        for id in held.iter().step_by(2) {
            assert!(contexts.take(id, "acme", "k1", T0).is_ok());
        }
        assert_eq!(contexts.held(), (kept / 2, kept));
        contexts.approve(approval(later(1_000_000)), later(10_000 + total as i64));
        assert_eq!(contexts.held(), (1, 1), "everything before expired, across all chunks");
    }
}
