//! Progress on long work: a command that takes more than a second (an import, a rollback, a
//! reload that applies thousands of changes) shows a spinner with what it is doing, counts where
//! known, and the time so far, on one line of the terminal that is cleared when it ends. Nothing
//! is drawn for quick commands or when stderr is not a terminal (scripts see only the reply).

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use crate::tree::{Action, PreviewKind};

/// How long a command runs before the spinner appears.
pub const AFTER: Duration = Duration::from_secs(1);
/// How often the spinner turns.
const TICK: Duration = Duration::from_millis(100);
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// What the spinner says for `action` (with its argument).
pub fn label(action: Action, arg: Option<&str>) -> String {
    match (action, arg) {
        (Action::ConfigImport, Some(path)) => {
            // A count the operator can relate to: the YAML documents in the file.
            let docs = std::fs::read_to_string(path)
                .map(|t| t.lines().filter(|l| l.starts_with("kind:")).count())
                .unwrap_or(0);
            format!("importing {docs} documents from {path}")
        }
        (Action::ConfigRollback, Some(id)) => format!("rolling back to version {id}"),
        (Action::ConfigReload, _) => "reloading the configuration".to_owned(),
        (Action::ConfigPreview(PreviewKind::Reload), _) => "previewing the reload".to_owned(),
        (Action::ConfigPreview(PreviewKind::Rollback), id) => {
            format!("previewing the rollback to version {}", id.unwrap_or("?"))
        }
        _ => "waiting for the engine".to_owned(),
    }
}

/// Runs `work`; if it takes longer than [`AFTER`], draws a spinner with `label` on `out` until it
/// ends, then clears the line.
pub async fn run<T>(label: &str, out: &mut impl Write, work: impl Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    let start = tokio::time::Instant::now();
    tokio::select! {
        v = &mut work => return v,
        () = tokio::time::sleep(AFTER) => {}
    }
    let mut tick = tokio::time::interval(TICK);
    let mut frame = 0usize;
    let v = loop {
        tokio::select! {
            v = &mut work => break v,
            _ = tick.tick() => {
                let secs = start.elapsed().as_secs();
                let _ = write!(out, "\r{} {label} ... {secs} s", FRAMES[frame % FRAMES.len()]);
                let _ = out.flush();
                frame += 1;
            }
        }
    };
    // Clear the spinner's line; the reply prints where it was.
    let _ = write!(out, "\r\x1b[K");
    let _ = out.flush();
    v
}

/// [`run`] on stderr when it is a terminal; otherwise just `work`.
pub async fn on_terminal<T>(label: &str, work: impl Future<Output = T>) -> T {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        run(label, &mut std::io::stderr(), work).await
    } else {
        work.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `run` draws for work called `what` that takes `ms`; the work's value comes back.
    async fn drawn(what: &str, ms: u64) -> String {
        let mut out = Vec::new();
        let v = run(what, &mut out, async {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        })
        .await;
        assert_eq!(v, ms);
        String::from_utf8(out).expect("utf-8")
    }

    #[tokio::test(start_paused = true)]
    async fn long_work_spins_with_its_time_and_clears_the_line() {
        let text = drawn("importing 3 documents from a.yaml", 2_500).await;
        assert!(
            text.starts_with("\r⠋ importing 3 documents from a.yaml ... 1 s"),
            "{text:?}"
        );
        assert!(text.contains("... 2 s"), "{text:?}");
        assert!(text.contains('⠙'), "the spinner turns: {text:?}");
        assert!(text.ends_with("\r\x1b[K"), "{text:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn quick_work_draws_nothing() {
        assert_eq!(drawn("x", 500).await, "");
    }

    #[test]
    fn an_import_is_labelled_with_its_document_count() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pools.yaml");
        std::fs::write(&path, "kind: Pool\nname: a\n---\nkind: Pool\nname: b\n").expect("write");
        let path = path.to_string_lossy().into_owned();
        assert_eq!(
            label(Action::ConfigImport, Some(&path)),
            format!("importing 2 documents from {path}")
        );
        assert_eq!(
            label(Action::ConfigRollback, Some("4")),
            "rolling back to version 4"
        );
    }
}
