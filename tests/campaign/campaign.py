#!/usr/bin/env python3
"""campaign.py -- the random-fault campaign of issue 18.

    python3 tests/campaign/campaign.py --seed N [--minutes M] [--dir DIR] [--keep]

The whole topology on loopback (topology.py: a Redis primary, a core replica
and a replica per DC, three Sentinels, two saltrelay-ups, two DCs each with
its saltrelay-down, a Salt-shaped test MoM, minions and request clients per
DC, tree sync), WAN links through fault proxies (fabric.py), and a nemesis
(nemesis.py) that hits them with faults drawn from the seed: SIGKILL,
SIGSTOP/SIGCONT and restarts of any process, cuts, partitions, stalls and
latency on the links, Sentinel failovers, a Sentinel that learns a switch
late, a full disk under a DC's state_dir or sync_target, slow or stopped
minions. Storms alternate with calms; the run ends with a quiet period and
a final catch-up.

Everything that happens is written as JSON lines and merged into
DIR/history.jsonl (publications the MoM sent, every delivery, every request
attempt and what the MoM received, the faults, the daemons' logs and
metrics, Redis roles, the DCs' trees), which check.py then judges against
docs/failure-semantics.md; the exit status is the checker's. DIR is kept
when the check fails or with --keep.

SALTRELAY_BUILD names the build to test (default: build/); run it with nice.
Every process it starts is ended on exit, Ctrl-C included."""

import argparse
import faulthandler
import glob
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import harness as h  # noqa: E402
import check  # noqa: E402
from nemesis import Nemesis, plan  # noqa: E402
from observe import Observer, daemon_log_records, sentinel_log_records  # noqa: E402
from topology import History, Topology  # noqa: E402


# What a run adds to its faulted part at most: the bring-up (about 10 s when
# the machine is idle, a minute at worst), the quiet end (--final, the
# clients' 40 s drain, 10 s), SIGTERM to every daemon one after another
# (each normally well under a second) and the check. Past it the run hangs:
# it is ended and cleaned up (CI's ctest TIMEOUT is longer, so the campaign's
# own cleanup, which unmounts its tmpfs, is what ends a hung CI run).
TIME_LIMIT_EXTRA = 420


class TimeLimit(KeyboardInterrupt):
    pass


def on_time_limit(sig, frame):
    raise TimeLimit


def parse_args(argv):
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--seed", type=int, required=True)
    a.add_argument("--minutes", type=float, default=1.5, help="length of the faulted part (storms and calms)")
    a.add_argument("--storm", type=float, default=45, help="seconds of faults per cycle")
    a.add_argument("--calm", type=float, default=20, help="seconds without faults after each storm")
    a.add_argument("--gap", default="2,6", help="seconds between two fault starts, LO,HI")
    a.add_argument("--max-concurrent", type=int, default=2)
    a.add_argument("--rate", type=float, default=20, help="publications per second")
    a.add_argument("--final", type=float, default=20, help="quiet seconds before the end (the MoM publishes on)")
    a.add_argument("--dir", help="where to run (kept); default a new directory under /tmp")
    a.add_argument("--keep", action="store_true", help="keep the directory when the check passes")
    a.add_argument("--plan-only", action="store_true", help="print the fault schedule of the seed and exit")
    a.add_argument("--release-only", action="store_true", help="skip (exit 0) in the sanitizer build")
    a.add_argument("--known", default="",
                   help="anomaly classes set aside after a switch (check.py --known)")
    a.add_argument("--time-limit", type=float,
                   help="seconds after which the run is ended and cleaned up, failed (exit 2); "
                        "default: the faulted part plus %d s" % TIME_LIMIT_EXTRA)
    return a.parse_args(argv)


def wait_steady(topo, tmp):
    """Every DC delivers and has a tree."""
    def delivered(dc):
        try:
            with open(os.path.join(tmp, "sub-%s-ref.jsonl" % dc)) as f:
                return '"k":"d"' in f.read()
        except OSError:
            return False
    for dc in ("dc1", "dc2"):
        h.wait_until(lambda: delivered(dc), 60, "%s's first delivery" % dc)
        h.wait_until(lambda: os.path.exists(os.path.join(tmp, dc, "tree", "current")), 60, "%s's first tree" % dc)


def tree_steps(topo, rng, stop):
    while not stop.wait(rng.uniform(3, 8)):
        topo.src.step()


def merge(tmp, topo, out):
    """Every history file and log of the run as one JSONL file, by wall time."""
    recs = []
    for path in [os.path.join(tmp, "campaign.jsonl"), os.path.join(tmp, "mom.jsonl")] + \
            sorted(glob.glob(os.path.join(tmp, "sub-*.jsonl")) + glob.glob(os.path.join(tmp, "req-*.jsonl"))):
        try:
            with open(path) as f:
                for line in f:
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        pass  # a line cut by a SIGKILL of its writer
        except OSError:
            pass
    for p in topo.procs.values():
        if p.kind in ("up", "down"):
            recs += daemon_log_records(p.name, p.d.log_path)
        elif p.kind == "sentinel":
            recs += sentinel_log_records(p.name, p.log_path())
    recs.sort(key=lambda r: r.get("w", 0))
    with open(out, "w") as f:
        for r in recs:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    return len(recs)


