//! The shell: running one parsed command against the engine ([`execute`]), the one-shot `-c`
//! mode ([`one_shot`]) and the interactive loop with rustyline ([`interactive`]).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "printing to the terminal is the shell's job"
)]

use std::borrow::Cow;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::MemHistory;
use rustyline::{CompletionType, Config, Context, Editor, Helper, Highlighter, Hinter, Validator};
use seesaw_common::exit;
use serde::Serialize;

use crate::engine::{EngineError, EngineLink, GrpcEngine};
use crate::format;
use crate::tree::{self, Action, COMMANDS, Parsed};
use crate::view::{ClusterView, ConfigStatusView, HaView, ReloadView, VserverView, WarningsView};

/// How replies are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Seesaw-like text.
    Text,
    /// The reply as pretty-printed JSON.
    Json,
}

/// What running a command produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Text to print. `ok` is false when the engine refused (a `-c` run then exits 1).
    Print {
        /// The output, ending in a newline.
        text: String,
        /// Whether the command did what was asked.
        ok: bool,
    },
    /// Leave the shell.
    Exit,
}

/// Runs `action` against the engine and renders the reply.
pub async fn execute<E: EngineLink>(
    engine: &mut E,
    action: Action,
    arg: Option<&str>,
    output: OutputFormat,
    now_ms: i64,
) -> Result<Step, EngineError> {
    let json = output == OutputFormat::Json;
    let (text, ok) = match action {
        Action::Exit => return Ok(Step::Exit),
        Action::Help => (format::help(), true),
        Action::ShowVservers => {
            let all: Vec<VserverView> = engine
                .vservers(arg.unwrap_or_default())
                .await?
                .into_iter()
                .map(VserverView::from)
                .collect();
            let chosen = select_vservers(all, arg);
            let text = if json {
                to_json(&VserversJson { vservers: &chosen })
            } else if let [one] = chosen.as_slice() {
                // One match (also when the cluster has a single vserver): show it in full, with
                // its destinations and their health.
                format::vserver_detail(one)
            } else {
                format::vserver_list(&chosen, arg)
            };
            (text, true)
        }
        Action::ShowHa => {
            let ha = HaView::from(engine.ha_status().await?);
            let text = if json {
                to_json(&ha)
            } else {
                format::ha(&ha, now_ms)
            };
            (text, true)
        }
        Action::ShowNodes => {
            let cluster = ClusterView::from(engine.cluster_status().await?);
            let text = if json {
                to_json(&cluster)
            } else {
                format::nodes(&cluster)
            };
            (text, true)
        }
        Action::ShowWarnings => {
            let warnings =
                WarningsView::from(ConfigStatusView::from(engine.config_status().await?));
            let text = if json {
                to_json(&warnings)
            } else {
                format::warnings(&warnings)
            };
            (text, true)
        }
        Action::ConfigStatus => {
            let status = ConfigStatusView::from(engine.config_status().await?);
            let text = if json {
                to_json(&status)
            } else {
                format::config_status(&status, now_ms)
            };
            (text, true)
        }
        Action::ConfigReload => {
            let reply = ReloadView::from(engine.config_reload().await?);
            let text = if json {
                to_json(&reply)
            } else {
                format::reload(&reply)
            };
            (text, reply.applied)
        }
        Action::Override(kind, state) => {
            // The tree marks the name optional; an override without one is incomplete.
            let Some(target) = arg else {
                return Ok(Step::Print {
                    text: format!("{}\n", tree::ParseError::Incomplete),
                    ok: false,
                });
            };
            match engine.set_override(kind, target, state).await {
                Ok(message) => (
                    if json {
                        to_json(&serde_json::json!({ "message": message }))
                    } else {
                        format!("{message}\n")
                    },
                    true,
                ),
                Err(EngineError::Rpc(why)) => (format!("Override refused: {why}\n"), false),
                Err(e) => return Err(e),
            }
        }
        Action::ConfigSource => match engine.config_source(arg.unwrap_or_default()).await {
            Ok((now, previous)) => {
                let text = if json {
                    to_json(&serde_json::json!({ "source": now, "previous": previous }))
                } else if arg.is_some() && now != previous {
                    format!("Config source is {now} (was {previous})\n")
                } else {
                    format!("Config source is {now}\n")
                };
                (text, true)
            }
            Err(EngineError::Rpc(why)) => (format!("Config source refused: {why}\n"), false),
            Err(e) => return Err(e),
        },
        Action::Failover => match engine.failover().await {
            Ok(message) => (
                if json {
                    to_json(&serde_json::json!({ "message": message }))
                } else {
                    format!("{message}\n")
                },
                true,
            ),
            Err(EngineError::Rpc(why)) => (format!("Failover refused: {why}\n"), false),
            Err(e) => return Err(e),
        },
    };
    Ok(Step::Print { text, ok })
}

