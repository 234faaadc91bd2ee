//! Pool and member writes: create, edit and delete pools (a `vip_pool` allocation taken and
//! given back), add, edit, register and delete members; each an edit of cluster.pb through
//! [`edit_cluster`] (or its preview).

use super::*;

/// The address of the cluster's `seesaw_vip`.
pub fn cluster_vip(c: &seesaw_proto::config::Cluster) -> Option<IpAddr> {
    let h = &c.seesaw_vip;
    h.ipv4
        .as_deref()
        .or(h.ipv6.as_deref())
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
}

pub(super) async fn create_pool<V: EngineView>(
    State(st): St<V>,
    who: Who,
    body: Bytes,
) -> Response {
    // `"vip_pool": "<name>"` instead of `"vip"`: the address comes from the config's vip_pool,
    // allocated in etcd (config source etcd) and freed again if the pool is not created.
    let body = json_body(&body).and_then(|mut v| {
        let from = match &mut v {
            Value::Object(m) => m.remove("vip_pool"),
            _ => None,
        };
        let from = match from {
            None => None,
            Some(Value::String(p)) if !p.is_empty() => Some(p),
            Some(_) => return Err(field("vip_pool", "must be the name of a vip_pool")),
        };
        if from.is_some() && v.get("vip").is_some() {
            return Err(field("vip_pool", "give either vip or vip_pool, not both"));
        }
        Ok((v, from))
    });
    let action = match &body {
        Ok((v, _)) => format!(
            "create pool {}",
            one_line(v.get("name").and_then(Value::as_str).unwrap_or("?"))
        ),
        Err(_) => "create pool (invalid body)".into(),
    };
    let st2 = Arc::clone(&st);
    write_preview(&st2, &who, Role::Admin, action.clone(), |user| async move {
        let (mut v, from) = body?;
        let Some(vip_pool) = from else {
            let (pool, _) = spec::pool_from_value(&v).map_err(ApiError::Invalid)?;
            return edit_cluster(&st, user, action, |c| {
                Ok(cluster_edit::create_pool(c, pool)?)
            })
            .await;
        };
        if user.dry_run {
            return Err(field(
                "vip_pool",
                "a preview cannot allocate an address from a vip_pool; nothing was done",
            ));
        }
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        path_names(&name, None)?;
        // An existing pool of this name owns its allocation: refuse before asking for one, so
        // the clean-up below never frees an address a running pool uses.
        let (text, _) = st.view.cluster_text().await?;
        if cluster_edit::parse(&text)?
            .vserver
            .iter()
            .any(|x| x.name == name)
        {
            return Err(EditError::PoolExists(name).into());
        }
        // Every service port is reserved on the address (none: one from the pool's range).
        let ports: Vec<u16> = v
            .get("services")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("port")?.as_u64())
                    .filter_map(|p| u16::try_from(p).ok())
                    .collect()
            })
            .unwrap_or_default();
        let (ip, created) = st
            .view
            .allocate_vip(vip_pool.clone(), name.clone(), ports)
            .await?;
        v["vip"] = json!(ip);
        let outcome = match spec::pool_from_value(&v).map_err(ApiError::Invalid) {
            Ok((pool, _)) => {
                edit_cluster(&st, user, action, |c| {
                    Ok(cluster_edit::create_pool(c, pool)?)
                })
                .await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(mut out) => {
                out["vip"] = json!(ip);
                Ok(out)
            }
            Err(e) => {
                // Nothing was created: give back an address this call won (one the owner held
                // already may belong to a pool of that name created meanwhile).
                if created {
                    let _ = st.view.free_vip(vip_pool, name).await;
                }
                Err(e)
            }
        }
    })
    .await
}

pub(super) async fn edit_pool<V: EngineView>(
    State(st): St<V>,
    who: Who,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let parsed =
        json_body(&body).and_then(|v| spec::pool_from_value(&v).map_err(ApiError::Invalid));
    let action = format!("edit pool {}", one_line(&name));
    edit_named(
        st,
        &who,
        action,
        (&name, None),
        parsed,
        |c, (v, members)| cluster_edit::edit_pool(c, &name, v, members.as_deref()),
    )
    .await
}

pub(super) async fn delete_pool<V: EngineView>(
    State(st): St<V>,
    who: Who,
    Path(name): Path<String>,
) -> Response {
    let action = format!("delete pool {}", one_line(&name));
    let st2 = Arc::clone(&st);
    write_preview(&st2, &who, Role::Admin, action.clone(), |user| async move {
        path_names(&name, None)?;
        let (text, _) = st.view.cluster_text().await?;
        let vip_pools: Vec<String> = cluster_edit::parse(&text)?
            .vip_pool
            .into_iter()
            .map(|p| p.name)
            .collect();
        let dry_run = user.dry_run;
        let mut out = edit_cluster(&st, user, action, |c| {
            Ok(cluster_edit::delete_pool(c, &name)?)
        })
        .await?;
        // An address the pool drew from a vip_pool goes back to it (not in a preview).
        for p in vip_pools.into_iter().filter(|_| !dry_run) {
            if let Ok(true) = st.view.free_vip(p.clone(), name.clone()).await {
                out["freed_vip_from"] = json!(p);
            }
        }
        Ok(out)
    })
    .await
}

