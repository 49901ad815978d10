//! The server's RSS and open file descriptors over the soak, and the flatness
//! check. Open fds include the load generator's connections still waiting for an
//! answer (a registry outage makes answers slower, so more of them wait at
//! once); those are counted on the client side at the same moment and taken
//! off, so what is compared is what the server holds for itself.

use std::time::Duration;

/// One sample.
pub struct Sample {
    pub at: Duration,
    pub rss_kib: u64,
    pub fds: usize,
    /// Reviews sent and not yet answered at that moment.
    pub in_flight: usize,
    pub registry_up: bool,
}

impl Sample {
    /// Open fds less one client connection per review in flight.
    pub fn own_fds(&self) -> usize {
        self.fds.saturating_sub(self.in_flight)
    }
}

/// RSS (KiB) and open file descriptors of `pid`.
pub fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

/// Growth beyond RSS +50% or own fds +20 at any sample, over the first sample
/// taken at or after `warm_up` with the registry in the same state (up or down:
/// while it is down, verifications retrying against it hold their own runtime
/// and sockets, a bounded number that comes back down once it is up): `None`
/// when flat.
pub fn growth(samples: &[Sample], warm_up: Duration) -> Option<String> {
    [true, false].into_iter().find_map(|up| {
        let same: Vec<&Sample> = samples.iter().filter(|x| x.registry_up == up).collect();
        let base = same.iter().find(|x| x.at >= warm_up).or(same.last())?;
        same.iter().filter(|x| x.at > base.at).find_map(|x| {
            if x.rss_kib * 2 > base.rss_kib * 3 {
                Some(format!(
                    "RSS grew from {} KiB at {:?} to {} KiB at {:?}",
                    base.rss_kib, base.at, x.rss_kib, x.at
                ))
            } else if x.own_fds() > base.own_fds() + 20 {
                Some(format!(
                    "open fds (less reviews in flight) grew from {} at {:?} to {} at {:?}",
                    base.own_fds(),
                    base.at,
                    x.own_fds(),
                    x.at
                ))
            } else {
                None
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at: u64, rss_kib: u64, fds: usize, in_flight: usize) -> Sample {
        Sample {
            at: Duration::from_secs(at),
            rss_kib,
            fds,
            in_flight,
            registry_up: true,
        }
    }

    fn down(mut x: Sample) -> Sample {
        x.registry_up = false;
        x
    }

    #[test]
    fn growth_after_the_warm_up_is_caught_and_waiting_clients_are_not_growth() {
        let warm = Duration::from_secs(60);
        // Growth during the warm-up does not count; waiting clients do not either.
        let ok = [
            s(30, 10_000, 10, 0),
            s(90, 20_000, 12, 0),
            s(150, 25_000, 110, 95),
        ];
        assert_eq!(growth(&ok, warm), None);
        let leak = [s(90, 20_000, 12, 0), s(150, 20_000, 40, 5)];
        assert!(growth(&leak, warm).unwrap().contains("open fds"));
        let bloat = [s(90, 20_000, 12, 0), s(150, 31_000, 12, 0)];
        assert!(growth(&bloat, warm).unwrap().contains("RSS"));
        // Outages are compared with outages, and growth there is caught too.
        let outages = [
            s(90, 20_000, 12, 0),
            down(s(120, 20_000, 40, 10)),
            down(s(180, 20_000, 41, 9)),
        ];
        assert_eq!(growth(&outages, warm), None);
        let leak = [
            s(90, 20_000, 12, 0),
            down(s(120, 20_000, 40, 10)),
            down(s(180, 20_000, 70, 9)),
        ];
        assert!(growth(&leak, warm).unwrap().contains("open fds"));
    }
}
