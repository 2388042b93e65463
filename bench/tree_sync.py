#!/usr/bin/env python3
"""tree_sync.py -- tree sync benchmark (docs/filesync.md): time and WAN bytes
to bring 3 DCs to a new version of a large tree, next to `rsync -a` from the
MoM to each DC (what operators do today), measured in the same run.

    python3 bench/tree_sync.py BUILD_DIR [--files N] [--large N] [--large-mb N]

saltrelay: a Redis primary and one replica per DC, saltrelay-up publishing the
tree, one saltrelay-down per DC reading its replica. WAN bytes = what the
primary sends each replica (growth of master_repl_offset, times the number of
replicas). Time: from the change on the MoM to the third DC's `current`
switched to the new version (all verified afterwards against the source).

rsync: `rsync -a --delete` from the source to one directory per DC, one after
the other as a cron loop does, over a remote-shell pipe (a local stand-in for
ssh without encryption, so rsync uses its delta transfer as over a network).
WAN bytes = rsync's "Total bytes sent" + "received" per DC.

Two phases: the initial copy, then an update (modify, add, delete, chmod)."""

import argparse
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import harness as h  # noqa: E402

CLUSTER = "bench"
DCS = ("dc1", "dc2", "dc3")


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def make_tree(root, files, large, large_mb, rnd):
    for i in range(files):
        write(os.path.join(root, "states/role%03d/file %05d.sls" % (i % 100, i)),
              rnd.randbytes(rnd.randint(200, 16000)), 0o755 if i % 17 == 0 else 0o644)
    for i in range(large):
        write(os.path.join(root, "files/blob-%02d.bin" % i), rnd.randbytes(large_mb * 1024 * 1024))


def update_tree(root, files, large, rnd):
    """Modify 1 % of the small files, 1 MiB in a quarter of the large ones, add
    and delete 0.5 %, chmod 0.5 %. Returns the bytes changed."""
    changed = 0
    step = max(1, files // (files // 100 or 1))
    for i in range(0, files, step):
        data = rnd.randbytes(rnd.randint(200, 16000))
        write(os.path.join(root, "states/role%03d/file %05d.sls" % (i % 100, i)), data)
        changed += len(data)
    for i in range(0, large, 4):
        with open(os.path.join(root, "files/blob-%02d.bin" % i), "r+b") as f:
            f.seek(3 * 1024 * 1024 + 17)
            f.write(rnd.randbytes(1024 * 1024))
        changed += 1024 * 1024
    for i in range(1, files, 200):
        os.unlink(os.path.join(root, "states/role%03d/file %05d.sls" % (i % 100, i)))
        data = rnd.randbytes(4000)
        write(os.path.join(root, "new/added %05d.sls" % i), data)
        changed += len(data)
    for i in range(3, files, 200):
        p = os.path.join(root, "states/role%03d/file %05d.sls" % (i % 100, i))
        if os.path.exists(p):
            os.chmod(p, 0o755)
    return changed


def digest(root):
    out = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = (hashlib.sha1(fh.read()).hexdigest(), os.stat(p).st_mode & 0o100)
    return out


def tree_bytes(root):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)


class Relay:
    def __init__(self, tmp, src):
        self.tmp = tmp
        self.primary = h.Redis(tmp, "primary")
        self.replicas = {dc: h.Redis(tmp, "replica-" + dc, replicaof=self.primary) for dc in DCS}
        for r in self.replicas.values():
            h.wait_until(lambda: "master_link_status:up" in r.cli("info", "replication"), 30, "replica link")
        self.up = h.Daemon("up", tmp, "up", cluster=CLUSTER, redis=self.primary.url,
                           master_publish="tcp://127.0.0.1:%d" % h.free_port(),
                           master_ret="tcp://127.0.0.1:%d" % h.free_port(), sync_source=src,
                           sync_max_bytes=8 * 1024 ** 3)
        self.downs = {}
        for dc in DCS:
            os.makedirs(os.path.join(tmp, "state-" + dc), exist_ok=True)
            self.downs[dc] = h.Daemon("down", tmp, dc, cluster=CLUSTER, datacenter=dc,
                                      redis=self.replicas[dc].url, redis_primary=self.primary.url,
                                      publish_bind="tcp://127.0.0.1:%d" % h.free_port(),
                                      ret_bind="tcp://127.0.0.1:%d" % h.free_port(),
                                      state_dir=os.path.join(tmp, "state-" + dc),
                                      sync_target=os.path.join(tmp, "target-" + dc),
                                      sync_max_bytes=8 * 1024 ** 3).start()

    def offset(self):
        info = self.primary.cli("info", "replication")
        return int(re.search(r"master_repl_offset:(\d+)", info).group(1))

    def versions(self):
        out = {}
        for dc in DCS:
            try:
                out[dc] = int(os.readlink(os.path.join(self.tmp, "target-" + dc, "current")).split("/")[1]
                              .split("-")[0])
            except OSError:
                out[dc] = 0
        return out

    def wait_version(self, v, timeout=1800):
        h.wait_until(lambda: all(x >= v for x in self.versions().values()), timeout, "3 DCs at version %d" % v)


