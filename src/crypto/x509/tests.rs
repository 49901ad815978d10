//! Unit tests of the parent module.

use super::*;
use crate::crypto::{KeyType, Signer as _};

#[test]
fn issued_chains_verify_and_wrong_cas_keys_and_times_are_refused() {
    for kind in [KeyType::Ecdsa, KeyType::Ed25519] {
        let ca_key = SecretKey::generate(kind).expect("ca");
        let ca =
            parse(&issue(ca_key.public_key(), &ca_key, None, 30).expect("ca cert")).expect("parse");
        let leaf_key = SecretKey::generate(KeyType::Ed25519).expect("leaf");
        let leaf = parse(&issue(leaf_key.public_key(), &ca_key, Some(&ca), 1).expect("leaf"))
            .expect("parse");
        let now = SystemTime::now();
        verify_chain(std::slice::from_ref(&leaf), &ca, leaf_key.public_key(), now).expect("valid");
        let other_key = SecretKey::generate(kind).expect("other");
        let other_ca = parse(&issue(other_key.public_key(), &other_key, None, 30).expect("other"))
            .expect("parse");
        assert!(matches!(
            verify_chain(
                std::slice::from_ref(&leaf),
                &other_ca,
                leaf_key.public_key(),
                now
            ),
            Err(X509Error::WrongIssuer { .. })
        ));
        assert!(matches!(
            verify_chain(
                std::slice::from_ref(&leaf),
                &ca,
                other_key.public_key(),
                now
            ),
            Err(X509Error::WrongKey { .. })
        ));
        let later = now + Duration::from_secs(2 * 86_400);
        assert!(matches!(
            verify_chain(
                std::slice::from_ref(&leaf),
                &ca,
                leaf_key.public_key(),
                later
            ),
            Err(X509Error::Expired { .. })
        ));
    }
}

/// A test profile: any issuer, subject and extensions.
struct Custom {
    issuer: Name,
    subject: Name,
    exts: Vec<Extension>,
}

impl BuilderProfile for Custom {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: x509_cert::spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: x509_cert::spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.exts.clone())
    }
}

fn ext(oid: &str, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: x509_cert::der::oid::ObjectIdentifier::new_unwrap(oid),
        critical,
        extn_value: x509_cert::der::asn1::OctetString::new(value).expect("octets"),
    }
}

fn bc(path_len: Option<u8>) -> Extension {
    let v = x509_cert::ext::pkix::BasicConstraints {
        ca: true,
        path_len_constraint: path_len,
    };
    ext("2.5.29.19", true, v.to_der().expect("der"))
}

fn ku(flags: x509_cert::ext::pkix::KeyUsages) -> Extension {
    let v = x509_cert::ext::pkix::KeyUsage(flags.into());
    ext("2.5.29.15", true, v.to_der().expect("der"))
}

/// A certificate named `cn` for `key`, signed by `by` (issuer name `issuer`).
fn cert(
    cn: &str,
    key: &PublicKey,
    issuer: &str,
    by: &SecretKey,
    exts: Vec<Extension>,
) -> Certificate {
    let name = |n: &str| Name::from_str(&format!("CN={n}")).expect("name");
    let mut serial = [0u8; 8];
    getrandom::fill(&mut serial).expect("rng");
    serial[0] = 1;
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der(key).expect("spki")).expect("spki");
    let builder = CertificateBuilder::new(
        Custom {
            issuer: name(issuer),
            subject: name(cn),
            exts,
        },
        SerialNumber::new(&serial).expect("serial"),
        Validity::from_now(Duration::from_secs(86_400)).expect("validity"),
        spki,
    )
    .expect("builder");
    match &by.secret {
        Secret::EcdsaP256(k) => builder.build::<_, p256::ecdsa::DerSignature>(k),
        Secret::Ed25519(k) => builder.build::<_, ed25519_dalek::Signature>(k),
    }
    .expect("build")
}

struct Pki {
    ca_key: SecretKey,
    mid_key: SecretKey,
    leaf_key: SecretKey,
}

