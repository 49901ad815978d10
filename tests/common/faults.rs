//! A fault-injecting HTTP proxy on loopback (issue #17), in-process, placed between
//! warrant and the real registry. Every request gets an index (counted from the
//! last [`FaultProxy::arm`]); the one at the armed index gets the armed fault (and,
//! for a persistent fault, every one after it: a registry that goes bad and stays
//! bad), every other request passes through untouched.
//!
//! One request per connection (the proxy answers `Connection: close`), so a fault
//! never leaks into a neighbouring request. Requests are forwarded byte for byte,
//! `Host` included: the registry builds its upload `Location` URLs from it, so they
//! point back at the proxy and every upload step passes through it too.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// What goes wrong with the armed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Not forwarded; answered with this 5xx status.
    Status(u16),
    /// Not forwarded; answered 429 with `Retry-After: 1`.
    TooManyRequests,
    /// A request with a body: half of it is read, then the connection is reset (RST)
    /// and nothing is forwarded. A request without one: forwarded, then the answer
    /// is reset after half its body (after half its head when it has no body).
    Reset,
    /// Forwarded; the answer keeps its `Content-Length` but only half the body is
    /// sent, then the connection closes cleanly.
    Truncate,
    /// Forwarded; half the answer, then a pause longer than the client's
    /// `--timeout` (the head itself is late when there is no body), then the rest.
    Slow,
    /// Forwarded; `Docker-Content-Digest` replaced by the digest of other bytes.
    WrongDigest,
    /// A PUT is answered 201 (with the digest it names) and never forwarded: the
    /// registry stores nothing. Other methods pass through.
    LostPut,
}

impl Fault {
    /// Every fault the matrix injects.
    pub const ALL: [Fault; 9] = [
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::TooManyRequests,
        Fault::Reset,
        Fault::Truncate,
        Fault::Slow,
        Fault::WrongDigest,
        Fault::LostPut,
    ];

    /// Faults that corrupt what the client reads (rather than fail to deliver it).
    pub fn is_integrity(self) -> bool {
        matches!(self, Fault::WrongDigest | Fault::Truncate)
    }
}

/// Which requests get which fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inject {
    /// The first request (counted from 0 at [`FaultProxy::arm`]) to get it.
    pub index: usize,
    pub fault: Fault,
    /// Every later request gets it too.
    pub persist: bool,
}

/// A request as the proxy saw it, and what it did to it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub index: usize,
    pub method: String,
    pub path: String,
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Plan {
    next: usize,
    armed: Option<Inject>,
    /// [`FaultProxy::arm_nth`]: method, path suffix, which match (from 0), fault;
    /// and the matches so far.
    nth: Option<(&'static str, &'static str, usize, Fault)>,
    matched: usize,
    seen: Vec<Seen>,
}

/// The proxy; stopped on drop.
pub struct FaultProxy {
    pub addr: SocketAddr,
    plan: Arc<Mutex<Plan>>,
    rt: Option<tokio::runtime::Runtime>,
}

/// How long [`Fault::Slow`] stalls: past a client `--timeout` of [`SLOW_TIMEOUT`] s.
pub const SLOW_STALL: Duration = Duration::from_millis(2500);
/// The `--timeout` the fault tests give warrant, so [`Fault::Slow`] trips it.
pub const SLOW_TIMEOUT: &str = "1";

