#!/usr/bin/env bash
# Realtime benchmark of `fimvt run`: alert latency vs the kernel's own inotify
# delivery, a 10,000-file burst, and memory / idle CPU on the 100,000-file tree.
#
# usage: bench/realtime.sh [latency|burst|idle|all]   (default: all)
#
# Environment:
#   BENCH_DIR   where trees and work dirs live                    (/tmp/fimvt-bench)
#   RUNS        runs of the burst and of the large-tree idle part,
#               median reported                                   (3)
#   LAT_RUNS    runs of the latency part (each one is LAT_N files) (1)
#   LAT_N       single-file creations per latency run            (1000)
#   LAT_READER  how alerts.log is tailed: inotify (event-driven) or
#               poll (re-read every 0.2 ms)                      (inotify)
#   IDLE_SECS   idle window on the large tree                     (30)
#   SETTLE      fimvt's realtime.settle                           (250ms)
#   BURST_FS    loop: the burst copies into a fresh loop-mounted ext4
#               (one per copy; needs root); plain: a folder under
#               BENCH_DIR.  Why: right after an `rm -rf` of many files,
#               ext4 makes creating new ones ~15x slower for up to 5 min
#               (it skips recently deleted inodes), so a plain folder
#               gives cp times that depend on what ran before   (loop)
#   BENCH_OUT   markdown results appended here                    (bench/results.md)
#   FIMVT       fimvt binary                                      (target/release/fimvt)
#   BUILD=1     cargo build --release first                       (off: build it yourself)
#
# 1. latency: fimvt watches an empty folder; bench/realtime.py creates LAT_N
#    small files one at a time (create+write+close, timestamp right after
#    close) and waits for each one's `File '...' added` line in alerts.log
#    before the next.  `inotifywait -m -e close_write` on the same folder gives
#    the floor: the kernel's delivery to a trivial watcher.  A file with no
#    alert 10 s after close() is a loss.
# 2. burst: after fimvt's baseline of an empty folder, `cp -r` the small tree
#    (10,000 files) into it; time until alerts.json has one "added" line per
#    file; then SIGTERM and count/verify the SQLite `files` rows.
# 3. idle: fimvt on the large tree (100,000 files): baseline time, peak RSS
#    (VmHWM), steady RSS (VmRSS) and CPU over IDLE_SECS of idle watching.
#
# Every fimvt runs under /usr/bin/time on a fresh data dir and is stopped with
# SIGTERM (must log "stopped cleanly"); no process is left behind.  Like
# scan.sh, a part's numbers are flagged when other processes used the CPU
# (2 cores: one cargo build ruins the latency figures).  Progress goes to
# stderr; stdout is only the markdown report, also appended to BENCH_OUT.
set -euo pipefail
export LC_ALL=C   # "." decimals from EPOCHREALTIME/awk/sort whatever the locale

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
WHICH=${1:-all}
BENCH_DIR=${BENCH_DIR:-/tmp/fimvt-bench}
RUNS=${RUNS:-3}
LAT_RUNS=${LAT_RUNS:-1}
LAT_N=${LAT_N:-1000}
LAT_READER=${LAT_READER:-inotify}
IDLE_SECS=${IDLE_SECS:-30}
SETTLE=${SETTLE:-250ms}
BURST_FS=${BURST_FS:-loop}
BENCH_OUT=${BENCH_OUT:-$ROOT/bench/results.md}
FIMVT=${FIMVT:-$ROOT/target/release/fimvt}
PY="$HERE/realtime.py"

case $WHICH in
    latency) PARTS=(latency) ;;
    burst) PARTS=(burst) ;;
    idle) PARTS=(idle) ;;
    all) PARTS=(latency burst idle) ;;
    *) echo "usage: $0 [latency|burst|idle|all]" >&2; exit 2 ;;
esac

log() { echo "[bench] $*" >&2; }
# Report lines go to stdout and are appended to BENCH_OUT.
out() { printf '%s\n' "$*" | tee -a "$BENCH_OUT"; }