/// `seesaw -c "command"`: runs one command and returns the exit code: 0, 64 for a bad command,
/// 69 when the engine cannot be reached, 1 when the engine refused or failed.
pub fn one_shot(run_dir: &Path, line: &str, output: OutputFormat) -> u8 {
    let (action, arg) = match tree::parse(COMMANDS, line) {
        Ok(Parsed::Run { action, arg }) => (action, arg),
        Ok(Parsed::Help { options, .. }) => {
            print!("{}", format::help_options(&options));
            return exit::OK;
        }
        Ok(Parsed::Empty) => {
            eprintln!("{}", tree::ParseError::Incomplete);
            return exit::USAGE;
        }
        Err(e) => {
            eprintln!("{e}");
            return exit::USAGE;
        }
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let mut engine = GrpcEngine::new(&seesaw_common::paths::engine_socket(run_dir));
        execute(&mut engine, action, arg.as_deref(), output, now_ms()).await
    });
    match result {
        Ok(Step::Exit) => exit::OK,
        Ok(Step::Print { text, ok: true }) => {
            print!("{text}");
            exit::OK
        }
        Ok(Step::Print { text, ok: false }) => {
            // A refusal is an error of this run: text goes to stderr, JSON stays on stdout for
            // whatever parses it.
            match output {
                OutputFormat::Text => eprint!("{text}"),
                OutputFormat::Json => print!("{text}"),
            }
            1
        }
        Err(e) => {
            eprintln!("{e}");
            error_code(&e)
        }
    }
}

/// The interactive shell. Returns the exit code.
pub fn interactive(run_dir: &Path, output: OutputFormat) -> u8 {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let mut engine = {
        // The lazy channel spawns its worker on the current runtime.
        let _guard = runtime.enter();
        GrpcEngine::new(&seesaw_common::paths::engine_socket(run_dir))
    };
    let greeting = runtime.block_on(async {
        let cluster = engine.cluster_status().await?;
        let ha = engine.ha_status().await?;
        Ok::<_, EngineError>((cluster, ha))
    });
    let (cluster, ha) = match greeting {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            return error_code(&e);
        }
    };
    println!("{}", banner(&ha.state));
    let prompt = format!("{}@{}> ", user_name(), cluster.site);

    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ShellHelper, MemHistory> =
        match Editor::with_history(config, MemHistory::new()) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("cannot open the terminal: {e}");
                return exit::OSERR;
            }
        };
    editor.set_helper(Some(ShellHelper));

    // After `?`, the words before it are offered again as the next input, as Seesaw's shell does.
    let mut initial = String::new();
    loop {
        let read = if initial.is_empty() {
            editor.readline(&prompt)
        } else {
            editor.readline_with_initial(&prompt, (&initial, ""))
        };
        initial.clear();
        let line = match read {
            Ok(line) => line,
            // Ctrl-C abandons the line, Ctrl-D leaves.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return exit::OK,
            Err(e) => {
                eprintln!("cannot read input: {e}");
                return exit::OSERR;
            }
        };
        if !line.trim().is_empty() {
            // Only fails if the history is configured to refuse the line; nothing to report.
            let _ = editor.add_history_entry(line.as_str());
        }
        match tree::parse(COMMANDS, &line) {
            Err(e) => println!("{e}"),
            Ok(Parsed::Empty) => {}
            Ok(Parsed::Help { prefix, options }) => {
                print!("{}", format::help_options(&options));
                initial = prefix;
            }
            Ok(Parsed::Run { action, arg }) => {
                let step = runtime.block_on(execute(
                    &mut engine,
                    action,
                    arg.as_deref(),
                    output,
                    now_ms(),
                ));
                match step {
                    Ok(Step::Exit) => return exit::OK,
                    Ok(Step::Print { text, .. }) => print!("{text}"),
                    Err(e) => println!("{e}"),
                }
            }
        }
    }
}

