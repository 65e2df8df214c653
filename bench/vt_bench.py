#!/usr/bin/env python3
"""VirusTotal benchmark helper for `fimvt run` (driven by bench/virustotal.sh).

usage:
  vt_bench.py gen     --dest DIR [--n 6000] [--dirs 60]
  vt_bench.py rate    --fimvt BIN --work DIR --tree DIR --out JSON [--secs 300] [--rpm 1000]
                      [--concurrency 4] [--delay-ms 30]
  vt_bench.py memory  --fimvt BIN --work DIR --tree DIR --out JSON --vt on|off [--secs 30] [--rpm 1]
  vt_bench.py latency --fimvt BIN --work DIR --tree DIR --out JSON [--n 2000] [--block-ms 600]
                      [--skip-ms 50] [--gap-ms 10] [--rpm 1000] [--concurrency 4] [--delay-ms 240]
  vt_bench.py report  --part rate|memory|latency [--note TEXT] JSON...

Every measuring sub-command starts its own stand-in (bench/vt_standin.py, on
127.0.0.1, a free port) when VirusTotal is on, and its own `fimvt run` on a
fresh data dir through bench/realtime.py's `Fimvt` class (under
/usr/bin/time, pid file, SIGTERM, "stopped cleanly" check); the alerts.log
reader of the latency part is realtime.py's (an inotify IN_MODIFY doorbell on
alerts.log + select(), then read only the new bytes).  The latency part runs
two fimvt side by side, VirusTotal off and busy, and measures them in
alternating blocks (see cmd_latency).  Raw samples go to a JSON file per run;
`report` turns them into markdown.  stdlib only.
"""

import json
import os
import random
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import realtime as rt  # noqa: E402  (bench/realtime.py: Fimvt, Tail, Inotify, proc_*, summary)

NS = 1_000_000_000
# realtime.py's ADDED_RE, for a whole chunk of lines at once (that starts and ends with "\n")
FIM_LINE_RE = re.compile(rb"\nFile '([^\n]*)' (added|modified|deleted)(?=\n)")
MS = 1_000_000
MIN_NS = 60 * NS
API_KEY = "bench-key"


def log(*a):
    print("[vt_bench.py]", *a, file=sys.stderr, flush=True)


now_ns = time.monotonic_ns


# --------------------------------------------------------------- backlog tree
def cmd_gen(a):
    """N small files with distinct content (so N distinct SHA-256) in DIRS folders.
    Deterministic; DEST.complete (next to DEST, so not watched) marks it done."""
    dest = os.path.abspath(a.dest)
    marker = dest + ".complete"
    params = {"n": a.n, "dirs": a.dirs, "seed": "vt-backlog/1"}
    try:
        with open(marker) as f:
            if json.load(f) == params:
                log(f"backlog tree {dest} exists ({a.n} files)")
                return
    except (OSError, ValueError):
        pass
    if os.path.lexists(dest):
        subprocess.run(["rm", "-rf", "--", dest], check=True)
    rng = random.Random(params["seed"])
    for d in range(a.dirs):
        os.makedirs(os.path.join(dest, f"d{d:03d}"))
    for i in range(a.n):
        body = f"fimvt vt bench file {i}\n".encode() + rng.randbytes(rng.randint(100, 1000))
        with open(os.path.join(dest, f"d{i % a.dirs:03d}", f"f{i:05d}.dat"), "wb") as f:
            f.write(body)
    with open(marker, "w") as f:
        json.dump(params, f)
    log(f"generated backlog tree {dest}: {a.n} files in {a.dirs} folders")


