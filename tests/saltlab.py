"""saltlab.py -- real Salt for the tests: a salt-master, salt-minions, a
salt-syndic and salt-api as real processes on loopback, each with its own
root_dir, from an installed Salt (when `import salt` works) or from the Salt
source trees in ../shared/salt (SALTRELAY_SALT), extracted once into a cache
under the temp directory and run with Debian's python3 (README there).

Salt's code is never copied into the repository; looseversion.py beside
this file stands in for the one module Debian 12 does not package."""

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile

import harness as h

TREES = {"3008": "salt-8b63e70.tar.xz", "3006": "salt-3006.0-179-8d32b4e.tar.xz"}
RUNNERS = os.path.join(h.REPO, "returner", "runners")
STATUS_DIR = os.path.join(h.BUILD, "returner")  # saltrelay-status, found on PATH by the runner
DEPS = "import zmq, msgpack, tornado, jinja2, yaml, Cryptodome, psutil, packaging, distro, requests"
# the modules of salt.scripts each program's main function lives in
MAINS = {"salt-master": "salt_master", "salt-minion": "salt_minion", "salt-syndic": "salt_syndic",
         "salt": "salt_main", "salt-run": "salt_run", "salt-call": "salt_call", "salt-key": "salt_key",
         "salt-api": "salt_api"}


def _shared_dir():
    """SALTRELAY_SALT, else ../shared/salt beside the checkout, or beside
    the main checkout when this is a git worktree."""
    if os.environ.get("SALTRELAY_SALT"):
        return os.environ["SALTRELAY_SALT"]
    here = os.path.join(os.path.dirname(h.REPO), "shared", "salt")
    r = subprocess.run(["git", "-C", h.REPO, "rev-parse", "--path-format=absolute", "--git-common-dir"],
                       capture_output=True, timeout=30)
    common = r.stdout.decode().strip()
    main = os.path.join(os.path.dirname(os.path.dirname(common)), "shared", "salt") if r.returncode == 0 else here
    return here if os.path.isdir(here) or not os.path.isdir(main) else main


def _python_with(code, candidates):
    for py in candidates:
        if py and os.path.exists(py):
            r = subprocess.run([py, "-c", code], capture_output=True, timeout=60)
            if r.returncode == 0:
                return py, r.stdout.decode().strip()
    return None, None


def _extract(tarball):
    """The tree of TARBALL, extracted once per tarball (size and mtime in the
    name) under the temp directory; parallel tests extract beside it and
    rename, so none sees half a tree."""
    st = os.stat(tarball)
    cache = os.path.join(tempfile.gettempdir(), "saltrelay-salt-cache")
    os.makedirs(cache, exist_ok=True)
    dest = os.path.join(cache, "%s-%d-%d" % (os.path.basename(tarball).split(".tar")[0], st.st_size,
                                             int(st.st_mtime)))
    if not os.path.isdir(dest):
        part = tempfile.mkdtemp(prefix=".part-", dir=cache)
        with tarfile.open(tarball) as tf:
            tf.extractall(part)
        try:
            os.rename(part, dest)
        except OSError:  # another test got there first
            shutil.rmtree(part, ignore_errors=True)
    subdirs = [d for d in os.listdir(dest) if os.path.isdir(os.path.join(dest, d, "salt"))]
    h.check(len(subdirs) == 1, "%s: expected one Salt tree in %s, found %s" % (tarball, dest, subdirs))
    return os.path.join(dest, subdirs[0])


