#!/usr/bin/env bash
# A hostile cluster.pb: 20 MB of vservers with 250 unknown fields. Times how long
# `seesaw_engine --validate` takes to refuse it (the same parse a reload runs, off the engine's
# event loop), and, for scale, how long the same file without the unknown fields takes to load
# and validate in full. Median of `runs`.
# Usage: bench/config_refusal.sh [runs=5] [megabytes=20]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}; mb=${2:-20}
cargo build --release -q -p seesaw-engine --bin seesaw_engine
bin=target/release/seesaw_engine
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bad" "$dir/good"
cp etc/seesaw.cfg "$dir/bad/"; cp etc/seesaw.cfg "$dir/good/"
python3 - "$dir" "$mb" <<'PY'
import sys
d, mb = sys.argv[1], int(sys.argv[2])
head = 'seesaw_vip: < fqdn: "vip.example.com." ipv4: "192.168.10.1/24" status: PRODUCTION >\n' \
       'node: < fqdn: "lb1.example.com." ipv4: "192.168.10.2/24" status: PRODUCTION >\n'
for name, unknown in (("bad", 250), ("good", 0)):
    out, size, i = [head], len(head), 0
    while size < mb * 1_000_000:
        bogus = f"    bogus_field_{i}: 1\n" if i < unknown else ""
        a, b, c = (i >> 16) & 255, (i >> 8) & 255, i & 255
        vs = (f'vserver: <\n  name: "vs{i}@x"\n'
              f'  entry_address: < fqdn: "vs{i}.example.com." ipv4: "10.{a}.{b}.{c}/32" status: PRODUCTION >\n'
              f'  rp: "team@example.com"\n  vserver_entry: <\n    protocol: TCP\n    port: 80\n'
              f'    scheduler: RR\n    mode: NAT\n{bogus}'
              f'    healthcheck: < type: HTTP interval: 2 timeout: 1 send: "/" code: 200 >\n  >\n'
              f'  backend: < host: < fqdn: "b{i}.example.com." ipv4: "10.200.{b}.{c}/32" status: PRODUCTION > weight: 1 >\n>\n')
        out.append(vs); size += len(vs); i += 1
    open(f"{d}/{name}/cluster.pb", "w").write("".join(out))
PY
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_one() {  # prints seconds; checks the exit code
  local want=$1 dir=$2 s e rc
  s=$(date +%s.%N); set +e; "$bin" --validate --config-dir "$dir" >"$dir/out" 2>&1; rc=$?; set -e
  e=$(date +%s.%N)
  [ "$rc" = "$want" ] || { echo "exit $rc, wanted $want:"; tail -3 "$dir/out"; exit 1; } >&2
  echo "$e - $s" | bc
}
bad=(); good=()
for _ in $(seq 1 "$runs"); do
  bad+=("$(time_one 78 "$dir/bad")"); good+=("$(time_one 0 "$dir/good")")
done
size=$(stat -c %s "$dir/bad/cluster.pb")
echo "# config_refusal: runs=$runs size=$size bytes"
echo "refused (250 unknown fields): median $(printf '%s\n' "${bad[@]}" | median) s  [${bad[*]}]"
echo "accepted (same size, clean):  median $(printf '%s\n' "${good[@]}" | median) s  [${good[*]}]"
head -2 "$dir/bad/out"; tail -2 "$dir/bad/out"
