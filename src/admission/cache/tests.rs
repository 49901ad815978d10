#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use super::*;
use crate::digest::Sha256Digest;

/// A verifier whose answer, delay and call count the test controls.
struct Fake {
    calls: AtomicUsize,
    delay: Duration,
    answer: Mutex<Verification>,
    panics: bool,
}

impl Fake {
    fn new(answer: Verification, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            delay,
            answer: Mutex::new(answer),
            panics: false,
        })
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
    let fake = Fake::new(
        trusted(clock.now() + TimeDelta::days(7)),
        Duration::from_millis(300),
    );
    let (c, m) = cache(&fake, &settings(40), &clock);
    c.get(&image()).await;
    fake.set(Verification::Untrusted("tag moved".into()));
    clock.advance(TimeDelta::seconds(31));
    let start = Instant::now();
    assert!(matches!(
        c.get(&image()).await,
        Verification::Trusted { .. }
    ));
    assert!(start.elapsed() < Duration::from_millis(150), "did not wait");
    // A second hit while the refresh runs does not start another.
    assert!(matches!(
        c.get(&image()).await,
        Verification::Trusted { .. }
    ));
    eventually(|| fake.calls() == 2 && m.cache_refreshes.load(Relaxed) == 1).await;
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
