//! Registry authentication on the read path: the docker token flow (a 401 whose
//! `WWW-Authenticate: Bearer realm=...` names a token service), done with the same
//! capped, deadline-bound requests as every other read ([`super::transport`]).
//!
//! It replaces `oci-client`'s token flow (issue #11 items 7 and 9), which reads the
//! token answer with no size cap and a per-read timeout only (a token service that
//! drips a byte a second, or streams gigabytes, held a `verify` for minutes or drove
//! it out of memory) and which sent the user's credentials to whatever realm the
//! registry named, over plain HTTP too.
//!
//! # Where credentials go
//!
//! The registry's 401 names the token service, so a hostile registry picks where the
//! user's docker credentials are sent. [`credentials_withheld`] is the rule:
//!
//! * to a realm over **HTTPS**, always (docker sends credentials to the token
//!   service it is pointed at, over TLS);
//! * over **plain HTTP** only when the realm is on the **same host** as the registry
//!   *and* that host is loopback or was named with `--insecure-registry`.
//!
//! Otherwise the token is requested anonymously (no `Authorization` header); when
//! the token service refuses an anonymous request, the error says why nothing was
//! sent. The same rule decides whether `oci-client` gets the credentials for writes.

use std::sync::atomic::Ordering;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::super::auth::Credentials;
use super::super::{StoreError, StoreErrorKind as Kind};
use super::transport::Response;
use super::{RegistryStore, is_loopback};

/// Largest token-service answer we read: real ones are a few kB.
pub const MAX_TOKEN_RESPONSE: u64 = 64 * 1024;

/// What the token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Actions {
    /// Reading.
    Pull,
    /// Reading and publishing.
    PullPush,
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm="..."`: credentials go to the registry itself.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`: ask the token service.
    Bearer {
        /// The token service URL.
        realm: String,
        /// `service` parameter, passed back as is.
        service: Option<String>,
        /// `scope` parameter, passed back as is.
        scope: Option<String>,
    },
}

/// Parse one `WWW-Authenticate` value (RFC 7235 auth-params, quoted or not).
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if chars.next().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.push((name.trim().to_owned(), value.trim().to_owned()));
    }
}

/// Why the user's credentials must not go to the token service at `realm` for the
/// registry at `registry` (see the module docs), or `None` when they may.
pub(crate) fn credentials_withheld(
    registry: &Url,
    realm: &Url,
    insecure: &[String],
) -> Option<&'static str> {
    if realm.scheme() == "https" {
        return None;
    }
    let host = realm.host_str().unwrap_or_default();
    let same_host = registry
        .host_str()
        .is_some_and(|r| r.eq_ignore_ascii_case(host));
    if !same_host {
        return Some("it is on another host than the registry and not on HTTPS");
    }
    let named_insecure = insecure.iter().any(|h| {
        let h = h.rsplit_once(':').map_or(h.as_str(), |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                h.as_str()
            }
        });
        h.eq_ignore_ascii_case(host)
    });
    if is_loopback(host) || named_insecure {
        return None;
    }
    Some(
        "it is on plain HTTP to a host that is neither loopback nor named with --insecure-registry",
    )
}

