//! YAML import: multi-document YAML with Parasaus-style Kubernetes `Service` + `Endpoints` pairs
//! (matched by name and namespace) and native `kind: Pool` documents (the [`crate::spec`] form),
//! converted to cluster.pb vservers. Every problem is reported with its document and field path;
//! nothing is converted unless the whole file is valid. The result then goes through the engine's
//! own validation in `UpdateCluster`, like every other edit.
//!
//! Parasaus mapping (per `Service`/`Endpoints` pair):
//! - vserver `<name>@<namespace>` (namespace `default` when absent), VIP fqdn `<name>.<namespace>.`;
//! - VIP address: `spec.loadBalancerIP`, else `spec.externalIPs[0]`, else the cluster's
//!   `seesaw_vip` (a `NodePort` service is reachable on the cluster address);
//! - one service per `spec.ports[]`: the VIP port is `nodePort` for `type: NodePort` (else `port`),
//!   protocol as given (TCP default), scheduler `rr`, mode NAT; the backend port is the Endpoints
//!   port of the same name (or the only one), which every subset must agree on;
//! - members: every `subsets[].addresses[].ip` (fqdn `hostname` when given, else
//!   `ip-<a-b-c-d>.<name>.<namespace>.`), weight 1;
//! - annotation `healthCheckType` (`http` or `tcp`; at the document's top level as in the Parasaus
//!   examples, or under `metadata.annotations`) adds a check on the backend port every 2 s
//!   (timeout 1 s); `healthCheckPath` sets the HTTP path (default `/`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use seesaw_proto::config as pb;
use serde_json::{Value, json};

use crate::spec::{self, FieldError};

/// At most this many YAML documents in one import.
const MAX_DOCUMENTS: usize = 1000;

/// A `kind: Pool` document that names a `vip_pool` instead of a `vip`: its vserver (at `index`
/// of the import) gets an address allocated from `pool` for every one of its `ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromPool {
    /// The vserver's index in the imported list.
    pub index: usize,
    /// The `vip_pool` to draw from.
    pub pool: String,
    /// Its service ports.
    pub ports: Vec<u16>,
}

/// Converts a YAML file to vservers; every `kind: Pool` document must give its `vip`.
pub fn import(
    yaml: &str,
    cluster_vip: Option<IpAddr>,
) -> Result<Vec<pb::Vserver>, Vec<FieldError>> {
    let (vservers, from_pools) = import_with_pools(yaml, cluster_vip)?;
    match from_pools.first() {
        None => Ok(vservers),
        Some(f) => Err(vec![err(
            &format!("vserver {}", vservers[f.index].name),
            "vip_pool needs an address from the engine (config source etcd): import through \
             `config import` or POST /v1/import",
        )]),
    }
}

/// Allocates the address of every [`FromPool`] vserver (each an etcd transaction, see
/// `AllocateVip`) and sets it. On an error every address this call won is given back.
/// Returns what it won, as (pool, vserver), to give back if the import then fails.
pub async fn allocate<V: crate::engine_view::EngineView>(
    view: &V,
    vservers: &mut [pb::Vserver],
    from_pools: &[FromPool],
) -> Result<Vec<(String, String)>, crate::engine_view::ViewError> {
    let mut won = Vec::new();
    for f in from_pools {
        let name = vservers[f.index].name.clone();
        match view
            .allocate_vip(f.pool.clone(), name.clone(), f.ports.clone())
            .await
        {
            Ok((ip, created)) => {
                if created {
                    won.push((f.pool.clone(), name));
                }
                let Ok(addr) = ip.split('/').next().unwrap_or("").parse::<IpAddr>() else {
                    free(view, &won).await;
                    return Err(crate::engine_view::ViewError::Rpc {
                        call: "AllocateVip",
                        code: tonic::Code::Internal,
                        message: format!("vip_pool {} gave {ip:?}, not an address", f.pool),
                    });
                };
                let fqdn = vservers[f.index].entry_address.fqdn.clone();
                vservers[f.index].entry_address = spec::host(&fqdn, addr);
            }
            Err(e) => {
                free(view, &won).await;
                return Err(e);
            }
        }
    }
    Ok(won)
}

