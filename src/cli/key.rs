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
    /// Issue an X.509 certificate for a key (by a CA, or self-signed); root keys
    /// carry it in root.json so policies can pin the CA (`ca = "ca.pem"`).
    Certify(super::lifecycle::CertifyArgs),
}

pub fn run(cmd: KeyCommand, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    match cmd {
        KeyCommand::Generate { key_type, name } => {
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
    }
    Ok(0)
}
