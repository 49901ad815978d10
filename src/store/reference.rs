//! Parsing what users type.
//!
//! * OCI layouts, as skopeo's `oci:` transport writes them: `oci:PATH`,
//!   `oci:PATH:TAG`, `oci:PATH@sha256:HEX`, `oci:PATH:TAG@sha256:HEX`.
//! * Registries, normalized exactly as docker does: `HOST[:PORT]/REPO[:TAG][@DIGEST]`;
//!   a first component without `.` or `:` (and not `localhost`) is a Docker Hub path,
//!   so `alpine` is `docker.io/library/alpine` and `me/app` is `docker.io/me/app`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::digest::Sha256Digest;

/// Where a TUF repository and its images live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// An OCI image layout directory (absolute path).
    Layout(PathBuf),
    /// A repository in an OCI distribution registry.
    Registry {
        /// `host[:port]`, lowercase (`docker.io` for Docker Hub).
        registry: String,
        /// The repository path (`library/alpine`, `team/app`).
        repository: String,
    },
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
    /// Not a known transport, or not a valid registry reference.
    #[error(
        "unsupported reference {input:?}: use HOST[:PORT]/REPO[:TAG][@sha256:DIGEST] for a registry, \
         or oci:PATH[:TAG][@sha256:DIGEST] for an OCI layout directory"
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
            Location::Registry { .. } => None,
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
            // Both parts were validated: lowercase host characters and repository
            // components that cannot be `.`, `..` or empty.
            // `.state` cannot be a repository component (they start with [a-z0-9]),
            // so `team/app`'s files never collide with a repository `team/app/x`.
            Location::Registry {
                registry,
                repository,
            } => PathBuf::from(registry).join(repository).join(".state"),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Layout(p) => write!(f, "oci:{}", p.display()),
            Location::Registry {
                registry,
                repository,
            } => write!(f, "{registry}/{repository}"),
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
            return parse_registry(input);
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

/// A valid registry host: `[a-z0-9.-]+` with an optional `:port`, or an IPv6 literal.
fn is_valid_host(h: &str) -> bool {
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || h.starts_with('[') => (n, Some(p)),
        _ => (h, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
    } else {
        !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !name.starts_with(['.', '-'])
    };
    port_ok && name_ok
}

/// A valid repository path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            x if x.is_ascii_lowercase() || x.is_ascii_digit() => i += 1,
            b'.' | b'_' | b'-' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
                    i += 1;
                }
                let sep = &c[start..i];
                if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// Parse `HOST[:PORT]/REPO[:TAG][@DIGEST]` with docker's normalization.
