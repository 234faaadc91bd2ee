//! What the shell needs from the engine ([`EngineLink`]), its gRPC implementation over the
//! engine's Unix socket, and a stateful fake for tests.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use seesaw_proto::engine as pb;
use seesaw_proto::engine::engine_client::EngineClient;

use crate::tree::{OverrideKind, OverrideSet};
use tonic::transport::Channel;

/// How long one engine call may take; the engine answers from memory, so this is generous.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Nothing answers on the socket (engine not running, wrong run dir, no permission).
    #[error("cannot reach the engine at {}: {cause}", path.display())]
    Unreachable {
        /// The socket path.
        path: PathBuf,
        /// The innermost cause, e.g. `No such file or directory (os error 2)`.
        cause: String,
    },
    /// The engine answered with an error.
    #[error("engine error: {0}")]
    Rpc(String),
    /// The engine knows no such name (e.g. the vserver an override names).
    #[error("engine error: {0}")]
    NotFound(String),
}

/// The engine calls the shell makes.
pub trait EngineLink {
    /// `ClusterStatus`.
    fn cluster_status(&mut self) -> impl Future<Output = Result<pb::ClusterStatus, EngineError>>;
    /// `ConfigStatus`.
    fn config_status(&mut self) -> impl Future<Output = Result<pb::ConfigStatus, EngineError>>;
    /// `Vservers`: exact name or prefix; empty means all.
    fn vservers(
        &mut self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<pb::VserverStatus>, EngineError>>;
    /// `HaStatus`.
    fn ha_status(&mut self) -> impl Future<Output = Result<pb::HaStatus, EngineError>>;
    /// `ConfigReload`.
    fn config_reload(&mut self)
    -> impl Future<Output = Result<pb::ConfigReloadReply, EngineError>>;
    /// `OverrideVserver` / `OverrideBackend` / `OverrideDestination`: the engine's message.
    fn set_override(
        &mut self,
        kind: OverrideKind,
        target: &str,
        state: OverrideSet,
    ) -> impl Future<Output = Result<String, EngineError>>;
    /// `ConfigSource`: (current, previous); an empty `source` only reads.
    fn config_source(
        &mut self,
        source: &str,
    ) -> impl Future<Output = Result<(String, String), EngineError>>;
    /// `Failover`: the engine's message, or why it refused (`EngineError::Rpc`).
    fn failover(&mut self) -> impl Future<Output = Result<String, EngineError>>;
    /// `BgpNeighbors`: the speaker's neighbours and announced routes.
    fn bgp_neighbors(
        &mut self,
    ) -> impl Future<Output = Result<seesaw_proto::ncc::BgpNeighborList, EngineError>>;
    /// `Vlans`: the VLANs with the engine's backend and VIP counts.
    fn vlans(&mut self) -> impl Future<Output = Result<Vec<pb::Vlan>, EngineError>>;
    /// `UpdateCluster`: validate, record (`what`) and apply a new cluster.pb.
    fn update_cluster(
        &mut self,
        text: String,
        what: String,
    ) -> impl Future<Output = Result<pb::ConfigReloadReply, EngineError>>;
    /// `ConfigHistory`: saved versions, newest first.
    fn history(&mut self) -> impl Future<Output = Result<Vec<pb::ConfigVersion>, EngineError>>;
    /// `Trace`: which vserver, service and destination a flow gets.
    fn trace(
        &mut self,
        req: pb::TraceRequest,
    ) -> impl Future<Output = Result<pb::FlowTrace, EngineError>>;
    /// `PreviewCluster`: what a reload or a rollback would change; nothing applied.
    fn preview(
        &mut self,
        change: pb::preview_request::Change,
    ) -> impl Future<Output = Result<pb::Preview, EngineError>>;
    /// `ConfigRollback`: restore version `id` and apply it.
    fn rollback(
        &mut self,
        id: u64,
    ) -> impl Future<Output = Result<pb::ConfigReloadReply, EngineError>>;
    /// `config import FILE`: converts the YAML and updates cluster.pb through the engine. The
    /// conversion lives with the ECU (which serves the same import over HTTPS), so this runs
    /// `seesaw_ecu --import FILE` against the same engine socket. (text to print, applied).
    fn import_yaml(
        &mut self,
        path: &str,
        json: bool,
    ) -> impl Future<Output = Result<(String, bool), EngineError>>;
}

// === impl GrpcEngine ===

/// [`EngineLink`] over the engine's gRPC socket.
#[derive(Debug, Clone)]
pub struct GrpcEngine {
    client: EngineClient<Channel>,
    path: PathBuf,
}

impl GrpcEngine {
    /// A client for the socket at `path`. Connects lazily: nothing fails until the first call.
    /// Must be called inside a tokio runtime.
    pub fn new(path: &Path) -> Self {
        Self {
            client: EngineClient::new(seesaw_common::uds::channel(path, CALL_TIMEOUT))
                .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
                .max_encoding_message_size(seesaw_common::uds::MAX_MESSAGE),
            path: path.to_owned(),
        }
    }

