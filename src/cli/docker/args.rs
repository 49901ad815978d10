//! Taking `docker warrant pull|run ...` apart: warrant's options, docker's
//! options, IMAGE, and the container's command.
//!
//! docker's options are told apart by a table of docker CLI 28's flags: whether an
//! option takes the next word decides which word is IMAGE, and guessing wrong would
//! verify one image and hand docker another. So an option the table lacks is
//! refused unless written unambiguously, `--flag=VALUE`.

use std::ffi::OsString;

fn has(list: &str, name: &str) -> bool {
    list.split_whitespace().any(|f| f == name)
}

/// warrant's options that take a value, by long name.
pub(super) const WARRANT_VALUE_FLAGS: [&str; 10] = [
    "output",
    "home",
    "passphrase-file",
    "timeout",
    "deadline",
    "insecure-registry",
    "root",
    "root-keyid",
    "root-threshold",
    "policy",
];

/// One docker subcommand's options, to find IMAGE among them.
pub(super) struct DockerFlags {
    /// Long switches (no value), separated by spaces.
    bool_long: &'static str,
    /// Long options with a value, separated by spaces.
    value_long: &'static str,
    /// Short switches.
    bool_short: &'static str,
    /// Short options with a value.
    value_short: &'static str,
    /// Options refused, with why.
    refused: &'static [(&'static str, &'static str)],
    /// warrant's options with a value that only this subcommand has (beyond
    /// [`WARRANT_VALUE_FLAGS`]), separated by spaces.
    warrant_value_long: &'static str,
}

pub(super) const PULL_FLAGS: DockerFlags = DockerFlags {
    bool_long: "disable-content-trust quiet",
    value_long: "platform",
    bool_short: "q",
    value_short: "",
    refused: &[
        ("all-tags", "pulls every tag, verified or not"),
        ("a", "pulls every tag, verified or not"),
    ],
    warrant_value_long: "",
};

/// `docker push` as of docker CLI 28: one tag is pushed and signed.
pub(super) const PUSH_FLAGS: DockerFlags = DockerFlags {
    bool_long: "disable-content-trust quiet",
    value_long: "platform",
    bool_short: "q",
    value_short: "",
    refused: &[
        (
            "all-tags",
            "pushes every tag, and warrant signs the one named",
        ),
        ("a", "pushes every tag, and warrant signs the one named"),
    ],
    warrant_value_long: "role key",
};

/// `docker run` as of docker CLI 28 (`docker run --help`).
pub(super) const RUN_FLAGS: DockerFlags = DockerFlags {
    bool_long: "detach disable-content-trust init interactive no-healthcheck oom-kill-disable \
        privileged publish-all quiet read-only rm sig-proxy tty use-api-socket",
    value_long: "add-host annotation attach blkio-weight blkio-weight-device cap-add cap-drop \
        cgroup-parent cgroupns cidfile cpu-count cpu-percent cpu-period cpu-quota \
        cpu-rt-period cpu-rt-runtime cpu-shares cpus cpuset-cpus cpuset-mems detach-keys \
        device device-cgroup-rule device-read-bps device-read-iops device-write-bps \
        device-write-iops dns dns-option dns-search domainname entrypoint env env-file expose \
        gpus group-add health-cmd health-interval health-retries health-start-interval \
        health-start-period health-timeout hostname io-maxbandwidth io-maxiops ip ip6 ipc \
        isolation kernel-memory label label-file link link-local-ip log-driver log-opt \
        mac-address memory memory-reservation memory-swap memory-swappiness mount name network \
        network-alias oom-score-adj pid pids-limit platform publish pull restart runtime \
        security-opt shm-size stop-signal stop-timeout storage-opt sysctl tmpfs ulimit user \
        userns uts volume volume-driver volumes-from workdir",
    bool_short: "diPqt",
    value_short: "acehlmpuvw",
    refused: &[],
    warrant_value_long: "",
};

/// A `pull`/`run` command line taken apart.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Split {
    /// warrant's options (for `VerifyOpts`).
    pub(super) warrant: Vec<String>,
    /// docker's options, passed on unchanged.
    pub(super) docker: Vec<OsString>,
    /// IMAGE.
    pub(super) image: String,
    /// What follows IMAGE (the container's command).
    pub(super) rest: Vec<OsString>,
    /// `--help` was asked for.
    pub(super) help: bool,
}

