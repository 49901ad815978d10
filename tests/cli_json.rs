//! A finished command line (issue #18 item 5): `--output json` matches the schema
//! in docs/json-output.schema.json field by field, usage errors are JSON too when
//! JSON was asked for (`-o` is short for `--output`), and the completion scripts
//! and man pages are generated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use serde_json::Value;

use common::*;

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json-output.schema.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Resolve `{"$ref": "#/$defs/NAME"}`.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/$defs/").unwrap();
            &root["$defs"][name]
        }
        None => node,
    }
}

/// Check `value` against `node`: objects have every required field and no field
/// the schema does not document; arrays and nested objects recursively; enums.
fn conforms(root: &Value, node: &Value, value: &Value, at: &str) {
    let node = resolve(root, node);
    if let Some(props) = node["properties"].as_object() {
        let obj = value
            .as_object()
            .unwrap_or_else(|| panic!("{at}: expected an object, got {value}"));
        for req in node["required"].as_array().unwrap() {
            let req = req.as_str().unwrap();
            assert!(obj.contains_key(req), "{at}: missing {req:?} in {value}");
        }
        for (k, v) in obj {
            let sub = props
                .get(k)
                .unwrap_or_else(|| panic!("{at}: field {k:?} is not documented in the schema"));
            conforms(root, sub, v, &format!("{at}.{k}"));
        }
    }
    // A nullable array (`"type": ["array", "null"]`) may be null.
    let nullable = node["type"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == "null"));
    if let Some(items) = node.get("items").filter(|_| !(nullable && value.is_null())) {
        for (i, v) in value
            .as_array()
            .unwrap_or_else(|| panic!("{at}: expected an array, got {value}"))
            .iter()
            .enumerate()
        {
            conforms(root, items, v, &format!("{at}[{i}]"));
        }
    }
    if let Some(options) = node["enum"].as_array() {
        assert!(options.contains(value), "{at}: {value} not in {options:?}");
    }
    if let Some(p) = node["pattern"].as_str() {
        let s = value.as_str().unwrap_or_default();
        // The two patterns used: sha256:HEX64 and HEX64.
        let hex = s.strip_prefix(if p.starts_with("^sha256:") {
            "sha256:"
        } else {
            ""
        });
        assert!(
            hex.is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())),
            "{at}: {s:?} does not match {p}"
        );
    }
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

