//! What a correct answer is, given the registry's state while the request was
//! in flight and the server's answer cache.
//!
//! The server (src/admission/cache.rs) keeps a trusted answer for at most
//! `--recheck` seconds from the start of the verification that found it, and
//! serves it without asking the registry; "not trusted" answers for a few
//! seconds; failures (registry unreachable) not at all. A verification needs the
//! registry even for a digest reference (it HEADs `warrant.tuf`). Hence, for a
//! request sent at `s` and answered at `a`, with `g` the grace window (retry
//! pauses, the proxy's own switching time):
//!
//! * **Allowed, signed image**: correct iff the registry was up at some moment
//!   of `[s - recheck - g, a]`. A trusted answer is only ever found while the
//!   registry answers, and is served at most `recheck` after that; an allow while
//!   the registry has been gone for longer is a stale answer served past its
//!   bound: the "deny when it cannot verify" failure. This is the same bound the
//!   operator accepts for a tag moved while the registry is up, and it is safe
//!   for the digest reference a fortiori (its bytes cannot change). The patch
//!   must pin exactly the signed digest.
//! * **Allowed, unsigned or moved tag**: always wrong.
//! * **Denied as unverifiable** ("could not be verified … fail closed"): correct
//!   iff the registry was down at some moment of `[s - g, a]` (the flight that
//!   answered it failed against a registry that was gone). Denied so while the
//!   registry was up all along is the "allow when it can" failure.
//! * **Denied as not trusted**: correct for the unsigned and moved tags with their
//!   own reason ("no signed target", "the tag was moved"), never for a signed
//!   image.
//! * **No answer** (transport error, timeout, a status other than 200, a
//!   review whose uid is not the request's): unanswered, always a failure.

use std::time::{Duration, Instant};

use super::toggle::Timeline;

/// The images the soak sends, one per review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `team/app:v1`, signed.
    SignedTag,
    /// `team/app:v1@sha256:…`: what `/mutate` pins `v1` to (a re-admission).
    SignedDigest,
    /// `team/app:evil`, pushed, never signed.
    Unsigned,
    /// `team/app:moved`, signed, then the tag pointed at other bytes.
    Moved,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::SignedTag,
        Kind::SignedDigest,
        Kind::Unsigned,
        Kind::Moved,
    ];

    pub fn signed(self) -> bool {
        matches!(self, Kind::SignedTag | Kind::SignedDigest)
    }

    /// The words of its "not trusted" denial.
    fn untrusted_reason(self) -> Option<&'static str> {
        match self {
            Kind::Unsigned => Some("no signed target \"evil\""),
            Kind::Moved => Some("the tag was moved or the image replaced"),
            Kind::SignedTag | Kind::SignedDigest => None,
        }
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed; the image the patch pins it to (`None`: no patch).
    Allowed(Option<String>),
    /// Denied with this message.
    Denied(String),
    /// No usable answer: why.
    Unanswered(String),
}

/// One request of the soak.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: Kind,
    pub sent: Instant,
    pub answered: Instant,
    pub outcome: Outcome,
}

/// How a record was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    Wrong(String),
    Unanswered(String),
}

/// The rules above. `pinned` is what the patch must pin a signed image to
/// (`None`: no patch, the reference already carries its digest).
pub struct Judge<'a> {
    pub timeline: &'a Timeline,
    pub recheck: Duration,
    pub grace: Duration,
    pub pinned: &'a dyn Fn(Kind) -> Option<String>,
}

pub const FAIL_CLOSED: &str = "could not be verified";

