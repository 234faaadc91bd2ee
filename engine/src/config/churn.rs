//! Limits vserver churn per config update, as Seesaw's `rateLimitVS` does, so a bad or huge
//! config change cannot tear down or bring up everything at once. Per update either at most `max`
//! vservers are deleted (everything else keeps its running config, nothing is created), or — when
//! nothing is deleted — surviving vservers take the new config and at most `max` are created.
//! Later updates converge on the full config; the engine re-applies until nothing is pending.

use std::collections::BTreeMap;

use crate::model::Cluster;

/// The cluster to apply now, and whether more of `new` is still held back.
pub fn limit(current: &Cluster, new: &Cluster, max: usize) -> (Cluster, bool) {
    if max == 0 {
        return (new.clone(), false);
    }
    let deleted: Vec<&String> = current
        .vservers
        .keys()
        .filter(|k| !new.vservers.contains_key(*k))
        .collect();
    let mut out = new.clone();
    if !deleted.is_empty() {
        // Delete at most `max`; every other running vserver keeps its old config; no creations.
        let delete_now: Vec<&String> = deleted.iter().take(max).copied().collect();
        let vservers: BTreeMap<_, _> = current
            .vservers
            .iter()
            .filter(|(k, _)| !delete_now.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let pending = vservers != new.vservers;
        out.vservers = vservers;
        return (out, pending);
    }
    let created: Vec<&String> = new
        .vservers
        .keys()
        .filter(|k| !current.vservers.contains_key(*k))
        .collect();
    if created.len() <= max {
        return (out, false);
    }
    let hold: Vec<&String> = created.into_iter().skip(max).collect();
    out.vservers.retain(|k, _| !hold.contains(&k));
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_cluster;

    fn cluster(names: impl IntoIterator<Item = String>, weight: u32) -> Cluster {
        let mut text = String::from(r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >"#);
        for (i, n) in names.into_iter().enumerate() {
            text.push_str(&format!(
                r#" vserver < name: "{n}" rp: "x" entry_address < fqdn: "{n}." ipv4: "10.1.{}.{}/32" >
                   vserver_entry < protocol: TCP port: 80 >
                   backend < host < fqdn: "b." ipv4: "10.2.0.1/24" > weight: {weight} > >"#,
                i / 200,
                i % 200 + 1
            ));
        }
        load_cluster(text.as_bytes(), None).unwrap()
    }

    fn names(c: &Cluster) -> usize {
        c.vservers.len()
    }

    #[test]
    fn twenty_five_new_vservers_converge_in_three_updates() {
        let target = cluster((0..25).map(|i| format!("vs{i:02}")), 1);
        let mut running = cluster(Vec::new(), 1);
        let mut updates = 0;
        loop {
            let (next, pending) = limit(&running, &target, 10);
            updates += 1;
            running = next;
            if !pending {
                break;
            }
            assert!(updates < 10, "does not converge");
        }
        assert_eq!(updates, 3);
        assert_eq!(running, target);
    }

    #[test]
    fn deletions_are_limited_and_freeze_everything_else() {
        let current = cluster((0..15).map(|i| format!("vs{i:02}")), 1);
        // Delete 12, change the weight of the 3 survivors, add one.
        let new = cluster(
            (12..15)
                .map(|i| format!("vs{i:02}"))
                .chain(["new".to_owned()]),
            5,
        );
        let (step1, pending) = limit(&current, &new, 10);
        assert!(pending);
        assert_eq!(names(&step1), 5, "10 deleted, 5 left");
        assert!(
            !step1.vservers.contains_key("new"),
            "no creation while deleting"
        );
        assert_eq!(
            step1.vservers["vs14"].backends["b."].weight, 1,
            "survivors keep the old config"
        );
        let (step2, pending) = limit(&step1, &new, 10);
        assert!(pending);
        assert_eq!(names(&step2), 3);
        let (step3, pending) = limit(&step2, &new, 10);
        assert!(!pending);
        assert_eq!(step3, new);
    }

    #[test]
    fn zero_means_unlimited() {
        let new = cluster((0..30).map(|i| format!("vs{i:02}")), 1);
        assert_eq!(limit(&cluster(Vec::new(), 1), &new, 0), (new, false));
    }
}
