//! The network-namespace lab: one namespace per node, all plugged into a bridge that lives in a
//! switch namespace of its own, so nothing is ever added to or changed in the host namespace.
//!
//! Names carry a random per-lab id (`sslab-<id>-lb1`), so labs of parallel test runs never meet.
//! Addresses are restricted to the documentation ranges the design reserves for the lab
//! (192.0.2.0/24 nodes, 198.51.100.0/24 VIPs, 203.0.113.0/24 backends), Seesaw's anycast range
//! (192.168.255.0/24) and loopback: traffic a test makes can only reach hosts the test made.

use std::collections::hash_map::RandomState;
use std::ffi::OsStr;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipnet::Ipv4Net;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::Signal;

use crate::cmd::{Output, ip, run};
use crate::error::LabError;
use crate::procs::{ProcId, Supervisor};
use crate::wait::wait_tcp_here;

/// The ranges a lab may use. 192.168.255.0/24 is Seesaw's anycast range: anycast VIPs must lie
/// in it, and they only ever exist inside the lab's namespaces.
const ALLOWED: [(Ipv4Addr, u8); 5] = [
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(192, 168, 255, 0), 24),
];

/// The interface name of every node's link to the bridge.
pub const NODE_IFACE: &str = "eth0";

/// The marker variable set on every process a lab starts (see [`crate::procs`]).
pub const MARKER_VAR: &str = "SEESAW_LAB_ID";

/// Describes the nodes of a lab before it is built.
#[derive(Debug, Default)]
pub struct LabBuilder {
    nodes: Vec<NodeSpec>,
    /// The first mistake in the description, reported by [`LabBuilder::build`].
    error: Option<LabError>,
}

#[derive(Debug)]
struct NodeSpec {
    name: String,
    addrs: Vec<Ipv4Net>,
    loopback: Vec<Ipv4Net>,
    routes: Vec<(Ipv4Net, Ipv4Addr)>,
    /// Further links to the bridge: (interface name, addresses).
    links: Vec<(String, Vec<Ipv4Net>)>,
}

/// A built lab. Dropping it stops every process it started and deletes every namespace it made.
#[derive(Debug)]
pub struct Lab {
    id: String,
    switch_ns: String,
    nodes: Vec<(String, String)>,
    /// Namespaces made so far, deleted in reverse on drop (also after a half-finished build).
    created: Vec<String>,
    sup: Supervisor,
    // Declared last so it is removed after the processes that write into it are gone.
    dir: tempfile::TempDir,
}

/// Plugs namespace `ns` into the bridge `br0` of namespace `sw`: a veth pair, `port` on the
/// bridge and `iface` in `ns` holding `addrs`, both ends up.
fn plug(sw: &str, ns: &str, port: &str, iface: &str, addrs: &[Ipv4Net]) -> Result<(), LabError> {
    ip(&[
        "-n", sw, "link", "add", port, "type", "veth", "peer", "name", iface, "netns", ns,
    ])?;
    ip(&["-n", sw, "link", "set", port, "master", "br0"])?;
    ip(&["-n", sw, "link", "set", port, "up"])?;
    for a in addrs {
        ip(&["-n", ns, "addr", "add", &a.to_string(), "dev", iface])?;
    }
    ip(&["-n", ns, "link", "set", iface, "up"])?;
    Ok(())
}

/// Moves the calling thread into network namespace `ns` (its name under `/run/netns`); only this
/// thread switches, the rest of the process stays put.
pub fn enter(ns: &str) -> Result<(), LabError> {
    let path = format!("/run/netns/{ns}");
    let fd = File::open(&path).map_err(LabError::io(format!("opening {path}")))?;
    setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|source| LabError::Setns {
        ns: ns.to_owned(),
        source,
    })
}

// === impl LabBuilder ===

impl LabBuilder {
    /// Adds a node per (name, address) in `hosts`, each with its address in a /24.
    pub fn hosts(mut self, hosts: &[(&str, &str)]) -> Self {
        for (name, ip) in hosts {
            self = self.node(name, &[&format!("{ip}/24")]);
        }
        self
    }

