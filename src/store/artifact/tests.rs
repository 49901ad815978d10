#![allow(clippy::unwrap_used)]

use super::*;

fn file(name: &str, content: &[u8], pending: bool) -> StoredFile {
    StoredFile {
        name: name.into(),
        digest: Sha256Digest::of(content),
        size: content.len() as u64,
        pending,
    }
}

fn sample() -> Vec<StoredFile> {
    vec![
        file("1.root.json", b"root", false),
        file("timestamp.json", b"ts", false),
        file("2.targets.json", b"targets", true),
    ]
}

fn parse(bytes: &[u8]) -> Result<Listing, ArtifactError> {
    parse_manifest(bytes, Sha256Digest::of(bytes))
}

/// Takes the sample manifest as JSON, lets `edit` change it, and parses the result.
fn parse_edited(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Listing, ArtifactError> {
    let bytes = build_manifest(&sample(), "2024-01-01T00:00:00Z");
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    edit(&mut v);
    parse(&serde_json::to_vec(&v).unwrap())
}

#[test]
fn build_matches_design_section_3_byte_for_byte() {
    let files = [
        file("1.root.json", b"root", false),
        file("2.x.json", b"x", true),
    ];
    let got = String::from_utf8(build_manifest(&files, "2024-01-01T00:00:00Z")).unwrap();
    let want = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"{m}","artifactType":"{a}","#,
            r#""config":{{"mediaType":"{e}","digest":"{ed}","size":2}},"layers":["#,
            r#"{{"mediaType":"{l}","digest":"{d1}","size":4,"annotations":"#,
            r#"{{"org.opencontainers.image.title":"1.root.json"}}}},"#,
            r#"{{"mediaType":"{l}","digest":"{d2}","size":1,"annotations":"#,
            r#"{{"org.opencontainers.image.title":"2.x.json","vnd.warrant.pending":"true"}}}}],"#,
            r#""annotations":{{"org.opencontainers.image.created":"2024-01-01T00:00:00Z","#,
            r#""vnd.warrant.layout.version":"1"}}}}"#
        ),
        m = OCI_MANIFEST_MEDIA_TYPE,
        a = TUF_ARTIFACT_TYPE,
        e = EMPTY_CONFIG_MEDIA_TYPE,
        ed = EMPTY_CONFIG_DIGEST,
        l = TUF_METADATA_MEDIA_TYPE,
        d1 = files[0].digest,
        d2 = files[1].digest,
    );
    assert_eq!(got, want);
}

#[test]
fn build_then_parse_round_trips() {
    let bytes = build_manifest(&sample(), "2024-01-01T00:00:00Z");
    assert_eq!(bytes, build_manifest(&sample(), "2024-01-01T00:00:00Z"));
    assert_eq!(
        Sha256Digest::of(EMPTY_CONFIG).to_string(),
        EMPTY_CONFIG_DIGEST
    );
    let listing = parse(&bytes).unwrap();
    assert_eq!(listing.digest, Sha256Digest::of(&bytes));
    assert_eq!(listing.files, sample());
    assert!(
        listing.get("2.targets.json").is_none(),
        "pending files are invisible"
    );
    assert!(listing.get("timestamp.json").is_some());
}

#[test]
fn config_media_type_is_accepted_when_artifact_type_is_absent() {
    let ok = parse_edited(|v| {
        v.as_object_mut().unwrap().remove("artifactType");
        v["config"]["mediaType"] = TUF_ARTIFACT_TYPE.into();
    });
    assert!(ok.is_ok());
    let err = parse_edited(|v| {
        v.as_object_mut().unwrap().remove("artifactType");
    });
    assert!(matches!(err, Err(ArtifactError::NotTufArtifact { .. })));
    let err = parse_edited(|v| {
        v["artifactType"] = "application/vnd.other".into();
        v["config"]["mediaType"] = TUF_ARTIFACT_TYPE.into();
    });
    assert!(matches!(err, Err(ArtifactError::NotTufArtifact { .. })));
}

