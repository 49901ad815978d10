//! What the commands do, as library calls: the CLI (and later the plugins) only parse
//! arguments and format results.

pub mod anchor;
pub mod approve;
pub mod bins;
pub mod delegation;
pub mod edit;
pub mod export;
pub mod init;
pub mod inspect;
pub mod renew;
pub mod rotate;
pub mod sign;
pub mod status;
pub mod trust;
pub mod verify;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::cache::CacheError;
use crate::crypto::keystore::{KeyStore, KeystoreError, PassphraseSource};
use crate::crypto::{KeyId, KeySigner, Signer};
use crate::store::{Listing, StoreError, StoreErrorKind};
use crate::tuf::client::{ClientError, FetchError, FetchErrorKind, MetaName, Remote};
use crate::tuf::editor::EditorError;
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
    let bad = || {
        OpError::InvalidArgument(format!(
            "invalid duration {s:?}: use e.g. 7d, 12h, 30m, 90s, 2w"
        ))
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
        let public = info
            .public_key()
            .map_err(|e| OpError::InvalidArgument(e.to_string()))?;
        let mut key = crate::tuf::metadata::Key::from_public(&public);
        if let Some(pem) = self.keys.certificate(&info.keyid) {
            let chain = crate::crypto::x509::parse_bundle(&pem)
                .map_err(|e| OpError::InvalidArgument(e.to_string()))?;
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

/// A command failed. [`OpError::exit_code`] maps each variant to the documented
/// exit codes: 1 not trusted, 2 usage or configuration, 3 storage or I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// Nothing to anchor trust in: no cache, no pin.
    #[error(
        "no trusted root for {location}: pin one with --root FILE (the repository's 1.root.json, \
         from its owner) or --root-keyid ID (repeatable)"
    )]
    NoTrustAnchor {
        /// The repository.
        location: String,
    },
    /// The pinned root file could not be read or parsed.
    #[error("cannot use pinned root {path}: {detail}")]
    PinFile {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The repository's root is not the one the pin names.
    #[error("not trusted: the root of {location} does not match the pinned {what}: {detail}")]
    PinMismatch {
        /// The repository.
        location: String,
        /// `root key ids` or `root file`.
        what: &'static str,
        /// How far it fell short.
        detail: String,
    },
    /// A pin given now disagrees with the root the trusted cache already holds
    /// (an administrator tightened a policy, or pinned another repository's keys).
    #[error(
        "not trusted: this cache trusts a different root of {location} than the pin ({detail}); \
         if the pin is right, delete {cache} and verify again"
    )]
    PinConflict {
        /// The repository.
        location: String,
        /// The cache directory to delete to start over from the pin.
        cache: PathBuf,
        /// What disagrees.
        detail: String,
    },
    /// A file named on the command line cannot be used (missing, too large, a FIFO
    /// or device, not text).
    #[error("cannot use {path}: {source}; {hint}")]
    InputFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::fsutil::ReadError,
        /// What was expected there.
        hint: &'static str,
    },
    /// A pin that cannot be used as given (too-short key id, impossible threshold).
    #[error(transparent)]
    Pin(#[from] anchor::PinError),
    /// The root keys' certificates do not chain to the pinned CA.
    #[error(
        "not trusted: the root keys of {location} are not certified by the CA in {ca}: {reasons}"
    )]
    CertificatesRejected {
        /// The repository.
        location: String,
        /// The CA file.
        ca: PathBuf,
        /// Per key, why.
        reasons: String,
    },
    /// The repository has no `warrant.tuf`.
    #[error(
        "not trusted: {location} has no TUF repository (no warrant.tuf); run `warrant init` and `warrant sign` first"
    )]
    NoRepository {
        /// The repository.
        location: String,
    },
    /// `init` on a repository that already has one.
    #[error("{location} already has a TUF repository; to change its keys use `warrant key rotate`")]
    AlreadyInitialized {
        /// The repository.
        location: String,
    },
    /// The TUF update failed (a check, a fetch, or the cache).
    #[error("{location}: {source}")]
    Update {
        /// The repository.
        location: String,
        /// What failed.
        source: ClientError,
    },
    /// No role signs the target.
    #[error("not trusted: no signed target {target:?} in {location}")]
    TargetNotSigned {
        /// The target path (tag or digest).
        target: String,
        /// The repository.
        location: String,
    },
    /// The image the store serves now is not the signed one.
    #[error(
        "not trusted: {reference} is {actual} ({actual_size} bytes) but the signed target {target:?} is {signed} ({signed_size} bytes); the tag was moved or the image replaced"
    )]
    DigestMismatch {
        /// The image reference.
        reference: String,
        /// The target path.
        target: String,
        /// The signed digest (or `none`).
        signed: String,
        /// The signed length.
        signed_size: u64,
        /// What the store serves.
        actual: String,
        /// Its size.
        actual_size: u64,
    },
    /// A role the policy requires did not sign the target.
    #[error("not trusted: role {role} did not sign {target:?} (the policy requires it)")]
    RoleDidNotSign {
        /// The role.
        role: String,
        /// The target.
        target: String,
    },
    /// A required role signed a different manifest for the target.
    #[error("not trusted: role {role} signed {target:?} as {signed}, not {expected}")]
    RolesDisagree {
        /// The role.
        role: String,
        /// The target.
        target: String,
        /// What the role signed.
        signed: String,
        /// What the search found and the store serves.
        expected: String,
    },
    /// No policy entry covers the repository.
    #[error("no trust policy for {location}: add a [[repository]] entry whose match covers it")]
    NoPolicy {
        /// The repository.
        location: String,
    },
    /// The policy file is unusable.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// Storage failed or served bad data.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key store failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// A key given by the user does not belong to the role.
    #[error("key {keyid} is not a {role} key of this repository")]
    KeyNotInRole {
        /// The role.
        role: String,
        /// The key.
        keyid: String,
    },
    /// Not enough private keys are at hand to meet a threshold.
    #[error(
        "cannot sign {role}: this key store holds {have} of its keys and at least {threshold} are needed here; sign from a machine that holds one of: {needed}"
    )]
    MissingSigningKeys {
        /// The role.
        role: String,
        /// Keys at hand.
        have: usize,
        /// Threshold.
        threshold: u64,
        /// Key ids (short) that would help.
        needed: String,
    },
    /// The role already lists this digest for the target (sign is then a no-op;
    /// `sign` reports it as success, it never reaches the user as an error).
    #[error("{target:?} is already signed with this digest by {role}")]
    AlreadySigned {
        /// The target.
        target: String,
        /// The role.
        role: String,
    },
    /// A PKCS#11 token or key could not be used (exit 2: configuration).
    #[error(transparent)]
    Pkcs11(#[from] crate::crypto::pkcs11::Pkcs11Error),
    /// A bad argument value.
    #[error("{0}")]
    InvalidArgument(String),
    /// The docker configuration or a credential helper it names failed (a
    /// configuration error: exit 2).
    #[error(transparent)]
    Credentials(#[from] crate::store::auth::AuthError),
    /// Building metadata failed.
    #[error(transparent)]
    Editor(#[from] EditorError),
    /// The trusted cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Concurrent publishers kept winning, or the registry kept losing our writes.
    #[error("{location}: gave up after {attempts} attempts; the last: {last}; retry later")]
    TooManyConflicts {
        /// The repository.
        location: String,
        /// Attempts made.
        attempts: u32,
        /// Why the last attempt did not stick (another signer published meanwhile,
        /// or the registry acknowledged a manifest it does not serve).
        last: String,
    },
    /// The registry acknowledged the new `warrant.tuf` but re-reading it to
    /// confirm that it stuck failed (the registry went away right after the
    /// write): the change may or may not be published. Re-running converges.
    #[error(
        "{location}: published {published}, but the change is not confirmed: {detail}; run the command again (it converges) or check with `warrant inspect`"
    )]
    Unconfirmed {
        /// The repository.
        location: String,
        /// The `warrant.tuf` manifest digest that was acknowledged.
        published: String,
        /// Why confirming failed.
        detail: String,
    },
    /// Our change was published and confirmed, but more time passed between the
    /// check of `warrant.tuf` and the answer to our PUT than concurrent writers
    /// wait before confirming theirs: one that published meanwhile may have been
    /// overwritten by ours (registries have no compare-and-swap on tags).
    #[error(
        "{location}: published {published}, but {window_ms} ms passed between checking warrant.tuf and the registry's answer (signers wait {settle_ms} ms before confirming): a change another signer published meanwhile may have been overwritten; check with `warrant inspect` that every recently signed target is listed, and sign any missing one again"
    )]
    PublishWindowExceeded {
        /// The repository.
        location: String,
        /// Our `warrant.tuf` manifest digest.
        published: String,
        /// Our check-to-answer time.
        window_ms: u128,
        /// What concurrent writers wait ([`edit::PUBLISH_SETTLE`]).
        settle_ms: u128,
    },
    /// A local file could not be written.
    #[error("{path}: {detail}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

