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

/// Each package of Cargo.lock with the names of its dependencies (normal, dev and build: the
/// lock file does not tell them apart, which makes the check below stricter, not weaker).
fn lock_graph() -> std::collections::BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let mut graph = std::collections::BTreeMap::new();
    for pkg in text.split("[[package]]").skip(1) {
        let mut name = None;
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in pkg.lines().map(str::trim) {
            if let Some(n) = line.strip_prefix("name = ") {
                name = Some(n.trim_matches('"').to_owned());
            } else if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line.starts_with(']') {
                in_deps = false;
            } else if in_deps {
                // `"name"` or `"name version"` (when two versions are locked).
                let d = line
                    .trim_matches([',', '"'])
                    .split(' ')
                    .next()
                    .unwrap_or("");
                deps.push(d.to_owned());
            }
        }
        if let Some(n) = name {
            graph.entry(n).or_insert_with(Vec::new).extend(deps);
        }
    }
    graph
}

fn closure(graph: &std::collections::BTreeMap<String, Vec<String>>, from: &str) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(p) = todo.pop() {
        // The lab is a test harness (a dev-dependency of components): the lock file lists its
        // own dev-dependencies (ncc among them), which are never built for its dependents.
        if seen.insert(p.clone()) && (p == from || p != "seesaw-lab") {
            todo.extend(graph.get(&p).into_iter().flatten().cloned());
        }
    }
    seen.into_iter().collect()
}

/// Kernel networking code: netlink, nftables, packet-building crates.
fn is_kernel_net_crate(name: &str) -> bool {
    name == "rtnetlink"
        || name == "genetlink"
        || name.starts_with("netlink-")
        || name.starts_with("nftnl")
        || name.starts_with("nftables")
        || name == "rustables"
        || name == "mnl"
        || name == "neli"
        || name.starts_with("pnet")
}

/// ncc is the only process that changes the network (DESIGN §2, §6): no other component
/// links netlink or nftables code, directly or through a dependency (ncc itself included),
/// and no other component's source opens a netlink socket or runs `nft`. The lab, the bench
/// and the fuzzers drive ncc in-process and are not components.
#[test]
fn only_ncc_links_netlink_or_nftables_code() {
    let graph = lock_graph();
    assert!(graph.contains_key("seesaw-ncc"), "Cargo.lock lists ncc");
    for c in [
        "seesaw-proto",
        "seesaw-common",
        "seesaw-engine",
        "seesaw-ha",
        "seesaw-healthcheck",
        "seesaw-ecu",
        "seesaw-watchdog",
        "seesaw-cli",
    ] {
        let reach = closure(&graph, c);
        let bad: Vec<&String> = reach
            .iter()
            .filter(|d| is_kernel_net_crate(d) || *d == "seesaw-ncc")
            .collect();
        assert!(
            bad.is_empty(),
            "{c} links {bad:?}; only ncc changes the network"
        );
    }
    for c in [
        "proto",
        "common",
        "engine",
        "ha",
        "healthcheck",
        "ecu",
        "watchdog",
        "cli",
    ] {
        let mut files = Vec::new();
        rust_files(&root().join(c).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for needle in [
                "AF_NETLINK",
                "NETLINK_ROUTE",
                "NETLINK_GENERIC",
                "new(\"nft\")",
            ] {
                assert!(
                    !text.contains(needle),
                    "{} uses {needle}; only ncc changes the network",
                    f.display()
                );
            }
        }
    }
    // The check is not vacuous: the names it looks for are the ones netlink crates use.
    assert!(is_kernel_net_crate("netlink-packet-route") && is_kernel_net_crate("rtnetlink"));
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
