use super::*;

#[test]
fn loopback_hosts_are_recognized() {
    for h in [
        "localhost",
        "localhost:5000",
        "127.0.0.1:5000",
        "127.1.2.3",
        "[::1]:5000",
        "[::1]",
    ] {
        assert!(is_loopback(h), "{h}");
    }
    for h in [
        "example.com",
        "10.0.0.1:5000",
        "localhost.evil.com",
        "128.0.0.1",
    ] {
        assert!(!is_loopback(h), "{h}");
    }
}

#[test]
fn https_unless_loopback_or_named_insecure() {
    let open = |registry: &str, insecure: &[&str]| {
        let loc = Location::Registry {
            registry: registry.into(),
            repository: "app".into(),
        };
        let opts = RegistryOptions {
            insecure: insecure.iter().map(|s| (*s).to_owned()).collect(),
            ..RegistryOptions::default()
        };
        RegistryStore::open(loc, &opts).expect("open").base
    };
    assert_eq!(
        open("registry.example.com", &[]),
        "https://registry.example.com"
    );
    assert_eq!(open("10.1.2.3:5000", &[]), "https://10.1.2.3:5000");
    assert_eq!(
        open("10.1.2.3:5000", &["10.1.2.3:5000"]),
        "http://10.1.2.3:5000"
    );
    assert_eq!(open("localhost:5000", &[]), "http://localhost:5000");
    assert_eq!(open("docker.io", &[]), "https://registry-1.docker.io");
}

#[test]
fn credentials_in_urls_are_redacted() {
    assert_eq!(
        redact("error sending request for http://u:p@h/v2/"),
        "error sending request for http://<redacted>@h/v2/"
    );
    assert_eq!(redact("plain text"), "plain text");
}
