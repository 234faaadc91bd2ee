//! The engine binary with `config source server`: fetches cluster.pb from an HTTPS config server
//! on loopback that has its own CA; refuses a wrong content type; ignores an older config; saves
//! fetched configs with an archive; and converges a churn of 25 new vservers in 3 updates.

mod support;
#[path = "support/tls_server.rs"]
mod tls_server;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seesaw_proto::engine as pb;
use support::{Engine, assert_refused, free_port, report_ha};

/// What the test server answers: (content type, body).
type Reply = Arc<Mutex<(String, Vec<u8>)>>;

/// An HTTPS server on 127.0.0.1 with a fresh CA, answering `GET /config/lab` with `reply`;
/// returns (port, CA PEM).
async fn config_server(reply: Reply) -> (u16, String) {
    let pki = tls_server::pki();
    let port = tls_server::serve(&pki, move |request| {
        assert!(request.starts_with("GET /config/lab HTTP/1.1\r\n"));
        let (ct, body) = reply.lock().unwrap().clone();
        tls_server::http("200 OK", &ct, &body)
    })
    .await;
    (port, pki.ca_pem)
}

fn cluster_text(last_updated: i64, vservers: usize) -> String {
    let mut t = format!(
        "seesaw_vip < fqdn: \"v.\" ipv4: \"127.0.0.1/8\" >\n\
         node < fqdn: \"n.\" ipv4: \"127.0.0.1/8\" >\n\
         metadata < last_updated: {last_updated} >\n"
    );
    for i in 0..vservers {
        t.push_str(&format!(
            "vserver < name: \"vs{i:02}\" rp: \"x\" entry_address < fqdn: \"vs{i}.\" ipv4: \"127.0.1.{}/32\" >\n\
               vserver_entry < protocol: TCP port: 80 mode: NAT scheduler: RR >\n\
               backend < host < fqdn: \"b.\" ipv4: \"127.0.2.1/32\" > > >\n",
            i + 1
        ));
    }
    t
}

async fn vserver_count(
    c: &mut pb::engine_client::EngineClient<tonic::transport::Channel>,
) -> usize {
    support::vservers(c, "").await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_source_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (config, run): (PathBuf, PathBuf) = (dir.path().join("config"), dir.path().join("run"));
    std::fs::create_dir_all(&config).unwrap();
    let reply: Reply = Arc::new(Mutex::new(("application/x-protobuffer".into(), Vec::new())));
    let (port, ca) = config_server(reply.clone()).await;
    std::fs::write(config.join("ca.crt"), ca).unwrap();
    std::fs::write(
        config.join("seesaw.cfg"),
        format!(
            "[cluster]\nname = lab\nnode_ipv4 = 127.0.0.1\n\
             [config_server]\nprimary = localhost\nport = {port}\nca_file = {}\n\
             [dataplane]\nkind = proxy\n",
            config.join("ca.crt").display()
        ),
    )
    .unwrap();
    std::fs::write(config.join("cluster.pb"), cluster_text(100, 0)).unwrap();
    let engine = Engine::with_fake_ncc(&config, &run);
    let mut c = engine.client();

    // The server sends 25 new vservers (binary, as Seesaw's servers do).
    let pb_cluster =
        seesaw_engine::config::cluster::parse(cluster_text(200, 25).as_bytes()).unwrap();
    reply.lock().unwrap().1 = prost::Message::encode_to_vec(&pb_cluster);
    c.config_source(pb::ConfigSourceRequest {
        source: "server".into(),
    })
    .await
    .unwrap();
    // Switching the source fetches at once; churn lets 10 in per update.
    let deadline = Instant::now() + Duration::from_secs(10);
    while vserver_count(&mut c).await != 10 {
        assert!(Instant::now() < deadline, "first churn step never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let saved = std::fs::read_to_string(config.join("cluster.pb")).unwrap();
    assert!(
        saved.contains("vs24"),
        "the full fetched config is saved as text"
    );
    let archived: Vec<_> = std::fs::read_dir(config.join("archive")).unwrap().collect();
    assert_eq!(archived.len(), 1, "the previous cluster.pb is archived");
    // Two more steps (every 5 s) converge on all 25.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = vec![10];
    while *seen.last().unwrap() != 25 {
        assert!(Instant::now() < deadline, "did not converge: {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let n = vserver_count(&mut c).await;
        if n != *seen.last().unwrap() {
            seen.push(n);
        }
    }
    assert_eq!(seen, [10, 20, 25], "3 updates");

    // An older config is ignored.
    let older = seesaw_engine::config::cluster::parse(cluster_text(150, 1).as_bytes()).unwrap();
    reply.lock().unwrap().1 = prost::Message::encode_to_vec(&older);
    let r = c.config_reload(pb::Empty {}).await.unwrap().into_inner();
    assert!(r.message.contains("older"), "{}", r.message);
    assert_eq!(vserver_count(&mut c).await, 25);

    // A wrong content type is refused, and the running config stays.
    *reply.lock().unwrap() = (
        "text/plain".into(),
        prost::Message::encode_to_vec(&pb_cluster),
    );
    let r = c.config_reload(pb::Empty {}).await.unwrap().into_inner();
    assert_refused(&r, "content type \"text/plain\"");
    assert_eq!(vserver_count(&mut c).await, 25);
}

/// Seesaw's defaults, from outside the engine: with a `[config_server]` server the source starts
/// as `server` (without one, `disk`), and an HA transition to master or backup resets a source an
/// operator chose by hand back to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_source_follows_config_servers_and_ha_transitions_reset_it() {
    async fn source(
        c: &mut pb::engine_client::EngineClient<tonic::transport::Channel>,
        set: &str,
    ) -> (String, String) {
        let r = c
            .config_source(pb::ConfigSourceRequest { source: set.into() })
            .await
            .unwrap()
            .into_inner();
        (r.source, r.previous)
    }
    for (servers, default) in [(true, "server"), (false, "disk")] {
        let dir = tempfile::tempdir().unwrap();
        let (config, run) = (dir.path().join("config"), dir.path().join("run"));
        std::fs::create_dir_all(&config).unwrap();
        // The server's port is closed: a fetch fails and the running config stays.
        let port = free_port();
        let server_section = if servers {
            format!("[config_server]\nprimary = localhost\nport = {port}\n")
        } else {
            String::new()
        };
        std::fs::write(
            config.join("seesaw.cfg"),
            format!(
                "[cluster]\nname = lab\nnode_ipv4 = 127.0.0.1\n{server_section}[dataplane]\nkind = proxy\n"
            ),
        )
        .unwrap();
        std::fs::write(config.join("cluster.pb"), cluster_text(100, 1)).unwrap();
        let engine = Engine::with_fake_ncc(&config, &run);
        let mut c = engine.client();
        assert_eq!(source(&mut c, "").await.0, default, "servers: {servers}");
        assert_eq!(
            source(&mut c, "none").await,
            ("none".into(), default.into())
        );
        report_ha(&mut c, "BACKUP").await;
        assert_eq!(
            source(&mut c, "").await.0,
            default,
            "reset on becoming backup"
        );
        assert_eq!(source(&mut c, "none").await.0, "none");
        report_ha(&mut c, "BACKUP").await;
        assert_eq!(
            source(&mut c, "").await.0,
            "none",
            "no transition, no reset"
        );
        report_ha(&mut c, "LEADER").await;
        assert_eq!(
            source(&mut c, "").await.0,
            default,
            "reset on becoming master"
        );
        assert_eq!(vserver_count(&mut c).await, 1, "the running config stays");
    }
}
