//! X.509 certificates for root keys: issue them (`warrant key certify`), and check
//! that a root key's chain leads to a pinned CA (`ca = "ca.pem"` in a policy).
//!
//! A certificate only vouches that a CA knows the key; TUF still decides what the
//! key may sign. Chains are carried in root.json next to the key's `keyval`, in the
//! field [`CHAIN_FIELD`] (other TUF clients keep unknown fields and ignore them).

use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder as _, CertificateBuilder};
use x509_cert::der::{Decode as _, DecodePem as _, Encode as _, EncodePem as _, pem::LineEnding};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;
use x509_cert::{Certificate, TbsCertificate};

use super::keys::{PublicKey, Secret, SecretKey};

/// The key-object field holding a root key's certificate chain (leaf first, PEM).
pub const CHAIN_FIELD: &str = "x-warrant-x509-chain";

/// A certificate problem, with the reason a person needs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum X509Error {
    /// Not a parsable certificate or key.
    #[error("malformed certificate or key: {0}")]
    Malformed(String),
    /// Outside its validity period.
    #[error(
        "certificate {subject} is expired or not yet valid (valid {not_before} to {not_after})"
    )]
    Expired {
        /// Its subject.
        subject: String,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
    /// Not issued by the next certificate (or the pinned CA).
    #[error("certificate {subject} is not issued by {issuer}: {detail}")]
    WrongIssuer {
        /// Its subject.
        subject: String,
        /// The expected issuer.
        issuer: String,
        /// Why.
        detail: String,
    },
    /// The leaf certifies another key.
    #[error("the certificate {subject} is for another key")]
    WrongKey {
        /// Its subject.
        subject: String,
    },
    /// The certificate carries something that forbids this use: an unknown
    /// critical extension, or a keyUsage without digitalSignature.
    #[error("certificate {subject} cannot certify a root key: {detail}")]
    Unusable {
        /// Its subject.
        subject: String,
        /// Why.
        detail: String,
    },
    /// The signature algorithm is not one warrant checks.
    #[error(
        "unsupported certificate signature algorithm {0} (ECDSA P-256 with SHA-256 and Ed25519 are)"
    )]
    Algorithm(String),
}

fn malformed(e: impl std::fmt::Display) -> X509Error {
    X509Error::Malformed(e.to_string())
}

/// Issue only: no extensions beyond what the profile needs.
struct Leaf {
    issuer: Name,
    subject: Name,
}

impl BuilderProfile for Leaf {
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
        // A self-signed certificate can only be used as its own anchor: mark it a
        // CA (as `openssl req -x509` does) so a policy may pin it.
        if self.issuer != self.subject {
            return Ok(Vec::new());
        }
        use x509_cert::der::oid::AssociatedOid as _;
        let bc = x509_cert::ext::pkix::BasicConstraints {
            ca: true,
            path_len_constraint: Some(0),
        };
        Ok(vec![Extension {
            extn_id: x509_cert::ext::pkix::BasicConstraints::OID,
            critical: true,
            extn_value: x509_cert::der::asn1::OctetString::new(bc.to_der()?)?,
        }])
    }
}

/// SubjectPublicKeyInfo of a warrant key.
pub fn spki_der(key: &PublicKey) -> Result<Vec<u8>, X509Error> {
    let doc = match key {
        PublicKey::Ed25519(k) => k.to_public_key_der(),
        PublicKey::EcdsaP256 { key, .. } => key.to_public_key_der(),
        PublicKey::RsaPss { pem, .. } => {
            return SubjectPublicKeyInfoOwned::from_pem(pem.as_bytes())
                .and_then(|s| s.to_der())
                .map_err(malformed);
        }
    };
    doc.map(|d| d.as_bytes().to_vec()).map_err(malformed)
}

