//! An OCI distribution registry as a [`Store`] (DESIGN §3), any registry that stores
//! OCI artifacts: the TUF repository is the artifact tagged `warrant.tuf`.
//!
//! Writes (blob existence checks, blob uploads, the manifest PUT) go through
//! `oci-client`. Reads, and the token flow, go through `reqwest` (which `oci-client`
//! is built on, so no new dependency) because `oci-client` cannot do what the
//! verify path needs: it reads manifests and token answers with no size cap (an
//! endless-data hole), its manifest HEAD silently falls back to an uncapped GET, it
//! reports 4xx errors without their status code (a 404 cannot be told from a 403),
//! it sends credentials to any token service a registry names, and against a
//! registry without auth it sends a `GET /v2/` ping before *every* request, which
//! would double the requests of a warm verify.
//!
//! Every read is bounded three ways (issue #11): in bytes (the caller's cap; token
//! answers 64 KiB), in time (each attempt `min(--timeout, deadline left)`, the
//! whole store [`RegistryOptions::deadline`]), and in concurrency (a prefetch runs
//! at most [`PREFETCH_CONCURRENCY`] requests and [`PREFETCH_BUDGET`] bytes).
//!
//! The store is synchronous, like the rest of the TUF code; it owns a small tokio
//! runtime and issues the requests of one step concurrently (a warm verify's two
//! HEADs, a cold verify's blob GETs, a publish's uploads).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};

use super::artifact::{self, OCI_MANIFEST_MEDIA_TYPE};
use super::auth::Credentials;
use super::{
    ArtifactKind, Descriptor, ImageRef, Listing, Location, MAX_MANIFEST_BYTES, NewFile, Store,
    StoreError, StoreErrorKind as Kind, StoredFile,
};
use crate::digest::Sha256Digest;

/// Every manifest GET/HEAD sends these: distribution answers 404 to an OCI manifest
/// request that does not accept OCI types, and rewrites docker ones otherwise.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// A prefetch runs at most this many requests at once (issue #11 item 6: a
/// listing of 17,000 files once meant 17,000 concurrent GETs).
pub const PREFETCH_CONCURRENCY: usize = 8;

