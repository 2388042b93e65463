"""harness.py -- fixtures for saltrelay's tests: free loopback ports, real
redis-server processes, real saltrelay daemons (killed with real signals) and
the ZeroMQ test tools in tests/tools/. Every wait is bounded in time.

A test file defines test functions and ends with harness.main(globals());
ctest runs `python3 tests/FILE.py TESTNAME` (see tests/CMakeLists.txt).

Environment: SALTRELAY_BUILD (build dir, set by ctest), SALTRELAY_WIRE (the
salt-wire captures, default ../shared/salt-wire beside the repository),
SALTRELAY_VALGRIND=1 runs the daemons under valgrind (slow)."""

import fcntl
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUILD = os.environ.get("SALTRELAY_BUILD", os.path.join(REPO, "build"))
WIRE = os.environ.get("SALTRELAY_WIRE", os.path.join(os.path.dirname(REPO), "shared", "salt-wire"))
BIN = {
    "up": os.path.join(BUILD, "relay-up", "saltrelay-up"),
    "down": os.path.join(BUILD, "relay-down", "saltrelay-down"),
}
_procs = []
READY = "info: ready\n"  # the whole line's end: "Address already in use" must not count


def tool(name):
    return os.path.join(BUILD, "tests", name)


def sanitized():
    """True when the daemons under test are the ASan/UBSan build (memory
    figures mean nothing there: redzones and the quarantine)."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return "SALTRELAY_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def rss_kb(pid):
    """Resident memory of process PID in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


PORT_BASE, PORT_BLOCK = 10000, 100
PORT_LOCKS = os.path.join(tempfile.gettempdir(), "saltrelay-ports")
_ports = []  # this process's port blocks: [lock file, next port, end]


def _claim_block():
    """Lock a block of PORT_BLOCK ports below the ephemeral range for this
    process (flock on PORT_LOCKS/<first port>, held until the process
    ends, a SIGKILL included). Tests running side by side (ctest -j, or
    several engineers' runs on one machine) each hand out ports from their
    own blocks, so none can pick a port another test chose or will take
    again (a killed daemon's restart)."""
    lo = _ephemeral_range()[0]
    n = (lo - PORT_BASE) // PORT_BLOCK
    check(n > 0, "no room for test ports between %d and the ephemeral range (%d)" % (PORT_BASE, lo))
    os.makedirs(PORT_LOCKS, exist_ok=True)
    try:
        os.chmod(PORT_LOCKS, 0o1777)  # shared by every user's runs
    except OSError:
        pass
    first = random.randrange(n)
    for i in range(n):
        start = PORT_BASE + (first + i) % n * PORT_BLOCK
        try:
            fd = os.open(os.path.join(PORT_LOCKS, str(start)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _ports.append([fd, start, start + PORT_BLOCK])
        return _ports[-1]
    raise AssertionError("all %d test port blocks in %s are taken" % (n, PORT_LOCKS))


def free_port():
    """A TCP port on 127.0.0.1 that nothing uses right now, from this
    process's own blocks (_claim_block): never handed out twice, and no
    other test picks it meanwhile. Below the ephemeral range: a port taken
    from that range can be handed to some outgoing connection while a
    killed daemon restarts, and the restart then fails on "Address already
    in use"."""
    for _ in range(1000):
        block = _ports[-1] if _ports and _ports[-1][1] < _ports[-1][2] else _claim_block()
        port = block[1]
        block[1] += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))  # a process other than a test's may hold it
            except OSError:
                continue
        return port
    raise AssertionError("no free loopback port found in 1000 tries")


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


class Skip(Exception):
    """Raised by a test that cannot run on this machine (what it needs is
    not there); main() then exits SKIP_EXIT, which the test's ctest entry
    declares as its SKIP_RETURN_CODE."""


SKIP_EXIT = 77


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def spawn(argv, **kw):
    p = subprocess.Popen([str(a) for a in argv], **kw)
    _procs.append(p)
    return p


# Every test redis-server's options besides its port, directory and
# persistence: a replica's full sync starts at once, not after the 5 s a
# primary waits by default for more replicas to share a diskless transfer.
REDIS_TEST_OPTIONS = ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]


