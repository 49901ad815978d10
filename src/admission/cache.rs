//! The verification cache shared by every request.
//!
//! Three properties make admission fast without making it lax:
//!
//! * **Single flight.** Per image there is at most one verification running;
//!   concurrent admissions of the same image wait for it (a rollout of 50 Pods
//!   costs one verification, not 50). The verification runs in its own task, not
//!   in the request's: a request that gives up at its deadline does not cancel it,
//!   and its answer is there for the controller's retry.
//! * **Bounded staleness.** A trusted answer is served without any registry
//!   request for at most the re-check interval, never past the expiry of the
//!   metadata it rests on, and is re-checked ahead of that expiry (the expiry
//!   margin), so a repository whose timestamp was refreshed moves on before the old
//!   one lapses. So the window in which a moved tag or a revoked signature is still
//!   admitted is the re-check interval, chosen by the operator.
//! * **Refresh ahead.** An answer in the last quarter of its life is still served,
//!   and one background verification replaces it; a hot image never makes a
//!   request wait for the registry.
//!
//! "Not trusted" answers are kept briefly (the negative TTL), so a controller
//! retrying an unsigned Pod does not turn into a registry flood; answers that
//! could not be reached (registry down) are not kept at all. The number of
//! verifications running at once and the number of entries are bounded.
//!
//! A verification waiting for its turn in the pool is dropped once nobody waits
//! for it any more (every review that asked has been answered): a review that
//! gave up at its deadline leaves no queue behind for the next one. Once
//! started, a verification runs to its end (it holds a blocking thread, bounded
//! by the network timeout) and its answer is kept for the retry.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{Semaphore, watch};

use super::metrics::{Checked, Metrics};
use super::verifier::{Verification, Verifier};
use crate::store::ImageRef;

/// While metadata is within the expiry margin, a trusted answer is still kept this
/// long, so a repository that is late with `warrant refresh` costs one registry
/// check a second, not one per admission.
const NEAR_EXPIRY_RECHECK: Duration = Duration::from_secs(1);

/// How the cache trades freshness for speed.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// The longest a trusted answer is served without asking the registry again.
    /// Zero keeps no answers (every admission verifies; concurrent ones still
    /// share one verification).
    pub recheck: Duration,
    /// Re-check this long before the metadata an answer rests on expires.
    pub expiry_margin: Duration,
    /// How long a "not trusted" answer is kept (capped by `recheck`).
    pub negative_ttl: Duration,
    /// Most images remembered; beyond it, the stalest answers are dropped.
    pub max_entries: usize,
    /// Most verifications running at once (each holds a blocking thread and
    /// registry connections); the rest queue.
    pub max_concurrent: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            recheck: Duration::from_secs(30),
            expiry_margin: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(5),
            max_entries: 10_000,
            max_concurrent: 16,
        }
    }
}

/// A source of the current time (a test moves it by hand).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A verification in flight: lookups subscribe to it; its task sends the answer.
type Flight = watch::Sender<Option<Verification>>;

struct Answer {
    verification: Verification,
    /// Served until then, not after.
    fresh_until: DateTime<Utc>,
    /// A hit from then on starts a background re-check.
    refresh_at: DateTime<Utc>,
}

#[derive(Default)]
struct Slot {
    answer: Option<Answer>,
    flight: Option<Flight>,
}

/// The cache; share it as `Arc<VerifyCache>`.
pub struct VerifyCache {
    verifier: Arc<dyn Verifier>,
    metrics: Arc<Metrics>,
    clock: Clock,
    recheck: TimeDelta,
    expiry_margin: TimeDelta,
    negative_ttl: TimeDelta,
    max_entries: usize,
    limit: Arc<Semaphore>,
    slots: Mutex<HashMap<Arc<str>, Slot>>,
    /// Bumped by [`VerifyCache::clear`]: an answer found by a verification that
    /// started before is handed to its waiters but not kept.
    generation: AtomicU64,
}

impl std::fmt::Debug for VerifyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyCache({} entries)", self.len())
    }
}

/// Settings beyond a year are taken as a year (and time arithmetic cannot
/// overflow).
fn delta(d: Duration) -> TimeDelta {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    TimeDelta::from_std(d.min(YEAR)).unwrap_or(TimeDelta::zero())
}

