"""test_conf.py -- conf/ and the man pages match the config loader.

Every key of runtime/config.c's key_table appears in conf/up.yaml or
conf/down.yaml (for the program that accepts it) and nothing else does; every
documented default is the loader's default; the example files pass
--check-config; the man pages name every option of --help and every key."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, REPO, check  # noqa: E402

CONF = {"up": os.path.join(REPO, "conf", "up.yaml"), "down": os.path.join(REPO, "conf", "down.yaml")}
MAN = {"up": os.path.join(REPO, "docs", "man", "saltrelay-up.8"),
       "down": os.path.join(REPO, "docs", "man", "saltrelay-down.8")}
# "key: value" (set) or "#key: value" (optional, shown at its default); prose is "# text"
KEY_LINE = re.compile(r"^(#?)([a-z][a-z0-9_]*):(?:\s+(.*?))?\s*$")


def conf_keys(path):
    """{key: (commented, value)} in file order, value with quotes removed."""
    keys = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            m = KEY_LINE.match(line)
            if not m:
                continue
            name = m.group(2)
            check(name not in keys, "%s:%d: key %s documented twice" % (path, n, name))
            keys[name] = (m.group(1) == "#", unquote(m.group(3) or ""))
    return keys


def unquote(v):
    return v[1:-1] if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'" else v


def filled(kind, path, tmp):
    """A copy of the shipped example PATH with its placeholders filled in (the
    example itself is refused: test_shipped_examples_refused) and, for
    saltrelay-down, a state_dir this test may write."""
    with open(path) as f:
        text = f.read().replace("CHANGE-ME", "s3cret")
    if kind == "down":
        text = re.sub(r"(?m)^state_dir: .*$", "state_dir: %s" % os.path.join(tmp, "state"), text)
    copy = os.path.join(tmp, "%s-filled.yaml" % kind)
    with open(copy, "w") as f:
        f.write(text)
    return copy


def check_config(kind, path):
    """Run --check-config; returns {key: printed value}."""
    r = subprocess.run([BIN[kind], "--check-config", "-c", path], capture_output=True, timeout=30)
    out, err = r.stdout.decode(), r.stderr.decode()
    check(r.returncode == 0, "saltrelay-%s --check-config -c %s exited %d: %s" % (kind, path, r.returncode, err))
    printed = {}
    for line in out.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"^([a-z][a-z0-9_]*): ?(.*)$", line)
        check(m, "unexpected --check-config line %r" % line)
        printed[m.group(1)] = unquote(m.group(2))
    return printed


def same_value(documented, printed):
    if documented == printed:
        return True
    try:
        return float(documented) == float(printed)
    except ValueError:
        return False


def test_every_loader_key_in_conf(tmp):
    for kind, path in sorted(CONF.items()):
        documented = set(conf_keys(path))
        loader = set(check_config(kind, filled(kind, path, tmp)))
        missing = sorted(loader - documented)
        extra = sorted(documented - loader)
        check(not missing, "keys of saltrelay-%s missing from %s: %s" % (kind, path, ", ".join(missing)))
        check(not extra, "keys in %s that saltrelay-%s does not have: %s" % (path, kind, ", ".join(extra)))


def test_documented_defaults(tmp):
    """The example as shipped (optional keys commented) and with every key set
    to its documented default give the same effective config, equal to the
    documented values."""
    for kind, path in sorted(CONF.items()):
        keys = conf_keys(path)
        path = filled(kind, path, tmp)
        as_shipped = check_config(kind, path)
        uncommented = os.path.join(tmp, kind + "-all.yaml")
        with open(path) as src, open(uncommented, "w") as dst:
            for line in src:
                dst.write(line[1:] if KEY_LINE.match(line) and line.startswith("#") else line)
        all_set = check_config(kind, uncommented)
        check(as_shipped == all_set, "saltrelay-%s: documented defaults differ from the built-in ones:\n"
              "shipped: %s\nall set: %s" % (kind, as_shipped, all_set))
        for name, (commented, value) in keys.items():
            if name in ("redis", "redis_primary", "state_dir"):
                continue  # printed with the password masked; state_dir is this test's
            check(same_value(value, as_shipped[name]),
                  "%s: %s documented as %r, saltrelay-%s uses %r" % (path, name, value, kind, as_shipped[name]))


def test_up_and_down_share_common_keys(tmp):
    """A key both programs accept is documented with the same default in both files."""
    up, down = conf_keys(CONF["up"]), conf_keys(CONF["down"])
    for name in sorted(set(up) & set(down)):
        if up[name][0] and down[name][0]:
            check(up[name][1] == down[name][1], "%s: default %r in up.yaml but %r in down.yaml" %
                  (name, up[name][1], down[name][1]))


def roff_text(path):
    with open(path) as f:
        text = f.read()
    return text.replace("\\-", "-").replace("\\(em", "-").replace("\\fB", "").replace("\\fI", "") \
        .replace("\\fR", "").replace("\\fP", "")


def test_man_pages_match_help(tmp):
    for kind, man in sorted(MAN.items()):
        check(os.path.exists(man), "missing man page %s" % man)
        text = roff_text(man)
        r = subprocess.run([BIN[kind], "--help"], capture_output=True, timeout=30)
        check(r.returncode == 0, "saltrelay-%s --help exited %d" % (kind, r.returncode))
        options = re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", r.stdout.decode())
        check("--check-config" in options, "--help of saltrelay-%s lists no --check-config" % kind)
        for opt in sorted(set(options)):
            check(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), text),
                  "%s does not describe %s from saltrelay-%s --help" % (man, opt, kind))
        for name in check_config(kind, filled(kind, CONF[kind], tmp)):
            check(re.search(r"(?m)^\.TP\n\.B %s\s*$" % name, text),
                  "%s does not describe config key %s (a '.TP' then '.B %s' line)" % (man, name, name))


def test_redis_replica_conf_loads(tmp):
    """redis-server accepts conf/redis-replica.conf (primary pointed at loopback)."""
    primary = harness.Redis(tmp, "primary")
    port = harness.free_port()
    data = os.path.join(tmp, "replica")
    os.makedirs(data)
    harness.spawn(["redis-server", os.path.join(REPO, "conf", "redis-replica.conf"), "--port", str(port),
                   "--bind", "127.0.0.1", "--dir", data, "--logfile", os.path.join(data, "redis.log"),
                   "--replicaof", "127.0.0.1", str(primary.port), "--masterauth", ""])

    def cli(*args):
        r = subprocess.run(["redis-cli", "-p", str(port), "-a", "CHANGE-ME", "--no-auth-warning", "--raw"] +
                           list(args), capture_output=True, timeout=10)
        return r.stdout.decode().split()

    harness.wait_until(lambda: cli("PING") == ["PONG"], 10, "the replica to answer")
    check(cli("CONFIG", "GET", "repl-backlog-size")[1] == str(1 << 30), "repl-backlog-size is not 1 GB")
    check(cli("CONFIG", "GET", "replica-read-only")[1] == "yes", "replica is not read-only")
    primary.cli("SET", "k", "v")
    harness.wait_until(lambda: cli("GET", "k") == ["v"], 10, "the replica to copy the primary")


def test_status_man_page_matches_help(tmp):
    """saltrelay-status(1) names every option and command of its --help, and
    the config keys it documents exist in saltrelay-up's file."""
    status = os.path.join(harness.BUILD, "returner", "saltrelay-status")
    man = os.path.join(REPO, "docs", "man", "saltrelay-status.1")
    text = roff_text(man)
    r = subprocess.run([status, "--help"], capture_output=True, timeout=30)
    check(r.returncode == 0, "saltrelay-status --help exited %d" % r.returncode)
    usage = r.stdout.decode()
    options = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", usage)) | {"--version"}
    for opt in sorted(options):
        check(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), text),
              "%s does not describe %s from saltrelay-status --help" % (man, opt))
    check("job" in usage and re.search(r"(?m)^\.B job$", text), "the job command is not in %s" % man)
    up_keys = conf_keys(CONF["up"])
    for name in re.findall(r"(?m)^\.B (\w+)$", text.split(".SH CONFIGURATION")[1].split(".SH")[0]):
        check(name in up_keys, "%s documents key %s that conf/up.yaml does not have" % (man, name))


