//! `unsign`, `status`, and the key lifecycle commands under `key`.
use std::path::PathBuf;

use super::PinArgs;
use super::output::{InRepo, Printer};
use crate::ops::rotate::{Rotation, revoke, rotate};
use crate::ops::sign::{SignOptions, unsign};
use crate::ops::status::status;
use crate::ops::trust::Pin;
use crate::ops::{Context, OpError};

fn signer_pin(p: &PinArgs) -> Result<Pin, OpError> {
    Ok(match p.pin()? {
        Pin::None => Pin::FirstUse,
        p => p,
    })
}

/// `warrant unsign REF`
#[derive(Debug, clap::Args)]
pub struct UnsignArgs {
    /// The image whose target (tag, or digest) to remove.
    pub reference: String,
    /// The role to remove it from (default: the role a verifier finds it in).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Sign with this key only.
    #[arg(long, value_name = "ID")]
    pub key: Option<String>,
    /// Trust anchor on first contact.
    #[command(flatten)]
    pub pin: PinArgs,
}

pub fn unsign_run(a: UnsignArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let image = super::image(&a.reference)?;
    let opts = SignOptions {
        role: a.role,
        key: a.key,
        pin: signer_pin(&a.pin)?,
        by_digest: false,
    };
    out.report(&unsign(ctx, &image, &opts)?);
    Ok(0)
}

/// `warrant status REPO`
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The repository.
    pub repo: String,
    /// Trust anchor on first contact (for the verification check).
    #[command(flatten)]
    pub pin: PinArgs,
}

