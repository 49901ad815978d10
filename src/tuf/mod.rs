//! The Update Framework, independent of OCI: metadata, canonical JSON, signature
//! thresholds, the trust state machine, the client workflow and the editor.

/// Canonical JSON lives below `tuf` (keys hash it too); re-exported here.
pub use crate::canonical;
pub mod client;
pub mod delegation;
pub mod editor;
pub mod http;
pub mod index;
pub mod local;
/// An in-memory repository and client state for tests and benchmarks; only with
/// the `test-support` feature (or in this crate's own unit tests).
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod metadata;
pub mod prefetch;
pub mod trusted;
pub mod verify;
