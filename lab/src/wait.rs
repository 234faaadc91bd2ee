//! Bounded waits. Tests never sleep for a fixed time hoping something happened; they poll a
//! condition until it holds or a deadline passes, and report how long it took.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::error::LabError;

/// How often conditions are re-checked.
const POLL: Duration = Duration::from_millis(50);

/// Polls `cond` until it returns true, for at most `within`. Returns how long it took.
pub fn wait_until(
    what: &str,
    within: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<Duration, LabError> {
    let start = Instant::now();
    loop {
        if cond() {
            return Ok(start.elapsed());
        }
        let elapsed = start.elapsed();
        if elapsed >= within {
            return Err(LabError::Timeout {
                what: what.to_owned(),
                within,
            });
        }
        std::thread::sleep(POLL.min(within - elapsed));
    }
}

/// Like [`wait_until`] for a condition that yields a value: polls until `probe` returns `Some`.
pub fn wait_for<T>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T, LabError> {
    let mut found = None;
    wait_until(what, within, || {
        found = probe();
        found.is_some()
    })?;
    Ok(found.expect("wait_until returned Ok only after probe returned Some"))
}

/// Waits until a TCP connection to `addr` succeeds from the calling thread's network namespace.
pub fn wait_tcp_here(addr: SocketAddr, within: Duration) -> Result<Duration, LabError> {
    wait_until(&format!("tcp {addr} to accept"), within, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn wait_until_times_out_and_succeeds() {
        let err = wait_until("never", Duration::from_millis(120), || false);
        assert!(matches!(err, Err(LabError::Timeout { .. })));
        let mut n = 0;
        let took = wait_until("third try", Duration::from_secs(5), || {
            n += 1;
            n == 3
        })
        .expect("condition holds on the third poll");
        assert!(took >= 2 * POLL);
    }

    #[test]
    fn wait_tcp_sees_a_listener() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        wait_tcp_here(addr, Duration::from_secs(2)).expect("listener accepts");
        drop(l);
        assert!(wait_tcp_here(addr, Duration::from_millis(200)).is_err());
    }
}
