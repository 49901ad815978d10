//! Which delegated roles may sign a target path (spec §5.6.7.2, TAP 15).
//!
//! `paths` patterns match per path segment like python's `fnmatch.fnmatchcase`
//! (`*` and `?` never cross `/`, `[seq]`/`[!seq]` classes, case-sensitive), and a
//! pattern matches only paths with the same number of segments.

use sha2::{Digest as _, Sha256};

use super::metadata::{Delegations, SuccinctRoles};

/// `fnmatch.fnmatchcase` on one path segment (no `/` inside either).
fn segment_matches(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative glob with backtracking on the last `*`: linear-ish, no recursion, so a
    // hostile pattern cannot blow the stack.
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_matches(&pattern[p..], name[n]) {
                        if matched {
                            p += next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        // An unclosed `[` is a literal, as in fnmatch.
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Match `c` against the class at the start of `pat` (`[...]`). Returns whether it
/// matched and the class length, or `None` when the class is not closed.
fn class_matches(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = pat.get(i).is_some_and(|&b| b == b'!');
    if negate {
        i += 1;
    }
    let start = i;
    let mut matched = false;
    while i < pat.len() {
        if pat[i] == b']' && i > start {
            return Some((matched != negate, i + 1));
        }
        if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
            if pat[i] <= c && c <= pat[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if pat[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// Does `pattern` match `path`, segment by segment?
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let pats: Vec<&str> = pattern.split('/').collect();
    let parts: Vec<&str> = path.split('/').collect();
    pats.len() == parts.len()
        && pats
            .iter()
            .zip(&parts)
            .all(|(p, s)| segment_matches(p.as_bytes(), s.as_bytes()))
}

/// Hex sha256 of a target path, for `path_hash_prefixes` and hash bins.
pub fn path_hash(path: &str) -> [u8; 32] {
    Sha256::digest(path.as_bytes()).into()
}

/// The hash bin of `path` under succinct delegation `s` (TAP 15).
pub fn bin_for(s: &SuccinctRoles, path: &str) -> String {
    let h = path_hash(path);
    let first = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let bits = s.bit_length.clamp(1, 32);
    let bin = if bits == 32 {
        first
    } else {
        first >> (32 - bits)
    };
    bin_name(s, bin)
}

fn suffix_len(bits: u32) -> usize {
    let bins_minus_one: u64 = (1u64 << bits) - 1;
    format!("{bins_minus_one:x}").len()
}

/// `{name_prefix}-{bin:0Nx}` with N the hex width of the last bin.
pub fn bin_name(s: &SuccinctRoles, bin: u32) -> String {
    let width = suffix_len(s.bit_length.clamp(1, 32));
    format!("{}-{:0width$x}", s.name_prefix, bin)
}

/// True when `role` is one of the bins of `s`.
pub fn is_bin_name(s: &SuccinctRoles, role: &str) -> bool {
    if !(1..=32).contains(&s.bit_length) {
        return false;
    }
    let Some(suffix) = role
        .strip_prefix(s.name_prefix.as_str())
        .and_then(|r| r.strip_prefix('-'))
    else {
        return false;
    };
    suffix.len() == suffix_len(s.bit_length)
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && u64::from_str_radix(suffix, 16).is_ok_and(|n| n < (1u64 << s.bit_length))
}

/// The delegated roles responsible for `path`, in search order, each with its
/// `terminating` flag. Succinct bins are terminating.
pub fn roles_for_target(d: &Delegations, path: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    if let Some(roles) = &d.roles {
        let mut hash_hex: Option<String> = None;
        for r in roles {
            let by_path = r
                .paths
                .as_ref()
                .is_some_and(|ps| ps.iter().any(|p| path_matches(p, path)));
            let by_hash = r.path_hash_prefixes.as_ref().is_some_and(|ps| {
                let h = hash_hex.get_or_insert_with(|| hex::encode(path_hash(path)));
                ps.iter().any(|p| h.starts_with(p.as_str()))
            });
            if by_path || by_hash {
                out.push((r.name.clone(), r.terminating));
            }
        }
    } else if let Some(s) = &d.succinct_roles
        && (1..=32).contains(&s.bit_length)
    {
        out.push((bin_for(s, path), true));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_fnmatchcase_per_segment() {
        let yes = [
            ("*", "v1"),
            ("v*", "v1.2.3"),
            ("release/*", "release/v1"),
            ("*/v?", "a/v1"),
            ("[abc]x", "bx"),
            ("[!abc]x", "dx"),
            ("[a-c]*", "c-release"),
            ("*.tgz", "a.tgz"),
            ("", ""),
            ("a*b*c", "aXbYc"),
        ];
        let no = [
            ("*", "a/b"), // `*` never crosses `/`
            ("release/*", "release/a/b"),
            ("V*", "v1"), // case-sensitive
            ("[abc]x", "dx"),
            ("[!abc]x", "ax"),
            ("v?", "v10"),
            ("*/v1", "v1"),
        ];
        for (p, s) in yes {
            assert!(path_matches(p, s), "{p} should match {s}");
        }
        for (p, s) in no {
            assert!(!path_matches(p, s), "{p} should not match {s}");
        }
    }

    #[test]
    fn hostile_patterns_terminate() {
        let p = "*a".repeat(200);
        assert!(!path_matches(&p, &"a".repeat(199)));
        assert!(!path_matches("[", "a"));
        assert!(path_matches("[", "["));
        assert!(!path_matches("[!", "a"));
    }

    #[test]
    fn succinct_bins_follow_tap15() {
        let s = SuccinctRoles {
            keyids: vec![],
            threshold: std::num::NonZeroU64::MIN,
            bit_length: 8,
            name_prefix: "bin".into(),
            unrecognized: Default::default(),
        };
        // python-tuf: SuccinctRoles(.., 8, "bin").get_role_for_target("a") == "bin-ca"
        // (sha256("a") = ca978112...).
        assert_eq!(bin_for(&s, "a"), "bin-ca");
        assert!(is_bin_name(&s, "bin-ca"));
        assert!(!is_bin_name(&s, "bin-ca0"));
        assert!(!is_bin_name(&s, "bin-CA"));
        let s3 = SuccinctRoles { bit_length: 3, ..s };
        assert_eq!(bin_name(&s3, 7), "bin-7");
        assert!(!is_bin_name(&s3, "bin-8"));
    }
}
