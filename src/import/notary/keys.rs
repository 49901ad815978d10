//! The private keys a DCT user holds in `$DIR/private/*.key`: encrypted PKCS#8 PEM
//! with `role:` and `gun:` headers, unlocked with the passphrase Notary would take
//! (`NOTARY_<ROLE>_PASSPHRASE`).

use std::path::Path;

use pkcs8::der::Decode as _;
use pkcs8::{EncryptedPrivateKeyInfoRef, der::pem};
use zeroize::Zeroizing;

use crate::crypto::SecretKey;

use super::NotaryError;

/// A private key file that was unlocked.
#[derive(Debug)]
pub struct HeldKey {
    /// The `role:` header (`root`, `targets`, `snapshot`, `targets/releases`).
    pub role: String,
    /// The file.
    pub path: std::path::PathBuf,
    /// The key.
    pub key: SecretKey,
}

/// The environment variable Notary reads for `role`'s passphrase.
pub fn passphrase_var(role: &str) -> &'static str {
    match role {
        "root" => "NOTARY_ROOT_PASSPHRASE",
        "targets" => "NOTARY_TARGETS_PASSPHRASE",
        "snapshot" => "NOTARY_SNAPSHOT_PASSPHRASE",
        _ => "NOTARY_DELEGATION_PASSPHRASE",
    }
}

/// The passphrase from `var`, else (on a terminal) a prompt, as Notary asks.
fn passphrase(var: &str, role: &str, path: &Path) -> Option<Zeroizing<String>> {
    use std::io::IsTerminal as _;
    if let Ok(p) = std::env::var(var) {
        return Some(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!(
        "Passphrase of the Notary {role} key {} ({var}): ",
        path.display()
    ))
    .ok()
    .map(Zeroizing::new)
}

/// Split Notary's PEM into its headers and a plain RFC 7468 PEM.
fn split_headers(text: &str) -> (Vec<(String, String)>, String) {
    let mut headers = Vec::new();
    let mut body = String::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':')
            && !line.starts_with("-----")
        {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        } else if !line.trim().is_empty() {
            body.push_str(line.trim());
            body.push('\n');
        }
    }
    (headers, body)
}

/// Notary writes keys it imported (`notary key import`) as PKCS#8 version 1 (RFC
/// 5958 `OneAsymmetricKey`) without the optional public key, which the `pkcs8` crate
/// refuses; without that field the two versions are the same structure, so mark it
/// version 0 (only tried when the key as written does not parse).
fn v1_without_public_key_as_v0(der: &mut [u8]) {
    // SEQUENCE header: 0x30, then a short or 0x81/0x82 long length.
    let body = match der.get(1) {
        Some(l) if *l < 0x80 => 2,
        Some(0x81) => 3,
        Some(0x82) => 4,
        _ => return,
    };
    if der.first() == Some(&0x30) && der.get(body..body + 3) == Some(&[0x02, 0x01, 0x01]) {
        der[body + 2] = 0x00;
    }
}

/// DER of the `rsaEncryption` algorithm identifier (1.2.840.113549.1.1.1).
const RSA_OID: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// Is this PKCS#8 `PrivateKeyInfo` an RSA key? (Its algorithm identifier comes
/// right after the version, well within the first 32 bytes.)
fn is_rsa(der: &[u8]) -> bool {
    der.get(..32.min(der.len()))
        .is_some_and(|head| head.windows(RSA_OID.len()).any(|w| w == RSA_OID))
}

/// Every key of `dir/private` for `gun` (root keys carry no `gun:`), decrypted. A
/// key whose passphrase variable is unset (and no terminal to ask on) is skipped and
/// named in `skipped`.
pub fn read_private(
    dir: &Path,
    gun: &str,
    skipped: &mut Vec<String>,
) -> Result<Vec<HeldKey>, NotaryError> {
    let private = dir.join("private");
    let entries = match std::fs::read_dir(&private) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(NotaryError::Input {
                path: private,
                detail: e.to_string(),
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| NotaryError::Input {
                path: private.clone(),
                detail: e.to_string(),
            })?
            .path();
        if path.extension().is_none_or(|x| x != "key") {
            continue;
        }
        let input = |detail: String| NotaryError::Input {
            path: path.clone(),
            detail,
        };
        let raw = Zeroizing::new(
            crate::fsutil::read_regular(&path, 64 << 10).map_err(|e| input(e.to_string()))?,
        );
        let text = std::str::from_utf8(&raw).map_err(|_| input("not PEM text".into()))?;
        let (headers, body) = split_headers(text);
        let body = Zeroizing::new(body);
        let header = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
        let Some(role) = header("role") else { continue };
        if header("gun").is_some_and(|g| g != gun) {
            continue;
        }
        let var = passphrase_var(&role);
        let Some(pass) = passphrase(var, &role, &path) else {
            skipped.push(format!("{} ({role}): {var} is not set", path.display()));
            continue;
        };
        let (label, der) = pem::decode_vec(body.as_bytes()).map_err(|e| input(e.to_string()))?;
        let der = Zeroizing::new(der);
        if label != "ENCRYPTED PRIVATE KEY" {
            return Err(input(format!("unexpected PEM label {label}")));
        }
        let enc = EncryptedPrivateKeyInfoRef::from_der(&der).map_err(|e| input(e.to_string()))?;
        let plain = enc
            .decrypt(pass.as_bytes())
            .map_err(|_| NotaryError::WrongPassphrase {
                path: path.clone(),
                var,
            })?;
        if is_rsa(plain.as_bytes()) {
            // Verified in Notary's metadata, but warrant signs only with ed25519 and
            // ECDSA P-256: the role is reported as needing a new key, not fatal here.
            skipped.push(format!(
                "{} ({role}): an RSA key; warrant signs with ed25519 or ECDSA P-256 only",
                path.display()
            ));
            continue;
        }
        let key = SecretKey::from_pkcs8_der(plain.as_bytes())
            .or_else(|_| {
                let mut der = Zeroizing::new(plain.as_bytes().to_vec());
                v1_without_public_key_as_v0(&mut der);
                SecretKey::from_pkcs8_der(&der)
            })
            .map_err(|e| input(format!("not a key warrant can use: {e}")))?;
        out.push(HeldKey { role, path, key });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
