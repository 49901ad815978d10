//! Public and private keys as TUF names them, and the [`Signer`] seam.
//!
//! | TUF `keytype` | `scheme`              | `keyval.public`          | signature bytes |
//! |---------------|-----------------------|--------------------------|-----------------|
//! | `ed25519`     | `ed25519`             | 64 hex digits            | 64 raw bytes    |
//! | `ecdsa` (or legacy `ecdsa-sha2-nistp256`) | `ecdsa-sha2-nistp256` | SubjectPublicKeyInfo PEM | ASN.1 DER |
//!
//! These are the encodings python-tuf / securesystemslib write, so key ids and
//! signatures are interchangeable with them.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The key algorithms warrant can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// Ed25519 (fast, small; the default).
    Ed25519,
    /// ECDSA over NIST P-256 with SHA-256 (for HSMs and FIPS environments).
    Ecdsa,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Ecdsa => "ecdsa",
        })
    }
}

/// A TUF key id: lowercase hex sha256 of the canonical key object for keys we make;
/// any string for keys in metadata we receive (the spec does not require clients to
/// recompute it, and python-tuf does not).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub String);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a key could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The `keytype`/`scheme` pair is not one warrant verifies.
    #[error(
        "unsupported key type {keytype:?} with scheme {scheme:?} (supported: ed25519/ed25519, ecdsa/ecdsa-sha2-nistp256)"
    )]
    Unsupported {
        /// The `keytype` field.
        keytype: String,
        /// The `scheme` field.
        scheme: String,
    },
    /// `keyval.public` does not decode for the declared type.
    #[error("malformed {keytype} public key: {detail}")]
    MalformedPublic {
        /// The declared key type.
        keytype: String,
        /// What failed.
        detail: String,
    },
    /// A PKCS#8 private key that is malformed or of an unsupported algorithm.
    #[error("malformed or unsupported private key: {0}")]
    MalformedPrivate(String),
}

/// A signature that does not verify (or does not even decode).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("signature does not verify")]
pub struct BadSignature;

/// A public key warrant can verify with.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// ECDSA P-256 with SHA-256. `legacy_keytype` remembers a `keytype` of
    /// `ecdsa-sha2-nistp256` (older securesystemslib) so re-serialization is faithful.
    EcdsaP256 {
        /// The key.
        key: p256::ecdsa::VerifyingKey,
        /// The PEM text exactly as received (key ids hash the text, not the point).
        pem: String,
        /// Older securesystemslib wrote `keytype: "ecdsa-sha2-nistp256"`.
        legacy_keytype: bool,
    },
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.keytype(), self.public())
    }
}

/// The canonical key object whose sha256 is the key id.
#[derive(Serialize)]
struct KeyObject<'a> {
    keytype: &'a str,
    keyval: KeyVal<'a>,
    scheme: &'a str,
}

#[derive(Serialize)]
struct KeyVal<'a> {
    public: &'a str,
}

