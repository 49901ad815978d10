use std::path::PathBuf;

use super::output::{Printer, Report};
use crate::ops::{Context, OpError};
use crate::plugins::install::{Component, InstallError, Installed, Method, install};

/// `warrant install ...`
#[derive(Debug, clap::Subcommand)]
pub enum InstallCommand {
    /// Make `docker warrant ...` work (the Docker CLI plugin).
    ///
    /// Links this binary as `docker-warrant` in docker's plugin directory:
    /// $DOCKER_CONFIG/cli-plugins, default ~/.docker/cli-plugins; for every user of
    /// the host, --dir /usr/local/lib/docker/cli-plugins.
    DockerPlugin(InstallArgs),
    /// Make containerd 2.x verify every pull (the image verifier).
    ///
    /// Links this binary as `warrant` in containerd's image-verifier bin_dir
    /// (default /opt/containerd/image-verifier/bin). Write /etc/warrant/policy.toml
    /// first: without it every pull is blocked. plugin-manifest/containerd/install.sh
    /// does the whole host setup.
    ContainerdVerifier(InstallArgs),
}

/// Where and how to install.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Install into DIR instead of the default directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Copy the binary instead of linking to it.
    #[arg(long)]
    pub copy: bool,
    /// Replace an existing file that is not a link (e.g. an older copy).
    #[arg(long)]
    pub force: bool,
}

pub fn run(c: InstallCommand, _ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let (component, a) = match c {
        InstallCommand::DockerPlugin(a) => (Component::DockerPlugin, a),
        InstallCommand::ContainerdVerifier(a) => (Component::ContainerdVerifier, a),
    };
    let method = if a.copy {
        Method::Copy
    } else {
        Method::Symlink
    };
    let installed = install(component, a.dir.as_deref(), method, a.force).map_err(|e| match e {
        // Where to install, or a file in the way: configuration (2); a write that
        // failed: I/O (3).
        e @ InstallError::Io { .. } => OpError::Component {
            source: Box::new(e),
            exit: 3,
        },
        other => OpError::Component {
            source: Box::new(other),
            exit: 2,
        },
    })?;
    out.report(&Done {
        installed: &installed,
        component,
    });
    Ok(0)
}

/// The report: what was put where, and how to check it.
#[derive(serde::Serialize)]
struct Done<'a> {
    #[serde(flatten)]
    installed: &'a Installed,
    #[serde(skip)]
    component: Component,
}

impl Report for Done<'_> {
    fn human(&self) -> String {
        let i = self.installed;
        let how = match i.method {
            Method::Symlink => "->",
            Method::Copy => "copied from",
        };
        let check = match self.component {
            Component::DockerPlugin => {
                "check: `docker warrant --help` (`docker --help` lists warrant)"
            }
            Component::ContainerdVerifier => {
                "containerd runs it on every pull through its transfer service (containerd 2.1+ for CRI); policy: /etc/warrant/policy.toml"
            }
        };
        format!(
            "{} {} {} {}\n{check}\n",
            if i.replaced { "replaced" } else { "installed" },
            i.path.display(),
            how,
            i.target.display()
        )
    }
}
