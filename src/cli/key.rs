use clap::Subcommand;

use super::output::Printer;
use crate::crypto::KeyType;
use crate::ops::{Context, OpError};

/// `warrant key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a key pair, stored encrypted; prints its key id.
    Generate {
        /// Key algorithm.
        #[arg(long = "type", value_enum, default_value_t = KeyType::Ed25519)]
        key_type: KeyType,
        /// A label to find the key by (default `key-<id prefix>`).
        #[arg(long, default_value = "")]
        name: String,
        /// Generate the key pair on a PKCS#11 token instead (RFC 7512 URI, e.g.
        /// `pkcs11:token=T;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so`);
        /// the private key never leaves it. PIN: WARRANT_PKCS11_PIN, pin-source, or
        /// a prompt.
        #[arg(long, value_name = "URI")]
        pkcs11: Option<String>,
    },
    /// List the keys in the key store.
    List,
    /// Change the keys or threshold of a role (root rotation for top-level roles).
    Rotate(super::lifecycle::RotateArgs),
    /// Remove a key from every role of a repository and re-sign without it.
    Revoke(super::lifecycle::RevokeArgs),
    /// Print a key as PEM (the private key stays encrypted).
    Export(super::lifecycle::ExportKeyArgs),
    /// Add a PEM key to the key store.
    Import(super::lifecycle::ImportKeyArgs),
    /// Ask a repository's administrator for a role: publish your public key,
    /// signed by itself, beside the repository's trust data; prints the
    /// fingerprint to read to the administrator over another channel.
    Request(super::requests::RequestArgs),
    /// List the open key requests of a repository (or --reject one); invalid ones
    /// are shown with the reason and can never be used.
    Requests(super::requests::RequestsArgs),
    /// Issue an X.509 certificate for a key (by a CA, or self-signed); root keys
    /// carry it in root.json so policies can pin the CA (`ca = "ca.pem"`).
    Certify(super::lifecycle::CertifyArgs),
}

pub fn run(cmd: KeyCommand, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    match cmd {
        KeyCommand::Generate {
            key_type,
            name,
            pkcs11: Some(uri),
        } => {
            let parsed: crate::crypto::pkcs11::Pkcs11Uri = uri.parse()?;
            let public = crate::crypto::pkcs11::generate(&parsed, key_type)?;
            let name = if name.is_empty() {
                parsed.object.clone().unwrap_or_default()
            } else {
                name
            };
            out.report(&ctx.keys.add_token(&public, &name, &uri)?);
        }
        KeyCommand::Generate { key_type, name, .. } => {
            let info = ctx
                .keys
                .generate(key_type, &name, ctx.passphrase.get(true)?)?;
            out.report(&info);
        }
        KeyCommand::List => out.report(&ctx.keys.list()?),
        KeyCommand::Rotate(a) => return super::lifecycle::rotate_run(a, ctx, out),
        KeyCommand::Revoke(a) => return super::lifecycle::revoke_run(a, ctx, out),
        KeyCommand::Export(a) => return super::lifecycle::export_key_run(a, ctx, out),
        KeyCommand::Import(a) => return super::lifecycle::import_key_run(a, ctx, out),
        KeyCommand::Certify(a) => return super::lifecycle::certify_run(a, ctx, out),
        KeyCommand::Request(a) => return super::requests::request_run(a, ctx, out),
        KeyCommand::Requests(a) => return super::requests::requests_run(a, ctx, out),
    }
    Ok(0)
}
