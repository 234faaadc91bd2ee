//! The command tree: one table ([`COMMANDS`]) that drives dispatch, `?` help and Tab completion,
//! with Seesaw's matching rule: each word may be abbreviated to any unique prefix (`sh vs` is
//! `show vservers`), and an exact word always wins over a longer one it is a prefix of.

/// What a complete command does. The shell maps each to one engine call and one formatter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `show vservers [name|prefix]`.
    ShowVservers,
    /// `show ha`.
    ShowHa,
    /// `show bgp neighbors [ip]`.
    ShowBgpNeighbors,
    /// `show nodes [host]`.
    ShowNodes,
    /// `show warnings`.
    ShowWarnings,
    /// `config reload`.
    ConfigReload,
    /// `config status`.
    ConfigStatus,
    /// `help`.
    Help,
    /// `exit` and `quit`.
    Exit,
    /// `override vserver|backend|destination state default|disabled|enabled <name>`.
    Override(OverrideKind, OverrideSet),
    /// `config source [disk|server|peer|etcd|none]`.
    ConfigSource,
    /// `failover`: the master hands over to its peer.
    Failover,
    /// `show backends [prefix]`: every backend host with its destinations' health.
    ShowBackends,
    /// `show destinations [prefix]`: every destination.
    ShowDestinations,
    /// `show healthchecks [prefix]`: every check of every destination.
    ShowHealthchecks,
    /// `show vlans [id|ip]`.
    ShowVlans,
    /// `show version`.
    ShowVersion,
    /// `config history`: the saved cluster.pb versions.
    ConfigHistory,
    /// `config rollback <id>`.
    ConfigRollback,
    /// `trace tcp|udp <client-ip:port> <vip:port>`: which vserver, service and backend the flow
    /// gets, and why others do not.
    Trace(TraceProto),
    /// `config reload --dry-run` and `config rollback <id> --dry-run`: what the change would do,
    /// nothing applied.
    ConfigPreview(PreviewKind),
    /// `config import <file>`: YAML (Parasaus Service + Endpoints, or `kind: Pool`).
    ConfigImport,
}

/// The protocol of `trace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceProto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl TraceProto {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// What `--dry-run` previews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewKind {
    /// `config reload --dry-run`.
    Reload,
    /// `config rollback <id> --dry-run`.
    Rollback,
}

/// What an override names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideKind {
    /// A vserver by name.
    Vserver,
    /// A backend host by hostname, in every vserver.
    Backend,
    /// One destination, `<vserver>/<ip>:<port>/<proto>`.
    Destination,
}

/// The state an override sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideSet {
    /// Follow the configuration again.
    Default,
    /// Force disabled.
    Disabled,
    /// Force enabled.
    Enabled,
}

/// An optional free-form argument after a command word (e.g. a vserver name).
#[derive(Debug)]
pub struct ArgSpec {
    /// Shown in `?` help as `<name>`.
    pub name: &'static str,
    /// One-line help.
    pub help: &'static str,
}

/// One word of the tree. A node either has children (a group such as `show`) or an action; an
/// action may take one optional argument.
#[derive(Debug)]
pub struct Node {
    /// The full word.
    pub word: &'static str,
    /// One-line help shown by `?`.
    pub help: &'static str,
    /// The words that may follow.
    pub children: &'static [Node],
    /// What the command does when the line ends here.
    pub action: Option<Action>,
    /// The optional argument the action takes.
    pub arg: Option<ArgSpec>,
}

const fn group(word: &'static str, help: &'static str, children: &'static [Node]) -> Node {
    Node {
        word,
        help,
        children,
        action: None,
        arg: None,
    }
}

const fn command(word: &'static str, help: &'static str, action: Action) -> Node {
    Node {
        word,
        help,
        children: &[],
        action: Some(action),
        arg: None,
    }
}

