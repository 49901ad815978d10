//! The fault matrix (issue #17): a real registry behind a [`FaultProxy`], one TUF
//! repository that every case of an operation edits in turn, and the oracle that
//! judges each case: after any fault the repository is at its old state or its
//! new one (never a mix, never unverifiable), the exit code says which, and a
//! clean re-run completes what a failed one left undone.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use serde_json::Value;

use super::faults::{Fault, FaultProxy, Inject, SLOW_TIMEOUT};
use super::registry::RegistryFixture;
use super::{Run, World};

/// Every role's version, and the top-level targets: what "a state" means here.
pub type Fingerprint = (BTreeMap<String, u64>, Vec<String>);

/// The registry, the proxy in front of it, and the signer's world.
pub struct Rig {
    pub reg: RegistryFixture,
    pub proxy: FaultProxy,
    pub w: World,
    /// `proxy/team/app`: every warrant command goes through the proxy.
    pub repo: String,
    pub root_id: String,
    /// The `v1` manifest as the registry serves it (re-tagged for new tags).
    manifest: Vec<u8>,
    fresh: std::cell::Cell<usize>,
}

/// A raw HTTP/1.0 exchange with the registry (no proxy): status line and body.
fn http(host: &str, request: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(host).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    (head, out[split + 4..].to_vec())
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

impl Rig {
    /// A registry with `team/app:v1`, initialized and signed through the proxy,
    /// with spare keys `root2`, `qa1`, `qa2` in the signer's home.
    pub fn start() -> Self {
        let reg = RegistryFixture::start();
        let proxy = FaultProxy::start(&reg.host());
        let w = World::new();
        super::make_image(&w.layout(), "v1", "hello v1");
        reg.push(&w.layout(), "v1", "team/app");
        let (head, manifest) = http(
            &reg.host(),
            &format!(
                "GET /v2/team/app/manifests/v1 HTTP/1.0\r\nHost: {}\r\nAccept: {OCI_MANIFEST}\r\n\r\n",
                reg.host()
            ),
            b"",
        );
        assert!(head.contains(" 200 "), "{head}");
        let repo = format!("{}/team/app", proxy.host());
        let mut rig = Self {
            reg,
            proxy,
            w,
            repo,
            root_id: String::new(),
            manifest,
            fresh: std::cell::Cell::new(0),
        };
        rig.ok(&["init", &rig.repo.clone()]);
        for k in ["root2", "qa1", "qa2"] {
            rig.ok(&["key", "generate", "--name", k]);
        }
        let r = rig.ok(&["--output", "json", "key", "list"]);
        let keys: Value = serde_json::from_str(&r.stdout).unwrap();
        rig.root_id = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "root")
            .unwrap()["keyid"]
            .as_str()
            .unwrap()
            .to_owned();
        rig.ok(&["sign", &format!("{}:v1", rig.repo)]);
        rig
    }

    /// warrant as `home`, with a short `--timeout` (so a slow body trips it) and a
    /// generous deadline (so a loaded machine does not).
    pub fn warrant(&self, home: &str, args: &[&str]) -> Run {
        let mut full = vec!["--timeout", SLOW_TIMEOUT, "--deadline", "120"];
        full.extend_from_slice(args);
        let mut c = self.w.cmd(home, &full);
        if home != "signer" {
            c.env_remove("WARRANT_PASSPHRASE");
        }
        self.w.run(c)
    }

    /// The signer, expecting success (the proxy must be disarmed).
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.warrant("signer", args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
        r
    }

    /// Tag the `v1` manifest as `tag` in the registry (directly, not via the proxy).
    pub fn tag(&self, tag: &str) {
        let (head, _) = http(
            &self.reg.host(),
            &format!(
                "PUT /v2/team/app/manifests/{tag} HTTP/1.0\r\nHost: {}\r\nContent-Type: {OCI_MANIFEST}\r\nContent-Length: {}\r\n\r\n",
                self.reg.host(),
                self.manifest.len()
            ),
            &self.manifest,
        );
        assert!(head.contains(" 201 "), "{head}");
    }

    /// A fresh verifier home name (first contact, pinned by root key id).
    pub fn fresh_home(&self) -> String {
        let n = self.fresh.get();
        self.fresh.set(n + 1);
        format!("fresh-{n}")
    }

    /// Verify `tag` from `home`, pinned by the root key id.
    pub fn verify(&self, home: &str, tag: &str) -> Run {
        self.warrant(
            home,
            &[
                "verify",
                &format!("{}:{tag}", self.repo),
                "--root-keyid",
                &self.root_id,
            ],
        )
    }

    /// The verified state as a long-lived verifier (`observer`) sees it.
    pub fn fingerprint(&self) -> Fingerprint {
        let r = self.warrant(
            "observer",
            &[
                "--output",
                "json",
                "inspect",
                &self.repo,
                "--root-keyid",
                &self.root_id,
            ],
        );
        assert_eq!(
            r.code,
            0,
            "the repository must stay verifiable: {}",
            r.text()
        );
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        let mut roles: BTreeMap<String, u64> = v["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["role"].as_str().unwrap().to_owned(),
                    r["version"].as_u64().unwrap(),
                )
            })
            .collect();
        // Delegated roles are loaded (and verified) by `delegation list`.
        let r = self.warrant(
            "observer",
            &[
                "--output",
                "json",
                "delegation",
                "list",
                &self.repo,
                "--root-keyid",
                &self.root_id,
            ],
        );
        assert_eq!(
            r.code,
            0,
            "the delegations must stay verifiable: {}",
            r.text()
        );
        let list: Value = serde_json::from_str(&r.stdout).unwrap();
        for d in list.as_array().unwrap() {
            roles.insert(
                d["role"].as_str().unwrap().to_owned(),
                d["version"].as_u64().unwrap(),
            );
        }
        let mut targets: Vec<String> = v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["target"].as_str().unwrap().to_owned())
            .collect();
        targets.sort();
        (roles, targets)
    }

    /// `python-tuf` checks a fresh export (`e2e/interop_export.py`).
    pub fn python_tuf_loads_the_export(&self) {
        if std::process::Command::new("python3")
            .args(["-c", "import tuf"])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("python-tuf not installed: export check skipped");
            return;
        }
        let dir = self.w.path(&format!("export-{}", self.fresh_home()));
        self.ok(&["export", &self.repo, dir.to_str().unwrap()]);
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/e2e/interop_export.py"
            ))
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python-tuf rejects the export: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // And python-tuf's own client (ngclient.Updater) trusts v1 from it.
        let digest = format!("sha256:{}", super::sha256_hex(&self.manifest));
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/e2e/interop_updater.py"
            ))
            .arg(&dir)
            .args(["v1", &digest])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python-tuf's Updater rejects the export: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The four publishing operations of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Sign,
    DelegationAdd,
    RootRotate,
    Approve,
}

