//! The `seesaw` binary against a scripted engine served over a real Unix socket: `-c` output and
//! exit codes, JSON, Seesaw's `-engine` flag, and the interactive shell fed from a pipe.

use std::path::Path;
use std::process::Output;
use std::sync::Mutex;

use seesaw_proto::engine as pb;
use seesaw_proto::engine_stubs::engine_server::{Engine, EngineServer};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

#[path = "support/bgp.rs"]
mod bgp;

/// Canned replies; a reload is refused when `refuse` holds errors.
#[derive(Default)]
struct ScriptedEngine {
    refuse: Mutex<Vec<String>>,
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Engine for ScriptedEngine {
    async fn cluster_status(&self, _: Request<pb::Empty>) -> Reply<pb::ClusterStatus> {
        Ok(Response::new(pb::ClusterStatus {
            version: 2,
            site: "testsite".into(),
            dataplane: "proxy".into(),
            nodes: vec![pb::Node {
                hostname: "node1.demo.".into(),
                ipv4: "127.0.0.1".into(),
                priority: 100,
                vservers_enabled: true,
                is_local: true,
                ..Default::default()
            }],
        }))
    }

    async fn config_status(&self, _: Request<pb::Empty>) -> Reply<pb::ConfigStatus> {
        Ok(Response::new(pb::ConfigStatus {
            generation: 4,
            source: "disk".into(),
            warnings: vec!["vserver dns@demo has no backends".into()],
            ..Default::default()
        }))
    }

    async fn vservers(&self, request: Request<pb::VserversRequest>) -> Reply<pb::VserversReply> {
        let prefix = request.into_inner().name;
        let vservers = ["web@demo", "web2@demo"]
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .map(|n| pb::VserverStatus {
                name: n.into(),
                hostname: "web.demo.".into(),
                enabled: true,
                config_enabled: true,
                vips: vec!["127.0.0.1".into()],
                ..Default::default()
            })
            .collect();
        Ok(Response::new(pb::VserversReply { vservers }))
    }

    async fn ha_status(&self, _: Request<pb::Empty>) -> Reply<pb::HaStatus> {
        Ok(Response::new(pb::HaStatus {
            state: "BACKUP".into(),
            ..Default::default()
        }))
    }

    async fn config_reload(&self, _: Request<pb::Empty>) -> Reply<pb::ConfigReloadReply> {
        let errors = self.refuse.lock().expect("not poisoned").clone();
        Ok(Response::new(pb::ConfigReloadReply {
            applied: errors.is_empty(),
            message: if errors.is_empty() {
                "configuration applied (generation 5)".into()
            } else {
                "configuration refused".into()
            },
            errors,
        }))
    }

    async fn failover(&self, _: Request<pb::Empty>) -> Reply<pb::FailoverReply> {
        Err(Status::failed_precondition(
            "this node is BACKUP, not the master",
        ))
    }

    async fn override_vserver(
        &self,
        request: Request<pb::OverrideRequest>,
    ) -> Reply<pb::OverrideReply> {
        // As the engine does: a name that is not configured is not found.
        let target = request.into_inner().target;
        if target != "web@demo" {
            return Err(Status::not_found(format!("no such vserver {target:?}")));
        }
        Ok(Response::new(pb::OverrideReply {
            message: format!("vserver {target}: disabled (was default)"),
        }))
    }

    async fn vlans(&self, _: Request<pb::Empty>) -> Reply<pb::VlansReply> {
        Ok(Response::new(pb::VlansReply {
            vlans: vec![pb::Vlan {
                id: 10,
                hostname: "v10.demo.".into(),
                ipv4: "10.0.10.1/24".into(),
                ipv6: String::new(),
                ipv4_backends: 3,
                ipv6_backends: 0,
                ipv4_vips: 1,
                ipv6_vips: 0,
            }],
        }))
    }

    async fn bgp_neighbors(
        &self,
        _: Request<pb::Empty>,
    ) -> Reply<seesaw_proto::ncc::BgpNeighborList> {
        Ok(Response::new(bgp::neighbors()))
    }
}

/// Serves `engine` on `<run_dir>/engine/engine.sock` until the token is cancelled.
fn serve(run_dir: &Path, engine: ScriptedEngine) -> CancellationToken {
    serve_at(&seesaw_common::paths::engine_socket(run_dir), engine)
}

/// Serves `engine` in a new temp run dir until the token is cancelled: the dir and the token.
fn served(engine: ScriptedEngine) -> (tempfile::TempDir, CancellationToken) {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = serve(dir.path(), engine);
    (dir, token)
}

/// Serves `engine` on the socket `path` until the token is cancelled.
fn serve_at(path: &Path, engine: ScriptedEngine) -> CancellationToken {
    let listener = seesaw_common::uds::bind_exclusive(path).expect("bind the engine socket");
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(EngineServer::new(engine))
            .serve_with_incoming_shutdown(
                seesaw_common::uds::incoming(listener),
                stop.cancelled_owned(),
            )
            .await
            .expect("serve");
    });
    token
}

