#![allow(clippy::unwrap_used)]

use super::*;
use crate::store::TUF_TAG;
use crate::store::artifact::TUF_ARTIFACT_TYPE;

fn new_store() -> (tempfile::TempDir, LayoutStore) {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Layout(dir.path().join("repo"));
    (dir, LayoutStore::create_or_open(location).unwrap())
}

fn new_file(name: &str, bytes: &[u8], pending: bool) -> NewFile {
    NewFile {
        name: name.into(),
        bytes: bytes.to_vec(),
        pending,
    }
}

fn sample() -> Vec<NewFile> {
    vec![
        new_file("1.root.json", b"{\"root\":1}", false),
        new_file("timestamp.json", b"{\"ts\":1}", false),
        new_file("2.targets.json", b"{\"targets\":2}", true),
    ]
}

fn index_of(store: &LayoutStore) -> Value {
    serde_json::from_slice(&fs::read(store.root.join(INDEX_JSON)).unwrap()).unwrap()
}

fn set_index(store: &LayoutStore, v: &Value) {
    fs::write(store.root.join(INDEX_JSON), v.to_string()).unwrap();
}

fn put_blob(store: &LayoutStore, bytes: &[u8]) -> Sha256Digest {
    let d = Sha256Digest::of(bytes);
    fs::write(store.blob_path(&d), bytes).unwrap();
    d
}

/// Stores an image manifest blob and tags it (replacing the tag if present).
fn tag_image(store: &LayoutStore, tag: &str, body: &[u8]) -> Sha256Digest {
    let d = put_blob(store, body);
    let mut index = Index(index_of(store));
    let entry = json!({ "mediaType": OCI_MANIFEST_MEDIA_TYPE, "digest": d.to_string(),
        "size": body.len(), "annotations": { ANNOTATION_REF_NAME: tag } });
    index.set_tagged(tag, entry);
    set_index(store, &index.0);
    d
}

