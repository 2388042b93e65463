"""test_status.py -- acknowledgements and saltrelay-status: the DC reports
saltrelay-down writes to Redis, the status table and its exit codes, per-job
accounting against real Salt job caches (tests/data/jobcache*), and the
Prometheus endpoint, all with real Redis and real daemons."""

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import time

import harness as h

CLUSTER = "st"
STATUS = os.path.join(h.BUILD, "returner", "saltrelay-status")


def key(*parts):
    return "saltrelay:{%s}:%s" % (CLUSTER, ":".join(parts))


class Relay:
    """One Redis, saltrelay-up and saltrelay-down per DC; the status tool
    reads saltrelay-up's config file, as on the MoM host."""

    def __init__(self, tmp, dcs=("dc1", "dc2"), up=None, down=None):
        self.tmp = tmp
        self.redis = h.Redis(tmp)
        self.mom_pub = "tcp://127.0.0.1:%d" % h.free_port()
        upcfg = dict(cluster=CLUSTER, master_publish=self.mom_pub, redis=self.redis.url,
                     master_ret="tcp://127.0.0.1:%d" % h.free_port(), stale_after=2)
        upcfg.update(up or {})
        self.up = h.Daemon("up", tmp, "up", **upcfg).start()
        self.dcs = {}
        for dc in dcs:
            state = os.path.join(tmp, "state-" + dc)
            os.makedirs(state, exist_ok=True)
            self.dcs[dc] = h.Daemon("down", tmp, dc, cluster=CLUSTER, datacenter=dc,
                                    redis=self.redis.url, state_dir=state, report_interval=0.2,
                                    publish_bind="tcp://127.0.0.1:%d" % h.free_port(),
                                    ret_bind="tcp://127.0.0.1:%d" % h.free_port(),
                                    **(down or {})).start()

    def status(self, *args):
        r = subprocess.run([STATUS, "-c", self.up.cfg_path] + list(args), capture_output=True,
                           timeout=30)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def status_json(self, *args):
        rc, out, err = self.status("--json", *args)
        try:
            return rc, json.loads(out)
        except ValueError:
            raise AssertionError("status --json printed no JSON (rc %d):\n%s\n%s" % (rc, out, err))

    def report(self, dc):
        out = self.redis.cli("hgetall", key("dc", dc), raw=True).split("\n")
        return dict(zip(out[0::2], out[1::2]))

    def wait_delivered(self, dc, serial):
        h.wait_until(lambda: self.report(dc).get("cursor_serial") == str(serial), 20,
                     "%s reporting serial %d" % (dc, serial))


def by_name(doc):
    return {d["name"]: d for d in doc["dcs"]}


def test_report_fields(tmp):
    r = Relay(tmp, dcs=("dc1",))
    h.zpub(r.mom_pub, "--gen", 3)
    r.wait_delivered("dc1", 3)
    rep = r.report("dc1")
    for f in ("cursor", "cursor_ms", "delivered_at_ms", "reported_at_ms", "subscribers",
              "requests_inflight", "delivered", "expired", "gaps", "timeouts", "refused"):
        h.check(f in rep, "report lacks %s: %r" % (f, rep))
    h.check(rep["state"] == "running" and rep["delivered"] == "3", "report: %r" % rep)
    h.check(r.redis.cli("smembers", key("dcs")) == "dc1", "DC set")
    h.check(r.dcs["dc1"].term() == 0, "saltrelay-down exit status")
    h.check(r.report("dc1")["state"] == "stopped", "final report at shutdown")


def test_status_stale_dc_catches_up(tmp):
    r = Relay(tmp)
    h.zpub(r.mom_pub, "--gen", 1)
    for dc in r.dcs:
        r.wait_delivered(dc, 1)
    rc, doc = r.status_json()
    h.check(rc == 0 and doc["health"] == "ok", "all up to date: %d %r" % (rc, doc))
    h.check(r.dcs["dc2"].term() == 0, "dc2 stops cleanly")
    h.zpub(r.mom_pub, "--gen", 20)
    r.wait_delivered("dc1", 21)
    time.sleep(2.5)  # stale_after is 2 s
    rc, out, err = r.status()
    h.check(rc == 2, "exit 2 with a stale DC, got %d:\n%s%s" % (rc, out, err))
    h.check(out.startswith("SALTRELAY CRITICAL - dc2: stale"), "summary line: %r" % out)
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    h.check(rows["dc2"][1:3] == ["stale", "20"] and rows["dc1"][1:3] == ["ok", "0"], "table:\n" + out)
    header = out.splitlines()[1]
    h.check(header.index("LAG ") == out.splitlines()[2].index(rows["dc1"][2] + " "),
            "aligned columns:\n" + out)
    rc, doc = r.status_json()
    dc2 = by_name(doc)["dc2"]
    h.check(dc2["lag_entries"] == 20 and dc2["stale"] and dc2["health"] == "critical", "json: %r" % dc2)
    r.dcs["dc2"].start()
    r.wait_delivered("dc2", 21)
    h.wait_until(lambda: r.status()[0] == 0, 10, "status back to 0 after dc2 caught up")
    rc, doc = r.status_json()
    h.check(by_name(doc)["dc2"]["lag_entries"] == 0, "dc2 caught up: %r" % doc)