/// A name from a URL path as the audit log and history record it: as is, or escaped (`"a\nb"`)
/// when it holds a control character, so one event stays one line.
pub(super) fn one_line(s: &str) -> String {
    if seesaw_common::text::first_control(s).is_some() {
        format!("{s:?}")
    } else {
        s.to_owned()
    }
}

/// The pool name (and member host) of a write's URL path, checked before anything else: a name
/// outside the pool-name character set never reaches the config, the history or a log line.
pub(super) fn path_names(pool: &str, host: Option<&str>) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    if let Err(why) = spec::check_pool_name(pool) {
        errs.push(FieldError {
            field: "name".into(),
            message: why,
        });
    }
    if let Some(Err(why)) = host.map(spec::check_member_host) {
        errs.push(FieldError {
            field: "host".into(),
            message: why,
        });
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(errs))
    }
}

pub(super) async fn add_member<V: EngineView>(
    State(st): St<V>,
    who: Who,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let parsed =
        json_body(&body).and_then(|v| spec::member_from_value(&v).map_err(ApiError::Invalid));
    let action = match &parsed {
        Ok(m) => format!("add member {} ({}) to {}", m.host, m.ip, one_line(&name)),
        Err(_) => format!("add member to {} (invalid body)", one_line(&name)),
    };
    edit_named(st, &who, action, (&name, None), parsed, |c, m| {
        cluster_edit::put_member(c, &name, &m, false)
    })
    .await
}

pub(super) async fn edit_member<V: EngineView>(
    State(st): St<V>,
    who: Who,
    Path((name, host)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut ttl_s = None;
    let parsed = json_body(&body).and_then(|mut v| {
        // A TTL registers the member with a lease instead (config source etcd): renewed by the
        // same call, removed and drained when it stops.
        if let Value::Object(m) = &mut v
            && let Some(t) = m.remove("ttl_s")
        {
            ttl_s = Some(
                t.as_u64()
                    .filter(|t| (1..=3600).contains(t))
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(|| field("ttl_s", "must be a number of seconds in 1..3600"))?,
            );
        }
        // The host comes from the path; a body may repeat it but not contradict it.
        if let Value::Object(m) = &mut v {
            match m.get("host").and_then(Value::as_str) {
                Some(h) if h.trim_end_matches('.') != host.trim_end_matches('.') => {
                    return Err(field("host", format!("does not match the path's {host:?}")));
                }
                _ => {
                    m.insert("host".into(), json!(host));
                }
            }
        }
        spec::member_from_value(&v).map_err(ApiError::Invalid)
    });
    let action = match ttl_s {
        Some(t) => format!(
            "register member {} of {} for {t} s",
            one_line(&host),
            one_line(&name)
        ),
        None => format!("edit member {} of {}", one_line(&host), one_line(&name)),
    };
    let st2 = Arc::clone(&st);
    write_preview(&st2, &who, Role::Admin, action.clone(), |user| async move {
        path_names(&name, Some(&host))?;
        let m = parsed?;
        if let Some(ttl_s) = ttl_s {
            if user.dry_run {
                return Err(field(
                    "ttl_s",
                    "a lease registration has no preview; nothing was done",
                ));
            }
            let (lease_id, renewed) = st.view.register_member(name, m, ttl_s).await?;
            return Ok(json!({"lease_id": lease_id, "renewed": renewed, "ttl_s": ttl_s}));
        }
        edit_cluster(&st, user, action, |c| {
            Ok(cluster_edit::put_member(c, &name, &m, true)?)
        })
        .await
    })
    .await
}

pub(super) async fn delete_member<V: EngineView>(
    State(st): St<V>,
    who: Who,
    Path((name, host)): Path<(String, String)>,
) -> Response {
    let action = format!("delete member {} from {}", one_line(&host), one_line(&name));
    edit_named(st, &who, action, (&name, Some(&host)), Ok(()), |c, ()| {
        cluster_edit::delete_member(c, &name, &host)
    })
    .await
}

/// An admin's edit of the pool (and member) its URL path names, given the request's parsed
/// body: the names are checked first, then the body, then `edit` changes cluster.pb through
/// [`edit_cluster`] (or its preview).
async fn edit_named<V: EngineView, T>(
    st: Arc<ApiState<V>>,
    who: &Who,
    action: String,
    (pool, host): (&str, Option<&str>),
    body: Result<T, ApiError>,
    edit: impl FnOnce(&mut seesaw_proto::config::Cluster, T) -> Result<(), EditError>,
) -> Response {
    let st2 = Arc::clone(&st);
    write_preview(&st2, who, Role::Admin, action.clone(), |user| async move {
        path_names(pool, host)?;
        let body = body?;
        edit_cluster(&st, user, action, |c| Ok(edit(c, body)?)).await
    })
    .await
}
