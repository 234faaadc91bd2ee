//! `seesaw demo [--keep]`: the whole system on loopback without root. Builds the daemons if
//! needed, writes a config for one vserver with two HTTP backends into a fresh temp dir, starts the
//! backends (`seesaw demo-backend`) and `seesaw_watchdog` (under `seesaw demo-guard`, which stops
//! it if the demo dies), waits until the VIP answers, prints how to poke at it, and on
//! Ctrl-C/SIGTERM stops everything it started.
//!
//! Stdout carries only the two `demo vip:` / `demo run dir:` lines and the help that follows;
//! progress goes to stderr, so a script can read the first two lines of stdout.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the demo talks to the person running it"
)]

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

use crate::demo_backend;

mod process;

pub use process::*;

/// The daemons the demo runs, all expected next to the `seesaw` binary.
pub const DAEMONS: [&str; 7] = [
    "seesaw_watchdog",
    "seesaw_engine",
    "seesaw_ncc",
    "seesaw_proxy",
    "seesaw_ha",
    "seesaw_healthcheck",
    "seesaw_ecu",
];

/// How long the whole system gets to come up.
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// How often the VIP is probed while waiting.
const READY_POLL: Duration = Duration::from_millis(100);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the watchdog gets to stop its services after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How often the guard checks that the demo is still alive.
const GUARD_PARENT_POLL: Duration = Duration::from_millis(500);
/// Lines of each log shown when the demo fails.
const LOG_TAIL_LINES: usize = 20;
/// The backends: name and loopback address (the VIP is 127.0.0.1).
const BACKENDS: [(&str, Ipv4Addr); 2] = [
    ("be1", Ipv4Addr::new(127, 0, 0, 2)),
    ("be2", Ipv4Addr::new(127, 0, 0, 3)),
];
const VIP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Daemon binaries are missing and cannot be built from here.
    #[error("missing binaries in {}: {names}; build them with `{command}`", dir.display())]
    Binaries {
        /// Where they were looked for.
        dir: PathBuf,
        /// Which ones.
        names: String,
        /// The command that builds them.
        command: String,
    },
    /// The cargo build failed.
    #[error("`{command}` failed ({status})")]
    Build {
        /// The command.
        command: String,
        /// Its exit status.
        status: ExitStatus,
    },
    /// A file-system or process operation failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// No port was free on all three loopback addresses.
    #[error("no TCP port is free on 127.0.0.1, 127.0.0.2 and 127.0.0.3")]
    NoFreePort,
    /// The VIP did not answer in time.
    #[error("the VIP {vip} did not answer within {} s", READY_DEADLINE.as_secs())]
    NotReady {
        /// The address probed.
        vip: SocketAddr,
    },
    /// The watchdog died.
    #[error("seesaw_watchdog exited unexpectedly ({0})")]
    WatchdogExited(ExitStatus),
}

/// The temp dir's layout.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The temp dir itself.
    pub root: PathBuf,
    /// `--run-dir` for every process (sockets).
    pub run: PathBuf,
    /// `--config-dir`: seesaw.cfg, cluster.pb, watchdog.cfg.
    pub config: PathBuf,
    /// `--log-dir`: every process's log.
    pub log: PathBuf,
    /// The backends' pid files.
    pub demo: PathBuf,
}

impl Layout {
    /// Creates the sub-directories of `root`.
    pub fn create(root: &Path) -> Result<Self, DemoError> {
        let layout = Self {
            root: root.to_owned(),
            run: root.join("run"),
            config: root.join("config"),
            log: root.join("log"),
            demo: root.join("demo"),
        };
        for dir in [&layout.run, &layout.config, &layout.log, &layout.demo] {
            fs::create_dir_all(dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
        }
        Ok(layout)
    }
}

/// Runs the demo to the end. Returns the exit code.
pub fn run(keep: bool) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("seesaw demo: cannot start the async runtime: {e}");
            return seesaw_common::exit::OSERR;
        }
    };
    match runtime.block_on(demo(keep)) {
        Ok(()) => seesaw_common::exit::OK,
        Err(e) => {
            eprintln!("seesaw demo: {}", error_chain(&e));
            1
        }
    }
}

