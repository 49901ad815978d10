//! The containerd verifier, driven exactly as containerd 2.x's bindir plugin
//! drives it.

use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::registry::RegistryFixture;
use crate::{WARRANT, signed};

const DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// What containerd would see.
struct Judged {
    code: i32,
    stdout: String,
    elapsed: Duration,
}

/// Run the verifier the way containerd's bindir plugin does: `-name REF -digest D
/// -stdin-media-type T` (plus `extra`), the descriptor JSON and a newline on
/// stdin, at most 32 KiB of stdout read, killed after `per_verifier_timeout`
/// (10 s). Asserts the answer is one line within the limit.
fn containerd_runs(c: Command, name: &str, digest: &str, extra: &[&str], stdin: &[u8]) -> Judged {
    let mut args = vec![
        "-name",
        name,
        "-digest",
        digest,
        "-stdin-media-type",
        DESCRIPTOR,
    ];
    args.extend(extra);
    containerd_runs_with(c, &args, stdin)
}

/// [`containerd_runs`] with the whole argument list given.
fn containerd_runs_with(mut c: Command, args: &[&str], stdin: &[u8]) -> Judged {
    c.args(args)
        .env_remove("WARRANT_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut out).take(32 * 1024 + 1).read_to_end(&mut buf);
        buf
    });
    let timeout = Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("the verifier outlived containerd's per_verifier_timeout");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let stdout = reader.join().unwrap();
    assert!(
        stdout.len() <= 32 * 1024,
        "stdout of {} bytes",
        stdout.len()
    );
    let stdout = String::from_utf8(stdout).unwrap();
    assert!(
        stdout.ends_with('\n') && stdout.matches('\n').count() == 1,
        "not one line: {stdout:?}"
    );
    Judged {
        code: status.code().unwrap_or(-1),
        stdout,
        elapsed,
    }
}

