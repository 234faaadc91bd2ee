# Example: payload rules on the userspace proxy plane (stevedore's two cases, DESIGN §1.15).
#
# kcp@example — a KCP game service on UDP 4000. KCP puts the session id (`conv`) in bytes 0:4 of
#   every datagram; hashing on it (mh) pins a session to one backend even when the client's NAT
#   changes its source port. Datagrams shorter than 24 bytes (the KCP header) are dropped.
# api@example — a UDP protocol with its version in bytes 4:6: version 1 goes to the "v1" group,
#   version 2 and 3 to "v2", anything else is denied (dropped and counted).
# Run it with `[dataplane] kind = proxy` (this directory's seesaw.cfg); the backends are
# loopback addresses, so it works without root.
seesaw_vip: < fqdn: "seesaw-vip.example." ipv4: "127.0.0.1/8" status: PRODUCTION >
node: < fqdn: "node1.example." ipv4: "127.0.0.1/8" status: PRODUCTION >
vserver: <
  name: "kcp@example"
  entry_address: < fqdn: "kcp.example." ipv4: "127.0.0.1/32" status: PRODUCTION >
  rp: "games@example.com"
  vserver_entry: <
    protocol: UDP
    port: 4000
    scheduler: MH
    mode: NAT
    proxy: <
      # A KCP segment has a 24-byte header: shorter datagrams are not KCP.
      rule: < condition: < key: BYTES offset: 23 length: 1 op: GE value: "0" > group: "" >
      default_group: "deny"
      hash_offset: 0
      hash_length: 4
      udp_idle_timeout_s: 120
    >
  >
  backend: < host: < fqdn: "game1.example." ipv4: "127.0.0.2/32" status: PRODUCTION > weight: 1 >
  backend: < host: < fqdn: "game2.example." ipv4: "127.0.0.3/32" status: PRODUCTION > weight: 1 >
  backend: < host: < fqdn: "game3.example." ipv4: "127.0.0.4/32" status: PRODUCTION > weight: 1 >
>
vserver: <
  name: "api@example"
  entry_address: < fqdn: "api.example." ipv4: "127.0.0.1/32" status: PRODUCTION >
  rp: "api@example.com"
  vserver_entry: <
    protocol: UDP
    port: 5000
    scheduler: RR
    mode: NAT
    proxy: <
      rule: < condition: < key: BYTES offset: 4 length: 2 op: EQ value: "1" > group: "v1" >
      rule: < condition: < key: BYTES offset: 4 length: 2 op: IN value: "2" value: "0x0003" > group: "v2" >
      default_group: "deny"
      udp_mode: PER_FLOW
    >
  >
  backend: < host: < fqdn: "api-v1a.example." ipv4: "127.0.0.5/32" status: PRODUCTION > group: "v1" >
  backend: < host: < fqdn: "api-v1b.example." ipv4: "127.0.0.6/32" status: PRODUCTION > group: "v1" >
  backend: < host: < fqdn: "api-v2.example." ipv4: "127.0.0.7/32" status: PRODUCTION > group: "v2" >
  backend: < host: < fqdn: "api-v2-backup.example." ipv4: "127.0.0.8/32" status: PRODUCTION > group: "v2" backup: true >
>
