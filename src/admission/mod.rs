//! Kubernetes admission: `warrant serve admission`, a validating and mutating
//! webhook (`admission.k8s.io/v1`) that admits a workload only when every image it
//! runs verifies under the policy, and pins each image to the digest that was
//! verified so the kubelet pulls exactly that.
//!
//! ## Architecture
//!
//! A request travels through four layers, each testable alone:
//!
//! * [`server`]: HTTPS (rustls, HTTP/1.1 keep-alive) with the routes `POST
//!   /validate`, `POST /mutate`, `GET /healthz`, `/readyz`, `/metrics`. It caps
//!   bodies, bounds connections in total and per client address, sheds slow
//!   and idle connections when connections run short ([`conn`]), and drains on
//!   SIGTERM.
//! * [`handler`]: bytes in, bytes out. It parses the review ([`review`]), finds
//!   every container, init container and ephemeral container image of a Pod or
//!   pod template, asks the cache about each distinct image under one deadline,
//!   and answers: allowed (with a JSONPatch on `/mutate`), or denied with a
//!   message naming each untrusted image and why. A body that is not a review is
//!   HTTP 400; nothing in a body can make it panic.
//! * [`cache`]: one answer per image shared by all requests: single-flight
//!   verification, answers served with no registry request until the re-check
//!   interval passes or the metadata nears expiry, refreshed ahead of time.
//! * [`verifier`]: the policy's decision, then [`crate::ops::verify`] — the same
//!   TUF verification as `warrant verify`, against the trusted cache in
//!   `$WARRANT_HOME`.
//!
//! ## Failing closed
//!
//! Every path that does not end in "verified" denies: an unparseable image, a
//! registry that is down or slow (the deadline, below the webhook timeout, turns
//! a hang into a denial that names the image), a verification that panicked, an
//! object whose shape is unexpected. The manifests set `failurePolicy: Fail`, so
//! a webhook that cannot answer at all also denies. What the webhook does *not*
//! see is exempted by configuration only: the namespace selector excludes
//! `kube-system` and warrant's own namespace, so the webhook can always be
//! restarted.
//!
//! ## One review cannot stall the others
//!
//! A review's work is bounded ([`budget`]): at most 64 distinct images (more is
//! a denial, before any registry request), a share of 4 of the 16 verifications
//! the server runs at once, and a time budget — the deadline, shortened to 80%
//! of the timeout the API server announces — after which its remaining images
//! are never looked up and its queued verifications are dropped.
//!
//! [`metrics`] counts requests by result, latencies, cache hits and registry
//! checks for `/metrics`.

pub mod budget;
pub mod cache;
pub mod conn;
pub mod handler;
pub mod metrics;
pub mod reload;
pub mod review;
pub mod server;
pub mod tls;
pub mod verifier;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use budget::ReviewLimits;
pub use cache::{CacheSettings, VerifyCache};
pub use conn::ConnectionLimits;
pub use handler::Reviewer;
pub use server::{Running, serve, start};
pub use verifier::{PolicyVerifier, Verification, Verifier};

/// Largest request body read: an `AdmissionReview` carries the object and, on
/// UPDATE, the old object; the API server's own request limit is 3 MiB.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Everything `warrant serve admission` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`0.0.0.0:8443` in a cluster).
    pub listen: SocketAddr,
    /// PEM certificate chain, leaf first (`tls.crt` of the Secret).
    pub tls_cert: PathBuf,
    /// PEM private key (`tls.key`).
    pub tls_key: PathBuf,
    /// The verify policy (TOML), as for `warrant verify --policy`.
    pub policy: PathBuf,
    /// `$WARRANT_HOME`: the trusted metadata cache (must be writable: an
    /// `emptyDir` under a read-only root file system).
    pub home: PathBuf,
    /// Registry access: timeouts, plain-HTTP hosts, and the docker config
    /// directory whose `config.json` holds pull credentials.
    pub network: crate::ops::Network,
    /// Answer cache settings.
    pub cache: CacheSettings,
    /// Answer every review within this (below the webhook's `timeoutSeconds`).
    pub deadline: Duration,
    /// What one review may ask of the server.
    pub review: ReviewLimits,
    /// Connection limits and the shedding of slow clients.
    pub connections: ConnectionLimits,
    /// After SIGTERM, keep answering this long before draining (endpoints are
    /// removed from Services asynchronously).
    pub shutdown_delay: Duration,
}

impl Config {
    /// A configuration with default cache settings, an 8 s deadline (the
    /// manifests' `timeoutSeconds` is 10) and registry requests bounded by it.
    pub fn new(
        listen: SocketAddr,
        tls_cert: PathBuf,
        tls_key: PathBuf,
        policy: PathBuf,
        home: PathBuf,
    ) -> Self {
        let deadline = Duration::from_secs(8);
        let network = crate::ops::Network {
            timeout: deadline,
            ..crate::ops::Network::default()
        };
        Self {
            listen,
            tls_cert,
            tls_key,
            policy,
            home,
            network,
            cache: CacheSettings::default(),
            deadline,
            review: ReviewLimits::default(),
            connections: ConnectionLimits::default(),
            shutdown_delay: Duration::from_secs(5),
        }
    }
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// The serving certificate or key is unusable.
    #[error("TLS {path}: {detail}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// Why (rustls' words).
        detail: String,
    },
    /// The policy file is unusable.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {detail}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        detail: String,
    },
    /// `$WARRANT_HOME` cannot hold the trusted metadata.
    #[error(
        "{path} is not a writable directory ({detail}): the trusted metadata cache lives there; \
         mount an emptyDir volume there when the root file system is read-only"
    )]
    Home {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        detail: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(String),
}

impl AdmissionError {
    /// Exit code: 2 for configuration (certificates, policy, home), 3 for I/O.
    pub fn exit_code(&self) -> u8 {
        match self {
            AdmissionError::Tls { .. }
            | AdmissionError::Policy(_)
            | AdmissionError::Home { .. } => 2,
            AdmissionError::Bind { .. } | AdmissionError::Runtime(_) => 3,
        }
    }
}
