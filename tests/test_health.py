"""test_health.py -- health while idle (issue 13): saltrelay-up's heartbeat,
each DC's view of the Redis it reads publications from (replication link and
delay), saltrelay-status judging it, with real Redis replicas whose
replication is really broken (REPLICAOF a dead address) and repaired."""

import json
import os
import re
import select
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import harness as h

CLUSTER = "hl"
STATUS = os.path.join(h.BUILD, "returner", "saltrelay-status")


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


def status(cfg_path, *args):
    r = subprocess.run([STATUS, "-c", cfg_path] + list(args), capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def status_dcs(cfg_path):
    """(exit status, {DC name: its --json object})"""
    rc, out, err = status(cfg_path, "--json")
    try:
        return rc, {d["name"]: d for d in json.loads(out)["dcs"]}
    except ValueError:
        raise AssertionError("status --json printed no JSON (rc %d):\n%s\n%s" % (rc, out, err))


def cell(table, dc, column):
    """The value in COLUMN of DC's row of a status table (found by the
    header's position, so cells holding spaces before it do not matter)."""
    lines = table.splitlines()
    header = [l for l in lines if l.startswith("DC ")][0]
    row = [l for l in lines if l.startswith(dc + " ")][0]
    return row[header.index(column):].split()[0]


def instances(redis):
    out = redis.cli("zrange", key("ups"), 0, -1, "withscores", raw=True).split("\n")
    return dict(zip(out[0::2], (int(s) for s in out[1::2]))) if out != [""] else {}


def test_heartbeat(tmp):
    """Each instance writes its heartbeat every second, under host/slot or
    host/instance; two instances with one config on one host differ; SIGTERM
    leaves a last "stopped" heartbeat."""
    redis = h.Redis(tmp)
    host = socket.gethostname()
    a = h.Daemon("up", tmp, "up-a", **up_config(redis)).start()
    b = h.Daemon("up", tmp, "up-b", **up_config(redis)).start()
    named = h.Daemon("up", tmp, "up-n", **up_config(redis, instance="mom1")).start()
    names = {a.instance_name(), b.instance_name(), host + "/mom1"}
    h.check(len(names) == 3, "two instances with one config on one host named alike: %s" % names)
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



def scrape(port):
    """{metric line name: value} of a daemon's /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        body = r.read().decode()
    return {n: float(v) for n, _, v in (l.rpartition(" ") for l in body.splitlines() if l and l[0] != "#")}


class Cluster:
    """A Redis primary and one replica; saltrelay-up; dc1 reads the replica,
    dc2 the primary; saltrelay-status reads saltrelay-up's file."""

    def __init__(self, tmp, up=None):
        self.primary = h.Redis(tmp, "primary")
        self.replica = h.Redis(tmp, "replica", replicaof=self.primary)
        self.mom_pub = "tcp://127.0.0.1:%d" % h.free_port()
        self.up_metrics = "127.0.0.1:%d" % h.free_port()
        cfg = up_config(self.primary, master_publish=self.mom_pub, stale_after=5, metrics_bind=self.up_metrics)
        cfg.update(up or {})
        self.up = h.Daemon("up", tmp, "up", **cfg).start()
        self.dcs, self.metrics_port, self.publish = {}, {}, {}
        for dc, source in (("dc1", self.replica), ("dc2", self.primary)):
            state = os.path.join(tmp, "state-" + dc)
            os.makedirs(state, exist_ok=True)
            self.metrics_port[dc] = h.free_port()
            self.publish[dc] = "tcp://127.0.0.1:%d" % h.free_port()
            self.dcs[dc] = h.Daemon("down", tmp, dc, cluster=CLUSTER, datacenter=dc, redis=source.url,
                                    redis_primary=self.primary.url, state_dir=state, report_interval=1,
                                    publish_bind=self.publish[dc], ret_bind="tcp://127.0.0.1:%d" % h.free_port(),
                                    metrics_bind="127.0.0.1:%d" % self.metrics_port[dc]).start()

    def status(self, *args):
        return status(self.up.cfg_path, *args)

    def status_json(self):
        return status_dcs(self.up.cfg_path)

    def report(self, dc):
        return hgetall(self.primary, key("dc", dc))


def test_replica_link_broken_while_idle(tmp):
    """No publications; dc1's replica stops replicating (REPLICAOF a dead
    address): status goes non-zero within report_interval + a few seconds,
    naming dc1 only, and back to 0 after the repair; a publication made while
    broken reaches dc1 after the repair."""
    c = Cluster(tmp, up=dict(status_warn_replication=3, status_crit_replication=6))
    # both listed: a DC joins the DC set with its first report after it serves
    h.wait_until(lambda: c.status()[0] == 0 and c.report("dc1").get("heartbeat_ms", "0") != "0" and
                 set(c.status_json()[1]) == {"dc1", "dc2"}, 15, "both DCs listed and ok, dc1 seeing heartbeats")
    rc, dcs = c.status_json()
    d1, d2 = dcs["dc1"], dcs["dc2"]
    h.check(d1["source_replica"] == 1 and d1["link_up"] == 1 and d1["source_up"] == 1 and d1["repl_delay_ms"] < 1500,
            "dc1 reads a healthy replica: %r" % d1)
    h.check(d2["source_replica"] == 0 and d2["link_up"] == 1 and d2["repl_delay_ms"] == 0, "dc2 reads the primary: %r" % d2)
    m = scrape(c.metrics_port["dc1"])
    h.check(m["saltrelay_replica_link_up"] == 1 and m["saltrelay_source_redis_replica"] == 1 and
            m["saltrelay_delivery_lag_entries"] == 0 and m["saltrelay_report_written_at_milliseconds"] > 0,
            "metrics: %r" % m)
    sub = h.Sub(c.publish["dc1"], "--count", 1, "--max-ms", 60000)

    c.replica.cli("replicaof", "127.0.0.1", h.free_port())  # nothing listens there
    t0 = time.monotonic()
    h.wait_until(lambda: c.status()[0] != 0, 1 + 4, "status non-zero after the replica link broke")
    print("status non-zero %.1f s after the break (report_interval 1 s)" % (time.monotonic() - t0))
    rc, out, err = c.status()
    summary = out.splitlines()[0]
    h.check(rc == 1 and summary.startswith("SALTRELAY WARNING - dc1: replica link down for") and "dc2" not in summary,
            "warning naming dc1 only: %d %r" % (rc, out))
    h.check(cell(out, "dc1", "REPL_S") == "down" and cell(out, "dc2", "REPL_S") == "-", "REPL_S column:\n" + out)
    h.check(scrape(c.metrics_port["dc1"])["saltrelay_replica_link_up"] == 0, "link down in the metrics")
    h.zpub(c.mom_pub, "--gen", 1)
    h.wait_until(lambda: c.report("dc2").get("cursor_serial") == "1", 10, "dc2 delivering the publication")
    h.wait_until(lambda: c.status()[0] == 2, 10, "critical past status_crit_replication")
    rc, out, err = c.status()
    summary = out.splitlines()[0]  # dc1 may also be "behind by 1 publication(s)" by now
    h.check(summary.startswith("SALTRELAY CRITICAL - dc1: ") and "replica link down for" in summary and
            "dc2" not in summary, "critical names dc1 only: %r" % out)
    h.check(c.report("dc1").get("cursor_serial") == "0", "dc1 could not have it yet: %r" % c.report("dc1"))

    c.replica.cli("replicaof", "127.0.0.1", c.primary.port)
    h.wait_until(lambda: c.status()[0] == 0, 20, "status back to 0 after the repair")
    h.wait_until(lambda: c.report("dc1").get("cursor_serial") == "1", 10, "dc1 delivering it after the repair")
    h.check(len(sub.lines(timeout=30)) == 1, "dc1's subscriber got the publication made while broken")
    rc, dcs = c.status_json()
    h.check(dcs["dc1"]["link_up"] == 1 and dcs["dc1"]["repl_delay_ms"] < 1500, "healed: %r" % dcs["dc1"])



class PausableProxy:
    """A TCP forwarder on a free loopback port to TARGET_PORT that can stop
    moving bytes without closing anything: a replication link behind it
    stays "up" while nothing flows, as over a stalled WAN."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.paused = threading.Event()
        self.done = threading.Event()
        self.pairs = {}
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.done.is_set():
            ready, _, _ = select.select([self.lsock] + ([] if self.paused.is_set() else list(self.pairs)), [], [], 0.1)
            for s in ready:
                if s is self.lsock:
                    a, _ = self.lsock.accept()
                    b = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                    self.pairs[a], self.pairs[b] = b, a
                    continue
                data = s.recv(65536) if s in self.pairs else b""
                if data:
                    self.pairs[s].sendall(data)
                elif s in self.pairs:
                    peer = self.pairs.pop(s)
                    self.pairs.pop(peer, None)
                    s.close()
                    peer.close()

    def close(self):
        self.done.set()
        self.thread.join(timeout=5)
        for sock in [self.lsock] + list(self.pairs):
            sock.close()


def test_replication_delay_measured(tmp):
    """The replica's link stays up but nothing flows (a stalled proxy in
    between): the heartbeat shows the delay growing in milliseconds and
    status warns naming dc1; when bytes flow again the delay returns to
    under a second. A saltrelay-up that dies is not taken for replication
    delay."""
    primary = h.Redis(tmp, "primary")
    proxy = PausableProxy(primary.port)
    try:
        replica = h.Redis(tmp, "replica")
        replica.cli("replicaof", "127.0.0.1", proxy.port)
        mom = "tcp://127.0.0.1:%d" % h.free_port()
        up = h.Daemon("up", tmp, "up", **up_config(primary, master_publish=mom, status_warn_replication=2.5,
                                                   stale_after=5)).start()
        state = os.path.join(tmp, "state-dc1")
        os.makedirs(state)
        h.Daemon("down", tmp, "dc1", cluster=CLUSTER, datacenter="dc1", redis=replica.url,
                 redis_primary=primary.url, state_dir=state, report_interval=0.5,
                 publish_bind="tcp://127.0.0.1:%d" % h.free_port(),
                 ret_bind="tcp://127.0.0.1:%d" % h.free_port()).start()
        dc1 = lambda: status_dcs(up.cfg_path)[1]["dc1"]
        h.wait_until(lambda: status(up.cfg_path)[0] == 0 and 0 <= dc1()["repl_delay_ms"] < 1500 and
                     dc1()["heartbeat_ms"], 30, "dc1 replicating, delay under a second")
        proxy.paused.set()
        t0 = time.monotonic()
        h.wait_until(lambda: status(up.cfg_path)[0] == 1, 10, "a warning once the delay passes 2.5 s")
        rc, out, err = status(up.cfg_path)
        h.check(out.startswith("SALTRELAY WARNING - dc1: replication delay "), "names dc1 and the reason: %r" % out)
        d = dc1()
        h.check(d["link_up"] == 1 and d["repl_delay_ms"] >= 2500, "link still up, delay measured: %r" % d)
        print("delay %d ms reported %.1f s after the stall" % (d["repl_delay_ms"], time.monotonic() - t0))
        proxy.paused.clear()
        h.wait_until(lambda: status(up.cfg_path)[0] == 0 and dc1()["repl_delay_ms"] < 1500, 15,
                     "delay back under a second once bytes flow")
        up.kill9()
        time.sleep(3)
        h.check(dc1()["repl_delay_ms"] < 1500, "a dead saltrelay-up is not replication delay: %r" % dc1())
    finally:
        proxy.close()


RULES = os.path.join(h.REPO, "conf", "prometheus", "saltrelay-rules.yml")
RULE_TESTS = os.path.join(h.HERE, "prometheus", "rules-test.yml")
DASHBOARD = os.path.join(h.REPO, "conf", "grafana", "saltrelay-dashboard.json")
# metric names in PromQL: ours, the process metrics, and Prometheus' own "up"
METRIC = re.compile(r"\b(saltrelay_[a-z_]+|process_[a-z_]+|up)\b(?!\s*\()")


def promtool(*args):
    r = subprocess.run(["promtool"] + list(args), capture_output=True, timeout=120)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


def test_alert_rules(tmp):
    """promtool checks the rules and runs their test cases; every rule has
    a test case, a severity, a summary and a description."""
    rc, out = promtool("check", "rules", RULES)
    h.check(rc == 0, "promtool check rules:\n" + out)
    rc, out = promtool("test", "rules", RULE_TESTS)
    h.check(rc == 0 and "SUCCESS" in out, "promtool test rules:\n" + out)
    with open(RULES) as f:
        rules = f.read()
    with open(RULE_TESTS) as f:
        tests = f.read()
    alerts = re.findall(r"^\s+- alert: (\w+)$", rules, re.M)
    h.check(len(alerts) >= 10, "alert rules: %r" % alerts)
    for a in alerts:
        h.check(re.search(r"^- name: '?%s: " % a, tests, re.M), "no test case for %s" % a)
        body = rules.split("- alert: %s\n" % a)[1].split("- alert:")[0]
        for what in ("severity:", "summary:", "description:"):
            h.check(what in body, "%s has no %s" % (a, what))


def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def dashboard_exprs(**values):
    """Every panel query, its template variables ($cluster, $datacenter,
    $instance) replaced by VALUES (regexes, as Grafana does; all: .*)."""
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
    for name in ("cluster", "datacenter", "instance"):
        exprs = [e.replace("$" + name, values.get(name, ".*")) for e in exprs]
    return exprs


def prom_api(port, path, **params):
    url = "http://127.0.0.1:%d/api/v1/%s?%s" % (port, path, urllib.parse.urlencode(params, doseq=True))
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode())


def label_values(port, query, **values):
    """A template variable's label_values(SELECTOR, LABEL), as Grafana asks
    Prometheus for it (the series API), with VALUES for the variables it uses."""
    m = re.fullmatch(r"label_values\((.*), (\w+)\)", query)
    h.check(m, "template variable query %r" % query)
    selector = m.group(1)
    for name, v in values.items():
        selector = selector.replace("$" + name, v)
    series = prom_api(port, "series", **{"match[]": selector})["data"]
    return sorted({s.get(m.group(2), "") for s in series})


def test_prometheus_scrapes_both(tmp):
    """A real Prometheus scrapes saltrelay-up and two saltrelay-downs (the
    job names of conf/prometheus/prometheus.yml), and itself (job
    prometheus, with process metrics of its own), and loads the alert rules;
    every metric the dashboard and the rules query is among what it scraped,
    and every dashboard query evaluates, its variables at "All" and at one
    cluster, DC and instance: each query then keeps that DC's or instance's
    rows only, and the process metrics never another job's."""
    c = Cluster(tmp)
    h.zpub(c.mom_pub, "--gen", 3)
    h.wait_until(lambda: c.report("dc1").get("cursor_serial") == "3", 20, "dc1 delivering")
    port = h.free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - %s\n"
                "scrape_configs:\n  - job_name: saltrelay-up\n    static_configs:\n      - targets: ['%s']\n"
                "  - job_name: saltrelay-down\n    static_configs:\n      - targets: ['127.0.0.1:%d', '127.0.0.1:%d']\n"
                "  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                % (RULES, c.up_metrics, c.metrics_port["dc1"], c.metrics_port["dc2"], port))
    with open(os.path.join(tmp, "prometheus.log"), "w") as log:
        h.spawn(["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                 "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=log)

    def targets_up():
        try:
            res = prom_api(port, "query", query="up")["data"]["result"]
        except OSError:
            return False
        return len(res) == 4 and all(r["value"][1] == "1" for r in res)
    h.wait_until(targets_up, 60, "Prometheus scraping both daemons and itself")
    rules = prom_api(port, "rules")["data"]["groups"]
    h.check(rules and len(rules[0]["rules"]) >= 10, "Prometheus loaded the alert rules: %r" % rules)
    scraped = set(prom_api(port, "label/__name__/values")["data"])
    with open(RULES) as f:
        wanted = set(METRIC.findall(f.read()))
    for e in dashboard_exprs():
        wanted |= set(METRIC.findall(e))
    h.check(not wanted - scraped, "queried but not exported: %s" % sorted(wanted - scraped))
    for e in dashboard_exprs(cluster="$cluster", datacenter="$datacenter", instance="$instance"):
        for var in ("$cluster", "$datacenter", "$instance"):
            h.check(var in e, "dashboard query %r does not use %s" % (e, var))
        for m in re.finditer(r"\bprocess_\w+(\{[^}]*\})?", e):
            h.check('job=~"saltrelay-up|saltrelay-down"' in (m.group(1) or ""), "%r: process metric of any job" % e)
    # the template variables, as Grafana asks for them
    variables = {v["name"]: v["query"]["query"] for v in dashboard()["templating"]["list"] if v["type"] == "query"}
    h.check(sorted(variables) == ["cluster", "datacenter", "instance"], "template variables: %s" % sorted(variables))
    targets = sorted([c.up_metrics] + ["127.0.0.1:%d" % c.metrics_port[dc] for dc in ("dc1", "dc2")])
    h.check(label_values(port, variables["cluster"]) == [CLUSTER], "cluster values")
    h.check(label_values(port, variables["datacenter"], cluster=".*") == ["dc1", "dc2"], "datacenter values")
    h.check(label_values(port, variables["instance"], cluster=".*", datacenter=".*") == targets, "instance values")
    h.check(label_values(port, variables["instance"], cluster=CLUSTER, datacenter="dc1") ==
            sorted([c.up_metrics, "127.0.0.1:%d" % c.metrics_port["dc1"]]), "instances of dc1 (and saltrelay-up)")
    cpu = [e for e in dashboard_exprs() if "process_cpu_seconds_total" in e][0]
    h.wait_until(lambda: len(prom_api(port, "query", query=cpu)["data"]["result"]) == 3, 30,
                 "two scrapes of each daemon (rate)")
    dc1 = "127.0.0.1:%d" % c.metrics_port["dc1"]
    choices = [({}, {"dc1", "dc2"}, set(targets)),
               ({"cluster": CLUSTER, "datacenter": "dc1"}, {"dc1"}, {dc1, c.up_metrics}),
               ({"cluster": CLUSTER, "instance": dc1}, {"dc1"}, {dc1}),
               ({"cluster": "nosuch"}, set(), set())]
    for values, dcs, instances in choices:
        for e in dashboard_exprs(**values):
            doc = prom_api(port, "query", query=e)
            h.check(doc["status"] == "success", "dashboard query %r: %r" % (e, doc))
            rows = doc["data"]["result"]
            h.check({r["metric"]["datacenter"] for r in rows if "datacenter" in r["metric"]} <= dcs and
                    {r["metric"]["instance"] for r in rows if "instance" in r["metric"]} <= instances,
                    "%r with %s: rows of other DCs or instances: %r" % (e, values, [r["metric"] for r in rows]))
            if "process_" in e:
                h.check({r["metric"].get("job") for r in rows} <= {"saltrelay-up", "saltrelay-down"},
                        "%r: another job's process metrics: %r" % (e, rows))
                h.check(values.get("cluster") == "nosuch" or len(rows) == len(instances), "%r: %r" % (e, rows))
    lag = prom_api(port, "query", query=dashboard_exprs()[0])["data"]["result"]
    h.check(sorted(r["metric"].get("datacenter") for r in lag) == ["dc1", "dc2"], "per-DC rows: %r" % lag)
    lag = prom_api(port, "query", query=dashboard_exprs(datacenter="dc2")[0])["data"]["result"]
    h.check([r["metric"].get("datacenter") for r in lag] == ["dc2"], "dc2 chosen: %r" % lag)



class Tmux:
    """A tmux server of this test's own (socket in TMP) with one 200x50 pane
    running a plain shell."""

    def __init__(self, tmp):
        self.sock = os.path.join(tmp, "tmux.sock")
        env = dict(os.environ, PS1="$ ", TERM="xterm-256color")
        subprocess.run(["tmux", "-S", self.sock, "-f", "/dev/null", "new-session", "-d", "-s", "w", "-x", "200",
                        "-y", "50", "bash --norc --noprofile"], env=env, check=True, timeout=20)

    def run(self, *args):
        return subprocess.run(["tmux", "-S", self.sock] + list(args), capture_output=True, timeout=20,
                              check=True).stdout.decode()

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "w")

    def flag(self, name):
        return self.run("display-message", "-p", "-t", "w", "#{%s}" % name).strip()

    def close(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True, timeout=20)


