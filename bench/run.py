#!/usr/bin/env python3
"""The benchmarks behind BENCHMARKS.md: each figure measured beside its peer in one run.

usage: bench/run.py [options] AREA [PART ...]

  scan        [small] [large]        fimvt scan vs aide --init/--check, find | xargs sha256sum
                                     and the hashing ceiling (examples/ceiling.rs), on the
                                     10,000-file (333 MB) and 100,000-file (1.7 GB) trees
  realtime    [latency] [burst] [idle]
                                     fimvt run: close() -> alert vs inotifywait on the same
                                     folder; cp -r of 10,000 files vs cp alone; memory and
                                     idle CPU watching the 100,000-file tree
  virustotal  [rate] [memory] [latency]
                                     against bench/vt_standin.py on 127.0.0.1: requests per
                                     sliding minute; memory with 100,000 hashes queued vs
                                     VirusTotal off; FIM alert latency with VirusTotal busy
                                     vs off, two fimvt taking turns in one run
  all                                the three areas, every part

--quick is a smoke run (the small tree only, one run, short windows): it shows
that the benchmark works, not figures to publish. Builds fimvt and the ceiling
with `cargo build --release --locked` unless --fimvt is given, and runs private
copies (a rebuild meanwhile cannot swap them). Installs aide, inotify-tools and
e2fsprogs with apt-get if missing. The burst copies into a fresh loop-mounted
ext4 when run as root (otherwise a plain folder, flagged). A part's figures are
flagged when other processes used the CPU meanwhile: on 2 cores one cargo build
ruins them. Markdown on stdout, progress on stderr. stdlib only, Linux only.
"""

import argparse
import bisect
import ctypes
import hashlib
import json
import math
import os
import random
import re
import resource
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NS, MS = 1_000_000_000, 1_000_000
KiB, MiB = 1024, 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
NPROC = os.cpu_count()
API_KEY = "bench-key"   # what vt_standin.py accepts
now_ns = time.monotonic_ns
_libc = ctypes.CDLL(None, use_errno=True)


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def out(*lines):
    print("\n".join(lines), flush=True)


def f3(x):
    return "n/a" if x is None else f"{x:.3f}"


def mib(kb):
    return "n/a" if kb is None else f"{kb / 1024:.1f}"


def verdict(ok):
    return "**PASS**" if ok else "**FAIL**"


def pct(sorted_vals, p):
    """Nearest-rank percentile."""
    return sorted_vals[max(1, math.ceil(p / 100 * len(sorted_vals))) - 1] if sorted_vals else None


def summary(vals):
    s = sorted(vals)
    if not s:
        return None
    return {"n": len(s), "p50": pct(s, 50), "p90": pct(s, 90), "p99": pct(s, 99), "max": s[-1],
            "mean": sum(s) / len(s)}


def median(vals):
    s = sorted(v for v in vals if v is not None)
    if not s:
        return None
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def fresh_dir(path):
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", "--", path], check=True)
    os.makedirs(path)
    return path


def spawn(cmd, nice=0, **kw):
    """Popen whose child the kernel kills if this driver dies, even by SIGKILL: SIGKILL
    because the latency part keeps some children stopped, and a stopped process would
    hold a SIGTERM until continued. Their data folders are the benchmark's own."""
    def setup():
        _libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        if nice:
            os.nice(nice)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(cmd, preexec_fn=setup, **kw)


# --------------------------------------------------------------- setup
def ensure_tools(areas):
    want = {"scan": [("aide", "aide"), ("/usr/bin/time", "time")],
            "realtime": [("inotifywait", "inotify-tools"), ("mkfs.ext4", "e2fsprogs")]}
    pkgs = [pkg for a in areas for tool, pkg in want.get(a, []) if shutil.which(tool) is None]
    if pkgs:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        log("installing", *pkgs)
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq"] + pkgs, check=True, stdout=sys.stderr,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def binaries(a):
    """Private copies of fimvt and the ceiling; (fimvt, ceiling or None, description)."""
    if a.fimvt is None:
        log("cargo build --release --locked --bin fimvt --example ceiling")
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "fimvt", "--example", "ceiling"],
                       cwd=ROOT, check=True, stdout=sys.stderr)
    src = os.path.abspath(a.fimvt or os.path.join(ROOT, "target/release/fimvt"))
    ceiling = os.path.join(ROOT, "target/release/examples/ceiling")
    bindir = fresh_dir(os.path.join(a.dir, "bin"))
    shutil.copy2(src, os.path.join(bindir, "fimvt"))
    if os.path.exists(ceiling):
        shutil.copy2(ceiling, os.path.join(bindir, "ceiling"))
    sha = hashlib.sha256(open(src, "rb").read()).hexdigest()[:16]
    git = lambda *c: subprocess.run(["git", "-C", ROOT, *c], capture_output=True, text=True).stdout.strip()
    desc = f"{src} (sha256 {sha}…)"
    if a.fimvt is None:
        dirty = git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock")
        desc += f", built from git {git('rev-parse', '--short', 'HEAD')}{' with uncommitted changes' if dirty else ''}"
    return (os.path.join(bindir, "fimvt"),
            os.path.join(bindir, "ceiling") if os.path.exists(ceiling) else None, desc)


def machine_line():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    return f"{NPROC} cores, {cpu}, {mem / 1048576:.1f} GiB RAM, kernel {os.uname().release}"


# --------------------------------------------------------------- is the machine quiet?
def machine_cpu_s():
    """CPU-seconds the whole machine has used (user, nice, system, irq, softirq)."""
    f = open("/proc/stat").readline().split()
    return sum(int(f[i]) for i in (1, 2, 3, 6, 7)) / CLK_TCK


def cpu_busy_pct():
    """Percent of all CPUs busy over 2 s."""
    def sample():
        f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return f[0] + f[1] + f[2] + f[5] + f[6], f[3] + f[4]
    (b0, i0) = sample()
    time.sleep(2)
    (b1, i1) = sample()
    return round(100 * (b1 - b0) / max(1, (b1 - b0) + (i1 - i0)))


def own_cpu_s():
    """This driver and every child it has waited for."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def kthread_cpu_s():
    """Kernel threads (writeback, loop devices, kworkers): partly this benchmark's own I/O."""
    tot = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            f = st[st.rindex(")") + 2:].split()
            if int(f[6]) & 0x00200000:   # PF_KTHREAD
                tot += int(f[11]) + int(f[12])
    return tot / CLK_TCK


class Load:
    """Another process using the CPU during a part (a build, another benchmark) skews
    its figures: say so in the report instead of publishing them as they are."""

    def __init__(self, what, wait_s):
        busy, waited = cpu_busy_pct(), 0
        while busy > 10 and waited < wait_s:
            if waited % 60 == 0:
                log(f"CPU {busy}% busy before {what}: waiting up to {wait_s} s for it to calm down")
            time.sleep(8)
            waited += 10
            busy = cpu_busy_pct()
        self.notes = [f"CPU {busy}% busy with other work at start"] if busy > 10 else []
        self.t0 = (machine_cpu_s(), own_cpu_s(), kthread_cpu_s(), time.monotonic())

    def end(self):
        """(note for the section title, a line on the CPU used by others)."""
        m, o, k, w = (b - a for a, b in zip(self.t0, (machine_cpu_s(), own_cpu_s(), kthread_cpu_s(),
                                                      time.monotonic())))
        k = max(0.0, k)   # kworkers that exited meanwhile take their CPU with them
        other = max(0.0, m - o - k)
        share = 100 * other / (w * NPROC)
        if share > 5:
            self.notes.append(f"other processes used {share:.0f}% of the CPU during the runs")
        for n in self.notes:
            log("WARNING:", n)
        note = f" — WARNING: {'; '.join(self.notes)}, numbers unreliable" if self.notes else ""
        return note, (f"Other processes used {other:.1f} CPU-s ({share:.0f}% of the machine) during this part; "
                      f"kernel threads (writeback, loop devices, kworkers: partly this benchmark's own I/O) "
                      f"{k:.1f} CPU-s.")


# --------------------------------------------------------------- trees
# The trees are a pure function of these parameters: the same names, sizes and
# random (incompressible) bytes on every machine. Changing the algorithm needs
# a new TREE_VERSION, so that an old tree on disk is not taken for a current one.
TREE_VERSION, TREE_SEED, FIXED_MTIME = 1, 20240917, 1_700_000_000
PROFILES = {"small": {"files": 10_000, "dirs": 100, "medium": 50, "big": 3},      # ~333 MB
            "large": {"files": 100_000, "dirs": 1_000, "medium": 50, "big": 3}}   # ~1.7 GB