def test_status_thresholds_warn(tmp):
    r = Relay(tmp, dcs=("dc1",), up=dict(status_warn_entries=5, status_crit_entries=50,
                                         status_warn_lag=100, status_crit_lag=200, stale_after=60))
    h.zpub(r.mom_pub, "--gen", 1)
    r.wait_delivered("dc1", 1)
    r.dcs["dc1"].kill9()  # its report stays "running" but stops moving
    h.zpub(r.mom_pub, "--gen", 7)
    h.wait_until(lambda: r.redis.cli("xlen", key("pub")) == "8", 10, "8 entries in the stream")
    rc, out, err = r.status()
    h.check(rc == 1 and out.startswith("SALTRELAY WARNING - dc1: behind by 7"), "warning: %d %s%s" % (rc, out, err))


def test_status_bad_reports(tmp):
    """Damaged or foreign data in Redis is named on stderr, never a crash."""
    redis = h.Redis(tmp)
    cfg = os.path.join(tmp, "up.yaml")
    with open(cfg, "w") as f:
        f.write("cluster: %s\nmaster_publish: tcp://127.0.0.1:1\nmaster_ret: tcp://127.0.0.1:2\n"
                "redis: %s\n" % (CLUSTER, redis.url))
    redis.cli("sadd", key("dcs"), "good", "bad", "../x", "a b")
    redis.cli("hset", key("dc", "bad"), "cursor", "nope", "reported_at_ms", "-5", "subscribers", "9" * 30)
    redis.cli("set", key("dc", "good"), "not a hash")
    redis.cli("set", key("pub"), "not a stream")
    r = subprocess.run([STATUS, "-c", cfg, "--json"], capture_output=True, timeout=30)
    out, err = r.stdout.decode(), r.stderr.decode()
    h.check(r.returncode == 2, "critical: %d %s %s" % (r.returncode, out, err))
    doc = json.loads(out)
    h.check(sorted(by_name(doc)) == ["bad", "good"], "invalid DC names skipped: %r" % doc)
    h.check("invalid DC name" in err and "report field cursor has a bad value" in err and
            "WRONGTYPE" in err, "stderr names the problems:\n" + err)
    redis.stop()
    r = subprocess.run([STATUS, "-c", cfg], capture_output=True, timeout=30)
    h.check(r.returncode == 2 and b"unreachable" in r.stdout, "Redis down: %r" % (r,))
    r = subprocess.run([STATUS, "-c", cfg + ".missing"], capture_output=True, timeout=30)
    h.check(r.returncode == 2 and b"cannot open" in r.stderr, "bad config: %r" % (r,))


DATA = os.path.join(h.HERE, "data")


def job_caches():
    """(jobs dir, jid) of each real Salt job cache under tests/data."""
    found = []
    for jobs in (os.path.join(DATA, "jobcache", "jobs"), os.path.join(DATA, "jobcache-3006", "jobs")):
        for jid_file in glob.glob(os.path.join(jobs, "*", "*", "jid")):
            with open(jid_file) as f:
                found.append((jobs, f.read().strip()))
    h.check(found, "no job cache under %s" % DATA)
    return found


def jid_ms(jid):
    """Salt jids are the MoM's local time, as saltrelay-status reads them."""
    return int(time.mktime(time.strptime(jid[:14], "%Y%m%d%H%M%S")) * 1000) + int(jid[14:20]) // 1000


