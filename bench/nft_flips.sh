#!/usr/bin/env bash
# A backend's health flip at scale on the nftables plane (root; issue 16): one namespace whose
# plane holds N NAT vservers x 10 backends; then K flips, each two applies through one plane
# (as ncc holds it): one destination of a vserver removed, then restored; once through
# libnftables (one kept context, as ncc runs it) and once through the `nft` binary, back to
# back; then through libnftables with the applies 100 ms apart (an isolated flip: the kernel has
# released the previous transaction's objects, which back to back the next one waits for).
# Prints per run the median and p99 apply time in ms over the 2K applies, how often the plane
# re-listed its tables after its start (0: every flip cost what it changed), the median of the in-process
# part alone (check + current state + diff, the rest is the nft transaction); then the median
# wall and CPU time of re-applying the unchanged state (the periodic re-converge), and the
# engine's share of a flip before ncc's apply starts (engineflip: the real core at the same
# size, the request encoded, decoded and converted as ncc does). Last, the flip all the way
# (e2e): a real seesaw_ncc on the nftables plane in a fresh namespace, and engineflip's core
# sending each flip through the engine's own ncc port (GrpcNcc: a delta on the Unix socket);
# per flip the time from the health report reaching the core to ncc's answer, which comes once
# the kernel committed it, and ncc's part of it; back to back, then 100 ms apart. No traffic.
# Usage: bench/nft_flips.sh [runs=3] [flips=100] [vservers=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}; flips=${2:-100}; nvs=${3:-10000}
cargo build --release -q -p seesaw-bench --bin nftscale --bin engineflip -p seesaw-ncc --bin seesaw_ncc
bin=target/release/nftscale
ns=nf$$
e2e=nfe$$
tmp=$(mktemp -d)
cleanup() {
  [ -f "$tmp/ncc.pid" ] && kill "$(cat "$tmp/ncc.pid")" 2>/dev/null || true
  ip netns del $ns 2>/dev/null || true
  ip netns del $e2e 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add $ns
mkdir -p "$tmp/cfg"
printf '[dataplane]\nkind = nftables\n' > "$tmp/cfg/seesaw.cfg"
echo "# nft_flips: runs=$runs flips=$flips vservers=$nvs x 10"
for r in $(seq 1 "$runs"); do
  a=$(ip netns exec $ns $bin apply "$nvs" 10)
  f=$(ip netns exec $ns $bin flips "$flips" lib)
  w=$(ip netns exec $ns $bin flips "$flips" lib 0 whole)
  c=$(ip netns exec $ns $bin flips "$flips" cli)
  g=$(ip netns exec $ns $bin flips "$flips" lib 100)
  echo "run $r: apply [ms changes bytes] = $a; flips [p50_ms p99_ms re-lists in-process_p50_ms] = $f (libnftables, as ncc) / $w (libnftables, whole states) / $c (nft binary) / $g (libnftables, flips 100 ms apart)"
  e=$(target/release/engineflip "$nvs" 10 "$flips" 2>/dev/null)
  echo "run $r: the engine's share [core p50 p99, send p50 p99, recv p50 p99, total p50 p99 ms, bytes] = $e"
  v=$(ip netns exec $ns $bin converge 20)
  echo "run $r: re-converge of the unchanged state [wall_ms cpu_ms] = $v"
  ip netns exec $ns $bin apply 0 0 >/dev/null
  ip netns add $e2e
  ip netns exec $e2e ip link set lo up
  rm -rf "$tmp/run"
  ip netns exec $e2e target/release/seesaw_ncc --run-dir "$tmp/run" --config-dir "$tmp/cfg" \
    2>"$tmp/ncc.log" &
  echo $! > "$tmp/ncc.pid"
  for _ in $(seq 1 100); do [ -S "$tmp/run/ncc/ncc.sock" ] && break; sleep 0.1; done
  x=$(ip netns exec $e2e target/release/engineflip "$nvs" 10 "$flips" ncc "$tmp/run/ncc/ncc.sock" 2>/dev/null)
  y=$(ip netns exec $e2e target/release/engineflip "$nvs" 10 "$flips" ncc "$tmp/run/ncc/ncc.sock" 100 2>/dev/null)
  echo "run $r: all the way [e2e p50 p99, ncc p50 p99 ms, whole requests, deltas] = $x (back to back) / $y (flips 100 ms apart)"
  kill "$(cat "$tmp/ncc.pid")"; wait 2>/dev/null || true; rm -f "$tmp/ncc.pid"
  ip netns del $e2e
done
