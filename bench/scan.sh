#!/usr/bin/env bash
# One-shot scan benchmark: fimvt vs AIDE vs `find | xargs sha256sum`.
#
# usage: bench/scan.sh [small|large|all]        (default: all)
#
# Environment:
#   BENCH_DIR      where trees and work dirs live   (/tmp/fimvt-bench)
#   RUNS           runs per case, median reported   (3)
#   BENCH_OUT      markdown results appended here   (bench/results.md)
#   FIMVT          fimvt binary                     (target/release/fimvt)
#   FIMVT_CEILING  3-hash ceiling program           (target/release/examples/ceiling)
#   JOBS           threads for every tool           (nproc)
#   FIMVT_OK_CODES exit codes of `fimvt scan` taken as success ("0"); widen
#                  it if a scan that finds changes exits non-zero
#   BUILD=1        cargo build --release first      (off: build it yourself)
#
# Every tool gets the same warm page cache, the same JOBS threads and the same
# tree.  Runs are interleaved (run 1 of every case, then run 2, ...) so slow
# drift on the machine hits all cases alike.  The report flags a tree's
# numbers as unreliable if other processes used the CPU (2 cores: one cargo
# build ruins everything).  Progress goes to stderr; stdout is only the
# markdown report.
set -euo pipefail
export LC_ALL=C   # "." decimals from EPOCHREALTIME/awk/sort whatever the locale

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
WHICH=${1:-all}
BENCH_DIR=${BENCH_DIR:-/tmp/fimvt-bench}
RUNS=${RUNS:-3}
BENCH_OUT=${BENCH_OUT:-$ROOT/bench/results.md}
FIMVT=${FIMVT:-$ROOT/target/release/fimvt}
FIMVT_CEILING=${FIMVT_CEILING:-$ROOT/target/release/examples/ceiling}
JOBS=${JOBS:-$(nproc)}
FIMVT_OK_CODES=${FIMVT_OK_CODES:-0}
CHANGED=100   # files rewritten before the re-scan cases

case $WHICH in
    small) TREES=(small) ;;
    large) TREES=(large) ;;
    all) TREES=(small large) ;;
    *) echo "usage: $0 [small|large|all]" >&2; exit 2 ;;
esac

log() { echo "[bench] $*" >&2; }
# Report lines go to stdout and are appended to BENCH_OUT.
out() { printf '%s\n' "$*" | tee -a "$BENCH_OUT"; }

# ---------------------------------------------------------------- setup
need_pkgs=()
command -v aide >/dev/null || need_pkgs+=(aide)
[[ -x /usr/bin/time ]] || need_pkgs+=(time)   # the bash keyword can't report RSS
command -v python3 >/dev/null || need_pkgs+=(python3)
if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]}"
    SUDO=; ((EUID == 0)) || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >&2
fi

