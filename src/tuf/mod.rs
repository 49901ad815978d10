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
pub mod memory;
pub mod metadata;
pub mod prefetch;
pub mod trusted;
pub mod verify;
