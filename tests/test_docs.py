"""test_docs.py -- docs that run (issue 19). Every fenced block of docs/*.md
and README.md, and every file in conf/, is either a configuration that a test
here uses as printed, or tagged as what it is (a diagram, commands, output).

A block's info string says which: its first word is the language (``text``,
``sh``, ``console`` for what is not configuration; ``yaml`` or ``conf`` for
configuration), and a configuration block's second word its kind (KINDS):

    ```conf redis.conf          ```yaml up.yaml          ```conf sentinel.conf

KINDS names, for each kind, the tests that use every block of it. Files in
conf/ have their kind in CONF_FILES. test_blocks_tagged fails on a block
without a known kind, a config-looking line in a block that claims not to
be configuration, a file in conf/ not listed, and a kind whose tests do not
exist: nothing escapes unused. A new kind (for instance a users.acl block)
adds its name to KINDS with a test that uses every block of it (see
test_acl_blocks).

Placeholders are filled by the tests alone, each by a literal replacement
(Fill): passwords in <angle brackets> or CHANGE-ME, host names of the
example network, the well-known ports (a test takes free loopback ports),
file paths. Everything else is used as printed."""

import glob
import os
import random
import re
import signal
import string
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_ha import check_requests, make_certs, start_requests  # noqa: E402
from test_pub import read_state  # noqa: E402

PLAIN = {"text", "sh", "console"}  # not configuration: diagrams, commands, output
CONFIG_LANGS = {"yaml", "conf"}
# kind -> the tests that use every block of that kind ("file.test" for other files' tests)
KINDS = {
    "redis.conf": ["test_redis_conf_blocks", "test_deployment_md"],
    "sentinel.conf": ["test_sentinel_conf_blocks", "test_deployment_md"],
    "up.yaml": ["test_daemon_yaml_blocks", "test_deployment_md"],
    "down.yaml": ["test_daemon_yaml_blocks", "test_deployment_md"],
    "stunnel.conf": ["test_stunnel_conf_blocks"],
    "acl": ["test_acl_blocks", "test_acl.test_acl_whole_path"],
    "sentinel-acl": ["test_acl.test_acl_whole_path"],
    "salt-master": ["test_salt_blocks"],
    "salt-minion": ["test_salt_blocks"],
    "salt-syndic": ["test_salt_blocks"],
    "prometheus.yml": ["test_prometheus_files"],
    "prometheus-rules": ["test_prometheus_files", "test_health.test_alert_rules"],
    "grafana": ["test_health.test_prometheus_scrapes_both"],
    "cmake": [],  # conf/CMakeLists.txt: the build installs conf/, nothing to run
    "salt-states": ["test_salt.test_state_tree"],  # rendered and applied by real Salt
}
CONF_FILES = {
    "conf/CMakeLists.txt": "cmake",
    "conf/up.yaml": "up.yaml",
    "conf/down.yaml": "down.yaml",
    "conf/redis-replica.conf": "redis.conf",
    "conf/redis-tls.conf": "redis.conf",
    "conf/redis-tls-replica.conf": "redis.conf",
    "conf/redis-users.acl": "acl",
    "conf/stunnel-redis.conf": "stunnel.conf",
    "conf/salt/mom.conf": "salt-master",
    "conf/salt/minion-flat.conf": "salt-minion",
    "conf/salt/syndic.conf": "salt-syndic",
    "conf/prometheus/prometheus.yml": "prometheus.yml",
    "conf/prometheus/saltrelay-rules.yml": "prometheus-rules",
    "conf/grafana/saltrelay-dashboard.json": "grafana",
    "conf/salt/pillar/saltrelay.sls": "salt-states",
}
CONF_FILES.update({os.path.relpath(f, h.REPO): "salt-states" for f in
                   glob.glob(os.path.join(h.REPO, "conf/salt/states/saltrelay/**/*.*"), recursive=True)})