class JobFixture:
    """A Redis holding what the saltrelay-downs would have written (DC reports,
    minion registry) around one job of a real Salt job cache. stale_after is
    60 s: a fresh report must stay fresh while a loaded machine runs the
    redis-cli calls and the status tool (5 s did not, once)."""

    def __init__(self, tmp, jobs):
        self.redis = h.Redis(tmp)
        self.cfg = os.path.join(tmp, "up.yaml")
        with open(self.cfg, "w") as f:
            f.write("cluster: %s\nmaster_publish: tcp://127.0.0.1:1\nmaster_ret: tcp://127.0.0.1:2\n"
                    "redis: %s\njob_cache_dir: %s\nstale_after: 60\n" % (CLUSTER, self.redis.url, jobs))

    def dc(self, name, cursor_ms, report_age_s=0.0):
        now = int(time.time() * 1000)
        self.redis.cli("hset", key("dc", name), "cursor", "%d-0" % cursor_ms, "cursor_ms", cursor_ms,
                       "reported_at_ms", now - int(report_age_s * 1000), "state", "running")
        self.redis.cli("sadd", key("dcs"), name)

    def minion(self, mid, dc, at=1):
        self.redis.cli("hset", key("reg", dc, mid), "first_auth", 1, "last_auth", at, "last_request", at)
        self.redis.cli("sadd", key("minions", dc), mid)

    def job(self, jid, *args):
        r = subprocess.run([STATUS, "-c", self.cfg, "--json", "job", jid] + list(args), capture_output=True,
                           timeout=30)
        try:
            return r.returncode, json.loads(r.stdout), r.stderr.decode()
        except ValueError:
            raise AssertionError("no JSON (rc %d): %r %r" % (r.returncode, r.stdout, r.stderr))


def reasons(doc):
    return {m["minion"]: m["reason"] for m in doc["missing_minions"]}


def test_job_accounting(tmp):
    """Expected 5, returned 3 (real Salt 3008 and 3006 job caches); each missing
    minion with its reason, as the DC reports and the registry say."""
    for n, (jobs, jid) in enumerate(job_caches()):
        fx = JobFixture(os.path.join(tmp, str(n)), jobs)
        t = jid_ms(jid)
        fx.dc("dc1", t + 500)
        fx.dc("dc2", t + 500)
        for m in ("web1.dc1", "web2.dc1", "web3.dc1"):
            fx.minion(m, "dc1")
        fx.minion("db1.dc2", "dc2")
        rc, doc, err = fx.job(jid)
        h.check(rc == 1 and (doc["expected"], doc["returned"], doc["missing"]) == (5, 3, 2), "%s: %r %s" % (jobs, doc, err))
        h.check(reasons(doc) == {"db2.dc2": "never seen by its relay", "web3.dc1": "no return"}, "%r" % doc)
        per_dc = {d["name"]: (d["expected"], d["returned"], d["missing"]) for d in doc["dcs"]}
        h.check(per_dc == {"dc1": (3, 2, 1), "dc2": (1, 1, 0), "(unknown)": (1, 0, 1)}, "per DC: %r" % per_dc)
        fx.minion("db2.dc2", "dc2")
        fx.dc("dc2", t - 5000)  # dc2's relay has not reached the job
        rc, doc, err = fx.job(jid)
        h.check(reasons(doc) == {"db2.dc2": "DC not delivered", "web3.dc1": "no return"}, "behind: %r" % doc)
        fx.dc("dc2", t + 500, report_age_s=600)  # delivered once, but its relay went silent
        rc, doc, err = fx.job(jid)
        h.check(reasons(doc)["db2.dc2"] == "DC not delivered" and "stale" in str(doc), "stale: %r" % doc)
        r = subprocess.run([STATUS, "-c", fx.cfg, "job", jid], capture_output=True, timeout=30)
        text = r.stdout.decode()
        h.check(r.returncode == 1 and "expected 5, returned 3, missing 2" in text and
                "db2.dc2         dc2  DC not delivered" in text, "text output:\n" + text)


