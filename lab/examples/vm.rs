//! Runs a shell script inside the kernel lab (Debian's kernel under QEMU, this host's file
//! system shared read-only): `cargo run -p seesaw-lab --example vm -- script.sh`. For trying
//! IPVS, IPIP and the other modules this host's kernel lacks before writing a test.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: the guest's console and errors are its output"
)]

use std::time::Duration;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: vm <script.sh>");
        std::process::exit(2)
    });
    let script = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2)
    });
    if let Some(why) = seesaw_lab::vm::missing() {
        eprintln!("{why}");
        std::process::exit(2);
    }
    let vm = seesaw_lab::vm::Vm::prepare().unwrap_or_else(|e| {
        eprintln!("preparing the kernel lab: {e}");
        std::process::exit(1)
    });
    match vm.run(&script, Duration::from_secs(600)) {
        Ok(run) => {
            println!("{}", run.console);
            std::process::exit(run.status.unwrap_or(1));
        }
        Err(e) => {
            eprintln!("running the kernel lab: {e}");
            std::process::exit(1)
        }
    }
}
