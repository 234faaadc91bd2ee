//! The API's JSON views of vservers (backends, destinations, health checks) and its engine
//! write handlers: overrides, reload, failover, config source and rollback.

use super::*;
use crate::model::PreviewOf;

/// Every backend host with its destinations' health (`show backends`).
pub fn backends(vs: &[Vserver]) -> Value {
    let mut by: BTreeMap<String, (String, usize, usize, usize, String)> = BTreeMap::new();
    for v in vs {
        for s in &v.services {
            for d in &s.destinations {
                let e = by
                    .entry(d.backend.clone())
                    .or_insert_with(|| (d.address.clone(), 0, 0, 0, String::new()));
                e.1 += 1;
                e.2 += usize::from(d.healthy);
                e.3 += usize::from(d.active);
                if !d.override_state.is_empty() {
                    e.4.clone_from(&d.override_state);
                }
            }
        }
    }
    Value::Array(
        by.into_iter()
            .map(|(host, (address, n, healthy, active, ov))| {
                json!({"hostname": host, "address": address, "destinations": n,
                       "healthy": healthy, "active": active, "override_state": ov})
            })
            .collect(),
    )
}

/// Every destination with its vserver and service (`show destinations`).
pub fn destinations(vs: &[Vserver]) -> Value {
    let mut out = Vec::new();
    for v in vs {
        for s in &v.services {
            for d in &s.destinations {
                let mut d = to_json(d);
                if let Value::Object(m) = &mut d {
                    m.insert("vserver".into(), json!(v.name));
                    m.insert("service".into(), json!(s.key()));
                    m.remove("checks");
                }
                out.push(d);
            }
        }
    }
    Value::Array(out)
}

/// Every check with its destination (`show healthchecks`).
pub fn healthchecks(vs: &[Vserver]) -> Value {
    let mut out = Vec::new();
    for v in vs {
        for s in &v.services {
            for d in &s.destinations {
                for c in &d.checks {
                    out.push(json!({"destination": d.name, "id": c.id, "name": c.name,
                                    "state": c.state, "message": c.message}));
                }
            }
        }
    }
    Value::Array(out)
}

// === writes ===

pub(super) async fn set_override<V: EngineView>(
    State(st): St<V>,
    who: Who,
    body: Bytes,
) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        kind: OverrideKind,
        target: String,
        state: OverrideState,
    }
    let parsed = json_body(&body).and_then(|v| {
        let mut errs = Vec::new();
        for (k, ok) in [
            (
                "kind",
                v.get("kind")
                    .is_some_and(|k| serde_json::from_value::<OverrideKind>(k.clone()).is_ok()),
            ),
            (
                "target",
                v.get("target")
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.trim().is_empty()),
            ),
            (
                "state",
                v.get("state")
                    .is_some_and(|k| serde_json::from_value::<OverrideState>(k.clone()).is_ok()),
            ),
        ] {
            if !ok {
                errs.push(FieldError {
                    field: k.into(),
                    message: match k {
                        "kind" => "must be one of vserver, backend, destination",
                        "target" => "must be a non-empty string",
                        _ => "must be one of default, enabled, disabled",
                    }
                    .into(),
                });
            }
        }
        if !errs.is_empty() {
            return Err(ApiError::Invalid(errs));
        }
        serde_json::from_value::<Body>(v).map_err(|e| field("", e.to_string()))
    });
    let action = match &parsed {
        Ok(b) => format!("override {:?} {} {:?}", b.kind, b.target, b.state).to_lowercase(),
        Err(_) => "override (invalid body)".into(),
    };
    let st2 = Arc::clone(&st);
    write(&st2, &who, Role::Operator, action, |user| async move {
        let b = parsed?;
        let message = st
            .view
            .set_override(b.kind, b.target, b.state, user)
            .await?;
        Ok(json!({"message": message}))
    })
    .await
}

pub(super) async fn reload<V: EngineView>(State(st): St<V>, who: Who) -> Response {
    let st2 = Arc::clone(&st);
    write_preview(
        &st2,
        &who,
        Role::Operator,
        "config reload".into(),
        |a| async move {
            if a.dry_run {
                return preview_reply(st.view.preview(PreviewOf::Reload).await?, "config reload");
            }
            outcome(st.view.config_reload().await?)
        },
    )
    .await
}

pub(super) async fn failover<V: EngineView>(State(st): St<V>, who: Who) -> Response {
    let st2 = Arc::clone(&st);
    write(&st2, &who, Role::Operator, "failover".into(), |_| async {
        Ok(json!({"message": st.view.failover().await?}))
    })
    .await
}

pub(super) async fn config_source<V: EngineView>(
    State(st): St<V>,
    who: Who,
    body: Bytes,
) -> Response {
    let source = json_body(&body).and_then(|v| match v.get("source").and_then(Value::as_str) {
        Some(s @ ("disk" | "server" | "peer" | "etcd" | "none")) => Ok(s.to_owned()),
        _ => Err(field(
            "source",
            "must be one of disk, server, peer, etcd, none",
        )),
    });
    let action = format!(
        "config source {}",
        source.as_deref().unwrap_or("(invalid body)")
    );
    let st2 = Arc::clone(&st);
    write(&st2, &who, Role::Admin, action, |_| async {
        let (now, before) = st.view.config_source(source?).await?;
        Ok(json!({"message": format!("config source is {now} (was {before})"), "source": now}))
    })
    .await
}

pub(super) async fn rollback<V: EngineView>(State(st): St<V>, who: Who, body: Bytes) -> Response {
    let id = json_body(&body).and_then(|v| {
        v.get("id")
            .and_then(Value::as_u64)
            .filter(|id| *id > 0)
            .ok_or_else(|| field("id", "must be a positive integer (a version id)"))
    });
    let action = match &id {
        Ok(id) => format!("config rollback {id}"),
        Err(_) => "config rollback (invalid body)".into(),
    };
    let st2 = Arc::clone(&st);
    write_preview(&st2, &who, Role::Admin, action, |a| async move {
        let id = id?;
        if a.dry_run {
            let what = format!("rollback to version {id}");
            return preview_reply(st.view.preview(PreviewOf::Rollback(id)).await?, &what);
        }
        let _edit = st.edits.lock().await;
        outcome(st.view.rollback(id, a.user).await?)
    })
    .await
}
