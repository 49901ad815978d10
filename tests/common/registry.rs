//! `RegistryFixture`: the real CNCF distribution registry (Debian's
//! `docker-registry`) on a free loopback port with its own storage, stopped on drop.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RegistryFixture {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    pub creds: Option<(String, String)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RegistryFixture {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A registry requiring basic auth (htpasswd, bcrypt) for `user`/`pass`.
    pub fn with_auth(user: &str, pass: &str) -> Self {
        Self::start_with(Some((user.to_owned(), pass.to_owned())))
    }

    fn start_with(creds: Option<(String, String)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = &creds {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd (apache2-utils)");
            assert!(out.status.success());
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: warrant-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .stdin(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry)");
        let fixture = Self {
            child: Some(child),
            port,
            dir,
            log,
            creds,
        };
        fixture.wait_ready();
        fixture
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read(&mut buf).is_ok_and(|n| n >= 12)
                    && (buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.0 401"))
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "registry did not start; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `host/repo` plus a suffix (`:tag`, `@digest`).
    pub fn repo(&self, repo: &str, suffix: &str) -> String {
        format!("{}/{repo}{suffix}", self.host())
    }

    /// Copy `oci:layout:tag` into `repo:tag` with skopeo.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if let Some((u, p)) = &self.creds {
            c.arg(format!("--dest-creds={u}:{p}"));
        }
        c.arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}", self.repo(repo, &format!(":{tag}"))));
        let out = c.output().expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Copy anything skopeo can name (e.g. `docker://a` → `docker://b`).
    pub fn skopeo_copy(src: &str, dst: &str, extra: &[&str]) {
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--all",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .args(extra)
            .args([src, dst])
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy {src} {dst}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Requests the registry has served so far (its access log).
    pub fn requests(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let i = l
                    .find("\"GET /v2/")
                    .or_else(|| l.find("\"HEAD /v2/"))
                    .or_else(|| l.find("\"PUT /v2/"))
                    .or_else(|| l.find("\"POST /v2/"))
                    .or_else(|| l.find("\"PATCH /v2/"))?;
                let rest = &l[i + 1..];
                Some(rest[..rest.find(" HTTP").unwrap_or(rest.len())].to_owned())
            })
            .collect()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RegistryFixture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A registry holding `team/app:v1` (signed) and `team/app:evil` (unsigned), the
/// world that signed it, and the exported root a verifier pins.
pub fn signed_registry() -> (RegistryFixture, crate::common::World, PathBuf) {
    let reg = RegistryFixture::start();
    let w = crate::common::World::new();
    crate::common::make_image(&w.layout(), "v1", "hello v1");
    crate::common::make_image(&w.layout(), "evil", "evil");
    reg.push(&w.layout(), "v1", "team/app");
    reg.push(&w.layout(), "evil", "team/app");
    let repo = reg.repo("team/app", "");
    let export = w.path("export");
    for args in [
        vec!["init", &repo[..]],
        vec!["sign", &reg.repo("team/app", ":v1")[..]],
        vec!["export", &repo[..], export.to_str().unwrap()],
    ] {
        let r = w.signer(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
    }
    (reg, w, export.join("1.root.json"))
}
