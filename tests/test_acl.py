"""test_acl.py -- the least-privilege Redis users of docs/security.md (issue
19), loaded as printed: the users.acl block into a primary, a core replica
and a DC replica (each replica logging in with the page's redis.conf lines),
the Sentinels' block after deployment.md's sentinel.conf into three
Sentinels, and one more DC user made from dc1's line as the page says
("repeat it per DC"). Every program runs as its own user through all of it;
then each thing a DC's user must not do is tried and refused."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_docs import Fill, page_blocks  # noqa: E402
from test_pub import read_state  # noqa: E402
from test_return import salt_request, wire_pairs  # noqa: E402
from test_status import job_caches  # noqa: E402

CLUSTER = "prod"  # the page's
MASTER = "saltrelay"
STATUS = os.path.join(h.BUILD, "returner", "saltrelay-status")


def key(*parts):
    return "saltrelay:{%s}:%s" % (CLUSTER, ":".join(parts))


def page_block(page, kind):
    found = [b for b in page_blocks(os.path.join(h.REPO, "docs", page)) if b.kind == kind]
    h.check(len(found) == 1, "%s: one %s block expected, found %d" % (page, kind, len(found)))
    return found[0].text


def acl_block():
    """security.md's users.acl block, which conf/redis-users.acl (installed
    with the examples) is word for word."""
    text = page_block("security.md", "acl")
    with open(os.path.join(h.REPO, "conf", "redis-users.acl")) as f:
        h.check(f.read() == text, "conf/redis-users.acl differs from security.md's users.acl block")
    return text


def for_dc(text, dc):
    """The saltrelay-dc-dc1 line of TEXT made for DC, as the page says."""
    lines = [l for l in text.splitlines() if l.startswith("user saltrelay-dc-dc1 ")]
    h.check(len(lines) == 1, "no saltrelay-dc-dc1 line in %r" % text)
    return lines[0].replace("dc1", dc).replace("DC1", dc.upper()) + "\n"


def passwords(text):
    return dict(re.findall(r"(?m)^user (\S+) on .*?>(\S+)", text))


def rcli(port, user, pw, *args):
    """One command as USER; the reply as redis-cli prints it (errors too)."""
    r = subprocess.run(["redis-cli", "-p", str(port), "--no-auth-warning", "--user", user, "--pass", pw, "--raw"] +
                       [str(a) for a in args], capture_output=True, timeout=20)
    return (r.stdout + r.stderr).decode(errors="replace").strip()


class Cluster:
    """Primary, core replica, DC replica and three Sentinels on the docs' ACL."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.acl = acl_block()
        self.acl_file = self.acl + for_dc(self.acl, "dc2")
        self.pw = passwords(self.acl_file)
        self.replica_conf = page_block("security.md", "redis.conf")
        self.nodes = {}
        self.primary = self.node("primary")
        self.core = self.node("core", "replica-priority 100\n" + self.replica_conf, self.primary)
        self.dcrep = self.node("dcrep", "replica-priority 0\n" + self.replica_conf, self.primary)
        for port in (self.core, self.dcrep):
            h.wait_until(lambda: "master_link_status:up" in self.admin(port, "INFO", "replication"), 20,
                         "replica %d linked as saltrelay-replica" % port)
        self.sentinels = self.start_sentinels()

    def admin(self, port, *args):
        return rcli(port, "admin", self.pw["admin"], *args)

    def node(self, name, conf="", replica_of=None):
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        with open(os.path.join(d, "users.acl"), "w") as f:
            f.write(self.acl_file)
        path = os.path.join(d, "redis.conf")
        port = h.free_port()
        with open(path, "w") as f:
            f.write("aclfile %s\n%s" % (os.path.join(d, "users.acl"), conf))
            if replica_of:
                f.write("\nreplicaof 127.0.0.1 %d\n" % replica_of)
        self.nodes[name] = h.spawn(["redis-server", path, "--port", port, "--bind", "127.0.0.1", "--dir", d,
                                    "--save", "", "--logfile", os.path.join(d, "redis.log")])
        h.wait_until(lambda: self.admin(port, "PING") == "PONG", 15, "redis %s" % name)
        return port

    def start_sentinels(self):
        deploy = page_block("deployment.md", "sentinel.conf")
        fill = Fill().add("<password>", "replaced-below").add("redis-primary.example.net 6379",
                                                              "localhost %d" % self.primary)
        text = fill(deploy) + page_block("security.md", "sentinel-acl") + for_dc(
            page_block("security.md", "sentinel-acl"), "dc2")
        fill.all_used()
        ports = []
        for i in range(3):
            d = os.path.join(self.tmp, "sentinel%d" % i)
            os.makedirs(d)
            with open(os.path.join(d, "sentinel.conf"), "w") as f:
                f.write(text)
            port = h.free_port()
            h.spawn(["redis-server", os.path.join(d, "sentinel.conf"), "--sentinel", "--port", port, "--bind",
                     "127.0.0.1", "--dir", d, "--logfile", os.path.join(d, "sentinel.log")])
            ports.append(port)
        self.spw = passwords(text)

        def agree():
            for p in ports:
                out = rcli(p, "saltrelay-sentinel", self.spw["saltrelay-sentinel"], "SENTINEL", "MASTER", MASTER)
                m = dict(zip(out.splitlines()[::2], out.splitlines()[1::2]))
                if m.get("flags") != "master" or m.get("num-other-sentinels") != "2" or m.get("num-slaves") != "2":
                    return False
            return True
        h.wait_until(agree, 60, "the Sentinels to know each other and both replicas (as saltrelay-sentinel)")
        return ports

    def url(self, user):
        return "sentinel://%s:%s@%s/%s" % (user, self.pw[user], ",".join("127.0.0.1:%d" % p for p in
                                                                           self.sentinels), MASTER)

    def acl_log(self, port):
        return self.admin(port, "ACL", "LOG")


