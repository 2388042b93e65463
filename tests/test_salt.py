"""test_salt.py -- saltrelay with real Salt (tests/saltlab.py: an installed
Salt, or the 3008 and 3006 source trees of ../shared/salt): flat minions in
two DCs and a syndic tier behind saltrelay-down, and the Salt runner
`saltrelay` (returner/runners/saltrelay.py) loaded by the MoM through
runner_dirs, asked through salt-run, salt-api (client: runner) and
RunnerClient. Its answers must be saltrelay-status's: the tests compare them
with the C tool's on the same job. Also the state tree conf/salt/states,
rendered and applied with salt-call --local.

Real processes only: redis-server, saltrelay-up/-down, salt-master,
salt-minion, salt-syndic, salt-api on loopback. Skipped (exit 77) only when
neither an installed Salt nor the source trees are there."""

import getpass
import glob
import grp
import json
import os
import re
import shlex
import shutil
import subprocess
import time

import harness as h
import saltlab as sl

CLUSTER = "lab"
STATUS = os.path.join(h.BUILD, "returner", "saltrelay-status")
API_USER = "relayops"


def salt_test(fn):
    """End every Salt daemon's workers too when the test ends (harness
    kills only the processes it started)."""
    def run(tmp):
        try:
            fn(tmp)
        finally:
            sl.kill_sessions()
    run.__name__ = fn.__name__
    return run


class Lab:
    """Redis, saltrelay-up beside a real MoM (the runner loaded through
    runner_dirs, salt-api on), a saltrelay-down per DC; minions and syndics
    are added by the tests. The MoM's saltrelay_config names up.yaml, whose
    job_cache_dir is left at its default: the runner must pass the MoM's."""

    def __init__(self, tmp, tree, **mom_cfg):
        self.tmp = tmp
        self.t0 = time.monotonic()
        self.salt = sl.Salt(tree)
        print("%s: Salt %s, %s" % (tree, self.salt.version, self.salt.source))
        self.redis = h.Redis(tmp)
        self.up_yaml = os.path.join(tmp, "up.yaml")
        cfg = sl.Api.config(h.free_port(), API_USER)
        cfg.update(mom_cfg)
        self.mom = sl.Master(self.salt, tmp, **cfg)
        os.makedirs(os.path.join(self.mom.conf_dir, "master.d"))
        with open(os.path.join(self.mom.conf_dir, "master.d", "saltrelay.conf"), "w") as f:
            f.write(runner_lines(RUNNERS_DIR, sl.RUNNERS).replace("/etc/saltrelay/up.yaml", self.up_yaml))
        self.up = h.Daemon("up", tmp, "up", cluster=CLUSTER, redis=self.redis.url, stale_after=3,
                           master_publish="tcp://127.0.0.1:%d" % self.mom.publish_port,
                           master_ret="tcp://127.0.0.1:%d" % self.mom.ret_port)
        h.check(self.up.cfg_path == self.up_yaml, "up.yaml path")
        self.dcs, self.ports = {}, {}
        for dc in ("dc1", "dc2"):
            state = os.path.join(tmp, "state-" + dc)
            os.makedirs(state)
            self.ports[dc] = (h.free_port(), h.free_port())  # publish, ret
            self.dcs[dc] = h.Daemon("down", tmp, dc, cluster=CLUSTER, datacenter=dc, redis=self.redis.url,
                                    state_dir=state, report_interval=0.2,
                                    publish_bind="tcp://127.0.0.1:%d" % self.ports[dc][0],
                                    ret_bind="tcp://127.0.0.1:%d" % self.ports[dc][1])
        self.minions = {}
        self.mom.start()
        self.up.start()
        for d in self.dcs.values():
            d.start()
        self.api = sl.Api(self.mom).start()

    def minion(self, mid, dc=None, syndic=None):
        """A minion through DC's saltrelay-down (flat), or on SYNDIC's lower master."""
        ret, pub = (syndic.ret_port, syndic.publish_port) if syndic else (self.ports[dc][1], self.ports[dc][0])
        self.minions[mid] = sl.Minion(self.salt, self.tmp, mid, ret, pub).start()
        return self.minions[mid]

    def wait_minions(self):
        for m in self.minions.values():
            m.wait_ready(120)
        print("lab ready after %.1f s" % (time.monotonic() - self.t0))

    def status(self, *args):
        """The C tool on the MoM's job cache: (exit status, JSON document or None, stderr)."""
        r = subprocess.run([STATUS, "-c", self.up_yaml, "--json", "--job-cache", self.mom.jobs_dir] + list(args),
                           capture_output=True, timeout=60)
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            doc = None
        return r.returncode, doc, r.stderr.decode()

    def async_job(self, tgt="*", fun="test.ping"):
        rc, out, err = self.mom.tool("salt", "--async", tgt, fun)
        m = re.search(r"job ID: (\d{20})", out)
        h.check(rc == 0 and m, "salt --async: %d %s %s" % (rc, out, err[-2000:]))
        return m.group(1)

    def job_dir(self, jid):
        for f in glob.glob(os.path.join(self.mom.jobs_dir, "*", "*", "jid")):
            with open(f) as fh:
                if fh.read().strip() == jid:
                    return os.path.dirname(f)
        return None

    def wait_returns(self, jid, mids, timeout=60):
        def there():
            d = self.job_dir(jid)
            return d and all(os.path.exists(os.path.join(d, m, "return.p")) for m in mids)
        h.wait_until(there, timeout, "returns of %s for job %s in the MoM's job cache" % (sorted(mids), jid))

    def runner_client(self, calls, env=None):
        """salt.runner.RunnerClient in one process of Salt's python, on the
        MoM's config: CALLS is a list of [environment, fun, args]; returns
        each call's full return (return, success)."""
        code = ("import json, os, sys\n"
                "import salt.config, salt.runner\n"
                "opts = salt.config.master_config(os.path.join(sys.argv[1], 'master'))\n"
                "client = salt.runner.RunnerClient(opts)\n"
                "out = []\n"
                "for env, fun, args in json.loads(sys.argv[2]):\n"
                "    os.environ.update(env)\n"
                "    r = client.cmd(fun, args, print_event=False, full_return=True)\n"
                "    out.append({'return': r['return'], 'success': r['success']})\n"
                "print('RESULT ' + json.dumps(out))\n")
        r = subprocess.run([self.salt.python, "-c", code, self.mom.conf_dir, json.dumps(calls)],
                           capture_output=True, timeout=180, env=self.salt.env(**(env or {})))
        out = r.stdout.decode(errors="replace")
        m = re.search(r"^RESULT (.*)$", out, re.M)
        h.check(r.returncode == 0 and m, "RunnerClient: %d\n%s\n%s" % (r.returncode, out, r.stderr.decode()[-3000:]))
        return json.loads(m.group(1))

    def api_run(self, fun, **kw):
        status, body = self.api.run([dict(client="runner", fun=fun, username=API_USER, password="unused",
                                           eauth="auto", **kw)])
        h.check(status == 200 and isinstance(body, dict), "salt-api %s: HTTP %s %s" % (fun, status, body))
        return body["return"][0]


