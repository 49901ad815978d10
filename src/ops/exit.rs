//! The exit code of every [`OpError`], in one place: 1 not trusted (a check
//! failed, or what the store serves does not check out), 2 usage or configuration
//! (fix the command line, the key store, the policy), 3 registry, I/O, or an
//! internal error (retry, or report it).

use crate::store::StoreErrorKind;
use crate::tuf::client::{ClientError, FetchErrorKind};

use super::OpError;

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
            | OpError::RolesDisagree { .. }
            | OpError::MalformedPending { .. }
            | OpError::ExportMismatch { .. }
            | OpError::Delegation { .. } => 1,
            OpError::Request(e) => e.exit_code(),
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
            | OpError::Usage { .. }
            | OpError::InvalidValue { .. }
            | OpError::Reference { .. }
            | OpError::GivenTwice { .. }
            | OpError::TargetGivenTwice { .. }
            | OpError::NothingGiven { .. }
            | OpError::BadThreshold { .. }
            | OpError::OutOfRange { .. }
            | OpError::NoSuchRole { .. }
            | OpError::RoleExists { .. }
            | OpError::TooManyRoles { .. }
            | OpError::KeyAlreadyInRole { .. }
            | OpError::BinnedDelegator { .. }
            | OpError::KeySignsNothing { .. }
            | OpError::NoSuchKey { .. }
            | OpError::PendingVersion { ready: false, .. }
            | OpError::NoPendingVersion { .. }
            | OpError::PendingNotApprovable { .. }
            | OpError::PathNotDelegated { .. }
            | OpError::KeyMaterial { .. }
            | OpError::Certificate { .. }
            | OpError::CaKey { .. }
            | OpError::Sign { .. }
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
            | OpError::Io { .. }
            | OpError::OwnEnvelope { .. }
            | OpError::NotLoaded { .. }
            | OpError::Internal { .. } => 3,
            // Temporary: a fully signed version is published first (retry later).
            OpError::PendingVersion { ready: true, .. } => 3,
            OpError::Component { exit, .. } => *exit,
        }
    }
}
