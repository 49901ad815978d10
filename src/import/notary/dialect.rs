//! Notary v1's TUF dialect, read and checked, never passed on: capitalised `_type`,
//! keys without `scheme` (`ecdsa`, `ecdsa-x509`, `ed25519`, `rsa`, `rsa-x509`; public
//! keys in base64 DER, certificates in base64 PEM), signatures in base64 (`ecdsa` =
//! raw r‖s, `eddsa`, `rsapss` = RSASSA-PSS over SHA-256), hashes in base64. What leaves this module is a verified key set and the `signed`
//! object whose signatures met their threshold.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::NotaryError;

/// A Notary public key warrant can check signatures with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotaryPublic {
    /// `ecdsa` or `ecdsa-x509` on P-256.
    P256(p256::ecdsa::VerifyingKey),
    /// `ed25519`.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// `rsa` or `rsa-x509` (2048 to 4096 bits), signatures `rsapss` (RSASSA-PSS,
    /// SHA-256): verified only, warrant does not sign with RSA.
    Rsa(rsa::PublicKey),
}

/// One key of a Notary key map, with the id Notary gives it.
#[derive(Clone, Debug)]
pub struct NotaryKey {
    /// sha256 of the canonical key object (certificate included for `-x509`).
    pub id: String,
    /// Notary's `keytype`.
    pub keytype: String,
    /// The key.
    pub public: NotaryPublic,
    /// The certificate's end of validity, for `-x509` keys.
    pub not_after: Option<DateTime<Utc>>,
}

fn bad(role: &str, detail: impl Into<String>) -> NotaryError {
    NotaryError::Malformed {
        role: role.to_owned(),
        detail: detail.into(),
    }
}

/// Canonical JSON of `value` (the bytes Notary signs and hashes key objects over).
pub fn canonical(role: &str, value: &Value) -> Result<Vec<u8>, NotaryError> {
    crate::canonical::to_canonical(value).map_err(|e| bad(role, format!("canonical JSON: {e}")))
}

/// Decode one key object; its id must be the sha256 of its canonical form, so two
/// ids can never name one key twice toward a threshold.
pub fn parse_key(role: &str, id: &str, obj: &Value) -> Result<NotaryKey, NotaryError> {
    let computed = hex::encode(Sha256::digest(canonical(role, obj)?));
    if computed != id {
        return Err(bad(
            role,
            format!("key id {id} is not the sha256 of its key object ({computed})"),
        ));
    }
    let keytype = obj["keytype"]
        .as_str()
        .ok_or_else(|| bad(role, format!("key {id} has no keytype")))?;
    let public_b64 = obj["keyval"]["public"]
        .as_str()
        .ok_or_else(|| bad(role, format!("key {id} has no keyval.public")))?;
    let raw = B64
        .decode(public_b64)
        .map_err(|e| bad(role, format!("key {id}: public is not base64: {e}")))?;
    let mut not_after = None;
    let public = match keytype {
        "ed25519" => {
            let bytes: [u8; 32] = raw
                .as_slice()
                .try_into()
                .map_err(|_| bad(role, format!("key {id}: ed25519 key is not 32 bytes")))?;
            NotaryPublic::Ed25519(
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|e| bad(role, format!("key {id}: {e}")))?,
            )
        }
        "ecdsa" => {
            use p256::pkcs8::DecodePublicKey as _;
            NotaryPublic::P256(
                p256::ecdsa::VerifyingKey::from_public_key_der(&raw)
                    .map_err(|e| bad(role, format!("key {id}: not a P-256 key: {e}")))?,
            )
        }
        "ecdsa-x509" | "rsa-x509" => {
            use x509_cert::der::{DecodePem as _, Encode as _};
            let pem = std::str::from_utf8(&raw)
                .map_err(|_| bad(role, format!("key {id}: certificate is not PEM text")))?;
            let cert = x509_cert::Certificate::from_pem(pem)
                .map_err(|e| bad(role, format!("key {id}: certificate: {e}")))?;
            let tbs = cert.tbs_certificate();
            let spki = tbs
                .subject_public_key_info()
                .to_der()
                .map_err(|e| bad(role, format!("key {id}: certificate key: {e}")))?;
            let end = tbs.validity().not_after.to_system_time();
            not_after = Some(DateTime::<Utc>::from(end));
            if keytype == "rsa-x509" {
                rsa_public(role, id, &spki)?
            } else {
                use p256::pkcs8::DecodePublicKey as _;
                NotaryPublic::P256(
                    p256::ecdsa::VerifyingKey::from_public_key_der(&spki).map_err(|e| {
                        bad(role, format!("key {id}: certificate key is not P-256: {e}"))
                    })?,
                )
            }
        }
        "rsa" => rsa_public(role, id, &raw)?,
        other => {
            return Err(NotaryError::UnsupportedKey {
                role: role.to_owned(),
                keyid: id.to_owned(),
                keytype: other.to_owned(),
            });
        }
    };
    Ok(NotaryKey {
        id: id.to_owned(),
        keytype: keytype.to_owned(),
        public,
        not_after,
    })
}

