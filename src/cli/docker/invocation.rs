//! How docker started the plugin: docker's global flags, then `warrant` (or `help
//! warrant`), then the plugin's own arguments.

use std::ffi::OsString;
use std::path::PathBuf;

/// docker's global flags that take a value (docker CLI 28), so that the plugin
/// name can be told from a flag's value (`docker --context warrant warrant ...`).
const DOCKER_GLOBAL_VALUE_FLAGS: [&str; 10] = [
    "--config",
    "-c",
    "--context",
    "-H",
    "--host",
    "-l",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
];

/// How docker started the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// docker's global flags, to pass on to the `docker` commands we run.
    pub docker_globals: Vec<OsString>,
    /// `docker help warrant`.
    pub help: bool,
    /// Everything after `warrant`.
    pub args: Vec<OsString>,
}

impl Invocation {
    /// Split `argv` (after `argv[0]`): docker's flags, then `warrant` (or `help
    /// warrant`), then ours. Docker has validated its flags, so the first word that
    /// is not one of them or their value is the plugin name; should a future docker
    /// add a global flag this table lacks, the first `warrant` is taken instead.
    pub fn parse(args: &[OsString]) -> Option<Self> {
        let mut globals = Vec::new();
        let mut help = false;
        let mut i = 0;
        while i < args.len() {
            let a = args[i].to_str().unwrap_or_default();
            if a == "warrant" {
                return Some(Self {
                    docker_globals: globals,
                    help,
                    args: args[i + 1..].to_vec(),
                });
            }
            if a == "help" && !help {
                help = true;
            } else if a.starts_with('-') {
                globals.push(args[i].clone());
                if let Some(v) = args
                    .get(i + 1)
                    .filter(|_| DOCKER_GLOBAL_VALUE_FLAGS.contains(&a))
                {
                    globals.push(v.clone());
                    i += 1;
                }
            } else {
                break;
            }
            i += 1;
        }
        let at = args.iter().position(|a| a == "warrant")?;
        Some(Self {
            docker_globals: args[..at]
                .iter()
                .filter(|a| *a != "help")
                .cloned()
                .collect(),
            help: args[..at].iter().any(|a| a == "help"),
            args: args[at + 1..].to_vec(),
        })
    }

    /// The `--config DIR` docker was given (it does not export it to plugins).
    pub fn docker_config(&self) -> Option<PathBuf> {
        let g = &self.docker_globals;
        g.iter().enumerate().find_map(|(i, a)| {
            let a = a.to_str()?;
            if a == "--config" {
                g.get(i + 1).map(PathBuf::from)
            } else {
                a.strip_prefix("--config=").map(PathBuf::from)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn invocations_split_at_the_plugin_name() {
        let inv = Invocation::parse(&os(&["warrant", "verify", "a:1"])).expect("plain");
        assert!(inv.docker_globals.is_empty() && !inv.help);
        assert_eq!(inv.args, os(&["verify", "a:1"]));
        let inv = Invocation::parse(&os(&[
            "--context",
            "warrant",
            "-D",
            "--config=/c",
            "warrant",
            "pull",
            "warrant:1",
        ]))
        .expect("globals");
        assert_eq!(
            inv.docker_globals,
            os(&["--context", "warrant", "-D", "--config=/c"])
        );
        assert_eq!(inv.args, os(&["pull", "warrant:1"]));
        assert_eq!(inv.docker_config(), Some(PathBuf::from("/c")));
        let inv = Invocation::parse(&os(&["help", "warrant"])).expect("help");
        assert!(inv.help && inv.args.is_empty() && inv.docker_globals.is_empty());
        let inv =
            Invocation::parse(&os(&["--future", "x", "warrant", "verify"])).expect("fallback");
        assert_eq!(inv.docker_globals, os(&["--future", "x"]));
        assert_eq!(inv.args, os(&["verify"]));
        assert!(Invocation::parse(&os(&["verify", "a:1"])).is_none());
    }
}
