//! The kernel lab: Debian's kernel booted under QEMU (TCG) with this host's file system shared
//! read-only and a tmpfs overlay on top, so the workspace's binaries, `ipvsadm`, `nft` and `ip`
//! run inside a kernel that has IPVS, IPIP, dummy and 802.1q (this host's kernel has none of
//! them). Recipe and pitfalls: `../shared/reference/kernel-vm.md`.
//!
//! [`Vm::prepare`] unpacks the kernel package (downloaded once with `apt-get download`, or the
//! `.deb` that `SEESAW_VM_KERNEL_DEB` names) and builds a busybox initramfs holding just the
//! modules the lab needs, cached under `<target>/seesaw-vm/<kernel version>/`. [`Vm::run`] boots
//! it, runs one shell script inside (as root, in the guest's own network namespaces), and
//! returns the console output and the script's exit status. A boot costs about 6 s, so callers
//! batch: one boot runs a whole suite.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bins;
use crate::cmd;
use crate::error::LabError;

/// The marker line the guest's init prints after the script, followed by its exit status.
const EXIT_MARKER: &str = "SEESAW-VM-EXIT";
/// Modules loaded at boot, in order (busybox modprobe follows no soft dependencies, so
/// `crc32c_generic` comes before everything that needs `libcrc32c`). Missing ones are skipped.
const MODULES: &[&str] = &[
    "crc32c_generic",
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "overlay",
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_sh",
    "ip_vs_mh",
    "ip_vs_dh",
    "nf_conntrack",
    "nf_nat",
    "nf_tables",
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nft_ct",
    "nft_numgen",
    "nft_hash",
    "nft_reject",
    "nft_reject_inet",
    "nft_fwd_netdev",
    "nft_limit",
    "nft_objref",
    "nft_quota",
    "nf_conntrack_netlink",
    "nfnetlink_queue",
    "xt_ipvs",
    "veth",
    "dummy",
    "bridge",
    "ipip",
    "ip6_tunnel",
    "tunnel4",
    "tunnel6",
    "8021q",
    "af_packet",
];
/// Module directories copied into the initramfs (relative to `lib/modules/<ver>/kernel`).
const MODULE_DIRS: &[&str] = &[
    "net",
    "fs/9p",
    "fs/netfs",
    "fs/fscache",
    "fs/overlayfs",
    "drivers/virtio",
    "drivers/net",
    "lib",
    "crypto",
];

/// Why the kernel lab cannot run on this machine, or `None` when it can: root, QEMU, busybox
/// (static), `depmod`, `cpio`, `dpkg-deb`, `ipvsadm`.
pub fn missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("the kernel lab needs root (network namespaces inside the VM)".into());
    }
    let tools = [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("depmod", "kmod"),
        ("cpio", "cpio"),
        ("dpkg-deb", "dpkg"),
        ("ipvsadm", "ipvsadm"),
    ];
    let absent: Vec<&str> = tools
        .iter()
        .filter(|(tool, _)| which(tool).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    if absent.is_empty() {
        None
    } else {
        Some(format!(
            "the kernel lab needs: apt-get install {}",
            absent.join(" ")
        ))
    }
}

/// The full path of `tool` on `PATH` (plus the sbin directories).
fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// A prepared kernel and initramfs.
#[derive(Debug, Clone)]
pub struct Vm {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs (busybox, modules, `/init`).
    pub initrd: PathBuf,
    /// The kernel version, e.g. `6.1.0-57-amd64`.
    pub version: String,
}

/// What one boot printed and how the script exited.
#[derive(Debug, Clone)]
pub struct VmRun {
    /// The guest console (kernel messages at loglevel 3, then the script's output).
    pub console: String,
    /// The script's exit status (`None`: the marker never appeared, e.g. a kernel panic).
    pub status: Option<i32>,
    /// Boot to power-off.
    pub wall: Duration,
}

fn fail(what: &str, detail: impl std::fmt::Display) -> LabError {
    LabError::Command {
        cmd: what.to_owned(),
        detail: detail.to_string(),
    }
}

/// Runs `c` within `within` and fails with its output unless it succeeds.
fn checked(c: Command, within: Duration) -> Result<cmd::Output, LabError> {
    let shown = cmd::describe(&c);
    let out = cmd::run(c, within)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(fail(
            &shown,
            format!("{}: {}", out.status, out.combined().trim()),
        ))
    }
}

