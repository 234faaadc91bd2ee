//! Config edits through the engine API: each accepted edit is saved as a history version; a
//! refused edit changes nothing; a rollback restores a version byte for byte and applies it.

mod support;

use std::path::Path;

use seesaw_proto::engine as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_edits_three_versions_and_a_byte_identical_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let (config, run) = (dir.path().join("config"), dir.path().join("run"));
    std::fs::create_dir_all(&config).unwrap();
    let etc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/demo");
    std::fs::copy(etc.join("seesaw.cfg"), config.join("seesaw.cfg")).unwrap();
    let base = std::fs::read_to_string(etc.join("cluster.pb")).unwrap();
    std::fs::write(config.join("cluster.pb"), &base).unwrap();
    let mut child = support::spawn_engine(&config, &run);
    let mut c = support::client(&run);
    let weight_of_be2 = |text: &str| -> String {
        text.replace(
            r#"fqdn: "be2.demo." ipv4: "127.0.0.3/32" status: PRODUCTION > weight: 1"#,
            &format!(
                r#"fqdn: "be2.demo." ipv4: "127.0.0.3/32" status: PRODUCTION > weight: {}"#,
                text.len() % 7 + 2
            ),
        )
    };
    let edits = [
        weight_of_be2(&base),
        base.replace("scheduler: WRR", "scheduler: RR"),
        base.clone() + "\n# third\n",
    ];
    for (i, text) in edits.iter().enumerate() {
        let r = c
            .update_cluster(pb::UpdateClusterRequest {
                text: text.clone(),
                what: format!("edit {i}"),
                acting_user: "alice".into(),
                base_revision: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.applied, "{r:?}");
    }
    // A broken edit: refused with field paths, and nothing changes.
    let r = c
        .update_cluster(pb::UpdateClusterRequest {
            text: base.replace("port: 8080", "port: 0"),
            what: "bad".into(),
            acting_user: "alice".into(),
            base_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    support::assert_refused(&r, "vserver_entry[0].port: 0 is not a valid port");
    assert_eq!(
        std::fs::read_to_string(config.join("cluster.pb")).unwrap(),
        edits[2]
    );

    let versions = history(&mut c).await;
    assert_eq!(
        versions.iter().map(|v| v.what.as_str()).collect::<Vec<_>>(),
        ["edit 2", "edit 1", "edit 0"]
    );
    assert!(versions.iter().all(|v| v.who == "alice"));

    let first = versions.last().unwrap().id;
    let r = c
        .config_rollback(pb::ConfigRollbackRequest {
            id: first,
            acting_user: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.applied, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(config.join("cluster.pb")).unwrap(),
        edits[0],
        "byte-identical"
    );
    let v = support::vservers(&mut c, "web@demo").await;
    let weights: Vec<i32> = v[0].services[0]
        .destinations
        .iter()
        .map(|d| d.weight)
        .collect();
    assert_ne!(
        weights,
        [1, 1],
        "the rolled-back weights are running: {weights:?}"
    );
    let versions = history(&mut c).await;
    assert_eq!(versions[0].what, format!("rollback to version {first}"));
    assert_eq!(versions[0].who, "bob");
    assert_eq!(versions[0].sha256, versions.last().unwrap().sha256);

    // Compare-and-swap on disk: two writers read the same revision; the first edit lands, the
    // second is refused with a conflict and changes nothing.
    let read = c.get_cluster(pb::Empty {}).await.unwrap().into_inner();
    assert_ne!(read.revision, 0);
    let edit = |text: String, what: &str| pb::UpdateClusterRequest {
        text,
        what: what.into(),
        acting_user: "carol".into(),
        base_revision: read.revision,
    };
    let first_text = read.text.clone() + "\n# carol was first\n";
    let r = c
        .update_cluster(edit(first_text.clone(), "first"))
        .await
        .unwrap()
        .into_inner();
    assert!(r.applied, "{r:?}");
    let r = c
        .update_cluster(edit(read.text.clone() + "\n# dave was second\n", "second"))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.applied, "{r:?}");
    assert!(
        r.errors.iter().any(|e| e.starts_with("conflict:")),
        "{:?}",
        r.errors
    );
    assert_eq!(
        std::fs::read_to_string(config.join("cluster.pb")).unwrap(),
        first_text,
        "the refused edit wrote nothing"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The saved versions, newest first.
async fn history(
    c: &mut pb::engine_client::EngineClient<tonic::transport::Channel>,
) -> Vec<pb::ConfigVersion> {
    c.config_history(pb::Empty {})
        .await
        .unwrap()
        .into_inner()
        .versions
}
