#!/usr/bin/env bash
# VirusTotal benchmark of `fimvt run` against a local API v3 stand-in
# (bench/vt_standin.py on 127.0.0.1; no traffic leaves the machine).
#
# usage: bench/virustotal.sh [rate|memory|latency|all]   (default: all)
#
# 1. rate: a baseline of VT_FILES small distinct files with scan_baseline =
#    true queues VT_FILES lookups; fimvt works RATE_SECS against the stand-in
#    (answers after DELAY_MS) at requests_per_minute = RPM, concurrency =
#    CONCURRENCY.  From the stand-in's arrival timestamps: requests per
#    consecutive minute, the most in any sliding 60-s window (must be <= RPM),
#    and the fraction of the allowed rate achieved after the first minute
#    (target >= 95%).  Also: duplicate requests per hash, requests in flight,
#    integration.log / alerts / vt_queue consistency.
# 2. memory: fimvt on the large tree (100,000 files) with VirusTotal off, then
#    on with scan_baseline = true and requests_per_minute = 1 (so ~100,000
#    hashes stay queued): peak (VmHWM) and steady (VmRSS) RSS, the difference
#    (target < 50 MB), `SELECT count(*) FROM vt_queue`.
# 3. latency: close() -> `File '...' added` in alerts.log for single-file
#    creations, with VirusTotal disabled (idle) and enabled and busy (the
#    VT_FILES backlog being looked up at LAT_RPM, LAT_DELAY_MS answers); p50/p99
#    and the ratio (target: busy within 10% of idle).  Both fimvt run side by
#    side and take turns in blocks of LAT_BLOCK_MS (the busy one and the
#    stand-in SIGSTOPped during idle blocks), at least LAT_N measured per case
#    and run; LAT_ROUNDS such runs.
#
# Environment:
#   BENCH_DIR    where the large tree lives (shared with scan.sh/realtime.sh) (/tmp/fimvt-bench)
#   VT_DIR       this benchmark's trees and work dirs                    (/tmp/vtbench)
#   VT_FILES     files (= distinct hashes) in the backlog tree            (6000)
#   RATE_SECS    length of the rate part, from the first request          (300)
#   RPM          requests_per_minute for rate                             (1000)
#   CONCURRENCY  [virustotal] concurrency                                 (4)
#   DELAY_MS     stand-in's delay per answer                              (30)
#   MEM_SECS     steady window of the memory part                         (30)
#   LAT_N        measured creations per case and latency run, at least
#                (back to back, ~3,000 fit in one block: use 20000)       (2000)
#   LAT_BLOCK_MS length of a block (creations begun in its first 50 ms
#                are not measured)                                        (600)
#   LAT_RPM      requests_per_minute for latency (the issue's premium-like
#                key)                                                     (1000)
#   LAT_DELAY_MS stand-in's delay per answer for latency: 4 in flight at
#                240 ms is 1,000/min, so the key is used to its limit in
#                every busy block (real lookups are slower: ~0.8 s each in
#                wazuh/wazuh#13205).  Stress: LAT_DELAY_MS=30
#                LAT_RPM=100000 (~131/s, the stand-in's own pace)          (240)
#   LAT_ROUNDS   latency runs                                             (1)
#   LAT_GAP_MS   at least this long from one close() to the next creation,
#                so each change meets fimvt idle or busy as it happens to
#                be; 0 = back to back, a closed loop where each creation
#                waits for the previous alert (a saturation extreme)      (10)
#   WAIT_OTHERS  seconds to wait for a running bench/realtime.sh or
#                bench/scan.sh to finish before measuring (2 cores)      (1200)
#   QUIET_WAIT   seconds to wait, before each part, for the CPU to be
#                < 10% busy (e.g. a cargo build); then measure anyway,
#                flagged                                                  (300)
#   BENCH_OUT    markdown results appended here                           (bench/results.md)
#   FIMVT        fimvt binary (copied to a private path first)            (target/release/fimvt)
#
# Every fimvt runs under /usr/bin/time on a fresh data dir and is stopped with
# SIGTERM; every stand-in is stopped by the helper that started it, with a
# by-pid safety net here.  A part's numbers are flagged when other processes
# used the CPU.  Progress goes to stderr; stdout is only the markdown report,
# also appended to BENCH_OUT.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
WHICH=${1:-all}
BENCH_DIR=${BENCH_DIR:-/tmp/fimvt-bench}
VT_DIR=${VT_DIR:-/tmp/vtbench}
VT_FILES=${VT_FILES:-6000}
RATE_SECS=${RATE_SECS:-300}
RPM=${RPM:-1000}
CONCURRENCY=${CONCURRENCY:-4}
DELAY_MS=${DELAY_MS:-30}
MEM_SECS=${MEM_SECS:-30}
LAT_N=${LAT_N:-2000}
LAT_BLOCK_MS=${LAT_BLOCK_MS:-600}
LAT_RPM=${LAT_RPM:-1000}
LAT_DELAY_MS=${LAT_DELAY_MS:-240}
LAT_ROUNDS=${LAT_ROUNDS:-1}
LAT_GAP_MS=${LAT_GAP_MS:-10}
WAIT_OTHERS=${WAIT_OTHERS:-1200}
QUIET_WAIT=${QUIET_WAIT:-300}
BENCH_OUT=${BENCH_OUT:-$ROOT/bench/results.md}
FIMVT=${FIMVT:-$ROOT/target/release/fimvt}
PY="$HERE/vt_bench.py"

