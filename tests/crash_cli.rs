//! Crash consistency (issue #17): `warrant sign` on an OCI layout and `warrant
//! verify` writing its trusted cache, killed with SIGKILL at random points. The
//! layout and the cache must always be valid afterwards: the old state or the new
//! one, verifiable, and the interrupted command completes when run again.
//!
//! Half the kills come after a random delay over the command's whole run; the
//! other half wait until the process is writing a temp file under the directory
//! it writes (the publish or the cache write is under way) and then up to 500 µs
//! more, so the writes themselves are hit, not only the key
//! decryption that dominates the run time.
//!
//! `make test` runs 20 of each; `make faults` (`WARRANT_FAULTS=full`) runs 200.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn runs() -> usize {
    if std::env::var("WARRANT_FAULTS").is_ok_and(|v| v == "full") {
        200
    } else {
        20
    }
}

/// xorshift64*, seeded from `WARRANT_CRASH_SEED` or the clock (printed, so a
/// failing run can be replayed).
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::env::var("WARRANT_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("WARRANT_CRASH_SEED={seed}");
        Self(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// True when `pid` is writing a temp file under `dir` (both the layout and the
/// cache write temp files named `.tmp*`, then fsync and rename them).
fn is_writing_under(pid: u32, dir: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .any(|p| {
            p.starts_with(dir)
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".tmp"))
        })
}

/// How the kills landed.
#[derive(Debug, Default)]
struct Tally {
    /// Killed after a random delay.
    delayed: usize,
    /// Killed once its writes had started.
    writing: usize,
    /// Finished before the kill.
    finished: usize,
}

impl Tally {
    fn count(&mut self, killed: bool, trigger: &Trigger<'_>) {
        match (killed, trigger) {
            (false, _) => self.finished += 1,
            (true, Trigger::Delay(_)) => self.delayed += 1,
            (true, _) => self.writing += 1,
        }
    }
}

/// Entries under `dir` and its subdirectories, one level deep (the layout's new
/// blobs and temp files show up here as soon as its publish starts writing).
fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .map(|e| 1 + std::fs::read_dir(e.path()).map_or(0, |d| d.count()))
            .sum()
    })
}

/// When to kill.
#[derive(Debug)]
enum Trigger<'a> {
    /// After this delay.
    Delay(Duration),
    /// Once the child writes a temp file under this directory, plus up to 500 µs.
    Writing(&'a Path),
    /// Once the number of entries under this directory changes from the given
    /// count, plus up to 2 ms.
    NewEntry(&'a Path, usize),
}

/// Start `child`, then SIGKILL it when `trigger` says. Returns whether it was killed.
fn kill_at(mut child: Child, trigger: &Trigger<'_>, rng: &mut Rng) -> bool {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let due = match trigger {
            Trigger::Delay(d) => started.elapsed() >= *d,
            Trigger::Writing(dir) => is_writing_under(child.id(), dir),
            Trigger::NewEntry(dir, n) => entries(dir) != *n,
        };
        if due {
            match trigger {
                Trigger::Delay(_) => {}
                Trigger::Writing(_) => {
                    std::thread::sleep(Duration::from_micros(rng.below(500)));
                }
                Trigger::NewEntry(..) => {
                    std::thread::sleep(Duration::from_micros(rng.below(2000)));
                }
            }
            let killed = child.kill().is_ok();
            let status = child.wait().unwrap();
            // `kill` on a process that just exited is not a kill.
            return killed && status.code().is_none();
        }
        // A safety net, not a timing assertion: a wedged child fails the test.
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "child never finished"
        );
        std::thread::yield_now();
    }
}

/// How long a clean run of `args` as `home` takes (the range random delays cover).
fn clean_duration(w: &World, home: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let r = w.run(w.cmd(home, args));
    assert_eq!(r.code, 0, "{}", r.text());
    started.elapsed()
}

