#!/usr/bin/env python3
"""scale.py -- the fleet-scale benchmark (issue 9): N simulated minions
(bench/zfleet, C + libzmq, spread over processes of at most 5,000 sockets
each: the fd hard limit is 20,000) against saltrelay and, in the same run,
against a direct baseline. Prints, relay next to baseline and their ratio:

  connect   time until all N SUB sockets are connected (relay: saltrelay-down's
            subscribers gauge; baseline: a plain PUB with backlog 1000)
  fanout    MoM send of one broadcast to its receipt by the last of N minions:
            the first broadcast after the minions connected (for a plain PUB
            it includes taking their N subscriptions, which a PUB does only
            inside its next send; saltrelay-down's XPUB has taken them
            already), and the median over BROADCASTS more, sent N/10,000 s
            apart (at least 0.2 s: several times one fan-out on an idle
            machine; one still under way shows as a longer time), each
            timed to its last of N (what a publication costs at steady
            state: issue 21's figure)
  job       zmq_filtering job on N topics (+ syndic copy): send to the last
            minion; stream entries and bytes it added (relay only)
  returns   N simultaneous requests answered (relay vs direct to a test master)
  auth      N minions re-authenticating with Salt's retry (new socket after
            auth_timeout) against a test master that spends AUTH_US per _auth:
            time to 50/99/100 % and _auth processed by the master
  rss       saltrelay-down and saltrelay-up resident memory vs the plain PUB's

  bench/scale.py BUILD_DIR [--minions N] [--auth-us US] [--check] [--fanout] [--perf] [--down KEY=VALUE]
--fanout runs the connect and fan-out rows only (a minute at 10,000);
--down sets a saltrelay-down config key for the relay run (e.g.
zmq_heartbeat_ivl=0: ZMTP heartbeats off);
--perf samples saltrelay-down (perf record) during the timed broadcasts and
prints its profile's top.
--check exits 1 if a ratio misses the issue's aims (the CI smoke test,
tests/scale.cmake): a run that misses one is repeated once, since the
machine is shared and the baseline's own figures vary by 2x from run to run;
it exits 0 at once ("skipped") for a sanitizer build (figures meaningless)."""

import argparse
import os
import re
import shutil
import statistics
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import harness as h  # noqa: E402

PER_PROC = 5000
CLUSTER = "bench"
STREAM = "saltrelay:{%s}:pub" % CLUSTER


def split(n):
    """(count, first) per process, at most PER_PROC sockets each."""
    parts, first = [], 0
    while first < n:
        c = min(PER_PROC, n - first)
        parts.append((c, first))
        first += c
    return parts


class Fleet:
    """zfleet processes; .lines() gathers what they print."""

    def __init__(self, build, *argv_sets):
        self.procs = [h.spawn([os.path.join(build, "bench", "zfleet")] + [str(a) for a in argv],
                              stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True) for argv in argv_sets]

    def wait(self, timeout=600):
        out = []
        for p in self.procs:
            o, _ = p.communicate(timeout=timeout)
            out += o.splitlines()
        return out

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        return self.wait()


class Pub:
    """zfleet pub: a plain PUB (the MoM's, or the baseline's)."""

    def __init__(self, build, ep):
        self.p = h.spawn([os.path.join(build, "bench", "zfleet"), "pub", ep, 3600000],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        h.check(self.p.stdout.readline().startswith("pub bound"), "zfleet pub did not bind")

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().split()

    def close(self):
        self.p.stdin.close()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:  # its linger towards 10,000 gone peers: not measured
            self.p.kill()
            self.p.wait(timeout=10)


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def cpu_s(pid):
    """User + system CPU seconds PID used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid, max_s=300):
    """Seconds until PID is idle (under 5 % of a core for a second), at most
    MAX_S: after N subscribers left, saltrelay-down's publication thread is
    busy in libzmq removing their subscriptions (XPUB), which would otherwise
    be measured as the request path's time (docs/performance-history.md)."""
    t0 = last_t = time.monotonic()
    last = cpu_s(pid)
    while time.monotonic() - t0 < max_s:
        time.sleep(1.0)
        now, used = time.monotonic(), cpu_s(pid)
        if used - last < 0.05 * (now - last_t):
            break
        last, last_t = used, now
    return time.monotonic() - t0


def phase_last(lines, phase, n):
    """Latest receipt of PHASE over the sub processes, and how many got it."""
    got = [(int(l.split()[3]), int(l.split()[5])) for l in lines if l.startswith("phase %d " % phase)]
    return max((t for _, t in got), default=0), sum(c for c, _ in got)


def established(port):
    """TCP connections established to PORT (the kernel's count: the same
    yardstick for the relay and the baseline)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True, timeout=10).stdout
    return out.count("\n")


BROADCASTS = 11  # timed one after another for the median fan-out
FIRST_PHASE = 10  # their phase bytes (zfleet sub), after the first broadcast's and the job's


def perf_top(pid, seconds, top=12):
    """perf's flat profile of PID over SECONDS (samples of every thread)."""
    data = tempfile.mktemp(prefix="scale-perf-")
    rec = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-o", data, "-p", str(pid), "--",
                            "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return rec, data


def perf_report(rec, data, top=14):
    rec.wait(timeout=120)
    out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort", "dso,sym",
                          "-g", "none", "--percent-limit", "1"], capture_output=True, text=True).stdout
    os.unlink(data)
    return [l for l in out.splitlines() if l.strip() and not l.startswith("#")][:top]


