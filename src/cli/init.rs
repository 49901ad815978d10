use std::num::NonZeroU64;

use super::output::Printer;
use crate::crypto::KeyType;
use crate::ops::init::{InitOptions, init};
use crate::ops::{Context, OpError};

/// `warrant init REPO`
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The repository: oci:PATH (an OCI image layout directory).
    pub repo: String,
    /// An existing root key (id, 8+ digit prefix, or name); repeatable. One is
    /// generated when none is given.
    #[arg(long = "root-key", value_name = "ID")]
    pub root_key: Vec<String>,
    /// Root signatures required.
    #[arg(long, default_value = "1", value_name = "N")]
    pub root_threshold: NonZeroU64,
    /// An existing targets key; generated when absent.
    #[arg(long, value_name = "ID")]
    pub targets_key: Option<String>,
    /// An existing publisher key (signs snapshot and timestamp; held by CI);
    /// generated when absent.
    #[arg(long, value_name = "ID")]
    pub publisher_key: Option<String>,
    /// Algorithm of generated keys.
    #[arg(long = "key-type", value_enum, default_value_t = KeyType::Ed25519)]
    pub key_type: KeyType,
    /// Hash bins for the tags: `auto` (flat, then 512 bins in the sign that takes
    /// the repository past 1,024 tags), `none`, or a power of two N (N bins from the
    /// first sign on). With bins a sign rewrites one small bin, and a verify reads one.
    #[arg(long, default_value = "auto", value_name = "auto|N|none")]
    pub bins: String,
}

pub fn run(a: InitArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let location = super::location(&a.repo)?;
    let opts = InitOptions {
        root_keys: a.root_key,
        root_threshold: a.root_threshold,
        targets_key: a.targets_key,
        publisher_key: a.publisher_key,
        key_type: a.key_type,
        bins: a.bins.parse()?,
    };
    out.report(&init(ctx, &location, &opts)?);
    Ok(0)
}
