"""test_sync.py -- tree sync end to end (docs/filesync.md): a generated tree in
saltrelay-up's sync_source -> real Redis (primary, and a replica for dc1) ->
saltrelay-down's sync_target/current in two DCs. Checks contents, exec bits,
deletions, atomic switches (snapshots are the old or the new version, never a
mix), replication bytes of an update against the changed bytes, kill -9 of
saltrelay-down mid-sync, and hostile records written straight into Redis."""

import hashlib
import os
import random
import re
import signal
import stat
import struct
import subprocess
import threading
import time
import urllib.request

import harness as h
from faultproxy import FaultProxy

CLUSTER = "t"
HEAD = "saltrelay:{%s}:tree:head" % CLUSTER
CHUNK = 256 * 1024  # proto/treerec.h TREE_CHUNK


def write(path, data, exe=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o755 if exe else 0o644)


def small(i):
    """The path of generated small file I."""
    name = "file %04d.sls" % i if i % 5 else "ünïcødé-%04d ✓.sls" % i
    return "states/role%02d/sub %d/%s" % (i % 40, i % 7, name)


def make_tree(root, files=2000, large=3, seed=1):
    """Thousands of small files in nested dirs, a few large ones, duplicates,
    names with spaces and UTF-8, executables."""
    rnd = random.Random(seed)
    for i in range(files):
        body = ("# state %d\n" % i).encode() * rnd.randint(1, 60)
        if i % 50 == 0:
            body = b"duplicate content\n" * 10
        write(os.path.join(root, small(i)), body, exe=i % 13 == 0)
    for i in range(large):
        write(os.path.join(root, "files/big-%d.bin" % i), rnd.randbytes(3 * CHUNK + 12345))
    write(os.path.join(root, "pillar/top.sls"), b"base:\n  '*':\n    - common\n")
    write(os.path.join(root, "empty"), b"")


