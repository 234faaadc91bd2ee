//! Router tests of the HTTPS API with the fake engine, through `tower::ServiceExt::oneshot`:
//! authentication and roles (nothing changes on 401/403), body validation (400 with field paths,
//! nothing changes), pool and member edits as cluster.pb versions, import, rollback, and the audit
//! log.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{ApiState, router};
use crate::audit::AuditLog;
use crate::auth::{Role, User, Users, token_digest};
use crate::cluster_edit::TEST_CLUSTER as CLUSTER;
use crate::engine_view::fake::FakeEngine;

const ADMIN: &str = "admin-token-0123456789";
const OPERATOR: &str = "operator-token-0123456789";
const READER: &str = "reader-token-0123456789";

/// An operator's override: backend be1 disabled.
const DISABLE_BE1: &str = r#"{"kind": "backend", "target": "be1.demo.", "state": "disabled"}"#;
/// A new pool api@demo on 127.0.0.1 (web@demo's VIP too), port 81.
const API_POOL: &str = r#"{"name": "api@demo", "vip": "127.0.0.1", "services": [{"port": 81}]}"#;
/// A member be2 for web@demo.
const BE2: &str = r#"{"host": "be2.demo", "ip": "127.0.0.3"}"#;

struct Harness {
    fake: FakeEngine,
    state: Arc<ApiState<FakeEngine>>,
    dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let fake = FakeEngine::new();
    fake.set_cluster_text(CLUSTER);
    let users = Users::new(
        [
            ("alice", Role::Admin, ADMIN),
            ("olga", Role::Operator, OPERATOR),
            ("rita", Role::Reader, READER),
        ]
        .into_iter()
        .map(|(name, role, token)| User {
            name: name.into(),
            role,
            token_sha256: Some(token_digest(token)),
            cert_cn: None,
        })
        .collect(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let audit = AuditLog::open(&dir.path().join("audit.log")).expect("audit log");
    let state = Arc::new(ApiState::new(fake.clone(), users, audit));
    Harness { fake, state, dir }
}

/// Sends `method uri` with `body` to `app`, with `token` as the bearer if any: the status and
/// the body.
pub(super) async fn send(
    app: axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Body,
) -> (StatusCode, axum::body::Bytes) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, bytes)
}