def tree_plan(profile):
    """(parameters, folders, [(relpath, size, content seed)]): files of 1-64 KiB (log-uniform),
    50 of 1 MiB and 3 of 16-64 MiB, in a random folder tree at most 4 deep."""
    p = dict(PROFILES[profile], profile=profile, seed=TREE_SEED, version=TREE_VERSION,
             fixed_mtime=FIXED_MTIME, max_depth=4)
    rng = random.Random(f"tree/{p['seed']}/{profile}")
    dirs, depth = [""], {"": 0}
    while len(dirs) - 1 < p["dirs"]:
        parent = rng.choice([d for d in dirs if depth[d] < p["max_depth"]])
        child = os.path.join(parent, f"d{len(dirs):04d}")
        dirs.append(child)
        depth[child] = depth[parent] + 1
    sizes = [int(KiB * 64 ** rng.random()) for _ in range(p["files"] - p["medium"] - p["big"])]
    sizes += [MiB] * p["medium"]
    sizes += [int(16 * MiB + 48 * MiB * (i + rng.random()) / p["big"]) for i in range(p["big"])]
    rng.shuffle(sizes)
    files = []
    for i, size in enumerate(sizes):
        rel = os.path.join(rng.choice(dirs), f"f{i:06d}.dat")
        files.append((rel, size, f"content/{p['seed']}/{rel}"))
    return p, dirs, files


def write_random(path, size, seed):
    r = random.Random(seed)
    with open(path, "wb") as f:
        for off in range(0, size, MiB):
            f.write(r.randbytes(min(MiB, size - off)))
    os.utime(path, (FIXED_MTIME, FIXED_MTIME))


def make_tree(profile, dest):
    """Generates the tree, or, if it is there, rewrites only the files whose size or
    mtime moved (change_files' edits): well under a second instead of 1.7 GB.
    Returns (files, bytes)."""
    p, dirs, files = tree_plan(profile)
    total = sum(s for _, s, _ in files)
    marker = os.path.join(dest, ".complete")   # one extra tiny file every tool sees
    partial = os.path.join(dest, ".generating")
    try:
        done = json.load(open(marker)) == p
    except (OSError, ValueError):
        done = False
    if not done:
        if os.path.isdir(dest) and os.listdir(dest) and not (os.path.exists(marker) or os.path.exists(partial)):
            sys.exit(f"refusing to overwrite {dest}: not empty and no .complete or .generating marker of ours")
        log(f"generating the {profile} tree in {dest} ({len(files)} files, {total / 1e6:.0f} MB)")
        fresh_dir(dest)
        open(partial, "w").close()
        for d in dirs:
            os.makedirs(os.path.join(dest, d), exist_ok=True)
    restored = 0
    for rel, size, seed in files:
        path = os.path.join(dest, rel)
        try:
            st = os.stat(path)
            if st.st_size == size and st.st_mtime == FIXED_MTIME:
                continue
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        write_random(path, size, seed)
        restored += 1
    if not done:
        os.rename(partial, marker)
        json.dump(p, open(marker, "w"))
    elif restored:
        log(f"{profile} tree: restored {restored} changed files")
    return len(files), total


def change_files(dest, n, seed):
    """Rewrites N files <= 1 MiB in place (same inode, new mtime and ctime, half of them a
    new size), chosen and filled from SEED alone: on a pristine tree the same files
    get the same bytes. The big files are left out so that re-hashing the changed
    files stays small: the case measures finding 100 changes in a large tree."""
    cands = []
    for root, dirs, names in os.walk(dest):
        dirs.sort()
        for name in names:
            if root == dest and name == ".complete":
                continue
            path = os.path.join(root, name)
            st = os.lstat(path)
            if os.path.stat.S_ISREG(st.st_mode) and st.st_size <= MiB:
                cands.append((os.path.relpath(path, dest), st.st_size))
    cands.sort()
    for rel, size in random.Random(f"change/{seed}").sample(cands, n):
        r = random.Random(f"change/{seed}/{rel}")
        new = size if r.random() < 0.5 else max(1, int(size * r.uniform(0.5, 1.5)))
        with open(os.path.join(dest, rel), "r+b") as f:
            f.write(r.randbytes(new))
            f.truncate()


def backlog_tree(dest, n=6000, ndirs=60):
    """N small files with distinct content (so N distinct SHA-256, N lookups) in 60
    folders; DEST.complete, next to DEST so not watched, marks it done."""
    params = {"n": n, "dirs": ndirs, "seed": "vt-backlog/1"}
    try:
        if json.load(open(dest + ".complete")) == params:
            return
    except (OSError, ValueError):
        pass
    log(f"generating the backlog tree {dest} ({n} files)")
    fresh_dir(dest)
    rng = random.Random(params["seed"])
    for d in range(ndirs):
        os.makedirs(os.path.join(dest, f"d{d:03d}"))
    for i in range(n):
        body = f"fimvt vt bench file {i}\n".encode() + rng.randbytes(rng.randint(100, 1000))
        with open(os.path.join(dest, f"d{i % ndirs:03d}", f"f{i:05d}.dat"), "wb") as f:
            f.write(body)
    json.dump(params, open(dest + ".complete", "w"))


def warm(tree):
    """Every tool measures hashing, not the disk."""
    avail = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemAvailable"))
    size = int(subprocess.run(["du", "-sk", tree], capture_output=True, text=True).stdout.split()[0])
    if size > avail * 0.8:
        log(f"WARNING: {tree} does not fit in the page cache; the figures include disk I/O")
    subprocess.run(f"find '{tree}' -type f -print0 | xargs -0 cat >/dev/null", shell=True, check=True)


# --------------------------------------------------------------- fimvt and the other processes
def write_config(path, data, dirs, realtime=True, rehash=None, vt=None):
    # 0600: it may hold the API key (fimvt warns about a key others can read)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(f'[general]\ndata_dir = "{data}"\n')
        for d in dirs:
            f.write(f'\n[[directories]]\npath = "{d}"\n' + ("" if realtime else "realtime = false\n"))
        if rehash:
            f.write(f'\n[scan]\nrehash = "{rehash}"\n')
        if vt:
            f.write(f'\n[virustotal]\nenabled = true\napi_key = "{API_KEY}"\n'
                    f'base_url = "http://127.0.0.1:{vt["port"]}"\nrequests_per_minute = {vt["rpm"]}\n'
                    f'daily_quota = 10000000\nconcurrency = 4\nscan_baseline = true\n')


def timed(cmd, logpath, ok=(0,)):
    """Runs CMD to completion: (wall seconds, peak RSS KiB). The peak comes from
    /usr/bin/time: a child forked from this driver inherits its high-water mark
    across exec (Linux keeps the larger of the old and new image's), so wait4's
    figure here would be Python's."""
    with open(logpath, "wb") as f:
        t0 = time.perf_counter()
        rc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", logpath + ".rss", *cmd], stdout=f,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
        secs = time.perf_counter() - t0
    if rc not in ok:
        sys.exit(f"{' '.join(cmd)} exited {rc}; its output is in {logpath}")
    return secs, int(open(logpath + ".rss").read().split()[-1])


def proc_status(pid):
    """VmHWM and VmRSS (KiB), Threads, and context switches of all threads."""
    d = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmHWM", "VmRSS", "Threads"):
            d[k] = int(v.split()[0])
    d["ctxt"] = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in open(f"/proc/{pid}/task/{t}/status"):
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    d["ctxt"] += int(line.split()[1])
        except OSError:   # the thread ended meanwhile
            pass
    return d