def snapshot(root, skip_links=False):
    """{relative path: (sha1, exec)} of the regular files under ROOT (with
    SKIP_LINKS symlinks are left out, else they fail the check)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            st = os.lstat(p)
            if skip_links and stat.S_ISLNK(st.st_mode):
                continue
            h.check(stat.S_ISREG(st.st_mode), "%s is not a regular file" % p)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = (hashlib.sha1(fh.read()).hexdigest(), bool(st.st_mode & 0o100))
    return out


class Sync:
    """Redis primary + replica, saltrelay-up publishing SRC, two DCs."""

    def __init__(self, tmp, dcs=("dc1", "dc2"), up=None, down=None, start_dcs=True, targets=None, down_by=None):
        self.tmp = tmp
        self.src = os.path.join(tmp, "src")
        os.makedirs(self.src, exist_ok=True)
        self.primary = h.Redis(tmp, "primary")
        self.replica = h.Redis(tmp, "replica", replicaof=self.primary)
        h.wait_until(lambda: "master_link_status:up" in self.replica.cli("info", "replication"), 20,
                     "replica link up")
        self.up_cfg = dict(cluster=CLUSTER, master_publish="tcp://127.0.0.1:%d" % h.free_port(),
                           master_ret="tcp://127.0.0.1:%d" % h.free_port(), redis=self.primary.url,
                           sync_source=self.src, sync_interval=1)
        self.up_cfg.update(up or {})
        self.up = None
        self.dcs = {}
        for dc in dcs:
            state = os.path.join(tmp, "state-" + dc)
            os.makedirs(state, exist_ok=True)
            target = (targets or {}).get(dc, os.path.join(tmp, "target-" + dc))
            d = h.Daemon("down", tmp, dc, cluster=CLUSTER, datacenter=dc,
                         redis=(self.replica if dc == "dc1" else self.primary).url,
                         redis_primary=self.primary.url,
                         publish_bind="tcp://127.0.0.1:%d" % h.free_port(),
                         ret_bind="tcp://127.0.0.1:%d" % h.free_port(), state_dir=state,
                         sync_target=target, **dict(down or {}, **(down_by or {}).get(dc, {})))
            d.target = target
            self.dcs[dc] = d
            if start_dcs:
                d.start()

    def start_up(self):
        self.up = h.Daemon("up", self.tmp, "up", **self.up_cfg).start()
        return self.up

    def wait_mirrored(self, dc, want, timeout=120):
        cur = os.path.join(self.dcs[dc].target, "current")

        def same():
            try:
                return snapshot(os.path.realpath(cur)) == want
            except (OSError, AssertionError):
                return False
        h.wait_until(same, timeout, "%s/current to mirror the source" % dc)

    def repl_offset(self):
        info = self.primary.cli("info", "replication")
        return int([l for l in info.splitlines() if l.startswith("master_repl_offset:")][0].split(":")[1])


def test_mirror_update_atomic(tmp):
    """Two DCs (one on the replica) mirror a generated tree; an update reaches
    both, every snapshot of current during it is the old or the new tree, and
    it replicates about the changed bytes, not the tree."""
    # no periodic scan: the update below must become exactly one version
    s = Sync(tmp, up={"sync_interval": 3600})
    make_tree(s.src)
    os.symlink("/etc/passwd", os.path.join(s.src, "states/escape-link"))  # not carried
    old = snapshot(s.src, skip_links=True)
    s.start_up()
    for dc in s.dcs:
        s.wait_mirrored(dc, old)
    h.check(len(old) > 2000, "tree has %d files" % len(old))
    # watch dc1's current while the update is applied
    seen, stop = [], threading.Event()

    def watch():
        cur = os.path.join(s.dcs["dc2"].target, "current")
        while not stop.is_set():
            seen.append(snapshot(os.path.realpath(cur)))
    t = threading.Thread(target=watch)
    t.start()
    before = s.repl_offset()
    os.kill(s.up.proc.pid, signal.SIGSTOP)  # its inotify queue holds the events until SIGCONT
    changed = 0
    rnd = random.Random(7)
    for i in range(1, 40, 2):       # modify 20 files
        p = os.path.join(s.src, small(i))
        data = b"changed %d\n" % i * 50
        write(p, data)
        changed += len(data)
    with open(os.path.join(s.src, "files/big-1.bin"), "r+b") as f:  # one chunk of a large file
        f.seek(CHUNK + 10)
        f.write(rnd.randbytes(1000))
        changed += CHUNK
    for i in range(2, 42, 4):       # delete 10
        os.unlink(os.path.join(s.src, small(i)))
    for i in range(10):              # add 10
        data = rnd.randbytes(5000)
        write(os.path.join(s.src, "new dir/añadido %d.sls" % i), data)
        changed += len(data)
    for i in range(3, 60, 12):       # chmod 5
        p = os.path.join(s.src, small(i))
        os.chmod(p, 0o755)
    new = snapshot(s.src, skip_links=True)
    os.kill(s.up.proc.pid, signal.SIGCONT)
    for dc in s.dcs:
        s.wait_mirrored(dc, new)
    stop.set()
    t.join(timeout=60)
    repl = s.repl_offset() - before
    h.check("published version 3:" not in s.up.log(), "the update became more than one version")
    h.check("escape-link not carried: a symlink" in s.up.log(), "the symlink was not reported")
    mixed = [snap for snap in seen if snap != old and snap != new]
    h.check(not mixed, "%d of %d snapshots were neither the old nor the new tree" % (len(mixed), len(seen)))
    tree_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(s.src) for f in fs
                     if not os.path.islink(os.path.join(d, f)))
    print("tree %d bytes, changed %d bytes, replicated %d bytes, %d snapshots" % (tree_bytes, changed, repl,
                                                                                   len(seen)))
    # the manifest (about 100 bytes per file) is sent again with each version
    h.check(repl < changed + 150 * len(new) + 64 * 1024, "replicated %d bytes for %d changed" % (repl, changed))
    for dc in s.dcs.values():
        versions = [v for v in os.listdir(os.path.join(dc.target, "v")) if not v.startswith(".")]
        h.check(len([v for v in versions if not v.endswith(".manifest")]) <= 3, "kept %s" % versions)


def test_kill9_mid_sync_resumes(tmp):
    """saltrelay-down killed with SIGKILL while it builds a version resumes
    after a restart and converges; current was never half-written."""
    s = Sync(tmp, dcs=("dc2",), start_dcs=False)
    rnd = random.Random(3)
    for i in range(60):
        write(os.path.join(s.src, "big/f%02d.bin" % i), rnd.randbytes(1024 * 1024 + 1000))
    write(os.path.join(s.src, "huge.bin"), rnd.randbytes(12 * 1024 * 1024 + 7))  # written over several turns
    make_tree(s.src, files=300, large=0)
    want = snapshot(s.src)
    s.start_up()
    h.wait_until(lambda: s.primary.cli("exists", HEAD) == "1", 60, "a published version")
    dc = s.dcs["dc2"]
    dc.start()
    def built():
        v = os.path.join(dc.target, "v")
        tmps = [e for e in os.listdir(v) if e.startswith(".tmp-")] if os.path.isdir(v) else []
        big = os.path.join(v, tmps[0], "big") if tmps else ""
        return len(os.listdir(big)) if os.path.isdir(big) else 0
    h.wait_until(lambda: built() >= 10, 60, "a build under way")
    dc.kill9()
    h.check(not os.path.exists(os.path.join(dc.target, "current")), "current appeared before the build ended")
    done = built()
    dc.start()
    s.wait_mirrored("dc2", want)
    # the files the killed build wrote were kept, not fetched again
    read = int(re.findall(r"\((\d+) bytes read from Redis\)", dc.log())[-1])
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(s.src) for f in fs)
    h.check(read <= total - (done - 1) * (1024 * 1024 + 1000), "resumed build read %d of %d bytes, %d files were "
            "already there" % (read, total, done))
    h.check(dc.proc.poll() is None, "dc2 died")
    h.check(dc.term() == 0, "dc2 did not exit 0")


def versions_on_disk(target):
    """The version numbers under TARGET/v (directories; each has its
    manifest beside it), sorted, and the number current points to."""
    v = os.path.join(target, "v")
    dirs = sorted(int(e.split("-")[0]) for e in os.listdir(v) if not e.startswith(".") and
                  os.path.isdir(os.path.join(v, e)))
    for e in os.listdir(v):
        if os.path.isdir(os.path.join(v, e)) and not e.startswith("."):
            h.check(os.path.exists(os.path.join(v, e + ".manifest")), "%s has no manifest" % e)
    cur = os.readlink(os.path.join(target, "current"))
    return dirs, int(cur.split("/")[1].split("-")[0])


def test_dc_keeps_newest_versions(tmp):
    """sync_keep: dc1 keeps 1 version (current alone), dc2 keeps 2 (current
    and the newest before it). After versions 1-3: dc1 holds 3, dc2 holds 2
    and 3 (not the oldest). Then Redis loses its keys and versions start
    again at 1: current is the lowest number on disk and is never removed
    (dc1 holds only the new 1, dc2 the new 1 and 3, the newest other)."""
    s = Sync(tmp, down_by={"dc1": {"sync_keep": 1}, "dc2": {"sync_keep": 2}})
    for n in (1, 2, 3):
        write(os.path.join(s.src, "top.sls"), b"base: {} # %d\n" % n)
        if n == 1:
            s.start_up()
        s.up.wait_log("published version %d:" % n, 30)
        for dc in s.dcs:
            s.wait_mirrored(dc, snapshot(s.src))
    # pruned right after the switch, which the mirror check may see first
    h.wait_until(lambda: versions_on_disk(s.dcs["dc1"].target) == ([3], 3), 10, "dc1 pruned to 3")
    h.wait_until(lambda: versions_on_disk(s.dcs["dc2"].target) == ([2, 3], 3), 10, "dc2 pruned to 2 and 3")
    s.up.term()
    s.primary.cli("FLUSHALL")
    write(os.path.join(s.src, "top.sls"), b"base: {} # after the flush\n")
    s.start_up()
    s.up.wait_log("published version 1:", 30)
    for dc in s.dcs:
        s.wait_mirrored(dc, snapshot(s.src))
    h.wait_until(lambda: versions_on_disk(s.dcs["dc1"].target) == ([1], 1), 10, "dc1 pruned to the new 1")
    h.wait_until(lambda: versions_on_disk(s.dcs["dc2"].target) == ([1, 3], 1), 10, "dc2 pruned to the new 1 and 3")
    for dc in s.dcs:
        s.wait_mirrored(dc, snapshot(s.src), timeout=5)  # current still whole


def test_older_head_not_applied(tmp):
    """A failover that loses the newest tree head (the DC's replica had it,
    the promoted replica not) leaves an older head: dc2's current stays the
    newer version (never goes back: the campaign's TREE-BACK), the older head
    is counted and logged once, and the next version published is applied.
    (A lower number made later, after Redis lost its keys, is applied:
    test_dc_keeps_newest_versions.) Old code: current went back to version 1."""
    older_head_case(tmp, restart=False)


def test_older_head_not_applied_after_restart(tmp):
    """The same with dc2's saltrelay-down SIGKILLed and restarted between
    applying version 2 and reading the older head: it knows current's head
    time from state_dir/tree.head. Old code (the time kept in memory only):
    current went back to version 1."""
    older_head_case(tmp, restart=True)


def test_tree_head_file_refused(tmp):
    """state_dir/tree.head is input from a file: a time that is not a
    plain number (here "-1", which strtoull would have read as 2^64 - 1 and
    so refused every head of a lower number) is refused with one warning,
    and the tree goes on as without the file."""
    s = Sync(tmp, dcs=("dc2",))
    d = s.dcs["dc2"]
    write(os.path.join(s.src, "top.sls"), b"base: {} # 1\n")
    s.start_up()
    s.up.wait_log("published version 1:", 30)
    s.wait_mirrored("dc2", snapshot(s.src))
    d.kill9()
    name = os.path.basename(os.path.realpath(os.path.join(d.target, "current")))
    write(os.path.join(tmp, "state-dc2", "tree.head"), b"version %s\ncreated_ms -1\n" % name.encode())
    d.start()
    d.wait_log("tree.head does not name current's head", 10)
    write(os.path.join(s.src, "top.sls"), b"base: {} # 2\n")
    s.up.wait_log("published version 2:", 30)
    s.wait_mirrored("dc2", snapshot(s.src))


def older_head_case(tmp, restart):
    s = Sync(tmp, dcs=("dc2",), down={"metrics": True})  # dc2 reads the primary, where the head is set
    d = s.dcs["dc2"]
    for n in (1, 2):
        write(os.path.join(s.src, "top.sls"), b"base: {} # %d\n" % n)
        if n == 1:
            s.start_up()
        s.up.wait_log("published version %d:" % n, 30)
        s.wait_mirrored("dc2", snapshot(s.src))
    newer = snapshot(s.src)
    if restart:
        d.kill9()
        d.start()
    s.up.proc.send_signal(signal.SIGSTOP)  # its next scan must not write a head meanwhile
    try:
        applied = d.log().count("/current is version")
        s.primary.cli("COPY", "saltrelay:{%s}:tree:v:1" % CLUSTER, HEAD, "REPLACE")  # what the failover left
        older = "older than %s/current" % d.target
        h.wait_until(lambda: older in d.log(current=True) or d.log().count("/current is version") > applied, 10,
                     "dc2 to read the older head")
        time.sleep(1)  # two more looks at the head (every 0.5 s)
        h.check(snapshot(os.path.realpath(os.path.join(d.target, "current"))) == newer,
                "dc2's current went back to version 1")
        h.check(d.metrics().get("tree_older_heads_total") == 1, "the older head not counted once")
        h.check(d.log(current=True).count(older) == 1, "the older head not logged once")
    finally:
        s.up.proc.send_signal(signal.SIGCONT)
    write(os.path.join(s.src, "top.sls"), b"base: {} # 3\n")
    s.up.wait_log("published version 3:", 30)
    s.wait_mirrored("dc2", snapshot(s.src))


def test_new_primary_lacking_chunks(tmp):
    """A failover's new primary may lack chunks the old one held (written
    after the replication it got) while the publisher's lease, replicated
    earlier, survived: here the chunk of b.sls is deleted and the
    publisher's connections killed (a new connection, same lease). The next
    version keeps b.sls: the publisher must find on its new connection that
    the chunk is missing and store it again, so dc2, started afterwards
    with no tree, applies the version.
    (Old code kept what it knew of Redis across a new connection while the
    lease held: the version named a chunk Redis lacked and every DC refused
    it, "a chunk is missing in Redis", until a write happened to fail: the
    campaign's tree sync held up after a failover.)"""
    s = Sync(tmp, dcs=("dc2",), start_dcs=False)  # dc2 reads the primary; it starts with no tree
    a, b = os.path.join(s.src, "a.sls"), os.path.join(s.src, "b.sls")
    write(a, b"a: 1\n")
    write(b, b"b: %s\n" % b"x" * 1000)
    s.start_up()
    s.up.wait_log("published version 1:", 30)
    chunk = "saltrelay:{%s}:tree:c:%s" % (CLUSTER, hashlib.sha1(open(b, "rb").read()).hexdigest())
    h.check(s.primary.cli("EXISTS", chunk) == "1", "b.sls is not the chunk the test expects: %s" % chunk)
    s.up.proc.send_signal(signal.SIGSTOP)
    try:
        s.primary.cli("DEL", chunk)
        s.primary.cli("SREM", "saltrelay:{%s}:tree:chunks" % CLUSTER, chunk.rsplit(":", 1)[1])
        s.primary.cli("CLIENT", "KILL", "TYPE", "normal")  # every client: the publisher's connections too
    finally:
        s.up.proc.send_signal(signal.SIGCONT)
    # the lease check finds the connection gone (not a write: a failed write made the old code read Redis again)
    s.up.wait_log("the publisher's lease cannot be checked", 15)
    s.up.wait_log("this instance publishes the tree", 15, count=2)
    write(a, b"a: 2\n")
    s.up.wait_log("published version 2:", 30)
    s.dcs["dc2"].start()
    s.wait_mirrored("dc2", snapshot(s.src), timeout=30)
    h.check(s.primary.cli("EXISTS", chunk) == "1", "b.sls's chunk not stored again")


def test_full_disk_clears(tmp):
    """Issue 18 item 5: sync_target on a 6 MiB tmpfs. A 7 MiB version cannot
    be built (one warning naming the system's reason, not one per retry);
    the next version, 2.5 MiB, is applied: its build first removes what the
    failed one left (its .tmp- directory, the cut-short .part). Old code
    removed leftovers only after a successful switch, so the 2.5 MiB version
    never fit beside the 7 MiB one's 6 MiB of debris; and its log line had no
    errno."""
    s = Sync(tmp, dcs=("dc2",), start_dcs=False)
    dc = s.dcs["dc2"]
    os.makedirs(dc.target)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", dc.target], check=True, timeout=30)
    try:
        rnd = random.Random(7)
        for i in range(7):
            write(os.path.join(s.src, "big/f%d.bin" % i), rnd.randbytes(1024 * 1024))
        dc.start()
        s.start_up()
        dc.wait_log("version not applied yet", 60)
        time.sleep(2)  # retried every 0.5 s meanwhile
        for i in range(7):
            os.unlink(os.path.join(s.src, "big/f%d.bin" % i))
        for i in range(10):
            write(os.path.join(s.src, "small/f%d.bin" % i), rnd.randbytes(256 * 1024))
        s.wait_mirrored("dc2", snapshot(s.src), timeout=30)
        v = os.path.join(dc.target, "v")
        left = [e for e in os.listdir(v) if e.startswith(".tmp-") or e == ".part"]
        h.check(not left, "leftovers under sync_target: %s" % left)
        log = dc.log()
        h.check(log.count("No space left on device") == 1 and log.count("version not applied yet") == 1,
                "one warning with the reason expected:\n%s" % log)
        h.check(dc.term() == 0, "dc2 did not exit 0")
    finally:
        if dc.proc and dc.proc.poll() is None:
            dc.kill9()
        subprocess.run(["umount", "-l", dc.target], timeout=30)


def mp(o):
    """A minimal msgpack encoder for hostile records: int, str, bytes, list."""
    if isinstance(o, bool) or isinstance(o, int):
        return struct.pack(">BQ", 0xcf, o)
    if isinstance(o, str):
        b = o.encode()
        return struct.pack(">BI", 0xdb, len(b)) + b
    if isinstance(o, bytes):
        return struct.pack(">BI", 0xc6, len(o)) + o
    return struct.pack(">BI", 0xdd, len(o)) + b"".join(mp(x) for x in o)


def put_version(r, version, files, chunks=None):
    """Write a manifest of FILES [(path, exec, content)] and its head record;
    CHUNKS overrides what is stored under an id ({content: stored bytes})."""
    entries = []
    for path, exe, content in files:
        ids = []
        for off in range(0, len(content), CHUNK):
            part = content[off:off + CHUNK]
            cid = hashlib.sha1(part).digest()
            stored = (chunks or {}).get(part, part)
            rset(r, "saltrelay:{%s}:tree:c:%s" % (CLUSTER, cid.hex()), stored)
            ids.append(cid)
        entries.append([path, int(exe), len(content), ids])
    man = mp(entries)
    mid = hashlib.sha1(man).digest()
    rec = mp([1, version, int(time.time() * 1000), len(files), sum(len(c) for _, _, c in files), len(man), [mid]])
    rset(r, "saltrelay:{%s}:tree:c:%s" % (CLUSTER, mid.hex()), man)
    rset(r, HEAD, rec)


def rset(r, key, value):
    """SET of binary VALUE (redis-cli -x takes the last argument from stdin)."""
    subprocess.run(["redis-cli", "-p", str(r.port), "-x", "set", key], input=value, check=True,
                   capture_output=True, timeout=20)


def test_hostile_records_refused(tmp):
    """Paths leading out of the target, duplicates, collisions, content that
    does not match its id and garbage head records are refused and counted;
    current stays the last good version and nothing is written outside it."""
    old_umask = os.umask(0o027)  # the packaged unit's: the tree must stay readable all the same
    try:
        s = Sync(tmp, dcs=("dc2",), down={"metrics_bind": "127.0.0.1:%d" % h.free_port()})
    finally:
        os.umask(old_umask)
    dc = s.dcs["dc2"]
    good = [("dir/run.sh", 1, b"#!/bin/sh\n"), ("ok.sls", 0, b"fine\n")]
    put_version(s.primary, 1, good)
    h.wait_until(lambda: os.path.exists(os.path.join(dc.target, "current/dir/run.sh")), 30, "version 1")
    modes = {p: stat.S_IMODE(os.stat(os.path.join(dc.target, p)).st_mode)
             for p in ("", "v", "current", "current/dir", "current/dir/run.sh", "current/ok.sls")}
    h.check(modes == {"": 0o755, "v": 0o755, "current": 0o755, "current/dir": 0o755, "current/dir/run.sh": 0o755,
                      "current/ok.sls": 0o644}, "modes %s" % {k: oct(v) for k, v in modes.items()})
    want = snapshot(os.path.realpath(os.path.join(dc.target, "current")))
    cases = [
        ("../escape.sls", [("../escape.sls", 0, b"x")]),
        ("/abs", [("/tmp/abs.sls", 0, b"x")]),
        ("dotdot inside", [("a/../../b", 0, b"x")]),
        ("dot", [("./a", 0, b"x")]),
        ("empty component", [("a//b", 0, b"x")]),
        ("duplicate", [("a", 0, b"x"), ("a", 0, b"y")]),
        ("unsorted", [("b", 0, b"x"), ("a", 0, b"y")]),
        ("file then dir", [("a", 0, b"x"), ("a/b", 0, b"y")]),
    ]
    for n, (label, files) in enumerate(cases):
        put_version(s.primary, 10 + n, files)
        dc.wait_log(" refused: ", 30, count=n + 1)
    # a chunk whose bytes do not match its id
    put_version(s.primary, 30, [("evil.sls", 0, b"expected")], chunks={b"expected": b"tampered"})
    dc.wait_log(" refused: ", 30, count=len(cases) + 1)
    # garbage head records
    for n, junk in enumerate([b"\xc1", b"not msgpack", mp([1, 2])]):
        rset(s.primary, HEAD, junk)
        dc.wait_log(" refused: ", 30, count=len(cases) + 2 + n)
    time.sleep(1.5)  # a refused head is not retried: the count stays
    h.check(dc.log().count(" refused: ") == len(cases) + 4, "a refused head was tried again")
    h.check(snapshot(os.path.realpath(os.path.join(dc.target, "current"))) == want, "current changed")
    h.check(not os.path.exists(os.path.join(tmp, "escape.sls")) and not os.path.exists("/tmp/abs.sls"),
            "a file was written outside the target")
    port = [l.split(":")[-1].strip() for l in open(dc.cfg_path) if l.startswith("metrics_bind")][0]
    text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=10).read().decode()
    h.check("saltrelay_tree_refused_total %d" % (len(cases) + 4) in text, "tree_refused_total:\n" + text)
    h.check("saltrelay_tree_bad_chunks_total 1" in text, "tree_bad_chunks_total")
    h.check("saltrelay_tree_version 1" in text, "tree_version")