def test_job_delivery_unproven(tmp):
    """Issue 10 item 10: a cursor past the jid's time is no proof that the DC
    sent the job (the jid is made before the publication, which may be stored
    much later): a DC none of whose minions returned is 'maybe', its missing
    minions 'DC delivery unproven'; the old code called it delivered."""
    jobs, jid = job_caches()[0]
    fx = JobFixture(tmp, jobs)
    t = jid_ms(jid)
    for dc in ("dc1", "dc2", "dc3"):
        fx.dc(dc, t + 500)
    for m in ("web1.dc1", "web2.dc1", "web3.dc1"):
        fx.minion(m, "dc1")
    fx.minion("db1.dc2", "dc2")
    fx.minion("db2.dc2", "dc3")  # alone in dc3, did not return
    rc, doc, err = fx.job(jid)
    dlv = {d["name"]: d["delivered"] for d in doc["dcs"]}
    h.check(dlv == {"dc1": True, "dc2": True, "dc3": None}, "delivered per DC: %r" % dlv)
    h.check(reasons(doc) == {"db2.dc2": "DC delivery unproven", "web3.dc1": "no return"}, "%r" % doc)
    r = subprocess.run([STATUS, "-c", fx.cfg, "job", jid], capture_output=True, timeout=30)
    text = r.stdout.decode()
    h.check(r.returncode == 1 and re.search(r"dc3 +1 +0 +1 +maybe", text) and
            re.search(r"dc1 +3 +2 +1 +delivered", text), "text output:\n" + text)


def test_job_syndic(tmp):
    """Tiered mode (real Salt 3008 job cache, tests/data/jobcache-syndic): the
    syndic's minion low1.dc1 is not in the registry and takes dc1 from syndic
    syn1's entry; syn1's own id, which never returns, is not counted."""
    src = os.path.join(DATA, "jobcache-syndic", "jobs")
    jobs = os.path.join(tmp, "jobs")
    shutil.copytree(src, jobs)
    jobdir = os.path.dirname(glob.glob(os.path.join(jobs, "*", "*", "jid"))[0])
    with open(os.path.join(jobdir, "jid")) as f:
        jid = f.read().strip()
    fx = JobFixture(tmp, jobs)
    t = jid_ms(jid)
    fx.dc("dc1", t + 500)
    fx.dc("dc2", t + 500)
    for m, dc in (("web1.dc1", "dc1"), ("web2.dc1", "dc1"), ("db1.dc2", "dc2"), ("syn1", "dc1")):
        fx.minion(m, dc)
    rc, doc, err = fx.job(jid)
    h.check(rc == 1 and (doc["expected"], doc["returned"], doc["missing"]) == (5, 4, 1), "%r %s" % (doc, err))
    h.check(reasons(doc) == {"web2.dc1": "no return"}, "only the stopped minion: %r" % doc)
    per_dc = {d["name"]: (d["expected"], d["returned"], d["missing"]) for d in doc["dcs"]}
    h.check(per_dc == {"dc1": (3, 2, 1), "dc2": (1, 1, 0), "(unknown)": (1, 1, 0)}, "per DC: %r" % per_dc)
    h.check(doc["syndics"] == [{"syndic": "syn1", "dc": "dc1", "expected": 1, "returned": 1, "missing": 0,
                                "own_id_not_counted": True}], "syndics: %r" % doc["syndics"])

    os.remove(os.path.join(jobdir, "low1.dc1", "return.p"))  # the variant: low1.dc1 did not return
    rc, doc, err = fx.job(jid)
    low = {m["minion"]: m for m in doc["missing_minions"]}["low1.dc1"]
    h.check(rc == 1 and (doc["expected"], doc["returned"], doc["missing"]) == (5, 3, 2), "%r %s" % (doc, err))
    h.check(low["dc"] == "dc1" and low["syndic"] == "syn1" and low["reason"] == "no return" and
            low["detail"].startswith("behind syndic syn1, job sent"), "low1.dc1: %r" % low)
    h.check(doc["syndics"][0]["missing"] == 1, "syndic row: %r" % doc["syndics"])
    r = subprocess.run([STATUS, "-c", fx.cfg, "job", jid], capture_output=True, timeout=30)
    text = r.stdout.decode()
    h.check(r.returncode == 1 and "expected 5, returned 3, missing 2" in text and
            "low1.dc1        dc1  no return  behind syndic syn1, job sent" in text and
            "syn1    dc1  1         0         1        own id not counted" in text, "text output:\n" + text)

    fx.dc("dc1", t + 500, report_age_s=600)  # dc1's relay went silent
    rc, doc, err = fx.job(jid)
    low = {m["minion"]: m for m in doc["missing_minions"]}["low1.dc1"]
    h.check(low["reason"] == "DC not delivered" and low["dc"] == "dc1" and
            low["detail"] == "behind syndic syn1, DC stale: no report for a while", "dc1 stale: %r" % low)

    fx.dc("dc1", t + 500)
    fx.redis.cli("del", key("reg", "dc1", "syn1"))
    fx.redis.cli("srem", key("minions", "dc1"), "syn1")
    rc, doc, err = fx.job(jid)
    low = {m["minion"]: m for m in doc["missing_minions"]}["low1.dc1"]
    h.check(low["reason"] == "syndic never seen by its relay" and low["dc"] is None and low["syndic"] == "syn1",
            "syn1 unknown: %r" % low)
    h.check(reasons(doc) == {"low1.dc1": "syndic never seen by its relay", "web2.dc1": "no return"} and
            doc["expected"] == 5 and doc["syndics"][0]["dc"] is None, "syn1 unknown: %r" % doc)

    # Odd syndic file names: no id (counted without a syndic), control bytes (escaped), damaged list.
    for name, data in ((b".minions..p", b"\x91\xa4odd1"), (b".minions.\x1b[31mx.p", b"\x91\xa4odd2"),
                       (b".minions.broken.p", b"\xdd\xff\xff\xff\xff")):
        with open(os.path.join(jobdir.encode(), name), "wb") as f:
            f.write(data)
    r = subprocess.run([STATUS, "-c", fx.cfg, "job", jid], capture_output=True, timeout=30)
    text, err = r.stdout.decode(), r.stderr.decode()
    h.check(r.returncode == 1 and "expected 7," in text and "behind syndic \\x1b[31mx," in text and
            "\x1b" not in text, "odd syndics:\n%s%s" % (text, err))
    h.check("no usable syndic id" in err and "broken.p: not a valid msgpack list" in err, "named: " + err)


