#!/usr/bin/env python3
"""wan.py -- WAN bytes per publication (issue 21): what crosses each DC's
WAN link for a publication is the primary's replication stream, so this
measures it as the growth of the primary's master_repl_offset (a replica
attached, so the script's effects are replicated as in production) while
saltrelay-up stores COUNT publications of each size, and prints it per
publication and per payload byte next to the baseline measured in the same
run: a plain `XADD <stream> * f0 <payload>` per publication on the same
primary (what any Redis-stream relay replicates at the least).

  bench/wan.py BUILD_DIR [--count N] [--ups 1|2] [--minions N]

Rows: 100 B, 1 KiB and 64 KiB payloads (zpub), and a zmq_filtering job on
--minions minions (bench/zfleet pub: one [sha1hex(id), payload] copy per
minion and a syndic copy, which saltrelay-up merges into one entry). With
--ups 2 two saltrelay-ups store the same publications (the dedup: the
bytes should not change). Deterministic: byte counts do not depend on load.
The aim (issue 21): at most payload + 5 % + 100 B per publication."""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import harness as h  # noqa: E402

CLUSTER = "bench"
STREAM = "saltrelay:{%s}:pub" % CLUSTER


def offset(redis):
    info = redis.cli("INFO", "replication")
    return int(info.split("master_repl_offset:")[1].split()[0])


def replicated(primary, replica):
    """Wait until the replica acknowledged everything the primary wrote."""
    def caught_up():
        want = offset(primary)
        info = replica.cli("INFO", "replication")
        return "master_link_status:up" in info and int(info.split("slave_repl_offset:")[1].split()[0]) >= want
    h.wait_until(caught_up, 60, "the replica to catch up")


def measure(primary, replica, action, done):
    """Bytes the primary replicated for ACTION, once DONE() is true."""
    replicated(primary, replica)
    before = offset(primary)
    action()
    h.wait_until(done, 120, "the publications stored")
    time.sleep(0.3)  # a write that would come late (there should be none)
    replicated(primary, replica)
    return offset(primary) - before


def raw_xadd(port, count, size):
    """The baseline: COUNT plain XADDs of SIZE-byte payloads, pipelined."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        key = b"bench:raw"
        for i in range(count):
            payload = (b"%010d" % i).ljust(size, b"x")
            s.sendall(b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$2\r\nf0\r\n$%d\r\n%s\r\n" %
                      (len(key), key, size, payload))
        got = b""
        while got.count(b"\r\n") < 2 * count:  # "$<n>\r\n<id>\r\n" each
            got += s.recv(65536)
        s.sendall(b"*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n" % (len(key), key))
        s.recv(64)


def xlen(redis):
    return int(redis.cli("XLEN", STREAM) or 0)


def row(name, n, payload, relay, base, aim_over):
    per, per_base = relay / n, base / n if base else float("nan")
    over = per - payload
    print("%-34s %10.1f %10.1f %8.2f %9.1f %10.3f %12s" %
          (name, per, per_base, per / per_base if base else float("nan"), over, per / payload,
           "<= %.0f" % aim_over if aim_over is not None else ""))
    return over <= aim_over if aim_over is not None else True


def run(tmp, build, count, ups, minions):
    primary = h.Redis(tmp, "primary")
    replica = h.Redis(tmp, "replica", replicaof=primary)
    mom_pub = "tcp://127.0.0.1:%d" % h.free_port()
    daemons = [h.Daemon("up", tmp, "up%d" % i, cluster=CLUSTER, redis=primary.url, master_publish=mom_pub,
                        master_ret="tcp://127.0.0.1:%d" % h.free_port()).start() for i in range(ups)]
    print("WAN bytes per publication: the primary's replication stream (master_repl_offset), %d saltrelay-up(s), "
          "%d publications per size; baseline: plain XADD <stream> * f0 <payload>" % (ups, count))
    print("%-34s %10s %10s %8s %9s %10s %12s" % ("", "relay B", "XADD B", "ratio", "over pay", "B/pay B",
                                                 "aim over"))
    ok = True
    for size in (100, 1024, 65536):
        n = count if size < 65536 else max(count // 10, 10)
        stored = xlen(primary)
        relay = measure(primary, replica,
                        lambda: h.zpub(mom_pub, "--gen", n, "--size", size, "--subscribers", ups),
                        lambda: xlen(primary) >= stored + n)
        h.check(xlen(primary) == stored + n, "%d publications stored, %d sent" % (xlen(primary) - stored, n))
        base = measure(primary, replica, lambda: raw_xadd(primary.port, n, size), lambda: True)
        ok &= row("%d B payload" % size, n, size, relay, base, 0.05 * size + 100)
    # the zmq_filtering job: N copies merged into one entry
    pub = subprocess.Popen([os.path.join(build, "bench", "zfleet"), "pub", mom_pub, "600000"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    h.check(pub.stdout.readline().startswith("pub bound"), "zfleet pub did not bind")
    h.wait_until(lambda: subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%s )" %
                                         mom_pub.rsplit(":", 1)[1]], capture_output=True, text=True)
                 .stdout.count("\n") >= ups, 30, "saltrelay-up connected to the test MoM")
    time.sleep(1.5)  # the join hold (JOIN_HOLD_MS) of a fresh connection
    size = 500
    stored = xlen(primary)

    def job():
        pub.stdin.write("job 2 %d %d\n" % (minions, size))
        pub.stdin.flush()
        pub.stdout.readline()
    relay = measure(primary, replica, job, lambda: xlen(primary) > stored)
    pub.stdin.close()
    pub.wait(timeout=30)
    entries = xlen(primary) - stored
    print("filtered job, %d minions, %d B payload: %d stream entr%s, %d bytes replicated = payload + %.1f B per "
          "minion (its topic: 40 hex digits on the MoM's wire)" %
          (minions, size, entries, "y" if entries == 1 else "ies", relay, (relay - size) / minions))
    for d in daemons:
        d.term()
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--ups", type=int, default=1, choices=(1, 2))
    ap.add_argument("--minions", type=int, default=10000)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    h.BIN["up"] = os.path.join(build, "relay-up", "saltrelay-up")
    h.BIN["down"] = os.path.join(build, "relay-down", "saltrelay-down")
    h.BUILD = build
    tmp = tempfile.mkdtemp(prefix="saltrelay-wan-")
    try:
        ok = run(tmp, build, a.count, a.ups, a.minions)
    finally:
        h.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print("aim (payload + 5 %% + 100 B): %s" % ("met" if ok else "MISSED"))


if __name__ == "__main__":
    main()
