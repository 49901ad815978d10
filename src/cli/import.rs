use std::path::PathBuf;

use super::output::{Printer, Report};
use crate::import::notary::write::ImportReport;
use crate::import::notary::{ImportOptions, NotaryError, import};
use crate::ops::{Context, OpError};

/// `warrant import ...`
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// Import a Notary v1 (Docker Content Trust) repository: verify it against the
    /// root your trust dir already trusts, carry over every signed tag, delegation
    /// and private key, and publish it as `warrant.tuf`.
    Notary(NotaryArgs),
}

/// `warrant import notary GUN --server URL`
#[derive(Debug, clap::Args)]
pub struct NotaryArgs {
    /// The GUN (e.g. registry.example.com/team/app).
    pub gun: String,
    /// The Notary server (e.g. https://notary.example.com:4443).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// A CA certificate (PEM) for the server, besides the system roots.
    #[arg(long = "server-ca", value_name = "FILE")]
    pub server_ca: Option<PathBuf>,
    /// The DCT trust dir (default $DOCKER_CONFIG/trust, else ~/.docker/trust).
    #[arg(long = "trust-dir", value_name = "DIR")]
    pub trust_dir: Option<PathBuf>,
    /// Trust this Notary root.json instead of the trust dir's.
    #[arg(long, value_name = "FILE")]
    pub root: Option<PathBuf>,
    /// Where to publish (default: the GUN): a registry repository or oci:PATH.
    #[arg(long, value_name = "REPO")]
    pub to: Option<String>,
    /// Print the tags and roles; publish nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import even when the registry serves other digests than Notary signed.
    #[arg(long)]
    pub allow_drift: bool,
}

pub fn run(c: ImportCommand, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let ImportCommand::Notary(a) = c;
    // Where docker keeps it: $DOCKER_CONFIG/trust, else ~/.docker/trust.
    let trust_dir = a.trust_dir.unwrap_or_else(|| {
        std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join(".docker")
            })
            .join("trust")
    });
    let to = super::location(a.to.as_deref().unwrap_or(&a.gun))?;
    let opts = ImportOptions {
        gun: a.gun,
        server: a.server,
        server_ca: a.server_ca,
        trust_dir,
        root: a.root,
        to,
        dry_run: a.dry_run,
        allow_drift: a.allow_drift,
    };
    match import(ctx, &opts) {
        Ok(report) => {
            out.report(&report);
            Ok(
                if report.drifted > 0 && !opts.allow_drift && !opts.dry_run {
                    out.failure(
                        &format!(
                            "{} tag(s) differ from what Notary signed: nothing published \
                         (--allow-drift imports the signed digests anyway)",
                            report.drifted
                        ),
                        1,
                    );
                    1
                } else {
                    0
                },
            )
        }
        Err(NotaryError::Op(e)) => Err(e),
        Err(e) => {
            out.failure(&e.to_string(), e.exit_code());
            Ok(e.exit_code())
        }
    }
}

impl Report for ImportReport {
    fn human(&self) -> String {
        let mut s = String::new();
        for (old, new) in &self.root_keys {
            s += &format!("root key: Notary {old} = warrant {new}\n");
        }
        s += &format!(
            "{:<24} {:<73} {:<73} {:<12} {}\n",
            "TAG", "SIGNED DIGEST", "REGISTRY DIGEST", "ROLE", "STATUS"
        );
        for t in &self.tags {
            s += &format!(
                "{:<24} {:<73} {:<73} {:<12} {}\n",
                t.tag,
                t.signed,
                t.registry.as_deref().unwrap_or("-"),
                t.role,
                t.status
            );
        }
        for r in &self.roles {
            s += &format!(
                "role {} -> {}: threshold {}, keys {}{}\n",
                r.notary,
                r.warrant,
                r.threshold,
                r.keyids
                    .iter()
                    .map(|k| crate::crypto::keys::short_id(&k.0))
                    .collect::<Vec<_>>()
                    .join(", "),
                if r.held {
                    " (private key imported)"
                } else {
                    ""
                }
            );
        }
        for k in &self.generated {
            s += &format!(
                "generated key {} (no private key for it in the trust dir)\n",
                crate::crypto::keys::short_id(&k.0)
            );
        }
        for k in &self.skipped_keys {
            s += &format!("not imported: {k}\n");
        }
        s += &if self.published {
            format!("published {} as warrant.tuf in {}\n", self.gun, self.to)
        } else {
            "nothing published\n".to_owned()
        };
        s
    }
}
