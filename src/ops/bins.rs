//! Hash bins on the signing side (issue #13 item 2, TAP 15 succinct delegations).
//!
//! A repository starts flat: tags are targets of the top-level `targets` role.
//! Under the default policy (`init --bins auto`) the sign that takes it past
//! [`AUTO_THRESHOLD`] targets moves it to [`AUTO_BITS`]-bit hash bins in that same
//! publish: a new top-level version that lists no targets but delegates every path
//! to `bins-000` … `bins-1ff` by the sha256 of its name, and the first version of
//! every bin with the targets that hash into it. Verifiers notice nothing but a new
//! targets version. From then on a sign rewrites one bin (plus snapshot and
//! timestamp): bytes uploaded per sign are O(bin), not O(N), and a verify reads one
//! small bin. `--bins N` bins at the first sign whatever the count; `--bins none`
//! never bins.
//!
//! The bins are signed by the top-level targets keys (same ids and threshold as
//! root gives `targets`), so whoever signs tags today signs bins tomorrow. A top-level
//! role that already delegates to named roles is not re-binned (TUF delegations
//! hold either named roles or succinct bins, not both), and delegated roles are not
//! binned: they are signed by people through `approve`, one pending version per
//! role, and splitting them would multiply what each holder must approve.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use serde_json::Value;

use crate::tuf::delegation::{bin_for, bin_name};
use crate::tuf::metadata::{Delegations, Root, SuccinctRoles, TargetFile, Targets};

use super::OpError;

/// A flat repository moves to bins when a sign would leave it with more targets.
pub const AUTO_THRESHOLD: usize = 1024;
/// Bits of the bins `auto` creates: 512 bins, about 200 targets each at 100,000.
pub const AUTO_BITS: u32 = 9;
/// The name prefix of bins warrant creates.
pub const BIN_PREFIX: &str = "bins";
/// Where the policy is recorded: a field of the top-level targets role (signed, and
/// kept by every TUF implementation as an unrecognized field).
pub const POLICY_FIELD: &str = "x-warrant-bins";

/// `init --bins`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BinsPolicy {
    /// Flat until more than [`AUTO_THRESHOLD`] targets, then [`AUTO_BITS`] bits.
    #[default]
    Auto,
    /// Never bin.
    None,
    /// Bin at the first sign, with this many bits (2^bits bins).
    Bits(u32),
}

impl std::str::FromStr for BinsPolicy {
    type Err = OpError;
    fn from_str(s: &str) -> Result<Self, OpError> {
        match s {
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::None),
            n => {
                let bad = || OpError::InvalidValue {
                    argument: "--bins",
                    value: n.to_owned(),
                    expected: "auto, none, or a power of two from 2 to 16384",
                };
                let n: u32 = n.parse().map_err(|_| bad())?;
                if !n.is_power_of_two() || !(2..=16384).contains(&n) {
                    return Err(bad());
                }
                Ok(Self::Bits(n.trailing_zeros()))
            }
        }
    }
}

impl BinsPolicy {
    /// The value recorded in the top-level targets role (`None` for the default).
    pub fn to_field(self) -> Option<Value> {
        match self {
            Self::Auto => None,
            Self::None => Some(Value::from("none")),
            Self::Bits(b) => Some(Value::from(1u64 << b)),
        }
    }

    /// The policy a top-level targets role records (the default when absent or
    /// unreadable).
    pub fn of(top: &Targets) -> Self {
        match top.unrecognized.get(POLICY_FIELD) {
            Some(Value::String(s)) if s == "none" => Self::None,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .and_then(|n| n.to_string().parse().ok())
                .unwrap_or_default(),
            _ => Self::Auto,
        }
    }

    /// The bits to bin a flat role holding `count` targets after this sign with, or
    /// `None` to stay flat.
    pub fn bits_for(self, top: &Targets, count: usize) -> Option<u32> {
        let named = top
            .delegations
            .as_ref()
            .is_some_and(|d| d.roles.as_ref().is_some_and(|r| !r.is_empty()));
        if named {
            return None;
        }
        match self {
            Self::Auto if count > AUTO_THRESHOLD => Some(AUTO_BITS),
            Self::Bits(b) => Some(b),
            _ => None,
        }
    }
}

/// The succinct delegation of a top-level role, if it is binned.
pub fn succinct(top: &Targets) -> Option<&SuccinctRoles> {
    top.delegations.as_ref()?.succinct_roles.as_ref()
}

/// The role `target` goes into: its bin when `top` is binned, else `role`.
pub fn role_for(top: Option<&SuccinctRoles>, role: &str, target: &str) -> String {
    match top {
        Some(s) if role == "targets" => bin_for(s, target),
        _ => role.to_owned(),
    }
}

/// Re-home the targets of `top` (already holding the new ones) into `bits`-bit
/// bins: returns the new top-level role (no targets, a succinct delegation to the
/// bins with root's targets keys and threshold) and every bin, version
/// `bin_version`, expiring at `expires`.
pub fn rebin(
    root: &Root,
    top: &Targets,
    bits: u32,
    bin_version: NonZeroU64,
) -> Result<(Targets, BTreeMap<String, Targets>), OpError> {
    let spec = root
        .roles
        .get("targets")
        .ok_or_else(|| OpError::NotLoaded {
            role: "targets".into(),
        })?;
    let keys = spec
        .keyids
        .iter()
        .filter_map(|id| Some((id.clone(), root.keys.get(id)?.clone())))
        .collect();
    let s = SuccinctRoles {
        keyids: spec.keyids.clone(),
        threshold: spec.threshold,
        bit_length: bits,
        name_prefix: BIN_PREFIX.into(),
        unrecognized: Default::default(),
    };
    let mut bins: BTreeMap<String, Targets> = (0..(1u32 << bits))
        .map(|b| {
            let mut t = Targets::empty(bin_version, top.expires);
            t.version = bin_version;
            (bin_name(&s, b), t)
        })
        .collect();
    for (name, file) in &top.targets {
        let bin = bin_for(&s, name);
        if let Some(t) = bins.get_mut(&bin) {
            t.targets.insert(name.clone(), file.clone());
        }
    }
    let mut new_top = top.clone();
    new_top.targets = BTreeMap::<String, TargetFile>::new();
    new_top.delegations = Some(Delegations {
        keys,
        roles: None,
        succinct_roles: Some(s),
        unrecognized: Default::default(),
    });
    Ok((new_top, bins))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses_and_round_trips() {
        assert_eq!("auto".parse::<BinsPolicy>().ok(), Some(BinsPolicy::Auto));
        assert_eq!("none".parse::<BinsPolicy>().ok(), Some(BinsPolicy::None));
        assert_eq!("512".parse::<BinsPolicy>().ok(), Some(BinsPolicy::Bits(9)));
        for bad in ["0", "1", "3", "100", "32768", "-2", "x"] {
            assert!(bad.parse::<BinsPolicy>().is_err(), "{bad}");
        }
        let mut t = Targets::empty(NonZeroU64::MIN, chrono::Utc::now());
        for p in [BinsPolicy::Auto, BinsPolicy::None, BinsPolicy::Bits(4)] {
            t.unrecognized.clear();
            if let Some(v) = p.to_field() {
                t.unrecognized.insert(POLICY_FIELD.into(), v);
            }
            assert_eq!(BinsPolicy::of(&t), p);
        }
    }
}
