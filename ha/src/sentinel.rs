//! The resign sentinel: a child process of `seesaw_ha` that outlives it to say, on its behalf,
//! "this master is gone". While the node is the LEADER of a peering, ha tells the sentinel so
//! over a pipe (its stdin); when ha dies (kill -9, a crash: the pipe's end of file), an armed
//! sentinel sends the priority-0 advert ha can no longer send, so the peer takes over at once
//! instead of after the master-down interval (about 3 adverts), and exits. An orderly stop sends
//! the priority-0 advert from ha itself and disarms the sentinel first.
//!
//! The line protocol (ha → sentinel; ours on both ends, still parsed strictly):
//! `arm <local> <peer> <vrid> <interval ms> [<key hex> [<accept key hex>]]` and `disarm`. With
//! `[ha] auth_key_file` the derived keys travel in hex over the pipe (private to the two
//! processes), and the sentinel signs its priority-0 advert; its counter is the wall clock at
//! sending, which is above every counter ha sent before it died.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::auth::{AuthKeys, Key};
use crate::node::Peering;

/// The flag that makes `seesaw_ha` the sentinel.
pub const FLAG: &str = "--resign-sentinel";

/// What the sentinel is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Resign for this peering if ha dies.
    Arm(Peering),
    /// Do nothing if ha dies.
    Disarm,
}

impl Order {
    /// The line that carries it (with its newline).
    pub fn line(&self) -> String {
        match self {
            Self::Arm(p) => {
                let keys = match p.auth {
                    None => String::new(),
                    Some(AuthKeys { send, accept: None }) => format!(" {}", send.to_hex()),
                    Some(AuthKeys {
                        send,
                        accept: Some(accept),
                    }) => format!(" {} {}", send.to_hex(), accept.to_hex()),
                };
                format!(
                    "arm {} {} {} {}{keys}\n",
                    p.local,
                    p.peer,
                    p.vrid,
                    p.interval.as_millis()
                )
            }
            Self::Disarm => "disarm\n".to_owned(),
        }
    }

    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut w = line.split(' ');
        let order = match w.next() {
            Some("disarm") => Self::Disarm,
            Some("arm") => {
                let mut next = |what: &str| w.next().ok_or_else(|| format!("no {what}"));
                let local: Ipv4Addr = next("local address")?
                    .parse()
                    .map_err(|_| "bad local address".to_owned())?;
                let peer: Ipv4Addr = next("peer address")?
                    .parse()
                    .map_err(|_| "bad peer address".to_owned())?;
                let vrid: u8 = next("vrid")?
                    .parse()
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| "bad vrid".to_owned())?;
                let ms: u64 = next("interval")?
                    .parse()
                    .ok()
                    .filter(|v| (10..=40_950).contains(v))
                    .ok_or_else(|| "bad interval".to_owned())?;
                let key = |hex: &str| Key::from_hex(hex).ok_or_else(|| "bad key".to_owned());
                let auth = match w.next() {
                    None => None,
                    Some(send) => Some(AuthKeys {
                        send: key(send)?,
                        accept: w.next().map(key).transpose()?,
                    }),
                };
                Self::Arm(Peering {
                    local,
                    peer,
                    vrid,
                    priority: 0,
                    interval: Duration::from_millis(ms),
                    preempt: false,
                    auth,
                })
            }
            // Never the whole line in an error: an arm line carries key material.
            first => return Err(format!("unknown order {:?}", first.unwrap_or(""))),
        };
        if w.next().is_some() {
            return Err("trailing words after the order".to_owned());
        }
        Ok(order)
    }
}

/// ha's end: the running sentinel and what it was last told.
#[derive(Debug)]
pub struct Sentinel {
    child: Child,
    stdin: Option<ChildStdin>,
    told: Option<Order>,
}

