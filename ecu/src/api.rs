//! The HTTPS API: every read and write of the shell, the pool/member editor, YAML import, the
//! config history with rollback, and the dashboard. Every `/v1` route needs credentials (401
//! without, 403 below the route's role; see [`crate::auth`]); every write is recorded in the
//! audit log, refused ones included. Bodies are JSON (YAML for `/v1/import`) and validated in
//! full first: a bad body gets 400 with `{"error", "errors": [{"field", "message"}]}` and
//! changes nothing.
//!
//! | route | role | answer |
//! |---|---|---|
//! | `GET /` , `/assets/*` | none | the dashboard (embedded) |
//! | `GET /v1/whoami` | reader | the caller |
//! | `GET /v1/vservers[/{name}]`, `/v1/ha`, `/v1/config`, `/v1/nodes`, `/v1/warnings` | reader | as the shell shows them |
//! | `GET /v1/backends`, `/v1/destinations`, `/v1/healthchecks`, `/v1/overrides` | reader | |
//! | `GET /v1/config/source`, `/v1/config/history`, `/v1/cluster` (text) | reader | |
//! | `GET /v1/trace?proto=&client=&vip=` | reader | the shell's `trace` ([`trace`]) |
//! | `GET /v1/series` | reader | the dashboard's 15-minute history ([`series`], merged in by `run`) |
//! | `POST /v1/overrides` `{kind, target, state}` | operator | the engine's message |
//! | `POST /v1/config/reload`, `POST /v1/failover` | operator | |
//! | `PUT /v1/config/source` `{source}` | admin | |
//! | `POST /v1/config/rollback` `{id}` | admin | |
//! | `POST /v1/import` (YAML) | admin | Parasaus `Service`+`Endpoints` or `kind: Pool` |
//! | `POST /v1/pools`, `PUT`/`DELETE /v1/pools/{name}` | admin | the pool form of [`crate::spec`]; `"vip_pool": "<name>"` instead of `"vip"` allocates the address from the config's vip_pool (config source etcd), and deleting the pool frees it |
//! | `POST /v1/pools/{name}/members`, `PUT`/`DELETE .../members/{host}` | admin | |
//! | `PUT .../members/{host}` with `ttl_s` | admin | config source etcd: registers the member with a lease, renewed by repeating the call (`{lease_id, renewed}`) |
//!
//! Pool, member, import and rollback writes edit cluster.pb through the engine
//! (`GetCluster` → structural edit → `UpdateCluster`, recorded with the user and what changed);
//! the ECU serialises its own edits so two requests cannot lose each other's change.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::{AuditLog, Record};
use crate::auth::{Identity, Role, Users};
use crate::cluster_edit::{self, EditError};
use crate::engine_view::{EngineView, ViewError};
use crate::model::{OverrideKind, OverrideState, Vserver};
use crate::spec::{self, FieldError};
use crate::tls::Peer;
use crate::{dashboard, import};

mod handlers;
mod pools;
pub mod series;
mod trace;

pub use handlers::*;
pub use pools::cluster_vip;
use pools::*;

/// What the API's handlers share.
#[derive(Debug)]
pub struct ApiState<V> {
    view: V,
    users: Users,
    audit: AuditLog,
    /// Serialises cluster.pb edits (read, modify, write).
    edits: tokio::sync::Mutex<()>,
}

impl<V: EngineView> ApiState<V> {
    /// The state over `view`.
    pub fn new(view: V, users: Users, audit: AuditLog) -> Self {
        Self {
            view,
            users,
            audit,
            edits: tokio::sync::Mutex::new(()),
        }
    }
}

type St<V> = State<Arc<ApiState<V>>>;

