#!/usr/bin/env python3
"""unsub.py -- what a mass unsubscribe costs (issue 9): N simulated minions
with zmq_filtering (each subscribed to its own 40-hex topic and "broadcast",
bench/zfleet) leave at once (their processes are SIGKILLed: every TCP
connection closes in the same instant, as in a datacenter-wide network cut),
first from a plain libzmq PUB (the baseline: a PUB is libzmq's XPUB with the
same subscription trie), then from saltrelay-down's XPUB, in the same run.
For each it prints:

  busy      seconds until the process is idle again (under 5 % of a core for
            a second) and the CPU seconds it used meanwhile
  publish   the longest delay, MoM send to receipt, of the broadcasts sent
            every 100 ms (at most 248) during that time to a minion that stayed connected
  subscribe how long a minion connecting right after the others left waits
            for its first broadcast (its subscription waits as well)
  sigterm   (relay) seconds from SIGTERM to exit, 1 s after N others left;
            and for both, with N minions connected (exit closes the socket:
            libzmq removes N subscribers the same way)

  bench/unsub.py BUILD_DIR [--minions N] [--stop-timeout S] [--perf]
--perf samples saltrelay-down for 3 s of its busy time (perf record) and
prints where the time goes. Not a CI test: a measurement for
docs/performance-history.md ("mass unsubscribe")."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import harness as h  # noqa: E402
from scale import CLUSTER, Fleet, Pub, cpu_s, established, metric, split, use_build  # noqa: E402

PROBE = 10 ** 6  # minion numbers of the probes: topics no fleet minion has


class Probe:
    """One zfleet minion whose lines are read as they come: 'phase P got 1
    last T' is the receipt of broadcast P at wall ms T."""

    def __init__(self, build, ep, first):
        self.p = h.spawn([os.path.join(build, "bench", "zfleet"), "sub", ep, 1, first, 600000],
                         stdout=subprocess.PIPE, text=True)
        self.got, self.started = {}, None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            w = line.split()
            if line.startswith("sub connecting"):
                self.started = int(w[4])
            elif line.startswith("phase") and int(w[3]) == 1:
                self.got.setdefault(int(w[1]), int(w[5]))

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=30)


def fleet(build, ep, n):
    f = Fleet(build, *[("sub", ep, c, f, 600000) for c, f in split(n)])
    h.wait_until(lambda: established(int(ep.rsplit(":", 1)[1])) >= n, 300, "%d minions connected" % n)
    time.sleep(2.0 + n / 2000)  # their subscriptions follow the handshakes
    return f


def kill_fleet(f):
    for p in f.procs:
        p.kill()
    for p in f.procs:
        p.wait(timeout=30)


def perf_top(pid, secs=3):
    out = os.path.join(tempfile.gettempdir(), "unsub-perf-%d.data" % pid)
    subprocess.run(["perf", "record", "-q", "-o", out, "-p", str(pid), "--", "sleep", str(secs)],
                   capture_output=True, timeout=60)
    rep = subprocess.run(["perf", "report", "-q", "-i", out, "--stdio", "--sort", "dso,sym"],
                         capture_output=True, text=True, timeout=120).stdout
    os.unlink(out)
    return [l.strip() for l in rep.splitlines() if l.strip() and not l.startswith("#")][:8]


def storm(build, pub, ep, n, pid, use_perf=False):
    """N minions leave at once; measured while PID (the socket's process)
    works it off. PUB: the MoM's zfleet pub sending the broadcasts."""
    f = fleet(build, ep, n - 1)
    stay = Probe(build, ep, PROBE)
    h.wait_until(lambda: established(int(ep.rsplit(":", 1)[1])) >= n, 60, "the staying minion connected")
    time.sleep(1.0)
    sent, phase = {}, 2
    cpu0, t0 = cpu_s(pid), time.monotonic()
    kill_fleet(f)
    new = Probe(build, ep, PROBE + 1)
    res = {"perf": []}
    if use_perf:
        threading.Thread(target=lambda: res.__setitem__("perf", perf_top(pid)), daemon=True).start()
    last_cpu, last_t, idle_at = cpu0, t0, None
    while time.monotonic() - t0 < 600:
        if phase < 250:  # the phase byte; later, only wait for the end
            w = pub.cmd("bcast %d 100" % phase)  # "sent P at T"; blocks while a plain PUB is busy
            sent[phase] = int(w[3])
            phase += 1
        time.sleep(0.1)
        now = time.monotonic()
        if now - last_t >= 1.0:
            used = cpu_s(pid)
            if used - last_cpu < 0.05 * (now - last_t) and new.got:
                idle_at = last_t
                break
            last_cpu, last_t = used, now
    res["busy"] = (idle_at or time.monotonic()) - t0
    res["cpu"] = cpu_s(pid) - cpu0
    time.sleep(1.0)
    stay.stop()
    new.stop()
    delays = [stay.got[p] - sent[p] for p in sent if p in stay.got]
    res["publish_max"] = max(delays) if delays else float("nan")
    res["publish_lost"] = len(sent) - len(delays)
    res["subscribe"] = (min(new.got.values()) - new.started) if new.got and new.started else float("nan")
    return res