/// The greeting: the banner, plus a warning when this node is not the HA leader.
pub fn banner(ha_state: &str) -> String {
    let mut text = "Seesaw CLI - Engine version 2".to_owned();
    if ha_state != "LEADER" {
        text.push_str("\nThis seesaw is not currently the master.");
    }
    text
}

// === impl ShellHelper ===

/// rustyline's hooks: Tab completion walks [`COMMANDS`]; the rest is rustyline's default.
#[derive(Helper, Hinter, Highlighter, Validator)]
struct ShellHelper;

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let (start, words) = tree::complete(COMMANDS, before);
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.to_owned(),
                replacement: format!("{w} "),
            })
            .collect();
        Ok((start, pairs))
    }
}

// === private helpers ===

/// `show vservers` selection: an exact name wins; otherwise every name with the prefix. The
/// engine filters too, but this keeps the exact-match rule whatever it returns.
fn select_vservers(mut all: Vec<VserverView>, filter: Option<&str>) -> Vec<VserverView> {
    let Some(f) = filter else {
        return all;
    };
    if let Some(i) = all.iter().position(|v| v.name == f) {
        return vec![all.swap_remove(i)];
    }
    all.retain(|v| v.name.starts_with(f));
    all
}

#[derive(Serialize)]
struct VserversJson<'a> {
    vservers: &'a [VserverView],
}

fn to_json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value)
        .expect("views hold only strings, numbers, bools and lists");
    text.push('\n');
    text
}

fn error_code(e: &EngineError) -> u8 {
    match e {
        EngineError::Unreachable { .. } => exit::UNAVAILABLE,
        EngineError::Rpc(_) => 1,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("cannot start the async runtime: {e}");
            exit::OSERR
        })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `$USER`, else the name of the real uid, else the uid.