if [[ ${BUILD:-0} == 1 ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --locked --bin fimvt --example ceiling) >&2
fi

have_fimvt=0; [[ -x $FIMVT ]] && have_fimvt=1
have_ceiling=0; [[ -x $FIMVT_CEILING ]] && have_ceiling=1
((have_fimvt)) || log "SKIP fimvt rows: $FIMVT not found (build it, or BUILD=1, or set FIMVT=)"
((have_ceiling)) || log "SKIP ceiling row: $FIMVT_CEILING not found (build it, or BUILD=1, or set FIMVT_CEILING=)"

mkdir -p "$BENCH_DIR" "$(dirname "$BENCH_OUT")"

# ---------------------------------------------------------------- helpers

# timed OK_CODES LOGFILE CMD... : run CMD under /usr/bin/time, its stdout and
# stderr into LOGFILE.  Sets T_SEC (wall seconds) and T_RSS (peak RSS, KB).
# OK_CODES is a space-separated list of acceptable exit codes.
# Wall time comes from bash's microsecond EPOCHREALTIME rather than time's
# %e, which only has 10 ms resolution (too coarse for a fast re-scan); the
# difference is the ~1 ms fork/exec of /usr/bin/time itself.
timed() {
    local ok=$1 logf=$2 tf rc=0 t0 t1
    shift 2
    tf=$(mktemp)
    t0=$EPOCHREALTIME
    /usr/bin/time -o "$tf" -f '%e %M' "$@" >"$logf" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    if [[ " $ok " != *" $rc "* ]]; then
        log "FAILED (exit $rc, expected $ok): $*"
        tail -n 20 "$logf" >&2
        exit 1
    fi
    # On a non-zero exit GNU time writes "Command exited with ..." first.
    read -r _ T_RSS < <(tail -n 1 "$tf")  # %e is ignored, see above
    T_SEC=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    rm -f "$tf"
}

# shellcheck source=lib.sh
source "$HERE/lib.sh"

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
    if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'; }

# Per-case samples, space separated, keyed by case name.
declare -A SECS RSSS
add() { SECS[$1]+="$2 "; RSSS[$1]+="$3 "; }

# Regenerate a tree, or (if it exists) undo earlier change_files.py edits.
restore_tree() { python3 "$HERE/gen_tree.py" "$1" "$2" | tail -n 1; }

fimvt_config() { # fimvt_config FILE DATA_DIR TREE REHASH
    cat >"$1" <<EOF
[general]
data_dir = "$2"

[[directories]]
path = "$3"
realtime = false

[scan]
rehash = "$4"
EOF
}

# ---------------------------------------------------------------- machine
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
fimvt_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
out ""
out "## fimvt scan benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
out ""
out "- machine: $(nproc) cores, ${cpu:-unknown CPU}, $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
out "- $(aide --version 2>&1 | head -n 1), $(sha256sum --version | head -n 1), $(python3 --version)"
out "- fimvt: $( ((have_fimvt)) && echo "$FIMVT (git $fimvt_rev)" || echo "not built — rows skipped")"
out "- RUNS=$RUNS (median), JOBS=$JOBS threads for every tool, warm page cache, BENCH_DIR=$BENCH_DIR ($(df -PT "$BENCH_DIR" | awk 'NR==2 {print $2}'))"

# ---------------------------------------------------------------- per tree
for tree in "${TREES[@]}"; do
    T=$BENCH_DIR/$tree
    W=$BENCH_DIR/work/$tree
    [[ $T != *[[:space:]]* ]] || { log "tree path must not contain spaces: $T"; exit 1; }
    rm -rf "$W"; mkdir -p "$W"

    log "[$tree] generating / restoring tree in $T"
    python3 "$HERE/gen_tree.py" "$tree" "$T" >"$W/gen.log"
    cat "$W/gen.log" >&2
    files=$(grep -o 'files=[0-9]*' "$W/gen.log" | tail -n 1 | cut -d= -f2)
    bytes=$(grep -o 'bytes=[0-9]*' "$W/gen.log" | tail -n 1 | cut -d= -f2)

    # Warm the page cache so every tool measures hashing, not the disk.
    avail_kb=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
    if ((bytes / 1024 > avail_kb * 8 / 10)); then
        log "WARNING: tree ($bytes bytes) does not fit in the page cache; results include disk I/O"
    fi
    log "[$tree] warming page cache"
    find "$T" -type f -print0 | xargs -0 cat >/dev/null

    # Any other busy process (a cargo build...) on a 2-core box skews
    # everything, so say so in the report instead of publishing bad numbers.
    # (CPU busy over 2 s while we sit idle; the load average would lag and
    # also count our own previous runs.)
    busy=$(cpu_busy_pct)
    if ((busy > 10)); then
        log "WARNING: CPU ${busy}% busy before the $tree runs; other processes will skew the results"
        load_note=" — WARNING: CPU ${busy}% busy with other work at start, numbers unreliable"
    else load_note=""; fi

    sed -e "s|{{WORKDIR}}|$W/aide|g" -e "s|{{TREE}}|$T|g" -e "s|{{WORKERS}}|$JOBS|g" \
        "$HERE/aide.conf.in" >"$W/aide.conf"
    fimvt_config "$W/fimvt-changed.toml" "$W/data-changed" "$T" changed
    fimvt_config "$W/fimvt-always.toml" "$W/data-always" "$T" always

    SECS=(); RSSS=()
    times >"$W/times"; o0=$(children_cpu_s "$W/times"); m0=$(machine_cpu_s); w0=$EPOCHREALTIME
    for run in $(seq 1 "$RUNS"); do
        seed="$tree-run$run"

        # AIDE: init on a fresh db (timed), then change files, check (timed).
        log "[$tree] run $run/$RUNS: aide --init"
        restore_tree "$tree" "$T" >/dev/null
        rm -rf "$W/aide"; mkdir -p "$W/aide"
        timed 0 "$W/aide-init.log" aide --config "$W/aide.conf" --init
        add aide_init "$T_SEC" "$T_RSS"
        mv "$W/aide/aide.db.new" "$W/aide/aide.db"

        log "[$tree] run $run/$RUNS: aide --check after $CHANGED changed files"
        python3 "$HERE/change_files.py" "$T" "$CHANGED" "$seed" >&2
        # aide --check exit codes 1..7 = added/removed/changed entries found.
        timed "0 1 2 3 4 5 6 7" "$W/aide-check.log" aide --config "$W/aide.conf" --check
        add aide_check "$T_SEC" "$T_RSS"
        n=$(awk '/Changed entries:/ {print $NF; exit}' "$W/aide-check.log")
        [[ $n == "$CHANGED" ]] || log "WARNING: aide reported '${n:-?}' changed entries, expected $CHANGED"

        # Plain coreutils baseline: one hash, no database.
        log "[$tree] run $run/$RUNS: find | xargs -P$JOBS sha256sum"
        restore_tree "$tree" "$T" >/dev/null
        # shellcheck disable=SC2016  # $1/$2 are expanded by the inner bash
        timed 0 "$W/sha256sum.log" bash -c \
            'find "$1" -type f -print0 | xargs -0 -P"$2" -n 256 sha256sum >/dev/null' _ "$T" "$JOBS"
        add sha256sum "$T_SEC" "$T_RSS"

        if ((have_ceiling)); then
            log "[$tree] run $run/$RUNS: ceiling"
            timed 0 "$W/ceiling.log" "$FIMVT_CEILING" "$T" "$JOBS"
            s=$(grep -o 'ceiling_seconds=[0-9.eE+-]*' "$W/ceiling.log" | cut -d= -f2)
            [[ -n $s ]] || { log "ceiling printed no ceiling_seconds="; cat "$W/ceiling.log" >&2; exit 1; }
            # Its own figure excludes the (untimed) file listing.
            add ceiling "$s" "$T_RSS"
        fi

        if ((have_fimvt)); then
            # Baseline on an empty data dir (timed) doubles as the untimed
            # baseline for the rehash="changed" re-scan that follows.
            log "[$tree] run $run/$RUNS: fimvt baseline"
            rm -rf "$W/data-changed"
            timed "$FIMVT_OK_CODES" "$W/fimvt-baseline.log" "$FIMVT" scan --config "$W/fimvt-changed.toml"
            add fimvt_base "$T_SEC" "$T_RSS"
            python3 "$HERE/change_files.py" "$T" "$CHANGED" "$seed" >&2
            log "[$tree] run $run/$RUNS: fimvt re-scan (rehash=changed)"
            timed "$FIMVT_OK_CODES" "$W/fimvt-rescan-changed.log" "$FIMVT" scan --config "$W/fimvt-changed.toml"
            add fimvt_changed "$T_SEC" "$T_RSS"

            log "[$tree] run $run/$RUNS: fimvt re-scan (rehash=always)"
            restore_tree "$tree" "$T" >/dev/null
            rm -rf "$W/data-always"
            timed "$FIMVT_OK_CODES" "$W/fimvt-baseline-always.log" "$FIMVT" scan --config "$W/fimvt-always.toml"  # untimed in the table
            python3 "$HERE/change_files.py" "$T" "$CHANGED" "$seed" >&2
            timed "$FIMVT_OK_CODES" "$W/fimvt-rescan-always.log" "$FIMVT" scan --config "$W/fimvt-always.toml"
            add fimvt_always "$T_SEC" "$T_RSS"
        fi
    done
    restore_tree "$tree" "$T" >/dev/null   # leave the tree pristine for next time

    # CPU time nobody in this script used: another build, a cron job...
    m1=$(machine_cpu_s); w1=$EPOCHREALTIME; times >"$W/times"; o1=$(children_cpu_s "$W/times")
    other=$(awk -v m="$m0 $m1" -v o="$o0 $o1" -v w="$w0 $w1" -v n="$(nproc)" 'BEGIN {
        split(m, M, " "); split(o, O, " "); split(w, W, " ")
        x = (M[2] - M[1]) - (O[2] - O[1]); if (x < 0) x = 0
        printf "%.1f %.0f", x, 100 * x / ((W[2] - W[1]) * n) }')
    read -r other_s other_pct <<<"$other"
    if ((other_pct > 5)); then
        log "WARNING: other processes used ${other_s} CPU-s (${other_pct}% of the machine) during the $tree runs"
        load_note+=" — WARNING: other processes used ${other_pct}% of the CPU during the runs, numbers unreliable"
    fi

    # ------------------------------------------------------------ table
    declare -A MED MRSS
    for c in "${!SECS[@]}"; do
        # shellcheck disable=SC2086  # word-splitting the sample lists is intended
        MED[$c]=$(median ${SECS[$c]})
        # shellcheck disable=SC2086
        MRSS[$c]=$(median ${RSSS[$c]})
    done
    fb=${MED[fimvt_base]:-}
    fc=${MED[fimvt_changed]:-}
    ratio() { # ratio PEER_SECONDS FIMVT_SECONDS [WHAT]  -> "2.31 WHAT"
        if [[ -z $2 ]]; then echo "n/a (no fimvt)"; else awk -v p="$1" -v f="$2" -v w="${3:-}" 'BEGIN {
            if (f > 0) printf "%.2f %s", p / f, w; else print "n/a" }'; fi
    }
    row() { # row LABEL CASE RATIO_TEXT
        local s=${MED[$2]}
        # label and ratio text go through ENVIRON: awk -v would eat the "\|"
        L="$1" R="$3" awk -v s="$s" -v kb="${MRSS[$2]}" -v n="$files" -v b="$bytes" 'BEGIN {
            printf "| %s | %.3f | %s | %s | %.1f | %s |\n", ENVIRON["L"], s,
                (s > 0 ? sprintf("%.0f", n / s) : "n/a"),
                (s > 0 ? sprintf("%.1f", b / 1e6 / s) : "n/a"), kb / 1024, ENVIRON["R"] }' | tee -a "$BENCH_OUT"
    }

    out ""
    out "### $tree tree: $files files, $(awk -v b="$bytes" 'BEGIN {printf "%.1f MB", b/1e6}') ($T)$load_note"
    out ""
    out "| tool / case | seconds (median of $RUNS) | files/s | MB/s | peak RSS (MiB) | ratio vs fimvt (peer s / fimvt s) |"
    out "|---|---:|---:|---:|---:|---|"
    row "aide --init (md5+sha1+sha256, $JOBS workers)" aide_init "$(ratio "${MED[aide_init]}" "$fb" "vs fimvt baseline")"
    row "aide --check, $CHANGED files changed" aide_check "$(ratio "${MED[aide_check]}" "$fc" "vs fimvt re-scan (changed)")"
    row "find \| xargs -P$JOBS sha256sum (1 hash, no db)" sha256sum "$(ratio "${MED[sha256sum]}" "$fb" "vs fimvt baseline")"
    if ((have_ceiling)); then
        if [[ -n $fb ]]; then
            r=$(awk -v c="${MED[ceiling]}" -v f="$fb" 'BEGIN {printf "fimvt at %.0f%% of ceiling", c / f * 100}')
        else r="n/a (no fimvt)"; fi
        row "ceiling: md5+sha1+sha256 in one pass, $JOBS threads (hashing only)" ceiling "$r"
    else
        out "| ceiling | skipped: $FIMVT_CEILING not built | | | | |"
    fi
    if ((have_fimvt)); then
        row "fimvt scan, baseline (empty data dir)" fimvt_base "reference"
        row "fimvt scan, re-scan after $CHANGED changed (rehash=changed)" fimvt_changed "reference"
        row "fimvt scan, re-scan after $CHANGED changed (rehash=always: full re-read)" fimvt_always \
            "$(ratio "${MED[aide_check]}" "${MED[fimvt_always]}" "= aide --check / this")"
    else
        out "| fimvt scan (baseline, re-scan changed, re-scan always) | skipped: $FIMVT not built | | | | |"
    fi
    out ""
    out "files/s and MB/s are whole-tree figures (tree files or bytes / wall seconds); the rehash=changed re-scan does not re-read unchanged files, so its MB/s is an effective rate, not read throughput. The ceiling's seconds are its own printed hashing time (file listing excluded); its RSS is the whole process. Other processes used ${other_s} CPU-s (${other_pct}% of the machine) during these runs."
    unset MED MRSS
done