# a file used after others, as its header says (Redis: included after them)
AFTER = {"conf/redis-tls-replica.conf": ["conf/redis-replica.conf"]}
PAGES = sorted(glob.glob(os.path.join(h.REPO, "docs", "*.md"))) + [os.path.join(h.REPO, "README.md")]
# a line that is configuration, whatever the block claims: a saltrelay key
# (added from conf/ below), a Redis directive, a Salt master or minion option
CONFIG_LINE = re.compile(r"^(?:(?:requirepass|masterauth|replicaof|maxmemory-policy|appendonly|bind|sentinel|user|"
                         r"tls-port|repl-backlog-size)\s+\S|(?:%s|master|master_port|publish_port|ret_port|interface|"
                         r"syndic_master|file_roots|pillar_roots|zmq_filtering|order_masters):(?:\s|$))")
PASSWORD = "".join(random.choice(string.ascii_letters) for _ in range(24))


class Block:
    def __init__(self, where, lang, kind, text):
        self.where, self.lang, self.kind, self.text = where, lang, kind, text

    def __repr__(self):
        return "%s (%s %s)" % (self.where, self.lang, self.kind or "")


def page_blocks(path):
    """The fenced blocks of one Markdown page."""
    with open(path) as f:
        text = f.read()
    rel = os.path.relpath(path, h.REPO)
    out = []
    for m in re.finditer(r"(?ms)^( *)```([^\n`]*)\n(.*?)^\1```\s*$", text):
        words = m.group(2).split()
        body = "".join(l[len(m.group(1)):] + "\n" for l in m.group(3).splitlines())
        out.append(Block("%s:%d" % (rel, text[:m.start()].count("\n") + 1), words[0] if words else "",
                         words[1] if len(words) > 1 else None, body))
    return out


def all_blocks():
    blocks = [b for p in PAGES for b in page_blocks(p)]
    for rel, kind in sorted(CONF_FILES.items()):
        with open(os.path.join(h.REPO, rel)) as f:
            blocks.append(Block(rel, "file", kind, f.read()))
    return blocks


def blocks_of(kind, page=None):
    found = [b for b in all_blocks() if b.kind == kind and (page is None or b.where.startswith(page + ":"))]
    h.check(found, "no %s block%s" % (kind, " in " + page if page else ""))
    return found


class Fill:
    """Literal replacements of placeholders; each must be used at least once
    by what it fills (a placeholder renamed in the docs fails the test)."""

    def __init__(self):
        self.pairs = []
        self.used = set()

    def add(self, literal, value):
        self.pairs.append((literal, str(value)))
        return self

    def __call__(self, text):
        for literal, value in self.pairs:
            if literal in text:
                self.used.add(literal)
                text = text.replace(literal, value)
        code = "\n".join(re.sub(r"(^|\s)[#;].*", "", l) for l in text.splitlines())  # comments may name them
        left = re.findall(r"<[a-z][a-z ]*>|CHANGE-ME", code)
        h.check(not left, "placeholders the test does not fill: %s" % left)
        return text

    def all_used(self):
        unused = [l for l, _ in self.pairs if l not in self.used]
        h.check(not unused, "placeholders filled but found nowhere: %s" % unused)


def conf_keys():
    keys = set()
    for kind in ("up", "down"):
        with open(os.path.join(h.REPO, "conf", kind + ".yaml")) as f:
            keys |= set(re.findall(r"(?m)^#?([a-z_]+):", f.read()))
    return keys