async fn demo(keep: bool) -> Result<(), DemoError> {
    let exe = std::env::current_exe().map_err(io_err("cannot locate the seesaw binary"))?;
    let bin_dir = exe
        .parent()
        .ok_or_else(|| DemoError::Io {
            what: format!("{} has no parent directory", exe.display()),
            source: io::ErrorKind::NotFound.into(),
        })?
        .to_owned();
    // Installed first so that a Ctrl-C during the build or start-up still cleans up.
    let mut signals = Signals::install()?;
    ensure_binaries(&exe, &bin_dir).await?;

    let root = tempfile::Builder::new()
        .prefix("seesaw-demo.")
        .tempdir()
        .map_err(io_err("cannot create a temp dir"))?
        .keep();
    let result = run_in(&root, &exe, &bin_dir, &mut signals).await;
    if keep {
        eprintln!("kept {}", root.display());
    } else if let Err(e) = fs::remove_dir_all(&root) {
        eprintln!("cannot remove {}: {e}", root.display());
    }
    result
}

async fn run_in(
    root: &Path,
    exe: &Path,
    bin_dir: &Path,
    signals: &mut Signals,
) -> Result<(), DemoError> {
    let layout = Layout::create(root)?;
    let (port, ecu_port) = pick_ports()?;
    write_configs(&layout, port, ecu_port, bin_dir)?;
    let dashboard = write_api_config(&layout)?;

    let mut children = Children::default();
    let result = supervise(
        &layout,
        exe,
        bin_dir,
        (port, ecu_port),
        &dashboard,
        &mut children,
        signals,
    )
    .await;
    if matches!(
        result,
        Err(DemoError::NotReady { .. } | DemoError::WatchdogExited(_))
    ) {
        print_log_tails(&layout.log);
    }
    eprintln!("stopping ...");
    children.stop().await;
    result
}

/// Starts the processes, waits for the VIP, prints the help and waits for a stop signal.
/// Returns `Ok` when asked to stop.
async fn supervise(
    layout: &Layout,
    exe: &Path,
    bin_dir: &Path,
    (port, ecu_port): (u16, u16),
    dashboard: &str,
    children: &mut Children,
    signals: &mut Signals,
) -> Result<(), DemoError> {
    for (name, ip) in BACKENDS {
        let child = spawn_backend(exe, name, SocketAddr::new(IpAddr::V4(ip), port), layout)?;
        let pid_file = layout.demo.join(format!("{name}.pid"));
        let pid = child.id().map(|p| p.to_string()).unwrap_or_default();
        children.backends.push(child);
        fs::write(&pid_file, format!("{pid}\n"))
            .map_err(io_err(format!("cannot write {}", pid_file.display())))?;
    }
    children.start_watchdog(exe, bin_dir, layout)?;

    let vip = SocketAddr::new(IpAddr::V4(VIP), port);
    eprintln!(
        "waiting for the VIP {vip} to answer (logs in {}) ...",
        layout.log.display()
    );
    if !wait_ready(vip, children, signals).await? {
        return Ok(());
    }

    let mut out = io::stdout().lock();
    // A closed stdout (e.g. piped into `head -2`) must not stop the demo.
    let _ = out.write_all(instructions(layout, exe, (port, ecu_port), dashboard).as_bytes());
    let _ = out.flush();
    drop(out);

    tokio::select! {
        () = signals.recv() => Ok(()),
        status = children.wait_watchdog() => Err(status),
    }
}

/// Probes the VIP until it answers 200. Returns `Ok(false)` when a stop signal came first.
async fn wait_ready(
    vip: SocketAddr,
    children: &mut Children,
    signals: &mut Signals,
) -> Result<bool, DemoError> {
    let deadline = tokio::time::Instant::now() + READY_DEADLINE;
    let max_polls = READY_DEADLINE.as_millis() / READY_POLL.as_millis();
    for _ in 0..=max_polls {
        if let Ok(answer) = demo_backend::get(vip, PROBE_TIMEOUT).await
            && answer.status == 200
        {
            return Ok(true);
        }
        children.check_watchdog()?;
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::select! {
            () = signals.recv() => return Ok(false),
            () = tokio::time::sleep(READY_POLL) => {}
        }
    }
    Err(DemoError::NotReady { vip })
}