#[test]
fn sigkilled_layout_sign_leaves_the_old_or_the_new_state() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let root = root.to_str().unwrap().to_owned();
    let verify = |home: &str, tag: &str| {
        w.verifier(
            home,
            &["verify", &w.oci(&format!(":{tag}")), "--root", &root],
        )
    };
    assert_eq!(verify("warm", "v1").code, 0);
    make_image(&w.layout(), "t-clean", "t-clean");
    let span = clean_duration(&w, "signer", &["sign", &w.oci(":t-clean")]);
    let mut rng = Rng::new();
    let mut tally = Tally::default();
    let (mut old, mut new) = (0, 0);
    let layout = w.layout();
    for n in 0..runs() {
        let tag = format!("t{n}");
        make_image(&w.layout(), &tag, &tag);
        let child = w
            .cmd("signer", &["sign", &w.oci(&format!(":{tag}"))])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let trigger = if n % 2 == 0 {
            Trigger::Delay(Duration::from_micros(
                rng.below(span.as_micros() as u64 * 11 / 10),
            ))
        } else {
            Trigger::NewEntry(&layout, entries(&layout))
        };
        let killed = kill_at(child, &trigger, &mut rng);
        tally.count(killed, &trigger);
        let ctx = format!("run {n} ({trigger:?}, killed {killed})");
        let r = verify(&format!("fresh-{n}"), "v1");
        assert_eq!(r.code, 0, "{ctx}: layout unverifiable: {}", r.text());
        let r = verify("warm", "v1");
        assert_eq!(r.code, 0, "{ctx}: warm verifier: {}", r.text());
        let r = verify(&format!("fresh-{n}"), &tag);
        match r.code {
            0 => new += 1,
            1 => old += 1,
            _ => panic!("{ctx}: verify {tag}: {}", r.text()),
        }
        if r.code == 1 {
            let again = w.signer(&["sign", &w.oci(&format!(":{tag}"))]);
            assert_eq!(again.code, 0, "{ctx}: re-run: {}", again.text());
            let r = verify("warm", &tag);
            assert_eq!(r.code, 0, "{ctx}: after the re-run: {}", r.text());
        }
    }
    eprintln!(
        "layout sign: {} runs, {tally:?}; afterwards {old} at the old state (re-run completed), {new} at the new",
        runs()
    );
    python_tuf_loads(&w);
}

fn python_tuf_loads(w: &World) {
    if std::process::Command::new("python3")
        .args(["-c", "import tuf"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        eprintln!("python-tuf not installed: export check skipped");
        return;
    }
    let dir = w.path("export-after-crashes");
    let r = w.signer(&["export", &w.oci(""), dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.text());
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
        "python-tuf: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn sigkilled_verify_leaves_a_cache_that_verifies() {
    let w = World::new();
    let (root, _) = w.signed_v1();
    let root = root.to_str().unwrap().to_owned();
    let verify_args = |tag: &str| {
        vec![
            "verify".to_owned(),
            w.oci(&format!(":{tag}")),
            "--root".into(),
            root.clone(),
        ]
    };
    let args = verify_args("v1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(w.verifier("template", &args).code, 0);
    // The repository moves on: every verify below updates the cache.
    make_image(&w.layout(), "v2", "hello v2");
    assert_eq!(w.signer(&["sign", &w.oci(":v2")]).code, 0);
    let args = verify_args("v2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    copy_dir(&w.path("template"), &w.path("clean"));
    let span = {
        let mut c = w.cmd("clean", &args);
        c.env_remove("WARRANT_PASSPHRASE");
        let started = Instant::now();
        assert_eq!(w.run(c).code, 0);
        started.elapsed()
    };
    let mut rng = Rng::new();
    let mut tally = Tally::default();
    for n in 0..runs() {
        let home = format!("case-{n}");
        copy_dir(&w.path("template"), &w.path(&home));
        let mut c = w.cmd(&home, &args);
        c.env_remove("WARRANT_PASSPHRASE")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let dir = w.path(&home);
        let trigger = if n % 2 == 0 {
            Trigger::Delay(Duration::from_micros(
                rng.below(span.as_micros() as u64 * 11 / 10),
            ))
        } else {
            Trigger::Writing(&dir)
        };
        let killed = kill_at(c.spawn().unwrap(), &trigger, &mut rng);
        tally.count(killed, &trigger);
        let r = w.verifier(&home, &args);
        assert_eq!(
            r.code,
            0,
            "run {n} ({trigger:?}, killed {killed}): the cache left behind: {}",
            r.text()
        );
    }
    eprintln!("verify cache write: {} runs, {tally:?}", runs());
}
