//! `warrant import notary`: a Notary v1 (Docker Content Trust) repository becomes an
//! ordinary `warrant.tuf` (issue #16).
//!
//! The order is the point: [`verify`] reads the Notary dialect ([`dialect`]) from the
//! server ([`fetch`]) and checks it against the root the user already trusts; only
//! the verified result (keys, thresholds, delegations, signed tags) goes on to
//! [`mod@write`], which builds the warrant repository through the same operations as
//! `warrant init`, `delegation add` and `sign` in a staging layout ([`stage`]) and
//! publishes it to the destination with one publish: the destination holds the
//! complete repository or nothing. Notary's JSON never reaches warrant's verify
//! path.

pub mod dialect;
pub mod fetch;
pub mod keys;
pub mod stage;
pub mod verify;
pub mod write;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::ops::OpError;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotaryError {
    /// A role's JSON is not what Notary writes.
    #[error("not trusted: Notary {role} metadata is malformed: {detail}")]
    Malformed {
        /// The role.
        role: String,
        /// What is wrong.
        detail: String,
    },
    /// A key type warrant cannot verify.
    #[error("Notary {role} uses key {keyid} of type {keytype}, which warrant cannot import yet")]
    UnsupportedKey {
        /// The role.
        role: String,
        /// The key id.
        keyid: String,
        /// Its type.
        keytype: String,
    },
    /// Too few distinct valid signatures.
    #[error(
        "not trusted: Notary {role} has {valid} valid signature(s), its threshold is {threshold}"
    )]
    Threshold {
        /// The role.
        role: String,
        /// Distinct valid signatures.
        valid: u64,
        /// Required.
        threshold: u64,
    },
    /// The role's expiry has passed.
    #[error(
        "not trusted: Notary {role} expired at {expires}; re-sign it with notary before importing"
    )]
    Expired {
        /// The role.
        role: String,
        /// When.
        expires: DateTime<Utc>,
    },
    /// A file does not match the hash its parent lists (tampering or a mixed state).
    #[error(
        "not trusted: Notary {role} does not match its listed sha256 {expected} (got {actual})"
    )]
    HashMismatch {
        /// The role.
        role: String,
        /// Listed.
        expected: String,
        /// Served.
        actual: String,
    },
    /// A file is longer than the length its parent signed (tampering, endless data).
    #[error("not trusted: Notary {role} is longer than the {length} bytes its parent lists")]
    LongerThanSigned {
        /// The role.
        role: String,
        /// The signed length.
        length: u64,
    },
    /// The server's root is older than the trusted one.
    #[error(
        "not trusted: the server offers {role} version {offered}, older than the trusted {trusted}"
    )]
    Rollback {
        /// The role.
        role: String,
        /// Trusted version.
        trusted: u64,
        /// Offered version.
        offered: u64,
    },
    /// The server's root is not the trusted root, nor signed by it.
    #[error(
        "not trusted: the server's root is not signed by the trusted root ({detail}); check --root or the trust dir"
    )]
    NotAnchored {
        /// Why.
        detail: String,
    },
    /// The anchor root itself is unusable.
    #[error("cannot use the trusted root: {detail}")]
    Anchor {
        /// Why.
        detail: String,
    },
    /// A local file could not be read.
    #[error("cannot use {path}: {detail}")]
    Input {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A private key's passphrase is wrong.
    #[error("cannot decrypt {path}: wrong passphrase in {var}")]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
        /// The variable it came from.
        var: &'static str,
    },
    /// The server could not be reached or answered an error.
    #[error("Notary server {url}: {detail}")]
    Server {
        /// The URL.
        url: String,
        /// What happened.
        detail: String,
    },
    /// A response was larger than allowed.
    #[error("Notary server {url}: response larger than {cap} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        cap: u64,
    },
    /// A key the import needs is not in the trust dir (a role that signed tags must be
    /// re-signed by warrant: Notary's signatures do not carry across dialects).
    #[error(
        "not enough private {role} keys of {gun} in {dir}/private to re-sign its tags (set {var} if they are there; a signer who holds the key can run the import)"
    )]
    MissingKey {
        /// The Notary role.
        role: String,
        /// The GUN.
        gun: String,
        /// The trust dir.
        dir: PathBuf,
        /// Its passphrase variable.
        var: &'static str,
    },
    /// A role that must be re-signed is keyed with RSA, which warrant verifies but
    /// does not sign with.
    #[error(
        "Notary role {role} of {gun} is signed with RSA keys: warrant verifies RSA but signs only with ed25519 or ECDSA P-256; give the role an ECDSA key in Notary first (`notary key rotate {gun} {role}` for targets/snapshot, or `notary delegation add` of an ECDSA certificate and `notary delegation remove` of the RSA one, then re-sign its tags) and import again"
    )]
    RsaRole {
        /// The Notary role.
        role: String,
        /// The GUN.
        gun: String,
    },
    /// A Notary name warrant cannot carry over.
    #[error("cannot import {what} {name:?}: {detail}")]
    Unmappable {
        /// `tag` or `role`.
        what: &'static str,
        /// The name.
        name: String,
        /// Why.
        detail: String,
    },
    /// A staged role did not reach its threshold with the keys at hand, so the
    /// repository would be incomplete (nothing is published).
    #[error(
        "cannot import: role {role} would be {state}, not published, with the keys in this key store; nothing was published"
    )]
    Unpublishable {
        /// The warrant role.
        role: String,
        /// Its staged state (`pending`, `waiting`, `ready`).
        state: &'static str,
    },
    /// Writing the warrant repository failed.
    #[error(transparent)]
    Op(#[from] OpError),
}

