//! How much one review may ask of the server: how many distinct images, how many
//! verifications at once, and how long. A review is an untrusted input: a Pod with
//! thousands of containers, or a Deployment written to probe the webhook, must not
//! buy more of the registry, the verification pool or the clock than any other.

use std::time::Duration;

/// The limits on one review (`warrant serve admission --max-images-per-review`,
/// `--verifications-per-review`).
#[derive(Debug, Clone)]
pub struct ReviewLimits {
    /// Most distinct images one review may name. A review naming more is denied
    /// at once, without a single verification (fail closed): nothing legitimate
    /// runs that many different images in one Pod, and verifying them all would
    /// spend the registry and the pool on one request.
    pub max_images: usize,
    /// Most verifications one review waits on at a time: its share of the
    /// server's pool ([`super::CacheSettings::max_concurrent`]). The pool is
    /// first come, first served; without a share, a review with hundreds of
    /// uncached images would queue them all ahead of every later review.
    pub per_review: usize,
}

impl Default for ReviewLimits {
    fn default() -> Self {
        Self {
            max_images: 64,
            per_review: 4,
        }
    }
}

/// The share of the API server's timeout a review may use: the rest is for
/// the answer's trip back and for a loaded node's scheduling delays.
const SHARE_OF_TIMEOUT: (u32, u32) = (4, 5);

/// The time one review may take: `deadline` (`--deadline-ms`), shortened to 80%
/// of the timeout the API server announces in the request's query string
/// (`POST /validate?timeout=10s`: the API server's REST client adds the
/// webhook's `timeoutSeconds` there), so a webhook configured with a shorter
/// timeout than the server's flag still gets its answer in time.
pub fn budget(deadline: Duration, query: Option<&str>) -> Duration {
    let announced = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("timeout="))
        .and_then(parse_go_duration)
        .filter(|t| !t.is_zero());
    match announced {
        Some(t) => deadline.min(t * SHARE_OF_TIMEOUT.0 / SHARE_OF_TIMEOUT.1),
        None => deadline,
    }
}

/// A duration as Go's `time.Duration.String` writes it (`10s`, `1m0s`,
/// `1.5s`, `500ms`); `None` for anything else, or beyond an hour (the API
/// server allows at most 30 s).
fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number.parse().ok()?;
        let (unit, tail) = [
            ("ms", 1e-3),
            ("us", 1e-6),
            ("µs", 1e-6),
            ("ns", 1e-9),
            ("h", 3600.0),
            ("m", 60.0),
            ("s", 1.0),
        ]
        .into_iter()
        .find_map(|(u, secs)| tail.strip_prefix(u).map(|t| (secs, t)))?;
        total += Duration::try_from_secs_f64(value * unit).ok()?;
        if total > Duration::from_secs(3600) {
            return None;
        }
        rest = tail;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_as_the_api_server_writes_them() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("10s", Some(ms(10_000))),
            ("30s", Some(ms(30_000))),
            ("1m0s", Some(ms(60_000))),
            ("1.5s", Some(ms(1500))),
            ("500ms", Some(ms(500))),
            ("", None),
            ("10", None),
            ("s", None),
            ("10x", None),
            ("-1s", None),
            ("99999999h", None),
            ("1e400s", None),
        ] {
            assert_eq!(parse_go_duration(text), want, "{text:?}");
        }
    }

    #[test]
    fn the_budget_is_the_deadline_or_four_fifths_of_the_announced_timeout() {
        let ms = Duration::from_millis;
        let deadline = ms(8000);
        assert_eq!(budget(deadline, None), deadline);
        assert_eq!(budget(deadline, Some("timeout=10s")), ms(8000));
        assert_eq!(budget(deadline, Some("timeout=30s")), ms(8000));
        assert_eq!(budget(deadline, Some("a=b&timeout=5s")), ms(4000));
        assert_eq!(budget(deadline, Some("timeout=2s&x")), ms(1600));
        // Nonsense or zero is ignored: the configured deadline stands.
        for q in ["timeout=", "timeout=0s", "timeout=soon", "timeouts=1s"] {
            assert_eq!(budget(deadline, Some(q)), deadline, "{q}");
        }
    }
}
