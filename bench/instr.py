#!/usr/bin/env python3
"""instr.py -- instructions per publication, per process (valgrind
--tool=callgrind), for a flood of 1 KiB publications through the relay:
Redis, saltrelay-up and saltrelay-down each under callgrind in turn (the
others run natively), counters zeroed right before the flood and dumped
right after it (callgrind_control); the figure is the difference between a
flood of LARGE and one of SMALL publications, divided by LARGE - SMALL, so
what does not grow with the count (start, idle timers) cancels. The
baseline in the same run: Redis running raw pipelined XADDs of the same
payloads (512 per round trip, bench/run.sh's xadd). Instruction counts do
not depend on what else runs on the machine: this is the benchmark to
compare builds on a shared one (cycles differ: a Lua string hash is cheap
per instruction, a syscall is not counted at all).

  bench/instr.py BUILD_DIR [--size 1024] [--small 500] [--large 3000]
"""

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import harness as h  # noqa: E402


def cg_total(out):
    """Instructions in the dump callgrind_control -d wrote (OUT.1)."""
    for f in sorted(glob.glob(out + ".*")):
        with open(f, errors="replace") as fh:
            for line in fh:
                if line.startswith("summary:"):
                    return int(line.split()[1])
    return 0


def control(flag, pid):
    subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, timeout=60)


def raw_xadd(port, n, size):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        cmd = b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (b"XADD", b"bench:raw", b"MAXLEN", b"~", b"100000",
                                                                  b"*", b"f0"))
        for start in range(0, n, 512):
            k = min(512, n - start)
            s.sendall(b"".join(b"*8\r\n" + cmd + b"$%d\r\n%s\r\n" % (size, (b"%010d" % (start + i)).ljust(size, b"x"))
                               for i in range(k)))
            got = b""
            while got.count(b"\r\n") < 2 * k:
                got += s.recv(65536)


def one(build, who, n, size):
    """Instructions WHO ran for N publications."""
    tmp = tempfile.mkdtemp(prefix="saltrelay-instr-")
    out = os.path.join(tmp, "cg.out")
    vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
    try:
        redis = h.Redis(tmp, "redis", start=False)
        if who in ("redis", "raw"):
            redis.proc = h.spawn(vg + ["redis-server", "--port", str(redis.port), "--bind", "127.0.0.1", "--dir",
                                       redis.dir, "--save", "", "--appendonly", "no", "--logfile",
                                       os.path.join(redis.dir, "redis.log")], stderr=subprocess.DEVNULL)
            h.wait_until(redis.ping, 60, "redis under callgrind")
        else:
            redis.start()
        if who == "raw":
            control("-z", redis.proc.pid)
            raw_xadd(redis.port, n, size)
            control("-d", redis.proc.pid)
            return cg_total(out)
        for kind in ("up", "down"):
            h.BIN[kind] = os.path.join(build, "relay-%s" % kind, "saltrelay-%s" % kind)
        if who in ("up", "down"):
            wrapper = os.path.join(tmp, "vg-" + who)
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec %s %s \"$@\"\n" % (" ".join(vg), h.BIN[who]))
            os.chmod(wrapper, 0o755)
            h.BIN[who] = wrapper
        mom, dc = ("tcp://127.0.0.1:%d" % h.free_port() for _ in range(2))
        up = h.Daemon("up", tmp, "up", cluster="bench", redis=redis.url, master_publish=mom,
                      master_ret="tcp://127.0.0.1:%d" % h.free_port()).start(wait_ready=False)
        os.makedirs(os.path.join(tmp, "state"))
        down = h.Daemon("down", tmp, "down", cluster="bench", datacenter="dc1", redis=redis.url,
                        publish_bind=dc, ret_bind="tcp://127.0.0.1:%d" % h.free_port(),
                        state_dir=os.path.join(tmp, "state")).start(wait_ready=False)
        up.wait_log(h.READY, 120)
        down.wait_log(h.READY, 120)
        sub = h.Sub(dc, "--count", n, "--idle-ms", 120000, "--max-ms", 1800000)
        time.sleep(2)
        pid = {"redis": redis.proc, "up": up.proc, "down": down.proc}[who].pid
        control("-z", pid)
        h.zpub(mom, "--gen", n, "--size", size, timeout=1800)
        got = len(sub.lines(timeout=1800))
        control("-d", pid)
        h.check(got == n, "%d of %d publications delivered" % (got, n))
        return cg_total(out)
    finally:
        h.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--large", type=int, default=3000)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    h.BUILD = build
    per = {}
    for who in ("raw", "redis", "up", "down"):
        per[who] = (one(build, who, a.large, a.size) - one(build, who, a.small, a.size)) / (a.large - a.small)
    print("instructions per publication of %d B (callgrind, flood of %d minus flood of %d)" %
          (a.size, a.large, a.small))
    print("  Redis, raw pipelined XADD (baseline)  %8.0f" % per["raw"])
    print("  Redis, relay (store script + XREAD)   %8.0f  (%.2f x the baseline)" %
          (per["redis"], per["redis"] / per["raw"]))
    print("  saltrelay-up                          %8.0f" % per["up"])
    print("  saltrelay-down                        %8.0f" % per["down"])
    print("  relay in all                          %8.0f  (%.2f x the baseline)" %
          (per["redis"] + per["up"] + per["down"], (per["redis"] + per["up"] + per["down"]) / per["raw"]))


if __name__ == "__main__":
    main()
