"""test_package.py -- what an operator installs: the Debian package built by
CPack (files, dependencies, conffiles, binaries that run), the systemd units
(systemd-analyze verify) and the daemons' side of Type=notify (READY=1 only
after Redis answered, WATCHDOG=1, STOPPING=1). Needs cmake (cpack), dpkg
(dpkg-deb) and systemd (systemd-analyze); systemd need not be running."""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, BUILD, REPO, check  # noqa: E402

PROGRAMS = ["saltrelay-up", "saltrelay-down", "saltrelay-status"]
UNITS = ["saltrelay-up.service", "saltrelay-down@.service"]
LIBS = ["libzmq5", "libczmq4", "libhiredis0.14", "libmsgpackc2", "libyaml-0-2", "libsystemd0", "libmicrohttpd12"]
FILES = ["usr/bin/%s" % p for p in PROGRAMS] + [
    "etc/saltrelay/up.yaml", "etc/saltrelay/down.yaml",
    "lib/systemd/system/saltrelay-up.service", "lib/systemd/system/saltrelay-down@.service",
    "usr/lib/sysusers.d/saltrelay.conf",
    "usr/share/man/man8/saltrelay-up.8.gz", "usr/share/man/man8/saltrelay-down.8.gz",
    "usr/share/man/man1/saltrelay-status.1.gz",
    "usr/share/doc/saltrelay/examples/minion-flat.conf", "usr/share/doc/saltrelay/examples/syndic.conf",
    "usr/share/doc/saltrelay/examples/mom.conf", "usr/share/doc/saltrelay/examples/redis-replica.conf",
    "usr/share/doc/saltrelay/examples/redis-tls.conf", "usr/share/doc/saltrelay/examples/stunnel-redis.conf",
    "usr/share/saltrelay/salt/runners/saltrelay.py", "usr/share/doc/saltrelay/examples/pillar/saltrelay.sls",
] + ["usr/share/saltrelay/salt/states/saltrelay/%s" % f for f in
     ["init.sls", "package.sls", "config.sls", "mom.sls", "services.sls", "map.jinja", "files/relay.yaml.jinja"]
] + ["usr/share/doc/saltrelay/%s.md" % d for d in
     ["architecture", "deployment", "migration-from-syndic", "failure-semantics", "security"]]


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, timeout=kw.pop("timeout", 300), **kw)
    check(r.returncode == 0, "%s exited %d:\n%s%s" % (" ".join(argv), r.returncode,
                                                       r.stdout.decode(errors="replace")[-3000:],
                                                       r.stderr.decode(errors="replace")[-3000:]))
    return r.stdout.decode(errors="replace")


def build_deb(tmp):
    """cpack the build dir into TMP/pkg; returns the .deb's path."""
    out = os.path.join(tmp, "pkg")
    run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", out], timeout=600)
    debs = glob.glob(os.path.join(out, "*.deb"))
    check(len(debs) == 1, "expected one .deb in %s, got %s" % (out, debs))
    return debs[0]


def unpack(tmp):
    deb = build_deb(tmp)
    root = os.path.join(tmp, "root")
    run(["dpkg-deb", "-x", deb, root])
    return deb, root


def control_field(info, name):
    m = re.search(r"(?m)^ %s: (.*)$" % re.escape(name), info)
    check(m, "no %s field in dpkg-deb -I output:\n%s" % (name, info))
    return m.group(1)


