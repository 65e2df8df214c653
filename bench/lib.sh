# shellcheck shell=bash
# Shared by bench/scan.sh, bench/realtime.sh and bench/virustotal.sh (sourced):
# the busy-machine checks that flag a result as unreliable when other processes
# used the CPU (2 cores: one cargo build ruins every figure).

# Percent of all CPUs busy during 2 s (from /proc/stat), as an integer.
cpu_busy_pct() {
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $5+$6}' /proc/stat); sleep 2
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
        busy = y[1] - x[1]; idle = y[2] - x[2]
        printf "%d", (busy + idle > 0 ? 100 * busy / (busy + idle) : 0) }'
}

# CPU-seconds used by the whole machine so far (from /proc/stat) ...
machine_cpu_s() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {printf "%.2f\n", ($2+$3+$4+$7+$8)/hz}' /proc/stat; }

# ... and by the calling script's finished children: parse the 2nd line of
# bash's `times`, which must run in that shell (`times >FILE`), not in $(...): a
# subshell has no children of its own yet.
children_cpu_s() {
    awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] }
        printf "%.2f\n", s }' "$1"
}