/// Builds the API router.
pub fn router<V: EngineView>(state: Arc<ApiState<V>>) -> Router {
    Router::new()
        .route("/", get(dashboard::index))
        .route("/assets/{file}", get(dashboard::asset))
        .route("/v1/whoami", get(whoami))
        .route("/v1/vservers", get(vservers::<V>))
        .route("/v1/vservers/{name}", get(vserver::<V>))
        .route(
            "/v1/ha",
            get(read::<V, _, _>(|v| async move {
                v.ha_status().await.map(to_json)
            })),
        )
        .route(
            "/v1/config",
            get(read::<V, _, _>(|v| async move {
                v.config_status().await.map(to_json)
            })),
        )
        .route(
            "/v1/nodes",
            get(read::<V, _, _>(|v| async move {
                v.cluster().await.map(to_json)
            })),
        )
        .route(
            "/v1/warnings",
            get(read::<V, _, _>(|v| async move {
                v.config_status()
                    .await
                    .map(|c| json!({"warnings": c.warnings}))
            })),
        )
        .route(
            "/v1/backends",
            get(read::<V, _, _>(|v| async move {
                v.vservers(String::new()).await.map(|vs| backends(&vs))
            })),
        )
        .route(
            "/v1/destinations",
            get(read::<V, _, _>(|v| async move {
                v.vservers(String::new()).await.map(|vs| destinations(&vs))
            })),
        )
        .route(
            "/v1/healthchecks",
            get(read::<V, _, _>(|v| async move {
                v.vservers(String::new()).await.map(|vs| healthchecks(&vs))
            })),
        )
        .route(
            "/v1/overrides",
            get(read::<V, _, _>(|v| async move {
                v.overrides().await.map(to_json)
            }))
            .post(set_override::<V>),
        )
        .route(
            "/v1/config/history",
            get(read::<V, _, _>(|v| async move {
                v.history().await.map(to_json)
            })),
        )
        .route(
            "/v1/config/source",
            get(read::<V, _, _>(|v| async move {
                v.config_source(String::new())
                    .await
                    .map(|(s, _)| json!({"source": s}))
            }))
            .put(config_source::<V>),
        )
        .route("/v1/cluster", get(cluster_text::<V>))
        .route("/v1/trace", get(trace::trace::<V>))
        .route("/v1/config/reload", post(reload::<V>))
        .route("/v1/failover", post(failover::<V>))
        .route("/v1/config/rollback", post(rollback::<V>))
        .route("/v1/import", post(import_yaml::<V>))
        .route("/v1/pools", post(create_pool::<V>))
        .route(
            "/v1/pools/{name}",
            put(edit_pool::<V>).delete(delete_pool::<V>),
        )
        .route("/v1/pools/{name}/members", post(add_member::<V>))
        .route(
            "/v1/pools/{name}/members/{host}",
            put(edit_member::<V>).delete(delete_member::<V>),
        )
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(state)
}

// === errors ===

