# cluster.pb — the cluster configuration, protobuf text format (schema: proto/proto/seesaw/config/config.proto).
# Any Seesaw v2 cluster.pb loads unchanged.
seesaw_vip: <
  fqdn: "seesaw-vip1.example.com."
  ipv4: "192.168.10.1/24"
  ipv6: "2015:cafe::1/64"
  status: PRODUCTION
>
node: <
  fqdn: "seesaw1-1.example.com."
  ipv4: "192.168.10.2/24"
  ipv6: "2015:cafe::2/64"
  status: PRODUCTION
>
node: <
  fqdn: "seesaw1-2.example.com."
  ipv4: "192.168.10.3/24"
  ipv6: "2015:cafe::3/64"
  status: PRODUCTION
>
metadata: <
  last_updated: 1763683200
  attribute: < name: "owner" value: "lb-team@example.com" >
>
vserver: <
  name: "web@au-syd"
  entry_address: <
    fqdn: "web.example.com."
    ipv4: "192.168.10.80/24"
    status: PRODUCTION
  >
  rp: "web-team@example.com"
  vserver_entry: <
    protocol: TCP
    port: 80
    scheduler: WRR
    mode: NAT
    healthcheck: <
      type: HTTP
      interval: 2
      timeout: 1
      retries: 1
      send: "/healthz"
      code: 200
    >
  >
  # No scheduler named: Seesaw's default, WLC. Every data plane holds it; on nftables it is
  # approximate (slots re-weighted from connection counts sampled every 250 ms).
  vserver_entry: <
    protocol: TCP
    port: 443
    mode: DSR
  >
  backend: <
    host: < fqdn: "web1.example.com." ipv4: "192.168.11.1/24" status: PRODUCTION >
    weight: 2
  >
  backend: <
    host: < fqdn: "web2.example.com." ipv4: "192.168.11.2/24" status: PRODUCTION >
    weight: 1
  >
  healthcheck: <
    type: TCP
    interval: 5
    port: 443
  >
>
