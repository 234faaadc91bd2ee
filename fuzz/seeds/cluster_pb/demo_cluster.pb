# Demo cluster: one vserver on loopback, two HTTP backends (`seesaw demo` picks the port).
seesaw_vip: < fqdn: "seesaw-vip.demo." ipv4: "127.0.0.1/8" status: PRODUCTION >
node: < fqdn: "node1.demo." ipv4: "127.0.0.1/8" status: PRODUCTION >
vserver: <
  name: "web@demo"
  entry_address: < fqdn: "web.demo." ipv4: "127.0.0.1/32" status: PRODUCTION >
  rp: "demo@example.com"
  vserver_entry: <
    protocol: TCP
    port: 8080
    scheduler: WRR
    mode: NAT
    healthcheck: < type: HTTP interval: 1 timeout: 1 retries: 1 send: "/healthz" code: 200 >
  >
  backend: < host: < fqdn: "be1.demo." ipv4: "127.0.0.2/32" status: PRODUCTION > weight: 1 >
  backend: < host: < fqdn: "be2.demo." ipv4: "127.0.0.3/32" status: PRODUCTION > weight: 1 >
>
