"""test_wan.py -- the WAN fault suite (issue 10): the real daemons across a
bad link made by tests/faultproxy.py (these machines have no tc netem).

One DC whose two WAN links both go through fault proxies: the replication
link of its Redis replica, and saltrelay-down's link to the primary
(redis_primary). A direct ZeroMQ subscriber to the MoM's publish port through
a third proxy with the same faults shows what a salt-syndic would have lost.
During thousands of publications and requests the links get 40 ms of
latency per chunk, cuts (every connection reset) and a partition (nothing
for a while, then reset). Asserted: every publication reaches the DC's
subscriber exactly once, in order, byte for byte; no request gets a wrong
reply, and every one the relay took ends answered or counted. Printed: the
syndic's losses, and the requests lost (and why).

Release build only (skipped in the sanitizer build: timing)."""

import os
import subprocess
import threading
import time

import harness as h
from faultproxy import FaultProxy

CLUSTER = "w"
DC = "dc1"


class _Port:
    def __init__(self, port):
        self.port = port


def gen_hex(i, size, nonce):
    """The payload zpub --gen sends as message I (its number, the run's NONCE,
    padding), in hex as zsub prints it."""
    return ((b"%010d" % i) + nonce + b"x" * (size - 10 - len(nonce))).hex()


def faults(proxies, stop):
    """The fault schedule, on every proxy at once: latency, cuts, a partition."""
    for p in proxies:
        p.latency = 0.04
    plan = [(2.0, "cut"), (4.5, "cut"), (7.0, "partition"), (13.0, "cut"), (16.0, "cut")]
    t0 = time.monotonic()
    for at, what in plan:
        while time.monotonic() - t0 < at and not stop.is_set():
            time.sleep(0.05)
        if stop.is_set():
            return
        if what == "cut":
            for p in proxies:
                p.cut()
        else:
            threads = [p.partition_async(3.0) for p in proxies]
            for t in threads:
                t.join(timeout=10)
    for p in proxies:
        p.latency = 0.0


def salt_request(minion, load):
    """A version-3 aes request as Salt packs it (as in test_return.py)."""
    def s(b):
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    return (b"\x84" + s(b"enc") + s(b"aes") + s(b"load") + b"\xc4" + bytes([len(load)]) + load +
            s(b"id") + s(minion.encode()) + s(b"version") + b"\x03")