/// What to print once the demo is up. The first two lines are a stable interface; the first
/// thing to try is the dashboard (`dashboard`: its line, then the API's).
pub fn instructions(layout: &Layout, exe: &Path, ports: (u16, u16), dashboard: &str) -> String {
    let (port, ecu_port) = ports;
    let mut s = String::new();
    let _ = writeln!(s, "demo vip: {VIP}:{port}");
    let _ = writeln!(s, "demo run dir: {}", layout.run.display());
    let _ = writeln!(s);
    let (dash, api) = dashboard.split_once('\n').unwrap_or((dashboard, ""));
    let _ = writeln!(s, "{dash}");
    let _ = writeln!(s, "Try it:        curl -i http://{VIP}:{port}/");
    let _ = writeln!(
        s,
        "Open a shell:  {} --run-dir {}",
        exe.display(),
        layout.run.display()
    );
    let _ = writeln!(
        s,
        "Change config: edit {}, then run `config reload` in the shell",
        layout.config.join("cluster.pb").display()
    );
    let _ = writeln!(
        s,
        "Stop backend:  kill $(cat {})",
        layout.demo.join("be1.pid").display()
    );
    let _ = writeln!(
        s,
        "ECU:           http://{VIP}:{ecu_port}/v1/vservers and http://{VIP}:{ecu_port}/metrics"
    );
    if !api.trim().is_empty() {
        let _ = writeln!(s, "{}", api.trim_end());
    }
    let _ = writeln!(s, "Logs:          {}", layout.log.display());
    let _ = writeln!(s, "Press Ctrl-C to stop.");
    s
}

// === configuration ===

/// `seesaw.cfg`: one node on loopback, the userspace proxy data plane, the ECU on `ecu_port`.
pub fn seesaw_cfg(ecu_port: u16) -> String {
    format!(
        "\
[cluster]
name = demo
node_ipv4 = 127.0.0.1
anycast_enabled = false

[interface]
node = lo
lb = lo

[dataplane]
kind = proxy

[ecu]
listen = 127.0.0.1:{ecu_port}
"
    )
}

/// `cluster.pb`: the vserver `web@demo` on 127.0.0.1:`port` with backends 127.0.0.2 and .3.
pub fn cluster_pb(port: u16) -> String {
    format!(
        r#"# Demo cluster: one vserver on loopback, two HTTP backends.
seesaw_vip: < fqdn: "seesaw-vip.demo." ipv4: "127.0.0.1/8" status: PRODUCTION >
node: < fqdn: "node1.demo." ipv4: "127.0.0.1/8" status: PRODUCTION >
vserver: <
  name: "web@demo"
  entry_address: < fqdn: "web.demo." ipv4: "127.0.0.1/32" status: PRODUCTION >
  rp: "demo@example.com"
  vserver_entry: <
    protocol: TCP
    port: {port}
    scheduler: WRR
    mode: NAT
    healthcheck: < type: HTTP interval: 1 timeout: 1 retries: 1 send: "/healthz" code: 200 >
  >
  backend: < host: < fqdn: "be1.demo." ipv4: "127.0.0.2/32" status: PRODUCTION > weight: 1 >
  backend: < host: < fqdn: "be2.demo." ipv4: "127.0.0.3/32" status: PRODUCTION > weight: 1 >
>
"#
    )
}

/// `watchdog.cfg`: every daemon from `bin_dir`, the proxy relay and ncc first, engine after it, the rest after the
/// engine. No args: the watchdog hands the directories to its children in their environment.
pub fn watchdog_cfg(bin_dir: &Path) -> String {
    let bin = |name: &str| bin_dir.join(format!("seesaw_{name}")).display().to_string();
    format!(
        "\
# Written by `seesaw demo`.
[proxy]
binary = {}

[ncc]
binary = {}

[engine]
binary = {}
dependency = ncc
term_timeout = 10s

[ha]
binary = {}
dependency = engine

[healthcheck]
binary = {}
dependency = engine

[ecu]
binary = {}
dependency = engine
",
        bin("proxy"),
        bin("ncc"),
        bin("engine"),
        bin("ha"),
        bin("healthcheck"),
        bin("ecu"),
    )
}