/// Issue a certificate for `subject_key`, signed by `issuer_key` whose certificate
/// is `issuer_cert` — or self-signed when `issuer_cert` is `None` (then
/// `issuer_key` must be the subject's own key). Valid from now for `days`.
pub fn issue(
    subject_key: &PublicKey,
    issuer_key: &SecretKey,
    issuer_cert: Option<&Certificate>,
    days: u32,
) -> Result<String, X509Error> {
    let id = subject_key.key_id();
    let subject = Name::from_str(&format!("CN=warrant key {}", &id.0[..16.min(id.0.len())]))
        .map_err(malformed)?;
    let issuer = match issuer_cert {
        Some(c) => c.tbs_certificate().subject().clone(),
        None => subject.clone(),
    };
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(malformed)?;
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    let serial = SerialNumber::new(&serial).map_err(malformed)?;
    let validity =
        Validity::from_now(Duration::from_secs(u64::from(days) * 86_400)).map_err(malformed)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der(subject_key)?).map_err(malformed)?;
    let builder = CertificateBuilder::new(Leaf { issuer, subject }, serial, validity, spki)
        .map_err(malformed)?;
    let cert = match &issuer_key.secret {
        Secret::EcdsaP256(k) => builder.build::<_, p256::ecdsa::DerSignature>(k),
        Secret::Ed25519(k) => builder.build::<_, ed25519_dalek::Signature>(k),
    }
    .map_err(malformed)?;
    cert.to_pem(LineEnding::LF).map_err(malformed)
}

/// Parse one PEM certificate.
pub fn parse(pem: &str) -> Result<Certificate, X509Error> {
    Certificate::from_pem(pem.as_bytes()).map_err(malformed)
}

/// Parse every certificate in a PEM bundle.
pub fn parse_bundle(pem: &str) -> Result<Vec<Certificate>, X509Error> {
    Certificate::load_pem_chain(pem.as_bytes()).map_err(malformed)
}

fn subject_of(c: &Certificate) -> String {
    c.tbs_certificate().subject().to_string()
}

fn check_validity(c: &Certificate, now: SystemTime) -> Result<(), X509Error> {
    let v = c.tbs_certificate().validity();
    let (nb, na) = (v.not_before.to_system_time(), v.not_after.to_system_time());
    if now < nb || now > na {
        return Err(X509Error::Expired {
            subject: subject_of(c),
            not_before: v.not_before.to_string(),
            not_after: v.not_after.to_string(),
        });
    }
    Ok(())
}

/// Check that `issuer` signed `cert`.
fn check_signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), X509Error> {
    let wrong = |detail: String| X509Error::WrongIssuer {
        subject: subject_of(cert),
        issuer: subject_of(issuer),
        detail,
    };
    if cert.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return Err(wrong("issuer name differs".into()));
    }
    let tbs = cert.tbs_certificate().to_der().map_err(malformed)?;
    let sig = cert
        .signature()
        .as_bytes()
        .ok_or_else(|| malformed("signature bits"))?;
    let issuer_spki = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(malformed)?;
    let oid = cert.signature_algorithm().oid.to_string();
    match oid.as_str() {
        // ecdsa-with-SHA256
        "1.2.840.10045.4.3.2" => {
            use p256::ecdsa::signature::Verifier as _;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(&issuer_spki)
                .map_err(|e| wrong(e.to_string()))?;
            let sig = p256::ecdsa::Signature::from_der(sig).map_err(|e| wrong(e.to_string()))?;
            key.verify(&tbs, &sig)
                .map_err(|_| wrong("signature does not verify".into()))
        }
        // Ed25519
        "1.3.101.112" => {
            let key = ed25519_dalek::VerifyingKey::from_public_key_der(&issuer_spki)
                .map_err(|e| wrong(e.to_string()))?;
            let sig =
                ed25519_dalek::Signature::from_slice(sig).map_err(|e| wrong(e.to_string()))?;
            key.verify_strict(&tbs, &sig)
                .map_err(|_| wrong("signature does not verify".into()))
        }
        other => Err(X509Error::Algorithm(other.to_owned())),
    }
}

/// The certificate's basicConstraints, if it has them.
fn basic_constraints(
    c: &Certificate,
) -> Result<Option<x509_cert::ext::pkix::BasicConstraints>, X509Error> {
    use x509_cert::der::oid::AssociatedOid as _;
    use x509_cert::ext::pkix::BasicConstraints;
    extensions(c)
        .iter()
        .find(|e| e.extn_id == BasicConstraints::OID)
        .map(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).map_err(malformed))
        .transpose()
}