fn user_name() -> Cow<'static, str> {
    if let Ok(user) = std::env::var("USER")
        && !user.is_empty()
    {
        return Cow::Owned(user);
    }
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => Cow::Owned(user.name),
        _ => Cow::Owned(uid.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use seesaw_proto::engine as pb;

    use super::*;
    use crate::engine::FakeEngine;
    use crate::tree::{OverrideKind, OverrideSet};

    fn vserver(name: &str, enabled: bool) -> pb::VserverStatus {
        pb::VserverStatus {
            name: name.into(),
            hostname: format!("{name}.host."),
            enabled,
            config_enabled: enabled,
            ..Default::default()
        }
    }

    fn fake() -> FakeEngine {
        FakeEngine {
            vservers: vec![
                vserver("web", true),
                vserver("web2", false),
                vserver("dns", true),
            ],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn overrides_and_config_source_reach_the_engine() {
        let mut e = fake();
        assert_eq!(
            printed(text(&mut e, "ov ba st dis b1.example.com.").await),
            "backend b1.example.com.: disabled\n"
        );
        assert_eq!(
            printed(text(&mut e, "override vserver state enabled web").await),
            "vserver web: enabled\n"
        );
        assert_eq!(
            e.overrides,
            [
                (
                    OverrideKind::Backend,
                    "b1.example.com.".to_owned(),
                    OverrideSet::Disabled
                ),
                (
                    OverrideKind::Vserver,
                    "web".to_owned(),
                    OverrideSet::Enabled
                ),
            ]
        );
        match text(&mut e, "override destination state default").await {
            Ok(Step::Print { text, ok: false }) => assert_eq!(text, "Incomplete command.\n"),
            other => panic!("{other:?}"),
        }
        e.source = "disk".into();
        assert_eq!(
            printed(text(&mut e, "config source none").await),
            "Config source is none (was disk)\n"
        );
        assert_eq!(
            printed(text(&mut e, "config source").await),
            "Config source is none\n"
        );
    }

    async fn text(engine: &mut FakeEngine, line: &str) -> Result<Step, EngineError> {
        let Ok(Parsed::Run { action, arg }) = tree::parse(COMMANDS, line) else {
            panic!("{line:?} is not a command");
        };
        execute(engine, action, arg.as_deref(), OutputFormat::Text, 0).await
    }

    #[tokio::test]
    async fn failover_reports_the_engine_answer_and_refusal() {
        let mut e = FakeEngine::default();
        e.ha.state = "BACKUP".into();
        match text(&mut e, "failover").await {
            Ok(Step::Print { text, ok: false }) => {
                assert_eq!(text, "Failover refused: this node is BACKUP, not the master\n");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        e.ha.state = "LEADER".into();
        assert_eq!(printed(text(&mut e, "failover").await), "failover requested\n");
        assert_eq!(e.failovers, 1);
    }

    fn printed(step: Result<Step, EngineError>) -> String {
        match step {
            Ok(Step::Print { text, ok: true }) => text,
            other => panic!("expected successful output, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn vservers_list_prefix_and_exact_match() {
        let mut e = fake();
        assert_eq!(
            printed(text(&mut e, "sh vs").await),
            "[1] web\n[2] web2 (disabled)\n[3] dns\n"
        );
        // `web` is exact even though `web2` shares the prefix: detail view.
        assert!(printed(text(&mut e, "sh vs web").await).starts_with("Name:     web\n"));
        assert!(printed(text(&mut e, "sh vs d").await).starts_with("Name:     dns\n"));
        assert_eq!(
            printed(text(&mut e, "sh vs we").await),
            "[1] web\n[2] web2 (disabled)\n"
        );
        assert_eq!(
            printed(text(&mut e, "sh vs zzz").await),
            "No vserver matches \"zzz\".\n"
        );
        // A cluster with one vserver: the bare command shows it in full.
        e.vservers.truncate(1);
        assert!(printed(text(&mut e, "sh vs").await).starts_with("Name:     web\n"));
    }

    #[tokio::test]
    async fn reload_refusal_is_not_ok_and_shows_in_warnings() {
        let mut e = fake();
        assert_eq!(
            printed(text(&mut e, "config reload").await),
            "configuration applied (generation 1)\n"
        );
        e.refuse_reload = vec!["cluster.pb:3: bad port".into()];
        match text(&mut e, "config reload").await {
            Ok(Step::Print { text, ok: false }) => assert_eq!(
                text,
                "configuration refused\nConfiguration reload refused:\n  cluster.pb:3: bad port\n"
            ),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(e.reloads, 2);
        assert_eq!(
            printed(text(&mut e, "show warnings").await),
            "There are 1 warnings:\n  - cluster.pb:3: bad port\n"
        );
    }

    #[tokio::test]
    async fn json_output_and_exit_and_unreachable() {
        let mut e = fake();
        let out = printed(
            execute(
                &mut e,
                Action::ShowVservers,
                Some("dns"),
                OutputFormat::Json,
                0,
            )
            .await,
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(v["vservers"][0]["name"], "dns");
        assert_eq!(v["vservers"].as_array().map(Vec::len), Some(1));
        assert_eq!(text(&mut e, "quit").await.ok(), Some(Step::Exit));
        e.down = true;
        let err = text(&mut e, "show ha").await.unwrap_err();
        assert_eq!(error_code(&err), exit::UNAVAILABLE);
        assert_eq!(
            err.to_string(),
            "cannot reach the engine at /fake/engine.sock: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn banner_warns_when_not_leader() {
        assert_eq!(banner("LEADER"), "Seesaw CLI - Engine version 2");
        assert_eq!(
            banner("BACKUP"),
            "Seesaw CLI - Engine version 2\nThis seesaw is not currently the master."
        );
    }

    #[test]
    fn one_shot_against_a_missing_socket_exits_69() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(one_shot(dir.path(), "show ha", OutputFormat::Text), 69);
        assert_eq!(one_shot(dir.path(), "show bogus", OutputFormat::Text), 64);
        assert_eq!(one_shot(dir.path(), "show", OutputFormat::Text), 64);
        assert_eq!(one_shot(dir.path(), "show ?", OutputFormat::Text), 0);
    }

    #[tokio::test]
    async fn grpc_unreachable_names_the_socket_and_cause() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = seesaw_common::paths::engine_socket(dir.path());
        let mut engine = GrpcEngine::new(&path);
        match engine.ha_status().await {
            Err(EngineError::Unreachable { path: p, cause }) => {
                assert_eq!(p, path);
                assert!(cause.contains("No such file or directory"), "{cause}");
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
    }
}
