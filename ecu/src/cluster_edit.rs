//! Structural edits of cluster.pb: the running text is parsed into the generated `Cluster`
//! message (prost-reflect text format), one pool or member is added, replaced or removed, and the
//! whole message is rendered back to text for the engine's `UpdateCluster`, which validates it
//! again and records the version. Nothing here touches the disk or the engine.

use prost_reflect::{DynamicMessage, ReflectMessage};
use seesaw_proto::config as pb;

use crate::spec::{self, Member};

/// Why an edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The running cluster.pb does not parse (it always should: the engine loaded it).
    #[error("the running cluster.pb does not parse: {0}")]
    Parse(String),
    /// No pool by that name.
    #[error("no pool named {0:?}")]
    NoPool(String),
    /// The pool exists already (create).
    #[error("pool {0:?} exists already")]
    PoolExists(String),
    /// No member by that host in the pool.
    #[error("pool {pool:?} has no member {host:?}")]
    NoMember {
        /// The pool.
        pool: String,
        /// The member's host.
        host: String,
    },
    /// The member exists already (create).
    #[error("pool {pool:?} already has member {host:?}")]
    MemberExists {
        /// The pool.
        pool: String,
        /// The member's host.
        host: String,
    },
}

/// Parses cluster.pb text.
pub fn parse(text: &str) -> Result<pb::Cluster, EditError> {
    let desc = pb::Cluster::default().descriptor();
    let dynamic = DynamicMessage::parse_text_format(desc, text)
        .map_err(|e| EditError::Parse(e.to_string()))?;
    dynamic
        .transcode_to::<pb::Cluster>()
        .map_err(|e| EditError::Parse(e.to_string()))
}

fn pool_mut<'a>(c: &'a mut pb::Cluster, name: &str) -> Result<&'a mut pb::Vserver, EditError> {
    c.vserver
        .iter_mut()
        .find(|v| v.name == name)
        .ok_or_else(|| EditError::NoPool(name.to_owned()))
}

/// Adds a pool; its name must be new.
pub fn create_pool(c: &mut pb::Cluster, v: pb::Vserver) -> Result<(), EditError> {
    if c.vserver.iter().any(|x| x.name == v.name) {
        return Err(EditError::PoolExists(v.name));
    }
    c.vserver.push(v);
    Ok(())
}

/// Adds a pool or replaces one of the same name (import).
pub fn upsert_pool(c: &mut pb::Cluster, v: pb::Vserver) {
    match c.vserver.iter_mut().find(|x| x.name == v.name) {
        Some(x) => *x = v,
        None => c.vserver.push(v),
    }
}

/// Replaces a pool's address, services and checks; its access grants and warnings stay, and so do
/// its members unless `members` is given.
pub fn edit_pool(
    c: &mut pb::Cluster,
    name: &str,
    new: pb::Vserver,
    members: Option<&[Member]>,
) -> Result<(), EditError> {
    if new.name != name && c.vserver.iter().any(|x| x.name == new.name) {
        return Err(EditError::PoolExists(new.name));
    }
    let v = pool_mut(c, name)?;
    v.name = new.name;
    v.entry_address = new.entry_address;
    v.rp = new.rp;
    v.vserver_entry = new.vserver_entry;
    v.healthcheck = new.healthcheck;
    if let Some(ms) = members {
        v.backend = ms.iter().map(spec::backend).collect();
    }
    Ok(())
}

/// Removes a pool.
pub fn delete_pool(c: &mut pb::Cluster, name: &str) -> Result<(), EditError> {
    let before = c.vserver.len();
    c.vserver.retain(|v| v.name != name);
    if c.vserver.len() == before {
        return Err(EditError::NoPool(name.to_owned()));
    }
    Ok(())
}

/// Adds a member (`replace`: or replaces the one with the same host).
pub fn put_member(
    c: &mut pb::Cluster,
    pool: &str,
    m: &Member,
    replace: bool,
) -> Result<(), EditError> {
    let v = pool_mut(c, pool)?;
    let b = spec::backend(m);
    match v.backend.iter_mut().find(|x| x.host.fqdn == b.host.fqdn) {
        Some(existing) if replace => {
            // Keep what the member form does not carry (group, backup, status).
            existing.host.ipv4 = b.host.ipv4;
            existing.host.ipv6 = b.host.ipv6;
            existing.weight = b.weight;
        }
        Some(_) => {
            return Err(EditError::MemberExists {
                pool: pool.to_owned(),
                host: m.host.clone(),
            });
        }
        None if replace => {
            return Err(EditError::NoMember {
                pool: pool.to_owned(),
                host: m.host.clone(),
            });
        }
        None => v.backend.push(b),
    }
    Ok(())
}

