//! Bounds under attack (issue #11 items 6–10): a hostile registry, token service or
//! credential helper must not make a command stall or exhaust the host. Each test
//! drives the real `warrant` binary against an in-process hostile server and
//! checks the command's own outcome (exit code, message, peak memory); time is
//! bounded by the command's `--deadline`, with an outer kill only as a safety net.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::hostile::{Hostile, Reply, Seen, run_watched};
use common::*;
use serde_json::{Value, json};

/// Outer safety net for every command: far above any deadline used here.
const KILL_AFTER: Duration = Duration::from_secs(90);

/// Peak RSS a verify may reach: a few times what a normal one takes (a debug
/// build peaks around 10–20 MiB); every attack below would pass it tenfold.
const MAX_RSS_KIB: u64 = 100 * 1024;

/// A signed OCI layout (`v1` signed) and the root a verifier pins.
fn signed_layout() -> (World, PathBuf) {
    let w = World::new();
    let (root, _) = w.signed_v1();
    (w, root)
}

fn blob(layout: &Path, digest: &str) -> Option<Bytes> {
    std::fs::read(blob_path(layout, digest))
        .ok()
        .map(Bytes::from)
}

fn manifest_reply(bytes: Bytes, media_type: &str) -> Reply {
    Reply::Full {
        status: 200,
        headers: vec![
            ("Content-Type".into(), media_type.into()),
            (
                "Docker-Content-Digest".into(),
                format!("sha256:{}", sha256_hex(&bytes)),
            ),
        ],
        body: bytes,
    }
}

/// Serve the layout of `w` as a registry repository `team/app`, with `tuf` as the
/// `warrant.tuf` manifest and `extra` as additional blobs.
fn layout_registry(
    w: &World,
    tuf: Bytes,
    extra: Vec<(String, Bytes)>,
) -> impl Fn(&Seen) -> Reply + use<> {
    let layout = w.layout();
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    move |req: &Seen| {
        let Some(rest) = req.path.strip_prefix("/v2/team/app/") else {
            return Reply::status(if req.path == "/v2/" { 200 } else { 404 });
        };
        if let Some(reference) = rest.strip_prefix("manifests/") {
            if reference == "warrant.tuf" {
                return manifest_reply(tuf.clone(), "application/vnd.oci.image.manifest.v1+json");
            }
            let entry = index["manifests"].as_array().unwrap().iter().find(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"] == reference
                    || m["digest"] == reference
            });
            return match entry.and_then(|m| blob(&layout, m["digest"].as_str()?)) {
                Some(b) => manifest_reply(b, "application/vnd.oci.image.manifest.v1+json"),
                None => Reply::status(404),
            };
        }
        if let Some(digest) = rest.strip_prefix("blobs/") {
            let found = extra
                .iter()
                .find(|(d, _)| d == digest)
                .map(|(_, b)| b.clone())
                .or_else(|| blob(&layout, digest));
            return match found {
                Some(body) => Reply::Full {
                    status: 200,
                    headers: vec![],
                    body,
                },
                None => Reply::status(404),
            };
        }
        Reply::status(404)
    }
}

fn verify_cmd(w: &World, home: &str, reference: &str, root: &Path, extra: &[&str]) -> Command {
    let mut c = w.cmd(
        home,
        &["verify", reference, "--root", root.to_str().unwrap()],
    );
    c.args(extra).env_remove("WARRANT_PASSPHRASE");
    c.env("DOCKER_CONFIG", w.path("docker"));
    c
}

/// Issue #11 item 6: a `warrant.tuf` listing thousands of extra `N.targets.json`
/// layers once made a verify fetch them all at once (17,005 GETs, 5.4 GB RSS).
#[test]
fn thousands_of_extra_layers_do_not_amplify_memory() {
    let (w, root) = signed_layout();
    let (mut tuf, _) = tuf_manifest(&w.layout());
    // 4,000 layers of 256 KiB each (1 GiB if all fetched), all one junk blob.
    let junk = Bytes::from(vec![b'x'; 256 * 1024]);
    let junk_digest = format!("sha256:{}", sha256_hex(&junk));
    let layers = tuf["layers"].as_array_mut().unwrap();
    for n in 0..4000 {
        layers.push(json!({
            "mediaType": "application/vnd.warrant.tuf.metadata.v1+json",
            "digest": junk_digest,
            "size": junk.len(),
            "annotations": {"org.opencontainers.image.title": format!("{}.targets.json", 1000 + n)}
        }));
    }
    let tuf = Bytes::from(serde_json::to_vec(&tuf).unwrap());
    assert!(tuf.len() < 4 * 1024 * 1024, "within the manifest cap");
    let reg = Hostile::start(
        "127.0.0.1",
        layout_registry(&w, tuf, vec![(junk_digest.clone(), junk)]),
    );
    let reference = format!("{}/team/app:v1", reg.host());
    let watched = run_watched(
        verify_cmd(&w, "v", &reference, &root, &[]),
        MAX_RSS_KIB,
        KILL_AFTER,
    );
    eprintln!("peak RSS of the verify: {} KiB", watched.peak_kib);
    assert_eq!(watched.killed, None, "{}", watched.run.text());
    assert_eq!(watched.run.code, 0, "{}", watched.run.text());
    let junk_gets = reg
        .seen()
        .iter()
        .filter(|s| s.path.ends_with(&junk_digest))
        .count();
    assert!(junk_gets <= 1, "{junk_gets} GETs of extra layers");
}

