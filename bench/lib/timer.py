#!/usr/bin/env python3
"""Spawn-and-reap timer for bench/rows/startup.ts and the start-up notes in bench/README.md (python3 stdlib only).

Usage: python3 timer.py SPEC_JSON
SPEC_JSON: {"runs": N, "warmup": 1, "variants": [{"name": str, "argv": [str], "cwd": str}]}
Runs every variant `runs` times, interleaved (after `warmup` untimed runs each), stdio to /dev/null,
and prints one JSON object: {name: [{"wall_ms", "cpu_ms", "user_ms", "sys_ms", "maxrss_kib", "status"}]}.
CPU times come from wait4()'s rusage of that one child, so they do not depend on what else the
machine is running as much as wall time does.
"""
import json
import os
import subprocess
import sys
import time


def run_once(v):
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(v["argv"], cwd=v.get("cwd"), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.perf_counter_ns()
    p.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_ms": (t1 - t0) / 1e6,
        "cpu_ms": (ru.ru_utime + ru.ru_stime) * 1000,
        "user_ms": ru.ru_utime * 1000,
        "sys_ms": ru.ru_stime * 1000,
        "maxrss_kib": ru.ru_maxrss,
        "status": p.returncode,
    }


def main():
    spec = json.loads(sys.argv[1])
    out = {v["name"]: [] for v in spec["variants"]}
    for _ in range(spec.get("warmup", 1)):
        for v in spec["variants"]:
            run_once(v)
    for _ in range(spec["runs"]):
        for v in spec["variants"]:
            out[v["name"]].append(run_once(v))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
