//! VIP pools in etcd: allocating an address (and ports) of a `vip_pool` to an owner atomically,
//! and freeing it. Keys `<prefix>/vips/<pool>/<ip>/<port>` (one per address:port) and
//! `<prefix>/vip-owners/<pool>/<owner>`, created together in one transaction.

use super::*;

impl Store {
    /// Allocates an address of `pool` to `owner` (a service name) for every one of its `ports`
    /// (none: one port from the pool's range), atomically: each address:port key and the owner's
    /// key are created in one transaction, so two nodes allocating at once never get the same
    /// address:port, and an owner holds at most one allocation per pool (asking again returns it,
    /// with `created` false). Probes from a hash of the owner (one transaction each; a sparse
    /// pool answers on the first), and after 8 taken candidates reads which are taken.
    pub async fn allocate(
        &self,
        pool: &crate::model::VipPool,
        owner: &str,
        ports: &[u16],
    ) -> Result<Allocation, StoreError> {
        let (lo, nports) = match (ports, pool.ports) {
            ([], Some((lo, hi))) => (lo, u128::from(hi - lo) + 1),
            ([], None) => {
                return Err(StoreError::Other(format!(
                    "pool {:?} has no port range: name the service's port",
                    pool.name
                )));
            }
            (_, _) => (0, 1),
        };
        let total = pool.addresses().saturating_mul(nports);
        if total == 0 {
            return Err(StoreError::Other(format!("pool {:?} is empty", pool.name)));
        }
        let candidate = |c: u128| -> Option<(std::net::IpAddr, Vec<u16>)> {
            let ip = pool.address(c / nports)?;
            if ports.is_empty() {
                Some((ip, vec![lo + u16::try_from(c % nports).ok()?]))
            } else {
                Some((ip, ports.to_vec()))
            }
        };
        let start = u128::from(key_hash_str(owner)) % total;
        let mut taken = std::collections::HashSet::new();
        let mut probe = 0u128;
        for round in 0..4 {
            if round > 0 {
                // Dense pool or a race: learn what is taken, then try the first free ones.
                taken = self.taken(&pool.name).await?;
                if taken.len() as u128 >= total.saturating_mul(ports.len().max(1) as u128) {
                    return Err(StoreError::Other(format!(
                        "pool {:?} is full ({} taken)",
                        pool.name,
                        taken.len()
                    )));
                }
            }
            let mut tries = 0;
            while tries < 8 && probe < total {
                let Some((ip, want)) = candidate((start + probe) % total) else {
                    break;
                };
                probe += 1;
                if want.iter().any(|p| taken.contains(&(ip, *p))) {
                    continue;
                }
                tries += 1;
                match self.claim(&pool.name, owner, ip, &want).await? {
                    Claim::Won => {
                        return Ok(Allocation {
                            ip,
                            ports: want,
                            created: true,
                        });
                    }
                    Claim::Held(ip, ports) => {
                        return Ok(Allocation {
                            ip,
                            ports,
                            created: false,
                        });
                    }
                    Claim::Taken => {
                        taken.extend(want.iter().map(|p| (ip, *p)));
                    }
                }
            }
            if probe >= total {
                probe = 0;
            }
        }
        Err(StoreError::Other(format!(
            "pool {:?}: no free address after 4 rounds (contention); retry",
            pool.name
        )))
    }

    fn vip_key(&self, pool: &str, ip: std::net::IpAddr, port: u16) -> String {
        format!("{}vips/{pool}/{ip}/{port}", self.prefix)
    }

    fn owner_key(&self, pool: &str, owner: &str) -> String {
        format!("{}vip-owners/{pool}/{owner}", self.prefix)
    }

