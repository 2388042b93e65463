"""nemesis.py -- the campaign's faults: a schedule made from the seed alone
(plan(): the same seed gives the same faults at the same offsets, with
targets named by role where roles move, e.g. "redis:primary"), and its
execution against the running topology (Nemesis), which resolves each role
when the fault starts and writes every start, end and skip to the history.

Time is cut into cycles: a storm (faults start every GAP seconds, at most
MAX_CONC at once, each over before the storm ends), then a calm in which
nothing is done; the end of each calm is a checkpoint, where the checker
wants everything caught up."""

import random
import signal
import threading
import time

from topology import DCS, DECOY, MASTER, resp

PROCESS_TARGETS = (["up0", "up1", "down-dc1", "down-dc2", "mom", "redis:primary", "redis:replica", "redis:Rdc1",
                    "redis:Rdc2", "sentinel:s-mom", "sentinel:s-ca", "sentinel:s-cb"] +
                   ["sub-%s-%s" % (dc, s) for dc in DCS for s in ("syndic", "m0", "m1")])
SUB_TARGETS = [t for t in PROCESS_TARGETS if t.startswith("sub-")]
KINDS = [("kill", 22), ("stop", 18), ("term", 7), ("wan", 20), ("core", 8), ("failover", 5), ("late_sentinel", 4),
         ("lonely", 3), ("decoy_failover", 2), ("disk", 6), ("slow", 6)]
LINK_MODES = [("cut", 3), ("partition", 3), ("stall", 2), ("drop", 2)]


def _pick(rng, items):
    return items[rng.randrange(len(items))]


def _weighted(rng, pairs):
    x = rng.uniform(0, sum(w for _, w in pairs))
    for item, w in pairs:
        x -= w
        if x <= 0:
            return item
    return pairs[-1][0]


def make_fault(rng, kind, disks):
    """One fault of KIND: its abstract target, parameters and span (the
    seconds it lasts, restart included)."""
    u = rng.uniform
    if kind == "kill":
        t = _pick(rng, PROCESS_TARGETS)
        ra = round(u(0.3, 5), 2)
        return {"target": t, "restart_after": ra, "span": ra + 2}
    if kind == "stop":
        t = _pick(rng, PROCESS_TARGETS)
        # a saltrelay-up now and then past the tree lease (10 s); a minion up to 12 s
        hi = 12 if t in SUB_TARGETS else (15 if t.startswith("up") and rng.random() < 0.3 else 8)
        d = round(u(0.5, hi), 2)
        return {"target": t, "dur": d, "span": d}
    if kind == "term":
        t = _pick(rng, [x for x in PROCESS_TARGETS if x not in SUB_TARGETS])
        ra = round(u(0.3, 3), 2)
        return {"target": t, "restart_after": ra, "span": ra + 6}
    if kind in ("wan", "core"):
        spec = _pick(rng, list(DCS)) if kind == "wan" else _pick(
            rng, ["isolate:primary", "isolate:replica", "mom-primary", "primary-replica", "mom-replica"])
        mode = _weighted(rng, LINK_MODES + ([("latency", 2)] if kind == "wan" else []))
        f = {"target": "link:" + spec, "mode": mode}
        if mode == "cut":
            f.update(dur=0, span=1)
        elif mode == "latency":
            f.update(dur=round(u(3, 10), 2), ms=int(u(20, 200)))
            f["span"] = f["dur"]
        else:
            f["dur"] = round(u(1, 8) if mode == "partition" else u(1, 6), 2)
            f["span"] = f["dur"]
        return f
    if kind == "failover":
        return {"target": "sentinel:" + _pick(rng, ["s-mom", "s-ca", "s-cb"]), "span": 6}
    if kind == "lonely":
        # the MoM pauses (requests wait, read and pending), the primary loses
        # every replica at once (its link to the core replica dropped, both DC
        # replicas SIGKILLed) while every relay still reaches it, the MoM goes
        # on; then the primary dies and the core replica, stale since, is
        # promoted
        d = round(u(4, 10), 2)
        return {"target": "link:primary-replica", "mode": "drop", "dur": d, "span": d + 6,
                "kill_at": round(u(1, d - 1), 2), "mom_pause": 2.5}
    if kind == "decoy_failover":
        # another master the same Sentinels watch, whose name starts with ours
        return {"target": "sentinel:" + _pick(rng, ["s-mom", "s-ca", "s-cb"]), "span": 4}
    if kind == "late_sentinel":
        d = round(u(4, 10), 2)
        return {"target": "sentinel:" + _pick(rng, ["s-mom", "s-ca", "s-cb"]), "dur": d, "span": d,
                "how": _pick(rng, ["failover", "kill_primary"])}
    if kind == "disk" and disks:
        d = round(u(3, 12), 2)
        return {"target": "disk:%s/%s" % (_pick(rng, list(DCS)), _pick(rng, ["state", "tree"])), "dur": d, "span": d}
    t = _pick(rng, SUB_TARGETS)
    d = round(u(3, 12), 2)
    return {"kind": "slow", "target": t, "dur": d, "span": d}


