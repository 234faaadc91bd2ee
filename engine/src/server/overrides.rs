//! Override RPCs: the caller (trusted, or a user and groups named by a trusted proxy, from
//! `SO_PEERCRED` and the Unix group database) and the loop's answer as a gRPC status.

use super::*;

impl EngineService {
    pub(super) async fn set_override(
        &self,
        kind: OverrideKind,
        req: Request<pb::OverrideRequest>,
    ) -> Result<Response<pb::OverrideReply>, Status> {
        let on_behalf_of = &req.get_ref().on_behalf_of;
        if on_behalf_of.len() > 128 || on_behalf_of.chars().any(char::is_control) {
            return Err(Status::invalid_argument(
                "on_behalf_of must be at most 128 printable characters",
            ));
        }
        let caller = caller_of(&req);
        let r = req.into_inner();
        let state = match pb::OverrideState::try_from(r.state) {
            Ok(pb::OverrideState::OverrideDefault) => OverrideState::Default,
            Ok(pb::OverrideState::OverrideEnabled) => OverrideState::Enabled,
            Ok(pb::OverrideState::OverrideDisabled) => OverrideState::Disabled,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown override state {}",
                    r.state
                )));
            }
        };
        let (tx, rx) = oneshot::channel();
        self.send(Event::Override {
            kind,
            target: r.target,
            state,
            caller,
            reply: tx,
        })
        .await?;
        match rx
            .await
            .map_err(|_| Status::unavailable("engine stopped"))?
        {
            Ok(message) => Ok(Response::new(pb::OverrideReply { message })),
            Err(e) => Err(override_status(&e)),
        }
    }
}

/// The gRPC code of a refused override: the shell tells an unknown name (`NotFound`) from the
/// other refusals by it.
pub(super) fn override_status(e: &OverrideError) -> Status {
    match e {
        OverrideError::Denied(_) => Status::permission_denied(e.to_string()),
        OverrideError::Invalid(_) => Status::invalid_argument(e.to_string()),
        OverrideError::NotFound { .. } => Status::not_found(e.to_string()),
    }
}

/// Who is calling: trust and user from `SO_PEERCRED`; a trusted proxy (the ECU) may name the end
/// user it authenticated in `acting_user`, and is then judged as that user, or name the user it
/// authorised itself in `on_behalf_of`, and is then judged as itself but the override is recorded
/// as that user's.
fn caller_of(req: &Request<pb::OverrideRequest>) -> Caller {
    use seesaw_common::peer::{Trust, trust_of};
    let trusted = trust_of(req) == Trust::Trusted;
    let acting = &req.get_ref().acting_user;
    if trusted && !acting.is_empty() {
        return Caller {
            trusted: false,
            user: acting.clone(),
            groups: unix_groups(acting),
        };
    }
    let uid = req
        .extensions()
        .get::<tonic::transport::server::UdsConnectInfo>()
        .and_then(|i| i.peer_cred)
        .map(|c| c.uid());
    let user = uid
        .and_then(|u| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(u))
                .ok()
                .flatten()
        })
        .map_or_else(
            || uid.map_or_else(|| "unknown".to_owned(), |u| format!("uid {u}")),
            |u| u.name,
        );
    let groups = unix_groups(&user);
    let on_behalf_of = &req.get_ref().on_behalf_of;
    let user = if trusted && !on_behalf_of.is_empty() {
        format!("{on_behalf_of} (via {user})")
    } else {
        user
    };
    Caller {
        trusted,
        groups,
        user,
    }
}

/// The Unix groups `user` belongs to (empty if the user is unknown to this host).
fn unix_groups(user: &str) -> Vec<String> {
    let Ok(Some(u)) = nix::unistd::User::from_name(user) else {
        return Vec::new();
    };
    let Ok(name) = std::ffi::CString::new(user) else {
        return Vec::new();
    };
    nix::unistd::getgrouplist(&name, u.gid)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| nix::unistd::Group::from_gid(g).ok().flatten())
        .map(|g| g.name)
        .collect()
}
