//! The unprivileged multi-process tier: the whole daemon suite under `seesaw_watchdog` on
//! loopback, in a temp dir, with two `seesaw demo-backend` processes behind one VIP.
//!
//! Layout: VIP `127.0.0.1:P`, backends `127.0.0.2:P` (`be1`) and `127.0.0.3:P` (`be2`), the ECU on
//! another free port. Suites in one test binary run one at a time (a process-wide lock): the
//! tests measure detection and restart times, which two suites sharing two cores would skew.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::bins;
use crate::cmd::{Output, read_lossy, run};
use crate::config::{ClusterPb, Host, HttpCheck, SeesawCfg, watchdog_cfg, write_atomic};
use crate::error::LabError;
use crate::http::{self, HttpError, Response};
use crate::netns::{MARKER_VAR, random_id};
use crate::procs::{ProcId, Supervisor, find_daemon};
use crate::shell_view::{DestinationRow, destinations};
use crate::wait::{wait_tcp_here, wait_until};

/// The vserver every suite configures.
pub const VSERVER: &str = "web@demo";

/// How long the suite may take to start serving through the VIP (five debug-build daemons).
const START_WITHIN: Duration = Duration::from_secs(30);

/// How long one shell command may take.
const SHELL_WITHIN: Duration = Duration::from_secs(15);

/// Serialises suites within one test binary.
static SERIAL: Mutex<()> = Mutex::new(());

/// One backend of the suite.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The name it answers with (`be1`, `be2`).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its fqdn in cluster.pb.
    pub fqdn: String,
    proc: ProcId,
}

/// A running suite. Dropping it stops every process; if the test is failing, every captured log
/// is printed first.
#[derive(Debug)]
pub struct LoopbackSuite {
    vip: SocketAddr,
    backends: Vec<Backend>,
    cluster: ClusterPb,
    /// `None` until the backends are up.
    watchdog: Option<ProcId>,
    sup: Supervisor,
    /// False until `start` returns; a suite that failed to start prints its logs on drop.
    started: bool,
    dir: tempfile::TempDir,
    // Released last, after Drop has stopped every process.
    _serial: MutexGuard<'static, ()>,
}

