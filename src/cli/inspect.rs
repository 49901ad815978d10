use super::PinArgs;
use super::output::Printer;
use crate::ops::inspect::inspect;
use crate::ops::{Context, OpError};

/// `warrant inspect REPO`
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The repository: oci:PATH.
    pub repo: String,
    /// Trust anchor on first use.
    #[command(flatten)]
    pub pin: PinArgs,
}

pub fn run(a: InspectArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let location = super::location(&a.repo)?;
    out.report(&inspect(ctx, &location, &a.pin.pin())?);
    Ok(0)
}
