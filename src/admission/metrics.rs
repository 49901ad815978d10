//! Counters and a latency histogram, rendered in the Prometheus text format
//! (version 0.0.4) at `GET /metrics`. Plain atomics: recording is a few relaxed
//! increments on the request path, and no metrics crate is needed for six series.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The two review endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /validate`.
    Validate,
    /// `POST /mutate`.
    Mutate,
}

impl Endpoint {
    const ALL: [Endpoint; 2] = [Endpoint::Validate, Endpoint::Mutate];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// How a review ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `allowed: true`.
    Allowed,
    /// `allowed: false`.
    Denied,
    /// HTTP 4xx: the body was not an AdmissionReview warrant could read.
    BadRequest,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Allowed, Outcome::Denied, Outcome::BadRequest];

    fn name(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::BadRequest => "bad_request",
        }
    }
}

/// What a verification concluded, for the verification counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Trusted.
    Trusted,
    /// Admitted unverified by the policy default.
    Unlisted,
    /// Not trusted.
    Untrusted,
    /// Could not finish.
    Failed,
}

impl Checked {
    const ALL: [Checked; 4] = [
        Checked::Trusted,
        Checked::Unlisted,
        Checked::Untrusted,
        Checked::Failed,
    ];

    fn name(self) -> &'static str {
        match self {
            Checked::Trusted => "trusted",
            Checked::Unlisted => "unlisted",
            Checked::Untrusted => "untrusted",
            Checked::Failed => "failed",
        }
    }
}

/// Why a connection was closed by the server before its client was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Its address already held its share of connections.
    PerIp,
    /// No complete request head within the header timeout of connecting.
    Slow,
    /// Under pressure, nothing was being answered on it.
    Pressure,
}

impl Shed {
    const ALL: [Shed; 3] = [Shed::PerIp, Shed::Slow, Shed::Pressure];

    fn name(self) -> &'static str {
        match self {
            Shed::PerIp => "per_ip",
            Shed::Slow => "slow",
            Shed::Pressure => "pressure",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds: dense below 10 ms, where a
/// warm answer lives, then up to the longest webhook timeout the API server allows.
const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }
}

/// Everything `/metrics` shows.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [[AtomicU64; 3]; 2],
    latency: [Histogram; 2],
    /// Answers served from the cache without a verification.
    pub cache_hits: AtomicU64,
    /// Lookups that started a verification.
    pub cache_misses: AtomicU64,
    /// Lookups that joined a verification already in flight.
    pub cache_coalesced: AtomicU64,
    /// Verifications started ahead of expiry while the cached answer was served.
    pub cache_refreshes: AtomicU64,
    verifications: [AtomicU64; 4],
    /// Images whose verification missed the request deadline.
    pub deadline_exceeded: AtomicU64,
    /// Verifications that went to a registry (each is one HEAD for a
    /// digest-pinned image, two for a tag, while `warrant.tuf` is unchanged).
    pub registry_checks: Arc<AtomicU64>,
    /// Verifications dropped before they started, because every review waiting
    /// for them had been answered.
    pub verifications_unstarted: AtomicU64,
    /// Reviews denied at once for naming more distinct images than allowed.
    pub reviews_over_image_cap: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    shed: [AtomicU64; 3],
    /// Images that did not verify but were admitted: [warn, audit].
    admitted_unverified: [AtomicU64; 2],
    /// Policy file changes put in force.
    pub policy_reloads: AtomicU64,
    /// Policy file changes rejected (the previous policy stayed in force).
    pub policy_rejections: AtomicU64,
    /// 1 while the policy file on disk is rejected and an older one is in force.
    pub policy_stale: AtomicU64,
}

impl Metrics {
    /// Record one answered request.
    pub fn request(&self, endpoint: Endpoint, outcome: Outcome, took: Duration) {
        let e = endpoint as usize;
        self.requests[e][outcome as usize].fetch_add(1, Relaxed);
        self.latency[e].observe(took);
    }

    /// Record one finished verification.
    pub fn verification(&self, checked: Checked) {
        self.verifications[checked as usize].fetch_add(1, Relaxed);
    }

