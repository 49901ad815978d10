use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::output::Printer;
use crate::admission::{AdmissionError, Config, serve};
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
    /// Directory of the docker config.json with registry pull credentials (a
    /// mounted kubernetes.io/dockerconfigjson Secret).
    #[arg(long, env = "DOCKER_CONFIG", value_name = "DIR")]
    pub docker_config: Option<PathBuf>,
}

pub fn run(c: ServeCommand, ctx: &Context, _out: &Printer) -> Result<u8, OpError> {
    let ServeCommand::Admission(a) = c;
    if a.deadline_ms == 0 {
        return Err(OpError::InvalidArgument(
            "--deadline-ms must be at least 1".into(),
        ));
    }
    let mut config = Config::new(a.listen, a.tls_cert, a.tls_key, a.policy, ctx.home.clone());
    config.deadline = Duration::from_millis(a.deadline_ms);
    config.cache.recheck = Duration::from_secs(a.recheck);
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
        e @ (AdmissionError::Bind { .. } | AdmissionError::Runtime(_)) => OpError::Io {
            path: PathBuf::from("serve admission"),
            detail: e.to_string(),
        },
        e => OpError::InvalidArgument(e.to_string()),
    })?;
    Ok(0)
}
