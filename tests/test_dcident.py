"""test_dcident.py -- one running saltrelay-down per datacenter (issue 19):
the DC's lease in Redis (redis/dclease.h). A second saltrelay-down with the
same datacenter names the holder, binds nothing, is not ready, and takes
over by itself once the holder is gone; a holder that lost Redis for longer
than the lease and was replaced steps down, and never overwrites its
successor's report."""

import os
import socket
import time
import urllib.error
import urllib.request

import harness as h
from faultproxy import FaultProxy

CLUSTER = "id"
LEASE_S = 6.0  # DCLEASE_MS
RENEW_S = 1.0  # DCLEASE_RENEW_MS
HOST = socket.gethostname()


def key(*parts):
    return "saltrelay:{%s}:%s" % (CLUSTER, ":".join(parts))


def healthz(port):
    """(status, body) of GET /healthz; (0, "") if nothing answers."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def listening(endpoint):
    port = int(endpoint.rsplit(":", 1)[1])
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Cluster:
    """A Redis and saltrelay-up; saltrelay-downs of dc1 made on demand."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.redis = h.Redis(tmp)
        self.mom_pub = "tcp://127.0.0.1:%d" % h.free_port()
        self.up = h.Daemon("up", tmp, "up", cluster=CLUSTER, redis=self.redis.url, master_publish=self.mom_pub,
                           master_ret="tcp://127.0.0.1:%d" % h.free_port()).start()

    def down(self, name, **cfg):
        os.makedirs(os.path.join(self.tmp, "state-" + name))
        cfg.setdefault("report_interval", 0.2)
        pub, ret = "tcp://127.0.0.1:%d" % h.free_port(), "tcp://127.0.0.1:%d" % h.free_port()
        d = h.Daemon("down", self.tmp, name, metrics=True, cluster=CLUSTER, datacenter="dc1", redis=self.redis.url,
                     state_dir=os.path.join(self.tmp, "state-" + name), publish_bind=pub, ret_bind=ret, **cfg)
        d.pub, d.ret = pub, ret
        return d

    def report(self):
        out = self.redis.cli("hgetall", key("dc", "dc1"), raw=True).split("\n")
        return dict(zip(out[0::2], out[1::2]))


def held_line(d):
    return "datacenter dc1 is held by saltrelay-down on host %s pid %d" % (HOST, d.proc.pid)


def check_waiting(waiting, holder):
    """WAITING names HOLDER once, binds nothing and says why on /healthz."""
    waiting.wait_log(held_line(holder), 20)
    time.sleep(2.5 * RENEW_S)  # a few renewal attempts: logged once, not per retry
    log = waiting.log(current=True)
    h.check(log.count("is held by") == 1 and h.READY not in log, "%s's log:\n%s" % (waiting.name, log))
    h.check(healthz(waiting.metrics_port) == (503, "waiting: %s\n" % held_line(holder)),
            "/healthz of the waiting one: %r" % (healthz(waiting.metrics_port),))
    h.check(not listening(waiting.pub) and not listening(waiting.ret), "the waiting one bound its sockets")


def test_second_instance_waits_then_takes_over(tmp):
    """Two saltrelay-downs with the same datacenter: the second is refused
    with the first's host and pid named, serves nothing, and once the first
    is SIGKILLed takes over within the lease (at once here: the holder ended
    on this host) and serves."""
    c = Cluster(tmp)
    a = c.down("a").start()
    b = c.down("b").start(wait_ready=False)
    check_waiting(b, a)
    h.check(c.report()["state"] == "running" and healthz(a.metrics_port)[0] == 200, "a serves: %r" % c.report())
    a_started = int(c.report()["started_at_ms"])
    a_pid = a.proc.pid
    a.kill9()
    t0 = time.monotonic()
    b.wait_log(h.READY, LEASE_S + 4)
    took = time.monotonic() - t0
    h.check("saltrelay-down on host %s pid %d has ended on this host: taking over its lease" % (HOST, a_pid)
            in b.log(), "b did not see a had ended:\n" + b.log())
    sub = h.Sub(b.pub, "--count", 3, "--idle-ms", 20000, "--max-ms", 60000)
    h.wait_until(lambda: c.report().get("subscribers") == "1" and int(c.report()["started_at_ms"]) > a_started,
                 20, "b reporting its subscriber")
    h.zpub(c.mom_pub, "--gen", 3)
    h.check(len(sub.lines()) == 3, "b's subscriber did not get the 3 publications")
    h.check(c.redis.cli("smembers", key("dcs")) == "dc1", "DC set")
    print("b ready %.2f s after a was killed (lease %.0f s)" % (took, LEASE_S))
    h.check(b.term() == 0, "b's exit status")
    h.check(c.redis.cli("exists", key("dc", "dc1", "owner")) == "0", "b's lease left after a clean stop")