def test_blocks_tagged(tmp):
    """Every block has a known language, every configuration block a known
    kind, no block that says it is not configuration is mostly configuration
    lines, every file in conf/ has its kind, and every kind's tests exist."""
    keys = conf_keys()
    config_line = re.compile(CONFIG_LINE.pattern % "|".join(sorted(keys)))
    counts = {}
    for b in all_blocks():
        if b.lang == "file":
            continue
        h.check(b.lang in PLAIN | CONFIG_LANGS, "%r: say what the block is: ```text, ```sh, ```console, or "
                "```yaml KIND / ```conf KIND for configuration" % b)
        if b.lang in CONFIG_LANGS:
            h.check(b.kind in KINDS, "%r: configuration of an unknown kind (known: %s)" % (b, sorted(KINDS)))
        else:
            h.check(b.kind is None, "%r: a plain block names a kind" % b)
            body = [l for l in b.text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
            lines = [l for l in body if config_line.match(l)]
            h.check(len(lines) * 2 <= len(body), "%r is mostly configuration (tag it ```yaml KIND or ```conf KIND): %s"
                    % (b, lines))
        counts[b.kind or b.lang] = counts.get(b.kind or b.lang, 0) + 1
    in_conf = sorted(os.path.relpath(p, h.REPO) for p in glob.glob(os.path.join(h.REPO, "conf", "**"), recursive=True)
                     if os.path.isfile(p))
    h.check(in_conf == sorted(CONF_FILES), "conf/ holds %s, CONF_FILES lists %s" % (in_conf, sorted(CONF_FILES)))
    cmake = {}
    for f in glob.glob(os.path.join(h.HERE, "*.cmake")):
        with open(f) as fh:
            for m in re.finditer(r"saltrelay_pytest\((\w+)([^)]*)\)", fh.read()):
                cmake.setdefault(m.group(1), set()).update(m.group(2).split())
    for kind, tests in KINDS.items():
        for t in tests:
            file, _, name = t.rpartition(".")
            file = file or "test_docs"
            h.check(name in cmake.get(file, ()), "%s's test %s is not a ctest test (tests/*.cmake)" % (kind, t))
    print("blocks by kind: %s" % ", ".join("%s %d" % kv for kv in sorted(counts.items())))


def redis_start(tmp, name, conf_text, extra=()):
    """redis-server on CONF_TEXT (written to a file) on a free loopback port,
    its data and log in TMP/NAME; loopback binds if the text binds wider."""
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "redis.conf")
    with open(path, "w") as f:
        f.write(conf_text)
    port = h.free_port()
    argv = ["redis-server", path, "--port", port, "--dir", d, "--logfile", os.path.join(d, "redis.log")]
    binds = re.findall(r"(?m)^bind\s+(.*)$", conf_text)
    if binds and not all(a.lstrip("-") in ("127.0.0.1", "::1") for a in binds[-1].split()):
        argv += ["--bind", "127.0.0.1", "-::1"]  # tests listen on loopback only
    h.spawn(argv + [str(a) for a in extra])
    return port


def cli(port, *args, password=None, tls=None):
    argv = ["redis-cli", "-p", str(port), "--no-auth-warning", "--raw"]
    if password:
        argv += ["-a", password]
    if tls:
        argv += ["--tls", "--cacert", tls["ca.crt"], "--cert", tls["node.crt"], "--key", tls["node.key"]]
    r = subprocess.run(argv + [str(a) for a in args], capture_output=True, timeout=10)
    return r.stdout.decode(errors="replace").strip()


def wait_pong(port, password, what, tls=None):
    h.wait_until(lambda: cli(port, "PING", password=password, tls=tls) == "PONG", 15, what)


def primary_for_blocks(tmp, certs):
    """The primary the DC-side blocks point at: a password, a TLS port."""
    tls_port = h.free_port()
    port = redis_start(tmp, "primary", "", ["--requirepass", PASSWORD, "--masterauth", PASSWORD,
                                            "--tls-port", tls_port, "--tls-cert-file", certs["node.crt"],
                                            "--tls-key-file", certs["node.key"], "--tls-ca-cert-file",
                                            certs["ca.crt"], "--tls-auth-clients", "yes"])
    wait_pong(port, PASSWORD, "the test primary")
    return port, tls_port


def block_fill(primary_port, tls_port, certs):
    return (Fill().add("<long random password>", PASSWORD).add("CHANGE-ME", PASSWORD)
            .add("redis-primary.example.net 6379", "127.0.0.1 %d" % primary_port)
            .add("redis-primary.example.net 6390", "127.0.0.1 %d" % tls_port)
            .add("tls-port 6390", "tls-port %d" % h.free_port())
            .add("/etc/redis/tls/redis.crt", certs["node.crt"]).add("/etc/redis/tls/redis.key", certs["node.key"])
            .add("/etc/redis/tls/dc1.crt", certs["node.crt"]).add("/etc/redis/tls/dc1.key", certs["node.key"])
            .add("/etc/redis/tls/ca.crt", certs["ca.crt"]))