def final(topo, hist, obs, stop_tree, quiet):
    """The quiet end: no fault, the tree stops changing, the MoM and the
    clients stop after QUIET seconds, and whatever is in flight lands."""
    hist.add("quiet")
    stop_tree.set()
    time.sleep(quiet)
    topo.procs["mom"].signal(signal.SIGUSR1, "quiet")
    for dc in ("dc1", "dc2"):
        topo.procs["reqs-" + dc].signal(signal.SIGUSR1, "drain")
    deadline = time.monotonic() + 40
    for dc in ("dc1", "dc2"):
        p = topo.procs["reqs-" + dc]
        p.want = False
        while p.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
    time.sleep(10)
    obs.hist_tree_snapshot(final=True)
    hist.add("src_final", gens=topo.src.gens())
    hist.add("final")


def run(args):
    if args.dir and os.path.isdir(args.dir) and os.listdir(args.dir):
        print("%s is not empty: every history file is appended to, so a run needs a new directory" % args.dir)
        return 2
    tmp = args.dir or tempfile.mkdtemp(prefix="saltrelay-campaign-%d-" % args.seed)
    os.makedirs(tmp, exist_ok=True)
    hist = History(os.path.join(tmp, "campaign.jsonl"))
    topo = Topology(tmp, hist, args.seed, args.rate)
    nem = Nemesis(topo, hist)
    obs = Observer(topo, hist)
    stop_sup, stop_tree = threading.Event(), threading.Event()
    gap = tuple(float(x) for x in args.gap.split(","))
    ok, rc = False, 2
    t_begin = time.monotonic()
    print("campaign seed %d, %.1f min, in %s (build %s)" % (args.seed, args.minutes, tmp, h.BUILD), flush=True)
    try:
        topo.build()
        wait_steady(topo, tmp)
        disks = all(d.mounted for d in topo.disks.values())
        faults, cps = plan(args.seed, args.minutes * 60, args.storm, args.calm, gap, args.max_concurrent, disks)
        hist.add("run", seed=args.seed, minutes=args.minutes, rate=args.rate, storm=args.storm, calm=args.calm,
                 gap=list(gap), max_concurrent=args.max_concurrent, build=h.BUILD, sanitized=h.sanitized(),
                 disks_mounted=disks, topology=topo.describe())
        hist.add("plan", faults=faults, checkpoints=cps)
        print("set up in %.0f s; %d faults planned%s" % (time.monotonic() - t_begin, len(faults),
              "" if disks else " (no tmpfs: no full-disk faults)"), flush=True)
        obs.start()
        threading.Thread(target=topo.supervise, args=(stop_sup,), daemon=True).start()
        threading.Thread(target=tree_steps, args=(topo, random.Random(args.seed * 13 + 5), stop_tree),
                         daemon=True).start()
        t0 = time.monotonic()
        hist.add("start")
        nem.run(faults, cps, t0)
        final(topo, hist, obs, stop_tree, args.final)
        obs.close()
        stop_sup.set()
        topo.stop_all()
        for line in h.sanitizer_reports(tmp):
            hist.add("sanitizer", line=line[:500])
        ok = True
    except TimeLimit:
        print("time limit reached: the run hangs; cleaning up", flush=True)
        traceback.print_exc()
        faulthandler.dump_traceback()
    except KeyboardInterrupt:
        print("interrupted: cleaning up", flush=True)
    except Exception:
        traceback.print_exc()
    finally:
        signal.alarm(0)  # the cleanup below is bounded itself and must not be cut short
        nem.stop.set()
        stop_tree.set()
        stop_sup.set()
        obs.close()
        topo.cleanup()
        hist.close()
    if not ok:
        topo.release(keep=True)
        print("the run did not finish; files kept in %s" % tmp)
        return 2
    try:
        n = merge(tmp, topo, os.path.join(tmp, "history.jsonl"))
        print("ran %.0f s; history: %d lines in %s" % (time.monotonic() - t_begin, n,
                                                      os.path.join(tmp, "history.jsonl")), flush=True)
        rc = check.main(["--known=" + args.known, os.path.join(tmp, "history.jsonl")])
    finally:
        keep = rc != 0 or args.keep or args.dir
        topo.release(keep=keep)
    if keep:
        print("files kept in %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args.release_only and h.sanitized():
        print("skipped: the sanitizer build runs the other seed only")
        return 0
    if args.plan_only:
        faults, cps = plan(args.seed, args.minutes * 60, args.storm, args.calm,
                           tuple(float(x) for x in args.gap.split(",")), args.max_concurrent)
        for f in faults:
            print(json.dumps(f))
        print("checkpoints: %s" % cps)
        return 0

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started with SIGINT ignored (a shell's background job)
    signal.signal(signal.SIGALRM, on_time_limit)
    signal.alarm(int(args.time_limit or args.minutes * 60 + TIME_LIMIT_EXTRA))
    faulthandler.register(signal.SIGUSR2)  # kill -USR2: where every thread is
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