impl PublicKey {
    /// Decode a key from the three TUF fields.
    pub fn from_tuf(keytype: &str, scheme: &str, public: &str) -> Result<Self, KeyError> {
        let malformed = |detail: String| KeyError::MalformedPublic {
            keytype: keytype.to_owned(),
            detail,
        };
        match (keytype, scheme) {
            ("ed25519", "ed25519") => {
                let mut raw = [0u8; 32];
                hex::decode_to_slice(public, &mut raw)
                    .map_err(|e| malformed(format!("expected 64 hex digits: {e}")))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map_err(|e| malformed(e.to_string()))?;
                Ok(Self::Ed25519(key))
            }
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                let key = p256::ecdsa::VerifyingKey::from_public_key_pem(public)
                    .map_err(|e| malformed(format!("expected SubjectPublicKeyInfo PEM: {e}")))?;
                Ok(Self::EcdsaP256 {
                    key,
                    pem: public.to_owned(),
                    legacy_keytype: keytype != "ecdsa",
                })
            }
            _ => Err(KeyError::Unsupported {
                keytype: keytype.to_owned(),
                scheme: scheme.to_owned(),
            }),
        }
    }

    /// The TUF `keytype`.
    pub fn keytype(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "ed25519",
            Self::EcdsaP256 {
                legacy_keytype: true,
                ..
            } => "ecdsa-sha2-nistp256",
            Self::EcdsaP256 { .. } => "ecdsa",
        }
    }

    /// The TUF `scheme`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "ed25519",
            Self::EcdsaP256 { .. } => "ecdsa-sha2-nistp256",
        }
    }

    /// The TUF `keyval.public` text.
    pub fn public(&self) -> String {
        match self {
            Self::Ed25519(k) => hex::encode(k.to_bytes()),
            Self::EcdsaP256 { pem, .. } => pem.clone(),
        }
    }

    /// Which of warrant's key types this is.
    pub fn key_type(&self) -> KeyType {
        match self {
            Self::Ed25519(_) => KeyType::Ed25519,
            Self::EcdsaP256 { .. } => KeyType::Ecdsa,
        }
    }

    /// The key id: lowercase hex sha256 of the canonical JSON of
    /// `{"keytype", "keyval": {"public"}, "scheme"}`, as securesystemslib computes it.
    pub fn key_id(&self) -> KeyId {
        let public = self.public();
        let obj = KeyObject {
            keytype: self.keytype(),
            keyval: KeyVal { public: &public },
            scheme: self.scheme(),
        };
        // A fixed object of strings always canonicalizes; an error here is a bug.
        let bytes = crate::tuf::canonical::to_canonical(&obj).unwrap_or_default();
        KeyId(hex::encode(Sha256::digest(&bytes)))
    }

    /// Verify `sig` over `msg`. Never panics on any input.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), BadSignature> {
        match self {
            Self::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| BadSignature)?;
                key.verify_strict(msg, &sig).map_err(|_| BadSignature)
            }
            Self::EcdsaP256 { key, .. } => {
                use p256::ecdsa::signature::Verifier as _;
                let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| BadSignature)?;
                key.verify(msg, &sig).map_err(|_| BadSignature)
            }
        }
    }
}

/// Something that can produce TUF signatures: a software key or (later) an HSM key.
pub trait Signer {
    /// The public half.
    fn public_key(&self) -> &PublicKey;
    /// Sign `msg` (the canonical bytes of a `signed` object).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// A signer failed (e.g. an HSM refused).
#[derive(Debug, thiserror::Error)]
#[error("signing with key {key_id} failed: {detail}")]
pub struct SignError {
    /// The key that failed.
    pub key_id: KeyId,
    /// Why.
    pub detail: String,
}

enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    EcdsaP256(p256::ecdsa::SigningKey),
}

/// A private key held in memory (zeroized on drop by the underlying crates).
pub struct SecretKey {
    secret: Secret,
    public: PublicKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public.key_id())
    }
}

fn random_32() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut())
        .map_err(|e| KeyError::MalformedPrivate(format!("system RNG failed: {e}")))?;
    Ok(seed)
}

impl SecretKey {
    /// Generate a new key from the system RNG.
    pub fn generate(kind: KeyType) -> Result<Self, KeyError> {
        match kind {
            KeyType::Ed25519 => {
                let seed = random_32()?;
                Ok(Self::from_ed25519(ed25519_dalek::SigningKey::from_bytes(
                    &seed,
                )))
            }
            KeyType::Ecdsa => loop {
                // A uniformly random 32-byte string is a valid scalar except with
                // probability ~2^-32; retry in that case.
                let seed = random_32()?;
                if let Ok(k) = p256::ecdsa::SigningKey::from_slice(seed.as_ref()) {
                    return Self::from_p256(k);
                }
            },
        }
    }

    fn from_ed25519(key: ed25519_dalek::SigningKey) -> Self {
        let public = PublicKey::Ed25519(key.verifying_key());
        Self {
            secret: Secret::Ed25519(key),
            public,
        }
    }

