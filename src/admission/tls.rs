//! The serving certificate: loaded from PEM files and re-read when they change
//! (a Kubernetes Secret volume is updated in place when cert-manager or the
//! install script rotates it), so rotation needs no restart. A rotation that
//! does not load (half-written files, a key that does not match) keeps the
//! previous certificate and says so in the log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::AdmissionError;

/// How often the files are looked at.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// rustls with the ring provider (as the registry client uses).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read a certificate chain (leaf first) and its private key.
pub fn load(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, AdmissionError> {
    let tls = |path: &Path, detail: String| AdmissionError::Tls {
        path: path.to_owned(),
        detail,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(tls(cert, "no CERTIFICATE block in the file".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        tls(
            key,
            format!("{e} (expected a PKCS#8, PKCS#1 or SEC1 private key in PEM)"),
        )
    })?;
    CertifiedKey::from_der(chain, private, provider)
        .map_err(|e| tls(key, format!("{e} (is it the key of {}?)", cert.display())))
}

/// The certificate in use, replaced when the files change.
#[derive(Debug)]
pub struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Option<SystemTime>)>,
}

fn modified(cert: &Path, key: &Path) -> Option<SystemTime> {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    m(cert).max(m(key))
}

impl Reloading {
    /// Load the files now (an error here stops the server from starting).
    pub fn new(
        cert: PathBuf,
        key: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, AdmissionError> {
        let stamp = modified(&cert, &key);
        let loaded = load(&cert, &key, &provider)?;
        Ok(Self {
            cert,
            key,
            provider,
            current: RwLock::new((Arc::new(loaded), stamp)),
        })
    }

    /// Re-read the files if they changed since the last load; true when a new
    /// certificate is in use.
    pub fn reload_if_changed(&self) -> bool {
        let stamp = modified(&self.cert, &self.key);
        let seen = self.current.read().map(|c| c.1).unwrap_or(None);
        if stamp == seen {
            return false;
        }
        match load(&self.cert, &self.key, &self.provider) {
            Ok(k) => {
                if let Ok(mut c) = self.current.write() {
                    *c = (Arc::new(k), stamp);
                }
                tracing::info!(cert = %self.cert.display(), "serving certificate reloaded");
                true
            }
            Err(e) => {
                // Keep serving the old one; retry at the next change of the files.
                if let Ok(mut c) = self.current.write() {
                    c.1 = stamp;
                }
                tracing::warn!("serving certificate not reloaded, keeping the previous one: {e}");
                false
            }
        }
    }
}

impl Reloading {
    /// The certificate handshakes get now.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c.0))
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A self-signed P-256 certificate and key for `cn` in `dir` (openssl).
    fn make(dir: &Path, cn: &str) {
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", &format!("/CN={cn}")])
            .arg("-keyout")
            .arg(dir.join("tls.key"))
            .arg("-out")
            .arg(dir.join("tls.crt"))
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn touch_later(path: &Path, secs: u64) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn a_rotated_certificate_is_picked_up_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        make(dir.path(), "first");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let r = Reloading::new(cert.clone(), key.clone(), provider()).unwrap();
        let first = r.current().unwrap().cert[0].clone();
        assert!(!r.reload_if_changed(), "unchanged files are not re-read");

        make(dir.path(), "second");
        touch_later(&cert, 5);
        assert!(r.reload_if_changed());
        let second = r.current().unwrap().cert[0].clone();
        assert_ne!(first, second);

        // A key that is not the certificate's (half a rotation): keep serving.
        let other = tempfile::tempdir().unwrap();
        make(other.path(), "third");
        std::fs::copy(other.path().join("tls.key"), &key).unwrap();
        touch_later(&key, 10);
        assert!(!r.reload_if_changed());
        assert_eq!(r.current().unwrap().cert[0], second);
        std::fs::write(&cert, b"garbage").unwrap();
        touch_later(&cert, 15);
        assert!(!r.reload_if_changed());
        assert_eq!(r.current().unwrap().cert[0], second);
    }

    #[test]
    fn unusable_files_are_refused_at_start_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        make(dir.path(), "x");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let e =
            Reloading::new(dir.path().join("missing.crt"), key.clone(), provider()).unwrap_err();
        assert!(e.to_string().contains("missing.crt"), "{e}");
        let e = Reloading::new(key.clone(), key.clone(), provider()).unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
        let e = Reloading::new(cert.clone(), cert, provider()).unwrap_err();
        assert!(e.to_string().contains("private key"), "{e}");
    }
}
