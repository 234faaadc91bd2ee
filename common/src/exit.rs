//! Process exit codes, from BSD `sysexits.h`, so scripts and the watchdog can tell failures apart.

/// Success.
pub const OK: u8 = 0;
/// Bad command-line usage, or an invalid `RUST_LOG` filter.
pub const USAGE: u8 = 64;
/// A service this process needs is unavailable (e.g. another instance owns the socket).
pub const UNAVAILABLE: u8 = 69;
/// An internal error.
pub const SOFTWARE: u8 = 70;
/// An operating-system error (bind, permissions, ...).
pub const OSERR: u8 = 71;
/// Invalid configuration.
pub const CONFIG: u8 = 78;
