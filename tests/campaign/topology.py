"""topology.py -- the campaign's processes, on loopback "hosts" (fabric.py):

  mom:  the test MoM (tests/tools/campmom), two saltrelay-ups with one
        configuration, Sentinel s-mom, the tree source directory
  ca:   Redis "A" (the first primary), Sentinel s-ca
  cb:   Redis "B" (the core replica, promotable), Sentinel s-cb
  dc1, dc2: the DC's Redis replica (replica-priority 0, never promoted),
        its saltrelay-down (state_dir and sync_target on small tmpfs), its
        minions (tests/tools/campsub) and request clients (campreq)

as docs/deployment.md lays out a Sentinel setup (the quorum at the core
site, one Sentinel per core host). Every process is a Proc: started,
killed, stopped and continued through methods that write the history
(History) and restarted by a supervisor if it exits when it should run."""

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time

import harness as h
from fabric import HOSTS, Fabric

MASTER = "mymaster"
DECOY = MASTER + "-cache"  # another master the same Sentinels watch, its name starting with ours
CLUSTER = "camp"
DCS = ("dc1", "dc2")
REQUEST_TIMEOUT = 10   # both daemons' request_timeout, seconds
AUTH_TIMEOUT = 5       # saltrelay-down's auth_timeout
REPLAY_MAX_AGE = 60    # saltrelay-down's replay_max_age
PUB_WAIT_REPLICAS = 3  # every replica of the primary: the other core one and both DC replicas
MINIONS_PER_DC = 6     # request clients per DC (their ids are minion topics too)
SUBSCRIBED_MINIONS = 2  # of those, how many also have a subscriber


def sha1hex(s):
    return hashlib.sha1(s.encode()).hexdigest()


class History:
    """The campaign's own history lines (campaign.jsonl), stamped like the
    tools' (camplog.h): "w" wall seconds, "m" monotonic seconds."""

    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def add(self, what, **fields):
        rec = {"k": what, "w": round(time.time(), 6), "m": round(time.monotonic(), 6)}
        rec.update(fields)
        line = json.dumps(rec, separators=(",", ":"))
        with self.lock:
            self.f.write(line + "\n")

    def close(self):
        self.f.close()


