//! The async orchestration: one task per service that waits for its dependency to be READY,
//! spawns the child, listens on the child's notify socket, restarts it with backoff after an
//! exit, and on shutdown stops it once every dependent is down (SIGTERM, then SIGKILL).
//!
//! Coordination is by channels, not shared locks: each service publishes its [`ServiceStatus`]
//! on a `watch` channel (dependents wait on `ready`, the top level on `ever_ready`, SIGUSR1 reads
//! it) and cancels its `stopped` token once it will never run again.
//!
//! A service waits for its dependency to be ready before *every* start, including restarts; a
//! dependency's restart does not restart its running dependents (Seesaw does not either).
//!
//! Children outlive the watchdog: a kill -9 of the watchdog leaves them serving, and a restarted
//! watchdog **adopts** them instead of starting duplicates. Each start writes
//! `<run>/watchdog/<name>.pid` (pid and the kernel's start time of the process, so a reused pid
//! is never mistaken for the child); at start the watchdog opens a pidfd for every live child
//! named there, watches it for exit like a child of its own, and stops it in order at shutdown.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use chrono::Local;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::net::UnixDatagram;
use tokio::process::Child;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{ServiceConfig, WatchdogConfig};
use crate::policy::RestartPolicy;
use crate::spawn::{self, SpawnSpec};
pub use crate::status::ServiceStatus;
use crate::status::StatusWriter;

/// How often a service blocked on its dependency says so.
const WAIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The watchdog's directories and its SIGUSR1 trigger.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The run directory; notify sockets live in `<run_dir>/watchdog/`.
    pub run_dir: PathBuf,
    /// The configuration directory, passed on to children as `SEESAW_CONFIG_DIR`.
    pub config_dir: PathBuf,
    /// `--log-dir`, if given: children's output goes there (else `<run_dir>/log`). Children do not
    /// get `SEESAW_LOG_DIR`: their stderr is that file already.
    pub log_dir: Option<PathBuf>,
    /// Fires on SIGUSR1: log every service's state.
    pub dump: Arc<Notify>,
}

impl RunContext {
    /// The context for the directories given on the command line.
    pub fn new(args: seesaw_common::args::CommonArgs, dump: Arc<Notify>) -> Self {
        Self {
            run_dir: args.run_dir,
            config_dir: args.config_dir,
            log_dir: args.log_dir,
            dump,
        }
    }
}

/// Why the watchdog could not supervise.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    /// The log or notify directory could not be created.
    #[error("cannot create directory {path}: {cause}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        cause: io::Error,
    },
    /// A per-service task panicked; the watchdog stopped everything rather than run half-blind.
    #[error("a service supervisor task failed: {0}")]
    TaskFailed(String),
}

