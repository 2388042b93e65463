#!/usr/bin/env python3
"""many_dcs.py -- many DCs on one Redis primary (issue 21), on loopback:
one saltrelay-up, DCS Redis replicas with a saltrelay-down each reading its
own, one subscriber per DC (bench/zfleet lat: one process, a SUB per DC).
Two layouts in one run:

  flat      every DC replica replicates from the primary
  chained   REGIONS region replicas replicate from the primary, each DC
            replica from its region's (Redis replicas can feed replicas)

For each: COUNT stamped publications of SIZE bytes at RATE a second
(bench/zfleet pub "stamped"); per DC the delivery latency (MoM send to the
DC subscriber's receipt) p50/p99/max; the primary's CPU (/proc) and output
bytes (INFO stats total_net_repl_output_bytes: what it sends its replicas)
per publication, with the background of an idle period of the same length
(DC reports, heartbeats, replication pings) subtracted; each saltrelay-down's
RSS. The baseline in the same run: the bytes one replica's link carries per
publication (master_repl_offset), times the replicas the primary feeds.

  bench/many_dcs.py BUILD_DIR [--dcs 32] [--regions 4] [--count 3000]
                    [--rate 300] [--size 1024]

Runs in a few minutes on 2 cores (33 redis-servers, 32 saltrelay-downs)."""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import harness as h  # noqa: E402

CLUSTER = "bench"
STREAM = "saltrelay:{%s}:pub" % CLUSTER


def info(redis, section):
    out = {}
    for line in redis.cli("INFO", section).splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def primary_counters(primary):
    i = info(primary, "stats")
    return cpu_s(primary.proc.pid), int(i["total_net_repl_output_bytes"]), \
        int(info(primary, "replication")["master_repl_offset"])


def link_up(redis):
    return "master_link_status:up" in redis.cli("INFO", "replication")


def layout(tmp, primary, dcs, regions):
    """The replicas: flat (REGIONS 0) or chained. Returns (DC replicas, the
    replicas the primary feeds)."""
    if not regions:
        reps = [h.Redis(tmp, "dc%02d" % i, replicaof=primary) for i in range(dcs)]
        return reps, reps
    heads = [h.Redis(tmp, "region%d" % r, replicaof=primary) for r in range(regions)]
    reps = [h.Redis(tmp, "dc%02d" % i, replicaof=heads[i % regions]) for i in range(dcs)]
    return reps, heads


