//! Who may hold a connection, and for how long.
//!
//! The server holds at most [`ConnectionLimits::max`] connections; beyond that,
//! clients wait in the listen backlog. Slow clients are the cheap attack on
//! that cap: a TCP connection that never finishes its TLS handshake, or trickles
//! a request's headers, costs the attacker nothing and holds a slot. So:
//!
//! * **per client address**, at most [`ConnectionLimits::per_ip`] connections
//!   (IPv6: per /64, which one host can fill); the next one is closed at once;
//! * a connection must finish its handshake and send a complete request head
//!   within [`ConnectionLimits::header_timeout`] (hyper applies the same timeout
//!   to every later request head, i.e. to idle keep-alive connections);
//! * **under pressure** (more than [`PRESSURE_PERCENT`] % of the cap open),
//!   every connection that is not being answered — in its handshake, sending
//!   headers, or idle between requests — is closed once it has been so for
//!   [`ConnectionLimits::pressure_timeout`]. A connection whose request is being
//!   answered is never cut; the API server reopens an idle one at the cost of
//!   a handshake.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::metrics::{Metrics, Shed};

/// Above this share of [`ConnectionLimits::max`] open, the server is under
/// pressure and sheds connections that are not being answered.
pub const PRESSURE_PERCENT: usize = 75;

/// Connection limits (`warrant serve admission --max-connections`,
/// `--max-connections-per-ip`, `--header-timeout-ms`, `--pressure-timeout-ms`).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max: usize,
    /// Most connections open at once from one client address (IPv6: one /64).
    /// The API server may open many connections under load, from one address
    /// per API server instance: keep it well above its concurrency.
    pub per_ip: usize,
    /// Time to finish the TLS handshake and send a complete request head; also
    /// the longest an idle keep-alive connection is kept.
    pub header_timeout: Duration,
    /// Under pressure, a connection not being answered is closed after this.
    pub pressure_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max: 1024,
            per_ip: 256,
            header_timeout: Duration::from_secs(5),
            pressure_timeout: Duration::from_secs(1),
        }
    }
}

/// Open connections, in total and by client address.
pub(crate) struct Tracker {
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
    pressure: watch::Sender<bool>,
    closed: Notify,
}

/// The key an address is counted under: IPv4 (also when mapped into IPv6) as
/// is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::V6(octets.into())
        }
        v4 => v4,
    }
}

impl Tracker {
    pub(crate) fn new(limits: ConnectionLimits, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            metrics,
            by_ip: Mutex::new(HashMap::new()),
            pressure: watch::channel(false).0,
            closed: Notify::new(),
        })
    }

    pub(crate) fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn by_ip(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Every update is a single step: the map is consistent even after a panic.
        self.by_ip.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Count a new connection from `ip`, or `None` when that address already
    /// holds its share (the caller closes the connection).
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let key = key(ip);
        let mut by_ip = self.by_ip();
        let n = by_ip.entry(key).or_default();
        if *n >= self.limits.per_ip {
            drop(by_ip);
            self.metrics.shed(Shed::PerIp);
            return None;
        }
        *n += 1;
        let open = self.metrics.connections_open.fetch_add(1, SeqCst) + 1;
        self.update_pressure(open);
        Some(Admitted {
            tracker: Arc::clone(self),
            key,
        })
    }

    fn update_pressure(&self, open: u64) {
        let threshold = self.limits.max * PRESSURE_PERCENT / 100;
        let under = usize::try_from(open).unwrap_or(usize::MAX) > threshold;
        self.pressure
            .send_if_modified(|p| std::mem::replace(p, under) != under);
    }

    /// Whether the server is under pressure, and its changes.
    pub(crate) fn pressure(&self) -> watch::Receiver<bool> {
        self.pressure.subscribe()
    }

    /// Wait until no connection is open.
    pub(crate) async fn drained(&self) {
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.metrics.connections_open.load(SeqCst) == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// One counted connection; dropping it uncounts it.
pub(crate) struct Admitted {
    tracker: Arc<Tracker>,
    key: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let t = &self.tracker;
        {
            let mut by_ip = t.by_ip();
            if let Some(n) = by_ip.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    by_ip.remove(&self.key);
                }
            }
        }
        let open = t.metrics.connections_open.fetch_sub(1, SeqCst) - 1;
        t.update_pressure(open);
        t.closed.notify_waiters();
    }
}

