//! Tests of the demo's parts that need no daemons: config files, port picking, binary discovery
//! and the printed instructions.

use std::net::TcpListener as StdListener;

use prost_reflect::DynamicMessage;

use super::*;

#[test]
fn seesaw_cfg_is_ini_with_the_ecu_port() {
    let ini = ini::Ini::load_from_str(&seesaw_cfg(4321)).expect("valid INI");
    let get = |s: &str, k: &str| ini.get_from(Some(s), k).map(str::to_owned);
    assert_eq!(get("cluster", "name").as_deref(), Some("demo"));
    assert_eq!(get("cluster", "node_ipv4").as_deref(), Some("127.0.0.1"));
    assert_eq!(get("cluster", "anycast_enabled").as_deref(), Some("false"));
    assert_eq!(get("interface", "node").as_deref(), Some("lo"));
    assert_eq!(get("interface", "lb").as_deref(), Some("lo"));
    assert_eq!(get("dataplane", "kind").as_deref(), Some("proxy"));
    assert_eq!(get("ecu", "listen").as_deref(), Some("127.0.0.1:4321"));
}

#[test]
fn watchdog_cfg_is_ini_with_absolute_binaries_and_order() {
    let dir = Path::new("/opt/seesaw bin");
    let ini = ini::Ini::load_from_str(&watchdog_cfg(dir)).expect("valid INI");
    let sections: Vec<&str> = ini.sections().flatten().collect();
    assert_eq!(
        sections,
        ["proxy", "ncc", "engine", "ha", "healthcheck", "ecu"]
    );
    for name in sections {
        let props = ini.section(Some(name)).expect("section");
        assert_eq!(
            props.get("binary"),
            Some(format!("/opt/seesaw bin/seesaw_{name}").as_str())
        );
        assert_eq!(props.get("args"), None);
        let dependency = match name {
            "proxy" | "ncc" => None,
            "engine" => Some("ncc"),
            _ => Some("engine"),
        };
        assert_eq!(props.get("dependency"), dependency, "[{name}]");
    }
    assert_eq!(ini.get_from(Some("engine"), "term_timeout"), Some("10s"));
}

#[test]
fn cluster_pb_parses_against_the_config_schema() {
    let pool = &*seesaw_proto::DESCRIPTOR_POOL;
    let desc = pool
        .get_message_by_name("seesaw.config.Cluster")
        .expect("Cluster in the descriptor pool");
    let msg = DynamicMessage::parse_text_format(desc, &cluster_pb(18080))
        .expect("cluster.pb is valid text format");
    let vservers = msg.get_field_by_name("vserver").expect("vserver field");
    let vservers = vservers.as_list().expect("repeated");
    assert_eq!(vservers.len(), 1);
    let web = vservers[0].as_message().expect("message");
    let entry = web.get_field_by_name("vserver_entry").expect("entries");
    let entry = entry.as_list().expect("repeated")[0]
        .as_message()
        .expect("message")
        .clone();
    assert_eq!(
        entry.get_field_by_name("port").and_then(|v| v.as_i32()),
        Some(18080)
    );
    let backends = web.get_field_by_name("backend").expect("backends");
    assert_eq!(backends.as_list().map(<[_]>::len), Some(2));
}

#[test]
fn picked_ports_are_free_on_all_three_addresses() {
    let (port, ecu) = pick_ports().expect("ports");
    assert_ne!(port, ecu);
    assert_ne!(port, 0);
    for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        StdListener::bind(format!("{ip}:{port}")).expect("P is free");
    }
    StdListener::bind(format!("127.0.0.1:{ecu}")).expect("E is free");
}

/// Only a missing daemon stops a directly run demo: after `cargo build --workspace --bins` an
/// unchanged daemon is older than a rebuilt `seesaw`, and that is no reason to refuse.
#[test]
fn only_missing_binaries_stop_the_demo() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(missing_binaries(dir.path()), DAEMONS.to_vec());
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    for name in DAEMONS.into_iter().filter(|n| *n != "seesaw_ha") {
        let f = File::create(dir.path().join(name)).expect("create");
        f.set_modified(old).expect("set mtime");
    }
    assert_eq!(missing_binaries(dir.path()), ["seesaw_ha"]);
    File::create(dir.path().join("seesaw_ha")).expect("create");
    assert_eq!(missing_binaries(dir.path()), Vec::<&str>::new());
}

#[test]
fn build_uses_the_profile_of_the_running_binary() {
    assert_eq!(
        build_args(Path::new("/w/target/release/seesaw")),
        ["build", "--workspace", "--bins", "--release"]
    );
    assert_eq!(
        build_args(Path::new("/w/target/debug/seesaw")),
        ["build", "--workspace", "--bins"]
    );
}

#[test]
fn instructions_start_with_the_two_stable_lines_then_the_dashboard() {
    let layout = Layout::create(&tempfile::tempdir().expect("temp dir").keep()).expect("layout");
    let dashboard = "Dashboard:     https://127.0.0.1:18082/#token=t\nAPI:           curl x\n";
    let text = instructions(&layout, Path::new("/x/seesaw"), (18080, 18081), dashboard);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "demo vip: 127.0.0.1:18080");
    assert_eq!(lines[1], format!("demo run dir: {}", layout.run.display()));
    assert_eq!(lines[2], "");
    assert_eq!(
        lines[3], "Dashboard:     https://127.0.0.1:18082/#token=t",
        "the dashboard is the first thing to try"
    );
    assert!(lines[4].starts_with("Try it:"));
    assert!(text.contains("API:           curl x\n"));
    assert!(text.contains(&format!("/x/seesaw --run-dir {}", layout.run.display())));
    assert!(text.contains(&format!("kill $(cat {}/be1.pid)", layout.demo.display())));
    assert!(text.contains("http://127.0.0.1:18081/v1/vservers"));
    assert!(text.ends_with("Press Ctrl-C to stop.\n"));
    fs::remove_dir_all(&layout.root).expect("clean up");
}

#[test]
fn errors_read_as_one_line() {
    let e = DemoError::Io {
        what: "cannot write x".into(),
        source: io::ErrorKind::PermissionDenied.into(),
    };
    assert_eq!(error_chain(&e), "cannot write x: permission denied");
}

#[test]
fn the_nested_build_drops_what_cargo_run_says_about_the_package_and_keeps_cargo_settings() {
    let names = [
        "CARGO_PKG_NAME",
        "CARGO_PKG_VERSION_MAJOR",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "OUT_DIR",
        "CARGO",
        "CARGO_HOME",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_JOBS",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "PATH",
    ];
    let dropped = cargo_run_env(names.iter().map(OsString::from));
    assert_eq!(
        dropped,
        names[..8].iter().map(OsString::from).collect::<Vec<_>>()
    );
}