class Salt:
    """How to run one Salt: its python and PYTHONPATH."""

    def __init__(self, tree):
        self.pythonpath = []
        py, version = _python_with("import salt.version; print(salt.version.__version__)",
                                   [sys.executable, "/usr/bin/python3"])
        if py:
            self.python, self.version, self.source = py, version, "installed Salt (%s)" % py
            return
        tarball = os.path.join(_shared_dir(), TREES[tree])
        if not os.path.exists(tarball):
            raise h.Skip("no real Salt: `import salt` fails and %s does not exist" % tarball)
        py, _ = _python_with(DEPS, ["/usr/bin/python3", sys.executable])
        h.check(py, "no python3 with Salt's dependencies (%s): run tests/deps.sh" % DEPS)
        root = _extract(tarball)
        self.python = py
        self.pythonpath = [root, h.HERE]  # h.HERE: looseversion.py
        self.source = "%s from %s" % (os.path.basename(root), tarball)
        r = subprocess.run([py, "-c", "import salt.version; print(salt.version.__version__)"], env=self.env(),
                           capture_output=True, timeout=120)
        h.check(r.returncode == 0, "Salt from %s does not import:\n%s" % (root, r.stderr.decode()[-3000:]))
        self.version = r.stdout.decode().strip()

    def argv(self, program):
        code = "import sys; sys.argv[0] = %r; from salt.scripts import %s as main; main()" % (program, MAINS[program])
        return [self.python, "-c", code]

    def env(self, **extra):
        env = dict(os.environ)
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(self.pythonpath)
        env.update({k: str(v) for k, v in extra.items()})
        env["PATH"] = STATUS_DIR + os.pathsep + env.get("PATH", "")
        return env


def _yaml(cfg):
    """CFG as YAML (JSON is YAML: no quoting rules to get wrong)."""
    return "\n".join("%s: %s" % (k, json.dumps(v)) for k, v in cfg.items()) + "\n"


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _wait_port(proc, port, what, log_path, timeout=90):
    """Until PORT on 127.0.0.1 accepts; fail at once if PROC exits first."""
    def up():
        if proc.poll() is not None:
            raise AssertionError("%s exited (%s):\n%s" % (what, proc.returncode, _read(log_path)[-3000:]))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    h.wait_until(up, timeout, "%s on port %d" % (what, port))


def _stop(proc, sig):
    """Stop PROC and every process it forked (its own session)."""
    if not proc or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


class Daemon:
    """One Salt daemon with its own root_dir and config dir."""

    program = None
    conf_name = None

    def __init__(self, salt, tmp, name, **cfg):
        self.salt, self.name = salt, name
        self.root = os.path.join(tmp, name)
        self.conf_dir = os.path.join(self.root, "conf")
        os.makedirs(self.conf_dir, exist_ok=True)
        self.log_path = os.path.join(self.root, name + ".log")
        self.cfg = dict(root_dir=self.root, user=getpass.getuser(), log_file=self.log_path,
                        log_level_logfile="info")
        self.cfg.update(cfg)
        self.write(self.conf_name, self.cfg)
        self.proc = None

    def write(self, conf_name, cfg):
        with open(os.path.join(self.conf_dir, conf_name), "w") as f:
            f.write(_yaml(cfg))

    def spawn(self, program, out_name):
        """PROGRAM on this config dir, its stdout and stderr to OUT_NAME."""
        out = open(os.path.join(self.root, out_name), "a")
        return spawn_session(self.salt.argv(program) + ["-c", self.conf_dir, "-l", "quiet"], env=self.salt.env(),
                             stdout=out, stderr=out)

    def start(self):
        self.proc = self.spawn(self.program, self.name + ".out")
        return self

    def log(self):
        return _read(self.log_path)

    def wait_log(self, text, timeout, count=1):
        def seen():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited (%s):\n%s" % (self.name, self.proc.returncode, self.log()[-3000:]))
            return self.log().count(text) >= count
        h.wait_until(seen, timeout, "%r in %s's log" % (text, self.name))

    def stop(self, sig=signal.SIGTERM):
        _stop(self.proc, sig)


class Master(Daemon):
    program, conf_name = "salt-master", "master"

    def __init__(self, salt, tmp, name="mom", **cfg):
        self.publish_port, self.ret_port = h.free_port(), h.free_port()
        base = dict(interface="127.0.0.1", publish_port=self.publish_port, ret_port=self.ret_port,
                    auto_accept=True, worker_threads=2)
        base.update(cfg)
        super().__init__(salt, tmp, name, **base)

    def start(self):
        super().start()
        _wait_port(self.proc, self.ret_port, self.name, self.log_path)
        return self

    def tool(self, program, *args, timeout=120, env=None):
        """Run salt, salt-run, salt-key ... against this master: (exit status, stdout, stderr)."""
        r = subprocess.run(self.salt.argv(program) + ["-c", self.conf_dir] + [str(a) for a in args],
                           capture_output=True, timeout=timeout, env=self.salt.env(**(env or {})))
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def run_json(self, *args, env=None, timeout=120):
        """salt-run --out=json ARGS: (exit status, parsed output, stderr)."""
        rc, out, err = self.tool("salt-run", "--out=json", *args, env=env, timeout=timeout)
        try:
            return rc, json.loads(out), err
        except ValueError:
            raise AssertionError("salt-run %s printed no JSON (exit %d):\n%s\n%s" % (args, rc, out, err[-3000:]))

    @property
    def jobs_dir(self):
        return os.path.join(self.root, "var", "cache", "salt", "master", "jobs")