fn store_kind_exit(kind: StoreErrorKind) -> u8 {
    match kind {
        // Content that does not check out is a trust failure, not an outage.
        StoreErrorKind::DigestMismatch | StoreErrorKind::TooLarge | StoreErrorKind::Malformed => 1,
        _ => 3,
    }
}

impl OpError {
    /// The process exit code: 1 not trusted, 2 usage/config, 3 storage/I/O.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpError::PinMismatch { .. }
            | OpError::PinConflict { .. }
            | OpError::CertificatesRejected { .. }
            | OpError::NoRepository { .. }
            | OpError::TargetNotSigned { .. }
            | OpError::DigestMismatch { .. }
            | OpError::RoleDidNotSign { .. }
            | OpError::RolesDisagree { .. } => 1,
            OpError::Update { source, .. } => match source {
                ClientError::Fetch { source, .. } => match source.kind {
                    FetchErrorKind::Unavailable | FetchErrorKind::NotFound => 3,
                    _ => 1,
                },
                ClientError::Persist(_) => 3,
                ClientError::NoTrustedRoot => 2,
                _ => 1,
            },
            OpError::Store(e) => store_kind_exit(e.kind),
            OpError::NoTrustAnchor { .. }
            | OpError::PinFile { .. }
            | OpError::Pin(_)
            | OpError::InputFile { .. }
            | OpError::AlreadyInitialized { .. }
            | OpError::Keystore(_)
            | OpError::KeyNotInRole { .. }
            | OpError::MissingSigningKeys { .. }
            | OpError::InvalidArgument(_)
            | OpError::AlreadySigned { .. }
            | OpError::Pkcs11(_)
            | OpError::Credentials(_)
            | OpError::NoPolicy { .. }
            | OpError::Policy(_) => 2,
            OpError::Editor(_)
            | OpError::Cache(_)
            | OpError::TooManyConflicts { .. }
            | OpError::Unconfirmed { .. }
            | OpError::PublishWindowExceeded { .. }
            | OpError::Io { .. } => 3,
        }
    }
}

