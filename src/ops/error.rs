//! What can go wrong in a command. Each variant has a deliberate exit code
//! ([`OpError::exit_code`], in `ops/exit.rs`: 1 not trusted, 2 usage or
//! configuration, 3 registry, I/O or an internal error).

use std::path::PathBuf;

use crate::cache::CacheError;
use crate::crypto::keystore::KeystoreError;
use crate::digest::Sha256Digest;
use crate::store::StoreError;
use crate::tuf::client::ClientError;
use crate::tuf::editor::EditorError;
use crate::tuf::trusted::TrustError;
use crate::tuf::verify::MetadataError;

use super::anchor;

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
    #[error("cannot use pinned root {path}: {source}")]
    PinFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: PinFileError,
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
    /// The command line does not make sense as a whole (a missing or extra
    /// argument): what the argument parser says.
    #[error("{problem}")]
    Usage {
        /// What is wrong, and what to give instead.
        problem: String,
    },
    /// A value given on the command line is not one the option takes.
    #[error("{argument} {value:?}: expected {expected}")]
    InvalidValue {
        /// The option (`--bins`, `--expires`, ...).
        argument: &'static str,
        /// What was given.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A repository or image reference that does not parse.
    #[error("{value:?}: {source}")]
    Reference {
        /// What was given.
        value: String,
        /// Why it does not parse.
        source: crate::store::reference::ParseRefError,
    },
    /// The same key, target or role was named twice.
    #[error("{what} {name} is given twice")]
    GivenTwice {
        /// `key`, `root key`, ...
        what: &'static str,
        /// The name as given.
        name: String,
    },
    /// The same target was given twice with different digests.
    #[error("{target:?} is given twice, for {first} and {second}")]
    TargetGivenTwice {
        /// The target path.
        target: String,
        /// The first digest.
        first: Sha256Digest,
        /// The other.
        second: Sha256Digest,
    },
    /// Nothing was given to work on.
    #[error("{what}")]
    NothingGiven {
        /// What to give, e.g. "no image references to sign".
        what: &'static str,
    },
    /// A threshold that the keys cannot meet (or zero).
    #[error(
        "{role} would have {keys} keys and threshold {threshold}: the threshold must be between 1 and the number of keys"
    )]
    BadThreshold {
        /// The role.
        role: String,
        /// How many keys it would have.
        keys: usize,
        /// The threshold asked for.
        threshold: u64,
    },
    /// A command-line limit is out of range.
    #[error("{argument} {expected}")]
    OutOfRange {
        /// The option.
        argument: &'static str,
        /// The value given.
        value: u64,
        /// What it must be ("must be at least 1").
        expected: String,
    },
    /// The repository has no role of that name (or none delegated by name).
    #[error("{location} has no role {role:?}; `warrant delegation list` shows the roles")]
    NoSuchRole {
        /// The repository.
        location: String,
        /// The role named.
        role: String,
    },
    /// `delegation add` of a role that exists.
    #[error("{location} already has a role {role:?}")]
    RoleExists {
        /// The repository.
        location: String,
        /// The role.
        role: String,
    },
    /// A role delegating to hash bins cannot also delegate by name.
    #[error("{role} delegates to hash bins; it cannot also delegate by name")]
    BinnedDelegator {
        /// The delegator.
        role: String,
    },
    /// `key revoke` of a key that signs nothing.
    #[error("key {keyid} signs no role of {location}")]
    KeySignsNothing {
        /// The key (short id).
        keyid: String,
        /// The repository.
        location: String,
    },
    /// A key named to add to a role is already one of its keys.
    #[error("key {keyid} is already a key of {role}")]
    KeyAlreadyInRole {
        /// The role.
        role: String,
        /// The key (short id).
        keyid: String,
    },
    /// A key named on the command line is in neither the repository nor the key
    /// store.
    #[error("no key {key} in {location} or the key store")]
    NoSuchKey {
        /// The key as given.
        key: String,
        /// The repository.
        location: String,
    },
    /// The role has a version waiting (for signatures, for the first signatures
    /// of the new roles it delegates to, or for a holder of the publisher key to
    /// publish it) and this change cannot build on it: a new change must wait for
    /// it. Fully signed ones are temporary (exit 3: retry later).
    #[error("{}", pending_hint(role, location, *ready, waiting_for))]
    PendingVersion {
        /// The role.
        role: String,
        /// The repository.
        location: String,
        /// Fully signed, waiting to be published.
        ready: bool,
        /// New roles it delegates to whose first versions still need their key
        /// holders' signatures (empty: `warrant refresh` publishes it).
        waiting_for: Vec<String>,
    },
    /// `approve` of a role with nothing pending.
    #[error("{location} has no pending version of {role}")]
    NoPendingVersion {
        /// The repository.
        location: String,
        /// The role.
        role: String,
    },
    /// The pending version is not the next one, or changed while approving, or is
    /// already signed by every key at hand: nothing to approve as it stands.
    #[error("the pending {role}: {problem}")]
    PendingNotApprovable {
        /// The role.
        role: String,
        /// What is wrong with it, and what to do.
        problem: String,
    },
    /// A delegated role asked to sign a target outside its `paths`.
    #[error("role {role} may not sign {target:?}: its delegation covers only {paths:?}")]
    PathNotDelegated {
        /// The role.
        role: String,
        /// The target.
        target: String,
        /// The delegation's patterns.
        paths: Vec<String>,
    },
    /// A key of the key store cannot be used as a TUF key.
    #[error("key {keyid} of the key store is unusable: {source}")]
    KeyMaterial {
        /// The key.
        keyid: String,
        /// Why.
        source: crate::crypto::keys::KeyError,
    },
    /// The certificate chain the key store holds for a key cannot be used.
    #[error("the certificate of key {keyid} in the key store is unusable: {source}")]
    Certificate {
        /// The key.
        keyid: String,
        /// Why.
        source: crate::crypto::x509::X509Error,
    },
    /// The CA private key given to `key certify` cannot be used.
    #[error("{path}: {problem} (convert with `openssl pkcs8 -topk8 -nocrypt`)")]
    CaKey {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A key failed to sign.
    #[error("key {keyid} could not sign {role}: {source}")]
    Sign {
        /// The role.
        role: String,
        /// The key.
        keyid: String,
        /// Why.
        source: crate::crypto::keys::SignError,
    },
    /// A pending version in the store is not a targets role envelope (a trust
    /// failure: somebody uploaded something else).
    #[error("not trusted: the pending version of {role} in {location} is malformed: {source}")]
    MalformedPending {
        /// The repository.
        location: String,
        /// The role.
        role: String,
        /// Why.
        source: MetadataError,
    },
    /// The trusted delegation to a role cannot authorize it (unknown key ids,
    /// impossible threshold): a trust failure.
    #[error("not trusted: the delegation to {role} cannot be used: {source}")]
    Delegation {
        /// The role.
        role: String,
        /// Why.
        source: TrustError,
    },
    /// An envelope this process built could not be read back or extended: a bug.
    #[error("internal error: the {role} envelope just built is unusable: {source}")]
    OwnEnvelope {
        /// The role.
        role: String,
        /// Why.
        source: EnvelopeError,
    },
    /// A role the delegation search should have loaded is not loaded: a bug.
    #[error("internal error: role {role} is not loaded; please report this")]
    NotLoaded {
        /// The role.
        role: String,
    },
    /// Something that cannot happen did: a bug.
    #[error("internal error: {what}; please report this")]
    Internal {
        /// What.
        what: &'static str,
    },
    /// A part above `ops` (the admission server, the plugin installer) failed;
    /// the CLI chose the exit code for its kind.
    #[error("{source}")]
    Component {
        /// Its own error.
        source: Box<dyn std::error::Error + Send + Sync>,
        /// The exit code the CLI chose.
        exit: u8,
    },
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
        "{location}: published {published}, but the change is not confirmed: {source}; run the command again (it converges) or check with `warrant inspect`"
    )]
    Unconfirmed {
        /// The repository.
        location: String,
        /// The `warrant.tuf` manifest digest that was acknowledged.
        published: String,
        /// Why confirming failed.
        source: Box<OpError>,
    },
    /// Our publish took longer between its check of `warrant.tuf` and the answer
    /// to our PUT than concurrent writers wait before confirming theirs: one that
    /// published meanwhile may have been overwritten by ours (registries have no
    /// compare-and-swap on tags).
    #[error(
        "{location}: published {published}, but {window_ms} ms passed between checking warrant.tuf and the registry's answer (signers wait {settle_ms} ms before confirming): a change another signer published meanwhile may have been overwritten; check with `warrant inspect` that every recently signed target is listed, and sign any missing one again"
    )]
    PublishWindowExceeded {
        /// The repository.
        location: String,
        /// Our `warrant.tuf` manifest digest.
        published: String,
        /// Our check-to-answer time.
        window_ms: u64,
        /// What concurrent writers wait ([`super::publish::PUBLISH_SETTLE`]).
        settle_ms: u64,
    },
    /// A file `export` would write is not the one that verified.
    #[error("not exported: {location}: {what}")]
    ExportMismatch {
        /// The repository.
        location: String,
        /// What did not check out.
        what: String,
    },
    /// One more delegated role could never be found by a verifier, whose search
    /// visits at most `max` roles.
    #[error(
        "{location} already has {delegated} delegated roles; a verifier's delegation search visits at most {max} roles (targets included, as python-tuf), so one more could never be found: remove a role, or let one role sign more tags"
    )]
    TooManyRoles {
        /// The repository.
        location: String,
        /// Delegated roles it has.
        delegated: usize,
        /// The search bound.
        max: usize,
    },
    /// A key request could not be made, found or used (issue #15).
    #[error(transparent)]
    Request(Box<super::request::RequestError>),
    /// A local file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a pinned file (root.json or CA) cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinFileError {
    /// Missing, too large, not a regular file.
    #[error(transparent)]
    Read(#[from] crate::fsutil::ReadError),
    /// Not a root that verifies against itself.
    #[error(transparent)]
    Root(#[from] TrustError),
    /// A CA file that is not PEM text.
    #[error("not PEM text")]
    NotPem,
    /// A CA file whose certificate does not parse.
    #[error(transparent)]
    Certificate(#[from] crate::crypto::x509::X509Error),
}

/// Why an envelope this process built is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// It does not parse as TUF metadata.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// It is not the JSON we wrote.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// It has no `signatures` array.
    #[error("no signatures array")]
    NoSignatures,
}

fn pending_hint(role: &str, location: &str, ready: bool, waiting_for: &[String]) -> String {
    match (ready, waiting_for.first()) {
        (true, Some(first)) => format!(
            "{role} has a fully signed version waiting for the first signatures of the \
             new role(s) it delegates to ({}): their key holders run `warrant approve \
             {location} --role {first}` (or `warrant delegation remove {location} {first}` \
             cancels it); try again after that",
            waiting_for.join(", ")
        ),
        (true, None) => format!(
            "{role} has a fully signed version waiting to be published: a holder of \
             the publisher key runs `warrant refresh {location}`; try again after that"
        ),
        (false, _) => format!(
            "{role} has a pending version waiting for signatures; approve it first \
             (`warrant pending {location}`, `warrant approve {location} --role {role}`)"
        ),
    }
}
