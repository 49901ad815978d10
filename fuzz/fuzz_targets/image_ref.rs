//! Image references and repository locations as users, policies, containerd and
//! the kubelet write them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant::store::{ImageRef, Location};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = ImageRef::parse(s) {
        let _ = r.target_name();
        let _ = r.location.cache_dir_name();
        // What it prints must parse back to the same reference.
        let again = ImageRef::parse(&r.to_string()).expect("display parses");
        assert_eq!(again.to_string(), r.to_string());
    }
    if let Ok(l) = Location::parse(s) {
        let dir = l.cache_dir_name();
        assert!(
            dir.components()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "cache dir escapes: {dir:?}"
        );
    }
    let _ = warrant::admission::handler::image_for_kubelet(s);
});