fn write_configs(
    layout: &Layout,
    port: u16,
    ecu_port: u16,
    bin_dir: &Path,
) -> Result<(), DemoError> {
    for (name, text) in [
        ("seesaw.cfg", seesaw_cfg(ecu_port)),
        ("cluster.pb", cluster_pb(port)),
        ("watchdog.cfg", watchdog_cfg(bin_dir)),
    ] {
        let path = layout.config.join(name);
        fs::write(&path, text).map_err(io_err(format!("cannot write {}", path.display())))?;
    }
    Ok(())
}

/// The ECU's HTTPS API for the demo: a self-signed certificate for 127.0.0.1, one admin user with
/// a random token, on a free loopback port (`ecu.cfg`, mode 0600). Returns the lines that tell
/// the user where the dashboard is.
fn write_api_config(layout: &Layout) -> Result<String, DemoError> {
    use std::os::unix::fs::PermissionsExt;
    let port = TcpListener::bind(SocketAddr::new(IpAddr::V4(VIP), 0))
        .and_then(|l| l.local_addr())
        .map_err(io_err("cannot find a port for the ECU API"))?
        .port();
    let mut random = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut random))
        .map_err(io_err("cannot read /dev/urandom"))?;
    let token: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec![VIP.to_string()]).map_err(|e| DemoError::Io {
            what: "cannot make the ECU certificate".into(),
            source: io::Error::other(e.to_string()),
        })?;
    let cert_path = layout.config.join("ecu-cert.pem");
    for (path, text) in [
        (cert_path.clone(), cert.pem()),
        (
            layout.config.join("ecu-key.pem"),
            signing_key.serialize_pem(),
        ),
        (
            layout.config.join("ecu.cfg"),
            format!(
                "[api]\nlisten = {VIP}:{port}\ncert = ecu-cert.pem\nkey = ecu-key.pem\n\n\
                 [user demo]\nrole = admin\ntoken = {token}\n"
            ),
        ),
    ] {
        fs::write(&path, text).map_err(io_err(format!("cannot write {}", path.display())))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(io_err(format!("cannot chmod {}", path.display())))?;
    }
    Ok(format!(
        "Dashboard:     https://{VIP}:{port}/#token={token}\n\
         API:           curl --cacert {} -H 'Authorization: Bearer {token}' https://{VIP}:{port}/v1/vservers\n",
        cert_path.display()
    ))
}

/// A port P free on 127.0.0.1, .2 and .3 (VIP and backends share it), and another port for the
/// ECU. The sockets are closed again, so another program could take a port before the demo
/// binds it; the retries only cover P being taken on .2 or .3.
pub fn pick_ports() -> Result<(u16, u16), DemoError> {
    let bind = |ip: Ipv4Addr, port: u16| TcpListener::bind(SocketAddr::new(IpAddr::V4(ip), port));
    for _ in 0..10 {
        let vip = bind(VIP, 0).map_err(io_err("cannot bind 127.0.0.1"))?;
        let port = vip
            .local_addr()
            .map_err(io_err("cannot read a bound address"))?
            .port();
        let backends: Result<Vec<_>, _> = BACKENDS.iter().map(|(_, ip)| bind(*ip, port)).collect();
        if backends.is_err() {
            continue;
        }
        // Bound while `vip` is still held, so the ECU port cannot be P.
        let ecu = bind(VIP, 0).map_err(io_err("cannot bind 127.0.0.1"))?;
        let ecu_port = ecu
            .local_addr()
            .map_err(io_err("cannot read a bound address"))?
            .port();
        return Ok((port, ecu_port));
    }
    Err(DemoError::NoFreePort)
}

// === binaries ===

/// The daemons that are missing from `dir`. (Their age says nothing: `cargo build --workspace
/// --bins` leaves an unchanged daemon older than a rebuilt `seesaw`; when the demo runs under
/// `cargo run`, cargo itself decides what is out of date.)
pub fn missing_binaries(dir: &Path) -> Vec<&'static str> {
    DAEMONS
        .into_iter()
        .filter(|name| !dir.join(name).is_file())
        .collect()
}