/// Gives back addresses [`allocate`] won.
pub async fn free<V: crate::engine_view::EngineView>(view: &V, won: &[(String, String)]) {
    for (pool, name) in won {
        let _ = view.free_vip(pool.clone(), name.clone()).await;
    }
}

/// Converts a YAML file to vservers, and lists the ones whose address comes from a
/// `vip_pool` (set to `0.0.0.0` until [`allocate`]). `cluster_vip` is the cluster's
/// `seesaw_vip` address, the default VIP of a Parasaus service without one.
pub fn import_with_pools(
    yaml: &str,
    cluster_vip: Option<IpAddr>,
) -> Result<(Vec<pb::Vserver>, Vec<FromPool>), Vec<FieldError>> {
    let mut errs: Vec<FieldError> = Vec::new();
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        if i >= MAX_DOCUMENTS {
            errs.push(err("", format!("more than {MAX_DOCUMENTS} documents")));
            break;
        }
        match <serde_yaml::Value as serde::Deserialize>::deserialize(de) {
            Ok(serde_yaml::Value::Null) => {}
            Ok(v) => match serde_json::to_value(&v) {
                Ok(j) => docs.push((i, j)),
                Err(e) => errs.push(err(&format!("documents[{i}]"), e.to_string())),
            },
            Err(e) => {
                errs.push(err(&format!("documents[{i}]"), format!("not YAML: {e}")));
                // The deserializer cannot continue past a syntax error.
                break;
            }
        }
    }
    if docs.is_empty() && errs.is_empty() {
        errs.push(err("", "no documents"));
    }
    let mut out = Vec::new();
    let mut from_pools = Vec::new();
    let mut services = BTreeMap::new();
    let mut endpoints = BTreeMap::new();
    for (i, doc) in &docs {
        let path = format!("documents[{i}]");
        match doc.get("kind").and_then(Value::as_str) {
            Some("Pool") | Some("Vserver") => {
                let mut body = doc.clone();
                let mut pool = None;
                if let Value::Object(m) = &mut body {
                    m.remove("kind");
                    match m.remove("vip_pool") {
                        None => {}
                        Some(Value::String(p)) if !p.is_empty() && !m.contains_key("vip") => {
                            // Validated with a stand-in address; the real one comes later.
                            m.insert("vip".into(), json!("0.0.0.0"));
                            pool = Some(p);
                        }
                        Some(Value::String(_)) if m.contains_key("vip") => {
                            errs.push(err(
                                &format!("{path}.vip_pool"),
                                "give either vip or vip_pool, not both",
                            ));
                            continue;
                        }
                        Some(_) => {
                            errs.push(err(
                                &format!("{path}.vip_pool"),
                                "must be the name of a vip_pool",
                            ));
                            continue;
                        }
                    }
                }
                match spec::pool_from_value(&body) {
                    Ok((v, _)) => {
                        if let Some(pool) = pool {
                            let ports = v
                                .vserver_entry
                                .iter()
                                .filter_map(|e| u16::try_from(e.port).ok())
                                .collect();
                            from_pools.push(FromPool {
                                index: out.len(),
                                pool,
                                ports,
                            });
                        }
                        out.push(v);
                    }
                    Err(es) => errs.extend(es.into_iter().map(|e| prefix(&path, e))),
                }
            }
            Some(kind @ ("Service" | "Endpoints")) => {
                let name = doc.pointer("/metadata/name").and_then(Value::as_str);
                let namespace = doc
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                let Some(name) = name.filter(|n| !n.is_empty()) else {
                    errs.push(err(&format!("{path}.metadata.name"), "is required"));
                    continue;
                };
                let key = (namespace.to_owned(), name.to_owned());
                let map = if kind == "Service" {
                    &mut services
                } else {
                    &mut endpoints
                };
                if map.insert(key, (path.clone(), doc)).is_some() {
                    errs.push(err(
                        &path,
                        format!("a second {kind} named {name} in {namespace}"),
                    ));
                }
            }
            Some(other) => errs.push(err(
                &format!("{path}.kind"),
                format!("{other:?} is not one of Service, Endpoints, Pool"),
            )),
            None => errs.push(err(&format!("{path}.kind"), "is required")),
        }
    }
    for (key, (path, _)) in &endpoints {
        if !services.contains_key(key) {
            errs.push(err(
                path,
                format!("Endpoints {} has no Service of the same name", key.1),
            ));
        }
    }
    for ((namespace, name), (path, svc)) in &services {
        let Some((ep_path, ep)) = endpoints.get(&(namespace.clone(), name.clone())) else {
            errs.push(err(
                path,
                format!("Service {name} has no Endpoints of the same name"),
            ));
            continue;
        };
        match parasaus(namespace, name, (path, svc), (ep_path, ep), cluster_vip) {
            Ok(v) => out.push(v),
            Err(es) => errs.extend(es),
        }
    }
    if errs.is_empty() {
        let mut seen = std::collections::BTreeSet::new();
        for v in &out {
            if !seen.insert(v.name.clone()) {
                errs.push(err("", format!("vserver {} is defined twice", v.name)));
            }
        }
    }
    if errs.is_empty() {
        Ok((out, from_pools))
    } else {
        Err(errs)
    }
}