def test_tree_over_max_refused(tmp):
    """A source larger than sync_max_bytes is not published (one log line);
    once it shrinks, it is."""
    s = Sync(tmp, dcs=("dc2",), up={"sync_max_bytes": 100000})
    write(os.path.join(s.src, "big.bin"), b"x" * 200000)
    s.start_up()
    s.up.wait_log("not published", 30)
    h.check(s.primary.cli("exists", HEAD) == "0", "a version was published")
    os.unlink(os.path.join(s.src, "big.bin"))
    write(os.path.join(s.src, "small.sls"), b"small\n")
    s.wait_mirrored("dc2", snapshot(s.src), timeout=30)
    h.check(s.up.log().count("not published") == 1, "refusal logged more than once")


def test_cut_off_dc_catches_up_and_gc(tmp):
    """A DC whose replica is cut off while 5 versions are published catches up
    to the newest when the link is back; Redis keeps 3 versions and only the
    chunks they need."""
    s = Sync(tmp)
    rnd = random.Random(5)
    write(os.path.join(s.src, "files/big.bin"), rnd.randbytes(2 * CHUNK + 100))
    write(os.path.join(s.src, "top.sls"), b"base: {}\n")
    s.start_up()
    for dc in s.dcs:
        s.wait_mirrored(dc, snapshot(s.src))
    first = os.readlink(os.path.join(s.dcs["dc1"].target, "current"))
    s.replica.cli("replicaof", "no", "one")
    for n in range(2, 7):
        # both writes before saltrelay-up's next scan, so that each n is one version: a scan that fell
        # between them (200 ms after the first event; a loaded host can take longer between two writes)
        # published the tree as it was, one version more, and the versions kept were not 4, 5 and 6
        os.kill(s.up.proc.pid, signal.SIGSTOP)
        try:
            write(os.path.join(s.src, "files/big.bin"), rnd.randbytes(2 * CHUNK + 100))
            write(os.path.join(s.src, "top.sls"), b"base: {} # %d\n" % n)
        finally:
            os.kill(s.up.proc.pid, signal.SIGCONT)
        s.up.wait_log("published version %d:" % n, 30)
        s.wait_mirrored("dc2", snapshot(s.src))
    h.check(os.readlink(os.path.join(s.dcs["dc1"].target, "current")) == first, "dc1 moved while cut off")
    keys = s.primary.cli("--scan", "--pattern", "saltrelay:{%s}:tree:*" % CLUSTER).split()
    versions = [k for k in keys if ":tree:v:" in k]
    chunks = [k for k in keys if ":tree:c:" in k]
    h.check(sorted(versions) == sorted("saltrelay:{%s}:tree:v:%d" % (CLUSTER, n) for n in (4, 5, 6)),
            "kept versions %s" % versions)
    # 3 versions x (3 content chunks + 1 manifest chunk), top.sls differs each time too
    h.check(len(chunks) == int(s.primary.cli("scard", "saltrelay:{%s}:tree:chunks" % CLUSTER)) <= 3 * 5,
            "%d chunk keys" % len(chunks))
    s.replica.cli("replicaof", "127.0.0.1", s.primary.port)
    s.wait_mirrored("dc1", snapshot(s.src))
    kept = [v for v in os.listdir(os.path.join(s.dcs["dc1"].target, "v")) if not v.endswith(".manifest")]
    h.check(len(kept) <= 3, "dc1 keeps %s" % kept)