/// The cache directory: `<target>/seesaw-vm`.
fn cache_dir() -> PathBuf {
    bins::profile_dir()
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("seesaw-vm")
}

/// The kernel package: `SEESAW_VM_KERNEL_DEB`, else one already downloaded into the cache, else
/// `apt-get download` of the package `linux-image-amd64` depends on.
fn kernel_deb(cache: &Path) -> Result<PathBuf, LabError> {
    if let Some(p) = std::env::var_os("SEESAW_VM_KERNEL_DEB").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(cache)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with("linux-image-") && n.ends_with(".deb")
                })
            })
            .max()
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    let mut c = Command::new("apt-cache");
    c.args(["depends", "linux-image-amd64"]);
    let deps = checked(c, Duration::from_secs(60))?;
    let pkg = deps
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .ok_or_else(|| {
            fail(
                "apt-cache depends linux-image-amd64",
                "no linux-image dependency",
            )
        })?
        .to_owned();
    let mut c = Command::new("apt-get");
    c.args(["download", &pkg]).current_dir(cache);
    checked(c, Duration::from_secs(600))?;
    find().ok_or_else(|| fail(&format!("apt-get download {pkg}"), "no .deb appeared"))
}

/// The guest's `/init`: modules, the shared root with its overlay, the script, power-off.
fn init_script() -> String {
    let mut s = String::from(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         export PATH=/bin\n\
         mount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs dev /dev\n",
    );
    for m in MODULES {
        let _ = writeln!(s, "modprobe {m} 2>/dev/null");
    }
    s.push_str(
        "mkdir -p /host /rw /merged\n\
         mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose hostroot /host || poweroff -f\n\
         mount -t tmpfs -o size=2g tmpfs /rw\nmkdir -p /rw/up /rw/work\n\
         mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/up,workdir=/rw/work /merged || poweroff -f\n\
         mount -t proc proc /merged/proc\nmount -t sysfs sysfs /merged/sys\n\
         mount -t devtmpfs dev /merged/dev\nmkdir -p /merged/dev/pts /merged/dev/shm\n\
         mount -t devpts devpts /merged/dev/pts\nmount -t tmpfs tmpfs /merged/dev/shm\n\
         mount -t tmpfs tmpfs /merged/tmp\nmount -t tmpfs tmpfs /merged/run\n\
         mkdir -p /merged/run/netns /merged/run/lock\n\
         out=$(sed -n 's/.*seesaw.out=\\([^ ]*\\).*/\\1/p' /proc/cmdline)\n\
         mkdir -p /merged$out\n\
         mount -t 9p -o trans=virtio,version=9p2000.L out /merged$out || poweroff -f\n\
         ip link set lo up 2>/dev/null\n\
         chroot /merged /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
         HOME=/root TERM=dumb /bin/sh $out/run.sh\n\
         echo \"SEESAW-VM-EXIT $?\"\n\
         poweroff -f\n",
    );
    s
}

