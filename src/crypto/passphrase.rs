//! Where a key passphrase comes from, and the zeroized value itself.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::keystore::{KeystoreError, read_capped};

/// A passphrase, zeroized on drop and never printed.
pub struct Passphrase(Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl Passphrase {
    /// The secret text, for key encryption only (never log it).
    pub(super) fn secret(&self) -> &str {
        &self.0
    }

    /// Wrap a passphrase (rejects the empty string: keys must be encrypted at rest).
    pub fn new(s: String) -> Result<Self, KeystoreError> {
        let s = Zeroizing::new(s);
        if s.is_empty() {
            return Err(KeystoreError::BadPassphrase("the passphrase is empty"));
        }
        Ok(Self(s))
    }
}

/// Where the passphrase comes from: `--passphrase-file`, `WARRANT_PASSPHRASE`, or a
/// prompt on a terminal, in that order. Asked at most once per process.
#[derive(Debug, Default)]
pub struct PassphraseSource {
    file: Option<PathBuf>,
    cached: std::cell::OnceCell<Passphrase>,
}

impl PassphraseSource {
    /// A source reading `file` when given.
    pub fn new(file: Option<PathBuf>) -> Self {
        Self {
            file,
            cached: std::cell::OnceCell::new(),
        }
    }

    /// The passphrase; `confirm` asks twice on a prompt (for new keys).
    pub fn get(&self, confirm: bool) -> Result<&Passphrase, KeystoreError> {
        if let Some(p) = self.cached.get() {
            return Ok(p);
        }
        let p = self.read(confirm)?;
        Ok(self.cached.get_or_init(|| p))
    }

    fn read(&self, confirm: bool) -> Result<Passphrase, KeystoreError> {
        if let Some(file) = &self.file {
            // Capped like every key file; the text is zeroized when dropped.
            let bytes = Zeroizing::new(read_capped(file).map_err(|e| match e {
                KeystoreError::Io { detail, .. } => KeystoreError::PassphraseFile {
                    path: file.clone(),
                    detail,
                },
                other => other,
            })?);
            let text = Zeroizing::new(String::from_utf8(bytes.to_vec()).map_err(|_| {
                KeystoreError::BadPassphrase("the passphrase file is not UTF-8 text")
            })?);
            let line = text.lines().next().unwrap_or_default();
            return Passphrase::new(line.to_owned());
        }
        if let Ok(p) = std::env::var("WARRANT_PASSPHRASE") {
            return Passphrase::new(p);
        }
        if !std::io::stdin().is_terminal() {
            return Err(KeystoreError::NoPassphrase);
        }
        let io = |e: std::io::Error| KeystoreError::Io {
            path: "/dev/tty".into(),
            detail: e.to_string(),
        };
        let first =
            Zeroizing::new(rpassword::prompt_password("warrant key passphrase: ").map_err(io)?);
        if confirm {
            let second =
                Zeroizing::new(rpassword::prompt_password("repeat passphrase: ").map_err(io)?);
            if first != second {
                return Err(KeystoreError::BadPassphrase("the passphrases differ"));
            }
        }
        Passphrase::new(first.to_string())
    }
}
