use std::path::PathBuf;

use super::PinArgs;
use super::output::Printer;
use crate::ops::export::export;
use crate::ops::{Context, OpError};

/// `warrant export REPO DIR`
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The repository: oci:PATH or REGISTRY/REPOSITORY.
    pub repo: String,
    /// Directory to write N.root.json, timestamp.json, N.snapshot.json, ... into.
    pub dir: PathBuf,
    /// Trust anchor on first use (a home that signed or verified before has one).
    #[command(flatten)]
    pub pin: PinArgs,
    /// Write the files as the store serves them, without verifying them first
    /// (for inspecting a broken or hostile repository; never pin what this writes).
    #[arg(long)]
    pub unverified: bool,
}

pub fn run(a: ExportArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let location = super::location(&a.repo)?;
    let pin = if a.unverified {
        crate::ops::trust::Pin::FirstUse
    } else {
        a.pin.pin()?
    };
    let outcome = export(ctx, &location, &a.dir, &pin, a.unverified)?;
    if a.unverified {
        out.warn("exported without verifying: these files are what the store serves, not what verifies; do not pin them");
    }
    out.report(&outcome);
    Ok(0)
}
