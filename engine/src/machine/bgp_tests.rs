//! BGP announcement syncing to ncc: what is sent, withdrawn first, and retried — the plan
//! driven against the fake ncc as the engine's driver carries it (with the tokio clock).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use super::BgpPlan as BgpSync;
use crate::ncc_port::{FakeNcc, NccBgp};
use crate::state::{BgpDesired, BgpSettings};

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Carries one planned request to the fake ncc and hands the outcome back.
async fn carry(b: &mut BgpSync, ncc: &FakeNcc, req: Option<BgpDesired>) {
    if let Some(req) = req {
        let r = ncc.bgp_set(&req).await.map_err(|e| e.to_string());
        b.done(r, now());
    }
}

impl BgpSync {
    async fn withdraw_first(&mut self, ncc: &FakeNcc, wanted: Option<&BgpDesired>) {
        let req = self.withdrawal(wanted, now());
        carry(self, ncc, req).await;
    }

    async fn announce(&mut self, ncc: &FakeNcc, wanted: Option<BgpDesired>) {
        let req = self.announcement(wanted, now());
        carry(self, ncc, req).await;
    }
}

fn want(routes: &[&str]) -> BgpDesired {
    BgpDesired {
        settings: BgpSettings {
            gobgp_api: "127.0.0.1:50051".into(),
            local_asn: 64513,
            remote_asn: 64512,
            peers: vec!["192.0.2.254".parse().expect("literal")],
            router_id: "192.0.2.10".parse().expect("literal"),
            next_hop_v4: Some("192.0.2.10".parse().expect("literal")),
            next_hop_v6: None,
        },
        routes: routes
            .iter()
            .map(|r| r.parse().expect("literal"))
            .collect::<BTreeSet<IpAddr>>(),
    }
}

#[tokio::test]
async fn withdrawals_keep_the_rest_and_announcements_are_not_repeated() {
    let ncc = FakeNcc::default();
    let mut b = BgpSync::default();
    b.announce(&ncc, Some(want(&["192.168.255.1", "192.168.255.2"])))
        .await;
    // Nothing to withdraw when the wanted set still holds everything.
    b.withdraw_first(
        &ncc,
        Some(&want(&["192.168.255.1", "192.168.255.2", "192.168.255.3"])),
    )
    .await;
    assert_eq!(ncc.bgp_log(), ["+192.168.255.1", "+192.168.255.2"]);
    // .2 goes before the plane changes; .1 stays announced throughout.
    b.withdraw_first(&ncc, Some(&want(&["192.168.255.1"])))
        .await;
    assert_eq!(
        ncc.bgp_log().last().map(String::as_str),
        Some("-192.168.255.2")
    );
    assert_eq!(ncc.bgp_announced().len(), 1);
    // The same set again within the resync interval: no call.
    let calls = ncc.bgp_log().len();
    b.announce(&ncc, Some(want(&["192.168.255.1"]))).await;
    assert_eq!(ncc.bgp_log().len(), calls);
}

#[tokio::test(start_paused = true)]
async fn routes_of_a_failed_call_are_withdrawn_once_ncc_answers() {
    let ncc = FakeNcc::default();
    let mut b = BgpSync::default();
    b.announce(&ncc, Some(want(&["192.168.255.1"]))).await;
    ncc.set_failing(Some("restarting"));
    // Unknown outcome: .2 may or may not be out there now.
    b.announce(&ncc, Some(want(&["192.168.255.1", "192.168.255.2"])))
        .await;
    tokio::time::advance(Duration::from_secs(1)).await;
    b.withdraw_first(&ncc, None).await;
    ncc.set_failing(None);
    tokio::time::advance(Duration::from_secs(2)).await;
    // BGP switched off by the config: everything that may be announced is withdrawn.
    b.withdraw_first(&ncc, None).await;
    assert!(ncc.bgp_announced().is_empty());
    assert_eq!(ncc.bgp_log(), ["+192.168.255.1", "-192.168.255.1"]);
}

/// A speaker that keeps failing is tried after 1, 2, 4, 5, 5 s, not on every loop turn (the
/// loop waits for each try); the first try that gets through announces and resets the wait.
#[tokio::test(start_paused = true)]
async fn a_failing_speaker_is_retried_with_backoff() {
    let ncc = FakeNcc::default();
    let mut b = BgpSync::default();
    ncc.set_failing(Some("gobgpd down"));
    let w = || Some(want(&["192.168.255.1"]));
    let mut tries_at = Vec::new();
    // The engine loop turns every 100 ms for 20 s.
    for tick in 0..200u64 {
        let before = ncc.bgp_calls();
        b.withdraw_first(&ncc, w().as_ref()).await;
        b.announce(&ncc, w()).await;
        if ncc.bgp_calls() > before {
            tries_at.push(tick * 100);
        }
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    assert_eq!(tries_at, [0, 1000, 3000, 7000, 12000, 17000]);
    assert!(ncc.bgp_announced().is_empty());
    ncc.set_failing(None);
    tokio::time::advance(Duration::from_secs(5)).await;
    b.announce(&ncc, w()).await;
    assert_eq!(ncc.bgp_log(), ["+192.168.255.1"]);
    // Reset: the next failure waits 1 s again.
    ncc.set_failing(Some("gobgpd down"));
    tokio::time::advance(Duration::from_secs(5)).await;
    b.announce(&ncc, w()).await;
    let calls = ncc.bgp_calls();
    tokio::time::advance(Duration::from_millis(900)).await;
    b.announce(&ncc, w()).await;
    assert_eq!(ncc.bgp_calls(), calls);
    tokio::time::advance(Duration::from_millis(100)).await;
    b.announce(&ncc, w()).await;
    assert_eq!(ncc.bgp_calls(), calls + 1);
}