MOM_CONF = os.path.join(h.REPO, "conf", "salt", "mom.conf")
RUNNERS_DIR = "/usr/share/saltrelay/salt/runners"  # where the package installs the runner


def runner_lines(packaged, here):
    """The MoM's config lines for the runner as conf/salt/mom.conf documents
    them (runner_dirs and saltrelay_config), the packaged runner directory
    PACKAGED replaced by HERE."""
    with open(MOM_CONF) as f:
        m = re.search(r"(?m)^runner_dirs:\n(?:  - .*\n)+saltrelay_config: .*\n", f.read())
    h.check(m and packaged in m.group(0), "%s has no runner_dirs / saltrelay_config lines" % MOM_CONF)
    return m.group(0).replace(packaged, here)


def without_times(doc):
    """A job document with the parts that move with the clock masked: the
    age in each missing minion's detail ("job sent 8.5 s ago")."""
    doc = dict(doc)
    doc.pop("retcode", None)
    doc["missing_minions"] = [dict(m, detail=re.sub(r"\d+\.\d s", "N s", m["detail"]))
                              for m in doc["missing_minions"]]
    return doc


def missing(doc):
    return {m["minion"]: (m["dc"], m["reason"]) for m in doc["missing_minions"]}


def check_no_traceback(*texts):
    for t in texts:
        h.check("Traceback" not in str(t) and "Exception occurred" not in str(t), "a traceback:\n%s" % (t,))


