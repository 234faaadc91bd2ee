//! The `seesaw_engine` binary as operators run it: `--validate` on good and broken config dirs, and
//! a second instance refusing to start while the first serves the socket.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::engine_command as engine;

fn etc(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../etc")
        .join(sub)
}

/// `seesaw_engine --validate <flags> --config-dir <dir>`.
fn validate(dir: &Path, flags: &[&str]) -> Output {
    engine()
        .arg("--validate")
        .args(flags)
        .arg("--config-dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn validate_accepts_the_shipped_configs() {
    for dir in [etc(""), etc("demo")] {
        let out = validate(&dir, &[]);
        assert!(
            out.status.success(),
            "{}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        // etc/ says `kind = auto`: the answer names the plane this host's ncc would pick.
        let want_end = if dir == etc("demo") {
            "the proxy data plane\n"
        } else {
            " data plane (auto on this host)\n"
        };
        assert!(
            stdout.starts_with("config OK for the ") && stdout.ends_with(want_end),
            "{}: {stdout}",
            dir.display()
        );
    }
}

/// Seesaw's defaults (WLC, DSR) are checked against the plane that will hold them: fine on IPVS
/// and on nftables (which re-weights wlc from sampled connection counts), refused on the proxy
/// (no DSR) with the reason.
#[test]
fn validate_checks_against_the_plane_named_or_resolved() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("seesaw.cfg"),
        "[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\n[dataplane]\nkind = auto\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("cluster.pb"),
        "seesaw_vip < fqdn: \"v.\" ipv4: \"10.0.0.1/24\" >\nnode < fqdn: \"n.\" ipv4: \"10.0.0.2/24\" >\n\
         vserver < name: \"w\" rp: \"x\" entry_address < fqdn: \"w.\" ipv4: \"10.1.0.1/32\" >\n\
         vserver_entry < protocol: TCP port: 80 > backend < host < fqdn: \"b.\" ipv4: \"10.2.0.1/32\" > > >\n",
    )
    .unwrap();
    let run = |plane: &str| validate(dir.path(), &["--plane", plane]);
    for plane in ["ipvs", "nftables"] {
        let out = run(plane);
        assert!(
            out.status.success(),
            "{plane}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("config OK for the {plane} data plane\n")
        );
    }
    let proxy = run("proxy");
    assert_eq!(proxy.status.code(), Some(78));
    let err = String::from_utf8_lossy(&proxy.stderr);
    assert!(
        err.contains("mode: DSR is not supported by the proxy data plane"),
        "proxy: {err}"
    );
    let bad = run("xdp");
    assert_eq!(bad.status.code(), Some(64));
}

#[test]
fn validate_lists_every_error_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seesaw.cfg"), "[cluster]\nvrid = 0\n").unwrap();
    let cluster = std::fs::read_to_string(etc("demo/cluster.pb")).unwrap();
    let broken = cluster
        .replace("port: 8080", "port: 0")
        .replace("weight: 1 >\n>", "weight: -2 >\n  colour: \"red\"\n>");
    std::fs::write(dir.path().join("cluster.pb"), broken).unwrap();
    let out = validate(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "seesaw.cfg [cluster] name: required",
        "seesaw.cfg [cluster] vrid: 0 is outside 1..255",
        "field 'colour' not found for message 'seesaw.config.Vserver'",
        "vserver[\"web@demo\"].vserver_entry[0].port: 0 is not a valid port",
        "vserver[\"web@demo\"].backend[1].weight: -2 is negative",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn validate_lists_warnings_and_strict_makes_them_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = std::fs::read_to_string(etc("demo/seesaw.cfg")).unwrap();
    std::fs::write(
        dir.path().join("seesaw.cfg"),
        cfg.replacen("[cluster]", "[Cluster]\nanycast_enable = true ; typo", 1),
    )
    .unwrap();
    let cluster = std::fs::read_to_string(etc("demo/cluster.pb")).unwrap();
    std::fs::write(
        dir.path().join("cluster.pb"),
        format!(
            "{cluster}\nvserver < name: \"bare\" rp: \"x\" entry_address < fqdn: \"b.\" ipv4: \"127.0.0.9\" > >\n"
        ),
    )
    .unwrap();
    let want = [
        "seesaw.cfg [cluster] anycast_enable: unknown key, ignored (did you mean \"anycast_enabled\"?)",
        "vserver[\"bare\"].entry_address.ipv4: \"127.0.0.9\" has no prefix length",
        "vserver[\"bare\"].entry_address: vserver has no usable ipv4 or ipv6 address, skipped",
    ];
    let out = validate(dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_lists(
        &String::from_utf8_lossy(&out.stdout),
        Heading::First("config OK for the proxy data plane, with 3 warnings:\n"),
        &want,
    );
    let out = validate(dir.path(), &["--strict"]);
    assert_eq!(out.status.code(), Some(78));
    assert_lists(
        &String::from_utf8_lossy(&out.stderr),
        Heading::Anywhere("config invalid with --strict (3 warnings are errors):\n"),
        &want,
    );
}

/// Where a listing's heading stands in the output.
enum Heading<'a> {
    First(&'a str),
    Anywhere(&'a str),
}

/// `text` has `heading` where it says and every line of `want`.
fn assert_lists(text: &str, heading: Heading<'_>, want: &[&str]) {
    let (found, heading) = match heading {
        Heading::First(h) => (text.starts_with(h), h),
        Heading::Anywhere(h) => (text.contains(h), h),
    };
    assert!(found, "missing {heading:?} in:\n{text}");
    for w in want {
        assert!(text.contains(w), "missing {w:?} in:\n{text}");
    }
}

#[test]
fn a_second_instance_refuses_while_the_first_serves() {
    let run = tempfile::tempdir().unwrap();
    let mut first = support::spawn_engine(&etc("demo"), run.path());
    let out = engine()
        .arg("--config-dir")
        .arg(etc("demo"))
        .arg("--run-dir")
        .arg(run.path())
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(
        out.status.code(),
        Some(69),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("another instance is already serving"));
}

#[test]
fn validate_checks_the_ha_key_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ha.key");
    std::fs::write(&key, [0x5a; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = std::fs::read_to_string(etc("demo/seesaw.cfg")).unwrap();
    std::fs::write(
        dir.path().join("seesaw.cfg"),
        format!("{cfg}\n[ha]\nauth_key_file = {}\n", key.display()),
    )
    .unwrap();
    std::fs::copy(etc("demo/cluster.pb"), dir.path().join("cluster.pb")).unwrap();
    let out = validate(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("seesaw.cfg [ha] auth_key_file: ") && err.contains("must be mode 0600"),
        "{err}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = validate(dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