def test_deb_contents(tmp):
    deb, root = unpack(tmp)
    for f in FILES:
        check(os.path.isfile(os.path.join(root, f)), "%s is not in the package" % f)
    info = run(["dpkg-deb", "-I", deb])
    version = control_field(info, "Version")
    depends = [d.strip().split(" ")[0] for d in control_field(info, "Depends").split(",")]
    for lib in LIBS:
        check(lib in depends, "Depends lacks %s: %s" % (lib, depends))
    conffiles = run(["dpkg-deb", "-I", deb, "conffiles"]).split()
    check(sorted(conffiles) == ["/etc/saltrelay/down.yaml", "/etc/saltrelay/up.yaml"],
          "conffiles: %s" % conffiles)
    for f in conffiles:
        check(os.path.isfile(root + f), "conffile %s is not in the package" % f)
    postinst = run(["dpkg-deb", "-I", deb, "postinst"])
    check("useradd --system" in postinst and "saltrelay" in postinst, "postinst creates no system user")
    run(["sh", "-n", "-c", postinst])
    for prog in PROGRAMS:
        out = run([os.path.join(root, "usr", "bin", prog), "--version"], timeout=30)
        check(out.strip() == "%s %s" % (prog, version), "%s --version printed %r, package is %s" %
              (prog, out, version))
    # the packaged example configs pass the packaged binaries' own check
    for kind in ("up", "down"):
        run([os.path.join(root, "usr", "bin", "saltrelay-" + kind), "--check-config", "-c",
             os.path.join(root, "etc", "saltrelay", kind + ".yaml")], timeout=30)
    # the MoM config example loads the runner from where the package puts it
    with open(os.path.join(REPO, "conf", "salt", "mom.conf")) as f:
        dirs = re.findall(r"(?m)^runner_dirs:\n((?:  - .*\n)+)", f.read())
    check(dirs and [d[4:] for d in dirs[0].splitlines()] == ["/usr/share/saltrelay/salt/runners"],
          "conf/salt/mom.conf: runner_dirs %r" % dirs)
    check(os.path.isfile(os.path.join(root, "usr/share/saltrelay/salt/runners/saltrelay.py")), "runner not packaged")
    # units start what the package installs
    for unit in UNITS:
        with open(os.path.join(root, "lib", "systemd", "system", unit)) as f:
            execs = re.findall(r"(?m)^ExecStart=(\S+)", f.read())
        check(len(execs) == 1 and os.path.isfile(root + execs[0]), "%s: ExecStart %s not in the package" %
              (unit, execs))


def verify_units(tmp, unit_dir, bin_dir, man_dir):
    """systemd-analyze verify copies of the units whose ExecStart names BIN_DIR."""
    d = os.path.join(tmp, "units")
    os.makedirs(d, exist_ok=True)
    for unit in UNITS:
        with open(os.path.join(unit_dir, unit)) as f:
            text = f.read()
        text = re.sub(r"(?m)^(ExecStart=)\S*/(saltrelay-\w+)", lambda m: m.group(1) + os.path.join(bin_dir, m.group(2)),
                      text)
        with open(os.path.join(d, unit), "w") as f:
            f.write(text)
    os.symlink(os.path.join(d, "saltrelay-down@.service"), os.path.join(d, "saltrelay-down@dc1.service"))
    env = dict(os.environ, MANPATH=man_dir, SYSTEMD_LOG_LEVEL="notice")
    # verify opens each Documentation=man: page with man(1) (package man-db);
    # without it, it can only skip that check
    man = [] if shutil.which("man") else ["--man=no"]
    if man:
        print("note: man (man-db) not installed: the units' man: links are not checked")
    for unit in ("saltrelay-up.service", "saltrelay-down@dc1.service"):
        r = subprocess.run(["systemd-analyze", "verify"] + man + [os.path.join(d, unit)], capture_output=True,
                           timeout=120, env=env, cwd=d)
        msg = (r.stdout + r.stderr).decode(errors="replace").strip()
        check(r.returncode == 0 and not msg, "systemd-analyze verify %s (exit %d):\n%s" % (unit, r.returncode, msg))


def test_units_verify(tmp):
    """The packaged units pass systemd-analyze verify (their man pages found in
    the package, ExecStart pointed at the unpacked binaries)."""
    check(shutil.which("systemd-analyze"), "systemd-analyze missing: apt-get install systemd")
    _, root = unpack(tmp)
    verify_units(tmp, os.path.join(root, "lib", "systemd", "system"), os.path.join(root, "usr", "bin"),
                 os.path.join(root, "usr", "share", "man"))