# --------------------------------------------------------------- stand-in
class Standin:
    def __init__(self, work, tag, delay_ms):
        self.log_path = os.path.join(work, f"standin-{tag}.log")
        self.summary_path = os.path.join(work, f"standin-{tag}.summary.json")
        port_file = os.path.join(work, f"standin-{tag}.port")
        self.err = open(os.path.join(work, f"standin-{tag}.stderr"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "vt_standin.py"), "--port", "0", "--port-file", port_file,
             "--log", self.log_path, "--summary", self.summary_path, "--delay-ms", str(delay_ms),
             "--api-key", API_KEY],
            stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err,
            # It plays a server on the other side of the Internet, whose CPU would
            # not be this machine's: at nice 19 it takes less from the fimvt it serves.
            preexec_fn=lambda: os.nice(19))
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the stand-in did not start")
            time.sleep(0.01)
        with open(port_file) as f:
            self.port = int(f.read())
        # for virustotal.sh's safety net (stops it by pid if we die)
        self.pidfile = os.path.join(work, "standin.pid")
        with open(self.pidfile, "w") as f:
            f.write(f"{self.proc.pid}\n")
        self._fd = None
        self._partial = b""
        self.reqs = []       # (mono_ns, sha, status, inflight)

    def poll(self):
        """Reads new log lines; returns the list of all requests so far."""
        if self._fd is None:
            self._fd = os.open(self.log_path, os.O_RDONLY | os.O_CLOEXEC)
        chunks = []
        while True:
            b = os.read(self._fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        if chunks:
            parts = (self._partial + b"".join(chunks)).split(b"\n")
            self._partial = parts.pop()
            for p in parts:
                f = p.split()
                self.reqs.append((int(f[0]), f[2].decode(), int(f[3]), int(f[4])))
        return self.reqs

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass
        self.poll()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            with open(self.summary_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None


# --------------------------------------------------------------- fimvt helpers
def write_config(path, data, dirs, settle="250ms", vt=None):
    # 0600: it holds the API key (fimvt warns about a world-readable key file)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(f'[general]\ndata_dir = "{data}"\n\n')
        for d in dirs:
            f.write(f'[[directories]]\npath = "{d}"\n\n')
        f.write(f'[realtime]\nsettle = "{settle}"\n')
        if vt:
            f.write(f'\n[virustotal]\nenabled = true\napi_key = "{API_KEY}"\n'
                    f'base_url = "http://127.0.0.1:{vt["port"]}"\n'
                    f'requests_per_minute = {vt["rpm"]}\ndaily_quota = {vt.get("quota", 10_000_000)}\n'
                    f'concurrency = {vt["concurrency"]}\nscan_baseline = true\n')


def db_query(data, sql):
    con = sqlite3.connect(f"file:{os.path.join(data, 'fimvt.db')}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def queue_depth(data):
    try:
        rows = db_query(data, "SELECT priority, count(*) FROM vt_queue GROUP BY priority")
    except sqlite3.Error as e:
        return {"error": str(e)}
    d = {str(p): n for p, n in rows}
    d["total"] = sum(n for _, n in rows)
    return d


def scalar(data, sql):
    try:
        return db_query(data, sql)[0][0]
    except sqlite3.Error as e:
        return f"error: {e}"


def wait_scan(fim, timeout):
    """(spawn -> line seen s, fimvt's own baseline seconds, the line)."""
    ns, line = fim.wait_for("scan complete", timeout)
    m = re.search(r"([0-9.]+) s\b", line)
    return ns / NS, (float(m.group(1)) if m else None), line.split("INFO", 1)[-1].strip()


def parse_integration(data):
    """integration.log: counts by status/outcome, fimvt's own latency_ms."""
    path = os.path.join(data, "integration.log")
    res = {"lines": 0, "status": {}, "outcome": {}, "latency_ms": [], "sha": {}}
    if not os.path.exists(path):
        return res
    with open(path, "rb") as f:
        for line in f:
            kv = dict(t.split(b"=", 1) for t in line.split() if b"=" in t)
            res["lines"] += 1
            s = kv.get(b"status", b"?").decode()
            o = kv.get(b"outcome", b"?").decode()
            res["status"][s] = res["status"].get(s, 0) + 1
            res["outcome"][o] = res["outcome"].get(o, 0) + 1
            if b"latency_ms" in kv:
                try:
                    res["latency_ms"].append(float(kv[b"latency_ms"]))
                except ValueError:
                    pass
            sha = kv.get(b"sha256", b"").decode()
            res["sha"][sha] = res["sha"].get(sha, 0) + 1
    dup = sum(1 for n in res["sha"].values() if n > 1)
    res["distinct_sha"] = len(res["sha"])
    res["sha_logged_twice"] = dup
    res["example_line"] = line.decode(errors="replace").strip() if res["lines"] else None
    del res["sha"]
    res["latency_summary"] = rt.summary(res.pop("latency_ms"))
    return res


def parse_alerts_json(data):
    """Counts alerts.json lines: FIM events and VirusTotal alerts (rule, file)."""
    path = os.path.join(data, "alerts.json")
    res = {"lines": 0, "fim": {}, "vt_rules": {}, "vt_files": {}, "bad_json": 0}
    if not os.path.exists(path):
        return res
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            res["lines"] += 1
            try:
                j = json.loads(line)
            except ValueError:
                res["bad_json"] += 1
                continue
            if j.get("location") == "virustotal":
                rid = str(j.get("rule", {}).get("id"))
                res["vt_rules"][rid] = res["vt_rules"].get(rid, 0) + 1
                src = (j.get("data", {}).get("virustotal", {}) or {}).get("source") or {}
                if src.get("file"):
                    res["vt_files"][src["file"]] = res["vt_files"].get(src["file"], 0) + 1
            else:
                ev = (j.get("syscheck") or {}).get("event", "?")
                res["fim"][ev] = res["fim"].get(ev, 0) + 1
    return res


def sliding_counts(ts, window):
    """For sorted ts: max over i of #{t_i <= t < t_i+window} and, per i, #{t_i < t <= t_i+window}
    (the window opening just after request i: the fewest a window can hold)."""
    n = len(ts)
    mx, after = 0, []
    j = 0
    for i in range(n):
        while j < n and ts[j] < ts[i] + window:
            j += 1
        mx = max(mx, j - i)
    j = 0
    for i in range(n):
        while j < n and ts[j] <= ts[i] + window:
            j += 1
        after.append(j - i - 1)
    return mx, after


def sliding_counts_all(ts, window):
    """Per i: #{t_i <= t < t_i+window}."""
    n, j, out = len(ts), 0, []
    for i in range(n):
        while j < n and ts[j] < ts[i] + window:
            j += 1
        out.append(j - i)
    return out


# --------------------------------------------------------------- rate
def cmd_rate(a):
    work = os.path.abspath(a.work)
    rt.fresh_dir(work)
    data = os.path.join(work, "data")
    cfg = os.path.join(work, "fimvt.toml")
    res = {"part": "rate", "rpm": a.rpm, "concurrency": a.concurrency, "delay_ms": a.delay_ms,
           "secs": a.secs, "tree": a.tree}
    sd = fim = None
    try:
        sd = Standin(work, "rate", a.delay_ms)
        write_config(cfg, data, [os.path.abspath(a.tree)],
                     vt={"port": sd.port, "rpm": a.rpm, "concurrency": a.concurrency})
        fim = rt.Fimvt(a.fimvt, cfg, work, "rate")
        res["ready_s"], res["baseline_own_s"], res["baseline_line"] = wait_scan(fim, 300)
        res["queue_after_baseline"] = queue_depth(data)
        log(f"[rate] baseline done; vt_queue {res['queue_after_baseline']}")
        deadline = time.monotonic() + 60
        while not sd.poll():
            if time.monotonic() > deadline:
                raise RuntimeError("no request reached the stand-in within 60 s of the baseline")
            time.sleep(0.01)
        t0 = sd.reqs[0][0]
        cpu0 = rt.proc_cpu_s(fim.pid)
        thr0, sd0 = rt.thread_cpu_s(fim.pid), rt.thread_cpu_s(sd.proc.pid)
        end = t0 + int(a.secs * NS)
        samples = []     # (s since first request, requests so far, fimvt CPU-s, VmRSS KiB)
        next_log = 30
        while now_ns() < end:
            time.sleep(min(1.0, max(0.0, (end - now_ns()) / NS)))
            n = len(sd.poll())
            st = rt.proc_status(fim.pid)
            el = (now_ns() - t0) / NS
            samples.append((round(el, 2), n, rt.proc_cpu_s(fim.pid) - cpu0, st["VmRSS"]))
            if el >= next_log:
                log(f"[rate] {el:.0f} s: {n} requests")
                next_log += 30
        res["queue_before_stop"] = queue_depth(data)
        res["fimvt_status_before_stop"] = rt.proc_status(fim.pid)
        res["fimvt_cpu_window_s"] = rt.proc_cpu_s(fim.pid) - cpu0
        thr1, sd1 = rt.thread_cpu_s(fim.pid), rt.thread_cpu_s(sd.proc.pid)
        res["fimvt_thread_cpu_window_s"] = {k: v - thr0.get(k, 0.0) for k, v in thr1.items()}
        res["standin_cpu_window_s"] = sum(sd1.values()) - sum(sd0.values())
        t_stop = now_ns()
        res["fimvt_exit"] = fim.stop()
        time.sleep(0.5)
        res["standin"] = sd.stop()
        reqs = sd.reqs
        sd = None
        res["queue_after_stop"] = queue_depth(data)
        res["db_vt_requests"] = scalar(data, "SELECT count(*) FROM vt_requests")
        try:   # fimvt's own record of when it sent each request (Unix ms)
            dbt = [t for (t,) in db_query(data, "SELECT time FROM vt_requests ORDER BY time")]
            res["db_sliding_max"] = sliding_counts(dbt, 60_000)[0]
            g = [dbt[k + a.rpm] - dbt[k] - 60_000 for k in range(len(dbt) - a.rpm)]
            res["db_margin_ms"] = {"min": min(g), "max": max(g), "at_zero_or_less": sum(1 for x in g if x <= 0),
                                   "pairs": len(g)} if g else None
        except sqlite3.Error as e:
            res["db_sliding_max"] = f"error: {e}"
        res["db_vt_verdicts"] = scalar(data, "SELECT count(*) FROM vt_verdicts")
        res["db_files"] = scalar(data, "SELECT count(*) FROM files")
        res["integration"] = parse_integration(data)
        al = parse_alerts_json(data)
        res["alerts"] = {k: v for k, v in al.items() if k != "vt_files"}
        res["vt_alert_files"] = len(al["vt_files"])
        res["vt_alert_files_twice"] = sum(1 for v in al["vt_files"].values() if v > 1)

        # ------------------------------------------------ the numbers
        ts = [r[0] - t0 for r in reqs if r[0] <= t_stop]     # ns since the first request
        res["requests_in_window"] = len(ts)
        res["requests_total_at_standin"] = len(reqs)
        minutes = int(a.secs // 60)
        per_min = [sum(1 for t in ts if k * MIN_NS <= t < (k + 1) * MIN_NS) for k in range(minutes)]
        res["per_minute"] = per_min
        res["tail_partial"] = {"from_s": minutes * 60, "to_s": a.secs,
                               "requests": sum(1 for t in ts if t >= minutes * MIN_NS)}
        mx, after = sliding_counts(ts, MIN_NS)
        res["sliding_max"] = mx
        # margin: how long after request k + 60 s request k+rpm arrived (negative: inside the window)
        g = sorted((ts[k + a.rpm] - ts[k] - MIN_NS) / MS for k in range(len(ts) - a.rpm))
        res["standin_margin_ms"] = {"min": g[0], "p1": rt.pct(g, 1), "p50": rt.pct(g, 50), "max": g[-1],
                                    "negative": sum(1 for x in g if x < 0), "pairs": len(g)} if g else None
        res["windows_over_limit"] = sum(1 for c in sliding_counts_all(ts, MIN_NS) if c > a.rpm)
        # windows (t_i, t_i+60 s] lying wholly in the steady part [60 s, minutes*60 s)
        steady_after = [c for t, c in zip(ts, after) if t >= MIN_NS and t + MIN_NS <= minutes * MIN_NS]
        res["sliding_min_steady"] = min(steady_after) if steady_after else None
        # the same over the whole run, windows starting after request 0 (for the first minute's burst)
        res["steady_minutes"] = minutes - 1
        steady = sum(per_min[1:])
        res["steady_requests"] = steady
        res["steady_fraction"] = steady / (a.rpm * (minutes - 1)) if minutes > 1 else None
        res["overall_rate_per_min"] = len(ts) / (a.secs / 60)
        # burst shape: per minute, how long the requests took from first to last, busiest second
        shape = []
        for k in range(minutes):
            m = [t for t in ts if k * MIN_NS <= t < (k + 1) * MIN_NS]
            if m:
                mx1, _ = sliding_counts(m, NS)
                shape.append({"first_s": round(m[0] / NS, 3), "last_s": round(m[-1] / NS, 3),
                              "span_s": round((m[-1] - m[0]) / NS, 3), "busiest_second": mx1})
        res["minute_shape"] = shape
        # cycle drift: when the k-th 1000 request went, vs k*60 s
        res["kth_block_start_s"] = [round(ts[k * a.rpm] / NS, 3) for k in range(len(ts) // a.rpm + 1)
                                    if k * a.rpm < len(ts)]
        inflight = [r[3] for r in reqs]
        res["max_in_flight_seen"] = max(inflight) if inflight else 0
        res["samples"] = samples
        res["fimvt_cpu_per_1000_requests_s"] = (res["fimvt_cpu_window_s"] / len(ts) * 1000) if ts else None
    finally:
        if fim is not None:
            fim.kill()
        if sd is not None:
            sd.stop()
    with open(a.out, "w") as f:
        json.dump(res, f)
    log(f"[rate] per minute {res.get('per_minute')}, sliding max {res.get('sliding_max')}, "
        f"steady fraction {res.get('steady_fraction')}")


# --------------------------------------------------------------- memory
def cmd_memory(a):
    work = os.path.abspath(a.work)
    rt.fresh_dir(work)
    data = os.path.join(work, "data")
    cfg = os.path.join(work, "fimvt.toml")
    tree = os.path.abspath(a.tree)
    res = {"part": "memory", "vt": a.vt, "rpm": a.rpm if a.vt == "on" else None, "secs": a.secs, "tree": tree,
           "delay_ms": a.delay_ms if a.vt == "on" else None}
    sd = fim = None
    try:
        if a.vt == "on":
            sd = Standin(work, f"mem-{a.vt}", a.delay_ms)
            write_config(cfg, data, [tree], vt={"port": sd.port, "rpm": a.rpm, "concurrency": a.concurrency})
        else:
            write_config(cfg, data, [tree])
        fim = rt.Fimvt(a.fimvt, cfg, work, f"mem-{a.vt}")
        rss_base = []
        deadline = time.monotonic() + 1800
        line = None
        while line is None:
            for l in fim.stderr_text().splitlines():
                if "scan complete" in l:
                    line = l
            if line is None:
                if fim.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("no baseline:\n" + fim.stderr_text())
                rss_base.append(rt.proc_status(fim.pid)["VmRSS"])
                time.sleep(0.05)
        res["baseline_wall_s"] = (now_ns() - fim.t_spawn) / NS
        m = re.search(r"([0-9.]+) s\b", line)
        res["baseline_own_s"] = float(m.group(1)) if m else None
        res["baseline_line"] = line.split("INFO", 1)[-1].strip()
        res["baseline_cpu_s"] = rt.proc_cpu_s(fim.pid)
        res["rss_max_sampled_during_baseline_kb"] = max(rss_base) if rss_base else None
        res["after_baseline"] = rt.proc_status(fim.pid)
        time.sleep(a.quiet)
        res["queue"] = queue_depth(data)
        log(f"[memory vt={a.vt}] baseline {res['baseline_own_s']} s; vt_queue {res['queue']}")
        st0, c0, t0 = rt.proc_status(fim.pid), rt.proc_cpu_s(fim.pid), now_ns()
        rss = []
        end = t0 + int(a.secs * NS)
        while now_ns() < end:
            time.sleep(min(1.0, max(0.0, (end - now_ns()) / NS)))
            rss.append(rt.proc_status(fim.pid)["VmRSS"])
        st1, c1, t1 = rt.proc_status(fim.pid), rt.proc_cpu_s(fim.pid), now_ns()
        w = (t1 - t0) / NS
        res.update({"window_s": w, "cpu_s": c1 - c0, "cpu_pct": 100 * (c1 - c0) / w,
                    "ctxt_per_s": (st1["ctxt"] - st0["ctxt"]) / w, "threads": st1["Threads"],
                    "vmhwm_kb": st1["VmHWM"], "vmrss_start_kb": st0["VmRSS"], "vmrss_end_kb": st1["VmRSS"],
                    "vmrss_min_kb": min(rss), "vmrss_max_kb": max(rss)})
        res["queue_end"] = queue_depth(data)
        res["fimvt_exit"] = fim.stop()
        if sd is not None:
            res["standin"] = sd.stop()
            sd = None
        res["db_files"] = scalar(data, "SELECT count(*) FROM files")
        res["db_files_hashed"] = scalar(data, "SELECT count(*) FROM files WHERE sha256 IS NOT NULL")
        res["db_distinct_sha256"] = scalar(data, "SELECT count(DISTINCT sha256) FROM files")
        res["queue_after_stop"] = queue_depth(data)
        res["db_bytes"] = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data)
                              if f.startswith("fimvt.db"))
        res["integration"] = parse_integration(data)
    finally:
        if fim is not None:
            fim.kill()
        if sd is not None:
            sd.stop()
    with open(a.out, "w") as f:
        json.dump(res, f)
    log(f"[memory vt={a.vt}] HWM {res.get('vmhwm_kb')} KiB, RSS {res.get('vmrss_end_kb')} KiB, "
        f"queue {res.get('queue', {}).get('total')}")


# --------------------------------------------------------------- latency
class Side:
    """One of the latency part's two fimvt: `idle` with `[virustotal]` off, `busy`
    with it on and the backlog being looked up. Each watches the backlog tree and an
    empty folder of its own, with its own data folder and alerts.log reader."""

    def __init__(self, a, work, vt, tree, sd):
        self.vt = vt
        self.work = os.path.join(work, vt)
        self.watched, self.data = os.path.join(self.work, "watched"), os.path.join(self.work, "data")
        os.makedirs(self.watched)
        cfg = os.path.join(self.work, "fimvt.toml")
        busy = sd is not None
        write_config(cfg, self.data, [tree, self.watched],
                     vt={"port": sd.port, "rpm": a.rpm, "concurrency": a.concurrency} if busy else None)
        self.res = {"part": "latency", "vt": vt, "run": a.run, "n": a.n, "block_ms": a.block_ms, "skip_ms": a.skip_ms,
                    "gap_ms": a.gap_ms, "timeout_s": a.timeout, "tree": tree,
                    "rpm": a.rpm if busy else None, "concurrency": a.concurrency if busy else None,
                    "delay_ms": a.delay_ms if busy else None, "busy_after": a.busy_after if busy else None}
        self.fim = rt.Fimvt(a.fimvt, cfg, self.work, f"lat-{vt}{a.run}")
        self.res["ready_s"], self.res["baseline_own_s"], self.res["baseline_line"] = wait_scan(self.fim, 120)
        os.makedirs(self.data, exist_ok=True)
        self.ino = self.tail = None
        self.alerts, self.others = {}, {}
        self.alert_headers = 0
        self.created = []   # (path, t_close, sha256, measured, block)
        self.windows = []   # (start ns, end ns) of this side's blocks

    def open_reader(self):
        # The doorbell is alerts.log itself, not the data folder: a folder watch also
        # rang for every WAL, alerts.json and integration.log write, several hundred
        # times a second with VirusTotal busy (a few dozen idle), and each ring cost
        # this reader a wake-up on the 2 CPUs fimvt runs on: the observer loading the
        # busy case only. The file exists from fimvt's start (the sink creates it).
        self.ino = rt.Inotify(os.path.join(self.data, "alerts.log"), rt.IN_MODIFY)
        self.tail = rt.Tail(os.path.join(self.data, "alerts.log"))
        self.tail.lines()   # skip what is there (baseline VirusTotal alerts in the busy case)

    def read(self):
        self.ino.drain()
        data = b"\n" + b"\n".join(self.tail.lines()) + b"\n"
        # Stamped once the bytes are in hand: the doorbell may have been rung by
        # an earlier write (VirusTotal alerts, the WAL), and an alert that landed
        # after that ring but before this read must not count as seen earlier.
        t = now_ns()
        # One C-speed pass over the new bytes, keyed on a literal (a `^` pattern
        # tries every line start: 3x slower), not a Python loop over every line: a
        # group of VirusTotal alerts is thousands of lines, and parsing them one by
        # one kept this reader busy for milliseconds, so a FIM alert landing
        # meanwhile was seen late (the reader's delay, not fimvt's).
        for m in FIM_LINE_RE.finditer(data):
            p = os.fsdecode(m.group(1))
            if m.group(2) == b"added":
                self.alerts.setdefault(p, []).append(t)
            else:
                self.others.setdefault(p, []).append(m.group(2).decode())
        self.alert_headers += data.count(b"** Alert")   # every alert's first line (FIM and VirusTotal)

    def results(self, a):
        """This side's samples and checks, once its fimvt has stopped."""
        res = self.res
        lat, lost, late, dup, in_order, blocks = [], [], [], 0, [], {}
        for path, t_close, _, measured, block in self.created:
            ts = self.alerts.get(path, [])
            dup += max(0, len(ts) - 1)
            if not measured:
                continue
            if not ts:
                lost.append(path)
                in_order.append(None)
            elif ts[0] - t_close > a.timeout * NS:
                late.append(path)
                in_order.append(None)
            else:
                ms = (ts[0] - t_close) / MS
                lat.append(ms)
                in_order.append(ms)
                blocks.setdefault(block, []).append(ms)
        ours = {c[0] for c in self.created}
        al = parse_alerts_json(self.data)
        rows = rt.db_rows(self.data)
        res.update({
            "elapsed_s": sum(e - s for s, e in self.windows) / NS, "created": len(self.created),
            "fimvt_ms": lat, "fimvt_ms_in_order": in_order, "blocks": [blocks[b] for b in sorted(blocks)],
            # CLOCK_MONOTONIC ns, comparable with timestamps fimvt or strace print
            "close_ns": [c[1] for c in self.created if c[3]],
            "lost": len(lost), "late": len(late), "lost_examples": lost[:5], "duplicates": dup,
            "other_events_for_ours": sum(len(v) for p, v in self.others.items() if p in ours),
            "alert_lines_read_during_run": self.alert_headers,
            "json_fim": al["fim"], "json_vt_rules": al["vt_rules"], "json_bad": al["bad_json"],
            "db_rows_ours": sum(1 for p in ours if p in rows),
            "db_hash_mismatch": sum(1 for p, _, h, _, _ in self.created if p in rows and rows[p] != h),
            "vt_alerts_for_ours": sum(1 for p in ours if p in al["vt_files"]),
            "vt_alerts_for_ours_twice": sum(1 for p in ours if al["vt_files"].get(p, 0) > 1),
        })
        return res

    def busy_results(self, a, reqs):
        """How busy VirusTotal was during this side's blocks, and how soon the new
        files' own (realtime priority) hashes were asked."""
        import bisect
        res = self.res
        rts = [r[0] for r in reqs]
        res["busy_window_s"] = sum(e - s for s, e in self.windows) / NS
        res["requests_during_window"] = sum(bisect.bisect_right(rts, e) - bisect.bisect_left(rts, s)
                                            for s, e in self.windows)
        res["requests_per_s_during_window"] = res["requests_during_window"] / max(1e-9, res["busy_window_s"])
        # per measured sample: requests that arrived at the stand-in between close() and the alert,
        # and whether any request was in flight (arrived < delay before) at close()
        d = int(a.delay_ms * MS)
        overlap = busy_at_close = 0
        for path, t_close, _, measured, _ in self.created:
            if not measured or path not in self.alerts:
                continue
            t_al = self.alerts[path][0]
            if bisect.bisect_right(rts, t_al) > bisect.bisect_left(rts, t_close - d):
                overlap += 1
            if bisect.bisect_right(rts, t_close) > bisect.bisect_left(rts, t_close - d):
                busy_at_close += 1
        res["samples_overlapping_requests"] = overlap
        res["samples_with_request_in_flight_at_close"] = busy_at_close
        first_req, per_sha = {}, {}
        for t, sha, _, _ in reqs:
            first_req.setdefault(sha, t)
            per_sha[sha] = per_sha.get(sha, 0) + 1
        to_req = [(first_req[sha] - t_close) / MS for _, t_close, sha, m, _ in self.created if m and sha in first_req]
        res["close_to_vt_request_ms"] = rt.summary(to_req)
        res["ours_asked"] = sum(1 for c in self.created if c[2] in first_req)
        res["ours_asked_twice"] = sum(1 for c in self.created if per_sha.get(c[2], 0) > 1)
        res["integration"] = parse_integration(self.data)


def cmd_latency(a):
    """Both cases in one run, in alternating blocks of creations: machine-wide
    drift (these machines are shared) moves a block's median by half over tens of
    seconds, so idle and busy measured in separate runs differed by as much as the
    effect. While an idle block runs, the busy fimvt and the stand-in are stopped
    (SIGSTOP), as if VirusTotal were off; while a busy block runs, the idle fimvt
    is there but gets no events."""
    work = os.path.abspath(a.work)
    rt.fresh_dir(work)
    tree = os.path.abspath(a.tree)
    sd = None
    sides = {}
    paused = []

    def pause_busy(stop):
        sig = signal.SIGSTOP if stop else signal.SIGCONT
        for pid in (sides["busy"].fim.pid, sd.proc.pid):
            os.kill(pid, sig)
        paused[:] = [True] if stop else []

    try:
        sd = Standin(work, f"lat{a.run}", a.delay_ms)
        # idle first: its baseline scan is not slowed by the busy one's lookups
        sides["idle"] = Side(a, work, "idle", tree, None)
        sides["busy"] = busy = Side(a, work, "busy", tree, sd)
        busy.res["queue_after_baseline"] = queue_depth(busy.data)
        deadline = time.monotonic() + 60
        while len(sd.poll()) < a.busy_after:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {a.busy_after} requests within 60 s")
            time.sleep(0.005)
        for s in sides.values():
            s.open_reader()
        by_fd = {s.ino.fd: s for s in sides.values()}

        def pump(timeout_s):
            ready, _, _ = select.select(list(by_fd), [], [], timeout_s)
            for fd in ready:
                by_fd[fd].read()

        rng = random.Random(f"vt-latency/{a.run}")
        import hashlib
        measured = {"idle": 0, "busy": 0}
        pause_busy(True)
        b = 0
        # Blocks are timed, not counted, so they last as long with creations back to
        # back as spaced; pairs of blocks until each case has its `n`.
        while min(measured.values()) < a.n or b % 2:
            s = sides["idle" if b % 2 == 0 else "busy"]
            if s is busy:
                pause_busy(False)
            start = now_ns()
            # Creations begun in a block's first `skip_ms` are not measured: the busy
            # fimvt and the stand-in catch up on the timers that expired while stopped.
            skip_end, end = start + int(a.skip_ms * MS), start + int(a.block_ms * MS)
            i = 0
            while (t_begin := now_ns()) < end:
                path = os.path.join(s.watched, f"lat-{s.vt}-r{a.run}-b{b:03d}-{i:05d}.dat")
                i += 1
                body = rng.randbytes(rng.randint(64, 4096))
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                os.write(fd, body)
                os.close(fd)
                t_close = now_ns()
                m = t_begin >= skip_end
                measured[s.vt] += m
                s.created.append((path, t_close, hashlib.sha256(body).hexdigest(), m, b))
                deadline = t_close + int(a.timeout * NS)
                while path not in s.alerts:
                    left = (deadline - now_ns()) / NS
                    if left <= 0:
                        break
                    pump(left)
                # Spaced creations (--gap-ms): the reader keeps reading meanwhile, so
                # VirusTotal alert lines do not pile up in front of the next sample.
                gap_end = t_close + int(a.gap_ms * MS)
                while (left := (gap_end - now_ns()) / NS) > 0:
                    pump(left)
            s.windows.append((start, now_ns()))
            if s is busy:
                pause_busy(True)
            b += 1
        pause_busy(False)
        grace_end = now_ns() + int(a.grace * NS)
        while now_ns() < grace_end:
            pump(max(0.0, (grace_end - now_ns()) / NS))
        # Every new file's hash is looked up, at realtime priority: wait for ours.
        ours_sha = {c[2] for c in busy.created}
        deadline = time.monotonic() + a.vt_wait
        while time.monotonic() < deadline and not ours_sha <= {r[1] for r in sd.poll()}:
            time.sleep(0.1)
        time.sleep(0.5)
        reqs = sd.poll()
        busy.res["queue_before_stop"] = queue_depth(busy.data)
        for s in sides.values():
            s.res["fimvt_status_before_stop"] = rt.proc_status(s.fim.pid)
            s.res["fimvt_exit"] = s.fim.stop()
        busy.res["standin"] = sd.stop()
        sd = None
        out = [sides["idle"].results(a), busy.results(a)]
        busy.busy_results(a, reqs)
    finally:
        if paused and sd is not None:
            pause_busy(False)
        for s in sides.values():
            if s.ino is not None:
                s.ino.close()
            s.fim.kill()
        if sd is not None:
            sd.stop()
    with open(a.out, "w") as f:
        json.dump(out, f)
    for r in out:
        s = rt.summary(r["fimvt_ms"]) or {"p50": None, "p99": None}
        log(f"[latency vt={r['vt']} run {a.run}] p50={rt.f3(s['p50'])} ms p99={rt.f3(s['p99'])} ms "
            f"lost={r['lost']} dup={r['duplicates']}")


# --------------------------------------------------------------- report
f3, mib, verdict = rt.f3, rt.mib, rt.verdict


def fmt_d(d):
    return ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) if d else "none"


def report_rate(runs, note):
    r = runs[0]
    o = []
    o.append(f"### 1. Sustained request rate: {r['queue_after_baseline'].get('total')} hashes queued, "
             f"requests_per_minute = {r['rpm']}, concurrency = {r['concurrency']}{note}")
    o.append("")
    o.append(f"fimvt's baseline of {r['db_files']} small files with distinct content (`scan_baseline = true`) "
             f"queues one lookup per file; the stand-in answers every request after {r['delay_ms']:g} ms "
             f"(75% 200 report, 25% 404). Clock: the stand-in's arrival time of each request "
             f"(CLOCK_MONOTONIC), t = 0 at the first request; measured for {r['secs']:g} s, then SIGTERM. "
             f"Baseline: `{r['baseline_line']}`.")
    o.append("")
    o.append("| minute (since the first request) | requests | % of the allowed rate | first → last request in it (s) | busiest 1 s |")
    o.append("|---|---:|---:|---:|---:|")
    for k, n in enumerate(r["per_minute"]):
        sh = r["minute_shape"][k] if k < len(r["minute_shape"]) else None
        span = f"{sh['first_s']:.1f} → {sh['last_s']:.1f} ({sh['span_s']:.1f} s)" if sh else ""
        o.append(f"| {k + 1}{' (start-up)' if k == 0 else ''} | {n} | {100 * n / r['rpm']:.1f}% | {span} | "
                 f"{sh['busiest_second'] if sh else ''} |")
    tp = r["tail_partial"]
    if tp["to_s"] > tp["from_s"]:
        o.append(f"| {tp['from_s']}–{tp['to_s']:g} s (partial) | {tp['requests']} | | | |")
    o.append("")
    frac = r["steady_fraction"]
    ok_max = r["sliding_max"] <= r["rpm"]
    ok_frac = frac is not None and frac >= 0.95
    o.append(f"- **Most requests in any 60-s window** (sliding, every window starting at a request, "
             f"[t, t+60 s)): **{r['sliding_max']}** (limit {r['rpm']}): {verdict(ok_max)}. The same from "
             f"fimvt's own `vt_requests` log (send times, ms): {r.get('db_sliding_max')}.")
    sm, dm = r.get("standin_margin_ms"), r.get("db_margin_ms")
    if sm and dm:
        o.append(f"- Margin = (time of request k+{r['rpm']}) − (time of request k) − 60 s, over all "
                 f"{sm['pairs']} pairs: at the stand-in (arrival) min {sm['min']:.3f} ms, p1 {sm['p1']:.3f}, "
                 f"p50 {sm['p50']:.3f}, max {sm['max']:.1f} ms, negative for {sm['negative']} pairs "
                 f"({r.get('windows_over_limit')} sliding windows over {r['rpm']}); in fimvt's log (send, ms "
                 f"resolution) min {dm['min']} ms, ≤ 0 for {dm['at_zero_or_less']} pairs. fimvt frees a slot "
                 f"61 s after the request that used it: the 1-s margin absorbs the arrival jitter (loopback "
                 f"and a Python server here, tens of ms over the Internet) that would otherwise let a server "
                 f"counting per sliding 60-s window see more than {r['rpm']}.")
    o.append(f"- **Achieved fraction of the allowed rate**, steady part (minutes 2–{len(r['per_minute'])}, "
             f"{r['steady_requests']} requests in {r['steady_minutes']} min): "
             f"**{'n/a' if frac is None else f'{100 * frac:.1f}%'}** "
             f"(target ≥ 95%): {verdict(ok_frac)}. Fewest requests in any sliding 60-s window lying wholly "
             f"in the steady part: {r['sliding_min_steady']}. Whole run: {r['overall_rate_per_min']:.0f}/min.")
    o.append(f"- Shape: the limiter grants the minute's whole budget as fast as concurrency × answer time allows, "
             f"then waits for the oldest request to leave the 60-s window, so requests come in one burst per "
             f"minute (see the span column), not evenly spread. Start of each block of {r['rpm']} requests (s): "
             f"{', '.join(f'{x:.3f}' for x in r['kth_block_start_s'])}.")
    st = r.get("standin") or {}
    integ = r["integration"]
    ls = integ.get("latency_summary") or {}
    o.append(f"- Stand-in: {st.get('requests')} requests ({fmt_d(st.get('by_status', {}))}), "
             f"{st.get('distinct_hashes')} distinct hashes, **{st.get('hashes_asked_more_than_once')} asked more "
             f"than once** ({st.get('extra_requests_for_repeated_hashes')} extra requests), most in flight at "
             f"once {st.get('max_in_flight')} (concurrency {r['concurrency']}), {st.get('connections')} TCP "
             f"connections.")
    o.append(f"- fimvt: integration.log {integ['lines']} lines (status {fmt_d(integ['status'])}; outcome "
             f"{fmt_d(integ['outcome'])}; {integ.get('sha_logged_twice')} hashes logged twice), latency_ms as "
             f"fimvt saw it p50 {ls.get('p50')} / p99 {ls.get('p99')} / max {ls.get('max')}; VirusTotal alerts "
             f"in alerts.json: {fmt_d(r['alerts']['vt_rules'])} for {r['vt_alert_files']} distinct files "
             f"({r['vt_alert_files_twice']} files alerted twice); FIM alerts: {fmt_d(r['alerts']['fim'])}; "
             f"`vt_requests` rows {r['db_vt_requests']}, `vt_verdicts` rows {r['db_vt_verdicts']}.")
    qa = r["queue_after_stop"]
    pending = qa.get("total", 0) - qa.get("3", 0)
    o.append(f"- `vt_queue`: {r['queue_after_baseline'].get('total')} after the baseline "
             f"({fmt_d({k: v for k, v in r['queue_after_baseline'].items() if k != 'total'})} by priority), "
             f"{r['queue_before_stop'].get('total')} just before SIGTERM, {qa.get('total')} after "
             f"({fmt_d({k: v for k, v in qa.items() if k != 'total'})}; priority 3 = 404s queued for their "
             f"re-check in 1 h). Still to ask: {pending}; queued − answered (integration.log lines) = "
             f"{r['queue_after_baseline'].get('total', 0) - integ['lines']} (a difference is requests "
             f"abandoned in flight at SIGTERM, which stay queued).")
    fe = r["fimvt_exit"]
    o.append(f"- fimvt CPU over the {r['secs']:g} s: {r['fimvt_cpu_window_s']:.2f} CPU-s "
             f"({r['fimvt_cpu_per_1000_requests_s']:.2f} CPU-s per 1000 lookups); peak RSS "
             f"{mib(fe['time_maxrss_kb'])} MiB; stopped cleanly: {fe['clean']} (exit {fe['exit']}, "
             f"{fe['stop_s']:.3f} s after SIGTERM).")
    n = r["requests_in_window"]
    if n and r.get("fimvt_thread_cpu_window_s"):
        th = sorted(((v, k) for k, v in r["fimvt_thread_cpu_window_s"].items() if v >= 0.0005), reverse=True)
        o.append(f"- CPU per lookup, by thread (schedstat): fimvt {sum(v for v, _ in th) / n * 1e6:.0f} µs = "
                 + " + ".join(f"{k} {v / n * 1e6:.0f}" for v, k in th)
                 + f"; the stand-in (rig, not fimvt) {r['standin_cpu_window_s'] / n * 1e6:.0f} µs.")
    if fe["warnings"]:
        o.append(f"- fimvt warnings/errors ({len(fe['warnings'])}, first 3): "
                 + " / ".join(f"`{w[-200:]}`" for w in fe["warnings"][:3]))
    return o


def report_memory(runs, note):
    off = [r for r in runs if r["vt"] == "off"]
    on = [r for r in runs if r["vt"] == "on"]
    o = []
    r0 = runs[0]
    o.append(f"### 2. Memory with ~100,000 hashes queued (large tree){note}")
    o.append("")
    rpm = on[0]["rpm"] if on else None
    o.append(f"fimvt on `{r0['tree']}` with an empty data dir; baseline (warm page cache), then {r0['secs']:g} s "
             f"of watching. VirusTotal on: `scan_baseline = true`, `requests_per_minute = {rpm}` (so the queue "
             f"stays full), stand-in answering after {on[0]['delay_ms'] if on else '-'} ms. Peak RSS = VmHWM, "
             f"steady RSS = VmRSS at the end (min–max of 1 s samples) from /proc/PID/status.")
    o.append("")
    o.append("| VirusTotal | `vt_queue` rows | baseline (s) | baseline CPU (s) | peak RSS VmHWM (MiB) | steady RSS VmRSS (MiB) | "
             "CPU while watching (%) | threads | /usr/bin/time max RSS (MiB) | fimvt.db(+wal) (MB) | requests sent | clean stop |")
    o.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in off + on:
        q = r["queue"].get("total") if r["vt"] == "on" else "–"
        reqs = (r.get("standin") or {}).get("requests", "–") if r["vt"] == "on" else "–"
        o.append(f"| {r['vt']} | {q} | {f3(r['baseline_own_s'])} | {r['baseline_cpu_s']:.2f} | {mib(r['vmhwm_kb'])} | "
                 f"{mib(r['vmrss_end_kb'])} ({mib(r['vmrss_min_kb'])}–{mib(r['vmrss_max_kb'])}) | "
                 f"{r['cpu_pct']:.2f} | {r['threads']} | {mib(r['fimvt_exit']['time_maxrss_kb'])} | "
                 f"{r['db_bytes'] / 1e6:.1f} | {reqs} | {r['fimvt_exit']['clean']} |")
    o.append("")
    if off and on:
        dh = (rt.median([r["vmhwm_kb"] for r in on]) - rt.median([r["vmhwm_kb"] for r in off]))
        dr = (rt.median([r["vmrss_end_kb"] for r in on]) - rt.median([r["vmrss_end_kb"] for r in off]))
        worst = max(dh, dr)
        ok = worst * 1024 < 50e6
        o.append(f"**Extra memory with VirusTotal on and {on[0]['queue'].get('total')} hashes queued: peak "
                 f"{dh / 1024:+.1f} MiB ({dh * 1024 / 1e6:+.1f} MB), steady {dr / 1024:+.1f} MiB "
                 f"({dr * 1024 / 1e6:+.1f} MB)** (target < 50 MB): {verdict(ok)}.")
        o.append("")
        for r in on:
            o.append(f"`vt_queue` rows = distinct hashes − hashes already answered ({r['integration']['lines']} "
                     f"request(s) at 1/min). "
                     f"`vt_queue` by priority (0 realtime, 1 scheduled, 2 baseline, 3 re-check) after the baseline: "
                     f"{fmt_d({k: v for k, v in r['queue'].items() if k != 'total'})}; at the end "
                     f"{r['queue_end'].get('total')}, after SIGTERM {r['queue_after_stop'].get('total')}; "
                     f"`files` rows {r['db_files']} ({r.get('db_files_hashed')} with a SHA-256, "
                     f"{r.get('db_distinct_sha256')} distinct); integration.log {r['integration']['lines']} lines.")
    for r in runs:
        if r["fimvt_exit"]["warnings"]:
            o.append("")
            o.append(f"VirusTotal {r['vt']}: fimvt warnings/errors: "
                     + " / ".join(f"`{w[-200:]}`" for w in r["fimvt_exit"]["warnings"][:3]))
    return o


def noise_floor(idle_blocks, splits=500):
    """How far apart two halves of the idle blocks are, as busy/idle would be with
    no effect at all: the 5th-95th percentile, over random even splits, of each
    statistic's ratio. None with fewer than 4 blocks."""
    n = len(idle_blocks)
    if n < 4:
        return None
    rng = random.Random("noise-floor")
    ratios = {"p50": [], "p99": [], "mean": []}
    for _ in range(splits):
        half = set(rng.sample(range(n), n // 2))
        a = rt.summary([v for i in half for v in idle_blocks[i]])
        b = rt.summary([v for i in range(n) if i not in half for v in idle_blocks[i]])
        for k in ratios:
            ratios[k].append(b[k] / a[k])
    span = {}
    for k, v in ratios.items():
        v.sort()
        span[k] = (v[int(0.05 * (len(v) - 1))], v[int(0.95 * (len(v) - 1))])
    return {"splits": splits, "blocks": n, "span": span}


def report_latency(runs, note):
    idle = [r for r in runs if r["vt"] == "idle"]
    busy = [r for r in runs if r["vt"] == "busy"]
    o = []
    b0 = busy[0] if busy else None
    pace = b0["concurrency"] * 1000 / b0["delay_ms"] if b0 else 0
    o.append(f"### 3. FIM alert latency with VirusTotal idle (disabled) vs busy{note}")
    o.append("")
    r0 = runs[0]
    o.append(f"Two fimvt run side by side, each watching the {r0['tree'].rsplit('/', 1)[-1]} backlog tree and an "
             f"empty folder of its own: idle = `[virustotal]` disabled; "
             + (f"busy = enabled, `scan_baseline = true` (the backlog queued), `requests_per_minute = "
                f"{b0['rpm']}`, concurrency {b0['concurrency']}, the stand-in (at nice 19) answering after "
                f"{b0['delay_ms']:g} ms, so lookups go at up to concurrency / answer time ≈ {pace:.1f}/s = "
                f"{pace * 60:,.0f}/min"
                + (" (the key's limit)" if abs(pace * 60 - b0["rpm"]) < 1 else
                   f" (the limit, {b0['rpm']:,}/min, is not reached)" if pace * 60 < b0["rpm"] else
                   f" until the limit of {b0['rpm']:,} in any 60 s binds")
                + "; the creations start once "
                f"{b0.get('busy_after', 'some')} lookups have reached the stand-in. Each new file's hash is queued "
                f"at realtime priority, so it is looked up too. " if b0 else "")
             + f"After both baselines, single-file creations in blocks of {r0['block_ms']:g} ms, the cases taking "
             f"turns block by block; creations begun in the first {r0['skip_ms']:g} ms of a block are not "
             f"measured. While an idle block runs, "
             f"the busy fimvt and the stand-in are stopped (SIGSTOP), as if VirusTotal were off; while a busy "
             f"block runs, the idle fimvt gets no events. Taking turns is what makes the two comparable: on these "
             f"shared machines a block's median drifts by half over tens of seconds, and idle and busy measured "
             f"in separate runs differed by as much as the effect sought. A creation: open(O_CREAT|O_EXCL) + "
             f"write 64–4096 random bytes + close(), t0 right after close(), then wait for the file's "
             f"`File '…' added` line in that fimvt's alerts.log (an inotify doorbell on alerts.log itself "
             f"(IN_MODIFY) + select(), new bytes only, one regex pass per read) before the next"
             + (f", and at least {r0['gap_ms']:g} ms from one close() to the next creation"
                if r0.get("gap_ms") else ", back to back") + ". Percentiles nearest-rank.")
    o.append("")
    o.append("| case | run | n | min | p50 | p90 | p99 | max | mean | lost | late | dup | VirusTotal requests during its blocks |")
    o.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")

    def row(label, run, vals, rs):
        s = rt.summary(vals)
        lost = sum(r["lost"] for r in rs)
        late = sum(r["late"] for r in rs)
        dup = sum(r["duplicates"] for r in rs)
        if rs[0]["vt"] == "busy":
            nreq = sum(r["requests_during_window"] for r in rs)
            w = sum(r["busy_window_s"] for r in rs)
            busy_txt = f"{nreq} in {w:.2f} s ({nreq / w:.0f}/s)"
        else:
            busy_txt = "–"
        if s is None:
            o.append(f"| {label} | {run} | 0 | | | | | | | {lost} | {late} | {dup} | {busy_txt} |")
        else:
            o.append(f"| {label} | {run} | {s['n']} | {f3(s['min'])} | {f3(s['p50'])} | {f3(s['p90'])} | "
                     f"{f3(s['p99'])} | {f3(s['max'])} | {f3(s['mean'])} | {lost} | {late} | {dup} | {busy_txt} |")
        return s

    for r in sorted(runs, key=lambda r: (r["vt"] != "idle", r["run"])):
        row(r["vt"], r["run"], r["fimvt_ms"], [r])
    si = row("**idle, all runs**", "", [v for r in idle for v in r["fimvt_ms"]], idle) if idle else None
    sb = row("**busy, all runs**", "", [v for r in busy for v in r["fimvt_ms"]], busy) if busy else None
    o.append("")
    if si and sb:
        r50, r99 = sb["p50"] / si["p50"], sb["p99"] / si["p99"]
        d50, d99 = sb["p50"] - si["p50"], sb["p99"] - si["p99"]
        ok10 = r50 <= 1.10 and r99 <= 1.10
        o.append(f"**busy / idle: p50 {r50:.2f}× ({d50 * 1000:+.0f} µs), p99 {r99:.2f}× ({d99 * 1000:+.0f} µs), "
                 f"mean {sb['mean'] / si['mean']:.2f}× ({(sb['mean'] - si['mean']) * 1000:+.0f} µs).** "
                 f"Target busy within 10% of idle: {verdict(ok10)}"
                 + (" — but note the idle p50 is "
                    f"{si['p50'] * 1000:.0f} µs: 10% is {si['p50'] * 100:.0f} µs, about the wake-up jitter of the "
                    "reader process, so the absolute differences are the meaningful figure (both far below any "
                    "alerting-relevant latency)." if si["p50"] < 1 else "."))
        o.append("")
        floor = noise_floor([b for r in idle for b in r["blocks"]])
        if floor:
            o.append(f"Noise floor, idle against idle (the {floor['blocks']} idle blocks split at random into two "
                     f"halves, {floor['splits']} splits; 5th–95th percentile of the half/half ratio): "
                     + ", ".join(f"{k} {lo:.2f}–{hi:.2f}×" for k, (lo, hi) in floor["span"].items())
                     + ". The same fimvt with VirusTotal off differs from itself this much; a busy/idle "
                     "ratio inside that span is not an effect this run can show.")
            o.append("")
    for r in busy:
        c = r.get("close_to_vt_request_ms") or {}
        o.append(f"Busy run {r['run']}: {r['requests_during_window']} lookups reached the stand-in during the "
                 f"{r['busy_window_s']:.2f} s of its busy blocks; {r['samples_overlapping_requests']}/{len(r['fimvt_ms'])} "
                 f"samples had a lookup arrive or in flight between close() and the alert, "
                 f"{r['samples_with_request_in_flight_at_close']} had one in flight at close(); alerts.log alert "
                 f"headers read during the run (FIM + VirusTotal): {r['alert_lines_read_during_run']}. The "
                 f"new files' own lookups (realtime priority): {r['ours_asked']}/{r['created']} asked, "
                 f"close() → request at the stand-in p50 {f3(c.get('p50'))} / p99 {f3(c.get('p99'))} / max "
                 f"{f3(c.get('max'))} ms (they are asked ahead of the backlog but drain at about "
                 f"concurrency / answer time = {r['concurrency']} / {r['delay_ms']:g} ms ≈ "
                 f"{r['concurrency'] * 1000 / r['delay_ms']:.0f}/s, so the last of a fast series waits seconds); asked twice: {r['ours_asked_twice']}; VirusTotal alerts for them: "
                 f"{r['vt_alerts_for_ours']}/{r['created']} ({r['vt_alerts_for_ours_twice']} twice). "
                 f"`vt_queue` after the baseline {r['queue_after_baseline'].get('total')}, before SIGTERM "
                 f"{r['queue_before_stop'].get('total')}.")
        o.append("")
    chk = []
    for r in runs:
        fe = r["fimvt_exit"]
        chk.append(f"{r['vt']} run {r['run']}: {r['created']} files in {r['elapsed_s']:.2f} s, lost {r['lost']}, "
                   f"late {r['late']}, duplicate `added` {r['duplicates']}, other events for ours "
                   f"{r['other_events_for_ours']}; alerts.json FIM {fmt_d(r['json_fim'])}, VirusTotal "
                   f"{fmt_d(r['json_vt_rules'])}; DB rows for ours {r['db_rows_ours']}/{r['created']} "
                   f"(SHA-256 mismatch {r['db_hash_mismatch']}); clean stop {fe['clean']} (exit {fe['exit']}), "
                   f"peak RSS {mib(fe['time_maxrss_kb'])} MiB, CPU {fe['time_cpu_s']:.2f} s"
                   + (f"; warnings: {' / '.join(w[-160:] for w in fe['warnings'][:3])}" if fe["warnings"] else "")
                   + ".")
    o.append("Checks — " + " ".join(chk))
    return o


def cmd_report(a):
    runs = []
    for p in a.files:
        with open(p) as f:
            r = json.load(f)
        # a latency run holds both cases
        runs.extend(r if isinstance(r, list) else [r])
    note = f" — {a.note}" if a.note else ""
    fn = {"rate": report_rate, "memory": report_memory, "latency": report_latency}[a.part]
    print("\n".join(fn(runs, note)))


# --------------------------------------------------------------- main
def main():
    ap, sub = rt.cli(__doc__)

    p = sub.add_parser("gen")
    p.add_argument("--dest", required=True)
    p.add_argument("--n", type=int, default=6000)
    p.add_argument("--dirs", type=int, default=60)
    p.set_defaults(fn=cmd_gen)

    def common(p):
        p.add_argument("--fimvt", required=True)
        p.add_argument("--work", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--tree", required=True)
        p.add_argument("--run", type=int, default=1)
        p.add_argument("--concurrency", type=int, default=4)
        p.add_argument("--delay-ms", type=float, default=30)

    p = sub.add_parser("rate")
    common(p)
    p.add_argument("--secs", type=float, default=300)
    p.add_argument("--rpm", type=int, default=1000)
    p.set_defaults(fn=cmd_rate)

    p = sub.add_parser("memory")
    common(p)
    p.add_argument("--vt", choices=["on", "off"], required=True)
    p.add_argument("--secs", type=float, default=30)
    p.add_argument("--quiet", type=float, default=2)
    p.add_argument("--rpm", type=int, default=1)
    p.set_defaults(fn=cmd_memory)

    p = sub.add_parser("latency")
    common(p)
    p.add_argument("--n", type=int, default=2000, help="measured creations per case")
    p.add_argument("--block-ms", type=float, default=600, help="length of a block; the cases alternate by block")
    p.add_argument("--skip-ms", type=float, default=50, help="creations begun this early in a block are not measured")
    p.add_argument("--rpm", type=int, default=1000)
    # 4 in flight at 240 ms: a 1,000/min key used to its limit, without the minute's burst.
    p.set_defaults(delay_ms=240)
    p.add_argument("--busy-after", type=int, default=20)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--grace", type=float, default=1.0)
    p.add_argument("--vt-wait", type=float, default=20)
    p.add_argument("--gap-ms", type=float, default=10, help="from one close() to the next creation, at least")
    p.set_defaults(fn=cmd_latency)

    rt.add_report(sub, ["rate", "memory", "latency"], cmd_report)
    rt.run(ap)


if __name__ == "__main__":
    main()