/// An RSA SubjectPublicKeyInfo (DER) of 2048 to 4096 bits.
fn rsa_public(role: &str, id: &str, spki: &[u8]) -> Result<NotaryPublic, NotaryError> {
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::traits::PublicKeyParts as _;
    let key = rsa::PublicKey::from_public_key_der(spki)
        .map_err(|e| bad(role, format!("key {id}: not an RSA key: {e}")))?;
    let bits = key.n().bit_width();
    if !(2048..=4096).contains(&bits) {
        return Err(bad(
            role,
            format!("key {id}: {bits}-bit RSA modulus; 2048 to 4096 bits are accepted"),
        ));
    }
    Ok(NotaryPublic::Rsa(key))
}

/// Every key of a `keys` map.
pub fn parse_keys(role: &str, keys: &Value) -> Result<BTreeMap<String, NotaryKey>, NotaryError> {
    let map = keys
        .as_object()
        .ok_or_else(|| bad(role, "keys is not an object"))?;
    map.iter()
        .map(|(id, obj)| Ok((id.clone(), parse_key(role, id, obj)?)))
        .collect()
}

/// A role's key ids and threshold as the delegator states them.
#[derive(Clone, Debug)]
pub struct Authority {
    /// Key ids allowed to sign.
    pub keyids: Vec<String>,
    /// Distinct valid signatures required (at least 1).
    pub threshold: u64,
}