    /// Record an image that did not verify and was admitted anyway, under `mode`
    /// (`warn` or `audit`; `enforce` denies and is not counted here).
    pub fn admitted_unverified(&self, mode: crate::policy::Mode) {
        match mode {
            crate::policy::Mode::Warn => self.admitted_unverified[0].fetch_add(1, Relaxed),
            crate::policy::Mode::Audit => self.admitted_unverified[1].fetch_add(1, Relaxed),
            crate::policy::Mode::Enforce => 0,
        };
    }

    /// Images admitted unverified so far under `mode`.
    pub fn admitted_unverified_count(&self, mode: crate::policy::Mode) -> u64 {
        match mode {
            crate::policy::Mode::Warn => self.admitted_unverified[0].load(Relaxed),
            crate::policy::Mode::Audit => self.admitted_unverified[1].load(Relaxed),
            crate::policy::Mode::Enforce => 0,
        }
    }

    /// Record a connection closed by the server.
    pub fn shed(&self, why: Shed) {
        self.shed[why as usize].fetch_add(1, Relaxed);
    }

    /// Requests answered so far with `outcome` at `endpoint`.
    pub fn requests(&self, endpoint: Endpoint, outcome: Outcome) -> u64 {
        self.requests[endpoint as usize][outcome as usize].load(Relaxed)
    }

    /// The policy's part of the exposition: rollout modes and reloads.
    fn render_policy(&self, s: &mut String) {
        use crate::policy::Mode;
        let _ = writeln!(
            s,
            "# HELP warrant_admission_admitted_unverified_total Images that did not verify but were \
             admitted because their policy entry's mode is warn or audit.\n\
             # TYPE warrant_admission_admitted_unverified_total counter"
        );
        for mode in [Mode::Warn, Mode::Audit] {
            let _ = writeln!(
                s,
                "warrant_admission_admitted_unverified_total{{mode=\"{}\"}} {}",
                mode.name(),
                self.admitted_unverified_count(mode)
            );
        }
        let _ = writeln!(
            s,
            "# HELP warrant_admission_policy_reloads_total Changes of the policy file, by result: \
             replaced (in force) or rejected (invalid; the previous policy stays).\n\
             # TYPE warrant_admission_policy_reloads_total counter\n\
             warrant_admission_policy_reloads_total{{result=\"replaced\"}} {}\n\
             warrant_admission_policy_reloads_total{{result=\"rejected\"}} {}\n\
             # HELP warrant_admission_policy_stale 1 while the policy file on disk is rejected and \
             the previous policy is in force.\n\
             # TYPE warrant_admission_policy_stale gauge\n\
             warrant_admission_policy_stale {}",
            self.policy_reloads.load(Relaxed),
            self.policy_rejections.load(Relaxed),
            self.policy_stale.load(Relaxed),
        );
    }

