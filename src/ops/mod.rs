//! What the commands do, as library calls: the CLI (and later the plugins) only parse
//! arguments and format results.

pub mod anchor;
pub mod approve;
pub mod bins;
pub mod certify;
pub mod delegation;
pub mod edit;
pub mod error;
pub mod exit;
pub mod export;
pub mod init;
pub mod inspect;
pub mod pending;
pub mod publish;
pub mod remote;
pub mod renew;
pub mod repository;
pub mod request;
pub mod rotate;
pub mod sign;
pub mod sign_draft;
pub mod status;
pub mod trust;
pub mod unsign;
pub mod verify;

pub use error::{EnvelopeError, OpError, PinFileError};
pub use repository::{Repository, StoreRemote};

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::crypto::keystore::{KeyStore, PassphraseSource};
use crate::crypto::{KeyId, KeySigner, Signer};
use crate::tuf::verify::short_id;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct Network {
    /// Per-request timeout.
    pub timeout: std::time::Duration,
    /// Registry time one store may spend in all (issue #11 item 8); `None` means
    /// four times `timeout` (see [`Network::deadline`]).
    pub deadline: Option<std::time::Duration>,
    /// Registries (`host[:port]`) allowed over plain HTTP besides loopback hosts.
    pub insecure: Vec<String>,
    /// The docker config directory (`$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config: Option<PathBuf>,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            timeout: std::time::Duration::from_secs(30),
            deadline: None,
            insecure: Vec::new(),
            docker_config: crate::store::auth::docker_config_dir(),
        }
    }
}

impl Network {
    /// Registry time a command may spend: `--deadline`, else four attempts' worth
    /// of `--timeout` (enough for one slow request and its retries, not for a
    /// registry that stalls every request).
    pub fn deadline(&self) -> std::time::Duration {
        self.deadline.unwrap_or(self.timeout * 4)
    }
}

/// How long new metadata lives (issue #6 defaults: root and targets a year,
/// snapshot 30 days, timestamp 7 days).
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Root.
    pub root: chrono::Duration,
    /// Targets and delegated roles.
    pub targets: chrono::Duration,
    /// Snapshot.
    pub snapshot: chrono::Duration,
    /// Timestamp.
    pub timestamp: chrono::Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        use crate::tuf::editor::lifetime;
        Self {
            root: lifetime::root(),
            targets: lifetime::targets(),
            snapshot: lifetime::snapshot(),
            timestamp: lifetime::timestamp(),
        }
    }
}

/// Parse a duration like `7d`, `12h`, `30m`, `90s` or `2w`.
pub fn parse_duration(s: &str) -> Result<chrono::Duration, OpError> {
    let bad = || OpError::InvalidValue {
        argument: "duration",
        value: s.to_owned(),
        expected: "e.g. 7d, 12h, 30m, 90s, 2w (at most 10 years)",
    };
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let d = match unit {
        "s" => chrono::Duration::try_seconds(n),
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        "w" => chrono::Duration::try_weeks(n),
        _ => None,
    }
    .filter(|d| *d > chrono::Duration::zero() && *d <= chrono::Duration::days(3650))
    .ok_or_else(bad)?;
    Ok(d)
}

/// Process-wide settings: where state lives, how to get the passphrase, the time.
#[derive(Debug)]
pub struct Context {
    /// `$WARRANT_HOME` (default `~/.warrant`).
    pub home: PathBuf,
    /// The encrypted key store in `home`.
    pub keys: KeyStore,
    /// Where the passphrase comes from.
    pub passphrase: PassphraseSource,
    /// The time every expiry is compared with (read once per command).
    pub now: DateTime<Utc>,
    /// Registry access settings.
    pub network: Network,
    /// Lifetimes of metadata this process signs.
    pub lifetimes: Lifetimes,
}

impl Context {
    /// A context for `home`, reading the clock now.
    pub fn new(home: PathBuf, passphrase: PassphraseSource) -> Self {
        Self {
            keys: KeyStore::new(&home),
            home,
            passphrase,
            now: Utc::now(),
            network: Network::default(),
            lifetimes: Lifetimes::default(),
        }
    }

