//! House rules as ordinary tests: every Rust file opens with a `//!` doc comment, no test is
//! ignored without a reason, and the crate dependency graph keeps its shape
//! (`proto` ← `common` ← components; no component library depends on another).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

const CRATES: &[&str] = &[
    "proto",
    "common",
    "engine",
    "ncc",
    "ha",
    "healthcheck",
    "ecu",
    "watchdog",
    "cli",
    "lab",
    "fuzz",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("target" | "corpus" | "artifacts")
            ) {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    for c in CRATES {
        rust_files(&root().join(c), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            !first.starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` opening doc: {missing:#?}"
    );
}

#[test]
fn no_bare_ignore() {
    let mut files = Vec::new();
    for c in CRATES {
        rust_files(&root().join(c), &mut files);
    }
    let needle = ["#[", "ignore]"].concat();
    let bare: Vec<_> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .contains(&needle)
        })
        .collect();
    assert!(bare.is_empty(), "write #[ignore = \"why\"]: {bare:#?}");
}

/// The internal (`seesaw-*`) normal dependencies a crate declares in its Cargo.toml.
fn internal_deps(krate: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
    let mut section = String::new();
    let mut deps = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_owned();
        } else if section == "[dependencies]" && line.starts_with("seesaw-") {
            deps.push(line.split(['.', ' ', '=']).next().unwrap().to_owned());
        }
    }
    deps.sort();
    deps
}

#[test]
fn dependency_graph_keeps_its_shape() {
    assert_eq!(
        internal_deps("proto"),
        Vec::<String>::new(),
        "proto depends on nothing of ours"
    );
    assert_eq!(
        internal_deps("common"),
        Vec::<String>::new(),
        "common is domain-free"
    );
    for c in [
        "engine",
        "ncc",
        "ha",
        "healthcheck",
        "ecu",
        "watchdog",
        "cli",
        "lab",
    ] {
        let bad: Vec<_> = internal_deps(c)
            .into_iter()
            .filter(|d| d != "seesaw-proto" && d != "seesaw-common")
            .collect();
        assert!(
            bad.is_empty(),
            "{c} depends on component crates {bad:?}; talk over IPC instead"
        );
    }
}

#[test]
fn only_ncc_and_the_watchdog_spawner_may_use_unsafe() {
    for c in [
        "proto",
        "common",
        "engine",
        "ha",
        "healthcheck",
        "ecu",
        "cli",
    ] {
        let lib = root().join(c).join("src/lib.rs");
        let text = std::fs::read_to_string(&lib).unwrap();
        assert!(
            text.contains("#![forbid(unsafe_code)]"),
            "{} lacks #![forbid(unsafe_code)]",
            lib.display()
        );
    }
}
