//! Keys that never leave hardware: PKCS#11 tokens (YubiKey, YubiHSM, cloud HSMs,
//! SoftHSM in tests), named by RFC 7512 URIs such as
//! `pkcs11:token=warrant;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so`.
//!
//! A [`TokenKey`] is a [`Signer`] like a file key: the token signs, the private key
//! is never read (keys are generated with `CKA_SENSITIVE` and not extractable). The
//! PIN comes from `WARRANT_PKCS11_PIN`, the URI's `pin-source=file:...`, or a prompt
//! on a terminal — never from the command line, never into a log.

use std::path::PathBuf;

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest as _, Sha256};

use super::keys::{KeyId, KeyType, PublicKey, SignError, Signer};

mod uri;
pub use uri::Pkcs11Uri;

/// DER of the P-256 curve OID (`prime256v1`), the `CKA_EC_PARAMS` of its keys.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the `id-Ed25519` OID.
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// Largest PIN file read.
const MAX_PIN_FILE: u64 = 1024;

/// A PKCS#11 problem, with what to do about it (all are configuration errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The URI is not one warrant understands.
    #[error(
        "PKCS#11 URI {uri:?}: {detail} (expected pkcs11:token=LABEL;object=LABEL?module-path=/path/to/module.so)"
    )]
    BadUri {
        /// The URI, without any pin-value.
        uri: String,
        /// Why.
        detail: String,
    },
    /// The module could not be loaded or initialised.
    #[error(
        "cannot load PKCS#11 module {module}: {detail}; check module-path in the URI or WARRANT_PKCS11_MODULE"
    )]
    Module {
        /// The module path.
        module: PathBuf,
        /// Why.
        detail: String,
    },
    /// No token with that label.
    #[error("no PKCS#11 token labelled {token:?} in {module} (tokens present: {present})")]
    TokenNotFound {
        /// The label asked for.
        token: String,
        /// The module.
        module: PathBuf,
        /// Labels seen.
        present: String,
    },
    /// The PIN was refused.
    #[error("the PIN for token {token:?} was refused{tries}; set WARRANT_PKCS11_PIN or pin-source")]
    WrongPin {
        /// The token.
        token: String,
        /// What the token says about remaining tries.
        tries: String,
    },
    /// No PIN available.
    #[error(
        "no PIN for token {token:?}: set WARRANT_PKCS11_PIN, add pin-source=file:PATH to the URI, or run on a terminal"
    )]
    NoPin {
        /// The token.
        token: String,
    },
    /// No key object with that label/id.
    #[error(
        "no private key {object:?} on token {token:?}; `warrant key generate --pkcs11 URI` creates one"
    )]
    ObjectNotFound {
        /// The token.
        token: String,
        /// The object label or id.
        object: String,
    },
    /// The token cannot do what is asked.
    #[error("token {token:?} does not support {mechanism}; use --type ecdsa (P-256) on this token")]
    Unsupported {
        /// The token.
        token: String,
        /// The mechanism.
        mechanism: String,
    },
    /// Any other token failure.
    #[error("PKCS#11 token {token:?}: {detail}")]
    Token {
        /// The token.
        token: String,
        /// What failed.
        detail: String,
    },
}

