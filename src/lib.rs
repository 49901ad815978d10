//! warrant: TUF content trust for container images, stored in the OCI registry itself.
#![deny(unsafe_code)]

pub mod cache;
pub mod cli;
pub mod crypto;
pub mod digest;
pub mod ops;
pub mod store;
pub mod tuf;
