use super::*;

/// Key requests review: a full mailbox is not a registry failure (exit 3) but
/// something an administrator clears, and the message says how.
#[test]
fn too_many_requests_is_exit_2_and_says_how_to_clear() {
    let e = RequestError::TooMany {
        location: "registry.example.com/team/app".into(),
        count: MAX_REQUESTS,
    };
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(msg.contains("--reject ID,ID"), "{msg}");
    assert!(msg.contains("--clear"), "{msg}");
}
