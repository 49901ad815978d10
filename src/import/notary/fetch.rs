//! Reading a Notary server's public TUF API (`GET /v2/<GUN>/_trust/tuf/<role>.json`)
//! over HTTPS, every body capped: the server is not trusted until its metadata
//! verified.

use std::path::Path;
use std::time::Duration;

use super::NotaryError;

/// The largest metadata file read from the server.
pub const MAX_METADATA: u64 = 8 << 20;

/// A Notary server for one GUN.
pub struct NotaryServer {
    base: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for NotaryServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NotaryServer({})", self.base)
    }
}

/// An error with its causes (reqwest hides the TLS reason in `source`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s += &format!(": {c}");
        cur = c.source();
    }
    s
}

fn unavailable(url: &str, detail: impl Into<String>) -> NotaryError {
    NotaryError::Server {
        url: url.to_owned(),
        detail: detail.into(),
    }
}

impl NotaryServer {
    /// A client for `url` (e.g. `https://notary.example.com:4443`) and `gun`, trusting
    /// `ca` (PEM) besides the system roots when given.
    pub fn new(
        url: &str,
        gun: &str,
        ca: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, NotaryError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout((timeout / 3).max(Duration::from_secs(1)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("warrant/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca {
            let pem = crate::fsutil::read_regular(ca, 1 << 20).map_err(|e| NotaryError::Input {
                path: ca.to_owned(),
                detail: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| NotaryError::Input {
                    path: ca.to_owned(),
                    detail: format!("not a PEM certificate: {e}"),
                })?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| unavailable(url, format!("HTTP client: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unavailable(url, format!("runtime: {e}")))?;
        Ok(Self {
            base: format!("{}/v2/{}/_trust/tuf", url.trim_end_matches('/'), gun),
            client,
            rt,
        })
    }

    /// The bytes of `<name>.json` (`name` may be `targets/releases`), at most `cap`.
    pub fn get(&self, name: &str, cap: u64) -> Result<Vec<u8>, NotaryError> {
        let url = format!("{}/{name}.json", self.base);
        tracing::debug!(%url, "notary GET");
        self.rt.block_on(async {
            let mut resp = self
                .client
                .get(&url)
                .send()
                .await
                .map_err(|e| unavailable(&url, chain(&e)))?;
            if !resp.status().is_success() {
                return Err(unavailable(&url, format!("HTTP {}", resp.status())));
            }
            if resp.content_length().is_some_and(|l| l > cap) {
                return Err(NotaryError::TooLarge {
                    url: url.clone(),
                    cap,
                });
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| unavailable(&url, e.to_string()))?
            {
                if (body.len() + chunk.len()) as u64 > cap {
                    return Err(NotaryError::TooLarge {
                        url: url.clone(),
                        cap,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        })
    }
}
