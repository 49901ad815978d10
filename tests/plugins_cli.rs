//! Issue #7: warrant where images are pulled. The Docker CLI plugin driven by the
//! real `docker` client (no daemon needed for the plugin protocol), and the
//! containerd image verifier driven exactly as containerd 2.x's bindir plugin
//! drives it (argv, descriptor on stdin, exit status, 32 KiB of stdout, a timeout).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "plugins_cli/containerd.rs"]
mod containerd;
#[path = "plugins_cli/docker.rs"]
mod docker;

use std::path::PathBuf;
use std::process::Command;

use common::registry::RegistryFixture;
use common::*;

const WARRANT: &str = env!("CARGO_BIN_EXE_warrant");

/// A registry with `team/app:v1` signed and `team/app:evil` not, a pinned root,
/// and both manifest digests and sizes as the registry serves them.
pub(crate) struct Signed {
    pub(crate) reg: RegistryFixture,
    pub(crate) w: World,
    pub(crate) root: PathBuf,
    pub(crate) v1: (String, u64),
    pub(crate) evil: (String, u64),
}

pub(crate) fn served(reg: &RegistryFixture, suffix: &str) -> (String, u64) {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}", reg.repo("team/app", suffix)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        format!("sha256:{}", sha256_hex(&out.stdout)),
        out.stdout.len() as u64,
    )
}

pub(crate) fn signed() -> Signed {
    let (reg, w, root) = common::registry::signed_registry();
    let v1 = served(&reg, ":v1");
    let evil = served(&reg, ":evil");
    Signed {
        reg,
        w,
        root,
        v1,
        evil,
    }
}
