//! Configuration in three stages: bytes → generated proto message (`cluster`, `seesaw_cfg`) →
//! validated domain types (`validate`). Loading has no side effects: it reads files and returns
//! either the whole validated config or every error found.

pub mod churn;
pub mod cluster;
pub mod etcd_cfg;
pub mod seesaw_cfg;
pub mod validate;

#[cfg(test)]
pub(crate) mod tests;

use std::path::Path;

use crate::model::{Cluster, Node};
pub use seesaw_cfg::{DataplaneKind, Settings};

/// A fully validated configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// `seesaw.cfg`.
    pub settings: Settings,
    /// `cluster.pb`.
    pub cluster: Cluster,
}

impl Loaded {
    /// This node's entry in the cluster: the one whose IPv4 (or IPv6) equals `node_ipv4/6`.
    pub fn local_node(&self) -> Option<&Node> {
        self.cluster.nodes.iter().find(|n| {
            (self.settings.node_ipv4.is_some()
                && n.host.ipv4.map(|(a, _)| a) == self.settings.node_ipv4)
                || (self.settings.node_ipv6.is_some()
                    && n.host.ipv6.map(|(a, _)| a) == self.settings.node_ipv6)
        })
    }
}

/// Reads and validates `seesaw.cfg` and `cluster.pb` from `dir`.
pub fn load_dir(dir: &Path) -> Result<Loaded, Vec<String>> {
    load_dir_for(dir, None)
}

/// [`load_dir`], checking the cluster against `plane` instead of seesaw.cfg's `[dataplane]
/// kind` (`seesaw_engine --validate --plane`); `auto` means the plane it resolves to here
/// ([`DataplaneKind::effective`]).
pub fn load_dir_for(dir: &Path, plane: Option<DataplaneKind>) -> Result<Loaded, Vec<String>> {
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .map_err(|e| vec![format!("{}: {e}", dir.join(name).display())])
    };
    let cfg = read("seesaw.cfg")?;
    let cfg = String::from_utf8(cfg).map_err(|_| vec!["seesaw.cfg: not UTF-8 text".to_owned()])?;
    let settings = seesaw_cfg::parse_checked(&cfg);
    let cluster = read("cluster.pb").and_then(|b| load_cluster(&b, None));
    match (settings, cluster) {
        (Ok(settings), Ok(cluster)) => {
            let kind = plane.unwrap_or(settings.dataplane).effective();
            let plane = validate::check_plane(&cluster, kind);
            if plane.is_empty() {
                Ok(Loaded { settings, cluster })
            } else {
                Err(plane)
            }
        }
        (s, c) => Err(s
            .err()
            .unwrap_or_default()
            .into_iter()
            .chain(c.err().unwrap_or_default())
            .collect()),
    }
}

/// Validates `bytes` as a new cluster.pb against the seesaw.cfg in `dir` (and its data plane), as
/// an edit, a rollback or a preview of one does. Blocking (reads a file).
pub fn load_candidate(dir: &Path, bytes: &[u8]) -> Result<Loaded, Vec<String>> {
    let settings = std::fs::read_to_string(dir.join("seesaw.cfg"))
        .map_err(|e| vec![format!("seesaw.cfg: {e}")])
        .and_then(|t| seesaw_cfg::parse_checked(&t))?;
    let cluster = load_cluster(bytes, Some(settings.dataplane))?;
    Ok(Loaded { settings, cluster })
}

/// At most `max` errors, then one line that counts the rest: a hostile or broken file with
/// thousands of errors is shown (shell, `show warnings`, logs) by its first ones.
pub fn summarize(mut errors: Vec<String>, max: usize) -> Vec<String> {
    if errors.len() > max {
        let rest = errors.len() - max;
        errors.truncate(max);
        errors.push(format!("... and {rest} more errors"));
    }
    errors
}

/// How many errors a refused config shows.
pub const SHOWN_ERRORS: usize = 50;

/// Parses and validates cluster.pb bytes; with `plane`, also checks that data plane's limits.
pub fn load_cluster(bytes: &[u8], plane: Option<DataplaneKind>) -> Result<Cluster, Vec<String>> {
    let pb = cluster::parse(bytes)?;
    let (cluster, _warnings) = validate::validate(&pb)?;
    if let Some(plane) = plane {
        let errs = validate::check_plane(&cluster, plane.effective());
        if !errs.is_empty() {
            return Err(errs);
        }
    }
    Ok(cluster)
}