class Redis:
    """A real redis-server on a free loopback port (or PORT), in its own
    directory; started at once unless START is false."""

    def __init__(self, tmp, name="redis", aof=False, replicaof=None, extra=(), fsync="always", port=None,
                 start=True):
        self.extra = [str(a) for a in extra]  # more redis-server options, e.g. --replica-priority 0
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.aof = aof
        self.fsync = fsync
        self.replicaof = replicaof
        self.proc = None
        if start:
            self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "yes" if self.aof else "no", "--appendfsync", self.fsync,
                "--logfile", os.path.join(self.dir, "redis.log")] + REDIS_TEST_OPTIONS
        if self.replicaof:
            argv += ["--replicaof", "127.0.0.1", str(self.replicaof.port)]
        self.proc = spawn(argv + self.extra)
        wait_until(self.ping, 10, "redis on port %d" % self.port)

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def cli(self, *args, raw=False):
        out = subprocess.run(["redis-cli", "-p", str(self.port)] + (["--raw"] if raw else []) +
                             [str(a) for a in args], capture_output=True, timeout=20, check=True)
        return out.stdout.decode(errors="replace").strip()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        self.start()


class Daemon:
    """saltrelay-up or saltrelay-down with a config written from keyword args;
    metrics=True serves its metrics on a free loopback port (.metrics())."""

    def __init__(self, kind, tmp, name, metrics=False, **cfg):
        self.kind, self.name = kind, name
        self.metrics_port = None
        if metrics:
            self.metrics_port = free_port()
            cfg["metrics_bind"] = "127.0.0.1:%d" % self.metrics_port
        self.cfg_path = os.path.join(tmp, name + ".yaml")
        self.log_path = os.path.join(tmp, name + ".log")
        with open(self.cfg_path, "w") as f:
            for k, v in cfg.items():
                f.write("%s: %s\n" % (k, v))
        self.proc = None
        self.env = None  # the process environment (None: this one's)
        self._log = None
        self._since = 0  # where this incarnation's part of the (appended) log begins

    def start(self, wait_ready=True):
        argv = [BIN[self.kind], "-c", self.cfg_path]
        if os.environ.get("SALTRELAY_VALGRIND") == "1":
            argv = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                    "--errors-for-leak-kinds=definite"] + argv
        self._log = open(self.log_path, "a")
        self._since = self._log.tell()
        self.proc = spawn(argv, stderr=self._log, stdout=self._log, env=self.env)
        if wait_ready:
            self.wait_log(READY, 30)
        return self

    def log(self, current=False):
        """The whole log (every incarnation), or with CURRENT only what the
        running incarnation wrote."""
        with open(self.log_path, errors="replace") as f:
            if current:
                f.seek(self._since)
            return f.read()

    def wait_log(self, text, timeout, count=1):
        """Wait until THIS incarnation logged TEXT COUNT times; fail at once
        if it exits first (an earlier incarnation's lines do not count)."""
        def seen():
            n = self.log(current=True).count(text)
            if n < count and self.proc.poll() is not None:
                raise AssertionError("%s exited (%s) before logging %r:\n%s" %
                                     (self.name, self.proc.returncode, text, self.log(current=True)[-3000:]))
            return n >= count
        wait_until(seen, timeout, "%r in %s's log" % (text, self.name))

    def metrics(self):
        """The running daemon's counters and gauges from GET /metrics, by name
        without the saltrelay_ prefix (labelled series are left out)."""
        check(self.metrics_port, "%s was started without metrics" % self.name)
        return scrape_metrics(self.metrics_port)

    def instance_name(self):
        """saltrelay-up: the name its running incarnation logged (runtime/instance.h)."""
        m = re.search(r"heartbeat: this instance is (\S+)", self.log(current=True))
        check(m, "%s logged no instance name" % self.name)
        return m.group(1)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def term(self, timeout=30):
        """SIGTERM; returns the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def http_get(port, path, timeout=5):
    """(status, body) of GET PATH on 127.0.0.1:PORT (the daemons' metrics and
    health endpoint). OSError if it does not answer within TIMEOUT."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(b"GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


def scrape_metrics(port, timeout=5):
    """GET /metrics on PORT: the unlabelled saltrelay_* series by name without
    the prefix. OSError if it does not answer within TIMEOUT."""
    _, body = http_get(port, "/metrics", timeout)
    out = {}
    for line in body.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("saltrelay_") and "{" not in name:
            out[name[len("saltrelay_"):]] = float(value)
    return out