def flat(tmp, tree):
    """Flat minions in two DCs: the runner's minion lists target one DC; a
    job with web2.dc1 stopped and dc2's relay down names both missing with
    their DC and reason, as saltrelay-status does; errors come back in
    Salt's form (an Error, retcode 2, success False), never a traceback."""
    lab = Lab(tmp, tree)
    for mid, dc in (("web1.dc1", "dc1"), ("web2.dc1", "dc1"), ("db1.dc2", "dc2")):
        lab.minion(mid, dc)
    lab.wait_minions()

    # saltrelay.minions: the registry per DC, then one DC as a target for salt -L
    rc, per_dc, err = lab.mom.run_json("saltrelay.minions")
    h.check(rc == 0 and per_dc == {"dc1": ["web1.dc1", "web2.dc1"], "dc2": ["db1.dc2"]},
            "saltrelay.minions: %d %r %s" % (rc, per_dc, err[-2000:]))
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir)
    for prog in ("salt", "salt-run"):
        with open(os.path.join(bindir, prog), "w") as f:
            f.write("#!/bin/sh\nexec %s \"$@\"\n" % " ".join(shlex.quote(a) for a in lab.salt.argv(prog) +
                                                             ["-c", lab.mom.conf_dir]))
        os.chmod(os.path.join(bindir, prog), 0o755)
    # -t 30: a loaded machine may take longer than Salt's 5 s; the CLI ends when all have answered
    line = 'salt -t 30 --show-jid --out=txt -L "$(salt-run --out=txt saltrelay.minions dc1 target=True)" test.ping'
    r = subprocess.run(["bash", "-c", line], capture_output=True, timeout=180,
                       env=lab.salt.env(PATH=bindir + os.pathsep + os.environ["PATH"]))
    out = r.stdout.decode()
    answered = sorted(l.split(":")[0] for l in out.splitlines() if l.endswith(": True"))
    jid = re.search(r"jid: (\d{20})", out)
    h.check(r.returncode == 0 and answered == ["web1.dc1", "web2.dc1"] and jid,
            "%s\n-> %d %s %s" % (line, r.returncode, out, r.stderr.decode()[-2000:]))
    h.check(jid.group(1) not in lab.minions["db1.dc2"].log(), "db1.dc2 (dc2) ran the dc1 job:\n" +
            lab.minions["db1.dc2"].log()[-2000:])

    doc = lab.api_run("saltrelay.status")
    crc, cdoc, _ = lab.status()
    h.check(doc["retcode"] == 0 == crc and [d["name"] for d in doc["dcs"]] == ["dc1", "dc2"] and
            [d["minions"] for d in doc["dcs"]] == [2, 1], "saltrelay.status: %r" % doc)
    h.check(set(doc) - {"retcode"} == set(cdoc), "status keys: %r vs %r" % (sorted(doc), sorted(cdoc)))

    # A job with web2.dc1 stopped and dc2's saltrelay-down stopped
    lab.minions["web2.dc1"].stop()
    h.check(lab.dcs["dc2"].term() == 0, "dc2's saltrelay-down stops cleanly")
    jid = lab.async_job()
    # once stale (stale_after 3 s), every answer below gives dc2 the same detail
    h.wait_until(lambda: {d["name"]: d["stale"] for d in lab.status()[1]["dcs"]}["dc2"], 30, "dc2 stale")
    lab.wait_returns(jid, ["web1.dc1"])
    rc, doc, err = lab.mom.run_json("saltrelay.job", jid)
    crc, cdoc, cerr = lab.status("job", jid)
    h.check(rc == 1 and doc["retcode"] == 1 == crc, "exit status: salt-run %d, retcode %r, tool %d\n%s" %
            (rc, doc.get("retcode"), crc, err[-2000:]))
    h.check((doc["expected"], doc["returned"], doc["missing"]) == (3, 1, 2) and
            missing(doc) == {"web2.dc1": ("dc1", "no return"), "db1.dc2": ("dc2", "DC not delivered")},
            "saltrelay.job: %r" % doc)
    h.check(without_times(doc) == without_times(cdoc), "runner and saltrelay-status differ:\n%r\n%r" % (doc, cdoc))

    # salt-api, client: runner
    doc = lab.api_run("saltrelay.job", jid=jid)
    h.check(doc["retcode"] == 1 and without_times(doc) == without_times(cdoc), "salt-api saltrelay.job: %r" % doc)
    doc = lab.api_run("saltrelay.status")
    h.check(doc["retcode"] == 2 and {d["name"]: d["stopped"] for d in doc["dcs"]} == {"dc1": False, "dc2": True},
            "salt-api saltrelay.status with dc2 stopped: %r" % doc)
    doc = lab.api_run("saltrelay.minions", dc="dc2", target="False")  # form data: strings
    h.check(doc == ["db1.dc2"], "salt-api saltrelay.minions dc2: %r" % doc)
    full = lab.api_run("saltrelay.job", jid="20200101000000000000", full_return=True)["data"]
    h.check(full["success"] is False and full["return"]["retcode"] == 2 and
            "not in the job cache" in full["return"]["Error"], "salt-api unknown jid: %r" % full)

    # Errors: Salt's form, never a traceback
    bad = os.path.join(tmp, "bad.yaml")
    with open(bad, "w") as f:
        f.write("cluster: lab\nredis: redis://127.0.0.1:%d\nno_such_key: 1\n" % lab.redis.port)
    results = lab.runner_client([[{}, "saltrelay.job", ["20200101000000000000"]],
                                 [{}, "saltrelay.minions", ["dc9"]],
                                 [{"SALTRELAY_CONFIG": os.path.join(tmp, "missing.yaml")}, "saltrelay.status", []],
                                 [{"SALTRELAY_CONFIG": bad}, "saltrelay.status", []]])
    expect = ["is not in the job cache", "no DC named dc9", "missing.yaml does not exist", "no_such_key"]
    for r, text in zip(results, expect):
        h.check(r["success"] is False and r["return"]["retcode"] == 2 and text in r["return"]["Error"],
                "RunnerClient: %r, expected %r" % (r, text))
    check_no_traceback(results)
    rc, out, err = lab.mom.tool("salt-run", "saltrelay.job", "20200101000000000000")
    h.check(rc == 2 and out.startswith("Error:") and "not in the job cache" in out,
            "salt-run, unknown jid: %d %s %s" % (rc, out, err[-2000:]))
    check_no_traceback(out, err)
    lab.redis.stop()
    doc = lab.api_run("saltrelay.status")
    h.check(doc["retcode"] == 2 and "unreachable" in doc["Error"], "Redis down: %r" % doc)
    check_no_traceback(doc)
    print("test time with Salt's start: %.1f s" % (time.monotonic() - lab.t0))