    async fn claim(
        &self,
        pool: &str,
        owner: &str,
        ip: std::net::IpAddr,
        ports: &[u16],
    ) -> Result<Claim, StoreError> {
        let ok = self.owner_key(pool, owner);
        let mut when = vec![Compare::create_revision(ok.clone(), CompareOp::Equal, 0)];
        let mut then = Vec::new();
        for p in ports {
            let vk = self.vip_key(pool, ip, *p);
            when.push(Compare::create_revision(vk.clone(), CompareOp::Equal, 0));
            then.push(TxnOp::put(vk, owner, None));
        }
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        then.push(TxnOp::put(
            ok.clone(),
            format!("{ip}/{}", list.join(",")),
            None,
        ));
        let txn = Txn::new()
            .when(when)
            .and_then(then)
            .or_else([TxnOp::get(ok, None)]);
        let mut c = self.client.kv_client();
        let r = self.call(c.txn(txn)).await?;
        if r.succeeded() {
            return Ok(Claim::Won);
        }
        let held = r.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
            _ => None,
        });
        Ok(match held.as_deref().and_then(parse_owner) {
            Some((ip, ports)) => Claim::Held(ip, ports),
            None => Claim::Taken,
        })
    }

    async fn taken(
        &self,
        pool: &str,
    ) -> Result<std::collections::HashSet<(std::net::IpAddr, u16)>, StoreError> {
        let prefix = format!("{}vips/{pool}/", self.prefix);
        Ok(self
            .range(&prefix, true, None)
            .await?
            .into_iter()
            .filter_map(|(key, _)| parse_held(key.strip_prefix(&prefix)?.as_bytes()))
            .collect())
    }

    /// Frees what `owner` holds in `pool` (nothing held: `false`).
    pub async fn free(&self, pool: &str, owner: &str) -> Result<bool, StoreError> {
        let ok = self.owner_key(pool, owner);
        let mut c = self.client.kv_client();
        let r = self.call(c.get(ok.clone(), None)).await?;
        let Some(kv) = r.kvs().first() else {
            return Ok(false);
        };
        let Some((ip, ports)) = parse_owner(kv.value()) else {
            return Err(StoreError::Other(format!("{ok} holds no address/ports")));
        };
        let mut ops: Vec<TxnOp> = ports
            .iter()
            .map(|p| TxnOp::delete(self.vip_key(pool, ip, *p), None))
            .collect();
        ops.push(TxnOp::delete(ok.clone(), None));
        let txn = Txn::new()
            .when([Compare::mod_revision(
                ok,
                CompareOp::Equal,
                kv.mod_revision(),
            )])
            .and_then(ops);
        Ok(self.call(c.txn(txn)).await?.succeeded())
    }
}

/// An address (and its ports) allocated to an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The address.
    pub ip: std::net::IpAddr,
    /// The ports reserved on it.
    pub ports: Vec<u16>,
    /// Whether this call won it (false: the owner held it already).
    pub created: bool,
}

/// The outcome of one allocation transaction.
enum Claim {
    /// The address:ports are the owner's now.
    Won,
    /// The owner already held this one.
    Held(std::net::IpAddr, Vec<u16>),
    /// Someone else has the address:port.
    Taken,
}

/// `<ip>/<port>` (an allocation's value, or the tail of its key).
fn parse_held(b: &[u8]) -> Option<(std::net::IpAddr, u16)> {
    let s = std::str::from_utf8(b).ok()?;
    let (ip, port) = s.rsplit_once('/')?;
    Some((ip.parse().ok()?, port.parse().ok()?))
}

/// `<ip>/<port>,<port>…` (an owner key's value).
fn parse_owner(b: &[u8]) -> Option<(std::net::IpAddr, Vec<u16>)> {
    let s = std::str::from_utf8(b).ok()?;
    let (ip, ports) = s.rsplit_once('/')?;
    let ports: Option<Vec<u16>> = ports.split(',').map(|p| p.parse().ok()).collect();
    Some((ip.parse().ok()?, ports?))
}

fn key_hash_str(s: &str) -> u64 {
    let d = Sha256::digest(s.as_bytes());
    u64::from_be_bytes(d[..8].try_into().unwrap_or_default())
}