/// Find IMAGE in `[OPTIONS] IMAGE [ARG...]`, where OPTIONS mixes warrant's long
/// options and docker's. An option neither knows is ambiguous (does it take the
/// next word?) and refused unless written `--flag=value`: guessing wrong would
/// verify one image and hand docker another.
pub(super) fn split_args(tokens: &[OsString], docker: &DockerFlags) -> Result<Split, String> {
    let mut s = Split::default();
    let mut i = 0;
    let value_of = |i: usize, flag: &str| -> Result<OsString, String> {
        // `--` ends the options: it is no option's value.
        tokens
            .get(i + 1)
            .filter(|v| *v != "--")
            .cloned()
            .ok_or_else(|| format!("option {flag} needs a value"))
    };
    while i < tokens.len() {
        let t = tokens[i]
            .to_str()
            .ok_or("an option before IMAGE is not UTF-8")?;
        if t == "--" {
            i += 1;
            break;
        }
        if !t.starts_with('-') || t == "-" {
            break;
        }
        if let Some(long) = t.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            if let Some((_, why)) = docker.refused.iter().find(|(f, _)| *f == name) {
                return Err(format!("--{name} is not allowed here: it {why}"));
            }
            if name == "help" {
                s.help = true;
            } else if WARRANT_VALUE_FLAGS.contains(&name)
                || has(docker.warrant_value_long, name)
                || name == "verbose"
            {
                s.warrant.push(t.to_owned());
                if !inline && name != "verbose" {
                    let v = value_of(i, t)?;
                    s.warrant
                        .push(v.to_str().ok_or("option values must be UTF-8")?.to_owned());
                    i += 1;
                }
            } else if has(docker.bool_long, name) || inline {
                s.docker.push(tokens[i].clone());
            } else if has(docker.value_long, name) {
                s.docker.push(tokens[i].clone());
                s.docker.push(value_of(i, t)?);
                i += 1;
            } else {
                return Err(format!(
                    "unknown option --{name}: write it as --{name}=VALUE (or --{name}=true for a switch) so that IMAGE is unambiguous"
                ));
            }
        } else if t == "-o" || t.starts_with("-o") {
            // warrant's -o/--output (docker's pull, push and run have no -o).
            s.warrant.push(t.to_owned());
            if t == "-o" {
                let v = value_of(i, t)?;
                s.warrant
                    .push(v.to_str().ok_or("option values must be UTF-8")?.to_owned());
                i += 1;
            }
        } else {
            // A cluster of short options: switches, then at most one option whose
            // value is the rest of the cluster or the next word.
            let cluster = &t[1..];
            let mut takes_next = false;
            for (k, c) in cluster.char_indices() {
                if let Some((_, why)) = docker
                    .refused
                    .iter()
                    .find(|(f, _)| f.len() == 1 && f.starts_with(c))
                {
                    return Err(format!("-{c} is not allowed here: it {why}"));
                }
                if docker.bool_short.contains(c) {
                    continue;
                }
                if docker.value_short.contains(c) {
                    let rest = &cluster[k + c.len_utf8()..];
                    takes_next = rest.is_empty();
                    break;
                }
                return Err(format!(
                    "unknown option -{c} in {t}: use its long form, as --flag=VALUE if unsure"
                ));
            }
            s.docker.push(tokens[i].clone());
            if takes_next {
                s.docker.push(value_of(i, t)?);
                i += 1;
            }
        }
        i += 1;
    }
    if s.help {
        return Ok(s);
    }
    let image = tokens.get(i).ok_or("IMAGE is missing")?;
    s.image = image.to_str().ok_or("IMAGE is not UTF-8")?.to_owned();
    s.rest = tokens[i + 1..].to_vec();
    Ok(s)
}

/// [`split_args`] for commands with one IMAGE and no command after it (`pull`,
/// `push`): options may also follow IMAGE, as cobra lets them for `docker pull
/// IMAGE --platform P`.
pub(super) fn split_image_args(tokens: &[OsString], docker: &DockerFlags) -> Result<Split, String> {
    let mut first = split_args(tokens, docker)?;
    if first.help || first.rest.is_empty() {
        return Ok(first);
    }
    // The words after IMAGE, then IMAGE behind `--`: options parse, and another
    // word before the `--` shows up as a second image.
    let mut again = std::mem::take(&mut first.rest);
    again.push("--".into());
    again.push(OsString::from(&first.image));
    let after = split_args(&again, docker)?;
    if !after.rest.is_empty() || after.image != first.image {
        return Err(format!(
            "takes one IMAGE (got {} and {})",
            first.image, after.image
        ));
    }
    first.warrant.extend(after.warrant);
    first.docker.extend(after.docker);
    first.help |= after.help;
    Ok(first)
}