@salt_test
def test_flat_3008(tmp):
    flat(tmp, "3008")


@salt_test
def test_flat_3006(tmp):
    flat(tmp, "3006")


@salt_test
def test_tiered_3008(tmp):
    """Tiered: a syndic whose syndic_master is dc1's saltrelay-down, its
    lower master's minion low2.dc1 stopped: the runner counts the tier in
    dc1, names low2.dc1 missing behind syn1, and does not count syn1's own
    id (which Salt expects and which never returns)."""
    lab = Lab(tmp, "3008", order_masters=True)
    syn = sl.Syndic(lab.salt, tmp, "syn1", lab.ports["dc1"][1], lab.ports["dc1"][0]).start()
    lab.minion("db1.dc2", "dc2")
    for mid in ("low1.dc1", "low2.dc1"):
        lab.minion(mid, syndic=syn)
    lab.wait_minions()
    h.wait_until(lambda: "Syndic successfully connected" in syn.syndic_log_text(), 120, "syn1 connected via dc1")
    rc, per_dc, err = lab.mom.run_json("saltrelay.minions")
    h.check(rc == 0 and per_dc == {"dc1": ["syn1"], "dc2": ["db1.dc2"]}, "minions: %r %s" % (per_dc, err[-2000:]))

    lab.minions["low2.dc1"].stop()
    jid = lab.async_job()
    lab.wait_returns(jid, ["db1.dc2", "low1.dc1"])
    h.wait_until(lambda: os.path.exists(os.path.join(lab.job_dir(jid), ".minions.syn1.p")), 30,
                 "syn1's list of its minions for the job")
    rc, doc, err = lab.mom.run_json("saltrelay.job", jid)
    crc, cdoc, _ = lab.status("job", jid)
    h.check(rc == 1 == crc and (doc["expected"], doc["returned"], doc["missing"]) == (3, 2, 1), "job: %r" % doc)
    low2 = doc["missing_minions"][0]
    h.check(missing(doc) == {"low2.dc1": ("dc1", "no return")} and low2["syndic"] == "syn1" and
            low2["detail"].startswith("behind syndic syn1, "), "low2.dc1: %r" % doc)
    h.check(doc["syndics"] == [{"syndic": "syn1", "dc": "dc1", "expected": 2, "returned": 1, "missing": 1,
                                "own_id_not_counted": True}], "syndics: %r" % doc["syndics"])
    h.check(without_times(doc) == without_times(cdoc), "runner and saltrelay-status differ:\n%r\n%r" % (doc, cdoc))
    print("test time with Salt's start: %.1f s" % (time.monotonic() - lab.t0))


