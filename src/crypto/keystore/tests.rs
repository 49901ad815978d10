//! The key store's unit tests.

use super::*;

#[test]
fn generate_list_load_and_wrong_passphrase() {
    let home = tempfile::tempdir().expect("tmp");
    let store = KeyStore::new(home.path());
    let pass = Passphrase::new("correct horse".into()).expect("pass");
    let info = store
        .generate(KeyType::Ecdsa, "ci", &pass)
        .expect("generate");
    let listed = store.list().expect("list");
    assert_eq!(listed, vec![info.clone()]);
    assert_eq!(store.find("ci").expect("by name"), info);
    assert_eq!(store.find(&info.keyid.0[..8]).expect("by prefix"), info);
    let key = store.load(&info.keyid, &pass).expect("load");
    assert_eq!(key.public_key().key_id(), info.keyid);
    let wrong = Passphrase::new("wrong".into()).expect("pass");
    assert!(matches!(
        store.load(&info.keyid, &wrong),
        Err(KeystoreError::WrongPassphrase { .. })
    ));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(store.dir().join(format!("{}.key", info.keyid)))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The key file is encrypted: the raw scalar never appears in it.
    let pem = fs::read_to_string(store.dir().join(format!("{}.key", info.keyid))).expect("read");
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert!(Passphrase::new(String::new()).is_err());
    assert!(matches!(
        store.load(&KeyId("../x".into()), &pass),
        Err(KeystoreError::NotFound { .. })
    ));
}