def test_lease_of_another_host_runs_out(tmp):
    """A lease held by a saltrelay-down of another host (written here as
    that one would, and no longer renewed): the new one waits, naming it,
    and comes up by itself once the lease ran out, not before."""
    c = Cluster(tmp)
    c.redis.cli("set", key("dc", "dc1", "owner"), "relay9.example.net/4242#otherboot.1#0123456789abcdef",
                "px", int(LEASE_S * 1000))
    d = c.down("d").start(wait_ready=False)
    d.wait_log("datacenter dc1 is held by saltrelay-down on host relay9.example.net pid 4242", 20)
    left = int(c.redis.cli("pttl", key("dc", "dc1", "owner"))) / 1000.0
    t0 = time.monotonic()
    h.check(left > 0 and healthz(d.metrics_port)[0] == 503, "lease left %.1f s, /healthz %r" %
            (left, healthz(d.metrics_port)))
    d.wait_log(h.READY, left + RENEW_S + 5)
    waited = time.monotonic() - t0
    h.check(waited >= left - 0.2, "ready %.2f s after, with %.2f s of the other's lease left" % (waited, left))
    h.check("the lease of saltrelay-down on host relay9.example.net pid 4242 has ended: this one holds it now"
            in d.log(), d.log())
    h.check(c.redis.cli("get", key("dc", "dc1", "owner")).startswith("%s/%d#" % (HOST, d.proc.pid)),
            "the lease is not d's")
    print("ready %.2f s after the lease had %.2f s left" % (waited, left))


def test_lease_lost_in_outage_steps_down(tmp):
    """The holder loses the primary for longer than its lease while the
    second one reaches it: the second takes over; the first keeps serving
    from the replica meanwhile (an outage alone never stops it), and once
    the primary is back it steps down (exit 1) without overwriting the
    successor's report (its last "stopped" report is fenced off)."""
    c = Cluster(tmp)
    link = FaultProxy(c.redis.port)
    a = c.down("a", redis_primary=link.url()).start()
    # b reports once at its start, then not for 30 s: what a writes after b took over stays to be seen
    b = c.down("b", report_interval=30).start(wait_ready=False)
    b.wait_log(held_line(a), 20)
    h.wait_until(lambda: c.report().get("state") == "running", 10, "a's report")
    a_started = int(c.report()["started_at_ms"])
    link.flowing.clear()  # a partition: nothing passes, connections stay (as FaultProxy.partition)
    try:
        b.wait_log(h.READY, LEASE_S + RENEW_S + 10)
        h.check(a.proc.poll() is None and healthz(a.metrics_port)[0] == 200, "a stopped serving in the outage")
        h.wait_until(lambda: int(c.report().get("started_at_ms", 0)) > a_started, 10, "b's report")
    finally:
        link.cut()
        link.flowing.set()
    h.check(a.proc.wait(timeout=40) == 1, "a's exit status %s" % a.proc.returncode)
    log = a.log()
    h.check(log.count("stepping down: datacenter dc1 is held by saltrelay-down on host %s pid %d now" %
                      (HOST, b.proc.pid)) == 1, "a's log:\n" + log[-3000:])
    rep = c.report()
    h.check(rep["state"] == "running" and int(rep["started_at_ms"]) > a_started, "a overwrote b's report: %r" % rep)
    h.check(healthz(b.metrics_port)[0] == 200 and c.redis.cli("get", key("dc", "dc1", "owner")).startswith(
        "%s/%d#" % (HOST, b.proc.pid)), "b lost its place")
    link.close()


if __name__ == "__main__":
    h.main(globals())
