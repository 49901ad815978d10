//! containerd's side of the exchange, as its bindir verifier plugin
//! (`pkg/imageverifier/bindir`) defines it: the arguments, stdin, and the answer.

use std::ffi::OsString;
use std::time::Duration;

use serde::Deserialize;

use super::Blocked;

/// containerd keeps this much of a verifier's stdout.
pub const OUTPUT_LIMIT: usize = 32 * 1024;
/// The media type of stdin when containerd sends the bare descriptor.
pub const DESCRIPTOR_MEDIA_TYPE: &str = "application/vnd.oci.descriptor.v1+json";
/// The media type of stdin when containerd (with `verify_on_run`) wraps the
/// descriptor with the operation and run context.
pub const VERIFIER_INPUT_MEDIA_TYPE: &str =
    "application/vnd.containerd.image-verifier.input.v1+json";
/// The flags containerd passes (and `-timeout`, ours).
const FLAGS: [&str; 5] = ["name", "digest", "stdin-media-type", "operation", "timeout"];

/// True when `arg` is one of containerd's single-dash verifier flags
/// (`-name`, `-digest`, `-stdin-media-type`, `-operation`, or `-flag=value`).
pub fn is_containerd_flag(arg: &str) -> bool {
    let Some(body) = arg.strip_prefix('-').filter(|b| !b.starts_with('-')) else {
        return false;
    };
    let key = body.split_once('=').map_or(body, |(k, _)| k);
    FLAGS[..4].contains(&key)
}

/// A verification request, parsed from containerd's arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `-name`: the reference being pulled (`docker.io/library/alpine:3.20`).
    pub name: String,
    /// `-digest`: the resolved manifest (or index) digest.
    pub digest: String,
    /// `-stdin-media-type`, when given.
    pub stdin_media_type: Option<String>,
    /// `-operation` (`pull` or `run`), when given; informative.
    pub operation: Option<String>,
    /// `-timeout`, when given (else `WARRANT_VERIFIER_TIMEOUT`, else 8 s).
    pub timeout: Option<String>,
    /// Flags this version does not know, kept for the debug log.
    pub ignored: Vec<String>,
}

impl Request {
    /// Parse the arguments after `argv[0]` as Go's `flag` package would (`-f v`,
    /// `-f=v`, `--f v`), except that unknown flags are skipped instead of fatal:
    /// newer containerd adds flags (e.g. `-operation`), and an unknown `-f v` or
    /// `-f=v` is passed over whole. `-name` and `-digest` may appear once.
    pub fn parse(args: &[OsString]) -> Result<Self, Blocked> {
        let mut req = Request::default();
        let mut seen: Vec<&'static str> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i]
                .to_str()
                .ok_or_else(|| Blocked::Usage("an argument is not UTF-8".into()))?;
            if arg == "--" || arg == "-" || !arg.starts_with('-') {
                break; // Go's flag package stops at the first non-flag.
            }
            let body = arg
                .strip_prefix("--")
                .or_else(|| arg.strip_prefix('-'))
                .unwrap_or(arg);
            let (key, inline) = match body.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (body, None),
            };
            let next_is_value = args
                .get(i + 1)
                .and_then(|a| a.to_str())
                .is_some_and(|a| !a.starts_with('-'));
            let Some(&known) = FLAGS.iter().find(|f| **f == key) else {
                req.ignored.push(arg.to_owned());
                i += if inline.is_none() && next_is_value {
                    2
                } else {
                    1
                };
                continue;
            };
            let value = match inline {
                Some(v) => v.to_owned(),
                None => {
                    i += 1;
                    args.get(i)
                        .and_then(|a| a.to_str())
                        .ok_or_else(|| Blocked::Usage(format!("flag -{known} needs a value")))?
                        .to_owned()
                }
            };
            if seen.contains(&known) {
                return Err(Blocked::Usage(format!("flag -{known} is given twice")));
            }
            seen.push(known);
            match known {
                "name" => req.name = value,
                "digest" => req.digest = value,
                "stdin-media-type" => req.stdin_media_type = Some(value),
                "operation" => req.operation = Some(value),
                _ => req.timeout = Some(value),
            }
            i += 1;
        }
        if req.name.is_empty() {
            return Err(Blocked::Usage("missing -name".into()));
        }
        if req.digest.is_empty() {
            return Err(Blocked::Usage("missing -digest".into()));
        }
        Ok(req)
    }
}

