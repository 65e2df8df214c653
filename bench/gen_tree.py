#!/usr/bin/env python3
"""Build a deterministic synthetic file tree for the fimvt benchmarks.

usage: gen_tree.py small|large DEST [--dry-run]

The tree is a pure function of the profile parameters below (fixed seed): the
same directory layout, file names, sizes and bytes on every machine.  Content
is random bytes, so nothing in the pipeline gets a free ride from compression
or deduplication.

Every generated file gets a fixed mtime (FIXED_MTIME).  That makes a later
"is the tree still pristine?" check cheap: bench/change_files.py rewrites
files (new mtime, maybe new size), and when this script is re-run on an
existing tree (DEST/.complete present with the same parameters) it does not
regenerate anything, it only stats every file and rewrites the few whose size
or mtime no longer match.  So the benchmark can restore the tree between runs
in well under a second instead of regenerating 1.7 GB.

Size mix (same classes for both profiles, counts tuned to hit the totals):
  small files   1-64 KiB, log-uniform (median 8 KiB, mean ~15 KiB)
  medium files  exactly 1 MiB
  big files     16-64 MiB, stratified so a handful of files still average ~40 MiB
small: 10,000 files, 100 dirs   -> ~330 MB
large: 100,000 files, 1,000 dirs -> ~1.7 GB  (fewer medium files per 1,000 than
       small, because 10x the small profile would be 3.3 GB, not 1.7 GB)

stdlib only; needs Python >= 3.9 (random.randbytes).
"""

import json
import os
import random
import shutil
import sys

KiB = 1024
MiB = 1024 * KiB

# Bump GENERATOR_VERSION whenever the algorithm changes so an old tree on disk
# is not mistaken for a current one.
GENERATOR_VERSION = 1
SEED = 20240917
FIXED_MTIME = 1_700_000_000  # 2023-11-14T22:13:20Z
MAX_DEPTH = 4
CHUNK = 1 * MiB

PROFILES = {
    "small": {"files": 10_000, "dirs": 100, "medium": 50, "big": 3},
    "large": {"files": 100_000, "dirs": 1_000, "medium": 50, "big": 3},
}

COMPLETE = ".complete"      # written last: tree is whole, holds the parameters
GENERATING = ".generating"  # written first: marks a dir we may wipe and redo


def params_for(profile):
    p = dict(PROFILES[profile])
    p.update(profile=profile, seed=SEED, version=GENERATOR_VERSION,
             fixed_mtime=FIXED_MTIME, max_depth=MAX_DEPTH)
    return p


def plan(p):
    """Return [(relpath, size, content_seed)] for every file, plus dir list."""
    rng = random.Random(f"tree/{p['seed']}/{p['profile']}")

    # Directories: grow a random tree; each new dir hangs under a random
    # existing dir that is still shallower than MAX_DEPTH.
    dirs = [""]  # "" is DEST itself
    depth = {"": 0}
    while len(dirs) - 1 < p["dirs"]:
        parents = [d for d in dirs if depth[d] < p["max_depth"]]
        parent = rng.choice(parents)
        child = os.path.join(parent, f"d{len(dirs):04d}")
        dirs.append(child)
        depth[child] = depth[parent] + 1

    n_small = p["files"] - p["medium"] - p["big"]
    sizes = []
    for _ in range(n_small):
        # log-uniform in [1 KiB, 64 KiB]: many small files, a tail of larger
        sizes.append(int(KiB * 64 ** rng.random()))
    sizes += [MiB] * p["medium"]
    lo, hi = 16 * MiB, 64 * MiB
    for i in range(p["big"]):
        # stratified: one draw per equal slice of [16, 64) MiB
        sizes.append(int(lo + (hi - lo) * (i + rng.random()) / p["big"]))
    rng.shuffle(sizes)

    files = []
    for i, size in enumerate(sizes):
        d = rng.choice(dirs)
        rel = os.path.join(d, f"f{i:06d}.dat")
        files.append((rel, size, f"content/{p['seed']}/{rel}"))
    return dirs, files


def write_file(path, size, content_seed):
    r = random.Random(content_seed)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(CHUNK, left)
            f.write(r.randbytes(n))
            left -= n
    os.utime(path, (FIXED_MTIME, FIXED_MTIME))


def read_marker(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    if sys.version_info < (3, 9):
        sys.exit("needs Python >= 3.9 (random.randbytes)")
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    dry_run = "--dry-run" in sys.argv[1:]
    if len(args) != 2 or args[0] not in PROFILES:
        sys.exit("usage: gen_tree.py small|large DEST [--dry-run]")
    profile, dest = args
    p = params_for(profile)
    dirs, files = plan(p)
    total = sum(s for _, s, _ in files)

    def summary(what):
        print(f"{what}: profile={profile} files={len(files)} dirs={len(dirs) - 1} "
              f"bytes={total} ({total / 1e6:.1f} MB) dest={dest}")

    if dry_run:
        summary("plan")
        return

    complete = os.path.join(dest, COMPLETE)
    if read_marker(complete) == p:
        # Already generated with these parameters: skip generation, just
        # undo whatever change_files.py did (size/mtime mismatch -> rewrite).
        restored = 0
        for rel, size, cseed in files:
            path = os.path.join(dest, rel)
            try:
                st = os.stat(path)
                ok = st.st_size == size and st.st_mtime == FIXED_MTIME
            except FileNotFoundError:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                ok = False
            if not ok:
                write_file(path, size, cseed)
                restored += 1
        summary(f"exists (restored {restored} modified files)")
        return

    # Fresh generation.  Only wipe DEST if it is empty or clearly ours.
    if os.path.isdir(dest) and os.listdir(dest):
        ours = os.path.exists(complete) or os.path.exists(os.path.join(dest, GENERATING))
        if not ours:
            sys.exit(f"refusing to overwrite non-empty {dest}: no {COMPLETE}/{GENERATING} marker")
        print(f"removing stale tree {dest}", file=sys.stderr)
        shutil.rmtree(dest)
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, GENERATING), "w") as f:
        json.dump(p, f)

    for d in dirs[1:]:
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    for n, (rel, size, cseed) in enumerate(files, 1):
        write_file(os.path.join(dest, rel), size, cseed)
        if n % 10_000 == 0:
            print(f"  {n}/{len(files)} files", file=sys.stderr)

    # The marker goes into DEST itself, so every tool sees one extra tiny file.
    os.rename(os.path.join(dest, GENERATING), complete)
    with open(complete, "w") as f:
        json.dump(p, f)
    summary("generated")


if __name__ == "__main__":
    main()