impl Harness {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let (status, bytes) = send(
            router(Arc::clone(&self.state)),
            method,
            uri,
            token,
            Body::from(body.to_owned()),
        )
        .await;
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, v)
    }

    /// Switches the config source to etcd as the admin (leases and address pools need it).
    async fn switch_to_etcd(&self) {
        let (s, body) = self
            .put("/v1/config/source", Some(ADMIN), r#"{"source": "etcd"}"#)
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    async fn get(&self, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call("GET", uri, token, "").await
    }

    async fn delete(&self, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call("DELETE", uri, token, "").await
    }

    async fn post(&self, uri: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
        self.call("POST", uri, token, body).await
    }

    async fn put(&self, uri: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
        self.call("PUT", uri, token, body).await
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }
}

/// The `field` of each entry of a 400's `errors`.
fn error_fields(body: &Value) -> Vec<&str> {
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect()
}

/// [`CLUSTER`] with the address pool `pub`, 10.99.0.0/16.
fn with_vip_pool_pub() -> String {
    format!("{CLUSTER}vip_pool: < name: \"pub\" cidr: \"10.99.0.0/16\" >\n")
}

#[tokio::test]
async fn unauthenticated_and_reader_writes_are_refused_and_change_nothing() {
    let h = harness();
    let member = r#"{"host": "be2.demo.", "ip": "127.0.0.3"}"#;
    let (s, body) = h.post("/v1/pools/web@demo/members", None, member).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, _) = h
        .post("/v1/pools/web@demo/members", Some("wrong-token"), member)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = h
        .post("/v1/pools/web@demo/members", Some(READER), member)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "rita is reader; this needs admin");
    let (s, _) = h
        .post("/v1/pools/web@demo/members", Some(OPERATOR), member)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = h.post("/v1/overrides", Some(READER), DISABLE_BE1).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = h.post("/v1/config/reload", None, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Nothing changed.
    assert_eq!(h.fake.cluster_text_now(), CLUSTER);
    assert!(h.fake.overrides_now().is_empty());
    assert_eq!(h.fake.counts(), (0, 0));
    let (s, hist) = h.get("/v1/config/history", Some(READER)).await;
    assert_eq!((s, hist), (StatusCode::OK, json!([])));
    // Reads need a user too.
    let (s, _) = h.get("/v1/vservers", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Every refused write is in the audit log.
    let audit = h.audit();
    assert_eq!(audit.len(), 6);
    assert_eq!(
        (audit[2]["user"].as_str(), audit[2]["status"].as_u64()),
        (Some("rita"), Some(403))
    );
    assert_eq!(audit[0]["user"], "-");
}

#[tokio::test]
async fn operator_overrides_and_reload_are_attributed() {
    let h = harness();
    let (s, body) = h.post("/v1/overrides", Some(OPERATOR), DISABLE_BE1).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "backend be1.demo.: disabled");
    assert_eq!(h.fake.overrides_now()[0].state, "disabled");
    // The engine is told who the API user is (the fake records it as the engine would).
    assert_eq!(h.fake.overrides_now()[0].set_by, "olga (via ecu)");
    let (s, _) = h.post("/v1/config/reload", Some(OPERATOR), "").await;
    assert_eq!(s, StatusCode::OK);
    let audit = h.audit();
    assert_eq!(audit[0]["action"], "override backend be1.demo. disabled");
    assert_eq!(
        (audit[0]["user"].as_str(), audit[0]["role"].as_str()),
        (Some("olga"), Some("operator"))
    );
    assert_eq!(audit[1]["action"], "config reload");
}