/// What one connection is doing: answering requests, or not (handshake,
/// headers, idle), since when.
pub(crate) struct Activity {
    in_flight: Mutex<(usize, Instant)>,
    served: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: Mutex::new((0, Instant::now())),
            served: AtomicBool::new(false),
        })
    }

    fn state(&self) -> MutexGuard<'_, (usize, Instant)> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A request's head arrived: the connection is busy until the guard drops.
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.state().0 += 1;
        self.served.store(true, Relaxed);
        Busy(Arc::clone(self))
    }
}

/// A request being answered.
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.0 = s.0.saturating_sub(1);
        if s.0 == 0 {
            s.1 = Instant::now();
        }
    }
}

/// Resolves when the connection should be closed: no complete request head
/// within the header timeout of connecting ([`Shed::Slow`]), or, under pressure,
/// nothing being answered for the pressure timeout ([`Shed::Pressure`]).
pub(crate) async fn shed_when(
    activity: &Activity,
    limits: &ConnectionLimits,
    mut pressure: watch::Receiver<bool>,
) -> Shed {
    // While a request is answered under pressure, look again this often: the
    // connection turns idle without telling anyone.
    let tick =
        (limits.pressure_timeout / 2).clamp(Duration::from_millis(20), Duration::from_secs(1));
    loop {
        let under = *pressure.borrow_and_update();
        let (busy, since) = {
            let s = activity.state();
            (s.0 > 0, s.1)
        };
        let served = activity.served.load(Relaxed);
        let now = Instant::now();
        let mut wake = None;
        if !busy && !served {
            let at = since + limits.header_timeout;
            if now >= at {
                return Shed::Slow;
            }
            wake = Some(at);
        }
        if under {
            let at = if busy {
                now + tick
            } else {
                since + limits.pressure_timeout
            };
            if !busy && now >= at {
                return Shed::Pressure;
            }
            wake = Some(wake.map_or(at, |w: Instant| w.min(at)));
        }
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            changed = pressure.changed() => {
                if changed.is_err() {
                    // The tracker is gone: so is the server; let the timers decide.
                    pressure = watch::channel(under).1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tracker(max: usize, per_ip: usize) -> Arc<Tracker> {
        let limits = ConnectionLimits {
            max,
            per_ip,
            ..ConnectionLimits::default()
        };
        Tracker::new(limits, Arc::new(Metrics::default()))
    }

    #[test]
    fn each_address_gets_its_share_and_ipv6_counts_by_slash_64() {
        let t = tracker(100, 2);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a1 = t.admit(ip("10.0.0.1")).unwrap();
        let _a2 = t.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert!(t.admit(ip("10.0.0.1")).is_none(), "third from one address");
        assert!(t.admit(ip("10.0.0.2")).is_some(), "another address");
        drop(a1);
        assert!(t.admit(ip("10.0.0.1")).is_some(), "a slot came back");
        let _b1 = t.admit(ip("2001:db8::1")).unwrap();
        let _b2 = t.admit(ip("2001:db8::ffff:2")).unwrap();
        assert!(t.admit(ip("2001:db8::3")).is_none(), "same /64");
        assert!(t.admit(ip("2001:db8:0:1::1")).is_some(), "another /64");
        assert!(t.metrics.render(0).contains("reason=\"per_ip\"} 2"));
    }

    #[test]
    fn pressure_starts_above_three_quarters_of_the_cap_and_ends_below() {
        let t = tracker(8, 100);
        let p = t.pressure();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut held: Vec<Admitted> = (0..6).map(|_| t.admit(ip).unwrap()).collect();
        assert!(!*p.borrow(), "6 of 8 is not above 75%");
        held.push(t.admit(ip).unwrap());
        assert!(*p.borrow(), "7 of 8 is");
        held.truncate(6);
        assert!(!*p.borrow());
    }
}
