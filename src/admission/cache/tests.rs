#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::sync::Condvar;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use super::*;
use crate::digest::Sha256Digest;

/// A verifier whose answer, delay and call count the test controls; while the
/// gate is held, verifications block in it (so a test can tell "did not wait"
/// from "was fast" without reading a clock).
struct Fake {
    calls: AtomicUsize,
    delay: Duration,
    answer: Mutex<Verification>,
    panics: bool,
    held: Mutex<bool>,
    gate: Condvar,
}

impl Fake {
    fn new(answer: Verification, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            delay,
            answer: Mutex::new(answer),
            panics: false,
            held: Mutex::new(false),
            gate: Condvar::new(),
        })
    }
    fn hold(&self) {
        *self.held.lock().unwrap() = true;
    }
    fn release(&self) {
        *self.held.lock().unwrap() = false;
        self.gate.notify_all();
    }
    fn calls(&self) -> usize {
        self.calls.load(Relaxed)
    }
    fn set(&self, v: Verification) {
        *self.answer.lock().unwrap() = v;
    }
}

impl Verifier for Fake {
    fn verify(&self, _image: &ImageRef) -> Verification {
        self.calls.fetch_add(1, Relaxed);
        let mut held = self.held.lock().unwrap();
        while *held {
            held = self.gate.wait(held).unwrap();
        }
        drop(held);
        std::thread::sleep(self.delay);
        assert!(!self.panics, "the verifier blew up");
        self.answer.lock().unwrap().clone()
    }
}

/// A clock the test moves.
#[derive(Clone)]
struct Manual(Arc<Mutex<DateTime<Utc>>>);

impl Manual {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(Utc::now())))
    }
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
    fn advance(&self, d: TimeDelta) {
        *self.0.lock().unwrap() += d;
    }
    fn clock(&self) -> Clock {
        let c = self.clone();
        Arc::new(move || c.now())
    }
}

fn trusted(expires: DateTime<Utc>) -> Verification {
    let digest: Sha256Digest = format!("sha256:{}", "cd".repeat(32)).parse().unwrap();
    Verification::Trusted {
        pinned: format!("h/app:v1@{digest}").into(),
        digest,
        expires,
    }
}

fn settings(recheck_secs: u64) -> CacheSettings {
    CacheSettings {
        recheck: Duration::from_secs(recheck_secs),
        ..CacheSettings::default()
    }
}

fn cache(fake: &Arc<Fake>, s: &CacheSettings, clock: &Manual) -> (Arc<VerifyCache>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let c = VerifyCache::with_clock(fake.clone(), s, metrics.clone(), clock.clock());
    (Arc::new(c), metrics)
}

fn image() -> ImageRef {
    ImageRef::parse("registry.invalid/team/app:v1").unwrap()
}

