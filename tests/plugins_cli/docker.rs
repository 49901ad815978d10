//! The Docker CLI plugin, driven by the real `docker` client (no daemon).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::registry::RegistryFixture;
use crate::common::*;
use crate::{WARRANT, signed};

/// The real docker CLI (the machine image ships it; Debian: docker.io or
/// docker-ce-cli).
fn real_docker() -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", "command -v docker"])
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && !path.is_empty(),
        "these tests need the docker CLI (no daemon): install docker-ce-cli or docker.io"
    );
    PathBuf::from(path)
}

/// A docker config directory with the plugin installed by `warrant install`, and a
/// stand-in `docker` that records every command line it is asked to run (one per
/// line, words separated by tabs) and hands `warrant` invocations to the real
/// docker under its own name, so docker tells the plugin to call it back.
struct Docker {
    config: PathBuf,
    standin: PathBuf,
    log: PathBuf,
    home: PathBuf,
}

impl Docker {
    fn new(w: &World) -> Self {
        let config = w.path("docker-config");
        let r = w.run({
            let mut c = Command::new(WARRANT);
            c.args(["install", "docker-plugin"])
                .env("DOCKER_CONFIG", &config);
            c
        });
        assert_eq!(r.code, 0, "{}", r.text());
        assert!(r.stdout.contains("docker-warrant"), "{}", r.stdout);
        let standin = w.path("bin/docker");
        std::fs::create_dir_all(standin.parent().unwrap()).unwrap();
        std::fs::write(
            &standin,
            format!(
                "#!/bin/bash\nif [[ \" $* \" == *' warrant '* ]]; then exec -a \"$0\" {} \"$@\"; fi\n\
                 (IFS=$'\\t'; echo \"$*\") >> \"$DOCKER_LOG\"\nexit \"${{FAKE_DOCKER_EXIT:-0}}\"\n",
                real_docker().display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&standin, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            config,
            standin,
            log: w.path("docker.log"),
            home: w.path("verifier"),
        }
    }

    fn env(&self, c: &mut Command) {
        c.env("DOCKER_CONFIG", &self.config)
            .env("DOCKER_LOG", &self.log)
            .env("WARRANT_HOME", &self.home)
            .env_remove("WARRANT_PASSPHRASE")
            .env_remove("WARRANT_LOG")
            .env_remove(warrant_env_original())
            .stdin(Stdio::null());
    }

    /// `docker ARGS` with the real client.
    fn real(&self, w: &World, args: &[&str]) -> Run {
        let mut c = Command::new(real_docker());
        c.args(args);
        self.env(&mut c);
        w.run(c)
    }

    /// `docker ARGS` through the stand-in (whose docker commands are recorded).
    fn standin(&self, w: &World, args: &[&str], exit: u8) -> Run {
        let mut c = Command::new(&self.standin);
        c.args(args).env("FAKE_DOCKER_EXIT", exit.to_string());
        self.env(&mut c);
        w.run(c)
    }

    /// The plugin run directly, as docker runs it, with the stand-in as
    /// `DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND`.
    fn plugin(&self, w: &World, args: &[&str]) -> Run {
        let mut c = Command::new(self.config.join("cli-plugins/docker-warrant"));
        c.args(args);
        self.env(&mut c);
        c.env(warrant_env_original(), &self.standin);
        w.run(c)
    }

    /// The docker command lines run so far, and forget them.
    fn commands(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        text.lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }
}

fn warrant_env_original() -> &'static str {
    "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND"
}

#[test]
fn docker_lists_the_plugin_in_its_help_and_client_info() {
    let w = World::new();
    let d = Docker::new(&w);
    let r = d.real(&w, &["--help"]);
    assert_eq!(r.code, 0, "{}", r.text());
    let line = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("warrant*"))
        .unwrap_or_else(|| panic!("no warrant* in docker --help:\n{}", r.stdout));
    assert!(line.contains("TUF"), "{line}");
    let r = d.real(&w, &["info", "--format", "{{json .ClientInfo.Plugins}}"]);
    assert_eq!(r.code, 0, "{}", r.text());
    let plugins: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let p = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["Name"] == "warrant")
        .unwrap_or_else(|| panic!("{plugins}"));
    assert_eq!(p["SchemaVersion"], "0.1.0");
    assert_eq!(p["Vendor"], "warrant");
    assert_eq!(p["Version"], env!("CARGO_PKG_VERSION"));
    assert!(p.get("Err").is_none(), "docker rejected the plugin: {p}");
    assert!(
        p["Path"]
            .as_str()
            .unwrap()
            .ends_with("cli-plugins/docker-warrant")
    );
    // Discovery output is the metadata and nothing else.
    let r = d.plugin(&w, &["docker-cli-plugin-metadata"]);
    assert_eq!(r.code, 0);
    let m: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    for k in m.as_object().unwrap().keys() {
        assert!(
            [
                "SchemaVersion",
                "Vendor",
                "Version",
                "ShortDescription",
                "URL"
            ]
            .contains(&k.as_str()),
            "{k}"
        );
    }
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    // plugin-manifest/docker/metadata.json shows what docker reads.
    let documented: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin-manifest/docker/metadata.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(documented, m, "update plugin-manifest/docker/metadata.json");
}