const fn with_arg(
    word: &'static str,
    help: &'static str,
    action: Action,
    name: &'static str,
    arg_help: &'static str,
) -> Node {
    Node {
        word,
        help,
        children: &[],
        action: Some(action),
        arg: Some(ArgSpec {
            name,
            help: arg_help,
        }),
    }
}

macro_rules! override_states {
    ($kind:expr, $name:expr, $arg_help:expr) => {
        &[group(
            "state",
            "Set the override state",
            &[
                with_arg(
                    "default",
                    "Follow the configuration",
                    Action::Override($kind, OverrideSet::Default),
                    $name,
                    $arg_help,
                ),
                with_arg(
                    "disabled",
                    "Force disabled",
                    Action::Override($kind, OverrideSet::Disabled),
                    $name,
                    $arg_help,
                ),
                with_arg(
                    "enabled",
                    "Force enabled",
                    Action::Override($kind, OverrideSet::Enabled),
                    $name,
                    $arg_help,
                ),
            ],
        )]
    };
}

/// The shell's commands. Order is the order `?` and Tab list them.
pub static COMMANDS: &[Node] = &[
    group(
        "config",
        "Configuration commands",
        &[
            command(
                "history",
                "Show the saved cluster.pb versions",
                Action::ConfigHistory,
            ),
            with_arg(
                "import",
                "Import vservers from a YAML file",
                Action::ConfigImport,
                "file",
                "Parasaus Service + Endpoints documents, or kind: Pool documents",
            ),
            command(
                "reload",
                "Reload the cluster configuration",
                Action::ConfigReload,
            ),
            with_arg(
                "rollback",
                "Restore a saved cluster.pb version and apply it",
                Action::ConfigRollback,
                "id",
                "The version id, as `config history` lists it",
            ),
            with_arg(
                "source",
                "Show or set the configuration source",
                Action::ConfigSource,
                "disk|server|peer|etcd|none",
                "The new source (omit to show the current one)",
            ),
            command(
                "status",
                "Show the configuration status",
                Action::ConfigStatus,
            ),
        ],
    ),
    command("exit", "Leave the shell", Action::Exit),
    command(
        "failover",
        "Hand mastership to the peer (run on the master)",
        Action::Failover,
    ),
    command("help", "Explain how to get help", Action::Help),
    group(
        "override",
        "Override the configuration",
        &[
            group(
                "backend",
                "Override a backend in every vserver",
                override_states!(OverrideKind::Backend, "hostname", "The backend's hostname"),
            ),
            group(
                "destination",
                "Override one destination",
                override_states!(
                    OverrideKind::Destination,
                    "destination",
                    "<vserver>/<ip>:<port>/<proto>, as `show vservers` names it"
                ),
            ),
            group(
                "vserver",
                "Override a vserver",
                override_states!(OverrideKind::Vserver, "vserver", "The vserver's name"),
            ),
        ],
    ),
    command("quit", "Leave the shell", Action::Exit),
    group(
        "show",
        "Show state",
        &[
            with_arg(
                "backends",
                "Show backends",
                Action::ShowBackends,
                "prefix",
                "Backends whose hostname starts with it; one match is shown in detail",
            ),
            group(
                "bgp",
                "Show BGP state",
                &[with_arg(
                    "neighbors",
                    "Show the BGP neighbours and the routes this node announces",
                    Action::ShowBgpNeighbors,
                    "ip",
                    "Only this neighbour, in detail",
                )],
            ),
            with_arg(
                "destinations",
                "Show destinations",
                Action::ShowDestinations,
                "prefix",
                "Destinations whose name starts with it; one match is shown in detail",
            ),
            command("ha", "Show the HA status", Action::ShowHa),
            with_arg(
                "healthchecks",
                "Show health checks",
                Action::ShowHealthchecks,
                "prefix",
                "Only checks of destinations whose name starts with it",
            ),
            with_arg(
                "nodes",
                "Show the cluster's nodes",
                Action::ShowNodes,
                "host",
                "The node with this hostname, in detail (a prefix lists the matches)",
            ),
            command(
                "version",
                "Show the shell's and the engine's version",
                Action::ShowVersion,
            ),
            with_arg(
                "vlans",
                "Show VLANs",
                Action::ShowVlans,
                "id|ip",
                "The VLAN with this id or whose subnet holds this address, in detail",
            ),
            Node {
                word: "vservers",
                help: "Show vservers",
                children: &[],
                action: Some(Action::ShowVservers),
                arg: Some(ArgSpec {
                    name: "name|prefix",
                    help: "Only the vserver with this name, or whose name starts with it",
                }),
            },
            command(
                "warnings",
                "Show configuration warnings",
                Action::ShowWarnings,
            ),
        ],
    ),
    group(
        "trace",
        "Show which vserver, service and backend a flow gets, and why",
        &[
            with_arg(
                "tcp",
                "A TCP flow",
                Action::Trace(TraceProto::Tcp),
                "client-ip:port vip:port",
                "The client's address and port, then the VIP's",
            ),
            with_arg(
                "udp",
                "A UDP flow",
                Action::Trace(TraceProto::Udp),
                "client-ip:port vip:port",
                "The client's address and port, then the VIP's",
            ),
        ],
    ),
];

