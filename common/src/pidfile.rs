//! Pid files that name one process for good: `<pid> <start time>`, where the start time is the
//! kernel's (field 22 of `/proc/<pid>/stat`), so a reused pid is never mistaken for the process.
//! The watchdog writes one per child (`<run>/watchdog/<name>.pid`) and adopts the live ones after
//! a restart; `seesaw demo` stops the live ones if its watchdog died.

use std::fs;
use std::io;
use std::path::Path;

/// The pid a pid file names, if that process is still the one it names (alive, not a zombie,
/// same start time).
pub fn read_live(path: &Path) -> Option<u32> {
    let text = fs::read_to_string(path).ok()?;
    let (pid, start) = parse(&text)?;
    (start_time(pid)? == start).then_some(pid)
}

/// Writes `<pid> <start time>` to `path` (replaced atomically).
pub fn write(path: &Path, pid: u32) -> io::Result<()> {
    let start =
        start_time(pid).ok_or_else(|| io::Error::other(format!("cannot read /proc/{pid}/stat")))?;
    let tmp = path.with_extension("pid.tmp");
    fs::write(&tmp, format!("{pid} {start}\n"))?;
    fs::rename(&tmp, path)
}

/// `(pid, start time)` from a pid file's text.
fn parse(text: &str) -> Option<(u32, u64)> {
    let mut it = text.split_ascii_whitespace();
    let pid = it.next()?.parse().ok()?;
    let start = it.next()?.parse().ok()?;
    (pid > 0).then_some((pid, start))
}

/// The kernel's start time of `pid` (field 22 of `/proc/<pid>/stat`, in clock ticks since
/// boot), if it is alive and not a zombie: with the pid, it names one process for good.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a `/proc/<pid>/stat` line; `None` for a zombie. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from its last `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // `rest` starts at field 3 (state); field 22 is 19 further.
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_counted_from_the_last_parenthesis() {
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 10 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(987_654));
        let zombie = stat.replace(") S ", ") Z ");
        assert_eq!(parse_start_time(&zombie), None);
        for bad in [
            "",
            "12",
            "12 (x",
            "12 (x) S 1 2",
            "12 (x) S 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 x",
        ] {
            assert_eq!(parse_start_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pid_files_parse_or_are_ignored() {
        assert_eq!(parse("123 456\n"), Some((123, 456)));
        for bad in ["", "0 1", "-1 2", "x 1", "12", "12 y", "99999999999 1"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn our_own_start_time_is_readable_and_stable() {
        let me = std::process::id();
        let t = start_time(me).expect("our own /proc/self/stat");
        assert_eq!(start_time(me), Some(t));
    }
}