impl FaultProxy {
    /// Listen on a free loopback port and forward to `upstream` (`127.0.0.1:port`).
    pub fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream.parse().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let p = plan.clone();
        rt.spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let p = p.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, upstream, p).await;
                });
            }
        });
        Self {
            addr,
            plan,
            rt: Some(rt),
        }
    }

    /// `127.0.0.1:port` of the proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Restart the request count at 0 and inject as `fault` says (`None`: count
    /// only).
    pub fn arm(&self, fault: Option<Inject>) {
        let mut p = self.plan.lock().unwrap();
        p.next = 0;
        p.armed = fault;
        p.nth = None;
        p.seen.clear();
    }

    /// Restart the count and inject `fault` into the `n`-th request (from 0) whose
    /// method is `method` and whose path ends with `suffix`, only that one.
    pub fn arm_nth(&self, method: &'static str, suffix: &'static str, n: usize, fault: Fault) {
        let mut p = self.plan.lock().unwrap();
        p.next = 0;
        p.armed = None;
        p.nth = Some((method, suffix, n, fault));
        p.matched = 0;
        p.seen.clear();
    }

    /// Requests since the last [`arm`](Self::arm).
    pub fn seen(&self) -> Vec<Seen> {
        self.plan.lock().unwrap().seen.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A parsed HTTP/1.1 message: the head's lines and the (de-chunked) body.
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    /// The head as bytes, with `Connection: close` and (unless `keep_length`) a
    /// `Content-Length` for the body we hold.
    fn head(&self, keep_length: bool) -> Vec<u8> {
        let mut h = format!("{}\r\n", self.start);
        for (n, v) in &self.headers {
            let drop = n.eq_ignore_ascii_case("connection")
                || n.eq_ignore_ascii_case("transfer-encoding")
                || (!keep_length && n.eq_ignore_ascii_case("content-length"));
            if !drop {
                h.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        if !keep_length {
            h.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        h.push_str("Connection: close\r\n\r\n");
        h.into_bytes()
    }
}

/// A buffered reader over a stream, enough to parse one HTTP/1.1 message.
struct Reader<'a> {
    s: &'a mut TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Reader<'_> {
    async fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.s.read(&mut chunk).await?;
        self.eof = n == 0;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    async fn line(&mut self) -> std::io::Result<Option<String>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(Some(line));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    async fn exact(&mut self, n: usize) -> std::io::Result<Option<Vec<u8>>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Ok(None);
            }
        }
        Ok(Some(self.buf.drain(..n).collect()))
    }

    /// A message head; `None` on a closed connection.
    async fn head(&mut self) -> std::io::Result<Option<Message>> {
        let Some(start) = self.line().await? else {
            return Ok(None);
        };
        let mut headers = Vec::new();
        while let Some(l) = self.line().await? {
            if l.is_empty() {
                return Ok(Some(Message {
                    start,
                    headers,
                    body: Vec::new(),
                }));
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
        }
        Ok(None)
    }

    /// The body of `m`: by `Content-Length`, chunked, or (for an answer) to EOF.
    /// `limit` stops early (for a request cut in half).
    async fn body(&mut self, m: &Message, to_eof: bool) -> std::io::Result<Vec<u8>> {
        if m.header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            let mut body = Vec::new();
            loop {
                let size = self.line().await?.unwrap_or_default();
                let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                    .unwrap_or(0);
                if size == 0 {
                    // Trailers, then the blank line.
                    while let Some(l) = self.line().await? {
                        if l.is_empty() {
                            break;
                        }
                    }
                    return Ok(body);
                }
                body.extend(self.exact(size).await?.unwrap_or_default());
                self.line().await?;
            }
        }
        if let Some(n) = m.header("content-length").and_then(|n| n.parse().ok()) {
            return Ok(self.exact(n).await?.unwrap_or_default());
        }
        if to_eof {
            while self.fill().await? {}
            return Ok(std::mem::take(&mut self.buf));
        }
        Ok(Vec::new())
    }
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

async fn forward(upstream: SocketAddr, req: &Message, head_request: bool) -> Option<Message> {
    let mut up = TcpStream::connect(upstream).await.ok()?;
    up.write_all(&req.head(false)).await.ok()?;
    up.write_all(&req.body).await.ok()?;
    let mut r = Reader {
        s: &mut up,
        buf: Vec::new(),
        eof: false,
    };
    let mut resp = r.head().await.ok()??;
    if !head_request {
        resp.body = r.body(&resp, true).await.ok()?;
    }
    Some(resp)
}

fn plain(status: u16, reason: &str, extra: &[(&str, String)]) -> Message {
    let body = format!(r#"{{"errors":[{{"code":"UNKNOWN","message":"injected {status}"}}]}}"#);
    let mut m = Message {
        start: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.into_bytes(),
    };
    for (n, v) in extra {
        m.set_header(n, v);
    }
    m
}

/// What the registry would have answered to a stored PUT.
fn lost_put_answer(path: &str, body: &[u8]) -> Message {
    let digest = path
        .split_once("digest=")
        .map(|(_, d)| d.split('&').next().unwrap_or("").replace("%3A", ":"))
        .unwrap_or_else(|| sha256(body));
    let name = path.trim_start_matches("/v2/");
    let repo = name
        .split("/blobs/")
        .next()
        .unwrap_or("")
        .split("/manifests/")
        .next()
        .unwrap_or("");
    let kind = if path.contains("/manifests/") {
        "manifests"
    } else {
        "blobs"
    };
    let mut m = plain(201, "Created", &[]);
    m.body.clear();
    m.set_header("Docker-Content-Digest", &digest);
    m.set_header("Location", &format!("/v2/{repo}/{kind}/{digest}"));
    m
}

async fn serve(
    mut conn: TcpStream,
    upstream: SocketAddr,
    plan: Arc<Mutex<Plan>>,
) -> std::io::Result<()> {
    let mut r = Reader {
        s: &mut conn,
        buf: Vec::new(),
        eof: false,
    };
    let Some(mut req) = r.head().await? else {
        return Ok(());
    };
    let mut parts = req.start.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let fault = {
        let mut p = plan.lock().unwrap();
        let index = p.next;
        p.next += 1;
        let fault = p
            .armed
            .and_then(|a| (a.index == index || (a.persist && index > a.index)).then_some(a.fault));
        let fault = fault.filter(|f| *f != Fault::LostPut || method == "PUT");
        let fault = match p.nth {
            Some((m, suffix, n, f)) if m == method && path.ends_with(suffix) => {
                p.matched += 1;
                (p.matched == n + 1).then_some(f).or(fault)
            }
            _ => fault,
        };
        p.seen.push(Seen {
            index,
            method: method.clone(),
            path: path.clone(),
            fault,
        });
        fault
    };
    let is_head = method == "HEAD";
    let declared: usize = req
        .header("content-length")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if fault == Some(Fault::Reset) && declared > 0 {
        let _ = r.exact(declared / 2).await?;
        return reset(conn);
    }
    req.body = r.body(&req, false).await?;
    let answer = match fault {
        Some(Fault::Status(s)) => plain(s, "Injected", &[]),
        Some(Fault::TooManyRequests) => {
            plain(429, "Too Many Requests", &[("Retry-After", "1".into())])
        }
        Some(Fault::LostPut) => lost_put_answer(&path, &req.body),
        _ => match forward(upstream, &req, is_head).await {
            Some(a) => a,
            None => plain(502, "Bad Gateway", &[]),
        },
    };
    // HEAD answers carry the upstream's Content-Length and no body.
    let head = answer.head(is_head);
    let half = answer.body.len() / 2;
    match fault {
        Some(Fault::Reset) => {
            if answer.body.is_empty() {
                conn.write_all(&head[..head.len() / 2]).await?;
            } else {
                conn.write_all(&head).await?;
                conn.write_all(&answer.body[..half]).await?;
            }
            conn.flush().await?;
            return reset(conn);
        }
        Some(Fault::Truncate) => {
            conn.write_all(&head).await?;
            conn.write_all(&answer.body[..half]).await?;
        }
        Some(Fault::Slow) => {
            if answer.body.is_empty() {
                tokio::time::sleep(SLOW_STALL).await;
                conn.write_all(&head).await?;
            } else {
                conn.write_all(&head).await?;
                conn.write_all(&answer.body[..half]).await?;
                conn.flush().await?;
                tokio::time::sleep(SLOW_STALL).await;
                conn.write_all(&answer.body[half..]).await?;
            }
        }
        Some(Fault::WrongDigest) => {
            let mut a = answer;
            a.set_header("Docker-Content-Digest", &sha256(b"not what was served"));
            conn.write_all(&a.head(is_head)).await?;
            conn.write_all(&a.body).await?;
        }
        _ => {
            conn.write_all(&head).await?;
            conn.write_all(&answer.body).await?;
        }
    }
    conn.shutdown().await
}

/// Drop the connection with an RST instead of a FIN.
fn reset(conn: TcpStream) -> std::io::Result<()> {
    conn.set_zero_linger()?;
    drop(conn);
    Ok(())
}