#[test]
fn json_output_of_verify_inspect_status_pending_and_errors_matches_the_documented_schema() {
    let root = schema();
    let defs = &root["$defs"];
    let w = World::new();
    let (pin, _) = w.signed_v1();
    let pin = pin.to_str().unwrap();

    let r = w.verifier("v", &["-o", "json", "verify", &w.oci(":v1"), "--root", pin]);
    assert_eq!(r.code, 0, "{}", r.text());
    conforms(&root, &defs["verify"], &json_of(&r), "verify");

    let r = w.verifier(
        "v",
        &["--output=json", "inspect", &w.oci(""), "--root", pin],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    let v = json_of(&r);
    conforms(&root, &defs["inspect"], &v, "inspect");
    assert_eq!(v["targets"][0]["target"], "v1");

    let r = w.signer(&["-ojson", "status", &w.oci("")]);
    assert_eq!(r.code, 0, "{}", r.text());
    conforms(&root, &defs["status"], &json_of(&r), "status");

    let r = w.signer(&["-o", "json", "pending", &w.oci("")]);
    assert_eq!(r.code, 0, "{}", r.text());
    conforms(&root, &defs["pending"], &json_of(&r), "pending");

    // A verification that fails: exit 1, the error document on stdout.
    let r = w.verifier(
        "v",
        &["-o", "json", "verify", &w.oci(":evil"), "--root", pin],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    let v = json_of(&r);
    conforms(&root, &defs["error"], &v, "error");
    assert_eq!(v["exit_code"], 1);
}

#[test]
fn usage_errors_are_json_when_json_output_was_asked_for() {
    let root = schema();
    let w = World::new();
    for args in [
        &["-o", "json", "verify"][..],
        &["verify", "--output", "json", "--bogus", "x"],
        &["--output=json", "no-such-command"],
    ] {
        let r = w.verifier("v", args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.text());
        let v = json_of(&r);
        conforms(&root, &root["$defs"]["error"], &v, "usage error");
        assert_eq!(v["exit_code"], 2);
        assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");
        assert!(
            r.stderr.contains("error:"),
            "clap's message stays on stderr"
        );
    }
    let v = json_of(&w.verifier("v", &["-o", "json", "verify"]));
    assert!(v["error"].as_str().unwrap().contains("<REFERENCE>"), "{v}");
    // Without JSON, stdout stays empty.
    let r = w.verifier("v", &["verify"]);
    assert_eq!((r.code, r.stdout.as_str()), (2, ""));
}

#[test]
fn completions_and_man_pages_are_generated_for_every_command() {
    let w = World::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef warrant"),
        ("fish", "complete -c warrant"),
    ] {
        let r = w.verifier("v", &["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.text());
        assert!(r.stdout.contains(marker), "{shell}: no {marker:?}");
        for sub in ["verify", "sign", "completions", "man"] {
            assert!(r.stdout.contains(sub), "{shell}: {sub} not completed");
        }
    }
    let r = w.verifier("v", &["completions", "tcsh"]);
    assert_eq!(r.code, 2);

    let r = w.verifier("v", &["man"]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH warrant"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    let dir = w.path("man");
    let r = w.verifier("v", &["man", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.text());
    for page in [
        "warrant.1",
        "warrant-verify.1",
        "warrant-sign.1",
        "warrant-serve-admission.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
}

/// Issue #15: `key request` and `key requests` (a valid request and an expired
/// one, whose key fields are null) match the schema.
#[test]
fn json_output_of_key_request_and_key_requests_matches_the_documented_schema() {
    let root = schema();
    let defs = &root["$defs"];
    let w = World::new();
    w.signed_v1();
    let repo = w.oci("");
    for home in ["alice", "old"] {
        let r = w.run(w.cmd(home, &["key", "generate", "--name", home]));
        assert_eq!(r.code, 0, "{}", r.text());
    }
    let ask = |home: &str| {
        [
            "-o", "json", "key", "request", &repo, "--role", "qa", "--key", home,
        ]
        .map(str::to_owned)
    };
    let r = w.run(w.cmd("alice", &ask("alice").each_ref().map(String::as_str)));
    assert_eq!(r.code, 0, "{}", r.text());
    conforms(&root, &defs["key_request"], &json_of(&r), "key request");
    let mut old = std::process::Command::new("faketime");
    old.args(["-f", "-8d", env!("CARGO_BIN_EXE_warrant")])
        .args(ask("old"))
        .env("WARRANT_HOME", w.path("old"))
        .env("WARRANT_PASSPHRASE", "test passphrase");
    let r = w.run(old);
    assert_eq!(r.code, 0, "{}", r.text());

    let r = w.signer(&["-o", "json", "key", "requests", &repo]);
    assert_eq!(r.code, 0, "{}", r.text());
    let v = json_of(&r);
    conforms(&root, &defs["key_requests"], &v, "key requests");
    assert_eq!(v[0]["valid"], true, "{v}");
    assert_eq!(v[1]["valid"], false, "{v}");
    assert!(v[1]["fingerprint"].is_null(), "{v}");
    let old = v[1]["id"].as_str().unwrap();
    let r = w.signer(&["-o", "json", "key", "requests", &repo, "--reject", old]);
    assert_eq!(r.code, 0, "{}", r.text());
    conforms(&root, &defs["key_requests_reject"], &json_of(&r), "reject");
    let r = w.signer(&["-o", "json", "key", "requests", &repo, "--clear"]);
    assert_eq!(r.code, 0, "{}", r.text());
    conforms(&root, &defs["key_requests_clear"], &json_of(&r), "clear");
}