    /// Adds node `name` with `addrs` (CIDR) on its link to the bridge.
    pub fn node(mut self, name: &str, addrs: &[&str]) -> Self {
        let valid = !name.is_empty()
            && name.len() <= 10
            && name != "sw"
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && !self.nodes.iter().any(|n| n.name == name);
        if !valid {
            self.fail(LabError::BadNodeName(name.to_owned()));
            return self;
        }
        let mut spec = NodeSpec {
            name: name.to_owned(),
            addrs: Vec::new(),
            loopback: Vec::new(),
            routes: Vec::new(),
            links: Vec::new(),
        };
        for a in addrs {
            match parse_net(a) {
                Ok(net) => spec.addrs.push(net),
                Err(e) => self.fail(e),
            }
        }
        self.nodes.push(spec);
        self
    }

    /// Adds `addr` (CIDR) to node `name`'s loopback, e.g. a VIP the proxy data plane binds.
    pub fn loopback(mut self, name: &str, addr: &str) -> Self {
        match (
            parse_net(addr),
            self.nodes.iter_mut().find(|n| n.name == name),
        ) {
            (Ok(net), Some(node)) => node.loopback.push(net),
            (Err(e), _) => self.fail(e),
            (_, None) => self.fail(LabError::UnknownNode(name.to_owned())),
        }
        self
    }

    /// Adds a second (third, ...) link from node `name` to the bridge, named `iface` inside the
    /// node (e.g. an LB interface next to the node interface `eth0`), up, with `addrs`.
    pub fn link(mut self, name: &str, iface: &str, addrs: &[&str]) -> Self {
        let valid_iface = !iface.is_empty()
            && iface.len() <= 15
            && iface != NODE_IFACE
            && iface != "lo"
            && iface
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        if !valid_iface {
            self.fail(LabError::BadNodeName(format!("{name}:{iface}")));
            return self;
        }
        let mut nets = Vec::new();
        for a in addrs {
            match parse_net(a) {
                Ok(net) => nets.push(net),
                Err(e) => self.fail(e),
            }
        }
        match self.nodes.iter_mut().find(|n| n.name == name) {
            Some(node) if !node.links.iter().any(|(i, _)| i == iface) => {
                node.links.push((iface.to_owned(), nets));
            }
            Some(_) => self.fail(LabError::BadNodeName(format!("{name}:{iface}"))),
            None => self.fail(LabError::UnknownNode(name.to_owned())),
        }
        self
    }

    /// Adds a route to `dst` (CIDR) via `gateway` on node `name`.
    pub fn route(mut self, name: &str, dst: &str, gateway: &str) -> Self {
        let gw = gateway
            .parse::<Ipv4Addr>()
            .map_err(|e| LabError::BadAddress {
                addr: gateway.to_owned(),
                reason: e.to_string(),
            })
            .and_then(|gw| {
                parse_net(&format!("{gw}/32"))?;
                Ok(gw)
            });
        match (
            parse_net(dst),
            gw,
            self.nodes.iter_mut().find(|n| n.name == name),
        ) {
            (Ok(net), Ok(gw), Some(node)) => node.routes.push((net, gw)),
            (Err(e), _, _) | (_, Err(e), _) => self.fail(e),
            (_, _, None) => self.fail(LabError::UnknownNode(name.to_owned())),
        }
        self
    }