/// An API error, rendered as `{"error": "...", "errors": [...]}` with its status code.
#[derive(Debug)]
pub enum ApiError {
    /// 401.
    Unauthenticated,
    /// 403.
    Forbidden(String),
    /// 400 with every field error.
    Invalid(Vec<FieldError>),
    /// 400: the engine refused the new configuration (its errors carry cluster.pb paths).
    Refused(String, Vec<String>),
    /// 404.
    NotFound(String),
    /// 409: the edit conflicts with what exists.
    Conflict(String),
    /// 502/503/4xx from the engine.
    Engine(ViewError),
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Invalid(_) | Self::Refused(..) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Engine(ViewError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Engine(ViewError::Rpc { code, .. }) => match code {
                tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
                tonic::Code::NotFound => StatusCode::NOT_FOUND,
                tonic::Code::FailedPrecondition => StatusCode::CONFLICT,
                _ => StatusCode::BAD_GATEWAY,
            },
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Unauthenticated => {
                "authentication required: a bearer token or a client certificate".into()
            }
            Self::Forbidden(m) | Self::NotFound(m) | Self::Conflict(m) => m.clone(),
            Self::Invalid(errs) => format!("invalid request: {} problem(s)", errs.len()),
            Self::Refused(m, _) => m.clone(),
            Self::Engine(ViewError::Rpc { message, .. }) => message.clone(),
            Self::Engine(e) => e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = self.message();
        let errors = match self {
            Self::Invalid(errs) => errs,
            Self::Refused(_, errs) => errs
                .into_iter()
                .map(|e| match e.split_once(": ") {
                    Some((field, message)) if !field.contains(' ') => FieldError {
                        field: field.to_owned(),
                        message: message.to_owned(),
                    },
                    _ => FieldError {
                        field: String::new(),
                        message: e,
                    },
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut r = (status, Json(ErrorBody { error, errors })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"seesaw\""),
            );
        }
        r
    }
}

impl From<ViewError> for ApiError {
    fn from(e: ViewError) -> Self {
        Self::Engine(e)
    }
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::NoPool(_) | EditError::NoMember { .. } => Self::NotFound(e.to_string()),
            EditError::PoolExists(_) | EditError::MemberExists { .. } => {
                Self::Conflict(e.to_string())
            }
            EditError::Parse(_) => Self::Engine(ViewError::Rpc {
                call: "GetCluster",
                code: tonic::Code::Internal,
                message: e.to_string(),
            }),
        }
    }
}

// === the caller ===

/// Who is asking: the authenticated identity (if any) and request facts for the audit log.
#[derive(Debug, Clone)]
pub struct Who {
    id: Option<Identity>,
    remote: String,
    method: String,
    path: String,
    /// `?dry_run=true`: preview the write, apply nothing (an unreadable value is an error).
    dry_run: Result<bool, String>,
}

/// The `dry_run` query parameter: absent or false, true, or why it is not understood.
fn dry_run(query: Option<&str>) -> Result<bool, String> {
    let mut out = Ok(false);
    for (k, v) in query
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
    {
        if k == "dry_run" {
            out = match v {
                "true" | "1" | "" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(format!("must be true or false, not {other:?}")),
            };
        }
    }
    out
}

/// The user a write runs for, and whether it is a preview (see [`write_preview`]).
#[derive(Debug, Clone)]
pub struct Actor {
    /// The authenticated user.
    pub user: String,
    /// Preview only: nothing may be saved or applied.
    pub dry_run: bool,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl<V: EngineView> FromRequestParts<Arc<ApiState<V>>> for Who {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState<V>>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<Peer>>()
            .map(|c| c.0.clone());
        let id = state.users.authenticate(
            bearer(&parts.headers),
            peer.as_ref().and_then(|p| p.cert_cn.as_deref()),
        );
        Ok(Self {
            id,
            remote: peer.map_or_else(|| "-".to_owned(), |p| p.remote.to_string()),
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            dry_run: dry_run(parts.uri.query()),
        })
    }
}

impl Who {
    fn require(&self, role: Role) -> Result<&Identity, ApiError> {
        let id = self.id.as_ref().ok_or(ApiError::Unauthenticated)?;
        if id.role < role {
            return Err(ApiError::Forbidden(format!(
                "{} is {}; this needs {role}",
                id.user, id.role
            )));
        }
        Ok(id)
    }
}

/// Runs a write that has no preview: `?dry_run=true` is refused (never silently applied).
async fn write<V, F, Fut>(st: &ApiState<V>, who: &Who, need: Role, action: String, f: F) -> Response
where
    V: EngineView,
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    write_preview(st, who, need, action, |a: Actor| async move {
        if a.dry_run {
            return Err(field(
                "dry_run",
                "this write has no preview (only config changes have one); nothing was done",
            ));
        }
        f(a.user).await
    })
    .await
}

