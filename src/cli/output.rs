//! Human and JSON output, in one place. Reports go to stdout; warnings and errors to
//! stderr (and, with `--output json`, errors also as a JSON object on stdout so
//! scripts always get JSON).

use std::fmt::Write as _;

use serde::Serialize;

use crate::crypto::keystore::KeyInfo;
use crate::ops::OpError;
use crate::ops::export::ExportOutcome;
use crate::ops::init::InitOutcome;
use crate::ops::inspect::Inspection;
use crate::ops::sign::SignOutcome;
use crate::ops::verify::Verdict;

mod requests;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    Human,
    /// One JSON document.
    Json,
}

/// Something a command reports.
pub trait Report: Serialize {
    /// The human form.
    fn human(&self) -> String;
}

/// Writes reports in the chosen format.
#[derive(Debug)]
pub struct Printer {
    format: Format,
}

impl Printer {
    /// A printer for `format`.
    pub fn new(format: Format) -> Self {
        Self { format }
    }

    /// Print a report on stdout.
    pub fn report<T: Report + ?Sized>(&self, r: &T) {
        match self.format {
            Format::Human => print!("{}", r.human()),
            Format::Json => match serde_json::to_string_pretty(r) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("warrant: cannot encode report: {e}"),
            },
        }
    }

    /// A warning on stderr.
    pub fn warn(&self, msg: &str) {
        eprintln!("warrant: warning: {msg}");
    }

    /// A progress note on stderr (stdout stays one report, JSON or not).
    pub fn note(&self, msg: &str) {
        eprintln!("warrant: {msg}");
    }

    /// An error on stderr (and as JSON on stdout with `--output json`).
    pub fn error(&self, e: &OpError) {
        self.failure(&e.to_string(), e.exit_code());
    }

    /// A failure that is not an [`OpError`] (a usage error, a docker command that
    /// failed), reported the same way: on stderr, and as JSON on stdout with
    /// `--output json`.
    pub fn failure(&self, message: &str, exit_code: u8) {
        eprintln!("warrant: error: {message}");
        if self.format == Format::Json {
            let v = serde_json::json!({ "error": message, "exit_code": exit_code });
            println!("{v}");
        }
    }
}

impl Report for KeyInfo {
    fn human(&self) -> String {
        format!("{}\n", self.keyid)
    }
}

impl Report for Vec<KeyInfo> {
    fn human(&self) -> String {
        let mut s = String::new();
        if self.is_empty() {
            s.push_str("no keys (generate one with `warrant key generate`)\n");
        }
        for k in self {
            let _ = writeln!(s, "{}  {:<8} {}", k.keyid, k.keytype, k.name);
            if let Some(uri) = &k.pkcs11 {
                let _ = writeln!(s, "    on token: {uri}");
            }
        }
        s
    }
}

impl Report for InitOutcome {
    fn human(&self) -> String {
        let mut s = format!("initialized {}\n", self.location);
        for id in &self.root_keyids {
            let _ = writeln!(s, "  root key        {id}");
        }
        let _ = writeln!(s, "  root threshold  {}", self.root_threshold);
        let _ = writeln!(s, "  targets key     {}", self.targets_keyid);
        let _ = writeln!(s, "  publisher key   {}", self.publisher_keyid);
        let _ = writeln!(s, "  1.root.json     {}", self.root_sha256);
        s.push_str(
            "verifiers pin this root with --root 1.root.json (see `warrant export`) or --root-keyid\n",
        );
        s
    }
}

impl Report for SignOutcome {
    fn human(&self) -> String {
        let mut s = format!(
            "{} = {} ({} bytes, {})\n",
            self.reference, self.digest, self.size, self.media_type
        );
        s.push_str(&role_status(&self.status, &self.repository));
        s
    }
}

/// Several images signed in one publish (`warrant sign REF REF...`).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct SignedMany(pub Vec<SignOutcome>);

impl Report for SignedMany {
    fn human(&self) -> String {
        let mut s = String::new();
        for o in &self.0 {
            let _ = writeln!(s, "{} = {}", o.reference, o.digest);
        }
        // One publish per repository: its state once.
        let mut seen = Vec::new();
        for o in &self.0 {
            if !seen.contains(&&o.repository) {
                seen.push(&o.repository);
                s.push_str(&role_status(&o.status, &o.repository));
            }
        }
        s
    }
}

