//! Build a large signed repository through the library, for `benches/scale.sh`:
//! `scale_build LOCATION N` signs N synthetic tags `v0` … `v{N-1}` (each a target
//! with a made-up manifest digest) into an initialized repository in **one**
//! publish, with the keys of `$WARRANT_HOME` (passphrase from
//! `WARRANT_PASSPHRASE`). Whether the result is flat or binned follows the
//! repository's `init --bins` policy.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::Instant;

use warrant::crypto::keystore::PassphraseSource;
use warrant::digest::Sha256Digest;
use warrant::ops::Context;
use warrant::ops::sign::{SignOptions, sign_targets};
use warrant::ops::trust::Pin;
use warrant::store::Location;
use warrant::tuf::metadata::TargetFile;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, location, n] = &args[..] else {
        eprintln!("usage: scale_build LOCATION N");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N");
    let home = std::env::var_os("WARRANT_HOME").expect("WARRANT_HOME");
    let ctx = Context::new(home.into(), PassphraseSource::new(None));
    let location = Location::parse(location).expect("location");
    let targets: Vec<(String, TargetFile)> = (0..n)
        .map(|i| {
            let manifest = format!("synthetic manifest {i}");
            let file = TargetFile {
                length: manifest.len() as u64,
                hashes: BTreeMap::from([(
                    "sha256".to_owned(),
                    Sha256Digest::of(manifest.as_bytes()).hex(),
                )]),
                custom: Some(
                    serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json"}),
                ),
                unrecognized: Default::default(),
            };
            (format!("v{i}"), file)
        })
        .collect();
    let t = Instant::now();
    let opts = SignOptions {
        pin: Pin::FirstUse,
        ..SignOptions::default()
    };
    let (outcome, roles) = sign_targets(&ctx, &location, &targets, &opts).expect("sign");
    let distinct: std::collections::BTreeSet<&String> = roles.iter().collect();
    eprintln!(
        "signed {n} tags into {} role(s) in {:.1} s: {}",
        distinct.len(),
        t.elapsed().as_secs_f64(),
        outcome.published
    );
}