def directives(text):
    return [l.split(None, 1) for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]


def test_redis_conf_blocks(tmp):
    """Every redis.conf block starts a real redis-server as printed, which
    then holds each directive's value; a block with requirepass asks for it,
    with replicaof replicates from the primary (over TLS to its tls-port),
    with tls-port answers TLS with a client certificate."""
    certs = make_certs(tmp)
    primary, tls_port = primary_for_blocks(tmp, certs)
    fill = block_fill(primary, tls_port, certs)
    for i, b in enumerate(blocks_of("redis.conf")):
        text = "".join(fill(open(os.path.join(h.REPO, f)).read()) for f in AFTER.get(b.where, [])) + fill(b.text)
        port = redis_start(tmp, "block%d" % i, text)
        password = PASSWORD if re.search(r"(?m)^requirepass ", text) else None
        wait_pong(port, password, "redis-server on %r" % b)
        for name, value in directives(text):
            got = cli(port, "CONFIG", "GET", name, password=password).splitlines()
            h.check(len(got) == 2, "%r: CONFIG GET %s: %r" % (b, name, got))
            if re.fullmatch(r"[a-z]+|\d+", value) and name not in ("replicaof", "port"):
                h.check(got[1] == value, "%r: %s is %r, the block says %r" % (b, name, got[1], value))
        if re.search(r"(?m)^replicaof ", text):
            h.wait_until(lambda: "master_link_status:up" in cli(port, "INFO", "replication", password=password), 20,
                         "%r replicating" % b)
        m = re.search(r"(?m)^tls-port (\d+)$", text)
        if m:
            h.check(cli(int(m.group(1)), "PING", password=password, tls=certs) == "PONG", "%r: no TLS answer" % b)
            h.check(cli(int(m.group(1)), "PING", password=password) != "PONG", "%r: TLS port speaks plain" % b)
        print("%r: started, %d directives in effect" % (b, len(directives(text))))
    fill.all_used()


def start_sentinels(tmp, text, n=3):
    ports = []
    for i in range(n):
        d = os.path.join(tmp, "sentinel%d" % i)
        os.makedirs(d)
        path = os.path.join(d, "sentinel.conf")
        with open(path, "w") as f:
            f.write(text)
        port = h.free_port()
        h.spawn(["redis-server", path, "--sentinel", "--port", port, "--bind", "127.0.0.1", "--dir", d,
                 "--logfile", os.path.join(d, "sentinel.log")])
        ports.append(port)
    return ports


def sentinel_master(port, name):
    out = cli(port, "SENTINEL", "MASTER", name).splitlines()
    return dict(zip(out[::2], out[1::2]))


def sentinels_agree(ports, name, replicas):
    def agree():
        for p in ports:
            m = sentinel_master(p, name)
            if m.get("flags") != "master" or m.get("num-other-sentinels") != str(len(ports) - 1) or \
                    m.get("num-slaves") != str(replicas):
                return False
        return True
    h.wait_until(agree, 60, "the sentinels to know each other, the primary (flags master) and %d replicas" % replicas)


def test_sentinel_conf_blocks(tmp):
    """Every sentinel.conf block, three Sentinels each as printed, monitors
    the primary (named by host name, authenticated) with its replica, and the
    Sentinels find each other."""
    primary = redis_start(tmp, "primary", "", ["--requirepass", PASSWORD, "--masterauth", PASSWORD,
                                               "--bind", "127.0.0.1", "-::1"])
    replica = redis_start(tmp, "replica", "", ["--requirepass", PASSWORD, "--masterauth", PASSWORD,
                                               "--replicaof", "127.0.0.1", primary])
    wait_pong(replica, PASSWORD, "the replica")
    fill = Fill().add("<password>", PASSWORD).add("redis-primary.example.net 6379", "localhost %d" % primary)
    for i, b in enumerate(blocks_of("sentinel.conf")):
        name = re.search(r"(?m)^sentinel monitor (\S+) ", b.text).group(1)
        ports = start_sentinels(os.path.join(tmp, "b%d" % i), fill(b.text))
        sentinels_agree(ports, name, 1)
        print("%r: 3 Sentinels monitor %s" % (b, name))
    fill.all_used()


