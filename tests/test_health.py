"""test_health.py -- health while idle (issue 13): saltrelay-up's heartbeat,
each DC's view of the Redis it reads publications from (replication link and
delay), saltrelay-status judging it, with real Redis replicas whose
replication is really broken (REPLICAOF a dead address) and repaired."""

import os
import socket
import time

import harness as h

CLUSTER = "hl"


def key(*parts):
    return "saltrelay:{%s}:%s" % (CLUSTER, ":".join(parts))


def hgetall(redis, k):
    out = redis.cli("hgetall", k, raw=True).split("\n")
    return dict(zip(out[0::2], out[1::2])) if out != [""] else {}


def up_config(redis, **extra):
    cfg = dict(cluster=CLUSTER, redis=redis.url, master_publish="tcp://127.0.0.1:%d" % h.free_port(),
               master_ret="tcp://127.0.0.1:%d" % h.free_port())
    cfg.update(extra)
    return cfg


def instances(redis):
    out = redis.cli("zrange", key("ups"), 0, -1, "withscores", raw=True).split("\n")
    return dict(zip(out[0::2], (int(s) for s in out[1::2]))) if out != [""] else {}


def test_heartbeat(tmp):
    """Each instance writes its heartbeat every second, under host/pid or
    host/instance; two instances with one config on one host differ; SIGTERM
    leaves a last "stopped" heartbeat."""
    redis = h.Redis(tmp)
    host = socket.gethostname()
    a = h.Daemon("up", tmp, "up-a", **up_config(redis)).start()
    b = h.Daemon("up", tmp, "up-b", **up_config(redis)).start()
    named = h.Daemon("up", tmp, "up-n", **up_config(redis, instance="mom1")).start()
    names = {"%s/%d" % (host, a.proc.pid), "%s/%d" % (host, b.proc.pid), host + "/mom1"}
    h.wait_until(lambda: set(instances(redis)) == names, 10, "three instances in %s" % key("ups"))
    first = hgetall(redis, key("up", host + "/mom1"))
    for f in ("instance", "host", "pid", "version", "state", "wall_ms", "started_at_ms", "interval_ms",
              "pub_in", "requests_in", "timeouts", "redis_reconnects"):
        h.check(f in first, "heartbeat lacks %s: %r" % (f, first))
    h.check(first["state"] == "running" and first["host"] == host and first["interval_ms"] == "1000",
            "heartbeat: %r" % first)
    h.check(abs(int(first["wall_ms"]) - time.time() * 1000) < 3000, "wall clock: %r" % first)
    h.wait_until(lambda: int(hgetall(redis, key("up", host + "/mom1"))["wall_ms"]) >= int(first["wall_ms"]) + 900,
                 5, "the next heartbeat about a second later")
    ttl = int(redis.cli("pttl", key("up", host + "/mom1")))
    h.check(86000000 < ttl <= 86400000, "the heartbeat expires a day after it was written: %d" % ttl)
    h.check(named.term() == 0, "saltrelay-up exit status")
    last = hgetall(redis, key("up", host + "/mom1"))
    h.check(last["state"] == "stopped", "last heartbeat says stopped: %r" % last)
    # an instance silent for a day is forgotten by the others' next heartbeat
    redis.cli("zadd", key("ups"), int(time.time() * 1000) - 86400000 - 5000, "old/1")
    h.wait_until(lambda: "old/1" not in instances(redis), 5, "a day-old instance removed")
    for d in (a, b):
        h.check(d.term() == 0, "exit status")


h.main(globals())