/// Exit 1 when a published role has expired.
pub fn status_run(a: StatusArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let s = status(ctx, &super::location(&a.repo)?, &a.pin.pin()?)?;
    for r in s.roles.iter().filter(|r| r.state != "ok" && !r.pending) {
        out.warn(&format!(
            "{} v{} {} at {}",
            r.role,
            r.version,
            r.state,
            r.expires.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    out.report(&s);
    Ok(if s.is_broken() { 1 } else { 0 })
}

/// `warrant key rotate REPO --role ROLE ...`
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// The repository.
    pub repo: String,
    /// root, targets, snapshot, timestamp, or a delegated role.
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// A key to remove (repeatable).
    #[arg(long, value_name = "ID")]
    pub remove: Vec<String>,
    /// A key to add (repeatable; a public key in the key store suffices).
    #[arg(long, value_name = "ID")]
    pub add: Vec<String>,
    /// Also add the key of this key request (`warrant key requests`), once
    /// --fingerprint matches it; the request is then closed.
    #[arg(long, value_name = "ID", requires = "fingerprint")]
    pub add_request: Option<String>,
    /// The requested key's fingerprint as the requester read it to you over
    /// another channel: 16 hex digits (spaces optional) or the six words.
    #[arg(long, value_name = "FP", requires = "add_request")]
    pub fingerprint: Option<String>,
    /// The role's new threshold.
    #[arg(long, value_name = "N")]
    pub threshold: Option<u64>,
    /// Trust anchor on first contact.
    #[command(flatten)]
    pub pin: PinArgs,
}

pub fn rotate_run(a: RotateArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let none = a.remove.is_empty() && a.add.is_empty() && a.add_request.is_none();
    if none && a.threshold.is_none() {
        return Err(OpError::NothingGiven {
            what: "nothing to change: give --add, --add-request, --remove or --threshold",
        });
    }
    let (id, fp) = (a.add_request.as_deref(), a.fingerprint.as_deref());
    let taken = super::requests::take(ctx, &a.repo, &a.role, id, fp, out)?;
    let mut add = a.add;
    add.extend(taken.iter().map(|t| t.keyid.0.clone()));
    let rot = Rotation {
        role: a.role,
        remove: a.remove,
        add,
        threshold: a.threshold,
        revoking: false,
    };
    let rotated = (|| rotate(ctx, &super::location(&a.repo)?, &rot, &signer_pin(&a.pin)?))();
    let outcome = super::requests::or_untake(ctx, taken.as_ref(), rotated, out)?;
    out.report(&InRepo {
        value: &outcome,
        repo: &a.repo,
    });
    super::requests::root_warnings(ctx, &outcome, taken.as_ref(), out);
    super::requests::close(ctx, &a.repo, taken.as_ref(), out);
    Ok(0)
}

/// `warrant key revoke REPO KEYID`
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The repository.
    pub repo: String,
    /// The key to remove from every role.
    pub keyid: String,
    /// Trust anchor on first contact.
    #[command(flatten)]
    pub pin: PinArgs,
}

pub fn revoke_run(a: RevokeArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let outcome = revoke(
        ctx,
        &super::location(&a.repo)?,
        &a.keyid,
        &signer_pin(&a.pin)?,
    )?;
    out.report(&InRepo {
        value: &outcome,
        repo: &a.repo,
    });
    Ok(0)
}

/// `warrant key export ID`
#[derive(Debug, clap::Args)]
pub struct ExportKeyArgs {
    /// The key (id, prefix or name).
    pub id: String,
    /// Export only the public key (SubjectPublicKeyInfo PEM); otherwise the
    /// private key, still encrypted under its passphrase.
    #[arg(long)]
    pub public: bool,
}

pub fn export_key_run(a: ExportKeyArgs, ctx: &Context, _out: &Printer) -> Result<u8, OpError> {
    let info = ctx.keys.find(&a.id)?;
    let pem = if a.public {
        ctx.keys.export_public(&info)?
    } else {
        ctx.keys.export_private(&info)?
    };
    print!("{pem}");
    Ok(0)
}

/// `warrant key import FILE`
#[derive(Debug, clap::Args)]
pub struct ImportKeyArgs {
    /// A PEM file: ENCRYPTED PRIVATE KEY, PRIVATE KEY or PUBLIC KEY.
    #[arg(required_unless_present = "pkcs11")]
    pub file: Option<PathBuf>,
    /// Register an existing key pair on a PKCS#11 token (RFC 7512 URI) instead.
    #[arg(long, value_name = "URI", conflicts_with = "file")]
    pub pkcs11: Option<String>,
    /// A label to find the key by (default: the file name without its extension,
    /// e.g. `qa-alice` for `qa-alice.pem`).
    #[arg(long)]
    pub name: Option<String>,
}

pub fn import_key_run(a: ImportKeyArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    if let Some(uri) = &a.pkcs11 {
        let parsed: crate::crypto::pkcs11::Pkcs11Uri = uri.parse()?;
        let public = crate::crypto::pkcs11::public_key(&parsed)?;
        let name = a
            .name
            .clone()
            .or_else(|| parsed.object.clone())
            .unwrap_or_default();
        out.report(&ctx.keys.add_token(&public, &name, uri)?);
        return Ok(0);
    }
    let Some(file) = a.file.clone() else {
        return Err(OpError::NothingGiven {
            what: "give a PEM file or --pkcs11 URI",
        });
    };
    let a = ImportKeyArgs {
        file: Some(file.clone()),
        ..a
    };
    let text = read_text(&file)?;
    let name = match &a.name {
        Some(n) => n.clone(),
        None => {
            let stem = file
                .file_name()
                .and_then(|f| f.to_str())
                .map(|f| f.split('.').next().unwrap_or(f).to_owned())
                .unwrap_or_default();
            crate::crypto::keystore::check_name(&stem).map_err(|_| OpError::InvalidValue {
                argument: "key name (from the file name)",
                value: stem.clone(),
                expected: "a valid key name: give --name NAME",
            })?;
            stem
        }
    };
    let pass = if text.contains("PRIVATE KEY") {
        Some(ctx.passphrase.get(false)?)
    } else {
        None
    };
    let info = match pass {
        Some(p) => ctx.keys.import(&text, &name, p)?,
        None => {
            let dummy = crate::crypto::keystore::Passphrase::new("unused".into())?;
            ctx.keys.import(&text, &name, &dummy)?
        }
    };
    out.report(&info);
    Ok(0)
}

/// `warrant key certify ID`
#[derive(Debug, clap::Args)]
pub struct CertifyArgs {
    /// The key to certify (id, prefix or name).
    pub id: String,
    /// The CA certificate (PEM); without it the certificate is self-signed by the key.
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,
    /// The CA's private key (unencrypted PKCS#8 PEM, `openssl genpkey` style).
    #[arg(long, value_name = "FILE", requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,
    /// Validity in days.
    #[arg(long, default_value_t = 365, value_name = "N")]
    pub days: u32,
}

/// A PEM file given on the command line, at most 1 MiB (keys and certificate
/// chains are a few kB).
fn read_text(path: &std::path::Path) -> Result<String, OpError> {
    const HINT: &str = "expected a PEM key or certificate of at most 1 MiB";
    let bytes =
        crate::fsutil::read_regular(path, 1024 * 1024).map_err(|source| OpError::InputFile {
            path: path.to_owned(),
            source,
            hint: HINT,
        })?;
    String::from_utf8(bytes).map_err(|_| OpError::InputFile {
        path: path.to_owned(),
        source: crate::fsutil::ReadError::NotText,
        hint: HINT,
    })
}

pub fn certify_run(a: CertifyArgs, ctx: &Context, _out: &Printer) -> Result<u8, OpError> {
    let ca = match (&a.ca_cert, &a.ca_key) {
        (Some(cert), Some(key)) => Some(crate::ops::certify::CaFiles {
            cert: read_text(cert)?,
            key: read_text(key)?,
            key_path: key.clone(),
        }),
        _ => None,
    };
    let pem = crate::ops::certify::certify(ctx, &a.id, ca.as_ref(), a.days)?;
    print!("{pem}");
    Ok(0)
}

/// `warrant renew REPO --role ROLE...`
#[derive(Debug, clap::Args)]
pub struct RenewArgs {
    /// The repository.
    pub repo: String,
    /// A role to renew: root, targets, a delegated role, snapshot or timestamp
    /// (repeatable).
    #[arg(long = "role", value_name = "ROLE", required = true)]
    pub roles: Vec<String>,
    /// Lifetime of the renewed roles (e.g. 365d, 8w; default: root and targets a
    /// year, snapshot 30 days, timestamp 7 days).
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// Trust anchor on first contact.
    #[command(flatten)]
    pub pin: PinArgs,
}

pub fn renew_run(a: RenewArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let outcome = crate::ops::renew::renew(
        ctx,
        &super::location(&a.repo)?,
        &a.roles,
        &signer_pin(&a.pin)?,
    )?;
    out.report(&super::output::InRepo {
        value: &outcome,
        repo: &a.repo,
    });
    Ok(0)
}