def pub_round(build, pub, sub_ep, n, around_job=None, size=500, fanout_only=False, perf_pid=None):
    """Minions connect to SUB_EP; then a broadcast, a filtered job (not with
    FANOUT_ONLY), and BROADCASTS more broadcasts, each timed to all N (with
    PERF_PID: that process profiled meanwhile)."""
    port = int(sub_ep.rsplit(":", 1)[1])
    t0 = time.time() * 1000
    subs = Fleet(build, *[("sub", sub_ep, c, f, 600000) for c, f in split(n)])
    h.wait_until(lambda: established(port) >= n, 300, "%d minions connected" % n)
    res = {"connect": time.time() * 1000 - t0}
    time.sleep(1.0 + n / 5000)  # subscriptions follow the handshakes
    sent = int(pub.cmd("bcast 1 %d" % size)[3])
    time.sleep(max(2.0, n / 2000))
    if not fanout_only:
        before = around_job() if around_job else None
        sent_job = int(pub.cmd("job 2 %d %d" % (n, size))[3])
        time.sleep(max(3.0, n / 1000))
        if around_job:
            res["job_stream"] = [a - b for a, b in zip(around_job(), before)]
    sent_more = []
    gap = max(0.2, n / 10000)  # the last minion has it long before (else: inf)
    if perf_pid:
        prof = perf_top(perf_pid, gap * BROADCASTS)
    for p in range(FIRST_PHASE, FIRST_PHASE + BROADCASTS):
        sent_more.append(int(pub.cmd("bcast %d %d" % (p, size))[3]))
        time.sleep(gap)
    if perf_pid:
        res["perf"] = perf_report(*prof)
    lines = subs.stop()
    last, got = phase_last(lines, 1, n)
    res["fanout"] = last - sent if got == n else float("nan")
    if not fanout_only:
        last, got = phase_last(lines, 2, n)
        res["job"] = last - sent_job if got == n else float("nan")
        res["got"] = got
    each, res["fanout_got"] = [], [phase_last(lines, 1, n)[1]]
    for p, t in zip(range(FIRST_PHASE, FIRST_PHASE + BROADCASTS), sent_more):
        last, got_p = phase_last(lines, p, n)
        each.append(last - t if got_p == n else float("inf"))
        res["fanout_got"].append(got_p)
    res["fanout_each"] = sorted(each)
    res["fanout_median"] = statistics.median(each)
    return res


def requests(build, ep, n):
    out = Fleet(build, *[("req", ep, c, f, 120000) for c, f in split(n)]).wait()
    rows = [l.split() for l in out if l.startswith("req ok")]
    ok = sum(int(r[2]) for r in rows)
    return (max(int(r[6]) for r in rows) - min(int(r[4]) for r in rows)) if ok == n else float("nan")


def auth_storm(build, ep, n, wait_ms=5000):
    out = Fleet(build, *[("auth", ep, c, f, wait_ms, 300000) for c, f in split(n)]).wait()
    rows = [dict(zip(l.split()[1::2], map(int, l.split()[2::2]))) for l in out if l.startswith("auth start")]
    # per process percentiles: the worst of them (processes start together)
    return {k: max(r[k] for r in rows) if all(r[k] >= 0 for r in rows) else float("nan")
            for k in ("p50", "p99", "p100")}, sum(r["sent"] for r in rows)


