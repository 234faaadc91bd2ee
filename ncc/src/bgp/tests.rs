//! The announced-set manager against the stateful fake speaker.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::fake::{FakeSpeaker, rib};
use super::*;

fn settings() -> Settings {
    Settings {
        gobgp_api: "127.0.0.1:50051".into(),
        local_asn: 64513,
        remote_asn: 64512,
        peers: vec!["192.0.2.254".parse().unwrap()],
        router_id: "192.0.2.10".parse().unwrap(),
        next_hop_v4: Some("192.0.2.10".parse().unwrap()),
        next_hop_v6: Some("2001:db8::10".parse().unwrap()),
    }
}

fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn manager() -> (Bgp<FakeSpeaker>, FakeSpeaker) {
    let daemon = FakeSpeaker::default();
    let handle = daemon.clone();
    (Bgp::new(Box::new(move |_| Ok(handle.clone()))), daemon)
}

#[tokio::test]
async fn first_contact_withdraws_everything_then_announces_the_set() {
    let (mut bgp, d) = manager();
    // Left over from an earlier ncc: must go.
    d.0.lock().unwrap().asn = 64513;
    d.0.lock().unwrap().rib.insert(
        "192.168.255.9".parse().unwrap(),
        "192.0.2.10".parse().unwrap(),
    );
    let changes = bgp
        .set(settings(), ips(&["192.168.255.1", "2015:cafe:ffff::1"]))
        .await
        .expect("set");
    assert_eq!(
        changes,
        [
            "withdrew every route (first contact with the speaker)",
            "announce 192.168.255.1/32 via 192.0.2.10",
            "announce 2015:cafe:ffff::1/128 via 2001:db8::10",
        ]
    );
    assert_eq!(rib(&d), ips(&["192.168.255.1", "2015:cafe:ffff::1"]));
    assert_eq!(d.0.lock().unwrap().peers.len(), 1);
    // Idempotent.
    assert!(
        bgp.set(settings(), ips(&["192.168.255.1", "2015:cafe:ffff::1"]))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn withdrawals_go_out_before_announcements() {
    let (mut bgp, d) = manager();
    bgp.set(settings(), ips(&["192.168.255.1"])).await.unwrap();
    let changes = bgp.set(settings(), ips(&["192.168.255.2"])).await.unwrap();
    assert_eq!(
        changes,
        [
            "withdraw 192.168.255.1/32",
            "announce 192.168.255.2/32 via 192.0.2.10"
        ]
    );
    let log = d.0.lock().unwrap().log.clone();
    assert_eq!(
        log,
        ["-*", "+192.168.255.1", "-192.168.255.1", "+192.168.255.2"]
    );
}

#[tokio::test]
async fn a_restarted_daemon_is_cleaned_and_refilled() {
    let (mut bgp, d) = manager();
    bgp.set(settings(), ips(&["192.168.255.1"])).await.unwrap();
    {
        let mut g = d.0.lock().unwrap();
        g.asn = 0;
        g.rib.clear();
        g.peers.clear();
    }
    let changes = bgp.set(settings(), ips(&["192.168.255.1"])).await.unwrap();
    assert_eq!(changes[0], "started bgp as AS64513 router id 192.0.2.10");
    assert_eq!(rib(&d), ips(&["192.168.255.1"]));
    assert_eq!(d.0.lock().unwrap().peers.len(), 1);
}

#[tokio::test]
async fn a_failing_daemon_keeps_the_set_consistent_and_retries() {
    let (mut bgp, d) = manager();
    bgp.set(settings(), ips(&["192.168.255.1"])).await.unwrap();
    d.0.lock().unwrap().down = true;
    assert!(matches!(
        bgp.set(settings(), BTreeSet::new()).await,
        Err(BgpError::Daemon { .. })
    ));
    assert_eq!(bgp.announced(), &ips(&["192.168.255.1"]));
    d.0.lock().unwrap().down = false;
    assert_eq!(
        bgp.set(settings(), BTreeSet::new()).await.unwrap(),
        ["withdraw 192.168.255.1/32"]
    );
    assert!(rib(&d).is_empty());
}

#[tokio::test]
async fn changed_settings_reannounce_with_the_new_next_hop() {
    let (mut bgp, d) = manager();
    bgp.set(settings(), ips(&["192.168.255.1"])).await.unwrap();
    let mut s = settings();
    s.next_hop_v4 = Some("192.0.2.11".parse().unwrap());
    let changes = bgp.set(s, ips(&["192.168.255.1"])).await.unwrap();
    assert_eq!(
        changes,
        [
            "withdraw 192.168.255.1/32",
            "announce 192.168.255.1/32 via 192.0.2.11"
        ]
    );
    assert_eq!(
        d.0.lock()
            .unwrap()
            .rib
            .values()
            .copied()
            .collect::<Vec<_>>(),
        ["192.0.2.11".parse::<IpAddr>().unwrap()]
    );
}

#[tokio::test]
async fn routes_without_a_next_hop_of_their_family_are_refused_whole() {
    let (mut bgp, d) = manager();
    let mut s = settings();
    s.next_hop_v6 = None;
    let r = bgp
        .set(s, ips(&["192.168.255.1", "2015:cafe:ffff::1"]))
        .await;
    assert!(matches!(r, Err(BgpError::Invalid(m)) if m.contains("IPv6 next hop")));
    assert!(
        rib(&d).is_empty(),
        "nothing announced from a refused request"
    );
}

#[tokio::test]
async fn a_daemon_running_another_asn_is_a_conflict() {
    let (mut bgp, d) = manager();
    d.0.lock().unwrap().asn = 65000;
    assert!(matches!(
        bgp.set(settings(), BTreeSet::new()).await,
        Err(BgpError::Conflict(_))
    ));
}

#[tokio::test]
async fn neighbours_need_a_configured_speaker() {
    let (mut bgp, _) = manager();
    assert!(matches!(bgp.neighbors().await, Err(BgpError::Invalid(_))));
    bgp.set(settings(), ips(&["192.168.255.1"])).await.unwrap();
    let (n, a) = bgp.neighbors().await.unwrap();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].peer_asn, 64512);
    assert_eq!(a, ["192.168.255.1".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn a_new_peer_is_added_without_flapping_the_routes() {
    let (mut bgp, d) = manager();
    bgp.set(settings(), ips(&["192.168.255.1"])).await.unwrap();
    let mut s = settings();
    s.peers.push("192.0.2.253".parse().unwrap());
    assert!(
        bgp.set(s, ips(&["192.168.255.1"]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(d.0.lock().unwrap().peers.len(), 2);
    assert_eq!(d.0.lock().unwrap().log, ["-*", "+192.168.255.1"]);
}