def test_two_ups_one_publishes(tmp):
    """Of two saltrelay-ups with sync_source (active-active), one publishes;
    killed with SIGKILL, the other takes over within the lease and publishes
    the next change."""
    s = Sync(tmp, dcs=("dc2",))
    write(os.path.join(s.src, "top.sls"), b"base: {}\n")
    first = s.start_up()
    s.wait_mirrored("dc2", snapshot(s.src))
    second = h.Daemon("up", tmp, "up2", **dict(s.up_cfg, instance="second")).start()
    second.wait_log("publishes the tree; standing by", 10)
    first.kill9()
    second.wait_log("this instance publishes the tree", 30)
    write(os.path.join(s.src, "top.sls"), b"base: {} # changed\n")
    s.wait_mirrored("dc2", snapshot(s.src), timeout=30)
    h.check("published version 2:" in second.log(), "the second instance did not publish")


def stalled_publisher(tmp, before_hold, hold_pattern, while_stopped):
    """Issue 18 item 6. Two saltrelay-ups publish SRC: a, the publisher, talks
    to Redis through a fault proxy, b directly. BEFORE_HOLD(s) prepares the
    tree (publishing it with a, then stopping a); a starts again, the proxy holds a's next command holding HOLD_PATTERN 25 s
    (a write the network delays), a publishes the next change and is
    SIGSTOPped once that command is held; WHILE_STOPPED(s) changes the tree
    meanwhile. Past a's lease (10 s) b takes over and publishes the tree;
    a resumes; then the held command reaches Redis. A DC started after it
    must apply b's version, intact; a stands by."""
    s = Sync(tmp, dcs=("dc2",), start_dcs=False)
    proxy = FaultProxy(s.primary.port)
    a = h.Daemon("up", tmp, "up-a", **dict(s.up_cfg, redis=proxy.url(), instance="a"))
    s.up = a
    b = None
    try:
        before_hold(s)  # publishes with a, stops it
        a.start()
        a.wait_log("tree sync: Redis holds version", 30)
        b = h.Daemon("up", tmp, "up-b", **dict(s.up_cfg, instance="b")).start()
        b.wait_log("publishes the tree; standing by", 10)
        n = a.log().count("published version")
        proxy.hold(hold_pattern, 25)
        t0 = time.monotonic()
        write(os.path.join(s.src, "top.sls"), b"base: {} # held\n")  # a publishes this one
        h.wait_until(lambda: proxy.holds[-1][2] == 0, 30, "a's command held")
        held = time.monotonic()
        a.proc.send_signal(signal.SIGSTOP)
        try:
            while_stopped(s)
            b.wait_log("this instance publishes the tree", 20)
            b.wait_log("published version", 20)
            h.check(time.monotonic() < held + 23, "b published too late for the test (%.1f s)" % (
                time.monotonic() - held))
        finally:
            a.proc.send_signal(signal.SIGCONT)
        want = snapshot(s.src)
        time.sleep(max(0.0, held + 25 + 2 - time.monotonic()))  # the held command reached Redis
        h.check(a.log().count("published version") <= n + 1, "a published after b took over")
        s.dcs["dc2"].start()
        s.wait_mirrored("dc2", want, timeout=30)
        a.wait_log("publishes the tree; standing by", 10)
        h.check(a.proc.poll() is None and b.proc.poll() is None, "a saltrelay-up died")
    finally:
        if a.proc and a.proc.poll() is None:
            a.proc.send_signal(signal.SIGCONT)
        proxy.close()