    /// The reply's message, or the call's error as an [`EngineError`].
    fn inner<T>(&self, reply: Result<tonic::Response<T>, tonic::Status>) -> Result<T, EngineError> {
        reply
            .map(tonic::Response::into_inner)
            .map_err(|s| self.error(s))
    }

    fn error(&self, status: tonic::Status) -> EngineError {
        use tonic::Code;
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                EngineError::Unreachable {
                    path: self.path.clone(),
                    cause: innermost_cause(&status),
                }
            }
            Code::NotFound => EngineError::NotFound(status.message().to_owned()),
            _ => EngineError::Rpc(status.message().to_owned()),
        }
    }
}

impl EngineLink for GrpcEngine {
    async fn cluster_status(&mut self) -> Result<pb::ClusterStatus, EngineError> {
        let r = self.client.cluster_status(pb::Empty {}).await;
        self.inner(r)
    }

    async fn config_status(&mut self) -> Result<pb::ConfigStatus, EngineError> {
        let r = self.client.config_status(pb::Empty {}).await;
        self.inner(r)
    }

    async fn vservers(&mut self, name: &str) -> Result<Vec<pb::VserverStatus>, EngineError> {
        let request = pb::VserversRequest {
            name: name.to_owned(),
        };
        let r = self.client.vservers(request).await;
        self.inner(r).map(|r| r.vservers)
    }

    async fn ha_status(&mut self) -> Result<pb::HaStatus, EngineError> {
        let r = self.client.ha_status(pb::Empty {}).await;
        self.inner(r)
    }

    async fn config_reload(&mut self) -> Result<pb::ConfigReloadReply, EngineError> {
        let r = self.client.config_reload(pb::Empty {}).await;
        self.inner(r)
    }

    async fn set_override(
        &mut self,
        kind: OverrideKind,
        target: &str,
        state: OverrideSet,
    ) -> Result<String, EngineError> {
        let req = pb::OverrideRequest {
            target: target.to_owned(),
            state: match state {
                OverrideSet::Default => pb::OverrideState::OverrideDefault,
                OverrideSet::Disabled => pb::OverrideState::OverrideDisabled,
                OverrideSet::Enabled => pb::OverrideState::OverrideEnabled,
            } as i32,
            acting_user: String::new(),
            on_behalf_of: String::new(),
        };
        let r = match kind {
            OverrideKind::Vserver => self.client.override_vserver(req).await,
            OverrideKind::Backend => self.client.override_backend(req).await,
            OverrideKind::Destination => self.client.override_destination(req).await,
        };
        self.inner(r).map(|r| r.message)
    }

    async fn config_source(&mut self, source: &str) -> Result<(String, String), EngineError> {
        let req = pb::ConfigSourceRequest {
            source: source.to_owned(),
        };
        let r = self.client.config_source(req).await;
        self.inner(r).map(|r| (r.source, r.previous))
    }