STATES = os.path.join(h.REPO, "conf", "salt", "states")
PILLAR_EXAMPLE = os.path.join(h.REPO, "conf", "salt", "pillar", "saltrelay.sls")


def salt_call(salt, tmp, *args):
    """salt-call --local on a minion config whose file_roots is the state
    tree and whose pillar is the example: (exit status, JSON output)."""
    conf = os.path.join(tmp, "call")
    pillar = os.path.join(tmp, "pillar")
    if not os.path.isdir(conf):
        os.makedirs(conf)
        os.makedirs(pillar)
        with open(os.path.join(pillar, "top.sls"), "w") as f:
            f.write("base:\n  '*':\n    - saltrelay\n")
        shutil.copy(PILLAR_EXAMPLE, pillar)
        with open(os.path.join(conf, "minion"), "w") as f:
            f.write(sl._yaml(dict(id="relayhost", root_dir=os.path.join(tmp, "callroot"), file_client="local",
                                  user=getpass.getuser(), file_roots={"base": [STATES]},
                                  pillar_roots={"base": [pillar]}, log_file=os.path.join(tmp, "salt-call.log"))))
    r = subprocess.run(salt.argv("salt-call") + ["-c", conf, "--local", "--out=json"] + list(args),
                       capture_output=True, timeout=180, env=salt.env())
    try:
        return r.returncode, json.loads(r.stdout)["local"]
    except (ValueError, KeyError):
        raise AssertionError("salt-call %s: %d\n%s\n%s" % (args, r.returncode, r.stdout.decode()[-3000:],
                                                            r.stderr.decode()[-3000:]))


def rendered(states):
    """{state id: (module.function, {argument: value})} of a show_sls result."""
    out = {}
    for sid, body in states.items():
        for mod, args in body.items():
            if mod.startswith("__"):
                continue
            fun = [a for a in args if isinstance(a, str)][0]
            kw = {}
            for a in args:
                if isinstance(a, dict):
                    kw.update(a)
            out[sid] = ("%s.%s" % (mod, fun), kw)
    return out


