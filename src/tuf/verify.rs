//! Signature thresholds, checked on the bytes received before anything is trusted.
//!
//! The flow is *verify, then parse*: [`Untrusted::parse`] reads only the envelope and
//! keeps `signed` as an untyped JSON value; [`Untrusted::verify`] canonicalizes that
//! value, counts distinct valid keys with the one threshold function
//! ([`check_threshold`]) shared by every delegator, and only then deserializes the
//! typed role into a [`Verified`] — whose constructor is private to this module.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;

use serde::Deserialize;
use serde_json::Value;

use super::canonical::to_canonical;
use super::metadata::{Key, RoleType, Root, Signature};
use crate::crypto::KeyId;

/// Metadata that failed to parse or verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Not a JSON `{"signatures": [...], "signed": {...}}` envelope.
    #[error("{role} metadata is not a valid TUF envelope: {detail}")]
    Malformed {
        /// Which role we were loading.
        role: String,
        /// The parser's complaint.
        detail: String,
    },
    /// `_type` is not what the file should hold (a file substituted for another).
    #[error("{role} metadata has _type {actual:?}, expected {expected:?}")]
    WrongType {
        /// Which role we were loading.
        role: String,
        /// The expected `_type`.
        expected: &'static str,
        /// The `_type` found.
        actual: String,
    },
    /// Too few distinct authorized keys produced a valid signature.
    #[error(
        "{role} metadata is not signed by enough keys: {valid} valid of threshold {threshold} \
         (missing signatures from {missing}); it may have been tampered with, or signed by a revoked key"
    )]
    Threshold {
        /// Which role.
        role: String,
        /// Distinct keys that signed validly.
        valid: usize,
        /// Required.
        threshold: u64,
        /// Authorized keys that did not sign validly.
        missing: String,
    },
}

/// The signatures of one role, checked against one delegator's keys: who signed
/// validly, who is missing. The CLI shows this so people know whom to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationResult {
    /// Distinct authorized key ids with a valid signature.
    pub signed: BTreeSet<KeyId>,
    /// Authorized key ids without a valid signature.
    pub missing: BTreeSet<KeyId>,
    /// Required number of distinct keys.
    pub threshold: NonZeroU64,
}

impl VerificationResult {
    /// True when the threshold is met.
    pub fn is_met(&self) -> bool {
        self.signed.len() as u64 >= self.threshold.get()
    }
}

/// Who may sign a role: the delegator's key table plus the role's key ids and
/// threshold. The same shape for root's roles and for delegations.
#[derive(Debug, Clone, Copy)]
pub struct Authority<'a> {
    /// The delegator's keys by id.
    pub keys: &'a BTreeMap<KeyId, Key>,
    /// Key ids authorized for the role.
    pub keyids: &'a [KeyId],
    /// Distinct keys required.
    pub threshold: NonZeroU64,
}

/// Count distinct authorized keys with a valid signature over `msg`.
///
/// A signature that is malformed, by an unknown key, or does not verify is simply
/// not valid (never an error). Keys are counted once however many signatures they
/// carry, and two key ids naming the same public key count once (tough counted them
/// twice).
pub fn check_threshold(
    msg: &[u8],
    signatures: &[Signature],
    authority: Authority<'_>,
) -> VerificationResult {
    let mut signed = BTreeSet::new();
    let mut missing = BTreeSet::new();
    let mut distinct_public = BTreeSet::new();
    let authorized: BTreeSet<&KeyId> = authority.keyids.iter().collect();
    for keyid in authorized {
        let valid = authority
            .keys
            .get(keyid)
            .and_then(|k| k.to_public().ok())
            .filter(|public| {
                signatures
                    .iter()
                    .filter(|s| &s.keyid == keyid)
                    .any(|s| hex::decode(&s.sig).is_ok_and(|sig| public.verify(msg, &sig).is_ok()))
            });
        match valid {
            Some(public) if distinct_public.insert(public.identity()) => {
                signed.insert(keyid.clone());
            }
            _ => {
                missing.insert(keyid.clone());
            }
        }
    }
    VerificationResult {
        signed,
        missing,
        threshold: authority.threshold,
    }
}