#[test]
fn docker_help_warrant_shows_every_command_and_succeeds() {
    let w = World::new();
    let d = Docker::new(&w);
    for args in [
        &["help", "warrant"][..],
        &["warrant"],
        &["warrant", "--help"],
        &["warrant", "help"],
    ] {
        let r = d.real(&w, args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.text());
        for word in [
            "Usage: docker warrant",
            "verify",
            "sign",
            "inspect",
            "pull",
            "run",
        ] {
            assert!(
                r.stdout.contains(word),
                "{args:?} lacks {word}: {}",
                r.stdout
            );
        }
    }
    let r = d.real(&w, &["warrant", "pull", "--help"]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(
        r.stdout.contains("docker warrant pull [OPTIONS] IMAGE"),
        "{}",
        r.stdout
    );
    let r = d.real(&w, &["warrant", "help", "run"]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("--rm, -it"), "{}", r.stdout);
    let r = d.real(&w, &["warrant", "verify", "--help"]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stdout.contains("docker warrant verify"), "{}", r.stdout);
    // Errors keep warrant's exit codes through docker.
    let r = d.real(&w, &["warrant", "no-such-command"]);
    assert_eq!(r.code, 2, "{}", r.text());
}

#[test]
fn docker_warrant_verify_exits_0_when_trusted_and_1_when_not() {
    let s = signed();
    let d = Docker::new(&s.w);
    let root = s.root.to_str().unwrap();
    let r = d.real(
        &s.w,
        &[
            "warrant",
            "verify",
            &s.reg.repo("team/app", ":v1"),
            "--root",
            root,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(
        r.stdout
            .contains(&format!("{}@{}", s.reg.repo("team/app", ""), s.v1.0)),
        "{}",
        r.stdout
    );
    let r = d.real(
        &s.w,
        &["warrant", "verify", &s.reg.repo("team/app", ":evil")],
    );
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("not trusted"), "{}", r.stderr);
    // Global flags of docker in front are skipped; warrant's own work after.
    let r = d.real(
        &s.w,
        &[
            "--log-level",
            "error",
            "warrant",
            "--output",
            "json",
            "verify",
            &s.reg.repo("team/app", ":v1"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["digest"], s.v1.0);
    // A verifier with no pin is a configuration error.
    let r = d.real(
        &s.w,
        &[
            "warrant",
            "--home",
            s.w.path("fresh-home").to_str().unwrap(),
            "verify",
            &s.reg.repo("team/app", ":v1"),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.text());
}

#[test]
fn docker_warrant_pull_pulls_only_the_verified_digest_then_tags_it() {
    let s = signed();
    let d = Docker::new(&s.w);
    let root = s.root.to_str().unwrap();
    let repo = s.reg.repo("team/app", "");
    let pinned = format!("{repo}@{}", s.v1.0);
    let tagged = s.reg.repo("team/app", ":v1");
    // Through the real docker CLI: docker calls the plugin, which calls docker back.
    let r = d.standin(&s.w, &["warrant", "pull", "--root", root, &tagged], 0);
    assert_eq!(r.code, 0, "{}", r.text());
    assert!(r.stderr.contains(&pinned), "{}", r.stderr);
    assert_eq!(
        d.commands(),
        [
            vec!["pull".to_owned(), pinned.clone()],
            vec!["tag".to_owned(), pinned.clone(), tagged.clone()],
        ]
    );
    // As docker runs the plugin, with docker's global flags and pull options
    // passed on.
    let r = d.plugin(
        &s.w,
        &[
            "--context",
            "default",
            "warrant",
            "pull",
            "-q",
            "--platform",
            "linux/amd64",
            &tagged,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(
        d.commands(),
        [
            vec![
                "--context",
                "default",
                "pull",
                "-q",
                "--platform",
                "linux/amd64",
                &pinned
            ],
            vec!["--context", "default", "tag", &pinned, &tagged],
        ]
    );
    // A digest reference is pulled as is, with nothing to tag.
    let r = d.plugin(&s.w, &["warrant", "pull", &format!("{tagged}@{}", s.v1.0)]);
    assert_eq!(r.code, 0, "{}", r.text());
    assert_eq!(d.commands().len(), 2);
    // docker's failure is the command's, and nothing is tagged after it.
    let r = d.standin(&s.w, &["warrant", "pull", &tagged], 18);
    assert_eq!(r.code, 18, "{}", r.text());
    assert_eq!(d.commands(), [vec!["pull".to_owned(), pinned.clone()]]);
}

#[test]
fn docker_warrant_pull_and_run_of_an_untrusted_image_never_call_docker() {
    let s = signed();
    let d = Docker::new(&s.w);
    let root = s.root.to_str().unwrap();
    for sub in ["pull", "run"] {
        let r = d.standin(
            &s.w,
            &[
                "warrant",
                sub,
                "--root",
                root,
                &s.reg.repo("team/app", ":evil"),
            ],
            0,
        );
        assert_eq!(r.code, 1, "{sub}: {}", r.text());
        assert!(r.stderr.contains("not trusted"), "{}", r.stderr);
        // The tag pinned to another digest than the signed one.
        let r = d.plugin(
            &s.w,
            &[
                "warrant",
                sub,
                &format!("{}@{}", s.reg.repo("team/app", ":v1"), s.evil.0),
            ],
        );
        assert_eq!(r.code, 1, "{sub}: {}", r.text());
        assert_eq!(d.commands(), Vec::<Vec<String>>::new(), "{sub}");
    }
    // An ambiguous docker option is refused before anything runs.
    let r = d.plugin(
        &s.w,
        &[
            "warrant",
            "run",
            "--future-flag",
            "x",
            &s.reg.repo("team/app", ":v1"),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.text());
    assert!(r.stderr.contains("--future-flag=VALUE"), "{}", r.stderr);
    assert!(d.commands().is_empty());
}

#[test]
fn docker_warrant_run_runs_the_verified_digest_with_options_and_command() {
    let s = signed();
    let d = Docker::new(&s.w);
    let root = s.root.to_str().unwrap();
    let pinned = format!("{}@{}", s.reg.repo("team/app", ""), s.v1.0);
    let r = d.standin(
        &s.w,
        &[
            "warrant",
            "run",
            "--rm",
            "-it",
            "-e",
            "A=1",
            "--root",
            root,
            "-v",
            "/a:/b",
            &s.reg.repo("team/app", ":v1"),
            "sh",
            "-c",
            "echo hi",
        ],
        7,
    );
    // The exit status is the container's (here: the stand-in's).
    assert_eq!(r.code, 7, "{}", r.text());
    assert_eq!(
        d.commands(),
        [vec![
            "run", "--rm", "-it", "-e", "A=1", "-v", "/a:/b", &pinned, "sh", "-c", "echo hi"
        ]]
    );
}

#[test]
fn docker_config_flag_supplies_the_registry_credentials() {
    let reg = RegistryFixture::with_auth("alice", "s3cret");
    let w = World::new();
    make_image(&w.layout(), "v1", "hello v1");
    reg.push(&w.layout(), "v1", "team/app");
    let creds = w.path("creds");
    std::fs::create_dir_all(&creds).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        creds.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    for args in [
        &["init", &reg.repo("team/app", "")][..],
        &["sign", &reg.repo("team/app", ":v1")],
    ] {
        let mut c = w.cmd("signer", args);
        c.env("DOCKER_CONFIG", &creds);
        let r = w.run(c);
        assert_eq!(r.code, 0, "{}", r.text());
    }
    let d = Docker::new(&w);
    let mut c = w.cmd(
        "signer",
        &[
            "export",
            &reg.repo("team/app", ""),
            w.path("export").to_str().unwrap(),
        ],
    );
    c.env("DOCKER_CONFIG", &creds);
    assert_eq!(w.run(c).code, 0);
    // The plugin lives in DOCKER_CONFIG; the credentials only in --config's directory.
    std::fs::create_dir_all(creds.join("cli-plugins")).unwrap();
    std::os::unix::fs::symlink(WARRANT, creds.join("cli-plugins/docker-warrant")).unwrap();
    let root = w.path("export/1.root.json");
    let verify = [
        "warrant",
        "verify",
        &reg.repo("team/app", ":v1"),
        "--root",
        root.to_str().unwrap(),
    ];
    let r = d.real(&w, &verify);
    assert_eq!(r.code, 3, "no credentials: {}", r.text());
    let with_config: Vec<&str> = ["--config", creds.to_str().unwrap()]
        .into_iter()
        .chain(verify)
        .collect();
    let r = d.real(&w, &with_config);
    assert_eq!(r.code, 0, "{}", r.text());
}
