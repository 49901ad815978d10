//! A TCP proxy on a fixed loopback port in front of the real registry that can be
//! switched off and on, like a registry that goes away and comes back.
//!
//! Up: every connection is spliced to the registry byte for byte (keep-alive
//! included). Down, in one of two ways a gone registry shows itself:
//!
//! * [`Down::Refused`]: the listening socket is closed, so a connect is refused;
//! * [`Down::Reset`]: connections are accepted and reset at once (RST).
//!
//! Either way, the connections open when it goes down are reset too. The
//! [`Timeline`] records each switch: a switch down is recorded *before* it takes
//! effect and a switch up *after* the port listens again, so the recorded down
//! periods contain the real ones and the recorded up periods are inside the real
//! ones (what the judge needs to never blame the server for the proxy's own
//! switching time).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the registry is gone while down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// Nothing listens: connection refused.
    Refused,
    /// Connections accepted and reset at once.
    Reset,
}

/// When the registry was up: `(since, until)`; `until` is `None` while up now.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub up: Vec<(Instant, Option<Instant>)>,
}

impl Timeline {
    /// True when the registry was up at some moment of `[from, to]`.
    pub fn up_during(&self, from: Instant, to: Instant) -> bool {
        self.up
            .iter()
            .any(|&(since, until)| since <= to && until.is_none_or(|u| u >= from))
    }

    /// True when the registry was up at every moment of `[from, to]`.
    pub fn up_throughout(&self, from: Instant, to: Instant) -> bool {
        self.up
            .iter()
            .any(|&(since, until)| since <= from && until.is_none_or(|u| u >= to))
    }
}

struct State {
    /// Bumped by every switch: an accept loop of an older one starts nothing.
    generation: u64,
    listener: Option<JoinHandle<()>>,
    conns: Vec<JoinHandle<()>>,
    timeline: Timeline,
}

/// The proxy; runs on the runtime it was started on, stopped with it.
pub struct ToggleProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl ToggleProxy {
    /// Listen on a free loopback port, up, forwarding to `upstream`.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            upstream: upstream.parse().unwrap(),
            state: Arc::new(Mutex::new(State {
                generation: 0,
                listener: None,
                conns: Vec::new(),
                timeline: Timeline::default(),
            })),
        };
        proxy.listen(listener, None);
        proxy
    }

    /// `127.0.0.1:port`: what image references name as their registry.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn timeline(&self) -> Timeline {
        self.state.lock().unwrap().timeline.clone()
    }

    /// Go down as `how` says; the open connections are reset.
    pub async fn down(&self, how: Down) {
        let old = {
            let mut s = self.state.lock().unwrap();
            s.generation += 1;
            if let Some((_, until @ None)) = s.timeline.up.last_mut() {
                *until = Some(Instant::now());
            }
            // Dropping a spliced stream with SO_LINGER 0 (set on accept) sends RST.
            for c in s.conns.drain(..) {
                c.abort();
            }
            s.listener.take()
        };
        if let Some(l) = old {
            l.abort();
            let _ = l.await;
        }
        if how == Down::Reset {
            let listener = self.bind().await;
            let task = tokio::spawn(async move {
                while let Ok((conn, _)) = listener.accept().await {
                    reset(conn);
                }
            });
            self.state.lock().unwrap().listener = Some(task);
        }
    }

    /// Come back up on the same port.
    pub async fn up(&self) {
        let old = self.state.lock().unwrap().listener.take();
        if let Some(l) = old {
            l.abort();
            let _ = l.await;
        }
        let listener = self.bind().await;
        self.state.lock().unwrap().generation += 1;
        self.listen(listener, Some(Instant::now()));
    }

    /// Listen on the proxy's port again (retrying briefly: it was just released).
    async fn bind(&self) -> TcpListener {
        let mut tries = 0;
        loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => return l,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        }
    }

    fn listen(&self, listener: TcpListener, since: Option<Instant>) {
        let upstream = self.upstream;
        let state = Arc::clone(&self.state);
        let mut s = self.state.lock().unwrap();
        let generation = s.generation;
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let _ = conn.set_zero_linger();
                let mut s = state.lock().unwrap();
                if s.generation != generation {
                    reset(conn);
                    continue;
                }
                let splice = tokio::spawn(async move {
                    let Ok(mut up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut conn = conn;
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
                });
                s.conns.retain(|c| !c.is_finished());
                s.conns.push(splice);
            }
        });
        s.listener = Some(task);
        s.timeline
            .up
            .push((since.unwrap_or_else(Instant::now), None));
    }
}

fn reset(conn: TcpStream) {
    let _ = conn.set_zero_linger();
    drop(conn);
}
