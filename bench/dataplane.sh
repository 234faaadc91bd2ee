#!/usr/bin/env bash
# The userspace data plane against HAProxy and nginx stream, in one go on this machine (loopback
# only). Builds release binaries, starts an nginx HTTP backend (512-byte responses), an iperf3
# server and a UDP sink on 127.0.0.1, then runs ROUNDS rounds; in every round each path gets:
#   wrk -t1 -c64 (keep-alive) for WRK_SECS, iperf3 single stream for IPERF_SECS,
#   udpgen 64-byte datagrams for UDP_SECS (counted at the receiver; not through HAProxy).
# Paths: direct (no proxy), ours (seesaw_proxy, the proxy relay ncc programs; services applied over
# its gRPC socket with nccctl; for UDP also ours_nooffload: a second instance with
# SEESAW_UDP_OFFLOAD=off, i.e. without UDP GSO/GRO), HAProxy (mode tcp, nbthread = ours, maxconn 4000, splice-auto) and
# nginx stream (worker_processes = ours, reuseport); for iperf3 also floor (bench/src/bin/
# splicerelay.rs: the simplest splice relay, the most any relaying proxy can get here). Every
# process runs in a session of its own (see below). The order of the paths alternates between
# rounds (rotated, and reversed every other round). Prints every run and a markdown table of
# medians and same-round ratios (the median of the per-round ratios); with --record the table is
# appended to bench/RESULTS.md with the command.
#
# Usage: bench/dataplane.sh [--record] [ROUNDS=3]
#   env: WRK_SECS (5) IPERF_SECS (5) UDP_SECS (3) THREADS (nproc: HAProxy threads, nginx workers and
#        ours' worker threads per protocol, SEESAW_PROXY_THREADS)
#        ONLY (e.g. "wrk iperf udp": which measurements to run)
#        PATHS (e.g. "ours haproxy": which paths to run; default all)
#        NO_BUILD=1 (use the binaries already in target/release)
#        UDP_GEN (gso: the generator sends 64 datagrams per sendmsg as one UDP GSO message, which
#                 the kernel splits into 64-byte datagrams before any receiver sees them; plain:
#                 sendmmsg, where the generator itself limits the rate to about 200k/s here)
# Needs: haproxy nginx-light libnginx-mod-stream wrk iperf3 (Debian), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
record=0
if [ "${1:-}" = "--record" ]; then record=1; shift; fi
rounds=${1:-3}
wrk_secs=${WRK_SECS:-5}
iperf_secs=${IPERF_SECS:-5}
udp_secs=${UDP_SECS:-3}
threads=${THREADS:-$(nproc)}
udp_gen=${UDP_GEN:-gso}
only=${ONLY:-wrk iperf udp}
paths=${PATHS:-}
[ "$rounds" -ge 1 ] && [ "$rounds" -le 20 ] || { echo "ROUNDS must be 1..20" >&2; exit 64; }
for t in haproxy nginx wrk iperf3 python3; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "missing $t (apt-get install -y haproxy nginx-light libnginx-mod-stream wrk iperf3)" >&2; exit 69; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
STREAM_MOD=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f $STREAM_MOD ] || { echo "missing $STREAM_MOD (apt-get install -y libnginx-mod-stream)" >&2; exit 69; }

