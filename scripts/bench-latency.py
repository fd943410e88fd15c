#!/usr/bin/python3
"""bench-latency.py - cs-recommend serving one history at a time.

    /usr/bin/python3 scripts/bench-latency.py [options] MODEL VOCAB HISTORIES

HISTORIES holds text lines 'key<TAB>item item ...' (cs-recommend --text).
Prints, with the CPU's model name and flags:

  start-up   one history (the first line) through a fresh cs-recommend,
             from the spawn to the exit, RUNS times: the median and the
             fastest; the same with OpenBLAS's and libgomp's settings
             preset, which cs_blas_restart would otherwise change in place
             or by starting the program again (CS_BLAS_REEXEC=1,
             OMP_WAIT_POLICY=PASSIVE, OPENBLAS_THREAD_TIMEOUT=4, and
             OPENBLAS_CORETYPE=SkylakeX on an AVX-512 CPU), so the
             difference is what that change costs; and `cs-recommend
             --version` (process start and library loading, OpenBLAS's own
             start-up included, no model).
  latency    one running cs-recommend fed N histories (the lines of
             HISTORIES in turn) one at a time: each written, then its K
             answer lines read before the next is written; p50, p90, p99
             and the largest time from the write to the last line, after
             WARM answers not counted. -n 0 leaves this out (a cs-recommend
             older than this script answers only at the end of its input).

Options: --bin PATH [./cs-recommend, else cs-recommend on PATH], -k K [10],
-n N [1000], --warm WARM [20], -r RUNS [9], -j THREADS [all cores].
Figures are wall times on a possibly shared machine: the load average is
printed before and after.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def cpu_info():
    """The first CPU's model name and flags, from /proc/cpuinfo."""
    name, flags = "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "model name" and name == "?":
                    name = v.strip()
                elif k == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    return name, flags


def cpu_line():
    name, flags = cpu_info()
    have = [f for f in ("avx512f", "avx512_bf16", "amx_tile", "amx_bf16") if f in flags]
    return "cpu: %s, %d cores, flags: %s" % (name, os.cpu_count() or 0,
                                             " ".join(have) or "(no avx512f, avx512_bf16, amx)")


def avx512():
    """The CPU has AVX-512 F, BW, VL and DQ: cs runs OpenBLAS's SkylakeX kernel."""
    return {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= cpu_info()[1]


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def pct(v, p):
    """The p-th percentile of v (nearest rank)."""
    s = sorted(v)
    i = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[i]


def main():
    ap = argparse.ArgumentParser(description="cs-recommend start-up and per-history latency")
    ap.add_argument("model")
    ap.add_argument("vocab")
    ap.add_argument("histories")
    ap.add_argument("--bin", default=None)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--warm", type=int, default=20)
    ap.add_argument("-r", "--runs", type=int, default=9)
    ap.add_argument("-j", "--threads", type=int, default=0)
    a = ap.parse_args()
    binp = a.bin or ("./cs-recommend" if os.access("./cs-recommend", os.X_OK)
                     else shutil.which("cs-recommend"))
    if not binp:
        sys.exit("bench-latency.py: no cs-recommend (give --bin)")
    with open(a.histories, "rb") as f:
        lines = [l if l.endswith(b"\n") else l + b"\n" for l in f if l.strip()]
    if not lines:
        sys.exit("bench-latency.py: no histories in '%s'" % a.histories)
    cmd = [binp, "-q", "-m", a.model, "-v", a.vocab, "--text", "-k", str(a.k)]
    if a.threads:
        cmd += ["-j", str(a.threads)]

    print(cpu_line())
    print("binary: %s; load average: %s" % (binp, loadavg()))

    def once(argv, env=None, stdin=None):
        """Wall and CPU (user + system) milliseconds of one run."""
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=env)
        p.stdin.write(stdin or b"")
        p.stdin.close()
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        t = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            sys.exit("bench-latency.py: %s: exit %d: %s" % (argv[0], p.returncode,
                                                            err.decode(errors="replace")))
        return t * 1000.0, (ru.ru_utime + ru.ru_stime) * 1000.0

    preset = dict(os.environ, CS_BLAS_REEXEC="1", OMP_WAIT_POLICY="PASSIVE",
                  OPENBLAS_THREAD_TIMEOUT="4")
    if avx512():
        preset["OPENBLAS_CORETYPE"] = "SkylakeX"
    full, nore, ver = [], [], []
    for _ in range(a.runs):  # interleaved, so that a busy spell slows all alike
        full.append(once(cmd, stdin=lines[0]))
        nore.append(once(cmd, env=preset, stdin=lines[0]))
        ver.append(once([binp, "--version"]))
    m = statistics.median
    def show(what, v):
        wall, cpu = [x[0] for x in v], [x[1] for x in v]
        print("  %-30s %7.1f ms %7.1f ms %7.1f ms" % (what, m(wall), min(wall), m(cpu)))
    print("start-up, one history from spawn to exit, %d runs:" % a.runs)
    print("  %-30s %10s %10s %10s" % ("", "median", "fastest", "cpu (med)"))
    show("as run", full)
    show("settings preset (env)", nore)
    show("cs-recommend --version", ver)
    print("  the settings' change: %.1f ms wall, %.1f ms cpu (medians' difference)"
          % (m([x[0] for x in full]) - m([x[0] for x in nore]),
             m([x[1] for x in full]) - m([x[1] for x in nore])))

    if a.n <= 0:
        print("load average: %s" % loadavg())
        return
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    out = p.stdout
    times = []
    try:
        for i in range(a.warm + a.n):
            line = lines[i % len(lines)]
            t0 = time.monotonic()
            p.stdin.write(line)
            for _ in range(a.k):
                if not out.readline():
                    sys.exit("bench-latency.py: cs-recommend stopped answering")
            if i >= a.warm:
                times.append((time.monotonic() - t0) * 1000.0)
    finally:
        p.stdin.close()
        p.wait()
    print("latency of one history in a running cs-recommend, top-%d, %d histories after %d:"
          % (a.k, a.n, a.warm))
    print("  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms"
          % (pct(times, 50), pct(times, 90), pct(times, 99), max(times)))
    print("load average: %s" % loadavg())


if __name__ == "__main__":
    main()
