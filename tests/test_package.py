"""test_package.py -- what an operator installs: the Debian package built by
CPack (files, dependencies, conffiles, binaries that run, lintian, the debug
symbols package, copyright and changelog, maintainer scripts on upgrade, bash
completion, logrotate rules), the systemd units (systemd-analyze verify) and
the daemons' side of Type=notify (READY=1 only after Redis answered,
WATCHDOG=1, STOPPING=1). Needs cmake (cpack), dpkg (dpkg-deb), lintian,
bash-completion, logrotate, util-linux (unshare) and systemd
(systemd-analyze); systemd need not be running."""

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

BUILT = {"saltrelay-up": BIN["up"], "saltrelay-down": BIN["down"],
         "saltrelay-status": os.path.join(BUILD, "returner", "saltrelay-status")}

PROGRAMS = ["saltrelay-up", "saltrelay-down", "saltrelay-status"]
UNITS = ["saltrelay-up.service", "saltrelay-down@.service"]
LIBS = ["libzmq5", "libczmq4", "libhiredis0.14", "libmsgpackc2", "libyaml-0-2", "libsystemd0", "libmicrohttpd12",
        "libc6", "passwd", "procps"]
CONFFILES = ["/etc/logrotate.d/saltrelay", "/etc/saltrelay/down.yaml", "/etc/saltrelay/up.yaml"]
FILES = ["usr/bin/%s" % p for p in PROGRAMS] + [c.lstrip("/") for c in CONFFILES] + [
    "usr/share/doc/saltrelay/copyright", "usr/share/doc/saltrelay/changelog.gz",
    "usr/share/doc/saltrelay/examples/monitoring/prometheus.yml",
    "usr/share/doc/saltrelay/examples/monitoring/saltrelay-rules.yml",
    "usr/share/doc/saltrelay/examples/monitoring/saltrelay-dashboard.json",
    "lib/systemd/system/saltrelay-up.service", "lib/systemd/system/saltrelay-down@.service",
    "usr/lib/sysusers.d/saltrelay.conf",
    "usr/share/man/man8/saltrelay-up.8.gz", "usr/share/man/man8/saltrelay-down.8.gz",
    "usr/share/man/man1/saltrelay-status.1.gz",
    "usr/share/doc/saltrelay/examples/minion-flat.conf", "usr/share/doc/saltrelay/examples/syndic.conf",
    "usr/share/doc/saltrelay/examples/mom.conf", "usr/share/doc/saltrelay/examples/redis-replica.conf",
    "usr/share/doc/saltrelay/examples/redis-tls.conf", "usr/share/doc/saltrelay/examples/redis-tls-replica.conf",
    "usr/share/doc/saltrelay/examples/redis-users.acl",
    "usr/share/doc/saltrelay/examples/stunnel-redis.conf",
    "usr/share/saltrelay/salt/runners/saltrelay.py", "usr/share/doc/saltrelay/examples/pillar/saltrelay.sls",
] + ["usr/share/saltrelay/salt/states/saltrelay/%s" % f for f in
     ["init.sls", "package.sls", "config.sls", "mom.sls", "services.sls", "map.jinja", "files/relay.yaml.jinja"]
] + ["usr/share/doc/saltrelay/%s.md" % d for d in
     ["architecture", "deployment", "migration-from-syndic", "failure-semantics", "security"]] + [
    "usr/share/bash-completion/completions/%s" % p for p in PROGRAMS]
MAINTAINER = "saltrelay maintainers <maintainers@saltrelay.example.org>"


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, timeout=kw.pop("timeout", 300), **kw)
    check(r.returncode == 0, "%s exited %d:\n%s%s" % (" ".join(argv), r.returncode,
                                                       r.stdout.decode(errors="replace")[-3000:],
                                                       r.stderr.decode(errors="replace")[-3000:]))
    return r.stdout.decode(errors="replace")


PACKAGES = os.path.join(BUILD, "test-packages")  # test_build_packages' output, read by the others


def test_build_packages(tmp):
    """cpack the build dir, once for every test of the package (a ctest
    fixture): the .deb and the debug symbols .ddeb, in PACKAGES."""
    shutil.rmtree(PACKAGES, ignore_errors=True)
    run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", PACKAGES], timeout=600)
    build_debs(tmp)


