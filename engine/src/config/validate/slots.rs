//! What the nftables plane's slot map can hold. The plane turns every scheduler into "compute a
//! slot, look it up" (ncc's `dataplane/nftables/layout.rs`); every slot of every service is an
//! element of one kernel map, which ncc reads back whole when it starts, to adopt what the kernel
//! holds. The kernel's dump of that map restarts its walk for every message, so the read grows
//! with the square of the slot count: measured on the bench machine (`bench/RESULTS.md`, "What
//! the nftables plane's slot map holds"), 0.5 M slots 11 s, 1 M 38 s, 2 M not done after two
//! minutes — and until it is done a restarted ncc applies nothing. A config needing more than
//! [`MAX_SLOTS`] is refused here, before it reaches ncc.

use seesaw_common::maglev;

use super::*;

/// The most slots the nftables plane holds, over all services: about 50 s for a restarted ncc to
/// read back. 10,000 wlc vservers of 10 backends need 800,000; an mh service with fewer than 656
/// backends 65,537, so 18 of them fit.
pub const MAX_SLOTS: usize = 1_200_000;

/// The slots the nftables plane lays for a service of `sched` whose destinations have
/// `weights` (weight 0 lays none) — ncc's `nftables::layout` rules, which
/// `lab/tests/nft_slots.rs` holds this to: rr one per destination; wrr, sh, dh and random the
/// weights over their gcd, scaled down to at most 4,096 (each live destination keeps one); lc and
/// wlc 8 per destination within 8..=512; mh a Maglev table ([`maglev::table_size`], at least
/// 65,537). p2c is not carried by the plane: 0.
pub fn nft_slots(sched: Scheduler, weights: &[u32]) -> usize {
    let live: Vec<u64> = weights
        .iter()
        .filter(|w| **w > 0)
        .map(|w| u64::from(*w))
        .collect();
    if live.is_empty() {
        return 0;
    }
    match sched {
        Scheduler::Rr => live.len(),
        Scheduler::Wrr | Scheduler::Sh | Scheduler::Dh | Scheduler::Random => {
            const MAX_WEIGHTED: u64 = 4096;
            let g = live.iter().fold(0, |g, w| gcd(g, *w)).max(1);
            let total: u64 = live.iter().map(|w| w / g).sum();
            let slots = if total > MAX_WEIGHTED {
                live.iter()
                    .map(|w| (w / g * MAX_WEIGHTED / total).max(1))
                    .sum()
            } else {
                total
            };
            usize::try_from(slots).unwrap_or(usize::MAX)
        }
        Scheduler::Lc | Scheduler::Wlc => live.len().saturating_mul(8).clamp(8, 512),
        Scheduler::Mh => maglev::table_size(live.len()),
        Scheduler::P2c => 0,
    }
}

