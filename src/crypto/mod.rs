//! Keys: verification keys TUF metadata names, signers, and the encrypted key store.

pub mod fingerprint;
pub mod keys;
pub mod keystore;
pub mod passphrase;
pub mod pkcs11;
pub mod x509;

pub use keys::{KeyId, KeyType, PublicKey, SecretKey, Signer};

/// A key that can sign, wherever it lives: decrypted from the key store, or on a
/// PKCS#11 token. Every command that signs takes either; their signatures are the
/// same bytes a verifier checks.
#[derive(Debug)]
pub enum KeySigner {
    /// A file key, decrypted in memory (zeroized on drop).
    File(SecretKey),
    /// A token key: the token signs.
    Token(pkcs11::TokenKey),
}

impl Signer for KeySigner {
    fn public_key(&self) -> &PublicKey {
        match self {
            Self::File(k) => k.public_key(),
            Self::Token(k) => k.public_key(),
        }
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, keys::SignError> {
        match self {
            Self::File(k) => k.sign(msg),
            Self::Token(k) => k.sign(msg),
        }
    }
}