def totals(daemon):
    import re
    lines = [l for l in daemon.log().splitlines() if "requests: " in l and " answered" in l]
    h.check(lines, "%s logged no totals" % daemon.name)
    return {k.strip(): int(v) for v, k in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", lines[-1].split("requests: ")[1])}


def test_wan_faults(tmp):
    if h.sanitized():
        print("skipped: timing test, release build only")
        return
    n_pub, size, n_req, clients = 3000, 200, 2000, 40
    primary = h.Redis(tmp, "primary", extra=("--repl-backlog-size", "64mb"))
    repl_link = FaultProxy(primary.port)
    replica = h.Redis(tmp, "replica", replicaof=_Port(repl_link.port))
    h.wait_until(lambda: "master_link_status:up" in replica.cli("info", "replication"), 20, "replica link up")
    prim_link = FaultProxy(primary.port)
    mom_pub_port, mom_ret = h.free_port(), "tcp://127.0.0.1:%d" % h.free_port()
    mom_link = FaultProxy(mom_pub_port)  # the syndic's link to the MoM
    master = h.spawn([h.tool("zmaster"), mom_ret, "echo"], stderr=subprocess.PIPE)
    h.check(b"bound" in master.stderr.readline(), "zmaster did not start")
    common = dict(cluster=CLUSTER, request_timeout=30, log_level="info")
    up = h.Daemon("up", tmp, "up", redis=primary.url, master_publish="tcp://127.0.0.1:%d" % mom_pub_port,
                  master_ret=mom_ret, **common).start()
    state = os.path.join(tmp, "state")
    os.makedirs(state)
    pub_ep, ret_ep = "tcp://127.0.0.1:%d" % h.free_port(), "tcp://127.0.0.1:%d" % h.free_port()
    down = h.Daemon("down", tmp, DC, datacenter=DC, redis=replica.url, redis_primary=prim_link.url(),
                    publish_bind=pub_ep, ret_bind=ret_ep, state_dir=state, replay_max_age=0, **common).start()
    sub = h.Sub(pub_ep, "--count", n_pub, "--idle-ms", 30000, "--max-ms", 150000)
    time.sleep(1)
    # requests: each client in turn, answered by an echo MoM
    lines = []
    for i in range(n_req):
        q = salt_request("m%d" % (i % clients), b"r%d" % i)
        lines.append("%d %s %s" % (i % clients, q.hex(), (b"rep:" + q).hex()))
    reqs_out = os.path.join(tmp, "zreqs.out")
    with open(reqs_out, "w") as fo:
        zreqs = h.spawn([h.tool("zreqs"), ret_ep, "--clients", clients, "--timeout-ms", 35000, "--max-ms", 150000],
                        stdin=subprocess.PIPE, stdout=fo, stderr=subprocess.PIPE)
    zreqs.stdin.write("\n".join(lines).encode() + b"\n")
    zreqs.stdin.close()
    pub = h.spawn([h.tool("zpub"), "tcp://127.0.0.1:%d" % mom_pub_port, "--gen", n_pub, "--size", size,
                   "--rate", 150])
    # zpub sends once one subscriber joined: saltrelay-up first, then the syndic
    # (which misses the start, counted in its loss; saltrelay-up missing it would be the MoM's loss)
    up.wait_log("MoM publish port tcp://127.0.0.1:%d: connected" % mom_pub_port, 20)
    syndic = h.Sub("tcp://127.0.0.1:%d" % mom_link.port, "--idle-ms", 15000, "--max-ms", 150000)
    stop = threading.Event()
    f = threading.Thread(target=faults, args=([repl_link, prim_link, mom_link], stop), daemon=True)
    f.start()
    pub.wait(timeout=120)
    f.join(timeout=60)
    got = sub.lines(timeout=150)
    zreqs.wait(timeout=200)
    # publications: exactly once, in order, byte for byte
    payloads = [l.split()[-1] for l in got]
    nonce = bytes.fromhex(payloads[0])[10:26] if payloads else b""
    want = [gen_hex(i, size, nonce) for i in range(n_pub)]
    bad = [(i, p[:24]) for i, p in enumerate(payloads) if i >= n_pub or p != want[i]][:5]
    h.check(payloads == want, "dc1: %d of %d publications, first problems %s" % (len(payloads), n_pub, bad))
    syn = set(l.split()[-1] for l in syndic.lines(timeout=150))
    print("publications: dc1 got %d/%d exactly once in order; a direct subscriber (syndic) across the same "
          "link lost %d" % (len(payloads), n_pub, n_pub - len(syn & set(want))))
    # requests: never a wrong reply; each one ends answered or counted
    with open(reqs_out) as fi:
        res = [l.split() for l in fi.read().splitlines()]
    verdicts = [r[2] for r in res]
    h.check(len(res) == n_req, "zreqs reported %d of %d requests" % (len(res), n_req))
    h.check("mismatch" not in verdicts, "a request got another's reply")
    stop.set()
    for p in (repl_link, prim_link, mom_link):
        p.close()
    h.check(down.term() == 0 and up.term() == 0, "daemons did not stop cleanly")
    d = totals(down)
    h.check(d["in"] == d["answered"] + d["timed out"] + d["expired"] + d["mom unreachable"] + d["oversize"] +
            d["redis errors"] + d["requester gone"] + d["undeliverable"] + d["refused"] + d["bad"],
            "down totals do not add up: %s" % d)
    lost = verdicts.count("timeout")
    print("requests: %d/%d answered, %d timed out at the requester (%.2f %%); saltrelay-down: %s" %
          (verdicts.count("ok"), n_req, lost, 100.0 * lost / n_req, d))
    master.terminate()


h.main(globals())
