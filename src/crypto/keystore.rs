//! Private keys at rest: encrypted PKCS#8 (PBES2, scrypt + AES-256-CBC) under
//! `$WARRANT_HOME/keys/`, one `KEYID.key` (PEM) plus a `KEYID.pub.json` that lets
//! warrant list and match keys without the passphrase. Directory 0700, files 0600.

use std::fs;
use std::path::{Path, PathBuf};

use pkcs8::der::pem::LineEnding;
use pkcs8::{EncryptedPrivateKeyInfoRef, PrivateKeyInfoRef, SecretDocument};
use serde::{Deserialize, Serialize};

use super::keys::{KeyError, KeyId, KeyType, PublicKey, SecretKey, Signer as _};
pub use super::passphrase::{Passphrase, PassphraseSource};

/// Longest key file we read (a PEM private key is well under 1 KiB).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A key-store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// A key name outside `[A-Za-z0-9._-]{1,64}`.
    #[error(
        "key name {name:?} is not usable: names are 1 to 64 characters of A-Z a-z 0-9 . _ - \
         (not starting with . or -)"
    )]
    BadName {
        /// The name, cut to 80 characters.
        name: String,
    },
    /// Another key already has this name.
    #[error(
        "the key store already has a key named {name:?} ({keyid}); choose another --name \
         (names must find one key)"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The key that has it.
        keyid: String,
    },
    /// Reading or writing the key directory failed.
    #[error("key store {path}: {detail}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        detail: String,
    },
    /// The passphrase file named with `--passphrase-file` cannot be read.
    #[error(
        "cannot read the passphrase file {path}: {detail}; name an existing file with --passphrase-file, or set WARRANT_PASSPHRASE"
    )]
    PassphraseFile {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// No key matches.
    #[error("no key {query:?} in {dir}; `warrant key list` shows the keys there")]
    NotFound {
        /// What was asked for.
        query: String,
        /// The key directory.
        dir: PathBuf,
    },
    /// Several keys match a prefix or name.
    #[error("{query:?} matches several keys ({matches}); give more of the key id")]
    Ambiguous {
        /// What was asked for.
        query: String,
        /// The matching key ids.
        matches: String,
    },
    /// The passphrase does not decrypt the key.
    #[error("wrong passphrase for key {keyid} (or the key file is corrupt)")]
    WrongPassphrase {
        /// The key.
        keyid: KeyId,
    },
    /// No passphrase source is available.
    #[error(
        "no passphrase: set WARRANT_PASSPHRASE, pass --passphrase-file FILE, or run on a terminal to be prompted"
    )]
    NoPassphrase,
    /// The passphrase is unusable.
    #[error("{0}")]
    BadPassphrase(&'static str),
    /// A key file is malformed.
    #[error("key file {path}: {detail}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Key material problem.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// What `KEYID.pub.json` records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyInfo {
    /// The TUF key id.
    pub keyid: KeyId,
    /// A human label.
    pub name: String,
    /// TUF keytype.
    pub keytype: String,
    /// TUF scheme.
    pub scheme: String,
    /// TUF keyval.public.
    pub public: String,
    /// Where a token key lives (RFC 7512 URI); `None` for file keys. The private
    /// half of a token key is never in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs11: Option<String>,
}

impl KeyInfo {
    /// Decode the public key.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_tuf(&self.keytype, &self.scheme, &self.public)
    }
}

/// The key directory.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
    /// Keys decrypted so far in this process, by key id and a digest of the
    /// passphrase that opened them: scrypt runs once per key per process, however
    /// many roles the key signs (issue #13 item 4).
    decrypted: std::sync::Arc<std::sync::Mutex<DecryptedKeys>>,
}

type DecryptedKeys = std::collections::HashMap<(KeyId, [u8; 32]), SecretKey>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeystoreError + '_ {
    move |e| KeystoreError::Io {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

/// Write `bytes` to `path` atomically with mode 0600 (temp file in the same
/// directory, fsync, rename).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    crate::fsutil::write_atomic(path, bytes, crate::fsutil::WriteOptions::PRIVATE)
        .map_err(io_err(path))
}

/// Key names are short labels people type: 1 to 64 of `[A-Za-z0-9._-]`, not
/// starting with `.` or `-` (issue #11: a 100,000-character name made every
/// `key list` fail).
pub fn check_name(name: &str) -> Result<(), KeystoreError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(KeystoreError::BadName {
            name: name.chars().take(80).collect(),
        })
    }
}

pub(super) fn read_capped(path: &Path) -> Result<Vec<u8>, KeystoreError> {
    use crate::fsutil::{ReadError, read_regular};
    read_regular(path, MAX_KEY_FILE).map_err(|e| match e {
        ReadError::Io(e) => io_err(path)(e),
        other => KeystoreError::Malformed {
            path: path.to_owned(),
            detail: format!(
                "{other} (key and passphrase files are regular files of at most 64 KiB)"
            ),
        },
    })
}

