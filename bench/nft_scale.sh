#!/usr/bin/env bash
# The nftables plane at scale (root): 10,000 NAT vservers x 10 backends applied in one
# transaction, the change report when one vserver changes, and the request latency through the
# first vserver with 1 and with 10,000 vservers configured (same run, alternating), and what
# adopting the state at start and reading all counters (the engine's 2-second stats call) cost.
# Usage: bench/nft_scale.sh [runs=3] [requests=2000] [vservers=10000]
# Traffic stays inside the namespaces this script creates (client, lb, be).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}; reqs=${2:-2000}; nvs=${3:-10000}
cargo build --release -q -p seesaw-bench --bin nftscale
cargo build --release -q -p seesaw-cli --bin seesaw
bin=target/release/nftscale
id=nb$$
c=$id-client; l=$id-lb; b=$id-be
cleanup() { ip netns pids $b 2>/dev/null | xargs -r kill 2>/dev/null || true; for n in $c $l $b; do ip netns del $n 2>/dev/null || true; done; }
trap cleanup EXIT
for n in $c $l $b; do ip netns add $n; ip -n $n link set lo up; done
ip link add $id-c type veth peer name $id-lc
ip link add $id-b type veth peer name $id-lb
ip link set $id-c netns $c; ip link set $id-lc netns $l
ip link set $id-b netns $b; ip link set $id-lb netns $l
ip -n $c addr add 192.0.2.100/24 dev $id-c; ip -n $c link set $id-c up
ip -n $c route add 198.51.100.0/24 via 192.0.2.10
ip -n $l addr add 192.0.2.10/24 dev $id-lc; ip -n $l link set $id-lc up
ip -n $l addr add 203.0.113.1/24 dev $id-lb; ip -n $l link set $id-lb up
for i in $(seq 11 20); do ip -n $b addr add 203.0.113.$i/24 dev $id-b; done
ip -n $b link set $id-b up
ip netns exec $l sysctl -qw net.ipv4.ip_forward=1
ip netns exec $b target/release/seesaw demo-backend --listen 0.0.0.0:80 --name be >/dev/null 2>&1 &
sleep 1
echo "# nft_scale: runs=$runs requests=$reqs"
for r in $(seq 1 "$runs"); do
  ip netns exec $l $bin apply 1 10 >/dev/null
  ip netns exec $c $bin latency 198.51.100.1:80 200 >/dev/null  # warm-up
  l1=$(ip netns exec $c $bin latency 198.51.100.1:80 "$reqs")
  a=$(ip netns exec $l $bin apply "$nvs" 10)
  l2=$(ip netns exec $c $bin latency 198.51.100.1:80 "$reqs")
  t=$(ip netns exec $l $bin touch $((nvs / 2)) | tr '\n' '|')
  st=$(ip netns exec $l $bin stats)
  echo "run $r: apply_${nvs}x10 [ms changes script_bytes] = $a; latency_1 [p50 p99 us] = $l1; latency_${nvs} = $l2; touch = $t; adopt+stats [adopt_ms stats_ms services dests] = $st"
  ip netns exec $l $bin apply 0 0 >/dev/null
done