def proc_cpu_s(pid):
    st = open(f"/proc/{pid}/stat").read()
    f = st[st.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


def thread_cpu_s(pid):
    """CPU seconds of each thread by name, from schedstat (ns: a few ms per thread
    would vanish in stat's 10 ms ticks)."""
    res = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            ns = int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except OSError:
            continue
        res[name] = res.get(name, 0.0) + ns / 1e9
    return res


class Daemon:
    """One `fimvt run` on a fresh data folder of its own, stopped with SIGTERM."""

    def __init__(self, fimvt, work, dirs, vt=None):
        os.makedirs(work, exist_ok=True)
        self.data, cfg = os.path.join(work, "data"), os.path.join(work, "fimvt.toml")
        write_config(cfg, self.data, dirs, vt=vt)
        self.errlog = os.path.join(work, "fimvt.stderr")
        self.err = open(self.errlog, "wb")
        self.t_spawn = now_ns()
        self.proc = spawn([fimvt, "run", "--config", cfg], stdout=self.err, stderr=self.err)
        self.pid = self.proc.pid

    def stderr(self):
        return open(self.errlog, "rb").read().decode(errors="replace")

    def wait_scan(self, timeout):
        """Waits for the start-up scan: (spawn -> its log line, fimvt's own seconds, the line)."""
        deadline = time.monotonic() + timeout
        while True:
            line = next((l for l in self.stderr().splitlines() if "scan complete" in l), None)
            if line:
                m = re.search(r"([0-9.]+) s\b", line)
                return ((now_ns() - self.t_spawn) / NS, float(m.group(1)) if m else None,
                        line.split("INFO", 1)[-1].strip())
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no start-up scan from fimvt:\n{self.stderr()[-2000:]}")
            time.sleep(0.005)

    def stop(self, timeout=120):
        """SIGTERM; exit status, clean stop, peak RSS (VmHWM just before: wait4's would be
        this driver's, see timed), CPU (wait4), warnings logged."""
        hwm = proc_status(self.pid)["VmHWM"]
        t0 = now_ns()
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while (w := os.wait4(self.pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                raise RuntimeError(f"fimvt did not stop within {timeout} s of SIGTERM")
            time.sleep(0.005)
        _, status, ru = w
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.err.close()
        text = self.stderr()
        r = {"exit": self.proc.returncode, "clean": "stopped cleanly" in text, "maxrss_kb": hwm,
             "cpu_s": ru.ru_utime + ru.ru_stime, "stop_s": (now_ns() - t0) / NS,
             "warnings": [l[-160:] for l in text.splitlines() if " WARN " in l or " ERROR " in l][:3]}
        if r["exit"] or not r["clean"]:
            log(f"WARNING: fimvt exit {r['exit']}, stopped cleanly: {r['clean']}; see {self.errlog}")
        return r

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()



def exit_text(e):
    return (f"clean stop {e['clean']} (exit {e['exit']}), peak RSS {mib(e['maxrss_kb'])} MiB, "
            f"CPU {e['cpu_s']:.2f} s" + (f"; warnings: {' / '.join(e['warnings'])}" if e["warnings"] else ""))


def db_query(data, sql):
    con = sqlite3.connect(f"file:{os.path.join(data, 'fimvt.db')}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def db_rows(data):
    """{path: sha256} of the files table."""
    return {os.fsdecode(p) if isinstance(p, bytes) else p: h
            for p, h in db_query(data, "SELECT path, sha256 FROM files")}


def queue_depth(data):
    return db_query(data, "SELECT count(*) FROM vt_queue")[0][0]


def alerts_json(data):
    """([(path, event, sha256_after)] of the FIM alerts, {file: VirusTotal alerts}, unparsable lines)."""
    fim, vt, bad = [], {}, 0
    path = os.path.join(data, "alerts.json")
    for line in open(path, "rb") if os.path.exists(path) else []:
        try:
            j = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if j.get("location") == "virustotal":
            f = ((j.get("data", {}).get("virustotal") or {}).get("source") or {}).get("file")
            vt[f] = vt.get(f, 0) + 1
        else:
            s = j["syscheck"]
            fim.append((s["path"], s["event"], s.get("sha256_after")))
    return fim, vt, bad


def integration_log(data):
    """(lines, hashes logged twice) of integration.log."""
    path, seen = os.path.join(data, "integration.log"), {}
    for line in open(path, "rb") if os.path.exists(path) else []:
        sha = next((t[7:] for t in line.split() if t.startswith(b"sha256=")), b"")
        seen[sha] = seen.get(sha, 0) + 1
    return sum(seen.values()), sum(1 for n in seen.values() if n > 1)


IN_MODIFY, IN_NONBLOCK, IN_CLOEXEC = 0x2, 0o4000, 0o2000000


class Tail:
    """The whole lines appended to a file since the last read."""

    def __init__(self, path):
        self.path, self.fd, self.partial = path, None, b""

    def read(self):
        if self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return b""
        chunks = [self.partial]
        while b := os.read(self.fd, 1 << 20):
            chunks.append(b)
        data = b"".join(chunks)
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        return data[:cut]

    def close(self):
        if self.fd is not None:
            os.close(self.fd)


FIM_LINE = re.compile(rb"\nFile '([^\n]*)' (added|modified|deleted)(?=\n)")


class Alerts:
    """When each file's alert could be read from a fimvt's alerts.log. The doorbell is an
    inotify watch (IN_MODIFY) on alerts.log itself, not on the data folder: a folder
    watch also rings for every WAL, alerts.json and integration.log write (hundreds a
    second with VirusTotal busy), each ring a wake-up of this reader on the CPUs fimvt
    runs on. Each read is stamped once its bytes are in hand (a ring from an earlier
    write must not make a later alert look early) and parsed in one regex pass (a
    Python loop over thousands of VirusTotal alert lines kept the reader busy for
    milliseconds, and a FIM alert landing meanwhile was seen late)."""

    def __init__(self, data):
        path = os.path.join(data, "alerts.log")   # the sink creates it at start
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0 or _libc.inotify_add_watch(self.fd, os.fsencode(path), IN_MODIFY) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {path}")
        self.tail = Tail(path)
        self.tail.read()   # what is already there (baseline VirusTotal alerts)
        self.added, self.others = {}, {}

    def fileno(self):
        return self.fd

    def read(self):
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        data = b"\n" + self.tail.read()
        t = now_ns()
        for m in FIM_LINE.finditer(data):
            p = os.fsdecode(m.group(1))
            (self.added if m.group(2) == b"added" else self.others).setdefault(p, []).append(t)

    def close(self):
        os.close(self.fd)
        self.tail.close()


class Floor:
    """`inotifywait -m -e close_write` on the watched folder: the kernel's delivery to a
    trivial watcher, read in the same select() loop as fimvt's alerts."""

    def __init__(self, folder):
        self.proc = spawn(["inotifywait", "-m", "-e", "close_write", "--format", "%w%f", folder],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        buf, deadline = b"", time.monotonic() + 10
        while b"Watches established" not in buf:
            ready = select.select([self.proc.stderr], [], [], max(0, deadline - time.monotonic()))[0]
            chunk = os.read(self.proc.stderr.fileno(), 4096) if ready else b""
            if not chunk:
                raise RuntimeError(f"inotifywait did not start watching: {buf!r}")
            buf += chunk
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.partial, self.seen = b"", {}

    def fileno(self):
        return self.proc.stdout.fileno()

    def read(self):
        try:
            while b := os.read(self.fileno(), 65536):
                self.partial += b
        except BlockingIOError:
            pass
        t = now_ns()
        *lines, self.partial = self.partial.split(b"\n")
        for p in lines:
            self.seen.setdefault(os.fsdecode(p), []).append(t)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def pump(readers, timeout_s):
    for r in select.select(readers, [], [], max(0.0, timeout_s))[0]:
        r.read()


def create(path, rng):
    """open(O_CREAT|O_EXCL) + write 64-4096 random bytes + close(): (t right after close, sha256)."""
    body = rng.randbytes(rng.randint(64, 4096))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    os.write(fd, body)
    os.close(fd)
    return now_ns(), hashlib.sha256(body).hexdigest()


class Standin:
    """bench/vt_standin.py on a free port, at nice 19: it plays a server on the other
    side of the Internet, whose CPU would not be this machine's."""

    def __init__(self, work, delay_ms):
        self.log_path, port_file = os.path.join(work, "standin.log"), os.path.join(work, "standin.port")
        self.proc = spawn([sys.executable, os.path.join(HERE, "vt_standin.py"), "--port-file", port_file,
                           "--log", self.log_path, "--delay-ms", str(delay_ms)], nice=19)
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the stand-in did not start")
            time.sleep(0.01)
        self.port = int(open(port_file).read())
        self.tail, self.reqs = Tail(self.log_path), []   # (arrival ns, sha256, status, in flight)

    def poll(self):
        for line in self.tail.read().splitlines():
            t, sha, status, inflight = line.split()
            self.reqs.append((int(t), sha.decode(), int(status), int(inflight)))
        return self.reqs

    def stop(self):
        if self.proc.returncode is not None:
            return
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.poll()
        self.tail.close()

    def asked_twice(self):
        seen = {}
        for _, sha, _, _ in self.reqs:
            seen[sha] = seen.get(sha, 0) + 1
        return sum(1 for n in seen.values() if n > 1)


# --------------------------------------------------------------- scan
CHANGED = 100   # files rewritten before the re-scan cases


def scan_tree(ctx, tree):
    """Every tool on the same warm tree with the same threads; runs interleaved (run 1 of
    every case, then run 2...) so slow drift on the machine hits all cases alike."""
    T = os.path.join(ctx.dir, tree)
    W = fresh_dir(os.path.join(ctx.dir, "work", "scan", tree))
    files, nbytes = make_tree(tree, T)
    warm(T)
    load = Load(f"the {tree} scans", ctx.wait_quiet)
    aide_conf = os.path.join(W, "aide.conf")
    tmpl = open(os.path.join(HERE, "aide.conf.in")).read()
    open(aide_conf, "w").write(tmpl.replace("{{WORKDIR}}", f"{W}/aide").replace("{{TREE}}", T)
                               .replace("{{WORKERS}}", str(NPROC)))
    cfg = {}
    for rehash in ("changed", "always"):
        cfg[rehash] = os.path.join(W, f"fimvt-{rehash}.toml")
        write_config(cfg[rehash], os.path.join(W, f"data-{rehash}"), [T], realtime=False, rehash=rehash)
    fimvt_scan = lambda rehash, name: timed([ctx.fimvt, "scan", "--config", cfg[rehash]], os.path.join(W, name))
    S = {}
    add = lambda case, t: S.setdefault(case, []).append(t)
    for run in range(1, ctx.runs + 1):
        seed = f"{tree}-run{run}"
        log(f"[scan {tree}] run {run}/{ctx.runs}")
        make_tree(tree, T)
        fresh_dir(os.path.join(W, "aide"))
        add("aide_init", timed(["aide", "--config", aide_conf, "--init"], os.path.join(W, "aide-init.log")))
        os.rename(os.path.join(W, "aide/aide.db.new"), os.path.join(W, "aide/aide.db"))
        change_files(T, CHANGED, seed)
        # exit 1-7: added, removed or changed entries found
        add("aide_check", timed(["aide", "--config", aide_conf, "--check"], os.path.join(W, "aide-check.log"),
                                ok=range(8)))
        m = re.search(r"Changed entries:\s*(\d+)", open(os.path.join(W, "aide-check.log")).read())
        if not m or int(m.group(1)) != CHANGED:
            log(f"WARNING: aide reported {m and m.group(1)} changed entries, expected {CHANGED}")
        make_tree(tree, T)
        add("sha256sum", timed(["bash", "-c", 'find "$1" -type f -print0 | xargs -0 -P"$2" -n 256 sha256sum '
                                ">/dev/null", "_", T, str(NPROC)], os.path.join(W, "sha256sum.log")))
        if ctx.ceiling:
            _, rss = timed([ctx.ceiling, T, str(NPROC)], os.path.join(W, "ceiling.log"))
            m = re.search(r"ceiling_seconds=([0-9.eE+-]+)", open(os.path.join(W, "ceiling.log")).read())
            add("ceiling", (float(m.group(1)), rss))   # its own time: the file listing is not timed
        shutil.rmtree(os.path.join(W, "data-changed"), ignore_errors=True)
        add("base", fimvt_scan("changed", "fimvt-baseline.log"))
        change_files(T, CHANGED, seed)
        add("changed", fimvt_scan("changed", "fimvt-rescan-changed.log"))
        make_tree(tree, T)
        shutil.rmtree(os.path.join(W, "data-always"), ignore_errors=True)
        fimvt_scan("always", "fimvt-baseline-always.log")   # not timed
        change_files(T, CHANGED, seed)
        add("always", fimvt_scan("always", "fimvt-rescan-always.log"))
    make_tree(tree, T)   # pristine for next time
    note, other = load.end()

    med = {c: (median([s for s, _ in v]), median([r for _, r in v])) for c, v in S.items()}
    out("", f"### {tree} tree: {files} files, {nbytes / 1e6:.1f} MB{note}", "",
        f"| tool / case | seconds (median of {ctx.runs}) | files/s | MB/s | peak RSS (MiB) | ratio |",
        "|---|---:|---:|---:|---:|---|")
    ratio = lambda peer, case, what: f"{med[peer][0] / med[case][0]:.2f} {what}"
    rows = [("aide_init", f"aide --init (md5+sha1+sha256, {NPROC} workers)", ratio("aide_init", "base", "vs fimvt baseline")),
            ("aide_check", f"aide --check, {CHANGED} files changed",
             ratio("aide_check", "changed", "vs fimvt re-scan (changed)")),
            ("sha256sum", f"find \\| xargs -P{NPROC} sha256sum (1 hash, no db)",
             ratio("sha256sum", "base", "vs fimvt baseline")),
            ("ceiling", f"ceiling: md5+sha1+sha256 in one pass, {NPROC} threads (hashing only)",
             f"fimvt at {100 * med['ceiling'][0] / med['base'][0]:.0f}% of ceiling" if "ceiling" in med else ""),
            ("base", "fimvt scan, baseline (empty data dir)", "reference"),
            ("changed", f"fimvt scan, re-scan after {CHANGED} changed (rehash=changed)", "reference"),
            ("always", f"fimvt scan, re-scan after {CHANGED} changed (rehash=always: full re-read)",
             ratio("aide_check", "always", "= aide --check / this"))]
    for case, label, r in rows:
        if case in med:
            s, kb = med[case]
            out(f"| {label} | {s:.3f} | {files / s:.0f} | {nbytes / 1e6 / s:.1f} | {mib(kb)} | {r} |")
    out("", "files/s and MB/s are whole-tree figures; the rehash=changed re-scan does not re-read unchanged "
        "files, so its MB/s is an effective rate. The ceiling's seconds are its own hashing time (file listing "
        "excluded); its RSS is the whole process. " + other)


def area_scan(ctx, parts):
    out("", f"## Scan — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        f"- machine: {machine_line()}; {ctx.dir} on "
        + subprocess.run(["df", "-PT", ctx.dir], capture_output=True, text=True).stdout.split("\n")[1].split()[1],
        f"- {subprocess.run(['aide', '--version'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout.splitlines()[0]}; "
        f"fimvt: {ctx.fimvt_desc}; {ctx.runs} run(s), median; warm page cache")
    if not ctx.ceiling:
        log("no ceiling binary (examples/ceiling): its row is left out")
    for tree in parts:
        scan_tree(ctx, tree)


# --------------------------------------------------------------- realtime
def rt_latency(ctx):
    """close() -> `File '...' added` in alerts.log, one file at a time, each waited for
    (alert and floor) before the next; 10 warm-up files not counted."""
    work = fresh_dir(os.path.join(ctx.dir, "work", "rt-latency"))
    watched = os.path.join(work, "watched")
    os.makedirs(watched)
    n, warmup, timeout = ctx.lat_n or (200 if ctx.quick else 1000), 10, 10
    load = Load("the latency part", ctx.wait_quiet)
    fim, floor, rd = Daemon(ctx.fimvt, work, [watched]), None, None
    try:
        fim.wait_scan(60)
        rd, floor = Alerts(fim.data), Floor(watched)
        rng, created = random.Random("latency/1"), []
        for i in range(warmup + n):
            path = os.path.join(watched, f"lat-r1-{i:05d}.dat")
            t, sha = create(path, rng)
            created.append((path, t, sha, i >= warmup))
            while (path not in rd.added or path not in floor.seen) and (left := t + timeout * NS - now_ns()) > 0:
                pump([rd, floor], left / NS)
        grace = now_ns() + NS   # late alerts, duplicates, other events
        while (left := grace - now_ns()) > 0:
            pump([rd, floor], left / NS)
        floor.stop()
        ex = fim.stop()
    finally:
        if floor:
            floor.stop()
        if rd:
            rd.close()
        fim.kill()
    note, other = load.end()
    fl, fl_floor, diff, lost, late, nofloor = [], [], [], 0, 0, 0
    for path, t, _, measured in created:
        a, f = rd.added.get(path), floor.seen.get(path)
        if not measured:
            continue
        if not a:
            lost += 1
        elif a[0] - t > timeout * NS:
            late += 1
        else:
            fl.append((a[0] - t) / MS)
            if f:
                diff.append((a[0] - f[0]) / MS)
        if f:
            fl_floor.append((f[0] - t) / MS)
        else:
            nofloor += 1
    ours = {c[0]: c[2] for c in created}
    dup = sum(len(v) - 1 for p, v in rd.added.items() if p in ours)
    ev, _, _ = alerts_json(fim.data)
    j_added = {}
    for p, e, h in ev:
        if e == "added":
            j_added.setdefault(p, h)
    rows = db_rows(fim.data)
    sf, sl, sd = summary(fl), summary(fl_floor), summary(diff)
    out("", f"### close() → alert line in alerts.log: {n} single-file creations{note}", "",
        "Each file: create + write 64–4096 random bytes + close(), t0 right after close(), then wait for its "
        "`File '…' added` line in alerts.log (inotify on alerts.log + select(); each read stamped after it "
        "returns) and for its line from `inotifywait -m -e close_write` on the same folder (the floor), "
        "before the next. Percentiles nearest-rank.", "",
        "| ms | n | p50 | p90 | p99 | max | mean |", "|---|---:|---:|---:|---:|---:|---:|")
    for label, s in (("fimvt", sf), ("floor (inotifywait)", sl), ("fimvt − floor (same file)", sd)):
        out(f"| {label} | {s['n']} | " + " | ".join(f3(s[k]) for k in ("p50", "p90", "p99", "max", "mean")) + " |"
            if s else f"| {label} | 0 | | | | | |")
    if sf and sl:
        out("", f"Targets: p99 < 50 ms with nothing lost: {verdict(sf['p99'] < 50 and not lost and not late)} "
            f"({f3(sf['p99'])} ms); within 20 ms of the floor: {verdict(sf['p99'] - sl['p99'] < 20)} "
            f"(+{f3(sf['p99'] - sl['p99'])} ms at p99).")
    out("", f"Checks: lost {lost}, late (> {timeout} s) {late}, duplicate `added` {dup}, other events for ours "
        f"{sum(len(v) for p, v in rd.others.items() if p in ours)}, alerts for other paths "
        f"{sum(1 for p in list(rd.added) + list(rd.others) if p not in ours)}, missed by inotifywait {nofloor}; "
        f"alerts.json `added` for {sum(1 for p in ours if p in j_added)}/{len(ours)} files, SHA-256 ≠ bytes "
        f"written {sum(1 for p, h in ours.items() if p in j_added and j_added[p] != h)}; `files` rows missing "
        f"{sum(1 for p in ours if p not in rows)}, SHA-256 mismatch "
        f"{sum(1 for p, h in ours.items() if p in rows and rows[p] != h)}; {exit_text(ex)}.",
        "", other)


def regular_files(root):
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names
            if os.path.isfile(os.path.join(d, n)) and not os.path.islink(os.path.join(d, n))]


def fresh_ext4(img, mnt):
    """A new loop-mounted ext4 for each copy: right after an `rm -rf` of 10,000 files,
    ext4 skips inodes deleted in the last minutes when it allocates (ialloc.c
    recently_deleted()), and `cp -r` on the same file system goes from 0.5 s to 8+ s
    depending on what ran before."""
    subprocess.run(["truncate", "-s", "2G", img], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["mount", "-o", "loop", img, mnt], check=True)


def unmount(mnt):
    if os.path.ismount(mnt):
        subprocess.run(["umount", mnt], check=True)


def rt_burst_run(ctx, run, src, src_sha, loop):
    work = os.path.join(ctx.dir, "work", "rt-burst")
    for m in ("watched", "unwatched"):   # leftovers of an interrupted run
        unmount(os.path.join(work, m))
    fresh_dir(work)
    watched, unwatched = os.path.join(work, "watched"), os.path.join(work, "unwatched")
    os.makedirs(watched)
    os.makedirs(unwatched)
    r, fim = {"run": run}, None
    try:
        if loop:
            fresh_ext4(os.path.join(work, "unwatched.img"), unwatched)
        subprocess.run(["sync"], check=True)
        t0 = now_ns()
        subprocess.run(["cp", "-r", src, unwatched + "/"], check=True)
        r["cp_alone"] = (now_ns() - t0) / NS
        unmount(unwatched)
        if loop:
            fresh_ext4(os.path.join(work, "watched.img"), watched)
        subprocess.run(["sync"], check=True)
        fim = Daemon(ctx.fimvt, os.path.join(work, "fimvt"), [watched])
        fim.wait_scan(60)
        tail, added, expected = Tail(os.path.join(fim.data, "alerts.json")), 0, len(src_sha)
        tail.read()
        t0 = now_ns()
        cp, t_cp, t_last = spawn(["cp", "-r", src, watched + "/"]), None, t0
        while True:   # alerts.json re-read every 2 ms until every file has its `added`
            time.sleep(0.002)
            t, new = now_ns(), tail.read()
            if new:
                t_last = t
                added += new.count(b'"event":"added"')
            if t_cp is None and cp.poll() is not None:
                t_cp = t
                if cp.returncode:
                    raise RuntimeError(f"cp exited {cp.returncode}")
            if added >= expected and t_cp is not None:
                break
            if t_cp is not None and t - max(t_last, t_cp) > 10 * NS:
                break   # nothing new for 10 s: the rest is lost
        r.update(cp=(t_cp - t0) / NS, alerted=(t_last - t0) / NS if added >= expected else None)
        time.sleep(1)   # duplicates or extra events after the last expected one
        tail.close()
        r["exit"] = fim.stop()
        copy = os.path.join(watched, os.path.basename(src))
        ev, _, _ = alerts_json(fim.data)
        n_added = {}
        for p, e, _ in ev:
            if e == "added":
                n_added[p] = n_added.get(p, 0) + 1
        rows = db_rows(fim.data)
        dest = {os.path.join(copy, rel): h for rel, h in src_sha.items()}
        r.update(copied=len(regular_files(copy)), missing=sum(1 for p in dest if p not in n_added),
                 dup=sum(n - 1 for n in n_added.values()), other=sum(1 for _, e, _ in ev if e != "added"),
                 db_missing=sum(1 for p in dest if p not in rows),
                 db_bad=sum(1 for p, h in dest.items() if p in rows and rows[p] != h))
    finally:
        if fim:
            fim.kill()
        unmount(unwatched)
        unmount(watched)
    fresh_dir(work)
    log(f"[burst] run {run}: cp {r['cp']:.3f} s, all alerted {f3(r['alerted'])} s")
    return r


def rt_burst(ctx):
    """`cp -r` of the small tree into the watched folder after fimvt's baseline of the
    empty folder, against the same copy into a folder nobody watches just before."""
    src = os.path.join(ctx.dir, "small")
    make_tree("small", src)
    warm(src)
    src_sha = {os.path.relpath(p, src): hashlib.sha256(open(p, "rb").read()).hexdigest()
               for p in regular_files(src)}
    loop = os.geteuid() == 0 and subprocess.run(["losetup", "-f"], capture_output=True).returncode == 0
    load = Load("the burst", ctx.wait_quiet)
    if not loop:
        load.notes.append("no loop device (not root?): copied into a plain folder, whose speed depends on what "
                          "was deleted there in the last minutes")
    runs = [rt_burst_run(ctx, i + 1, src, src_sha, loop) for i in range(ctx.runs)]
    note, other = load.end()
    n = len(src_sha)
    out("", f"### Burst: `cp -r` of {n} files ({sum(os.path.getsize(os.path.join(src, p)) for p in src_sha) / 1e6:.0f}"
        f" MB) into the watched folder{note}", "",
        "fimvt started on an empty folder (baseline done); \"all alerted\": from cp's start until alerts.json holds "
        "one `added` alert per file; then SIGTERM, and every `files` row checked against the source's SHA-256. "
        "\"cp alone\": the same copy into an unwatched folder just before" +
        (" (each copy into a fresh loop-mounted ext4)." if loop else "."), "",
        "| run | cp alone (s) | cp into watched (s) | all alerted (s) | ratio to cp alone | files/s | lost | "
        "dup | DB rows missing / wrong | peak RSS (MiB) | fimvt CPU (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    row = lambda k, a, c, al, kb, cpu, rest: out(
        f"| {k} | {f3(a)} | {f3(c)} | {f3(al) if al else 'never (lost)'} | "
        f"{f'{al / a:.2f}×' if al else ''} | {f'{n / al:.0f}' if al else ''} | {rest} | {mib(kb)} | {cpu:.2f} |")
    for r in runs:
        row(r["run"], r["cp_alone"], r["cp"], r["alerted"], r["exit"]["maxrss_kb"], r["exit"]["cpu_s"],
            f"{r['missing']} | {r['dup']} | {r['db_missing']} / {r['db_bad']}")
    # a run that lost files never finished: +inf in the median
    ma = median([r["alerted"] or math.inf for r in runs])
    row("**median**", median([r["cp_alone"] for r in runs]), median([r["cp"] for r in runs]),
        None if ma == math.inf else ma, median([r["exit"]["maxrss_kb"] for r in runs]),
        median([r["exit"]["cpu_s"] for r in runs]), " | | ")
    lossy = sum(1 for r in runs if r["missing"] or r["db_missing"])
    out("", f"Target: every file alerted and stored in < 10 s: {verdict(ma < 10 and not lossy)} ({lossy} of "
        f"{len(runs)} runs lost files; Wazuh's 50 events/s throttle alone would need {n / 50:.0f} s). Other "
        f"events: {', '.join(str(r['other']) for r in runs)}; files copied: "
        f"{', '.join(str(r['copied']) for r in runs)}; clean stops: "
        f"{', '.join(str(r['exit']['clean']) for r in runs)}.", "", other)


def watch_tree(ctx, work, tree, secs, vt=None):
    """fimvt on TREE from an empty data folder: its baseline, then SECS of watching."""
    fim = Daemon(ctx.fimvt, work, [tree], vt=vt)
    try:
        r = dict(zip(("ready_s", "baseline_s", "baseline_line"), fim.wait_scan(1800)))
        r["baseline_cpu_s"] = proc_cpu_s(fim.pid)
        time.sleep(2)   # the last database writes and checkpoint
        if vt:
            r["queue"] = queue_depth(fim.data)
        st0, c0, t0, rss = proc_status(fim.pid), proc_cpu_s(fim.pid), now_ns(), []
        while (left := t0 + secs * NS - now_ns()) > 0:
            time.sleep(min(1.0, left / NS))
            rss.append(proc_status(fim.pid)["VmRSS"])
        st1, c1, w = proc_status(fim.pid), proc_cpu_s(fim.pid), (now_ns() - t0) / NS
        r.update(window_s=w, cpu_s=c1 - c0, ctxt_per_s=(st1["ctxt"] - st0["ctxt"]) / w, hwm=st1["VmHWM"],
                 rss=st1["VmRSS"], rss_min=min(rss), rss_max=max(rss), threads=st1["Threads"])
        r["exit"] = fim.stop()
        r["db_rows"] = len(db_rows(fim.data))
        r["db_mb"] = sum(os.path.getsize(os.path.join(fim.data, f)) for f in os.listdir(fim.data)
                         if f.startswith("fimvt.db")) / 1e6
        r["alerts"] = len(alerts_json(fim.data)[0])
    finally:
        fim.kill()
    return r


def rt_idle(ctx):
    tree = "small" if ctx.quick else "large"
    T = os.path.join(ctx.dir, tree)
    files, _ = make_tree(tree, T)
    warm(T)
    secs = 5 if ctx.quick else ctx.idle_secs
    load = Load("the idle part", ctx.wait_quiet)
    runs = []
    for i in range(ctx.runs):
        log(f"[idle] run {i + 1}/{ctx.runs}: baseline of the {tree} tree, then {secs} s of watching")
        runs.append(watch_tree(ctx, fresh_dir(os.path.join(ctx.dir, "work", "rt-idle")), T, secs))
    note, other = load.end()
    out("", f"### Watching the {tree} tree ({files} files){note}", "",
        f"Baseline from an empty data folder (warm page cache), then {secs} s of watching with nothing changing. "
        "Peak RSS = VmHWM, steady = VmRSS at the end (min–max of 1 s samples); idle CPU from /proc/PID/stat "
        f"(1/{CLK_TCK} s ticks); wake-ups = context switches of all threads.", "",
        "| run | baseline (s) | peak RSS (MiB) | steady RSS (MiB) | idle CPU (CPU-s) | wake-ups/s | threads | DB rows |",
        "|---|---:|---:|---:|---:|---:|---:|---:|")
    for i, r in enumerate(runs):
        out(f"| {i + 1} | {f3(r['baseline_s'])} | {mib(r['hwm'])} | {mib(r['rss'])} ({mib(r['rss_min'])}–"
            f"{mib(r['rss_max'])}) | {r['cpu_s']:.2f} | {r['ctxt_per_s']:.1f} | {r['threads']} | {r['db_rows']} |")
    m = {k: median([r[k] for r in runs]) for k in ("baseline_s", "hwm", "rss", "cpu_s", "ctxt_per_s")}
    out(f"| **median** | {f3(m['baseline_s'])} | **{mib(m['hwm'])}** | **{mib(m['rss'])}** | **{m['cpu_s']:.2f}** | "
        f"{m['ctxt_per_s']:.1f} | | |", "",
        f"Targets: peak RSS < 64 MB: {verdict(m['hwm'] * 1024 < 64e6)}; idle CPU ≈ 0: {verdict(m['cpu_s'] <= 0.05)}. "
        f"Alerts while idle (should be 0): {', '.join(str(r['alerts']) for r in runs)}; clean stops: "
        f"{', '.join(str(r['exit']['clean']) for r in runs)}.", "", other)


def area_realtime(ctx, parts):
    out("", f"## Realtime — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        f"- machine: {machine_line()}", f"- fimvt: {ctx.fimvt_desc}, default settings")
    for part in parts:
        {"latency": rt_latency, "burst": rt_burst, "idle": rt_idle}[part](ctx)


# --------------------------------------------------------------- virustotal
def sliding_max(ts, window):
    """The most of the sorted times TS in any [t, t + window)."""
    mx, j = 0, 0
    for i in range(len(ts)):
        while j < len(ts) and ts[j] < ts[i] + window:
            j += 1
        mx = max(mx, j - i)
    return mx


def vt_rate(ctx):
    """The backlog's lookups at the key's limit, from the first request: requests per
    minute and per sliding 60 s as VirusTotal sees them (arrivals at the stand-in)."""
    secs, rpm = (125, 200) if ctx.quick else (ctx.rate_secs, ctx.rpm)
    work = fresh_dir(os.path.join(ctx.dir, "work", "vt-rate"))
    load = Load("the rate part", ctx.wait_quiet)
    sd = Standin(work, 30)
    fim = None
    try:
        fim = Daemon(ctx.fimvt, work, [ctx.backlog], vt={"port": sd.port, "rpm": rpm})
        fim.wait_scan(300)
        queued = queue_depth(fim.data)
        deadline = time.monotonic() + 60
        while not sd.poll():
            if time.monotonic() > deadline:
                raise RuntimeError("no request reached the stand-in within 60 s of the baseline")
            time.sleep(0.01)
        t0 = sd.reqs[0][0]
        thr0, sd0 = thread_cpu_s(fim.pid), sum(thread_cpu_s(sd.proc.pid).values())
        log(f"[rate] {secs} s at {rpm}/min")
        while (left := t0 + secs * NS - now_ns()) > 0:
            time.sleep(min(30, left / NS))
            log(f"[rate] {(now_ns() - t0) / NS:.0f} s: {len(sd.poll())} requests")
        thr = {k: v - thr0.get(k, 0.0) for k, v in thread_cpu_s(fim.pid).items()}
        sd_cpu = sum(thread_cpu_s(sd.proc.pid).values()) - sd0
        t_stop = now_ns()
        ex = fim.stop()
        sd.stop()
    finally:
        if fim:
            fim.kill()
        sd.stop()
    note, other = load.end()
    ts = [r[0] - t0 for r in sd.reqs if r[0] <= t_stop]
    minutes = int(secs // 60)
    per_min = [sum(1 for t in ts if k * 60 * NS <= t < (k + 1) * 60 * NS) for k in range(minutes)]
    steady = sum(per_min[1:]) / (rpm * (minutes - 1)) if minutes > 1 else None
    own = sliding_max([t for (t,) in db_query(fim.data, "SELECT time FROM vt_requests ORDER BY time")], 60_000)
    lines, logged_twice = integration_log(fim.data)
    _, vt_alerts, _ = alerts_json(fim.data)
    n = len(ts)
    th = sorted(((v, k) for k, v in thr.items() if v >= 0.0005), reverse=True)
    out("", f"### Sustained rate: {queued} hashes queued, "
        f"`requests_per_minute = {rpm}`, concurrency 4, answers after 30 ms{note}", "",
        f"Baseline of the backlog tree with `scan_baseline = true`; measured for {secs} s from the first request "
        "(arrival times at the stand-in, CLOCK_MONOTONIC), then SIGTERM.", "",
        "| most requests in any sliding 60 s (arrivals) | in fimvt's `vt_requests` | per minute | steady part "
        "(minutes 2+) | hashes asked twice | most in flight |", "|---:|---:|---|---:|---:|---:|",
        f"| **{sliding_max(ts, 60 * NS)}** | {own} | {', '.join(map(str, per_min))} | "
        f"**{'n/a' if steady is None else f'{100 * steady:.1f}%'}** | {sd.asked_twice()} | "
        f"{max((r[3] for r in sd.reqs), default=0)} |", "",
        f"Targets: at most {rpm} in any sliding 60 s: {verdict(sliding_max(ts, 60 * NS) <= rpm)}; steady part ≥ 95% "
        f"of the allowed rate: {verdict(steady is not None and steady >= 0.95)}.",
        "", (f"CPU per lookup (schedstat): fimvt {sum(v for v, _ in th) / n * 1e6:.0f} µs = "
             + " + ".join(f"{k} {v / n * 1e6:.0f}" for v, k in th)
             + f"; the stand-in (rig, not fimvt) {sd_cpu / n * 1e6:.0f} µs.") if n else "No request measured.",
        "", f"Checks: integration.log {lines} lines, {logged_twice} hashes logged twice; VirusTotal alerts for "
        f"{len(vt_alerts)} files, {sum(1 for v in vt_alerts.values() if v > 1)} alerted twice; "
        f"{exit_text(ex)}.", "", other)


def vt_memory(ctx):
    """The same tree with VirusTotal off, then on at 1 request a minute, so that nearly
    every hash stays queued."""
    tree = "small" if ctx.quick else "large"
    T = os.path.join(ctx.dir, tree)
    files, _ = make_tree(tree, T)
    warm(T)
    secs = 5 if ctx.quick else ctx.mem_secs
    load = Load("the memory part", ctx.wait_quiet)
    runs = {}
    for vt in ("off", "on"):
        log(f"[memory] the {tree} tree, VirusTotal {vt}")
        work = fresh_dir(os.path.join(ctx.dir, "work", f"vt-mem-{vt}"))
        sd = Standin(work, 30) if vt == "on" else None
        try:
            runs[vt] = watch_tree(ctx, work, T, secs, vt={"port": sd.port, "rpm": 1} if sd else None)
        finally:
            if sd:
                sd.stop()
        shutil.rmtree(os.path.join(work, "data"))
    note, other = load.end()
    off, on = runs["off"], runs["on"]
    dh, dr = on["hwm"] - off["hwm"], on["rss"] - off["rss"]
    out("", f"### Memory with {on['queue']} hashes queued ({tree} tree, {files} files){note}", "",
        f"Baseline, then {secs} s of watching; VirusTotal on: `scan_baseline = true`, `requests_per_minute = 1`.",
        "", "| VirusTotal | `vt_queue` rows | baseline (s) | peak RSS (MiB) | steady RSS (MiB) | fimvt.db (MB) |",
        "|---|---:|---:|---:|---:|---:|")
    for vt, r in runs.items():
        out(f"| {vt} | {r.get('queue', '–')} | {f3(r['baseline_s'])} | {mib(r['hwm'])} | {mib(r['rss'])} | "
            f"{r['db_mb']:.1f} |")
    out("", f"**VirusTotal on: peak {dh / 1024:+.1f} MiB, steady {dr / 1024:+.1f} MiB** (target < 50 MB): "
        f"{verdict(max(dh, dr) * 1024 < 50e6)}. Clean stops: {off['exit']['clean']}, {on['exit']['clean']}.",
        "", other)


class Side:
    """One of the latency part's two fimvt: `idle` with VirusTotal off, `busy` with it
    on and the backlog being looked up. Both watch the backlog tree and an empty
    folder of their own."""

    def __init__(self, ctx, work, vt, sd):
        self.vt, self.work = vt, os.path.join(work, vt)
        self.watched = os.path.join(self.work, "watched")
        os.makedirs(self.watched)
        self.fim = Daemon(ctx.fimvt, self.work, [ctx.backlog, self.watched],
                          vt={"port": sd.port, "rpm": ctx.lat_rpm} if sd else None)
        self.fim.wait_scan(120)
        self.reader = None
        self.created = []   # (path, t_close, sha256, measured, block)
        self.windows = []   # (start ns, end ns) of this side's blocks

    def result(self, timeout):
        lat, blocks, lost, late = [], {}, 0, 0
        for path, t, _, measured, b in self.created:
            ts = self.reader.added.get(path)
            if not measured:
                continue
            if not ts:
                lost += 1
            elif ts[0] - t > timeout * NS:
                late += 1
            else:
                lat.append((ts[0] - t) / MS)
                blocks.setdefault(b, []).append((ts[0] - t) / MS)
        ours = {c[0]: c[2] for c in self.created}
        ev, vt_alerts, bad = alerts_json(self.fim.data)
        rows = db_rows(self.fim.data)
        return {"vt": self.vt, "ms": lat, "blocks": list(blocks.values()), "lost": lost, "late": late,
                "created": len(ours), "dup": sum(len(v) - 1 for p, v in self.reader.added.items() if p in ours),
                "other": sum(len(v) for p, v in self.reader.others.items() if p in ours),
                "db_missing": sum(1 for p in ours if p not in rows),
                "db_bad": sum(1 for p, h in ours.items() if p in rows and rows[p] != h),
                "vt_alerted": sum(1 for p in ours if p in vt_alerts),
                "vt_twice": sum(1 for p in ours if vt_alerts.get(p, 0) > 1), "json_bad": bad,
                "window_s": sum(e - s for s, e in self.windows) / NS}


def vt_latency_run(ctx, run, block_ms=600, skip_ms=50, timeout=10):
    """Both cases in one run, taking turns in blocks of BLOCK_MS: on these shared machines
    a block's median drifts by half over tens of seconds, so idle and busy measured in
    separate runs differed by as much as the effect sought. While an idle block runs,
    the busy fimvt and the stand-in are stopped (SIGSTOP), as if VirusTotal were off;
    while a busy block runs, the idle fimvt gets no events. Creations begun in a
    block's first SKIP_MS are not measured (the stopped processes catch up first)."""
    n = ctx.lat_n or (200 if ctx.quick else 2000)
    work = fresh_dir(os.path.join(ctx.dir, "work", f"vt-lat{run}"))
    sd = Standin(work, ctx.lat_delay_ms)
    sides, stopped = {}, False

    def pause_busy(stop):
        nonlocal stopped
        for pid in (sides["busy"].fim.pid, sd.proc.pid):
            os.kill(pid, signal.SIGSTOP if stop else signal.SIGCONT)
        stopped = stop

    try:
        # idle first: its baseline is not slowed by the busy one's lookups
        sides["idle"] = Side(ctx, work, "idle", None)
        sides["busy"] = busy = Side(ctx, work, "busy", sd)
        deadline = time.monotonic() + 60
        while len(sd.poll()) < 20:
            if time.monotonic() > deadline:
                raise RuntimeError("fewer than 20 lookups within 60 s of the baseline")
            time.sleep(0.005)
        for s in sides.values():
            s.reader = Alerts(s.fim.data)
        readers = [s.reader for s in sides.values()]
        rng, counts, b = random.Random(f"vt-latency/{run}"), {"idle": 0, "busy": 0}, 0
        pause_busy(True)
        # blocks are timed, not counted, so they last as long back to back as spaced
        while min(counts.values()) < n or b % 2:
            s = sides["idle" if b % 2 == 0 else "busy"]
            if s is busy:
                pause_busy(False)
            start = now_ns()
            i = 0
            while (t_begin := now_ns()) < start + block_ms * MS:
                path = os.path.join(s.watched, f"lat-{s.vt}-r{run}-b{b:03d}-{i:05d}.dat")
                i += 1
                t, sha = create(path, rng)
                measured = t_begin >= start + skip_ms * MS
                counts[s.vt] += measured
                s.created.append((path, t, sha, measured, b))
                while path not in s.reader.added and (left := t + timeout * NS - now_ns()) > 0:
                    pump(readers, left / NS)
                # spaced: keep reading meanwhile, so VirusTotal alert lines do not pile
                # up in front of the next sample
                while (left := t + ctx.gap_ms * MS - now_ns()) > 0:
                    pump(readers, left / NS)
            s.windows.append((start, now_ns()))
            if s is busy:
                pause_busy(True)
            b += 1
        pause_busy(False)
        grace = now_ns() + NS
        while (left := grace - now_ns()) > 0:
            pump(readers, left / NS)
        # every new file's hash is looked up too, at realtime priority: give them time
        ours = {c[2] for c in busy.created}
        deadline = time.monotonic() + (5 if ctx.quick else 20)
        while time.monotonic() < deadline and not ours <= {r[1] for r in sd.poll()}:
            time.sleep(0.1)
        time.sleep(0.5)
        for s in sides.values():
            s.exit = s.fim.stop()
        sd.stop()
        res = [sides["idle"].result(timeout), busy.result(timeout)]
        rts = [r[0] for r in sd.reqs]
        res[1]["lookups"] = sum(bisect.bisect_right(rts, e) - bisect.bisect_left(rts, s) for s, e in busy.windows)
        asked = {r[1] for r in sd.reqs}
        res[1]["asked"] = sum(1 for h in ours if h in asked)
        res[1]["asked_twice"] = sd.asked_twice()
        for r, s in zip(res, (sides["idle"], busy)):
            r["exit"] = s.exit
    finally:
        if stopped:
            pause_busy(False)
        for s in sides.values():
            if s.reader:
                s.reader.close()
            s.fim.kill()
        sd.stop()
    for r in res:
        s = summary(r["ms"]) or {"p50": None, "p99": None}
        log(f"[latency run {run}] {r['vt']}: p50 {f3(s['p50'])} ms, p99 {f3(s['p99'])} ms, lost {r['lost']}")
    return res


def noise_floor(idle_blocks, splits=500):
    """How far apart two halves of the idle blocks are, as busy/idle would be with no
    effect at all: the 5th-95th percentile, over random even splits, of each statistic's
    ratio. None with fewer than 4 blocks."""
    n = len(idle_blocks)
    if n < 4:
        return None
    rng, ratios = random.Random("noise-floor"), {"p50": [], "p99": [], "mean": []}
    for _ in range(splits):
        half = set(rng.sample(range(n), n // 2))
        a = summary([v for i in half for v in idle_blocks[i]])
        b = summary([v for i in range(n) if i not in half for v in idle_blocks[i]])
        for k in ratios:
            ratios[k].append(b[k] / a[k])
    return {k: (sorted(v)[int(0.05 * (splits - 1))], sorted(v)[int(0.95 * (splits - 1))]) for k, v in ratios.items()}


def vt_latency(ctx):
    load = Load("the latency part", ctx.wait_quiet)
    rounds = 1 if ctx.quick else ctx.lat_rounds
    runs = [r for i in range(rounds) for r in vt_latency_run(ctx, i + 1)]
    note, other = load.end()
    idle, busy = [r for r in runs if r["vt"] == "idle"], [r for r in runs if r["vt"] == "busy"]
    pace = 4 * 1000 / ctx.lat_delay_ms
    out("", f"### FIM alert latency, VirusTotal busy vs off: {rounds} run(s), "
        + (f"spaced {ctx.gap_ms:g} ms" if ctx.gap_ms else "back to back") + note, "",
        f"Two fimvt side by side, each watching the backlog tree and an empty folder: idle = VirusTotal off; "
        f"busy = on, the backlog queued, `requests_per_minute = {ctx.lat_rpm}`, concurrency 4, the stand-in "
        f"answering after {ctx.lat_delay_ms:g} ms (4 in flight: at most {pace * 60:,.0f}/min). They take turns in "
        "blocks of 600 ms (the first 50 ms not measured); the busy fimvt and the stand-in are stopped "
        "(SIGSTOP) during idle blocks. A sample: create + write + close(), then wait for the file's `added` "
        "line in that fimvt's alerts.log" + (f", at least {ctx.gap_ms:g} ms from one close() to the next "
                                             "creation." if ctx.gap_ms else ", the next created at once."), "",
        "| ms, idle → busy | n | p50 | p90 | p99 | mean |", "|---|---:|---|---|---|---|")

    def cell(a, b, k):
        return f"{a[k]:.3f} → {b[k]:.3f} ({b[k] / a[k]:.2f}×, {(b[k] - a[k]) * 1000:+.0f} µs)"

    pairs = [(f"run {i + 1}", idle[i]["ms"], busy[i]["ms"]) for i in range(rounds)] if rounds > 1 else []
    for label, a, b in pairs + [("**all runs**", [v for r in idle for v in r["ms"]],
                                  [v for r in busy for v in r["ms"]])]:
        sa, sb = summary(a), summary(b)
        if sa and sb:
            out(f"| {label} | {sa['n']} / {sb['n']} | " + " | ".join(cell(sa, sb, k) for k in
                                                                 ("p50", "p90", "p99", "mean")) + " |")
    floor = noise_floor([blk for r in idle for blk in r["blocks"]])
    sa, sb = summary([v for r in idle for v in r["ms"]]), summary([v for r in busy for v in r["ms"]])
    if sa and sb:
        ok = all(sb[k] / sa[k] <= 1.10 for k in ("p50", "p90", "p99", "mean"))
        out("", f"Target: busy within 10% of idle at p50, p90, p99 and mean: {verdict(ok)}.")
    if floor:
        out("", "Noise floor (the idle blocks split at random into two halves, 500 splits, 5th–95th percentile of "
            "the half/half ratio; a busy/idle ratio inside it is not an effect this run can show): "
            + ", ".join(f"{k} {lo:.2f}–{hi:.2f}×" for k, (lo, hi) in floor.items()) + ".")
    lookups, window = sum(r["lookups"] for r in busy), sum(r["window_s"] for r in busy)
    out("", f"Lookups during busy blocks: {lookups} in {window:.1f} s ({lookups / max(window, 1e-9):.1f}/s).",
        "", "Checks: " + "; ".join(
            f"{r['vt']} run {i // 2 + 1}: {r['created']} files, lost {r['lost']}, late {r['late']}, duplicate "
            f"`added` {r['dup']}, other events {r['other']}, `files` rows missing {r['db_missing']} / wrong "
            f"{r['db_bad']}" + (f", new files asked {r['asked']}/{r['created']}, hashes asked twice "
                                f"{r['asked_twice']}, VirusTotal alerts for {r['vt_alerted']} new files "
                                f"({r['vt_twice']} twice)" if r["vt"] == "busy" else "")
            + f", {exit_text(r['exit'])}" for i, r in enumerate(runs)) + ".", "", other)


def area_virustotal(ctx, parts):
    ctx.backlog = os.path.join(ctx.dir, "backlog6000")
    backlog_tree(ctx.backlog)
    warm(ctx.backlog)
    out("", f"## VirusTotal — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        f"- machine: {machine_line()}", f"- fimvt: {ctx.fimvt_desc}",
        "- VirusTotal: bench/vt_standin.py on 127.0.0.1 at nice 19 (HTTP/1.1 keep-alive; 75% reports, 25% 404); "
        "the backlog: 6,000 small files of distinct content")
    for part in parts:
        {"rate": vt_rate, "memory": vt_memory, "latency": vt_latency}[part](ctx)


# --------------------------------------------------------------- main
AREAS = {"scan": (area_scan, ["small", "large"]), "realtime": (area_realtime, ["latency", "burst", "idle"]),
         "virustotal": (area_virustotal, ["rate", "memory", "latency"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("area", choices=[*AREAS, "all"])
    ap.add_argument("parts", nargs="*", help="parts of the area (default: all of them)")
    ap.add_argument("--quick", action="store_true", help="smoke run: small tree, one run, short windows")
    ap.add_argument("--fimvt", help="this fimvt binary instead of building one (the ceiling still comes from "
                    "target/release/examples, if built)")
    ap.add_argument("--dir", default="/tmp/fimvt-bench", help="trees and work folders (default %(default)s)")
    ap.add_argument("--runs", type=int, default=3, help="scan, burst and idle runs, median (default 3)")
    ap.add_argument("--wait-quiet", type=int, default=300,
                    help="seconds to wait before each part for the CPU to be < 10%% busy (default 300)")
    g = ap.add_argument_group("realtime")
    g.add_argument("--idle-secs", type=float, default=30, help="idle window on the large tree (30)")
    g = ap.add_argument_group("virustotal")
    g.add_argument("--rate-secs", type=float, default=300, help="length of the rate part (300)")
    g.add_argument("--rpm", type=int, default=1000, help="requests_per_minute of the rate part (1000)")
    g.add_argument("--mem-secs", type=float, default=30, help="watching window of the memory part (30)")
    g.add_argument("--lat-rounds", type=int, default=1, help="latency runs, pooled (1)")
    g.add_argument("--lat-rpm", type=int, default=1000, help="requests_per_minute of the busy side (1000)")
    g.add_argument("--lat-delay-ms", type=float, default=240,
                   help="the stand-in's answer time in the latency part: 4 in flight at 240 ms is 1,000/min (240)")
    g.add_argument("--gap-ms", type=float, default=10,
                   help="at least this long from one close() to the next creation; 0 = back to back (10)")
    ap.add_argument("--lat-n", type=int, help="measured creations: realtime (1000), per case and run in "
                    "virustotal (2000; back to back use 20000)")
    a = ap.parse_args()
    areas = list(AREAS) if a.area == "all" else [a.area]
    if a.area == "all" and a.parts:
        ap.error("`all` takes no parts")
    parts = a.parts or (["small"] if a.quick and a.area == "scan" else AREAS[areas[0]][1])
    bad = [p for p in parts if p not in AREAS[areas[0]][1]]
    if bad:
        ap.error(f"{areas[0]} has no part {', '.join(bad)} (it has {', '.join(AREAS[areas[0]][1])})")
    if a.quick:
        a.runs, a.wait_quiet = 1, 0
    a.dir = os.path.abspath(a.dir)
    if any(c.isspace() or c in "\"'" for c in a.dir):
        ap.error("--dir must not contain spaces or quotes")
    os.makedirs(a.dir, exist_ok=True)

    def bye(sig, _frame):   # SIGTERM/SIGHUP run the finally blocks that stop what we started
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGHUP, bye)
    ensure_tools(areas)
    a.fimvt, a.ceiling, a.fimvt_desc = binaries(a)
    if a.quick:
        out("", "**Smoke run (--quick): small tree, one run, short windows. Not figures to publish.**")
    try:
        for area in areas:
            fn, all_parts = AREAS[area]
            fn(a, parts if a.area != "all" else (["small"] if a.quick and area == "scan" else all_parts))
    except KeyboardInterrupt as e:
        sys.exit(f"[bench] interrupted ({e or 'Ctrl-C'}); what it started is stopped")


if __name__ == "__main__":
    main()
