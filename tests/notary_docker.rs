//! Issue #16, the way DCT users signed: `DOCKER_CONTENT_TRUST=1 docker push` through a
//! real dockerd to a loopback registry, with a real notary-server; then
//! `warrant import notary` into the same registry repository and `warrant verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "notary/fixture.rs"]
mod fixture;

use std::process::{Child, Command, Stdio};

use common::World;
use common::registry::RegistryFixture;
use fixture::NotaryFixture;

/// A dockerd with its own data root and socket, stopped on drop.
struct Dockerd {
    child: Child,
    host: String,
}

impl Dockerd {
    fn start(w: &World) -> Self {
        let dir = w.path("dockerd");
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd (Debian package docker.io)");
        for _ in 0..400 {
            if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        Self {
            child,
            host: format!("unix://{}", sock.display()),
        }
    }

    fn docker(&self, w: &World, args: &[&str], stdin: Option<&[u8]>) -> String {
        let mut c = Command::new("docker");
        c.args(args)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", w.path("docker-config"))
            .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root pass")
            .env("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo pass")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "docker {args:?}: {text}");
        text
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM, so dockerd stops the containerd it started (SIGKILL would orphan it).
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A one-file root filesystem as a tar stream (for `docker import`).
fn tiny_rootfs(w: &World, content: &str) -> Vec<u8> {
    let dir = w.path(&format!("rootfs-{content}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello"), content).unwrap();
    let out = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .args(["-c", "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn tags_pushed_with_docker_content_trust_import_and_verify() {
    let w = World::new();
    let notary = NotaryFixture::start(&w.path("notary"));
    let registry = RegistryFixture::start();
    let dockerd = Dockerd::start(&w);
    // The docker CLI trusts a notary server's CA from $DOCKER_CONFIG/tls/<host:port>/.
    let tls = w.path(&format!("docker-config/tls/127.0.0.1:{}", notary.port));
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::copy(notary.ca(), tls.join("ca.crt")).unwrap();
    let repo = format!("{}/team/app", registry.host());
    for tag in ["v1", "v2"] {
        let image = format!("{repo}:{tag}");
        dockerd.docker(&w, &["import", "-", &image], Some(&tiny_rootfs(&w, tag)));
        let mut c = Command::new("docker");
        c.args(["push", &image])
            .env("DOCKER_HOST", &dockerd.host)
            .env("DOCKER_CONFIG", w.path("docker-config"))
            .env("DOCKER_CONTENT_TRUST", "1")
            .env("DOCKER_CONTENT_TRUST_SERVER", &notary.url)
            .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root pass")
            .env("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo pass")
            .stdin(Stdio::null());
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("Successfully signed"), "{text}");
    }
    let trust = w.path("docker-config/trust");
    let ca = notary.ca();
    let mut c = w.cmd(
        "signer",
        &[
            "import",
            "notary",
            &repo,
            "--server",
            &notary.url,
            "--server-ca",
            ca.to_str().unwrap(),
            "--trust-dir",
            trust.to_str().unwrap(),
        ],
    );
    // docker takes one "repository" passphrase for the targets and snapshot keys.
    c.env("NOTARY_ROOT_PASSPHRASE", "root pass")
        .env("NOTARY_TARGETS_PASSPHRASE", "repo pass")
        .env("NOTARY_SNAPSHOT_PASSPHRASE", "repo pass");
    let r = w.run(c);
    assert_eq!(r.code, 0, "{}", r.text());
    // docker left the snapshot key with the server: warrant made a publisher key.
    assert!(r.stdout.contains("generated key"), "{}", r.stdout);
    for tag in ["v1", "v2"] {
        let v = w.signer(&["verify", &format!("{repo}:{tag}")]);
        assert_eq!(v.code, 0, "verify {tag}: {}", v.text());
    }
}
