//! The shared advert codec: loud but bounded logging of authentication failures, counting by
//! reason.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

#[test]
fn auth_failures_log_once_each_then_a_summary_every_ten_seconds() {
    let mut alarm = AuthAlarm::default();
    let t0 = Instant::now();
    assert_eq!(alarm.note(&AdvertError::BadMac, t0), Loud::First);
    // A flood within ten seconds: counted only.
    for i in 0..1000u32 {
        let at = t0 + Duration::from_millis(u64::from(i) * 9);
        assert_eq!(alarm.note(&AdvertError::BadMac, at), Loud::Quiet, "{i}");
    }
    // Another kind is announced on its own, once.
    let t1 = t0 + Duration::from_millis(9_500);
    assert_eq!(alarm.note(&AdvertError::Replay, t1), Loud::First);
    assert_eq!(alarm.note(&AdvertError::Replay, t1), Loud::Quiet);
    // Ten seconds after the last line: one summary with what came since.
    let t2 = t1 + AUTH_SUMMARY_EVERY;
    match alarm.note(&AdvertError::BadMac, t2) {
        Loud::Summary(since) => {
            assert_eq!(since.get("bad_mac"), 1001);
            assert_eq!(since.get("replay"), 1);
        }
        other => panic!("expected a summary, got {other:?}"),
    }
    assert_eq!(
        alarm.note(&AdvertError::BadMac, t2 + Duration::from_secs(9)),
        Loud::Quiet
    );
}

#[test]
fn the_wire_counts_rejections_by_reason() {
    use std::net::Ipv4Addr;

    use crate::auth::{AuthKeys, Key};
    let p = Peering {
        local: Ipv4Addr::new(192, 0, 2, 1),
        peer: Ipv4Addr::new(192, 0, 2, 2),
        vrid: 60,
        priority: 100,
        interval: Duration::from_millis(100),
        preempt: false,
        auth: Some(AuthKeys {
            send: Key::derive(&[1; 32]),
            accept: None,
        }),
    };
    let mut ours = Wire::new(&p);
    let mut theirs = Wire::new(&Peering {
        local: p.peer,
        peer: p.local,
        ..p
    });
    let a = p.advert(100);
    let sent = advert::ipv4_datagram(p.peer, p.local, &theirs.encode(&a));
    assert_eq!(ours.decode(&sent).map(|r| r.advert), Some(a));
    assert_eq!(ours.decode(&sent), None);
    let mut wrong = Wire::new(&Peering {
        local: p.peer,
        peer: p.local,
        auth: Some(AuthKeys {
            send: Key::derive(&[2; 32]),
            accept: None,
        }),
        ..p
    });
    for _ in 0..3 {
        let forged = advert::ipv4_datagram(p.peer, p.local, &wrong.encode(&a));
        assert_eq!(ours.decode(&forged), None);
    }
    assert_eq!(
        ours.rejected.nonzero().collect::<Vec<_>>(),
        [("bad_mac", 3), ("replay", 1)]
    );
    assert_eq!(ours.drops[&AdvertError::BadMac], 3);
}