/// One line per role state, saying what happens next.
pub fn role_status(st: &crate::ops::edit::RoleStatus, repo: &str) -> String {
    let missing: Vec<&str> = st
        .missing
        .iter()
        .map(|k| crate::tuf::verify::short_id(&k.0))
        .collect();
    match st.state {
        "unchanged" => format!(
            "unchanged: role {} v{} already signs this digest; nothing published\n",
            st.role, st.version
        ),
        "published" => format!(
            "published: role {} v{} ({} of {} signatures)\n",
            st.role, st.version, st.signed, st.threshold
        ),
        "ready" => format!(
            "ready: role {} v{} has its {} signatures; a holder of the publisher key must run `warrant refresh {repo}` to publish it\n",
            st.role, st.version, st.threshold
        ),
        "waiting" => format!(
            "waiting: role {} v{} has its {} signatures; it is published together with the roles it waits for once their new versions are signed (see `warrant pending {repo}`)\n",
            st.role, st.version, st.threshold
        ),
        _ => format!(
            "pending: role {} v{} has {} of {} signatures; still needed from {} more of: {} (`warrant approve {repo} --role {}`)\n",
            st.role,
            st.version,
            st.signed,
            st.threshold,
            st.threshold.saturating_sub(st.signed as u64),
            missing.join(", "),
            st.role
        ),
    }
}

impl Report for Verdict {
    fn human(&self) -> String {
        let mut s = format!(
            "trusted: {}\n  target {:?} signed by role {}, metadata valid until {}\n",
            self.verified,
            self.target,
            self.role,
            self.expires.format("%Y-%m-%dT%H:%M:%SZ")
        );
        if let Some(index) = &self.via_index {
            s.push_str(&format!(
                "  a platform manifest listed by the signed multi-platform index {index}\n"
            ));
        }
        s
    }
}

impl Report for Inspection {
    fn human(&self) -> String {
        let short = |k: &crate::crypto::KeyId| crate::tuf::verify::short_id(&k.0).to_owned();
        let mut s = format!("Signed tags in {}:\n", self.location);
        if self.targets.is_empty() {
            s.push_str("  (none)\n");
        } else {
            let _ = writeln!(s, "  {:<24} {:<71} SIGNERS", "TAG", "DIGEST");
        }
        for t in &self.targets {
            let _ = writeln!(
                s,
                "  {:<24} {:<71} {}",
                t.name,
                t.digest,
                t.signed_by_roles.join(", ")
            );
        }
        s.push_str("\nRoles:\n");
        let _ = writeln!(
            s,
            "  {:<14} {:<10} {:<6} {:<21} {:<10} {:<14} KEYS",
            "ROLE", "DELEGATOR", "VER", "EXPIRES", "THRESHOLD", "PATHS",
        );
        for r in &self.roles {
            let keys: Vec<String> = r
                .keyids
                .iter()
                .zip(&r.key_names)
                .map(|(k, n)| match n {
                    Some(n) => format!("{n} ({})", short(k)),
                    None => short(k),
                })
                .collect();
            let _ = writeln!(
                s,
                "  {:<14} {:<10} v{:<5} {:<21} {:<10} {:<14} {}",
                r.name,
                r.delegator,
                r.version,
                r.expires.format("%Y-%m-%dT%H:%M:%SZ"),
                format!("{} of {}", r.threshold, r.keyids.len()),
                r.paths
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |p| p.join(",")),
                keys.join(", ")
            );
        }
        if !self.pending.is_empty() {
            s.push_str("\nPending (not trusted until approved):\n");
        }
        for p in &self.pending {
            if let Some(problem) = &p.problem {
                let _ = writeln!(s, "  {}: cannot be reviewed: {problem}", p.role);
                continue;
            }
            let awaiting: Vec<String> = p
                .awaiting
                .iter()
                .zip(&p.awaiting_names)
                .map(|(k, n)| match n {
                    Some(n) => format!("{n} ({})", short(k)),
                    None => short(k),
                })
                .collect();
            let _ = writeln!(
                s,
                "  {} v{}: {} of {} signed; can approve: {}",
                p.role,
                p.version,
                p.signed_by.len(),
                p.threshold,
                if awaiting.is_empty() {
                    "-".to_owned()
                } else {
                    awaiting.join(", ")
                }
            );
        }
        s
    }
}

impl Report for ExportOutcome {
    fn human(&self) -> String {
        let how = if self.verified {
            "verified, exported"
        } else {
            "exported (unverified)"
        };
        let mut s = format!("{how} {} to {}\n", self.location, self.dir.display());
        for f in &self.files {
            let _ = writeln!(s, "  {f}");
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(
                s,
                "  ({} older version(s) the verified snapshot no longer names left out)",
                self.skipped.len()
            );
        }
        s
    }
}

/// A report about a repository (the name is for the human form only).
#[derive(Serialize)]
pub struct InRepo<'a, T> {
    /// The report.
    #[serde(flatten)]
    pub value: &'a T,
    /// The repository.
    #[serde(skip)]
    pub repo: &'a str,
}

