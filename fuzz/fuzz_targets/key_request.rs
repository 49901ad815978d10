//! Key requests (issue #15), as `warrant key requests` reads them from a registry:
//! verify the proof of possession, parse, bound. Never a panic, and a request that
//! passes is signed by the key it encloses and made for the repository asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant::ops::request::document::check;

fuzz_target!(|data: &[u8]| {
    let now = chrono::DateTime::from_timestamp(1_764_547_200, 0).unwrap_or_default();
    let (_, result) = check(data, "localhost:5000/team/app", now);
    if let Ok(valid) = result {
        assert_eq!(valid.request.repository, "localhost:5000/team/app");
        assert_eq!(valid.keyid, valid.public.key_id());
    }
});