impl KeyStore {
    /// The key store under `home` (`$WARRANT_HOME/keys`), created 0700 on first write.
    pub fn new(home: &Path) -> Self {
        Self {
            dir: home.join("keys"),
            decrypted: Default::default(),
        }
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ensure_dir(&self) -> Result<(), KeystoreError> {
        use std::os::unix::fs::DirBuilderExt as _;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io_err(&self.dir))
    }

    /// Generate a key, store it encrypted, and return its public info.
    pub fn generate(
        &self,
        kind: KeyType,
        name: &str,
        pass: &Passphrase,
    ) -> Result<KeyInfo, KeystoreError> {
        let key = SecretKey::generate(kind)?;
        self.add(&key, name, pass)
    }

    /// A name for a new key `keyid`: `name` (checked, and not another key's), or
    /// `key-<id prefix>` when `name` is empty.
    fn new_name(&self, name: &str, keyid: &KeyId) -> Result<String, KeystoreError> {
        if name.is_empty() {
            return Ok(format!("key-{}", &keyid.0[..keyid.0.len().min(8)]));
        }
        check_name(name)?;
        if let Some(other) = self
            .list()?
            .into_iter()
            .find(|k| k.name == name && k.keyid != *keyid)
        {
            return Err(KeystoreError::NameTaken {
                name: name.to_owned(),
                keyid: super::keys::short_id(&other.keyid.0).to_owned(),
            });
        }
        Ok(name.to_owned())
    }

    /// Generate a key named `base`, or `base-<id prefix>` when a key of that name
    /// exists (keys a command makes for itself, such as `init`'s `targets`).
    pub fn generate_with_default_name(
        &self,
        kind: KeyType,
        base: &str,
        pass: &Passphrase,
    ) -> Result<KeyInfo, KeystoreError> {
        let key = SecretKey::generate(kind)?;
        let id = key.public_key().key_id();
        let name = match self.new_name(base, &id) {
            Ok(n) => n,
            Err(KeystoreError::NameTaken { .. }) => {
                format!("{base}-{}", &id.0[..id.0.len().min(8)])
            }
            Err(e) => return Err(e),
        };
        self.add(&key, &name, pass)
    }

    /// Store `key` encrypted under `pass` (an empty `name` gets `key-<id prefix>`).
    pub fn add(
        &self,
        key: &SecretKey,
        name: &str,
        pass: &Passphrase,
    ) -> Result<KeyInfo, KeystoreError> {
        self.ensure_dir()?;
        let public = key.public_key();
        let info = KeyInfo {
            keyid: public.key_id(),
            name: self.new_name(name, &public.key_id())?,
            keytype: public.keytype().to_owned(),
            scheme: public.scheme().to_owned(),
            public: public.public(),
            pkcs11: None,
        };
        let der = key.to_pkcs8_der()?;
        let pki = PrivateKeyInfoRef::try_from(der.as_slice())
            .map_err(|e| KeyError::MalformedPrivate(e.to_string()))?;
        let encrypted = pki
            .encrypt(pass.secret().as_bytes())
            .map_err(|e| KeyError::MalformedPrivate(format!("encryption failed: {e}")))?;
        let pem = encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map_err(|e| KeyError::MalformedPrivate(e.to_string()))?;
        let key_path = self.dir.join(format!("{}.key", info.keyid));
        write_private(&key_path, pem.as_bytes())?;
        let pub_path = self.dir.join(format!("{}.pub.json", info.keyid));
        let json = serde_json::to_vec_pretty(&info).map_err(|e| KeystoreError::Malformed {
            path: pub_path.clone(),
            detail: e.to_string(),
        })?;
        write_private(&pub_path, &json)?;
        Ok(info)
    }

