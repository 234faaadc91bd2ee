#!/usr/bin/env bash
# Healthcheck benchmarks (issue 5). Traffic stays on loopback (127.0.77.1 and the lab's 127.0.0.x).
#
#   bench/healthcheck.sh rate [CHECKS] [SECS] [RUNS]  sustained TCP checks/s on one core
#   bench/healthcheck.sh detect [RUNS]                detection latency on the loopback suite
#   bench/healthcheck.sh wire [CHECKS] [RUNS]         wire cost of the probe statistics (one resync)
#
# rate: `hc_bench responder` (16 TCP listeners) pinned to CPU 1, `hc_bench run` pinned to CPU 0 with
# CHECKS checks at a 1 s interval (so CHECKS probes/s are asked for) through the real scheduler,
# batching and reporting loop. Prints one JSON line per run and the medians. On a machine shared
# with other work both run under SCHED_FIFO (as root; `chrt`) so "one core" means one core; set
# HC_BENCH_RT=0 to measure under the ambient load instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=${1:-rate}
case "$mode" in
rate)
    checks=${2:-20000}
    secs=${3:-15}
    runs=${4:-3}
    cargo build --release -q -p seesaw-healthcheck --example hc_bench
    bin=target/release/examples/hc_bench
    rt=()
    if [ "${HC_BENCH_RT:-1}" = 1 ] && [ "$(id -u)" = 0 ] && command -v chrt >/dev/null; then
        rt=(chrt -f 10)
    fi
    taskset -c 1 "${rt[@]}" "$bin" responder --ports 16 --first-port 41000 --secs $((runs * (secs + 5) + 30)) &
    responder=$!
    trap 'kill "$responder" 2>/dev/null || true' EXIT
    sleep 1
    out=$(mktemp)
    for _ in $(seq "$runs"); do
        taskset -c 0 "${rt[@]}" "$bin" run --ports 16 --first-port 41000 --checks "$checks" --interval-ms 1000 \
            --secs "$secs" | tee -a "$out"
    done
    python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = ["probes_per_s", "failed", "cpu_util", "jitter_ms_p50", "jitter_ms_p99", "jitter_ms_max"]
print("median of %d runs: " % len(rows) + ", ".join("%s=%s" % (k, statistics.median(r[k] for r in rows)) for k in keys))
PY
    rm -f "$out"
    ;;
detect)
    runs=${2:-5}
    cargo build -q --workspace --bins
    cargo build -q -p seesaw-healthcheck --example hc_detect
    target/debug/examples/hc_detect "$runs"
    ;;
wire)
    checks=${2:-20000}
    runs=${3:-3}
    cargo build --release -q -p seesaw-healthcheck --example hc_wire
    out=$(mktemp)
    for _ in $(seq "$runs"); do
        target/release/examples/hc_wire --checks "$checks" --reps 7 | tee -a "$out"
    done
    python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = ["bytes_with_stats", "bytes_without_stats", "bytes_per_check_added", "encode_ms_with_stats", "encode_ms_without_stats"]
med = {k: statistics.median(r[k] for r in rows) for k in keys}
print("median of %d runs: " % len(rows) + ", ".join("%s=%s" % (k, med[k]) for k in keys))
print("same-run ratios (with/without): bytes %.2f, encode time %.2f" % (
    statistics.median(r["bytes_with_stats"] / r["bytes_without_stats"] for r in rows),
    statistics.median(r["encode_ms_with_stats"] / r["encode_ms_without_stats"] for r in rows)))
PY
    rm -f "$out"
    ;;
*)
    echo "usage: $0 rate [CHECKS] [SECS] [RUNS] | detect [RUNS] | wire [CHECKS] [RUNS]" >&2
    exit 64
    ;;
esac
