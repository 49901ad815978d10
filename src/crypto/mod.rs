//! Keys: verification keys TUF metadata names, signers, and the encrypted key store.

pub mod keys;
pub mod keystore;
pub mod x509;

pub use keys::{KeyId, KeyType, PublicKey, SecretKey, Signer};
