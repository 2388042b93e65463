"""test_pipeline.py -- request intake's Redis pipeline (issue 8): with 1,500
requests of 1 MiB arriving at once, saltrelay-down's memory stays within
max_pending_bytes (payloads not yet in Redis) plus the pipeline's byte cap,
because the thread serving the ROUTER never waits for Redis and never
formats more than the cap into the connection's buffer. Before, it wrote up
to 256 requests, formatted, and waited for every reply while requests piled
up: 887 MiB for max_pending_bytes 256 MiB.

Release build only (the sanitizers' own memory would be measured too)."""

import os
import re
import subprocess
import time

import harness
from harness import Daemon, Redis, check, tool

MIB = 1 << 20
PENDING = 256 * MIB  # max_pending_bytes (the default)
MARGIN = 128 * MIB   # the pipeline's cap (8 MiB), ZeroMQ's buffers, the process itself


def sanitizer_build():
    with open(os.path.join(harness.BUILD, "CMakeCache.txt")) as f:
        return "SALTRELAY_SANITIZE:BOOL=ON" in f.read()


def peak_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) * 1024


def test_request_flood_memory(tmp):
    if sanitizer_build():
        print("SKIP: memory figures of a sanitizer build mean nothing")
        return
    # Redis stores some 250 of them, then refuses (OOM): every request still
    # crosses the pipeline whole, and the primary does not grow to 1.5 GB
    redis = Redis(tmp, extra=["--maxmemory", "300mb", "--maxmemory-policy", "noeviction"])
    os.makedirs(os.path.join(tmp, "state"), exist_ok=True)
    ret = "tcp://127.0.0.1:%d" % harness.free_port()
    d = Daemon("down", tmp, "down", cluster="t1", datacenter="dc1", redis=redis.url, ret_bind=ret,
               publish_bind="tcp://127.0.0.1:%d" % harness.free_port(), state_dir=os.path.join(tmp, "state"),
               request_timeout=2, max_frame_size=2 * MIB, max_pending_bytes=PENDING, log_level="info").start()
    t0 = time.monotonic()
    r = subprocess.run([tool("zflood"), ret, "1500", str(MIB)], capture_output=True, timeout=300)
    check(r.returncode == 0, "zflood: %s" % r.stderr.decode())
    harness.wait_until(lambda: redis.cli("XLEN", "saltrelay:{t1}:req:dc1") != "0", 30, "requests in Redis")
    time.sleep(2)
    peak = peak_rss(d.proc.pid)
    took = time.monotonic() - t0
    check(d.term() == 0, "saltrelay-down did not stop cleanly")
    n = int(re.findall(r"requests: (\d+) in", d.log())[-1])
    print("1,500 x 1 MiB requests in %.1f s: %d taken in, peak RSS %.0f MiB (max_pending_bytes %d MiB)" %
          (took, n, peak / MIB, PENDING // MIB))
    check(n == 1500, "saltrelay-down saw %d of the 1500 requests" % n)
    check(peak < PENDING + MARGIN, "peak RSS %.0f MiB over max_pending_bytes %d MiB + %d MiB" %
          (peak / MIB, PENDING // MIB, MARGIN // MIB))


harness.main(globals())