    /// The Prometheus text exposition; `cache_entries` is the current cache size.
    pub fn render(&self, cache_entries: usize) -> String {
        let mut s = String::with_capacity(4096);
        let head = |s: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            &mut s,
            "warrant_admission_requests_total",
            "counter",
            "Admission reviews answered, by endpoint and result.",
        );
        for e in Endpoint::ALL {
            for o in Outcome::ALL {
                let _ = writeln!(
                    s,
                    "warrant_admission_requests_total{{endpoint=\"{}\",result=\"{}\"}} {}",
                    e.name(),
                    o.name(),
                    self.requests(e, o)
                );
            }
        }
        head(
            &mut s,
            "warrant_admission_request_duration_seconds",
            "histogram",
            "Time from the request's arrival to its answer, by endpoint.",
        );
        for e in Endpoint::ALL {
            let h = &self.latency[e as usize];
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i].load(Relaxed);
                let _ = writeln!(
                    s,
                    "warrant_admission_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"{le}\"}} {cumulative}",
                    e.name()
                );
            }
            cumulative += h.counts[BUCKETS.len()].load(Relaxed);
            let _ = writeln!(
                s,
                "warrant_admission_request_duration_seconds_bucket{{endpoint=\"{0}\",le=\"+Inf\"}} {cumulative}\n\
                 warrant_admission_request_duration_seconds_sum{{endpoint=\"{0}\"}} {1}\n\
                 warrant_admission_request_duration_seconds_count{{endpoint=\"{0}\"}} {cumulative}",
                e.name(),
                h.sum_micros.load(Relaxed) as f64 / 1e6,
            );
        }
        let counters: [(&str, &str, u64); 8] = [
            (
                "warrant_admission_cache_hits_total",
                "Image lookups answered from the cache, with no registry request.",
                self.cache_hits.load(Relaxed),
            ),
            (
                "warrant_admission_cache_misses_total",
                "Image lookups that started a verification.",
                self.cache_misses.load(Relaxed),
            ),
            (
                "warrant_admission_cache_coalesced_total",
                "Image lookups that waited for a verification already in flight.",
                self.cache_coalesced.load(Relaxed),
            ),
            (
                "warrant_admission_cache_refreshes_total",
                "Verifications started ahead of a cached answer's expiry, while it was served.",
                self.cache_refreshes.load(Relaxed),
            ),
            (
                "warrant_admission_registry_checks_total",
                "Verifications that went to a registry: 1 HEAD for an image given by digest, \
                 2 for a tag, more when warrant.tuf changed.",
                self.registry_checks.load(Relaxed),
            ),
            (
                "warrant_admission_deadline_exceeded_total",
                "Images denied because their verification missed the request deadline.",
                self.deadline_exceeded.load(Relaxed),
            ),
            (
                "warrant_admission_verifications_unstarted_total",
                "Verifications dropped before they started: every review waiting for them was answered.",
                self.verifications_unstarted.load(Relaxed),
            ),
            (
                "warrant_admission_reviews_over_image_cap_total",
                "Reviews denied at once for naming more distinct images than --max-images-per-review.",
                self.reviews_over_image_cap.load(Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            head(&mut s, name, "counter", help);
            let _ = writeln!(s, "{name} {v}");
        }
        head(
            &mut s,
            "warrant_admission_verifications_total",
            "counter",
            "Finished image verifications, by result.",
        );
        for c in Checked::ALL {
            let _ = writeln!(
                s,
                "warrant_admission_verifications_total{{result=\"{}\"}} {}",
                c.name(),
                self.verifications[c as usize].load(Relaxed)
            );
        }
        head(
            &mut s,
            "warrant_admission_cache_entries",
            "gauge",
            "Images the cache holds an answer or a verification for.",
        );
        let _ = writeln!(s, "warrant_admission_cache_entries {cache_entries}");
        head(
            &mut s,
            "warrant_admission_connections_open",
            "gauge",
            "Client connections open.",
        );
        let _ = writeln!(
            s,
            "warrant_admission_connections_open {}",
            self.connections_open.load(Relaxed)
        );
        head(
            &mut s,
            "warrant_admission_connections_shed_total",
            "counter",
            "Connections closed by the server: per_ip (the address held its share), slow (no \
             request head in time), pressure (idle or slow while connections were scarce).",
        );
        for why in Shed::ALL {
            let _ = writeln!(
                s,
                "warrant_admission_connections_shed_total{{reason=\"{}\"}} {}",
                why.name(),
                self.shed[why as usize].load(Relaxed)
            );
        }
        self.render_policy(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counted() {
        let m = Metrics::default();
        m.request(
            Endpoint::Mutate,
            Outcome::Allowed,
            Duration::from_micros(300),
        );
        m.request(Endpoint::Mutate, Outcome::Denied, Duration::from_millis(3));
        m.request(Endpoint::Mutate, Outcome::Denied, Duration::from_secs(60));
        let text = m.render(7);
        for line in [
            "warrant_admission_requests_total{endpoint=\"mutate\",result=\"allowed\"} 1",
            "warrant_admission_requests_total{endpoint=\"mutate\",result=\"denied\"} 2",
            "warrant_admission_requests_total{endpoint=\"validate\",result=\"bad_request\"} 0",
            "warrant_admission_request_duration_seconds_bucket{endpoint=\"mutate\",le=\"0.0005\"} 1",
            "warrant_admission_request_duration_seconds_bucket{endpoint=\"mutate\",le=\"0.005\"} 2",
            "warrant_admission_request_duration_seconds_bucket{endpoint=\"mutate\",le=\"30\"} 2",
            "warrant_admission_request_duration_seconds_bucket{endpoint=\"mutate\",le=\"+Inf\"} 3",
            "warrant_admission_request_duration_seconds_count{endpoint=\"mutate\"} 3",
            "warrant_admission_request_duration_seconds_sum{endpoint=\"mutate\"} 60.0033",
            "warrant_admission_cache_entries 7",
            "# TYPE warrant_admission_cache_hits_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        // Every sample line is `name{labels} value` with a numeric value.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let v = l.rsplit(' ').next().unwrap_or_default();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