def test_stalled_publisher_head_fenced(tmp):
    """A publisher stalled (SIGSTOP) while its head write was delayed past
    its lease must not write the head after b took over: b's version stays
    the head (old code: a's late SET made a's older tree the head, its
    chunks already collected by b; the DC never applied b's version)."""
    def before(s):
        write(os.path.join(s.src, "top.sls"), b"base: {}\n")
        s.up.start()
        s.up.wait_log("published version 1:", 30)
        s.up.term()

    def stopped(s):
        write(os.path.join(s.src, "top.sls"), b"base: {} # b's\n")
    stalled_publisher(tmp, before, b"tree:head", stopped)


def test_stalled_publisher_gc_fenced(tmp):
    """A publisher stalled (SIGSTOP) while its collection of a chunk no kept
    version needed was delayed past its lease must not delete it after b
    took over and published a version that holds that content again (old
    code: a's late DEL removed the chunk b's version needs; the DC never
    applied it)."""
    rnd = random.Random(11)
    body = rnd.randbytes(100000)
    cid = hashlib.sha1(body).hexdigest().encode()

    def before(s):
        write(os.path.join(s.src, "top.sls"), b"base: {}\n")
        write(os.path.join(s.src, "files/f.bin"), body)
        s.up.start()
        s.up.wait_log("published version 1:", 30)
        os.unlink(os.path.join(s.src, "files/f.bin"))
        for n in (2, 3):  # version 1, the last to hold f.bin, is dropped by the next one
            write(os.path.join(s.src, "top.sls"), b"base: {} # %d\n" % n)
            s.up.wait_log("published version %d:" % n, 30)
        s.up.term()

    def stopped(s):
        write(os.path.join(s.src, "files/f.bin"), body)
    stalled_publisher(tmp, before, cid, stopped)