impl Authority {
    /// Read `{"keyids": [...], "threshold": N}`.
    pub fn from_json(role: &str, v: &Value) -> Result<Self, NotaryError> {
        let keyids = v["keyids"]
            .as_array()
            .ok_or_else(|| bad(role, "role has no keyids"))?
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(role, "key id is not a string"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let threshold = v["threshold"]
            .as_u64()
            .filter(|t| *t >= 1)
            .ok_or_else(|| bad(role, "threshold is missing or below 1"))?;
        Ok(Self { keyids, threshold })
    }
}

/// An envelope whose signatures met their threshold.
#[derive(Debug)]
pub struct Checked {
    /// The `signed` object.
    pub signed: Value,
    /// Key ids with a valid signature.
    pub signed_by: Vec<String>,
}

/// The one threshold check: parse `{signed, signatures}` from `bytes`, count distinct
/// keys of `authority` whose signature over the canonical `signed` verifies, and
/// require `_type` to be `expected_type` (Notary capitalises it) and neither the
/// role nor a signing key's certificate to have expired at `now`.
pub fn check(
    role: &str,
    expected_type: &str,
    bytes: &[u8],
    keys: &BTreeMap<String, NotaryKey>,
    authority: &Authority,
    now: DateTime<Utc>,
) -> Result<Checked, NotaryError> {
    check_at(role, expected_type, bytes, keys, authority, Expiry::At(now))
}

/// Whether [`check_at`] looks at expiry dates.
#[derive(Clone, Copy, Debug)]
pub enum Expiry {
    /// The role and the signing keys' certificates must be valid at this time.
    At(DateTime<Utc>),
    /// Only for roots on the way along a rotation chain (spec 5.3: only the final
    /// root's expiry counts): a root expired long ago, or signed by keys whose
    /// certificates expired — often the very reason for the rotation — still
    /// vouches for the next one.
    Ignored,
}

/// [`check`] with a choice about expiry.
pub fn check_at(
    role: &str,
    expected_type: &str,
    bytes: &[u8],
    keys: &BTreeMap<String, NotaryKey>,
    authority: &Authority,
    expiry: Expiry,
) -> Result<Checked, NotaryError> {
    let now = match expiry {
        Expiry::At(t) => Some(t),
        Expiry::Ignored => None,
    };
    let env: Value =
        serde_json::from_slice(bytes).map_err(|e| bad(role, format!("not JSON: {e}")))?;
    let signed = env
        .get("signed")
        .ok_or_else(|| bad(role, "no signed object"))?
        .clone();
    let msg = canonical(role, &signed)?;
    let sigs = env["signatures"]
        .as_array()
        .ok_or_else(|| bad(role, "no signatures"))?;
    let mut valid: BTreeSet<String> = BTreeSet::new();
    for sig in sigs {
        let (Some(keyid), Some(method), Some(sig_b64)) = (
            sig["keyid"].as_str(),
            sig["method"].as_str(),
            sig["sig"].as_str(),
        ) else {
            continue;
        };
        if !authority.keyids.iter().any(|k| k == keyid) {
            continue;
        }
        let Some(key) = keys.get(keyid) else { continue };
        if let (Some(end), Some(now)) = (key.not_after, now)
            && end < now
        {
            continue;
        }
        let Ok(raw) = B64.decode(sig_b64) else {
            continue;
        };
        if verify_one(&key.public, method, &msg, &raw) {
            valid.insert(keyid.to_owned());
        }
    }
    if (valid.len() as u64) < authority.threshold {
        return Err(NotaryError::Threshold {
            role: role.to_owned(),
            valid: valid.len() as u64,
            threshold: authority.threshold,
        });
    }
    let ty = signed["_type"].as_str().unwrap_or_default();
    if ty != expected_type {
        return Err(bad(
            role,
            format!("_type is {ty:?}, expected {expected_type:?}"),
        ));
    }
    let expires = signed["expires"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .ok_or_else(|| bad(role, "expires is missing or not RFC 3339"))?;
    if now.is_some_and(|now| expires.with_timezone(&Utc) <= now) {
        return Err(NotaryError::Expired {
            role: role.to_owned(),
            expires: expires.with_timezone(&Utc),
        });
    }
    Ok(Checked {
        signed,
        signed_by: valid.into_iter().collect(),
    })
}

fn verify_one(key: &NotaryPublic, method: &str, msg: &[u8], sig: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier as _;
    match (key, method) {
        (NotaryPublic::P256(k), "ecdsa") => {
            p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
        }
        (NotaryPublic::Ed25519(k), "eddsa" | "ed25519") => {
            ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
        }
        (NotaryPublic::Rsa(k), "rsapss") => {
            // Notary signs with the salt as long as the hash; any length verifies.
            let verifier =
                rsa::pss::VerifyingKey::<sha2::Sha256>::new_with_auto_salt_len(k.clone());
            rsa::pss::Signature::try_from(sig)
                .is_ok_and(|s| rsa::signature::Verifier::verify(&verifier, msg, &s).is_ok())
        }
        _ => false,
    }
}

/// The `version` of a checked `signed` object.
pub fn version(role: &str, signed: &Value) -> Result<u64, NotaryError> {
    signed["version"]
        .as_u64()
        .filter(|v| *v >= 1)
        .ok_or_else(|| bad(role, "version is missing or below 1"))
}

/// Check `bytes` against a Notary `meta` entry (`length`, base64 `sha256`).
pub fn check_meta(role: &str, meta: &Value, bytes: &[u8]) -> Result<(), NotaryError> {
    let want_len = meta["length"].as_u64();
    let want_hash = meta["hashes"]["sha256"]
        .as_str()
        .ok_or_else(|| bad(role, "its meta entry has no sha256"))?;
    let actual = B64.encode(Sha256::digest(bytes));
    if want_len.is_some_and(|l| l != bytes.len() as u64) || actual != want_hash {
        return Err(NotaryError::HashMismatch {
            role: role.to_owned(),
            expected: want_hash.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// A base64 sha256 as 64 hex digits.
pub fn hash_hex(role: &str, target: &str, b64: &str) -> Result<String, NotaryError> {
    let raw = B64
        .decode(b64)
        .map_err(|e| bad(role, format!("target {target}: sha256 is not base64: {e}")))?;
    if raw.len() != 32 {
        return Err(bad(
            role,
            format!("target {target}: sha256 is not 32 bytes"),
        ));
    }
    Ok(hex::encode(raw))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;
    use serde_json::json;

    fn p256_key() -> (p256::ecdsa::SigningKey, String, Value) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let der = sk.verifying_key().to_public_key_der().unwrap();
        let obj = json!({"keytype": "ecdsa", "keyval": {"private": null, "public": B64.encode(der.as_bytes())}});
        let id = hex::encode(Sha256::digest(canonical("t", &obj).unwrap()));
        (sk, id, obj)
    }

    fn envelope(signed: &Value, sigs: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({"signed": signed, "signatures": sigs})).unwrap()
    }

    fn signed() -> Value {
        json!({"_type": "Targets", "expires": "2099-01-01T00:00:00.123456789Z", "targets": {}, "version": 2})
    }

    fn raw_sig(sk: &p256::ecdsa::SigningKey, id: &str, v: &Value) -> Value {
        let sig: p256::ecdsa::Signature = sk.sign(&canonical("t", v).unwrap());
        json!({"keyid": id, "method": "ecdsa", "sig": B64.encode(sig.to_bytes())})
    }

    #[test]
    fn raw_r_s_ecdsa_signature_over_canonical_signed_verifies() {
        let (sk, id, obj) = p256_key();
        let keys = BTreeMap::from([(id.clone(), parse_key("t", &id, &obj).unwrap())]);
        let auth = Authority {
            keyids: vec![id.clone()],
            threshold: 1,
        };
        let s = signed();
        let c = check(
            "t",
            "Targets",
            &envelope(&s, vec![raw_sig(&sk, &id, &s)]),
            &keys,
            &auth,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(c.signed_by, vec![id]);
    }

    #[test]
    fn expired_role_is_refused_unless_expiry_is_ignored_along_a_root_chain() {
        let (sk, id, obj) = p256_key();
        let keys = BTreeMap::from([(id.clone(), parse_key("t", &id, &obj).unwrap())]);
        let auth = Authority {
            keyids: vec![id.clone()],
            threshold: 1,
        };
        let mut s = signed();
        s["expires"] = json!("2001-01-01T00:00:00Z");
        let env = envelope(&s, vec![raw_sig(&sk, &id, &s)]);
        let e = check("t", "Targets", &env, &keys, &auth, Utc::now()).unwrap_err();
        assert!(matches!(e, NotaryError::Expired { .. }), "{e}");
        check_at("t", "Targets", &env, &keys, &auth, Expiry::Ignored).unwrap();
    }

    #[test]
    fn one_key_signing_twice_counts_once_toward_the_threshold() {
        let (sk, id, obj) = p256_key();
        let keys = BTreeMap::from([(id.clone(), parse_key("t", &id, &obj).unwrap())]);
        let auth = Authority {
            keyids: vec![id.clone(), id.clone()],
            threshold: 2,
        };
        let s = signed();
        let sig = raw_sig(&sk, &id, &s);
        let e = check(
            "t",
            "Targets",
            &envelope(&s, vec![sig.clone(), sig]),
            &keys,
            &auth,
            Utc::now(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                NotaryError::Threshold {
                    valid: 1,
                    threshold: 2,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn der_encoded_ecdsa_signature_is_not_notarys_and_does_not_count() {
        let (sk, id, obj) = p256_key();
        let keys = BTreeMap::from([(id.clone(), parse_key("t", &id, &obj).unwrap())]);
        let auth = Authority {
            keyids: vec![id.clone()],
            threshold: 1,
        };
        let s = signed();
        let sig: p256::ecdsa::Signature = sk.sign(&canonical("t", &s).unwrap());
        let der =
            json!({"keyid": id, "method": "ecdsa", "sig": B64.encode(sig.to_der().as_bytes())});
        assert!(
            check(
                "t",
                "Targets",
                &envelope(&s, vec![der]),
                &keys,
                &auth,
                Utc::now()
            )
            .is_err()
        );
    }

    #[test]
    fn key_id_that_is_not_the_hash_of_its_key_object_is_refused() {
        let (_, _, obj) = p256_key();
        let e = parse_key("t", &"0".repeat(64), &obj).unwrap_err();
        assert!(e.to_string().contains("is not the sha256"), "{e}");
    }

    /// Notary's `rsa` key (base64 DER) with an RSASSA-PSS signature over `warrant`
    /// made by python's `cryptography` (the fixture of `crypto::keys`).
    #[test]
    fn rsapss_signature_of_an_rsa_key_verifies_and_a_changed_message_does_not() {
        let body = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAoPe99/GiHHidy/I96hEo/d50vwUimYSbUMFxs07zM1vkhkpwi7+eImcASWRvqRQuOu4N5KvHrfHF7uAWsRwDeLasUxjiKJlAz6rMhRn2jG6uzRVVoY7zOVQm1jO+2H/HVgtdAZQztoGa+LKA2OMApLkvxQivA30Dke+OJv8Ynkpf+nOhhMMKiD92bvgKghcbzq8tqrTlAhNHOB0Zs6cQ3tEr/HY01egLEbeZDwSR/FE1y9ivE2hjPpDFI+8fOiD/W/xSgFiNM9p0wFVg/vU2oDUFXy15IZs9T66VnM4a6Z+t7agVFXJgIL6UCE7b4meO/V3/HBdosWndWK+3JlCHlwIDAQAB";
        let sig = hex::decode("5c06c3367a864e5f6560084729cbc23dd2f1cf1effada02876c319752baf8aa17b94c49260cdab95b20ee806748d5f711e9371fe7ced7f1a3a8dc9bc3db3f84bc351c2012b6e4aa0c18fabee953df814fd89a07a29f8623490ee5b7932513234ebb2b34dab2c383fa305a8aff8d8178e426a815a1af30aef82e482a5c6debef9c95cf7c334b3f9d73e26f36c2ca7a0eb3315d54eedd3a500542537f58de407ba3c035bada44e2ca9872f05c5817b17afacdbaab10469e6d0d5791d637336a30a38773bedc5ce624a63fb4606ce4f04720f2bff330cf0d7239553d6cbbb0f3113f45a9c53903c45c22d4dc918a907e9b543eca2b5bd688322e16057014943c394").unwrap();
        let obj = json!({"keytype": "rsa", "keyval": {"private": null, "public": body}});
        let id = hex::encode(Sha256::digest(canonical("t", &obj).unwrap()));
        let key = parse_key("t", &id, &obj).unwrap();
        assert!(verify_one(&key.public, "rsapss", b"warrant", &sig));
        assert!(!verify_one(&key.public, "rsapss", b"warranT", &sig));
        assert!(!verify_one(&key.public, "rsapss", b"warrant", &sig[1..]));
        // The method must be the key's: an RSA key never verifies as `ecdsa`.
        assert!(!verify_one(&key.public, "ecdsa", b"warrant", &sig));
    }

    #[test]
    fn base64_target_hash_becomes_hex_and_short_one_is_refused() {
        let hex = hash_hex("t", "v1", &B64.encode([0xab; 32])).unwrap();
        assert_eq!(hex, "ab".repeat(32));
        assert!(hash_hex("t", "v1", &B64.encode([0xab; 20])).is_err());
    }
}
