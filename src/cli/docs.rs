//! `warrant completions SHELL` and `warrant man`: generated from the clap
//! definitions, so they cannot drift from the commands.

use std::io::Write as _;
use std::path::PathBuf;

use clap::CommandFactory as _;

use super::Cli;
use crate::ops::OpError;

/// `warrant completions SHELL`
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `warrant man`
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write a page per command (warrant.1, warrant-sign.1, ...) into DIR instead
    /// of printing warrant(1).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

fn io_error(path: PathBuf) -> impl Fn(std::io::Error) -> OpError {
    move |e| OpError::Io {
        path: path.clone(),
        source: e,
    }
}

/// Print the completion script for `a.shell` to stdout.
pub fn completions(a: CompletionsArgs) -> Result<u8, OpError> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "warrant", &mut out);
    std::io::stdout()
        .lock()
        .write_all(&out)
        .map_err(io_error("<stdout>".into()))?;
    Ok(0)
}

/// Print warrant(1), or write every page into `--out-dir`.
pub fn man(a: ManArgs) -> Result<u8, OpError> {
    let cmd = Cli::command();
    match a.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(io_error(dir.clone()))?;
            clap_mangen::generate_to(cmd, &dir).map_err(io_error(dir.clone()))?;
            Ok(0)
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(io_error("<stdout>".into()))?;
            std::io::stdout()
                .lock()
                .write_all(&out)
                .map_err(io_error("<stdout>".into()))?;
            Ok(0)
        }
    }
}