case $WHICH in
    rate) PARTS=(rate) ;;
    memory) PARTS=(memory) ;;
    latency) PARTS=(latency) ;;
    all) PARTS=(rate memory latency) ;;
    *) echo "usage: $0 [rate|memory|latency|all]" >&2; exit 2 ;;
esac

log() { echo "[vt-bench] $*" >&2; }
out() { printf '%s\n' "$*" | tee -a "$BENCH_OUT"; }

# ---------------------------------------------------------------- setup
need_pkgs=()
[[ -x /usr/bin/time ]] || need_pkgs+=(time)
command -v python3 >/dev/null || need_pkgs+=(python3)
if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]}"
    SUDO=; ((EUID == 0)) || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >&2
fi
[[ -x $FIMVT ]] || { log "fimvt not found at $FIMVT (build it, or set FIMVT=)"; exit 1; }
[[ -f $HERE/realtime.py ]] || { log "bench/realtime.py is needed (Fimvt runner, alerts.log reader)"; exit 1; }

WORK=$VT_DIR/work
[[ $WORK != *[[:space:]\"]* ]] || { log "VT_DIR must not contain spaces or quotes: $VT_DIR"; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK/results" "$WORK/bin" "$VT_DIR/trees" "$(dirname "$BENCH_OUT")"
# A private copy: a rebuild during the run cannot swap the binary.
cp -p "$FIMVT" "$WORK/bin/fimvt"
FIMVT_SHA=$(sha256sum "$WORK/bin/fimvt" | cut -c1-16)

# Safety net: stop leftover fimvt / stand-in processes by the pid files the
# helper writes (it stops its own children in `finally`), never by name.
cleanup() {
    local f pid
    for f in "$WORK"/*/fimvt.pid "$WORK"/*/*/fimvt.pid "$WORK"/*/standin.pid; do
        [[ -f $f ]] || continue
        pid=$(<"$f")
        if [[ -d /proc/$pid ]] && grep -qE 'fimvt|vt_standin' "/proc/$pid/cmdline" 2>/dev/null; then
            log "stopping leftover process $pid ($f)"
            kill -TERM "$pid" 2>/dev/null || true
            # the latency part stops the busy fimvt and the stand-in between blocks
            kill -CONT "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
}
trap cleanup EXIT

# ---------------------------------------------------------------- helpers
# (the busy-machine checks, shared in lib.sh)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
begin_part() {
    local busy waited_q=0
    busy=$(cpu_busy_pct)
    # Give a build or another benchmark up to QUIET_WAIT s to finish first.
    while ((busy > 10 && waited_q < QUIET_WAIT)); do
        ((waited_q % 60 == 0)) && log "CPU ${busy}% busy before the $1 part: waiting up to ${QUIET_WAIT} s for it to calm down"
        sleep 8; waited_q=$((waited_q + 10)); busy=$(cpu_busy_pct)
    done
    NOTE=""
    if ((busy > 10)); then
        log "WARNING: CPU ${busy}% busy before the $1 part; other processes will skew the results"
        NOTE="WARNING: CPU ${busy}% busy with other work at start, numbers unreliable"
    fi
    times >"$WORK/times"; P_O0=$(children_cpu_s "$WORK/times"); P_M0=$(machine_cpu_s); P_W0=$EPOCHREALTIME
}
end_part() {
    local m1 w1 o1 other other_s other_pct
    m1=$(machine_cpu_s); w1=$EPOCHREALTIME; times >"$WORK/times"; o1=$(children_cpu_s "$WORK/times")
    other=$(awk -v m="$P_M0 $m1" -v o="$P_O0 $o1" -v w="$P_W0 $w1" -v n="$(nproc)" 'BEGIN {
        split(m, M, " "); split(o, O, " "); split(w, W, " ")
        x = (M[2] - M[1]) - (O[2] - O[1]); if (x < 0) x = 0
        printf "%.1f %.0f", x, 100 * x / ((W[2] - W[1]) * n) }')
    read -r other_s other_pct <<<"$other"
    if ((other_pct > 5)); then
        log "WARNING: other processes used ${other_s} CPU-s (${other_pct}% of the machine) during the $1 part"
        NOTE+="${NOTE:+; }WARNING: other processes used ${other_pct}% of the CPU during the runs, numbers unreliable"
    fi
    OTHER_LINE="Other processes (and kernel threads such as writeback) used ${other_s} CPU-s (${other_pct}% of the machine) during this part."
}

# ---------------------------------------------------------------- wait for other benchmarks
waited=0
while pgrep -f 'bench/realtime.sh|bench/scan.sh' >/dev/null; do
    if ((waited >= WAIT_OTHERS)); then
        log "WARNING: another benchmark is still running after ${WAIT_OTHERS} s; measuring anyway (results flagged)"
        break
    fi
    ((waited % 60 == 0)) && log "waiting for bench/realtime.sh / bench/scan.sh to finish (${waited} s so far)"
    sleep 10; waited=$((waited + 10))
done

# ---------------------------------------------------------------- trees
BACKLOG=$VT_DIR/trees/backlog$VT_FILES
python3 "$PY" gen --dest "$BACKLOG" --n "$VT_FILES"
find "$BACKLOG" -type f -print0 | xargs -0 cat >/dev/null
if [[ " ${PARTS[*]} " == *" memory "* ]]; then
    log "generating / restoring the large tree in $BENCH_DIR/large"
    python3 "$HERE/gen_tree.py" large "$BENCH_DIR/large" | tail -n 1 >&2
    log "warming page cache (large tree)"
    find "$BENCH_DIR/large" -type f -print0 | xargs -0 cat >/dev/null
fi

# ---------------------------------------------------------------- header
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
fimvt_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
dirty=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | head -c1)
out ""
out "## fimvt VirusTotal benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
out ""
out "- machine: $(nproc) cores, ${cpu:-unknown CPU}, $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(python3 --version)"
out "- fimvt: $FIMVT (sha256 $FIMVT_SHA…, built $(date -u -r "$FIMVT" '+%Y-%m-%d %H:%M UTC'); git HEAD $fimvt_rev${dirty:+, with uncommitted source changes: the binary may not match HEAD}), \`realtime.settle = \"250ms\"\`"
out "- VirusTotal: bench/vt_standin.py on 127.0.0.1 at nice 19 (threaded HTTP/1.1 keep-alive, answers after ${DELAY_MS} ms (latency part: ${LAT_DELAY_MS} ms); 200 report for 75% of hashes, 404 NotFoundError for 25%), \`requests_per_minute = $RPM\` (latency part: $LAT_RPM), \`concurrency = $CONCURRENCY\`, \`daily_quota = 10000000\`, \`scan_baseline = true\`"
out "- parts: ${PARTS[*]}; VT_FILES=$VT_FILES, RATE_SECS=$RATE_SECS, MEM_SECS=$MEM_SECS, LAT_N=$LAT_N, LAT_BLOCK_MS=$LAT_BLOCK_MS, LAT_RPM=$LAT_RPM, LAT_DELAY_MS=$LAT_DELAY_MS, LAT_ROUNDS=$LAT_ROUNDS, LAT_GAP_MS=$LAT_GAP_MS"
out "- reproduce: \`$(printf '%q ' env VT_FILES="$VT_FILES" RATE_SECS="$RATE_SECS" RPM="$RPM" CONCURRENCY="$CONCURRENCY" DELAY_MS="$DELAY_MS" MEM_SECS="$MEM_SECS" LAT_N="$LAT_N" LAT_BLOCK_MS="$LAT_BLOCK_MS" LAT_RPM="$LAT_RPM" LAT_DELAY_MS="$LAT_DELAY_MS" LAT_ROUNDS="$LAT_ROUNDS" LAT_GAP_MS="$LAT_GAP_MS" bench/virustotal.sh "$WHICH" | sed 's/ $//')\`"
((waited > 0)) && out "- waited ${waited} s for another benchmark to finish first"

R=$WORK/results
B="$WORK/bin/fimvt"
for part in "${PARTS[@]}"; do
    files=()
    case $part in
    rate)
        begin_part rate
        log "[rate] $VT_FILES hashes, ${RATE_SECS} s at $RPM/min"
        python3 "$PY" rate --fimvt "$B" --work "$WORK/rate" --tree "$BACKLOG" --out "$R/rate.json" \
            --secs "$RATE_SECS" --rpm "$RPM" --concurrency "$CONCURRENCY" --delay-ms "$DELAY_MS"
        files+=("$R/rate.json")
        end_part rate
        ;;
    memory)
        begin_part memory
        for vt in off on; do
            log "[memory] large tree, VirusTotal $vt"
            python3 "$PY" memory --fimvt "$B" --work "$WORK/mem-$vt" --tree "$BENCH_DIR/large" \
                --out "$R/memory-$vt.json" --vt "$vt" --secs "$MEM_SECS" --rpm 1 \
                --concurrency "$CONCURRENCY" --delay-ms "$DELAY_MS"
            files+=("$R/memory-$vt.json")
            rm -rf "$WORK/mem-$vt/data"
        done
        end_part memory
        ;;
    latency)
        begin_part latency
        for run in $(seq 1 "$LAT_ROUNDS"); do
            log "[latency] run $run: VirusTotal idle and busy, at least $LAT_N measured creations each, in blocks of $LAT_BLOCK_MS ms"
            python3 "$PY" latency --fimvt "$B" --work "$WORK/lat$run" --tree "$BACKLOG" \
                --out "$R/latency$run.json" --run "$run" --n "$LAT_N" --block-ms "$LAT_BLOCK_MS" \
                --rpm "$LAT_RPM" --concurrency "$CONCURRENCY" --delay-ms "$LAT_DELAY_MS" --gap-ms "$LAT_GAP_MS"
            files+=("$R/latency$run.json")
        done
        end_part latency
        ;;
    esac
    out ""
    python3 "$PY" report --part "$part" --note "$NOTE" "${files[@]}" | tee -a "$BENCH_OUT"
    out ""
    out "$OTHER_LINE"
done
log "raw samples: $R/*.json"
