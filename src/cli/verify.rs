use super::PinArgs;
use super::output::Printer;
use crate::ops::verify::verify;
use crate::ops::{Context, OpError};

/// `warrant verify REF`
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The image: oci:PATH:TAG, oci:PATH@sha256:DIGEST or oci:PATH:TAG@sha256:DIGEST.
    pub reference: String,
    /// Trust anchor on first use (ignored once the trusted cache holds a root).
    #[command(flatten)]
    pub pin: PinArgs,
}

pub fn run(a: VerifyArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let image = super::image(&a.reference)?;
    let verdict = verify(ctx, &image, &a.pin.pin())?;
    for w in &verdict.warnings {
        out.warn(w);
    }
    out.report(&verdict);
    Ok(0)
}