/// The cargo arguments that build the daemons in the profile `exe` was built in.
pub fn build_args(exe: &Path) -> Vec<&'static str> {
    let mut args = vec!["build", "--workspace", "--bins"];
    if exe.components().any(|c| c.as_os_str() == "release") {
        args.push("--release");
    }
    args
}

/// The variables `cargo run` set for this process about the `seesaw` package
/// (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, ...). The nested `cargo build` must not see them:
/// build scripts such as ring's re-run when they change, so the nested build would recompile
/// ring, rustls and everything above them for nothing. Cargo's own settings (`CARGO_HOME`,
/// `CARGO_TARGET_DIR`, `CARGO_BUILD_*`, `CARGO_PROFILE_*`, ...) stay.
pub fn cargo_run_env(names: impl Iterator<Item = OsString>) -> Vec<OsString> {
    const PACKAGE: [&str; 8] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CFG_",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    names
        .filter(|n| {
            n.to_str()
                .is_some_and(|n| PACKAGE.iter().any(|p| n.starts_with(p)))
        })
        .collect()
}

/// Makes sure every daemon exists next to `exe`. Under `cargo run` (which builds only this
/// binary) cargo builds the daemons, doing nothing when they are up to date; run directly, the
/// daemons the README's build command made are used as they are.
async fn ensure_binaries(exe: &Path, bin_dir: &Path) -> Result<(), DemoError> {
    let missing = missing_binaries(bin_dir);
    let args = build_args(exe);
    let command = format!("cargo {}", args.join(" "));
    let Some(cargo) = std::env::var_os("CARGO") else {
        if missing.is_empty() {
            return Ok(());
        }
        return Err(DemoError::Binaries {
            dir: bin_dir.to_owned(),
            names: missing.join(", "),
            command,
        });
    };
    eprintln!("building the daemons if needed: {command}");
    let mut cmd = Command::new(cargo);
    cmd.args(&args)
        .stdin(Stdio::null())
        // Cargo writes progress to stderr already; its stdout must not reach ours either.
        .stdout(stderr_stdio()?);
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        cmd.current_dir(dir);
    }
    for name in cargo_run_env(std::env::vars_os().map(|(k, _)| k)) {
        cmd.env_remove(name);
    }
    let status = cmd
        .status()
        .await
        .map_err(io_err(format!("cannot run {command}")))?;
    if !status.success() {
        return Err(DemoError::Build { command, status });
    }
    let missing: Vec<&str> = DAEMONS
        .into_iter()
        .filter(|name| !bin_dir.join(name).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(DemoError::Binaries {
            dir: bin_dir.to_owned(),
            names: missing.join(", "),
            command,
        });
    }
    Ok(())
}

// === processes ===

/// Every process the demo started. Dropping it (an early return or a panic) kills them all.
#[derive(Debug, Default)]
struct Children {
    /// `seesaw demo-guard` running `seesaw_watchdog`, the leader of their own process group (so
    /// Ctrl-C on the terminal reaches only the demo, which then stops the watchdog in order).
    watchdog: Option<Child>,
    /// The watchdog's pid, which is also its process group id; kept after it is reaped so the
    /// group can still be killed.
    watchdog_pgid: Option<Pid>,
    /// The backends; each in its own process group for the same reason.
    backends: Vec<Child>,
    /// The watchdog's pid files (`<run>/watchdog`): daemons outlive a killed watchdog, so the
    /// demo stops the ones still running after its watchdog is gone.
    pid_dir: Option<PathBuf>,
}