def merged(base, block):
    """BASE (a daemon's YAML) with the keys BLOCK sets replaced or added,
    each keeping the block's line as printed."""
    lines = base.splitlines()
    for line in block.splitlines():
        m = re.match(r"([a-z_]+):", line)
        if not m:
            continue
        at = [i for i, l in enumerate(lines) if re.match(r"#?%s:" % m.group(1), l)]
        if at:
            lines[at[0]] = line
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def check_config(kind, path):
    r = subprocess.run([h.BIN[kind], "--check-config", "-c", path], capture_output=True, timeout=30)
    h.check(r.returncode == 0, "saltrelay-%s --check-config %s: exit %d\n%s" % (kind, path, r.returncode,
                                                                                r.stderr.decode()))
    return r.stdout.decode()


def test_daemon_yaml_blocks(tmp):
    """Every up.yaml or down.yaml block, set in the shipped file it is part
    of (conf/up.yaml or conf/down.yaml, as the docs say to edit it), passes
    the daemon's --check-config, and the effective configuration holds each
    of its keys with the block's value."""
    fill = Fill().add("<password>", PASSWORD).add("CHANGE-ME", PASSWORD)
    for b in blocks_of("up.yaml") + blocks_of("down.yaml"):
        kind = b.kind.split(".")[0]
        with open(os.path.join(h.REPO, "conf", b.kind)) as f:
            base = fill(f.read())  # the shipped file's own CHANGE-ME is refused too
        text = fill(b.text)
        path = os.path.join(tmp, "%s.yaml" % re.sub(r"\W", "_", b.where))
        with open(path, "w") as f:
            f.write(text if b.lang == "file" else merged(base, text))
        effective = check_config(kind, path)
        for key, value in re.findall(r"(?m)^([a-z_]+):\s*(\S+)", text):
            value = value.strip("\"'").replace(PASSWORD, "***")
            h.check(re.search(r"(?m)^%s: \"?%s\"?\s*$" % (key, re.escape(value)), effective),
                    "%r: %s: %s is not in effect:\n%s" % (b, key, value, effective))
        print("%r: --check-config passes" % b)
    fill.all_used()


def test_stunnel_conf_blocks(tmp):
    """Every stunnel.conf block runs stunnel4 as printed, a TLS client tunnel
    to the primary's tls-port (checking its certificate and name, showing its
    own): Redis answers through it."""
    certs = make_certs(tmp)
    primary, tls_port = primary_for_blocks(tmp, certs)
    for i, b in enumerate(blocks_of("stunnel.conf")):
        accept = h.free_port()
        fill = (Fill().add("127.0.0.1:6380", "127.0.0.1:%d" % accept)
                .add("redis-primary.example.net:6390", "localhost:%d" % tls_port)
                .add("checkHost = redis-primary.example.net", "checkHost = localhost")
                .add("/etc/saltrelay/tls/ca.crt", certs["ca.crt"]).add("/etc/saltrelay/tls/dc1.crt", certs["node.crt"])
                .add("/etc/saltrelay/tls/dc1.key", certs["node.key"]))
        path = os.path.join(tmp, "stunnel%d.conf" % i)
        with open(path, "w") as f:
            f.write(fill(b.text))
        log = open(os.path.join(tmp, "stunnel%d.log" % i), "w")
        proc = h.spawn(["stunnel4", path], stdout=log, stderr=log)
        h.wait_until(lambda: cli(accept, "PING", password=PASSWORD) == "PONG" or proc.poll() is not None, 15,
                     "Redis answering through stunnel")
        h.check(proc.poll() is None, "stunnel4 exited %s" % proc.returncode)
        fill.all_used()
        print("%r: Redis answers through stunnel" % b)