/// A registry whose every request needs a token from `realm`.
fn token_walled(realm: String) -> impl Fn(&Seen) -> Reply {
    move |req: &Seen| match req.header("authorization") {
        Some(_) => Reply::status(404),
        None => Reply::bearer_challenge(&realm),
    }
}

/// Issue #11 item 7: a token service that drips a byte a second held
/// `verify --timeout 5` for minutes (no credentials needed to trigger it).
#[test]
fn dripping_token_endpoint_hits_the_deadline() {
    let (w, root) = signed_layout();
    let tokens = Hostile::start("127.0.0.1", |_: &Seen| Reply::Drip {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        every: Duration::from_millis(500),
    });
    let reg = Hostile::start(
        "127.0.0.1",
        token_walled(format!("http://{}/token", tokens.host())),
    );
    let reference = format!("{}/team/app:v1", reg.host());
    let extra = ["--timeout", "2", "--deadline", "4"];
    let watched = run_watched(
        verify_cmd(&w, "v", &reference, &root, &extra),
        MAX_RSS_KIB,
        KILL_AFTER,
    );
    let r = &watched.run;
    assert_eq!(watched.killed, None, "{}", r.text());
    assert_eq!(r.code, 3, "{}", r.text());
    assert!(
        r.stderr
            .contains("deadline of 4 s exceeded while requesting a token"),
        "{}",
        r.stderr
    );
    assert!(!tokens.seen().is_empty());
}

/// Issue #11 item 7: a token service streaming gigabytes drove RSS to 9.5 GB.
#[test]
fn endless_token_body_is_capped() {
    let (w, root) = signed_layout();
    let tokens = Hostile::start("127.0.0.1", |_: &Seen| Reply::Endless {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
    });
    let reg = Hostile::start(
        "127.0.0.1",
        token_walled(format!("http://{}/token", tokens.host())),
    );
    let reference = format!("{}/team/app:v1", reg.host());
    let watched = run_watched(
        verify_cmd(&w, "v", &reference, &root, &[]),
        MAX_RSS_KIB,
        KILL_AFTER,
    );
    eprintln!("peak RSS of the verify: {} KiB", watched.peak_kib);
    let r = &watched.run;
    assert_eq!(watched.killed, None, "{}", r.text());
    assert_eq!(r.code, 3, "{}", r.text());
    assert!(r.stderr.contains("more than 64 KiB"), "{}", r.stderr);
}

