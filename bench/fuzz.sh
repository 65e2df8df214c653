#!/usr/bin/env bash
# Runs fimvt's property tests (tests/it/fuzz.rs) with many more cases than CI
# does, and prints how many inputs each property saw and how long it took.
#
# usage: CASES=100000 bench/fuzz.sh        (default 50,000 cases per property)
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${CASES:-50000}
cargo test --locked --test it --no-run >/dev/null 2>&1
echo "| property | cases | seconds | result |"
echo "|---|---:|---:|---|"
for prop in config_readers_never_panic_on_arbitrary_text config_readers_never_panic_on_damaged_valid_files \
            virustotal_answers_never_panic report_like_json_never_panics no_file_name_can_break_an_alert; do
    start=$(date +%s.%N)
    if PROPTEST_CASES=$CASES cargo test --locked -q --test it "fuzz::$prop" -- --exact >/tmp/fuzz-$prop.log 2>&1; then
        result=pass
    else
        result="FAIL (see /tmp/fuzz-$prop.log)"
    fi
    end=$(date +%s.%N)
    printf '| %s | %s | %.1f | %s |\n' "$prop" "$CASES" "$(echo "$end - $start" | bc)" "$result"
done