def test_acl_blocks(tmp):
    """Every ACL block is a users.acl file a real redis-server loads as
    printed (aclfile), and each of its users logs in. What a user may do is
    test_acl.test_acl_whole_path's."""
    for i, b in enumerate(blocks_of("acl")):
        d = os.path.join(tmp, "acl%d" % i)
        os.makedirs(d)
        path = os.path.join(d, "users.acl")
        with open(path, "w") as f:
            f.write(b.text)
        port = redis_start(tmp, "acl%d" % i, "", ["--aclfile", path])
        users = re.findall(r"(?m)^user (\S+) on .*?>(\S+)", b.text)
        h.check(users, "%r: no user with a password" % b)
        for user, pw in users:
            h.wait_until(lambda: cli(port, "--user", user, "--pass", pw, "PING") == "PONG", 10,
                         "%r: user %s logging in" % (b, user))
        print("%r: users %s" % (b, [u for u, _ in users]))


def salt_valid_opts():
    """{option: types or None} from Salt's VALID_OPTS (and the options its
    config code reads with opts.get), for each Salt source tree of
    ../shared/salt: an option must be known to all."""
    where = [os.environ.get("SALTRELAY_SALT", ""), os.path.join(os.path.dirname(h.WIRE), "salt"),
             os.path.join(h.REPO, "..", "shared", "salt"), os.path.join(h.REPO, "..", "..", "shared", "salt")]
    trees = next((t for t in (sorted(glob.glob(os.path.join(d, "salt-*.tar.xz"))) for d in where if d) if t), None)
    h.check(trees, "no Salt source tree (salt-*.tar.xz) in %s" % where)
    names = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict, "list": list, "tuple": tuple,
             "bytes": bytes, "type": type, "None": None}
    out = None
    for tree in trees:
        with tarfile.open(tree) as t:
            member = next(m for m in t.getmembers() if m.name.endswith("/salt/config/__init__.py"))
            text = t.extractfile(member).read().decode()
        body = text.split("\nVALID_OPTS = ")[1].split("\n)\n")[0]
        opts = {}
        for key, expr in re.findall(r'(?m)^        "(\w+)": (.+),$', body):
            try:
                opts[key] = eval(expr, {"__builtins__": {}}, names)  # a type, or a tuple of types
            except Exception:
                opts[key] = None
        # read without a VALID_OPTS entry (syndic_config: syndic_master_port)
        for key in re.findall(r'opts\.get\(\s*(?:#[^\n]*\n\s*)*"(\w+)"', text):
            opts.setdefault(key, None)
        out = opts if out is None else {k: v for k, v in out.items() if k in opts}
    return out


# Options that are ours, not Salt's: Salt keeps unknown master options in
# __opts__, where the saltrelay runner reads this one (returner/runners).
OWN_SALT_OPTS = {"saltrelay_config": str}


def test_salt_blocks(tmp):
    """Every Salt config block and file is YAML whose options, set or
    suggested in a comment (#option: value), Salt knows (VALID_OPTS of both
    Salt trees of ../shared/salt), or the runner reads (OWN_SALT_OPTS), with
    a value of the type Salt wants."""
    import yaml
    valid = dict(salt_valid_opts(), **OWN_SALT_OPTS)
    for b in blocks_of("salt-master") + blocks_of("salt-minion") + blocks_of("salt-syndic"):
        active = yaml.safe_load(b.text) or {}
        suggested = yaml.safe_load("\n".join(re.findall(r"(?m)^#(\w+:\s.*)$", b.text))) or {}
        h.check(isinstance(active, dict), "%r is not a YAML mapping" % b)
        for key, value in list(active.items()) + list(suggested.items()):
            h.check(key in valid, "%r: %s is not a Salt option" % (b, key))
            types = valid[key]
            if types is None:
                continue
            types = types if isinstance(types, tuple) else (types,)
            ok = isinstance(value, types) or (float in types and isinstance(value, int))
            h.check(ok and not (isinstance(value, bool) and bool not in types),
                    "%r: %s: %r is not %s" % (b, key, value, types))
        print("%r: %d options, %d suggested, all Salt's" % (b, len(active), len(suggested)))