def resp(port, *args, timeout=0.5):
    """One command to a Redis or Sentinel on PORT (not through any proxy);
    the decoded reply, or None if it does not answer in TIMEOUT."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"*%d\r\n" % len(args) +
                      b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (str(x).encode() for x in args)))
            f = s.makefile("rb")
            return _read_reply(f)
    except (OSError, ValueError):
        return None


def _read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ValueError("short reply")
    t, body = line[:1], line[1:-2]
    if t == b"+":
        return body.decode()
    if t == b"-":
        return Exception(body.decode())
    if t == b":":
        return int(body)
    if t == b"$":
        n = int(body)
        return None if n < 0 else f.read(n + 2)[:-2].decode(errors="replace")
    if t == b"*":
        n = int(body)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ValueError("bad reply")


class Proc:
    """A process of the topology the nemesis may signal. Subclasses make
    self.proc (a Popen) in _spawn(); each start is a new incarnation."""

    kind = "proc"

    def __init__(self, topo, name, host):
        self.topo, self.name, self.host = topo, name, host
        self.inc = -1
        self.proc = None
        self.stopped = False
        self.want = True  # the supervisor restarts it if it exits meanwhile
        self.lock = threading.RLock()

    def event(self, what, **kw):
        self.topo.hist.add("proc", p=self.name, kind=self.kind, host=self.host, e=what, inc=self.inc,
                           pid=self.proc.pid if self.proc else None, **kw)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        with self.lock:
            self.inc += 1
            self.stopped = False
            self._spawn()
            self.want = True
            self.event("start")

    def _spawn(self):
        raise NotImplementedError

    def kill9(self, want=False):
        with self.lock:
            self.want = want
            if self.alive():
                self.proc.kill()
                self.proc.wait(timeout=20)
                self.event("kill", rc=self.proc.returncode)
            self.stopped = False

    def term(self, timeout=90):
        """SIGTERM and wait; returns the exit status (None if it had to be killed)."""
        with self.lock:
            self.want = False
            if not self.alive():
                return None
            if self.stopped:
                self.proc.send_signal(signal.SIGCONT)
                self.stopped = False
            self.proc.send_signal(signal.SIGTERM)
            self.event("term")
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)
            rc = None
        self.event("exit", rc=rc)
        return rc

    def sigstop(self):
        with self.lock:
            if self.alive() and not self.stopped:
                self.proc.send_signal(signal.SIGSTOP)
                self.stopped = True
                self.event("stop")

    def sigcont(self):
        with self.lock:
            if self.alive() and self.stopped:
                self.proc.send_signal(signal.SIGCONT)
                self.event("cont")
            self.stopped = False

    def signal(self, sig, what):
        with self.lock:
            if self.alive():
                self.proc.send_signal(sig)
                self.event(what)


class RedisNode(Proc):
    """A Redis server with AOF (fsync always) behind its front proxy; it
    announces the proxy's port, so replication and the Sentinels use it."""

    kind = "redis"

    def __init__(self, topo, name, host, priority=None):
        super().__init__(topo, name, host)
        extra = ["--protected-mode", "no", "--bind-source-addr", HOSTS[host], "--replica-announce-ip", "127.0.0.1",
                 "--repl-timeout", "10", "--repl-backlog-size", "64mb", "--maxmemory-policy", "noeviction"]
        if priority is not None:
            extra += ["--replica-priority", str(priority)]
        self.r = h.Redis(topo.redis_dir, "redis-" + name, aof=True, fsync="always", start=False, extra=extra)
        self.front = topo.fabric.front(self.r.port, host)
        self.r.extra += ["--replica-announce-port", str(self.front.port)]

    def _spawn(self):
        # as a config file Sentinel had rewritten: a replica of the primary
        # the Sentinels name now, unless it is that primary
        primary = self.topo.primary_node()
        self.r.replicaof = None if primary in (None, self) else _Port(primary.front.port)
        self.r.start()
        self.proc = self.r.proc


class _Port:
    def __init__(self, port):
        self.port = port


class DecoyNode(Proc):
    """A Redis of another master (DECOY) that the same Sentinels watch; no
    saltrelay process may ever follow its failovers."""

    kind = "decoy"

    def __init__(self, topo, name, host, primary=None):
        super().__init__(topo, name, host)
        self.r = h.Redis(topo.redis_dir, "decoy-" + name, start=False, replicaof=primary and primary.r,
                         extra=["--protected-mode", "no"])

    def _spawn(self):
        self.r.start()
        self.proc = self.r.proc


class SentinelNode(Proc):
    kind = "sentinel"

    def __init__(self, topo, name, host, primary, decoy):
        super().__init__(topo, name, host)
        self.dir = os.path.join(topo.tmp, "sentinel-" + name)
        os.makedirs(self.dir)
        self.port = h.free_port()
        self.front = topo.fabric.front(self.port, host)
        self.conf = os.path.join(self.dir, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nlogfile %s\nbind-source-addr %s\n"
                    "sentinel announce-ip 127.0.0.1\nsentinel announce-port %d\n"
                    "sentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s 2000\n"
                    "sentinel failover-timeout %s 4000\n" %
                    (self.port, self.dir, self.log_path(), HOSTS[host], self.front.port, MASTER, primary.front.port,
                     MASTER, MASTER))
            f.write("sentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s 2000\n"
                    "sentinel failover-timeout %s 4000\n" % (DECOY, decoy.r.port, DECOY, DECOY))

    def log_path(self):
        return os.path.join(self.dir, "sentinel.log")

    def _spawn(self):
        self.proc = h.spawn(["redis-server", self.conf, "--sentinel"])
        h.wait_until(lambda: resp(self.port, "PING") == "PONG", 10, "sentinel %s" % self.name)

    def primary_port(self):
        r = resp(self.port, "SENTINEL", "get-master-addr-by-name", MASTER)
        return int(r[1]) if isinstance(r, list) and len(r) == 2 else None


