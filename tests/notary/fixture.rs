//! A real Notary v1 server (`notary-server`, memory storage, local signer) behind a
//! TLS certificate this fixture makes with openssl, and the real `notary` client
//! signing the way Docker Content Trust users did (issue #16).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const PASSPHRASES: [(&str, &str); 4] = [
    ("NOTARY_ROOT_PASSPHRASE", "root pass"),
    ("NOTARY_TARGETS_PASSPHRASE", "targets pass"),
    ("NOTARY_SNAPSHOT_PASSPHRASE", "snapshot pass"),
    ("NOTARY_DELEGATION_PASSPHRASE", "delegation pass"),
];

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 key and a self-signed certificate (what `notary delegation add` takes).
pub fn key_and_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    key_and_cert_of(dir, name, &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
}

/// A 2048-bit RSA key and a self-signed certificate (Notary keytype `rsa-x509`).
pub fn rsa_key_and_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    key_and_cert_of(dir, name, &["rsa:2048"])
}

fn key_and_cert_of(dir: &Path, name: &str, newkey: &[&str]) -> (PathBuf, PathBuf) {
    let mut args = vec!["req", "-x509", "-newkey"];
    args.extend_from_slice(newkey);
    let (keyout, out, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={name}"),
    );
    args.extend_from_slice(&[
        "-nodes", "-keyout", &keyout, "-out", &out, "-days", "365", "-subj", &subj,
    ]);
    openssl(dir, &args);
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.crt")),
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connect attempts until the server listens (a bounded readiness loop, no timing
/// asserted).
pub fn wait_listening(port: u16) {
    for _ in 0..400 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("nothing listens on {port}");
}

pub struct NotaryFixture {
    pub dir: PathBuf,
    pub url: String,
    pub port: u16,
    child: Child,
}

impl NotaryFixture {
    /// Start a notary-server with files in `dir` (a test-owned temp dir).
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=warrant test CA",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                "server.crt",
            ],
        );
        let port = free_port();
        let config = serde_json::json!({
            "server": {
                "http_addr": format!("127.0.0.1:{port}"),
                "tls_key_file": dir.join("server.key"),
                "tls_cert_file": dir.join("server.crt"),
            },
            "trust_service": {"type": "local", "hostname": "", "port": "", "key_algorithm": "ecdsa"},
            "logging": {"level": "warn"},
            "storage": {"backend": "memory"},
        });
        std::fs::write(dir.join("server.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new("notary-server")
            .arg("-config")
            .arg(dir.join("server.json"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("notary-server (Debian package notary) must be installed");
        wait_listening(port);
        let url = format!("https://127.0.0.1:{port}");
        std::fs::write(
            dir.join("client.json"),
            serde_json::json!({
                "trust_dir": dir.join("trust"),
                "remote_server": {"url": url, "root_ca": dir.join("ca.crt")},
            })
            .to_string(),
        )
        .unwrap();
        Self {
            dir: dir.to_owned(),
            url,
            port,
            child,
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    pub fn trust_dir(&self) -> PathBuf {
        self.dir.join("trust")
    }

    /// Run the `notary` client; panics with its output when it fails.
    pub fn notary(&self, args: &[&str]) -> String {
        self.notary_answering(args, "")
    }

    /// Run the `notary` client with `answer` on its stdin (its confirmations).
    pub fn notary_answering(&self, args: &[&str], answer: &str) -> String {
        use std::io::Write as _;
        let mut c = Command::new("notary");
        c.arg("-c").arg(self.dir.join("client.json")).args(args);
        for (k, v) in PASSPHRASES {
            c.env(k, v);
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "notary {args:?}: {text}");
        text
    }
}

impl Drop for NotaryFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain-HTTP proxy in front of the server that rewrites the bodies of paths
/// ending in `tamper_suffix` with `tamper` (a hostile network or mirror).
pub fn tampering_proxy(
    upstream: &NotaryFixture,
    tamper_suffix: &'static str,
    tamper: fn(Vec<u8>) -> Vec<u8>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = upstream.url.clone();
    let ca = upstream.ca();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = vec![0u8; 8192];
            let mut got = 0;
            while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") && got < buf.len() {
                match conn.read(&mut buf[got..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            let req = String::from_utf8_lossy(&buf[..got]).into_owned();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let out = Command::new("curl")
                .args(["-sf", "--cacert"])
                .arg(&ca)
                .arg(format!("{base}{path}"))
                .output()
                .unwrap();
            let (status, mut body) = if out.status.success() {
                ("200 OK", out.stdout)
            } else {
                ("404 Not Found", Vec::new())
            };
            if path.ends_with(tamper_suffix) {
                body = tamper(body);
            }
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}")
}