    /// Creates the namespaces, bridge, links, addresses and routes.
    pub fn build(self) -> Result<Lab, LabError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let id = random_id();
        let dir = tempfile::Builder::new()
            .prefix(&format!("sslab-{id}-"))
            .tempdir()
            .map_err(LabError::io("creating the lab temp dir"))?;
        let procs_dir = dir.path().join("procs");
        std::fs::create_dir_all(&procs_dir)
            .map_err(LabError::io("creating the lab process dir"))?;
        let mut lab = Lab {
            switch_ns: format!("sslab-{id}-sw"),
            sup: Supervisor::new(procs_dir, (MARKER_VAR.to_owned(), id.clone())),
            id,
            nodes: Vec::new(),
            created: Vec::new(),
            dir,
        };
        // From here on, an error drops `lab`, which deletes whatever was already created.
        let sw = lab.switch_ns.clone();
        lab.add_ns(&sw)?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for (i, node) in self.nodes.iter().enumerate() {
            let ns = format!("sslab-{}-{}", lab.id, node.name);
            lab.add_ns(&ns)?;
            lab.nodes.push((node.name.clone(), ns.clone()));
            let port: String = format!("v{i}-{}", node.name).chars().take(15).collect();
            plug(&sw, &ns, &port, NODE_IFACE, &node.addrs)?;
            for (j, (iface, nets)) in node.links.iter().enumerate() {
                let port: String = format!("v{i}{}-{}", j + 1, node.name)
                    .chars()
                    .take(15)
                    .collect();
                plug(&sw, &ns, &port, iface, nets)?;
            }
            for a in &node.loopback {
                ip(&["-n", &ns, "addr", "add", &a.to_string(), "dev", "lo"])?;
            }
            for (dst, gw) in &node.routes {
                ip(&[
                    "-n",
                    &ns,
                    "route",
                    "add",
                    &dst.to_string(),
                    "via",
                    &gw.to_string(),
                    "dev",
                    NODE_IFACE,
                ])?;
            }
            for sub in ["run", "config", "log"] {
                let d = lab.dir.path().join(&node.name).join(sub);
                std::fs::create_dir_all(&d)
                    .map_err(LabError::io(format!("creating {}", d.display())))?;
            }
            let log = lab.log_dir(&node.name)?;
            lab.sup.watch_log_dir(log);
        }
        Ok(lab)
    }

    fn fail(&mut self, e: LabError) {
        self.error.get_or_insert(e);
    }
}

// === impl Lab ===