def test_job_cache_damaged(tmp):
    """Damaged job cache files: a clear message and exit 2, or a warning and
    the rest of the job; odd minion ids are escaped, never a crash."""
    jobs, jid = job_caches()[0]
    copy = os.path.join(tmp, "jobs")
    shutil.copytree(jobs, copy)
    jobdir = os.path.dirname(glob.glob(os.path.join(copy, "*", "*", "jid"))[0])
    fx = JobFixture(tmp, copy)
    fx.dc("dc1", jid_ms(jid) + 500)
    with open(os.path.join(jobdir, ".load.p"), "wb") as f:
        f.write(b"\xde\xff\xff")  # truncated map
    with open(os.path.join(jobdir, ".minions.p"), "wb") as f:
        # msgpack ["ok.dc1", "\xff\xfe bad\n", 7, "a/b", "x" * 300], str as Salt writes it
        f.write(b"\x95\xa6ok.dc1\xa7\xff\xfe bad\n\x07\xa3a/b\xda\x01\x2c" + b"x" * 300)
    rc, doc, err = fx.job(jid)
    h.check(rc == 1 and doc["expected"] == 2 and doc["fun"] == "", "odd ids: %r %s" % (doc, err))
    h.check("the job load is not" in err or "not a valid msgpack" in err, "load named: " + err)
    h.check("3 entries are not usable minion ids" in err, "bad ids named: " + err)
    # bytes that are not UTF-8: one U+FFFD each (test_json_utf8_ids); the newline escaped
    h.check(any(m["minion"] == "\ufffd\ufffd bad\n" for m in doc["missing_minions"]), "escaped id: %r" % doc)
    for bad in (b"\xdd\xff\xff\xff\xff", b"", b"\x93\x01", b"\xc1", b"\x91" * 100000 + b"\x01"):
        with open(os.path.join(jobdir, ".minions.p"), "wb") as f:
            f.write(bad)
        r = subprocess.run([STATUS, "-c", fx.cfg, "job", jid], capture_output=True, timeout=30)
        h.check(r.returncode == 2 and b"no readable list of expected minions" in r.stderr,
                "%r -> %r" % (bad[:8], r))
    for arg in ("12345", "../../etc", "2026112211114734151x"):
        r = subprocess.run([STATUS, "-c", fx.cfg, "job", arg], capture_output=True, timeout=30)
        h.check(r.returncode == 2 and b"not a Salt jid" in r.stderr, "%s -> %r" % (arg, r))


