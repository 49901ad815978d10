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
//! The crate is layered; arrows point one way:
//!
//! * [`cli`] parses arguments and formats output, nothing else, and [`plugins`]
//!   speaks docker's and containerd's plugin protocols (the same binary under
//!   another name), and [`admission`] is the Kubernetes admission webhook
//!   (`warrant serve admission`); all call
//! * [`ops`], one module per command (init, sign, verify, inspect, export), which
//!   composes
//! * [`tuf`], the specification and nothing else: [`tuf::metadata`] (types that
//!   mirror the spec), [`tuf::verify`] (*verify, then parse*: thresholds checked on
//!   the canonical bytes received, before a typed value exists), [`tuf::trusted`]
//!   (an I/O-free state machine enforcing spec order and every §5 check),
//!   [`tuf::client`] (the update workflow and delegation search over a `Remote`),
//!   and [`tuf::editor`] (building and signing new metadata);
//! * [`crypto`]: Ed25519 and ECDSA P-256 keys, key ids as securesystemslib computes
//!   them, and the encrypted key store;
//! * [`store`]: where metadata and images live, knowing nothing of TUF — named,
//!   content-addressed files plus reference resolution — with the OCI image layout
//!   backend; and [`cache`], the verifier's trusted state, locked and written
//!   atomically.
//!
//! [`manual`] explains the threat model: which attack each check stops, and where.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod admission;
pub mod cache;
pub mod cli;
pub mod crypto;
pub mod digest;
pub mod fsutil;
pub mod manual;
pub mod ops;
pub mod plugins;
pub mod policy;
pub mod store;
pub mod tuf;
