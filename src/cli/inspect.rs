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
    let view = inspect(ctx, &location, &a.pin.pin()?)?;
    let window = crate::ops::verify::expiry_warning_window();
    for r in view.roles.iter().filter(|r| r.expires - ctx.now < window) {
        out.warn(&format!(
            "{} metadata of {} expires at {}: run {}",
            r.name,
            view.location,
            r.expires.format("%Y-%m-%dT%H:%M:%SZ"),
            crate::tuf::trusted::renewal_hint(&r.name).replace("REPO", &a.repo)
        ));
    }
    out.report(&view);
    Ok(0)
}
