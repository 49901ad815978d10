//! RFC 7512 PKCS#11 URIs: the parts warrant uses, parsed strictly, and the PIN
//! they point at.

use std::path::PathBuf;

use cryptoki::object::{Attribute, ObjectClass};
use zeroize::Zeroizing;

use super::{MAX_PIN_FILE, Pkcs11Error};

/// An RFC 7512 URI, the parts warrant uses.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=`: the token label.
    pub token: String,
    /// `object=`: the key label.
    pub object: Option<String>,
    /// `id=`: the key id (percent-decoded bytes).
    pub id: Option<Vec<u8>>,
    /// `module-path=` (or `WARRANT_PKCS11_MODULE`).
    pub module: PathBuf,
    /// `pin-source=file:PATH`.
    pub pin_source: Option<PathBuf>,
    text: String,
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Uri({})", self.text)
    }
}

impl std::fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

const PIN_VALUE_REFUSED: &str = "pin-value is refused: a PIN on the command line leaks into shell history and process lists; use WARRANT_PKCS11_PIN or pin-source";

impl std::str::FromStr for Pkcs11Uri {
    type Err = Pkcs11Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |detail: &str| Pkcs11Error::BadUri {
            uri: s.split("pin-value").next().unwrap_or(s).to_owned(),
            detail: detail.to_owned(),
        };
        if s.len() > 4096 {
            return Err(bad("longer than 4096 characters"));
        }
        let rest = s
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("must start with pkcs11:"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut id, mut module, mut pin_source) =
            (None, None, None, None, None);
        let text = |v: &str| {
            percent_decode(v)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| bad("bad percent-encoding"))
        };
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| bad("attribute without ="))?;
            match k {
                // RFC 7512 puts the PIN in the query; refused here too, or it would be
                // kept in the URI warrant stores and lists.
                "pin-value" => return Err(bad(PIN_VALUE_REFUSED)),
                "token" => token = Some(text(v)?),
                "object" => object = Some(text(v)?),
                "id" => id = Some(percent_decode(v).ok_or_else(|| bad("bad id"))?),
                // Other path attributes (type, manufacturer, serial...) narrow nothing
                // warrant needs; type=private is implied.
                _ => {}
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| bad("query attribute without ="))?;
            match k {
                "module-path" => module = Some(PathBuf::from(text(v)?)),
                "pin-source" => {
                    let v = text(v)?;
                    let path = v.strip_prefix("file:").unwrap_or(&v);
                    pin_source = Some(PathBuf::from(path));
                }
                "pin-value" => return Err(bad(PIN_VALUE_REFUSED)),
                _ => {}
            }
        }
        let token = token.ok_or_else(|| bad("token= is required"))?;
        if object.is_none() && id.is_none() {
            return Err(bad("object= or id= is required"));
        }
        let module = module
            .or_else(|| std::env::var_os("WARRANT_PKCS11_MODULE").map(PathBuf::from))
            .ok_or_else(|| bad("module-path= (or WARRANT_PKCS11_MODULE) is required"))?;
        Ok(Self {
            token,
            object,
            id,
            module,
            pin_source,
            text: s.to_owned(),
        })
    }
}

impl Pkcs11Uri {
    pub(super) fn object_name(&self) -> String {
        self.object
            .clone()
            .unwrap_or_else(|| hex::encode(self.id.clone().unwrap_or_default()))
    }

    pub(super) fn template(&self, class: ObjectClass) -> Vec<Attribute> {
        let mut t = vec![Attribute::Class(class)];
        if let Some(o) = &self.object {
            t.push(Attribute::Label(o.as_bytes().to_vec()));
        }
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        t
    }

    /// The PIN: `WARRANT_PKCS11_PIN`, else `pin-source`, else a terminal prompt.
    pub(super) fn pin(&self) -> Result<Zeroizing<String>, Pkcs11Error> {
        if let Ok(p) = std::env::var("WARRANT_PKCS11_PIN") {
            return Ok(Zeroizing::new(p));
        }
        if let Some(path) = &self.pin_source {
            let bytes = crate::fsutil::read_regular(path, MAX_PIN_FILE).map_err(|e| {
                Pkcs11Error::Token {
                    token: self.token.clone(),
                    detail: format!("pin-source {}: {e}", path.display()),
                }
            })?;
            let text = String::from_utf8(bytes).map_err(|_| Pkcs11Error::Token {
                token: self.token.clone(),
                detail: format!("pin-source {} is not text", path.display()),
            })?;
            return Ok(Zeroizing::new(
                text.trim_end_matches(['\r', '\n']).to_owned(),
            ));
        }
        use std::io::IsTerminal as _;
        if std::io::stdin().is_terminal() {
            return rpassword::prompt_password(format!("PIN for token {}: ", self.token))
                .map(Zeroizing::new)
                .map_err(|_| Pkcs11Error::NoPin {
                    token: self.token.clone(),
                });
        }
        Err(Pkcs11Error::NoPin {
            token: self.token.clone(),
        })
    }
}
