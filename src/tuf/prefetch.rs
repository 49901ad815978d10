//! What a refresh is about to read, decided next to the workflow that reads it, so a
//! transport that can download several files at once (an OCI registry) fetches them
//! in one concurrent round instead of one round trip each.
//!
//! Only what spec §5's workflow needs, never "everything listed": a repository may
//! list many old versions of its roles (issue #11 item 6: some 17,000 extra
//! `N.targets.json` fit in a 4 MiB `warrant.tuf` manifest). Anything else the update
//! wants it fetches on demand, capped as usual.

use crate::digest::Sha256Digest;

use super::client::Limits;
use super::trusted::TrustedSet;

/// The files of `listed` (published file names with their sha256) that a refresh
/// starting from `trusted` will read and the local state does not already hold
/// (`held(role)` is the sha256 of the role's trusted bytes there), each with
/// its download cap:
///
/// * the newer roots the update may follow (5.3.3, at most `max_root_rotations`
///   past the trusted root);
/// * `timestamp.json` (5.4);
/// * of snapshot (5.5) and top-level targets (5.6) only the highest-numbered version
///   listed: the one a consistent repository's timestamp and snapshot name.
pub fn wanted<'a>(
    trusted: &TrustedSet,
    held: impl Fn(&str) -> Option<Sha256Digest>,
    listed: impl IntoIterator<Item = (&'a str, Sha256Digest)>,
    limits: &Limits,
) -> Vec<(&'a str, u64)> {
    let cached = held;
    let root_version = trusted.root().version.get();
    let newest_root = root_version.saturating_add(limits.max_root_rotations);
    let mut out = Vec::new();
    let mut newest: [Option<(u64, &'a str, Sha256Digest)>; 2] = [None, None];
    for (name, digest) in listed {
        if name == "timestamp.json" {
            if cached("timestamp") != Some(digest) {
                out.push((name, limits.timestamp));
            }
            continue;
        }
        let Some((version, role)) = name
            .split_once('.')
            .and_then(|(v, rest)| Some((v.parse::<u64>().ok()?, rest)))
        else {
            continue;
        };
        let slot = match role {
            "root.json" => {
                if version > root_version && version <= newest_root {
                    out.push((name, limits.root));
                }
                continue;
            }
            "snapshot.json" => 0,
            "targets.json" => 1,
            _ => continue,
        };
        if newest[slot].is_none_or(|(v, _, _)| version > v) {
            newest[slot] = Some((version, name, digest));
        }
    }
    for ((role, cap), newest) in [("snapshot", limits.snapshot), ("targets", limits.targets)]
        .into_iter()
        .zip(newest)
    {
        if let Some((_, name, digest)) = newest
            && cached(role) != Some(digest)
        {
            out.push((name, cap));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::num::NonZeroU64;

    use super::*;
    use crate::crypto::{KeyType, SecretKey, Signer as _};
    use crate::tuf::editor::{self, RoleSpec};

    /// A trusted set whose root is at `version`.
    fn trusted_at(version: u64) -> TrustedSet {
        let key = SecretKey::generate(KeyType::Ed25519).unwrap();
        let spec = RoleSpec {
            keys: vec![key.public_key().clone()],
            threshold: NonZeroU64::MIN,
        };
        let now = chrono::Utc::now();
        let mut root =
            editor::new_root(&spec, &spec, &spec, &spec, now + chrono::Duration::days(1));
        root.version = NonZeroU64::new(version).unwrap();
        let bytes = editor::sign(&root, &[&key]).unwrap();
        TrustedSet::new(bytes, now).unwrap()
    }

    fn d(n: u8) -> Sha256Digest {
        Sha256Digest::of(&[n])
    }

    #[test]
    fn newer_roots_within_the_rotation_cap_and_only_the_newest_snapshot_and_targets() {
        let limits = Limits {
            max_root_rotations: 2,
            ..Limits::default()
        };
        let listed = [
            ("1.root.json", d(1)),
            ("3.root.json", d(3)),
            ("4.root.json", d(4)),
            ("5.root.json", d(5)),
            ("6.root.json", d(6)),
            ("timestamp.json", d(10)),
            ("7.snapshot.json", d(17)),
            ("8.snapshot.json", d(18)),
            ("2.targets.json", d(22)),
            ("9.targets.json", d(29)),
            ("4.qa.json", d(34)),
        ];
        let got = wanted(&trusted_at(3), |_| None, listed, &limits);
        let names: Vec<&str> = got.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "4.root.json",
                "5.root.json",
                "timestamp.json",
                "8.snapshot.json",
                "9.targets.json"
            ]
        );
        assert_eq!(got[0].1, limits.root);
        assert_eq!(got[2].1, limits.timestamp);
    }

    #[test]
    fn files_the_local_state_holds_are_not_wanted() {
        let listed = [
            ("timestamp.json", d(10)),
            ("8.snapshot.json", d(18)),
            ("9.targets.json", d(29)),
        ];
        let held = |role: &str| match role {
            "timestamp" => Some(d(10)),
            "targets" => Some(d(29)),
            _ => None,
        };
        let got = wanted(&trusted_at(1), held, listed, &Limits::default());
        assert_eq!(got, [("8.snapshot.json", Limits::default().snapshot)]);
    }
}