def test_acl_whole_path(tmp):
    """With the users of docs/security.md as printed: publications reach two
    DCs, requests (an accepted _auth that registers its minion, a request
    that refreshes it) are answered, tree sync reaches both DCs, a dead
    consumer leaves the group, the primary fails over (Sentinels as
    saltrelay-sentinel, every program finding the new primary as its own
    user) and it all goes on; saltrelay-status (table, --json, job,
    minions) reads it as saltrelay-status. Each saltrelay-down holds its
    DC's lease as its DC's user (taken, renewed, its reports fenced by it,
    released at dc2's clean stop); saltrelay-status forget dc2 is refused as
    saltrelay-status and works as saltrelay-up. Redis logs no refused
    command. Then each forbidden action of saltrelay-dc-dc1 is refused
    (NOPERM), among them taking or releasing dc2's lease."""
    c = Cluster(tmp)
    src = os.path.join(tmp, "src")
    os.makedirs(src)
    with open(os.path.join(src, "top.sls"), "w") as f:
        f.write("base:\n  '*': []\n")
    # the MoM: the captured accepted _auth of cap-flat-1, and echoes of the requests below
    auth = [(q, p) for q, p in wire_pairs() if b"_auth" in bytes.fromhex(q) and b"cap-flat-1" in bytes.fromhex(q)]
    reqs = {dc: [salt_request("cap-flat-1" if dc == "dc1" else "m-" + dc, b"%s-%d" % (dc.encode(), i))
                 for i in range(10)] for dc in ("dc1", "dc2")}
    mapfile = os.path.join(tmp, "map")
    with open(mapfile, "w") as f:
        f.write("%s %s\n" % auth[0])
        for q in reqs["dc1"] + reqs["dc2"]:
            f.write("%s %s\n" % (q.hex(), (b"rep:" + q).hex()))
    mom_pub, mom_ret = "tcp://127.0.0.1:%d" % h.free_port(), "tcp://127.0.0.1:%d" % h.free_port()
    master = h.spawn([h.tool("zmaster"), mom_ret, "map", mapfile], stderr=subprocess.PIPE)
    h.check(b"bound" in master.stderr.readline(), "zmaster did not start")
    jobs = os.path.join(tmp, "jobs")
    shutil.copytree(job_caches()[0][0], jobs)
    up = h.Daemon("up", tmp, "up", cluster=CLUSTER, redis=c.url("saltrelay-up"), master_publish=mom_pub,
                  master_ret=mom_ret, sync_source=src, sync_interval=1, metrics=True).start()
    downs = {}
    for dc in ("dc1", "dc2"):
        user = "saltrelay-dc-" + dc
        state, target = os.path.join(tmp, "state-" + dc), os.path.join(tmp, "target-" + dc)
        os.makedirs(state)
        downs[dc] = h.Daemon("down", tmp, dc, cluster=CLUSTER, datacenter=dc, metrics=True,
                             redis="redis://%s:%s@127.0.0.1:%d" % (user, c.pw[user], c.dcrep),
                             redis_primary=c.url(user), state_dir=state, sync_target=target, report_interval=0.5,
                             publish_bind="tcp://127.0.0.1:%d" % h.free_port(),
                             ret_bind="tcp://127.0.0.1:%d" % h.free_port()).start()
        downs[dc].state, downs[dc].target = state, target
    status_cfg = os.path.join(tmp, "status.yaml")
    with open(status_cfg, "w") as f:
        f.write("cluster: %s\nredis: %s\nmaster_publish: %s\nmaster_ret: %s\njob_cache_dir: %s\n" %
                (CLUSTER, c.url("saltrelay-status"), mom_pub, mom_ret, jobs))

    def publish(n):
        subs = {}
        for dc, d in downs.items():
            subs[dc] = h.Sub(d.cfg_pub, "--count", n, "--idle-ms", 8000, "--max-ms", 60000)
        for dc, d in downs.items():
            h.wait_until(lambda: int(read_state(d.state).get("subscribers", 0)) >= 1, 20, dc + "'s subscriber")
        time.sleep(0.3)
        h.zpub(mom_pub, "--gen", n, "--size", 200)
        for dc, s in subs.items():
            got = s.lines()
            h.check(len(got) == n, "%s's minion got %d of %d publications" % (dc, len(got), n))

    def ask(dc, lines, clients):
        ret = downs[dc].ret
        r = subprocess.run([h.tool("zreqs"), ret, "--clients", str(clients), "--timeout-ms", "20000", "--max-ms",
                            "60000"], input="\n".join(lines).encode() + b"\n", capture_output=True, timeout=90)
        verdicts = [l.split()[2] for l in r.stdout.decode().splitlines()]
        h.check(verdicts == ["ok"] * len(lines), "%s's requests: %s %s" % (dc, verdicts, r.stderr.decode()))

    def requests(part):
        for dc in ("dc1", "dc2"):
            qs = reqs[dc][part * 5:part * 5 + 5]
            ask(dc, ["%d %s %s" % (i, q.hex(), (b"rep:" + q).hex()) for i, q in enumerate(qs)], 5)

    for d in downs.values():
        d.cfg_pub = re.search(r"publish_bind: (\S+)", open(d.cfg_path).read()).group(1)
        d.ret = re.search(r"ret_bind: (\S+)", open(d.cfg_path).read()).group(1)
    publish(50)
    ask("dc1", ["0 %s %s" % auth[0]], 1)  # accepted: cap-flat-1 registered in dc1
    h.wait_until(lambda: c.admin(c.primary, "EXISTS", key("reg", "dc1", "cap-flat-1")) == "1", 10,
                 "cap-flat-1 registered by dc1")
    requests(0)  # dc1's refresh cap-flat-1's entry (the registry script)
    for dc, d in downs.items():
        h.wait_until(lambda: os.path.exists(os.path.join(d.target, "current", "top.sls")), 30, dc + "'s tree")
        rep = dict(zip(*[iter(c.admin(c.primary, "HGETALL", key("dc", dc)).splitlines())] * 2))
        h.wait_until(lambda: dict(zip(*[iter(c.admin(c.primary, "HGETALL", key("dc", dc)).splitlines())] * 2)).get(
            "heartbeat_ms", "0") != "0", 10, dc + "'s health check seeing the heartbeat")
        rep = dict(zip(*[iter(c.admin(c.primary, "HGETALL", key("dc", dc)).splitlines())] * 2))
        h.check(rep.get("source_up") == "1" and rep.get("link_up") == "1", "%s's health check: %r" % (dc, rep))
    # a consumer of a dead instance leaves dc1's group
    c.admin(c.primary, "XGROUP", "CREATECONSUMER", key("req", "dc1"), "saltrelay-up", "ghost/1")
    me = up.instance_name()

    def consumers():
        out = c.admin(c.primary, "XINFO", "CONSUMERS", key("req", "dc1"), "saltrelay-up").splitlines()
        return sorted(out[i + 1] for i, l in enumerate(out[:-1]) if l == "name")
    h.wait_until(lambda: consumers() == [me], 40, "only saltrelay-up's own consumer left (now %s)" % consumers())
    for port, name in ((c.primary, "primary"), (c.core, "core replica"), (c.dcrep, "DC replica")):
        h.check(c.acl_log(port) == "", "%s refused commands:\n%s" % (name, c.acl_log(port)))
    # failover: the core replica takes over; every program follows as its own user
    c.nodes["primary"].kill()
    up.wait_log("sentinels switched master '%s' to 127.0.0.1:%d" % (MASTER, c.core), 60)
    for d in downs.values():
        d.wait_log("127.0.0.1:%d" % c.core, 30)
    h.wait_until(lambda: "master_port:%d" % c.core in c.admin(c.dcrep, "INFO", "replication") and
                 "master_link_status:up" in c.admin(c.dcrep, "INFO", "replication"), 60,
                 "the DC replica moved to the new primary by the Sentinels")
    publish(30)
    requests(1)
    # saltrelay-status as saltrelay-status
    for args in ([], ["--json"], ["minions"], ["--json", "minions"], ["job", job_caches()[0][1]]):
        r = subprocess.run([STATUS, "-c", status_cfg] + args, capture_output=True, timeout=60)
        out, err = r.stdout.decode(), r.stderr.decode()
        h.check(r.returncode in (0, 1) and not err, "saltrelay-status %s (exit %d):\n%s%s" %
                (" ".join(args), r.returncode, out, err))
        if args == []:
            h.check(re.search(r"(?m)^dc1\s+ok\s", out) and re.search(r"(?m)^dc2\s+ok\s", out), "table:\n" + out)
        if args == ["--json"]:
            h.check(sorted(d["name"] for d in json.loads(out)["dcs"]) == ["dc1", "dc2"], "--json: " + out)
        if args == ["--json", "minions"]:
            listed = {d["name"]: [m["id"] for m in d["minions"]] for d in json.loads(out)["dcs"]}
            h.check(listed == {"dc1": ["cap-flat-1"], "dc2": []}, "minions: %r" % listed)
        print("saltrelay-status %s: exit %d" % (" ".join(args), r.returncode))
    for port, name in ((c.core, "new primary"), (c.dcrep, "DC replica")):
        h.check(c.acl_log(port) == "", "%s refused commands:\n%s" % (name, c.acl_log(port)))
    um = up.metrics()
    h.check(um["requests_answered_total"] == 21 and um["requests_bad_total"] == 0, "up: %r" % um)
    owners = {dc: c.admin(c.core, "GET", key("dc", dc, "owner")) for dc in downs}
    for dc, d in downs.items():  # taken and renewed across the failover as the DC's user
        h.check(owners[dc].startswith("%s/%d#" % (socket.gethostname(), d.proc.pid)), "%s's lease: %r" %
                (dc, owners[dc]))
    forbidden_dc_actions(c)
    h.check(c.admin(c.core, "GET", key("dc", "dc2", "owner")) == owners["dc2"], "dc2's lease changed by dc1's user")
    forget_dc2(c, downs["dc2"], up, status_cfg)