#[tokio::test]
async fn malformed_bodies_get_400_with_every_field_and_change_nothing() {
    let h = harness();
    let (s, body) = h
        .post(
            "/v1/pools",
            Some(ADMIN),
            r#"{"name": "x", "vip": "300.1.1.1", "services": [{"port": 0}], "extra": 1}"#,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let fields = error_fields(&body);
    assert_eq!(fields, ["extra", "vip", "services[0].port"]);
    let (s, body) = h.post("/v1/pools", Some(ADMIN), "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("body is not JSON"))
    );
    let (s, body) = h
        .post(
            "/v1/overrides",
            Some(ADMIN),
            r#"{"kind": "pool", "state": "off"}"#,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(3));
    let (s, _) = h
        .post("/v1/config/rollback", Some(ADMIN), r#"{"id": "one"}"#)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(h.fake.cluster_text_now(), CLUSTER);
    assert!(h.fake.overrides_now().is_empty());
}

#[tokio::test]
async fn pools_and_members_edit_cluster_pb_as_versions_and_roll_back() {
    let h = harness();
    let (s, body) = h
        .post(
            "/v1/pools/web@demo/members",
            Some(ADMIN),
            r#"{"host": "be2.demo", "ip": "127.0.0.3", "weight": 3}"#,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, vs) = h.get("/v1/vservers/web@demo", Some(READER)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(vs["services"][0]["destinations"][1]["backend"], "be2.demo.");
    let (s, _) = h.post("/v1/pools", Some(ADMIN), API_POOL).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = h.post("/v1/pools", Some(ADMIN), API_POOL).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, _) = h
        .delete("/v1/pools/web@demo/members/be1.demo.", Some(ADMIN))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h.delete("/v1/pools/nope", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, hist) = h.get("/v1/config/history", Some(READER)).await;
    let hist = hist.as_array().expect("list").clone();
    assert_eq!(hist.len(), 3);
    assert_eq!(
        hist[2]["what"],
        "add member be2.demo. (127.0.0.3) to web@demo"
    );
    assert_eq!(hist[2]["who"], "alice");
    // Roll back to the first edit: its text, byte for byte.
    let first = hist[2]["id"].as_u64().expect("id");
    let (s, _) = h
        .post(
            "/v1/config/rollback",
            Some(ADMIN),
            &format!("{{\"id\": {first}}}"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, pools) = h.get("/v1/vservers", Some(READER)).await;
    assert_eq!(pools.as_array().map(Vec::len), Some(1));
    let (_, text) = h.get("/v1/cluster", Some(READER)).await;
    assert!(
        text.as_str()
            .is_some_and(|t| t.contains("be2.demo.") && t.contains("be1.demo."))
    );
}

#[tokio::test]
async fn yaml_import_uses_the_cluster_vip_and_reports_paths() {
    let h = harness();
    let yaml = "kind: Service\nmetadata: {name: svc, namespace: ns}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30080, name: web}]\n---\nkind: Endpoints\nmetadata: {name: svc, namespace: ns}\nsubsets:\n- addresses: [{ip: 127.0.0.2}]\n  ports: [{port: 8080, name: web}]\n";
    let (s, body) = h.post("/v1/import", Some(ADMIN), yaml).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, v) = h.get("/v1/vservers/svc@ns", Some(READER)).await;
    assert_eq!(v["vips"][0], "127.0.0.254");
    assert_eq!(v["services"][0]["port"], 30080);
    let (s, body) = h
        .post("/v1/import", Some(ADMIN), "kind: Pool\nname: x\n")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "documents[0].vip");
}

#[tokio::test]
async fn dashboard_is_served_without_credentials_with_a_strict_policy() {
    let h = harness();
    for path in ["/", "/assets/app.js", "/assets/app.css"] {
        let resp = router(Arc::clone(&h.state))
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let csp = resp
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .expect("csp");
        assert!(csp.to_str().is_ok_and(|c| c.contains("default-src 'self'")));
    }
    let (s, _) = h.get("/assets/../../etc/passwd", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Pool and member names follow the pool-name character set wherever they come from (body or
/// URL path): a path, a forged log line or NUL is refused with 400, nothing is stored, and the
/// audit log still records each attempt on one line.
#[tokio::test]
async fn hostile_pool_and_member_names_are_refused_and_audited_on_one_line() {
    let h = harness();
    for (method, path, body) in [
        (
            "POST",
            "/v1/pools",
            r#"{"name": "../../x", "vip": "127.0.0.1", "services": [{"port": 81}]}"#,
        ),
        (
            "POST",
            "/v1/pools",
            r#"{"name": "a\r\nINFO forged", "vip": "127.0.0.1", "services": [{"port": 81}]}"#,
        ),
        ("DELETE", "/v1/pools/a%0d%0aINFO%20forged", ""),
        ("DELETE", "/v1/pools/..%2f..%2fx", ""),
        ("DELETE", "/v1/pools/web@demo/members/be1%00.demo.", ""),
        ("POST", "/v1/pools/a%0aforged/members", BE2),
    ] {
        let (s, reply) = h.call(method, path, Some(ADMIN), body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path}: {reply}");
    }
    let (_, hist) = h.get("/v1/config/history", Some(READER)).await;
    assert_eq!(
        hist.as_array().map(Vec::len),
        Some(0),
        "nothing stored: {hist}"
    );
    let raw = std::fs::read_to_string(h.dir.path().join("audit.log")).expect("audit log");
    assert_eq!(raw.lines().count(), 6, "one line per attempt:\n{raw}");
    assert!(!raw.contains("\nINFO forged"), "{raw}");
}

#[test]
fn a_conflicting_edit_is_409_and_other_refusals_are_400() {
    let conflict = super::outcome(crate::model::Outcome {
        applied: false,
        message: "configuration refused".into(),
        errors: vec![
            "conflict: the cluster config in etcd is at revision 9, not revision 7".into(),
        ],
    })
    .unwrap_err();
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    let invalid = super::outcome(crate::model::Outcome {
        applied: false,
        message: "configuration refused".into(),
        errors: vec!["vserver[0].port: 0 is not a valid port".into()],
    })
    .unwrap_err();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_member_with_a_ttl_is_registered_with_a_lease_and_renewed() {
    let h = harness();
    let uri = "/v1/pools/web@demo/members/be7.demo.";
    let body = r#"{"ip": "127.0.0.7", "weight": 2, "ttl_s": 5}"#;
    // Leases need config source etcd: refused (409) on disk, nothing registered.
    let (s, v) = h.put(uri, Some(ADMIN), body).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    h.switch_to_etcd().await;
    let (s, v) = h.put(uri, Some(ADMIN), body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["renewed"], json!(false));
    assert_eq!(v["ttl_s"], json!(5));
    let (s, v) = h.put(uri, Some(ADMIN), body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["renewed"], json!(true), "the same call renews");
    // A bad TTL is a 400 naming the field; readers may not register.
    for bad in [
        r#"{"ip": "127.0.0.7", "ttl_s": 0}"#,
        r#"{"ip": "127.0.0.7", "ttl_s": "5"}"#,
    ] {
        let (s, v) = h.put(uri, Some(ADMIN), bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v.to_string().contains("ttl_s"), "{v}");
    }
    let (s, _) = h.put(uri, Some(READER), body).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Registering is not a cluster.pb edit: no new version.
    assert!(!h.fake.cluster_text_now().contains("be7.demo."));
}

#[tokio::test]
async fn a_pool_without_a_vip_draws_one_from_a_vip_pool_and_gives_it_back() {
    let h = harness();
    h.fake.set_cluster_text(&with_vip_pool_pub());
    let body = r#"{"name": "api@demo", "vip_pool": "pub", "services": [{"port": 443}]}"#;
    // Address pools need config source etcd: 409, nothing created.
    let (s, v) = h.post("/v1/pools", Some(ADMIN), body).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(!h.fake.cluster_text_now().contains("api@demo"));
    h.switch_to_etcd().await;
    let (s, v) = h.post("/v1/pools", Some(ADMIN), body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["vip"], json!("10.99.0.1"));
    assert!(h.fake.cluster_text_now().contains("10.99.0.1/32"));
    // The same name again: refused before any allocation, so the running pool keeps its address.
    let (s, _) = h.post("/v1/pools", Some(ADMIN), body).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Both vip and vip_pool, or a vip_pool that is not a name: 400.
    for bad in [
        r#"{"name": "x@demo", "vip": "127.0.0.1", "vip_pool": "pub", "services": [{"port": 1}]}"#,
        r#"{"name": "x@demo", "vip_pool": 7, "services": [{"port": 1}]}"#,
    ] {
        let (s, v) = h.post("/v1/pools", Some(ADMIN), bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    }
    // Deleting the pool frees the address; the next pool gets it again.
    let (s, v) = h.delete("/v1/pools/api@demo", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["freed_vip_from"], json!("pub"));
    let next = body.replace("api@demo", "api2@demo");
    let (s, v) = h.post("/v1/pools", Some(ADMIN), &next).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["vip"], json!("10.99.0.1"));
}

#[tokio::test]
async fn a_yaml_pool_with_a_vip_pool_gets_its_address_on_import() {
    let h = harness();
    h.fake.set_cluster_text(&with_vip_pool_pub());
    h.switch_to_etcd().await;
    let yaml = "kind: Pool\nname: a@demo\nvip_pool: pub\nservices:\n  - port: 80\n---\n\
                kind: Pool\nname: b@demo\nvip_pool: pub\nservices:\n  - port: 80\n";
    let (s, v) = h.post("/v1/import", Some(ADMIN), yaml).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let text = h.fake.cluster_text_now();
    assert!(
        text.contains("10.99.0.1/32") && text.contains("10.99.0.2/32"),
        "two pools, two addresses: {text}"
    );
    // Bad vip_pool documents: refused with their field, nothing allocated or written.
    for (bad, field) in [
        (
            "kind: Pool\nname: c@demo\nvip: 10.0.0.1\nvip_pool: pub\nservices:\n  - port: 1\n",
            "documents[0].vip_pool",
        ),
        (
            "kind: Pool\nname: c@demo\nvip_pool: [1]\nservices:\n  - port: 1\n",
            "documents[0].vip_pool",
        ),
        (
            "kind: Pool\nname: c@demo\nvip_pool: pub\nservices:\n  - port: 0\n",
            "documents[0].services[0].port",
        ),
    ] {
        let (s, v) = h.post("/v1/import", Some(ADMIN), bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v.to_string().contains(field), "{field}: {v}");
    }
    assert!(!h.fake.cluster_text_now().contains("c@demo"));
    // A vip_pool the config lacks: the engine refuses the allocation, nothing is written.
    let (s, v) = h
        .post(
            "/v1/import",
            Some(ADMIN),
            "kind: Pool\nname: d@demo\nvip_pool: nope\nservices:\n  - port: 80\n",
        )
        .await;
    assert_ne!(s, StatusCode::OK, "{v}");
    assert!(!h.fake.cluster_text_now().contains("d@demo"));
}

#[tokio::test]
async fn a_dry_run_previews_config_writes_changes_nothing_and_other_writes_refuse_it() {
    let h = harness();
    let (_, text_before) = h.get("/v1/cluster", Some(READER)).await;
    let (s, body) = h
        .post("/v1/pools?dry_run=true", Some(ADMIN), API_POOL)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["dry_run"], true);
    assert_eq!(body["preview"]["vservers"]["added"], json!(["api@demo"]));
    let (s, body) = h
        .post("/v1/pools/web@demo/members?dry_run=1", Some(ADMIN), BE2)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["preview"]["vservers"]["changed"], json!(["web@demo"]));
    let (s, body) = h
        .delete("/v1/pools/web@demo?dry_run=true", Some(ADMIN))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["preview"]["vservers"]["removed"], json!(["web@demo"]));
    // A preview validates as the write would: a bad body is the same 400.
    let (s, _) = h
        .post(
            "/v1/pools?dry_run=true",
            Some(ADMIN),
            r#"{"name": "x", "vip": "127.0.0.1", "services": [{"port": 70000}]}"#,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // A dry run still needs the write's role.
    let (s, _) = h
        .post("/v1/pools?dry_run=true", Some(READER), API_POOL)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Writes without a preview refuse the flag rather than apply; an unreadable value is an error.
    let (s, body) = h
        .post("/v1/overrides?dry_run=true", Some(OPERATOR), DISABLE_BE1)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, _) = h
        .post("/v1/pools?dry_run=maybe", Some(ADMIN), API_POOL)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, body) = h
        .post("/v1/config/reload?dry_run=true", Some(OPERATOR), "")
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Nothing changed: the same cluster.pb, no version, no reload, no override.
    let (_, text_after) = h.get("/v1/cluster", Some(READER)).await;
    assert_eq!(text_before, text_after);
    let (_, hist) = h.get("/v1/config/history", Some(READER)).await;
    assert_eq!(hist.as_array().map(Vec::len), Some(0), "{hist}");
    assert!(h.fake.overrides_now().is_empty());
    // The audit log records the dry runs as such.
    assert!(
        h.audit()
            .iter()
            .any(|r| r["action"] == "dry run: create pool api@demo"),
        "{:?}",
        h.audit()
    );
}

#[tokio::test]
async fn trace_answers_readers_and_names_bad_fields() {
    let h = harness();
    let (s, body) = h
        .get(
            "/v1/trace?proto=tcp&client=127.0.0.9:4000&vip=127.0.0.1:80",
            Some(READER),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["matched"], true, "{body}");
    assert_eq!(body["vserver"], "web@demo");
    let (s, body) = h
        .get(
            "/v1/trace?proto=sctp&client=x&vip=127.0.0.1:80",
            Some(READER),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let fields = error_fields(&body);
    assert_eq!(fields, ["proto", "client"], "{body}");
    let (s, _) = h
        .get("/v1/trace?client=127.0.0.9:4000&vip=127.0.0.1:80", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