fn err(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The elements of the array `key` of `v` with their indexes (none when it is missing or not an
/// array).
fn numbered<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = (usize, &'v Value)> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// The array at JSON `pointer` in `v` when it has an element; else the error "needs at least
/// one `what`" at `<base>.<field>` goes to `errs`.
fn non_empty<'v>(
    v: &'v Value,
    pointer: &str,
    (base, field): (&str, &str),
    what: &str,
    errs: &mut Vec<FieldError>,
) -> Option<&'v Vec<Value>> {
    let found = v
        .pointer(pointer)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    if found.is_none() {
        errs.push(err(
            &format!("{base}.{field}"),
            format!("needs at least one {what}"),
        ));
    }
    found
}

fn prefix(path: &str, mut e: FieldError) -> FieldError {
    e.field = if e.field.is_empty() {
        path.to_owned()
    } else {
        format!("{path}.{}", e.field)
    };
    e
}

fn annotation<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc.get("annotations")
        .and_then(|a| a.get(key))
        .or_else(|| {
            doc.pointer("/metadata/annotations")
                .and_then(|a| a.get(key))
        })
        .and_then(Value::as_str)
}

fn port_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// One Service/Endpoints pair → the native pool form → a vserver (through [`spec`]).
fn parasaus(
    namespace: &str,
    name: &str,
    (svc_path, svc): (&str, &Value),
    (ep_path, ep): (&str, &Value),
    cluster_vip: Option<IpAddr>,
) -> Result<pb::Vserver, Vec<FieldError>> {
    let mut errs = Vec::new();
    let vip = svc
        .pointer("/spec/loadBalancerIP")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            svc.pointer("/spec/externalIPs/0")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| cluster_vip.map(|ip| ip.to_string()));
    if vip.is_none() {
        errs.push(err(
            &format!("{svc_path}.spec.loadBalancerIP"),
            "is required (the cluster has no seesaw_vip to default to)",
        ));
    }
    let node_port = svc.pointer("/spec/type").and_then(Value::as_str) == Some("NodePort");
    let Some(ports) = non_empty(
        svc,
        "/spec/ports",
        (svc_path, "spec.ports"),
        "port",
        &mut errs,
    ) else {
        return Err(errs);
    };
    // Endpoints: every address, and the ports by name.
    let mut members = Vec::new();
    let mut by_name: BTreeMap<String, (i64, String)> = BTreeMap::new();
    let Some(subsets) = non_empty(ep, "/subsets", (ep_path, "subsets"), "subset", &mut errs) else {
        return Err(errs);
    };
    for (si, subset) in subsets.iter().enumerate() {
        let sp = format!("{ep_path}.subsets[{si}]");
        for (ai, a) in numbered(subset, "addresses") {
            let Some(ip) = a.get("ip").and_then(Value::as_str) else {
                errs.push(err(&format!("{sp}.addresses[{ai}].ip"), "is required"));
                continue;
            };
            let host = a
                .get("hostname")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    format!("ip-{}.{name}.{namespace}.", ip.replace(['.', ':'], "-"))
                });
            members.push(json!({"host": host, "ip": ip, "weight": 1}));
        }
        for (pi, p) in numbered(subset, "ports") {
            let pname = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let path = format!("{sp}.ports[{pi}].port");
            let Some(port) = port_of(p.get("port")) else {
                errs.push(err(&path, "is required"));
                continue;
            };
            match by_name.get(&pname) {
                Some((other, at)) if *other != port => errs.push(err(
                    &path,
                    format!(
                        "{port} differs from {other} at {at}: every member of a service must \
                         listen on the same port"
                    ),
                )),
                Some(_) => {}
                None => {
                    by_name.insert(pname, (port, path));
                }
            }
        }
    }
    if members.is_empty() {
        errs.push(err(&format!("{ep_path}.subsets"), "no addresses"));
    }
    let check_type =
        annotation(ep, "healthCheckType").or_else(|| annotation(svc, "healthCheckType"));
    let check_path = annotation(ep, "healthCheckPath").unwrap_or("/");
    let mut services = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let path = format!("{svc_path}.spec.ports[{i}]");
        let front = if node_port {
            port_of(p.get("nodePort")).or_else(|| port_of(p.get("port")))
        } else {
            port_of(p.get("port"))
        };
        let Some(front) = front else {
            errs.push(err(&format!("{path}.port"), "is required"));
            continue;
        };
        let pname = p.get("name").and_then(Value::as_str).unwrap_or("");
        let back = by_name
            .get(pname)
            .or_else(|| {
                (by_name.len() == 1)
                    .then(|| by_name.values().next())
                    .flatten()
            })
            .map(|(port, _)| *port);
        let Some(back) = back else {
            errs.push(err(
                &format!("{path}.name"),
                format!("no Endpoints port named {pname:?}"),
            ));
            continue;
        };
        let protocol = p
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_ascii_lowercase();
        let mut service = json!({
            "port": front, "protocol": protocol, "scheduler": "rr", "mode": "nat",
            "backend_port": back,
        });
        match check_type.map(str::to_ascii_lowercase).as_deref() {
            None => {}
            Some("http") => {
                service["healthchecks"] = json!([{"type": "http", "port": back,
                    "send": check_path, "code": 200, "interval": 2, "timeout": 1}]);
            }
            Some("tcp") => {
                service["healthchecks"] =
                    json!([{"type": "tcp", "port": back, "interval": 2, "timeout": 1}]);
            }
            Some(other) => errs.push(err(
                &format!("{ep_path}.annotations.healthCheckType"),
                format!("{other:?} is not one of http, tcp"),
            )),
        }
        services.push(service);
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let pool = json!({
        "name": format!("{name}@{namespace}"),
        "hostname": format!("{name}.{namespace}."),
        "vip": vip,
        "rp": "yaml-import",
        "services": services,
        "members": members,
    });
    spec::pool_from_value(&pool)
        .map(|(v, _)| v)
        .map_err(|es| es.into_iter().map(|e| prefix(svc_path, e)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of seed 001, verbatim.
    const SEED: &str = r#"
kind: Service
apiVersion: v1
metadata:
  name: snake-demo-svc4
  namespace: parasaus
spec:
  ports:
  - nodePort: 40796
    port: 40796
    protocol: TCP
    name: dcmp-svc4
    type: NodePort
---
kind: Endpoints
apiVersion: v1
metadata:
  name: snake-demo-svc4
  namespace: parasaus
annotations:
  calledSource: "kubectl-client-side-apply"
  healthCheckType: "http"
subsets:
- addresses:
  - ip: 10.100.1.53
  ports:
  - port: 8090
    name: dcmp-svc4
- addresses:
  - ip: 10.100.1.77
  ports:
  - port: 30253
    name: dcmp-svc4
"#;

    #[test]
    fn the_seed_reports_its_differing_member_ports() {
        let errs = import(SEED, Some("10.0.0.1".parse().expect("literal"))).expect_err("ports");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "documents[1].subsets[1].ports[0].port");
        assert!(
            errs[0].message.contains("30253 differs from 8090"),
            "{errs:?}"
        );
    }

    #[test]
    fn the_seed_with_one_member_port_converts() {
        let yaml = SEED.replace("30253", "8090");
        let vs = import(&yaml, Some("10.0.0.1".parse().expect("literal"))).expect("valid");
        let v = &vs[0];
        assert_eq!(v.name, "snake-demo-svc4@parasaus");
        assert_eq!(v.entry_address.ipv4.as_deref(), Some("10.0.0.1/32"));
        let e = &v.vserver_entry[0];
        assert_eq!((e.port, e.backend_port), (40796, Some(8090)));
        assert_eq!(e.healthcheck[0].send.as_deref(), Some("/"));
        let hosts: Vec<&str> = v.backend.iter().map(|b| b.host.fqdn.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "ip-10-100-1-53.snake-demo-svc4.parasaus.",
                "ip-10-100-1-77.snake-demo-svc4.parasaus."
            ]
        );
    }

    #[test]
    fn native_pools_and_hostile_documents() {
        let vs = import(
            "kind: Pool\nname: a@b\nvip: 127.0.0.1\nservices: [{port: 80}]\n",
            None,
        )
        .expect("valid");
        assert_eq!(vs[0].name, "a@b");
        let errs = import("kind: Pool\nname: a@b\nservices: [{port: 0}]\n", None).expect_err("bad");
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["documents[0].vip", "documents[0].services[0].port"]
        );
        for bad in [
            "",
            "[1, 2",
            "kind: Nope",
            "- 1\n- 2",
            "kind: Service\nmetadata: {name: x}\n",
        ] {
            assert!(import(bad, None).is_err(), "{bad:?}");
        }
        // No VIP anywhere.
        let errs = import(&SEED.replace("30253", "8090"), None).expect_err("no vip");
        assert_eq!(errs[0].field, "documents[0].spec.loadBalancerIP");
    }
}