#[derive(Deserialize)]
struct RawEnvelope {
    signatures: Vec<Signature>,
    signed: Value,
}

/// An envelope whose `signed` part has not been verified yet.
#[derive(Debug, Clone)]
pub struct Untrusted {
    role: String,
    bytes: Vec<u8>,
    signatures: Vec<Signature>,
    signed: Value,
    canonical: Vec<u8>,
}

impl Untrusted {
    /// Parse the envelope of `bytes` (expected to hold `role`) without trusting it.
    pub fn parse(role: &str, bytes: Vec<u8>) -> Result<Self, MetadataError> {
        let malformed = |detail: String| MetadataError::Malformed {
            role: role.to_owned(),
            detail,
        };
        let raw: RawEnvelope =
            serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
        if !raw.signed.is_object() {
            return Err(malformed("\"signed\" is not an object".into()));
        }
        // Spec §4.2: "the keyid MUST be unique in the signatures array". python-tuf
        // rejects such metadata outright; so do we (duplicates would count once anyway).
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = raw.signatures.iter().find(|s| !seen.insert(&s.keyid)) {
            return Err(malformed(format!(
                "several signatures by key {}",
                short_id(&dup.keyid.0)
            )));
        }
        let canonical = to_canonical(&raw.signed).map_err(|e| malformed(e.to_string()))?;
        Ok(Self {
            role: role.to_owned(),
            bytes,
            signatures: raw.signatures,
            signed: raw.signed,
            canonical,
        })
    }

    /// The `_type` claimed by the unverified metadata.
    pub fn claimed_type(&self) -> Option<&str> {
        self.signed.get("_type").and_then(Value::as_str)
    }

    /// The role name this was loaded as.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The envelope exactly as received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The canonical bytes of `signed` (what signatures cover).
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// The signatures, unverified.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The unverified `signed` object.
    pub fn signed(&self) -> &Value {
        &self.signed
    }

    /// Parse the typed role *without* checking signatures: for showing a pending
    /// version to a reviewer, never for a trust decision.
    pub fn parse_unverified<T: RoleType>(&self) -> Result<T, MetadataError> {
        self.parse_typed()
    }

    /// Check the threshold of `authority` and then build the typed role.
    pub fn verify<T: RoleType>(
        self,
        authority: Authority<'_>,
    ) -> Result<Verified<T>, MetadataError> {
        let result = check_threshold(&self.canonical, &self.signatures, authority);
        if !result.is_met() {
            return Err(threshold_error(&self.role, &result));
        }
        let value = self.parse_typed()?;
        Ok(self.into_verified(value, result))
    }

    /// Signature check without consuming (for root: checked by old and new root).
    pub fn check(&self, authority: Authority<'_>) -> Result<VerificationResult, MetadataError> {
        let result = check_threshold(&self.canonical, &self.signatures, authority);
        if result.is_met() {
            Ok(result)
        } else {
            Err(threshold_error(&self.role, &result))
        }
    }

    /// Check `_type`, then build the typed role from the (already verified or about
    /// to be self-verified) `signed` value.
    fn parse_typed<T: RoleType>(&self) -> Result<T, MetadataError> {
        let actual = self.claimed_type().unwrap_or_default();
        if actual != T::TYPE {
            return Err(MetadataError::WrongType {
                expected: T::TYPE,
                actual: actual.chars().take(64).collect(),
                role: self.role.clone(),
            });
        }
        T::deserialize(&self.signed).map_err(|e| MetadataError::Malformed {
            role: self.role.clone(),
            detail: e.to_string(),
        })
    }

    fn into_verified<T: RoleType>(self, value: T, result: VerificationResult) -> Verified<T> {
        Verified {
            value,
            role: self.role,
            bytes: self.bytes,
            signatures: self.signatures,
            canonical: self.canonical,
            result,
        }
    }