fn parse_registry(input: &str) -> Result<ImageRef, ParseRefError> {
    let unknown = || ParseRefError::UnknownForm {
        input: input.to_owned(),
    };
    if input.is_empty() || input.len() > 4096 || input.contains("://") {
        return Err(unknown());
    }
    let (name_tag, digest) = match input.split_once('@') {
        Some((n, d)) => (
            n,
            Some(d.parse().map_err(|source| ParseRefError::BadDigest {
                input: input.to_owned(),
                source,
            })?),
        ),
        None => (input, None),
    };
    // A tag is after the last `:` that follows the last `/` (a `:` before it is a port).
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => {
            let tag = &name_tag[last_slash + i + 1..];
            if !is_valid_tag(tag) {
                return Err(unknown());
            }
            (&name_tag[..last_slash + i], Some(tag.to_owned()))
        }
        None => (name_tag, None),
    };
    let (registry, repository) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
        {
            (first.to_owned(), rest.to_owned())
        }
        Some(_) => ("docker.io".to_owned(), name.to_owned()),
        None => ("docker.io".to_owned(), format!("library/{name}")),
    };
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => registry,
    };
    // Docker Hub's official images live under `library/`, however they are
    // spelled: `alpine`, `docker.io/alpine` and `index.docker.io/alpine` are one
    // image, so one policy entry and one trusted cache (issue #11 item 5).
    let repository = if registry == "docker.io" && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    if !is_valid_host(&registry)
        || repository.len() > 255
        || !repository.split('/').all(is_valid_component)
    {
        return Err(unknown());
    }
    Ok(ImageRef {
        location: Location::Registry {
            registry,
            repository,
        },
        tag,
        digest,
    })
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
    fn registry_references_normalize_like_docker() {
        let reg = |r: &str, repo: &str| Location::Registry {
            registry: r.into(),
            repository: repo.into(),
        };
        let cases = [
            (
                "alpine:3".to_owned(),
                reg("docker.io", "library/alpine"),
                Some("3"),
                false,
            ),
            (
                "me/app:v1".to_owned(),
                reg("docker.io", "me/app"),
                Some("v1"),
                false,
            ),
            (
                "index.docker.io/library/alpine:3".to_owned(),
                reg("docker.io", "library/alpine"),
                Some("3"),
                false,
            ),
            (
                "localhost:5000/team/app:v1".to_owned(),
                reg("localhost:5000", "team/app"),
                Some("v1"),
                false,
            ),
            (
                "localhost/app:v1".to_owned(),
                reg("localhost", "app"),
                Some("v1"),
                false,
            ),
            (
                format!("127.0.0.1:5000/a/b/c@{D}"),
                reg("127.0.0.1:5000", "a/b/c"),
                None,
                true,
            ),
            (
                format!("ghcr.io/o/app:v1@{D}"),
                reg("ghcr.io", "o/app"),
                Some("v1"),
                true,
            ),
            (
                "[::1]:5000/app:t".to_owned(),
                reg("[::1]:5000", "app"),
                Some("t"),
                false,
            ),
        ];
        for (input, loc, tag, has_digest) in cases {
            let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.location, loc, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
            assert_eq!(r.digest.is_some(), has_digest, "{input}");
        }
        let repo = Location::parse("localhost:5000/team/app").expect("repo");
        assert_eq!(repo.to_string(), "localhost:5000/team/app");
        assert_eq!(
            repo.cache_dir_name(),
            PathBuf::from("localhost:5000/team/app/.state")
        );
        for bad in [
            "UPPER/app:v1",
            "host.io/../x:v1",
            "host.io/a//b:v1",
            "a:b:c",
            "host.io/app:v1:v2",
            "x/.y:1",
            "https://host/app",
            "",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_bad_forms() {
        assert!(matches!(
            ImageRef::parse("docker://x"),
            Err(ParseRefError::UnknownForm { .. })
        ));
        assert!(matches!(
            ImageRef::parse("localhost:5000/app"),
            Err(ParseRefError::NoImage { .. })
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
        assert!(is_valid_tag("_x"));
        assert!(!is_valid_tag(".x"));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }

    /// Issue #11 item 5: every spelling docker treats as one image is one location,
    /// and the normalization agrees with oci-client's reference parser (the
    /// distribution project's grammar) on each of them.
    #[test]
    fn docker_hub_spellings_are_one_image_and_agree_with_oci_client() {
        for input in [
            "alpine:latest",
            "alpine:3",
            "library/alpine:3",
            "docker.io/alpine:3",
            "docker.io/library/alpine:3",
            "index.docker.io/alpine:3",
            "index.docker.io/library/alpine:3",
            "me/app:1",
            "docker.io/me/app:1",
            "localhost:5000/app:1",
            "localhost/app:1",
            "ghcr.io/org/app:1",
            "registry.example.com:443/a/b/c:v1.2",
            "127.0.0.1:5000/team/app:v1",
        ] {
            let ours = ImageRef::parse(input).expect(input);
            let Location::Registry {
                registry,
                repository,
            } = &ours.location
            else {
                panic!("{input}: not a registry location");
            };
            let theirs = oci_client::Reference::try_from(input).expect(input);
            assert_eq!(registry, theirs.registry(), "{input}: registry");
            assert_eq!(repository, theirs.repository(), "{input}: repository");
            assert_eq!(ours.tag.as_deref(), theirs.tag(), "{input}: tag");
        }
        let hub = ImageRef::parse("alpine:3").expect("alpine");
        for same in [
            "docker.io/alpine:3",
            "index.docker.io/alpine:3",
            "registry-1.docker.io/alpine:3",
        ] {
            assert_eq!(
                ImageRef::parse(same).expect(same).location,
                hub.location,
                "{same}"
            );
        }
    }
}