def forget_dc2(c, down, up, status_cfg):
    """dc2 stops cleanly (its user releases its lease); forget dc2 is refused
    to saltrelay-status's user and done by saltrelay-up's."""
    c.admin(c.core, "ACL", "LOG", "RESET")
    h.check(down.term() == 0, "dc2 stops")
    h.check(c.admin(c.core, "EXISTS", key("dc", "dc2", "owner")) == "0", "dc2's lease not released at its stop")
    r = subprocess.run([STATUS, "-c", status_cfg, "forget", "dc2"], capture_output=True, timeout=60)
    h.check(r.returncode == 2 and b"NOPERM" in r.stderr and c.admin(c.core, "EXISTS", key("dc", "dc2")) == "1",
            "forget as saltrelay-status: %r" % (r,))
    c.admin(c.core, "ACL", "LOG", "RESET")
    r = subprocess.run([STATUS, "-c", up.cfg_path, "forget", "dc2"], capture_output=True, timeout=60)
    h.check(r.returncode == 0 and r.stdout.startswith(b"forgot DC dc2: its report, its request stream, its reply "
                                                      b"stream") and not r.stderr, "forget as saltrelay-up: %r" % (r,))
    left = [k for k in (key("dc", "dc2"), key("req", "dc2"), key("reqhi", "dc2"), key("rep", "dc2"),
                        key("minions", "dc2")) if c.admin(c.core, "EXISTS", k) != "0"]
    h.check(not left and c.admin(c.core, "SMEMBERS", key("dcs")) == "dc1", "left after forget: %r" % left)
    r = subprocess.run([STATUS, "-c", up.cfg_path, "forget", "dc1"], capture_output=True, timeout=60)
    h.check(r.returncode == 2 and b"DC dc1 is running" in r.stderr, "forget dc1 while it runs: %r" % (r,))
    h.check(c.acl_log(c.core) == "", "refused commands:\n" + c.acl_log(c.core))