/// One case's operation: its arguments, and how to recognise its new state.
pub struct Step {
    pub args: Vec<String>,
    /// The tag signed by it (sign, approve) or the role it adds.
    pub mark: String,
}

impl Op {
    /// Prepare case `n` (outside the fault window) and return its step.
    pub fn prepare(self, rig: &Rig, n: usize) -> Step {
        let repo = rig.repo.clone();
        match self {
            Op::Sign => {
                let tag = format!("s{n}");
                rig.tag(&tag);
                Step {
                    args: vec!["sign".into(), format!("{repo}:{tag}")],
                    mark: tag,
                }
            }
            Op::DelegationAdd => {
                // Verifiers visit at most 32 roles (max_delegations): keep the
                // tree small by removing the previous case's role.
                if n > 0 {
                    rig.ok(&["delegation", "remove", &repo, &format!("r{}", n - 1)]);
                }
                let role = format!("r{n}");
                Step {
                    args: ["delegation", "add", &repo, &role, "--key", "qa1"]
                        .map(String::from)
                        .to_vec(),
                    mark: role,
                }
            }
            Op::RootRotate => {
                let flag = if n.is_multiple_of(2) {
                    "--add"
                } else {
                    "--remove"
                };
                Step {
                    args: ["key", "rotate", &repo, "--role", "root", flag, "root2"]
                        .map(String::from)
                        .to_vec(),
                    mark: String::new(),
                }
            }
            Op::Approve => {
                if n == 0 {
                    rig.ok(&[
                        "delegation",
                        "add",
                        &repo,
                        "qa",
                        "--key",
                        "qa1",
                        "--key",
                        "qa2",
                        "--threshold",
                        "2",
                    ]);
                }
                let tag = format!("a{n}");
                rig.tag(&tag);
                let r = rig.ok(&[
                    "sign",
                    &format!("{repo}:{tag}"),
                    "--role",
                    "qa",
                    "--key",
                    "qa1",
                ]);
                assert!(r.stdout.contains("pending"), "{}", r.stdout);
                Step {
                    args: ["approve", &repo, "--role", "qa", "--key", "qa2"]
                        .map(String::from)
                        .to_vec(),
                    mark: tag,
                }
            }
        }
    }

    /// Whether `after` carries this step's change (judged by a fresh verifier
    /// where the change is not visible in the top-level fingerprint).
    fn changed(self, rig: &Rig, step: &Step, before: &Fingerprint, after: &Fingerprint) -> bool {
        match self {
            Op::Sign => after.1.contains(&step.mark),
            Op::DelegationAdd => after.0.contains_key(&step.mark),
            Op::RootRotate => after.0.get("root") > before.0.get("root"),
            Op::Approve => {
                let r = rig.verify(&rig.fresh_home(), &step.mark);
                assert!(matches!(r.code, 0 | 1), "{}", r.text());
                r.code == 0
            }
        }
    }
}