fn descriptor(digest: &str, size: u64) -> Vec<u8> {
    format!(r#"{{"mediaType":"{MANIFEST}","digest":"{digest}","size":{size},"annotations":{{"a":"b"}}}}"#)
        .into_bytes()
        .into_iter()
        .chain(*b"\n")
        .collect()
}

/// A host: a policy directory (like /etc/warrant) and a cache (like
/// /var/lib/warrant) in temporary directories.
struct Host {
    policy: PathBuf,
    cache: PathBuf,
}

impl Host {
    fn new(dir: &Path, policy: &str, root: Option<&Path>) -> Self {
        let etc = dir.join("etc-warrant");
        std::fs::create_dir_all(&etc).unwrap();
        if let Some(root) = root {
            std::fs::copy(root, etc.join("root.json")).unwrap();
        }
        std::fs::write(etc.join("policy.toml"), policy).unwrap();
        Self {
            policy: etc.join("policy.toml"),
            cache: dir.join("var-lib-warrant"),
        }
    }

    /// The binary started as `warrant-containerd-verifier`.
    fn verifier(&self) -> Command {
        let mut c = Command::new(WARRANT);
        c.arg0("warrant-containerd-verifier");
        self.env(&mut c);
        c
    }

    fn env(&self, c: &mut Command) {
        c.env("WARRANT_POLICY", &self.policy)
            .env("WARRANT_HOME", &self.cache)
            .env_remove("DOCKER_CONFIG")
            .env_remove("WARRANT_VERIFIER_TIMEOUT")
            .env_remove("WARRANT_PASSPHRASE");
    }

    fn judge(&self, name: &str, digest: &str, stdin: &[u8]) -> Judged {
        containerd_runs(self.verifier(), name, digest, &[], stdin)
    }
}

fn team_policy(reg: &RegistryFixture) -> String {
    format!(
        "[[repository]]\nmatch = \"{}/team/*\"\nroot = \"root.json\"\n",
        reg.host()
    )
}

#[test]
fn containerd_verifier_allows_a_signed_image_and_blocks_the_rest_with_the_reason() {
    let s = signed();
    let host = Host::new(s.w.dir.path(), &team_policy(&s.reg), Some(&s.root));
    let v1 = s.reg.repo("team/app", ":v1");
    let j = host.judge(&v1, &s.v1.0, &descriptor(&s.v1.0, s.v1.1));
    assert_eq!(j.code, 0, "{}", j.stdout);
    assert!(j.stdout.starts_with("trusted: "), "{}", j.stdout);
    assert!(j.stdout.contains(&s.v1.0), "{}", j.stdout);
    // An unsigned tag.
    let j = host.judge(
        &s.reg.repo("team/app", ":evil"),
        &s.evil.0,
        &descriptor(&s.evil.0, s.evil.1),
    );
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(
        j.stdout
            .starts_with("blocked: not trusted: no signed target \"evil\""),
        "{}",
        j.stdout
    );
    // The signed tag, resolved to another manifest (the tag was moved).
    let j = host.judge(&v1, &s.evil.0, &descriptor(&s.evil.0, s.evil.1));
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(j.stdout.contains("tag was moved"), "{}", j.stdout);
    // The right digest with a wrong size in the descriptor.
    let j = host.judge(&v1, &s.v1.0, &descriptor(&s.v1.0, s.v1.1 + 1));
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(j.stdout.contains("signed with length"), "{}", j.stdout);
    // A name that carries the digest itself.
    let j = host.judge(
        &format!("{v1}@{}", s.v1.0),
        &s.v1.0,
        &descriptor(&s.v1.0, s.v1.1),
    );
    assert_eq!(j.code, 0, "{}", j.stdout);
}

#[test]
fn containerd_verifier_accepts_newer_containerd_flags_and_input() {
    let s = signed();
    let host = Host::new(s.w.dir.path(), &team_policy(&s.reg), Some(&s.root));
    let v1 = s.reg.repo("team/app", ":v1");
    let j = containerd_runs(
        host.verifier(),
        &v1,
        &s.v1.0,
        &[
            "-operation",
            "pull",
            "--some-future-flag=1",
            "-another",
            "x",
        ],
        &descriptor(&s.v1.0, s.v1.1),
    );
    assert_eq!(j.code, 0, "{}", j.stdout);
    // containerd with verify_on_run wraps the descriptor with the run context.
    let wrapped = format!(
        r#"{{"operation":"run","descriptor":{},"annotations":{{"io.kubernetes.cri.container-name":"c"}}}}"#,
        String::from_utf8(descriptor(&s.v1.0, s.v1.1))
            .unwrap()
            .trim()
    );
    let j = containerd_runs_with(
        host.verifier(),
        &[
            "-name",
            &v1,
            "-digest",
            &s.v1.0,
            "-stdin-media-type",
            "application/vnd.containerd.image-verifier.input.v1+json",
            "-operation",
            "run",
        ],
        wrapped.as_bytes(),
    );
    assert_eq!(j.code, 0, "{}", j.stdout);
}

#[test]
fn containerd_verifier_warm_pull_costs_one_registry_head() {
    let s = signed();
    let host = Host::new(s.w.dir.path(), &team_policy(&s.reg), Some(&s.root));
    let v1 = s.reg.repo("team/app", ":v1");
    let desc = descriptor(&s.v1.0, s.v1.1);
    assert_eq!(host.judge(&v1, &s.v1.0, &desc).code, 0);
    let n = s.reg.requests().len();
    let j = host.judge(&v1, &s.v1.0, &desc);
    assert_eq!(j.code, 0, "{}", j.stdout);
    let warm = s.reg.requests().split_off(n);
    assert_eq!(warm, ["HEAD /v2/team/app/manifests/warrant.tuf"]);
    // The shared cache holds the repository's trusted state.
    assert!(
        host.cache
            .join("trust")
            .join(s.reg.host())
            .join("team/app")
            .is_dir()
    );
}

#[test]
fn containerd_verifier_blocks_within_its_deadline_when_the_registry_is_down() {
    let mut s = signed();
    let host = Host::new(s.w.dir.path(), &team_policy(&s.reg), Some(&s.root));
    let v1 = s.reg.repo("team/app", ":v1");
    let desc = descriptor(&s.v1.0, s.v1.1);
    assert_eq!(host.judge(&v1, &s.v1.0, &desc).code, 0);
    s.reg.stop();
    let j = host.judge(&v1, &s.v1.0, &desc);
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(
        j.stdout.contains(&s.reg.host()),
        "names the registry: {}",
        j.stdout
    );
    assert!(j.elapsed < Duration::from_secs(8), "{:?}", j.elapsed);

    // A registry that accepts connections and never answers: the deadline
    // answers, with its default budget, before containerd's 10 s.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_host = format!("127.0.0.1:{}", silent.local_addr().unwrap().port());
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in silent.incoming().take(64) {
            conns.push(c);
        }
    });
    let policy =
        format!("[[repository]]\nmatch = \"{silent_host}/team/*\"\nroot = \"root.json\"\n");
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), &policy, Some(&s.root));
    let name = format!("{silent_host}/team/app:v1");
    let j = host.judge(&name, &s.v1.0, &desc);
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(j.stdout.contains("could not verify"), "{}", j.stdout);
    assert!(j.stdout.contains("within 8.0s"), "{}", j.stdout);
    assert!(j.elapsed >= Duration::from_secs(7), "{:?}", j.elapsed);
    // A shorter budget from the environment (what an admin sets in containerd's unit).
    let mut c = host.verifier();
    c.env("WARRANT_VERIFIER_TIMEOUT", "1500ms");
    let j = containerd_runs(c, &name, &s.v1.0, &[], &desc);
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(j.stdout.contains("within 1.5s"), "{}", j.stdout);
    assert!(j.elapsed < Duration::from_secs(4), "{:?}", j.elapsed);
    drop(held);
}