def test_minions_registry(tmp):
    """saltrelay-status minions [DC] (issue 20, what the Salt runner's
    saltrelay.minions lists): per DC the set members whose newest registry
    entry is that DC's; a minion that moved is listed where it is now, one
    that expired or was never seen not at all; an entry of the layout before
    per-DC keys counts where it says (until it expires) unless a per-DC
    entry exists; damaged data is named on stderr, never a crash."""
    fx = JobFixture(tmp, os.path.join(tmp, "jobs"))
    for dc in ("dc1", "dc2", "dc3", "dc4"):
        fx.dc(dc, 1)
    for m, dc in (("a1.dc1", "dc1"), ("a2.dc1", "dc1"), ("b1.dc2", "dc2"), ("odd\x1b[31m", "dc1")):
        fx.minion(m, dc)
    fx.minion("a2.dc1", "dc2", at=2)  # moved to dc2: a newer entry there (dc1's stays until it expires)
    fx.redis.cli("sadd", key("minions", "dc1"), "expired.dc1")  # its entry expired
    fx.redis.cli("hset", key("reg", "dc1", "unseen.dc1"), "x", "1")  # no time: never seen
    fx.redis.cli("sadd", key("minions", "dc1"), "unseen.dc1")
    fx.redis.cli("hset", key("reg", "dc1", "a1.dc1"), "last_request", "soon")  # damaged
    fx.redis.cli("set", key("minions", "dc4"), "not a set")
    # entries of the layout before per-DC keys count until they expire, in the DC they name
    fx.redis.cli("hset", key("minion", "old.dc3"), "dc", "dc3", "first_auth", 1, "last_auth", 1, "last_request", 1)
    fx.redis.cli("sadd", key("minions", "dc3"), "old.dc3")
    fx.redis.cli("hset", key("minion", "gone.dc3"), "dc", "dc2", "last_auth", 1)  # names another DC
    fx.redis.cli("sadd", key("minions", "dc3"), "gone.dc3")
    fx.redis.cli("hset", key("minion", "b1.dc2"), "dc", "dc3", "last_auth", 9)  # a per-DC entry wins
    fx.redis.cli("sadd", key("minions", "dc3"), "b1.dc2")

    def run(*args):
        r = subprocess.run([STATUS, "-c", fx.cfg] + list(args), capture_output=True, timeout=30)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    rc, out, err = run("--json", "minions")
    doc = json.loads(out)
    listed = {d["name"]: [m["id"] for m in d["minions"]] for d in doc["dcs"]}
    h.check(rc == 0 and listed == {"dc1": ["a1.dc1", "odd\x1b[31m"], "dc2": ["a2.dc1", "b1.dc2"], "dc3": ["old.dc3"],
                                   "dc4": []}, "minions: %d %r %s" % (rc, listed, err))
    a1 = doc["dcs"][0]["minions"][0]
    h.check(a1 == {"id": "a1.dc1", "first_auth_ms": 1, "last_auth_ms": 1, "last_request_ms": None}, "a1: %r" % a1)
    h.check("minion a1.dc1: field last_request has a bad value" in err and "WRONGTYPE" in err, "stderr: " + err)
    rc, out, err = run("--json", "minions", "dc2")
    h.check(rc == 0 and [d["name"] for d in json.loads(out)["dcs"]] == ["dc2"], "one DC: %d %s %s" % (rc, out, err))
    rc, out, err = run("minions", "dc1")
    h.check(rc == 0 and out.startswith("minions seen by the relays: dc1 2\n") and
            re.search(r"(?m)^dc1 +odd\\x1b\[31m +1\d*\.\d s ago", out) and "\x1b" not in out, "text:\n" + out)
    rc, out, err = run("minions", "dc9")
    h.check(rc == 2 and "no DC named dc9 has reported (4 DCs have: dc1, dc2, dc3, dc4)" in err, "%d %s" % (rc, err))
    rc, out, err = run("minions", "dc1", "extra")
    h.check(rc == 2 and "Usage" in err, "usage: %d %s" % (rc, err))
    fx.redis.stop()
    rc, out, err = run("--json", "minions")
    h.check(rc == 2 and "unreachable" in out, "Redis down: %d %s %s" % (rc, out, err))