impl LoopbackSuite {
    /// Writes the configs, starts both backends and the watchdog, and waits (at most 30 s) until
    /// every backend has answered a request through the VIP.
    pub fn start() -> Result<Self, LabError> {
        bins::require_all()?;
        // A test that panicked while holding the lock poisoned it; the lock only orders suites,
        // so the next one may proceed.
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = random_id();
        let dir = tempfile::Builder::new()
            .prefix(&format!("sslo-{id}-"))
            .tempdir()
            .map_err(LabError::io("creating the suite temp dir"))?;
        for sub in ["run", "config", "log", "procs"] {
            std::fs::create_dir_all(dir.path().join(sub))
                .map_err(LabError::io(format!("creating {sub} dir")))?;
        }
        let mut sup = Supervisor::new(
            dir.path().join("procs"),
            (MARKER_VAR.to_owned(), format!("lo-{id}")),
        );
        sup.watch_log_dir(dir.path().join("log"));

        let port = free_port_on_all(&[
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(127, 0, 0, 2),
            Ipv4Addr::new(127, 0, 0, 3),
        ])?;
        let ecu_port = free_port_on_all(&[Ipv4Addr::LOCALHOST])?;
        let vip = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let cluster = ClusterPb {
            seesaw_vip: Host::new("seesaw-vip.demo.", "127.0.0.254/8"),
            node: Host::new("lb1.demo.", "127.0.0.1/8"),
            vserver: VSERVER.to_owned(),
            entry: Host::new("web.demo.", "127.0.0.1/32"),
            port,
            scheduler: "WRR".to_owned(),
            check: HttpCheck {
                interval: 1,
                timeout: 1,
                retries: Some(1),
                send: "/healthz".to_owned(),
                code: 200,
            },
            backends: vec![
                (Host::new("be1.demo.", "127.0.0.2/8"), 1),
                (Host::new("be2.demo.", "127.0.0.3/8"), 1),
            ],
        };
        let seesaw_cfg = SeesawCfg {
            cluster: "demo".to_owned(),
            node_ipv4: Ipv4Addr::LOCALHOST,
            iface: "lo".to_owned(),
            ecu_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, ecu_port)),
        };
        let config = dir.path().join("config");
        write_atomic(&config, "seesaw.cfg", &seesaw_cfg.render())?;
        write_atomic(&config, "cluster.pb", &cluster.render())?;
        write_atomic(&config, "watchdog.cfg", &watchdog_cfg()?)?;

        let seesaw = bins::binary("seesaw")?;
        let watchdog = bins::binary("seesaw_watchdog")?;
        // From here on every process belongs to `suite`, whose Drop stops them on any error.
        let mut suite = Self {
            vip,
            backends: Vec::new(),
            cluster,
            watchdog: None,
            sup,
            started: false,
            dir,
            _serial: serial,
        };
        for (i, host) in [(1, 2), (2, 3)] {
            let name = format!("be{i}");
            let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), port));
            let mut cmd = Command::new(&seesaw);
            cmd.args([
                "demo-backend",
                "--listen",
                &addr.to_string(),
                "--name",
                &name,
            ]);
            let proc = suite.sup.spawn(&name, cmd)?;
            suite.backends.push(Backend {
                fqdn: format!("{name}.demo."),
                name,
                addr,
                proc,
            });
        }
        // The backends must be up before the first health check, or the suite starts with both
        // marked down and the first requests are refused for a check interval.
        for b in &suite.backends {
            wait_tcp_here(b.addr, Duration::from_secs(10))?;
        }
        suite.watchdog = Some(suite.spawn_watchdog(&watchdog)?);
        // Serving means every backend has answered through the VIP at least once: before that
        // the first health checks may not have passed yet, which is start-up, not behaviour.
        let mut seen = BTreeSet::new();
        wait_until(
            "every backend to answer through the VIP",
            START_WITHIN,
            || {
                if let Ok(r) = suite.get() {
                    seen.insert(r.text());
                }
                suite.backends.iter().all(|b| seen.contains(&b.name))
            },
        )?;
        suite.started = true;
        Ok(suite)
    }

    /// The VIP (`127.0.0.1:P`).
    pub fn vip(&self) -> SocketAddr {
        self.vip
    }

    /// The backends, `be1` first.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// The run dir (engine and ncc sockets).
    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The config dir.
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// The log dir the watchdog writes `seesaw_<name>.log` into.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The current content of `<log>/seesaw_<service>.log`.
    pub fn service_log(&self, service: &str) -> String {
        read_lossy(&self.log_dir().join(format!("seesaw_{service}.log")))
    }

    /// One HTTP/1.0 `GET /` through the VIP with a 2 s bound.
    pub fn get(&self) -> Result<Response, HttpError> {
        http::get(self.vip, "/", Duration::from_secs(2))
    }

    /// Runs `seesaw --run-dir <run> -c <command>`.
    pub fn shell(&self, command: &str) -> Result<Output, LabError> {
        let mut cmd = Command::new(bins::binary("seesaw")?);
        cmd.arg("--run-dir")
            .arg(self.run_dir())
            .args(["-c", command])
            .env("SEESAW_RUN_DIR", self.run_dir())
            .env("SEESAW_CONFIG_DIR", self.config_dir());
        run(cmd, SHELL_WITHIN)
    }

    /// Runs `show vservers web@demo` and parses its destination table.
    pub fn destinations(&self) -> Result<(Output, Vec<DestinationRow>), LabError> {
        let out = self.shell(&format!("show vservers {VSERVER}"))?;
        let rows = destinations(&out.stdout);
        Ok((out, rows))
    }

    /// SIGKILLs backend `i` (0 = `be1`).
    pub fn kill_backend(&mut self, i: usize) -> Result<(), LabError> {
        let proc = self.backends[i].proc;
        self.sup.kill(proc)
    }

    /// Pids of live `seesaw_<service>` processes of this suite (found by argv[0] and the run dir
    /// in their environment).
    pub fn daemon_pids(&self, service: &str) -> Vec<i32> {
        let run = self.run_dir();
        find_daemon(
            &format!("seesaw_{service}"),
            "SEESAW_RUN_DIR",
            &run.to_string_lossy(),
        )
    }

    fn spawn_watchdog(&mut self, binary: &Path) -> Result<ProcId, LabError> {
        let mut cmd = Command::new(binary);
        for (var, flag, path) in [
            ("SEESAW_RUN_DIR", "--run-dir", self.run_dir()),
            ("SEESAW_CONFIG_DIR", "--config-dir", self.config_dir()),
            ("SEESAW_LOG_DIR", "--log-dir", self.log_dir()),
        ] {
            cmd.env(var, &path).arg(flag).arg(&path);
        }
        cmd.env("RUST_LOG", "info").env_remove("NOTIFY_SOCKET");
        self.sup.spawn("watchdog", cmd)
    }

    /// The watchdog's pid.
    pub fn watchdog_pid(&self) -> Option<u32> {
        self.watchdog.map(|w| self.sup.pid(w))
    }

    /// kill -9 of the watchdog (its children keep running).
    pub fn kill_watchdog(&mut self) -> Result<(), LabError> {
        match self.watchdog {
            Some(w) => self.sup.kill(w),
            None => Ok(()),
        }
    }

    /// Starts a watchdog again, as systemd does after the first one died: it adopts the
    /// children still running.
    pub fn restart_watchdog(&mut self) -> Result<(), LabError> {
        let binary = bins::binary("seesaw_watchdog")?;
        self.watchdog = Some(self.spawn_watchdog(&binary)?);
        Ok(())
    }

    /// Whether the watchdog still runs.
    pub fn watchdog_running(&mut self) -> bool {
        self.watchdog.is_some_and(|w| self.sup.is_running(w))
    }

    /// The cluster.pb the suite wrote, for tests that change and rewrite it.
    pub fn cluster(&self) -> &ClusterPb {
        &self.cluster
    }

    /// Rewrites cluster.pb from `cluster` (atomically) and remembers it.
    pub fn write_cluster(&mut self, cluster: ClusterPb) -> Result<(), LabError> {
        write_atomic(&self.config_dir(), "cluster.pb", &cluster.render())?;
        self.cluster = cluster;
        Ok(())
    }

    /// Writes arbitrary text as cluster.pb (for invalid-config tests).
    pub fn write_cluster_text(&self, text: &str) -> Result<(), LabError> {
        write_atomic(&self.config_dir(), "cluster.pb", text)
    }

    /// The suite's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for LoopbackSuite {
    fn drop(&mut self) {
        self.sup.shutdown();
        if std::thread::panicking() || !self.started {
            self.sup.dump_logs();
        }
    }
}

/// A port that is free on every address in `addrs` right now. Ports come from the kernel's
/// ephemeral allocator for the first address and are re-checked on the others.
fn free_port_on_all(addrs: &[Ipv4Addr]) -> Result<u16, LabError> {
    for _ in 0..50 {
        let first =
            TcpListener::bind((addrs[0], 0)).map_err(LabError::io("binding a probe port"))?;
        let port = first
            .local_addr()
            .map_err(LabError::io("reading a probe port"))?
            .port();
        if addrs[1..]
            .iter()
            .all(|&a| TcpListener::bind((a, port)).is_ok())
        {
            return Ok(port);
        }
    }
    Err(LabError::NoFreePort(
        addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    ))
}
