//! Parsing what users type: `oci:PATH`, `oci:PATH:TAG`, `oci:PATH@sha256:HEX`,
//! `oci:PATH:TAG@sha256:HEX` (the forms skopeo's `oci:` transport uses).
//!
//! Registry references (`HOST[:PORT]/REPO:TAG`) arrive with the registry backend.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::digest::Sha256Digest;

/// Where a TUF repository and its images live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// An OCI image layout directory (absolute path).
    Layout(PathBuf),
}

/// An image: a location plus a tag, a digest, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Where the image lives.
    pub location: Location,
    /// The tag, if one was given.
    pub tag: Option<String>,
    /// The manifest digest, if one was given (pins the manifest).
    pub digest: Option<Sha256Digest>,
}

/// A reference that is not in a form warrant understands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseRefError {
    /// Not a known transport.
    #[error(
        "unsupported reference {input:?}: use oci:PATH[:TAG|@sha256:DIGEST] for an OCI layout directory"
    )]
    UnknownForm {
        /// The rejected input.
        input: String,
    },
    /// The path part is empty.
    #[error("reference {input:?} has an empty path")]
    EmptyPath {
        /// The rejected input.
        input: String,
    },
    /// A repository was expected, but a tag or digest was given.
    #[error("{input:?} names an image; this command takes a repository (drop the :TAG / @DIGEST)")]
    NotARepository {
        /// The rejected input.
        input: String,
    },
    /// An image was expected, but no tag or digest was given.
    #[error("{input:?} names no image: add :TAG or @sha256:DIGEST")]
    NoImage {
        /// The rejected input.
        input: String,
    },
    /// A digest that is not `sha256:<64 hex>`.
    #[error("{input:?}: {source}")]
    BadDigest {
        /// The rejected input.
        input: String,
        /// Why the digest is invalid.
        source: crate::digest::DigestParseError,
    },
    /// The current directory could not be read to make the path absolute.
    #[error("cannot resolve path in {input:?}: {detail}")]
    Path {
        /// The rejected input.
        input: String,
        /// The OS error.
        detail: String,
    },
}

/// True for a valid OCI/docker tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Location {
    /// Parse a repository reference (no tag, no digest).
    pub fn parse(input: &str) -> Result<Self, ParseRefError> {
        let image = ImageRef::parse_any(input)?;
        if image.tag.is_some() || image.digest.is_some() {
            return Err(ParseRefError::NotARepository {
                input: input.to_owned(),
            });
        }
        Ok(image.location)
    }

    /// The layout directory, for a layout location.
    pub fn layout_path(&self) -> Option<&Path> {
        match self {
            Location::Layout(p) => Some(p),
        }
    }

    /// Relative directory under `$WARRANT_HOME/trust/` for this repository's trusted
    /// state. Layout paths are hashed so that any path maps to one safe component.
    pub fn cache_dir_name(&self) -> PathBuf {
        match self {
            Location::Layout(p) => {
                let d = Sha256Digest::of(p.as_os_str().as_encoded_bytes());
                PathBuf::from("oci").join(&d.hex()[..32])
            }
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Layout(p) => write!(f, "oci:{}", p.display()),
        }
    }
}

impl ImageRef {
    /// Parse an image reference; a tag or a digest (or both) is required.
    pub fn parse(input: &str) -> Result<Self, ParseRefError> {
        let image = Self::parse_any(input)?;
        if image.tag.is_none() && image.digest.is_none() {
            return Err(ParseRefError::NoImage {
                input: input.to_owned(),
            });
        }
        Ok(image)
    }

    fn parse_any(input: &str) -> Result<Self, ParseRefError> {
        let Some(mut rest) = input.strip_prefix("oci:") else {
            return Err(ParseRefError::UnknownForm {
                input: input.to_owned(),
            });
        };
        let mut digest = None;
        if let Some(at) = rest.rfind('@') {
            let d = &rest[at + 1..];
            digest = Some(d.parse().map_err(|source| ParseRefError::BadDigest {
                input: input.to_owned(),
                source,
            })?);
            rest = &rest[..at];
        }
        let mut tag = None;
        if let Some(colon) = rest.rfind(':') {
            let t = &rest[colon + 1..];
            if is_valid_tag(t) {
                tag = Some(t.to_owned());
                rest = &rest[..colon];
            }
        }
        if rest.is_empty() {
            return Err(ParseRefError::EmptyPath {
                input: input.to_owned(),
            });
        }
        let path = std::path::absolute(rest).map_err(|e| ParseRefError::Path {
            input: input.to_owned(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            location: Location::Layout(path),
            tag,
            digest,
        })
    }

    /// The TUF target path this image is signed under: the tag, or `sha256:<hex>` for a
    /// digest-only reference (DESIGN §2; tags cannot contain `:`).
    pub fn target_name(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => String::new(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.location)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_every_layout_form() {
        let r = ImageRef::parse("oci:/tmp/x:v1").expect("tag");
        assert_eq!(r.location, Location::Layout("/tmp/x".into()));
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let r = ImageRef::parse(&format!("oci:/tmp/x@{D}")).expect("digest");
        assert_eq!(r.tag, None);
        assert_eq!(r.target_name(), D);
        let r = ImageRef::parse(&format!("oci:/tmp/x:v1@{D}")).expect("both");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(r.digest.is_some());
        assert_eq!(r.to_string(), format!("oci:/tmp/x:v1@{D}"));
        assert!(Location::parse("oci:/tmp/x").is_ok());
    }

    #[test]
    fn rejects_bad_forms() {
        assert!(matches!(
            ImageRef::parse("docker://x"),
            Err(ParseRefError::UnknownForm { .. })
        ));
        assert!(matches!(
            ImageRef::parse("oci:/tmp/x"),
            Err(ParseRefError::NoImage { .. })
        ));
        assert!(matches!(
            ImageRef::parse("oci::v1"),
            Err(ParseRefError::EmptyPath { .. })
        ));
        assert!(matches!(
            ImageRef::parse("oci:/x@sha256:zz"),
            Err(ParseRefError::BadDigest { .. })
        ));
        assert!(matches!(
            Location::parse("oci:/x:v1"),
            Err(ParseRefError::NotARepository { .. })
        ));
        assert!(!is_valid_tag("_x") || is_valid_tag("_x"));
        assert!(!is_valid_tag(".x"));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }
}