/// A prefetch reads at most this many bytes in all (by declared sizes): a cold
/// verify's newer roots, timestamp, snapshot and targets fit with room to spare;
/// anything past it is fetched on demand, capped file by file.
pub const PREFETCH_BUDGET: u64 = 32 * 1024 * 1024;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Per-request timeout (connect timeout is a third of it, at least 1 s).
    pub timeout: Duration,
    /// Registry time the store may spend in all (requests, retries, token
    /// requests, pauses between retries); time outside store calls, such as a
    /// passphrase prompt, does not count. Each request gets `min(timeout, left)`.
    pub deadline: Duration,
    /// Hosts (`host[:port]`) allowed over plain HTTP besides loopback.
    pub insecure: Vec<String>,
    /// Credentials to present.
    pub credentials: Credentials,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(120),
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
    rt: tokio::runtime::Runtime,
    plain: bool,
    http: reqwest::Client,
    /// A client with TLS roots, for an HTTPS token service of a plain-HTTP registry.
    tls: OnceLock<reqwest::Client>,
    insecure: Vec<String>,
    credentials: Credentials,
    /// The token flow found that the credentials must not go where the registry
    /// sent us ([`token`]); writes then go anonymous too.
    credentials_withheld: AtomicBool,
    authorization: Mutex<Option<HeaderValue>>,
    memo: Mutex<HashMap<Sha256Digest, Vec<u8>>>,
    /// [`Store::last_publish_window`].
    publish_window: Mutex<Option<Duration>>,
    timeout: Duration,
    deadline: deadline::Deadline,
    /// The tagged artifact listed and published (`warrant.tuf` unless changed).
    artifact: ArtifactKind,
    /// What the read path cost.
    pub counters: Counters,
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryStore({})", self.location)
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
        let mut builder = client_builder(opts.timeout);
        if plain {
            // No TLS will be spoken: skip the system roots (a redirect to https then
            // fails closed).
            builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
        } else {
            builder = builder.tls_backend_preconfigured(
                crate::tls::client_config().map_err(|e| io("client", e))?,
            );
        }
        let http = builder.build().map_err(|e| io("client", e.to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| io("runtime", e.to_string()))?;
        Ok(Self {
            repository: repository.clone(),
            location,
            base,
            rt,
            plain,
            http,
            tls: OnceLock::new(),
            insecure: opts.insecure.clone(),
            credentials: opts.credentials.clone(),
            credentials_withheld: AtomicBool::new(false),
            authorization: Mutex::new(None),
            memo: Mutex::new(HashMap::new()),
            publish_window: Mutex::new(None),
            timeout: opts.timeout,
            deadline: deadline::Deadline::new(opts.deadline),
            artifact: ArtifactKind::TUF,
            counters: Counters::default(),
        })
    }

    /// The same repository, listing and publishing the artifact `kind` instead.
    pub fn for_artifact(self, artifact: ArtifactKind) -> Self {
        Self { artifact, ..self }
    }

    fn err(&self, kind: Kind, what: &str, detail: impl Into<String>) -> StoreError {
        StoreError::new(kind, &self.location, what, detail)
    }

    /// HEAD a manifest: its descriptor, or `None` on 404. A registry that omits
    /// `Docker-Content-Digest` is asked again with a capped GET.
    async fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>, StoreError> {
        let path = format!("manifests/{reference}");
        let stage = format!("checking manifest {reference}");
        let r = self
            .read(
                Method::HEAD,
                &path,
                Some(MANIFEST_ACCEPT),
                0,
                (&path, &stage),
            )
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
        let stage = format!("reading manifest {reference}");
        let r = self
            .read(
                Method::GET,
                &path,
                Some(MANIFEST_ACCEPT),
                MAX_MANIFEST_BYTES,
                (&path, &stage),
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
        let stage = format!("fetching blob {}", file.name);
        let r = self
            .read(Method::GET, &path, None, file.size, (&file.name, &stage))
            .await?;
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

/// The read path's HTTP client settings; each request also gets its own timeout,
/// cut to what is left of the deadline.
fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout(timeout))
        .timeout(timeout)
        .user_agent(concat!("warrant/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(5))
}

impl RegistryStore {
    /// Run one store call on the runtime, within what is left of the deadline;
    /// its time is taken from the budget. `what` and `stage` name the call in a
    /// deadline error (requests inside name themselves more precisely first).
    fn run<T>(
        &self,
        (what, stage): (&str, &str),
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Some(left) = self.deadline.begin() else {
            return Err(self.deadline_error(what, stage));
        };
        let started = Instant::now();
        // The requests inside cut their own timeouts to the same instant and
        // report which one ran out; this guard is the backstop (and bounds the
        // writes, which go through `oci-client`).
        let guard = left + Duration::from_millis(250);
        let result = self
            .rt
            .block_on(async { tokio::time::timeout(guard, call).await });
        self.deadline.end(started);
        result.unwrap_or_else(|_| Err(self.deadline_error(what, stage)))
    }
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
        let tag = self.artifact.tag;
        let stage = format!("checking manifest {tag}");
        Ok(self
            .run((tag, &stage), self.head_manifest(tag))?
            .map(|d| d.digest))
    }

    fn listing(&self) -> Result<Option<Listing>, StoreError> {
        let tag = self.artifact.tag;
        let stage = format!("reading manifest {tag}");
        let Some((d, bytes)) = self.run((tag, &stage), self.get_manifest(tag))? else {
            return Ok(None);
        };
        artifact::parse_manifest_of(self.artifact, &bytes, d.digest)
            .map(Some)
            .map_err(|e| self.err(Kind::Malformed, tag, e.to_string()))
    }

    fn read_file(&self, file: &StoredFile, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        let stage = format!("fetching blob {}", file.name);
        self.run((&file.name, &stage), self.get_blob(file, max_bytes))
    }

    /// At most [`PREFETCH_CONCURRENCY`] requests at once and [`PREFETCH_BUDGET`]
    /// bytes in all; files past the budget are left to the reads that need them.
    fn prefetch(&self, files: &[(StoredFile, u64)]) {
        let mut budget = PREFETCH_BUDGET;
        let chosen: Vec<&(StoredFile, u64)> = files
            .iter()
            .filter(|(f, max)| {
                let cost = f.size.min(*max);
                let fits = cost <= budget;
                if fits {
                    budget -= cost;
                }
                fits
            })
            .collect();
        let fetch = futures_util::stream::iter(chosen)
            .map(|(f, max)| async move { (f.digest, self.get_blob(f, *max).await) })
            .buffer_unordered(PREFETCH_CONCURRENCY)
            .collect::<Vec<_>>();
        let results = self.run(("prefetch", "prefetching metadata"), async {
            Ok(fetch.await)
        });
        // Failures are reported by the read that needs the file.
        if let (Ok(results), Ok(mut memo)) = (results, self.memo.lock()) {
            for (digest, r) in results {
                if let Ok(bytes) = r {
                    memo.insert(digest, bytes);
                }
            }
        }
    }

    fn publish(
        &self,
        files: &[NewFile],
        previous: Option<&Sha256Digest>,
    ) -> Result<Sha256Digest, StoreError> {
        self.publish_keeping(&[], files, previous)
    }

    fn last_publish_window(&self) -> Option<Duration> {
        *self
            .publish_window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish_keeping(
        &self,
        kept: &[StoredFile],
        files: &[NewFile],
        previous: Option<&Sha256Digest>,
    ) -> Result<Sha256Digest, StoreError> {
        let tag = self.artifact.tag;
        let stage = format!("publishing {tag}");
        self.run((tag, &stage), self.publish_async(kept, files, previous))
    }

    fn read_manifest(&self, digest: &Sha256Digest) -> Result<Vec<u8>, StoreError> {
        let what = format!("manifest {digest}");
        let stage = format!("reading {what}");
        match self.run((&what, &stage), self.get_manifest(&digest.to_string()))? {
            Some((d, bytes)) if d.digest == *digest => Ok(bytes),
            Some((d, _)) => Err(self.err(
                Kind::DigestMismatch,
                &what,
                format!("the registry served bytes hashing to {}", d.digest),
            )),
            None => Err(self.err(Kind::NotFound, &what, "not in the registry")),
        }
    }

    fn resolve(&self, image: &ImageRef) -> Result<Descriptor, StoreError> {
        let what = image.to_string();
        let stage = format!("resolving {what}");
        self.run((&what, &stage), self.resolve_async(image))
    }

    fn resolve_and_head(
        &self,
        image: &ImageRef,
    ) -> (
        Result<Descriptor, StoreError>,
        Result<Option<Sha256Digest>, StoreError>,
    ) {
        let what = image.to_string();
        let stage = format!("resolving {what}");
        let both = self.run((&what, &stage), async {
            let tag = self.artifact.tag;
            let (d, h) = tokio::join!(self.resolve_async(image), self.head_manifest(tag));
            Ok((d, h.map(|o| o.map(|d| d.digest))))
        });
        match both {
            Ok(both) => both,
            Err(e) => (
                Err(e),
                Err(self.deadline_error(self.artifact.tag, "checking its manifest")),
            ),
        }
    }
}

#[cfg(test)]
mod tests;

mod deadline;
mod publish;
mod token;
mod transport;

pub use token::MAX_TOKEN_RESPONSE;