    /// Decrypt the keys of the store that are among `keyids`, `threshold` of them
    /// (fewer is `MissingSigningKeys`); `only` restricts the choice to one key (by
    /// id, prefix or name), which must be listed.
    pub fn signers_for(
        &self,
        role: &str,
        keyids: &[KeyId],
        threshold: u64,
        only: Option<&str>,
    ) -> Result<Vec<KeySigner>, OpError> {
        let take = usize::try_from(threshold).unwrap_or(usize::MAX);
        self.load_signers(role, keyids, only, threshold, take)
    }

    /// Every private key in the store that `keyids` lists (or just `only`, which
    /// must be listed), decrypted: at least one, else `MissingSigningKeys`.
    pub fn signers_at_hand(
        &self,
        role: &str,
        keyids: &[KeyId],
        only: Option<&str>,
    ) -> Result<Vec<KeySigner>, OpError> {
        self.load_signers(role, keyids, only, 1, usize::MAX)
    }

    /// The listed keys held by this store (or `only`), at least `min`, at most
    /// `take` of them decrypted.
    fn load_signers(
        &self,
        role: &str,
        keyids: &[KeyId],
        only: Option<&str>,
        min: u64,
        take: usize,
    ) -> Result<Vec<KeySigner>, OpError> {
        let candidates: Vec<KeyId> = match only {
            Some(q) => {
                let info = self.keys.find(q)?;
                if !keyids.contains(&info.keyid) {
                    return Err(OpError::KeyNotInRole {
                        role: role.to_owned(),
                        keyid: info.keyid.0,
                    });
                }
                vec![info.keyid]
            }
            None => keyids
                .iter()
                .filter(|k| self.keys.has(k))
                .cloned()
                .collect(),
        };
        if (candidates.len() as u64) < min {
            return Err(OpError::MissingSigningKeys {
                role: role.to_owned(),
                have: candidates.len(),
                threshold: min,
                needed: keyids
                    .iter()
                    .filter(|k| !candidates.contains(k))
                    .map(|k| short_id(&k.0).to_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        // Token keys need their PIN, file keys the passphrase (asked for only when
        // a file key is among those used).
        let mut out = Vec::new();
        for k in candidates.iter().take(take) {
            if let Some(uri) = self.keys.token_uri(k) {
                let uri: crate::crypto::pkcs11::Pkcs11Uri = uri.parse()?;
                out.push(KeySigner::Token(crate::crypto::pkcs11::TokenKey::open(
                    &uri,
                )?));
            } else {
                let pass = self.passphrase.get(false)?;
                out.push(KeySigner::File(self.keys.load(k, pass)?));
            }
        }
        Ok(out)
    }
}

impl Context {
    /// The root.json / delegation entry for a key, carrying its certificate chain
    /// when the key store has one (`warrant key certify`).
    pub fn key_entry(
        &self,
        info: &crate::crypto::keystore::KeyInfo,
    ) -> Result<crate::tuf::metadata::Key, OpError> {
        let public = info.public_key().map_err(|source| OpError::KeyMaterial {
            keyid: info.keyid.0.clone(),
            source,
        })?;
        let mut key = crate::tuf::metadata::Key::from_public(&public);
        if let Some(pem) = self.keys.certificate(&info.keyid) {
            let chain =
                crate::crypto::x509::parse_bundle(&pem).map_err(|source| OpError::Certificate {
                    keyid: info.keyid.0.clone(),
                    source,
                })?;
            let pems: Vec<serde_json::Value> = chain
                .iter()
                .filter_map(|c| {
                    use x509_cert::der::EncodePem as _;
                    c.to_pem(x509_cert::der::pem::LineEnding::LF).ok()
                })
                .map(serde_json::Value::String)
                .collect();
            key.unrecognized.insert(
                crate::crypto::x509::CHAIN_FIELD.into(),
                serde_json::Value::Array(pems),
            );
        }
        Ok(key)
    }
}

/// Borrow a list of signers as trait objects.
pub fn as_signers(keys: &[KeySigner]) -> Vec<&dyn Signer> {
    keys.iter().map(|k| k as &dyn Signer).collect()
}