fn plus(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl VerifyCache {
    /// A cache in front of `verifier`, reading the system clock.
    pub fn new(
        verifier: Arc<dyn Verifier>,
        settings: &CacheSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self::with_clock(verifier, settings, metrics, Arc::new(Utc::now))
    }

    /// A cache reading time from `clock`.
    pub fn with_clock(
        verifier: Arc<dyn Verifier>,
        settings: &CacheSettings,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> Self {
        Self {
            verifier,
            metrics,
            clock,
            recheck: delta(settings.recheck),
            expiry_margin: delta(settings.expiry_margin),
            negative_ttl: delta(settings.negative_ttl.min(settings.recheck)),
            max_entries: settings.max_entries.max(1),
            limit: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            slots: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// Images with an answer or a verification in flight.
    pub fn len(&self) -> usize {
        self.slots().len()
    }

    /// Verifications running or queued for the pool.
    pub fn in_flight(&self) -> usize {
        self.slots().values().filter(|s| s.flight.is_some()).count()
    }

    /// True when the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The verifier's mode for `image` (the policy entry's `mode`).
    pub fn mode(&self, image: &ImageRef) -> crate::policy::Mode {
        self.verifier.mode(image)
    }

    /// Forget every answer (the policy changed: they were decided under the old
    /// one). Verifications in flight finish for their waiters, but their answers
    /// are not kept.
    pub fn clear(&self) {
        let mut slots = self.slots();
        self.generation.fetch_add(1, Relaxed);
        slots.retain(|_, s| s.flight.is_some());
        for s in slots.values_mut() {
            s.answer = None;
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<Arc<str>, Slot>> {
        // Nothing panics while holding the lock; if something ever did, the map is
        // still consistent (every update is a single assignment).
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer for `image`: cached when fresh, else from the verification in
    /// flight for it, else from a new one. Must run inside a tokio runtime.
    pub async fn get(self: &Arc<Self>, image: &ImageRef) -> Verification {
        let now = (self.clock)();
        let mut flight = {
            let mut slots = self.slots();
            let key: Arc<str> = image.to_string().into();
            let slot = slots.entry(Arc::clone(&key)).or_default();
            if let Some(a) = slot.answer.as_ref().filter(|a| now < a.fresh_until) {
                let v = a.verification.clone();
                if now >= a.refresh_at && slot.flight.is_none() {
                    self.metrics.cache_refreshes.fetch_add(1, Relaxed);
                    slot.flight = Some(self.launch(key, image.clone(), Waiters::Optional));
                }
                self.metrics.cache_hits.fetch_add(1, Relaxed);
                return v;
            }
            // Subscribed under the lock: the flight's task checks for waiters
            // under it too, so it cannot give up on a lookup that just joined.
            match &slot.flight {
                Some(f) => {
                    self.metrics.cache_coalesced.fetch_add(1, Relaxed);
                    f.subscribe()
                }
                None => {
                    self.metrics.cache_misses.fetch_add(1, Relaxed);
                    let f = self.launch(key, image.clone(), Waiters::Required);
                    let rx = f.subscribe();
                    slot.flight = Some(f);
                    rx
                }
            }
        };
        match flight.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_else(abandoned),
            Err(_) => abandoned(),
        }
    }

    /// Start the verification of `image` in a task of its own. It waits for a
    /// permit of the pool; a flight whose waiters are [`Waiters::Required`] is
    /// dropped, unstarted, when the last of them goes away first.
    fn launch(self: &Arc<Self>, key: Arc<str>, image: ImageRef, waiters: Waiters) -> Flight {
        let tx: Flight = watch::channel(None).0;
        let this = Arc::clone(self);
        let flight = tx.clone();
        tokio::spawn(async move {
            let acquire = Arc::clone(&this.limit).acquire_owned();
            tokio::pin!(acquire);
            let permit = loop {
                tokio::select! {
                    p = &mut acquire => break p,
                    _ = tx.closed(), if waiters == Waiters::Required => {
                        if this.forsake(&key, &tx) {
                            return;
                        }
                    }
                }
            };
            let verification = match permit {
                Ok(permit) => {
                    // Freshness counts from now: the registry is asked after this.
                    let started = (this.clock)();
                    let generation = this.generation.load(Relaxed);
                    let verifier = Arc::clone(&this.verifier);
                    let joined = tokio::task::spawn_blocking(move || {
                        let _permit = permit;
                        verifier.verify(&image)
                    })
                    .await;
                    let v = joined.unwrap_or_else(|e| {
                        Verification::Failed(format!("the verification failed: {e}").into())
                    });
                    let current = this.generation.load(Relaxed) == generation;
                    this.settle(&key, started, &v, current);
                    v
                }
                Err(_) => {
                    this.settle(&key, (this.clock)(), &abandoned(), true);
                    abandoned()
                }
            };
            tx.send_replace(Some(verification));
        });
        flight
    }

    /// Drop the flight `tx` of `key`, not started, if nobody waits for it (under
    /// the lock lookups subscribe under); false when a lookup joined meanwhile.
    fn forsake(&self, key: &Arc<str>, tx: &Flight) -> bool {
        let now = (self.clock)();
        let mut slots = self.slots();
        if tx.receiver_count() > 0 {
            return false;
        }
        self.metrics.verifications_unstarted.fetch_add(1, Relaxed);
        if let Some(slot) = slots.get_mut(key) {
            slot.flight = None;
            if slot.answer.as_ref().is_none_or(|a| now >= a.fresh_until) {
                slots.remove(key);
            }
        }
        true
    }

    /// Record a finished verification: the flight ends, and the answer is kept
    /// as long as its kind allows — not at all when it is not `current` (the
    /// cache was cleared while it ran).
    fn settle(&self, key: &Arc<str>, started: DateTime<Utc>, v: &Verification, current: bool) {
        self.metrics.verification(match v {
            Verification::Trusted { .. } => Checked::Trusted,
            Verification::Unlisted => Checked::Unlisted,
            Verification::Untrusted(_) => Checked::Untrusted,
            Verification::Failed(_) => Checked::Failed,
        });
        let now = (self.clock)();
        let kept = current
            .then(|| self.lifetime(started, v))
            .flatten()
            .map(|fresh_until| Answer {
                verification: v.clone(),
                fresh_until,
                refresh_at: plus(started, (fresh_until - started) / 4 * 3),
            });
        let mut slots = self.slots();
        let slot = slots.entry(Arc::clone(key)).or_default();
        slot.flight = None;
        match kept {
            Some(a) => slot.answer = Some(a),
            // A failure replaces nothing: an answer still fresh stays (its life
            // is not extended), a stale one goes.
            None => {
                if slot.answer.as_ref().is_none_or(|a| now >= a.fresh_until) {
                    slots.remove(key);
                }
            }
        }
        if slots.len() > self.max_entries {
            self.evict(&mut slots, now);
        }
    }

    /// Until when `v`, found by a verification that started at `started`, may be
    /// served; `None` when it must not be kept.
    fn lifetime(&self, started: DateTime<Utc>, v: &Verification) -> Option<DateTime<Utc>> {
        let until = match v {
            Verification::Trusted { expires, .. } => {
                let soft = expires
                    .checked_sub_signed(self.expiry_margin)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC);
                let near = if soft > started {
                    soft
                } else {
                    plus(started, delta(NEAR_EXPIRY_RECHECK))
                };
                plus(started, self.recheck).min(near).min(*expires)
            }
            Verification::Unlisted => plus(started, self.recheck),
            Verification::Untrusted(_) => plus(started, self.negative_ttl),
            Verification::Failed(_) => return None,
        };
        (until > started).then_some(until)
    }

    /// Drop stale answers, then the stalest fresh ones, to get back under the cap
    /// (with some room, so eviction is rare). Entries in flight stay.
    fn evict(&self, slots: &mut HashMap<Arc<str>, Slot>, now: DateTime<Utc>) {
        slots.retain(|_, s| {
            s.flight.is_some() || s.answer.as_ref().is_some_and(|a| now < a.fresh_until)
        });
        let target = self.max_entries - self.max_entries / 10;
        if slots.len() <= target {
            return;
        }
        let mut by_age: Vec<(DateTime<Utc>, Arc<str>)> = slots
            .iter()
            .filter(|(_, s)| s.flight.is_none())
            .filter_map(|(k, s)| s.answer.as_ref().map(|a| (a.fresh_until, Arc::clone(k))))
            .collect();
        by_age.sort_unstable();
        let excess = slots.len() - target;
        for (_, k) in by_age.into_iter().take(excess) {
            slots.remove(&k);
        }
    }
}

/// Whether a flight is dropped when nobody waits for it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiters {
    /// A lookup missed: the flight serves the lookups waiting for it.
    Required,
    /// A refresh ahead of expiry: nobody waits, the answer is for later.
    Optional,
}

fn abandoned() -> Verification {
    Verification::Failed("the verification was abandoned (the server is shutting down)".into())
}

#[cfg(test)]
mod tests;