if [ "${NO_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p seesaw-ncc --bin seesaw_proxy -p seesaw-bench --bin udpgen --bin nccctl --bin splicerelay
fi
rel=target/release

tmp=$(mktemp -d /tmp/seesaw-dataplane.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$tmp/be/nginx.pid" ] && kill "$(cat "$tmp/be/nginx.pid")" 2>/dev/null || true
  [ -f "$tmp/ngx/nginx.pid" ] && kill "$(cat "$tmp/ngx/nginx.pid")" 2>/dev/null || true
  sleep 0.3
  rm -rf "$tmp"
}
trap cleanup EXIT

# Ports: backends, then one block per proxy (http, iperf, udp).
BE_HTTP=18080 BE_IPERF=15201 BE_UDP=19000
declare -A HTTP=([direct]=18080 [ours]=18081 [haproxy]=18082 [nginx]=18083)
declare -A IPERF=([direct]=15201 [ours]=15202 [haproxy]=15203 [nginx]=15204 [floor]=15205)
declare -A UDP=([direct]=19000 [ours]=19001 [ours_nooffload]=19002 [nginx]=19003)

# Every daemon and load generator runs in a session of its own (setsid), as a service manager
# would start them: with autogroup scheduling (kernel.sched_autogroup_enabled = 1) processes of
# one session share one CPU share, so a proxy started from this shell would otherwise compete
# with wrk inside one group while nginx, which daemonizes, got a group of its own.

# --- backends ---
mkdir -p "$tmp/be/logs" "$tmp/ngx/logs"
body=$(head -c 512 /dev/zero | tr '\0' 'x')
cat >"$tmp/be/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/be/nginx.pid;
error_log $tmp/be/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  default_type text/plain;
  server {
    listen 127.0.0.1:$BE_HTTP backlog=4096;
    location / { return 200 "$body"; }
  }
}
EOF
"$NGINX" -p "$tmp/be" -c "$tmp/be/nginx.conf" -e "$tmp/be/error.log"
setsid iperf3 -s -B 127.0.0.1 -p $BE_IPERF >/dev/null 2>&1 &
pids+=($!)

# --- our proxy ---
mkdir -p "$tmp/ncc-cfg" "$tmp/ncc-run"
printf '[cluster]\nname = bench\n[dataplane]\nkind = proxy\n' >"$tmp/ncc-cfg/seesaw.cfg"
SEESAW_PROXY_THREADS=$threads setsid $rel/seesaw_proxy --config-dir "$tmp/ncc-cfg" --run-dir "$tmp/ncc-run" \
  2>"$tmp/ncc.log" &
pids+=($!)
sock="$tmp/ncc-run/proxy/proxy.sock"
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
$rel/nccctl "$sock" apply \
  tcp 127.0.0.1:${HTTP[ours]} 127.0.0.1:$BE_HTTP \
  tcp 127.0.0.1:${IPERF[ours]} 127.0.0.1:$BE_IPERF \
  udp 127.0.0.1:${UDP[ours]} 127.0.0.1:$BE_UDP >/dev/null

# A second instance of ours with UDP GSO/GRO off, to measure what they bring (UDP only).
mkdir -p "$tmp/ncc2-run"
SEESAW_UDP_OFFLOAD=off SEESAW_PROXY_THREADS=$threads setsid $rel/seesaw_proxy --config-dir "$tmp/ncc-cfg" --run-dir "$tmp/ncc2-run" \
  2>"$tmp/ncc2.log" &
pids+=($!)
sock2="$tmp/ncc2-run/proxy/proxy.sock"
for _ in $(seq 1 100); do [ -S "$sock2" ] && break; sleep 0.1; done
$rel/nccctl "$sock2" apply udp 127.0.0.1:${UDP[ours_nooffload]} 127.0.0.1:$BE_UDP >/dev/null

# --- the floor of a relay (bulk only): bench/src/bin/splicerelay.rs, blocking splice, a thread per
# direction; what it loses against direct is the second TCP connection itself ---
setsid $rel/splicerelay 127.0.0.1:${IPERF[floor]} 127.0.0.1:$BE_IPERF 2>"$tmp/splicerelay.log" &
pids+=($!)

# --- HAProxy ---
cat >"$tmp/haproxy.cfg" <<EOF
global
  nbthread $threads
  maxconn 4000
defaults
  mode tcp
  option splice-auto
  timeout connect 5s
  timeout client 120s
  timeout server 120s
listen http
  bind 127.0.0.1:${HTTP[haproxy]}
  server be 127.0.0.1:$BE_HTTP
listen iperf
  bind 127.0.0.1:${IPERF[haproxy]}
  server be 127.0.0.1:$BE_IPERF
EOF
setsid "$HAPROXY" -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 &
pids+=($!)