def test_units_contract(tmp):
    """What the issue asks of the units, and that they agree with conf/."""
    units = {}
    for unit in UNITS:
        with open(os.path.join(REPO, "systemd", unit)) as f:
            units[unit] = f.read()
    for unit, text in units.items():
        for line in ["Type=notify", "Restart=on-failure", "User=saltrelay", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                     "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet=",
                     "ExecReload=/bin/kill -HUP $MAINPID", "RestartPreventExitStatus=2"]:
            check(re.search(r"(?m)^%s$" % re.escape(line), text), "%s lacks %r" % (unit, line))
        check(re.search(r"(?m)^WatchdogSec=\d+s$", text), "%s sets no WatchdogSec" % unit)
    down = units["saltrelay-down@.service"]
    check(re.search(r"(?m)^StateDirectory=saltrelay/%i$", down), "down unit: StateDirectory=saltrelay/%i")
    check("-c /etc/saltrelay/down-%i.yaml" in down, "down unit does not read /etc/saltrelay/down-%i.yaml")
    check("-c /etc/saltrelay/up.yaml" in units["saltrelay-up.service"], "up unit does not read up.yaml")
    # the template's state_dir is where StateDirectory= puts the instance's state
    with open(os.path.join(REPO, "conf", "down.yaml")) as f:
        conf = dict(re.findall(r"(?m)^([a-z_]+): (\S+)$", f.read()))
    check(conf["state_dir"] == "/var/lib/saltrelay/" + conf["datacenter"],
          "conf/down.yaml: state_dir %s is not /var/lib/saltrelay/<datacenter>" % conf["state_dir"])


class Notify:
    """A NOTIFY_SOCKET like systemd's: collects the daemon's sd_notify datagrams."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.got = []

    def poll(self):
        try:
            while True:
                self.got.extend(self.sock.recv(4096).decode().split("\n"))
        except (socket.timeout, BlockingIOError):
            pass
        return self.got

    def wait(self, what, timeout):
        harness.wait_until(lambda: what in self.poll(), timeout, "%s on the notify socket (got %s)" %
                           (what, sorted(set(self.got))))


def test_sd_notify(tmp):
    """READY=1 only once Redis answers; WATCHDOG=1 while running; STOPPING=1
    on SIGTERM, then exit 0 -- what Type=notify and WatchdogSec rely on."""
    port = harness.free_port()
    for kind in ("up", "down"):
        ktmp = os.path.join(tmp, kind)
        os.makedirs(ktmp)
        cfg = {"cluster": "t", "redis": "redis://127.0.0.1:%d" % port}
        if kind == "up":
            cfg.update(master_publish="tcp://127.0.0.1:%d" % harness.free_port(),
                       master_ret="tcp://127.0.0.1:%d" % harness.free_port())
        else:
            cfg.update(datacenter="dc1", publish_bind="tcp://127.0.0.1:%d" % harness.free_port(),
                       ret_bind="tcp://127.0.0.1:%d" % harness.free_port(), state_dir=os.path.join(ktmp, "state"))
            os.makedirs(cfg["state_dir"])
        d = harness.Daemon(kind, ktmp, kind, **cfg)
        n = Notify(ktmp)
        env = dict(os.environ, NOTIFY_SOCKET=n.path, WATCHDOG_USEC="2000000")
        d._log = open(d.log_path, "a")
        d.proc = harness.spawn([BIN[kind], "-c", d.cfg_path], stdout=d._log, stderr=d._log, env=env)
        time.sleep(2)  # Redis is not there yet: no READY
        check("READY=1" not in n.poll(), "saltrelay-%s sent READY=1 before Redis answered" % kind)
        check(d.proc.poll() is None, "saltrelay-%s exited while Redis was down:\n%s" % (kind, d.log()))
        redis = harness.Redis(ktmp, "redis", port=port)
        n.wait("READY=1", 20)
        n.got.clear()
        n.wait("WATCHDOG=1", 5)
        n.got.clear()
        n.wait("WATCHDOG=1", 5)  # keeps coming
        d.proc.send_signal(signal.SIGTERM)
        n.wait("STOPPING=1", 10)
        check(d.proc.wait(timeout=60) == 0, "saltrelay-%s did not exit 0 on SIGTERM:\n%s" % (kind, d.log()))
        redis.stop()


harness.main(globals())
