"""test_monitoring.py -- what a monitoring system reads from the daemons
(issue 19): every metric family both daemons export is in docs/operations.md's
table and the other way round; the process metrics mean what Prometheus'
process collector means; GET /healthz says whether the daemon serves, as the
systemd watchdog judges it (a worker thread is frozen with ptrace to stall
it, the rest of the process running on)."""

import ctypes
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CLUSTER = "mon"
OPERATIONS = os.path.join(h.REPO, "docs", "operations.md")


def http_get(port, path):
    """(status, body) of GET PATH on 127.0.0.1:PORT; (0, "") if nothing answers."""
    try:
        return h.http_get(port, path)
    except OSError:
        return 0, ""


def families(port):
    """{metric family: type} from the daemon's GET /metrics (its # TYPE lines)."""
    status, body = http_get(port, "/metrics")
    h.check(status == 200, "GET /metrics: %d" % status)
    return dict(re.findall(r"(?m)^# TYPE (\S+) (\S+)$", body))


def documented():
    """{daemon: {family: type}} from operations.md's metrics table: names in
    the first column (`saltrelay_` added unless there or process_),
    the daemon column up, down or both."""
    with open(OPERATIONS) as f:
        text = f.read()
    table = text.split("\n## Metrics (Prometheus)\n")[1].split("\n\n| metric |")[1].split("\n\n")[0]
    out = {"up": {}, "down": {}}
    for row in table.splitlines()[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if set(cells[0]) <= set("-: "):
            continue
        h.check(len(cells) == 4 and cells[2] in ("up", "down", "both"), "operations.md metrics row: %r" % row)
        for name in re.findall(r"`([a-z_]+)(?:\{[^}]*\})?`", cells[0]):
            full = name if name.startswith(("process_", "saltrelay_")) else "saltrelay_" + name
            for d in (("up", "down") if cells[2] == "both" else (cells[2],)):
                h.check(full not in out[d], "operations.md lists %s twice for %s" % (full, d))
                out[d][full] = cells[1]
    return out


def start_pair(tmp, redis, **up_extra):
    up = h.Daemon("up", tmp, "up", metrics=True, cluster=CLUSTER, redis=redis.url,
                  master_publish="tcp://127.0.0.1:%d" % h.free_port(),
                  master_ret="tcp://127.0.0.1:%d" % h.free_port(), **up_extra)
    state = os.path.join(tmp, "state")
    os.makedirs(state)
    down = h.Daemon("down", tmp, "dc1", metrics=True, cluster=CLUSTER, datacenter="dc1", redis=redis.url,
                    state_dir=state, publish_bind="tcp://127.0.0.1:%d" % h.free_port(),
                    ret_bind="tcp://127.0.0.1:%d" % h.free_port())
    return up, down


def test_metrics_documented(tmp):
    """Both daemons' metric families, scraped, against operations.md's table,
    both ways, with their types."""
    redis = h.Redis(tmp)
    up, down = start_pair(tmp, redis)
    up.start()
    down.start()
    doc = documented()
    for kind, d in (("up", up), ("down", down)):
        got = families(d.metrics_port)
        want = doc[kind]
        h.check(not set(got) - set(want), "saltrelay-%s exports, operations.md does not list for it: %s" %
                (kind, sorted(set(got) - set(want))))
        h.check(not set(want) - set(got), "operations.md lists for saltrelay-%s, it does not export: %s" %
                (kind, sorted(set(want) - set(got))))
        wrong = sorted("%s (%s, documented %s)" % (n, got[n], want[n]) for n in got if got[n] != want[n])
        h.check(not wrong, "saltrelay-%s: types differ from operations.md: %s" % (kind, wrong))
        print("saltrelay-%s: %d metric families, all documented" % (kind, len(got)))


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()  # [0] is field 3


def test_process_metrics(tmp):
    """process_start_time_seconds is when the process started (and stays
    so); process_cpu_seconds_total is its user + system time, growing as it
    works, as the kernel counts it."""
    redis = h.Redis(tmp)
    up, _ = start_pair(tmp, redis)
    t0 = time.time()
    up.start()
    t1 = time.time()

    def values():
        _, body = http_get(up.metrics_port, "/metrics")
        return {k: float(v) for k, v in re.findall(r"(?m)^(process_\w+) (\S+)$", body)}
    first = values()
    # the kernel's boot time (btime) is in whole seconds: up to 1 s early
    h.check(t0 - 1 <= first["process_start_time_seconds"] <= t1,
            "process_start_time_seconds %.2f, the process started between %.2f and %.2f" %
            (first["process_start_time_seconds"], t0, t1))
    tick = os.sysconf("SC_CLK_TCK")
    st = proc_stat(up.proc.pid)
    kernel = (int(st[11]) + int(st[12])) / tick
    h.check(abs(first["process_cpu_seconds_total"] - kernel) <= 0.05,
            "process_cpu_seconds_total %.2f, the kernel says %.2f" % (first["process_cpu_seconds_total"], kernel))
    # work: publications through saltrelay-up cost it CPU time
    h.zpub(re.search(r"master_publish: (\S+)", open(up.cfg_path).read()).group(1), "--gen", 20000, "--size", 1000)
    h.wait_until(lambda: up.metrics().get("pub_stored_total", 0) >= 20000, 60, "20000 publications stored")
    later = values()
    h.check(later["process_cpu_seconds_total"] > first["process_cpu_seconds_total"],
            "CPU time did not grow: %r then %r" % (first, later))
    h.check(later["process_start_time_seconds"] == first["process_start_time_seconds"],
            "the start time moved: %r then %r" % (first, later))
    h.check(later["process_resident_memory_bytes"] > 1 << 20, "resident memory: %r" % later)
    print("start time %.2f (started between %.2f and %.2f); CPU %.2f s then %.2f s" %
          (first["process_start_time_seconds"], t0, t1, first["process_cpu_seconds_total"],
           later["process_cpu_seconds_total"]))


PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def thread_of(pid, name):
    """The id of PID's thread named NAME (a part's thread carries its name)."""
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            if f.read().strip() == name:
                return int(tid)
    raise AssertionError("no thread named %r in process %d" % (name, pid))


def freeze(tid):
    """Stop the one thread TID (ptrace), the other threads running on."""
    for req in (PTRACE_SEIZE, PTRACE_INTERRUPT):
        h.check(_libc.ptrace(req, tid, None, None) == 0, "ptrace(%#x, %d): errno %d" % (req, tid, ctypes.get_errno()))
    os.waitpid(tid, 0x40000000)  # __WALL: until it is stopped


def thaw(tid):
    h.check(_libc.ptrace(PTRACE_DETACH, tid, None, None) == 0, "ptrace detach %d: errno %d" % (tid, ctypes.get_errno()))


def wait_health(d, status, body_start, timeout):
    what = "GET /healthz of %s to answer %d %r" % (d.name, status, body_start)
    got = h.wait_until(lambda: (lambda r: r if r[0] == status and r[1].startswith(body_start) else None)(
        http_get(d.metrics_port, "/healthz")), timeout, what)
    h.check(got[1].endswith("\n") and got[1].count("\n") == 1, "not one line: %r" % got[1])
    return time.monotonic()


def test_healthz(tmp):
    """GET /healthz: 503 "starting" until Redis answered, 200 "serving", 503
    "stalled: PART ..." once one worker thread (frozen) has not turned for
    10 s while the process and its HTTP thread run on, 200 again when it
    turns, 503 "stopping" during the drain. Both daemons."""
    redis_port = h.free_port()
    redis = h.Redis(tmp, port=redis_port, start=False)
    up, down = start_pair(tmp, redis)
    up.start(wait_ready=False)
    down.start(wait_ready=False)
    for d in (up, down):
        h.wait_until(lambda: http_get(d.metrics_port, "/healthz")[0], 10, "%s's HTTP endpoint" % d.name)
        time.sleep(0.5)
        status, body = http_get(d.metrics_port, "/healthz")
        h.check((status, body) == (503, "starting: waiting for the worker threads and Redis\n"),
                "%s before Redis answered: %d %r" % (d.name, status, body))
    redis.start()
    for d in (up, down):
        d.wait_log(h.READY, 30)
        wait_health(d, 200, "serving", 5)
    h.check(http_get(up.metrics_port, "/nosuch")[0] == 404, "an unknown path is not 404")
    # one thread frozen: the watchdog's judgement, named
    for d, part in ((up, "heartbeat"), (down, "DC report")):
        tid = thread_of(d.proc.pid, part)
        frozen = time.monotonic()
        freeze(tid)
        try:
            h.check(http_get(d.metrics_port, "/healthz")[0] == 200, "%s unhealthy at once" % d.name)
            at = wait_health(d, 503, "stalled: %s has not turned for 10 s" % part, 20)
            h.check(at - frozen >= 9.5, "%s called stalled %.1f s after the freeze" % (d.name, at - frozen))
            d.wait_log("worker threads stalled: %s" % part, 5)
            print("%s: /healthz 503 %.1f s after %r froze" % (d.name, at - frozen, part))
        finally:
            thaw(tid)
        wait_health(d, 200, "serving", 5)
        d.wait_log("worker threads running again", 5)
    # stopping: a frozen part holds the drain open
    tid = thread_of(up.proc.pid, "heartbeat")
    freeze(tid)
    try:
        up.proc.send_signal(signal.SIGTERM)
        wait_health(up, 503, "stopping", 10)
    finally:
        thaw(tid)
    h.check(up.proc.wait(timeout=60) == 0, "saltrelay-up did not exit 0 after the drain:\n" + up.log())


h.main(globals())