# ---------------------------------------------------------------- setup
need_pkgs=()
command -v inotifywait >/dev/null || need_pkgs+=(inotify-tools)
[[ -x /usr/bin/time ]] || need_pkgs+=(time)   # wraps fimvt: peak RSS and CPU from wait4
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v mkfs.ext4 >/dev/null || need_pkgs+=(e2fsprogs)   # the burst's fresh file systems
if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]}"
    SUDO=; ((EUID == 0)) || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >&2
fi

if [[ ${BUILD:-0} == 1 ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --locked --bin fimvt) >&2
fi
[[ -x $FIMVT ]] || { log "fimvt not found at $FIMVT (build it, or BUILD=1, or set FIMVT=)"; exit 1; }
if [[ $BURST_FS == loop ]] && ! { ((EUID == 0)) && losetup -f >/dev/null 2>&1; }; then
    log "WARNING: no loop device (or not root): the burst copies into a plain folder (BURST_FS=plain)"
    BURST_FS=plain
fi

WORK=$BENCH_DIR/work/realtime
[[ $WORK != *[[:space:]\"]* ]] || { log "BENCH_DIR must not contain spaces or quotes: $BENCH_DIR"; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK/results" "$WORK/bin" "$(dirname "$BENCH_OUT")"
# Run a private copy, so a rebuild while we measure cannot swap the binary
# between parts; the report names it by its SHA-256.
cp -p "$FIMVT" "$WORK/bin/fimvt"
FIMVT_SHA=$(sha256sum "$WORK/bin/fimvt" | cut -c1-16)

# Whatever happens (error, Ctrl-C), stop any fimvt realtime.py left running.
# realtime.py stops its own children in `finally`; this is the safety net,
# by pid (from the pid file realtime.py writes), never by name.
cleanup() {
    local f pid
    for f in "$WORK"/*/fimvt.pid; do
        [[ -f $f ]] || continue
        pid=$(<"$f")
        if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == fimvt ]]; then
            log "stopping leftover fimvt (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
    # The burst's loop-mounted file systems (realtime.py unmounts them itself).
    local mounts m
    mounts=$(findmnt -rn -o TARGET | grep "^$WORK/" || true)
    for m in $mounts; do
        log "unmounting leftover $m"; umount "$m" || umount -l "$m" || true
    done
}
trap cleanup EXIT

# ---------------------------------------------------------------- helpers
# (the busy-machine checks, shared in lib.sh)

# shellcheck source=lib.sh
source "$HERE/lib.sh"

# Regenerate a tree, or (if it exists) undo earlier change_files.py edits,
# then warm the page cache with it.
prepare_tree() { # prepare_tree small|large DIR
    log "generating / restoring the $1 tree in $2"
    python3 "$HERE/gen_tree.py" "$1" "$2" | tail -n 1 >&2
    log "warming page cache ($1 tree)"
    find "$2" -type f -print0 | xargs -0 cat >/dev/null
}

# Busy check before a part and the foreign CPU during it.
# begin_part NAME / end_part NAME -> NOTE (text for the section title)
begin_part() {
    local busy
    busy=$(cpu_busy_pct)
    NOTE=""
    if ((busy > 10)); then
        log "WARNING: CPU ${busy}% busy before the $1 part; other processes will skew the results"
        NOTE="WARNING: CPU ${busy}% busy with other work at start, numbers unreliable"
    fi
    P_K0=$(python3 "$PY" kthread-cpu)
    times >"$WORK/times"; P_O0=$(children_cpu_s "$WORK/times"); P_M0=$(machine_cpu_s); P_W0=$EPOCHREALTIME
}
# Kernel threads (writeback, the loop device, kworkers) are counted apart:
# in the burst most of their work is ours (writing back the copied files).
end_part() {
    local m1 w1 o1 k1 other other_s other_pct k_s
    m1=$(machine_cpu_s); w1=$EPOCHREALTIME; times >"$WORK/times"; o1=$(children_cpu_s "$WORK/times")
    k1=$(python3 "$PY" kthread-cpu)
    other=$(awk -v m="$P_M0 $m1" -v o="$P_O0 $o1" -v k="$P_K0 $k1" -v w="$P_W0 $w1" -v n="$(nproc)" 'BEGIN {
        split(m, M, " "); split(o, O, " "); split(k, K, " "); split(w, W, " ")
        kt = K[2] - K[1]; if (kt < 0) kt = 0
        x = (M[2] - M[1]) - (O[2] - O[1]) - kt; if (x < 0) x = 0
        printf "%.1f %.0f %.1f", x, 100 * x / ((W[2] - W[1]) * n), kt }')
    read -r other_s other_pct k_s <<<"$other"
    if ((other_pct > 5)); then
        log "WARNING: other processes used ${other_s} CPU-s (${other_pct}% of the machine) during the $1 part"
        NOTE+="${NOTE:+; }WARNING: other processes used ${other_pct}% of the CPU during the runs, numbers unreliable"
    fi
    OTHER_LINE="Other processes used ${other_s} CPU-s (${other_pct}% of the machine) during this part; kernel threads (writeback, loop device, kworkers: partly this benchmark's own I/O) ${k_s} CPU-s."
}

# ---------------------------------------------------------------- machine
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
fimvt_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
dirty=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | head -c1)
out ""
out "## fimvt realtime benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
out ""
out "- machine: $(nproc) cores, ${cpu:-unknown CPU}, $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r), BENCH_DIR=$BENCH_DIR ($(df -PT "$BENCH_DIR" 2>/dev/null | awk 'NR==2 {print $2}'))"
out "- $(inotifywait --help 2>&1 | head -n 1), $(python3 --version), $(cp --version | head -n 1)"
out "- fimvt: $FIMVT (sha256 $FIMVT_SHA…, built $(date -u -r "$FIMVT" '+%Y-%m-%d %H:%M UTC'); git HEAD $fimvt_rev${dirty:+, with uncommitted source changes: the binary may not match HEAD}), \`realtime.settle = \"$SETTLE\"\`, everything else default"
out "- parts: ${PARTS[*]}; LAT_RUNS=$LAT_RUNS × LAT_N=$LAT_N files, RUNS=$RUNS (burst, idle; median), IDLE_SECS=$IDLE_SECS"
out "- reproduce: \`$(printf '%q ' env RUNS="$RUNS" LAT_RUNS="$LAT_RUNS" LAT_N="$LAT_N" LAT_READER="$LAT_READER" IDLE_SECS="$IDLE_SECS" BURST_FS="$BURST_FS" bench/realtime.sh "$WHICH" | sed 's/ $//')\`"

R=$WORK/results
for part in "${PARTS[@]}"; do
    case $part in
    latency)
        begin_part latency
        files=()
        for run in $(seq 1 "$LAT_RUNS"); do
            log "[latency] run $run/$LAT_RUNS: $LAT_N single-file creations"
            python3 "$PY" latency --fimvt "$WORK/bin/fimvt" --work "$WORK/latency" --out "$R/latency-$run.json" \
                --run "$run" --n "$LAT_N" --reader "$LAT_READER" --settle "$SETTLE"
            files+=("$R/latency-$run.json")
        done
        end_part latency
        ;;
    burst)
        prepare_tree small "$BENCH_DIR/small"
        begin_part burst
        files=()
        for run in $(seq 1 "$RUNS"); do
            log "[burst] run $run/$RUNS: cp -r small tree into the watched folder"
            python3 "$PY" burst --fimvt "$WORK/bin/fimvt" --work "$WORK/burst" --out "$R/burst-$run.json" \
                --run "$run" --src "$BENCH_DIR/small" --settle "$SETTLE" --fs "$BURST_FS"
            files+=("$R/burst-$run.json")
        done
        end_part burst
        rm -rf "$WORK/burst"
        ;;
    idle)
        prepare_tree large "$BENCH_DIR/large"
        begin_part idle
        files=()
        for run in $(seq 1 "$RUNS"); do
            log "[idle] run $run/$RUNS: baseline of the large tree, then ${IDLE_SECS} s idle"
            python3 "$PY" idle --fimvt "$WORK/bin/fimvt" --work "$WORK/idle" --out "$R/idle-$run.json" \
                --run "$run" --tree "$BENCH_DIR/large" --idle "$IDLE_SECS" --settle "$SETTLE"
            files+=("$R/idle-$run.json")
        done
        end_part idle
        ;;
    esac
    out ""
    python3 "$PY" report --part "$part" --note "$NOTE" "${files[@]}" | tee -a "$BENCH_OUT"
    out ""
    out "$OTHER_LINE"
done
log "raw samples: $R/*.json"