/// Wait until `f` holds (a background verification finished), at most 5 s.
async fn eventually(f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_of_one_image_share_one_verification() {
    let clock = Manual::new();
    let fake = Fake::new(
        trusted(clock.now() + TimeDelta::days(7)),
        Duration::from_millis(200),
    );
    let (c, m) = cache(&fake, &settings(30), &clock);
    let image = image();
    let all = futures_util::future::join_all((0..50).map(|_| c.get(&image))).await;
    assert!(
        all.iter()
            .all(|v| matches!(v, Verification::Trusted { .. }))
    );
    assert_eq!(fake.calls(), 1);
    assert_eq!(m.cache_misses.load(Relaxed), 1);
    assert_eq!(m.cache_coalesced.load(Relaxed), 49);
    // Another image is another verification.
    let other = ImageRef::parse("registry.invalid/team/app:v2").unwrap();
    c.get(&other).await;
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_answers_need_no_verification_until_the_recheck_interval() {
    let clock = Manual::new();
    let fake = Fake::new(trusted(clock.now() + TimeDelta::days(7)), Duration::ZERO);
    let (c, m) = cache(&fake, &settings(30), &clock);
    c.get(&image()).await;
    for _ in 0..100 {
        clock.advance(TimeDelta::milliseconds(200));
        assert!(matches!(
            c.get(&image()).await,
            Verification::Trusted { .. }
        ));
    }
    assert_eq!(fake.calls(), 1, "20 s of hits, no verification");
    assert_eq!(m.cache_hits.load(Relaxed), 100);
    clock.advance(TimeDelta::seconds(11));
    c.get(&image()).await;
    assert_eq!(fake.calls(), 2, "past the re-check interval");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_serves_the_cached_answer_and_replaces_it_in_the_background() {
    let clock = Manual::new();
    let fake = Fake::new(trusted(clock.now() + TimeDelta::days(7)), Duration::ZERO);
    let (c, m) = cache(&fake, &settings(40), &clock);
    c.get(&image()).await;
    fake.set(Verification::Untrusted("tag moved".into()));
    clock.advance(TimeDelta::seconds(31));
    // The refresh blocks in the verifier until released: a lookup that waited
    // for it would never return (the outer timeout is only a safety net).
    fake.hold();
    let hit = tokio::time::timeout(Duration::from_secs(30), c.get(&image())).await;
    assert!(
        matches!(hit, Ok(Verification::Trusted { .. })),
        "waited for the refresh: {hit:?}"
    );
    eventually(|| fake.calls() == 2 && m.cache_refreshes.load(Relaxed) == 1).await;
    // A second hit while the refresh runs does not start another.
    assert!(matches!(
        c.get(&image()).await,
        Verification::Trusted { .. }
    ));
    assert_eq!(fake.calls(), 2);
    fake.release();
    eventually(
        || matches!(c.slots().get("registry.invalid/team/app:v1"), Some(s) if s.flight.is_none()),
    )
    .await;
    assert!(matches!(c.get(&image()).await, Verification::Untrusted(_)));
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_rechecked_ahead_of_metadata_expiry_and_never_served_past_it() {
    let clock = Manual::new();
    let s = CacheSettings {
        recheck: Duration::from_secs(3600),
        expiry_margin: Duration::from_secs(300),
        ..CacheSettings::default()
    };
    // Expires in 10 min: served until 5 min before.
    let fake = Fake::new(
        trusted(clock.now() + TimeDelta::minutes(10)),
        Duration::ZERO,
    );
    let (c, _) = cache(&fake, &s, &clock);
    c.get(&image()).await;
    clock.advance(TimeDelta::minutes(3));
    c.get(&image()).await;
    assert_eq!(fake.calls(), 1);
    clock.advance(TimeDelta::seconds(121));
    c.get(&image()).await;
    assert_eq!(fake.calls(), 2, "inside the expiry margin");
    // Within the margin already: kept one second, so a late refresh costs one
    // check a second rather than one per admission.
    clock.advance(TimeDelta::hours(2));
    fake.set(trusted(clock.now() + TimeDelta::minutes(2)));
    c.get(&image()).await;
    assert_eq!(fake.calls(), 3);
    clock.advance(TimeDelta::milliseconds(700));
    c.get(&image()).await;
    assert_eq!(fake.calls(), 3);
    clock.advance(TimeDelta::milliseconds(400));
    c.get(&image()).await;
    assert_eq!(fake.calls(), 4);
    // Expiring sooner than even that: never past the expiry itself.
    let zero_margin = CacheSettings {
        expiry_margin: Duration::ZERO,
        ..s
    };
    let fake = Fake::new(
        trusted(clock.now() + TimeDelta::milliseconds(100)),
        Duration::ZERO,
    );
    let (c, _) = cache(&fake, &zero_margin, &clock);
    c.get(&image()).await;
    clock.advance(TimeDelta::milliseconds(100));
    c.get(&image()).await;
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_answers_are_kept_briefly_and_failures_not_at_all() {
    let clock = Manual::new();
    let fake = Fake::new(Verification::Untrusted("unsigned".into()), Duration::ZERO);
    let (c, _) = cache(&fake, &settings(30), &clock);
    c.get(&image()).await;
    clock.advance(TimeDelta::seconds(3));
    assert!(matches!(c.get(&image()).await, Verification::Untrusted(_)));
    assert_eq!(fake.calls(), 1);
    clock.advance(TimeDelta::seconds(2));
    c.get(&image()).await;
    assert_eq!(fake.calls(), 2, "negative TTL of 5 s passed");

    fake.set(Verification::Failed("registry down".into()));
    clock.advance(TimeDelta::seconds(6));
    for n in 3..6 {
        assert!(matches!(c.get(&image()).await, Verification::Failed(_)));
        assert_eq!(fake.calls(), n, "a failure is not remembered");
    }
    assert!(c.is_empty(), "nothing left behind for a failed image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_fresh_answer_without_extending_it() {
    let clock = Manual::new();
    let fake = Fake::new(trusted(clock.now() + TimeDelta::days(7)), Duration::ZERO);
    let (c, _) = cache(&fake, &settings(40), &clock);
    c.get(&image()).await;
    fake.set(Verification::Failed("registry down".into()));
    clock.advance(TimeDelta::seconds(35));
    assert!(matches!(
        c.get(&image()).await,
        Verification::Trusted { .. }
    ));
    eventually(|| fake.calls() == 2).await;
    eventually(
        || matches!(c.slots().get("registry.invalid/team/app:v1"), Some(s) if s.flight.is_none()),
    )
    .await;
    clock.advance(TimeDelta::seconds(4));
    assert!(matches!(
        c.get(&image()).await,
        Verification::Trusted { .. }
    ));
    clock.advance(TimeDelta::seconds(2));
    assert!(
        matches!(c.get(&image()).await, Verification::Failed(_)),
        "40 s are up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_verifier_is_a_failure_and_the_next_lookup_tries_again() {
    let clock = Manual::new();
    let fake = Arc::new(Fake {
        calls: AtomicUsize::new(0),
        delay: Duration::ZERO,
        answer: Mutex::new(Verification::Unlisted),
        panics: true,
        held: Mutex::new(false),
        gate: Condvar::new(),
    });
    let (c, m) = cache(&fake, &settings(30), &clock);
    for n in 1..3 {
        match c.get(&image()).await {
            Verification::Failed(msg) => assert!(msg.contains("failed"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.calls(), n);
    }
    assert!(m.render(0).contains("result=\"failed\"} 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_recheck_keeps_nothing_but_still_shares_flights() {
    let clock = Manual::new();
    let fake = Fake::new(
        trusted(clock.now() + TimeDelta::days(7)),
        Duration::from_millis(100),
    );
    let (c, _) = cache(&fake, &settings(0), &clock);
    let image = image();
    futures_util::future::join_all((0..10).map(|_| c.get(&image))).await;
    assert_eq!(fake.calls(), 1);
    c.get(&image).await;
    assert_eq!(fake.calls(), 2);
    assert!(c.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_stays_within_its_entry_cap() {
    let clock = Manual::new();
    let fake = Fake::new(trusted(clock.now() + TimeDelta::days(7)), Duration::ZERO);
    let s = CacheSettings {
        max_entries: 50,
        ..settings(30)
    };
    let (c, _) = cache(&fake, &s, &clock);
    for i in 0..200 {
        let image = ImageRef::parse(&format!("registry.invalid/team/app:v{i}")).unwrap();
        c.get(&image).await;
        clock.advance(TimeDelta::milliseconds(10));
        assert!(c.len() <= 50, "{}", c.len());
    }
    // The newest answers are the ones kept.
    let newest = ImageRef::parse("registry.invalid/team/app:v199").unwrap();
    c.get(&newest).await;
    assert_eq!(fake.calls(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_settings_and_expiries_do_not_overflow() {
    let clock = Manual::new();
    let s = CacheSettings {
        recheck: Duration::MAX,
        expiry_margin: Duration::MAX,
        negative_ttl: Duration::MAX,
        ..CacheSettings::default()
    };
    for answer in [
        trusted(DateTime::<Utc>::MAX_UTC),
        trusted(DateTime::<Utc>::MIN_UTC),
        Verification::Untrusted("no".into()),
        Verification::Unlisted,
    ] {
        let fake = Fake::new(answer.clone(), Duration::ZERO);
        let (c, _) = cache(&fake, &s, &clock);
        assert_eq!(c.get(&image()).await, answer);
        assert_eq!(c.get(&image()).await, answer);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_verification_nobody_waits_for_any_more_is_dropped_unstarted() {
    let clock = Manual::new();
    let fake = Fake::new(trusted(clock.now() + TimeDelta::days(7)), Duration::ZERO);
    let s = CacheSettings {
        max_concurrent: 1,
        ..settings(30)
    };
    let (c, m) = cache(&fake, &s, &clock);
    // The only permit is taken by a verification blocked in the verifier.
    fake.hold();
    let first = tokio::spawn({
        let c = Arc::clone(&c);
        async move { c.get(&image()).await }
    });
    eventually(|| fake.calls() == 1).await;
    // Another image queues for the permit; its only waiter gives up.
    let other = ImageRef::parse("registry.invalid/team/app:v2").unwrap();
    let gave_up = tokio::time::timeout(Duration::from_millis(50), c.get(&other)).await;
    assert!(gave_up.is_err(), "it could not have run");
    eventually(|| m.verifications_unstarted.load(Relaxed) == 1).await;
    assert!(
        !c.slots().contains_key("registry.invalid/team/app:v2"),
        "nothing left for the dropped flight"
    );
    fake.release();
    assert!(matches!(first.await.unwrap(), Verification::Trusted { .. }));
    assert_eq!(fake.calls(), 1, "the dropped verification never ran");
    // A later lookup of that image verifies it as usual.
    assert!(matches!(c.get(&other).await, Verification::Trusted { .. }));
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_verification_is_kept_while_one_waiter_remains() {
    let clock = Manual::new();
    let fake = Fake::new(trusted(clock.now() + TimeDelta::days(7)), Duration::ZERO);
    let s = CacheSettings {
        max_concurrent: 1,
        ..settings(30)
    };
    let (c, m) = cache(&fake, &s, &clock);
    fake.hold();
    let first = tokio::spawn({
        let c = Arc::clone(&c);
        async move { c.get(&image()).await }
    });
    eventually(|| fake.calls() == 1).await;
    let other = ImageRef::parse("registry.invalid/team/app:v2").unwrap();
    let staying = tokio::spawn({
        let (c, other) = (Arc::clone(&c), other.clone());
        async move { c.get(&other).await }
    });
    eventually(|| m.cache_misses.load(Relaxed) == 2).await;
    let gave_up = tokio::time::timeout(Duration::from_millis(50), c.get(&other)).await;
    assert!(gave_up.is_err());
    fake.release();
    assert!(matches!(
        staying.await.unwrap(),
        Verification::Trusted { .. }
    ));
    first.await.unwrap();
    assert_eq!(m.verifications_unstarted.load(Relaxed), 0);
    assert_eq!(fake.calls(), 2);
}