/// Issue #11 item 8: with every request answered only after its retries,
/// `verify --timeout 5` took 103 s: the timeout bounded one attempt, not the
/// command. Here every request stalls; the deadline ends the command.
#[test]
fn retries_do_not_outlive_the_deadline() {
    let (w, root) = signed_layout();
    let reg = Hostile::start("127.0.0.1", |_: &Seen| Reply::Hang);
    let reference = format!("{}/team/app:v1", reg.host());
    let extra = ["--timeout", "1", "--deadline", "3"];
    let watched = run_watched(
        verify_cmd(&w, "v", &reference, &root, &extra),
        MAX_RSS_KIB,
        KILL_AFTER,
    );
    let r = &watched.run;
    assert_eq!(watched.killed, None, "{}", r.text());
    assert_eq!(r.code, 3, "{}", r.text());
    assert!(
        r.stderr.contains("deadline of 3 s exceeded while"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("raise --deadline"), "{}", r.stderr);
    // Each attempt got at most the per-request timeout: more than one was made.
    assert!(reg.seen().len() >= 2, "{:?}", reg.seen());
}

/// A docker config with basic credentials for `registry`.
fn docker_login(w: &World, registry: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::create_dir_all(w.path("docker")).unwrap();
    std::fs::write(
        w.path("docker/config.json"),
        json!({"auths": {registry: {"auth": auth}}}).to_string(),
    )
    .unwrap();
}

/// Issue #11 item 9: a 401 whose realm named another host received the user's
/// Basic credentials, over plain HTTP.
#[test]
fn credentials_are_not_sent_to_a_foreign_plain_http_realm() {
    let (w, root) = signed_layout();
    // 127.0.0.2 is loopback too, but another host than the registry's 127.0.0.1.
    let tokens = Hostile::start("127.0.0.2", |_: &Seen| Reply::status(401));
    let reg = Hostile::start(
        "127.0.0.1",
        token_walled(format!("http://{}/token", tokens.host())),
    );
    docker_login(&w, &reg.host());
    let reference = format!("{}/team/app:v1", reg.host());
    let watched = run_watched(
        verify_cmd(&w, "v", &reference, &root, &[]),
        MAX_RSS_KIB,
        KILL_AFTER,
    );
    let r = &watched.run;
    let seen = tokens.seen();
    assert!(!seen.is_empty(), "the token service was asked");
    for s in &seen {
        assert_eq!(s.header("authorization"), None, "credentials leaked: {s:?}");
    }
    assert_eq!(r.code, 3, "{}", r.text());
    assert!(
        r.stderr.contains("did not send your credentials"),
        "{}",
        r.stderr
    );
    assert!(!r.text().contains("s3cret"));
}

/// The rule still lets a local setup work: a token service on the registry's own
/// loopback host (another port) gets the credentials, and its token is used.
#[test]
fn credentials_go_to_a_plain_http_realm_on_the_same_loopback_host() {
    let (w, root) = signed_layout();
    let tokens = Hostile::start("127.0.0.1", |_: &Seen| Reply::Full {
        status: 200,
        headers: vec![],
        body: Bytes::from_static(br#"{"token":"t0ken"}"#),
    });
    let (tuf, _) = tuf_manifest(&w.layout());
    let tuf = Bytes::from(serde_json::to_vec(&tuf).unwrap());
    let behind = layout_registry(&w, tuf, vec![]);
    let realm = format!("http://{}/token", tokens.host());
    let reg = Hostile::start("127.0.0.1", move |req: &Seen| {
        match req.header("authorization") {
            Some("Bearer t0ken") => behind(req),
            _ => Reply::bearer_challenge(&realm),
        }
    });
    docker_login(&w, &reg.host());
    let reference = format!("{}/team/app:v1", reg.host());
    let r = run_watched(
        verify_cmd(&w, "v", &reference, &root, &[]),
        MAX_RSS_KIB,
        KILL_AFTER,
    )
    .run;
    let sent = tokens.seen();
    assert!(
        sent.iter().all(|s| s
            .header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))),
        "{sent:?}"
    );
    assert!(
        reg.seen()
            .iter()
            .any(|s| s.header("authorization") == Some("Bearer t0ken")),
        "{}",
        r.text()
    );
    assert_eq!(r.code, 0, "{}", r.text());
}

/// A docker config naming `docker-credential-NAME` for `registry`, with the
/// helper's script in a directory put first on PATH.
fn helper_cmd(w: &World, registry: &str, name: &str, script: &str, extra: &[&str]) -> Command {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = w.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&helper, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(w.path("docker")).unwrap();
    std::fs::write(
        w.path("docker/config.json"),
        json!({"credHelpers": {registry: name}}).to_string(),
    )
    .unwrap();
    let root = w.path("export/1.root.json");
    let reference = format!("{registry}/team/app:v1");
    let mut c = verify_cmd(w, "v", &reference, &root, extra);
    let path = std::env::var("PATH").unwrap_or_default();
    c.env("PATH", format!("{}:{path}", bin.display()));
    c
}

/// Issue #11 item 10: credential helpers ran with no timeout; a hanging one hung
/// the command for good.
#[test]
fn hanging_credential_helper_times_out() {
    let (w, _) = signed_layout();
    let reg = Hostile::start("127.0.0.1", |_: &Seen| Reply::status(404));
    let cmd = helper_cmd(
        &w,
        &reg.host(),
        "hang",
        "exec sleep 600",
        &["--deadline", "2"],
    );
    let watched = run_watched(cmd, MAX_RSS_KIB, KILL_AFTER);
    let r = &watched.run;
    assert_eq!(watched.killed, None, "{}", r.text());
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(
        r.stderr
            .contains("docker-credential-hang did not answer within 2 s"),
        "{}",
        r.stderr
    );
    assert!(reg.seen().is_empty(), "no request before credentials");
}

/// Issue #11 item 10: a helper's answer was read without a cap.
#[test]
fn flooding_credential_helper_is_capped() {
    let (w, _) = signed_layout();
    let reg = Hostile::start("127.0.0.1", |_: &Seen| Reply::status(404));
    let cmd = helper_cmd(&w, &reg.host(), "flood", "exec yes", &[]);
    let watched = run_watched(cmd, MAX_RSS_KIB, KILL_AFTER);
    eprintln!("peak RSS: {} KiB", watched.peak_kib);
    let r = &watched.run;
    assert_eq!(watched.killed, None, "{}", r.text());
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(
        r.stderr.contains("answer larger than 64 KiB"),
        "{}",
        r.stderr
    );
}
