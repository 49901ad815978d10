use super::PinArgs;
use super::output::Printer;
use crate::ops::sign::{SignOptions, sign_many};
use crate::ops::trust::Pin;
use crate::ops::{Context, OpError};

/// Largest `--from-file` list read (some 100,000 references).
const MAX_LIST: u64 = 16 * 1024 * 1024;

/// `warrant sign REF [REF...]`
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The images: oci:PATH:TAG, oci:PATH@sha256:DIGEST or oci:PATH:TAG@sha256:DIGEST,
    /// or REGISTRY/REPO:TAG. All of one repository are signed in one publish.
    #[arg(required_unless_present = "from_file")]
    pub references: Vec<String>,
    /// Also sign the references listed in FILE, one per line (`-`: standard input;
    /// blank lines and lines starting with `#` are skipped).
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<std::path::PathBuf>,
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

fn read_list(path: &std::path::Path) -> Result<String, OpError> {
    let bytes = if path.as_os_str() == "-" {
        use std::io::Read as _;
        let mut buf = Vec::new();
        std::io::stdin()
            .take(MAX_LIST + 1)
            .read_to_end(&mut buf)
            .map_err(|e| list_error(path, e.into()))?;
        if buf.len() as u64 > MAX_LIST {
            return Err(list_error(
                path,
                crate::fsutil::ReadError::TooLarge { max: MAX_LIST },
            ));
        }
        buf
    } else {
        crate::fsutil::read_regular(path, MAX_LIST).map_err(|e| list_error(path, e))?
    };
    String::from_utf8(bytes).map_err(|_| list_error(path, crate::fsutil::ReadError::NotText))
}

fn list_error(path: &std::path::Path, source: crate::fsutil::ReadError) -> OpError {
    OpError::InputFile {
        path: path.to_owned(),
        source,
        hint: "expected image references, one a line (`-` is standard input)",
    }
}

pub fn run(a: SignArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let mut refs = a.references.clone();
    if let Some(path) = &a.from_file {
        let text = read_list(path)?;
        refs.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    let images = refs
        .iter()
        .map(|r| super::image(r))
        .collect::<Result<Vec<_>, _>>()?;
    if images.is_empty() {
        return Err(OpError::NothingGiven {
            what: "no image references to sign",
        });
    }
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
    let mut outcomes = sign_many(ctx, &images, &opts)?;
    if outcomes.len() == 1
        && let Some(one) = outcomes.pop()
    {
        out.report(&one);
    } else {
        out.report(&crate::cli::output::SignedMany(outcomes));
    }
    Ok(0)
}