def relay_daemons(tmp, redis, mom_pub, dc_pub, stop_timeout):
    up = h.Daemon("up", tmp, "up", cluster=CLUSTER, redis=redis.url, master_publish=mom_pub,
                  master_ret="tcp://127.0.0.1:%d" % h.free_port()).start()
    state = os.path.join(tmp, "state")
    os.makedirs(state, exist_ok=True)
    extra = {"stop_timeout": stop_timeout} if stop_timeout else {}
    mport = h.free_port()
    down = h.Daemon("down", tmp, "down", cluster=CLUSTER, redis=redis.url, datacenter="dc1",
                    publish_bind=dc_pub, ret_bind="tcp://127.0.0.1:%d" % h.free_port(), state_dir=state,
                    metrics_bind="127.0.0.1:%d" % mport, **extra)
    down.mport = mport
    return up, down


def timed_term(d):
    t = time.monotonic()
    try:
        rc = d.term(timeout=300)
    except subprocess.TimeoutExpired:
        d.kill9()
        rc = "killed"
    return time.monotonic() - t, rc


def run_in(tmp, build, n, stop_timeout, use_perf):
    ep = lambda: "tcp://127.0.0.1:%d" % h.free_port()  # noqa: E731
    res = {}
    # baseline: a plain PUB (zfleet pub) with the same minions
    base_ep = ep()
    pub = Pub(build, base_ep)
    res["base"] = storm(build, pub, base_ep, n, pub.p.pid)
    f = fleet(build, base_ep, n)
    t = time.monotonic()
    pub.p.stdin.close()  # zfleet pub then closes its socket (linger 2 s) and ends its context
    try:
        pub.p.wait(timeout=300)
    except subprocess.TimeoutExpired:
        pub.p.kill()
    res["base"]["term_connected"] = time.monotonic() - t
    kill_fleet(f)

    redis = h.Redis(tmp, "redis")
    mom_pub, dc_pub = ep(), ep()
    up, down = relay_daemons(tmp, redis, mom_pub, dc_pub, stop_timeout)
    down.start()
    pub = Pub(build, mom_pub)
    h.wait_until(lambda: established(int(mom_pub.rsplit(":", 1)[1])) >= 1, 30, "saltrelay-up's SUB connected")
    time.sleep(1.0)
    res["relay"] = r = storm(build, pub, dc_pub, n, down.proc.pid, use_perf)
    r["stalled_logged"] = "worker threads stalled" in down.log(current=True)
    # SIGTERM 1 s after N minions left
    f = fleet(build, dc_pub, n)
    r["gauge"] = metric(down.mport, "subscribers")
    kill_fleet(f)
    time.sleep(1.0)
    r["term_storm"], r["term_storm_rc"] = timed_term(down)
    r["term_storm_line"] = "did not stop within stop_timeout" in down.log(current=True)
    # SIGTERM with N minions connected
    down.start()
    f = fleet(build, dc_pub, n)
    r["term_connected"], r["term_connected_rc"] = timed_term(down)
    r["term_connected_line"] = "within stop_timeout" in down.log(current=True)
    kill_fleet(f)
    pub.close()
    up.term()
    return res


def report(res, n, stop_timeout):
    b, r = res["base"], res["relay"]
    print("mass unsubscribe: %d zmq_filtering minions (own topic + broadcast) leave at once" % n)
    print("%-58s %10s %10s" % ("", "plain PUB", "relay"))
    print("%-58s %10.1f %10.1f" % ("busy after they left (s)", b["busy"], r["busy"]))
    print("%-58s %10.1f %10.1f" % ("CPU used meanwhile (s)", b["cpu"], r["cpu"]))
    print("%-58s %10.0f %10.0f" % ("publication delay to a staying minion, max (ms)", b["publish_max"],
                                   r["publish_max"]))
    print("%-58s %10d %10d" % ("  broadcasts it never received", b["publish_lost"], r["publish_lost"]))
    print("%-58s %10.0f %10.0f" % ("new minion: connect to its first broadcast (ms)", b["subscribe"],
                                   r["subscribe"]))
    print("%-58s %10.1f %10.1f" % ("stop with %d connected (s)" % n, b["term_connected"], r["term_connected"]))
    print("saltrelay-down: subscribers gauge %d before they left; 'worker threads stalled' logged: %s" %
          (r["gauge"], "yes" if r["stalled_logged"] else "no"))
    print("saltrelay-down SIGTERM 1 s after %d left: exit %s after %.1f s (stop_timeout %s; its line logged: %s); "
          "with %d connected: exit %s" % (n, r["term_storm_rc"], r["term_storm"], stop_timeout or "60 (default)",
                                          "yes" if r["term_storm_line"] else "no", n, r["term_connected_rc"]))
    for line in r["perf"]:
        print("  perf: " + line)


def main():
    ap = argparse.ArgumentParser(description="what a mass unsubscribe costs (docs/performance-history.md)")
    ap.add_argument("build", help="a build directory (release)")
    ap.add_argument("--minions", type=int, default=2500, help="N (the cost grows with N squared)")
    ap.add_argument("--stop-timeout", type=float, default=0, help="saltrelay-down's stop_timeout (s)")
    ap.add_argument("--perf", action="store_true", help="profile saltrelay-down for 3 s of its busy time")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    use_build(build)
    tmp = tempfile.mkdtemp(prefix="saltrelay-unsub-")
    try:
        res = run_in(tmp, build, a.minions, a.stop_timeout, a.perf)
    finally:
        h.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    report(res, a.minions, a.stop_timeout)


if __name__ == "__main__":
    main()