def run(tmp, build, dcs, regions, count, rate, size):
    primary = h.Redis(tmp, "primary")
    reps, fed = layout(tmp, primary, dcs, regions)
    h.wait_until(lambda: all(link_up(r) for r in reps), 120, "every replica linked")
    mom = "tcp://127.0.0.1:%d" % h.free_port()
    up = h.Daemon("up", tmp, "up", cluster=CLUSTER, redis=primary.url, master_publish=mom,
                  master_ret="tcp://127.0.0.1:%d" % h.free_port()).start()
    downs, eps = [], []
    for i, rep in enumerate(reps):
        state = os.path.join(tmp, "state%02d" % i)
        os.makedirs(state)
        ep = "tcp://127.0.0.1:%d" % h.free_port()
        downs.append(h.Daemon("down", tmp, "down%02d" % i, cluster=CLUSTER, datacenter="dc%02d" % i,
                              redis=rep.url, redis_primary=primary.url, publish_bind=ep,
                              ret_bind="tcp://127.0.0.1:%d" % h.free_port(), state_dir=state).start())
        eps.append(ep)
    lat = h.spawn([os.path.join(build, "bench", "zfleet"), "lat", count, 60000 + 2000 * count // rate] + eps,
                  stdout=subprocess.PIPE, text=True)
    h.check(lat.stdout.readline().startswith("lat connecting"), "zfleet lat did not start")
    pub = h.spawn([os.path.join(build, "bench", "zfleet"), "pub", mom, 3600000], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, text=True)
    h.check(pub.stdout.readline().startswith("pub bound"), "zfleet pub did not bind")
    # every DC's subscriber connected (state file), saltrelay-up's join hold over
    h.wait_until(lambda: all("subscribers 1" in open(os.path.join(tmp, "state%02d" % i, "pub.state"),
                                                     errors="replace").read() for i in range(dcs)),
                 60, "every DC's subscriber connected")
    time.sleep(2.0)
    seconds = count / rate
    c0, b0, o0 = primary_counters(primary)  # the background: as long, nothing published
    time.sleep(seconds)
    c1, b1, o1 = primary_counters(primary)
    pub.stdin.write("stamped %d %d %d\n" % (count, rate, size))
    pub.stdin.flush()
    h.check(pub.stdout.readline().startswith("sent"), "zfleet pub did not send")
    sent_at = time.monotonic()
    h.wait_until(lambda: int(primary.cli("XLEN", STREAM)) >= count, 60, "every publication stored")
    # the replicas took it all: the stream's length on every DC's replica
    h.wait_until(lambda: all(int(r.cli("XLEN", STREAM) or 0) >= count for r in reps), 120, "replicated to all")
    busy = max(time.monotonic() - sent_at, 0.001) + seconds
    c2, b2, o2 = primary_counters(primary)
    out, _ = lat.communicate(timeout=120 + 2 * count // rate)
    res = {"lat": {}, "rss": [rss_mb(d.proc.pid) for d in downs], "fed": len(fed)}
    for line in out.splitlines():
        f = line.split()
        if f[:1] == ["lat"] and len(f) == 10:
            res["lat"][f[1]] = (int(f[3]), float(f[5]), float(f[7]), float(f[9]))
    idle = busy / seconds  # the background as long as the publishing took
    res["cpu_ms"] = 1000 * ((c2 - c1) - (c1 - c0) * idle) / count
    res["out_b"] = ((b2 - b1) - (b1 - b0) * idle) / count
    res["offset_b"] = ((o2 - o1) - (o1 - o0) * idle) / count
    res["per_dc"] = [res["lat"].get(ep, (0, float("nan"), float("nan"), float("nan"))) for ep in eps]
    pub.stdin.close()
    for d in downs + [up]:
        d.kill9()
    return res


def report(name, res, count, dcs):
    p99 = [x[2] for x in res["per_dc"]]
    got = [x[0] for x in res["per_dc"]]
    rss = res["rss"]
    print("%-8s delivery p99 per DC (ms): min %.2f, median %.2f, max %.2f; p50 median %.2f; max of all %.2f; "
          "%d of %d DCs got all %d" % (name, min(p99), statistics.median(p99), max(p99),
                                       statistics.median(x[1] for x in res["per_dc"]),
                                       max(x[3] for x in res["per_dc"]), sum(g == count for g in got), dcs, count))
    print("%-8s   per DC: %s" % ("", " ".join("%.1f" % x for x in p99)))
    print("%-8s primary: CPU %.3f ms per publication, output %.0f B per publication to %d replicas "
          "(one link: %.0f B; x %d = %.0f B)" % (name, res["cpu_ms"], res["out_b"], res["fed"], res["offset_b"],
                                                res["fed"], res["offset_b"] * res["fed"]))
    print("%-8s saltrelay-down RSS (MB): min %.1f, median %.1f, max %.1f" %
          (name, min(rss), statistics.median(rss), max(rss)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--dcs", type=int, default=32)
    ap.add_argument("--regions", type=int, default=4)
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--rate", type=int, default=300)
    ap.add_argument("--size", type=int, default=1024)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    h.BIN["up"] = os.path.join(build, "relay-up", "saltrelay-up")
    h.BIN["down"] = os.path.join(build, "relay-down", "saltrelay-down")
    print("many DCs: %d DCs on loopback, one subscriber each; %d publications of %d B at %d/s; chained: %d "
          "region replicas" % (a.dcs, a.count, a.size, a.rate, a.regions))
    results = {}
    for name, regions in (("flat", 0), ("chained", a.regions)):
        tmp = tempfile.mkdtemp(prefix="saltrelay-dcs-")
        try:
            results[name] = run(tmp, build, a.dcs, regions, a.count, a.rate, a.size)
        finally:
            h.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)
        report(name, results[name], a.count, a.dcs)
    f, c = results["flat"], results["chained"]
    print("chained / flat: primary CPU %.2f, primary output bytes %.2f, median p99 %.2f" %
          (c["cpu_ms"] / f["cpu_ms"] if f["cpu_ms"] > 0 else float("nan"), c["out_b"] / f["out_b"],
           statistics.median(x[2] for x in c["per_dc"]) / statistics.median(x[2] for x in f["per_dc"])))


if __name__ == "__main__":
    main()
