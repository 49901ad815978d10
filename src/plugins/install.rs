//! `warrant install ...`: putting the binary where docker and containerd look.
//!
//! A plugin is this same executable under another name, so installing is making a
//! link (or a copy) in the right directory. The link is made beside its final name
//! and renamed over it, so a concurrent `docker` or containerd never sees a
//! half-written plugin.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{DOCKER_PLUGIN_NAME, home_dir};

/// containerd's default verifier `bin_dir`.
pub const CONTAINERD_BIN_DIR: &str = "/opt/containerd/image-verifier/bin";
/// The name of the verifier's entry in `bin_dir` (containerd shows it in reasons).
pub const CONTAINERD_ENTRY_NAME: &str = "warrant";

/// What to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `docker-warrant` in a docker `cli-plugins` directory.
    DockerPlugin,
    /// `warrant` in containerd's image-verifier `bin_dir`.
    ContainerdVerifier,
}

impl Component {
    /// The file name the component must have.
    pub fn file_name(self) -> &'static str {
        match self {
            Component::DockerPlugin => DOCKER_PLUGIN_NAME,
            Component::ContainerdVerifier => CONTAINERD_ENTRY_NAME,
        }
    }

    /// Where it goes by default: `$DOCKER_CONFIG/cli-plugins` (else
    /// `~/.docker/cli-plugins`), or containerd's default `bin_dir`.
    pub fn default_dir(self) -> Option<PathBuf> {
        match self {
            Component::DockerPlugin => std::env::var_os("DOCKER_CONFIG")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .or_else(|| home_dir().map(|h| h.join(".docker")))
                .map(|d| d.join("cli-plugins")),
            Component::ContainerdVerifier => Some(PathBuf::from(CONTAINERD_BIN_DIR)),
        }
    }
}

/// Link or copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A symbolic link to this executable (upgrades follow it).
    Symlink,
    /// A copy of this executable (for a directory other users' tools read but
    /// that cannot reach this binary's path).
    Copy,
}

/// What was installed.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    /// The plugin's path.
    pub path: PathBuf,
    /// The executable it runs.
    pub target: PathBuf,
    /// Link or copy.
    pub method: Method,
    /// An older entry was replaced.
    pub replaced: bool,
}

/// Installing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// No directory given and none can be derived.
    #[error(
        "cannot tell where docker looks for plugins (neither DOCKER_CONFIG nor HOME is set): pass --dir DIR"
    )]
    NoDirectory,
    /// This executable's path is unknown.
    #[error("cannot find this executable's path ({0}); install from the binary's own location")]
    CurrentExe(String),
    /// A file that is not a link is in the way.
    #[error("{} exists and is not a symbolic link; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    /// A file system operation failed.
    #[error("{}: {detail}; check that the directory is writable (system directories need root)", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        detail: String,
    },
}

/// Install `component` into `dir` (or its default directory).
pub fn install(
    component: Component,
    dir: Option<&Path>,
    method: Method,
    force: bool,
) -> Result<Installed, InstallError> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| InstallError::CurrentExe(e.to_string()))?;
    install_executable(&exe, component, dir, method, force)
}

/// [`install`] for a given executable.
pub fn install_executable(
    exe: &Path,
    component: Component,
    dir: Option<&Path>,
    method: Method,
    force: bool,
) -> Result<Installed, InstallError> {
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => component.default_dir().ok_or(InstallError::NoDirectory)?,
    };
    let io = |path: &Path, e: std::io::Error| InstallError::Io {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let path = dir.join(component.file_name());
    let replaced = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => true,
        Ok(_) if force => true,
        Ok(_) => return Err(InstallError::Exists(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io(&path, e)),
    };
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        component.file_name(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let made = match method {
        Method::Symlink => std::os::unix::fs::symlink(exe, &tmp),
        Method::Copy => std::fs::copy(exe, &tmp).and_then(|_| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        }),
    };
    if let Err(e) = made.and_then(|()| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&path, e));
    }
    Ok(Installed {
        path,
        target: exe.to_owned(),
        method,
        replaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_replace_links_but_not_foreign_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let exe = tmp.path().join("warrant");
        std::fs::write(&exe, b"#!/bin/sh\n").expect("exe");
        let dir = tmp.path().join("plugins");
        let first = install_executable(
            &exe,
            Component::DockerPlugin,
            Some(&dir),
            Method::Symlink,
            false,
        )
        .expect("install");
        assert_eq!(first.path, dir.join("docker-warrant"));
        assert!(!first.replaced);
        assert_eq!(std::fs::read_link(&first.path).expect("link"), exe);
        let again = install_executable(
            &exe,
            Component::DockerPlugin,
            Some(&dir),
            Method::Copy,
            false,
        )
        .expect("a link is replaced");
        assert!(again.replaced);
        assert!(
            !std::fs::symlink_metadata(&again.path)
                .expect("copy")
                .file_type()
                .is_symlink()
        );
        let err = install_executable(
            &exe,
            Component::DockerPlugin,
            Some(&dir),
            Method::Symlink,
            false,
        )
        .expect_err("a file is not clobbered");
        assert!(err.to_string().contains("--force"), "{err}");
        install_executable(
            &exe,
            Component::DockerPlugin,
            Some(&dir),
            Method::Symlink,
            true,
        )
        .expect("--force replaces it");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, ["docker-warrant"]);
        let c = install_executable(
            &exe,
            Component::ContainerdVerifier,
            Some(&dir),
            Method::Symlink,
            false,
        )
        .expect("verifier");
        assert_eq!(c.path, dir.join("warrant"));
    }
}
