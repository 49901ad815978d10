//! HTTPS: rustls, hyper's HTTP/1.1 server with keep-alive (the API server reuses
//! connections), and the routes. Every limit a hostile or broken client could
//! probe is explicit: connections in total and per address, handshake and header
//! time (shorter under pressure, see [`super::conn`]), body size and body time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::conn::{Activity, Admitted, Busy, Tracker, shed_when};
use super::handler::{Answer, Reviewer};
use super::metrics::{Endpoint, Metrics, Outcome};
use super::reload::{POLICY_RELOAD_INTERVAL, PolicyReloader};
use super::verifier::PolicyVerifier;
use super::{AdmissionError, Config, MAX_BODY, VerifyCache, tls};
use crate::policy::Policy;

/// On shutdown, requests in progress get this long to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// A shed connection may finish writing an answer this long before it is cut.
const SHED_GRACE: Duration = Duration::from_millis(250);

struct State {
    reviewer: Reviewer,
    metrics: Arc<Metrics>,
    ready: AtomicBool,
    policy: Arc<PolicyReloader>,
}

/// A server that is accepting connections.
pub struct Running {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Running({})", self.addr)
    }
}

impl Running {
    /// The address bound (the port is the real one when `:0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.state.metrics
    }

    /// The policy file's watcher (a test may call `reload_if_changed` itself
    /// rather than wait for the interval).
    pub fn policy(&self) -> &Arc<PolicyReloader> {
        &self.state.policy
    }

    /// The answer cache.
    pub fn cache(&self) -> &Arc<VerifyCache> {
        self.state.reviewer.cache()
    }

    /// Stop: report not ready at once, keep answering for `delay` (while the
    /// endpoint is taken out of the Service), then stop accepting and let
    /// requests in progress finish.
    pub async fn shutdown(self, delay: Duration) {
        self.state.ready.store(false, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        let _ = self.stop.send(true);
        let _ = self.accept.await;
    }
}

/// Make sure `home` is a directory the trusted metadata can be written to.
fn check_home(home: &Path) -> Result<(), AdmissionError> {
    let err = |e: std::io::Error| AdmissionError::Home {
        path: home.to_owned(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(home).map_err(err)?;
    let probe = home.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(err)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Load the policy and the certificate, bind, and start serving on the current
/// tokio runtime (which must be multi-threaded: verifications run on its
/// blocking pool).
pub async fn start(config: Config) -> Result<Running, AdmissionError> {
    let policy = Policy::load(&config.policy)?;
    policy.check_files(&config.policy)?;
    check_home(&config.home)?;
    let metrics = Arc::new(Metrics::default());
    let verifier = Arc::new(
        PolicyVerifier::new(config.home.clone(), config.network.clone(), policy)
            .counting(Arc::clone(&metrics.registry_checks)),
    );
    let cache = Arc::new(VerifyCache::new(
        Arc::clone(&verifier) as Arc<dyn super::verifier::Verifier>,
        &config.cache,
        Arc::clone(&metrics),
    ));
    let reloader = Arc::new(PolicyReloader::new(
        config.policy.clone(),
        verifier,
        Arc::clone(&cache),
        Arc::clone(&metrics),
    ));
    let provider = tls::provider();
    let certs = Arc::new(tls::Reloading::new(
        config.tls_cert.clone(),
        config.tls_key.clone(),
        Arc::clone(&provider),
    )?);
    let mut tls_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AdmissionError::Tls {
            path: config.tls_cert.clone(),
            detail: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(&certs) as Arc<dyn rustls::server::ResolvesServerCert>);
    tls_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls_config));
    let bind = |e: std::io::Error| AdmissionError::Bind {
        addr: config.listen,
        detail: e.to_string(),
    };
    let listener = TcpListener::bind(config.listen).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let state = Arc::new(State {
        reviewer: Reviewer::new(cache, config.deadline, Arc::clone(&metrics))
            .limited(config.review.clone()),
        metrics,
        ready: AtomicBool::new(true),
        policy: Arc::clone(&reloader),
    });
    let (stop, stopped) = watch::channel(false);
    let mut reload_stop = stopped.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tls::RELOAD_INTERVAL) => {
                    let certs = Arc::clone(&certs);
                    let _ = tokio::task::spawn_blocking(move || certs.reload_if_changed()).await;
                }
                _ = reload_stop.changed() => break,
            }
        }
    });
    let mut policy_stop = stopped.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLICY_RELOAD_INTERVAL) => {
                    let reloader = Arc::clone(&reloader);
                    let _ = tokio::task::spawn_blocking(move || reloader.reload_if_changed()).await;
                }
                _ = policy_stop.changed() => break,
            }
        }
    });
    let tracker = Tracker::new(config.connections.clone(), Arc::clone(&state.metrics));
    let accept = tokio::spawn(accept_loop(
        listener,
        acceptor,
        Arc::clone(&state),
        tracker,
        stopped,
    ));
    tracing::info!(%addr, "admission webhook listening");
    Ok(Running {
        addr,
        state,
        stop,
        accept,
    })
}

/// Run the webhook until SIGTERM or SIGINT, on a runtime of its own; `listening`
/// is told the bound address once connections are accepted.
pub fn serve(config: Config, listening: impl FnOnce(SocketAddr)) -> Result<(), AdmissionError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("warrant-admission")
        .build()
        .map_err(|e| AdmissionError::Runtime(e.to_string()))?;
    rt.block_on(async move {
        let delay = config.shutdown_delay;
        let running = start(config).await?;
        listening(running.local_addr());
        termination().await;
        tracing::info!("shutting down");
        running.shutdown(delay).await;
        Ok(())
    })
}

