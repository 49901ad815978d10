//! The command's budget of registry time (issue #11 item 8: `--timeout` bounds one
//! attempt, not the command).
//!
//! The budget counts the time the store spends talking to the registry, not wall
//! time since the command started: a `sign` that stops for a passphrase prompt
//! between its read and its publish must not run out while the user types. What a
//! hostile or broken registry controls (slow answers, retries, token round trips)
//! all happens inside store calls, so it is all counted.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Below this much time left, the deadline counts as passed (a request cannot
/// usefully start, and timers firing a hair early must not read as "time left").
const SLACK: Duration = Duration::from_millis(5);

/// How much registry time a store may still spend.
#[derive(Debug)]
pub(super) struct Deadline {
    budget: Duration,
    spent: Mutex<Duration>,
    /// When the store call now running must end by.
    until: Mutex<Option<Instant>>,
}

impl Deadline {
    pub(super) fn new(budget: Duration) -> Self {
        Self {
            budget,
            spent: Mutex::new(Duration::ZERO),
            until: Mutex::new(None),
        }
    }

    /// The whole budget (for messages).
    pub(super) fn budget(&self) -> Duration {
        self.budget
    }

    /// Start a store call: the time left of the budget, which also becomes the
    /// end of this call for [`Deadline::remaining`]. `None` once it is spent.
    pub(super) fn begin(&self) -> Option<Duration> {
        let spent = self.spent.lock().map(|g| *g).unwrap_or(self.budget);
        let left = self.budget.saturating_sub(spent);
        if left <= SLACK {
            return None;
        }
        if let Ok(mut until) = self.until.lock() {
            *until = Some(Instant::now() + left);
        }
        Some(left)
    }

    /// End a store call that started at `started`: its time is spent.
    pub(super) fn end(&self, started: Instant) {
        if let Ok(mut spent) = self.spent.lock() {
            *spent += started.elapsed();
        }
        if let Ok(mut until) = self.until.lock() {
            *until = None;
        }
    }

    /// Time left in the current store call (zero outside one, or once passed).
    pub(super) fn remaining(&self) -> Duration {
        let until = self.until.lock().ok().and_then(|g| *g);
        match until.map(|u| u.saturating_duration_since(Instant::now())) {
            Some(left) if left > SLACK => left,
            _ => Duration::ZERO,
        }
    }

    /// True when the current call has no time left.
    pub(super) fn passed(&self) -> bool {
        self.remaining().is_zero()
    }
}

/// `20 s`, `2.5 s`: a duration as a person reads it in an error message.
pub(super) fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_spent_in_calls_is_taken_from_the_budget() {
        let d = Deadline::new(Duration::from_millis(300));
        assert!(d.remaining().is_zero(), "no call running");
        let started = Instant::now();
        let left = d.begin().expect("budget left");
        assert!(left <= Duration::from_millis(300));
        assert!(!d.passed());
        d.end(started - Duration::from_millis(250));
        let left = d.begin().expect("some budget left");
        assert!(left <= Duration::from_millis(50), "{left:?}");
        d.end(started - Duration::from_millis(100));
        assert!(d.begin().is_none(), "budget spent");
        assert_eq!(seconds(Duration::from_secs(20)), "20 s");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5 s");
    }
}