def build_debs(tmp):
    """The .deb's and the .ddeb's paths (test_build_packages made them)."""
    debs = glob.glob(os.path.join(PACKAGES, "*.deb"))
    ddebs = glob.glob(os.path.join(PACKAGES, "*.ddeb"))
    check(len(debs) == 1 and len(ddebs) == 1, "expected one .deb and one .ddeb in %s (test_build_packages makes "
          "them), got %s" % (PACKAGES, debs + ddebs))
    return debs[0], ddebs[0]


def build_deb(tmp):
    return build_debs(tmp)[0]


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
    check(control_field(info, "Maintainer") == MAINTAINER, "Maintainer: %s" % control_field(info, "Maintainer"))
    conffiles = run(["dpkg-deb", "-I", deb, "conffiles"]).split()
    check(sorted(conffiles) == CONFFILES, "conffiles: %s" % conffiles)
    for f in conffiles:
        check(os.path.isfile(root + f), "conffile %s is not in the package" % f)
    postinst = run(["dpkg-deb", "-I", deb, "postinst"])
    check("useradd --system" in postinst and "saltrelay" in postinst, "postinst creates no system user")
    run(["sh", "-n", "-c", postinst])
    for prog in PROGRAMS:
        out = run([os.path.join(root, "usr", "bin", prog), "--version"], timeout=30)
        check(out.strip() == "%s %s" % (prog, version), "%s --version printed %r, package is %s" %
              (prog, out, version))
    # the packaged example configs pass the packaged binaries' own check once
    # their placeholder passwords are filled in, and not before
    for kind in ("up", "down"):
        prog = os.path.join(root, "usr", "bin", "saltrelay-" + kind)
        example = os.path.join(root, "etc", "saltrelay", kind + ".yaml")
        r = subprocess.run([prog, "--check-config", "-c", example], capture_output=True, timeout=30)
        check(r.returncode == 2 and b"'CHANGE-ME' is a placeholder" in r.stderr, "%s: %r" % (example, r))
        with open(example) as f:
            text = f.read().replace("CHANGE-ME", "s3cret")
        with open(os.path.join(tmp, kind + ".yaml"), "w") as f:
            f.write(re.sub(r"(?m)^state_dir: .*$", "state_dir: " + os.path.join(tmp, "state"), text))
        run([prog, "--check-config", "-c", os.path.join(tmp, kind + ".yaml")], timeout=30)
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


def test_lintian(tmp):
    """lintian (Debian 12's) finds no error and no warning in the package
    nor in its debug symbols package. The informational tags left are
    named in README.md ("Building the Debian package") with their reason."""
    check(shutil.which("lintian"), "lintian missing: apt-get install lintian (tests/deps.sh)")
    deb, ddeb = build_debs(tmp)
    r = subprocess.run(["lintian", "--info", "--display-info", "--pedantic", deb, ddeb], capture_output=True,
                       timeout=600)
    out = r.stdout.decode(errors="replace")
    tags = [l for l in out.splitlines() if re.match(r"[EWIPX]: \S+: \S", l)]
    print("lintian:\n" + "\n".join(tags))
    bad = [l for l in tags if l[0] in "EW"]
    check(not bad, "lintian errors and warnings:\n" + "\n".join(bad))
    check(r.returncode == 0, "lintian exited %d:\n%s%s" % (r.returncode, out, r.stderr.decode(errors="replace")))
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    for tag in sorted({l.split()[2] for l in tags}):
        check(tag in readme, "lintian tag %s is not explained in README.md" % tag)


def elf_sections(path):
    return set(re.findall(r"\]\s+(\.\S+)", run(["readelf", "-SW", path])))


def test_debug_symbols(tmp):
    """The packaged binaries are stripped; the saltrelay-dbgsym .ddeb holds
    each one's debug information under its build id, where gdb looks."""
    deb, ddeb = build_debs(tmp)
    root, dbg = os.path.join(tmp, "root"), os.path.join(tmp, "dbg")
    run(["dpkg-deb", "-x", deb, root])
    run(["dpkg-deb", "-x", ddeb, dbg])
    info = run(["dpkg-deb", "-f", ddeb])
    check(re.search(r"(?m)^Depends: saltrelay \(= %s\)$" % re.escape(run(["dpkg-deb", "-f", deb, "Version"]).strip()),
                    info), "the dbgsym package does not depend on this very saltrelay:\n" + info)
    for prog in PROGRAMS:
        binary = os.path.join(root, "usr", "bin", prog)
        sections = elf_sections(binary)
        check(not sections & {".debug_info", ".symtab", ".comment"}, "%s is not stripped: %s" % (prog, sorted(sections)))
        build_id = re.search(r"Build ID: ([0-9a-f]+)", run(["readelf", "-n", binary])).group(1)
        debug = os.path.join(dbg, "usr", "lib", "debug", ".build-id", build_id[:2], build_id[2:] + ".debug")
        check(os.path.isfile(debug), "no debug file for %s (build id %s) in the .ddeb" % (prog, build_id))
        check(".debug_info" in elf_sections(debug), "%s has no .debug_info" % debug)
        check(re.search(r"Build ID: %s" % build_id, run(["readelf", "-n", debug])), "%s: another build id" % debug)