    /// Every key's public info, sorted by name then id.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeystoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_err(&self.dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".pub.json") || name.starts_with('.') {
                continue;
            }
            let bytes = read_capped(&path)?;
            let info: KeyInfo =
                serde_json::from_slice(&bytes).map_err(|e| KeystoreError::Malformed {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
            out.push(info);
        }
        out.sort_by(|a, b| (&a.name, &a.keyid).cmp(&(&b.name, &b.keyid)));
        Ok(out)
    }

    /// The key whose id equals or starts with `query`, or whose name is `query`.
    pub fn find(&self, query: &str) -> Result<KeyInfo, KeystoreError> {
        let all = self.list()?;
        let exact: Vec<&KeyInfo> = all.iter().filter(|k| k.keyid.0 == query).collect();
        let matches: Vec<&KeyInfo> = if exact.is_empty() {
            all.iter()
                .filter(|k| (query.len() >= 6 && k.keyid.0.starts_with(query)) || k.name == query)
                .collect()
        } else {
            exact
        };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(KeystoreError::NotFound {
                query: query.to_owned(),
                dir: self.dir.clone(),
            }),
            many => Err(KeystoreError::Ambiguous {
                query: query.to_owned(),
                matches: many
                    .iter()
                    .map(|k| super::keys::short_id(&k.keyid.0))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Import a PEM file: an `ENCRYPTED PRIVATE KEY` (decrypted with `pass`, stored
    /// re-encrypted under it), a plain `PRIVATE KEY` (stored encrypted), or a
    /// `PUBLIC KEY` (stored public-only: usable in delegations and rotations, not
    /// for signing).
    pub fn import(
        &self,
        pem: &str,
        name: &str,
        pass: &Passphrase,
    ) -> Result<KeyInfo, KeystoreError> {
        let malformed = |detail: String| KeystoreError::Malformed {
            path: PathBuf::from("(imported key)"),
            detail,
        };
        let label = pem
            .lines()
            .find_map(|l| {
                l.strip_prefix("-----BEGIN ")
                    .and_then(|l| l.strip_suffix("-----"))
            })
            .ok_or_else(|| malformed("not a PEM file".into()))?;
        match label {
            "ENCRYPTED PRIVATE KEY" => {
                let (_, doc) =
                    SecretDocument::from_pem(pem).map_err(|e| malformed(e.to_string()))?;
                let enc = EncryptedPrivateKeyInfoRef::try_from(doc.as_bytes())
                    .map_err(|e| malformed(e.to_string()))?;
                let plain = enc.decrypt(pass.secret().as_bytes()).map_err(|_| {
                    KeystoreError::WrongPassphrase {
                        keyid: KeyId("(imported key)".into()),
                    }
                })?;
                self.add(&SecretKey::from_pkcs8_der(plain.as_bytes())?, name, pass)
            }
            "PRIVATE KEY" => {
                let (_, doc) =
                    SecretDocument::from_pem(pem).map_err(|e| malformed(e.to_string()))?;
                self.add(&SecretKey::from_pkcs8_der(doc.as_bytes())?, name, pass)
            }
            "PUBLIC KEY" => {
                use p256::pkcs8::DecodePublicKey as _;
                let public = if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
                    PublicKey::Ed25519(k)
                } else {
                    let k = p256::ecdsa::VerifyingKey::from_public_key_pem(pem).map_err(|e| {
                        malformed(format!("not an Ed25519 or P-256 public key: {e}"))
                    })?;
                    PublicKey::from_p256(k)?
                };
                self.add_public(&public, name)
            }
            other => Err(malformed(format!("unsupported PEM label {other}"))),
        }
    }

    /// Store a public key only.
    pub fn add_public(&self, public: &PublicKey, name: &str) -> Result<KeyInfo, KeystoreError> {
        self.ensure_dir()?;
        let info = KeyInfo {
            keyid: public.key_id(),
            name: self.new_name(name, &public.key_id())?,
            keytype: public.keytype().to_owned(),
            scheme: public.scheme().to_owned(),
            public: public.public(),
            pkcs11: None,
        };
        let pub_path = self.dir.join(format!("{}.pub.json", info.keyid));
        let json = serde_json::to_vec_pretty(&info).map_err(|e| KeystoreError::Malformed {
            path: pub_path.clone(),
            detail: e.to_string(),
        })?;
        write_private(&pub_path, &json)?;
        Ok(info)
    }

    /// Remove a key that is only public here (what [`KeyStore::add_public`] wrote);
    /// a key whose private half or token is here is never touched.
    pub fn remove_public(&self, keyid: &KeyId) -> Result<(), KeystoreError> {
        if self.has(keyid) {
            return Ok(());
        }
        let path = self.dir.join(format!("{keyid}.pub.json"));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }

    /// The public key as SubjectPublicKeyInfo PEM.
    pub fn export_public(&self, info: &KeyInfo) -> Result<String, KeystoreError> {
        use p256::pkcs8::EncodePublicKey as _;
        let public = info.public_key()?;
        let pem = match &public {
            PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::EcdsaP256 { key, .. } => key.to_public_key_pem(LineEnding::LF),
            PublicKey::RsaPss { pem, .. } => Ok(pem.clone()),
        };
        pem.map_err(|e| KeystoreError::Key(KeyError::MalformedPrivate(e.to_string())))
    }

    /// The encrypted private key file (PEM, still encrypted under its passphrase).
    pub fn export_private(&self, info: &KeyInfo) -> Result<String, KeystoreError> {
        let path = self.dir.join(format!("{}.key", info.keyid));
        let bytes = read_capped(&path)?;
        String::from_utf8(bytes).map_err(|_| KeystoreError::Malformed {
            path,
            detail: "not PEM text".into(),
        })
    }

    /// Store a certificate (PEM chain, leaf first) for `keyid`.
    pub fn set_certificate(&self, keyid: &KeyId, pem: &str) -> Result<(), KeystoreError> {
        self.ensure_dir()?;
        let path = self.dir.join(format!("{keyid}.crt.pem"));
        write_private(&path, pem.as_bytes())
    }

    /// The certificate chain stored for `keyid`, if any.
    pub fn certificate(&self, keyid: &KeyId) -> Option<String> {
        if !keyid.0.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes = read_capped(&self.dir.join(format!("{keyid}.crt.pem"))).ok()?;
        String::from_utf8(bytes).ok()
    }

    /// True when the store can sign with `keyid`: its private key file, or a
    /// registered token key.
    pub fn has(&self, keyid: &KeyId) -> bool {
        self.dir.join(format!("{keyid}.key")).is_file() || self.token_uri(keyid).is_some()
    }

    /// The PKCS#11 URI of a registered token key.
    pub fn token_uri(&self, keyid: &KeyId) -> Option<String> {
        if keyid.0.is_empty() || !keyid.0.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes = read_capped(&self.dir.join(format!("{keyid}.pub.json"))).ok()?;
        serde_json::from_slice::<KeyInfo>(&bytes).ok()?.pkcs11
    }

    /// Register a key that lives on a token: its public half and URI only.
    pub fn add_token(
        &self,
        public: &PublicKey,
        name: &str,
        uri: &str,
    ) -> Result<KeyInfo, KeystoreError> {
        self.ensure_dir()?;
        let info = KeyInfo {
            keyid: public.key_id(),
            name: self.new_name(name, &public.key_id())?,
            keytype: public.keytype().to_owned(),
            scheme: public.scheme().to_owned(),
            public: public.public(),
            pkcs11: Some(uri.to_owned()),
        };
        let pub_path = self.dir.join(format!("{}.pub.json", info.keyid));
        let json = serde_json::to_vec_pretty(&info).map_err(|e| KeystoreError::Malformed {
            path: pub_path.clone(),
            detail: e.to_string(),
        })?;
        write_private(&pub_path, &json)?;
        Ok(info)
    }

    /// Decrypt the private key `keyid`.
    pub fn load(&self, keyid: &KeyId, pass: &Passphrase) -> Result<SecretKey, KeystoreError> {
        use sha2::Digest as _;
        let slot = (
            keyid.clone(),
            sha2::Sha256::digest(pass.secret().as_bytes()).into(),
        );
        if let Some(k) = self
            .decrypted
            .lock()
            .ok()
            .and_then(|m| m.get(&slot).map(SecretKey::duplicate))
        {
            return Ok(k);
        }
        let key = self.decrypt(keyid, pass)?;
        if let Ok(mut m) = self.decrypted.lock() {
            m.insert(slot, key.duplicate());
        }
        Ok(key)
    }

    fn decrypt(&self, keyid: &KeyId, pass: &Passphrase) -> Result<SecretKey, KeystoreError> {
        // Key ids of our keys are hex; refuse anything else before building a path.
        if keyid.0.is_empty() || !keyid.0.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeystoreError::NotFound {
                query: keyid.0.clone(),
                dir: self.dir.clone(),
            });
        }
        let path = self.dir.join(format!("{keyid}.key"));
        let bytes = read_capped(&path).map_err(|e| match e {
            KeystoreError::Io { .. } if !path.exists() => KeystoreError::NotFound {
                query: keyid.0.clone(),
                dir: self.dir.clone(),
            },
            other => other,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| KeystoreError::Malformed {
            path: path.clone(),
            detail: "not PEM text".into(),
        })?;
        let (label, doc) =
            SecretDocument::from_pem(text).map_err(|e| KeystoreError::Malformed {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if label != "ENCRYPTED PRIVATE KEY" {
            return Err(KeystoreError::Malformed {
                path,
                detail: format!("expected an ENCRYPTED PRIVATE KEY, found {label}"),
            });
        }
        let enc = EncryptedPrivateKeyInfoRef::try_from(doc.as_bytes()).map_err(|e| {
            KeystoreError::Malformed {
                path: path.clone(),
                detail: e.to_string(),
            }
        })?;
        let plain =
            enc.decrypt(pass.secret().as_bytes())
                .map_err(|_| KeystoreError::WrongPassphrase {
                    keyid: keyid.clone(),
                })?;
        let key = SecretKey::from_pkcs8_der(plain.as_bytes())?;
        if &key.public_key().key_id() != keyid {
            return Err(KeystoreError::Malformed {
                path,
                detail: "the key inside does not match its file name".into(),
            });
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests;
