use super::PinArgs;
use super::output::Printer;
use crate::ops::sign::{SignOptions, sign};
use crate::ops::trust::Pin;
use crate::ops::{Context, OpError};

/// `warrant sign REF`
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The image: oci:PATH:TAG, oci:PATH@sha256:DIGEST or oci:PATH:TAG@sha256:DIGEST.
    pub reference: String,
    /// The role to sign into (default: the top-level `targets` role). When the keys
    /// at hand do not meet its threshold, the new version is published pending.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Sign with this key (id, prefix or name) instead of every one at hand.
    #[arg(long, value_name = "ID")]
    pub key: Option<String>,
    /// On a machine that has never seen the repository (e.g. a fresh CI runner),
    /// pin its root like a verifier; without a pin the store's 1.root.json is
    /// trusted for signing and a warning is printed.
    #[command(flatten)]
    pub pin: PinArgs,
}

pub fn run(a: SignArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let image = super::image(&a.reference)?;
    let pin = match a.pin.pin()? {
        Pin::None => Pin::FirstUse,
        p => p,
    };
    let opts = SignOptions {
        role: a.role,
        key: a.key,
        pin,
        by_digest: false,
    };
    out.report(&sign(ctx, &image, &opts)?);
    Ok(0)
}