    async fn failover(&mut self) -> Result<String, EngineError> {
        let r = self.client.failover(pb::Empty {}).await;
        self.inner(r).map(|r| r.message)
    }

    async fn bgp_neighbors(&mut self) -> Result<seesaw_proto::ncc::BgpNeighborList, EngineError> {
        let r = self.client.bgp_neighbors(pb::Empty {}).await;
        self.inner(r)
    }

    async fn vlans(&mut self) -> Result<Vec<pb::Vlan>, EngineError> {
        let r = self.client.vlans(pb::Empty {}).await;
        self.inner(r).map(|r| r.vlans)
    }

    async fn update_cluster(
        &mut self,
        text: String,
        what: String,
    ) -> Result<pb::ConfigReloadReply, EngineError> {
        let req = pb::UpdateClusterRequest {
            text,
            what,
            acting_user: String::new(),
            // The engine checks against the config it runs now.
            base_revision: 0,
        };
        let r = self.client.update_cluster(req).await;
        self.inner(r)
    }

    async fn history(&mut self) -> Result<Vec<pb::ConfigVersion>, EngineError> {
        let r = self.client.config_history(pb::Empty {}).await;
        self.inner(r).map(|r| r.versions)
    }

    async fn import_yaml(&mut self, path: &str, json: bool) -> Result<(String, bool), EngineError> {
        // The ECU finds the engine at <run>/engine/engine.sock: a socket elsewhere (`-engine`)
        // cannot be handed to it.
        let run_dir = self
            .path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        if seesaw_common::paths::engine_socket(run_dir) != self.path {
            return Err(EngineError::Rpc(format!(
                "config import reaches the engine through the ECU, which needs the socket at \
                 <run-dir>/engine/engine.sock, not {}",
                self.path.display()
            )));
        }
        let mut cmd = tokio::process::Command::new(ecu_binary());
        cmd.arg("--run-dir").arg(run_dir).arg("--import").arg(path);
        if json {
            cmd.arg("--json");
        }
        let out =
            match tokio::time::timeout(CALL_TIMEOUT * 2, cmd.kill_on_drop(true).output()).await {
                Ok(Ok(out)) => out,
                Ok(Err(e)) => {
                    return Err(EngineError::Rpc(format!(
                        "cannot run {}: {e}",
                        ecu_binary().display()
                    )));
                }
                Err(_) => return Err(EngineError::Rpc("the import did not finish in time".into())),
            };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        match out.status.code() {
            Some(0) => Ok((text, true)),
            Some(69) => Err(EngineError::Unreachable {
                path: self.path.clone(),
                cause: text.trim().to_owned(),
            }),
            _ => Ok((text, false)),
        }
    }

    async fn trace(&mut self, req: pb::TraceRequest) -> Result<pb::FlowTrace, EngineError> {
        let r = self.client.trace(req).await;
        self.inner(r)
    }

    async fn preview(
        &mut self,
        change: pb::preview_request::Change,
    ) -> Result<pb::Preview, EngineError> {
        let req = pb::PreviewRequest {
            change: Some(change),
        };
        let r = self.client.preview_cluster(req).await;
        self.inner(r)
    }

    async fn rollback(&mut self, id: u64) -> Result<pb::ConfigReloadReply, EngineError> {
        let req = pb::ConfigRollbackRequest {
            id,
            acting_user: String::new(),
        };
        let r = self.client.config_rollback(req).await;
        self.inner(r)
    }
}

/// `seesaw_ecu` next to this binary (installed together, and so in the build tree), else the
/// installed one, else whatever `PATH` finds.
fn ecu_binary() -> PathBuf {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("seesaw_ecu")));
    for candidate in sibling
        .into_iter()
        .chain([PathBuf::from("/usr/local/seesaw/seesaw_ecu")])
    {
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from("seesaw_ecu")
}

/// The deepest error in the status's source chain (the OS error when connecting fails), or the
/// status message if there is none.
fn innermost_cause(status: &tonic::Status) -> String {
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(status);
    let mut innermost = None;
    while let Some(e) = cause {
        innermost = Some(e);
        cause = e.source();
    }
    innermost.map_or_else(|| status.message().to_owned(), ToString::to_string)
}