/// One initialised context per module per process: PKCS#11 allows a single
/// `C_Initialize`, and finalising one context would close every other session.
fn context(module: &std::path::Path) -> Result<Pkcs11, String> {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, OnceLock};
    static CONTEXTS: OnceLock<Mutex<BTreeMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(|| Mutex::new(BTreeMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(|e| e.to_string())?;
    ctx.initialize(CInitializeArgs::OsThreads)
        .map_err(|e| e.to_string())?;
    map.insert(module.to_owned(), ctx.clone());
    Ok(ctx)
}

/// An open, logged-in session on the token of a URI.
struct Token {
    _ctx: Pkcs11,
    session: Session,
    label: String,
    mechanisms: Vec<cryptoki::mechanism::MechanismType>,
}

impl Token {
    fn open(uri: &Pkcs11Uri, rw: bool) -> Result<Self, Pkcs11Error> {
        let module = |detail: String| Pkcs11Error::Module {
            module: uri.module.clone(),
            detail,
        };
        let tok = |detail: String| Pkcs11Error::Token {
            token: uri.token.clone(),
            detail,
        };
        let ctx = context(&uri.module).map_err(module)?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| module(e.to_string()))?;
        let mut present = Vec::new();
        let mut found: Option<Slot> = None;
        for slot in slots {
            let Ok(info) = ctx.get_token_info(slot) else {
                continue;
            };
            let label = info.label().trim_end().to_owned();
            if label == uri.token {
                found = Some(slot);
                break;
            }
            present.push(label);
        }
        let slot = found.ok_or_else(|| Pkcs11Error::TokenNotFound {
            token: uri.token.clone(),
            module: uri.module.clone(),
            present: if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            },
        })?;
        let mechanisms = ctx.get_mechanism_list(slot).unwrap_or_default();
        let session = if rw {
            ctx.open_rw_session(slot)
        } else {
            ctx.open_ro_session(slot)
        }
        .map_err(|e| tok(e.to_string()))?;
        let pin = uri.pin()?;
        let auth = AuthPin::from(pin.as_str().to_owned());
        use cryptoki::error::{Error, RvError};
        match session.login(UserType::User, Some(&auth)) {
            Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(Error::Pkcs11(
                RvError::PinIncorrect | RvError::PinLocked | RvError::PinLenRange,
                _,
            )) => {
                let tries = ctx
                    .get_token_info(slot)
                    .map(|i| {
                        if i.user_pin_locked() {
                            "; the token is now locked"
                        } else if i.user_pin_final_try() {
                            "; one try is left before the token locks"
                        } else if i.user_pin_count_low() {
                            "; few tries are left"
                        } else {
                            ""
                        }
                    })
                    .unwrap_or_default()
                    .to_owned();
                return Err(Pkcs11Error::WrongPin {
                    token: uri.token.clone(),
                    tries,
                });
            }
            Err(other) => return Err(tok(format!("login failed: {other}"))),
        }
        Ok(Self {
            _ctx: ctx,
            session,
            label: uri.token.clone(),
            mechanisms,
        })
    }

    fn err(&self, detail: String) -> Pkcs11Error {
        Pkcs11Error::Token {
            token: self.label.clone(),
            detail,
        }
    }

    fn find_one(&self, uri: &Pkcs11Uri, class: ObjectClass) -> Result<ObjectHandle, Pkcs11Error> {
        let found = self
            .session
            .find_objects(&uri.template(class))
            .map_err(|e| self.err(e.to_string()))?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(Pkcs11Error::ObjectNotFound {
                token: self.label.clone(),
                object: uri.object_name(),
            }),
            more => Err(self.err(format!(
                "{} objects match {:?}: name one by id=",
                more.len(),
                uri.object_name()
            ))),
        }
    }

    /// The public key of the pair the URI names.
    fn public_key(&self, uri: &Pkcs11Uri) -> Result<PublicKey, Pkcs11Error> {
        let handle = self.find_one(uri, ObjectClass::PUBLIC_KEY)?;
        let attrs = self
            .session
            .get_attributes(handle, &[AttributeType::KeyType, AttributeType::EcPoint])
            .map_err(|e| self.err(e.to_string()))?;
        let mut key_type = None;
        let mut point = None;
        for a in attrs {
            match a {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let point = point.ok_or_else(|| self.err("the public key has no CKA_EC_POINT".into()))?;
        // CKA_EC_POINT is a DER OCTET STRING around the raw point (some tokens omit it).
        let raw = match point.as_slice() {
            [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest.to_vec(),
            _ => point.clone(),
        };
        match key_type {
            Some(t) if t == CkKeyType::EC => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&raw)
                    .map_err(|e| self.err(format!("not a P-256 public key: {e}")))?;
                PublicKey::from_p256(key).map_err(|e| self.err(e.to_string()))
            }
            Some(t) if t == CkKeyType::EC_EDWARDS => {
                let bytes: [u8; 32] = raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| self.err("an Ed25519 public key is 32 bytes".into()))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|e| self.err(e.to_string()))?;
                Ok(PublicKey::Ed25519(key))
            }
            other => Err(self.err(format!("key type {other:?} is not ECDSA P-256 or Ed25519"))),
        }
    }
}

/// A private key on a token: signs there, never leaves it.
pub struct TokenKey {
    token: Token,
    handle: ObjectHandle,
    public: PublicKey,
    uri: Pkcs11Uri,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey({}, {})", self.uri, self.public.key_id())
    }
}

impl TokenKey {
    /// Open the key the URI names (logs in with the PIN).
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
        let token = Token::open(uri, false)?;
        let public = token.public_key(uri)?;
        let handle = token.find_one(uri, ObjectClass::PRIVATE_KEY)?;
        Ok(Self {
            token,
            handle,
            public,
            uri: uri.clone(),
        })
    }

    /// The URI.
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }
}