impl Children {
    /// Starts `seesaw_watchdog` under `seesaw demo-guard` (see [`guard`]), in a new process group.
    fn start_watchdog(
        &mut self,
        exe: &Path,
        bin_dir: &Path,
        layout: &Layout,
    ) -> Result<(), DemoError> {
        let binary = bin_dir.join("seesaw_watchdog");
        let output = log_file(&layout.log, "demo-watchdog.stderr")?;
        let mut command = Command::new(exe);
        let command = command
            .arg("demo-guard")
            .arg("--")
            .arg(&binary)
            .arg("--run-dir")
            .arg(&layout.run)
            .arg("--config-dir")
            .arg(&layout.config)
            .arg("--log-dir")
            .arg(&layout.log);
        let child = spawn_logged(
            command,
            output,
            format!("cannot start {}", binary.display()),
        )?;
        self.watchdog_pgid = child.id().and_then(pid);
        self.watchdog = Some(child);
        self.pid_dir = Some(layout.run.join("watchdog"));
        Ok(())
    }

    /// Fails if the watchdog has exited.
    fn check_watchdog(&mut self) -> Result<(), DemoError> {
        if let Some(wd) = &mut self.watchdog
            && let Ok(Some(status)) = wd.try_wait()
        {
            return Err(DemoError::WatchdogExited(status));
        }
        Ok(())
    }

    /// Waits for the watchdog to exit (never returns if there is none).
    async fn wait_watchdog(&mut self) -> DemoError {
        match &mut self.watchdog {
            Some(wd) => match wd.wait().await {
                Ok(status) => DemoError::WatchdogExited(status),
                Err(e) => DemoError::Io {
                    what: "cannot wait for seesaw_watchdog".to_owned(),
                    source: e,
                },
            },
            None => std::future::pending().await,
        }
    }

    /// SIGTERM to the watchdog, up to [`STOP_GRACE`] for it to stop its services, then SIGKILL
    /// to its process group; then the backends are killed and reaped.
    async fn stop(&mut self) {
        if let Some(mut wd) = self.watchdog.take() {
            if let Ok(None) = wd.try_wait()
                && let Some(pid) = wd.id().and_then(pid)
            {
                let _ = kill(pid, Signal::SIGTERM);
                if tokio::time::timeout(STOP_GRACE, wd.wait()).await.is_err() {
                    eprintln!(
                        "seesaw_watchdog did not stop within {} s; killing it",
                        STOP_GRACE.as_secs()
                    );
                }
            }
            if let Some(pgid) = self.watchdog_pgid.take() {
                // Whatever is left in the group; ESRCH (nothing left) is the normal case.
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            let _ = wd.wait().await;
        }
        // A watchdog that died (kill -9) left its daemons running: stop them too.
        let strays = self.strays();
        for &p in &strays {
            let _ = kill(p, Signal::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while strays.iter().any(|&p| kill(p, None).is_ok())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for &p in &self.strays() {
            let _ = kill(p, Signal::SIGKILL);
        }
        for mut backend in self.backends.drain(..) {
            let _ = backend.start_kill();
            let _ = backend.wait().await;
        }
    }
}

impl Children {
    /// Daemons the watchdog's pid files name that are still running.
    fn strays(&self) -> Vec<Pid> {
        let Some(dir) = &self.pid_dir else {
            return Vec::new();
        };
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pid"))
            .filter_map(|p| seesaw_common::pidfile::read_live(&p))
            .filter_map(pid)
            .collect()
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for p in self.strays() {
            let _ = kill(p, Signal::SIGKILL);
        }
        // Only reached with processes still recorded if `stop` did not run: kill_on_drop covers
        // the direct children, this covers the watchdog's group.
        if self.watchdog.is_some()
            && let Some(pgid) = self.watchdog_pgid
        {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

fn spawn_backend(
    exe: &Path,
    name: &str,
    listen: SocketAddr,
    layout: &Layout,
) -> Result<Child, DemoError> {
    let output = log_file(&layout.log, &format!("demo-{name}.log"))?;
    let mut command = Command::new(exe);
    command
        .arg("demo-backend")
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--name")
        .arg(name);
    spawn_logged(&mut command, output, format!("cannot start backend {name}"))
}

/// Starts `command` in a process group of its own, killed on drop, with no stdin and its
/// stdout and stderr in `log`; `what` names it in the error.
fn spawn_logged(command: &mut Command, log: File, what: String) -> Result<Child, DemoError> {
    command
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(io_err("cannot duplicate a log file"))?,
        )
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(io_err(what))
}

#[cfg(test)]
mod tests;
