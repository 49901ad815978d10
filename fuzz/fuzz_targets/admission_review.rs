//! AdmissionReview request bodies: the review envelope, then the images found in
//! the object for its kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant::admission::review::{ReviewRequest, images};

fuzz_target!(|data: &[u8]| {
    let Ok(review) = serde_json::from_slice::<ReviewRequest>(data) else {
        return;
    };
    let Some(req) = review.request else { return };
    for object in [&req.object, &req.old_object].into_iter().flatten() {
        if let Ok(sites) = images(&req.kind, object) {
            for s in sites {
                let _ = s.describe();
            }
        }
    }
});