def published(relay):
    m = re.findall(r"published version (\d+)", relay.up.log()) if os.path.exists(relay.up.log_path) else []
    return int(m[-1]) if m else 0


def relay_phase(relay, change, src):
    """Run CHANGE (a function) and time until every DC holds the new version."""
    before = relay.offset()
    v0 = published(relay)
    t0 = time.monotonic()
    change()
    h.wait_until(lambda: published(relay) > v0, 600, "a new version published")
    relay.wait_version(published(relay))
    elapsed = time.monotonic() - t0
    h.wait_until(lambda: published(relay) == max(relay.versions().values()), 60, "settled")
    want = digest(src)
    for dc in DCS:
        got = digest(os.path.realpath(os.path.join(relay.tmp, "target-" + dc, "current")))
        h.check(got == want, "%s does not mirror the source" % dc)
    return elapsed, (relay.offset() - before) * len(DCS)


def rsync_phase(tmp, src):
    shell = os.path.join(tmp, "fake-ssh")
    with open(shell, "w") as f:  # "ssh HOST CMD...": run CMD here, over the pipe rsync set up
        f.write("#!/bin/sh\nshift\nexec \"$@\"\n")
    os.chmod(shell, 0o755)
    total, t0 = 0, time.monotonic()
    for dc in DCS:
        out = subprocess.run(["rsync", "-a", "--delete", "--stats", "--rsh=" + shell, src + "/",
                              "localhost:" + os.path.join(tmp, "rsync-" + dc) + "/"],
                             capture_output=True, check=True, timeout=1800).stdout.decode()
        sent = int(re.search(r"Total bytes sent: ([\d,]+)", out).group(1).replace(",", ""))
        received = int(re.search(r"Total bytes received: ([\d,]+)", out).group(1).replace(",", ""))
        total += sent + received
    return time.monotonic() - t0, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--large", type=int, default=8)
    ap.add_argument("--large-mb", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    h.BIN["up"] = os.path.join(os.path.abspath(a.build), "relay-up", "saltrelay-up")
    h.BIN["down"] = os.path.join(os.path.abspath(a.build), "relay-down", "saltrelay-down")
    h.check(shutil.which("rsync"), "rsync is not installed")
    tmp = tempfile.mkdtemp(prefix="saltrelay-treebench-")
    src = os.path.join(tmp, "src")
    rnd = random.Random(a.seed)
    try:
        make_tree(src, a.files, a.large, a.large_mb, rnd)
        size = tree_bytes(src)
        print("tree: %d files, %.1f MB; 3 DCs" % (a.files + a.large, size / 1e6))
        relay = Relay(tmp, src)
        r_init = relay_phase(relay, relay.up.start, src)
        s_init = rsync_phase(tmp, src)
        changed = []
        r_upd = relay_phase(relay, lambda: changed.append(update_tree(src, a.files, a.large, rnd)), src)
        s_upd = rsync_phase(tmp, src)
        print("update: %.1f MB of content changed" % (changed[0] / 1e6))
        print("%-22s %10s %14s %10s %14s" % ("", "saltrelay", "", "rsync -a", ""))
        print("%-22s %10s %14s %10s %14s" % ("phase", "time s", "WAN MB", "time s", "WAN MB"))
        for name, r, s in (("initial copy", r_init, s_init), ("update", r_upd, s_upd)):
            print("%-22s %10.2f %14.2f %10.2f %14.2f" % (name, r[0], r[1] / 1e6, s[0], s[1] / 1e6))
            print("%-22s %10s %14s   time x%.2f, WAN bytes x%.2f (saltrelay / rsync)" %
                  ("", "", "", r[0] / s[0] if s[0] else 0, r[1] / s[1] if s[1] else 0))
    finally:
        h.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
