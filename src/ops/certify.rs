//! `warrant key certify`: an X.509 certificate for a key of the key store, issued
//! by a CA (whose chain a `--root-ca` pin checks) or self-signed, and stored with
//! the key so `init` and rotations publish it in the key's TUF entry.

use std::path::PathBuf;

use crate::crypto::x509;

use super::{Context, OpError};

/// The CA that issues the certificate: its certificate and unencrypted PKCS#8
/// private key, as PEM text.
#[derive(Debug, Clone)]
pub struct CaFiles {
    /// The CA certificate (PEM).
    pub cert: String,
    /// The CA private key (PKCS#8 PEM).
    pub key: String,
    /// Where the key came from (for messages).
    pub key_path: PathBuf,
}

/// Issue a certificate for key `id` (id, prefix or name), valid `days`, by `ca`
/// or self-signed; checked before it is stored with the key. Returns its PEM.
pub fn certify(
    ctx: &Context,
    id: &str,
    ca: Option<&CaFiles>,
    days: u32,
) -> Result<String, OpError> {
    let info = ctx.keys.find(id)?;
    let keyid = info.keyid.0.clone();
    let public = info.public_key().map_err(|source| OpError::KeyMaterial {
        keyid: keyid.clone(),
        source,
    })?;
    let bad = |source: x509::X509Error| OpError::Certificate {
        keyid: keyid.clone(),
        source,
    };
    let pem = match ca {
        Some(ca) => {
            let ca_cert = x509::parse(&ca.cert).map_err(bad)?;
            let ca_key = ca_private_key(ca)?;
            let leaf = x509::issue(&public, &ca_key, Some(&ca_cert), days).map_err(bad)?;
            // Check what we made before storing it.
            x509::verify_chain(
                &[x509::parse(&leaf).map_err(bad)?],
                &ca_cert,
                &public,
                ctx.now.into(),
            )
            .map_err(bad)?;
            leaf
        }
        None => {
            let pass = ctx.passphrase.get(false)?;
            let key = ctx.keys.load(&info.keyid, pass)?;
            x509::issue(&public, &key, None, days).map_err(bad)?
        }
    };
    ctx.keys.set_certificate(&info.keyid, &pem)?;
    Ok(pem)
}

/// The CA's private key from its unencrypted PKCS#8 PEM.
fn ca_private_key(ca: &CaFiles) -> Result<crate::crypto::SecretKey, OpError> {
    let bad = |problem: String| OpError::CaKey {
        path: ca.key_path.clone(),
        problem,
    };
    let (label, doc) = pkcs8::SecretDocument::from_pem(&ca.key).map_err(|e| bad(e.to_string()))?;
    if label != "PRIVATE KEY" {
        return Err(bad(format!(
            "expected an unencrypted PKCS#8 PRIVATE KEY, found {label}"
        )));
    }
    crate::crypto::SecretKey::from_pkcs8_der(doc.as_bytes()).map_err(|e| bad(e.to_string()))
}