/// Removes a member by host (with or without the trailing dot).
pub fn delete_member(c: &mut pb::Cluster, pool: &str, host: &str) -> Result<(), EditError> {
    let v = pool_mut(c, pool)?;
    let want = host.trim_end_matches('.');
    let before = v.backend.len();
    v.backend
        .retain(|b| b.host.fqdn.trim_end_matches('.') != want);
    if v.backend.len() == before {
        return Err(EditError::NoMember {
            pool: pool.to_owned(),
            host: host.to_owned(),
        });
    }
    Ok(())
}

/// The cluster.pb the ECU's tests edit (these tests and the API's): one vserver web@demo, TCP
/// port 80 on 127.0.0.1, with one backend be1.demo.
#[cfg(test)]
pub(crate) const TEST_CLUSTER: &str = r#"
seesaw_vip: < fqdn: "vip.demo." ipv4: "127.0.0.254/8" >
node: < fqdn: "lb1.demo." ipv4: "127.0.0.1/8" >
vserver: <
  name: "web@demo"
  entry_address: < fqdn: "web.demo." ipv4: "127.0.0.1/32" >
  rp: "ops"
  vserver_entry: < protocol: TCP port: 80 scheduler: WRR mode: NAT >
  backend: < host: < fqdn: "be1.demo." ipv4: "127.0.0.2/8" > weight: 1 >
>
"#;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// [`TEST_CLUSTER`] with fields the edits must keep: be1 in group `a`, and an access grant.
    fn cluster() -> pb::Cluster {
        let mut c = parse(TEST_CLUSTER).expect("parses");
        let web = &mut c.vserver[0];
        web.backend[0].group = Some("a".into());
        web.access_grant.push(pb::AccessGrant {
            grantee: "alice".into(),
            role: pb::access_grant::Role::Admin as i32,
            r#type: pb::access_grant::Type::User as i32,
        });
        c
    }

    fn member(host: &str, ip: &str, weight: i32) -> Member {
        Member {
            host: host.into(),
            ip: ip.parse().expect("literal"),
            weight,
        }
    }

    #[test]
    fn member_edits_are_structural_and_keep_other_fields() {
        let mut c = cluster();
        put_member(
            &mut c,
            "web@demo",
            &member("be2.demo.", "127.0.0.3", 2),
            false,
        )
        .expect("added");
        put_member(
            &mut c,
            "web@demo",
            &member("be1.demo.", "127.0.0.9", 5),
            true,
        )
        .expect("replaced");
        let again = parse(&c.to_text()).expect("round trip");
        let v = &again.vserver[0];
        assert_eq!(v.backend.len(), 2);
        assert_eq!(v.backend[0].host.ipv4.as_deref(), Some("127.0.0.9/32"));
        assert_eq!(
            (v.backend[0].weight, v.backend[0].group.as_deref()),
            (Some(5), Some("a"))
        );
        assert_eq!(v.access_grant.len(), 1);
        assert_eq!(
            put_member(
                &mut c,
                "web@demo",
                &member("be2.demo.", "127.0.0.3", 2),
                false
            ),
            Err(EditError::MemberExists {
                pool: "web@demo".into(),
                host: "be2.demo.".into()
            })
        );
        delete_member(&mut c, "web@demo", "be2.demo").expect("deleted");
        assert!(delete_member(&mut c, "web@demo", "be2.demo").is_err());
        assert!(delete_member(&mut c, "nope", "be1.demo.").is_err());
    }

    #[test]
    fn pool_create_edit_delete() {
        let mut c = cluster();
        let (v, _) = spec::pool_from_value(&json!({
            "name": "api@demo", "vip": "127.0.0.1", "services": [{"port": 81}],
        }))
        .expect("valid");
        create_pool(&mut c, v.clone()).expect("created");
        assert_eq!(
            create_pool(&mut c, v),
            Err(EditError::PoolExists("api@demo".into()))
        );
        let (edited, members) = spec::pool_from_value(&json!({
            "name": "web@demo", "vip": "127.0.0.1", "services": [{"port": 8080}],
        }))
        .expect("valid");
        edit_pool(&mut c, "web@demo", edited, members.as_deref()).expect("edited");
        let web = &c.vserver[0];
        assert_eq!((web.vserver_entry[0].port, web.backend.len()), (8080, 1));
        assert_eq!(web.access_grant.len(), 1);
        delete_pool(&mut c, "api@demo").expect("deleted");
        assert_eq!(c.vserver.len(), 1);
        assert!(c.to_text().contains("name: \"web@demo\""));
    }

    #[test]
    fn garbage_text_is_a_parse_error() {
        assert!(matches!(parse("vserver: <"), Err(EditError::Parse(_))));
    }
}