/// The `Authorization: Basic` value for `credentials`, marked sensitive.
pub(super) fn basic_header(credentials: &Credentials) -> Option<HeaderValue> {
    let Credentials::Basic { username, password } = credentials else {
        return None;
    };
    use base64::Engine as _;
    let raw = Zeroizing::new(format!("{username}:{}", password.as_str()));
    let enc = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()));
    let mut h = HeaderValue::from_str(&format!("Basic {}", enc.as_str())).ok()?;
    h.set_sensitive(true);
    Some(h)
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl RegistryStore {
    /// Answer the 401 `r`: obtain an `Authorization` header for `actions` and keep
    /// it for the requests that follow.
    pub(super) async fn authenticate(
        &self,
        r: &Response,
        actions: Actions,
    ) -> Result<(), StoreError> {
        let challenges: Vec<Challenge> = r
            .headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            .collect();
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some((realm, service, scope)),
            Challenge::Basic => None,
        });
        let header = match bearer {
            Some((realm, service, scope)) => Some(
                self.bearer_token(realm, service.as_deref(), scope.as_deref(), actions)
                    .await?,
            ),
            None if challenges.contains(&Challenge::Basic) => basic_header(&self.credentials),
            None => None,
        };
        if let Ok(mut slot) = self.authorization.lock() {
            *slot = header;
        }
        Ok(())
    }

    async fn bearer_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        actions: Actions,
    ) -> Result<HeaderValue, StoreError> {
        let bad = |detail: String| self.err(Kind::Malformed, "token", detail);
        let mut url = Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                bad("the registry names a token service that is not an http(s) URL".into())
            })?;
        let realm_host = url.host_str().unwrap_or_default().to_owned();
        let scope = match (actions, scope) {
            (Actions::Pull, Some(s)) => s.to_owned(),
            (Actions::Pull, None) => format!("repository:{}:pull", self.repository),
            (Actions::PullPush, _) => format!("repository:{}:pull,push", self.repository),
        };
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", &scope);
        }
        let registry = Url::parse(&self.base).map_err(|e| bad(e.to_string()))?;
        let mut headers = HeaderMap::new();
        let mut withheld = None;
        if let Some(basic) = basic_header(&self.credentials) {
            match credentials_withheld(&registry, &url, &self.insecure) {
                None => {
                    headers.insert(AUTHORIZATION, basic);
                }
                Some(reason) => {
                    tracing::warn!(
                        "not sending your credentials to the token service on {realm_host}: {reason}"
                    );
                    self.credentials_withheld.store(true, Ordering::Relaxed);
                    withheld = Some(reason);
                }
            }
        }
        let stage = format!("requesting a token from {realm_host}");
        let r = self
            .send(
                Method::GET,
                url.as_str(),
                headers,
                MAX_TOKEN_RESPONSE,
                ("token", &stage),
            )
            .await
            .map_err(|e| match e.kind {
                // The answer's size is the token service's fault, not the content's.
                Kind::TooLarge => self.err(
                    Kind::Io,
                    "token",
                    format!(
                        "the token service on {realm_host} answered with more than {} KiB",
                        MAX_TOKEN_RESPONSE / 1024
                    ),
                ),
                _ => e,
            })?;
        if !r.status.is_success() {
            let status = r.status.as_u16();
            let detail = match (r.status, withheld) {
                (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, Some(reason)) => format!(
                    "the token service on {realm_host} refused an anonymous request (HTTP {status}); \
                     warrant did not send your credentials because {reason}: \
                     the token service must be on HTTPS"
                ),
                (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, None) => format!(
                    "the token service on {realm_host} refused access (HTTP {status}): \
                     log in with `docker login` (warrant reads ~/.docker/config.json)"
                ),
                _ => format!("the token service on {realm_host} answered HTTP {status}"),
            };
            return Err(self.err(Kind::Io, "token", detail));
        }
        let answer: TokenAnswer = serde_json::from_slice(&r.body).map_err(|_| {
            bad(format!(
                "the token service on {realm_host} answered something other than a token"
            ))
        })?;
        let token = Zeroizing::new(answer.token.or(answer.access_token).unwrap_or_default());
        let mut header = HeaderValue::from_str(&format!("Bearer {}", token.as_str()))
            .ok()
            .filter(|_| !token.is_empty())
            .ok_or_else(|| {
                bad(format!(
                    "the token service on {realm_host} answered an empty or invalid token"
                ))
            })?;
        header.set_sensitive(true);
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm=http://h/t, scope="a\"b""#),
            Some(Challenge::Bearer {
                realm: "http://h/t".into(),
                service: None,
                scope: Some("a\"b".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge(""), None);
        assert_eq!(parse_challenge("Bearer realm"), None);
    }

    #[test]
    fn credentials_go_over_https_or_to_the_same_trusted_plain_host() {
        let url = |s: &str| Url::parse(s).expect("url");
        let insecure = vec!["reg.lan:5000".to_owned()];
        let sent = |registry: &str, realm: &str| {
            credentials_withheld(&url(registry), &url(realm), &insecure).is_none()
        };
        // HTTPS realms get them, on any host.
        assert!(sent(
            "https://reg.example.com",
            "https://auth.example.com/token"
        ));
        assert!(sent(
            "http://127.0.0.1:5000",
            "https://auth.example.com/token"
        ));
        // Plain HTTP only to the same host, when loopback or named insecure.
        assert!(sent("http://127.0.0.1:5000", "http://127.0.0.1:5001/token"));
        assert!(sent("http://localhost:5000", "http://localhost/token"));
        assert!(sent("http://reg.lan:5000", "http://reg.lan:5001/token"));
        assert!(!sent(
            "http://127.0.0.1:5000",
            "http://127.0.0.2:5000/token"
        ));
        assert!(!sent(
            "http://127.0.0.1:5000",
            "http://evil.example.com/token"
        ));
        assert!(!sent(
            "https://reg.example.com",
            "http://reg.example.com/token"
        ));
        assert!(!sent("http://reg.lan:5000", "http://other.lan/token"));
    }
}