/// Supervises every service until `shutdown` is cancelled and all children are reaped.
pub(crate) async fn supervise(
    config: WatchdogConfig,
    ctx: RunContext,
    shutdown: CancellationToken,
) -> Result<(), WatchdogError> {
    let env = Arc::new(ChildEnv::new(&ctx));
    for dir in [&env.log_dir, &env.notify_dir] {
        fs::create_dir_all(dir).map_err(|cause| WatchdogError::CreateDir {
            path: dir.clone(),
            cause,
        })?;
    }

    // Channels first, so each runner can be handed its dependency's status and its
    // dependents' `stopped` tokens. `config.services` is in start order.
    let mut senders = Vec::new();
    let mut statuses: Vec<(String, watch::Receiver<ServiceStatus>)> = Vec::new();
    let mut stopped_tokens = Vec::new();
    for svc in &config.services {
        let (tx, rx) = watch::channel(ServiceStatus::default());
        senders.push(tx);
        statuses.push((svc.name.clone(), rx));
        stopped_tokens.push((svc.name.clone(), CancellationToken::new()));
    }
    let find = |name: &str| {
        statuses
            .iter()
            .position(|(n, _)| n == name)
            .expect("the config validator checked every dependency exists")
    };
    // Every runner pokes this after changing its status; the loop below then rewrites the status
    // file (several changes in a row coalesce into one write).
    let changed = Arc::new(Notify::new());
    let mut status_file = StatusWriter::new(&env.notify_dir);
    let mut runners = JoinSet::new();
    for (svc, (status, (_, stopped))) in config
        .services
        .iter()
        .zip(senders.into_iter().zip(stopped_tokens.iter().cloned()))
    {
        let dependency = svc
            .dependency
            .as_deref()
            .map(|d| (d.to_owned(), statuses[find(d)].1.clone()));
        let dependents = config
            .services
            .iter()
            .filter(|other| other.dependency.as_deref() == Some(svc.name.as_str()))
            .map(|other| stopped_tokens[find(&other.name)].clone())
            .collect();
        let runner = Runner {
            svc: svc.clone(),
            env: env.clone(),
            status,
            dependency,
            dependents,
            stopped,
            shutdown: shutdown.clone(),
            changed: changed.clone(),
        };
        runners.spawn(runner.run());
    }
    let order: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    info!(services = ?order, log_dir = %env.log_dir.display(), "supervising");

    let mut ready_rxs: Vec<_> = statuses.iter().map(|(_, rx)| rx.clone()).collect();
    let mut announced = false;
    // systemd's WatchdogSec=: keep-alives from this loop, so a wedged supervisor gets restarted.
    let ping_every = seesaw_common::ready::watchdog_ping_interval();
    let mut ping = tokio::time::interval(ping_every.unwrap_or(Duration::from_secs(3600)));
    if let Some(every) = ping_every {
        info!(
            every_ms = every.as_millis(),
            "sending systemd watchdog keep-alives"
        );
    }
    let mut failure = None;
    write_status(&mut status_file, &statuses);
    loop {
        tokio::select! {
            joined = runners.join_next() => match joined {
                None => break,
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    error!(error = %e, "a service supervisor task failed; stopping everything");
                    failure = Some(e.to_string());
                    shutdown.cancel();
                }
            },
            () = all_ever_ready(&mut ready_rxs), if !announced => {
                announced = true;
                info!("all services ready");
                seesaw_common::ready::notify_ready();
            }
            () = ctx.dump.notified() => dump_state(&statuses),
            () = changed.notified() => write_status(&mut status_file, &statuses),
            _ = ping.tick(), if ping_every.is_some() => seesaw_common::ready::notify_watchdog(),
        }
    }
    info!("all services stopped");
    status_file.remove();
    match failure {
        Some(f) => Err(WatchdogError::TaskFailed(f)),
        None => Ok(()),
    }
}

/// Resolves once every service has been ready at least once (the watchdog's own readiness).
async fn all_ever_ready(rxs: &mut [watch::Receiver<ServiceStatus>]) {
    for rx in rxs {
        if rx.wait_for(|s| s.ever_ready).await.is_err() {
            // The runner is gone (shutdown): never announce readiness now.
            std::future::pending::<()>().await;
        }
    }
}

/// Rewrites the status file from every service's current status.
fn write_status(w: &mut StatusWriter, statuses: &[(String, watch::Receiver<ServiceStatus>)]) {
    let now: Vec<(&str, ServiceStatus)> = statuses
        .iter()
        .map(|(name, rx)| (name.as_str(), rx.borrow().clone()))
        .collect();
    w.write(&crate::status::render(
        &now,
        Local::now().timestamp_millis(),
    ));
}

/// Logs every service's state and passes SIGUSR1 on, so each daemon logs its own state too.
fn dump_state(statuses: &[(String, watch::Receiver<ServiceStatus>)]) {
    for (name, rx) in statuses {
        let s = rx.borrow();
        if let Some(pid) = s.pid.and_then(|p| rustix::process::Pid::from_raw(p as i32))
            && let Err(e) = rustix::process::kill_process(pid, rustix::process::Signal::USR1)
        {
            warn!(service = %name, error = %e, "cannot pass SIGUSR1 on");
        }
        info!(
            service = %name,
            pid = ?s.pid,
            since = ?s.since.map(|t| t.to_rfc3339()),
            failures = s.failures,
            restarts = s.restarts,
            ready = s.ready,
            "state"
        );
    }
}

