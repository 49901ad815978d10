//! The read path's requests: every one capped in bytes, each attempt bounded by
//! `min(--timeout, deadline left)`, idempotent ones retried on 5xx, 429 (after its
//! `Retry-After`) and connection errors while the deadline allows, and a 401 answered once through our own token
//! flow ([`super::token`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

use super::super::{StoreError, StoreErrorKind as Kind};
use super::deadline::seconds;
use super::token::Actions;
use super::{RegistryStore, redact};

/// Idempotent requests are retried this many times on 5xx, 429 or connection errors.
const RETRIES: u32 = 3;

/// An answer whose body was read (within its cap) when its status is a success;
/// other answers carry no body (nothing reads it, and it must not count against a
/// cap meant for the content).
pub(super) struct Response {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

impl Response {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why one attempt failed.
enum Failure {
    /// The transport failed (connection, timeout, body cut off): worth a retry.
    Http(reqwest::Error),
    /// Our own guard around the attempt fired (reqwest's should have first).
    TimedOut,
    /// The content is wrong (too large): final.
    Content(StoreError),
}

impl RegistryStore {
    /// Send a read request to `path` under the repository, authenticating once on
    /// 401, reading at most `max` body bytes. `what` names the item in errors and
    /// `stage` says what was being done when the deadline passed.
    pub(super) async fn read(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        max: u64,
        (what, stage): (&str, &str),
    ) -> Result<Response, StoreError> {
        let url = format!("{}/v2/{}/{}", self.base, self.repository, path);
        let mut authenticated = false;
        loop {
            let mut headers = HeaderMap::new();
            if let Some(a) = accept.and_then(|a| HeaderValue::from_str(a).ok()) {
                headers.insert(ACCEPT, a);
            }
            if let Some(h) = self.authorization.lock().ok().and_then(|g| g.clone()) {
                headers.insert(AUTHORIZATION, h);
            }
            let r = self
                .send(method.clone(), &url, headers, max, (what, stage))
                .await?;
            if r.status == StatusCode::UNAUTHORIZED && !authenticated {
                authenticated = true;
                self.authenticate(&r, Actions::Pull).await?;
                continue;
            }
            return Ok(r);
        }
    }

    /// A write request under the repository (or to an upload `url`), with a push
    /// token: on 401 our own token flow asks for pull+push once and the request is
    /// sent again.
    pub(super) async fn write(
        &self,
        method: Method,
        url: &str,
        content_type: &str,
        body: Option<&[u8]>,
        ctx: (&str, &str),
    ) -> Result<Response, StoreError> {
        let mut authenticated = false;
        loop {
            let mut headers = HeaderMap::new();
            if let Ok(ct) = HeaderValue::from_str(content_type) {
                headers.insert(reqwest::header::CONTENT_TYPE, ct);
            }
            if let Some(h) = self.authorization.lock().ok().and_then(|g| g.clone()) {
                headers.insert(AUTHORIZATION, h);
            }
            let r = self
                .send_body(method.clone(), url, headers, body, 64 * 1024, ctx)
                .await?;
            if r.status == StatusCode::UNAUTHORIZED && !authenticated {
                authenticated = true;
                self.authenticate(&r, Actions::PullPush).await?;
                continue;
            }
            return Ok(r);
        }
    }

    /// One request to any URL (the registry or its token service), with retries,
    /// each attempt (answer and body) bounded by `min(timeout, deadline left)`.
    pub(super) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        max: u64,
        ctx: (&str, &str),
    ) -> Result<Response, StoreError> {
        self.send_body(method, url, headers, None, max, ctx).await
    }