impl Judge<'_> {
    pub fn judge(&self, r: &Record) -> Verdict {
        let back = |d: Duration| r.sent.checked_sub(d).unwrap_or(r.sent);
        match &r.outcome {
            Outcome::Unanswered(why) => Verdict::Unanswered(why.clone()),
            Outcome::Allowed(_) if !r.kind.signed() => {
                Verdict::Wrong(format!("{:?} allowed", r.kind))
            }
            Outcome::Allowed(pin) => {
                if *pin != (self.pinned)(r.kind) {
                    return Verdict::Wrong(format!("allowed but pinned to {pin:?}"));
                }
                if self
                    .timeline
                    .up_during(back(self.recheck + self.grace), r.answered)
                {
                    Verdict::Correct
                } else {
                    Verdict::Wrong(format!(
                        "{:?} allowed although the registry was down for more than \
                         recheck + grace before the request",
                        r.kind
                    ))
                }
            }
            Outcome::Denied(msg) if msg.contains(FAIL_CLOSED) => {
                if self.timeline.up_throughout(back(self.grace), r.answered) {
                    Verdict::Wrong(format!(
                        "{:?} denied as unverifiable while the registry was up: {msg}",
                        r.kind
                    ))
                } else {
                    Verdict::Correct
                }
            }
            Outcome::Denied(msg) => match r.kind.untrusted_reason() {
                Some(reason) if msg.contains(reason) => Verdict::Correct,
                _ => Verdict::Wrong(format!("{:?} denied: {msg}", r.kind)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// Up for [0, 10) s, down for [10, 20) s, up from 20 s.
    fn world() -> (Instant, Timeline) {
        let t0 = Instant::now();
        let timeline = Timeline {
            up: vec![(t0, Some(t0 + 10 * S)), (t0 + 20 * S, None)],
        };
        (t0, timeline)
    }

    fn judge_at(kind: Kind, at: u64, outcome: Outcome) -> Verdict {
        let (t0, timeline) = world();
        let pinned = |_: Kind| Some("pin".to_owned());
        let judge = Judge {
            timeline: &timeline,
            recheck: 3 * S,
            grace: S,
            pinned: &pinned,
        };
        judge.judge(&Record {
            kind,
            sent: t0 + S * at as u32,
            answered: t0 + S * at as u32 + Duration::from_millis(50),
            outcome,
        })
    }

    fn allowed() -> Outcome {
        Outcome::Allowed(Some("pin".into()))
    }

    fn unverifiable() -> Outcome {
        Outcome::Denied("image x: could not be verified, denied (fail closed): refused".into())
    }

    #[test]
    fn a_cached_allow_is_correct_within_recheck_of_the_outage_and_wrong_after() {
        assert_eq!(judge_at(Kind::SignedTag, 5, allowed()), Verdict::Correct);
        assert_eq!(
            judge_at(Kind::SignedDigest, 13, allowed()),
            Verdict::Correct
        );
        assert!(matches!(
            judge_at(Kind::SignedTag, 15, allowed()),
            Verdict::Wrong(_)
        ));
        assert!(matches!(
            judge_at(Kind::SignedTag, 5, Outcome::Allowed(Some("other".into()))),
            Verdict::Wrong(_)
        ));
    }

    #[test]
    fn unverifiable_is_correct_only_near_or_in_an_outage() {
        assert_eq!(
            judge_at(Kind::SignedTag, 15, unverifiable()),
            Verdict::Correct
        );
        assert_eq!(
            judge_at(Kind::SignedTag, 20, unverifiable()),
            Verdict::Correct
        );
        assert!(matches!(
            judge_at(Kind::SignedTag, 5, unverifiable()),
            Verdict::Wrong(_)
        ));
        assert!(matches!(
            judge_at(Kind::Unsigned, 25, unverifiable()),
            Verdict::Wrong(_)
        ));
    }

    #[test]
    fn untrusted_images_are_never_allowed_and_denied_for_their_own_reason() {
        for at in [5, 15, 25] {
            assert!(matches!(
                judge_at(Kind::Moved, at, allowed()),
                Verdict::Wrong(_)
            ));
        }
        let moved = Outcome::Denied("not trusted: the tag was moved or the image replaced".into());
        assert_eq!(judge_at(Kind::Moved, 15, moved.clone()), Verdict::Correct);
        assert!(matches!(
            judge_at(Kind::Unsigned, 5, moved.clone()),
            Verdict::Wrong(_)
        ));
        assert!(matches!(
            judge_at(Kind::SignedTag, 5, moved),
            Verdict::Wrong(_)
        ));
        assert!(matches!(
            judge_at(Kind::SignedTag, 5, Outcome::Unanswered("reset".into())),
            Verdict::Unanswered(_)
        ));
    }
}