DOWN_BASE = ("cluster: c1\ndatacenter: dc1\nredis: redis://127.0.0.1:{redis}\n"
             "publish_bind: tcp://127.0.0.1:{pub}\nret_bind: tcp://127.0.0.1:{ret}\nstate_dir: {state}\n")


def refused(kind, path, want, run_as=()):
    """--check-config and a start of PATH both exit 2 with the one line
    "saltrelay-KIND: " + WANT on stderr (and nothing started: the start
    ends by itself)."""
    line = "saltrelay-%s: %s\n" % (kind, want)
    for args in (["--check-config", "-c", path], ["-c", path]):
        r = subprocess.run(list(run_as) + [BIN[kind]] + args, capture_output=True, timeout=30)
        check(r.returncode == 2 and r.stderr.decode() == line and (args[0] != "--check-config" or not r.stdout),
              "saltrelay-%s %s: exit %d, stderr %r, expected %r" % (kind, " ".join(args), r.returncode,
                                                                    r.stderr.decode(), line))


def test_check_config_refuses_what_start_refuses(tmp):
    """Everything the daemon refuses at start, --check-config refuses, with
    the same one line naming the file, the key's own line and the key (the
    old code passed pub_hwm 5000 and refused it only once started, exit 1,
    named line 1 for a range, said "input error" for a directory and let
    the shipped CHANGE-ME password and a doubly bound port through)."""
    ports = dict(redis=harness.free_port(), pub=harness.free_port(), ret=harness.free_port(),
                 state=os.path.join(tmp, "state"))
    base = DOWN_BASE.format(**ports)
    cases = [
        ("pub_hwm", base + "# the queue per subscriber\npub_hwm: 5000\n",
         "{f}:8: key 'pub_hwm': 5000 is out of range (1 to 1000)"),
        ("max_pending", "max_pending: 20000000\n" + base,
         "{f}:1: key 'max_pending': 20000000 is out of range (0 to 1e+07)"),
        ("binds", base + "metrics_bind: 127.0.0.1:%d\n" % ports["pub"],
         "{f}:7: key 'metrics_bind': 127.0.0.1:%d is also publish_bind's (line 4): each socket needs its own "
         "address" % ports["pub"]),
        ("password", base.replace("redis://", "redis://:CHANGE-ME@"),
         "{f}:3: key 'redis': 'CHANGE-ME' is a placeholder from the example: fill in the real value"),
        ("state_file", base.replace(ports["state"], os.path.join(tmp, "state-file")),
         "{f}:6: key 'state_dir': %s is not a directory" % os.path.join(tmp, "state-file")),
    ]
    with open(os.path.join(tmp, "state-file"), "w") as f:
        f.write("not a directory\n")
    for name, text, want in cases:
        path = os.path.join(tmp, name + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        refused("down", path, want.format(f=path))
    refused("down", tmp, "%s: is a directory, not a config file" % tmp)
    refused("up", os.path.join(tmp, "none.yaml"), "%s: cannot open: No such file or directory" %
            os.path.join(tmp, "none.yaml"))
    if os.geteuid() != 0:
        return
    # a state_dir the daemon's user cannot write in: checked as that user
    os.chmod(tmp, 0o755)
    os.makedirs(ports["state"], mode=0o755)
    path = os.path.join(tmp, "foreign.yaml")
    with open(path, "w") as f:
        f.write(base)
    os.chmod(path, 0o644)
    refused("down", path, "%s:6: key 'state_dir': cannot write in %s: Permission denied" % (path, ports["state"]),
            run_as=("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"))


def test_shipped_examples_refused(tmp):
    """conf/up.yaml and conf/down.yaml as shipped carry CHANGE-ME for the
    Redis password: --check-config refuses them, naming that line, so that
    an example is never run as it is."""
    for kind, path in sorted(CONF.items()):
        with open(path) as f:
            first = [n for n, l in enumerate(f, 1) if re.match(r"redis(_primary)?: .*CHANGE-ME", l)][0]
        r = subprocess.run([BIN[kind], "--check-config", "-c", path], capture_output=True, timeout=30)
        want = "saltrelay-%s: %s:%d: key '%s': 'CHANGE-ME' is a placeholder from the example: fill in the real " \
               "value\n" % (kind, path, first, "redis")
        check(r.returncode == 2 and r.stderr.decode() == want, "%s: %d %r" % (path, r.returncode, r.stderr))


harness.main(globals())
