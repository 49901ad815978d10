//! One TLS client configuration per process, for every HTTPS client warrant makes
//! (registries, token services, TUF over HTTP). Building a `reqwest` client the
//! default way reads every CA file of the system (about 150 on Debian) to make
//! its certificate verifier; the admission server and the containerd verifier open
//! a store per image, so that cost was paid on every verification. The platform
//! verifier is made once here and shared by every client; each store still gets
//! its own client and runtime (a pooled connection never crosses runtimes).

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;

/// A client configuration (HTTP/1.1 only, ring) around the shared verifier of the
/// system's roots, or why they could not be loaded.
pub fn client_config() -> Result<ClientConfig, String> {
    let verifier = verifier()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The verifier, made once (the error is kept too: asking again would fail the
/// same way).
fn verifier() -> Result<Arc<rustls_platform_verifier::Verifier>, String> {
    static VERIFIER: OnceLock<Result<Arc<rustls_platform_verifier::Verifier>, String>> =
        OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls_platform_verifier::Verifier::new(provider)
                .map(Arc::new)
                .map_err(|e| format!("loading the system's CA certificates: {e}"))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_shares_one_verifier() {
        let (Ok(a), Ok(b)) = (verifier(), verifier()) else {
            return; // a machine without CA files: nothing to share
        };
        assert!(Arc::ptr_eq(&a, &b));
        assert!(client_config().is_ok());
    }
}
