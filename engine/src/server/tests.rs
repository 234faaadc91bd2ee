//! The engine's gRPC server: answers, outages and refusals.

use super::overrides::override_status;
use super::*;

#[test]
fn bgp_not_configured_is_an_answer_and_ncc_down_is_an_outage() {
    use crate::ncc_port::NccError;
    let s = bgp_status(NccError::Refused("bgp is not configured".into()));
    assert_eq!(
        (s.code(), s.message()),
        (tonic::Code::FailedPrecondition, "bgp is not configured")
    );
    let s = bgp_status(NccError::Unavailable("connection refused".into()));
    assert_eq!(s.code(), tonic::Code::Unavailable);
}

fn stats(bounds: Vec<u64>, counts: Vec<u64>) -> pb::ProbeStats {
    pb::ProbeStats {
        successes: 4,
        failures: 1,
        last_latency_us: 1_500,
        latency_sum_us: 9_000,
        latency_bounds_us: bounds,
        latency_counts: counts,
    }
}

#[test]
fn probe_stats_round_trip_and_share_their_bounds() {
    let mut shared = None;
    let a = stats_from_proto(stats(vec![1_000, 5_000], vec![2, 2, 1]), &[], &mut shared)
        .expect("valid");
    // No bounds of its own: the batch's.
    let b = stats_from_proto(stats(vec![], vec![0, 0, 5]), &[1_000, 5_000], &mut shared)
        .expect("valid");
    assert!(
        Arc::ptr_eq(&a.bounds_us, &b.bounds_us),
        "one copy per batch"
    );
    assert_eq!(a.last_latency, Duration::from_micros(1_500));
    assert_eq!(stats_to_proto(&a), stats(vec![1_000, 5_000], vec![2, 2, 1]));
    let c = stats_from_proto(stats(vec![10], vec![1, 4]), &[1, 2], &mut shared).expect("valid");
    assert_eq!(&*c.bounds_us, [10]);
}

#[test]
fn vlans_carry_cidrs_and_counts_and_unknown_override_names_are_not_found() {
    use crate::model::{Host, Status as HostStatus, Vlan};
    use crate::overrides::OverrideKind;
    use crate::state::{AfCounts, VlanView};
    let v = VlanView {
        vlan: Vlan {
            id: 10,
            host: Host {
                hostname: "v10.".into(),
                ipv4: Some(("10.0.10.1".parse().unwrap(), 24)),
                ipv6: None,
                status: HostStatus::Production,
            },
        },
        backends: AfCounts { ipv4: 3, ipv6: 0 },
        vips: AfCounts { ipv4: 1, ipv6: 2 },
    };
    assert_eq!(
        vlan_to_proto(&v),
        pb::Vlan {
            id: 10,
            hostname: "v10.".into(),
            ipv4: "10.0.10.1/24".into(),
            ipv6: String::new(),
            ipv4_backends: 3,
            ipv6_backends: 0,
            ipv4_vips: 1,
            ipv6_vips: 2,
        }
    );
    let s = override_status(&OverrideError::NotFound {
        kind: OverrideKind::Backend,
        target: "b9.".into(),
    });
    assert_eq!(s.code(), tonic::Code::NotFound);
    assert_eq!(s.message(), "no such backend \"b9.\"");
    assert_eq!(
        override_status(&OverrideError::Denied("x".into())).code(),
        tonic::Code::PermissionDenied
    );
}

#[test]
fn malformed_probe_stats_are_refused() {
    let mut shared = None;
    for (bounds, counts, want) in [
        (vec![1_000, 5_000], vec![1, 1], "2 counts for 2 bounds"),
        (vec![5_000, 1_000], vec![1, 1, 1], "not strictly increasing"),
        (vec![1_000, 1_000], vec![1, 1, 1], "not strictly increasing"),
        ((1..=65).collect(), vec![0; 66], "65 buckets (at most 64)"),
    ] {
        let err = stats_from_proto(stats(bounds, counts), &[], &mut shared).expect_err(want);
        assert!(err.contains(want), "{err}");
    }
    // Neither own nor batch bounds: only the +Inf bucket is valid.
    let err = stats_from_proto(stats(vec![], vec![1, 2]), &[], &mut shared).expect_err("no bounds");
    assert!(err.contains("2 counts for 0 bounds"), "{err}");
    assert!(shared.is_none());
}
