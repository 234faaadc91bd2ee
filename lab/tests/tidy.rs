//! House rules as ordinary tests: every Rust file opens with a `//!` doc comment, no test is
//! ignored without a reason, and the crate dependency graph keeps its shape
//! (`proto` ← `common` ← components, and `proto` ← `status` (the engine's status model) ←
//! components; no component library depends on another).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

const CRATES: &[&str] = &[
    "proto",
    "common",
    "status",
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

/// `CRATES` but those in `skip`, in order.
fn crates_but(skip: &'static [&'static str]) -> impl Iterator<Item = &'static str> {
    CRATES.iter().copied().filter(move |c| !skip.contains(c))
}

/// What ships in a node besides ncc: the lab, the bench and the fuzzers drive ncc in-process and
/// are not components.
const NOT_NCC: &[&str] = &["ncc", "lab", "fuzz"];

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
    assert_eq!(
        internal_deps("status"),
        ["seesaw-proto"],
        "the status model is converted from the engine's protos and from nothing else of ours"
    );
    for c in crates_but(&["proto", "common", "status", "fuzz"]) {
        let bad: Vec<_> = internal_deps(c)
            .into_iter()
            // The status model is a library of plain structs, not a component: no IPC to replace.
            .filter(|d| {
                !matches!(
                    d.as_str(),
                    "seesaw-proto" | "seesaw-common" | "seesaw-status"
                )
            })
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
    for c in crates_but(NOT_NCC).map(|c| format!("seesaw-{c}")) {
        let reach = closure(&graph, &c);
        let bad: Vec<&String> = reach
            .iter()
            .filter(|d| is_kernel_net_crate(d) || *d == "seesaw-ncc")
            .collect();
        assert!(
            bad.is_empty(),
            "{c} links {bad:?}; only ncc changes the network"
        );
    }
    for c in crates_but(NOT_NCC) {
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
    for c in crates_but(&["ncc", "lab", "fuzz", "watchdog"]) {
        let lib = root().join(c).join("src/lib.rs");
        let text = std::fs::read_to_string(&lib).unwrap();
        assert!(
            text.contains("#![forbid(unsafe_code)]"),
            "{} lacks #![forbid(unsafe_code)]",
            lib.display()
        );
    }
}

/// The modules of `krate` (first path component under `src/`, `main`, `lib` and `bin` left out)
/// and which others each one names (`crate::<module>` outside its tests).
fn module_graph(
    krate: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = root().join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    for f in files {
        let Ok(rel) = f.strip_prefix(&src) else {
            continue;
        };
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_owned();
        if matches!(top.as_str(), "main" | "lib" | "bin") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        // Inline test modules (`#[cfg(test)]` then `mod x {`) end the code that counts; a
        // `#[cfg(test)] mod x;` line names a test file, which is skipped on its own.
        let cut = text
            .match_indices("#[cfg(test)]")
            .map(|(i, _)| i)
            .find(|&i| {
                text[i..].lines().nth(1).is_some_and(|l| {
                    l.trim_start().starts_with("mod ") && l.trim_end().ends_with('{')
                })
            })
            .unwrap_or(text.len());
        let code = &text[..cut];
        let edges = graph.entry(top.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let used: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !used.is_empty() && used != top {
                edges.insert(used);
            }
        }
    }
    graph
}

/// A module of `graph` that can reach itself through others, with the path, if any.
fn import_circle(
    graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Option<Vec<String>> {
    fn walk(
        g: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        at: &str,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == at) {
            let mut circle = path[i..].to_vec();
            circle.push(at.to_owned());
            return Some(circle);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_owned());
        for next in g.get(at).into_iter().flatten() {
            if let Some(c) = walk(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(at.to_owned());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    graph
        .keys()
        .find_map(|m| walk(graph, m, &mut Vec::new(), &mut done))
}

/// No module of a crate imports, through others, a module that imports it: each crate's modules
/// form layers a newcomer can read bottom-up. `KNOWN` lists crates allowed a circle (none now);
/// a crate on it that has none must come off.
#[test]
fn no_import_circle_inside_a_crate() {
    const KNOWN: &[&str] = &[];
    for krate in crates_but(&["fuzz", "lab"]) {
        let circle = import_circle(&module_graph(krate));
        if KNOWN.contains(&krate) {
            assert!(
                circle.is_some(),
                "{krate} has no import circle any more: take it off the KNOWN list"
            );
        } else if let Some(c) = circle {
            panic!("{krate}: import circle {}", c.join(" -> "));
        }
    }
}

#[test]
fn the_circle_finder_finds_circles() {
    let g = |edges: &[(&str, &str)]| {
        let mut m: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            std::collections::BTreeMap::new();
        for (a, b) in edges {
            m.entry((*a).to_owned())
                .or_default()
                .insert((*b).to_owned());
            m.entry((*b).to_owned()).or_default();
        }
        m
    };
    assert_eq!(import_circle(&g(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(
        import_circle(&g(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