    /// Verify a root against the threshold of *its own* root role (spec 5.2 for the
    /// trusted root, 5.3.5 for a new one), then build it. The caller checks the root
    /// shape (exactly the four top-level roles) through `shape`.
    pub fn verify_self_signed_root(
        self,
        shape: impl FnOnce(&Root) -> Result<(), String>,
    ) -> Result<Verified<Root>, MetadataError> {
        let value: Root = self.parse_typed()?;
        shape(&value).map_err(|detail| MetadataError::Malformed {
            role: self.role.clone(),
            detail,
        })?;
        let role = value
            .roles
            .get("root")
            .ok_or_else(|| MetadataError::Malformed {
                role: self.role.clone(),
                detail: "no root role".into(),
            })?;
        let auth = Authority {
            keys: &value.keys,
            keyids: &role.keyids,
            threshold: role.threshold,
        };
        let result = check_threshold(&self.canonical, &self.signatures, auth);
        if !result.is_met() {
            return Err(threshold_error(&self.role, &result));
        }
        Ok(self.into_verified(value, result))
    }
}

fn threshold_error(role: &str, result: &VerificationResult) -> MetadataError {
    let missing: Vec<&str> = result.missing.iter().map(|k| short_id(&k.0)).collect();
    MetadataError::Threshold {
        role: role.to_owned(),
        valid: result.signed.len(),
        threshold: result.threshold.get(),
        missing: if missing.is_empty() {
            "no authorized key".to_owned()
        } else {
            missing.join(", ")
        },
    }
}

/// The first 12 characters of a key id, for messages.
pub use crate::crypto::keys::short_id;

/// Metadata whose signatures met the threshold of the authority that delegates it.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    value: T,
    role: String,
    bytes: Vec<u8>,
    signatures: Vec<Signature>,
    canonical: Vec<u8>,
    result: VerificationResult,
}

impl<T> Verified<T> {
    /// The exact bytes received (what the cache persists).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The role name.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Who signed.
    pub fn result(&self) -> &VerificationResult {
        &self.result
    }

    /// Re-check the same signatures against another delegator (a role reached through
    /// a second delegation must satisfy *that* delegator's keys too).
    pub fn recheck(&self, authority: Authority<'_>) -> Result<VerificationResult, MetadataError> {
        let result = check_threshold(&self.canonical, &self.signatures, authority);
        if result.is_met() {
            Ok(result)
        } else {
            Err(threshold_error(&self.role, &result))
        }
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyType, SecretKey, Signer};
    use crate::tuf::metadata::Key;

    fn sig(key: &SecretKey, msg: &[u8]) -> Signature {
        Signature {
            keyid: key.public_key().key_id(),
            sig: hex::encode(key.sign(msg).expect("sign")),
            unrecognized: Default::default(),
        }
    }

    fn table(keys: &[&SecretKey]) -> (BTreeMap<KeyId, Key>, Vec<KeyId>) {
        let mut map = BTreeMap::new();
        let mut ids = Vec::new();
        for k in keys {
            let id = k.public_key().key_id();
            map.insert(id.clone(), Key::from_public(k.public_key()));
            ids.push(id);
        }
        (map, ids)
    }

    fn nz(n: u64) -> NonZeroU64 {
        NonZeroU64::new(n).expect("nonzero")
    }

    #[test]
    fn duplicate_signatures_count_once() {
        let a = SecretKey::generate(KeyType::Ed25519).expect("key");
        let b = SecretKey::generate(KeyType::Ecdsa).expect("key");
        let (keys, ids) = table(&[&a, &b]);
        let msg = b"payload";
        let sigs = vec![sig(&a, msg), sig(&a, msg), sig(&a, msg)];
        let auth = Authority {
            keys: &keys,
            keyids: &ids,
            threshold: nz(2),
        };
        let r = check_threshold(msg, &sigs, auth);
        assert_eq!(r.signed.len(), 1);
        assert!(!r.is_met());
        let sigs = vec![sig(&a, msg), sig(&b, msg)];
        assert!(check_threshold(msg, &sigs, auth).is_met());
    }

