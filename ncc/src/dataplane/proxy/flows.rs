//! Live TCP flows of one service by client address, for `seesaw trace`: each relayed
//! connection registers when its backend connect succeeds and leaves when it ends. Sixteen
//! shards, so the two short locks a connection takes rarely meet another core's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

const SHARDS: usize = 16;

/// Client address → destination address of the service's open TCP connections.
#[derive(Debug, Default)]
pub struct Flows {
    shards: [Mutex<HashMap<SocketAddr, SocketAddr>>; SHARDS],
}

impl Flows {
    fn shard(&self, client: SocketAddr) -> &Mutex<HashMap<SocketAddr, SocketAddr>> {
        let h = crate::sched::hash_addr(client);
        &self.shards[(h % SHARDS as u64) as usize]
    }

    /// Registers a connection; it leaves when the guard drops.
    pub fn open(&self, client: SocketAddr, dest: SocketAddr) -> FlowGuard<'_> {
        self.shard(client)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client, dest);
        FlowGuard {
            flows: self,
            client,
        }
    }

    /// The destination of `client`'s open connection.
    pub fn get(&self, client: SocketAddr) -> Option<SocketAddr> {
        self.shard(client)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&client)
            .copied()
    }
}

/// Removes its connection from [`Flows`] when dropped (however the connection ends).
#[derive(Debug)]
pub struct FlowGuard<'a> {
    flows: &'a Flows,
    client: SocketAddr,
}

impl Drop for FlowGuard<'_> {
    fn drop(&mut self) {
        self.flows
            .shard(self.client)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_is_found_while_open_and_gone_after() {
        let f = Flows::default();
        let (c, d): (SocketAddr, SocketAddr) = (
            "127.0.0.9:40000".parse().unwrap(),
            "127.0.0.2:80".parse().unwrap(),
        );
        {
            let _g = f.open(c, d);
            assert_eq!(f.get(c), Some(d));
            assert_eq!(f.get("127.0.0.9:40001".parse().unwrap()), None);
        }
        assert_eq!(f.get(c), None);
    }
}
