//! Every metadata type from untrusted JSON (typed parse of the `signed` part), and
//! canonical JSON of what parsed (must not panic, must be deterministic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant::tuf::canonical::to_canonical;
use warrant::tuf::metadata::{Root, Snapshot, Targets, Timestamp};
use warrant::tuf::verify::Untrusted;

fn check<T: serde::de::DeserializeOwned + serde::Serialize>(value: &serde_json::Value) {
    if let Ok(t) = serde_json::from_value::<T>(value.clone()) {
        let a = to_canonical(&t);
        let b = to_canonical(&t);
        assert_eq!(a.is_ok(), b.is_ok());
        if let (Ok(a), Ok(b)) = (a, b) {
            assert_eq!(a, b, "canonical JSON is deterministic");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(u) = Untrusted::parse("any", data.to_vec()) {
        let _ = u.parse_unverified::<Root>();
        let _ = u.parse_unverified::<Timestamp>();
        let _ = u.parse_unverified::<Snapshot>();
        let _ = u.parse_unverified::<Targets>();
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let signed = v.get("signed").cloned().unwrap_or(v);
        check::<Root>(&signed);
        check::<Timestamp>(&signed);
        check::<Snapshot>(&signed);
        check::<Targets>(&signed);
    }
});