impl Sentinel {
    /// Starts `exe --resign-sentinel` (normally this very binary, as `seesaw_ha_sentinel`) with
    /// a pipe as its stdin.
    pub fn spawn(exe: &std::path::Path) -> io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(exe)
            .arg0("seesaw_ha_sentinel")
            .arg(FLAG)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            told: None,
        })
    }

    /// Arms the sentinel for `peering` (this node leads it) or disarms it (`None`); writes only
    /// when that changes. A sentinel that died is reported once and left alone.
    pub fn set(&mut self, peering: Option<Peering>) {
        let order = peering.map_or(Order::Disarm, Order::Arm);
        if self.told == Some(order) {
            return;
        }
        self.told = Some(order);
        let Some(stdin) = self.stdin.as_mut() else {
            return;
        };
        // A short line on a pipe nobody else writes: it never blocks while the sentinel reads.
        if let Err(e) = stdin.write_all(order.line().as_bytes()) {
            tracing::warn!(error = %e, "the resign sentinel is gone: a kill -9 of ha now costs the master-down interval");
            self.stdin = None;
        }
    }

    /// The sentinel's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The sentinel's side: follows the orders on stdin until end of file (ha is gone), then
/// resigns if armed. Returns when done. The advert socket lives on `rt`.
pub fn serve(rt: &tokio::runtime::Runtime) {
    use std::io::BufRead;

    use crate::transport::Transport;
    let _in_runtime = rt.enter();
    let mut armed: Option<(Peering, crate::transport::RawTransport)> = None;
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match Order::parse(&line) {
            Ok(Order::Arm(p)) => match crate::transport::RawTransport::open(&p) {
                Ok(t) => armed = Some((p, t)),
                Err(e) => {
                    tracing::warn!(error = %e, "resign sentinel: cannot open the advert socket");
                    armed = None;
                }
            },
            Ok(Order::Disarm) => armed = None,
            Err(e) => tracing::warn!("resign sentinel: {e}"),
        }
    }
    let Some((p, mut t)) = armed else {
        return;
    };
    // Twice: one lost datagram must not cost the master-down interval.
    for _ in 0..2 {
        if let Err(e) = t.send(&p.advert(0)) {
            tracing::warn!(error = %e, "resign sentinel: cannot send the priority-0 advert");
        }
    }
    tracing::info!(peer = %p.peer, vrid = p.vrid, "ha is gone while master: sent the priority-0 advert for it");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_round_trip_and_bad_lines_are_refused() {
        let p = Peering {
            local: Ipv4Addr::new(192, 0, 2, 10),
            peer: Ipv4Addr::new(192, 0, 2, 11),
            vrid: 7,
            priority: 0,
            interval: Duration::from_millis(30),
            preempt: false,
            auth: None,
        };
        let signed = Peering {
            auth: Some(AuthKeys {
                send: Key::derive(b"one key of at least thirty-two bytes"),
                accept: None,
            }),
            ..p
        };
        let rotating = Peering {
            auth: Some(AuthKeys {
                send: Key::derive(b"one key of at least thirty-two bytes"),
                accept: Some(Key::derive(b"another key of at least 32 bytes")),
            }),
            ..p
        };
        for o in [
            Order::Arm(p),
            Order::Arm(signed),
            Order::Arm(rotating),
            Order::Disarm,
        ] {
            let line = o.line();
            assert_eq!(Order::parse(line.trim_end()), Ok(o));
        }
        for bad in [
            "",
            "arm",
            "arm 1.2.3.4 5.6.7.8 0 30",
            "arm 1.2.3.4 5.6.7.8 1 5",
            "arm 1.2.3.4 5.6.7.8 1 30 extra",
            "arm x 5.6.7.8 1 30",
            "arm 1.2.3.4 5.6.7.8 256 30",
            "arm 1.2.3.4 5.6.7.8 1 30 abcd",
            "arm 1.2.3.4 5.6.7.8 1 30 zz00000000000000000000000000000000000000000000000000000000000000",
            "disarm now",
            "resign",
        ] {
            assert!(Order::parse(bad).is_err(), "{bad:?}");
        }
    }
}