class Sub:
    """tests/tools/zsub in the background; .lines() after it ended, or
    .lines_until() a line ends what the test waits for."""

    def __init__(self, endpoint, *opts):
        self.out = tempfile.TemporaryFile()
        self.proc = spawn([tool("zsub"), endpoint] + [str(o) for o in opts], stdout=self.out,
                          stderr=subprocess.PIPE)
        # connected is printed after zmq_connect; the subscription travels on the first handshake
        line = self.proc.stderr.readline()
        check(b"connected" in line, "zsub did not start: %r" % line)

    def _read(self):
        self.out.seek(0)
        return self.out.read().decode()

    def lines(self, timeout=120):
        self.proc.wait(timeout=timeout)
        return self._read().splitlines()

    def lines_until(self, done, timeout=120):
        """The lines received until DONE(line) holds for one (zsub is then
        stopped; --idle-ms need not end it), or zsub ended, or TIMEOUT."""
        deadline = time.monotonic() + timeout
        pos, partial = 0, b""
        while self.proc.poll() is None and time.monotonic() < deadline:
            # pread: zsub writes at the file offset it shares with self.out, which must not move
            chunk = os.pread(self.out.fileno(), 1 << 24, pos)
            pos += len(chunk)
            *complete, partial = (partial + chunk).split(b"\n")  # a line being written is not one yet
            if any(done(l.decode()) for l in complete):
                break
            time.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        text = self._read()
        return text[:text.rfind("\n") + 1].splitlines()  # without a line cut short by the kill


    def lines_within(self, seconds):
        """The lines received until SECONDS from now (zsub is then stopped):
        what else arrives in a window the test chose."""
        return self.lines_until(lambda line: False, timeout=seconds)


def zpub(endpoint, *opts, timeout=300):
    r = subprocess.run([tool("zpub"), endpoint] + [str(o) for o in opts], capture_output=True,
                       timeout=timeout)
    check(r.returncode == 0, "zpub failed: %s" % r.stderr.decode())


def resp_command(sock, *args):
    """One Redis command (bytes arguments) on an open socket; the reply's raw
    bytes (a bulk reply read whole; a nil one, $-1, has no body)."""
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    data = sock.recv(65536)
    while data and b"\r\n" not in data:  # the first line may come in pieces
        data += sock.recv(65536)
    if data.startswith(b"$"):
        size = int(data[1:data.index(b"\r\n")])
        need = data.index(b"\r\n") + 2 + (size + 2 if size >= 0 else 0)
        while len(data) < need:
            data += sock.recv(65536)
    return data


def wire_lines(capture, direction, peer=None):
    """Records of one salt-wire capture as lines (tests/tools/wirecat)."""
    path = os.path.join(WIRE, capture)
    check(os.path.exists(path), "missing capture %s (is ../shared/salt-wire there?)" % path)
    argv = [tool("wirecat"), path, direction] + ([peer] if peer else [])
    return subprocess.run(argv, capture_output=True, check=True, timeout=30).stdout.decode().splitlines()


def cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "Invalid read of size", "Invalid write of size", "definitely lost in",
                   "Conditional jump or move depends")


def log_files(tmp):
    """Every *.log under TMP, subdirectories included, as paths relative to TMP."""
    found = []
    for top, dirs, files in os.walk(tmp):
        dirs.sort()
        found += [os.path.relpath(os.path.join(top, f), tmp) for f in sorted(files) if f.endswith(".log")]
    return found


def sanitizer_reports(tmp):
    """Lines in the logs under TMP (every directory) where ASan, UBSan or
    valgrind found a bug."""
    found = []
    for f in log_files(tmp):
        with open(os.path.join(tmp, f), errors="replace") as fh:
            found += ["%s: %s" % (f, l.strip()) for l in fh if any(m in l for m in SANITIZER_MARKS)]
    return found


def main(namespace):
    """Run the test named on the command line (or all) from NAMESPACE."""
    names = sys.argv[1:] or sorted(k for k in namespace if k.startswith("test_"))
    failed = skipped = 0
    for name in names:
        tmp = tempfile.mkdtemp(prefix="saltrelay-%s-" % name)
        t0 = time.monotonic()
        try:
            namespace[name](tmp)
            cleanup()
            bugs = sanitizer_reports(tmp)
            check(not bugs, "memory/UB errors reported:\n" + "\n".join(bugs[:20]))
            print("PASS %s (%.1f s)" % (name, time.monotonic() - t0))
            shutil.rmtree(tmp, ignore_errors=True)
        except Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (name, e))
            shutil.rmtree(tmp, ignore_errors=True)
        except Exception:
            failed += 1
            traceback.print_exc()
            print("FAIL %s (%.1f s); files kept in %s" % (name, time.monotonic() - t0, tmp))
            for f in log_files(tmp):
                print("---- %s (last 40 lines)" % f)
                with open(os.path.join(tmp, f), errors="replace") as fh:
                    print("".join(fh.readlines()[-40:]))
        finally:
            cleanup()
    sys.exit(1 if failed else SKIP_EXIT if skipped else 0)