impl Report for InRepo<'_, crate::ops::edit::CommitOutcome> {
    fn human(&self) -> String {
        let (c, repo) = (self.value, self.repo);
        let mut s = String::new();
        for r in &c.roles {
            s.push_str(&role_status(r, repo));
        }
        if c.snapshot_updated {
            s.push_str("snapshot and timestamp re-signed\n");
        }
        if s.is_empty() {
            s.push_str("nothing to publish\n");
        }
        s
    }
}

impl Report for Vec<crate::ops::delegation::RoleView> {
    fn human(&self) -> String {
        if self.is_empty() {
            return "no delegated roles (add one with `warrant delegation add`)\n".into();
        }
        let mut s = String::new();
        for r in self {
            let _ = writeln!(
                s,
                "{:<16} from {:<12} v{:<4} {} of {} keys  paths {:?}{}  {} targets",
                r.role,
                r.delegator,
                r.version,
                r.threshold,
                r.keyids.len(),
                r.paths,
                if r.terminating { " terminating" } else { "" },
                r.targets
            );
        }
        s
    }
}

fn pending_text(p: &crate::ops::approve::PendingView) -> String {
    let mut s = format!(
        "{} v{}: {} of {} signatures\n",
        p.role,
        p.version,
        p.signed.len(),
        p.threshold
    );
    for c in &p.changes {
        let _ = writeln!(
            s,
            "  {:<8} {:<24} {} -> {}",
            c.change,
            c.target,
            c.before.as_deref().unwrap_or("-"),
            c.after.as_deref().unwrap_or("-")
        );
    }
    s
}

impl Report for Vec<crate::ops::approve::PendingView> {
    fn human(&self) -> String {
        if self.is_empty() {
            return "nothing pending\n".into();
        }
        self.iter().map(pending_text).collect()
    }
}

impl Report for InRepo<'_, crate::ops::renew::RenewOutcome> {
    fn human(&self) -> String {
        let (r, repo) = (self.value, self.repo);
        let mut s = String::new();
        if let Some(v) = r.root_version {
            s.push_str(&format!(
                "published: root v{v} (same keys, fresh expiry); verifiers follow it on their next update\n"
            ));
        }
        if let Some(c) = &r.commit {
            s.push_str(&InRepo { value: c, repo }.human());
        }
        s
    }
}

impl Report for InRepo<'_, crate::ops::approve::ApproveOutcome> {
    fn human(&self) -> String {
        let (a, repo) = (self.value, self.repo);
        let mut s = format!("reviewed {}", pending_text(&a.reviewed));
        s.push_str(
            &InRepo {
                value: &a.commit,
                repo,
            }
            .human(),
        );
        s
    }
}

impl Report for crate::ops::sign::UnsignOutcome {
    fn human(&self) -> String {
        format!(
            "removed target {:?}\n{}",
            self.target,
            role_status(&self.status, &self.repository)
        )
    }
}

impl Report for crate::ops::status::Status {
    fn human(&self) -> String {
        let mut s = format!("{}\n", self.location);
        for r in &self.roles {
            let _ = writeln!(
                s,
                "  {:<16} v{:<5} expires {}  {}{}",
                r.role,
                r.version,
                r.expires.format("%Y-%m-%dT%H:%M:%SZ"),
                r.state,
                if r.pending { " (pending)" } else { "" }
            );
        }
        match &self.verification_error {
            None => s.push_str("verifies: yes\n"),
            Some(e) => {
                let _ = writeln!(s, "verifies: no: {e}");
            }
        }
        s
    }
}

impl Report for InRepo<'_, crate::ops::rotate::RotateOutcome> {
    fn human(&self) -> String {
        let r = self.value;
        let ids: Vec<&str> = r
            .keyids
            .iter()
            .map(|k| crate::tuf::verify::short_id(&k.0))
            .collect();
        let mut s = format!("{}: {} of keys {}\n", r.role, r.threshold, ids.join(", "));
        if let Some(v) = r.root_version {
            let _ = writeln!(
                s,
                "published root v{v}, signed by the root keys held here: a threshold of \
                 the old root keys and of the new"
            );
        }
        if let Some(c) = &r.commit {
            s.push_str(
                &InRepo {
                    value: c,
                    repo: self.repo,
                }
                .human(),
            );
        }
        s
    }
}

impl Report for InRepo<'_, crate::ops::rotate::RevokeOutcome> {
    fn human(&self) -> String {
        let mut s = format!("revoked {}\n", self.value.keyid);
        for r in &self.value.rotations {
            s.push_str(
                &InRepo {
                    value: r,
                    repo: self.repo,
                }
                .human(),
            );
        }
        s
    }
}
