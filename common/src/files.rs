//! Files and sockets the daemons create: configs (which can hold RADIUS secrets), their archive
//! and history, and logs are not world-readable, and a restarted daemon keeps the owner, group and
//! mode an operator gave to what it replaces.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of files the daemons write: owner read/write, group read.
pub const FILE_MODE: u32 = 0o640;

/// Sets the process umask to 027, so every file a daemon (or a child it starts) creates is at
/// most 0640 and every directory at most 0750. Each daemon calls it first thing.
pub fn private_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o027));
}

/// Raises this process's open-file limit (`RLIMIT_NOFILE`) to its hard limit; returns the limit
/// now in force. A data plane that holds one socket per service and worker needs it.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    }
    Ok(hard)
}

/// Writes `bytes` to `path` through a temp file and a rename, so readers see the old or the new
/// content, never half. The new file is [`FILE_MODE`]; if `path` existed, it keeps that file's
/// group (an operator's `chgrp seesaw cluster.pb` survives every save).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let old_gid = std::fs::metadata(path).ok().map(|m| m.gid());
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)?;
    // The mode given to open() is masked by the umask; set it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    if let Some(gid) = old_gid {
        keep_group(&tmp, gid);
    }
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Gives `path` the group `gid` when we may (root, or a member of it); otherwise leaves it and
/// says so, since the file is still written.
fn keep_group(path: &Path, gid: u32) {
    if let Err(e) = std::os::unix::fs::chown(path, None, Some(gid)) {
        tracing::warn!(path = %path.display(), gid, error = %e, "cannot keep the file's group");
    }
}

/// What a Unix socket file had before it was replaced: owner, group and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

impl Ownership {
    /// Of the file at `path`, if it exists.
    pub fn of(path: &Path) -> Option<Self> {
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(Self {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        })
    }

    /// Applies it to `path` (chown only where permitted, logged otherwise).
    pub fn apply(self, path: &Path) -> std::io::Result<()> {
        if let Err(e) = std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot restore the socket's owner and group");
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(self.mode))
    }
}

/// Why a secret file (a key) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// It cannot be opened or read (missing, no permission, ...).
    #[error("{path}: cannot read: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The io error.
        reason: String,
    },
    /// Not a regular file.
    #[error("{path}: not a regular file")]
    NotAFile {
        /// The file.
        path: String,
    },
    /// Group or others may read or write it.
    #[error("{path}: must be mode 0600 (it is {mode:04o}: group or others have access)")]
    Mode {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Fewer bytes than the caller needs.
    #[error("{path}: holds {len} bytes, needs at least {min}")]
    TooShort {
        /// The file.
        path: String,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
}

/// Reads a secret: `path` must be a regular file that neither group nor others may read or write
/// (mode & 0o077 == 0) and that holds at least `min_len` bytes; its whole content is returned.
/// The checks run on the opened file, so a file swapped between check and read is not missed.
pub fn read_secret(path: &Path, min_len: usize) -> Result<Vec<u8>, SecretError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let read_err = |e: std::io::Error| SecretError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    };
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(SecretError::NotAFile { path: shown });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Mode { path: shown, mode });
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(read_err)?;
    if bytes.len() < min_len {
        return Err(SecretError::TooShort {
            path: shown,
            len: bytes.len(),
            min: min_len,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