// === impl ChildEnv ===

/// Directories every child shares.
#[derive(Debug)]
struct ChildEnv {
    run_dir: PathBuf,
    config_dir: PathBuf,
    /// Where the per-service output files go.
    log_dir: PathBuf,
    /// Where the notify sockets go.
    notify_dir: PathBuf,
}

impl ChildEnv {
    fn new(ctx: &RunContext) -> Self {
        Self {
            run_dir: ctx.run_dir.clone(),
            config_dir: ctx.config_dir.clone(),
            log_dir: ctx
                .log_dir
                .clone()
                .unwrap_or_else(|| ctx.run_dir.join("log")),
            notify_dir: ctx.run_dir.join("watchdog"),
        }
    }
}

// === impl Runner ===

/// Supervises one service for the life of the watchdog.
struct Runner {
    svc: ServiceConfig,
    env: Arc<ChildEnv>,
    /// Published state; dropped when the runner ends.
    status: watch::Sender<ServiceStatus>,
    /// The dependency's name and status: we start only while it is ready.
    dependency: Option<(String, watch::Receiver<ServiceStatus>)>,
    /// Cancelled when each dependent is down for good; we stop only after all of them.
    dependents: Vec<(String, CancellationToken)>,
    /// Ours: cancelled (also on panic, via a drop guard) once this service will not run again.
    stopped: CancellationToken,
    shutdown: CancellationToken,
    /// Poked after every status change, for the status file.
    changed: Arc<Notify>,
}

/// A started or adopted child and its readiness socket.
struct Running {
    child: Proc,
    pid: u32,
    notify: UnixDatagram,
    notify_path: PathBuf,
}

/// A process we supervise: our own child, or one a previous watchdog started (adopted), which
/// we can watch through a pidfd but not reap.
enum Proc {
    Child(Child),
    Adopted(tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>),
}

impl Proc {
    /// Waits for the process to exit: its status for our own child, `None` for an adopted one
    /// (its new parent reaps it).
    async fn wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self {
            Self::Child(c) => c.wait().await.map(Some),
            Self::Adopted(fd) => {
                // A pidfd becomes readable when its process exits.
                let _ = fd.readable().await?;
                Ok(None)
            }
        }
    }
}

/// Why a start failed, with the path involved.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("cannot bind notify socket {path}: {source}")]
    Notify { path: PathBuf, source: io::Error },
    #[error("cannot open log file in {path}: {source}")]
    Log { path: PathBuf, source: io::Error },
    #[error("cannot spawn {path}: {source}")]
    Spawn { path: PathBuf, source: io::Error },
}

impl Runner {
    async fn run(mut self) {
        let _stopped = self.stopped.clone().drop_guard();
        let mut policy = RestartPolicy::default();
        let mut first = true;
        // A child a previous watchdog left running is adopted, not duplicated.
        let mut adopted = self.adopt();
        loop {
            if adopted.is_none() && !self.wait_for_dependency().await {
                break;
            }
            if !first {
                self.publish(|s| s.restarts += 1);
            }
            first = false;
            policy.started(Instant::now());
            let started = match adopted.take() {
                Some(running) => Ok(running),
                None => self.start(),
            };
            let (success, outcome) = match started {
                Err(e) => (false, e.to_string()),
                Ok(running) => match self.watch(running).await {
                    None => break,
                    Some(Ok(Some(status))) => (status.success(), status.to_string()),
                    Some(Ok(None)) => (false, "exited (adopted: status unknown)".to_owned()),
                    Some(Err(e)) => (false, format!("wait failed: {e}")),
                },
            };
            let delay = policy.ended(Instant::now(), success);
            self.publish(|s| {
                s.pid = None;
                s.since = None;
                s.ready = false;
                s.failures = policy.failures();
            });
            let name = &self.svc.name;
            let failures = policy.failures();
            if success {
                info!(service = %name, %outcome, ?delay, "service exited; restarting after delay");
            } else {
                warn!(service = %name, %outcome, failures, ?delay, "service failed; restarting after delay");
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.shutdown.cancelled() => break,
            }
        }
        info!(service = %self.svc.name, "stopped");
    }

