//! Config history: every cluster.pb change made through the shell, the API or the dashboard is
//! saved as a numbered version with who, when and what, so any version can be restored byte for
//! byte. Layout under `<config dir>/history/`: `<id>.pb` (the exact bytes) and `index.jsonl` (one
//! JSON line per version). A version's file is written (temp + rename) before its index line, so a
//! crash never leaves an index entry without its bytes.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub use seesaw_status::cluster::Version;
use sha2::{Digest, Sha256};

/// The history directory.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

impl History {
    /// The history of the config directory `config_dir`.
    pub fn new(config_dir: &Path) -> Self {
        Self {
            dir: config_dir.join("history"),
        }
    }

    /// Every version, oldest first. A missing history is empty; unreadable lines are skipped.
    pub fn list(&self) -> Vec<Version> {
        let Ok(text) = std::fs::read_to_string(self.dir.join("index.jsonl")) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<Version>(l).ok())
            .filter(|v| self.dir.join(format!("{}.pb", v.id)).exists())
            .collect()
    }

    /// The bytes of version `id`.
    pub fn get(&self, id: u64) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(format!("{id}.pb")))
    }

    /// Saves `bytes` as a new version.
    pub fn record(
        &self,
        bytes: &[u8],
        who: &str,
        what: &str,
        now: SystemTime,
    ) -> std::io::Result<Version> {
        std::fs::create_dir_all(&self.dir)?;
        let id = self.list().last().map_or(1, |v| v.id + 1);
        let version = Version {
            id,
            at_ms: i64::try_from(
                now.duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis(),
            )
            .unwrap_or(i64::MAX),
            who: who.to_owned(),
            what: what.to_owned(),
            sha256: hex(&Sha256::digest(bytes)),
            size: bytes.len() as u64,
        };
        write_atomic(&self.dir.join(format!("{id}.pb")), bytes)?;
        let mut index = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(seesaw_common::files::FILE_MODE)
            .open(self.dir.join("index.jsonl"))?;
        let line = serde_json::to_string(&version).map_err(std::io::Error::other)?;
        writeln!(index, "{line}")?;
        index.sync_all()?;
        Ok(version)
    }
}

/// The version tag of a cluster.pb on disk: the first 8 bytes of its SHA-256, as a number. An
/// edit names the tag it started from, and is refused when cluster.pb changed since.
pub fn content_tag(bytes: &[u8]) -> u64 {
    let d = Sha256::digest(bytes);
    u64::from_be_bytes(d[..8].try_into().expect("SHA-256 has 32 bytes"))
}

/// Writes `bytes` to `path` through a temp file and a rename, so readers see old or new, never
/// half; mode 0640, keeping the replaced file's group (`seesaw_common::files::write_atomic`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    seesaw_common::files::write_atomic(path, bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_and_restored_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path());
        assert!(h.list().is_empty());
        let t = UNIX_EPOCH;
        for (i, body) in ["a: 1\n", "b: 2\n", "c: 3\n"].iter().enumerate() {
            let v = h
                .record(body.as_bytes(), "alice", &format!("edit {i}"), t)
                .unwrap();
            assert_eq!(v.id, i as u64 + 1);
        }
        let list = h.list();
        assert_eq!(
            list.iter().map(|v| v.what.as_str()).collect::<Vec<_>>(),
            ["edit 0", "edit 1", "edit 2"]
        );
        assert_eq!(h.get(1).unwrap(), b"a: 1\n");
        assert_eq!(list[0].sha256.len(), 64);
        // An index line whose file vanished is not listed.
        std::fs::remove_file(dir.path().join("history/2.pb")).unwrap();
        assert_eq!(h.list().iter().map(|v| v.id).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(h.record(b"d", "bob", "edit 3", t).unwrap().id, 4);
    }
}