/// Runs a write: checks the role, runs `f` for the caller (with `?dry_run=true` a preview, which
/// `f` must honour: [`edit_cluster`] does), records the outcome.
async fn write_preview<V, F, Fut>(
    st: &ApiState<V>,
    who: &Who,
    need: Role,
    action: String,
    f: F,
) -> Response
where
    V: EngineView,
    F: FnOnce(Actor) -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    let action = match who.dry_run {
        Ok(true) => format!("dry run: {action}"),
        _ => action,
    };
    let result = match (who.require(need), &who.dry_run) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(why)) => Err(field("dry_run", why.clone())),
        (Ok(id), Ok(dry_run)) => {
            f(Actor {
                user: id.user.clone(),
                dry_run: *dry_run,
            })
            .await
        }
    };
    let (response, status, detail) = match result {
        Ok(body) => {
            let detail = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (Json(body).into_response(), StatusCode::OK, detail)
        }
        Err(e) => {
            let status = e.status();
            let detail = e.message();
            (e.into_response(), status, detail)
        }
    };
    let id = who.id.as_ref();
    st.audit.record(&Record {
        at: chrono::Utc::now().to_rfc3339(),
        user: id.map_or("-".to_owned(), |i| i.user.clone()),
        role: id.map_or("-".to_owned(), |i| i.role.to_string()),
        via: id.map_or("-", |i| i.via).to_owned(),
        remote: who.remote.clone(),
        method: who.method.clone(),
        path: who.path.clone(),
        action,
        status: status.as_u16(),
        detail,
    });
    response
}

fn to_json<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A JSON body, or 400 saying where it does not parse.
fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::Invalid(vec![FieldError {
            field: String::new(),
            message: format!("body is not JSON: {e}"),
        }])
    })
}

fn field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid(vec![FieldError {
        field: field.to_owned(),
        message: message.into(),
    }])
}

// === reads ===

