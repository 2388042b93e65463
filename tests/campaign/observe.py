"""observe.py -- what the campaign watches while it runs, written to the
history when it changes: each Sentinel's primary ("sview"), each Redis
server's role and replication ("role"), each daemon's metrics ("met"), each
DC's tree (sync_target/current, "tree"). All of it is asked directly on the
servers' own ports, never through the fault proxies. At the end, the
daemons' and Sentinels' logs become history lines too ("log", "slog")."""

import datetime
import os
import re
import threading

import harness as h

from topology import DCS, check_gen_dir, resp


class Observer:
    def __init__(self, topo, hist):
        self.topo, self.hist = topo, hist
        self.stop = threading.Event()
        self.last = {}
        self.threads = [threading.Thread(target=self._loop, args=(f, period), daemon=True)
                        for f, period in ((self.redis, 0.25), (self.metrics, 1.0), (self.trees, 0.5))]

    def start(self):
        for t in self.threads:
            t.start()

    def close(self):
        self.stop.set()
        for t in self.threads:
            if t.is_alive():
                t.join(timeout=10)

    def _loop(self, f, period):
        while not self.stop.wait(period):
            f()

    def _changed(self, key, value):
        if self.last.get(key) == value:
            return False
        self.last[key] = value
        return True

    def redis(self):
        for s in self.topo.sentinels():
            if not s.alive() or s.stopped:
                continue
            port = s.primary_port()
            node = self.topo.node_by_front(port) if port else None
            if node and self._changed(("sview", s.name), node.name):
                self.hist.add("sview", s=s.name, primary=node.name)
        for n in self.topo.redis_nodes():
            if not n.alive() or n.stopped:
                continue
            info = resp(n.r.port, "INFO", "replication", timeout=0.3)
            if not isinstance(info, str):
                continue
            f = dict(l.split(":", 1) for l in info.splitlines() if ":" in l)
            master = self.topo.node_by_front(int(f["master_port"])) if "master_port" in f else None
            state = {"role": f.get("role"), "master": master.name if master else None,
                     "link": f.get("master_link_status"), "slaves": int(f.get("connected_slaves", 0))}
            if self._changed(("role", n.name), state):
                self.hist.add("role", r=n.name, **state)

    def metrics(self):
        for p in list(self.topo.procs.values()):
            if p.kind not in ("up", "down") or not p.alive() or p.stopped:
                continue
            vals = scrape(p.d.metrics_port)
            if vals is None:
                continue
            old = self.last.get(("met", p.name, p.inc), {})
            diff = {k: v for k, v in vals.items() if old.get(k) != v}
            if diff:
                self.last[("met", p.name, p.inc)] = vals
                self.hist.add("met", p=p.name, inc=p.inc, v=diff)

    def trees(self):
        self.hist_tree_snapshot()

    def hist_tree_snapshot(self, final=False):
        for dc in DCS:
            snap = tree_snapshot(os.path.join(self.topo.tmp, dc, "tree"))
            if self._changed(("tree", dc), snap) or final:
                self.hist.add("tree_final" if final else "tree", dc=dc, **snap)


def scrape(port, timeout=0.5):
    """The daemon's metrics, or None if it does not answer (stopped, restarting)."""
    try:
        return h.scrape_metrics(port, timeout)
    except (OSError, ValueError):
        return None


def tree_snapshot(target):
    """The DC's current tree: the version directory `current` resolves to,
    the generations in it and what is wrong with any of them."""
    cur = os.path.join(target, "current")
    try:
        real = os.path.realpath(cur, strict=True)
    except OSError:
        return {"v": None, "gens": [], "bad": []}
    gens, bad = [], []
    try:
        for name in sorted(os.listdir(real)):
            if name.startswith("gen-"):
                gens.append(int(name[4:]))
                bad += ["gen-%s: %s" % (name[4:], b) for b in check_gen_dir(os.path.join(real, name))]
            else:
                bad.append("unexpected %s" % name)
    except OSError as e:
        bad.append("unreadable: %s" % e)
    return {"v": os.path.basename(real), "gens": sorted(gens), "bad": bad}


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (saltrelay-\w+)\[(\d+)\] (\w+): (.*)$")
SENTINEL_LINE = re.compile(r"^\d+:X (\d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3}) [#*.-] (.*)$")


def daemon_log_records(name, path):
    """The lines of a saltrelay daemon's log (every incarnation) as history records."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LOG_LINE.match(line.rstrip("\n"))
            if not m:
                continue
            w = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            out.append({"k": "log", "w": round(w, 3), "p": name, "pid": int(m.group(3)), "lvl": m.group(4),
                        "msg": m.group(5)})
    return out


def sentinel_log_records(name, path):
    """The events (+sdown, +switch-master, ...) of a Sentinel's log."""
    out = []
    try:
        f = open(path, errors="replace")
    except OSError:
        return out
    with f:
        for line in f:
            m = SENTINEL_LINE.match(line.rstrip("\n"))
            if not m or not m.group(2).startswith(("+", "-")):
                continue
            # Redis logs local time
            w = datetime.datetime.strptime(m.group(1), "%d %b %Y %H:%M:%S.%f").timestamp()
            out.append({"k": "slog", "w": round(w, 3), "s": name, "msg": m.group(2)})
    return out