def master(build, ep, auth_us):
    m = h.spawn([os.path.join(build, "bench", "zfleet"), "master", ep, auth_us, 3600000],
                stdout=subprocess.PIPE, text=True)
    h.check(m.stdout.readline().startswith("master bound"), "zfleet master did not bind")
    return m


def master_counts(m):
    m.terminate()
    out, _ = m.communicate(timeout=30)
    r = re.search(r"master auth (\d+) other (\d+)", out)
    return int(r.group(1)), int(r.group(2))


def master_reached(master_ep, relay):
    """Through the relay, a storm starts once saltrelay-up's REQ sockets are
    connected to the test master it just started: it measures the request
    path, not their reconnect interval (up to 1 s; the 4-5 s "regression"
    once blamed on 156753f was this, at 5 s then, docs/performance-history.md)."""
    if relay:
        h.wait_until(lambda: established(int(master_ep.rsplit(":", 1)[1])) >= 1, 30, "saltrelay-up connected")
        time.sleep(1.2)


def request_storms(build, master_ep, minion_ep, n, auth_us, out):
    """The return storm, then the auth storm, with a test master at MASTER_EP
    and the minions sending to MINION_EP (the same, or saltrelay-down's)."""
    m = master(build, master_ep, 0)
    master_reached(master_ep, master_ep != minion_ep)
    out["returns"] = requests(build, minion_ep, n)
    master_counts(m)
    m = master(build, master_ep, auth_us)
    master_reached(master_ep, master_ep != minion_ep)
    out["auth"], out["auth_sent"] = auth_storm(build, minion_ep, n)
    out["auth_work"] = master_counts(m)[0]


def metric(port, name):
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2).read().decode()
    except OSError:
        return 0
    m = re.search(r"(?m)^saltrelay_%s (\d+)" % name, body)
    return int(m.group(1)) if m else 0


def run(build, n, auth_us, fanout_only=False, perf=False, down_opts=None):
    tmp = tempfile.mkdtemp(prefix="saltrelay-scale-")
    try:
        return run_in(tmp, build, n, auth_us, fanout_only, perf, down_opts or {})
    finally:
        h.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def run_in(tmp, build, n, auth_us, fanout_only, perf, down_opts):
    ep = lambda: "tcp://127.0.0.1:%d" % h.free_port()  # noqa: E731
    res = {}
    # baseline: minions on a plain PUB, requests straight to the test master
    base_pub_ep = ep()
    pub = Pub(build, base_pub_ep)
    res["base"] = pub_round(build, pub, base_pub_ep, n, fanout_only=fanout_only)
    res["base"]["rss"] = rss_mb(pub.p.pid)
    pub.close()
    mep = ep()
    if not fanout_only:
        request_storms(build, mep, mep, n, auth_us, res["base"])

    # the relay: MoM PUB -> saltrelay-up -> Redis -> saltrelay-down -> minions
    redis = h.Redis(tmp, "redis")
    mom_pub, mom_ret, dc_pub, dc_ret = ep(), ep(), ep(), ep()
    mport = h.free_port()
    up = h.Daemon("up", tmp, "up", cluster=CLUSTER, redis=redis.url, master_publish=mom_pub,
                  master_ret=mom_ret).start()
    os.makedirs(os.path.join(tmp, "state"))
    down = h.Daemon("down", tmp, "down", cluster=CLUSTER, redis=redis.url, datacenter="dc1",
                    publish_bind=dc_pub, ret_bind=dc_ret, state_dir=os.path.join(tmp, "state"),
                    metrics_bind="127.0.0.1:%d" % mport, **down_opts).start()
    pub = Pub(build, mom_pub)
    h.wait_until(lambda: established(int(mom_pub.rsplit(":", 1)[1])) >= 1, 30, "saltrelay-up's SUB connected")

    def stream_size():
        return int(redis.cli("XLEN", STREAM)), int(redis.cli("MEMORY", "USAGE", STREAM, "SAMPLES", "0") or 0)
    res["relay"] = pub_round(build, pub, dc_pub, n, stream_size, fanout_only=fanout_only,
                             perf_pid=down.proc.pid if perf else None)
    res["relay"]["subscribers_gauge"] = metric(mport, "subscribers")
    res["relay"]["rss"] = rss_mb(down.proc.pid)
    res["relay"]["rss_up"] = rss_mb(up.proc.pid)
    pub.close()
    if fanout_only:
        for d in (down, up):
            d.kill9()  # the N^2 unsubscription walk is not measured here (see unsub.py)
        return res
    res["relay"]["stream_entries"], res["relay"]["stream_bytes"] = res["relay"]["job_stream"]
    res["relay"]["settle"], res["relay"]["cpu_settle"] = settle(down.proc.pid), cpu_s(down.proc.pid)
    request_storms(build, mom_ret, dc_ret, n, auth_us, res["relay"])
    for k in ("requests_requester_gone_total", "requests_refused_total", "replies_undeliverable_total"):
        res["relay"][k] = metric(mport, k)
    res["relay"]["rss_after"] = rss_mb(down.proc.pid)
    res["relay"]["cpu_down"], res["relay"]["cpu_up"] = cpu_s(down.proc.pid), cpu_s(up.proc.pid)
    for name, d in (("saltrelay-down", down), ("saltrelay-up", up)):
        t = time.monotonic()
        try:
            d.term(timeout=60)
            res["relay"]["stop_" + name] = time.monotonic() - t
        except subprocess.TimeoutExpired:
            res["relay"]["stop_" + name] = float("nan")
            d.kill9()
    return res