// === impl FakeEngine ===

/// An in-memory engine for tests: canned state, an optional refusal for the next reload, and a
/// count of reloads asked for.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct FakeEngine {
    pub cluster: pb::ClusterStatus,
    pub config: pb::ConfigStatus,
    pub vservers: Vec<pb::VserverStatus>,
    pub ha: pb::HaStatus,
    /// Errors the next reload is refused with; empty means it applies.
    pub refuse_reload: Vec<String>,
    pub reloads: u32,
    /// When set, every call fails as if the socket were missing.
    pub down: bool,
    /// Every override set, in order.
    pub overrides: Vec<(OverrideKind, String, OverrideSet)>,
    /// The config source.
    pub source: String,
    /// Failover requests seen.
    pub failovers: u32,
    /// The cluster.pb text.
    pub text: String,
    /// Saved versions (id, what, text), oldest first.
    pub versions: Vec<(u64, String, String)>,
    /// Files imported.
    pub imports: Vec<String>,
    /// When set, the next import is refused with this text.
    pub import_refusal: Option<String>,
    /// What `BgpNeighbors` answers.
    pub bgp: seesaw_proto::ncc::BgpNeighborList,
    /// What `Vlans` answers.
    pub vlan_list: Vec<pb::Vlan>,
}

#[cfg(test)]
impl FakeEngine {
    fn up(&self) -> Result<(), EngineError> {
        if self.down {
            return Err(EngineError::Unreachable {
                path: PathBuf::from("/fake/engine.sock"),
                cause: "No such file or directory (os error 2)".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
impl EngineLink for FakeEngine {
    async fn cluster_status(&mut self) -> Result<pb::ClusterStatus, EngineError> {
        self.up()?;
        Ok(self.cluster.clone())
    }

    async fn config_status(&mut self) -> Result<pb::ConfigStatus, EngineError> {
        self.up()?;
        Ok(self.config.clone())
    }

    async fn vservers(&mut self, name: &str) -> Result<Vec<pb::VserverStatus>, EngineError> {
        self.up()?;
        // Like the engine: every vserver whose name starts with `name`.
        Ok(self
            .vservers
            .iter()
            .filter(|v| v.name.starts_with(name))
            .cloned()
            .collect())
    }

    async fn ha_status(&mut self) -> Result<pb::HaStatus, EngineError> {
        self.up()?;
        Ok(self.ha.clone())
    }

    async fn config_reload(&mut self) -> Result<pb::ConfigReloadReply, EngineError> {
        self.up()?;
        self.reloads += 1;
        if self.refuse_reload.is_empty() {
            self.config.generation += 1;
            Ok(pb::ConfigReloadReply {
                applied: true,
                message: format!(
                    "configuration applied (generation {})",
                    self.config.generation
                ),
                errors: Vec::new(),
            })
        } else {
            self.config.reload_failures += 1;
            self.config.last_reload_errors = std::mem::take(&mut self.refuse_reload);
            Ok(pb::ConfigReloadReply {
                applied: false,
                message: "configuration refused".to_owned(),
                errors: self.config.last_reload_errors.clone(),
            })
        }
    }

    async fn set_override(
        &mut self,
        kind: OverrideKind,
        target: &str,
        state: OverrideSet,
    ) -> Result<String, EngineError> {
        self.up()?;
        // Like the engine: a name the vservers do not hold is refused.
        let dests = || {
            self.vservers
                .iter()
                .flat_map(|v| &v.services)
                .flat_map(|s| &s.destinations)
        };
        let exists = match kind {
            OverrideKind::Vserver => self.vservers.iter().any(|v| v.name == target),
            OverrideKind::Backend => dests().any(|d| d.backend == target),
            OverrideKind::Destination => dests().any(|d| d.name == target),
        };
        if !exists {
            return Err(EngineError::NotFound(format!(
                "no such {} {target:?}",
                format!("{kind:?}").to_lowercase()
            )));
        }
        self.overrides.push((kind, target.to_owned(), state));
        Ok(format!("{kind:?} {target}: {state:?}").to_lowercase())
    }

    async fn config_source(&mut self, source: &str) -> Result<(String, String), EngineError> {
        self.up()?;
        let previous = self.source.clone();
        match source {
            "" => Ok((previous.clone(), previous)),
            "disk" | "none" => {
                self.source = source.to_owned();
                Ok((self.source.clone(), previous))
            }
            other => Err(EngineError::Rpc(format!("unknown config source {other:?}"))),
        }
    }

    async fn failover(&mut self) -> Result<String, EngineError> {
        self.up()?;
        if self.ha.state != "LEADER" {
            return Err(EngineError::Rpc(format!(
                "this node is {}, not the master",
                self.ha.state
            )));
        }
        self.failovers += 1;
        Ok("failover requested".to_owned())
    }

    async fn bgp_neighbors(&mut self) -> Result<seesaw_proto::ncc::BgpNeighborList, EngineError> {
        self.up()?;
        Ok(self.bgp.clone())
    }

    async fn vlans(&mut self) -> Result<Vec<pb::Vlan>, EngineError> {
        self.up()?;
        Ok(self.vlan_list.clone())
    }

    async fn update_cluster(
        &mut self,
        text: String,
        what: String,
    ) -> Result<pb::ConfigReloadReply, EngineError> {
        self.up()?;
        let id = self.versions.last().map_or(1, |v| v.0 + 1);
        self.versions.push((id, what, text.clone()));
        self.text = text;
        Ok(pb::ConfigReloadReply {
            applied: true,
            message: format!("configuration applied (version {id})"),
            errors: Vec::new(),
        })
    }

    async fn history(&mut self) -> Result<Vec<pb::ConfigVersion>, EngineError> {
        self.up()?;
        Ok(self
            .versions
            .iter()
            .rev()
            .map(|(id, what, text)| pb::ConfigVersion {
                id: *id,
                at_ms: 0,
                who: "tester".to_owned(),
                what: what.clone(),
                sha256: format!("{:064x}", text.len()),
                size: text.len() as u64,
            })
            .collect())
    }

    async fn import_yaml(
        &mut self,
        path: &str,
        _json: bool,
    ) -> Result<(String, bool), EngineError> {
        self.up()?;
        self.imports.push(path.to_owned());
        if let Some(refusal) = self.import_refusal.take() {
            return Ok((refusal, false));
        }
        let reply = self
            .update_cluster(self.text.clone(), format!("import from {path}"))
            .await?;
        Ok((format!("{}\n", reply.message), reply.applied))
    }

    async fn trace(&mut self, req: pb::TraceRequest) -> Result<pb::FlowTrace, EngineError> {
        self.up()?;
        // The fake matches no service: it has no data plane.
        Ok(pb::FlowTrace {
            notes: vec![format!("no configured service on {}", req.vip)],
            ..Default::default()
        })
    }

    async fn preview(
        &mut self,
        change: pb::preview_request::Change,
    ) -> Result<pb::Preview, EngineError> {
        self.up()?;
        // The fake has no data plane: a rollback previews its version's vserver count only.
        if let pb::preview_request::Change::RollbackId(id) = change
            && !self.versions.iter().any(|v| v.0 == id)
        {
            return Err(EngineError::Rpc(format!("no config version {id}")));
        }
        Ok(pb::Preview {
            valid: self.refuse_reload.is_empty(),
            errors: self.refuse_reload.clone(),
            ..Default::default()
        })
    }

    async fn rollback(&mut self, id: u64) -> Result<pb::ConfigReloadReply, EngineError> {
        self.up()?;
        let Some((_, _, text)) = self.versions.iter().find(|v| v.0 == id).cloned() else {
            return Err(EngineError::Rpc(format!("no config version {id}")));
        };
        self.update_cluster(text, format!("rollback to version {id}"))
            .await
    }
}