/// At most the slots a service of `sched` lays for any subset of destinations with `weights`:
/// the engine sends only the healthy destinations of the service's address family, and a subset
/// can lay more than the whole set where wrr/sh/dh/random scale down past 4,096 (each floor
/// rounds up to one slot). Bounded there by the weights over their gcd and by 4,096 plus one
/// per destination; every other layout grows with its destinations, so the whole set bounds it.
pub fn nft_slots_bound(sched: Scheduler, weights: &[u32]) -> usize {
    match sched {
        Scheduler::Wrr | Scheduler::Sh | Scheduler::Dh | Scheduler::Random => {
            let live: Vec<u64> = weights
                .iter()
                .filter(|w| **w > 0)
                .map(|w| u64::from(*w))
                .collect();
            let g = live.iter().fold(0, |g, w| gcd(g, *w)).max(1);
            let total: u64 = live.iter().map(|w| w / g).sum();
            let bound = total.min(4096 + live.len() as u64);
            usize::try_from(bound).unwrap_or(usize::MAX)
        }
        _ => nft_slots(sched, weights),
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The refusal of `c` on the nftables plane when its services need more than [`MAX_SLOTS`]
/// slots: how many, and the entries that need the most. Counted as the engine builds services
/// (one per entry and VIP; one per address family for a `use_fwm` vserver; one single-slot
/// service per DSR/TUN probe target), each at its [`nft_slots_bound`].
pub fn nft_capacity(c: &Cluster) -> Option<String> {
    let mut total = 0usize;
    let mut heaviest: Vec<(usize, String)> = Vec::new();
    for v in c.vservers.values() {
        let weights: Vec<u32> = v.backends.values().map(|b| b.weight).collect();
        let of = |e: &Entry| nft_slots_bound(e.scheduler, &weights);
        if v.use_fwm {
            // One firewall-mark service per address family, scheduled as its first entry (the
            // heaviest entry stands for it here).
            let families = [true, false]
                .into_iter()
                .filter(|v4| v.vips.iter().any(|vip| vip.ip.is_ipv4() == *v4))
                .count();
            let slots = v.entries.values().map(of).max().unwrap_or(0) * families;
            total = total.saturating_add(slots);
            heaviest.push((slots, format!("vserver[{:?}]", v.name)));
            continue;
        }
        // One service per entry and VIP address (IPv4 and IPv6 are two).
        for e in v.entries.values() {
            let slots = of(e).saturating_mul(v.vips.len());
            total = total.saturating_add(slots);
            heaviest.push((
                slots,
                format!("vserver[{:?}].vserver_entry[{}]", v.name, e.key),
            ));
        }
    }
    // One single-destination sh service (one slot) per DSR/TUN probe target: backend address
    // and mode (`state/marks.rs` `probe_services`).
    let mut probes = HashSet::new();
    for v in c.vservers.values() {
        let entry_checks = v.entries.values().flat_map(|e| e.healthchecks.values());
        let modes: Vec<CheckMode> = v
            .healthchecks
            .values()
            .chain(entry_checks)
            .map(|h| h.mode)
            .filter(|m| *m != CheckMode::Plain)
            .collect();
        for b in v.backends.values() {
            for ip in Af::ALL.into_iter().filter_map(|af| b.host.addr(af)) {
                probes.extend(modes.iter().map(|m| (ip, *m)));
            }
        }
    }
    total = total.saturating_add(probes.len());
    if total <= MAX_SLOTS {
        return None;
    }
    heaviest.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let top: Vec<String> = heaviest
        .iter()
        .take(3)
        .map(|(n, at)| format!("{at} {n}"))
        .collect();
    Some(format!(
        "the nftables data plane holds at most {MAX_SLOTS} scheduler slots in all (a restarted ncc reads them all back, in a time that grows with the square of their number); this config needs {total} (most: {}); mh takes at least 65,537 slots per service and lc/wlc up to 512, wrr/sh/dh/random up to 4,096 (the weights over their gcd): use fewer or lighter services, or the ipvs or proxy data plane",
        top.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_planes_layout_rules() {
        assert_eq!(nft_slots(Scheduler::Rr, &[1, 5, 0]), 2);
        assert_eq!(nft_slots(Scheduler::Wrr, &[2, 4, 6]), 6);
        assert_eq!(nft_slots(Scheduler::Sh, &[]), 0);
        assert_eq!(nft_slots(Scheduler::Wrr, &[0, 0]), 0);
        // Scaled down past 4,096, every live destination keeping a slot.
        assert_eq!(nft_slots(Scheduler::Wrr, &[10_000, 1]), 4095 + 1);
        assert_eq!(nft_slots(Scheduler::Wlc, &[1; 10]), 80);
        assert_eq!(nft_slots(Scheduler::Lc, &[1]), 8);
        assert_eq!(nft_slots(Scheduler::Wlc, &[1; 100]), 512);
        assert_eq!(nft_slots(Scheduler::Mh, &[1; 10]), 65_537);
        assert_eq!(nft_slots(Scheduler::Mh, &[1; 700]), 131_071);
        assert_eq!(nft_slots(Scheduler::P2c, &[1; 3]), 0);
    }

    #[test]
    fn the_bound_holds_for_the_destinations_a_service_may_be_sent() {
        // The whole set lays 4,086 slots; without its weight-1 destination (down, or of the
        // other family) it lays 4,096: the bound covers both.
        let mut w = vec![409; 10];
        w.extend([6, 1]);
        assert_eq!(nft_slots(Scheduler::Wrr, &w), 4086);
        assert_eq!(nft_slots(Scheduler::Wrr, &w[..11]), 4096);
        assert_eq!(nft_slots_bound(Scheduler::Wrr, &w), 4097);
        // Below the scale-down the bound is the count itself; other layouts are their count.
        assert_eq!(nft_slots_bound(Scheduler::Sh, &[2, 4, 6]), 6);
        assert_eq!(nft_slots_bound(Scheduler::Mh, &[1; 10]), 65_537);
        assert_eq!(nft_slots_bound(Scheduler::Wlc, &[1; 10]), 80);
    }
}
