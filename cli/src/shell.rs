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
use crate::view::{self, VersionView, WarningsView};
use seesaw_status::{
    BgpNeighbor, Cluster, ConfigStatus, FlowTrace, HaStatus, Outcome, Preview, Version, Vlan,
    Vserver,
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
            let all: Vec<Vserver> = engine
                .vservers(arg.unwrap_or_default())
                .await?
                .into_iter()
                .map(Vserver::from)
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
            let ha = HaStatus::from(engine.ha_status().await?);
            let text = json_or_text(json, &ha, |v| format::ha(v, now_ms));
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
                let all = n.neighbors.into_iter().map(BgpNeighbor::from).collect();
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
            let mut cluster = Cluster::from(engine.cluster_status().await?);
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
            let warnings = WarningsView::from(ConfigStatus::from(engine.config_status().await?));
            let text = json_or_text(json, &warnings, format::warnings);
            (text, true)
        }
        Action::ConfigStatus => {
            let status = ConfigStatus::from(engine.config_status().await?);
            let text = json_or_text(json, &status, |v| format::config_status(v, now_ms));
            (text, true)
        }
        Action::ConfigReload => {
            let reply = Outcome::from(engine.config_reload().await?);
            let text = json_or_text(json, &reply, format::reload);
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
                Ok(message) => (message_text(json, &message), true),
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
            let all: Vec<Vserver> = engine
                .vservers("")
                .await?
                .into_iter()
                .map(Vserver::from)
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
            let rows: Vec<Vlan> = engine.vlans().await?.into_iter().map(Vlan::from).collect();
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
            let text = json_or_text(json, &v, format::version);
            (text, true)
        }
        Action::ConfigHistory => {
            let rows: Vec<Version> = engine
                .history()
                .await?
                .into_iter()
                .map(Version::from)
                .collect();
            let text = if json {
                to_json(&serde_json::json!({ "versions": rows }))
            } else {
                format::history(&rows, now_ms)
            };
            (text, true)
        }
        Action::Trace(proto) => {
            let words: Vec<&str> = arg.unwrap_or_default().split_whitespace().collect();
            let [client, vip] = words.as_slice() else {
                return Ok(Step::Print {
                    text: "trace needs the client's ip:port and the VIP's ip:port\n".into(),
                    ok: false,
                });
            };
            let req = seesaw_proto::engine::TraceRequest {
                protocol: proto.as_str().to_owned(),
                client: (*client).to_owned(),
                vip: (*vip).to_owned(),
            };
            let answer = engine.trace(req).await.map(FlowTrace::from);
            shown(answer, "Trace", json, crate::trace::render, |t| t.matched)?
        }
        Action::ConfigPreview(kind) => {
            use seesaw_proto::engine::preview_request::Change;
            let change = match (kind, arg.map(str::parse::<u64>)) {
                (tree::PreviewKind::Reload, _) => Change::Reload(true),
                (tree::PreviewKind::Rollback, Some(Ok(id))) => Change::RollbackId(id),
                (tree::PreviewKind::Rollback, _) => {
                    return Ok(Step::Print {
                        text: "config rollback needs a version id (see `config history`)\n".into(),
                        ok: false,
                    });
                }
            };
            let answer = engine.preview(change).await.map(Preview::from);
            shown(answer, "Preview", json, format::preview, Preview::valid)?
        }
        Action::ConfigRollback => {
            let Some(id) = arg.and_then(|a| a.parse::<u64>().ok()) else {
                return Ok(Step::Print {
                    text: "config rollback needs a version id (see `config history`)\n".into(),
                    ok: false,
                });
            };
            let answer = engine.rollback(id).await.map(Outcome::from);
            shown(answer, "Rollback", json, format::reload, |r| r.applied)?
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
            Ok(message) => (message_text(json, &message), true),
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
    let label = crate::progress::label(action, arg.as_deref());
    let result = runtime.block_on(async {
        let mut engine = GrpcEngine::new(socket);
        let work = execute(&mut engine, action, arg.as_deref(), output, now_ms());
        crate::progress::on_terminal(&label, work).await
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
                let label = crate::progress::label(action, arg.as_deref());
                let work = execute(&mut engine, action, arg.as_deref(), output, now_ms());
                let step = runtime.block_on(crate::progress::on_terminal(&label, work));
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
fn select_vservers(mut all: Vec<Vserver>, filter: Option<&str>) -> Vec<Vserver> {
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
    vservers: &'a [Vserver],
}

/// `show bgp neighbors`: one block per neighbour, then the announced routes.
fn bgp_neighbors(n: &seesaw_proto::ncc::BgpNeighborList) -> String {
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

fn bgp_json(n: &seesaw_proto::ncc::BgpNeighborList) -> serde_json::Value {
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

/// What an engine's answer prints: JSON or the shell's `text`, and whether it went through
/// (`ok`); a refusal prints "<what> refused: <why>", other errors end the command.
fn shown<T: Serialize>(
    answer: Result<T, EngineError>,
    what: &str,
    json: bool,
    text: impl FnOnce(&T) -> String,
    ok: impl FnOnce(&T) -> bool,
) -> Result<(String, bool), EngineError> {
    match answer {
        Ok(v) => Ok((json_or_text(json, &v, text), ok(&v))),
        Err(EngineError::Rpc(why)) => Ok((format!("{what} refused: {why}\n"), false)),
        Err(e) => Err(e),
    }
}

/// The engine's message, as JSON (`{"message": …}`) or as a line.
fn message_text(json: bool, message: &str) -> String {
    if json {
        to_json(&serde_json::json!({ "message": message }))
    } else {
        format!("{message}\n")
    }
}

/// `value` as JSON, or as the shell's `text` shows it.
fn json_or_text<T: Serialize>(json: bool, value: &T, text: impl FnOnce(&T) -> String) -> String {
    if json { to_json(value) } else { text(value) }
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
mod tests;