# --- nginx stream ---
cat >"$tmp/ngx/nginx.conf" <<EOF
load_module $STREAM_MOD;
worker_processes $threads;
pid $tmp/ngx/nginx.pid;
error_log $tmp/ngx/error.log;
events { worker_connections 4096; }
stream {
  server { listen 127.0.0.1:${HTTP[nginx]} reuseport backlog=4096; proxy_pass 127.0.0.1:$BE_HTTP; }
  server { listen 127.0.0.1:${IPERF[nginx]} reuseport; proxy_pass 127.0.0.1:$BE_IPERF; }
  server { listen 127.0.0.1:${UDP[nginx]} udp reuseport; proxy_pass 127.0.0.1:$BE_UDP; proxy_responses 0; }
}
EOF
"$NGINX" -p "$tmp/ngx" -c "$tmp/ngx/nginx.conf" -e "$tmp/ngx/error.log"

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 70; }
for p in "${HTTP[@]}" "${IPERF[@]}"; do wait_port "$p"; done

# --- measurements: each prints one line of numbers ---
run_wrk() { # -> req/s p99_us
  setsid -w wrk -t1 -c64 -d"${wrk_secs}s" --latency "http://127.0.0.1:$1/" | python3 -c '
import re, sys
t = sys.stdin.read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)
m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", t)
v = float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
errs = re.search(r"Socket errors: (.*)", t)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(rps, round(v), "errors:" + (errs.group(1).replace(" ", "") if errs else "0") + ("/non2xx:" + non2xx.group(1) if non2xx else ""))'
}
run_iperf() { # -> Gbit/s received
  setsid -w iperf3 -c 127.0.0.1 -p "$1" -t "$iperf_secs" -J | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(round(j["end"]["sum_received"]["bits_per_second"] / 1e9, 2))'
}
run_udp() { # -> datagrams/s delivered (counted at the sink) and received count
  local out
  setsid $rel/udpgen sink 127.0.0.1:$BE_UDP $((udp_secs + 2)) >"$tmp/sink.out" &
  local sp=$!
  sleep 0.3
  local sent
  sent=$(setsid -w $rel/udpgen send "127.0.0.1:$1" "$udp_secs" 64 $udp_gen | awk '{print $2}')
  wait $sp
  out=$(cat "$tmp/sink.out")
  python3 -c "
import sys
n = int('$out'.split()[1]); print(round(n / $udp_secs), 'received', n, 'sent', $sent)"
}

# Busy and idle jiffies of all cores: each run also records how busy the machine was (cpu:),
# which shows whether a path was CPU-bound and what it costs per request or per byte.
cpu_now() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat; }

paths_for() {
  local all
  case $1 in
    udp) all="direct ours ours_nooffload nginx";;
    iperf) all="direct ours haproxy nginx floor";;
    *) all="direct ours haproxy nginx";;
  esac
  if [ -z "$paths" ]; then echo "$all"; return; fi
  local out="" p
  for p in $all; do case " $paths " in *" $p "*) out="$out $p";; esac; done
  echo "$out"
}

# Warm-up (not recorded).
for p in direct ours haproxy nginx; do wrk -t1 -c64 -d1s "http://127.0.0.1:${HTTP[$p]}/" >/dev/null; done

res="$tmp/results.txt"
: >"$res"
echo "# dataplane: rounds=$rounds wrk=${wrk_secs}s iperf=${iperf_secs}s udp=${udp_secs}s ($udp_gen) threads=$threads load=$(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  for m in $only; do
    read -r -a ps <<<"$(paths_for "$m")"
    n=${#ps[@]}
    order=()
    for i in $(seq 0 $((n - 1))); do order+=("${ps[$(((i + r - 1) % n))]}"); done
    if [ $((r % 2)) -eq 0 ]; then
      rev=(); for ((i = n - 1; i >= 0; i--)); do rev+=("${order[$i]}"); done; order=("${rev[@]}")
    fi
    for p in "${order[@]}"; do
      c0=$(cpu_now)
      case $m in
        wrk) v=$(run_wrk "${HTTP[$p]}");;
        iperf) v=$(run_iperf "${IPERF[$p]}");;
        udp) v=$(run_udp "${UDP[$p]}");;
      esac
      c1=$(cpu_now)
      busy=$(python3 -c "b0,i0,b1,i1=map(int,'$c0 $c1'.split()); print(f'{(b1-b0)/max(1,(b1-b0)+(i1-i0)):.3f}')")
      echo "round $r $m $p $v cpu:$busy" | tee -a "$res"
    done
  done