def test_prometheus_files(tmp):
    """promtool accepts prometheus.yml (whose rule_files it finds, as
    Prometheus would, beside it: where the package installs both) and the
    alert rules."""
    for b in blocks_of("prometheus.yml"):
        r = subprocess.run(["promtool", "check", "config", os.path.join(h.REPO, b.where)], capture_output=True,
                           timeout=60)
        out = (r.stdout + r.stderr).decode()
        h.check(r.returncode == 0 and "SUCCESS: 1 rule files found" in out, "%r: promtool check config:\n%s" % (b, out))
    for b in blocks_of("prometheus-rules"):
        r = subprocess.run(["promtool", "check", "rules", os.path.join(h.REPO, b.where)], capture_output=True,
                           timeout=60)
        h.check(r.returncode == 0, "%r: promtool check rules:\n%s" % (b, (r.stdout + r.stderr).decode()))


def test_deployment_md(tmp):
    """docs/deployment.md followed step by step on loopback, its blocks as
    printed: the primary's redis.conf; a core replica (the same plus
    replicaof, masterauth); three DC replicas from conf/redis-replica.conf
    included as the page says; three Sentinels; saltrelay-up and dc1's
    saltrelay-down from the page's YAML: publications reach dc1's minions,
    saltrelay-status shows dc1. Then the Sentinel URLs of the page: the
    daemons restarted on them deliver publications and answer requests,
    every request confirmed by the four replicas (pub_wait_replicas)."""
    page = "docs/deployment.md"
    primary_block = blocks_of("redis.conf", page)
    h.check(len(primary_block) == 1, "deployment.md: one redis.conf block expected: %r" % primary_block)
    fill = Fill().add("<long random password>", PASSWORD).add("CHANGE-ME", PASSWORD)
    primary_text = fill(primary_block[0].text)
    primary = redis_start(tmp, "primary", primary_text)
    wait_pong(primary, PASSWORD, "the primary")
    core = redis_start(tmp, "core-replica", primary_text + "replicaof 127.0.0.1 %d\nmasterauth %s\n" %
                       (primary, PASSWORD))
    fill.add("redis-primary.example.net 6379", "127.0.0.1 %d" % primary)
    with open(os.path.join(h.REPO, "conf", "redis-replica.conf")) as f:
        replica_conf = fill(f.read())
    dcs = {}
    for dc in ("dc1", "dc2", "dc3"):
        d = os.path.join(tmp, "replica-" + dc)
        os.makedirs(d)
        with open(os.path.join(d, "saltrelay-replica.conf"), "w") as f:
            f.write(replica_conf)
        dcs[dc] = redis_start(tmp, "replica-" + dc, "include %s\n" % os.path.join(d, "saltrelay-replica.conf"))
    for port in [core] + list(dcs.values()):
        h.wait_until(lambda: "master_link_status:up" in cli(port, "INFO", "replication", password=PASSWORD), 20,
                     "replica on %d linked" % port)
    # Sentinels: the primary by name (localhost here)
    sentinel = blocks_of("sentinel.conf", page)[0]
    sfill = Fill().add("<password>", PASSWORD).add("redis-primary.example.net 6379", "localhost %d" % primary)
    sentinels = start_sentinels(tmp, sfill(sentinel.text))
    name = re.search(r"(?m)^sentinel monitor (\S+) ", sentinel.text).group(1)
    # the daemons on the page's plain configs
    mom_pub, mom_ret = "tcp://127.0.0.1:%d" % h.free_port(), "tcp://127.0.0.1:%d" % h.free_port()
    pub_bind, ret_bind = "tcp://127.0.0.1:%d" % h.free_port(), "tcp://127.0.0.1:%d" % h.free_port()
    state = os.path.join(tmp, "state", "dc1")
    os.makedirs(state)
    dfill = (Fill().add("<password>", PASSWORD)
             .add("redis-primary.example.net:6379", "127.0.0.1:%d" % primary)
             .add("@127.0.0.1:6379/0", "@127.0.0.1:%d/0" % dcs["dc1"])
             .add("tcp://127.0.0.1:4505", mom_pub).add("tcp://127.0.0.1:4506", mom_ret)
             .add("tcp://0.0.0.0:4505", pub_bind).add("tcp://0.0.0.0:4506", ret_bind)
             .add("/var/lib/saltrelay/dc1", state)
             .add("core1:26379,core2:26379,core3:26379", ",".join("127.0.0.1:%d" % p for p in sentinels)))
    ups, downs = blocks_of("up.yaml", page), blocks_of("down.yaml", page)
    h.check(len(ups) == 2 and len(downs) == 2, "deployment.md: a plain and a Sentinel up.yaml and down.yaml: %r" %
            (ups + downs))
    up_cfg, down_cfg = os.path.join(tmp, "up.yaml"), os.path.join(tmp, "down-dc1.yaml")
    up_text, down_text = dfill(ups[0].text), dfill(downs[0].text)
    for path, text in ((up_cfg, up_text), (down_cfg, down_text)):
        with open(path, "w") as f:
            f.write(text)

    def start(kind, path, name):
        log = open(os.path.join(tmp, name + ".log"), "a")
        p = h.spawn([h.BIN[kind], "-c", path], stdout=log, stderr=log)
        h.wait_until(lambda: p.poll() is not None or h.READY in open(os.path.join(tmp, name + ".log")).read(), 30,
                     "%s ready" % name)
        h.check(p.poll() is None, "%s exited:\n%s" % (name, open(os.path.join(tmp, name + ".log")).read()))
        return p

    def deliver(n):
        sub = h.Sub(pub_bind, "--count", n, "--idle-ms", 5000, "--max-ms", 60000)
        h.wait_until(lambda: int(read_state(state).get("subscribers", 0)) >= 1, 20, "dc1 counting its subscriber")
        time.sleep(0.2)
        h.zpub(mom_pub, "--gen", n, "--size", 300)
        got = sub.lines()
        h.check(len(got) == n, "dc1's minion got %d of %d publications" % (len(got), n))

    up, down = start("up", up_cfg, "up"), start("down", down_cfg, "down")
    deliver(50)
    r = subprocess.run([os.path.join(h.BUILD, "returner", "saltrelay-status"), "-c", up_cfg], capture_output=True,
                       timeout=30)
    out = r.stdout.decode()
    h.check(r.returncode == 0 and re.search(r"(?m)^dc1\s+ok\s", out), "saltrelay-status (exit %d):\n%s%s" %
            (r.returncode, out, r.stderr.decode()))
    sentinels_agree(sentinels, name, 4)
    # the Sentinel URLs, in both configs
    for proc in (up, down):
        proc.send_signal(signal.SIGTERM)
        h.check(proc.wait(timeout=60) == 0, "a daemon did not stop cleanly")
    with open(up_cfg, "w") as f:
        f.write(merged(up_text, dfill(ups[1].text)))
    with open(down_cfg, "w") as f:
        f.write(merged(down_text, dfill(downs[1].text)))
    master_log = os.path.join(tmp, "master.requests")
    master = h.spawn([h.tool("zmaster"), mom_ret, "echo", "--log", master_log], stderr=subprocess.PIPE)
    h.check(b"bound" in master.stderr.readline(), "zmaster did not start")
    start("up", up_cfg, "up2")
    start("down", down_cfg, "down2")
    for name_ in ("up2", "down2"):
        h.check("via sentinel" in open(os.path.join(tmp, name_ + ".log")).read(), "%s not via the Sentinels" % name_)
    deliver(50)
    reqs, out = start_requests(tmp, ret_bind, 5, 10, 30)
    check_requests(reqs, out, master_log, 50)  # no fault here: none may time out
    for f in (fill, sfill, dfill):
        f.all_used()


if __name__ == "__main__":  # test_acl imports the block readers
    h.main(globals())
