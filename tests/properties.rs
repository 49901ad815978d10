//! Property tests: hostile bytes never panic the parsers, and canonical JSON round
//! trips. (Coverage-guided fuzzing needs a nightly toolchain this machine lacks; these
//! run on stable in every `make test`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::Value;

use warrant::digest::Sha256Digest;
use warrant::store::artifact::parse_manifest;
use warrant::tuf::canonical::to_canonical;
use warrant::tuf::delegation::path_matches;
use warrant::tuf::metadata::{Root, Snapshot, Targets, Timestamp};
use warrant::tuf::verify::Untrusted;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn canonical_json_is_stable_and_is_json(v in json_value()) {
        let c = to_canonical(&v).unwrap();
        // Canonical bytes are deterministic and re-canonicalize to themselves.
        prop_assert_eq!(&to_canonical(&v).unwrap(), &c);
        if let Ok(back) = serde_json::from_slice::<Value>(&c) {
            prop_assert_eq!(to_canonical(&back).unwrap(), c);
        }
    }

    #[test]
    fn envelope_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(u) = Untrusted::parse("x", bytes) {
            let _ = u.parse_unverified::<Root>();
            let _ = u.parse_unverified::<Targets>();
            let _ = u.parse_unverified::<Snapshot>();
            let _ = u.parse_unverified::<Timestamp>();
        }
    }

    #[test]
    fn envelopes_of_arbitrary_json_never_panic(v in json_value()) {
        let env = serde_json::json!({"signatures": [], "signed": v});
        if let Ok(u) = Untrusted::parse("x", serde_json::to_vec(&env).unwrap()) {
            let _ = u.parse_unverified::<Targets>();
        }
    }

    #[test]
    fn key_requests_of_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = warrant::ops::request::document::check(&bytes, "r/app", chrono::Utc::now());
    }

    #[test]
    fn key_requests_of_arbitrary_json_are_never_valid_without_a_signature(v in json_value()) {
        let doc = serde_json::json!({"signatures": [], "signed": v});
        let bytes = serde_json::to_vec(&doc).unwrap();
        let (_, r) = warrant::ops::request::document::check(&bytes, "r/app", chrono::Utc::now());
        prop_assert!(r.is_err());
    }

    #[test]
    fn oci_manifest_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = parse_manifest(&bytes, Sha256Digest::of(&bytes));
    }

    #[test]
    fn star_matches_exactly_one_segment(seg in "[a-z0-9._-]{0,10}", rest in "[a-z0-9._/-]{0,10}") {
        prop_assert!(path_matches("*", &seg));
        prop_assert_eq!(path_matches("*", &rest), !rest.contains('/'));
    }

    #[test]
    fn glob_matching_never_panics(p in ".{0,16}", s in ".{0,16}") {
        let _ = path_matches(&p, &s);
    }
}