    /// Changes the published status and says so to the status file writer.
    fn publish(&self, f: impl FnOnce(&mut ServiceStatus)) {
        self.status.send_modify(f);
        self.changed.notify_one();
    }

    /// Waits until the dependency (if any) is ready. Returns false on shutdown.
    async fn wait_for_dependency(&mut self) -> bool {
        let Some((dep, rx)) = &mut self.dependency else {
            return true;
        };
        if rx.borrow().ready {
            return true;
        }
        let name = &self.svc.name;
        info!(service = %name, dependency = %dep, "waiting for dependency to be ready");
        let mut reminder =
            tokio::time::interval_at(Instant::now() + WAIT_LOG_INTERVAL, WAIT_LOG_INTERVAL);
        loop {
            // Only a bool leaves the select: the watch guard inside `wait_for`'s result must
            // not be held across an await.
            let dependency_alive = tokio::select! {
                r = rx.wait_for(|s| s.ready) => r.is_ok(),
                _ = reminder.tick() => {
                    info!(service = %name, dependency = %dep, "still waiting for dependency to be ready");
                    continue;
                }
                () = self.shutdown.cancelled() => return false,
            };
            if dependency_alive {
                return true;
            }
            // The dependency's runner ended, which happens only during shutdown.
            self.shutdown.cancelled().await;
            return false;
        }
    }

    fn start(&self) -> Result<Running, StartError> {
        let name = &self.svc.name;
        let notify_path = self.env.notify_dir.join(format!("{name}.notify"));
        let owner = self.svc.user.as_ref().map(|u| u.uid);
        let notify = bind_notify(&notify_path, owner).map_err(|source| StartError::Notify {
            path: notify_path.clone(),
            source,
        })?;
        let (output, log_path) =
            open_log(&self.env.log_dir, name).map_err(|source| StartError::Log {
                path: self.env.log_dir.clone(),
                source,
            })?;
        let env: Vec<(&'static str, OsString)> = vec![
            ("NOTIFY_SOCKET", notify_path.clone().into()),
            ("SEESAW_RUN_DIR", self.env.run_dir.clone().into()),
            ("SEESAW_CONFIG_DIR", self.env.config_dir.clone().into()),
        ];
        // Children's stderr already lands in their per-service file; a SEESAW_LOG_DIR inherited
        // from our own environment would make them write a second copy of every line.
        // systemd's keep-alive request is for the watchdog, not its children.
        let env_remove = vec!["SEESAW_LOG_DIR", "WATCHDOG_USEC", "WATCHDOG_PID"];
        let arg0 = format!("seesaw_{name}");
        let child = spawn::spawn(SpawnSpec {
            binary: &self.svc.binary,
            arg0: &arg0,
            args: &self.svc.args,
            env,
            env_remove,
            output,
            run_as: self.svc.user.as_ref().map(|u| (u.uid, u.gid)),
            // Capabilities can only be chosen by a root watchdog; otherwise the child has none.
            caps: self
                .svc
                .capabilities
                .as_deref()
                .filter(|_| rustix::process::geteuid().is_root())
                .map(|caps| {
                    crate::caps::Plan::new(caps, self.svc.user.as_ref().map(|u| (u.uid, u.gid)))
                }),
        })
        .map_err(|source| {
            // Leave no stale socket behind, and say in the service's own log why it is empty.
            let _ = fs::remove_file(&notify_path);
            let note = format!(
                "seesaw_watchdog: cannot spawn {}: {source}\n",
                self.svc.binary.display()
            );
            let _ = OpenOptions::new()
                .append(true)
                .open(&log_path)
                .and_then(|mut f| f.write_all(note.as_bytes()));
            StartError::Spawn {
                path: self.svc.binary.clone(),
                source,
            }
        })?;
        let pid = child
            .id()
            .expect("a child that was never waited on has a pid");
        if let Some(priority) = self.svc.priority {
            set_priority(name, pid, priority);
        }
        self.publish(|s| {
            s.pid = Some(pid);
            s.since = Some(Local::now());
            s.ready = false;
        });
        info!(service = %name, pid, log = %log_path.display(), "started");
        if let Err(e) = seesaw_common::pidfile::write(&self.pid_path(), pid) {
            warn!(service = %name, error = %e, "cannot write the pid file: a restarted watchdog could not adopt this child");
        }
        Ok(Running {
            child: Proc::Child(child),
            pid,
            notify,
            notify_path,
        })
    }