# Short reconnect and auth waits: the tests stop and start daemons.
QUICK = dict(acceptance_wait_time=1, random_reauth_delay=0, recon_default=200, recon_max=1000,
             recon_randomize=False, auth_timeout=10)


class Minion(Daemon):
    program, conf_name = "salt-minion", "minion"

    def __init__(self, salt, tmp, mid, master_port, publish_port, **cfg):
        base = dict(id=mid, master="127.0.0.1", master_port=master_port, publish_port=publish_port, **QUICK)
        base.update(cfg)
        super().__init__(salt, tmp, mid, **base)

    def wait_ready(self, timeout=60):
        self.wait_log("Minion is ready to receive requests!", timeout)
        return self


class Syndic(Master):
    """A lower master and its salt-syndic, one config dir (master + minion
    files, as a syndic reads both; its publish port is the minion file's);
    SID is the syndic's id at the MoM, whose ret and publish ports are given."""

    def __init__(self, salt, tmp, sid, syndic_master_port, publish_port):
        self.syndic_log = os.path.join(tmp, sid, sid + "-syndic.log")
        super().__init__(salt, tmp, sid, id=sid, syndic_master="127.0.0.1", syndic_master_port=syndic_master_port,
                         syndic_log_file=self.syndic_log)
        self.write("minion", dict(id=sid, root_dir=self.root, user=getpass.getuser(), log_level_logfile="info",
                                  master="127.0.0.1", master_port=syndic_master_port, publish_port=publish_port,
                                  **QUICK))
        self.syndic_proc = None

    def start(self):
        super().start()
        self.syndic_proc = self.spawn("salt-syndic", self.name + "-syndic.out")
        return self

    def syndic_log_text(self):
        return _read(self.syndic_log)

    def stop(self, sig=signal.SIGTERM):
        _stop(self.syndic_proc, sig)
        super().stop(sig)


_sessions = []


def spawn_session(argv, **kw):
    """A Salt daemon in a session of its own: it forks workers, and
    kill_sessions ends them all with it."""
    p = h.spawn(argv, start_new_session=True, **kw)
    _sessions.append(p)
    return p


def kill_sessions():
    """SIGKILL every Salt daemon's process group (harness.cleanup kills only
    the processes it started, not the workers they forked)."""
    while _sessions:
        p = _sessions.pop()
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Api:
    """salt-api with rest_cherrypy (Debian's python3-cherrypy3), over plain
    HTTP on loopback, for MASTER (whose config it reads: write its
    rest_cherrypy and external_auth before the master starts)."""

    def __init__(self, master):
        self.master = master
        self.port = master.cfg["rest_cherrypy"]["port"]

    @staticmethod
    def config(port, user):
        """The master config keys: rest_cherrypy on PORT, the runner client
        enabled (netapi_enable_clients, Salt 3006+), and USER allowed the
        saltrelay runner's functions only ('@saltrelay', as
        docs/operations.md suggests) through the test-only `auto` eauth."""
        return dict(rest_cherrypy=dict(host="127.0.0.1", port=port, disable_ssl=True),
                    netapi_enable_clients=["runner"], external_auth=dict(auto={user: ["@saltrelay"]}))

    def start(self):
        m = self.master
        self.proc = m.spawn("salt-api", "salt-api.out")
        _wait_port(self.proc, self.port, "salt-api", m.log_path)
        return self

    def run(self, lowstate, timeout=120):
        """POST /run with LOWSTATE (a list of dicts): (HTTP status, parsed JSON)."""
        import urllib.error
        import urllib.request
        req = urllib.request.Request("http://127.0.0.1:%d/run" % self.port, data=json.dumps(lowstate).encode(),
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
