#!/usr/bin/env python3
"""Realtime benchmark helper for `fimvt run` (driven by bench/realtime.sh).

usage:
  realtime.py latency --fimvt BIN --work DIR --out JSON [--n 1000] [--warmup 10]
                      [--run 1] [--reader inotify|poll] [--poll-ms 0.2] [--timeout 10]
  realtime.py burst   --fimvt BIN --work DIR --src TREE --out JSON [--run 1] [--timeout 10]
  realtime.py idle    --fimvt BIN --work DIR --tree TREE --out JSON [--idle 30] [--run 1]
  realtime.py report  --part latency|burst|idle [--note TEXT] JSON...
  realtime.py kthread-cpu      (CPU-seconds used so far by kernel threads)

Each measuring sub-command starts its own `fimvt run` (under /usr/bin/time, so
its peak RSS and CPU are also known from wait4), on a fresh data dir, waits
for the start-up scan ("scan complete" on stderr), measures, stops it with
SIGTERM (checks "stopped cleanly"), verifies the alerts and the database, and
writes every raw sample to a JSON file.  `report` turns those files into the
markdown tables.  stdlib only; Linux only (inotify through ctypes, /proc).

latency: one thread, no polling in the default reader.  select() waits on two
file descriptors at once: the stdout pipe of `inotifywait -m -e close_write`
watching the same folder (the floor) and an inotify watch (IN_MODIFY) on
fimvt's data dir; whenever the latter fires, the new bytes of alerts.log are
read.  Each timestamp is time.monotonic_ns() taken right after the read()
that returned the line, before parsing: its resolution is the wake-up of
this process (tens of microseconds), not a polling period.  `--reader poll` instead re-reads
alerts.log every --poll-ms (default 0.2 ms) while still select()ing on the
inotifywait pipe.
"""

import argparse
import ctypes
import hashlib
import json
import math
import os
import random
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time

NS = 1_000_000_000
MS = 1_000_000


def log(*a):
    print("[realtime.py]", *a, file=sys.stderr, flush=True)


def now_ns():
    return time.monotonic_ns()


# --------------------------------------------------------------- inotify
IN_MODIFY = 0x00000002
IN_CREATE = 0x00000100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

_libc = ctypes.CDLL(None, use_errno=True)


class Inotify:
    """Bare inotify fd; we only use it as a "something was written" doorbell."""

    def __init__(self, path, mask=IN_MODIFY | IN_CREATE):
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")

    def drain(self):
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass

    def close(self):
        os.close(self.fd)