#[test]
fn path_traversal_and_unsafe_titles_are_rejected() {
    let long = format!("{}.json", "a".repeat(251));
    let bad = [
        "../../x.json",
        "a/b.json",
        "a\\b.json",
        "..",
        ".",
        "",
        "root.txt",
    ];
    for bad in bad.into_iter().chain(["x\n.json", "x\u{7f}.json", &long]) {
        let r = parse_edited(|v| v["layers"][0]["annotations"][ANNOTATION_TITLE] = bad.into());
        assert!(
            matches!(r, Err(ArtifactError::UnsafeTitle { index: 0, .. })),
            "{bad:?}"
        );
    }
    assert!(is_safe_file_name(&format!("{}.json", "a".repeat(250))));
    assert!(is_safe_file_name("3.bin-0a.json"));
}

#[test]
fn hostile_manifests_get_precise_errors() {
    use serde_json::json;
    let pending = "/layers/2/annotations/vnd.warrant.pending";
    let title = "/layers/1/annotations/org.opencontainers.image.title";
    let cases = [
        ("/schemaVersion", json!(1), "schemaVersion is Some(1)"),
        (
            "/mediaType",
            json!("application/vnd.oci.image.index.v1+json"),
            "mediaType is",
        ),
        (
            "/layers/0/mediaType",
            json!("x"),
            "layer 0: mediaType \"x\"",
        ),
        (
            "/layers/1/digest",
            json!(EMPTY_CONFIG_DIGEST.to_uppercase()),
            "layer 1: invalid",
        ),
        ("/layers/0/size", json!(-1), "size -1 is not"),
        ("/layers/0/size", json!(1.5), "size 1.5 is not"),
        (
            "/layers/0/size",
            json!(MAX_FILE_BYTES + 1),
            "size 67108865 is not",
        ),
        (
            "/layers/0/annotations",
            json!({}),
            "layer 0: no org.opencontainers",
        ),
        (
            pending,
            json!("yes"),
            "layer 2: vnd.warrant.pending is \"yes\"",
        ),
        (
            "/annotations/vnd.warrant.layout.version",
            json!("2"),
            "version \"2\" is not",
        ),
        (
            "/layers",
            json!("no"),
            "not a valid OCI image manifest: invalid type",
        ),
        (
            title,
            json!("1.root.json"),
            "\"1.root.json\" is listed twice",
        ),
    ];
    for (pointer, value, message) in cases {
        let err = parse_edited(|v| *v.pointer_mut(pointer).unwrap() = value).unwrap_err();
        assert!(err.to_string().contains(message), "{pointer}: {err}");
    }
}