def test_status_shows_tree_versions(tmp):
    """saltrelay-status shows each DC's tree version and warns (exit 1) about a
    DC that cannot apply the newest one past status_warn_tree_lag."""
    blocker = os.path.join(tmp, "not-a-dir")
    write(blocker, b"")
    s = Sync(tmp, targets={"dc2": os.path.join(blocker, "target")})  # dc2's cannot be created
    write(os.path.join(s.src, "top.sls"), b"base: {}\n")
    s.up_cfg.update(status_warn_tree_lag=1, status_crit_tree_lag=600)
    s.start_up()
    s.wait_mirrored("dc1", snapshot(s.src))
    s.dcs["dc2"].wait_log("version not applied yet", 30)
    time.sleep(1.5)
    status = os.path.join(h.BUILD, "returner", "saltrelay-status")
    r = subprocess.run([status, "-c", s.up.cfg_path], capture_output=True, timeout=30)
    out = r.stdout.decode()
    h.check(r.returncode == 1, "exit %d:\n%s" % (r.returncode, out))
    h.check("dc2: tree version 0, newest 1" in out, out)
    h.check("newest tree version 1" in out and "TREE" in out, out)
    row = [l for l in out.splitlines() if l.startswith("dc1")][0]
    h.check(" 1 " in row, row)
    r = subprocess.run([status, "-c", s.up.cfg_path, "--json"], capture_output=True, timeout=30)
    h.check('"tree": {"version": 1' in r.stdout.decode() and '"tree_behind": true' in r.stdout.decode(),
            r.stdout.decode())


if __name__ == "__main__":
    h.main(globals())