def test_status_watch_tmux(tmp):
    """saltrelay-status --watch under tmux: a live table of both DCs on the
    alternate screen, redrawn every second with rates; Ctrl-C gives the
    terminal back clean (main screen, cursor shown) with exit status 0."""
    c = Cluster(tmp)
    for bad in (("--watch", "--json"), ("--watch", "job", "1")):
        rc, out, err = c.status(*bad)
        h.check(rc == 2 and "Usage" in err, "%r refused: %d %r" % (bad, rc, err))
    t = Tmux(tmp)
    try:
        t.run("send-keys", "-t", "w", "%s -c %s --watch; echo exit=$?" % (STATUS, c.up.cfg_path), "Enter")
        h.wait_until(lambda: "PUB/S" in t.screen() and "dc2" in t.screen(), 15, "the live table")
        first = t.screen()
        h.check("REPL_S" in first and "SALTRELAY" in first and "Ctrl-C quits" in first, "live view:\n" + first)
        h.check(t.flag("alternate_on") == "1" and t.flag("cursor_flag") == "0", "alternate screen, cursor hidden")
        stamp = [l for l in first.splitlines() if "Ctrl-C quits" in l][0]
        h.wait_until(lambda: stamp not in t.screen(), 5, "the view redrawn within a second or two")
        h.spawn([h.tool("zpub"), c.mom_pub, "--gen", 300, "--rate", 25], stdout=subprocess.DEVNULL)

        def dc2_rate():
            screen = t.screen()
            return "dc2 " in screen and cell(screen, "dc2", "PUB/S") not in ("?", "0.0")
        h.wait_until(dc2_rate, 15, "dc2's PUB/S above 0 while publications flow")
        t.run("send-keys", "-t", "w", "C-c")
        h.wait_until(lambda: "exit=0" in t.screen(), 10, "saltrelay-status exiting 0 on Ctrl-C")
        after = t.screen()
        h.check(t.flag("alternate_on") == "0" and t.flag("cursor_flag") == "1", "terminal given back")
        h.check("REPL_S" not in after and "PUB/S" not in after, "the main screen holds no table:\n" + after)
    finally:
        t.close()


h.main(globals())