    /// [`Self::send`] with a request body (the write path: blob uploads and the
    /// manifest PUT, which are idempotent, or an upload session start, which is
    /// harmless to repeat).
    pub(super) async fn send_body(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<&[u8]>,
        max: u64,
        (what, stage): (&str, &str),
    ) -> Result<Response, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = self.deadline.remaining();
            if left.is_zero() {
                return Err(self.deadline_error(what, stage));
            }
            let per_attempt = self.timeout.min(left);
            let mut req = self
                .client_for(url)?
                .request(method.clone(), url)
                .headers(headers.clone())
                .timeout(per_attempt);
            if let Some(b) = body {
                req = req.body(b.to_vec());
            }
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let result = tokio::time::timeout(per_attempt, self.attempt(req, max, what))
                .await
                .unwrap_or(Err(Failure::TimedOut));
            // `-v`: every request (never a header: credentials live there).
            match &result {
                Ok(r) => tracing::info!(
                    "{method} {url} -> {} ({} bytes, {} ms)",
                    r.status.as_u16(),
                    r.body.len(),
                    started.elapsed().as_millis()
                ),
                Err(_) => tracing::info!(
                    "{method} {url} -> failed after {} ms",
                    started.elapsed().as_millis()
                ),
            }
            let retryable = match &result {
                Ok(r) => r.status.is_server_error() || r.status == StatusCode::TOO_MANY_REQUESTS,
                Err(Failure::TimedOut) => true,
                Err(Failure::Http(e)) => {
                    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
                }
                Err(Failure::Content(_)) => false,
            };
            if retryable && attempt <= RETRIES {
                // 429: wait as long as `Retry-After` asks (whole seconds), within
                // the deadline (checked below) and at most 10 s.
                let asked = result
                    .as_ref()
                    .ok()
                    .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
                    .and_then(|r| r.header("retry-after"))
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(10)));
                let pause = asked.unwrap_or(Duration::from_millis(100 << attempt));
                if self.deadline.remaining() <= pause {
                    return Err(self.deadline_error(what, stage));
                }
                tracing::debug!(
                    "retrying {method} {url} in {} ms (attempt {attempt})",
                    pause.as_millis()
                );
                tokio::time::sleep(pause).await;
                continue;
            }
            return match result {
                Ok(r) => Ok(r),
                Err(Failure::Content(e)) => Err(e),
                Err(f) => Err(self.failure(what, stage, f, per_attempt)),
            };
        }
    }

    /// One attempt: the answer, and its body when the status is a success.
    async fn attempt(
        &self,
        req: reqwest::RequestBuilder,
        max: u64,
        what: &str,
    ) -> Result<Response, Failure> {
        let resp = req.send().await.map_err(Failure::Http)?;
        if !resp.status().is_success() {
            return Ok(Response {
                status: resp.status(),
                headers: resp.headers().clone(),
                body: Vec::new(),
            });
        }
        self.collect(what, resp, max).await
    }

    fn client_for(&self, url: &str) -> Result<&reqwest::Client, StoreError> {
        // A plain-HTTP registry's client has no TLS roots; a token service it names
        // over HTTPS gets a client that has them.
        if !(self.plain && url.starts_with("https://")) {
            return Ok(&self.http);
        }
        if let Some(c) = self.tls.get() {
            return Ok(c);
        }
        let tls = crate::tls::client_config().map_err(|e| self.err(Kind::Io, "client", e))?;
        let client = super::client_builder(self.timeout)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| self.err(Kind::Io, "client", e.to_string()))?;
        Ok(self.tls.get_or_init(|| client))
    }

    /// The error for a deadline that passed while `stage` ran.
    pub(super) fn deadline_error(&self, what: &str, stage: &str) -> StoreError {
        self.err(
            Kind::DeadlineExceeded,
            what,
            format!(
                "deadline of {} exceeded while {stage}; raise --deadline",
                seconds(self.deadline.budget()),
            ),
        )
    }

    fn failure(&self, what: &str, stage: &str, f: Failure, per_attempt: Duration) -> StoreError {
        if self.deadline.passed() {
            return self.deadline_error(what, stage);
        }
        match f {
            Failure::Http(e) => self.transport_error(what, &e, per_attempt),
            Failure::TimedOut => self.err(
                Kind::Io,
                what,
                format!("timed out after {}", seconds(per_attempt)),
            ),
            Failure::Content(e) => e,
        }
    }

    fn transport_error(&self, what: &str, e: &reqwest::Error, after: Duration) -> StoreError {
        let why = if e.is_timeout() {
            format!("timed out after {}", seconds(after))
        } else if e.is_connect() {
            "cannot connect (is the registry up and the address right?)".to_owned()
        } else {
            "request failed".to_owned()
        };
        self.err(Kind::Io, what, format!("{why}: {}", redact(&e.to_string())))
    }

    async fn collect(
        &self,
        what: &str,
        mut resp: reqwest::Response,
        max: u64,
    ) -> Result<Response, Failure> {
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(Failure::Content(self.err(
                Kind::TooLarge,
                what,
                format!("the registry announces more than the {max}-byte limit"),
            )));
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > max {
                        return Err(Failure::Content(self.err(
                            Kind::TooLarge,
                            what,
                            format!("more than the {max}-byte limit"),
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(Failure::Http(e)),
            }
        }
        self.counters
            .bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    pub(super) fn status_error(&self, what: &str, r: &Response) -> StoreError {
        let (kind, hint) = match r.status {
            StatusCode::NOT_FOUND => (Kind::NotFound, "not found"),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => (
                Kind::Io,
                "access denied: log in with `docker login` (warrant reads ~/.docker/config.json)",
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                (Kind::Io, "rate limited by the registry; retry later")
            }
            s if s.is_server_error() => (Kind::Io, "the registry failed"),
            _ => (Kind::Io, "unexpected answer"),
        };
        self.err(kind, what, format!("HTTP {}: {hint}", r.status.as_u16()))
    }
}