    fn pid_path(&self) -> PathBuf {
        self.env.notify_dir.join(format!("{}.pid", self.svc.name))
    }

    /// The child a previous watchdog started for this service, if its pid file names a process
    /// that is still that child (same kernel start time): watched through a pidfd from now on.
    fn adopt(&self) -> Option<Running> {
        let name = &self.svc.name;
        let path = self.pid_path();
        let Some(pid) = seesaw_common::pidfile::read_live(&path) else {
            let _ = fs::remove_file(&path);
            return None;
        };
        let fd = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)
            .ok_or_else(|| io::Error::other("pid 0"))
            .and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
                    .map_err(io::Error::from)
            })
            .and_then(watch_pidfd);
        let fd = match fd {
            Ok(fd) => fd,
            Err(e) => {
                warn!(service = %name, pid, error = %e, "cannot adopt the running child; starting a new one");
                return None;
            }
        };
        let notify_path = self.env.notify_dir.join(format!("{name}.notify"));
        let owner = self.svc.user.as_ref().map(|u| u.uid);
        let notify = match bind_notify(&notify_path, owner) {
            Ok(n) => n,
            Err(e) => {
                warn!(service = %name, error = %e, "cannot bind the notify socket of an adopted child");
                return None;
            }
        };
        // It was serving when its old watchdog died: it is ready.
        self.publish(|s| {
            s.pid = Some(pid);
            s.since = Some(Local::now());
            s.ready = true;
            s.ever_ready = true;
        });
        info!(service = %name, pid, "adopted the running child");
        Some(Running {
            child: Proc::Adopted(fd),
            pid,
            notify,
            notify_path,
        })
    }

    /// Runs until the child exits (`Some`; the status is `None` for an adopted child) or
    /// shutdown stopped it (`None`).
    async fn watch(&self, mut run: Running) -> Option<io::Result<Option<ExitStatus>>> {
        let mut buf = vec![0u8; 4096];
        let mut notify_ok = true;
        let result = loop {
            tokio::select! {
                status = run.child.wait() => break Some(status),
                r = run.notify.recv(&mut buf), if notify_ok => match r {
                    Ok(n) => self.on_notify(&buf[..n]),
                    Err(e) => {
                        // A datagram socket error will not heal; stop polling it rather than spin.
                        warn!(service = %self.svc.name, error = %e, "notify socket failed; readiness is lost for this run");
                        notify_ok = false;
                    }
                },
                () = self.shutdown.cancelled() => break None,
            }
        };
        if result.is_none() {
            self.stop(&mut run.child, run.pid).await;
        }
        drop(run.notify);
        let _ = fs::remove_file(&run.notify_path);
        let _ = fs::remove_file(self.pid_path());
        result
    }

    fn on_notify(&self, datagram: &[u8]) {
        let text = String::from_utf8_lossy(datagram);
        if text.lines().any(|l| l.trim() == "READY=1") && !self.status.borrow().ready {
            info!(service = %self.svc.name, "ready");
            self.publish(|s| {
                s.ready = true;
                s.ever_ready = true;
            });
        }
    }

    /// Shutdown: waits for every dependent to be down, then SIGTERM to the child's process
    /// group, and SIGKILL after `term_timeout`.
    async fn stop(&self, child: &mut Proc, pid: u32) {
        let name = &self.svc.name;
        let dependents_down = async {
            for (dependent, token) in &self.dependents {
                if !token.is_cancelled() {
                    info!(service = %name, %dependent, "waiting for dependent to stop");
                }
                token.cancelled().await;
            }
        };
        tokio::select! {
            status = child.wait() => {
                info!(service = %name, status = ?status, "exited during shutdown");
                return;
            }
            () = dependents_down => {}
        }
        // The child is not reaped yet, so its pid (= its process group id) cannot be reused.
        let pgid = Pid::from_raw(i32::try_from(pid).expect("pids fit in i32"));
        info!(service = %name, pid, timeout = ?self.svc.term_timeout, "stopping: SIGTERM");
        if let Err(e) = killpg(pgid, Signal::SIGTERM) {
            warn!(service = %name, error = %e, "SIGTERM failed");
        }
        let status = match tokio::time::timeout(self.svc.term_timeout, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                warn!(service = %name, pid, "did not stop within term_timeout: SIGKILL");
                if let Err(e) = killpg(pgid, Signal::SIGKILL) {
                    warn!(service = %name, error = %e, "SIGKILL failed");
                }
                child.wait().await
            }
        };
        match status {
            Ok(Some(status)) => info!(service = %name, %status, "stopped child"),
            Ok(None) => info!(service = %name, "stopped adopted child"),
            Err(e) => warn!(service = %name, error = %e, "cannot reap child"),
        }
    }
}