/// A read route: reader role, then `f`.
fn read<V, F, Fut>(
    f: F,
) -> impl Fn(St<V>, Who) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static
where
    V: EngineView,
    F: Fn(Arc<ApiState<V>>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, ViewError>> + Send + 'static,
{
    move |State(st): St<V>, who: Who| {
        let f = f.clone();
        Box::pin(async move {
            if let Err(e) = who.require(Role::Reader) {
                return e.into_response();
            }
            match f(st).await {
                Ok(v) => Json(v).into_response(),
                Err(e) => ApiError::from(e).into_response(),
            }
        })
    }
}

impl<V: EngineView> ApiState<V> {
    fn ha_status(&self) -> impl Future<Output = Result<crate::model::HaStatus, ViewError>> + Send {
        self.view.ha_status()
    }
    fn config_status(
        &self,
    ) -> impl Future<Output = Result<crate::model::ConfigStatus, ViewError>> + Send {
        self.view.config_status()
    }
    fn cluster(&self) -> impl Future<Output = Result<crate::model::Cluster, ViewError>> + Send {
        self.view.cluster()
    }
    fn vservers(
        &self,
        name: String,
    ) -> impl Future<Output = Result<Vec<Vserver>, ViewError>> + Send {
        self.view.vservers(name)
    }
    fn overrides(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::model::Override>, ViewError>> + Send {
        self.view.overrides()
    }
    fn history(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::model::Version>, ViewError>> + Send {
        self.view.history()
    }
    fn config_source(
        &self,
        s: String,
    ) -> impl Future<Output = Result<(String, String), ViewError>> + Send {
        self.view.config_source(s)
    }
}

async fn whoami(who: Who) -> Response {
    match who.require(Role::Reader) {
        Ok(id) => Json(id.clone()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn vservers<V: EngineView>(State(st): St<V>, who: Who) -> Result<Response, ApiError> {
    who.require(Role::Reader)?;
    Ok(Json(st.view.vservers(String::new()).await?).into_response())
}

async fn vserver<V: EngineView>(
    State(st): St<V>,
    who: Who,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    who.require(Role::Reader)?;
    match st.view.vserver_named(name.clone()).await? {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::NotFound(format!("no vserver named {name:?}"))),
    }
}

async fn cluster_text<V: EngineView>(State(st): St<V>, who: Who) -> Result<Response, ApiError> {
    who.require(Role::Reader)?;
    let (text, _) = st.view.cluster_text().await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

fn outcome(o: crate::model::Outcome) -> Result<Value, ApiError> {
    if o.applied {
        Ok(json!({"message": o.message, "applied": true}))
    } else if o.errors.iter().any(|e| e.starts_with("conflict:")) {
        // Another writer changed the config since it was read: 409, nothing was written.
        Err(ApiError::Conflict(o.errors.join("; ")))
    } else {
        Err(ApiError::Refused(o.message, o.errors))
    }
}

/// Reads cluster.pb, applies `edit`, and asks the engine to take the result (a dry run: to
/// preview it).
async fn edit_cluster<V: EngineView>(
    st: &ApiState<V>,
    actor: Actor,
    what: String,
    edit: impl FnOnce(&mut seesaw_proto::config::Cluster) -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    let _edit = st.edits.lock().await;
    let (text, base) = st.view.cluster_text().await?;
    let mut cluster = cluster_edit::parse(&text)?;
    edit(&mut cluster)?;
    let text = cluster.to_text();
    if actor.dry_run {
        return preview_reply(
            st.view.preview(crate::model::PreviewOf::Text(text)).await?,
            &what,
        );
    }
    let o = st
        .view
        .update_cluster(text, what.clone(), actor.user, base)
        .await?;
    let mut v = outcome(o)?;
    v["what"] = json!(what);
    Ok(v)
}

/// A preview as the API answers it: 200 with `dry_run` and `preview`, or the refusal the real
/// write would get.
fn preview_reply(p: crate::model::Preview, what: &str) -> Result<Value, ApiError> {
    if !p.errors.is_empty() {
        return Err(ApiError::Refused(
            format!(
                "the change would be refused ({} errors); nothing was done",
                p.errors.len()
            ),
            p.errors,
        ));
    }
    let n = |c: &crate::model::Changes| c.added.len() + c.removed.len() + c.changed.len();
    Ok(json!({
        "dry_run": true,
        "message": format!(
            "preview, nothing applied: {} vserver, {} service and {} destination changes",
            n(&p.vservers), n(&p.services), n(&p.destinations)
        ),
        "what": what,
        "preview": to_json(&p),
    }))
}

async fn import_yaml<V: EngineView>(State(st): St<V>, who: Who, body: Bytes) -> Response {
    let st2 = Arc::clone(&st);
    write_preview(
        &st2,
        &who,
        Role::Admin,
        "import yaml".into(),
        |user| async move {
            let text = std::str::from_utf8(&body).map_err(|_| field("", "body is not UTF-8"))?;
            // The running cluster's seesaw_vip is the default VIP of a NodePort service.
            let (cluster_text, _) = st.view.cluster_text().await?;
            let cluster = cluster_edit::parse(&cluster_text)?;
            let vip = cluster_vip(&cluster);
            let (mut vservers, from_pools) =
                import::import_with_pools(text, vip).map_err(ApiError::Invalid)?;
            if user.dry_run && !from_pools.is_empty() {
                return Err(field(
                    "vip_pool",
                    "a preview cannot allocate an address from a vip_pool; nothing was done",
                ));
            }
            // `vip_pool` documents: their addresses, allocated in etcd (given back on failure).
            let won = import::allocate(&st.view, &mut vservers, &from_pools).await?;
            let names: Vec<String> = vservers.iter().map(|v| v.name.clone()).collect();
            let out = edit_cluster(&st, user, format!("import {}", names.join(", ")), |c| {
                for v in vservers {
                    cluster_edit::upsert_pool(c, v);
                }
                Ok(())
            })
            .await;
            if out.is_err() {
                import::free(&st.view, &won).await;
            }
            out
        },
    )
    .await
}

#[cfg(test)]
mod tests;