impl Lab {
    /// Starts describing a lab.
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// The random id in every name this lab made.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The namespace name of `node`.
    pub fn ns(&self, node: &str) -> Result<&str, LabError> {
        self.nodes
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, ns)| ns.as_str())
            .ok_or_else(|| LabError::UnknownNode(node.to_owned()))
    }

    /// The lab's temp dir (process output, per-node dirs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `node`'s run dir (daemon sockets).
    pub fn run_dir(&self, node: &str) -> Result<PathBuf, LabError> {
        self.node_sub(node, "run")
    }

    /// `node`'s config dir (`seesaw.cfg`, `cluster.pb`, `watchdog.cfg`).
    pub fn config_dir(&self, node: &str) -> Result<PathBuf, LabError> {
        self.node_sub(node, "config")
    }

    /// `node`'s log dir; every file in it is printed if the test fails.
    pub fn log_dir(&self, node: &str) -> Result<PathBuf, LabError> {
        self.node_sub(node, "log")
    }

    /// Starts the whole suite in `node` under its watchdog, with the node's run, config and log
    /// dirs (the config dir must already hold `seesaw.cfg`, `cluster.pb` and `watchdog.cfg`).
    pub fn spawn_suite(&mut self, node: &str) -> Result<ProcId, LabError> {
        let [r, c, l] = [
            self.run_dir(node)?,
            self.config_dir(node)?,
            self.log_dir(node)?,
        ]
        .map(|p| p.to_string_lossy().into_owned());
        let watchdog = crate::bins::binary("seesaw_watchdog")?;
        self.spawn(
            node,
            watchdog,
            &["--run-dir", &r, "--config-dir", &c, "--log-dir", &l],
            &[
                ("SEESAW_RUN_DIR", &r),
                ("SEESAW_CONFIG_DIR", &c),
                ("SEESAW_LOG_DIR", &l),
                ("RUST_LOG", "info"),
            ],
        )
    }

    /// Starts `cmd args` in `node` (`ip netns exec`), with `env` added, output captured.
    pub fn spawn(
        &mut self,
        node: &str,
        cmd: impl AsRef<OsStr>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<ProcId, LabError> {
        let command = self.netns_command(node, cmd.as_ref(), args, env)?;
        let label = format!(
            "{node}-{}",
            Path::new(cmd.as_ref())
                .file_name()
                .unwrap_or(cmd.as_ref())
                .to_string_lossy()
        );
        self.sup.spawn(&label, command)
    }

    /// Runs `cmd args` in `node` to completion (at most `within`) and returns its output.
    pub fn exec(
        &self,
        node: &str,
        cmd: impl AsRef<OsStr>,
        args: &[&str],
        env: &[(&str, &str)],
        within: Duration,
    ) -> Result<Output, LabError> {
        run(self.netns_command(node, cmd.as_ref(), args, env)?, within)
    }

    /// Runs `cmd args` in `node` like [`Lab::exec`] and returns its stdout; a non-zero exit is
    /// an error carrying the command's output.
    pub fn stdout_of(
        &self,
        node: &str,
        cmd: impl AsRef<OsStr>,
        args: &[&str],
        within: Duration,
    ) -> Result<String, LabError> {
        let cmd = cmd.as_ref();
        let out = self.exec(node, cmd, args, &[], within)?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(LabError::Command {
                cmd: format!("{} {args:?} in {node}", cmd.to_string_lossy()),
                detail: out.combined(),
            })
        }
    }

    /// Runs the built `seesaw` CLI in `node` against the suite whose run dir is `run_dir`, with
    /// `args` (e.g. `["-c", "failover"]`), for 20 s at most (the engine answers from memory);
    /// its stdout, a non-zero exit being an error.
    pub fn seesaw(&self, node: &str, run_dir: &Path, args: &[&str]) -> Result<String, LabError> {
        let seesaw = crate::bins::binary("seesaw")?;
        let run = run_dir.to_string_lossy();
        let args: Vec<&str> = ["--run-dir", &run]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        self.stdout_of(node, seesaw, &args, Duration::from_secs(20))
    }

    /// Runs `f` on a thread that has entered `node`'s network namespace, so plain std sockets
    /// opened inside `f` live there. A panic in `f` is re-raised on the calling thread.
    pub fn run_in<T: Send>(&self, node: &str, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        let ns = self.ns(node)?.to_owned();
        std::thread::scope(|s| {
            let worker = s.spawn(|| {
                enter(&ns)?;
                Ok(f())
            });
            match worker.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts `f` on a thread of its own that has entered `node`'s network namespace (threads it
    /// starts stay there too), for work that goes on beside the test, unlike [`Lab::run_in`].
    pub fn thread_in<T: Send + 'static>(
        &self,
        node: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<std::thread::JoinHandle<T>, LabError> {
        let ns = self.ns(node)?.to_owned();
        Ok(std::thread::spawn(move || {
            enter(&ns).unwrap_or_else(|e| panic!("{e}"));
            f()
        }))
    }

    /// Waits until `addr` accepts TCP connections from inside `node`.
    pub fn wait_tcp(
        &self,
        node: &str,
        addr: SocketAddr,
        within: Duration,
    ) -> Result<Duration, LabError> {
        self.run_in(node, || wait_tcp_here(addr, within))?
    }

    /// Starts `seesaw demo-backend` (an HTTP server answering with `name`) in `node` on
    /// `listen` and waits (at most 30 s) until it accepts connections.
    pub fn start_demo_backend(
        &mut self,
        node: &str,
        listen: SocketAddr,
        name: &str,
    ) -> Result<ProcId, LabError> {
        let seesaw = crate::bins::binary("seesaw")?;
        let addr = listen.to_string();
        let id = self.spawn(
            node,
            &seesaw,
            &["demo-backend", "--listen", &addr, "--name", name],
            &[],
        )?;
        self.wait_tcp(node, listen, Duration::from_secs(30))?;
        Ok(id)
    }

    /// The pid of a started process (of `ip netns exec`, which execs the command in place).
    pub fn pid(&self, id: ProcId) -> u32 {
        self.sup.pid(id)
    }

    /// Whether a started process still runs.
    pub fn is_running(&mut self, id: ProcId) -> bool {
        self.sup.is_running(id)
    }

    /// Sends a signal to a started process.
    pub fn signal(&mut self, id: ProcId, sig: Signal) -> Result<(), LabError> {
        self.sup.signal(id, sig)
    }

    /// SIGKILLs a started process and reaps it.
    /// Prints every captured log now (as a failing test's teardown does).
    pub fn dump_logs(&self) {
        self.sup.dump_logs();
    }

    pub fn kill(&mut self, id: ProcId) -> Result<(), LabError> {
        self.sup.kill(id)
    }

    fn node_sub(&self, node: &str, sub: &str) -> Result<PathBuf, LabError> {
        self.ns(node)?;
        Ok(self.dir.path().join(node).join(sub))
    }

    fn add_ns(&mut self, ns: &str) -> Result<(), LabError> {
        ip(&["netns", "add", ns])?;
        self.created.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    fn netns_command(
        &self,
        node: &str,
        cmd: &OsStr,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Command, LabError> {
        let ns = self.ns(node)?;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(cmd).args(args);
        c.env_remove("NOTIFY_SOCKET");
        for (k, v) in env {
            c.env(k, v);
        }
        Ok(c)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Processes are stopped before the logs are printed so the dump includes whatever they
        // wrote while shutting down; all of it is printed before the temp dir and namespaces go.
        self.sup.shutdown();
        if std::thread::panicking() {
            self.sup.dump_logs();
        }
        for ns in self.created.iter().rev() {
            // Best effort: a namespace that cannot be deleted now is reported by the next
            // `ip netns list`, and nothing else depends on it.
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Parses `a.b.c.d/n` and checks it lies inside the lab ranges.
fn parse_net(text: &str) -> Result<Ipv4Net, LabError> {
    let net: Ipv4Net = text
        .parse()
        .map_err(|e: ipnet::AddrParseError| LabError::BadAddress {
            addr: text.to_owned(),
            reason: e.to_string(),
        })?;
    let inside = ALLOWED.iter().any(|&(base, len)| {
        Ipv4Net::new(base, len)
            .expect("the allowed ranges are valid networks")
            .contains(&net)
    });
    if inside {
        Ok(net)
    } else {
        Err(LabError::AddressOutOfRange {
            addr: text.to_owned(),
        })
    }
}

/// Six hex digits from the standard library's per-process random hash keys: enough to keep
/// concurrent labs apart without a random-number dependency.
pub(crate) fn random_id() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lab_ranges_are_accepted() {
        assert!(parse_net("192.0.2.10/24").is_ok());
        assert!(parse_net("198.51.100.1/32").is_ok());
        assert!(parse_net("203.0.113.11/24").is_ok());
        assert!(parse_net("127.0.0.2/8").is_ok());
        assert!(matches!(
            parse_net("10.0.0.1/8"),
            Err(LabError::AddressOutOfRange { .. })
        ));
        assert!(matches!(
            parse_net("0.0.0.0/0"),
            Err(LabError::AddressOutOfRange { .. })
        ));
        assert!(matches!(
            parse_net("192.0.2.300/24"),
            Err(LabError::BadAddress { .. })
        ));
    }

    #[test]
    fn builder_reports_the_first_mistake() {
        let err = Lab::builder()
            .node("client", &["192.0.2.100/24"])
            .route("client", "0.0.0.0/0", "192.0.2.10")
            .node("lb1", &["8.8.8.8/24"])
            .build()
            .expect_err("a default route leaves the lab ranges");
        assert!(matches!(err, LabError::AddressOutOfRange { addr } if addr == "0.0.0.0/0"));
        let err = Lab::builder()
            .node("a", &[])
            .node("a", &[])
            .build()
            .expect_err("duplicate node");
        assert!(matches!(err, LabError::BadNodeName(_)));
        let err = Lab::builder()
            .loopback("ghost", "198.51.100.1/32")
            .build()
            .expect_err("unknown node");
        assert!(matches!(err, LabError::UnknownNode(_)));
    }

    #[test]
    fn ids_differ() {
        assert_ne!(random_id(), random_id());
        assert_eq!(random_id().len(), 6);
    }
}