    fn from_p256(key: p256::ecdsa::SigningKey) -> Result<Self, KeyError> {
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::MalformedPrivate(e.to_string()))?;
        let public = PublicKey::EcdsaP256 {
            key: *key.verifying_key(),
            pem,
            legacy_keytype: false,
        };
        Ok(Self {
            secret: Secret::EcdsaP256(key),
            public,
        })
    }

    /// Decode an unencrypted PKCS#8 DER private key (Ed25519 or P-256).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            return Ok(Self::from_ed25519(k));
        }
        match p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            Ok(k) => Self::from_p256(k),
            Err(e) => Err(KeyError::MalformedPrivate(format!(
                "not an Ed25519 or P-256 PKCS#8 key ({e})"
            ))),
        }
    }

    /// Encode as unencrypted PKCS#8 DER (only ever handed to the encryptor).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = match &self.secret {
            Secret::Ed25519(k) => k.to_pkcs8_der(),
            Secret::EcdsaP256(k) => p256::pkcs8::EncodePrivateKey::to_pkcs8_der(k),
        }
        .map_err(|e| KeyError::MalformedPrivate(e.to_string()))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }
}

impl Signer for SecretKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.secret {
            Secret::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                Ok(k.sign(msg).to_bytes().to_vec())
            }
            Secret::EcdsaP256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_round_trip_for_both_key_types() {
        for kind in [KeyType::Ed25519, KeyType::Ecdsa] {
            let key = SecretKey::generate(kind).expect("generate");
            let sig = key.sign(b"message").expect("sign");
            let public = key.public_key();
            assert!(public.verify(b"message", &sig).is_ok(), "{kind}");
            assert_eq!(public.verify(b"messagf", &sig), Err(BadSignature));
            assert_eq!(public.verify(b"message", &sig[1..]), Err(BadSignature));
            assert_eq!(public.verify(b"message", b""), Err(BadSignature));
            // Round trip through the TUF fields gives the same key and key id.
            let again = PublicKey::from_tuf(public.keytype(), public.scheme(), &public.public())
                .expect("tuf");
            assert_eq!(&again, public);
            assert_eq!(again.key_id(), public.key_id());
            // And through PKCS#8.
            let der = key.to_pkcs8_der().expect("der");
            let back = SecretKey::from_pkcs8_der(&der).expect("decode");
            assert_eq!(back.public_key().key_id(), public.key_id());
        }
    }

    /// Key ids and the public-key PEM must be exactly what python-tuf /
    /// securesystemslib compute (values printed by securesystemslib 1.x).
    #[test]
    fn key_ids_equal_python_tufs() {
        let ed = PublicKey::from_tuf(
            "ed25519",
            "ed25519",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        )
        .expect("ed25519");
        assert_eq!(
            ed.key_id().0,
            "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916"
        );
        // ec.derive_private_key(12345678901234567890, SECP256R1()) in python.
        let mut scalar = [0u8; 32];
        scalar[24..].copy_from_slice(&12345678901234567890u64.to_be_bytes());
        let sk =
            SecretKey::from_p256(p256::ecdsa::SigningKey::from_slice(&scalar).expect("scalar"))
                .expect("p256");
        let pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEPteijsZI7c5dW34lL2sqr7tEg1EU\n\
                   oks8qo9xD2SZO8JXEaNM3JIpCAtjnwmXf+t8qR7M4WSb/qithccrIGrefg==\n-----END PUBLIC KEY-----\n";
        assert_eq!(sk.public_key().public(), pem);
        assert_eq!(
            sk.public_key().key_id().0,
            "a6b9b3693826c1e55cd10bb20df11a1a0e9116204737140057db65ca26d848c4"
        );
    }

    #[test]
    fn unsupported_and_malformed_keys_are_errors() {
        assert!(matches!(
            PublicKey::from_tuf("rsa", "rsassa-pss-sha256", "x"),
            Err(KeyError::Unsupported { .. })
        ));
        assert!(matches!(
            PublicKey::from_tuf("ed25519", "ed25519", "zz"),
            Err(KeyError::MalformedPublic { .. })
        ));
        assert!(matches!(
            PublicKey::from_tuf("ecdsa", "ecdsa-sha2-nistp256", "-----BEGIN PUBLIC KEY-----"),
            Err(KeyError::MalformedPublic { .. })
        ));
        assert!(SecretKey::from_pkcs8_der(b"\x30\x00").is_err());
    }
}