impl Vm {
    /// Unpacks the kernel and builds the initramfs, or reuses the cached ones. Safe to call from
    /// several test processes at once (each builds in its own directory, the first rename wins).
    pub fn prepare() -> Result<Self, LabError> {
        let cache = cache_dir();
        std::fs::create_dir_all(&cache).map_err(LabError::io("creating the VM cache"))?;
        let deb = kernel_deb(&cache)?;
        let stem = deb
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ready = cache.join(&stem);
        if let Some(vm) = Self::cached(&ready) {
            return Ok(vm);
        }
        let work = cache.join(format!("building-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let unpacked = work.join("deb");
        std::fs::create_dir_all(&unpacked).map_err(LabError::io("creating the build dir"))?;
        let mut c = Command::new("dpkg-deb");
        c.arg("-x").arg(&deb).arg(&unpacked);
        checked(c, Duration::from_secs(300))?;
        let modules = unpacked.join("lib/modules");
        let version = std::fs::read_dir(&modules)
            .map_err(LabError::io("reading the package's lib/modules"))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .ok_or_else(|| fail("dpkg-deb -x", "no lib/modules/<version> in the package"))?;
        let root = work.join("initramfs");
        let kmods = root.join("lib/modules").join(&version);
        std::fs::create_dir_all(kmods.join("kernel")).map_err(LabError::io("initramfs dirs"))?;
        for d in MODULE_DIRS {
            let from = modules.join(&version).join("kernel").join(d);
            if !from.exists() {
                continue;
            }
            let to = kmods.join("kernel").join(d);
            std::fs::create_dir_all(to.parent().unwrap_or(&to))
                .map_err(LabError::io("initramfs dirs"))?;
            let mut c = Command::new("cp");
            c.arg("-a").arg(&from).arg(&to);
            checked(c, Duration::from_secs(120))?;
        }
        for f in [
            "modules.order",
            "modules.builtin",
            "modules.builtin.modinfo",
        ] {
            let from = modules.join(&version).join(f);
            if from.exists() {
                std::fs::copy(&from, kmods.join(f)).map_err(LabError::io("copying modules.*"))?;
            }
        }
        let mut c = Command::new("depmod");
        c.arg("-b").arg(&root).arg(&version);
        checked(c, Duration::from_secs(120))?;
        for d in ["bin", "sbin", "proc", "sys", "dev", "etc"] {
            std::fs::create_dir_all(root.join(d)).map_err(LabError::io("initramfs dirs"))?;
        }
        let busybox = which("busybox").ok_or_else(|| fail("busybox", "not installed"))?;
        std::fs::copy(&busybox, root.join("bin/busybox")).map_err(LabError::io("busybox"))?;
        std::os::unix::fs::symlink("busybox", root.join("bin/sh"))
            .map_err(LabError::io("/bin/sh"))?;
        std::os::unix::fs::symlink("../bin/busybox", root.join("sbin/modprobe"))
            .map_err(LabError::io("/sbin/modprobe"))?;
        let init = root.join("init");
        std::fs::write(&init, init_script()).map_err(LabError::io("/init"))?;
        std::fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(LabError::io("/init mode"))?;
        let out = work.join("out");
        std::fs::create_dir_all(&out).map_err(LabError::io("VM output dir"))?;
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("find . | cpio -o -H newc --quiet | gzip -1 > ../out/initrd.gz")
            .current_dir(&root);
        checked(c, Duration::from_secs(300))?;
        let vmlinuz = unpacked.join("boot").join(format!("vmlinuz-{version}"));
        std::fs::copy(&vmlinuz, out.join("vmlinuz")).map_err(LabError::io("copying vmlinuz"))?;
        std::fs::write(out.join("version"), &version).map_err(LabError::io("version"))?;
        // The first builder to finish wins; a loser's rename fails and it uses the winner's.
        let _ = std::fs::rename(&out, &ready);
        let _ = std::fs::remove_dir_all(&work);
        Self::cached(&ready).ok_or_else(|| fail("preparing the VM", "the cache is incomplete"))
    }

    fn cached(dir: &Path) -> Option<Self> {
        let version = std::fs::read_to_string(dir.join("version")).ok()?;
        let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initrd.gz"));
        (kernel.is_file() && initrd.is_file()).then_some(Self {
            kernel,
            initrd,
            version,
        })
    }

    /// Boots the VM, runs `script` (POSIX sh, as root, with `$SEESAW_VM_OUT` naming a writable
    /// directory shared with the host) and powers off. Fails only when QEMU cannot run or the
    /// boot exceeds `within`; the script's own failure is in [`VmRun::status`].
    pub fn run(&self, script: &str, within: Duration) -> Result<VmRun, LabError> {
        let out = tempfile::Builder::new()
            .prefix("seesaw-vm-")
            .tempdir()
            .map_err(LabError::io("creating the VM's shared dir"))?;
        let out_path = out.path().to_string_lossy().into_owned();
        let body = format!("export SEESAW_VM_OUT={out_path}\ncd /\n{script}\n");
        std::fs::write(out.path().join("run.sh"), body).map_err(LabError::io("run.sh"))?;
        let console_path = out.path().join("console.log");
        let console = std::fs::File::create(&console_path).map_err(LabError::io("console"))?;
        let mut c = Command::new("qemu-system-x86_64");
        c.args(["-accel", "tcg,thread=multi", "-smp", "2", "-m", "2048"])
            .args(["-nographic", "-no-reboot", "-nic", "none"])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .args([
                "-virtfs",
                "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            ])
            .arg("-virtfs")
            .arg(format!(
                "local,path={out_path},mount_tag=out,security_model=none,multidevs=remap"
            ))
            .arg("-append")
            .arg(format!(
                "console=ttyS0 panic=-1 loglevel=3 seesaw.out={out_path}"
            ))
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = c.spawn().map_err(|source| LabError::Spawn {
            cmd: "qemu-system-x86_64".into(),
            source,
        })?;
        let status = loop {
            if let Some(s) = child.try_wait().map_err(LabError::io("waiting for QEMU"))? {
                break s;
            }
            if start.elapsed() >= within {
                let _ = child.kill();
                let _ = child.wait();
                let text = cmd::read_lossy(&console_path);
                let tail: String = tail_lines(&text, 60);
                return Err(fail(
                    "the VM",
                    format!("still running after {within:?}; console tail:\n{tail}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let wall = start.elapsed();
        let console = cmd::read_lossy(&console_path);
        if !status.success() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(fail(
                "qemu-system-x86_64",
                format!("{status}: {}\n{}", err.trim(), tail_lines(&console, 40)),
            ));
        }
        let status = console
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(EXIT_MARKER))
            .and_then(|s| s.trim().parse().ok());
        Ok(VmRun {
            console,
            status,
            wall,
        })
    }
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The environment variable that tells a test binary it runs inside the kernel lab.
pub const IN_VM: &str = "SEESAW_IN_VM";

/// Whether this process runs inside the kernel lab (a guest test).
pub fn in_guest() -> bool {
    std::env::var_os(IN_VM).is_some()
}

/// Whether a host test may boot the kernel lab here: not inside the guest (where the guest side
/// runs instead) and nothing [`missing`] (said on stderr as why the test skips).
#[allow(
    clippy::print_stderr,
    reason = "the skip notice is for the person running the tests"
)]
pub fn host_can_boot() -> bool {
    if in_guest() {
        return false;
    }
    if let Some(why) = missing() {
        eprintln!("skipping: {why}");
        return false;
    }
    true
}

/// Whether this kernel has IPVS (`/proc/net/ip_vs`).
pub fn ipvs_here() -> bool {
    Path::new("/proc/net/ip_vs").exists()
}

/// Boots the kernel lab once and runs this test binary's ignored tests matching `filter`
/// inside it (`--ignored --test-threads 1 --nocapture`), as the guest side of a host test.
/// Prints the guest's output and the wall time; panics with the console's tail unless every
/// guest test passed. Returns the guest's output.
#[allow(
    clippy::print_stdout,
    reason = "the guest's output is for the person running the tests"
)]
pub fn run_guest_tests(filter: &str, within: Duration) -> String {
    bins::require_all().unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let vm = Vm::prepare().unwrap_or_else(|e| panic!("preparing the kernel lab: {e}"));
    let exe = std::env::current_exe().expect("the test binary");
    let script = format!(
        "cd {}\nexport {IN_VM}=1 RUST_BACKTRACE=1 SEESAW_LAB_PROFILE={}\n\
         {} --ignored --test-threads 1 --nocapture {filter} 2>&1\n",
        bins::workspace_dir().display(),
        std::env::var("SEESAW_LAB_PROFILE").unwrap_or_else(|_| "debug".into()),
        exe.display(),
    );
    let run = vm
        .run(&script, within)
        .unwrap_or_else(|e| panic!("the kernel lab: {e}"));
    let guest = run
        .console
        .lines()
        .skip_while(|l| !l.starts_with("running "))
        .collect::<Vec<_>>()
        .join("\n");
    println!("--- kernel lab ({}), guest output:\n{guest}", vm.version);
    println!(
        "kernel lab: boot + guest tests {:.1} s (prepare included: {:.1} s)",
        run.wall.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        run.status,
        Some(0),
        "guest tests failed (console above; last lines:\n{})",
        tail_lines(&run.console, 30)
    );
    assert!(
        guest.contains("test result: ok") && !guest.contains("running 0 tests"),
        "no guest test ran: {guest}"
    );
    guest
}
