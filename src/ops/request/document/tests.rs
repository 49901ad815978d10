#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeZone as _;

use super::*;
use crate::crypto::{KeyType, SecretKey};

const REPO: &str = "localhost:5000/team/app";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn request_for(key: &SecretKey) -> KeyRequest {
    KeyRequest {
        kind: REQUEST_TYPE.into(),
        version: REQUEST_VERSION,
        repository: REPO.into(),
        role: "qa".into(),
        key: Key::from_public(key.public_key()),
        note: "alice, QA laptop".into(),
        created: now(),
        expires: now() + Duration::days(7),
    }
}

fn signed(key: &SecretKey) -> (Vec<u8>, String) {
    sign(&request_for(key), key).unwrap()
}

fn edit(bytes: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(bytes).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn a_request_signed_by_its_own_key_verifies_with_its_id_and_fingerprint() {
    for kind in [KeyType::Ed25519, KeyType::Ecdsa] {
        let key = SecretKey::generate(kind).unwrap();
        let (bytes, id) = signed(&key);
        let (checked_id, r) = check(&bytes, REPO, now());
        let r = r.unwrap();
        assert_eq!(checked_id.as_deref(), Some(id.as_str()));
        assert_eq!(id.len(), ID_HEX_DIGITS);
        assert_eq!(r.keyid, key.public_key().key_id());
        assert_eq!(r.fingerprint, Fingerprint::of(&r.keyid).unwrap());
        assert_eq!(r.request.role, "qa");
    }
}

#[test]
fn the_id_is_stable_and_ignores_formatting() {
    let key = SecretKey::generate(KeyType::Ed25519).unwrap();
    let (bytes, id) = signed(&key);
    let compact = edit(&bytes, |_| {});
    assert_ne!(compact, bytes);
    assert_eq!(check(&compact, REPO, now()).0, Some(id));
}

#[test]
fn a_request_without_proof_of_possession_is_invalid() {
    let key = SecretKey::generate(KeyType::Ed25519).unwrap();
    let other = SecretKey::generate(KeyType::Ed25519).unwrap();
    let (bytes, _) = signed(&key);
    // The note changed after signing.
    let b = edit(&bytes, |v| v["signed"]["note"] = "admin, please".into());
    assert_eq!(
        check(&b, REPO, now()).1.unwrap_err(),
        Invalid::NoProofOfPossession
    );
    // The key swapped, the old signature kept.
    let b = edit(&bytes, |v| {
        v["signed"]["key"] = serde_json::to_value(Key::from_public(other.public_key())).unwrap()
    });
    assert_eq!(
        check(&b, REPO, now()).1.unwrap_err(),
        Invalid::NoProofOfPossession
    );
    // No signatures at all.
    let b = edit(&bytes, |v| v["signatures"] = serde_json::json!([]));
    assert_eq!(
        check(&b, REPO, now()).1.unwrap_err(),
        Invalid::NoProofOfPossession
    );
    // Signed by another key than the enclosed one.
    let canonical =
        crate::canonical::to_canonical(&serde_json::from_slice::<Value>(&bytes).unwrap()["signed"])
            .unwrap();
    let sig = hex::encode(other.sign(&canonical).unwrap());
    let b = edit(
        &bytes,
        |v| {
            v["signatures"] =
                serde_json::json!([{"keyid": other.public_key().key_id().0, "sig": sig}])
        },
    );
    assert_eq!(
        check(&b, REPO, now()).1.unwrap_err(),
        Invalid::NoProofOfPossession
    );
}

#[test]
fn a_swapped_key_re_signed_verifies_but_has_another_fingerprint() {
    let alice = SecretKey::generate(KeyType::Ed25519).unwrap();
    let mallory = SecretKey::generate(KeyType::Ed25519).unwrap();
    let (real, _) = signed(&alice);
    let (swapped, _) = signed(&mallory);
    let a = check(&real, REPO, now()).1.unwrap();
    let m = check(&swapped, REPO, now()).1.unwrap();
    assert_eq!(m.request.note, a.request.note);
    assert_ne!(m.fingerprint, a.fingerprint);
}

#[test]
fn a_request_only_counts_for_its_repository_and_lifetime() {
    let key = SecretKey::generate(KeyType::Ed25519).unwrap();
    let (bytes, _) = signed(&key);
    assert!(matches!(
        check(&bytes, "localhost:5000/team/other", now()).1,
        Err(Invalid::OtherRepository(_))
    ));
    let later = now() + Duration::days(8);
    assert!(matches!(
        check(&bytes, REPO, later).1,
        Err(Invalid::Expired(_))
    ));
    let earlier = now() - Duration::days(1);
    assert!(matches!(
        check(&bytes, REPO, earlier).1,
        Err(Invalid::Dates { .. })
    ));
    let mut long = request_for(&key);
    long.expires = now() + Duration::days(MAX_LIFETIME_DAYS + 1);
    let (bytes, _) = sign(&long, &key).unwrap();
    assert!(matches!(
        check(&bytes, REPO, now()).1,
        Err(Invalid::Dates { .. })
    ));
}

#[test]
fn hostile_documents_are_invalid_never_a_panic() {
    let key = SecretKey::generate(KeyType::Ed25519).unwrap();
    let mut r = request_for(&key);
    r.note = "\u{1b}[2Jcleared".into();
    let (bytes, _) = sign(&r, &key).unwrap();
    assert_eq!(check(&bytes, REPO, now()).1.unwrap_err(), Invalid::Note);
    let mut r = request_for(&key);
    r.role = "../root".into();
    let (bytes, _) = sign(&r, &key).unwrap();
    assert!(matches!(
        check(&bytes, REPO, now()).1,
        Err(Invalid::Role(_))
    ));
    for junk in [
        &b""[..],
        b"null",
        b"{}",
        b"{\"signatures\": [], \"signed\": 1.5}",
        b"{\"signatures\": [1, \"x\"], \"signed\": {\"key\": {}}}",
        &[b'['; 10_000],
    ] {
        let (_, r) = check(junk, REPO, now());
        assert!(r.is_err());
    }
    let big = vec![b' '; MAX_REQUEST_BYTES as usize + 1];
    assert!(matches!(
        check(&big, REPO, now()).1,
        Err(Invalid::Unreadable(_))
    ));
}

#[test]
fn only_the_requested_key_may_sign_its_request() {
    let alice = SecretKey::generate(KeyType::Ed25519).unwrap();
    let other = SecretKey::generate(KeyType::Ed25519).unwrap();
    assert!(matches!(
        sign(&request_for(&alice), &other),
        Err(MakeError::WrongSigner { .. })
    ));
}
