//! nccctl: drives a running `seesaw_ncc` over its gRPC socket, for `bench/dataplane.sh`.
//!
//! `nccctl SOCKET apply [--sched S] PROTO VIP:PORT BACKEND[,BACKEND...] [PROTO VIP:PORT ...]`
//! makes the plane hold exactly the listed services (PROTO `tcp` or `udp`, scheduler `rr` unless
//! `--sched` names another, every backend weight 1) and prints the changes ncc made;
//! `nccctl SOCKET state` prints every service with its per-destination counters.
//! Only loopback addresses are accepted: the bench never sends traffic elsewhere.
#![forbid(unsafe_code)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reporting its result"
)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use seesaw_proto::ncc as pb;

fn usage() -> ExitCode {
    eprintln!(
        "usage: nccctl SOCKET apply [--sched rr|wrr|lc|wlc|sh|dh|mh|random|p2c] \
         tcp|udp VIP:PORT BACKEND[,BACKEND...] ... | nccctl SOCKET state"
    );
    ExitCode::from(64)
}

fn loopback(s: &str) -> Result<SocketAddr, String> {
    let a: SocketAddr = s.parse().map_err(|_| format!("{s}: not an address:port"))?;
    if a.ip().is_loopback() {
        Ok(a)
    } else {
        Err(format!("{a}: not a loopback address"))
    }
}

fn scheduler(s: &str) -> Option<pb::Scheduler> {
    Some(match s {
        "rr" => pb::Scheduler::Rr,
        "wrr" => pb::Scheduler::Wrr,
        "lc" => pb::Scheduler::Lc,
        "wlc" => pb::Scheduler::Wlc,
        "sh" => pb::Scheduler::Sh,
        "dh" => pb::Scheduler::Dh,
        "mh" => pb::Scheduler::Mh,
        "random" => pb::Scheduler::Random,
        "p2c" => pb::Scheduler::P2c,
        _ => return None,
    })
}

/// Parses `[--sched S] (PROTO VIP BACKENDS)*` into a desired state.
fn desired(args: &[String]) -> Result<pb::DesiredState, String> {
    let (sched, rest) = match args {
        [flag, s, rest @ ..] if flag == "--sched" => (
            scheduler(s).ok_or_else(|| format!("{s}: unknown scheduler"))?,
            rest,
        ),
        _ => (pb::Scheduler::Rr, args),
    };
    if rest.len() % 3 != 0 {
        return Err("services are PROTO VIP:PORT BACKENDS triples".into());
    }
    let mut services = Vec::new();
    for t in rest.chunks_exact(3) {
        let protocol = match t[0].as_str() {
            "tcp" => pb::Protocol::Tcp,
            "udp" => pb::Protocol::Udp,
            p => return Err(format!("{p}: protocol is tcp or udp")),
        };
        let vip = loopback(&t[1])?;
        let destinations = t[2]
            .split(',')
            .map(|b| {
                loopback(b).map(|a| pb::Destination {
                    address: a.ip().to_string(),
                    port: u32::from(a.port()),
                    weight: 1,
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        services.push(pb::Service {
            address: vip.ip().to_string(),
            protocol: protocol as i32,
            port: u32::from(vip.port()),
            scheduler: sched as i32,
            mode: pb::ForwardMode::Nat as i32,
            destinations,
            ..Default::default()
        });
    }
    Ok(pb::DesiredState {
        services,
        ..Default::default()
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(sock), Some(cmd)) = (args.first(), args.get(1)) else {
        return usage();
    };
    let req = match cmd.as_str() {
        "apply" => match desired(&args[2..]) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("nccctl: {e}");
                return usage();
            }
        },
        "state" => None,
        _ => return usage(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nccctl: cannot start a runtime: {e}");
            return ExitCode::from(71);
        }
    };
    let done = rt.block_on(async {
        let mut client = pb::ncc_client::NccClient::new(seesaw_common::uds::channel(
            Path::new(sock),
            Duration::from_secs(10),
        ));
        match req {
            Some(d) => {
                let reply = client.apply(d).await?.into_inner();
                for c in reply.changes {
                    println!("{c}");
                }
            }
            None => {
                let st = client.get_state(pb::Empty {}).await?.into_inner();
                println!("plane {}", st.kind);
                for s in st.services {
                    println!("service {}:{} proto {}", s.address, s.port, s.protocol);
                    for d in s.destinations {
                        println!(
                            "  dest {}:{} active {} total {} in {} out {}",
                            d.address,
                            d.port,
                            d.active_conns,
                            d.total_conns,
                            d.bytes_in,
                            d.bytes_out
                        );
                    }
                }
            }
        }
        Ok::<_, tonic::Status>(())
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nccctl: {}: {}", e.code(), e.message());
            ExitCode::from(69)
        }
    }
}
