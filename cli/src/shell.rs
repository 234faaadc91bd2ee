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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext,
    EventHandler, Helper, Highlighter, Hinter, KeyEvent, RepeatCount, Validator,
};
use seesaw_common::exit;
use serde::Serialize;

use crate::engine::{EngineError, EngineLink, GrpcEngine};
use crate::format;
use crate::tree::{self, Action, COMMANDS, OverrideKind, Parsed};
use crate::view::{
    self, BgpNeighborView, ClusterView, ConfigStatusView, HaView, ReloadView, VersionRow,
    VersionView, VlanRow, VserverView, WarningsView,
};

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
        Action::ShowBgpNeighbors => match (engine.bgp_neighbors().await, arg) {
            (Ok(n), None) => (
                if json {
                    to_json(&bgp_json(&n))
                } else {
                    bgp_neighbors(&n)
                },
                true,
            ),
            (Ok(n), Some(ip)) => {
                let all = n.neighbors.into_iter().map(BgpNeighborView::from).collect();
                match view::select_neighbor(all, ip) {
                    Ok(one) if json => (to_json(&one), true),
                    Ok(one) => (format::bgp_neighbor(&one), true),
                    Err(why) => (format!("{why}\n"), false),
                }
            }
            (Err(EngineError::Rpc(why)), _) => (format!("BGP unavailable: {why}\n"), false),
            (Err(e), _) => return Err(e),
        },
        Action::ShowNodes => {
            let mut cluster = ClusterView::from(engine.cluster_status().await?);
            // Seesaw shows the node with exactly this hostname; a unique prefix does too here,
            // and several matching nodes are listed.
            if let Some(host) = arg {
                match cluster.nodes.iter().position(|n| n.hostname == host) {
                    Some(i) => cluster.nodes = vec![cluster.nodes.swap_remove(i)],
                    None => cluster.nodes.retain(|n| n.hostname.starts_with(host)),
                }
            }
            let text = match (arg, cluster.nodes.as_slice()) {
                _ if json => to_json(&cluster),
                (None, _) => format::nodes(&cluster),
                (Some(host), []) => {
                    return Ok(Step::Print {
                        text: format!("node {host:?} not found\n"),
                        ok: false,
                    });
                }
                (Some(_), [one]) => format::node_detail(&cluster.site, one),
                (Some(_), _) => format::nodes(&cluster),
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
                // Seesaw's shell checks the name itself and says so in these words.
                Err(EngineError::NotFound(_)) => (
                    format!(
                        "No such {} - {target}\n",
                        match kind {
                            OverrideKind::Vserver => "vserver",
                            OverrideKind::Backend => "backend",
                            OverrideKind::Destination => "destination",
                        }
                    ),
                    false,
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
        Action::ShowBackends | Action::ShowDestinations | Action::ShowHealthchecks => {
            let all: Vec<VserverView> = engine
                .vservers("")
                .await?
                .into_iter()
                .map(VserverView::from)
                .collect();
            let prefix = arg.unwrap_or_default();
            // Seesaw's answers: nothing found is an error; one match in detail; else a list.
            let not_found = |what: &str| match arg {
                Some(p) => format!("{what} '{p}...' not found\n"),
                None => format!("no {what}s found\n"),
            };
            match action {
                Action::ShowBackends => {
                    let rows = view::backend_rows(&all, prefix);
                    match rows.as_slice() {
                        _ if json => (to_json(&serde_json::json!({ "backends": rows })), true),
                        [] => (not_found("backend"), false),
                        [one] => {
                            let mut dests = view::destination_rows(&all, "");
                            dests.retain(|d| d.backend == one.hostname);
                            (format::backend_detail(one, &dests), true)
                        }
                        _ => (format::backends(&rows), true),
                    }
                }
                Action::ShowDestinations => {
                    let rows = view::destination_rows(&all, prefix);
                    match rows.as_slice() {
                        _ if json => (to_json(&serde_json::json!({ "destinations": rows })), true),
                        [] => (not_found("destination"), false),
                        [one] => (format::destination_detail(one), true),
                        _ => (format::destinations(&rows), true),
                    }
                }
                _ => {
                    let rows = view::check_rows(&all, prefix);
                    let text = if json {
                        to_json(&serde_json::json!({ "healthchecks": rows }))
                    } else {
                        format::healthchecks(&rows)
                    };
                    (text, true)
                }
            }
        }
        Action::ShowVlans => {
            let rows: Vec<VlanRow> = engine
                .vlans()
                .await?
                .into_iter()
                .map(VlanRow::from)
                .collect();
            match arg {
                None if json => (to_json(&serde_json::json!({ "vlans": rows })), true),
                None => (format::vlans(&rows), true),
                Some(filter) => match view::select_vlan(rows, filter) {
                    Ok(one) if json => (to_json(&serde_json::json!({ "vlans": [one] })), true),
                    Ok(one) => (format::vlan_detail(&one), true),
                    Err(why) => (format!("{why}\n"), false),
                },
            }
        }
        Action::ShowVersion => {
            let c = engine.cluster_status().await?;
            let v = VersionView {
                shell: seesaw_common::build_info(),
                engine: c.version,
                site: c.site,
                dataplane: c.dataplane,
            };
            let text = if json {
                to_json(&v)
            } else {
                format::version(&v)
            };
            (text, true)
        }
        Action::ConfigHistory => {
            let rows: Vec<VersionRow> = engine
                .history()
                .await?
                .into_iter()
                .map(VersionRow::from)
                .collect();
            let text = if json {
                to_json(&serde_json::json!({ "versions": rows }))
            } else {
                format::history(&rows, now_ms)
            };
            (text, true)
        }
        Action::ConfigRollback => {
            let Some(id) = arg.and_then(|a| a.parse::<u64>().ok()) else {
                return Ok(Step::Print {
                    text: "config rollback needs a version id (see `config history`)\n".into(),
                    ok: false,
                });
            };
            match engine.rollback(id).await {
                Ok(reply) => {
                    let reply = ReloadView::from(reply);
                    let text = if json {
                        to_json(&reply)
                    } else {
                        format::reload(&reply)
                    };
                    (text, reply.applied)
                }
                Err(EngineError::Rpc(why)) => (format!("Rollback refused: {why}\n"), false),
                Err(e) => return Err(e),
            }
        }
        Action::ConfigImport => {
            let Some(path) = arg else {
                return Ok(Step::Print {
                    text: format!("{}\n", tree::ParseError::Incomplete),
                    ok: false,
                });
            };
            engine.import_yaml(path, json).await?
        }
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

/// `seesaw -c "command"` against the engine at `socket`: runs one command and returns the exit
/// code: 0, 64 for a bad command, 69 when the engine cannot be reached, 1 when the engine
/// refused or failed (as Seesaw's shell exits 1 on any error).
pub fn one_shot(socket: &Path, line: &str, output: OutputFormat) -> u8 {
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
        let mut engine = GrpcEngine::new(socket);
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

/// The interactive shell against the engine at `socket`. Returns the exit code.
pub fn interactive(socket: &Path, output: OutputFormat) -> u8 {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let mut engine = {
        // The lazy channel spawns its worker on the current runtime.
        let _guard = runtime.enter();
        GrpcEngine::new(socket)
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
    // `?` answers at once, as in Seesaw's shell: the key ends the line and the loop below treats
    // it as the line followed by `?`.
    let help_key = Arc::new(AtomicBool::new(false));
    editor.bind_sequence(
        KeyEvent::from('?'),
        EventHandler::Conditional(Box::new(HelpKey(Arc::clone(&help_key)))),
    );

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
            Ok(mut line) => {
                if help_key.swap(false, Ordering::SeqCst) {
                    line.push('?');
                }
                line
            }
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

/// The `?` key: flags the help request and accepts the line.
struct HelpKey(Arc<AtomicBool>);

impl ConditionalEventHandler for HelpKey {
    fn handle(
        &self,
        _evt: &Event,
        _n: RepeatCount,
        _positive: bool,
        _ctx: &EventContext<'_>,
    ) -> Option<Cmd> {
        self.0.store(true, Ordering::SeqCst);
        Some(Cmd::AcceptLine)
    }
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

/// `show bgp neighbors`: one block per neighbour, then the announced routes.
fn bgp_neighbors(n: &seesaw_proto::engine::BgpNeighbors) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if n.neighbors.is_empty() {
        out.push_str("No BGP neighbours.\n");
    }
    for p in &n.neighbors {
        let up = p.uptime_s;
        let _ = writeln!(
            out,
            "BGP neighbor is {}, remote AS {}",
            p.address, p.peer_asn
        );
        let _ = writeln!(
            out,
            "  BGP state = {}, up for {:02}:{:02}:{:02}",
            p.state,
            up / 3600,
            up / 60 % 60,
            up % 60
        );
        let id = if p.router_id.is_empty() {
            "-"
        } else {
            &p.router_id
        };
        let _ = writeln!(out, "  Remote router ID {id}");
        let _ = writeln!(
            out,
            "  Messages: {} received ({} updates), {} sent ({} updates)",
            p.messages_received, p.updates_received, p.messages_sent, p.updates_sent
        );
    }
    if n.announced.is_empty() {
        out.push_str("Announced: none\n");
    } else {
        let _ = writeln!(out, "Announced: {}", n.announced.join(", "));
    }
    out
}

fn bgp_json(n: &seesaw_proto::engine::BgpNeighbors) -> serde_json::Value {
    serde_json::json!({
        "neighbors": n.neighbors.iter().map(|p| serde_json::json!({
            "address": p.address,
            "peer_asn": p.peer_asn,
            "router_id": p.router_id,
            "state": p.state,
            "uptime_s": p.uptime_s,
            "messages_received": p.messages_received,
            "messages_sent": p.messages_sent,
            "updates_received": p.updates_received,
            "updates_sent": p.updates_sent,
        })).collect::<Vec<_>>(),
        "announced": n.announced,
    })
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
        EngineError::Rpc(_) | EngineError::NotFound(_) => 1,
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
    use crate::tree::OverrideSet;

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
        e.vservers[0].services = vec![pb::ServiceStatus {
            destinations: vec![pb::DestinationStatus {
                name: "web/192.0.2.1:80/TCP".into(),
                backend: "b1.example.com.".into(),
                ..Default::default()
            }],
            ..Default::default()
        }];
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
        // Names the engine does not know: Seesaw's words, and not ok (a `-c` run exits 1).
        for (line, want) in [
            (
                "override vserver state disabled nosuch",
                "No such vserver - nosuch\n",
            ),
            (
                "ov ba st en b9.example.com.",
                "No such backend - b9.example.com.\n",
            ),
            (
                "ov de st def web/192.0.2.9:80/TCP",
                "No such destination - web/192.0.2.9:80/TCP\n",
            ),
        ] {
            match text(&mut e, line).await {
                Ok(Step::Print { text, ok: false }) => assert_eq!(text, want, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        assert_eq!(e.overrides.len(), 2, "refused overrides reach nothing");
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
                assert_eq!(
                    text,
                    "Failover refused: this node is BACKUP, not the master\n"
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        e.ha.state = "LEADER".into();
        assert_eq!(
            printed(text(&mut e, "failover").await),
            "failover requested\n"
        );
        assert_eq!(e.failovers, 1);
    }

    #[tokio::test]
    async fn bgp_neighbors_show_state_uptime_counters_and_routes() {
        let mut e = FakeEngine::default();
        assert_eq!(
            printed(text(&mut e, "show bgp neighbors").await),
            "No BGP neighbours.\nAnnounced: none\n"
        );
        e.bgp = seesaw_proto::engine::BgpNeighbors {
            neighbors: vec![seesaw_proto::engine::BgpNeighbor {
                address: "192.0.2.254".into(),
                peer_asn: 64512,
                router_id: "192.0.2.254".into(),
                state: "ESTABLISHED".into(),
                uptime_s: 3725,
                messages_received: 12,
                messages_sent: 14,
                updates_received: 0,
                updates_sent: 3,
            }],
            announced: vec!["192.168.255.1/32".into()],
        };
        assert_eq!(
            printed(text(&mut e, "sh bgp n").await),
            "BGP neighbor is 192.0.2.254, remote AS 64512\n  BGP state = ESTABLISHED, up for 01:02:05\n  \
             Remote router ID 192.0.2.254\n  Messages: 12 received (0 updates), 14 sent (3 updates)\n\
             Announced: 192.168.255.1/32\n"
        );
        // One neighbour by address: Seesaw's block (cli/show.go showBGPNeighbors).
        assert_eq!(
            printed(text(&mut e, "show bgp neighbors 192.0.2.254").await),
            "BGP Neighbor\n\
             \x20 IP Address:          192.0.2.254\n\
             \x20 Router ID:           192.0.2.254\n\
             \x20 ASN:                 64512\n\
             \x20 Description:\n\
             \x20 BGP State:           ESTABLISHED\n\
             \x20 Duration:            1h2m5s\n\
             \x20 Messages:            12 received (0 updates), 14 sent (3 updates)\n"
        );
        for (line, want) in [
            ("sh bgp n 192.0.2.9", "No such neighbor\n"),
            ("sh bgp n peer1", "\"peer1\" is not a valid IP address\n"),
        ] {
            match text(&mut e, line).await {
                Ok(Step::Print { text, ok: false }) => assert_eq!(text, want, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        let json = execute(
            &mut e,
            Action::ShowBgpNeighbors,
            Some("192.0.2.254"),
            OutputFormat::Json,
            0,
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&printed(json)).expect("JSON");
        assert_eq!(v["peer_asn"], 64512);
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

    const CLUSTER: &str = r#"
seesaw_vip: < fqdn: "vip.demo." ipv4: "127.0.0.254/8" >
node: < fqdn: "lb1.demo." ipv4: "127.0.0.1/8" >
vlan: < vlan_id: 10 host: < fqdn: "v10.demo." ipv4: "10.0.10.1/24" > >
vlan: < vlan_id: 20 host: < fqdn: "v20.demo." ipv4: "10.0.20.1/24" > >
"#;

    #[tokio::test]
    async fn history_rollback_and_import_go_through_the_engine() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut e = FakeEngine {
            text: CLUSTER.into(),
            ..Default::default()
        };
        let yaml = dir.path().join("pool.yaml");
        let line = format!("config import {}", yaml.display());
        assert_eq!(
            printed(text(&mut e, &line).await),
            "configuration applied (version 1)\n"
        );
        assert_eq!(e.versions[0].1, format!("import from {}", yaml.display()));
        let out = printed(text(&mut e, "config history").await);
        assert!(out.starts_with("Id  When"), "{out}");
        assert!(out.contains("tester"), "{out}");
        assert_eq!(
            printed(text(&mut e, "config rollback 1").await),
            "configuration applied (version 2)\n"
        );
        match text(&mut e, "config rollback 9").await {
            Ok(Step::Print { text, ok: false }) => {
                assert_eq!(text, "Rollback refused: no config version 9\n");
            }
            other => panic!("{other:?}"),
        }
        e.import_refusal =
            Some("import refused\n  pool.yaml: documents[0].vip: is required\n".into());
        match text(&mut e, &line).await {
            Ok(Step::Print { text, ok: false }) => {
                assert!(text.contains("documents[0].vip: is required"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.versions.len(), 2, "a refused import saves nothing");
    }

    fn dest(vserver: &str, ip: &str, backend: &str, healthy: bool) -> pb::DestinationStatus {
        pb::DestinationStatus {
            name: format!("{vserver}/{ip}:80/TCP"),
            backend: backend.into(),
            address: ip.into(),
            port: 80,
            weight: 1,
            enabled: true,
            healthy,
            active: healthy,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn vlans_come_from_the_engine_with_its_counts() {
        let mut e = FakeEngine {
            vlan_list: vec![
                pb::Vlan {
                    id: 10,
                    hostname: "v10.demo.".into(),
                    ipv4: "10.0.10.1/24".into(),
                    ipv4_backends: 3,
                    ipv4_vips: 1,
                    ..Default::default()
                },
                pb::Vlan {
                    id: 20,
                    hostname: "v20.demo.".into(),
                    ipv4: "10.0.20.1/24".into(),
                    ipv6: "2001:db8:20::1/64".into(),
                    ipv6_backends: 2,
                    ipv6_vips: 4,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            printed(text(&mut e, "sh vl").await),
            "VLANs\n\
             [  1] VLAN ID 10 - v10.demo.  10.0.10.1/24  -                  backends 3 IPv4, 0 IPv6  VIPs 1 IPv4, 0 IPv6\n\
             [  2] VLAN ID 20 - v20.demo.  10.0.20.1/24  2001:db8:20::1/64  backends 0 IPv4, 2 IPv6  VIPs 0 IPv4, 4 IPv6\n"
        );
        // By an address inside the subnet (here IPv6) or by id: Seesaw's detail block.
        let detail = "VLAN\n\
             \x20 ID:                  20\n\
             \x20 Hostname:            v20.demo.\n\
             \x20 IPv4 Address:        10.0.20.1/24\n\
             \x20 IPv6 Address:        2001:db8:20::1/64\n\
             \x20 IPv4 Backend Count:  0\n\
             \x20 IPv6 Backend Count:  2\n\
             \x20 IPv4 VIP Count:      0\n\
             \x20 IPv6 VIP Count:      4\n";
        assert_eq!(printed(text(&mut e, "sh vl 2001:db8:20::99").await), detail);
        assert_eq!(printed(text(&mut e, "sh vl 20").await), detail);
        for (line, want) in [
            ("sh vl 30", "VLAN ID 30 not found\n"),
            (
                "sh vl 10.0.30.1",
                "VLAN not found for IP address 10.0.30.1\n",
            ),
            (
                "sh vl x",
                "unknown value \"x\" - must be a VLAN ID or IP address\n",
            ),
        ] {
            match text(&mut e, line).await {
                Ok(Step::Print { text, ok: false }) => assert_eq!(text, want, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        let json = execute(&mut e, Action::ShowVlans, None, OutputFormat::Json, 0).await;
        let v: serde_json::Value = serde_json::from_str(&printed(json)).expect("JSON");
        assert_eq!(v["vlans"][0]["ipv4_backends"], 3);
        assert_eq!(v["vlans"][1]["ipv6_vips"], 4);
        assert_eq!(v["vlans"][1]["ipv6"], "2001:db8:20::1/64");
    }

    #[tokio::test]
    async fn backends_and_destinations_list_detail_and_not_found() {
        let mut e = FakeEngine {
            vservers: vec![
                pb::VserverStatus {
                    name: "web".into(),
                    enabled: true,
                    services: vec![pb::ServiceStatus {
                        address: "192.0.2.1".into(),
                        protocol: "TCP".into(),
                        port: 80,
                        destinations: vec![
                            dest("web", "10.0.0.2", "be2.demo.", false),
                            dest("web", "10.0.0.1", "be1.demo.", true),
                        ],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                pb::VserverStatus {
                    name: "dns".into(),
                    enabled: false,
                    services: vec![pb::ServiceStatus {
                        address: "192.0.2.53".into(),
                        protocol: "UDP".into(),
                        port: 53,
                        destinations: vec![dest("dns", "10.0.0.1", "be1.demo.", true)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        e.vservers[0].services[0].destinations[1].override_state = "enabled".into();
        assert_eq!(
            printed(text(&mut e, "sh ba").await),
            "Backends\n\
             [   1] be1.demo. (partially disabled)  10.0.0.1  dests 2  healthy 2/2  active 2/2  override enabled\n\
             [   2] be2.demo.                       10.0.0.2  dests 1  healthy 0/1  active 0/1\n"
        );
        assert_eq!(
            printed(text(&mut e, "sh ba be1").await),
            "Backend\n  Hostname: be1.demo.\n  Destinations:\n\
             \x20 [  1] dns/10.0.0.1:80/TCP (vserver disabled)\n\
             \x20 [  2] web/10.0.0.1:80/TCP (enabled, healthy, active)\n\
             \x20 Address: 10.0.0.1\n  Override: enabled\n"
        );
        assert_eq!(
            printed(text(&mut e, "sh de").await),
            "Destinations\n\
             [   1] dns/10.0.0.1:80/TCP (vserver disabled)              10.0.0.1:80  weight 1  conns 0/0\n\
             [   2] web/10.0.0.1:80/TCP (enabled, healthy, active)      10.0.0.1:80  weight 1  conns 0/0  override enabled\n\
             [   3] web/10.0.0.2:80/TCP (enabled, unhealthy, inactive)  10.0.0.2:80  weight 1  conns 0/0\n"
        );
        assert_eq!(
            printed(text(&mut e, "sh de dns").await),
            "Destination\n\
             \x20 Name:                dns/10.0.0.1:80/TCP\n\
             \x20 Vserver:             dns (disabled)\n\
             \x20 Backend:             be1.demo.\n\
             \x20 Enabled:             true\n\
             \x20 Healthy:             true\n\
             \x20 Active:              true\n\
             \x20 Service:             192.0.2.53:53/UDP\n\
             \x20 Address:             10.0.0.1:80\n\
             \x20 Weight:              1\n\
             \x20 Override:            -\n\
             \x20 Connections:         0 active, 0 total\n"
        );
        for (line, want) in [
            ("sh ba zz", "backend 'zz...' not found\n"),
            ("sh de zz", "destination 'zz...' not found\n"),
        ] {
            match text(&mut e, line).await {
                Ok(Step::Print { text, ok: false }) => assert_eq!(text, want, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        // JSON keeps its shape: the rows, also for one match or none.
        let json = execute(
            &mut e,
            Action::ShowBackends,
            Some("zz"),
            OutputFormat::Json,
            0,
        )
        .await;
        assert_eq!(printed(json), "{\n  \"backends\": []\n}\n");
        let json = execute(&mut e, Action::ShowBackends, None, OutputFormat::Json, 0).await;
        let v: serde_json::Value = serde_json::from_str(&printed(json)).expect("JSON");
        assert_eq!(v["backends"][0]["status"], "partially disabled");
        assert_eq!(v["backends"][1]["healthy"], 0);
        e.vservers.clear();
        match text(&mut e, "sh ba").await {
            Ok(Step::Print { text, ok: false }) => assert_eq!(text, "no backends found\n"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn healthchecks_list_every_check() {
        let mut d = dest("web", "127.0.0.2", "be1.demo.", true);
        d.checks = vec![pb::CheckStatus {
            name: "HTTP/80".into(),
            id: 255,
            state: "healthy".into(),
            message: "200 OK".into(),
            stats: Some(pb::ProbeStats {
                successes: 3,
                failures: 1,
                last_latency_us: 1234,
                ..Default::default()
            }),
        }];
        let mut e = FakeEngine {
            vservers: vec![pb::VserverStatus {
                name: "web".into(),
                services: vec![pb::ServiceStatus {
                    destinations: vec![d],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let c = printed(text(&mut e, "sh he").await);
        assert!(
            c.contains(
                "00000000000000ff  web/127.0.0.2:80/TCP  HTTP/80  healthy  1.2 ms      3/1            200 OK"
            ),
            "{c}"
        );
    }

    #[tokio::test]
    async fn nodes_list_and_one_node_in_detail() {
        let node = |host: &str, ipv4: &str, ha: bool, local: bool| pb::Node {
            hostname: host.into(),
            ipv4: ipv4.into(),
            priority: if local { 255 } else { 1 },
            ha_enabled: ha,
            vservers_enabled: true,
            is_local: local,
            ..Default::default()
        };
        let mut e = FakeEngine {
            cluster: pb::ClusterStatus {
                site: "demo".into(),
                nodes: vec![
                    node("lb1.demo.", "192.0.2.1", true, true),
                    node("lb2.demo.", "192.0.2.2", false, false),
                ],
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            printed(text(&mut e, "sh n").await),
            "Nodes\n\
             [1] lb1.demo. enabled   IPv4 192.0.2.1  IPv6 -  priority 255  (this node)\n\
             [2] lb2.demo. disabled  IPv4 192.0.2.2  IPv6 -  priority 1\n"
        );
        assert_eq!(
            printed(text(&mut e, "sh n lb2.demo.").await),
            "Node\n\
             \x20 Hostname:            lb2.demo.\n\
             \x20 Site:                demo\n\
             \x20 IPv4 Address:        192.0.2.2\n\
             \x20 IPv6 Address:        <not configured>\n\
             \x20 HA Enabled:          false\n\
             \x20 Anycast Enabled:     false\n\
             \x20 BGP Enabled:         false\n\
             \x20 Vservers Enabled:    true\n\
             \x20 Priority:            1\n\
             \x20 This Node:           false\n"
        );
        assert!(
            printed(text(&mut e, "sh n lb1").await)
                .starts_with("Node\n  Hostname:            lb1.demo.\n")
        );
        assert!(printed(text(&mut e, "sh n lb").await).starts_with("Nodes\n[1] lb1.demo. enabled"));
        match text(&mut e, "sh n lb9").await {
            Ok(Step::Print { text, ok: false }) => assert_eq!(text, "node \"lb9\" not found\n"),
            other => panic!("{other:?}"),
        }
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
        let socket = dir.path().join("engine.sock");
        assert_eq!(one_shot(&socket, "show ha", OutputFormat::Text), 69);
        assert_eq!(one_shot(&socket, "show bogus", OutputFormat::Text), 64);
        assert_eq!(one_shot(&socket, "show", OutputFormat::Text), 64);
        assert_eq!(one_shot(&socket, "show ?", OutputFormat::Text), 0);
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
