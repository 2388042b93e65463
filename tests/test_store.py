"""test_store.py -- the publication store (redis/pubstore.c, issue 21): what
a publication costs on every DC's WAN link (the primary's replication
stream), one script call per batch, and the dedup index, which is not
replicated: a promoted replica rebuilds it from the stream."""

import os
import re

import harness as h
from test_pub import CLUSTER, STREAM, stream_serials


def offset(redis):
    return int(re.search(r"master_repl_offset:(\d+)", redis.cli("INFO", "replication")).group(1))


def caught_up(primary, replica):
    """The replica has everything the primary wrote so far."""
    want = offset(primary)
    info = replica.cli("INFO", "replication")
    m = re.search(r"slave_repl_offset:(\d+)", info)
    return "master_link_status:up" in info and m and int(m.group(1)) >= want


def primary_and_replica(tmp):
    primary = h.Redis(tmp, "primary")
    replica = h.Redis(tmp, "replica", replicaof=primary)
    h.wait_until(lambda: caught_up(primary, replica), 20, "replica link up")
    return primary, replica


def up_on(tmp, name, redis, mom_pub):
    return h.Daemon("up", tmp, name, metrics=True, cluster=CLUSTER, redis=redis.url, master_publish=mom_pub,
                    master_ret="tcp://127.0.0.1:%d" % h.free_port()).start()


def script_calls(redis):
    m = re.search(r"cmdstat_evalsha:calls=(\d+)", redis.cli("INFO", "commandstats"))
    return int(m.group(1)) if m else 0


def test_replicated_bytes_per_publication(tmp):
    """A burst of 500 publications of 1 KiB: the primary's replication
    stream (master_repl_offset, with a replica attached) grows by at most
    payload + 5 % + 100 B per publication (issue 21's aim; the old
    per-publication script replicated its INCR, its dedup key and a MULTI
    around them: 1,437 B), and Redis ran fewer script calls than
    publications (batches)."""
    n, size = 500, 1024
    primary, replica = primary_and_replica(tmp)
    mom_pub = "tcp://127.0.0.1:%d" % h.free_port()
    up_on(tmp, "up", primary, mom_pub)
    before = offset(primary)
    h.zpub(mom_pub, "--gen", n, "--size", size)
    h.wait_until(lambda: primary.cli("XLEN", STREAM) == str(n), 30, "%d stored" % n)
    h.wait_until(lambda: caught_up(primary, replica), 30, "the replica caught up")
    per = (offset(primary) - before) / n  # saltrelay-up's heartbeat writes are in it too: a few bytes each
    calls = script_calls(primary)
    print("%.1f B replicated per publication of %d B (aim <= %.0f); %d script calls for %d" %
          (per, size, size * 1.05 + 100, calls, n))
    h.check(per <= size * 1.05 + 100, "%.1f B replicated per publication of %d B" % (per, size))
    h.check(calls < n, "%d script calls for %d publications: not batched" % (calls, n))
    h.check(replica.cli("EXISTS", "saltrelay:{%s}:pubidx" % CLUSTER) == "0", "the index was replicated")


def test_promoted_replica_dedups(tmp):
    """The dedup index is not replicated: after 200 publications were stored
    the replica is promoted (REPLICAOF NO ONE) and another saltrelay-up sends
    it the same 200 (what a re-send after a failover does): the first store
    rebuilds the index from the stream, all 200 are found stored
    (pub_retry_duplicates_total 200), none twice, and 100 new ones continue
    the serials (201..300)."""
    primary, replica = primary_and_replica(tmp)
    same = os.path.join(tmp, "same.txt")
    more = os.path.join(tmp, "more.txt")
    with open(same, "w") as f:
        f.writelines("%s\n" % (("%06d" % i).encode().hex() * 20) for i in range(200))
    with open(more, "w") as f:
        f.writelines("%s\n" % (("new%06d" % i).encode().hex() * 20) for i in range(100))
    mom_a = "tcp://127.0.0.1:%d" % h.free_port()
    up_on(tmp, "up-a", primary, mom_a)
    h.zpub(mom_a, "--lines", same)
    h.wait_until(lambda: replica.cli("XLEN", STREAM) == "200", 30, "200 stored and replicated")
    h.check(primary.cli("EXISTS", "saltrelay:{%s}:pubidx" % CLUSTER) == "1", "the primary has no index")
    h.check(replica.cli("EXISTS", "saltrelay:{%s}:pubidx" % CLUSTER) == "0", "the index was replicated")
    replica.cli("REPLICAOF", "NO", "ONE")
    mom_b = "tcp://127.0.0.1:%d" % h.free_port()
    b = up_on(tmp, "up-b", replica, mom_b)
    h.zpub(mom_b, "--lines", same)
    h.wait_until(lambda: b.metrics().get("pub_retry_duplicates_total", 0) +
                 b.metrics().get("pub_stored_total", 0) >= 200, 30, "the 200 sent again answered")
    m = b.metrics()
    h.check(m["pub_retry_duplicates_total"] == 200 and m["pub_stored_total"] == 0,
            "the promoted replica stored %d of the 200 again (duplicates found: %d)" %
            (m["pub_stored_total"], m["pub_retry_duplicates_total"]))
    h.zpub(mom_b, "--lines", more)
    h.wait_until(lambda: replica.cli("XLEN", STREAM) == "300", 30, "100 new ones stored")
    h.check(stream_serials(replica) == list(range(1, 301)), "serials are not 1..300 once each")


if __name__ == "__main__":
    h.main(globals())