class RelayDaemon(Proc):
    """saltrelay-up or saltrelay-down (tests/harness.py Daemon), with its
    metrics endpoint; a DC's saltrelay-down leaves from its host's address
    (tests/tools/srcbind.c)."""

    def __init__(self, topo, name, host, kind, **cfg):
        super().__init__(topo, name, host)
        self.kind = kind
        self.d = h.Daemon(kind, topo.tmp, name, metrics=True, cluster=CLUSTER, log_level="info", **cfg)
        if host != "mom":
            env = dict(os.environ)
            env["LD_PRELOAD"] = " ".join(filter(None, [h.tool("libsrcbind.so"), env.get("LD_PRELOAD")]))
            env["SRCBIND_ADDR"] = HOSTS[host]
            if h.sanitized():  # ASan wants to come first; the shim only wraps connect()
                env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
            self.d.env = env

    def _spawn(self):
        self.d.start(wait_ready=False)
        self.proc = self.d.proc

    def wait_ready(self, timeout=60):
        self.d.wait_log(h.READY, timeout)


class ToolProc(Proc):
    """One of the campaign's tools (tests/tools/camp*); ARGV_OF(inc) gives
    its command line for each incarnation."""

    def __init__(self, topo, name, host, kind, argv_of):
        super().__init__(topo, name, host)
        self.kind, self.argv_of = kind, argv_of
        self.errlog = os.path.join(topo.tmp, name + ".log")

    def _spawn(self):
        with open(self.errlog, "a") as err:
            self.proc = h.spawn(self.argv_of(self.inc), stdout=err, stderr=err)


class Disk:
    """A small tmpfs under a DC's state_dir or sync_target that the nemesis
    can fill (a file written until ENOSPC) and empty again."""

    def __init__(self, path, size):
        self.path = path
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path], capture_output=True)
        self.mounted = r.returncode == 0
        self.filler = os.path.join(path, ".campaign-filler")

    def fill(self):
        """Write the filler until the file system says ENOSPC (unbuffered:
        a buffered close would fail on the full disk, and leave it full)."""
        if not self.mounted:
            return False
        try:
            with open(self.filler, "ab", buffering=0) as f:
                block = b"\0" * 65536
                for _ in range(100000):
                    f.write(block)
        except OSError:
            pass
        return True

    def clear(self):
        try:
            os.unlink(self.filler)
        except OSError:
            pass

    def unmount(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.path], capture_output=True)
            self.mounted = False