done

# --- medians and same-round ratios ---
table=$(python3 - "$res" "$(nproc)" <<'EOF'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for r in rows:
    _, rnd, m, p, *v = r
    by.setdefault((m, p), {})[int(rnd)] = v
def med(m, p, i=0):
    xs = [float(v[i]) for v in by.get((m, p), {}).values()]
    return st.median(xs) if xs else None
ncpu = int(sys.argv[2])
def busy(m, p):
    xs = [float(x[4:]) for v in by.get((m, p), {}).values() for x in v if x.startswith("cpu:")]
    return st.median(xs) if xs else None
def ratio(m, a, b, i=0):
    A, B = by.get((m, a), {}), by.get((m, b), {})
    xs = [float(A[k][i]) / float(B[k][i]) for k in A if k in B and float(B[k][i]) > 0]
    return f"{st.median(xs):.2f}" if xs else "-"
out = []
def table(m, head, paths, cells):
    """One table of measurement `m`: a row for each path measured, `cells(p)` after its name."""
    if not any(k[0] == m for k in by):
        return
    if out:
        out.append("")
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for p in paths:
        if (m, p) in by:
            out.append("| " + " | ".join([p] + cells(p)) + " |")
def cpu(m, p, per_unit, fmt):
    """CPU busy (median) and the CPU it costs per unit of what `m` measures."""
    b = busy(m, p)
    return ["-", "-"] if b is None else [f"{b}", format(b * ncpu * per_unit / med(m, p), fmt)]
vs = lambda m, p: [ratio(m, p, 'direct'), ratio(m, 'ours', p)]
table("wrk", ["wrk -t1 -c64, 512 B", "req/s (median)", "p99 µs (median)", "÷ direct", "ours ÷ this", "CPU busy", "CPU µs per request"],
      ["direct", "ours", "haproxy", "nginx"],
      lambda p: [f"{med('wrk', p):.0f}", f"{med('wrk', p, 1):.0f}"] + vs('wrk', p) + cpu('wrk', p, 1e6, ".1f"))
table("iperf", ["iperf3 1 stream", "Gbit/s (median)", "÷ direct", "ours ÷ this", "CPU busy", "core-seconds per GB"],
      ["direct", "ours", "haproxy", "nginx", "floor"],
      lambda p: [f"{med('iperf', p):.2f}"] + vs('iperf', p) + cpu('iperf', p, 8, ".3f"))
table("udp", ["udpgen 64 B", "delivered/s (median)", "÷ direct", "ours ÷ this"],
      ["direct", "ours", "ours_nooffload", "nginx"],
      lambda p: [f"{med('udp', p):.0f}"] + vs('udp', p))
print("\n".join(out))
EOF
)
echo
echo "$table"
if [ "$record" = 1 ]; then
  {
    echo
    echo "## Userspace proxy vs HAProxy and nginx stream: bench/dataplane.sh $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Command: \`WRK_SECS=$wrk_secs IPERF_SECS=$iperf_secs UDP_SECS=$udp_secs UDP_GEN=$udp_gen THREADS=$threads ONLY=\"$only\"${paths:+ PATHS=\"$paths\"} bench/dataplane.sh --record $rounds\`"
    echo "(load average at start: $(cut -d' ' -f1-3 /proc/loadavg)). Every run:"
    echo
    echo '```'
    cat "$res"
    echo '```'
    echo
    echo "$table"
  } >>bench/RESULTS.md
fi