/// Serves TUF file names from a store's `warrant.tuf` listing.
pub struct StoreRemote<'a, S: ?Sized> {
    store: &'a S,
    listing: Option<Listing>,
    /// Bytes already at hand (the cached timestamp), by digest: a listed file with
    /// that digest is these very bytes, so it is not downloaded again.
    known: Vec<(crate::digest::Sha256Digest, Vec<u8>)>,
}

impl<'a, S: crate::store::Store + ?Sized> StoreRemote<'a, S> {
    /// A remote over `store`, reading the listing on first use.
    pub fn new(store: &'a S) -> Self {
        Self {
            store,
            listing: None,
            known: Vec::new(),
        }
    }

    /// A remote over an already-read listing.
    pub fn with_listing(store: &'a S, listing: Listing) -> Self {
        Self {
            store,
            listing: Some(listing),
            known: Vec::new(),
        }
    }

    /// Serve a listed file whose digest is that of `bytes` from `bytes` (content
    /// addressing makes them the same file): e.g. the cached timestamp when it is
    /// still the current one, which the update must read but need not download.
    pub fn with_known(mut self, bytes: Option<Vec<u8>>) -> Self {
        if let Some(b) = bytes {
            self.known.push((crate::digest::Sha256Digest::of(&b), b));
        }
        self
    }

    /// The listing the files came from, if it was read.
    pub fn listing(&self) -> Option<&Listing> {
        self.listing.as_ref()
    }

    fn ensure_listing(&mut self) -> Result<&Listing, FetchError> {
        if self.listing.is_none() {
            let listing = self.store.listing().map_err(fetch_error)?;
            let listing = listing.ok_or_else(|| FetchError {
                kind: FetchErrorKind::NotFound,
                message: format!("{}: no warrant.tuf", self.store.location()),
            })?;
            self.listing = Some(listing);
        }
        self.listing.as_ref().ok_or_else(|| FetchError {
            kind: FetchErrorKind::Unavailable,
            message: "listing unavailable".into(),
        })
    }
}

fn fetch_error(e: StoreError) -> FetchError {
    let kind = match e.kind {
        StoreErrorKind::NotFound => FetchErrorKind::NotFound,
        StoreErrorKind::TooLarge => FetchErrorKind::TooLarge,
        StoreErrorKind::DigestMismatch | StoreErrorKind::Malformed => FetchErrorKind::Integrity,
        _ => FetchErrorKind::Unavailable,
    };
    FetchError {
        kind,
        message: e.to_string(),
    }
}

impl<S: crate::store::Store + ?Sized> Remote for StoreRemote<'_, S> {
    fn fetch(&mut self, name: &MetaName, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        let name = name.to_string();
        let name = name.as_str();
        let location = self.store.location().to_string();
        let listing = self.ensure_listing()?;
        let file = listing.get(name).cloned().ok_or_else(|| FetchError {
            kind: FetchErrorKind::NotFound,
            message: format!("{location}: {name} is not in warrant.tuf"),
        })?;
        if let Some((_, b)) = self
            .known
            .iter()
            .find(|(d, b)| *d == file.digest && b.len() as u64 <= max_bytes)
        {
            return Ok(b.clone());
        }
        self.store.read_file(&file, max_bytes).map_err(fetch_error)
    }
}
