use std::path::PathBuf;

use super::PinArgs;
use super::output::Printer;
use crate::ops::trust::Pin;
use crate::ops::verify::verify_with_roles;
use crate::ops::{Context, OpError};
use crate::policy::Policy;

/// `warrant verify REF`
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The image: HOST/REPO:TAG, HOST/REPO@sha256:DIGEST, HOST/REPO:TAG@sha256:DIGEST,
    /// or oci:PATH:TAG (and @sha256 forms).
    pub reference: String,
    /// Trust anchor: seeds the trusted cache on first use and is checked against it
    /// afterwards (overrides the policy's anchor).
    #[command(flatten)]
    pub pin: PinArgs,
    /// Verify policy (TOML); default `$WARRANT_HOME/policy.toml` when it exists.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

pub fn run(a: VerifyArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let image = super::image(&a.reference)?;
    let policy_path = a.policy.clone().or_else(|| {
        let p = ctx.home.join("policy.toml");
        p.exists().then_some(p)
    });
    let (mut pin, roles) = match policy_path {
        Some(path) => {
            let policy = Policy::load(&path)?;
            let entry = policy
                .entry_for(&image.location)
                .ok_or_else(|| OpError::NoPolicy {
                    location: image.location.to_string(),
                })?;
            (policy.pin(entry), entry.require_roles.clone())
        }
        None => (Pin::None, Vec::new()),
    };
    if let p @ (Pin::RootFile(_) | Pin::KeyIds(_)) = a.pin.pin()? {
        pin = p;
    }
    let verdict = verify_with_roles(ctx, &image, &pin, &roles)?;
    for w in &verdict.warnings {
        out.warn(w);
    }
    out.report(&verdict);
    Ok(0)
}