#[test]
fn containerd_verifier_blocks_unlisted_repositories_unless_the_policy_allows_them() {
    let dir = tempfile::tempdir().unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let host = Host::new(
        dir.path(),
        "[[repository]]\nmatch = \"registry.example/team/*\"\ntofu = true\n",
        None,
    );
    let j = host.judge(
        "docker.io/library/alpine:3.20",
        &digest,
        &descriptor(&digest, 10),
    );
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(
        j.stdout.contains("matches docker.io/library/alpine"),
        "{}",
        j.stdout
    );
    assert!(
        j.stdout.contains("default = \"allow\""),
        "says how to opt out: {}",
        j.stdout
    );
    // Docker Hub short names normalize as docker does.
    let j = host.judge("alpine:3.20", &digest, &descriptor(&digest, 10));
    assert!(
        j.stdout.contains("matches docker.io/library/alpine"),
        "{}",
        j.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), "default = \"allow\"\n", None);
    let j = host.judge(
        "docker.io/library/alpine:3.20",
        &digest,
        &descriptor(&digest, 10),
    );
    assert_eq!(j.code, 0, "{}", j.stdout);
    assert!(j.stdout.starts_with("allowed unverified"), "{}", j.stdout);
}

#[test]
fn containerd_verifier_blocks_malformed_input_with_a_clear_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Even a policy that lets everything through does not excuse bad input.
    let host = Host::new(dir.path(), "default = \"allow\"\n", None);
    let digest = format!("sha256:{}", "ab".repeat(32));
    let other = format!("sha256:{}", "cd".repeat(32));
    let name = "registry.example/team/app:1";
    for (stdin, expect) in [
        (b"".to_vec(), "no descriptor"),
        (b"not json\n".to_vec(), "not an OCI descriptor"),
        (b"{\"digest\":1}\n".to_vec(), "not an OCI descriptor"),
        (
            format!(r#"{{"mediaType":"{MANIFEST}","digest":"{digest}"}}"#).into_bytes(),
            "missing field `size`",
        ),
        (descriptor(&other, 10), "refusing an ambiguous request"),
        (vec![b' '; 2 * 1024 * 1024], "larger than 1 MiB"),
    ] {
        let j = host.judge(name, &digest, &stdin);
        assert_eq!(j.code, 1, "{expect}: {}", j.stdout);
        assert!(j.stdout.starts_with("blocked: "), "{}", j.stdout);
        assert!(j.stdout.contains(expect), "{expect}: {}", j.stdout);
    }
    let good = descriptor(&digest, 10);
    for (name, digest, expect) in [
        (name, "sha256:short", "-digest"),
        (name, "sha512:00", "-digest"),
        ("Not A Reference", digest.as_str(), "cannot verify"),
        (
            &*format!("registry.example/team/app@{other}"),
            digest.as_str(),
            "pins a digest other than",
        ),
    ] {
        let j = host.judge(name, digest, &good);
        assert_eq!(j.code, 1, "{expect}: {}", j.stdout);
        assert!(j.stdout.contains(expect), "{expect}: {}", j.stdout);
    }
    let j = containerd_runs_with(
        host.verifier(),
        &[
            "-name",
            name,
            "-digest",
            &digest,
            "-stdin-media-type",
            "application/x-future",
        ],
        &good,
    );
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(
        j.stdout.contains("unsupported -stdin-media-type"),
        "{}",
        j.stdout
    );
    let j = containerd_runs(host.verifier(), name, &digest, &["-name", name], &good);
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(j.stdout.contains("given twice"), "{}", j.stdout);
    // Missing arguments.
    let mut c = host.verifier();
    c.args(["-name", name]).stdin(Stdio::null());
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("missing -digest"));
}

