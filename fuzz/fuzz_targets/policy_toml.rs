//! The verify policy file (TOML).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Policy::parse(text, std::path::Path::new("/fuzz/policy.toml")) {
        for e in &p.repository {
            let _ = p.pin(e);
        }
    }
});
