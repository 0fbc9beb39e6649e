#!/usr/bin/env python3
"""Runs a command and reports the peak of the summed RSS of its whole process tree.

A JVM started by a Python driver (PySpark) or any other multi-process service is measured as
the sum of its processes, sampled every 100 ms from /proc; `/usr/bin/time -v` reports only the
largest single process. Also reports wall time.

Usage: treerss.py OUT.json CMD [ARGS...]   (CMD's stdout/stderr pass through; exit status too)
"""
import json
import os
import subprocess
import sys
import time


def children_map():
    kids = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(pid))
    return kids


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(root):
    kids = children_map()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss_kb(pid)
        stack.extend(kids.get(pid, []))
    return total


def main():
    out, cmd = sys.argv[1], sys.argv[2:]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.1)
    wall = time.monotonic() - t0
    with open(out, "w") as f:
        json.dump({"wall_s": round(wall, 3), "peak_tree_rss_mb": round(peak / 1024, 1), "exit": proc.returncode}, f)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
