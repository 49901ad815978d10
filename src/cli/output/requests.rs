//! Reports of `warrant key request` and `warrant key requests`.

use std::fmt::Write as _;

use super::Report;
use crate::ops::request::{Cleared, PublishedRequest, Rejected, RequestList};

impl Report for Rejected {
    fn human(&self) -> String {
        let mut s = String::new();
        for id in &self.rejected {
            let _ = writeln!(s, "rejected key request {id} of {}", self.repository);
        }
        s
    }
}

impl Report for Cleared {
    fn human(&self) -> String {
        match &self.foreign {
            Some(what) => format!(
                "reset the key requests of {}: the tag held something else ({what})\n",
                self.repository
            ),
            None => format!(
                "cleared the key requests of {}: {} dropped\n",
                self.repository, self.dropped
            ),
        }
    }
}

/// `3d`, `5h`, `12m`, `40s`: how long ago, roughly.
fn age(seconds: i64) -> String {
    match seconds {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{}s", s.max(0)),
    }
}

impl Report for PublishedRequest {
    fn human(&self) -> String {
        let v = &self.view;
        let none = String::new();
        let mut s = format!("key request {} for {}\n", v.id, self.repository);
        let _ = writeln!(s, "  role         {}", v.role.as_ref().unwrap_or(&none));
        if let Some(k) = &v.keyid {
            let _ = writeln!(s, "  key          {k}");
        }
        let _ = writeln!(
            s,
            "  fingerprint  {}",
            v.fingerprint.as_ref().unwrap_or(&none)
        );
        let _ = writeln!(
            s,
            "  words        {}",
            v.fingerprint_words.as_ref().unwrap_or(&none)
        );
        if let Some(e) = &v.expires {
            let _ = writeln!(s, "  expires      {}", e.format("%Y-%m-%d %H:%M UTC"));
        }
        let role = v.role.as_deref().unwrap_or_default();
        let (repo, id) = (&self.repository, &v.id);
        let _ = writeln!(
            s,
            "read the fingerprint (or the six words) to the administrator over another \
             channel (phone, video, in person); they add your key with\n  \
             if {role} is a new role:      warrant delegation add {repo} {role} \
             --request {id} --fingerprint '<what you read them>'\n  \
             if {role} already exists:     warrant key rotate {repo} --role {role} \
             --add-request {id} --fingerprint '<what you read them>'"
        );
        s
    }
}

impl Report for RequestList {
    fn human(&self) -> String {
        let mut s = String::new();
        let (valid, invalid): (Vec<_>, Vec<_>) = self.requests.iter().partition(|r| r.valid);
        if valid.is_empty() {
            s.push_str("no open key requests\n");
        } else {
            let _ = writeln!(
                s,
                "{:<12}  {:<16} {:>4}  {:<19}  NOTE",
                "ID", "ROLE", "AGE", "FINGERPRINT"
            );
        }
        for r in &valid {
            let _ = writeln!(
                s,
                "{:<12}  {:<16} {:>4}  {:<19}  {}",
                r.id,
                r.role.as_deref().unwrap_or_default(),
                age(r.age_seconds.unwrap_or_default()),
                r.fingerprint.as_deref().unwrap_or_default(),
                r.note.as_deref().unwrap_or_default(),
            );
            let _ = writeln!(
                s,
                "{:<12}  words: {}",
                "",
                r.fingerprint_words.as_deref().unwrap_or_default()
            );
        }
        if !invalid.is_empty() {
            s.push_str("invalid (never offered; reject with --reject ID):\n");
            for r in &invalid {
                let _ = writeln!(
                    s,
                    "  {:<12}  {}",
                    r.id,
                    r.reason.as_deref().unwrap_or_default()
                );
            }
        }
        s
    }
}
