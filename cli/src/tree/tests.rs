//! Parsing, `?` help and completion of the command tree.

use super::*;

/// A tree with words sharing prefixes, which the real tree happens not to have.
static TEST_TREE: &[Node] = &[
    group(
        "show",
        "Show",
        &[
            command("stats", "Stats", Action::ShowHa),
            command("status", "Status", Action::ShowNodes),
            command("stat", "Stat", Action::ShowWarnings),
        ],
    ),
    command("shutdown", "Shutdown", Action::Exit),
];

/// The top-level words, in order.
const TOP: [&str; 8] = [
    "config", "exit", "failover", "help", "override", "quit", "show", "trace",
];

/// The words after `show`, in order.
const SHOW: [&str; 10] = [
    "backends",
    "bgp",
    "destinations",
    "ha",
    "healthchecks",
    "nodes",
    "version",
    "vlans",
    "vservers",
    "warnings",
];

fn run(line: &str) -> Result<(Action, Option<String>), ParseError> {
    match parse(COMMANDS, line)? {
        Parsed::Run { action, arg } => Ok((action, arg)),
        other => panic!("expected a command for {line:?}, got {other:?}"),
    }
}

fn help_words(tree: &'static [Node], line: &str) -> Vec<String> {
    match parse(tree, line) {
        Ok(Parsed::Help { options, .. }) => options.into_iter().map(|o| o.word).collect(),
        other => panic!("expected help for {line:?}, got {other:?}"),
    }
}

#[test]
fn full_words_and_unique_prefixes_dispatch() {
    let runs: &[(&str, Action, Option<&str>)] = &[
        ("show vservers", Action::ShowVservers, None),
        ("sh vs", Action::ShowVservers, None),
        ("  s vs web@demo ", Action::ShowVservers, Some("web@demo")),
        ("conf rel", Action::ConfigReload, None),
        ("c st", Action::ConfigStatus, None),
        ("c so disk", Action::ConfigSource, Some("disk")),
        (
            "ov dest st en web@demo/127.0.0.2:80/TCP",
            Action::Override(OverrideKind::Destination, OverrideSet::Enabled),
            Some("web@demo/127.0.0.2:80/TCP"),
        ),
        ("show ha", Action::ShowHa, None),
        ("sh bgp n", Action::ShowBgpNeighbors, None),
        (
            "sh bgp n 192.0.2.254",
            Action::ShowBgpNeighbors,
            Some("192.0.2.254"),
        ),
        ("fail", Action::Failover, None),
        ("sh n", Action::ShowNodes, None),
        ("sh w", Action::ShowWarnings, None),
        ("sh ba be1", Action::ShowBackends, Some("be1")),
        ("sh d", Action::ShowDestinations, None),
        ("sh n lb1", Action::ShowNodes, Some("lb1")),
        ("sh he", Action::ShowHealthchecks, None),
        ("sh ver", Action::ShowVersion, None),
        ("sh vl 10", Action::ShowVlans, Some("10")),
        ("c hi", Action::ConfigHistory, None),
        ("c ro 3", Action::ConfigRollback, Some("3")),
        (
            "c im /tmp/a.yaml",
            Action::ConfigImport,
            Some("/tmp/a.yaml"),
        ),
        ("q", Action::Exit, None),
        ("exit", Action::Exit, None),
        ("he", Action::Help, None),
        ("show vservers 'a b'", Action::ShowVservers, Some("a b")),
    ];
    for (line, action, arg) in runs {
        assert_eq!(run(line), Ok((*action, arg.map(str::to_owned))), "{line:?}");
    }
    assert_eq!(parse(COMMANDS, "   "), Ok(Parsed::Empty));
    assert_eq!(
        parse(COMMANDS, "conf rel --dry-run"),
        Ok(Parsed::Run {
            action: Action::ConfigPreview(PreviewKind::Reload),
            arg: None
        })
    );
    assert_eq!(
        parse(COMMANDS, "config rollback --dry-run 3"),
        Ok(Parsed::Run {
            action: Action::ConfigPreview(PreviewKind::Rollback),
            arg: Some("3".to_owned())
        })
    );
    assert_eq!(
        parse(COMMANDS, "show ha --dry-run"),
        Err(ParseError::NoDryRun)
    );
    assert_eq!(
        parse(COMMANDS, "tr t 10.9.0.1:4000 10.0.0.1:80"),
        Ok(Parsed::Run {
            action: Action::Trace(TraceProto::Tcp),
            arg: Some("10.9.0.1:4000 10.0.0.1:80".to_owned())
        })
    );
    assert_eq!(
        parse(COMMANDS, "trace udp a b c"),
        Err(ParseError::Unknown("c".to_owned()))
    );
}