class TreeSource:
    """The MoM's tree (saltrelay-up's sync_source): generations gen-<n>, each
    a directory of a few files and a MANIFEST of their SHA-1s, moved in whole
    by rename(2) and out again before removal, so that any scan sees complete
    generations only; the newest KEEP are kept."""

    KEEP = 3

    def __init__(self, topo, root, rng):
        self.topo, self.root, self.rng = topo, root, rng
        self.staging = root + ".staging"
        os.makedirs(root)
        os.makedirs(self.staging)
        self.gen = 0

    def gens(self):
        return sorted(int(n[4:]) for n in os.listdir(self.root) if n.startswith("gen-"))

    def step(self):
        self.gen += 1
        g = self.gen
        tmp = os.path.join(self.staging, "gen-%d" % g)
        files = {}
        for i in range(self.rng.randint(2, 5)):
            size = self.rng.choice([200, 3000, 20000, 70000]) if self.rng.random() > 0.1 else 300000
            rel = os.path.join(self.rng.choice(["salt", "pillar", "salt/states"]), "f%d.sls" % i)
            data = (b"# generation %d file %d\n" % (g, i)) + bytes(self.rng.getrandbits(8) for _ in range(64))
            data = (data * (size // len(data) + 1))[:size]
            files[rel] = data
        if self.rng.random() < 0.3 and g > 1:  # an unchanged file (hard-linked in the DC)
            files["salt/common.sls"] = b"# the same in every generation\n"
        for rel, data in files.items():
            p = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
        with open(os.path.join(tmp, "MANIFEST"), "w") as f:
            for rel in sorted(files):
                f.write("%s %s\n" % (rel, hashlib.sha1(files[rel]).hexdigest()))
        os.rename(tmp, os.path.join(self.root, "gen-%d" % g))
        for old in self.gens()[:-self.KEEP]:
            gone = os.path.join(self.staging, "old-%d" % old)
            os.rename(os.path.join(self.root, "gen-%d" % old), gone)
            shutil.rmtree(gone)
        self.topo.hist.add("src", gens=self.gens())


def check_gen_dir(path):
    """Problems of one generation directory as found in a DC: [] if its
    MANIFEST is there and every file it names is, byte for byte, and nothing
    else is."""
    try:
        with open(os.path.join(path, "MANIFEST")) as f:
            want = dict(l.split() for l in f if l.strip())
    except (OSError, ValueError) as e:
        return ["MANIFEST: %s" % e]
    have = {}
    for top, _, names in os.walk(path):
        for n in names:
            rel = os.path.relpath(os.path.join(top, n), path)
            if rel != "MANIFEST":
                with open(os.path.join(top, n), "rb") as f:
                    have[rel] = hashlib.sha1(f.read()).hexdigest()
    bad = ["%s missing" % r for r in want if r not in have]
    bad += ["%s unexpected" % r for r in have if r not in want]
    bad += ["%s differs" % r for r in want if r in have and have[r] != want[r]]
    return bad


class Topology:
    def __init__(self, tmp, hist, seed, rate):
        self.tmp, self.hist, self.seed, self.rate = tmp, hist, seed, rate
        self.fabric = Fabric()
        self.procs = {}
        self.disks = {}
        self.supervising = False

    def add(self, p):
        self.procs[p.name] = p
        return p

    # ---- Redis and the Sentinels

    def redis_nodes(self):
        return [p for p in self.procs.values() if p.kind == "redis"]

    def sentinels(self):
        return [p for p in self.procs.values() if p.kind == "sentinel"]

    def node_by_front(self, port):
        return next((n for n in self.redis_nodes() if n.front.port == port), None)

    def primary_node(self):
        """The primary most Sentinels name now (None before they run)."""
        votes = {}
        for s in self.sentinels():
            if s.alive() and not s.stopped:
                port = s.primary_port()
                if port:
                    votes[port] = votes.get(port, 0) + 1
        if not votes:
            return self.procs.get("A") if not self.sentinels() else None
        return self.node_by_front(max(votes, key=votes.get))

    def sentinel_url(self):
        return "sentinel://%s/%s" % (",".join("127.0.0.1:%d" % s.front.port for s in self.sentinels()), MASTER)

    def sentinels_agree(self):
        for s in self.sentinels():
            for master, replicas in ((MASTER, "3"), (DECOY, "1")):
                r = resp(s.port, "SENTINEL", "master", master)
                if not isinstance(r, list):
                    return False
                f = dict(zip(r[::2], r[1::2]))
                if f.get("num-slaves") != replicas or f.get("num-other-sentinels") != "2":
                    return False
        return True

    # ---- bring-up

    def build(self):
        # Redis on a tmpfs: fsync always costs nothing there, so a disk shared
        # with other work cannot stall a primary past down-after-milliseconds
        self.redis_dir = os.path.join(self.tmp, "redis")
        self.disks[("redis", "data")] = Disk(self.redis_dir, "4g")
        a = self.add(RedisNode(self, "A", "ca"))
        self.add(RedisNode(self, "B", "cb"))
        for dc in DCS:
            self.add(RedisNode(self, "R" + dc, dc, priority=0))
        a.start()
        for n in self.redis_nodes():
            if n is not a:
                n.start()
        h.wait_until(lambda: resp(a.r.port, "INFO", "replication") and
                     "connected_slaves:3" in resp(a.r.port, "INFO", "replication"), 60, "3 replicas of A")
        decoy = self.add(DecoyNode(self, "X0", "ca"))
        decoy.start()
        self.add(DecoyNode(self, "X1", "cb", primary=decoy)).start()
        for name, host in (("s-mom", "mom"), ("s-ca", "ca"), ("s-cb", "cb")):
            self.add(SentinelNode(self, name, host, a, decoy)).start()
        h.wait_until(self.sentinels_agree, 60, "the Sentinels to know each other and the 3 replicas")
        self.build_relay()

    def minions(self, dc):
        return ["%s-m%d" % (dc, i) for i in range(MINIONS_PER_DC)]

    def build_relay(self):
        self.mom_pub = "tcp://127.0.0.1:%d" % h.free_port()
        self.mom_ret = "tcp://127.0.0.1:%d" % h.free_port()
        topics = [sha1hex(m) for dc in DCS for m in self.minions(dc)] + [sha1hex("elsewhere-1")]
        mom_log = os.path.join(self.tmp, "mom.jsonl")
        self.add(ToolProc(self, "mom", "mom", "mom", lambda inc: [
            h.tool("campmom"), "--pub", self.mom_pub, "--ret", self.mom_ret, "--log", mom_log,
            "--rate", self.rate, "--first", inc * 10000000, "--seed", self.seed * 1000 + inc,
            "--topics", ",".join(topics), "--targeted", 0.3, "--size", 1200, "--delay-ms", 30])).start()
        self.src = TreeSource(self, os.path.join(self.tmp, "srv"), random.Random(self.seed * 7 + 1))
        self.src.step()
        for i in range(2):
            self.add(RelayDaemon(self, "up%d" % i, "mom", "up", redis=self.sentinel_url(),
                                 master_publish=self.mom_pub, master_ret=self.mom_ret,
                                 pub_wait_replicas=PUB_WAIT_REPLICAS, request_timeout=REQUEST_TIMEOUT,
                                 sync_source=self.src.root, sync_interval=2)).start()
        self.endpoints = {}
        for dc in DCS:
            state = os.path.join(self.tmp, dc, "state")
            tree = os.path.join(self.tmp, dc, "tree")
            self.disks[(dc, "state")] = Disk(state, "1m")
            self.disks[(dc, "tree")] = Disk(tree, "8m")
            pub_ep = "tcp://127.0.0.1:%d" % h.free_port()
            ret_ep = "tcp://127.0.0.1:%d" % h.free_port()
            self.endpoints[dc] = (pub_ep, ret_ep)
            self.add(RelayDaemon(self, "down-" + dc, dc, "down", datacenter=dc,
                                 redis=self.procs["R" + dc].r.url, redis_primary=self.sentinel_url(),
                                 publish_bind=pub_ep, ret_bind=ret_ep, state_dir=state, sync_target=tree,
                                 request_timeout=REQUEST_TIMEOUT, auth_timeout=AUTH_TIMEOUT,
                                 replay_max_age=REPLAY_MAX_AGE)).start()
        for p in self.procs.values():
            if p.kind in ("up", "down"):
                p.wait_ready()
        for dc in DCS:
            self.add_subscribers(dc)
            minions = self.minions(dc)
            log = os.path.join(self.tmp, "req-%s.jsonl" % dc)
            self.add(ToolProc(self, "reqs-" + dc, dc, "reqs", lambda inc, dc=dc, minions=minions, log=log: [
                h.tool("campreq"), self.endpoints[dc][1], "--dc", dc, "--log", log, "--minions", ",".join(minions),
                "--inc", inc, "--seed", self.seed * 1000 + inc + (dc == "dc2") * 500, "--timeout-ms", (REQUEST_TIMEOUT + 3) * 1000,
                "--auth-timeout-ms", (AUTH_TIMEOUT + 2) * 1000, "--tries", 3, "--pause-ms", "200,1500",
                "--auth", 0.1])).start()

    def add_subscribers(self, dc):
        """The DC's reference subscriber (everything, never faulted), a syndic
        (broadcast + syndic) and SUBSCRIBED_MINIONS minions (broadcast + their
        topic); the last three are slow ones (small queues) the nemesis may hit."""
        pub_ep = self.endpoints[dc][0]
        subs = {"ref": [], "syndic": ["broadcast", "syndic"]}
        for m in self.minions(dc)[:SUBSCRIBED_MINIONS]:
            subs[m.split("-")[1]] = ["broadcast", sha1hex(m)]
        for short, topics in subs.items():
            name = "%s/%s" % (dc, short)
            argv = [h.tool("campsub"), pub_ep, "--name", name, "--log", os.path.join(self.tmp, "sub-%s-%s.jsonl" %
                                                                                     (dc, short))]
            for t in topics:
                argv += ["--topic", t]
            if short != "ref":
                argv += ["--rcvhwm", 100, "--rcvbuf", 16384, "--slow-ms", 150]
            p = self.add(ToolProc(self, "sub-%s-%s" % (dc, short), dc, "sub", lambda inc, argv=argv: argv))
            p.topics = [t[:12] for t in topics]
            p.sub_name = name
            p.dc = dc
            p.start()

    def describe(self):
        """What the checker needs to know of the topology."""
        subs = {p.sub_name: {"dc": p.dc, "topics": p.topics, "ref": p.name.endswith("-ref"), "proc": p.name}
                for p in self.procs.values() if p.kind == "sub"}
        return {"procs": {p.name: {"kind": p.kind, "host": p.host} for p in self.procs.values()},
                "subs": subs, "dcs": list(DCS), "request_timeout": REQUEST_TIMEOUT, "auth_timeout": AUTH_TIMEOUT,
                "replay_max_age": REPLAY_MAX_AGE, "pub_wait_replicas": PUB_WAIT_REPLICAS, "stream_maxlen": 100000,
                "minions": {dc: self.minions(dc) for dc in DCS},
                "disks": {"%s/%s" % k: d.mounted for k, d in self.disks.items()},
                "redis_front": {n.name: n.front.port for n in self.redis_nodes()}}

    # ---- supervision and the end

    def supervise(self, stop):
        """Restart what exits while it should run (systemd's Restart=, 1 s)."""
        while not stop.wait(0.5):
            for p in list(self.procs.values()):
                with p.lock:
                    if p.want and p.proc is not None and p.proc.poll() is not None:
                        p.event("exit", rc=p.proc.returncode, unexpected=True)
                        p.proc = None
                        p.restart_at = time.monotonic() + 1
                    elif p.want and p.proc is None and time.monotonic() >= getattr(p, "restart_at", 0):
                        try:
                            p.start()
                        except Exception as e:  # e.g. a Redis that does not answer within 10 s
                            p.event("start_failed", why=str(e)[:200])
                            p.proc = None
                            p.restart_at = time.monotonic() + 1

    def stop_all(self):
        """SIGTERM every daemon (their exit status is recorded), then the rest."""
        order = ["reqs", "sub", "down", "up", "mom", "sentinel", "redis", "decoy"]
        for kind in order:
            for p in self.procs.values():
                if p.kind == kind:
                    p.sigcont()
                    p.term(timeout=90 if kind in ("up", "down") else 20)

    def cleanup(self):
        """End every process (SIGCONT first: a stopped one would not die) and
        every proxy; the tmpfs stay until release()."""
        for p in self.procs.values():
            p.want = False
            try:
                if p.alive():
                    p.proc.send_signal(signal.SIGCONT)
                    p.proc.kill()
            except OSError:
                pass
        h.cleanup()
        self.fabric.close()

    def release(self, keep):
        """Unmount the tmpfs; with KEEP, Redis' files are copied out first."""
        if keep and self.disks.get(("redis", "data")):
            shutil.copytree(self.redis_dir, os.path.join(self.tmp, "redis-kept"), dirs_exist_ok=True)
        for d in self.disks.values():
            d.clear()
            d.unmount()
