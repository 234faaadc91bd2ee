//! Tests for `watchdog.cfg` parsing: the shipped Seesaw file, value parsers and hostile input.

use super::*;

const ROOT: Identity = Identity { euid: 0 };

fn errors(text: &str) -> Vec<String> {
    match parse(text, "watchdog.cfg", ROOT) {
        Ok(cfg) => panic!("expected errors, got {cfg:?}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn service<'a>(cfg: &'a WatchdogConfig, name: &str) -> &'a ServiceConfig {
    cfg.services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("service {name} missing"))
}

#[test]
#[allow(
    clippy::print_stderr,
    reason = "a skipped fixture test must say so in the test output"
)]
fn shipped_seesaw_file_parses() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/seesaw/watchdog.cfg");
    if !path.exists() {
        eprintln!(
            "SKIPPED shipped_seesaw_file_parses: compat fixture {} is not present on this machine",
            path.display()
        );
        return;
    }
    let cfg = load(&path, ROOT).expect("the shipped file is valid");
    let names: Vec<&str> = cfg.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ncc", "engine", "ecu", "ha", "healthcheck"]);

    let ncc = service(&cfg, "ncc");
    assert_eq!(ncc.binary, Path::new("/usr/local/seesaw/seesaw_ncc"));
    assert_eq!(ncc.args, ["-log_dir=/var/log/seesaw"]);
    assert_eq!(ncc.dependency, None);
    assert_eq!(ncc.priority, Some(-10));
    assert_eq!(ncc.term_timeout, DEFAULT_TERM_TIMEOUT);

    let engine = service(&cfg, "engine");
    assert_eq!(engine.dependency.as_deref(), Some("ncc"));
    assert_eq!(engine.priority, Some(-10));
    assert_eq!(engine.term_timeout, Duration::from_secs(10));

    let ha = service(&cfg, "ha");
    assert_eq!(ha.dependency.as_deref(), Some("engine"));
    assert_eq!(ha.priority, Some(-15));
    assert_eq!(ha.term_timeout, DEFAULT_TERM_TIMEOUT);

    for name in ["healthcheck", "ecu"] {
        let s = service(&cfg, name);
        assert_eq!(s.dependency.as_deref(), Some("engine"));
        assert_eq!(s.priority, None);
        assert_eq!(
            s.binary,
            PathBuf::from(format!("/usr/local/seesaw/seesaw_{name}"))
        );
        assert_eq!(s.user, None);
    }
}

#[test]
fn our_shipped_file_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/watchdog.cfg");
    let cfg = load(&path, ROOT).expect("etc/watchdog.cfg is valid");
    let order: Vec<(&str, Option<&str>)> = cfg
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.dependency.as_deref()))
        .collect();
    assert_eq!(
        order,
        [
            ("proxy", None),
            ("ncc", None),
            ("engine", Some("ncc")),
            ("ha", Some("engine")),
            ("healthcheck", Some("engine")),
            ("ecu", Some("engine")),
        ]
    );
    assert_eq!(
        service(&cfg, "engine").term_timeout,
        Duration::from_secs(10)
    );
    assert_eq!(service(&cfg, "ha").priority, Some(-15));
    assert!(
        cfg.services
            .iter()
            .all(|s| s.args.is_empty() && s.user.is_none())
    );
}

#[test]
fn default_section_is_inherited_and_overridable() {
    let cfg = parse(
        "[default]\nargs = -v  -x\nterm_timeout = 1m30s\n\n[a]\nbinary = /bin/a\n\n[b]\nbinary = /bin/b\nargs =\nterm_timeout = 250ms\n",
        "watchdog.cfg",
        ROOT,
    )
    .expect("valid");
    let a = service(&cfg, "a");
    assert_eq!(a.args, ["-v", "-x"]);
    assert_eq!(a.term_timeout, Duration::from_secs(90));
    let b = service(&cfg, "b");
    assert!(b.args.is_empty());
    assert_eq!(b.term_timeout, Duration::from_millis(250));
    assert_eq!(cfg.services.len(), 2, "[default] is not a service");
}

#[test]
fn every_error_is_collected_with_its_path() {
    let got = errors(
        "[engine]\nbinary = /e\nterm_timeout = soon\npriority = -21\ncolour = blue\n\n\
         [ha]\ndependency = engine\n\n[ecu]\nbinary = /x\ndependency = nope\n",
    );
    assert_eq!(
        got,
        [
            "watchdog.cfg [engine] term_timeout: \"soon\" is not a duration (e.g. 500ms, 10s, 1m)",
            "watchdog.cfg [engine] priority: -21 is outside the nice range -20..19",
            "watchdog.cfg [engine] colour: unknown key (known: binary, args, dependency, priority, term_timeout, user, capabilities)",
            "watchdog.cfg [ha] binary: required",
            "watchdog.cfg [ecu] dependency: unknown service \"nope\"",
        ]
    );
}