@salt_test
def test_state_tree(tmp):
    """conf/salt/states/saltrelay with the pillar example: rendered by real
    Salt (3008 and 3006: the package, up.yaml and down-dc1.yaml checked by
    the daemons, the MoM's runner config, the units enabled), then applied in
    a test root without the package and the units: the files pass the
    daemons' --check-config, the master.d file makes Salt's own loader find
    the runner, and a pillar the daemon refuses leaves the old file."""
    t0 = time.monotonic()
    shown = {}
    for tree in ("3008", "3006"):
        salt = sl.Salt(tree)
        rc, states = salt_call(salt, os.path.join(tmp, tree), "state.show_sls", "saltrelay")
        h.check(rc == 0 and isinstance(states, dict), "show_sls on %s: %d %r" % (tree, rc, states))
        shown[tree] = rendered(states)
    st = shown["3008"]
    h.check(shown["3006"] == st, "3006 renders otherwise:\n%r\n%r" % (shown["3006"], st))
    expect = {"saltrelay-package": "pkg.installed", "saltrelay-conf-dir": "file.directory",
              "saltrelay-up-config": "file.managed", "saltrelay-down-dc1-config": "file.managed",
              "saltrelay-mom-runner-config": "file.managed", "saltrelay-up-service": "service.running",
              "saltrelay-down-dc1-service": "service.running"}
    h.check({k: v[0] for k, v in st.items()} == expect, "states: %r" % st)
    up, down = st["saltrelay-up-config"][1], st["saltrelay-down-dc1-config"][1]
    h.check(up["name"] == "/etc/saltrelay/up.yaml" and up["mode"] == "0640" and up["group"] == "saltrelay" and
            up["check_cmd"] == "/usr/bin/saltrelay-up --check-config -c", "up.yaml: %r" % up)
    h.check(down["name"] == "/etc/saltrelay/down-dc1.yaml" and
            down["context"]["keys"]["datacenter"] == "dc1" and
            down["context"]["keys"]["state_dir"] == "/var/lib/saltrelay/dc1", "down-dc1.yaml: %r" % down)
    h.check(st["saltrelay-down-dc1-service"][1]["name"] == "saltrelay-down@dc1" and
            st["saltrelay-up-service"][1]["enable"] is True, "units: %r" % st)
    mom = st["saltrelay-mom-runner-config"][1]
    h.check("- /usr/share/saltrelay/salt/runners\n" in mom["contents"] and
            "saltrelay_config: /etc/saltrelay/up.yaml" in mom["contents"], "MoM config: %r" % mom)

    # Apply in a test root: no package, no units; the daemons' checks are the build's
    root = os.path.join(tmp, "root")
    bindir = os.path.join(root, "bin")
    os.makedirs(bindir)
    for prog in ("up", "down"):
        os.symlink(h.BIN[prog], os.path.join(bindir, "saltrelay-" + prog))
    momdir = os.path.join(root, "salt")
    conf_dir = os.path.join(root, "etc", "saltrelay")
    pillar = {"saltrelay": {"install": False, "services": False, "bindir": bindir, "conf_dir": conf_dir,
                            "group": grp.getgrgid(os.getgid()).gr_name,
                            "mom": {"conf_file": os.path.join(momdir, "master.d", "saltrelay.conf"),
                                    "runner_dir": sl.RUNNERS},
                            # the example's CHANGE-ME is refused by the daemons' check
                            "up": {"redis": "redis://:s3cret@redis-primary.example.net:6379/0"},
                            "down": {"dc1": {"state_dir": os.path.join(root, "state-dc1"),
                                             "redis": "redis://:s3cret@127.0.0.1:6379/0",
                                             "redis_primary": "redis://:s3cret@redis-primary.example.net:6379/0"}}}}
    salt_3008 = sl.Salt("3008")
    rc, res = salt_call(salt_3008, tmp, "state.apply", "saltrelay", "pillar=" + json.dumps(pillar))
    h.check(rc == 0 and all(r["result"] for r in res.values()) and len(res) == 4,
            "apply: %d %r" % (rc, res))
    for name, kind, value in (("up", "up", "master_publish"), ("down-dc1", "down", "publish_bind")):
        path = os.path.join(conf_dir, name + ".yaml")
        h.check(os.stat(path).st_mode & 0o777 == 0o640, "%s mode" % path)
        r = subprocess.run([h.BIN[kind], "--check-config", "-c", path], capture_output=True, timeout=30)
        h.check(r.returncode == 0 and value in r.stdout.decode(), "%s: %r" % (path, r))
    with open(os.path.join(momdir, "master"), "w") as f:
        f.write("root_dir: %s\n" % os.path.join(root, "mom"))
    code = ("import sys, salt.config, salt.loader\n"
            "opts = salt.config.master_config(sys.argv[1])\n"
            "funcs = salt.loader.runner(opts, utils=salt.loader.utils(opts))\n"
            "print(sorted(f for f in funcs if f.startswith('saltrelay.')), opts['saltrelay_config'])\n")
    r = subprocess.run([salt_3008.python, "-c", code, os.path.join(momdir, "master")], capture_output=True,
                       timeout=120, env=salt_3008.env())
    h.check(r.stdout.decode().split("\n")[0] == "['saltrelay.job', 'saltrelay.minions', 'saltrelay.status'] %s" %
            os.path.join(conf_dir, "up.yaml"), "the runner through master.d/saltrelay.conf: %r" % (r,))

    with open(os.path.join(conf_dir, "up.yaml")) as f:
        before = f.read()
    pillar["saltrelay"]["up"]["no_such_key"] = 1
    rc, res = salt_call(salt_3008, tmp, "state.apply", "saltrelay", "pillar=" + json.dumps(pillar))
    bad = [r for r in res.values() if r["__id__"] == "saltrelay-up-config"][0]
    h.check(rc != 0 and bad["result"] is False and "no_such_key" in bad["comment"], "refused: %d %r" % (rc, bad))
    with open(os.path.join(conf_dir, "up.yaml")) as f:
        h.check(f.read() == before, "a refused up.yaml replaced the old one")
    print("test time: %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    h.main(globals())