// === helpers ===

/// Registers a pidfd with the runtime, for readiness (= the process exited).
#[allow(
    unsafe_code,
    reason = "AsyncFd::register is unsafe; the invariant holds by construction (below)"
)]
fn watch_pidfd(
    fd: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: an `OwnedFd` is a valid open descriptor that stays open, and refers to the same
    // file description, until it is dropped — which happens only with the `AsyncFd` that owns it.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// Binds a fresh readiness socket, replacing whatever a previous run left behind. The child
/// must be able to write to it, so it is handed to the child's uid when that differs.
fn bind_notify(path: &Path, owner: Option<u32>) -> io::Result<UnixDatagram> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let sock = UnixDatagram::bind(path)?;
    if let Some(uid) = owner {
        std::os::unix::fs::chown(path, Some(uid), None)?;
    }
    Ok(sock)
}

/// Opens `<dir>/seesaw_<name>.log.<YYYYMMDD-HHMMSS>` and points `<dir>/seesaw_<name>.log` at it.
/// The symlink is replaced atomically (new link, then rename) so readers never see it missing.
fn open_log(dir: &Path, name: &str) -> io::Result<(File, PathBuf)> {
    let stamp = Local::now().format("%Y%m%d-%H%M%S");
    let file_name = format!("seesaw_{name}.log.{stamp}");
    let path = dir.join(&file_name);
    // Append: a restart within the same second reuses the file instead of truncating it.
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let link = dir.join(format!("seesaw_{name}.log"));
    let tmp = dir.join(format!(".seesaw_{name}.log.tmp"));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::os::unix::fs::symlink(&file_name, &tmp)?;
    fs::rename(&tmp, &link)?;
    Ok((file, path))
}

/// Applies the configured nice value. Failure (e.g. a negative nice without privilege) is
/// logged, not fatal: the service still runs, just at normal priority.
fn set_priority(name: &str, pid: u32, priority: i32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    let result = match pid {
        Some(pid) => {
            rustix::process::setpriority_process(Some(pid), priority).map_err(io::Error::from)
        }
        None => Err(io::Error::other("invalid pid")),
    };
    if let Err(e) = result {
        warn!(service = %name, priority, error = %e, "cannot set priority");
    }
}