def report_fanout(res, n, size=500):
    """--fanout: the connect and fan-out rows."""
    b, r = res["base"], res["relay"]
    print("scale benchmark (fan-out only): %d simulated minions, payload %d B" % (n, size))
    print("%-44s %12s %12s %8s %8s" % ("", "baseline", "relay", "ratio", "aim"))
    fails = []
    for name, base, relay, aim in (("connect storm (ms to all connected)", b["connect"], r["connect"], 2.0),
                                   ("fan-out broadcast (ms to the last)", b["fanout"], r["fanout"], 1.25),
                                   ("fan-out, median of %d to all (ms)" % BROADCASTS, b["fanout_median"],
                                    r["fanout_median"], 1.1)):
        ratio = relay / base if base else float("nan")
        print("%-44s %12.0f %12.0f %8.2f %8s" % (name, base, relay, ratio, "<= %.2f" % aim))
        if not ratio <= aim:
            fails.append(name)
    print("fan-out to all %d, each of the %d broadcasts (ms): baseline %s; relay %s" %
          (n, BROADCASTS, " ".join("%.0f" % x for x in b["fanout_each"]),
           " ".join("%.0f" % x for x in r["fanout_each"])))
    for name, x in (("baseline", b), ("relay", r)):
        if min(x["fanout_got"]) < n:  # a broadcast that missed some: how many it reached, in sending order
            print("%s: subscribers reached by each broadcast (the first, then the timed ones): %s" %
                  (name, " ".join(str(g) for g in x["fanout_got"])))
    print("RSS: saltrelay-down %.1f MB, plain PUB with %d connections %.1f MB" % (r["rss"], n, b["rss"]))
    for line in r.get("perf", []):
        print("  perf (saltrelay-down, during the %d broadcasts): %s" % (BROADCASTS, line.strip()))
    return fails


