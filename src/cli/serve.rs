use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::output::Printer;
use crate::admission::{AdmissionError, Config, ConnectionLimits, ReviewLimits, serve};
use crate::ops::{Context, OpError};

/// `warrant serve ...`
#[derive(Debug, clap::Subcommand)]
pub enum ServeCommand {
    /// Kubernetes admission webhook (admission.k8s.io/v1) over HTTPS: POST /validate
    /// denies Pods and pod templates with an image that does not verify under the
    /// policy; POST /mutate also pins each image to its verified digest. GET
    /// /healthz, /readyz, /metrics (Prometheus). Runs until SIGTERM. Manifests:
    /// plugin-manifest/kubernetes/.
    Admission(AdmissionArgs),
}

/// `warrant serve admission`
#[derive(Debug, clap::Args)]
pub struct AdmissionArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Serving certificate chain (PEM, leaf first); re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: PathBuf,
    /// Verify policy (TOML), as for `warrant verify --policy`.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Serve a verified answer for at most SECS before asking the registry again
    /// (the longest a moved tag or revoked signature can still be admitted).
    /// 0 verifies on every admission.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub recheck: u64,
    /// Answer every review within N ms, denying images not verified by then. Keep
    /// it below the webhook's timeoutSeconds.
    #[arg(long, value_name = "N", default_value_t = 8000)]
    pub deadline_ms: u64,
    /// Deny, without verifying any, a review whose object names more than N
    /// distinct images.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_images_per_review: usize,
    /// Most verifications running at once, for all reviews together (each holds a
    /// thread and registry connections); the rest queue.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_verifications: usize,
    /// Most verifications one review waits on at a time: its share of
    /// --max-verifications, so one review cannot queue ahead of all others.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub verifications_per_review: usize,
    /// Most client connections open at once; more wait in the listen backlog.
    /// Above 75% of it the server is under pressure and sheds connections that
    /// are not being answered (see --pressure-timeout-ms).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Most connections open at once from one client address (IPv6: one /64); the
    /// next is closed at once. Keep it above the API server's concurrency toward
    /// the webhook (all its calls come from one address per API server).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// A client must finish the TLS handshake and send a request head within N ms
    /// of connecting; an idle keep-alive connection is closed after N ms.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub header_timeout_ms: u64,
    /// Under pressure, a connection that is not being answered (handshake,
    /// headers, idle keep-alive) is closed after N ms.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub pressure_timeout_ms: u64,
    /// Directory of the docker config.json with registry pull credentials (a
    /// mounted kubernetes.io/dockerconfigjson Secret).
    #[arg(long, env = "DOCKER_CONFIG", value_name = "DIR")]
    pub docker_config: Option<PathBuf>,
}

pub fn run(c: ServeCommand, ctx: &Context, _out: &Printer) -> Result<u8, OpError> {
    let ServeCommand::Admission(a) = c;
    for (flag, value) in [
        ("--deadline-ms", a.deadline_ms),
        ("--header-timeout-ms", a.header_timeout_ms),
        ("--pressure-timeout-ms", a.pressure_timeout_ms),
        ("--max-images-per-review", a.max_images_per_review as u64),
        ("--max-verifications", a.max_verifications as u64),
        (
            "--verifications-per-review",
            a.verifications_per_review as u64,
        ),
        ("--max-connections", a.max_connections as u64),
        ("--max-connections-per-ip", a.max_connections_per_ip as u64),
    ] {
        if value == 0 {
            return Err(OpError::OutOfRange {
                argument: flag,
                value,
                expected: "must be at least 1".into(),
            });
        }
    }
    if a.max_verifications > 1 && a.verifications_per_review >= a.max_verifications {
        return Err(OpError::OutOfRange {
            argument: "--verifications-per-review",
            value: a.verifications_per_review as u64,
            expected: format!(
                "({}) must be below --max-verifications ({}): otherwise one review can take every verification slot",
                a.verifications_per_review, a.max_verifications
            ),
        });
    }
    let mut config = Config::new(a.listen, a.tls_cert, a.tls_key, a.policy, ctx.home.clone());
    config.deadline = Duration::from_millis(a.deadline_ms);
    config.cache.recheck = Duration::from_secs(a.recheck);
    config.cache.max_concurrent = a.max_verifications;
    config.review = ReviewLimits {
        max_images: a.max_images_per_review,
        per_review: a.verifications_per_review,
    };
    config.connections = ConnectionLimits {
        max: a.max_connections,
        per_ip: a.max_connections_per_ip,
        header_timeout: Duration::from_millis(a.header_timeout_ms),
        pressure_timeout: Duration::from_millis(a.pressure_timeout_ms),
    };
    config.network = ctx.network.clone();
    // A registry request may not outlive the review that waits for it.
    config.network.timeout = ctx.network.timeout.min(config.deadline);
    if a.docker_config.is_some() {
        config.network.docker_config = a.docker_config;
    }
    serve(config, |addr| {
        println!("warrant: admission webhook listening on https://{addr}");
    })
    .map_err(|e| match e {
        AdmissionError::Policy(p) => OpError::Policy(p),
        e @ (AdmissionError::Bind { .. } | AdmissionError::Runtime(_)) => OpError::Component {
            source: Box::new(e),
            exit: 3,
        },
        // TLS files, the home directory: configuration.
        e => OpError::Component {
            source: Box::new(e),
            exit: 2,
        },
    })?;
    Ok(0)
}