#[test]
fn duplicate_json_keys_are_rejected() {
    let bytes = String::from_utf8(build_manifest(&sample(), "t")).unwrap();
    let dup_title = bytes.replacen(
        r#""org.opencontainers.image.title":"1.root.json""#,
        r#""org.opencontainers.image.title":"1.root.json","org.opencontainers.image.title":"x.json""#,
        1,
    );
    assert!(matches!(
        parse(dup_title.as_bytes()),
        Err(ArtifactError::Json { .. })
    ));
    let dup_layers = bytes.replacen(r#""layers":"#, r#""layers":[],"layers":"#, 1);
    assert!(matches!(
        parse(dup_layers.as_bytes()),
        Err(ArtifactError::Json { .. })
    ));
}

#[test]
fn garbage_and_truncation_never_panic() {
    let good = build_manifest(&sample(), "2024-01-01T00:00:00Z");
    for end in 0..good.len() {
        assert!(parse(&good[..end]).is_err(), "truncated at {end}");
    }
    let mut flipped = good.clone();
    for i in 0..flipped.len() {
        flipped[i] ^= 0x55;
        let _ = parse(&flipped);
        flipped[i] ^= 0x55;
    }
    let deep = "[".repeat(100_000);
    let junk: [&[u8]; 6] = [b"", b"null", b"[]", b"{}", b"\xff\xfe", deep.as_bytes()];
    for junk in junk {
        assert!(parse(junk).is_err());
    }
    let big = vec![b' '; MAX_MANIFEST_BYTES as usize + 1];
    assert!(matches!(parse(&big), Err(ArtifactError::TooLarge { .. })));
}

#[test]
fn a_key_requests_manifest_is_never_read_as_tuf_metadata_nor_the_reverse() {
    let req = ArtifactKind::KEY_REQUESTS;
    let files = vec![file("3f9ac01277de.json", b"{}", false)];
    let bytes = build_manifest_of(req, &files, "2024-01-01T00:00:00Z");
    let listing = parse_manifest_of(req, &bytes, Sha256Digest::of(&bytes)).unwrap();
    assert_eq!(listing.files, files);
    assert!(matches!(
        parse(&bytes),
        Err(ArtifactError::NotTufArtifact { .. })
    ));
    let tuf = build_manifest(&sample(), "2024-01-01T00:00:00Z");
    let as_requests = parse_manifest_of(req, &tuf, Sha256Digest::of(&tuf));
    assert!(matches!(
        as_requests,
        Err(ArtifactError::NotTufArtifact { .. })
    ));
    // The right artifactType with TUF layers inside is refused too.
    let mut v: serde_json::Value = serde_json::from_slice(&tuf).unwrap();
    v["artifactType"] = req.artifact_type.into();
    let mixed = serde_json::to_vec(&v).unwrap();
    let r = parse_manifest_of(req, &mixed, Sha256Digest::of(&mixed));
    assert!(matches!(r, Err(ArtifactError::LayerMediaType { .. })));
}

/// Key requests review: one hostile layer sets itself aside, not the whole
/// manifest; the manifest itself must still be a key-request artifact.
#[test]
fn lenient_parse_sets_aside_unsafe_layers_and_keeps_the_rest() {
    let req = ArtifactKind::KEY_REQUESTS;
    let files = vec![
        file("3f9ac01277de.json", b"{}", false),
        file("0123456789ab.json", b"[]", false),
    ];
    let bytes = build_manifest_of(req, &files, "2024-01-01T00:00:00Z");
    let mut m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let layers = m["layers"].as_array_mut().unwrap();
    let mut traversal = layers[0].clone();
    traversal["annotations"][ANNOTATION_TITLE] = "../../../etc/x.json".into();
    let mut huge = layers[1].clone();
    huge["size"] = 1_000_000_000_000u64.into();
    let twice = layers[1].clone();
    layers.extend([traversal, huge, twice]);
    let bytes = serde_json::to_vec(&m).unwrap();
    let digest = Sha256Digest::of(&bytes);
    assert!(parse_manifest_of(req, &bytes, digest).is_err());
    let (listing, bad) = parse_manifest_lenient_of(req, &bytes, digest).unwrap();
    assert_eq!(listing.files, files);
    let kinds: Vec<_> = bad.iter().map(|b| (b.index, &b.error)).collect();
    assert!(
        matches!(
            kinds.as_slice(),
            [
                (2, ArtifactError::UnsafeTitle { .. }),
                (3, ArtifactError::LayerSize { .. }),
                (4, ArtifactError::DuplicateName { .. })
            ]
        ),
        "{bad:?}"
    );
    assert!(bad[0].raw.contains("etc/x.json"), "{bad:?}");
    // Not a key-request artifact at all: refused as a whole.
    let tuf = build_manifest(&sample(), "2024-01-01T00:00:00Z");
    assert!(matches!(
        parse_manifest_lenient_of(req, &tuf, Sha256Digest::of(&tuf)),
        Err(ArtifactError::NotTufArtifact { .. })
    ));
}