/// SIGTERM (what the kubelet sends) or SIGINT.
async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    tracker: Arc<Tracker>,
    mut stop: watch::Receiver<bool>,
) {
    // Beyond the cap, clients wait in the listen backlog; shedding under
    // pressure (see `conn`) keeps that wait short.
    let slots = Arc::new(Semaphore::new(tracker.limits().max.max(1)));
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, typically: back off, do not spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Some(admitted) = tracker.admit(peer.ip()) else {
            tracing::debug!(%peer, "too many connections from this address; closed");
            continue;
        };
        // Answers are small and latency is the point: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        let conn = Connection {
            acceptor: acceptor.clone(),
            state: Arc::clone(&state),
            tracker: Arc::clone(&tracker),
            stop: stop.clone(),
            peer,
        };
        tokio::spawn(async move {
            let _permit = permit;
            conn.serve(tcp, admitted).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.drained())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; closing");
    }
}

/// One client connection and what it needs.
struct Connection {
    acceptor: TlsAcceptor,
    state: Arc<State>,
    tracker: Arc<Tracker>,
    stop: watch::Receiver<bool>,
    peer: SocketAddr,
}

impl Connection {
    /// Handshake, then requests until the client leaves, the connection is shed
    /// (too slow, or idle under pressure) or the server stops.
    async fn serve(mut self, tcp: TcpStream, admitted: Admitted) {
        let _admitted = admitted;
        let peer = self.peer;
        let limits = self.tracker.limits().clone();
        let activity = Activity::new();
        let shed = shed_when(&activity, &limits, self.tracker.pressure());
        tokio::pin!(shed);
        let tls = tokio::select! {
            r = self.acceptor.accept(tcp) => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
            },
            why = &mut shed => {
                tracing::debug!(%peer, "TLS handshake not finished in time; closed");
                self.state.metrics.shed(why);
                return;
            }
            _ = self.stop.wait_for(|s| *s) => return,
        };
        let state = Arc::clone(&self.state);
        let active = Arc::clone(&activity);
        let service =
            hyper::service::service_fn(move |req| route(Arc::clone(&state), req, active.begin()));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(tls), service);
        tokio::pin!(conn);
        let grace = tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            why = &mut shed => {
                tracing::debug!(%peer, ?why, "connection shed");
                self.state.metrics.shed(why);
                SHED_GRACE
            }
            _ = self.stop.wait_for(|s| *s) => DRAIN_TIMEOUT,
        };
        // Closes an idle connection now, and one mid-answer after the answer.
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(grace, conn).await;
    }
}

fn reply(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

const TEXT: &str = "text/plain; charset=utf-8";

fn wrong_method(allow: &'static str) -> Response<Full<Bytes>> {
    let mut r = reply(405, TEXT, "method not allowed\n");
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// Answer one request; the connection counts as busy while `_busy` lives.
async fn route(
    state: Arc<State>,
    req: Request<Incoming>,
    _busy: Busy,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let endpoint = match req.uri().path() {
        "/validate" => Endpoint::Validate,
        "/mutate" => Endpoint::Mutate,
        "/healthz" | "/readyz" | "/metrics" if req.method() != Method::GET => {
            return Ok(wrong_method("GET"));
        }
        "/healthz" => return Ok(reply(200, TEXT, "ok\n")),
        "/readyz" => {
            return Ok(if state.ready.load(Ordering::SeqCst) {
                match state.policy.rejected() {
                    None => reply(200, TEXT, "ready\n"),
                    // Still ready: the previous policy is in force (see reload).
                    Some(why) => reply(
                        200,
                        TEXT,
                        format!("ready; policy change rejected, previous policy in force: {why}\n"),
                    ),
                }
            } else {
                reply(503, TEXT, "shutting down\n")
            });
        }
        "/metrics" => {
            let text = state.metrics.render(state.reviewer.cache().len());
            return Ok(reply(200, "text/plain; version=0.0.4; charset=utf-8", text));
        }
        _ => {
            return Ok(reply(
                404,
                TEXT,
                "not found: use POST /validate or /mutate\n",
            ));
        }
    };
    if req.method() != Method::POST {
        return Ok(wrong_method("POST"));
    }
    let budget = super::budget::budget(state.reviewer.deadline(), req.uri().query());
    let answer = match read_body(req, arrived + budget).await {
        Ok(body) => {
            state
                .reviewer
                .review_until(endpoint, &body, arrived, budget)
                .await
        }
        Err(a) => a,
    };
    state
        .metrics
        .request(endpoint, answer.outcome, arrived.elapsed());
    let content_type = if answer.status == 200 {
        "application/json"
    } else {
        TEXT
    };
    Ok(reply(answer.status, content_type, answer.body))
}

/// The body, at most [`MAX_BODY`] bytes, read by `deadline`.
async fn read_body(req: Request<Incoming>, deadline: Instant) -> Result<Bytes, Answer> {
    let refuse = |status: u16, why: String| Answer {
        status,
        body: why.into_bytes(),
        outcome: Outcome::BadRequest,
    };
    let too_large = || refuse(413, format!("request body larger than {MAX_BODY} bytes\n"));
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let deadline = tokio::time::Instant::from_std(deadline);
    let body = Limited::new(req.into_body(), MAX_BODY).collect();
    match tokio::time::timeout_at(deadline, body).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(refuse(400, format!("cannot read the request body: {e}\n"))),
        Err(_) => Err(refuse(
            408,
            "the request body did not arrive in time\n".into(),
        )),
    }
}