/// A line the shell understood.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Nothing but whitespace.
    Empty,
    /// A complete command.
    Run {
        /// What to do.
        action: Action,
        /// The argument, if the command takes one and it was given.
        arg: Option<String>,
    },
    /// The line asked for help with `?`: the possible next words.
    Help {
        /// The line up to the `?` (the shell offers it again as the next input).
        prefix: String,
        /// The choices.
        options: Vec<HelpLine>,
    },
}

/// One choice listed by `?`.
#[derive(Debug, PartialEq, Eq)]
pub struct HelpLine {
    /// A word, `<argument>`, or `<cr>` when the line may end here.
    pub word: String,
    /// One-line help.
    pub help: &'static str,
}

/// Why a line is not a command. The texts are operator-facing and follow Seesaw's shell
/// (capitalised, with a full stop), which is why they differ from the usual error style.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A word matches nothing at its position.
    #[error("Unknown command \"{0}\".")]
    Unknown(String),
    /// A word is a prefix of several words.
    #[error("Ambiguous command \"{word}\": {}.", candidates.join(", "))]
    Ambiguous {
        /// The word typed.
        word: String,
        /// Every word it could mean.
        candidates: Vec<&'static str>,
    },
    /// The line stops at a group (e.g. just `show`).
    #[error("Incomplete command.")]
    Incomplete,
    /// A quote is not closed.
    #[error("Unbalanced quotes.")]
    Quotes,
    /// `--dry-run` after a command that has no preview.
    #[error("--dry-run applies to `config reload` and `config rollback <id>` only.")]
    NoDryRun,
}

/// Parses `line` against `tree`.
pub fn parse(tree: &'static [Node], line: &str) -> Result<Parsed, ParseError> {
    let mut words = shlex::split(line).ok_or(ParseError::Quotes)?;
    let dry_run = words.iter().any(|w| w == "--dry-run");
    words.retain(|w| w != "--dry-run");
    if let Some(i) = words.iter().position(|w| w.contains('?')) {
        let partial = words[i].split('?').next().unwrap_or_default();
        let options = help_at(tree, &words[..i], partial)?;
        // Offer the words before the `?` (plus the partial word) as the next input.
        let mut prefix = words[..i].join(" ");
        if !prefix.is_empty() {
            prefix.push(' ');
        }
        prefix.push_str(partial);
        return Ok(Parsed::Help { prefix, options });
    }
    if words.is_empty() {
        return Ok(Parsed::Empty);
    }
    let walk = walk(tree, &words)?;
    let action = match (walk.node.and_then(|n| n.action), dry_run) {
        (None, _) => return Err(ParseError::Incomplete),
        (Some(a), false) => a,
        (Some(Action::ConfigReload), true) => Action::ConfigPreview(PreviewKind::Reload),
        (Some(Action::ConfigRollback), true) => Action::ConfigPreview(PreviewKind::Rollback),
        (Some(_), true) => return Err(ParseError::NoDryRun),
    };
    Ok(Parsed::Run {
        action,
        arg: walk.arg,
    })
}