impl NotaryError {
    fn anchor(e: NotaryError) -> NotaryError {
        NotaryError::Anchor {
            detail: e.to_string(),
        }
    }

    /// 1 for trust failures, 3 for server and network errors, 2 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            NotaryError::Malformed { .. }
            | NotaryError::Threshold { .. }
            | NotaryError::Expired { .. }
            | NotaryError::HashMismatch { .. }
            | NotaryError::LongerThanSigned { .. }
            | NotaryError::Rollback { .. }
            | NotaryError::NotAnchored { .. } => 1,
            NotaryError::Server { .. } | NotaryError::TooLarge { .. } => 3,
            NotaryError::Op(e) => e.exit_code(),
            _ => 2,
        }
    }
}

/// Options of `warrant import notary`.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The Notary GUN (`registry.example.com/team/app`).
    pub gun: String,
    /// The Notary server URL.
    pub server: String,
    /// A CA certificate (PEM) for the server, besides the system roots.
    pub server_ca: Option<PathBuf>,
    /// The DCT trust dir (`~/.docker/trust`).
    pub trust_dir: PathBuf,
    /// Trust this root.json instead of the trust dir's.
    pub root: Option<PathBuf>,
    /// Where to publish (default: the GUN).
    pub to: crate::store::Location,
    /// Print the table and roles only.
    pub dry_run: bool,
    /// Import even when registry digests differ from the signed ones.
    pub allow_drift: bool,
}

/// Verify the Notary repository, compare with the registry, and (unless a dry run or
/// drift) publish it as a warrant repository.
pub fn import(
    ctx: &crate::ops::Context,
    opts: &ImportOptions,
) -> Result<write::ImportReport, NotaryError> {
    let anchor_path = opts.root.clone().unwrap_or_else(|| {
        opts.trust_dir
            .join("tuf")
            .join(&opts.gun)
            .join("metadata")
            .join("root.json")
    });
    let anchor =
        crate::fsutil::read_regular(&anchor_path, 1 << 20).map_err(|e| NotaryError::Input {
            path: anchor_path.clone(),
            detail: e.to_string(),
        })?;
    let server = fetch::NotaryServer::new(
        &opts.server,
        &opts.gun,
        opts.server_ca.as_deref(),
        ctx.network.timeout,
    )?;
    let seen = seen_versions(&opts.trust_dir.join("tuf").join(&opts.gun).join("metadata"));
    let verified = verify::verify(&server, &anchor, &seen, ctx.now)?;
    write::import_verified(ctx, opts, &verified)
}

/// The versions of the roles the user's Notary client cached (`metadata/<role>.json`,
/// delegated roles in subdirectories). Only ever used to refuse older server
/// versions, so an unreadable or edited file can make the import refuse, never
/// accept.
fn seen_versions(dir: &std::path::Path) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten().take(1024) {
            let path = e.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if path.is_dir() && stack.len() < 64 {
                stack.push((path, format!("{prefix}{name}/")));
            } else if let Some(role) = name.strip_suffix(".json")
                && role != "root"
                && let Ok(bytes) = crate::fsutil::read_regular(&path, fetch::MAX_METADATA)
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
                && let Some(version) = v["signed"]["version"].as_u64()
            {
                out.insert(format!("{prefix}{role}"), version);
            }
        }
    }
    out
}
