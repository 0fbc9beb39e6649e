#!/usr/bin/env python3
"""Runs a command and reports the peak of the summed RSS of its whole process tree.

A JVM started by a Python driver (PySpark) or any other multi-process service is measured as
the sum of its processes, sampled every 100 ms from /proc; `/usr/bin/time -v` reports only the
largest single process. Also reports wall time and CPU time.

Fields of OUT.json: wall_s; peak_tree_rss_mb (summed tree, sampled); max_rss_mb (the largest
single process's peak, exact: the kernel's ru_maxrss); peak_rss_mb (the larger of the two);
cpu_s: user + system seconds of every thread of the command and of its descendants, the larger
of the kernel's account of the reaped tree (wait4) and the sum sampled from /proc (which also
counts descendants nobody waited for, such as a JVM left to the driver's exit).

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


TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """utime + stime of one process (all its threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def tree_pids(root):
    kids = children_map()
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(kids.get(pid, []))
    return pids


def main():
    out, cmd = sys.argv[1], sys.argv[2:]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    peak = 0
    seen = {}  # pid -> last sampled CPU ticks
    status = None
    while True:
        pids = tree_pids(proc.pid)
        peak = max(peak, sum(rss_kb(p) for p in pids))
        for p in pids:
            t = cpu_ticks(p)
            if t is not None:
                seen[p] = max(seen.get(p, 0), t)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        time.sleep(0.1)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    reaped_cpu = usage.ru_utime + usage.ru_stime
    sampled_cpu = sum(seen.values()) / TICK
    max_rss = usage.ru_maxrss / 1024
    with open(out, "w") as f:
        json.dump({"wall_s": round(wall, 3), "peak_tree_rss_mb": round(peak / 1024, 1), "max_rss_mb": round(max_rss, 1),
                   "peak_rss_mb": round(max(peak / 1024, max_rss), 1), "cpu_s": round(max(reaped_cpu, sampled_cpu), 3),
                   "cpu_reaped_s": round(reaped_cpu, 3), "cpu_sampled_s": round(sampled_cpu, 3), "exit": code}, f)
    sys.exit(code)


if __name__ == "__main__":
    main()
