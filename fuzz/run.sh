#!/usr/bin/env bash
# Runs a fuzz target for a bounded time: ./fuzz/run.sh [target] [seconds]
# Seeds: our shipped configs plus, when ../shared is beside the repo, Seesaw's own parser test data.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:-cluster_pb}
secs=${2:-60}
mkdir -p corpus/$target
seeds=(seeds/$target)
if [ -d ../../shared/compat/seesaw/config-testdata ]; then seeds+=(../../shared/compat/seesaw/config-testdata); fi
exec cargo +nightly fuzz run "$target" corpus/$target "${seeds[@]}" -- -max_total_time="$secs" -max_len=8192