def test_forget_dc(tmp):
    """saltrelay-status forget DC: refused while its saltrelay-down runs
    (its lease held); once stopped, its report, request and reply streams,
    stored request numbers, the registry entries of its minion set (its own
    per-DC ones, and those of the layout before that name it), its minion
    set and its name in the DC set are gone, and said; a minion that moved
    to another DC keeps its entries there; the other DC is untouched and the
    status is ok again."""
    r = Relay(tmp)
    h.zpub(r.mom_pub, "--gen", 1)
    for dc in r.dcs:
        r.wait_delivered(dc, 1)
    for m, dc in (("a.dc2", "dc2"), ("b.dc2", "dc2"), ("moved.dc2", "dc2"), ("moved.dc2", "dc1"), ("c.dc1", "dc1")):
        r.redis.cli("hset", key("reg", dc, m), "first_auth", 1, "last_auth", 1, "last_request", 1)
        r.redis.cli("sadd", key("minions", dc), m)
    for m, dc in (("old.dc2", "dc2"), ("moved.dc2", "dc1")):  # the layout before: one entry for all DCs
        r.redis.cli("hset", key("minion", m), "dc", dc, "first_auth", 1, "last_auth", 1, "last_request", 1)
    r.redis.cli("sadd", key("minions", "dc2"), "old.dc2")
    r.redis.cli("xadd", key("rep", "dc2"), "*", "r", "x")
    r.redis.cli("xadd", key("req", "dc2"), "*", "r", "x")
    r.redis.cli("hset", key("reqhi", "dc2"), "boot", "1")
    rc, out, err = r.status("forget", "dc2")
    h.check(rc == 2 and "DC dc2 is running (saltrelay-down %s/%d holds its lease): stop it first" %
            (socket.gethostname(), r.dcs["dc2"].proc.pid) in err and r.report("dc2"), "forget while running: %d %s"
            % (rc, err))
    h.check(r.dcs["dc2"].term() == 0, "dc2 stops")
    rc, out, err = r.status()
    h.check(rc == 2 and "dc2: stopped" in out, "a stopped DC is critical: %d %s" % (rc, out))
    rc, out, err = r.status("forget", "dc2")
    h.check(rc == 0 and out == "forgot DC dc2: its report, its request stream, its reply stream, 4 registry entries "
            "of the 4 minions of its set (the others expired, or name another DC), its minion set and its name in "
            "the DC set\n", "forget: %d %r %s" % (rc, out, err))
    for k in (key("dc", "dc2"), key("rep", "dc2"), key("req", "dc2"), key("reqhi", "dc2"), key("minions", "dc2"),
              key("reg", "dc2", "a.dc2"), key("reg", "dc2", "b.dc2"), key("reg", "dc2", "moved.dc2"),
              key("minion", "old.dc2")):
        h.check(r.redis.cli("exists", k) == "0", "%s is left" % k)
    h.check(r.redis.cli("hget", key("minion", "moved.dc2"), "dc") == "dc1" and
            r.redis.cli("exists", key("reg", "dc1", "moved.dc2")) == "1", "the moved minion's entries are gone")
    h.check(r.redis.cli("smembers", key("dcs")) == "dc1" and r.report("dc1"), "dc1 touched")
    rc, doc = r.status_json()
    h.check(rc == 0 and [d["name"] for d in doc["dcs"]] == ["dc1"], "after forget: %d %r" % (rc, doc))
    rc, out, err = r.status("forget", "dc2")
    h.check(rc == 2 and "no DC named dc2 in cluster st" in err, "forget again: %d %s" % (rc, err))
    rc, out, err = r.status("--json", "forget", "dc1")
    h.check(rc == 2 and "Usage" in err and r.report("dc1"), "--json forget: %d %s" % (rc, err))


def test_never_reported_dc(tmp):
    """A saltrelay-down that fails its first start (its publish port is
    taken) never joins the DC set, so it cannot keep the status CRITICAL; a
    DC named in the set without any report (its keys removed by hand, or
    left by an older version) is a warning that names forget, not critical."""
    r = Relay(tmp, dcs=("dc1",))
    h.zpub(r.mom_pub, "--gen", 1)
    r.wait_delivered("dc1", 1)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    os.makedirs(os.path.join(tmp, "state-dc7"))
    bad = h.Daemon("down", tmp, "dc7", cluster=CLUSTER, datacenter="dc7", redis=r.redis.url,
                   state_dir=os.path.join(tmp, "state-dc7"), report_interval=0.2,
                   publish_bind="tcp://127.0.0.1:%d" % taken.getsockname()[1],
                   ret_bind="tcp://127.0.0.1:%d" % h.free_port()).start(wait_ready=False)
    h.check(bad.proc.wait(timeout=30) == 1 and "cannot bind publish_bind" in bad.log(), "dc7: " + bad.log())
    taken.close()
    rc, doc = r.status_json()
    h.check(rc == 0 and [d["name"] for d in doc["dcs"]] == ["dc1"], "a failed first start is listed: %d %r" %
            (rc, doc))
    r.redis.cli("sadd", key("dcs"), "dc9")
    rc, out, err = r.status()
    h.check(rc == 1 and out.startswith("SALTRELAY WARNING - dc9: never reported (saltrelay-status forget dc9 "
                                       "removes it)") and re.search(r"(?m)^dc9 +never ", out), "dc9: %d\n%s" %
            (rc, out))
    rc, doc = r.status_json()
    dc9 = by_name(doc)["dc9"]
    h.check(rc == 1 and dc9["health"] == "warning" and dc9["never_reported"] and
            not by_name(doc)["dc1"]["never_reported"], "json: %r" % dc9)
    rc, out, err = r.status("forget", "dc9")
    h.check(rc == 0 and r.status()[0] == 0, "forget dc9: %d %s %s" % (rc, out, err))


