#!/usr/bin/env python3
"""Rewrite N files of a benchmark tree, deterministically.

usage: change_files.py DEST N SEED

Used for the "re-scan after changing 100 files" cases.  The choice depends
only on (sorted file listing, N, SEED), so on a pristine tree (see
gen_tree.py, which restores the tree) the same SEED always changes the same
files with the same new bytes.

Which files: a seeded sample of the regular files <= 1 MiB (the small and
medium classes).  The few 16-64 MiB files are left out on purpose so that the
cost of re-hashing the changed files stays small and comparable between runs;
the point of this case is the cost of *finding* 100 changes in a large tree.

How: each chosen file is rewritten in place (same inode) with new random
bytes; half keep their size, half get a new size in [50%, 150%] of the old
one.  Because we don't reset the mtime, the files now have a fresh mtime and
ctime, exactly like an ordinary edit.

stdlib only.
"""

import os
import random
import sys

MiB = 1024 * 1024
SKIP_NAMES = {".complete", ".generating"}  # gen_tree.py markers


def list_files(dest):
    out = []
    for root, dirs, names in os.walk(dest):
        dirs.sort()
        for name in names:
            if root == dest and name in SKIP_NAMES:
                continue
            path = os.path.join(root, name)
            st = os.lstat(path)
            if os.path.stat.S_ISREG(st.st_mode):
                out.append((os.path.relpath(path, dest), st.st_size))
    out.sort()
    return out


def main():
    if sys.version_info < (3, 9):
        sys.exit("needs Python >= 3.9 (random.randbytes)")
    if len(sys.argv) != 4:
        sys.exit("usage: change_files.py DEST N SEED")
    dest, n, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    candidates = [(rel, size) for rel, size in list_files(dest) if size <= MiB]
    if n > len(candidates):
        sys.exit(f"only {len(candidates)} files <= 1 MiB in {dest}, asked for {n}")
    rng = random.Random(f"change/{seed}")
    chosen = rng.sample(candidates, n)

    written = 0
    same_size = 0
    for rel, size in chosen:
        r = random.Random(f"change/{seed}/{rel}")
        if r.random() < 0.5:
            new_size = size
            same_size += 1
        else:
            new_size = max(1, int(size * r.uniform(0.5, 1.5)))
        with open(os.path.join(dest, rel), "r+b") as f:  # r+b keeps the inode
            f.write(r.randbytes(new_size))
            f.truncate()
        written += new_size
    print(f"changed {n} files (seed {seed}, {same_size} same size), "
          f"wrote {written} bytes in {dest}")


if __name__ == "__main__":
    main()