/// Tab completion: for the text before the cursor, the byte offset where the word being typed
/// starts and the full words it can become. Nothing is offered after a word that does not match.
pub fn complete(tree: &'static [Node], before_cursor: &str) -> (usize, Vec<&'static str>) {
    let start = before_cursor
        .rfind(char::is_whitespace)
        .map_or(0, |i| i + 1);
    let partial = &before_cursor[start..];
    let words: Vec<String> = before_cursor[..start]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let Ok(walk) = walk(tree, &words) else {
        return (start, Vec::new());
    };
    if walk.arg.is_some() {
        return (start, Vec::new());
    }
    let children = walk.node.map_or(tree, |n| n.children);
    let candidates = children
        .iter()
        .filter(|c| c.word.starts_with(partial))
        .map(|c| c.word)
        .collect();
    (start, candidates)
}

/// Where a sequence of words leads: the node of the last command word (`None` at the root) and
/// the argument, if a word was taken as one.
struct Walk {
    node: Option<&'static Node>,
    arg: Option<String>,
}

fn walk(tree: &'static [Node], words: &[String]) -> Result<Walk, ParseError> {
    let mut at = Walk {
        node: None,
        arg: None,
    };
    for word in words {
        // `trace` takes two words: the client, then the VIP.
        if let (
            Some(arg),
            Some(Node {
                action: Some(Action::Trace(_)),
                ..
            }),
        ) = (at.arg.as_mut(), at.node)
            && !arg.contains(' ')
        {
            arg.push(' ');
            arg.push_str(word);
            continue;
        }
        if at.arg.is_some() {
            return Err(ParseError::Unknown(word.clone()));
        }
        let children = at.node.map_or(tree, |n| n.children);
        match find(children, word) {
            Ok(node) => at.node = Some(node),
            Err(ParseError::Unknown(_)) if at.node.is_some_and(|n| n.arg.is_some()) => {
                at.arg = Some(word.clone());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

fn find(children: &'static [Node], word: &str) -> Result<&'static Node, ParseError> {
    if let Some(exact) = children.iter().find(|c| c.word == word) {
        return Ok(exact);
    }
    let matches: Vec<&'static Node> = children
        .iter()
        .filter(|c| !word.is_empty() && c.word.starts_with(word))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(ParseError::Unknown(word.to_owned())),
        many => Err(ParseError::Ambiguous {
            word: word.to_owned(),
            candidates: many.iter().map(|n| n.word).collect(),
        }),
    }
}

fn help_at(
    tree: &'static [Node],
    words: &[String],
    partial: &str,
) -> Result<Vec<HelpLine>, ParseError> {
    let at = walk(tree, words)?;
    let cr = HelpLine {
        word: "<cr>".to_owned(),
        help: "Run the command",
    };
    if at.arg.is_some() {
        return Ok(vec![cr]);
    }
    let children = at.node.map_or(tree, |n| n.children);
    let mut options: Vec<HelpLine> = children
        .iter()
        .filter(|c| c.word.starts_with(partial))
        .map(|c| HelpLine {
            word: c.word.to_owned(),
            help: c.help,
        })
        .collect();
    if let Some(node) = at.node {
        if let Some(arg) = &node.arg {
            options.push(HelpLine {
                word: format!("<{}>", arg.name),
                help: arg.help,
            });
        }
        if node.action.is_some() && partial.is_empty() {
            options.push(cr);
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests;