#[test]
fn containerd_verifier_reason_is_one_line_capped_at_32_kib() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), "default = \"allow\"\n", None);
    let digest = format!("sha256:{}", "ab".repeat(32));
    // The reason quotes the (invalid) name: 100 kB of it, with newlines.
    let name = format!("registry.example/{}", "x\n".repeat(50_000));
    let j = host.judge(&name, &digest, &descriptor(&digest, 10));
    assert_eq!(j.code, 1);
    assert!(
        j.stdout.len() <= 32 * 1024 && j.stdout.len() > 30_000,
        "{}",
        j.stdout.len()
    );
    assert!(j.stdout.ends_with("...\n"));
}

#[test]
fn containerd_verifier_without_a_policy_blocks_every_pull() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), "", None);
    std::fs::remove_file(&host.policy).unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let j = host.judge(
        "docker.io/library/alpine:3.20",
        &digest,
        &descriptor(&digest, 10),
    );
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(j.stdout.contains("no warrant policy at"), "{}", j.stdout);
    // An invalid policy blocks too, and says where.
    std::fs::write(&host.policy, "default = \"maybe\"\n").unwrap();
    let j = host.judge(
        "docker.io/library/alpine:3.20",
        &digest,
        &descriptor(&digest, 10),
    );
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(j.stdout.contains("fix the policy file"), "{}", j.stdout);
}

#[test]
fn containerd_runs_the_verifier_installed_as_bin_dir_warrant() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), "default = \"allow\"\n", None);
    let bin_dir = dir.path().join("image-verifier/bin");
    let out = Command::new(WARRANT)
        .args(["install", "containerd-verifier", "--dir"])
        .arg(&bin_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<_> = std::fs::read_dir(&bin_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["warrant"], "one executable in bin_dir");
    // containerd starts it by its path in bin_dir: argv[0] is .../bin/warrant.
    let mut c = Command::new(bin_dir.join("warrant"));
    host.env(&mut c);
    let digest = format!("sha256:{}", "ab".repeat(32));
    let j = containerd_runs(
        c,
        "docker.io/library/alpine:3.20",
        &digest,
        &[],
        &descriptor(&digest, 10),
    );
    assert_eq!(j.code, 0, "{}", j.stdout);
    assert!(j.stdout.starts_with("allowed unverified"), "{}", j.stdout);
}

/// Issue #11 item 12: a policy "file" that is a FIFO blocks the pull at once and
/// names the policy, instead of hanging until the deadline blames the registry.
#[test]
fn policy_fifo_blocks_with_the_policy_as_the_reason() {
    let s = signed();
    let host = Host::new(s.w.dir.path(), &team_policy(&s.reg), Some(&s.root));
    std::fs::remove_file(&host.policy).unwrap();
    let status = Command::new("mkfifo").arg(&host.policy).status().unwrap();
    assert!(status.success());
    let v1 = s.reg.repo("team/app", ":v1");
    let j = host.judge(&v1, &s.v1.0, &descriptor(&s.v1.0, s.v1.1));
    assert_eq!(j.code, 1, "{}", j.stdout);
    assert!(j.stdout.contains("policy"), "{}", j.stdout);
    assert!(!j.stdout.contains("registry"), "{}", j.stdout);
}
