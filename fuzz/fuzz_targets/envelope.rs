//! Canonical JSON + envelope parse + signature threshold, then the trust state
//! machine in spec order. Input: up to four metadata files separated by `\0\0`
//! (root, timestamp, snapshot, targets), so seeds made from a real repository
//! reach the later steps with valid signatures and mutations explore each check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant::tuf::canonical::to_canonical;
use warrant::tuf::metadata::Root;
use warrant::tuf::trusted::TrustedSet;
use warrant::tuf::verify::{Authority, Untrusted};

fuzz_target!(|data: &[u8]| {
    let mut parts = split(data).into_iter();
    let Some(root) = parts.next() else { return };
    // The envelope of any file, its canonical form, and every role's threshold
    // against the keys it declares (self-signed root check, spec 5.3.4).
    if let Ok(u) = Untrusted::parse("root", root.to_vec()) {
        let _ = to_canonical(u.signed());
        if let Ok(r) = u.parse_unverified::<Root>() {
            for role in r.roles.values() {
                let _ = u.check(Authority {
                    keys: &r.keys,
                    keyids: &role.keyids,
                    threshold: role.threshold,
                });
            }
        }
        let _ = u.verify_self_signed_root(|_| Ok(()));
    }
    // "Now" before any fixture was made (TUF has no not-before), so expiry is never
    // the gate that stops the fuzzer short of the later checks.
    let now = chrono::DateTime::from_timestamp(946_684_800, 0).unwrap_or_default();
    let Ok(mut set) = TrustedSet::new(root.to_vec(), now) else {
        return;
    };
    let Some(ts) = parts.next() else { return };
    if set.update_timestamp(ts.to_vec()).is_err() {
        return;
    }
    let Some(snap) = parts.next() else { return };
    if set.update_snapshot(snap.to_vec(), false).is_err() {
        return;
    }
    if let Some(targets) = parts.next() {
        let _ = set.update_targets("targets", "root", targets.to_vec(), false);
    }
});

/// Split on `\0\0` (JSON never contains NUL bytes).
fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(2).position(|w| w == b"\0\0") {
        out.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    out.push(rest);
    out
}
