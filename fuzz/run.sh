#!/usr/bin/env bash
# Runs every fuzz target in turn, one at a time and at low priority, for
# SECONDS each (default 240), and prints each run's duration and executions.
# New inputs go to a scratch corpus (WORK, default /tmp/ferrows-fuzz) so that
# the committed seeds under corpus/ stay small; crashes land in artifacts/.
#
#   fuzz/run.sh 300            # needs nightly and `cargo install cargo-fuzz`
set -uo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-240}
WORK=${WORK:-/tmp/ferrows-fuzz}
TARGETS=${TARGETS:-"frame_header receive_data_server receive_data_client http_request http_response inflate"}
status=0
cargo +nightly fuzz build -O >/dev/null || exit 1
for target in $TARGETS; do
    mkdir -p "$WORK/$target"
    log="$WORK/$target.log"
    nice -n 19 cargo +nightly fuzz run -O "$target" "$WORK/$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*')
    echo "$target: rc=$rc ${secs:-?}s ${runs:-?} executions (log: $log)"
    [ "$rc" -eq 0 ] || status=1
done
exit $status
