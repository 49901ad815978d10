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
        /// A label to find the key by.
        #[arg(long, default_value = "key")]
        name: String,
    },
    /// List the keys in the key store.
    List,
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
    }
    Ok(0)
}
