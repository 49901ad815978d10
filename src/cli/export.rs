use std::path::PathBuf;

use super::output::Printer;
use crate::ops::export::export;
use crate::ops::{Context, OpError};

/// `warrant export REPO DIR`
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The repository: oci:PATH.
    pub repo: String,
    /// Directory to write N.root.json, timestamp.json, N.snapshot.json, ... into.
    pub dir: PathBuf,
}

pub fn run(a: ExportArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let location = super::location(&a.repo)?;
    out.report(&export(ctx, &location, &a.dir)?);
    Ok(0)
}