#[test]
fn cycles_are_config_errors() {
    let got = errors(
        "[a]\nbinary=/a\ndependency=b\n[b]\nbinary=/b\ndependency=a\n[c]\nbinary=/c\ndependency=c\n",
    );
    assert_eq!(
        got,
        [
            "watchdog.cfg [a] dependency: cycle a -> b -> a",
            "watchdog.cfg [c] dependency: cycle c -> c",
        ]
    );
}

#[test]
fn hostile_input_is_rejected_not_panicked_on() {
    // Empty file, keys outside sections, duplicates, path tricks in names, absurd values.
    assert_eq!(errors(""), ["watchdog.cfg: no services defined"]);
    assert_eq!(
        errors("binary = /x\n"),
        [
            "watchdog.cfg: key \"binary\" is outside any section",
            "watchdog.cfg: no services defined"
        ]
    );
    assert_eq!(
        errors("[a]\nbinary=/a\n[a]\nbinary=/b\n"),
        ["watchdog.cfg [a]: duplicate section"]
    );
    assert_eq!(
        errors("[a]\nbinary=/a\nbinary=/b\n"),
        ["watchdog.cfg [a] binary: set more than once"]
    );
    assert_eq!(
        errors("[../../etc]\nbinary=/a\n"),
        ["watchdog.cfg [../../etc]: service name may only hold letters, digits, '_' and '-'"]
    );
    assert_eq!(
        errors(
            "[a]\nbinary=\ndependency=b c\npriority=99999999999999\nterm_timeout=-5s\n[b]\nbinary=/b\n"
        ),
        [
            "watchdog.cfg [a] binary: must not be empty",
            "watchdog.cfg [a] dependency: only one dependency is supported",
            "watchdog.cfg [a] priority: \"99999999999999\" is not an integer",
            "watchdog.cfg [a] term_timeout: \"-5s\" is negative",
        ]
    );
    assert_eq!(
        errors("[a]\nbinary=/a\nterm_timeout=99999999999999999999999h\n"),
        ["watchdog.cfg [a] term_timeout: \"99999999999999999999999h\" is out of range"]
    );
    let syntax = errors("[a\nbinary=/a\n");
    assert_eq!(syntax.len(), 1);
    assert!(syntax[0].starts_with("watchdog.cfg:"), "{syntax:?}");
    // Binary garbage must not panic either.
    let garbage =
        String::from_utf8_lossy(&[0xff, 0x00, b'[', 0x80, b']', b'\n', b'=', b'=']).into_owned();
    assert!(parse(&garbage, "watchdog.cfg", ROOT).is_err());
}

#[test]
fn users_resolve_by_name_or_uid_and_need_root_to_switch() {
    let cfg = parse("[a]\nbinary=/a\nuser=root\n", "f", ROOT).expect("valid");
    assert_eq!(
        cfg.services[0].user,
        Some(RunAs {
            name: "root".into(),
            uid: 0,
            gid: 0
        })
    );
    let cfg = parse("[a]\nbinary=/a\nuser=4242\n", "f", ROOT).expect("valid");
    assert_eq!(cfg.services[0].user.as_ref().map(|u| u.uid), Some(4242));

    let not_root = Identity { euid: 1000 };
    let err = parse("[a]\nbinary=/a\nuser=root\n", "f", not_root).expect_err("cannot switch");
    assert_eq!(
        err.to_string(),
        "f [a] user: cannot run as \"root\" (uid 0): the watchdog runs as uid 1000 and is not root"
    );
    // Running as yourself is fine without root.
    assert!(parse("[a]\nbinary=/a\nuser=1000\n", "f", not_root).is_ok());
    let err = parse("[a]\nbinary=/a\nuser=no_such_user_xyz\n", "f", ROOT).expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "f [a] user: unknown user \"no_such_user_xyz\""
    );
}

#[test]
fn go_durations() {
    let ok = [
        ("10s", Duration::from_secs(10)),
        ("500ms", Duration::from_millis(500)),
        ("1m", Duration::from_secs(60)),
        ("1m30s", Duration::from_secs(90)),
        ("1.5h", Duration::from_secs(5400)),
        ("0", Duration::ZERO),
        ("+2s", Duration::from_secs(2)),
        ("250us", Duration::from_micros(250)),
    ];
    for (text, want) in ok {
        assert_eq!(parse_go_duration(text), Ok(want), "{text}");
    }
    for bad in [
        "",
        "10",
        "s",
        "1x",
        "1e3s",
        ".s",
        "1s2",
        "-1s",
        "ten seconds",
    ] {
        assert!(
            parse_go_duration(bad).is_err(),
            "{bad:?} should be rejected"
        );
    }
}