/// What a case's fault led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0, new state.
    Published,
    /// Exit 3, old state; a clean re-run published.
    NothingPublished,
    /// Exit 3 saying the write was acknowledged but not confirmed; new state.
    Unconfirmed,
    /// Exit 1 (the registry's bytes did not match its digest), old state; a clean
    /// re-run published.
    Refused,
}

/// Run case `n` of `op` with `fault` at request `index`, judge it, and return what
/// happened (or panic with the evidence).
/// Also returns how many requests the faulted command made.
pub fn run_case(rig: &Rig, op: Op, n: usize, fault: Option<Inject>) -> (Outcome, usize) {
    let step = op.prepare(rig, n);
    let before = rig.fingerprint();
    let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
    rig.proxy.arm(fault);
    let r = rig.warrant("signer", &args);
    let seen = rig.proxy.seen();
    rig.proxy.arm(None);
    let hit = seen.iter().find(|s| s.fault.is_some());
    let hits = seen.iter().filter(|s| s.fault.is_some()).count();
    let ctx = format!(
        "{op:?} case {n}, fault {fault:?} hit {hit:?} ({hits} hits): exit {}: {}",
        r.code,
        r.text()
    );
    let after = rig.fingerprint();
    let v1 = rig.verify(&rig.fresh_home(), "v1");
    assert_eq!(
        v1.code,
        0,
        "{ctx}\nfresh verify after the fault: {}",
        v1.text()
    );
    let old = after == before;
    let new = !old && op.changed(rig, &step, &before, &after) && bumped_by_one(&before, &after);
    assert!(
        old || new,
        "{ctx}\na mix of states: {before:?} -> {after:?}"
    );
    let integrity = fault.is_some_and(|f| f.fault.is_integrity());
    let outcome = match (r.code, new) {
        (0, true) => return (Outcome::Published, seen.len()),
        // The registry went away right after acknowledging the write: warrant
        // cannot know, and says so (the Two Generals' case).
        (3, true) if r.stderr.contains("not confirmed") => {
            return (Outcome::Unconfirmed, seen.len());
        }
        (3, false) => Outcome::NothingPublished,
        // The registry served bytes that do not match its own digest: an
        // integrity failure (exit 1, as for verify), and nothing was published.
        (1, false) if integrity => Outcome::Refused,
        (code, new) => panic!(
            "{ctx}\nexit {code} but the repository is at its {} state",
            if new { "new" } else { "old" }
        ),
    };
    let again = rig.warrant("signer", &args);
    assert_eq!(again.code, 0, "{ctx}\nre-run: {}", again.text());
    let done = rig.fingerprint();
    assert!(
        op.changed(rig, &step, &after, &done) && bumped_by_one(&after, &done),
        "{ctx}\nre-run did not complete: {after:?} -> {done:?}"
    );
    (outcome, seen.len())
}

/// No role lost, none moved by more than one version.
fn bumped_by_one(before: &Fingerprint, after: &Fingerprint) -> bool {
    before
        .0
        .iter()
        .all(|(role, v)| after.0.get(role).is_some_and(|w| *w == *v || *w == *v + 1))
}

/// Faults also injected persistently (from their index on: the registry goes bad
/// and stays bad until the command gives up). `Slow` is left out: every request
/// would wait out the timeout until the deadline.
pub const PERSISTENT: [Fault; 5] = [
    Fault::Status(503),
    Fault::Reset,
    Fault::Truncate,
    Fault::WrongDigest,
    Fault::LostPut,
];

/// Which cases to run: every fault once at every index, and the [`PERSISTENT`]
/// ones from every index on, all of them under `WARRANT_FAULTS=full` (`make
/// faults`), otherwise `sample` cases spread over that matrix.
pub fn cases(requests: usize, sample: usize, salt: usize) -> Vec<Inject> {
    let once = Fault::ALL.iter().map(|f| (*f, false));
    let persistent = PERSISTENT.iter().map(|f| (*f, true));
    let kinds: Vec<(Fault, bool)> = once.chain(persistent).collect();
    let all: Vec<Inject> = (0..requests)
        .flat_map(|index| {
            kinds.iter().map(move |(fault, persist)| Inject {
                index,
                fault: *fault,
                persist: *persist,
            })
        })
        .collect();
    if std::env::var("WARRANT_FAULTS").is_ok_and(|v| v == "full") || all.len() <= sample {
        return all;
    }
    // A fixed stride through the matrix, coprime to the number of kinds (14) and
    // shifted per operation, so the sample spreads over kinds and indices.
    let mut stride = (all.len() / sample) | 1;
    while stride.is_multiple_of(7) {
        stride += 2;
    }
    (0..sample)
        .map(|k| all[(salt + k * stride) % all.len()])
        .collect()
}