def test_json_utf8_ids(tmp):
    """--json keeps a UTF-8 minion id as it is (the old output escaped each
    byte, "\u00c3\u00a9" for "é"), escapes control characters and shows
    each byte that is not UTF-8 as U+FFFD."""
    fx = JobFixture(tmp, os.path.join(tmp, "jobs"))
    fx.dc("dc1", 1)
    ids = ["café.dc1", "日本.dc1", "tab\there", "bad\udcff\udcc3.dc1", "emoji\U0001f600"]
    for m in ids:
        fx.minion(m, "dc1")
    r = subprocess.run([STATUS, "-c", fx.cfg, "--json", "minions"], capture_output=True, timeout=30)
    raw = r.stdout
    h.check(r.returncode == 0 and "café.dc1".encode() in raw and "日本.dc1".encode() in raw and
            b"\\u00c3" not in raw and b"tab\\u0009here" in raw, "raw output: %r" % raw)
    listed = sorted(m["id"] for m in json.loads(raw.decode("utf-8"))["dcs"][0]["minions"])
    want = sorted(["café.dc1", "日本.dc1", "tab\there", "bad\ufffd\ufffd.dc1", "emoji\U0001f600"])
    h.check(listed == want, "ids: %r" % listed)


def scrape(port, path="/metrics"):
    r = subprocess.run(["curl", "-sS", "-w", "\\n%{http_code}", "http://127.0.0.1:%d%s" % (port, path)],
                       capture_output=True, timeout=20)
    h.check(r.returncode == 0, "curl failed: %s" % r.stderr.decode())
    body, _, code = r.stdout.decode().rpartition("\n")
    values = {}
    for line in body.splitlines() if code == "200" else ():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return int(code), values


def test_metrics_endpoint(tmp):
    up_port, down_port = h.free_port(), h.free_port()
    r = Relay(tmp, dcs=("dc1",), up=dict(metrics_bind="tcp://127.0.0.1:%d" % up_port),
              down=dict(metrics_bind="127.0.0.1:%d" % down_port))
    code, down = scrape(down_port)
    h.check(code == 200 and down["saltrelay_pub_out_messages_total"] == 0, "before: %r" % down)
    h.check('saltrelay_info{role="down",cluster="st",datacenter="dc1",version="0.1.0"}' in down,
            "info metric: %r" % sorted(down))
    h.check("saltrelay_pub_in_messages_total" not in down, "only the down role's metrics")
    h.check('saltrelay_request_latency_seconds_bucket{le="+Inf"}' in down, "latency histogram")
    h.zpub(r.mom_pub, "--gen", 5, "--size", 200)
    r.wait_delivered("dc1", 5)
    code, down = scrape(down_port)
    h.check(down["saltrelay_pub_out_messages_total"] == 5 and down["saltrelay_pub_out_bytes_total"] == 1000
            and down["saltrelay_cursor_serial"] == 5, "after 5 publications: %r" % down)
    code, up = scrape(up_port)
    h.check(code == 200 and up["saltrelay_pub_in_messages_total"] == 5 and
            "saltrelay_pub_out_messages_total" not in up, "saltrelay-up: %r" % up)
    h.check(scrape(up_port, "/nothing")[0] == 404, "other paths are 404")
    bad = h.Daemon("down", tmp, "bad", cluster=CLUSTER, datacenter="dc9", redis=r.redis.url,
                   state_dir=tmp, publish_bind="tcp://127.0.0.1:%d" % h.free_port(),
                   ret_bind="tcp://127.0.0.1:%d" % h.free_port(), metrics_bind="127.0.0.1:%d" % down_port)
    bad.start(wait_ready=False)
    h.check(bad.proc.wait(timeout=20) != 0 and "cannot listen" in bad.log(), "port in use: " + bad.log())


if __name__ == "__main__":
    h.main(globals())
