//! A plain HTTP(S) TUF repository (metadata URL + targets URL), as python-tuf,
//! go-tuf and tough serve them: the same client workflow over a different
//! transport. Consistent-snapshot names (`N.role.json`, `HASH.name` targets) and
//! percent-encoded role names, every read capped.

use std::time::Duration;

use reqwest::StatusCode;

use super::client::{FetchError, FetchErrorKind, MetaName, Remote};

/// Percent-encode like python's `urllib.parse.quote(s, safe="")`: everything but
/// `A-Z a-z 0-9 _ . - ~` becomes `%XX`. Used for role names in URLs and for file
/// names in a metadata or target directory (so no name can contain `/`).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An HTTP(S) TUF repository.
pub struct HttpRemote {
    metadata_url: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for HttpRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpRemote({})", self.metadata_url)
    }
}

fn unavailable(message: String) -> FetchError {
    FetchError {
        kind: FetchErrorKind::Unavailable,
        message,
    }
}

impl HttpRemote {
    /// A remote for metadata under `metadata_url` (a trailing `/` is optional).
    pub fn new(metadata_url: &str, timeout: Duration) -> Result<Self, FetchError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout((timeout / 3).max(Duration::from_secs(1)))
            .user_agent(concat!("warrant/", env!("CARGO_PKG_VERSION")));
        // Plain HTTP needs no roots; HTTPS shares the process's one verifier.
        let builder = if metadata_url.starts_with("http://") {
            builder.tls_certs_only(Vec::<reqwest::Certificate>::new())
        } else {
            builder.tls_backend_preconfigured(crate::tls::client_config().map_err(unavailable)?)
        };
        let client = builder
            .build()
            .map_err(|e| unavailable(format!("HTTP client: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unavailable(format!("runtime: {e}")))?;
        Ok(Self {
            metadata_url: metadata_url.trim_end_matches('/').to_owned(),
            client,
            rt,
        })
    }

    /// GET `url`, at most `max_bytes` of body; 404 and 403 are `NotFound` (S3-style
    /// servers answer 403 for a missing key).
    pub fn get(&self, url: &str, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        self.rt.block_on(async {
            let mut resp = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| unavailable(format!("{url}: {e}")))?;
            match resp.status() {
                StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => {
                    return Err(FetchError {
                        kind: FetchErrorKind::NotFound,
                        message: format!("{url}: not found"),
                    });
                }
                s if !s.is_success() => {
                    return Err(unavailable(format!("{url}: HTTP {}", s.as_u16())));
                }
                _ => {}
            }
            let too_large = || FetchError {
                kind: FetchErrorKind::TooLarge,
                message: format!("{url}: more than the {max_bytes}-byte limit"),
            };
            if resp.content_length().is_some_and(|n| n > max_bytes) {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| unavailable(format!("{url}: {e}")))?
            {
                if (body.len() + chunk.len()) as u64 > max_bytes {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        })
    }
}

impl Remote for HttpRemote {
    fn fetch(&mut self, file: &MetaName, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        let role = quote(&file.role);
        let url = match file.version {
            Some(v) => format!("{}/{v}.{role}.json", self.metadata_url),
            None => format!("{}/{role}.json", self.metadata_url),
        };
        self.get(&url, max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_python_urllib() {
        assert_eq!(quote("targets"), "targets");
        assert_eq!(quote("a/b c"), "a%2Fb%20c");
        assert_eq!(quote("../x"), "..%2Fx");
        assert_eq!(quote("ä"), "%C3%A4");
        assert_eq!(quote("v1.2_3-x~"), "v1.2_3-x~");
    }
}