fn image(store: &LayoutStore, tag: Option<&str>, digest: Option<Sha256Digest>) -> ImageRef {
    ImageRef {
        location: store.location.clone(),
        tag: tag.map(Into::into),
        digest,
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T, StoreError>) -> Kind {
    r.unwrap_err().kind
}

#[test]
fn publish_then_listing_and_read_round_trip() {
    let (_dir, store) = new_store();
    assert_eq!(store.head_listing().unwrap(), None);
    assert_eq!(store.listing().unwrap(), None);
    let d1 = store.publish(&sample(), None).unwrap();
    assert_eq!(store.head_listing().unwrap(), Some(d1));
    let listing = store.listing().unwrap().unwrap();
    assert_eq!(listing.digest, d1);
    for (stored, new) in listing.files.iter().zip(sample()) {
        assert_eq!(
            (stored.name.as_str(), stored.pending),
            (new.name.as_str(), new.pending)
        );
        assert_eq!(store.read_file(stored, 1024).unwrap(), new.bytes);
    }
    assert!(store.blob_path(&Sha256Digest::of(EMPTY_CONFIG)).is_file());
    let d2 = store.publish(&sample()[..1], Some(&d1)).unwrap();
    assert_eq!(store.listing().unwrap().unwrap().files.len(), 1);
    assert!(
        store.blob_path(&d1).is_file(),
        "old blobs stay for readers mid-read"
    );
    let entry = &index_of(&store)["manifests"][0];
    assert_eq!(entry["artifactType"], TUF_ARTIFACT_TYPE);
    assert_eq!(entry["digest"], d2.to_string());
}

#[test]
fn stale_previous_is_a_conflict_and_writes_nothing() {
    let (_dir, store) = new_store();
    let d1 = store.publish(&sample(), None).unwrap();
    store.publish(&sample()[..2], Some(&d1)).unwrap();
    let before = fs::read(store.root.join(INDEX_JSON)).unwrap();
    let blobs = || fs::read_dir(store.blobs_dir()).unwrap().count();
    let blob_count = blobs();
    let other = [new_file("9.targets.json", b"new", false)];
    assert_eq!(kind(store.publish(&other, Some(&d1))), Kind::Conflict);
    assert_eq!(kind(store.publish(&other, None)), Kind::Conflict);
    assert_eq!(fs::read(store.root.join(INDEX_JSON)).unwrap(), before);
    assert_eq!(blobs(), blob_count);
}

#[test]
fn unsafe_or_duplicate_names_are_refused_before_writing() {
    let (_dir, store) = new_store();
    let traversal = [new_file("../../evil.json", b"x", false)];
    assert_eq!(kind(store.publish(&traversal, None)), Kind::Malformed);
    let twice = [
        new_file("a.json", b"1", false),
        new_file("a.json", b"2", false),
    ];
    assert_eq!(kind(store.publish(&twice, None)), Kind::Malformed);
    assert_eq!(store.head_listing().unwrap(), None);
    assert_eq!(fs::read_dir(store.blobs_dir()).unwrap().count(), 0);
}

#[test]
fn reads_past_the_cap_are_too_large() {
    let (_dir, store) = new_store();
    store.publish(&sample(), None).unwrap();
    let root = store
        .listing()
        .unwrap()
        .unwrap()
        .get("1.root.json")
        .unwrap()
        .clone();
    assert_eq!(kind(store.read_file(&root, root.size - 1)), Kind::TooLarge);
    // A listing that understates the size is caught by the cap, then by the length.
    let lying = StoredFile {
        size: 1,
        ..root.clone()
    };
    assert_eq!(kind(store.read_file(&lying, 2)), Kind::TooLarge);
    assert_eq!(kind(store.read_file(&lying, 1024)), Kind::DigestMismatch);
    let huge = vec![b' '; MAX_MANIFEST_BYTES as usize + 1];
    fs::write(store.root.join(INDEX_JSON), huge).unwrap();
    assert_eq!(kind(store.head_listing()), Kind::TooLarge);
}

#[test]
fn flipped_blob_byte_is_a_digest_mismatch() {
    let (_dir, store) = new_store();
    let d = store.publish(&sample(), None).unwrap();
    let root = store.listing().unwrap().unwrap().files[0].clone();
    for path in [store.blob_path(&root.digest), store.blob_path(&d)] {
        let mut bytes = fs::read(&path).unwrap();
        bytes[3] ^= 1;
        fs::write(&path, bytes).unwrap();
    }
    assert_eq!(kind(store.read_file(&root, 1024)), Kind::DigestMismatch);
    assert_eq!(kind(store.listing()), Kind::DigestMismatch);
    // Publishing the same file again replaces the damaged blob instead of trusting it.
    store.publish(&sample(), Some(&d)).unwrap();
    assert_eq!(store.read_file(&root, 1024).unwrap(), sample()[0].bytes);
    fs::remove_file(store.blob_path(&root.digest)).unwrap();
    assert_eq!(kind(store.read_file(&root, 1024)), Kind::NotFound);
}

#[test]
fn resolve_finds_tags_and_digests_and_detects_tampering() {
    let (_dir, store) = new_store();
    let body = br#"{"schemaVersion":2,"layers":[]}"#;
    let d = tag_image(&store, "v1", body);
    let want = Descriptor {
        media_type: OCI_MANIFEST_MEDIA_TYPE.into(),
        digest: d,
        size: body.len() as u64,
    };
    assert_eq!(
        store.resolve(&image(&store, Some("v1"), None)).unwrap(),
        want
    );
    assert_eq!(
        store.resolve(&image(&store, Some("v1"), Some(d))).unwrap(),
        want
    );
    assert_eq!(store.resolve(&image(&store, None, Some(d))).unwrap(), want);
    let other = Sha256Digest::of(b"other");
    assert_eq!(
        kind(store.resolve(&image(&store, Some("v1"), Some(other)))),
        Kind::DigestMismatch
    );
    assert_eq!(
        kind(store.resolve(&image(&store, None, Some(other)))),
        Kind::NotFound
    );
    let missing = store.resolve(&image(&store, Some("v2"), None)).unwrap_err();
    assert_eq!(missing.kind, Kind::NotFound);
    assert!(missing.detail.contains("ref.name=v2"), "{missing}");
    // An untagged manifest blob resolves by digest, typed by its own mediaType.
    let untagged = br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#;
    let du = put_blob(&store, untagged);
    let got = store.resolve(&image(&store, None, Some(du))).unwrap();
    assert_eq!(got.media_type, OCI_INDEX_MEDIA_TYPE);
    // Same length, other bytes: rewriting the manifest in place is caught.
    fs::write(store.blob_path(&d), br#"{"schemaVersion":3,"layers":[]}"#).unwrap();
    assert_eq!(
        kind(store.resolve(&image(&store, Some("v1"), None))),
        Kind::DigestMismatch
    );
}

#[test]
fn resolve_follows_a_retag() {
    let (_dir, store) = new_store();
    store.publish(&sample(), None).unwrap();
    let a = tag_image(&store, "v1", br#"{"a":1}"#);
    assert_eq!(
        store
            .resolve(&image(&store, Some("v1"), None))
            .unwrap()
            .digest,
        a
    );
    let b = tag_image(&store, "v1", br#"{"b":22}"#);
    let got = store.resolve(&image(&store, Some("v1"), None)).unwrap();
    assert_eq!((got.digest, got.size), (b, 8));
    assert_eq!(
        kind(store.resolve(&image(&store, Some("v1"), Some(a)))),
        Kind::DigestMismatch
    );
    assert!(
        store.listing().unwrap().is_some(),
        "retagging leaves warrant.tuf alone"
    );
}

#[test]
fn open_requires_an_oci_layout() {
    let dir = tempfile::tempdir().unwrap();
    let at = |p: &str| Location::Layout(dir.path().join(p));
    assert_eq!(kind(LayoutStore::open(at("missing"))), Kind::NotFound);
    assert!(!dir.path().join("missing").exists(), "open never creates");
    fs::create_dir(dir.path().join("plain")).unwrap();
    let err = LayoutStore::open(at("plain")).unwrap_err();
    assert_eq!(err.kind, Kind::NotFound);
    assert!(err.to_string().contains("no oci-layout file"), "{err}");
    LayoutStore::create_or_open(at("plain")).unwrap();
    LayoutStore::open(at("plain")).unwrap();
    fs::write(
        dir.path().join("plain").join(OCI_LAYOUT),
        r#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    assert_eq!(kind(LayoutStore::open(at("plain"))), Kind::Malformed);
}

#[test]
fn garbage_index_json_is_malformed_not_a_panic() {
    let (_dir, store) = new_store();
    let deep = "[".repeat(10_000);
    let bad_entry = r#"{"manifests":[{"digest":"sha256:AB","size":1,"annotations":{"org.opencontainers.image.ref.name":"warrant.tuf"}}]}"#;
    let two = r#"{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"warrant.tuf"}},{"annotations":{"org.opencontainers.image.ref.name":"warrant.tuf"}}]}"#;
    for garbage in [
        "",
        "{",
        "[]",
        "null",
        r#"{"manifests":{}}"#,
        "\u{feff}{}",
        &deep,
        bad_entry,
        two,
    ] {
        fs::write(store.root.join(INDEX_JSON), garbage).unwrap();
        assert_eq!(kind(store.head_listing()), Kind::Malformed, "{garbage:?}");
        assert_eq!(kind(store.listing()), Kind::Malformed, "{garbage:?}");
        assert_eq!(
            kind(store.publish(&sample(), None)),
            Kind::Malformed,
            "{garbage:?}"
        );
        assert_eq!(
            kind(store.resolve(&image(&store, Some("warrant.tuf"), None))),
            Kind::Malformed
        );
    }
    // Entries that are not objects cannot be ours; they are skipped, not fatal.
    set_index(&store, &json!({ "manifests": [1, "x", null] }));
    assert_eq!(store.head_listing().unwrap(), None);
}

#[test]
fn publish_keeps_other_entries_and_unknown_fields() {
    let (_dir, store) = new_store();
    let app = json!({ "mediaType": OCI_MANIFEST_MEDIA_TYPE, "digest": Sha256Digest::of(b"a").to_string(),
        "size": 1, "annotations": { ANNOTATION_REF_NAME: "v1" }, "x-unknown": [1, 2] });
    let untagged = json!({ "mediaType": OCI_INDEX_MEDIA_TYPE, "digest": Sha256Digest::of(b"b").to_string(), "size": 1 });
    set_index(
        &store,
        &json!({ "schemaVersion": 2, "manifests": [app, untagged], "annotations": { "k": "v" } }),
    );
    let d1 = store.publish(&sample(), None).unwrap();
    store.publish(&sample()[..2], Some(&d1)).unwrap();
    let index = index_of(&store);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(
        (&entries[0], &entries[1], entries.len()),
        (&app, &untagged, 3)
    );
    assert_eq!(ref_name(entries[2].as_object().unwrap()), Some(TUF_TAG));
    assert_eq!(index["annotations"], json!({ "k": "v" }));
}

#[test]
fn eight_concurrent_publishers_lose_nothing() {
    let (_dir, store) = new_store();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                loop {
                    let listing = store.listing().unwrap();
                    let mut files: Vec<NewFile> = listing
                        .iter()
                        .flat_map(|l| &l.files)
                        .map(|f| new_file(&f.name, &store.read_file(f, 1024).unwrap(), f.pending))
                        .collect();
                    files.push(new_file(&format!("{i}.signer.json"), b"{}", false));
                    match store.publish(&files, listing.as_ref().map(|l| &l.digest)) {
                        Ok(_) => break,
                        Err(e) if e.kind == Kind::Conflict => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.listing().unwrap().unwrap().files.len(), 8);
}

#[test]
fn symlinked_or_fifo_blobs_are_refused_without_following_or_hanging() {
    let (dir, store) = new_store();
    store.publish(&sample(), None).unwrap();
    let root = store.listing().unwrap().unwrap().files[0].clone();
    let path = store.blob_path(&root.digest);
    // A symlink to a file outside the layout (with the right content, even).
    let outside = dir.path().join("outside");
    fs::write(&outside, &sample()[0].bytes).unwrap();
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    assert!(
        store.read_file(&root, 1024).is_err(),
        "a symlinked blob must not be read"
    );
    // A FIFO: opening it must not block.
    fs::remove_file(&path).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(store.read_file(&root, 1024).is_err());
}

#[test]
fn the_requests_artifact_lives_beside_warrant_tuf_without_touching_it() {
    let (_dir, store) = new_store();
    let tuf = store.publish(&sample(), None).unwrap();
    let requests = store.clone().for_artifact(ArtifactKind::KEY_REQUESTS);
    assert_eq!(requests.listing().unwrap(), None);
    let r = requests
        .publish(&[new_file("abc.json", b"{\"r\":1}", false)], None)
        .unwrap();
    assert_eq!(store.head_listing().unwrap(), Some(tuf));
    assert_eq!(requests.head_listing().unwrap(), Some(r));
    assert_eq!(requests.listing().unwrap().unwrap().files.len(), 1);
    // Each tag has its own compare-and-swap: a stale `previous` of one is refused.
    let stale = requests.publish(&[], Some(&tuf)).unwrap_err();
    assert_eq!(stale.kind, Kind::Conflict);
    let entry = index_of(&store)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"][ANNOTATION_REF_NAME] == "warrant.requests")
        .cloned()
        .unwrap();
    assert_eq!(
        entry["artifactType"],
        ArtifactKind::KEY_REQUESTS.artifact_type
    );
}