async fn seesaw(run_dir: &Path, args: &[&str], stdin: &str) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_seesaw"))
        .arg("--run-dir")
        .arg(run_dir)
        .args(args)
        .env("USER", "tester")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn seesaw");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("seesaw finishes")
        .expect("seesaw output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn one_shot_commands_over_the_socket() {
    let (dir, _server) = served(ScriptedEngine::default());

    let out = seesaw(dir.path(), &["-c", "sh vs"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[1] web@demo\n[2] web2@demo\n");

    let out = seesaw(dir.path(), &["-c", "show vservers web@demo"], "").await;
    assert!(
        text(&out.stdout).starts_with("Name:     web@demo\n"),
        "{}",
        text(&out.stdout)
    );

    let out = seesaw(dir.path(), &["-c", "show nodes", "-o", "json"], "").await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["site"], "testsite");
    assert_eq!(json["nodes"][0]["is_local"], true);

    let out = seesaw(dir.path(), &["-c", "show warnings"], "").await;
    assert_eq!(
        text(&out.stdout),
        "There are 1 warnings:\n  - vserver dns@demo has no backends\n"
    );

    let out = seesaw(dir.path(), &["-c", "config reload"], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "configuration applied (generation 5)\n");
}

#[tokio::test]
async fn refused_reload_exits_1_with_every_error() {
    let (dir, _server) = served(ScriptedEngine {
        refuse: Mutex::new(vec!["first problem".into(), "second problem".into()]),
    });
    let out = seesaw(dir.path(), &["-c", "config reload"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "configuration refused\nConfiguration reload refused:\n  first problem\n  second problem\n"
    );
}

#[tokio::test]
async fn interactive_shell_from_a_pipe() {
    let (dir, _server) = served(ScriptedEngine::default());
    let out = seesaw(
        dir.path(),
        &[],
        "show ha\nsh bogus\nshow ?\nconfig st\nquit\nshow ha\n",
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "Seesaw CLI - Engine version 2\nThis seesaw is not currently the master.\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("  State:               BACKUP\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Unknown command \"bogus\".\n"), "{stdout}");
    assert!(
        stdout.contains("  vservers      Show vservers\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  Generation:      4\n"), "{stdout}");
    // `quit` ended the session: the second `show ha` never ran.
    assert_eq!(stdout.matches("HA Status\n").count(), 1, "{stdout}");
}

#[tokio::test]
async fn override_of_an_unknown_name_says_no_such_and_exits_1() {
    let (dir, _server) = served(ScriptedEngine::default());
    let out = seesaw(
        dir.path(),
        &["-c", "override vserver state disabled nosuch@demo"],
        "",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    // Seesaw's cli/state.go wording, on stderr as Seesaw's fatalf prints it.
    assert_eq!(text(&out.stderr), "No such vserver - nosuch@demo\n");
    assert_eq!(text(&out.stdout), "");
    let out = seesaw(dir.path(), &["-c", "ov vs st dis web@demo"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "vserver web@demo: disabled (was default)\n"
    );
}

#[tokio::test]
async fn seesaw_blocks_over_the_socket() {
    let (dir, _server) = served(ScriptedEngine::default());

    let out = seesaw(dir.path(), &["-c", "show vlans 10.0.10.77"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "VLAN\n  ID:                  10\n  Hostname:            v10.demo.\n  \
         IPv4 Address:        10.0.10.1/24\n  IPv6 Address:        <not configured>\n  \
         IPv4 Backend Count:  3\n  IPv6 Backend Count:  0\n  IPv4 VIP Count:      1\n  \
         IPv6 VIP Count:      0\n"
    );
    let out = seesaw(dir.path(), &["-c", "show vlans", "-o", "json"], "").await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["vlans"][0]["ipv4_backends"], 3);
    assert_eq!(json["vlans"][0]["ipv4_vips"], 1);
    let out = seesaw(dir.path(), &["-c", "show vlans 11"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "VLAN ID 11 not found\n");

    let out = seesaw(dir.path(), &["-c", "show bgp neighbors 192.0.2.254"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(
            "BGP Neighbor\n  IP Address:          192.0.2.254\n  Router ID:           192.0.2.254\n  \
             ASN:                 64512\n  Description:\n  BGP State:           ESTABLISHED\n  \
             Duration:            1h2m5s\n"
        ),
        "{}",
        text(&out.stdout)
    );
    let out = seesaw(dir.path(), &["-c", "show bgp neighbors 192.0.2.1"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "No such neighbor\n");

    let out = seesaw(dir.path(), &["-c", "show nodes node1.demo."], "").await;
    assert!(
        text(&out.stdout).starts_with(
            "Node\n  Hostname:            node1.demo.\n  Site:                testsite\n"
        ),
        "{}",
        text(&out.stdout)
    );
    let out = seesaw(dir.path(), &["-c", "show ha"], "").await;
    assert!(
        text(&out.stdout)
            .starts_with("HA Status\n  State:               BACKUP\n  Duration:            N/A\n"),
        "{}",
        text(&out.stdout)
    );
}

/// Seesaw's `-engine <socket>` (Go-style single dash) names the socket; `--run-dir` is then not
/// where the shell looks.
#[tokio::test]
async fn engine_flag_names_the_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("elsewhere.sock");
    let _server = serve_at(&socket, ScriptedEngine::default());
    let engine = socket.to_str().expect("UTF-8 temp path");
    let joined = format!("-engine={engine}");
    for flag in [vec!["-engine", engine], vec![joined.as_str()]] {
        let mut args = flag.clone();
        args.extend(["-c", "sh vs"]);
        let out = seesaw(dir.path(), &args, "").await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flag:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "[1] web@demo\n[2] web2@demo\n");
    }
    // Without it the shell looks under the run dir, where nothing answers.
    let out = seesaw(dir.path(), &["-c", "sh vs"], "").await;
    assert_eq!(out.status.code(), Some(69));
}

#[tokio::test]
async fn unreachable_engine_exits_69() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = seesaw(dir.path(), &["-c", "show ha"], "").await;
    assert_eq!(out.status.code(), Some(69));
    let socket = seesaw_common::paths::engine_socket(dir.path());
    assert_eq!(
        text(&out.stderr),
        format!(
            "cannot reach the engine at {}: No such file or directory (os error 2)\n",
            socket.display()
        )
    );
    let out = seesaw(dir.path(), &[], "").await;
    assert_eq!(out.status.code(), Some(69));
}

/// A tmux server on its own socket, killed (with the shell in it) when dropped.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "shell"])
    }

    /// Waits (at most 10 s) until the screen satisfies `ok`; returns it.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// The interactive shell in a real terminal (tmux): Tab completion, `?` answered on the key,
/// abbreviations, and a one-line error for a bad command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr, reason = "a skipped test says why")]
async fn interactive_shell_in_a_terminal() {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIP interactive_shell_in_a_terminal: tmux is not installed (apt-get install tmux)"
        );
        return;
    }
    let (dir, _server) = served(ScriptedEngine::default());
    let tmux = Tmux {
        socket: dir.path().join("tmux.sock"),
    };
    let command = format!(
        "env USER=tester TERM=xterm {} --run-dir {}",
        env!("CARGO_BIN_EXE_seesaw"),
        dir.path().display()
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "shell",
        "-x",
        "160",
        "-y",
        "50",
        &command,
    ]);
    let prompt = "tester@testsite> ";
    // tmux trims trailing blanks from captured lines.
    let screen = tmux.wait_for("the prompt", |s| s.contains(prompt.trim_end()));
    assert!(
        screen.contains("This seesaw is not currently the master."),
        "{screen}"
    );

    // `sh<TAB>` then `vs<TAB>`: each Tab completes the word and adds a space.
    tmux.run(&["send-keys", "-t", "shell", "sh", "Tab"]);
    tmux.wait_for("`show ` completed", |s| {
        s.contains(&format!("{prompt}show"))
    });
    // No space typed: the completion put it there, or `vs` would glue onto `show`.
    tmux.run(&["send-keys", "-t", "shell", "vs", "Tab"]);
    tmux.wait_for("`show vservers ` completed", |s| {
        s.lines()
            .any(|l| l.trim_end() == format!("{prompt}show vservers"))
    });
    tmux.run(&["send-keys", "-t", "shell", "Enter"]);
    tmux.wait_for("the vserver list", |s| s.contains("[2] web2@demo"));

    // `?` lists the commands at once, without Enter.
    tmux.run(&["send-keys", "-t", "shell", "?"]);
    let screen = tmux.wait_for("the command list", |s| s.contains("  show      Show state"));
    for word in ["config", "exit", "failover", "help", "override", "quit"] {
        assert!(
            screen.contains(&format!("  {word} ")),
            "{word} missing:\n{screen}"
        );
    }

    // The abbreviation works typed in full.
    tmux.run(&["send-keys", "-t", "shell", "sh vs web@demo", "Enter"]);
    tmux.wait_for("the vserver detail", |s| s.contains("Name:     web@demo"));

    // A bad command: exactly one line of error, then the prompt again.
    tmux.run(&["send-keys", "-t", "shell", "C-l"]);
    tmux.run(&["send-keys", "-t", "shell", "show bogus", "Enter"]);
    let screen = tmux.wait_for("the error", |s| s.contains("Unknown command"));
    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with("show bogus"))
        .unwrap_or_else(|| panic!("no command line:\n{screen}"));
    assert_eq!(
        lines.get(at + 1).copied(),
        Some("Unknown command \"bogus\"."),
        "{screen}"
    );
    assert_eq!(
        lines.get(at + 2).map(|l| l.trim_end()),
        Some(prompt.trim_end()),
        "{screen}"
    );
    tmux.run(&["send-keys", "-t", "shell", "quit", "Enter"]);
}