def lease_script(name):
    """The lease script NAME of redis/lease.c, as saltrelay-down sends it."""
    with open(os.path.join(h.REPO, "redis", "lease.c")) as f:
        m = re.search(r"const char %s\[\] =\s*((?:\s*\"(?:[^\"\\]|\\.)*\")+);" % name, f.read())
    h.check(m, "no %s in redis/lease.c" % name)
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))


# What saltrelay-dc-dc1 must not do, each refused by Redis (NOPERM; inside a
# script, Redis 7.0 says "ERR The user executing the script can't ...", and
# logs it in ACL LOG like the others).
FORBIDDEN = [
    ("XADD", key("pub"), "*", "v", "1"), ("XTRIM", key("pub"), "MAXLEN", "0"), ("DEL", key("pub")),
    ("XDEL", key("pub"), "0-1"), ("PEXPIRE", key("pub"), "1"), ("XGROUP", "CREATE", key("pub"), "g", "$"),
    ("PUBLISH", key("pubch"), "x"),
    ("XREAD", "STREAMS", key("rep", "dc2"), "0"), ("XRANGE", key("rep", "dc2"), "-", "+"),
    ("XADD", key("rep", "dc2"), "*", "v", "1"), ("XTRIM", key("rep", "dc2"), "MAXLEN", "0"),
    ("XRANGE", key("req", "dc2"), "-", "+"), ("XADD", key("req", "dc2"), "*", "v", "1"),
    ("XDEL", key("req", "dc2"), "0-1"),
    ("HGETALL", key("dc", "dc2")), ("HSET", key("dc", "dc2"), "state", "stopped"), ("PEXPIRE", key("dc", "dc2"), "1"),
    ("HSET", key("reg", "dc2", "m"), "last_auth", "1"), ("SADD", key("minions", "dc2"), "m"),
    ("HSET", key("reqhi", "dc2"), "x", "1"),
    ("SREM", key("dcs"), "dc2"), ("DEL", key("dcs")), ("PEXPIRE", key("dcs"), "1"),
    ("GET", key("dc", "dc2", "owner")), ("SET", key("dc", "dc2", "owner"), "x"), ("DEL", key("dc", "dc2", "owner")),
    ("EVAL", lease_script("LEASE_TAKE_LUA"), "1", key("dc", "dc2", "owner"), "me", "me", "6000", ""),
    ("EVAL", lease_script("LEASE_RELEASE_LUA"), "1", key("dc", "dc2", "owner"), "me"),
    ("EVAL", "return redis.call('SET', '%s', 'me', 'PX', 6000)" % key("dc", "dc2", "owner"), "0"),
    ("SET", key("reqstreams"), "x"), ("DEL", key("reqstreams")), ("SET", key("tree", "head"), "x"),
    ("DEL", key("tree", "chunks")), ("ZADD", key("ups"), "1", "x"), ("HSET", key("up", "x"), "a", "b"),
    ("EVAL", "return redis.call('XADD', KEYS[1], '*', 'a', 1)", "1", key("rep", "dc2")),
    ("EVAL", "return redis.call('DEL', KEYS[1])", "1", key("pub")),
    ("EVAL", "return redis.call('XADD', '%s', '*', 'a', 1)" % key("pub"), "0"),
    ("EVAL", "return redis.call('SREM', '%s', 'dc2')" % key("dcs"), "0"),
    ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f', function() return 1 end)"),
    ("FCALL", "f", "0"), ("SCRIPT", "FLUSH"),
    ("XGROUP", "DESTROY", key("req", "dc1"), "saltrelay-up"),
    ("XREADGROUP", "GROUP", "saltrelay-up", "x", "STREAMS", key("req", "dc1"), ">"),
    ("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "SET", "maxmemory", "1"), ("KEYS", "*"), ("SCAN", "0"),
    ("ACL", "SETUSER", "x"), ("ACL", "LIST"), ("CLIENT", "KILL", "USER", "saltrelay-up"), ("SHUTDOWN",),
    ("SLAVEOF", "NO", "ONE"), ("MONITOR",), ("MIGRATE", "127.0.0.1", "1", key("pub"), "0", "1"),
]
SENTINEL_FORBIDDEN = [("SENTINEL", "MASTERS"), ("SENTINEL", "FAILOVER", MASTER), ("SENTINEL", "RESET", "*"),
                      ("SENTINEL", "SET", MASTER, "quorum", "1"), ("SENTINEL", "REMOVE", MASTER), ("ACL", "LIST")]


def forbidden_dc_actions(c):
    port, user, pw = c.core, "saltrelay-dc-dc1", c.pw["saltrelay-dc-dc1"]
    c.admin(port, "ACL", "LOG", "RESET")
    refused = []
    for cmd in FORBIDDEN:
        out = rcli(port, user, pw, *cmd)
        in_script = cmd[0] == "EVAL" and cmd[2] == "0"
        ok = out.startswith("NOPERM") or (in_script and re.match(r"ERR The user executing the script can't (access|run)",
                                                                 out))
        h.check(ok, "saltrelay-dc-dc1 was not refused %s: %r" % (" ".join(cmd)[:100], out))
        refused.append(cmd[0])
    h.check(c.admin(port, "PING") == "PONG" and c.admin(port, "XLEN", key("pub")) != "0", "the primary is intact")
    h.check(c.acl_log(port) != "", "the refusals are not in ACL LOG")
    for cmd in SENTINEL_FORBIDDEN:
        out = rcli(c.sentinels[0], user, c.spw[user], *cmd)
        h.check(out.startswith("NOPERM"), "a Sentinel did not refuse saltrelay-dc-dc1 %s: %r" % (" ".join(cmd), out))
    status_pw = c.pw["saltrelay-status"]
    for cmd in (("HSET", key("dc", "dc1"), "state", "x"), ("XADD", key("pub"), "*", "v", "1"),
                ("DEL", key("dcs")), ("EVAL", "return 1", "0")):
        out = rcli(port, "saltrelay-status", status_pw, *cmd)
        h.check(out.startswith("NOPERM"), "saltrelay-status was not refused %s: %r" % (" ".join(cmd), out))
    print("saltrelay-dc-dc1 refused %d commands on the primary, %d on a Sentinel; saltrelay-status refused writes" %
          (len(refused), len(SENTINEL_FORBIDDEN)))


def refusals(d):
    return d.metrics().get("redis_auth_refused_total", 0)


def test_auth_refused(tmp):
    """A password Redis refuses (WRONGPASS) is its own log line, once per
    connection, and a counter (redis_auth_refused_total), never "cannot
    connect" or "unreachable"; the login is tried again every 5 s, not
    faster (the old backoff from 0.1 s: about 7 tries per connection in the
    first 6 s); once the password is right in Redis the daemon connects
    without a restart. saltrelay-status and a Sentinel that refuses say so too."""
    redis = h.Redis(tmp)
    redis.cli("ACL", "SETUSER", "relay", "on", ">right", "~*", "&*", "+@all")
    url = "redis://relay:wrong@127.0.0.1:%d" % redis.port
    state = os.path.join(tmp, "state")
    os.makedirs(state)
    down = h.Daemon("down", tmp, "dc1", cluster=CLUSTER, datacenter="dc1", redis=url, state_dir=state, metrics=True,
                    publish_bind="tcp://127.0.0.1:%d" % h.free_port(),
                    ret_bind="tcp://127.0.0.1:%d" % h.free_port()).start(wait_ready=False)
    down.wait_log("authentication refused (WRONGPASS", 20)
    h.wait_until(lambda: refusals(down) >= 1, 10, "a refusal counted")
    time.sleep(1)  # every connection has tried once by now
    conns = down.log().count("authentication refused")
    c0, t0 = refusals(down), time.monotonic()
    h.wait_until(lambda: time.monotonic() - t0 >= 6, 10, "a 6 s window")
    c1, window = refusals(down), time.monotonic() - t0
    most = conns * (int(window / 5) + 2)
    print("%d connections refused; %d more refusals in %.1f s (at most %d at one per 5 s)" %
          (conns, c1 - c0, window, most))
    h.check(c1 - c0 <= most, "%d refusals in %.1f s by %d connections: faster than every 5 s" %
            (c1 - c0, window, conns))
    log = down.log()
    h.check(log.count("authentication refused") == conns, "logged per retry:\n" + log)
    h.check("cannot connect" not in log and "unreachable" not in log, "taken for an outage:\n" + log)
    h.check("check the redis user and password" in log and "wrong" not in log, "the line:\n" + log)
    redis.cli("ACL", "SETUSER", "relay", ">wrong")  # the password fixed in Redis
    down.wait_log(h.READY, 30)
    h.check("connected again" in down.log(current=True), "no reconnect logged")
    cfg = os.path.join(tmp, "status.yaml")
    with open(cfg, "w") as f:
        f.write("cluster: %s\nredis: redis://relay:bad@127.0.0.1:%d\nmaster_publish: tcp://127.0.0.1:1\n"
                "master_ret: tcp://127.0.0.1:2\n" % (CLUSTER, redis.port))
    r = subprocess.run([STATUS, "-c", cfg], capture_output=True, timeout=30)
    h.check(r.returncode == 2 and b"refused the login" in r.stdout and b"unreachable" not in r.stdout,
            "saltrelay-status: %r" % (r,))
    # a Sentinel that refuses the URL's login
    sport = h.free_port()
    d = os.path.join(tmp, "sentinel")
    os.makedirs(d)
    with open(os.path.join(d, "sentinel.conf"), "w") as f:
        f.write("sentinel monitor m 127.0.0.1 %d 1\nsentinel auth-user m relay\nsentinel auth-pass m wrong\n"
                "user default off\nuser relay on >right +@all\n" % redis.port)
    h.spawn(["redis-server", os.path.join(d, "sentinel.conf"), "--sentinel", "--port", sport, "--bind", "127.0.0.1",
             "--dir", d, "--logfile", os.path.join(d, "sentinel.log")])
    h.wait_until(lambda: rcli(sport, "relay", "right", "PING") == "PONG", 10, "the Sentinel")
    with open(cfg, "w") as f:
        f.write("cluster: %s\nredis: sentinel://relay:bad@127.0.0.1:%d/m\nmaster_publish: tcp://127.0.0.1:1\n"
                "master_ret: tcp://127.0.0.1:2\n" % (CLUSTER, sport))
    r = subprocess.run([STATUS, "-c", cfg], capture_output=True, timeout=30)
    h.check(r.returncode == 2 and b"Redis master 'm' refused the login" in r.stdout and
            b"WRONGPASS" in r.stderr, "saltrelay-status via a refusing Sentinel: %r" % (r,))


h.main(globals())