def test_changelog_and_copyright(tmp):
    """LICENSE is Apache-2.0's text; the copyright file is machine-readable
    (DEP-5) and says Apache-2.0; the changelog's newest entry is this
    version, by the package's Maintainer."""
    with open(os.path.join(REPO, "LICENSE")) as f, open("/usr/share/common-licenses/Apache-2.0") as g:
        check(f.read() == g.read(), "LICENSE is not the Apache License 2.0's text")
    with open(os.path.join(REPO, "systemd", "deb", "copyright")) as f:
        text = f.read()
    check(text.startswith("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"),
          "copyright: not DEP-5")
    check(re.search(r"(?m)^Files: \*\n(Copyright: .+\n)License: Apache-2.0$", text), "copyright: Files: * stanza")
    check("/usr/share/common-licenses/Apache-2.0" in text, "copyright does not point at the full license text")
    changelog = os.path.join(REPO, "systemd", "deb", "changelog")
    version = run(["dpkg-parsechangelog", "-l", changelog, "-S", "Version"]).strip()
    out = run([BUILT["saltrelay-up"], "--version"])
    check(out.split() == ["saltrelay-up", version], "the changelog's newest entry is %s, the program says %r" %
          (version, out))
    by = run(["dpkg-parsechangelog", "-l", changelog, "-S", "Maintainer"]).strip()
    check(by == MAINTAINER, "changelog entry by %r, package Maintainer %r" % (by, MAINTAINER))


def fake_tools(tmp, exists):
    """A PATH of stand-ins that record their argv in TMP/calls: getent (says
    the saltrelay user and group exist when EXISTS), groupadd, useradd,
    chown, chmod, systemctl, deb-systemd-invoke."""
    d = os.path.join(tmp, "bin")
    os.makedirs(d)
    calls = os.path.join(tmp, "calls")
    for tool in ("getent", "groupadd", "useradd", "chown", "chmod", "systemctl", "deb-systemd-invoke"):
        with open(os.path.join(d, tool), "w") as f:
            f.write("#!/bin/sh\necho \"%s $*\" >> %s\n%s\n" %
                    (tool, calls, "exit %d" % (0 if exists else 2) if tool == "getent" else "exit 0"))
        os.chmod(os.path.join(d, tool), 0o755)
    return d, calls


def run_maintainer_script(tmp, name, args, systemd=True, exists=True):
    """systemd/deb/NAME ARGS with fake tools; its calls and stderr. The test
    points the script's /run/systemd/system (systemd running) and
    /etc/saltrelay at directories of its own."""
    sub = os.path.join(tmp, "%s-%s-%d" % (name, "-".join(a for a in args if a) or "none", systemd))
    os.makedirs(sub)
    bindir, calls = fake_tools(sub, exists)
    with open(os.path.join(REPO, "systemd", "deb", name)) as f:
        script = f.read()
    run_dir = os.path.join(sub, "run-systemd-system")
    if systemd:
        os.makedirs(run_dir)
    os.makedirs(os.path.join(sub, "etc-saltrelay"))
    check("/run/systemd/system" in script or name == "postrm", "%s does not look for a running systemd" % name)
    script = script.replace("/run/systemd/system", run_dir).replace("/etc/saltrelay", os.path.join(sub, "etc-saltrelay"))
    path = os.path.join(sub, name)
    with open(path, "w") as f:
        f.write(script)
    r = subprocess.run(["sh", "-e", path] + list(args), capture_output=True, timeout=30,
                       env=dict(os.environ, PATH=bindir + ":" + os.environ["PATH"]))
    check(r.returncode == 0, "%s %s exited %d: %s" % (name, args, r.returncode, r.stderr.decode()))
    text = open(calls).read() if os.path.exists(calls) else ""
    return text.splitlines(), r.stderr.decode()


