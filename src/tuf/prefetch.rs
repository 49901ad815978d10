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