/// Parse a time budget: Go duration units (`8s`, `500ms`, `1m`, `1.5s`) or plain
/// seconds (`8`); between 100 ms and 10 min.
pub fn parse_budget(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("invalid time budget {s:?}: use e.g. 8s or 1500ms")),
    };
    let secs = number
        .parse::<f64>()
        .map_err(|_| format!("invalid time budget {s:?}: use e.g. 8s or 1500ms"))?
        * scale;
    if !(0.1..=600.0).contains(&secs) {
        return Err(format!(
            "time budget {s:?} is out of range (100ms to 10m); keep it below containerd's per_verifier_timeout"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The answer to containerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Allow the pull.
    pub allow: bool,
    /// Why, for people reading containerd's error or log.
    pub reason: String,
}

impl Judgement {
    pub(super) fn blocked(why: impl std::fmt::Display) -> Self {
        Self {
            allow: false,
            reason: format!("blocked: {why}"),
        }
    }

    /// The exit status: 0 allows the pull.
    pub fn exit_code(&self) -> u8 {
        if self.allow { 0 } else { 1 }
    }

    /// The reason as containerd should get it: one line (control characters
    /// become spaces), newline included, at most [`OUTPUT_LIMIT`] bytes.
    pub fn line(&self) -> String {
        let mut s: String = self
            .reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if s.len() > OUTPUT_LIMIT - 1 {
            let mut end = OUTPUT_LIMIT - 1 - "...".len();
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push_str("...");
        }
        s.push('\n');
        s
    }
}

/// The descriptor fields the verifier needs (OCI: all three are required).
#[derive(Debug, Deserialize)]
pub(super) struct Descriptor {
    #[serde(rename = "mediaType")]
    _media_type: String,
    pub(super) digest: String,
    pub(super) size: u64,
}

/// containerd's `verify_on_run` input: the descriptor plus run context.
#[derive(Debug, Deserialize)]
struct VerifierInput {
    descriptor: Option<Descriptor>,
}

pub(super) fn parse_stdin(media_type: Option<&str>, stdin: &[u8]) -> Result<Descriptor, Blocked> {
    if stdin.iter().all(u8::is_ascii_whitespace) {
        return Err(Blocked::Stdin(
            "no descriptor (containerd writes the image's OCI descriptor as JSON)".into(),
        ));
    }
    let bad = |e: serde_json::Error| Blocked::Stdin(format!("not an OCI descriptor: {e}"));
    match media_type {
        None | Some(DESCRIPTOR_MEDIA_TYPE) => serde_json::from_slice(stdin).map_err(bad),
        Some(VERIFIER_INPUT_MEDIA_TYPE) => serde_json::from_slice::<VerifierInput>(stdin)
            .map_err(bad)?
            .descriptor
            .ok_or_else(|| {
                Blocked::Stdin(format!("{VERIFIER_INPUT_MEDIA_TYPE} without a descriptor"))
            }),
        Some(other) => Err(Blocked::Stdin(format!(
            "unsupported -stdin-media-type {other:?}: this warrant understands {DESCRIPTOR_MEDIA_TYPE} and {VERIFIER_INPUT_MEDIA_TYPE}; upgrade warrant"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_containerds_arguments_and_skips_unknown_flags() {
        let r = Request::parse(&args(&[
            "-name",
            "docker.io/library/alpine:3",
            "-digest",
            D,
            "-stdin-media-type",
            DESCRIPTOR_MEDIA_TYPE,
        ]))
        .expect("parse");
        assert_eq!(r.name, "docker.io/library/alpine:3");
        assert_eq!(r.digest, D);
        assert_eq!(r.stdin_media_type.as_deref(), Some(DESCRIPTOR_MEDIA_TYPE));
        let r = Request::parse(&args(&[
            "-operation",
            "run",
            "--future=1",
            "-switch",
            "-other",
            "value",
            "--name=a:1",
            "-digest",
            D,
            "positional",
            "-name",
            "ignored-after-positional",
        ]))
        .expect("unknown flags skipped");
        assert_eq!(r.name, "a:1");
        assert_eq!(r.operation.as_deref(), Some("run"));
        assert_eq!(r.ignored, ["--future=1", "-switch", "-other"]);
    }

    #[test]
    fn missing_or_repeated_arguments_are_refused() {
        for bad in [
            &["-digest", D][..],
            &["-name", "a:1"],
            &["-name", "a:1", "-digest"],
            &["-name", "a:1", "-name", "b:1", "-digest", D],
            &["-name=", "-digest", D],
        ] {
            assert!(
                matches!(Request::parse(&args(bad)), Err(Blocked::Usage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn containerd_flags_are_recognised_only_in_single_dash_form() {
        assert!(is_containerd_flag("-name"));
        assert!(is_containerd_flag("-stdin-media-type=x"));
        assert!(is_containerd_flag("-operation"));
        assert!(!is_containerd_flag("--name"));
        assert!(!is_containerd_flag("-timeout"));
        assert!(!is_containerd_flag("name"));
    }

    #[test]
    fn budgets_use_go_units_within_bounds() {
        assert_eq!(parse_budget("8s"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_budget("8"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_budget("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_budget("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_budget("1m"), Ok(Duration::from_secs(60)));
        for bad in ["", "s", "8h", "0", "50ms", "11m", "-1s", "1.2.3s"] {
            assert!(parse_budget(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_answer_is_one_line_within_containerds_limit() {
        let j = Judgement {
            allow: false,
            reason: format!("blocked: a\nb\r\tc {}", "é".repeat(40_000)),
        };
        let line = j.line();
        assert!(line.len() <= OUTPUT_LIMIT, "{}", line.len());
        assert!(line.ends_with("...\n"));
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.starts_with("blocked: a b  c é"));
        let short = Judgement {
            allow: true,
            reason: "trusted: x".into(),
        };
        assert_eq!(short.line(), "trusted: x\n");
    }

    #[test]
    fn stdin_must_be_a_descriptor_of_a_known_media_type() {
        let desc = format!(
            r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{D}","size":9}}"#
        );
        let d = parse_stdin(Some(DESCRIPTOR_MEDIA_TYPE), desc.as_bytes()).expect("descriptor");
        assert_eq!((d.digest.as_str(), d.size), (D, 9));
        assert!(parse_stdin(None, desc.as_bytes()).is_ok());
        let wrapped = format!(r#"{{"operation":"run","descriptor":{desc},"annotations":{{}}}}"#);
        assert!(parse_stdin(Some(VERIFIER_INPUT_MEDIA_TYPE), wrapped.as_bytes()).is_ok());
        for (mt, input) in [
            (Some(DESCRIPTOR_MEDIA_TYPE), "".to_owned()),
            (Some(DESCRIPTOR_MEDIA_TYPE), "\n".to_owned()),
            (Some(DESCRIPTOR_MEDIA_TYPE), "not json".to_owned()),
            (
                Some(DESCRIPTOR_MEDIA_TYPE),
                format!(r#"{{"digest":"{D}","size":9}}"#),
            ),
            (
                Some(DESCRIPTOR_MEDIA_TYPE),
                format!(r#"{{"mediaType":"x","digest":"{D}","size":-1}}"#),
            ),
            (
                Some(VERIFIER_INPUT_MEDIA_TYPE),
                r#"{"operation":"pull"}"#.to_owned(),
            ),
            (Some("application/x-unknown"), desc.clone()),
        ] {
            assert!(
                matches!(parse_stdin(mt, input.as_bytes()), Err(Blocked::Stdin(_))),
                "{mt:?} {input:?}"
            );
        }
    }
}