impl Signer for TokenKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        let fail = |detail: String| SignError {
            key_id: self.public.key_id(),
            detail,
        };
        match &self.public {
            PublicKey::EcdsaP256 { .. } => {
                // CKM_ECDSA signs a digest: hash here (what ecdsa-sha2-nistp256 means),
                // and return DER like file keys (securesystemslib's encoding).
                let digest = Sha256::digest(msg);
                let raw = self
                    .token
                    .session
                    .sign(&Mechanism::Ecdsa, self.handle, &digest)
                    .map_err(|e| fail(e.to_string()))?;
                let sig = p256::ecdsa::Signature::from_slice(&raw)
                    .map_err(|e| fail(format!("the token returned a malformed signature: {e}")))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            PublicKey::Ed25519(_) => self
                .token
                .session
                .sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    self.handle,
                    msg,
                )
                .map_err(|e| fail(e.to_string())),
            PublicKey::RsaPss { .. } => Err(fail("RSA keys are verify-only".into())),
        }
    }
}

/// The public key of an existing token key pair (`warrant key import --pkcs11`).
pub fn public_key(uri: &Pkcs11Uri) -> Result<PublicKey, Pkcs11Error> {
    let token = Token::open(uri, false)?;
    token.find_one(uri, ObjectClass::PRIVATE_KEY)?;
    token.public_key(uri)
}

/// Generate a key pair on the token (`warrant key generate --pkcs11`): sensitive,
/// not extractable; labelled with the URI's `object`, id from `id=` or the key id.
pub fn generate(uri: &Pkcs11Uri, kind: KeyType) -> Result<PublicKey, Pkcs11Error> {
    let token = Token::open(uri, true)?;
    if !token
        .session
        .find_objects(&uri.template(ObjectClass::PRIVATE_KEY))
        .map_err(|e| token.err(e.to_string()))?
        .is_empty()
    {
        return Err(token.err(format!(
            "a key {:?} already exists; use `warrant key import --pkcs11 URI` to register it",
            uri.object_name()
        )));
    }
    let (mechanism, params, ck_type, name) = match kind {
        KeyType::Ecdsa => (
            Mechanism::EccKeyPairGen,
            P256_PARAMS.to_vec(),
            cryptoki::mechanism::MechanismType::ECC_KEY_PAIR_GEN,
            "ECDSA P-256 key generation (CKM_EC_KEY_PAIR_GEN)",
        ),
        KeyType::Ed25519 => (
            Mechanism::EccEdwardsKeyPairGen,
            ED25519_PARAMS.to_vec(),
            cryptoki::mechanism::MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            "Ed25519 (CKM_EC_EDWARDS_KEY_PAIR_GEN)",
        ),
    };
    if !token.mechanisms.contains(&ck_type) {
        return Err(Pkcs11Error::Unsupported {
            token: token.label.clone(),
            mechanism: name.into(),
        });
    }
    let mut label = Vec::new();
    if let Some(o) = &uri.object {
        label.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    let id = uri.id.clone().unwrap_or_else(|| {
        let mut b = [0u8; 16];
        let _ = getrandom::fill(&mut b);
        b.to_vec()
    });
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::EcParams(params),
        Attribute::Id(id.clone()),
    ];
    public.extend(label.clone());
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Id(id),
    ];
    private.extend(label);
    token
        .session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(|e| token.err(format!("key generation failed: {e}")))?;
    token.public_key(uri)
}

/// The TUF key id of a token key, for messages.
pub fn key_id(uri: &Pkcs11Uri) -> Result<KeyId, Pkcs11Error> {
    Ok(public_key(uri)?.key_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_pin_values_are_refused() {
        let u: Pkcs11Uri = "pkcs11:token=war%20rant;object=root-1;type=private?module-path=/m.so&pin-source=file:/p"
            .parse()
            .expect("uri");
        assert_eq!(u.token, "war rant");
        assert_eq!(u.object.as_deref(), Some("root-1"));
        assert_eq!(u.module, PathBuf::from("/m.so"));
        assert_eq!(u.pin_source, Some(PathBuf::from("/p")));
        let u: Pkcs11Uri = "pkcs11:token=t;id=%01%ff?module-path=/m.so"
            .parse()
            .expect("id");
        assert_eq!(u.id, Some(vec![1, 255]));
        for bad in [
            "pkcs11:object=x?module-path=/m.so",
            "pkcs11:token=t?module-path=/m.so",
            "pkcs11:token=t;object=x?module-path=/m.so&pin-value=1234",
            "pkcs11:token=t;object=x;pin-value=1234?module-path=/m.so",
            "file:token=t",
            "pkcs11:token=%zz;object=x?module-path=/m.so",
        ] {
            let e = bad.parse::<Pkcs11Uri>().expect_err(bad);
            assert!(
                !e.to_string().contains("1234"),
                "the PIN is never echoed: {e}"
            );
        }
    }
}
