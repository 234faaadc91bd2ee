//! Finding the workspace's built binaries (`seesaw_watchdog`, `seesaw`, ...) from a test.
//!
//! Integration tests of this crate cannot use `CARGO_BIN_EXE_*` for other packages' binaries, so
//! they are looked up in the workspace target dir: `$CARGO_TARGET_DIR` (relative paths are taken
//! from the workspace root, as cargo does) or `<workspace>/target`, profile `debug`, or the
//! profile `SEESAW_LAB_PROFILE` names (`release` for measurements: `cargo build --release
//! --workspace --bins` first).

use std::path::PathBuf;

use crate::error::LabError;

/// Every binary the end-to-end tests start, directly or through the watchdog.
pub const ALL: &[&str] = &[
    "seesaw_watchdog",
    "seesaw_ncc",
    "seesaw_proxy",
    "seesaw_engine",
    "seesaw_ha",
    "seesaw_healthcheck",
    "seesaw_ecu",
    "seesaw",
];

/// The workspace root (this crate's parent directory).
pub fn workspace_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(PathBuf::from)
        .expect("the lab crate sits one level below the workspace root")
}

/// The directory holding the builds of the workspace's binaries the lab runs.
pub fn profile_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_dir().join(dir)
            }
        }
        _ => workspace_dir().join("target"),
    };
    let profile = std::env::var("SEESAW_LAB_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "debug".to_owned());
    target.join(profile)
}

/// The path of binary `name`, or an error naming it and the command that builds it.
pub fn binary(name: &str) -> Result<PathBuf, LabError> {
    let path = profile_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(LabError::MissingBinary {
            name: name.to_owned(),
            path,
        })
    }
}

/// Checks that every binary in [`ALL`] exists, reporting the first missing one.
pub fn require_all() -> Result<(), LabError> {
    ALL.iter().try_for_each(|name| binary(name).map(drop))
}
