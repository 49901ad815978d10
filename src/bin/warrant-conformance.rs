//! The tuf-conformance client CLI (theupdateframework/tuf-conformance, CLIENT-CLI.md)
//! over warrant's TUF client: `init TRUSTED_ROOT`, `refresh`, `download`.
//! Exit 0 on success, 1 on any failure.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use warrant::tuf::client::{Limits, LocalState as _, Updater};
use warrant::tuf::http::{HttpRemote, quote};
use warrant::tuf::local::{MetadataDir, write_atomic};

#[derive(Parser)]
struct Cli {
    #[arg(long)]
    metadata_dir: PathBuf,
    #[arg(long)]
    metadata_url: Option<String>,
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    #[arg(long)]
    target_base_url: Option<String>,
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Where to keep verified target indexes (default: a directory under the
    /// system temp dir named after --metadata-dir). Not inside --metadata-dir:
    /// the conformance suite expects exactly one file per role there.
    #[arg(long)]
    index_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Trust this root.json.
    Init { trusted_root: PathBuf },
    /// Update the metadata.
    Refresh,
    /// Refresh, then download each --target-name into --target-dir.
    Download,
}

fn run(cli: Cli) -> Result<(), String> {
    let index_dir = cli.index_dir.clone().unwrap_or_else(|| {
        let abs = std::path::absolute(&cli.metadata_dir).unwrap_or(cli.metadata_dir.clone());
        let id = warrant::digest::Sha256Digest::of(abs.as_os_str().as_encoded_bytes()).hex();
        std::env::temp_dir()
            .join("warrant-conformance-index")
            .join(&id[..32])
    });
    let mut dir = MetadataDir::new(&cli.metadata_dir).with_index_dir(&index_dir);
    if let Cmd::Init { trusted_root } = &cli.command {
        // CLIENT-CLI.md: "no checks are expected" here; the root is verified against
        // itself every time it is loaded.
        let bytes = std::fs::read(trusted_root).map_err(|e| e.to_string())?;
        return dir.persist("root", &bytes).map_err(|e| e.to_string());
    }
    let url = cli
        .metadata_url
        .as_deref()
        .ok_or("--metadata-url is required")?;
    let remote =
        HttpRemote::new(url, std::time::Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let mut up = Updater::new(remote, dir, chrono::Utc::now(), Limits::default())
        .map_err(|e| e.to_string())?
        .with_target_index();
    up.refresh().map_err(|e| e.to_string())?;
    if let Cmd::Download = cli.command {
        let base = cli
            .target_base_url
            .as_deref()
            .ok_or("--target-base-url is required")?
            .trim_end_matches('/');
        let target_dir = cli
            .target_dir
            .as_deref()
            .ok_or("--target-dir is required")?;
        for name in &cli.target_names {
            let found = up
                .find_target(name)
                .map_err(|e| e.to_string())?
                .ok_or(format!("no target {name}"))?;
            let local = target_dir.join(quote(name));
            if std::fs::read(&local).is_ok_and(|b| found.file.check(&b).is_ok()) {
                continue; // already have exactly this artifact
            }
            let (dirname, basename) = name
                .rsplit_once('/')
                .map_or(("", name.as_str()), |(d, b)| (d, b));
            let hash = found
                .file
                .hashes
                .get("sha256")
                .or_else(|| found.file.hashes.values().next())
                .ok_or("target has no hashes")?;
            let prefix = if dirname.is_empty() {
                String::new()
            } else {
                format!("{dirname}/")
            };
            let remote_name = if up.trusted().root().consistent_snapshot == Some(true) {
                format!("{prefix}{hash}.{basename}")
            } else {
                name.clone()
            };
            // The metadata's client serves the targets too (one client per run).
            let bytes = up
                .remote()
                .get(&format!("{base}/{remote_name}"), found.file.length)
                .map_err(|e| e.to_string())?;
            found
                .file
                .check(&bytes)
                .map_err(|e| format!("{name}: {e}"))?;
            write_atomic(&local, &bytes).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warrant-conformance: {e}");
            ExitCode::FAILURE
        }
    }
}