class Tail:
    """Reads whatever was appended to a file since last time, line by line."""

    def __init__(self, path):
        self.path = path
        self.fd = None
        self.partial = b""
        self.bytes = 0

    def lines(self):
        if self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return []
        chunks = []
        while True:
            b = os.read(self.fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        if not chunks:
            return []
        data = self.partial + b"".join(chunks)
        self.bytes += sum(map(len, chunks))
        parts = data.split(b"\n")
        self.partial = parts.pop()
        return parts

    def close(self):
        if self.fd is not None:
            os.close(self.fd)


# --------------------------------------------------------------- fimvt process
def write_config(path, data_dir, watched, settle="250ms"):
    with open(path, "w") as f:
        f.write(f'[general]\ndata_dir = "{data_dir}"\n\n'
                f'[[directories]]\npath = "{watched}"\n\n'
                f'[realtime]\nsettle = "{settle}"\n')


def proc_children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        st = f.read()
                    if int(st[st.rindex(")") + 2:].split()[1]) == pid:
                        out.append(int(d))
                except (OSError, ValueError):
                    pass
        return out


def proc_status(pid):
    """VmHWM / VmRSS (KiB), threads, context switches summed over all tasks."""
    d = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "Threads"):
                d[k] = int(v.split()[0])
    vol = invol = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol += int(line.split()[1])
        except FileNotFoundError:
            pass
    d["ctxt"] = vol + invol
    return d


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """utime+stime of the whole process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # fields 14, 15 of stat


def thread_cpu_s(pid):
    """CPU time of each thread of `pid` by thread name (threads of one name added
    up), seconds, from /proc/<pid>/task/*/schedstat (nanoseconds, not clock ticks:
    a few milliseconds per thread would vanish in stat's 10 ms ticks)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
        except OSError:   # the thread ended meanwhile
            continue
        out[name] = out.get(name, 0.0) + ns / 1e9
    return out


class Fimvt:
    def __init__(self, binary, cfg, work, tag):
        self.errlog = os.path.join(work, f"fimvt-{tag}.stderr")
        self.timefile = os.path.join(work, f"fimvt-{tag}.time")
        self.pidfile = os.path.join(work, "fimvt.pid")
        self.t_spawn = now_ns()
        self.err = open(self.errlog, "wb")
        self.proc = subprocess.Popen(
            ["/usr/bin/time", "-o", self.timefile, "-f", "%e %M %U %S",
             binary, "run", "--config", cfg],
            stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
        self.pid = None
        deadline = time.monotonic() + 10
        while self.pid is None:
            kids = proc_children(self.proc.pid)
            if kids:
                self.pid = kids[0]
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fimvt did not start; see {self.errlog}")
            else:
                time.sleep(0.001)
        with open(self.pidfile, "w") as f:
            f.write(f"{self.pid}\n")

    def stderr_text(self):
        with open(self.errlog, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_for(self, needle, timeout):
        """Poll stderr (every 5 ms) until NEEDLE; returns (ns since spawn, line)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.stderr_text().splitlines():
                if needle in line:
                    return now_ns() - self.t_spawn, line
            if self.proc.poll() is not None:
                raise RuntimeError(f"fimvt exited early:\n{self.stderr_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no '{needle}' from fimvt after {timeout} s:\n{self.stderr_text()}")
            time.sleep(0.005)

    def stop(self, timeout=120):
        """SIGTERM; returns dict with stop seconds and /usr/bin/time's figures."""
        t0 = now_ns()
        os.kill(self.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
            raise RuntimeError(f"fimvt did not stop within {timeout} s of SIGTERM")
        stop_s = (now_ns() - t0) / NS
        self.err.close()
        os.unlink(self.pidfile)
        text = self.stderr_text()
        with open(self.timefile) as f:
            last = f.read().strip().splitlines()[-1].split()
        res = {"exit": rc, "stop_s": stop_s, "clean": "stopped cleanly" in text,
               "time_wall_s": float(last[0]), "time_maxrss_kb": int(last[1]),
               "time_cpu_s": float(last[2]) + float(last[3]),
               "warnings": [l for l in text.splitlines() if " WARN " in l or " ERROR " in l][:20]}
        if rc != 0 or not res["clean"]:
            log(f"WARNING: fimvt exit {rc}, clean={res['clean']}; stderr tail:\n" + "\n".join(text.splitlines()[-10:]))
        self.pid = None
        return res

    def kill(self):
        if self.pid is not None and self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
            self.pid = None
            try:
                os.unlink(self.pidfile)
            except FileNotFoundError:
                pass


def fresh_dir(path):
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", "--", path], check=True)
    os.makedirs(path)


def db_rows(data_dir):
    """{path: sha256} from the files table (read-only, after fimvt stopped)."""
    con = sqlite3.connect(f"file:{os.path.join(data_dir, 'fimvt.db')}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT path, sha256 FROM files").fetchall()
    finally:
        con.close()
    out = {}
    for p, h in rows:
        out[os.fsdecode(p) if isinstance(p, bytes) else p] = h
    return out


def json_events(data_dir):
    """[(path, event, sha256_after, size_after)] from alerts.json."""
    out = []
    with open(os.path.join(data_dir, "alerts.json"), "rb") as f:
        for line in f:
            if line.strip():
                s = json.loads(line)["syscheck"]
                out.append((s["path"], s["event"], s.get("sha256_after"), s.get("size_after")))
    return out


# --------------------------------------------------------------- statistics
def pct(sorted_vals, p):
    """Nearest-rank percentile."""
    if not sorted_vals:
        return None
    k = max(1, math.ceil(p / 100 * len(sorted_vals)))
    return sorted_vals[k - 1]


def summary(vals):
    s = sorted(vals)
    if not s:
        return None
    return {"n": len(s), "min": s[0], "p50": pct(s, 50), "p90": pct(s, 90), "p99": pct(s, 99),
            "max": s[-1], "mean": sum(s) / len(s)}


def median(vals):
    s = sorted(v for v in vals if v is not None)
    if not s:
        return None
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


# --------------------------------------------------------------- latency
ADDED_RE = re.compile(rb"^File '(.*)' (added|modified|deleted)$")


def cmd_latency(a):
    work = os.path.abspath(a.work)
    fresh_dir(work)
    watched, data = os.path.join(work, "watched"), os.path.join(work, "data")
    os.makedirs(watched)
    cfg = os.path.join(work, "fimvt.toml")
    write_config(cfg, data, watched, a.settle)

    fim = iw = ino = None
    res = {"part": "latency", "run": a.run, "n": a.n, "warmup": a.warmup, "reader": a.reader,
           "poll_ms": a.poll_ms if a.reader == "poll" else None, "timeout_s": a.timeout,
           "settle": a.settle}
    try:
        fim = Fimvt(a.fimvt, cfg, work, f"lat{a.run}")
        res["ready_s"] = fim.wait_for("scan complete", 60)[0] / NS
        os.makedirs(data, exist_ok=True)

        iw = subprocess.Popen(["inotifywait", "-m", "-e", "close_write", "--format", "%w%f", watched],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        buf = b""
        deadline = time.monotonic() + 10
        while b"Watches established" not in buf:
            r, _, _ = select.select([iw.stderr], [], [], max(0, deadline - time.monotonic()))
            if not r:
                raise RuntimeError(f"inotifywait not ready: {buf!r}")
            chunk = os.read(iw.stderr.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"inotifywait exited: {buf!r}")
            buf += chunk
        iw_fd = iw.stdout.fileno()
        os.set_blocking(iw_fd, False)
        iw_partial = b""

        if a.reader == "inotify":
            ino = Inotify(data)   # before the first read: no write can slip between
        tail = Tail(os.path.join(data, "alerts.log"))
        tail.lines()  # skip anything already there (there should be nothing)
        if a.reader == "inotify":
            fds = [iw_fd, ino.fd]
            poll_s = None
        else:
            fds = [iw_fd]
            poll_s = a.poll_ms / 1000

        alerts = {}      # path -> [ns, ...] when its "added" line was read
        others = {}      # path -> [(event, ns)] for modified/deleted lines
        floor = {}       # path -> [ns, ...] when inotifywait printed it
        foreign = []     # lines for paths we did not create

        def pump(timeout_s):
            """Wait up to timeout_s for input, then consume everything available."""
            nonlocal iw_partial
            # Each line is stamped right after the read() that returned it, not
            # when select() woke up: if this process is preempted in between
            # (2 cores, fimvt's threads and inotifywait wake up at the same
            # time), a stamp taken before the read could predate the write.
            # Preemption after the data arrived can only make a sample later.
            r, _, _ = select.select(fds, [], [], timeout_s)
            if ino is not None and ino.fd in r:
                ino.drain()
            if iw_fd in r:
                try:
                    while True:
                        b = os.read(iw_fd, 65536)
                        if not b:
                            raise RuntimeError("inotifywait closed its stdout")
                        iw_partial += b
                except BlockingIOError:
                    pass
                t = now_ns()
                parts = iw_partial.split(b"\n")
                iw_partial = parts.pop()
                for p in parts:
                    floor.setdefault(os.fsdecode(p), []).append(t)
            if ino is None or ino.fd in r:
                lines = tail.lines()
                t = now_ns()
                for line in lines:
                    m = ADDED_RE.match(line)
                    if m:
                        p = os.fsdecode(m.group(1))
                        if m.group(2) == b"added":
                            alerts.setdefault(p, []).append(t)
                        else:
                            others.setdefault(p, []).append((m.group(2).decode(), t))

        rng = random.Random(f"latency/{a.run}")
        created = []     # (path, t_close_ns, sha256, size, measured?)
        close_ms = []    # how long close() itself took (the close event fires inside it)
        t_begin = now_ns()
        for i in range(a.warmup + a.n):
            path = os.path.join(watched, f"lat-r{a.run}-{i:05d}.dat")
            data_b = rng.randbytes(rng.randint(64, 4096))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            os.write(fd, data_b)
            t_pre = now_ns()
            os.close(fd)
            t_close = now_ns()
            if i >= a.warmup:
                close_ms.append((t_close - t_pre) / MS)
            created.append((path, t_close, hashlib.sha256(data_b).hexdigest(), len(data_b), i >= a.warmup))
            deadline = t_close + int(a.timeout * NS)
            while path not in alerts or path not in floor:
                left = (deadline - now_ns()) / NS
                if left <= 0:
                    break
                pump(min(left, poll_s) if poll_s else left)
        t_end = now_ns()
        # Grace period: late alerts for timed-out files, duplicates, extra events.
        grace_end = now_ns() + int(a.grace * NS)
        while now_ns() < grace_end:
            pump(min(poll_s or 0.05, (grace_end - now_ns()) / NS))

        res["fimvt_status_before_stop"] = proc_status(fim.pid)
        iw.terminate()
        iw.wait(timeout=10)
        iw = None
        res["fimvt_exit"] = fim.stop()

        # ------------------------------------------------ checks
        ours = {c[0] for c in created}
        lat, flo, diff = [], [], []
        lost, late, lost_floor, dup = [], [], [], 0
        for path, t_close, _, _, measured in created:
            ts = alerts.get(path, [])
            dup += max(0, len(ts) - 1)
            if not measured:
                continue
            if not ts:
                lost.append(path)
            elif ts[0] - t_close > a.timeout * NS:
                late.append(path)
            else:
                lat.append((ts[0] - t_close) / MS)
            fs = floor.get(path, [])
            if fs:
                flo.append((fs[0] - t_close) / MS)
            else:
                lost_floor.append(path)
            if ts and fs and ts[0] - t_close <= a.timeout * NS:
                diff.append((ts[0] - fs[0]) / MS)
        for p in list(alerts) + list(others):
            if p not in ours:
                foreign.append(p)

        ev = json_events(data)
        j_added = {}
        bad_hash = 0
        for p, e, h, size in ev:
            if e == "added":
                j_added.setdefault(p, []).append(h)
        want = {c[0]: c[2] for c in created}
        for p, h in want.items():
            hs = j_added.get(p)
            if hs and hs[0] != h:
                bad_hash += 1
        rows = db_rows(data)
        db_missing = sum(1 for p in want if p not in rows)
        db_bad = sum(1 for p, h in want.items() if p in rows and rows[p] != h)

        # per-sample arrays in file order, so the report can look for drift/modes
        res.update({
            "elapsed_s": (t_end - t_begin) / NS,
            "fimvt_ms": lat, "floor_ms": flo, "diff_ms": diff, "close_ms": close_ms,
            "fimvt_ms_in_order": [((alerts[p][0] - t) / MS if p in alerts else None)
                                  for p, t, _, _, m in created if m],
            "lost": len(lost), "late": len(late), "lost_examples": lost[:5],
            "lost_floor": len(lost_floor), "duplicates": dup,
            "other_events_for_ours": sum(len(v) for p, v in others.items() if p in ours),
            "other_events_examples": [(p, v) for p, v in list(others.items())[:5]],
            "foreign": len(foreign), "foreign_examples": foreign[:5],
            "json_events": len(ev),
            "json_added_ours": sum(1 for p in want if p in j_added),
            "json_hash_mismatch": bad_hash,
            "db_rows": len(rows), "db_missing": db_missing, "db_hash_mismatch": db_bad,
            "created": len(created),
        })
    finally:
        if iw is not None:
            iw.terminate()
            iw.wait()
        if ino is not None:
            ino.close()
        if fim is not None:
            fim.kill()
    with open(a.out, "w") as f:
        json.dump(res, f)
    s = summary(res["fimvt_ms"]) or {"p50": None, "p99": None}
    log(f"latency run {a.run}: fimvt p50={f3(s['p50'])} ms p99={f3(s['p99'])} ms, "
        f"lost={res['lost']} late={res['late']} dup={res['duplicates']}")


# --------------------------------------------------------------- burst
def list_regular(root):
    out = []
    for d, dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(p)
    return out


def mount_fresh_ext4(img, mnt, size="2G"):
    """A brand-new ext4 (loop-mounted sparse image) at MNT.

    Why: ext4 refuses to reuse an inode deleted less than 60 s ago (300 s if
    its inode-table block is still dirty) and finds out by reading the inode
    table (fs/ext4/ialloc.c recently_deleted()).  Right after an `rm -rf` of
    10,000 files, creating 10,000 new ones on the same file system costs
    ~0.8 ms of CPU each: `cp -r` of the small tree goes from 0.5 s to 8+ s,
    depending on what was deleted in the last minutes.  A fresh file system
    per copy makes every run start from the same state.
    """
    subprocess.run(["truncate", "-s", size, img], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["mount", "-o", "loop", img, mnt], check=True)


def unmount(img, mnt):
    if os.path.ismount(mnt):
        subprocess.run(["umount", mnt], check=True)
    if img and os.path.exists(img):
        os.unlink(img)


def cmd_burst(a):
    work = os.path.abspath(a.work)
    src = os.path.abspath(a.src)
    for m in ("watched", "unwatched"):   # leftovers of an interrupted run
        if os.path.ismount(os.path.join(work, m)):
            subprocess.run(["umount", os.path.join(work, m)], check=True)
    fresh_dir(work)
    watched, data = os.path.join(work, "watched"), os.path.join(work, "data")
    unwatched = os.path.join(work, "unwatched")
    os.makedirs(watched)
    os.makedirs(unwatched)
    cfg = os.path.join(work, "fimvt.toml")
    write_config(cfg, data, watched, a.settle)
    src_files = list_regular(src)
    expected = len(src_files)
    res = {"part": "burst", "run": a.run, "src": src, "expected": expected, "fs": a.fs,
           "timeout_s": a.timeout}
    img_w = img_u = None

    fim = None
    try:
        # Reference: the same cp into a folder nobody watches.
        if a.fs == "loop":
            img_u = os.path.join(work, "unwatched.img")
            mount_fresh_ext4(img_u, unwatched)
        subprocess.run(["sync"], check=True)
        t0 = now_ns()
        subprocess.run(["cp", "-r", src, unwatched + "/"], check=True)
        res["cp_alone_s"] = (now_ns() - t0) / NS
        if a.fs == "loop":
            unmount(img_u, unwatched)
        else:
            subprocess.run(["rm", "-rf", "--", unwatched], check=True)
        if a.fs == "loop":
            img_w = os.path.join(work, "watched.img")
            mount_fresh_ext4(img_w, watched)
        subprocess.run(["sync"], check=True)

        fim = Fimvt(a.fimvt, cfg, work, f"burst{a.run}")
        res["ready_s"] = fim.wait_for("scan complete", 60)[0] / NS
        tail = Tail(os.path.join(data, "alerts.json"))
        tail.lines()
        added = 0
        lines_total = 0
        needle = b'"event":"added"'
        poll = a.poll_ms / 1000
        t0 = now_ns()
        cp = subprocess.Popen(["cp", "-r", src, watched + "/"])
        t_cp = None
        t_done = None
        t_last_new = t0
        progress = []    # (seconds since cp start, added so far), every ~100 ms
        next_mark = t0
        while True:
            time.sleep(poll)
            t = now_ns()
            ls = tail.lines()
            if ls:
                t_last_new = t
                lines_total += len(ls)
                added += sum(1 for l in ls if needle in l)
            if t_cp is None and cp.poll() is not None:
                t_cp = t
                if cp.returncode != 0:
                    raise RuntimeError(f"cp exited {cp.returncode}")
            if t >= next_mark:
                progress.append(((t - t0) / NS, added))
                next_mark = t + 100 * MS
            if t_done is None and added >= expected and t_cp is not None:
                t_done = t
                break
            if t_cp is not None and t - max(t_last_new, t_cp) > a.timeout * NS:
                break   # nothing new for --timeout seconds: the rest is lost
        progress.append(((now_ns() - t0) / NS, added))
        # Grace: catch duplicates/extra events arriving after the last expected one.
        time.sleep(a.grace)
        for l in tail.lines():
            lines_total += 1
            added += needle in l
        res["fimvt_status_before_stop"] = proc_status(fim.pid)
        t_stop0 = now_ns()
        res["fimvt_exit"] = fim.stop()
        res["cp_s"] = (t_cp - t0) / NS
        res["alerted_s"] = (t_done - t0) / NS if t_done else None
        res["last_alert_s"] = (t_last_new - t0) / NS   # when the last new alert line was read
        res["alerted_lines_at_end"] = added
        res["stopped_s_after_grace"] = (now_ns() - t_stop0) / NS
        res["progress"] = progress

        # ------------------------------------------------ checks
        copied = list_regular(os.path.join(watched, os.path.basename(src)))
        res["copied"] = len(copied)
        ev = json_events(data)
        per_path = {}
        for p, e, h, size in ev:
            per_path.setdefault(p, []).append((e, h))
        cset = set(copied)
        res["json_lines"] = len(ev)
        res["json_added"] = sum(1 for _, e, _, _ in ev if e == "added")
        res["json_added_unique_copied"] = sum(1 for p in cset if any(e == "added" for e, _ in per_path.get(p, [])))
        res["json_missing"] = len(cset) - res["json_added_unique_copied"]
        res["json_missing_examples"] = [p for p in copied if p not in per_path][:5]
        # Where the missed files are: per folder, how many of its files, and
        # whether they are the first ones cp created there (cp -r copies a
        # folder's entries in inode order of the source).  A prefix means the
        # files were created before fimvt watched the new folder and were not
        # picked up by a look at the folder after the watch was added.
        miss_dirs = {}
        for p in copied:
            if not any(e == "added" for e, _ in per_path.get(p, [])):
                miss_dirs.setdefault(os.path.dirname(p), set()).add(os.path.basename(p))
        rel0 = os.path.join(watched, os.path.basename(src))
        md = []
        for d, missed in sorted(miss_dirs.items()):
            sd = os.path.join(src, os.path.relpath(d, rel0))
            names = [n for n in os.listdir(sd) if os.path.isfile(os.path.join(sd, n))]
            order = sorted(names, key=lambda n: os.stat(os.path.join(sd, n)).st_ino)
            pos = [i for i, n in enumerate(order) if n in missed]
            md.append({"dir": os.path.relpath(d, rel0), "missed": len(missed), "files": len(names),
                       "prefix_of_cp_order": pos == list(range(len(pos))), "positions": pos[:50]})
        res["json_missing_by_dir"] = md
        res["json_duplicates"] = sum(max(0, sum(1 for e, _ in v if e == "added") - 1) for v in per_path.values())
        res["json_other_events"] = sum(1 for _, e, _, _ in ev if e != "added")
        res["json_other_examples"] = [(p, e) for p, e, _, _ in ev if e != "added"][:5]
        res["json_foreign"] = sum(1 for p in per_path if p not in cset)
        rows = db_rows(data)
        res["db_rows"] = len(rows)
        res["db_missing"] = sum(1 for p in cset if p not in rows)
        # Content check: every stored SHA-256 equals the source file's.
        bad = 0
        rel0 = os.path.join(watched, os.path.basename(src))
        for p in src_files:
            q = os.path.join(rel0, os.path.relpath(p, src))
            h = hashlib.sha256()
            with open(p, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
            if q in rows and rows[q] != h.hexdigest():
                bad += 1
        res["db_hash_mismatch"] = bad
    finally:
        if fim is not None:
            fim.kill()
        if a.fs == "loop":
            unmount(img_u, unwatched)
            unmount(img_w, watched)
    with open(a.out, "w") as f:
        json.dump(res, f)
    subprocess.run(["rm", "-rf", "--", watched], check=True)
    log(f"burst run {a.run}: cp {res.get('cp_s')} s, all alerted {res.get('alerted_s')} s, "
        f"db rows {res.get('db_rows')}/{expected}")


# --------------------------------------------------------------- idle
def cmd_idle(a):
    work = os.path.abspath(a.work)
    tree = os.path.abspath(a.tree)
    fresh_dir(work)
    data = os.path.join(work, "data")
    cfg = os.path.join(work, "fimvt.toml")
    write_config(cfg, data, tree, a.settle)
    expected = len(list_regular(tree))
    res = {"part": "idle", "run": a.run, "tree": tree, "expected": expected, "idle_s": a.idle,
           "quiet": a.quiet}
    fim = None
    try:
        fim = Fimvt(a.fimvt, cfg, work, f"idle{a.run}")
        # RSS every 50 ms during the baseline (VmHWM is the real peak anyway).
        rss_base = []
        line = None
        deadline = time.monotonic() + 1800
        while line is None:
            for l in fim.stderr_text().splitlines():
                if "scan complete" in l:
                    line = l
            if line is None:
                if fim.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("no baseline:\n" + fim.stderr_text())
                rss_base.append(proc_status(fim.pid)["VmRSS"])
                time.sleep(0.05)
        res["baseline_wall_s"] = (now_ns() - fim.t_spawn) / NS   # spawn -> line seen (5-50 ms resolution)
        res["baseline_line"] = line.split("INFO", 1)[-1].strip()
        m = re.search(r"([0-9.]+) s\b", line)
        res["baseline_own_s"] = float(m.group(1)) if m else None
        m = re.search(r"(\d+) files", line)
        res["baseline_files"] = int(m.group(1)) if m else None
        res["baseline_cpu_s"] = proc_cpu_s(fim.pid)
        st = proc_status(fim.pid)
        res["after_baseline"] = st
        res["rss_max_sampled_during_baseline_kb"] = max(rss_base) if rss_base else None
        time.sleep(a.quiet)      # let the last database writes/checkpoint finish
        st0, c0, t0 = proc_status(fim.pid), proc_cpu_s(fim.pid), now_ns()
        rss = []
        end = t0 + int(a.idle * NS)
        while now_ns() < end:
            time.sleep(min(1.0, max(0, (end - now_ns()) / NS)))
            rss.append(proc_status(fim.pid)["VmRSS"])
        st1, c1, t1 = proc_status(fim.pid), proc_cpu_s(fim.pid), now_ns()
        w = (t1 - t0) / NS
        res.update({
            "idle_window_s": w, "idle_cpu_s": c1 - c0, "idle_cpu_pct": 100 * (c1 - c0) / w,
            "idle_ctxt_per_s": (st1["ctxt"] - st0["ctxt"]) / w,
            "vmhwm_kb": st1["VmHWM"], "vmrss_start_kb": st0["VmRSS"], "vmrss_end_kb": st1["VmRSS"],
            "vmrss_min_kb": min(rss), "vmrss_max_kb": max(rss), "threads": st1["Threads"],
            "clk_tck": CLK_TCK,
        })
        res["fimvt_exit"] = fim.stop()
        rows = db_rows(data)
        res["db_rows"] = len(rows)
        res["db_null_hash"] = sum(1 for h in rows.values() if h is None)
        a_log = os.path.join(data, "alerts.json")
        res["alerts_during_idle"] = sum(1 for _ in open(a_log, "rb")) if os.path.exists(a_log) else 0
    finally:
        if fim is not None:
            fim.kill()
    with open(a.out, "w") as f:
        json.dump(res, f)
    log(f"idle run {a.run}: baseline {res.get('baseline_own_s')} s, HWM {res.get('vmhwm_kb')} KiB, "
        f"RSS {res.get('vmrss_end_kb')} KiB, idle CPU {res.get('idle_cpu_s')} s")


# --------------------------------------------------------------- report
def f3(x):
    return "n/a" if x is None else f"{x:.3f}"


def mib(kb):
    return "n/a" if kb is None else f"{kb / 1024:.1f}"


BUCKETS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 10000]


def histogram(vals):
    counts = [0] * (len(BUCKETS) + 1)
    for v in vals:
        for i, b in enumerate(BUCKETS):
            if v < b:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
    return counts


def bucket_label(i):
    lo = 0 if i == 0 else BUCKETS[i - 1]
    return f"≥ {BUCKETS[-1]:g} ms" if i == len(BUCKETS) else f"{lo:g}–{BUCKETS[i]:g} ms"


def verdict(ok):
    return "**PASS**" if ok else "**FAIL**"


def report_latency(runs, note):
    fim = [v for r in runs for v in r["fimvt_ms"]]
    flo = [v for r in runs for v in r["floor_ms"]]
    dif = [v for r in runs for v in r["diff_ms"]]
    sf, sl, sd = summary(fim), summary(flo), summary(dif)
    n_created = sum(r["n"] for r in runs)
    lost = sum(r["lost"] for r in runs)
    late = sum(r["late"] for r in runs)
    r0 = runs[0]
    method = ("inotify (IN_MODIFY on the data dir) + select(): event-driven, each line stamped right after "
              "the read() that returned it, ~10–50 µs resolution" if r0["reader"] == "inotify"
              else f"re-read alerts.log every {r0['poll_ms']} ms (resolution ≈ {r0['poll_ms']} ms + wake-up)")
    o = []
    o.append(f"### 1. close() → alert latency: {n_created} single-file creations "
             f"({len(runs)} run{'s' if len(runs) > 1 else ''}, +{r0['warmup']} warm-up files not counted){note}")
    o.append("")
    o.append(f"Each file: open(O_CREAT|O_EXCL) + write 64–4096 random bytes + close(); t0 = "
             f"monotonic clock right after close(); then wait for its `File '…' added` line in alerts.log "
             f"(and its inotifywait line) before creating the next. fimvt `realtime.settle = \"{r0['settle']}\"`. "
             f"alerts.log reader: {method}. Floor: `inotifywait -m -e close_write --format '%w%f'` on the same "
             f"folder, its stdout pipe read in the same select() loop. A file with no alert {r0['timeout_s']:g} s "
             f"after close() counts as lost. Percentiles are nearest-rank.")
    o.append("")
    o.append("| ms | n | min | p50 | p90 | p99 | max | mean |")
    o.append("|---|---:|---:|---:|---:|---:|---:|---:|")

    def row(label, s):
        if s is None:
            o.append(f"| {label} | 0 | | | | | | |")
        else:
            o.append(f"| {label} | {s['n']} | {f3(s['min'])} | {f3(s['p50'])} | {f3(s['p90'])} | "
                     f"{f3(s['p99'])} | {f3(s['max'])} | {f3(s['mean'])} |")
    row("fimvt: close() → `File '…' added` read from alerts.log", sf)
    row("floor: close() → inotifywait line read from its pipe", sl)
    row("same file: fimvt alert − inotifywait line", sd)
    sc = summary([v for r in runs for v in r.get("close_ms", [])])
    row("(the close() call itself: t0 is taken this long after the event fired inside it)", sc)
    if sf and sl:
        o.append(f"| **fimvt − floor** (percentile by percentile) | | | {f3(sf['p50'] - sl['p50'])} | "
                 f"{f3(sf['p90'] - sl['p90'])} | {f3(sf['p99'] - sl['p99'])} | {f3(sf['max'] - sl['max'])} | "
                 f"{f3(sf['mean'] - sl['mean'])} |")
    o.append("")
    if sf and sl:
        t1 = sf["p99"] < 50 and lost == 0 and late == 0
        t2 = sf["p99"] - sl["p99"] < 20
        o.append(f"Targets: fimvt p99 < 50 ms with no loss: {verdict(t1)} ({f3(sf['p99'])} ms, {lost} lost, {late} late); "
                 f"p99 within 20 ms of the floor: {verdict(t2)} (+{f3(sf['p99'] - sl['p99'])} ms).")
        o.append("")
    # Distribution
    hf, hl = histogram(fim), histogram(flo)
    o.append("Distribution (count of files per latency bucket):")
    o.append("")
    o.append("| bucket | fimvt | floor |")
    o.append("|---|---:|---:|")
    for i in range(len(BUCKETS) + 1):
        if hf[i] or hl[i]:
            o.append(f"| {bucket_label(i)} | {hf[i]} | {hl[i]} |")
    o.append("")
    # drift: p50 per tenth of the sequence
    seq = [v for r in runs for v in r["fimvt_ms_in_order"]]
    k = max(1, len(seq) // 10)
    dec = []
    for i in range(0, len(seq), k):
        chunk = sorted(v for v in seq[i:i + k] if v is not None)
        if chunk:
            dec.append(f"{pct(chunk, 50):.2f}/{chunk[-1]:.2f}")
    o.append(f"fimvt p50/max (ms) per consecutive tenth of the sequence: {', '.join(dec)}.")
    o.append("")
    chk = []
    for r in runs:
        chk.append(
            f"run {r['run']}: {r['created']} files created in {r['elapsed_s']:.1f} s; alerts matched "
            f"{r['n'] - r['lost'] - r['late']}/{r['n']} measured files, lost {r['lost']}, "
            f"late (> {r['timeout_s']:g} s) {r['late']}, duplicate `added` alerts {r['duplicates']}, "
            f"modified/deleted alerts for our files {r['other_events_for_ours']}, alerts for other paths "
            f"{r['foreign']}; inotifywait missed {r['lost_floor']}; alerts.json: {r['json_events']} events, "
            f"`added` for {r['json_added_ours']}/{r['created']} files, SHA-256 ≠ written bytes: "
            f"{r['json_hash_mismatch']}; SQLite `files`: {r['db_rows']} rows, missing {r['db_missing']}, "
            f"SHA-256 mismatch {r['db_hash_mismatch']}; fimvt stopped cleanly: {r['fimvt_exit']['clean']} "
            f"(exit {r['fimvt_exit']['exit']}, {r['fimvt_exit']['stop_s']:.3f} s after SIGTERM), "
            f"peak RSS {mib(r['fimvt_exit']['time_maxrss_kb'])} MiB, CPU {r['fimvt_exit']['time_cpu_s']:.2f} s.")
        if r["lost_examples"]:
            chk.append(f"lost examples: {', '.join(r['lost_examples'])}")
        if r["fimvt_exit"]["warnings"]:
            chk.append("fimvt warnings: " + " / ".join(w[-160:] for w in r["fimvt_exit"]["warnings"][:3]))
    o.append("Checks — " + " ".join(chk))
    return o


def report_burst(runs, note):
    o = []
    exp = runs[0]["expected"]
    o.append(f"### 2. Burst: `cp -r` of the small tree ({exp} files, incl. its `.complete` marker) into the "
             f"watched folder, {len(runs)} run{'s' if len(runs) > 1 else ''}, median{note}")
    o.append("")
    fs = ("the watched folder is the root of a fresh loop-mounted ext4 (new for every copy, so ext4's "
          "recently-deleted-inode scan after earlier `rm -rf`s cannot slow cp down; fimvt's data dir stays on "
          "BENCH_DIR)" if runs[0].get("fs") == "loop" else
          "the watched folder is a plain folder under BENCH_DIR (beware: right after deleting many files, ext4 "
          "makes creating new ones much slower for up to 5 minutes)")
    o.append("fimvt started on an empty folder (baseline done), then `cp -r` (warm source, `sync` first); " + fs +
             ". \"all alerted\" = from cp's start until alerts.json holds one `\"event\":\"added\"` line per copied "
             "file (alerts.json re-read every 2 ms). Then SIGTERM; the SQLite `files` table is counted and every "
             "stored SHA-256 compared with the source file's. \"cp alone\" = the same copy into an unwatched "
             "folder (same kind of file system) just before, for reference.")
    o.append("")
    o.append("| run | cp alone (s) | cp into watched (s) | all alerted (s) | files/s | last alert (s) | "
             "SIGTERM → exit (s) | `added` alerts | missing | duplicates | other events | DB rows | "
             "DB SHA-256 ≠ source | peak RSS (MiB) | fimvt CPU (s) |")
    o.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        a = r["alerted_s"]
        o.append(f"| {r['run']} | {f3(r['cp_alone_s'])} | {f3(r['cp_s'])} | {f3(a) if a else 'never (lost)'} | "
                 f"{'n/a' if not a else f'{exp / a:.0f}'} | {f3(r.get('last_alert_s'))} | "
                 f"{f3(r['fimvt_exit']['stop_s'])} | {r['json_added']} | "
                 f"{r['json_missing']} | {r['json_duplicates']} | {r['json_other_events']} | {r['db_rows']} | "
                 f"{r['db_hash_mismatch']} | {mib(r['fimvt_exit']['time_maxrss_kb'])} | {r['fimvt_exit']['time_cpu_s']:.2f} |")
    # A run that lost files never finished: it counts as +inf in the median.
    ma = median([r["alerted_s"] if r["alerted_s"] is not None else math.inf for r in runs])
    if ma == math.inf:
        ma = None
    o.append(f"| **median** | {f3(median([r['cp_alone_s'] for r in runs]))} | {f3(median([r['cp_s'] for r in runs]))} | "
             f"**{f3(ma) if ma else 'never'}** | **{'n/a' if not ma else f'{exp / ma:.0f}'}** | "
             f"{f3(median([r.get('last_alert_s') for r in runs]))} | "
             f"{f3(median([r['fimvt_exit']['stop_s'] for r in runs]))} | | | | | | | "
             f"{mib(median([r['fimvt_exit']['time_maxrss_kb'] for r in runs]))} | "
             f"{median([r['fimvt_exit']['time_cpu_s'] for r in runs]):.2f} |")
    o.append("")
    lossy_n = sum(1 for r in runs if r["json_missing"] or r["db_missing"])
    lost_n = sum(r["json_missing"] for r in runs)
    ml = median([r.get("last_alert_s") for r in runs])
    ok = ma is not None and ma < 10 and lossy_n == 0 and all(r["db_hash_mismatch"] == 0 for r in runs)
    speed_ok = ml is not None and ml < 10
    o.append(f"Target: every file alerted and stored in < 10 s: {verdict(ok)} — speed {verdict(speed_ok)} "
             f"(median time to the last alert {f3(ml)} s; Wazuh's default 50 events/s throttle would need "
             f"{exp / 50:.0f} s), completeness {verdict(lossy_n == 0)} ({lost_n} files never alerted nor stored, "
             f"in {lossy_n} of {len(runs)} runs). \"last alert\" = when the last alert line was read (for a lossy "
             f"run: the time it took to alert the files it did alert). Files copied per run: "
             f"{', '.join(str(r['copied']) for r in runs)}; DB rows missing: "
             f"{', '.join(str(r['db_missing']) for r in runs)}; fimvt stopped cleanly: "
             f"{', '.join(str(r['fimvt_exit']['clean']) for r in runs)}.")
    prog = runs[len(runs) // 2]["progress"]
    marks = []
    for t, n in prog:
        if not marks or (t - marks[-1][0] >= 0.5 or n == exp) and n != marks[-1][1]:
            marks.append((t, n))
    o.append("")
    o.append(f"Alerts over time (run {runs[len(runs) // 2]['run']}, s: alerted files): "
             + ", ".join(f"{t:.1f}: {n}" for t, n in marks[:40]) + ".")
    lossy = [r for r in runs if r["json_missing"] or r["db_missing"]]
    if lossy:
        o.append("")
        o.append(f"**Lost files** in {len(lossy)} of {len(runs)} runs (no alert {runs[0].get('timeout_s', 10):g} s after "
                 "the last one, and no row in `files`; such a run counts as never finished in the median). "
                 "Per folder: missed / files in it, and whether the missed ones are the first files cp created "
                 "there (positions in cp's order):")
        o.append("")
        for r in lossy:
            parts = []
            for d in r.get("json_missing_by_dir", []):
                parts.append(f"`{d['dir']}` {d['missed']}/{d['files']}"
                             + (f" = its first {d['missed']}" if d["prefix_of_cp_order"]
                                else f" at positions {d['positions'][:20]}"))
            o.append(f"- run {r['run']}: {r['json_missing']} missing alerts, {r['db_missing']} missing DB rows: "
                     + "; ".join(parts) + ".")
    for r in runs:
        if r["json_other_examples"] or r["fimvt_exit"]["warnings"]:
            o.append("")
            o.append(f"Run {r['run']} details: other events {r['json_other_examples']}, fimvt warnings "
                     f"{' / '.join(w[-160:] for w in r['fimvt_exit']['warnings'][:3])}")
    return o


def report_idle(runs, note):
    o = []
    r0 = runs[0]
    o.append(f"### 3. Memory and idle CPU watching the large tree ({r0['expected']} files), "
             f"{len(runs)} run{'s' if len(runs) > 1 else ''}, median{note}")
    o.append("")
    o.append(f"fimvt run on the large tree with an empty data dir: the start-up scan is the baseline (warm page "
             f"cache); then, after {r0.get('quiet', 2):g} s, {r0['idle_s']:g} s of idle watching. Peak RSS = VmHWM, "
             f"steady RSS = VmRSS (min–max of 1 s samples over the idle window) from /proc/PID/status; idle CPU = "
             f"utime+stime delta from /proc/PID/stat (resolution 1/{r0['clk_tck']} s); wake-ups = context "
             f"switches of all threads per second. `/usr/bin/time` max RSS is the same peak seen by wait4().")
    o.append("")
    o.append("| run | baseline (fimvt's own, s) | baseline (spawn → log line, s) | baseline CPU (s) | peak RSS VmHWM (MiB) | "
             "steady RSS VmRSS (MiB) | idle CPU (CPU-s / %) | wake-ups/s | threads | /usr/bin/time max RSS (MiB) | DB rows |")
    o.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        o.append(f"| {r['run']} | {f3(r['baseline_own_s'])} | {f3(r['baseline_wall_s'])} | {r['baseline_cpu_s']:.2f} | "
                 f"{mib(r['vmhwm_kb'])} | {mib(r['vmrss_end_kb'])} ({mib(r['vmrss_min_kb'])}–{mib(r['vmrss_max_kb'])}) | "
                 f"{r['idle_cpu_s']:.2f} / {r['idle_cpu_pct']:.2f}% | {r['idle_ctxt_per_s']:.1f} | {r['threads']} | "
                 f"{mib(r['fimvt_exit']['time_maxrss_kb'])} | {r['db_rows']} |")
    mh = median([r["vmhwm_kb"] for r in runs])
    mr = median([r["vmrss_end_kb"] for r in runs])
    mc = median([r["idle_cpu_s"] for r in runs])
    mp = median([r["idle_cpu_pct"] for r in runs])
    o.append(f"| **median** | {f3(median([r['baseline_own_s'] for r in runs]))} | "
             f"{f3(median([r['baseline_wall_s'] for r in runs]))} | {median([r['baseline_cpu_s'] for r in runs]):.2f} | "
             f"**{mib(mh)}** | **{mib(mr)}** | **{mc:.2f} / {mp:.2f}%** | "
             f"{median([r['idle_ctxt_per_s'] for r in runs]):.1f} | | "
             f"{mib(median([r['fimvt_exit']['time_maxrss_kb'] for r in runs]))} | |")
    o.append("")
    ok_rss = mh / 1024 < 64 * 1e6 / 2 ** 20 and mh is not None   # 64 MB = 61.0 MiB
    o.append(f"Targets: peak RSS < 64 MB (61.0 MiB): {verdict(ok_rss)} ({mh / 1024:.1f} MiB = {mh * 1024 / 1e6:.1f} MB); "
             f"idle CPU ≈ 0: {verdict(mc <= 0.05)} ({mc:.2f} CPU-s in {r0['idle_window_s']:.0f} s). "
             f"Baseline log: `{r0['baseline_line']}`. Alerts raised (should be 0): "
             f"{', '.join(str(r['alerts_during_idle']) for r in runs)}; DB rows vs files in tree: "
             f"{', '.join(str(r['db_rows']) for r in runs)} / {r0['expected']}; "
             f"fimvt stopped cleanly: {', '.join(str(r['fimvt_exit']['clean']) for r in runs)}.")
    for r in runs:
        if r["fimvt_exit"]["warnings"]:
            o.append("")
            o.append(f"Run {r['run']} fimvt warnings: " + " / ".join(w[-160:] for w in r["fimvt_exit"]["warnings"][:3]))
    return o


def cmd_kthread_cpu(_a):
    """CPU-seconds used so far by kernel threads (writeback, loop, kworkers...)."""
    tot = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[6]) & 0x00200000:   # PF_KTHREAD
                tot += int(fields[11]) + int(fields[12])
    print(f"{tot / CLK_TCK:.2f}")


def cmd_report(a):
    runs = []
    for p in a.files:
        with open(p) as f:
            runs.append(json.load(f))
    note = f" — {a.note}" if a.note else ""
    fn = {"latency": report_latency, "burst": report_burst, "idle": report_idle}[a.part]
    print("\n".join(fn(runs, note)))


# --------------------------------------------------------------- main
def cli(doc):
    """The argument parser both bench helpers start from, and its sub-commands."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    return ap, ap.add_subparsers(dest="cmd", required=True)


def add_report(sub, parts, fn):
    """The `report` sub-command both helpers have: markdown from raw JSON files."""
    p = sub.add_parser("report")
    p.add_argument("--part", required=True, choices=parts)
    p.add_argument("--note", default="")
    p.add_argument("files", nargs="+")
    p.set_defaults(fn=fn)


def run(ap):
    """Runs the chosen sub-command. SIGTERM/SIGHUP become an exception, so the
    finally blocks stop the fimvt, stand-in or inotifywait they started."""
    a = ap.parse_args()

    def bye(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGHUP, bye)
    a.fn(a)


def main():
    ap, sub = cli(__doc__)

    def common(p):
        p.add_argument("--fimvt", required=True)
        p.add_argument("--work", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--run", type=int, default=1)
        p.add_argument("--settle", default="250ms")

    p = sub.add_parser("latency")
    common(p)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--reader", choices=["inotify", "poll"], default="inotify")
    p.add_argument("--poll-ms", type=float, default=0.2)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--grace", type=float, default=1.0)
    p.set_defaults(fn=cmd_latency)

    p = sub.add_parser("burst")
    common(p)
    p.add_argument("--src", required=True)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--grace", type=float, default=1.0)
    p.add_argument("--poll-ms", type=float, default=2)
    p.add_argument("--fs", choices=["loop", "plain"], default="loop",
                   help="loop: copy into a fresh loop-mounted ext4 per copy; plain: a folder under --work")
    p.set_defaults(fn=cmd_burst)

    p = sub.add_parser("idle")
    common(p)
    p.add_argument("--tree", required=True)
    p.add_argument("--idle", type=float, default=30)
    p.add_argument("--quiet", type=float, default=2)
    p.set_defaults(fn=cmd_idle)

    p = sub.add_parser("kthread-cpu")
    p.set_defaults(fn=cmd_kthread_cpu)

    add_report(sub, ["latency", "burst", "idle"], cmd_report)
    run(ap)


if __name__ == "__main__":
    main()
