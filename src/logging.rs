//! Logs to stderr, for people: `-v` shows each TUF step (role, version, who signed)
//! and each registry request (method, URL, status, bytes, ms); `-vv` adds retries
//! and cache decisions. `WARRANT_LOG` or, failing that, the usual `RUST_LOG` set a
//! filter directly. Nothing secret is ever logged: no header, passphrase or key.

/// Install the stderr logger for `verbose` (`-v` count) unless the environment
/// names a filter.
pub fn init(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("WARRANT_LOG")
        .or_else(|_| EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}
