#!/usr/bin/env python3
"""Wake-ups and CPU of each fimvt thread during a burst of new files, with a
VirusTotal backlog being asked (the stand-in answering in 240 ms, 4 in flight:
a 1,000/min key at its limit).

usage: bench/vt_wakeups.py --fimvt BIN [--tree DIR] [--secs 8]

--tree is a backlog tree, such as the one bench/virustotal.sh makes
(/tmp/vtbench/trees/backlog6000). Files are created as fast as Python makes them,
without waiting for their alerts. Per thread, from /proc/PID/task: voluntary
context switches (wake-ups after a wait), involuntary ones, and CPU time
(schedstat), counted over the burst.
"""
import argparse
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realtime as rt  # noqa: E402
import vt_bench as vb  # noqa: E402


def switches(pid):
    """(voluntary, involuntary) context switches of each thread of `pid` by name;
    CPU comes from realtime.thread_cpu_s."""
    out = {}
    for t in glob.glob(f"/proc/{pid}/task/*"):
        try:
            comm = open(t + "/comm").read().strip()
            status = dict(line.split(":\t", 1) for line in open(t + "/status").read().splitlines() if ":\t" in line)
        except OSError:
            continue  # the thread ended meanwhile
        v = out.setdefault(comm, [0, 0])
        v[0] += int(status["voluntary_ctxt_switches"])
        v[1] += int(status["nonvoluntary_ctxt_switches"])
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fimvt", required=True)
    p.add_argument("--tree", default="/tmp/vtbench/trees/backlog6000")
    p.add_argument("--work", default="/tmp/vtbench/wakeups")
    p.add_argument("--secs", type=float, default=8)
    a = p.parse_args()
    rt.fresh_dir(a.work)
    sd = vb.Standin(a.work, "w", 240)
    fim = None
    try:
        data, watched = os.path.join(a.work, "data"), os.path.join(a.work, "watched")
        os.makedirs(watched)
        cfg = os.path.join(a.work, "fimvt.toml")
        vb.write_config(cfg, data, [os.path.abspath(a.tree), watched],
                        vt={"port": sd.port, "rpm": 1000, "concurrency": 4})
        fim = rt.Fimvt(os.path.abspath(a.fimvt), cfg, a.work, "w")
        vb.wait_scan(fim, 120)
        while len(sd.poll()) < 20:
            time.sleep(0.01)
        sw0, cpu0, asked0 = switches(fim.pid), rt.thread_cpu_s(fim.pid), len(sd.poll())
        t0, n = time.monotonic(), 0
        while time.monotonic() - t0 < a.secs:
            with open(os.path.join(watched, f"f{n}"), "wb") as f:
                f.write(os.urandom(256))
            n += 1
            time.sleep(0.0005)
        time.sleep(0.5)
        sw1, cpu1, asked = switches(fim.pid), rt.thread_cpu_s(fim.pid), len(sd.poll()) - asked0
        print(f"{n} files created in {a.secs:g} s; {asked} lookups reached the stand-in meanwhile")
        print(f"{'thread':16s} {'wake-ups':>9s} {'preempted':>9s} {'CPU ms':>9s}")
        for k in sorted(sw1):
            vol, invol = (sw1[k][i] - sw0.get(k, [0, 0])[i] for i in range(2))
            cpu_ms = (cpu1.get(k, 0) - cpu0.get(k, 0)) * 1000
            print(f"{k:16s} {vol:9d} {invol:9d} {cpu_ms:9.1f}")
    finally:
        if fim:
            fim.stop()
        sd.stop()


if __name__ == "__main__":
    main()