def plan(seed, seconds, storm=45.0, calm=20.0, gap=(2.0, 6.0), max_conc=2, disks=True):
    """The fault schedule of a run of SECONDS: a list of faults (dicts with
    "at", seconds from the start) and the checkpoints (ends of calms)."""
    rng = random.Random(seed)
    faults, checkpoints = [], []
    cycle = storm + calm
    c = 0
    while c * cycle < seconds:
        t, end = c * cycle + rng.uniform(1, 3), c * cycle + storm
        while t < end:
            kind = _weighted(rng, KINDS)
            f = dict({"kind": kind}, **make_fault(rng, kind, disks))
            active = [g for g in faults if g["at"] + g["span"] > t]
            if len(active) >= max_conc:
                t = min(g["at"] + g["span"] for g in active) + 0.1
                continue
            if any(g["target"] == f["target"] for g in active):
                t += 0.5
                continue
            if t + f["span"] <= end:
                f.update(id=len(faults), at=round(t, 2))
                faults.append(f)
            t += rng.uniform(*gap)
        checkpoints.append(round((c + 1) * cycle, 2))
        c += 1
    return faults, checkpoints


class Nemesis:
    def __init__(self, topo, hist):
        self.topo, self.hist = topo, hist
        self.busy = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = []

    def run(self, faults, checkpoints, t0):
        """Start each fault at its time (in its own thread), record the
        checkpoints; returns when every fault has ended."""
        events = sorted([(f["at"], 0, f) for f in faults] + [(c, 1, c) for c in checkpoints], key=lambda e: e[:2])
        for at, is_cp, item in events:
            if self.stop.wait(max(0.0, t0 + at - time.monotonic())):
                break
            if is_cp:
                self.hist.add("checkpoint", at=item)
                continue
            t = threading.Thread(target=self._run_fault, args=(item,), daemon=True)
            t.start()
            self.threads.append(t)
        for t in self.threads:
            t.join(timeout=180)

    # ---- resolving roles

    def _primary(self):
        return self.topo.primary_node()

    def _core_replica(self):
        p = self._primary()
        return next((n for n in self.topo.redis_nodes() if n.host in ("ca", "cb") and n is not p), None)

    def _proc(self, target):
        if target.startswith("redis:"):
            role = target.split(":", 1)[1]
            if role == "primary":
                return self._primary()
            if role == "replica":
                return self._core_replica()
            return self.topo.procs.get(role)
        if target.startswith("sentinel:"):
            return self.topo.procs.get(target.split(":", 1)[1])
        return self.topo.procs.get(target)

    def _hosts(self, spec):
        """A link spec with roles replaced by hosts ("isolate:primary" -> "isolate:ca")."""
        p, r = self._primary(), self._core_replica()
        if not p or not r:
            return None
        return spec.replace("primary", p.host).replace("replica", r.host)

    def _resolve(self, f):
        """(what the fault acts on, the busy names it takes) or None."""
        t = f["target"]
        if t.startswith("link:"):
            spec = self._hosts(t[5:])
            if spec is None:
                return None
            links = self.topo.fabric.links_of(spec)
            names = {"link:" + "|".join(k) for k, l in self.topo.fabric.links.items() if l in links}
            if f["kind"] == "lonely":
                names |= {self._primary().name, "mom"} | {"R" + dc for dc in DCS}
            return spec, names
        if t.startswith("disk:"):
            return t, {t}
        p = self._proc(t)
        if p is None:
            return None
        names = {p.name}
        if f["kind"] == "late_sentinel" and f["how"] == "kill_primary":
            prim = self._primary()
            if prim is None:
                return None
            names.add(prim.name)
        return p, names

    # ---- running one fault

    def _run_fault(self, f):
        r = self._resolve(f)
        desc = {k: v for k, v in f.items() if k not in ("span",)}
        if r is None:
            self.hist.add("fault", phase="skip", why="target unresolved", **desc)
            return
        what, names = r
        with self.lock:
            if names & self.busy:
                self.hist.add("fault", phase="skip", why="target busy", on=sorted(names), **desc)
                return
            self.busy |= names
        on = what if isinstance(what, str) else what.name
        self.hist.add("fault", phase="start", on=on, names=sorted(names), **desc)
        try:
            getattr(self, "_do_" + f["kind"])(f, what)
        except Exception as e:  # recorded, never fatal: the checker shows it with the fault
            self.hist.add("fault", phase="error", why=repr(e)[:300], **desc)
        finally:
            with self.lock:
                self.busy -= names
            self.hist.add("fault", phase="end", on=on, **desc)

    def _sleep(self, s):
        self.stop.wait(s)

    def _do_kill(self, f, p):
        p.kill9()
        self._sleep(f["restart_after"])
        p.start()

    def _do_term(self, f, p):
        p.term()
        self._sleep(f["restart_after"])
        p.start()

    def _do_stop(self, f, p):
        p.sigstop()
        self._sleep(f["dur"])
        p.sigcont()

    def _do_slow(self, f, p):
        p.signal(signal.SIGUSR1, "slow")
        self._sleep(f["dur"])
        p.signal(signal.SIGUSR2, "fast")

    def _do_wan(self, f, spec):
        links = self.topo.fabric.links_of(spec)
        mode = f["mode"]
        if mode == "drop":  # noticed at once: every connection reset, then nothing gets through
            for link in links:
                link.stall()
                link.cut()
            self._sleep(f["dur"])
            for link in links:
                link.resume()
            return
        if mode == "cut":
            for link in links:
                link.cut()
            return
        if mode == "latency":
            for link in links:
                link.latency = f["ms"] / 1000.0
            self._sleep(f["dur"])
            for link in links:
                link.latency = 0.0
            return
        for link in links:
            link.stall()
        self._sleep(f["dur"])
        for link in links:
            if mode == "partition":
                link.cut()
            link.resume()

    _do_core = _do_wan

    def _do_lonely(self, f, spec):
        prim, mom = self._primary(), self.topo.procs["mom"]
        replicas = [self.topo.procs["R" + dc] for dc in DCS]
        mom.sigstop()
        self._sleep(f["mom_pause"])
        for r in replicas:
            r.kill9()
        killer = threading.Thread(target=self._kill_later, args=(prim, f["kill_at"], 3.0), daemon=True)
        killer.start()
        threading.Timer(0.5, mom.sigcont).start()
        self._do_wan(f, spec)
        killer.join()
        for r in replicas:
            r.start()

    def _kill_later(self, p, at, restart_after):
        self._sleep(at)
        p.kill9()
        self._sleep(restart_after)
        p.start()

    def _do_decoy_failover(self, f, s):
        r = resp(s.port, "SENTINEL", "FAILOVER", DECOY, timeout=2)
        self.hist.add("failover_cmd", s=s.name, master=DECOY, reply=str(r))

    def _do_failover(self, f, s):
        r = resp(s.port, "SENTINEL", "FAILOVER", MASTER, timeout=2)
        self.hist.add("failover_cmd", s=s.name, reply=str(r))

    def _do_late_sentinel(self, f, s):
        s.sigstop()
        self._sleep(0.5)
        if f["how"] == "failover":
            other = next((o for o in self.topo.sentinels() if o is not s and o.alive() and not o.stopped), None)
            if other:
                self._do_failover(f, other)
            self._sleep(f["dur"] - 0.5)
        else:
            prim = self._primary()
            if prim:
                prim.kill9()
                self._sleep(3)
                prim.start()
            self._sleep(max(0.0, f["dur"] - 3.5))
        s.sigcont()

    def _do_disk(self, f, name):
        dc, which = name[5:].split("/")
        disk = self.topo.disks[(dc, which)]
        try:
            disk.fill()
            self._sleep(f["dur"])
        finally:
            disk.clear()