/// Check that `chain` (leaf first) certifies `key` and leads to `ca`, every
/// certificate (the CA's included) valid at `now`, and every issuer (the pinned CA
/// and intermediates) a CA by its basicConstraints.
pub fn verify_chain(
    chain: &[Certificate],
    ca: &Certificate,
    key: &PublicKey,
    now: SystemTime,
) -> Result<(), X509Error> {
    let leaf = chain
        .first()
        .ok_or_else(|| malformed("empty certificate chain"))?;
    let leaf_spki = leaf
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(malformed)?;
    if leaf_spki != spki_der(key)? {
        return Err(X509Error::WrongKey {
            subject: subject_of(leaf),
        });
    }
    check_validity(ca, now)?;
    check_critical_extensions(ca)?;
    if chain.len() > MAX_CHAIN {
        return Err(malformed(format!(
            "a chain of {} certificates (at most {MAX_CHAIN})",
            chain.len()
        )));
    }
    check_leaf_usage(leaf)?;
    for (i, cert) in chain.iter().enumerate() {
        check_validity(cert, now)?;
        check_critical_extensions(cert)?;
        let issuer = chain.get(i + 1).unwrap_or(ca);
        // `i` certificates below the issuer are themselves CAs (every one but the leaf).
        check_issuer(cert, issuer, i)?;
        check_signed_by(cert, issuer)?;
    }
    Ok(())
}

/// Longest chain (leaf plus intermediates) accepted.
const MAX_CHAIN: usize = 8;

/// Extensions whose meaning warrant knows: a critical extension outside this list
/// makes the certificate unusable (RFC 5280 §4.2).
const KNOWN_EXTENSIONS: [&str; 6] = [
    "2.5.29.19", // basicConstraints
    "2.5.29.15", // keyUsage
    "2.5.29.37", // extendedKeyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.35", // authorityKeyIdentifier
];

fn extensions(c: &Certificate) -> &[Extension] {
    c.tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or_default()
}

/// RFC 5280 §4.2: "A certificate-using system MUST reject the certificate if it
/// encounters a critical extension it does not recognize".
fn check_critical_extensions(c: &Certificate) -> Result<(), X509Error> {
    let mut seen = std::collections::BTreeSet::new();
    for e in extensions(c) {
        let oid = e.extn_id.to_string();
        if !seen.insert(oid.clone()) {
            return Err(X509Error::Unusable {
                subject: subject_of(c),
                detail: format!("extension {oid} appears twice"),
            });
        }
        if e.critical && !KNOWN_EXTENSIONS.contains(&oid.as_str()) {
            return Err(X509Error::Unusable {
                subject: subject_of(c),
                detail: format!("unknown critical extension {oid}"),
            });
        }
    }
    Ok(())
}

/// The key usage bits, when the certificate limits them.
fn key_usage(c: &Certificate) -> Result<Option<x509_cert::ext::pkix::KeyUsage>, X509Error> {
    use x509_cert::der::oid::AssociatedOid as _;
    use x509_cert::ext::pkix::KeyUsage;
    extensions(c)
        .iter()
        .find(|e| e.extn_id == KeyUsage::OID)
        .map(|e| KeyUsage::from_der(e.extn_value.as_bytes()).map_err(malformed))
        .transpose()
}

/// A root key signs metadata: a leaf that limits its key usage must allow
/// digitalSignature.
fn check_leaf_usage(leaf: &Certificate) -> Result<(), X509Error> {
    match key_usage(leaf)? {
        Some(ku) if !ku.digital_signature() => Err(X509Error::Unusable {
            subject: subject_of(leaf),
            detail: "its keyUsage does not allow digitalSignature".into(),
        }),
        _ => Ok(()),
    }
}

/// `issuer` may issue `cert`: a CA by basicConstraints, allowed to sign
/// certificates by keyUsage (when present), and its pathLenConstraint not exceeded
/// by the `below` CA certificates between it and the leaf.
fn check_issuer(cert: &Certificate, issuer: &Certificate, below: usize) -> Result<(), X509Error> {
    let wrong = |detail: String| X509Error::WrongIssuer {
        subject: subject_of(cert),
        issuer: subject_of(issuer),
        detail,
    };
    let Some(bc) = basic_constraints(issuer)? else {
        return Err(wrong(
            "the issuer is not a CA (no basicConstraints cA=TRUE)".into(),
        ));
    };
    if !bc.ca {
        return Err(wrong(
            "the issuer is not a CA (no basicConstraints cA=TRUE)".into(),
        ));
    }
    if let Some(limit) = bc.path_len_constraint
        && below > usize::from(limit)
    {
        return Err(wrong(format!(
            "the issuer's pathLenConstraint {limit} allows fewer than the {below} intermediate CAs below it"
        )));
    }
    if let Some(ku) = key_usage(issuer)?
        && !ku.key_cert_sign()
    {
        return Err(wrong(
            "the issuer's keyUsage does not allow keyCertSign".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