def test_maintainer_scripts(tmp):
    """What docs/deployment.md ("Upgrading") says the package does: a first
    install creates the user and starts nothing; an upgrade restarts the
    saltrelay-down instances that run (try-restart) and never saltrelay-up,
    and says so; removal stops both; an upgrade's prerm stops nothing."""
    calls, err = run_maintainer_script(tmp, "postinst", ["configure", ""], exists=False)
    check("groupadd --system saltrelay" in calls and any(c.startswith("useradd --system") for c in calls),
          "a first install creates no user: %s" % calls)
    check(any(c.startswith("systemctl") and "daemon-reload" in c for c in calls), "no daemon-reload: %s" % calls)
    check(not [c for c in calls if c.startswith(("systemctl", "deb-systemd-invoke")) and "daemon-reload" not in c],
          "a first install starts: %s" % calls)
    calls, err = run_maintainer_script(tmp, "postinst", ["configure", "0.0.9"])
    restarts = [c for c in calls if c.startswith("deb-systemd-invoke") or (c.startswith("systemctl") and
                                                                            "daemon-reload" not in c)]
    check(restarts == ["deb-systemd-invoke try-restart saltrelay-down@*.service"],
          "on upgrade: %s (expected a try-restart of the saltrelay-down instances alone)" % restarts)
    check(not any(c.startswith(("groupadd", "useradd")) for c in calls), "the user exists: %s" % calls)
    check("saltrelay-up" in err and "Upgrading" in err, "the upgrade says nothing about saltrelay-up: %r" % err)
    calls, _ = run_maintainer_script(tmp, "postinst", ["configure", "0.0.9"], systemd=False)
    check(not [c for c in calls if c.startswith(("systemctl", "deb-systemd-invoke"))], "no systemd: %s" % calls)
    calls, _ = run_maintainer_script(tmp, "prerm", ["remove"])
    check(calls == ["deb-systemd-invoke stop saltrelay-up.service saltrelay-down@*.service"], "remove: %s" % calls)
    calls, _ = run_maintainer_script(tmp, "prerm", ["upgrade", "0.2.0"])
    check(calls == [], "an upgrade's prerm: %s" % calls)
    with open(os.path.join(REPO, "docs", "deployment.md")) as f:
        notes = f.read().split("\n## Upgrading\n")
    check(len(notes) == 2, "docs/deployment.md has no Upgrading section")
    notes = notes[1].split("\n## ")[0]
    for what in ("try-restart", "systemctl restart saltrelay-up", "every saltrelay-down"):
        check(what in notes, "deployment.md's Upgrading section does not say %r" % what)


def help_words(prog):
    """Options and subcommands PROG's --help lists."""
    out = run([BUILT[prog], "--help"])
    opts = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", out))
    cmds = set(re.findall(r"(?m)^  ([a-z]+) \[?[A-Z]+\]? ", out))
    return opts | cmds


def complete(root, line, cwd):
    """The completions bash-completion offers for LINE (ending where the
    cursor is), loading the package's completion files as for a login shell."""
    script = ('source /usr/share/bash-completion/bash_completion\n'
              'COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$COMP_LINE"\n'
              '[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")\n'
              'COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n'
              '__load_completion "${COMP_WORDS[0]}" || exit 3\n'
              'spec=$(complete -p "${COMP_WORDS[0]}") || exit 4\n'
              'fn=$(sed -n "s/.*-F \\([^ ]*\\).*/\\1/p" <<< "$spec")\n'
              '"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = dict(os.environ, XDG_DATA_DIRS=os.path.join(root, "usr", "share"), BASH_COMPLETION_USER_DIR="/nonexistent")
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "complete", line], capture_output=True,
                       timeout=30, env=env, cwd=cwd)
    check(r.returncode == 0, "completing %r: exit %d %s" % (line, r.returncode, r.stderr.decode()))
    return set(r.stdout.decode().split())


