"""test_signals.py -- signals and the stop (issue 8): the main thread alone
takes SIGTERM/SIGINT/SIGHUP, a stop waits until every part really finished its
drain, and a draining part waits instead of spinning.

Each test runs a real saltrelay-down (and Redis) and sends it real signals. A
request stays in flight because no saltrelay-up answers it; the request is a
captured Salt request (../shared/salt-wire)."""

import glob
import os
import random
import signal
import subprocess
import time

import harness
from harness import Daemon, Redis, check, spawn, tool, wait_until

DRAIN_S = 5  # request intake's drain bound (STOP_WAIT_MS in relay-down/req_intake.c)


def down(tmp, redis, name="down"):
    os.makedirs(os.path.join(tmp, "state"), exist_ok=True)
    return Daemon("down", tmp, name, cluster="t1", datacenter="dc1", redis=redis.url,
                  ret_bind="tcp://127.0.0.1:%d" % harness.free_port(),
                  publish_bind="tcp://127.0.0.1:%d" % harness.free_port(),
                  state_dir=os.path.join(tmp, "state"), request_timeout=30, log_level="info")


def request_in_flight(tmp, redis, d):
    """One captured Salt request sent to D, stored in Redis, with nobody to answer it."""
    capture = sorted(glob.glob(os.path.join(harness.WIRE, "s[0-9]*.msgpack")))[0]
    req = harness.wire_lines(os.path.basename(capture), "req")[0]
    ret_bind = [l for l in open(d.cfg_path) if l.startswith("ret_bind:")][0].split(": ")[1].strip()
    client = spawn([tool("zreqs"), ret_bind, "--clients", "1", "--timeout-ms", "60000"],
                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client.stdin.write(("0 %s -\n" % req).encode())
    client.stdin.close()
    wait_until(lambda: redis.cli("XLEN", "saltrelay:{t1}:req:dc1") == "1", 20, "the request in Redis")
    return client


def cpu_seconds(pid):
    """User + system CPU time of a running process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_drained(d, started, rc):
    log = d.log()
    check(rc == 0, "exit status %s, expected 0:\n%s" % (rc, log[-3000:]))
    took = time.monotonic() - started
    check(took > DRAIN_S - 0.5, "stopped after %.1f s: the drain was cut short" % took)
    left = log.find("stopping with 1 request(s) unanswered")
    check(left >= 0, "request intake did not finish its drain:\n%s" % log[-3000:])
    check(log.find("stopped", left) > left, "'stopped' logged before request intake finished:\n%s" % log[-3000:])


def test_hup_and_second_term_during_drain(tmp):
    """SIGHUP 1 s into the drain, then a second SIGTERM: the drain goes on to
    its end, the config is freed only after every part finished (ASan clean)."""
    redis = Redis(tmp)
    d = down(tmp, redis).start()
    request_in_flight(tmp, redis, d)
    started = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    d.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(timeout=DRAIN_S + 20)
    check_drained(d, started, rc)
    check("ignored; the drain is bounded" in d.log(), "the signals during the drain were not logged")


def test_drain_waits_without_spinning(tmp):
    """Request intake's drain (5 s for a request in flight) costs almost no CPU."""
    redis = Redis(tmp)
    d = down(tmp, redis).start()
    request_in_flight(tmp, redis, d)
    time.sleep(0.5)
    before = cpu_seconds(d.proc.pid)
    started = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    # sampled inside the drain: the exit (ASan's leak check) may cost a second
    time.sleep(DRAIN_S - 1)
    spent = cpu_seconds(d.proc.pid) - before
    window = time.monotonic() - started
    rc = d.proc.wait(timeout=DRAIN_S + 20)
    check_drained(d, started, rc)
    print("CPU in the first %.1f s of the drain: %.2f s" % (window, spent))
    check(spent < 1.0, "the drain used %.2f s of CPU in %.1f s: it spins" % (spent, window))


def test_sigterm_right_after_start(tmp):
    """SIGTERM in the first milliseconds after start, 24 times for each daemon:
    every run ends cleanly (0, or killed by SIGTERM before main() took the
    signals), never by an abort (czmq's zmonitor assertion) or a sanitizer."""
    redis = Redis(tmp)
    common = dict(cluster="t1", redis=redis.url, log_level="info")
    os.makedirs(os.path.join(tmp, "state"), exist_ok=True)
    rng = random.Random(8)
    for i in range(24):
        for kind in ("up", "down"):
            extra = (dict(master_publish="tcp://127.0.0.1:%d" % harness.free_port(),
                          master_ret="tcp://127.0.0.1:%d" % harness.free_port()) if kind == "up" else
                     dict(datacenter="dc1", state_dir=os.path.join(tmp, "state"),
                          ret_bind="tcp://127.0.0.1:%d" % harness.free_port(),
                          publish_bind="tcp://127.0.0.1:%d" % harness.free_port()))
            d = Daemon(kind, tmp, "%s%d" % (kind, i), **common, **extra).start(wait_ready=False)
            time.sleep(rng.uniform(0, 0.04))
            d.proc.send_signal(signal.SIGTERM)
            rc = d.proc.wait(timeout=30)
            check(rc in (0, -signal.SIGTERM), "%s run %d: exit status %s:\n%s" % (kind, i, rc, d.log()[-2000:]))
            check("Assertion" not in d.log(), "%s run %d: %s" % (kind, i, d.log()[-2000:]))


harness.main(globals())