/// Why a one-shot import (`seesaw_ecu --import`, the shell's `config import`) did not apply.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is invalid: every problem.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
    /// The engine could not be asked.
    #[error(transparent)]
    Engine(#[from] crate::engine_view::ViewError),
    /// The running cluster.pb does not parse.
    #[error(transparent)]
    Edit(#[from] crate::cluster_edit::EditError),
}

/// Imports the YAML file at `path` into the running cluster.pb through `view`: the engine
/// validates, records (as its caller, describing the import) and applies it.
pub async fn import_file<V: crate::engine_view::EngineView>(
    view: &V,
    path: &str,
) -> Result<crate::model::Outcome, ImportError> {
    let yaml = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (text, base) = view.cluster_text().await?;
    let mut cluster = crate::cluster_edit::parse(&text)?;
    let (mut vservers, from_pools) = import_with_pools(&yaml, crate::api::cluster_vip(&cluster))
        .map_err(ImportError::Invalid)?;
    let won = allocate(view, &mut vservers, &from_pools).await?;
    let names: Vec<String> = vservers.iter().map(|v| v.name.clone()).collect();
    for v in vservers {
        crate::cluster_edit::upsert_pool(&mut cluster, v);
    }
    let what = format!("import {} from {path}", names.join(", "));
    let outcome = view
        .update_cluster(cluster.to_text(), what, String::new(), base)
        .await;
    if !outcome.as_ref().is_ok_and(|o| o.applied) {
        free(view, &won).await;
    }
    Ok(outcome?)
}
