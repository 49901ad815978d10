//! An OCI distribution registry as a [`Store`] (DESIGN §3), any registry that stores
//! OCI artifacts: the TUF repository is the artifact tagged `warrant.tuf`.
//!
//! Writes (blob existence checks, blob uploads, the manifest PUT) and the registry
//! token flow go through `oci-client`. Reads go through `reqwest` (which `oci-client`
//! is built on, so no new dependency) because `oci-client` cannot do what the
//! verify path needs: it reads manifests with no size cap (an endless-data hole),
//! its manifest HEAD silently falls back to an uncapped GET, it reports 4xx errors
//! without their status code (a 404 cannot be told from a 403), and against a
//! registry without auth it sends a `GET /v2/` ping before *every* request, which
//! would double the requests of a warm verify.
//!
//! The store is synchronous, like the rest of the TUF code; it owns a small tokio
//! runtime and issues the requests of one step concurrently (a warm verify's two
//! HEADs, a cold verify's blob GETs, a publish's uploads).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client as OciClient, Reference, RegistryOperation};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue,
};
use reqwest::{Method, StatusCode};

use super::artifact::{self, OCI_MANIFEST_MEDIA_TYPE};
use super::auth::Credentials;
use super::{
    Descriptor, ImageRef, Listing, Location, MAX_MANIFEST_BYTES, NewFile, Store, StoreError,
    StoreErrorKind as Kind, StoredFile, TUF_TAG,
};
use crate::digest::Sha256Digest;

/// Every manifest GET/HEAD sends these: distribution answers 404 to an OCI manifest
/// request that does not accept OCI types, and rewrites docker ones otherwise.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Idempotent requests are retried this many times on 5xx or connection errors.
const RETRIES: u32 = 3;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Per-request timeout (connect timeout is a third of it, at least 1 s).
    pub timeout: Duration,
    /// Hosts (`host[:port]`) allowed over plain HTTP besides loopback.
    pub insecure: Vec<String>,
    /// Credentials to present.
    pub credentials: Credentials,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            insecure: Vec::new(),
            credentials: Credentials::Anonymous,
        }
    }
}

/// True for hosts docker talks to over plain HTTP by default: loopback only.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Request counters (for benchmarks and the request-minimality tests).
#[derive(Debug, Default)]
pub struct Counters {
    /// HTTP requests sent by the read path.
    pub requests: AtomicU64,
    /// Body bytes read.
    pub bytes: AtomicU64,
}

/// A repository in a registry.
pub struct RegistryStore {
    location: Location,
    repository: String,
    base: String,
    reference: Reference,
    rt: tokio::runtime::Runtime,
    plain: bool,
    timeout_opt: Duration,
    /// Built on first use: only writes and the token flow need it.
    oci: std::sync::OnceLock<OciClient>,
    http: reqwest::Client,
    credentials: Credentials,
    authorization: Mutex<Option<HeaderValue>>,
    push_ready: Mutex<bool>,
    memo: Mutex<HashMap<Sha256Digest, Vec<u8>>>,
    timeout: Duration,
    /// What the read path cost.
    pub counters: Counters,
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryStore({})", self.location)
    }
}

struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl RegistryStore {
    /// A store for `location` (a registry location).
    pub fn open(location: Location, opts: &RegistryOptions) -> Result<Self, StoreError> {
        let Location::Registry {
            registry,
            repository,
        } = &location
        else {
            return Err(StoreError::new(
                Kind::Malformed,
                &location,
                "location",
                "not a registry",
            ));
        };
        let plain = is_loopback(registry) || opts.insecure.iter().any(|h| h == registry);
        let scheme = if plain { "http" } else { "https" };
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry.as_str()
        };
        let base = format!("{scheme}://{host}");
        // rustls with the ring provider (no C toolchain needed); an error only means
        // a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let io = |what: &str, e: String| StoreError::new(Kind::Io, &location, what, e);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout(opts.timeout))
            .timeout(opts.timeout)
            .user_agent(concat!("warrant/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5));
        if plain {
            // No TLS will be spoken: skip loading the system roots, which is most of
            // a warm verify's CPU time (and a redirect to https then fails closed).
            builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
        }
        let http = builder.build().map_err(|e| io("client", e.to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| io("runtime", e.to_string()))?;
        let reference =
            Reference::with_tag(registry.clone(), repository.clone(), TUF_TAG.to_owned());
        Ok(Self {
            repository: repository.clone(),
            location,
            base,
            reference,
            rt,
            plain,
            timeout_opt: opts.timeout,
            oci: std::sync::OnceLock::new(),
            http,
            credentials: opts.credentials.clone(),
            authorization: Mutex::new(None),
            push_ready: Mutex::new(false),
            memo: Mutex::new(HashMap::new()),
            timeout: opts.timeout,
            counters: Counters::default(),
        })
    }

    fn err(&self, kind: Kind, what: &str, detail: impl Into<String>) -> StoreError {
        StoreError::new(kind, &self.location, what, detail)
    }

    fn oci(&self) -> Result<&OciClient, StoreError> {
        if let Some(c) = self.oci.get() {
            return Ok(c);
        }
        let config = ClientConfig {
            protocol: if self.plain {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(connect_timeout(self.timeout_opt)),
            read_timeout: Some(self.timeout_opt),
            user_agent: concat!("warrant/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client =
            OciClient::try_from(config).map_err(|e| self.err(Kind::Io, "client", e.to_string()))?;
        Ok(self.oci.get_or_init(|| client))
    }

    fn oci_auth(&self) -> RegistryAuth {
        match &self.credentials {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.to_string())
            }
        }
    }

    /// Obtain an Authorization header for `op` through oci-client's token flow
    /// (bearer challenge, or basic when the registry asks for it).
    async fn authenticate(&self, op: RegistryOperation) -> Result<(), StoreError> {
        let token = self
            .oci()?
            .auth(&self.reference, &self.oci_auth(), op)
            .await
            .map_err(|e| self.err(Kind::Io, "authentication", redact(&e.to_string())))?;
        let header = match (token, &self.credentials) {
            (Some(t), _) => HeaderValue::from_str(&format!("Bearer {t}")).ok(),
            (None, Credentials::Basic { username, password }) => {
                use base64::Engine as _;
                let raw = zeroize::Zeroizing::new(format!("{username}:{}", password.as_str()));
                let enc = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
                HeaderValue::from_str(&format!("Basic {enc}")).ok()
            }
            (None, Credentials::Anonymous) => None,
        };
        if let Ok(mut slot) = self.authorization.lock() {
            *slot = header.map(|mut h| {
                h.set_sensitive(true);
                h
            });
        }
        Ok(())
    }

    /// Send a read request, retrying 5xx and connection errors, authenticating once
    /// on 401, and reading at most `max` body bytes.
    async fn read(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        max: u64,
    ) -> Result<Response, StoreError> {
        let url = format!("{}/v2/{}/{}", self.base, self.repository, path);
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), &url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(h) = self.authorization.lock().ok().and_then(|g| g.clone()) {
                req = req.header(AUTHORIZATION, h);
            }
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let result = req.send().await;
            let retryable = match &result {
                Ok(r) => r.status().is_server_error(),
                Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            };
            if retryable && attempt <= RETRIES {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                continue;
            }
            let resp = result.map_err(|e| self.transport_error(path, &e))?;
            if resp.status() == StatusCode::UNAUTHORIZED && !authenticated {
                authenticated = true;
                self.authenticate(RegistryOperation::Pull).await?;
                continue;
            }
            return self.collect(path, resp, max).await;
        }
    }

    fn transport_error(&self, what: &str, e: &reqwest::Error) -> StoreError {
        let why = if e.is_timeout() {
            format!("timed out after {:?}", self.timeout)
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
    ) -> Result<Response, StoreError> {
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(self.err(
                Kind::TooLarge,
                what,
                format!("the registry announces more than the {max}-byte limit"),
            ));
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > max {
                        return Err(self.err(
                            Kind::TooLarge,
                            what,
                            format!("more than the {max}-byte limit"),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.transport_error(what, &e)),
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

    fn status_error(&self, what: &str, r: &Response) -> StoreError {
        let (kind, hint) = match r.status {
            StatusCode::NOT_FOUND => (Kind::NotFound, "not found"),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => (
                Kind::Io,
                "access denied: log in with `docker login` (warrant reads ~/.docker/config.json)",
            ),
            s if s.is_server_error() => (Kind::Io, "the registry failed"),
            _ => (Kind::Io, "unexpected answer"),
        };
        self.err(kind, what, format!("HTTP {}: {hint}", r.status.as_u16()))
    }

    /// HEAD a manifest: its descriptor, or `None` on 404. A registry that omits
    /// `Docker-Content-Digest` is asked again with a capped GET.
    async fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>, StoreError> {
        let path = format!("manifests/{reference}");
        let r = self
            .read(Method::HEAD, &path, Some(MANIFEST_ACCEPT), 0)
            .await?;
        if r.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status.is_success() {
            return Err(self.status_error(&path, &r));
        }
        let media_type = r.header(CONTENT_TYPE.as_str()).map(str::to_owned);
        let size = r
            .header(CONTENT_LENGTH.as_str())
            .and_then(|s| s.parse::<u64>().ok());
        match (
            r.header("docker-content-digest")
                .and_then(|d| d.parse().ok()),
            size,
            media_type,
        ) {
            (Some(digest), Some(size), Some(media_type)) if size <= MAX_MANIFEST_BYTES => {
                Ok(Some(Descriptor {
                    media_type,
                    digest,
                    size,
                }))
            }
            _ => Ok(self.get_manifest(reference).await?.map(|(d, _)| d)),
        }
    }

    /// GET a manifest (capped): its descriptor and bytes, or `None` on 404.
    async fn get_manifest(
        &self,
        reference: &str,
    ) -> Result<Option<(Descriptor, Vec<u8>)>, StoreError> {
        let path = format!("manifests/{reference}");
        let r = self
            .read(
                Method::GET,
                &path,
                Some(MANIFEST_ACCEPT),
                MAX_MANIFEST_BYTES,
            )
            .await?;
        if r.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status.is_success() {
            return Err(self.status_error(&path, &r));
        }
        let digest = Sha256Digest::of(&r.body);
        if let Some(claimed) = r.header("docker-content-digest")
            && claimed.starts_with("sha256:")
            && claimed != digest.to_string()
        {
            return Err(self.err(
                Kind::DigestMismatch,
                &path,
                format!("the registry says {claimed} but the bytes hash to {digest}"),
            ));
        }
        let media_type = r
            .header(CONTENT_TYPE.as_str())
            .map(str::to_owned)
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&r.body)
                    .ok()
                    .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| OCI_MANIFEST_MEDIA_TYPE.to_owned());
        let size = r.body.len() as u64;
        Ok(Some((
            Descriptor {
                media_type,
                digest,
                size,
            },
            r.body,
        )))
    }

    async fn get_blob(&self, file: &StoredFile, max: u64) -> Result<Vec<u8>, StoreError> {
        if file.size > max {
            return Err(self.err(
                Kind::TooLarge,
                &file.name,
                format!(
                    "declared size {} is larger than the {max}-byte limit",
                    file.size
                ),
            ));
        }
        if let Some(bytes) = self
            .memo
            .lock()
            .ok()
            .and_then(|m| m.get(&file.digest).cloned())
        {
            return self.check_blob(file, bytes);
        }
        let path = format!("blobs/{}", file.digest);
        let r = self.read(Method::GET, &path, None, file.size).await?;
        if !r.status.is_success() {
            return Err(self.status_error(&file.name, &r));
        }
        self.check_blob(file, r.body)
    }

    fn check_blob(&self, file: &StoredFile, bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let actual = Sha256Digest::of(&bytes);
        if actual != file.digest || bytes.len() as u64 != file.size {
            return Err(self.err(
                Kind::DigestMismatch,
                &file.name,
                format!(
                    "blob {} arrived as {actual} ({} bytes): altered in the registry or in transit",
                    file.digest,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    fn manifest_reference(image: &ImageRef) -> String {
        match (&image.tag, &image.digest) {
            (_, Some(d)) if image.tag.is_none() => d.to_string(),
            (Some(t), _) => t.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => "latest".into(),
        }
    }

    async fn resolve_async(&self, image: &ImageRef) -> Result<Descriptor, StoreError> {
        let what = image.to_string();
        let reference = Self::manifest_reference(image);
        let d = self.head_manifest(&reference).await?.ok_or_else(|| {
            self.err(
                Kind::NotFound,
                &what,
                "no such tag or digest in the registry",
            )
        })?;
        if let Some(pinned) = &image.digest
            && &d.digest != pinned
        {
            return Err(self.err(
                Kind::DigestMismatch,
                &what,
                format!("the tag now points to {}, not the pinned digest", d.digest),
            ));
        }
        Ok(d)
    }
}

fn connect_timeout(total: Duration) -> Duration {
    (total / 3).max(Duration::from_secs(1))
}

/// Error texts from HTTP stacks can echo URLs; strip any `user:pass@` part.
fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(' ') {
        if !out.is_empty() {
            out.push(' ');
        }
        match (word.find("://"), word.find('@')) {
            (Some(i), Some(j)) if j > i => {
                out.push_str(&word[..i + 3]);
                out.push_str("<redacted>");
                out.push_str(&word[j..]);
            }
            _ => out.push_str(word),
        }
    }
    out
}

impl Store for RegistryStore {
    fn location(&self) -> &Location {
        &self.location
    }

    fn head_listing(&self) -> Result<Option<Sha256Digest>, StoreError> {
        Ok(self
            .rt
            .block_on(self.head_manifest(TUF_TAG))?
            .map(|d| d.digest))
    }

    fn listing(&self) -> Result<Option<Listing>, StoreError> {
        let Some((d, bytes)) = self.rt.block_on(self.get_manifest(TUF_TAG))? else {
            return Ok(None);
        };
        artifact::parse_manifest(&bytes, d.digest)
            .map(Some)
            .map_err(|e| self.err(Kind::Malformed, TUF_TAG, e.to_string()))
    }

    fn read_file(&self, file: &StoredFile, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        self.rt.block_on(self.get_blob(file, max_bytes))
    }

    fn prefetch(&self, files: &[(StoredFile, u64)]) {
        let results = self.rt.block_on(join_all(
            files.iter().map(|(f, max)| self.get_blob(f, *max)),
        ));
        if let Ok(mut memo) = self.memo.lock() {
            for ((f, _), r) in files.iter().zip(results) {
                // Failures are reported by the read that needs the file.
                if let Ok(bytes) = r {
                    memo.insert(f.digest, bytes);
                }
            }
        }
    }

    fn publish(
        &self,
        files: &[NewFile],
        previous: Option<&Sha256Digest>,
    ) -> Result<Sha256Digest, StoreError> {
        self.rt.block_on(self.publish_async(files, previous))
    }

    fn resolve(&self, image: &ImageRef) -> Result<Descriptor, StoreError> {
        self.rt.block_on(self.resolve_async(image))
    }

    fn resolve_and_head(
        &self,
        image: &ImageRef,
    ) -> (
        Result<Descriptor, StoreError>,
        Result<Option<Sha256Digest>, StoreError>,
    ) {
        self.rt.block_on(async {
            let (d, h) = tokio::join!(self.resolve_async(image), self.head_manifest(TUF_TAG));
            (d, h.map(|o| o.map(|d| d.digest)))
        })
    }
}

#[cfg(test)]
mod tests;

mod publish;
