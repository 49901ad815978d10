//! The containerd image verifier's input: its arguments (one per line in the
//! first part) and the descriptor on stdin (after a `\0`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use warrant::plugins::containerd::{Request, parse_stdin_descriptor};

fuzz_target!(|data: &[u8]| {
    let (args, stdin) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let args: Vec<OsString> = String::from_utf8_lossy(args)
        .lines()
        .map(OsString::from)
        .collect();
    let media_type = Request::parse(&args).ok().and_then(|r| r.stdin_media_type);
    let _ = parse_stdin_descriptor(media_type.as_deref(), stdin);
    let _ = parse_stdin_descriptor(None, stdin);
});
