//! Bounded reads of local files — the one place a file named by a user, a policy or
//! a layout is read — and the one atomic write.
//!
//! Every read is capped (a file past the cap fails without reading more than
//! `max + 1` bytes), opened without blocking (a planted FIFO cannot hang the
//! command: issue #11), and must be a regular file by `fstat` of the handle actually
//! opened (so a swap after a check cannot slip `/dev/zero` in).

use std::fs;
use std::io::{self, Read as _};
use std::path::Path;

/// Largest buffer reserved up front, whatever a file's size claims.
const MAX_PREALLOC: u64 = 1024 * 1024;

/// A local file that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The OS refused (missing, permissions, ...).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Larger than the cap.
    #[error("larger than {max} bytes")]
    TooLarge {
        /// The cap.
        max: u64,
    },
    /// A directory, FIFO, device or socket (or, where symlinks are refused, a
    /// symlink).
    #[error("not a regular file (a FIFO, device, directory or refused symlink)")]
    NotRegular,
    /// Expected text, found bytes that are not UTF-8.
    #[error("not UTF-8 text")]
    NotText,
}

/// Read the regular file `path` (symlinks followed: a Kubernetes ConfigMap mount is
/// a symlink), at most `max` bytes.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    read(path, max, true)
}

/// [`read_regular`] that also refuses a symlink at `path` (files inside an OCI
/// layout, whose names come from untrusted metadata).
pub fn read_regular_nofollow(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    read(path, max, false)
}

fn read(path: &Path, max: u64, follow: bool) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let flags = if follow {
        libc::O_NONBLOCK
    } else {
        libc::O_NONBLOCK | libc::O_NOFOLLOW
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if !follow => ReadError::NotRegular,
            _ => ReadError::Io(e),
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    let mut buf =
        Vec::with_capacity(usize::try_from(meta.len().min(max).min(MAX_PREALLOC)).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(ReadError::TooLarge { max });
    }
    Ok(buf)
}

/// How [`write_atomic`] writes.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Permission bits of the new file (0600 for keys and caches, 0644 for a
    /// published layout other users read).
    pub mode: u32,
    /// `fsync` the data before the rename (a crash then leaves old or new, never
    /// an empty file); skipped only for files rebuilt when lost.
    pub durable: bool,
    /// Keep an existing file instead (content-addressed blobs): not an error.
    pub no_clobber: bool,
}

impl WriteOptions {
    /// Private, durable, replacing.
    pub const PRIVATE: Self = Self {
        mode: 0o600,
        durable: true,
        no_clobber: false,
    };
}

/// Write `bytes` to `path` atomically: a temporary file in the same directory,
/// written (and synced when `durable`), then renamed onto `path`, so a reader sees
/// the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8], opts: WriteOptions) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".warrant-tmp-")
        .permissions(fs::Permissions::from_mode(opts.mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if opts.durable {
        tmp.as_file().sync_all()?;
    }
    let persisted = if opts.no_clobber {
        tmp.persist_noclobber(path)
    } else {
        tmp.persist(path)
    };
    match persisted {
        Ok(_) => Ok(()),
        Err(e) if opts.no_clobber && e.error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_instead_of_blocking() {
        let dir = tempfile::tempdir().expect("dir");
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(status.success());
        assert!(matches!(
            read_regular(&fifo, 100),
            Err(ReadError::NotRegular)
        ));
    }

    #[test]
    fn caps_and_symlinks() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("f");
        fs::write(&file, b"0123456789").expect("write");
        assert_eq!(read_regular(&file, 10).expect("fits"), b"0123456789");
        assert!(matches!(
            read_regular(&file, 9),
            Err(ReadError::TooLarge { max: 9 })
        ));
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(read_regular(&link, 10).is_ok());
        assert!(matches!(
            read_regular_nofollow(&link, 10),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_regular(dir.path(), 10),
            Err(ReadError::NotRegular)
        ));
    }
}
