//! The `warrant.tuf` artifact manifest parser (which metadata files exist, their
//! digests, sizes and names), and a round trip of what it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant::digest::Sha256Digest;
use warrant::store::artifact::{build_manifest, is_safe_file_name, parse_manifest};

fuzz_target!(|data: &[u8]| {
    let digest = Sha256Digest::of(data);
    if let Ok(listing) = parse_manifest(data, digest) {
        for f in &listing.files {
            assert!(
                is_safe_file_name(&f.name),
                "accepted unsafe name {:?}",
                f.name
            );
        }
        let rebuilt = build_manifest(&listing.files, "2026-01-01T00:00:00Z");
        let again = parse_manifest(&rebuilt, Sha256Digest::of(&rebuilt))
            .expect("a manifest we build from an accepted listing parses");
        assert_eq!(again.files, listing.files);
    }
});