    #[test]
    fn duplicate_keyids_in_role_count_once() {
        let a = SecretKey::generate(KeyType::Ed25519).expect("key");
        let (keys, ids) = table(&[&a]);
        let dup = vec![ids[0].clone(), ids[0].clone()];
        let auth = Authority {
            keys: &keys,
            keyids: &dup,
            threshold: nz(2),
        };
        assert!(!check_threshold(b"m", &[sig(&a, b"m")], auth).is_met());
    }

    #[test]
    fn same_key_under_two_keyids_counts_once() {
        let a = SecretKey::generate(KeyType::Ed25519).expect("key");
        let (mut keys, mut ids) = table(&[&a]);
        let alias = KeyId("alias".into());
        keys.insert(alias.clone(), Key::from_public(a.public_key()));
        ids.push(alias.clone());
        let mut s2 = sig(&a, b"m");
        s2.keyid = alias;
        let auth = Authority {
            keys: &keys,
            keyids: &ids,
            threshold: nz(2),
        };
        assert!(!check_threshold(b"m", &[sig(&a, b"m"), s2], auth).is_met());
    }

    /// Issue #11 item 3: one P-256 key listed as `ecdsa` and as
    /// `ecdsa-sha2-nistp256` with its PEM re-wrapped is still one key.
    #[test]
    fn same_p256_key_under_two_spellings_counts_once() {
        let a = SecretKey::generate(KeyType::Ecdsa).expect("key");
        let (mut keys, mut ids) = table(&[&a]);
        let mut respelled = Key::from_public(a.public_key());
        respelled.keytype = "ecdsa-sha2-nistp256".into();
        respelled.keyval.public = respelled.keyval.public.replace('\n', "\r\n");
        assert!(
            respelled.to_public().is_ok(),
            "the respelled key still decodes"
        );
        let alias = KeyId("respelled".into());
        keys.insert(alias.clone(), respelled);
        ids.push(alias.clone());
        let mut s2 = sig(&a, b"m");
        s2.keyid = alias;
        let auth = Authority {
            keys: &keys,
            keyids: &ids,
            threshold: nz(2),
        };
        let r = check_threshold(b"m", &[sig(&a, b"m"), s2], auth);
        assert!(!r.is_met(), "one key counted twice: {r:?}");
        assert_eq!(r.signed.len(), 1);
    }

    #[test]
    fn invalid_and_undecodable_signatures_are_not_valid() {
        let a = SecretKey::generate(KeyType::Ed25519).expect("key");
        let b = SecretKey::generate(KeyType::Ed25519).expect("key");
        let (keys, ids) = table(&[&a, &b]);
        let mut bad = sig(&b, b"other message");
        let garbage = Signature {
            keyid: ids[0].clone(),
            sig: "zz-not-hex".into(),
            unrecognized: Default::default(),
        };
        let unknown = sig(&SecretKey::generate(KeyType::Ed25519).expect("key"), b"m");
        bad.keyid = ids[1].clone();
        let auth = Authority {
            keys: &keys,
            keyids: &ids,
            threshold: nz(1),
        };
        let r = check_threshold(b"m", &[garbage, bad, unknown], auth);
        assert!(r.signed.is_empty());
        assert_eq!(r.missing.len(), 2);
        // One good signature among the bad ones meets a threshold of one.
        let r = check_threshold(b"m", &[sig(&a, b"m")], auth);
        assert!(r.is_met());
    }

    #[test]
    fn duplicate_signature_keyids_are_rejected_at_parse() {
        let env = br#"{"signatures":[{"keyid":"k","sig":"00"},{"keyid":"k","sig":"00"}],"signed":{"_type":"snapshot"}}"#;
        assert!(matches!(
            Untrusted::parse("snapshot", env.to_vec()),
            Err(MetadataError::Malformed { .. })
        ));
    }

    #[test]
    fn malformed_envelopes_are_errors_not_panics() {
        for bytes in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"signatures\":[],\"signed\":[]}",
            b"{\"signed\":{}}",
            b"{\"signatures\":[],\"signed\":{\"f\":1.5}}",
        ] {
            assert!(Untrusted::parse("root", bytes.to_vec()).is_err());
        }
    }
}
