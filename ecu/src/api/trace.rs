//! `GET /v1/trace?proto=tcp&client=<ip:port>&vip=<ip:port>` (reader role): the shell's `trace`
//! as JSON — the vserver and service a flow matches, the destination this node's scheduler
//! would pick, the live flow, and why destinations are left out.

use super::*;

/// The query of `/v1/trace`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct TraceQuery {
    proto: Option<String>,
    client: Option<String>,
    vip: Option<String>,
}

pub(super) async fn trace<V: EngineView>(
    State(st): St<V>,
    who: Who,
    q: Result<axum::extract::Query<TraceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    who.require(Role::Reader)?;
    let axum::extract::Query(q) = q.map_err(|e| field("", e.body_text()))?;
    let mut errors = Vec::new();
    let proto = q
        .proto
        .unwrap_or_else(|| "tcp".to_owned())
        .to_ascii_lowercase();
    if proto != "tcp" && proto != "udp" {
        errors.push(FieldError {
            field: "proto".into(),
            message: "must be tcp or udp".into(),
        });
    }
    let mut addr = |name: &str, v: Option<String>| {
        let v = v.unwrap_or_default();
        if v.parse::<std::net::SocketAddr>().is_err() {
            errors.push(FieldError {
                field: name.into(),
                message: format!("{v:?} is not an ip:port"),
            });
        }
        v
    };
    let (client, vip) = (addr("client", q.client), addr("vip", q.vip));
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let t = st.view.trace(proto, client, vip).await?;
    Ok(Json(t).into_response())
}