def test_bash_completion(tmp):
    """bash-completion finds the package's completion for each command under
    its name and offers every option and subcommand its --help lists; -c
    completes YAML files and directories."""
    check(os.path.isfile("/usr/share/bash-completion/bash_completion"), "bash-completion missing (tests/deps.sh)")
    _, root = unpack(tmp)
    cwd = os.path.join(tmp, "cwd")
    os.makedirs(os.path.join(cwd, "confdir"))
    for name in ("dc1.yaml", "notes.txt"):
        open(os.path.join(cwd, name), "w").close()
    for prog in PROGRAMS:
        want = help_words(prog)
        got = complete(root, prog + " ", cwd)
        check(want <= got, "%s: completion lacks %s of --help (offers %s)" % (prog, sorted(want - got), sorted(got)))
        check(got <= want, "%s: completion offers %s, not in --help" % (prog, sorted(got - want)))
        got = complete(root, prog + " --c", cwd)
        check(got == {w for w in want if w.startswith("--c")}, "%s --c: %s" % (prog, sorted(got)))
        got = complete(root, prog + " -c ", cwd)
        check(got == {"dc1.yaml", "confdir"}, "%s -c: %s" % (prog, sorted(got)))
        print("%s: %s" % (prog, " ".join(sorted(want))))


def test_logrotate(tmp):
    """The package's logrotate rules, run by logrotate on a saltrelay-up
    logging to a log_file: the file is rotated, the postrotate's SIGHUP
    makes the daemon reopen it, and its next lines go to the new file.
    The daemon and logrotate share a PID namespace of their own, so the
    postrotate's pkill reaches no other saltrelay process on this machine.
    The test points the rules at its own directory and, as the saltrelay
    user need not exist here, at root."""
    for tool in ("logrotate", "unshare", "nsenter"):
        check(shutil.which(tool), "%s missing (tests/deps.sh)" % tool)
    logdir = os.path.join(tmp, "log")
    os.makedirs(logdir, mode=0o750)
    with open(os.path.join(REPO, "systemd", "saltrelay.logrotate")) as f:
        rules = f.read()
    check("/var/log/saltrelay/*.log {" in rules and "su saltrelay saltrelay" in rules, "rules: %s" % rules)
    rules = rules.replace("/var/log/saltrelay/", logdir + "/").replace("saltrelay saltrelay", "root root")
    conf = os.path.join(tmp, "logrotate.conf")
    with open(conf, "w") as f:
        f.write(rules)
    redis = harness.Redis(tmp)
    log = os.path.join(logdir, "up.log")
    d = harness.Daemon("up", tmp, "up", cluster="t", redis=redis.url, log_file=log,
                       master_publish="tcp://127.0.0.1:%d" % harness.free_port(),
                       master_ret="tcp://127.0.0.1:%d" % harness.free_port())
    # sh is the namespace's pid 1 (the kernel drops signals to a pid 1 without handlers)
    ns = harness.spawn(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c",
                        "%s -c %s & wait" % (BIN["up"], d.cfg_path)])
    harness.wait_until(lambda: os.path.exists(log) and harness.READY in open(log).read(), 30, "saltrelay-up ready")
    with open("/proc/%d/task/%d/children" % (ns.pid, ns.pid)) as f:
        init = int(f.read().split()[0])  # sh: unshare itself stays outside the new PID namespace
    with open("/proc/%d/status" % init) as f:
        nspid = re.search(r"(?m)^NSpid:\s+(.*)$", f.read()).group(1).split()
    check(nspid[-1] == "1", "sh is not pid 1 of a namespace of its own: NSpid %s" % nspid)
    r = subprocess.run(["nsenter", "--target", str(init), "--pid", "--mount", "logrotate", "-f", "-s",
                        os.path.join(tmp, "logrotate.state"), conf], capture_output=True, timeout=60)
    check(r.returncode == 0, "logrotate exited %d: %s" % (r.returncode, r.stderr.decode()))
    rotated = log + ".1"
    check(os.path.exists(rotated) and harness.READY in open(rotated).read(), "not rotated: %s" % os.listdir(logdir))
    harness.wait_until(lambda: os.path.exists(log) and "log file reopened" in open(log).read(), 10,
                       "the SIGHUP's reopen logged in the new file")
    check(oct(os.stat(log).st_mode & 0o777) == "0o640", "new log file mode %o" % os.stat(log).st_mode)
    check("log file reopened" not in open(rotated).read(), "the reopen went to the rotated file")
    check(ns.poll() is None, "saltrelay-up died in the rotation")
    with open("/proc/%d/task/%d/children" % (init, init)) as f:
        os.kill(int(f.read().split()[0]), signal.SIGTERM)  # saltrelay-up: sh's wait, then unshare, return
    check(ns.wait(timeout=60) == 0, "saltrelay-up did not stop cleanly")
    check("info: stopped" in open(log).read(), "saltrelay-up's last lines are not in the new file")


harness.main(globals())
