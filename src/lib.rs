//! # warrant
//!
//! TUF content trust for container images and any OCI artifact, with no signing
//! server: the TUF repository of an image repository lives *in that same repository*,
//! as an ordinary OCI artifact tagged `warrant.tuf`.
//!
//! ## Architecture
//!
//! Signing an image adds a TUF target whose name is the tag and whose length and
//! sha256 are the manifest's; the targets, snapshot and timestamp roles are re-signed
//! and the whole metadata set is published as one artifact manifest, blobs first and
//! the manifest last, so a failed publish leaves the previous signed state intact.
//! Verifying runs the TUF client workflow (spec §5) against that artifact, then checks
//! that the manifest the store serves now is the signed one.
//!
//! The crate is layered; a module names only modules of its own layer or below
//! (`tests/architecture.rs` fails otherwise; there are no exceptions):
//!
//! 1. [`digest`], [`canonical`] (the bytes every signature covers), [`fsutil`]
//!    (bounded local reads), [`pin`] (what a verifier pins, as data) and [`tls`]
//!    (one TLS configuration per process);
//! 2. [`crypto`]: Ed25519 and ECDSA P-256 keys, key ids as securesystemslib computes
//!    them, X.509, and the encrypted key store;
//! 3. [`tuf`], the specification and nothing else: [`tuf::metadata`] (types that
//!    mirror the spec), [`tuf::verify`] (*verify, then parse*: thresholds checked on
//!    the canonical bytes received, before a typed value exists), [`tuf::trusted`]
//!    (an I/O-free state machine enforcing spec order and every §5 check),
//!    [`tuf::client`] (the update workflow and delegation search over a `Remote`),
//!    [`tuf::prefetch`] (what a refresh is about to read, for one concurrent
//!    download round), [`tuf::editor`] (building and signing new metadata) and
//!    [`tuf::http`] (plain TUF over HTTP, for the conformance client);
//! 4. [`store`]: where metadata and images live, knowing nothing of TUF — named,
//!    content-addressed files plus reference resolution — over an OCI registry or
//!    an OCI image layout;
//! 5. [`cache`], the verifier's trusted state, locked and written atomically, and
//!    [`policy`], which repositories are trusted and anchored how (and what that
//!    means for one image: [`policy::decide`]);
//! 6. [`ops`], one module per command (init, sign, verify, approve, renew, ...), all
//!    working on one [`ops::Repository`] per location (store, trusted cache
//!    anchored by [`ops::anchor`], the listing read once; `verify`, `edit`,
//!    `refresh`), with the publish loop in [`ops::publish`] and every failure an
//!    [`ops::OpError`] with a deliberate exit code (`docs/architecture.md` follows
//!    `sign` and `verify` through the modules);
//! 7. [`plugins`] (the containerd verifier protocol, which name the binary was
//!    started under, and installing the host links), [`admission`] (the Kubernetes
//!    admission webhook) and [`import`]
//!    (Notary v1 repositories read, verified and rewritten as warrant ones);
//! 8. [`cli`], which parses arguments and formats output, nothing else; the Docker
//!    CLI plugin ([`cli::docker`]) is another front end of it.
//!
//! [`manual`] explains the threat model: which attack each check stops, and where.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod admission;
pub mod cache;
pub mod canonical;
pub mod cli;
pub mod crypto;
pub mod digest;
pub mod fsutil;
pub mod import;
pub mod logging;
pub mod manual;
pub mod ops;
pub mod pin;
pub mod plugins;
pub mod policy;
pub mod store;
pub mod tls;
pub mod tuf;