/// The first word of warrant's arguments that is not a global option or its
/// value: the subcommand, and its index.
pub(super) fn subcommand(args: &[OsString]) -> Option<(usize, &str)> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_str()?;
        if let Some(long) = a.strip_prefix("--") {
            if !long.contains('=') && WARRANT_VALUE_FLAGS[..6].contains(&long) {
                i += 1;
            }
        } else if a == "-o" {
            i += 1;
        } else if !a.starts_with('-') {
            return Some((i, a));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_subcommand_is_found_after_global_options() {
        let sub = |a: &[&str]| subcommand(&os(a)).map(|(i, s)| (i, s.to_owned()));
        assert_eq!(sub(&["pull", "x"]), Some((0, "pull".into())));
        assert_eq!(
            sub(&["--timeout", "5", "-v", "--output=json", "run", "x"]),
            Some((4, "run".into()))
        );
        assert_eq!(
            sub(&["--home", "pull", "verify"]),
            Some((2, "verify".into()))
        );
        assert_eq!(sub(&["--help"]), None);
        assert_eq!(sub(&["-o", "json", "verify"]), Some((2, "verify".into())));
    }

    #[test]
    fn docker_run_options_are_told_from_image_and_command() {
        let s = split_args(
            &os(&[
                "--rm",
                "-it",
                "-e",
                "A=1",
                "--root",
                "r.json",
                "-p8080:80",
                "--name",
                "web",
                "--policy=p.toml",
                "-o",
                "json",
                "-v",
                "/a:/b",
                "--future=x",
                "reg/app:1",
                "sh",
                "-c",
                "echo",
            ]),
            &RUN_FLAGS,
        )
        .expect("split");
        assert_eq!(s.image, "reg/app:1");
        assert_eq!(
            s.warrant,
            ["--root", "r.json", "--policy=p.toml", "-o", "json"]
        );
        assert_eq!(
            s.docker,
            os(&[
                "--rm",
                "-it",
                "-e",
                "A=1",
                "-p8080:80",
                "--name",
                "web",
                "-v",
                "/a:/b",
                "--future=x"
            ])
        );
        assert_eq!(s.rest, os(&["sh", "-c", "echo"]));
        let s = split_args(&os(&["--", "-weird"]), &RUN_FLAGS).expect("after --");
        assert_eq!(s.image, "-weird");
        assert!(split_args(&os(&["--help"]), &RUN_FLAGS).expect("help").help);
        for bad in [
            &["--future", "x", "img"][..],
            &["-Z", "img"],
            &["--rm"],
            &["-e"],
        ] {
            assert!(split_args(&os(bad), &RUN_FLAGS).is_err(), "{bad:?}");
        }
        let s = split_args(
            &os(&["-q", "--platform", "linux/arm64", "img:1"]),
            &PULL_FLAGS,
        )
        .expect("pull");
        assert_eq!(s.docker, os(&["-q", "--platform", "linux/arm64"]));
        for bad in [&["-a", "img"][..], &["--all-tags", "img"], &["-qa", "img"]] {
            assert!(split_args(&os(bad), &PULL_FLAGS).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pull_options_may_follow_the_image_as_with_docker_pull() {
        let s = split_image_args(
            &os(&[
                "--root",
                "r.json",
                "img:1",
                "--platform",
                "linux/arm64",
                "-q",
                "--policy=p",
            ]),
            &PULL_FLAGS,
        )
        .expect("options after IMAGE");
        assert_eq!(s.image, "img:1");
        assert!(s.rest.is_empty());
        assert_eq!(s.warrant, ["--root", "r.json", "--policy=p"]);
        assert_eq!(s.docker, os(&["--platform", "linux/arm64", "-q"]));
        for bad in [
            &["img:1", "other:2"][..],
            &["img:1", "--platform"],
            &["img:1", "-a"],
            &["img:1", "--future", "x"],
        ] {
            assert!(split_image_args(&os(bad), &PULL_FLAGS).is_err(), "{bad:?}");
        }
    }
}