impl Pki {
    fn new() -> Self {
        let k = || SecretKey::generate(KeyType::Ed25519).expect("key");
        Self {
            ca_key: k(),
            mid_key: k(),
            leaf_key: k(),
        }
    }
    /// CA → intermediate → leaf, with the given extensions on each.
    fn verify(
        &self,
        ca_exts: Vec<Extension>,
        mid_exts: Vec<Extension>,
        leaf_exts: Vec<Extension>,
    ) -> Result<(), X509Error> {
        let ca = cert("ca", self.ca_key.public_key(), "ca", &self.ca_key, ca_exts);
        let mid = cert(
            "mid",
            self.mid_key.public_key(),
            "ca",
            &self.ca_key,
            mid_exts,
        );
        let leaf = cert(
            "leaf",
            self.leaf_key.public_key(),
            "mid",
            &self.mid_key,
            leaf_exts,
        );
        verify_chain(
            &[leaf, mid],
            &ca,
            self.leaf_key.public_key(),
            SystemTime::now(),
        )
    }
}

#[test]
fn a_well_formed_two_level_chain_verifies() {
    let pki = Pki::new();
    pki.verify(vec![bc(Some(1))], vec![bc(Some(0))], vec![])
        .expect("valid chain");
    pki.verify(vec![bc(None)], vec![bc(None)], vec![])
        .expect("no path length limits");
}

#[test]
fn path_length_constraint_of_the_ca_is_enforced() {
    let pki = Pki::new();
    let err = pki
        .verify(vec![bc(Some(0))], vec![bc(None)], vec![])
        .expect_err("pathLen 0 CA cannot have an intermediate");
    assert!(err.to_string().contains("pathLenConstraint"), "{err}");
}

#[test]
fn intermediate_that_is_not_a_ca_is_refused() {
    let pki = Pki::new();
    let err = pki
        .verify(vec![bc(None)], vec![], vec![])
        .expect_err("no basicConstraints");
    assert!(matches!(err, X509Error::WrongIssuer { .. }), "{err}");
}

#[test]
fn issuer_whose_key_usage_forbids_cert_signing_is_refused() {
    use x509_cert::ext::pkix::KeyUsages;
    let pki = Pki::new();
    let err = pki
        .verify(
            vec![bc(None)],
            vec![bc(None), ku(KeyUsages::DigitalSignature)],
            vec![],
        )
        .expect_err("mid may not sign certificates");
    assert!(err.to_string().contains("keyCertSign"), "{err}");
    pki.verify(
        vec![bc(None)],
        vec![bc(None), ku(KeyUsages::KeyCertSign)],
        vec![],
    )
    .expect("keyCertSign allows it");
}

#[test]
fn leaf_whose_key_usage_forbids_signing_is_refused() {
    use x509_cert::ext::pkix::KeyUsages;
    let pki = Pki::new();
    let err = pki
        .verify(
            vec![bc(None)],
            vec![bc(None)],
            vec![ku(KeyUsages::KeyEncipherment)],
        )
        .expect_err("leaf may not sign");
    assert!(matches!(err, X509Error::Unusable { .. }), "{err}");
    pki.verify(
        vec![bc(None)],
        vec![bc(None)],
        vec![ku(KeyUsages::DigitalSignature)],
    )
    .expect("digitalSignature allows it");
}

#[test]
fn unknown_critical_extension_anywhere_in_the_chain_is_refused() {
    let pki = Pki::new();
    let odd = || ext("1.3.6.1.4.1.99999.1", true, vec![0x05, 0x00]);
    for (ca, mid, leaf) in [
        (vec![bc(None), odd()], vec![bc(None)], vec![]),
        (vec![bc(None)], vec![bc(None), odd()], vec![]),
        (vec![bc(None)], vec![bc(None)], vec![odd()]),
    ] {
        let err = pki.verify(ca, mid, leaf).expect_err("unknown critical");
        assert!(
            err.to_string().contains("unknown critical extension"),
            "{err}"
        );
    }
    // The same extension, not critical, is ignored.
    let quiet = ext("1.3.6.1.4.1.99999.1", false, vec![0x05, 0x00]);
    pki.verify(vec![bc(None)], vec![bc(None)], vec![quiet])
        .expect("non-critical unknown extensions are fine");
}
