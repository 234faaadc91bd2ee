//! Talking to the kernel through the `nft` binary: `nft -j list table …` to read, `nft -f -` to
//! apply one script as one transaction. Every call has a deadline; a hung `nft` is killed.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::NccError;

/// Reads and writes our nftables tables.
pub trait NftRunner: Clone + Send + 'static {
    /// The JSON listing of `table` (`"inet seesaw"`), or an empty string when it does not exist.
    fn list(&self, table: &str) -> Result<String, NccError>;
    /// Applies `script` as one transaction.
    fn run(&self, script: &str) -> Result<(), NccError>;
    /// The kernel's ruleset generation (bumped by every committed transaction, anyone's), or
    /// `None` when it cannot be read: then the plane re-reads its tables before every diff.
    fn generation(&self) -> Option<u32> {
        None
    }
    /// A netlink channel for nf_tables batches ([`super::wire::Batch`]), when this runner has
    /// one: then the plane sends the transactions a batch can carry that way, and scripts for
    /// the rest. `None` (the binary, test recorders): every transaction is a script.
    fn batches(&self) -> Option<&std::sync::Mutex<super::loads::NfnlLoads>> {
        None
    }
}

/// The `nft` command-line tool.
#[derive(Debug, Clone)]
pub struct NftCli {
    /// Path of `nft`.
    pub bin: PathBuf,
    /// Deadline of one call.
    pub deadline: Duration,
}

impl Default for NftCli {
    fn default() -> Self {
        Self {
            bin: PathBuf::from("nft"),
            deadline: Duration::from_secs(120),
        }
    }
}

/// Output of one `nft` run.
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl NftCli {
    fn exec(&self, args: &[&str], stdin: Option<&str>) -> Result<Out, NccError> {
        let mut child = Command::new(&self.bin)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| NccError::Plane(format!("cannot run {}: {e}", self.bin.display())))?;
        let writer = match (stdin, child.stdin.take()) {
            (Some(text), Some(mut pipe)) => {
                let text = text.to_owned();
                Some(std::thread::spawn(move || pipe.write_all(text.as_bytes())))
            }
            _ => None,
        };
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let out_t = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(p) = stdout.as_mut() {
                let _ = p.read_to_string(&mut s);
            }
            s
        });
        let err_t = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(p) = stderr.as_mut() {
                let _ = p.read_to_string(&mut s);
            }
            s
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if start.elapsed() > self.deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(NccError::Plane(format!(
                        "nft {} did not finish within {:?}",
                        args.join(" "),
                        self.deadline
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(NccError::Plane(format!("waiting for nft: {e}"))),
            }
        };
        if let Some(w) = writer {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) if status.success() => {
                    return Err(NccError::Plane(format!("writing to nft: {e}")));
                }
                _ => {}
            }
        }
        Ok(Out {
            ok: status.success(),
            stdout: out_t.join().unwrap_or_default(),
            stderr: err_t.join().unwrap_or_default(),
        })
    }
}

impl NftCli {
    /// The text listing of `table` (`nft list table …`, as an operator reads it), or an empty
    /// string when it does not exist.
    pub fn list_text(&self, table: &str) -> Result<String, NccError> {
        self.list_as(&[], table)
    }

    /// `nft <flags> list table <table>`; an empty string when the table does not exist.
    fn list_as(&self, flags: &[&str], table: &str) -> Result<String, NccError> {
        let mut args = flags.to_vec();
        args.extend(["list", "table"]);
        args.extend(table.split_whitespace());
        let out = self.exec(&args, None)?;
        if out.ok {
            Ok(out.stdout)
        } else if out.stderr.contains("No such file or directory") {
            Ok(String::new())
        } else {
            Err(NccError::Plane(format!(
                "nft list table {table}: {}",
                out.stderr.trim()
            )))
        }
    }
}

impl NftRunner for NftCli {
    fn list(&self, table: &str) -> Result<String, NccError> {
        self.list_as(&["-j"], table)
    }

    fn run(&self, script: &str) -> Result<(), NccError> {
        let out = self.exec(&["-f", "-"], Some(script))?;
        if out.ok {
            Ok(())
        } else {
            Err(transaction_failed(&out.stderr, script))
        }
    }

    fn generation(&self) -> Option<u32> {
        super::NfnlLoads::default().generation().ok()
    }
}

/// A refused transaction as ncc reports it: nft's own first lines, or, when it gave none (a
/// transaction too large for the kernel's memory fails that way), the script's size.
pub(super) fn transaction_failed(message: &str, script: &str) -> NccError {
    let msg: String = message.lines().take(12).collect::<Vec<_>>().join("\n");
    if msg.trim().is_empty() {
        return NccError::Plane(format!(
            "nft transaction failed without a message from nft (the script was {} lines, {} \
             bytes; a transaction that large can exhaust the kernel's memory)",
            script.lines().count(),
            script.len()
        ));
    }
    NccError::Plane(format!("nft transaction failed: {msg}"))
}
