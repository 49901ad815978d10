//! Random sequences of team commands from separate homes (issue #12): after every
//! step `status` agrees with what a verifier sees, no command crashes or reports an
//! I/O error, and the documented recovery (members approve what is pending, CI
//! refreshes) always brings the repository back to "verifies".
//!
//! `WARRANT_TEAM_SEEDS` (default 3) and `WARRANT_TEAM_STEPS` (default 18) scale it
//! up (`make soak-team` runs more).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// A small deterministic generator (xorshift64*): seeds make failures replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const TAGS: [&str; 4] = ["v1", "v2", "v3", "rel"];

struct Team {
    w: World,
    root_id: String,
}

impl Team {
    fn new() -> Self {
        let w = World::new();
        for (i, tag) in TAGS.iter().enumerate() {
            make_image(&w.layout(), tag, &format!("{tag} {i}"));
        }
        let t = Self {
            w,
            root_id: String::new(),
        };
        let r = t.run("admin", &["--output", "json", "init", &t.repo()]);
        assert_eq!(r.code, 0, "{}", r.text());
        let init: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let root_id = init["root_keyids"][0].as_str().unwrap().to_owned();
        let publisher = init["publisher_keyid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let pem = t.w.path("publisher.pem");
        let r = t.run("admin", &["key", "export", "publisher"]);
        std::fs::write(&pem, r.stdout).unwrap();
        assert_eq!(
            t.run("ci", &["key", "import", pem.to_str().unwrap()]).code,
            0
        );
        if !publisher.is_empty() {
            let _ = std::fs::remove_file(t.w.path(&format!("admin/keys/{publisher}.key")));
        }
        for (home, name) in [("alice", "qa-alice"), ("bob", "qa-bob")] {
            assert_eq!(t.run(home, &["key", "generate", "--name", name]).code, 0);
            let r = t.run(home, &["key", "export", name, "--public"]);
            let file = t.w.path(&format!("{name}.pem"));
            std::fs::write(&file, r.stdout).unwrap();
            assert_eq!(
                t.run("admin", &["key", "import", file.to_str().unwrap()])
                    .code,
                0
            );
        }
        Self { root_id, ..t }
    }

    fn repo(&self) -> String {
        self.w.oci("")
    }

    fn run(&self, home: &str, args: &[&str]) -> Run {
        self.w.run(self.w.cmd(home, args))
    }

    fn verifier(&self, args: &[&str]) -> Run {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--root-keyid", &self.root_id]);
        self.w.verifier("verifier", &a)
    }

    /// One random command; returns a description for the failure message.
    fn step(&self, rng: &mut Rng) -> (String, Run) {
        let repo = self.repo();
        let tag = rng.pick(&TAGS);
        let image = format!("{repo}:{tag}");
        let member = rng.pick(&["alice", "bob"]);
        let key = if member == "alice" {
            "qa-alice"
        } else {
            "qa-bob"
        };
        let choice = rng.next() % 13;
        let (home, args): (&str, Vec<String>) = match choice {
            0 => {
                let threshold = if rng.next().is_multiple_of(2) {
                    "1"
                } else {
                    "2"
                };
                (
                    "admin",
                    [
                        "delegation",
                        "add",
                        &repo,
                        "qa",
                        "--key",
                        "qa-alice",
                        "--key",
                        "qa-bob",
                        "--threshold",
                        threshold,
                        "--paths",
                        "v*",
                    ]
                    .map(String::from)
                    .to_vec(),
                )
            }
            1 => (
                "admin",
                ["delegation", "remove", &repo, "qa"]
                    .map(String::from)
                    .to_vec(),
            ),
            2 | 3 => (
                member,
                ["sign", &image, "--role", "qa"].map(String::from).to_vec(),
            ),
            4 => (
                member,
                ["approve", &repo, "--role", "qa"]
                    .map(String::from)
                    .to_vec(),
            ),
            5 => ("admin", ["sign", &image].map(String::from).to_vec()),
            6 | 11 | 12 => ("ci", ["refresh", &repo].map(String::from).to_vec()),
            7 => (
                "admin",
                ["key", "revoke", &repo, key].map(String::from).to_vec(),
            ),
            8 => (
                "admin",
                ["key", "rotate", &repo, "--role", "qa", "--add", key]
                    .map(String::from)
                    .to_vec(),
            ),
            9 => (
                "admin",
                [
                    "renew",
                    &repo,
                    "--role",
                    rng.pick(&["targets", "qa", "root"]),
                ]
                .map(String::from)
                .to_vec(),
            ),
            _ => ("admin", ["unsign", &image].map(String::from).to_vec()),
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        (format!("{home} {}", args.join(" ")), self.run(home, &argv))
    }

    /// `status` and a verifier agree: status exits 0 exactly when the whole tree
    /// verifies (inspect), and then every tag inspect lists verifies to its digest.
    fn check_agreement(&self, history: &str) {
        let repo = self.repo();
        let status = self.verifier(&["status", &repo]);
        assert!(
            status.code == 0 || status.code == 1,
            "status crashed or failed to read: {}\n{history}",
            status.text()
        );
        let inspect = self.verifier(&["--output", "json", "inspect", &repo]);
        assert_eq!(
            status.code == 0,
            inspect.code == 0,
            "status and inspect disagree:\nstatus: {}\ninspect: {}\n{history}",
            status.text(),
            inspect.text()
        );
        if status.code != 0 {
            return;
        }
        let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
        for t in v["targets"].as_array().unwrap() {
            let name = t["target"].as_str().unwrap();
            let r = self.verifier(&["verify", &format!("{repo}:{name}")]);
            assert_eq!(
                r.code,
                0,
                "status says the repository verifies but {name} does not: {}\n{history}",
                r.text()
            );
            assert!(
                r.stdout.contains(t["digest"].as_str().unwrap()),
                "{}",
                r.stdout
            );
        }
    }

    /// The documented recovery: each member reviews and approves what is pending,
    /// then CI refreshes.
    fn recover(&self) {
        let repo = self.repo();
        for member in ["alice", "bob"] {
            let _ = self.run(member, &["approve", &repo, "--role", "qa"]);
        }
        let r = self.run("ci", &["refresh", &repo]);
        assert_eq!(r.code, 0, "refresh: {}", r.text());
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_team_sequences_never_dead_end_and_status_agrees_with_verify() {
    let seeds = env_u64("WARRANT_TEAM_SEEDS", 3);
    let steps = env_u64("WARRANT_TEAM_STEPS", 18);
    for seed in 1..=seeds {
        let t = Team::new();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
        let mut history = format!("seed {seed}:\n");
        for _ in 0..steps {
            let (what, r) = t.step(&mut rng);
            history.push_str(&format!("  [{}] {what}\n", r.code));
            if r.code != 0 {
                history.push_str(&format!("      {}\n", r.stderr.trim()));
            }
            assert!(
                r.code <= 2,
                "a command failed with an I/O error or crashed: {}\n{history}",
                r.text()
            );
            t.check_agreement(&history);
        }
        t.recover();
        let status = t.verifier(&["status", &t.repo()]);
        assert_eq!(
            status.code,
            0,
            "the documented recovery did not bring the repository back: {}\n{history}",
            status.text()
        );
        t.check_agreement(&history);
    }
}
