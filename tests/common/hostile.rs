//! A hostile HTTP server on a loopback address, in-process (issue #11 "bounds under
//! attack"): it answers each request as a handler says, including never, one byte
//! at a time, or without end. Plus a runner that watches a child's peak memory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How to answer.
pub enum Reply {
    /// A whole answer (no body for HEAD).
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// Status and headers, then one byte every `every`, forever.
    Drip {
        status: u16,
        headers: Vec<(String, String)>,
        every: Duration,
    },
    /// Status and headers, then bytes as fast as the client takes them, forever.
    Endless {
        status: u16,
        headers: Vec<(String, String)>,
    },
    /// Read the request, then never answer.
    Hang,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply::Full {
            status,
            headers: vec![],
            body: Bytes::new(),
        }
    }

    /// A 401 sending the client to a bearer token service.
    pub fn bearer_challenge(realm: &str) -> Self {
        Reply::Full {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!(r#"Bearer realm="{realm}",service="hostile""#),
            )],
            body: Bytes::from_static(br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#),
        }
    }
}

pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// The server; stopped on drop.
pub struct Hostile {
    pub addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Hostile {
    /// Serve on `ip` (e.g. `127.0.0.1`, or `127.0.0.2` for "another host").
    pub fn start(ip: &str, handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let handler: Handler = Arc::new(handler);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind((ip, 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        rt.spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (h, log) = (handler.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, h, log).await;
                });
            }
        });
        Self {
            addr,
            seen,
            rt: Some(rt),
        }
    }

    /// `ip:port`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn serve(
    mut conn: tokio::net::TcpStream,
    handler: Handler,
    log: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let seen = Seen {
        method,
        path,
        headers,
    };
    log.lock().unwrap().push(seen.clone());
    let head_of = |status: u16, headers: &[(String, String)], length: Option<usize>| {
        let mut h = format!("HTTP/1.1 {status} Hostile\r\nConnection: close\r\n");
        for (n, v) in headers {
            h.push_str(&format!("{n}: {v}\r\n"));
        }
        if let Some(n) = length {
            h.push_str(&format!("Content-Length: {n}\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    };
    match handler(&seen) {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            conn.write_all(&head_of(status, &headers, Some(body.len())))
                .await?;
            if seen.method != "HEAD" {
                conn.write_all(&body).await?;
            }
        }
        Reply::Drip {
            status,
            headers,
            every,
        } => {
            conn.write_all(&head_of(status, &headers, None)).await?;
            loop {
                conn.write_all(b"{").await?;
                tokio::time::sleep(every).await;
            }
        }
        Reply::Endless { status, headers } => {
            conn.write_all(&head_of(status, &headers, None)).await?;
            let chunk = vec![b'a'; 64 * 1024];
            loop {
                conn.write_all(&chunk).await?;
            }
        }
        Reply::Hang => {
            // Hold the connection open until the client gives up.
            let _ = conn.read(&mut buf).await;
        }
    }
    conn.shutdown().await
}

/// A finished child and the most memory it held.
pub struct Watched {
    pub run: crate::common::Run,
    /// Peak resident set (VmHWM) seen while it ran, in KiB.
    pub peak_kib: u64,
    /// Why the watcher killed it, if it did.
    pub killed: Option<String>,
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run `cmd`, polling its peak RSS (VmHWM) every few milliseconds; kill it when it
/// passes `max_kib` (so an attack that would take gigabytes fails the test fast
/// instead of taking the machine) or when it outlives `kill_after` (a safety net,
/// not a timing assertion).
pub fn run_watched(mut cmd: Command, max_kib: u64, kill_after: Duration) -> Watched {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let (mut peak, mut killed) = (0, None);
    let status = loop {
        if let Some(kib) = vm_hwm_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if peak > max_kib && killed.is_none() {
            killed = Some(format!("peak RSS {peak} KiB passed {max_kib} KiB"));
            let _ = child.kill();
        } else if started.elapsed() > kill_after && killed.is_none() {
            killed = Some(format!("still running after {kill_after:?}"));
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Watched {
        run: crate::common::Run {
            code: status.code().unwrap_or(-1),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        },
        peak_kib: peak,
        killed,
    }
}