#[test]
fn unknown_incomplete_and_extra_words_are_errors() {
    let unknown = |w: &str| Err(ParseError::Unknown(w.into()));
    for (line, want) in [
        ("shw ha", unknown("shw")),
        ("show bogus", unknown("bogus")),
        ("show", Err(ParseError::Incomplete)),
        ("config", Err(ParseError::Incomplete)),
        ("show ha now", unknown("now")),
        ("show vservers a b", unknown("b")),
        ("show 'ha", Err(ParseError::Quotes)),
    ] {
        assert_eq!(parse(COMMANDS, line), want, "{line}");
    }
    assert_eq!(
        ParseError::Unknown("x".into()).to_string(),
        "Unknown command \"x\"."
    );
    assert_eq!(ParseError::Incomplete.to_string(), "Incomplete command.");
}

#[test]
fn ambiguity_lists_candidates_and_exact_words_win() {
    let err = parse(TEST_TREE, "sh").unwrap_err();
    assert_eq!(
        err,
        ParseError::Ambiguous {
            word: "sh".into(),
            candidates: vec!["show", "shutdown"]
        }
    );
    assert_eq!(err.to_string(), "Ambiguous command \"sh\": show, shutdown.");
    assert!(matches!(
        parse(TEST_TREE, "sho stat"),
        Ok(Parsed::Run {
            action: Action::ShowWarnings,
            ..
        })
    ));
    assert!(matches!(
        parse(TEST_TREE, "sho statu"),
        Ok(Parsed::Run {
            action: Action::ShowNodes,
            ..
        })
    ));
    assert_eq!(
        parse(TEST_TREE, "sho sta").unwrap_err(),
        ParseError::Ambiguous {
            word: "sta".into(),
            candidates: vec!["stats", "status", "stat"]
        }
    );
}

#[test]
fn question_mark_lists_next_words_anywhere() {
    assert_eq!(help_words(COMMANDS, "?"), TOP);
    assert_eq!(help_words(COMMANDS, "show ?"), SHOW);
    assert_eq!(help_words(COMMANDS, "sh w?"), ["warnings"]);
    assert_eq!(help_words(COMMANDS, "c?"), ["config"]);
    assert_eq!(help_words(COMMANDS, "sh vs ?"), ["<name|prefix>", "<cr>"]);
    assert_eq!(help_words(COMMANDS, "sh vs web ?"), ["<cr>"]);
    assert_eq!(help_words(COMMANDS, "show ha ?"), ["<cr>"]);
    assert_eq!(
        help_words(TEST_TREE, "show stat?"),
        ["stats", "status", "stat"]
    );
    // Words after the `?` are ignored; a bad word before it is still an error.
    assert_eq!(
        help_words(COMMANDS, "config ? junk"),
        [
            "history", "import", "reload", "rollback", "source", "status"
        ]
    );
    assert_eq!(
        parse(COMMANDS, "bogus ?"),
        Err(ParseError::Unknown("bogus".into()))
    );
    match parse(COMMANDS, "sh  vs?") {
        Ok(Parsed::Help { prefix, options }) => {
            assert_eq!(prefix, "sh vs");
            assert_eq!(options[0].help, "Show vservers");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn completion_walks_the_same_tree() {
    assert_eq!(complete(COMMANDS, ""), (0, TOP.to_vec()));
    assert_eq!(complete(COMMANDS, "s"), (0, vec!["show"]));
    assert_eq!(complete(COMMANDS, "sh "), (3, SHOW.to_vec()));
    assert_eq!(
        complete(COMMANDS, "sh v"),
        (3, vec!["version", "vlans", "vservers"])
    );
    assert_eq!(complete(COMMANDS, "sh vs"), (3, vec!["vservers"]));
    assert_eq!(complete(COMMANDS, "config re"), (7, vec!["reload"]));
    assert_eq!(
        complete(COMMANDS, "config r"),
        (7, vec!["reload", "rollback"])
    );
    assert_eq!(complete(COMMANDS, "config x"), (7, vec![]));
    assert_eq!(complete(COMMANDS, "bogus s"), (6, vec![]));
    assert_eq!(complete(COMMANDS, "show vservers web "), (18, vec![]));
    assert_eq!(
        complete(TEST_TREE, "show sta"),
        (5, vec!["stats", "status", "stat"])
    );
}