def report(res, n, auth_us, size=500):
    b, r = res["base"], res["relay"]
    # (name, baseline, relay, aim ratio, asserted by --check, slack ms: a miss
    # smaller than this is noise on a shared 2-core machine at 1,000 minions)
    rows = [("connect storm (ms to all connected)", b["connect"], r["connect"], 2.0, True, 100),
            ("fan-out broadcast (ms to the last)", b["fanout"], r["fanout"], 1.25, True, 50),
            ("fan-out, median of %d to all (ms)" % BROADCASTS, b["fanout_median"], r["fanout_median"], 1.1, True,
             50),
            ("filtered job, %d topics (ms to the last)" % n, b["job"], r["job"], None, False, 0),
            ("return storm (ms to all answered)", b["returns"], r["returns"], 2.0, True, 500),
            ("auth storm: 50 % authenticated (ms)", b["auth"]["p50"], r["auth"]["p50"], None, False, 0),
            ("auth storm: 99 % authenticated (ms)", b["auth"]["p99"], r["auth"]["p99"], None, False, 0),
            ("auth storm: 100 % authenticated (ms)", b["auth"]["p100"], r["auth"]["p100"], 1.5, True, 1000),
            ("auth storm: _auth processed by the master", b["auth_work"], r["auth_work"], None, False, 0)]
    print("scale benchmark: %d simulated minions, _auth cost %d us, payload %d B" % (n, auth_us, size))
    print("%-44s %12s %12s %8s %8s" % ("", "baseline", "relay", "ratio", "aim"))
    fails = []
    for name, base, relay, aim, asserted, slack in rows:
        ratio = relay / base if base and base == base and relay == relay else float("nan")
        print("%-44s %12.0f %12.0f %8.2f %8s" % (name, base, relay, ratio,
                                                  "<= %.2f" % aim if aim else ""))
        if aim and asserted and not ratio <= aim and not relay - base <= slack:
            fails.append(name)
    print("fan-out to all %d, each of the %d broadcasts (ms): baseline %s; relay %s" %
          (n, BROADCASTS, " ".join("%.0f" % x for x in b["fanout_each"]),
           " ".join("%.0f" % x for x in r["fanout_each"])))
    work = r["auth_work"] / n
    print("%-44s %12s %12.2f %8s %8s" % ("auth storm: master _auth work / N", "", work, "", "<= 1.20"))
    if not work <= 1.2:
        fails.append("auth work")
    per = (r["stream_bytes"] - size) / n
    print("filtered job: %d stream entries (aim 1), %d bytes = payload + %.1f B per minion (aim <= 24)" %
          (r["stream_entries"], r["stream_bytes"], per))
    if r["stream_entries"] != 1 or per > 24:
        fails.append("filtered job entries/bytes")
    print("RSS: saltrelay-down %.1f MB (after the request storms %.1f MB), saltrelay-up %.1f MB; "
          "plain PUB with %d connections %.1f MB (aim: down <= PUB + 32 MB)" %
          (r["rss"], r["rss_after"], r["rss_up"], n, b["rss"]))
    if r["rss"] > b["rss"] + 32:
        fails.append("rss")
    print("saltrelay-down in the storms: %d requests dropped as their minion left (requests_requester_gone_total), "
          "%d refused (table full), %d replies undeliverable" %
          (r["requests_requester_gone_total"], r["requests_refused_total"], r["replies_undeliverable_total"]))
    print("CPU for the whole run (connect, broadcast, job, %d returns, the auth storm): saltrelay-down %.1f s, "
          "saltrelay-up %.1f s" % (n, r["cpu_down"], r["cpu_up"]))
    print("saltrelay-down busy %.1f s after the %d subscribers left (libzmq's XPUB dropping their subscriptions; "
          "%.1f s CPU so far), waited out before the request storms" % (r["settle"], n, r["cpu_settle"]))
    print("SIGTERM to exit after the storms: saltrelay-down %.1f s, saltrelay-up %.1f s" %
          (r["stop_saltrelay-down"], r["stop_saltrelay-up"]))
    return fails


def use_build(build):
    """The daemons of BUILD, and the fd limit raised to the hard limit: they
    hold one fd per minion."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    h.BIN["up"] = os.path.join(build, "relay-up", "saltrelay-up")
    h.BIN["down"] = os.path.join(build, "relay-down", "saltrelay-down")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--minions", type=int, default=10000)
    ap.add_argument("--auth-us", type=int, default=300)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--fanout", action="store_true")
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--down", action="append", default=[], metavar="KEY=VALUE",
                    help="a saltrelay-down config key for the relay run (repeatable)")
    a = ap.parse_args()
    use_build(a.build)
    if a.down:
        print("saltrelay-down with: %s" % ", ".join(a.down))
    with open(os.path.join(a.build, "CMakeCache.txt")) as f:
        if a.check and "SALTRELAY_SANITIZE:BOOL=ON" in f.read():
            print("skipped: sanitizer build")
            return
    for attempt in (1, 2) if a.check else (1,):
        try:
            res = run(os.path.abspath(a.build), a.minions, a.auth_us, a.fanout, a.perf,
                      dict(kv.split("=", 1) for kv in a.down))
            fails = (report_fanout if a.fanout else report)(res, a.minions, *(() if a.fanout else (a.auth_us,)))
        finally:
            h.cleanup()
        if not fails:
            return
        print("missed aims%s: %s" % (" (run again once)" if attempt == 1 and a.check else "", ", ".join(fails)))
    if a.check:
        sys.exit(1)


if __name__ == "__main__":
    main()
