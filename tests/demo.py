"""demo.py -- a live demo of saltrelay on loopback (run by tests/demo.sh):
a Redis primary and a replica, saltrelay-up, two saltrelay-down
"datacenters" (dc1 reads the replica, dc2 the primary), a demo MoM publisher
and one demo subscriber per DC. Prints each message as it arrives per DC with
the DC's cursor; stops dc2 for a few seconds to show that it catches up."""

import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_pub import read_state  # noqa: E402


def cursor(state_dir):
    return read_state(state_dir).get("cursor", "?")


def follow(dc, proc, state_dir, counts):
    for line in proc.stdout:
        payload = bytes.fromhex(line.decode().split()[-1])
        counts[dc] += 1
        print("  [%s] got %-26s saved cursor %s" % (dc, payload[:26].decode(errors="replace"), cursor(state_dir)),
              flush=True)


def main():
    tmp = tempfile.mkdtemp(prefix="saltrelay-demo-")
    print("saltrelay demo in %s (logs there)" % tmp)
    primary = h.Redis(tmp, "redis-primary")
    replica = h.Redis(tmp, "redis-replica", replicaof=primary)
    mom = "tcp://127.0.0.1:%d" % h.free_port()
    up = h.Daemon("up", tmp, "saltrelay-up", cluster="demo", master_publish=mom,
                  master_ret="tcp://127.0.0.1:%d" % h.free_port(), redis=primary.url).start()
    downs, subs, counts = {}, {}, {"dc1": 0, "dc2": 0}
    for dc, src in (("dc1", replica), ("dc2", primary)):
        state = os.path.join(tmp, "state-" + dc)
        os.makedirs(state)
        port = h.free_port()
        downs[dc] = h.Daemon("down", tmp, "saltrelay-down-" + dc, cluster="demo", datacenter=dc,
                             redis=src.url, redis_primary=primary.url,
                             publish_bind="tcp://127.0.0.1:%d" % port,
                             ret_bind="tcp://127.0.0.1:%d" % h.free_port(), state_dir=state).start()
        sub = h.spawn([h.tool("zsub"), "tcp://127.0.0.1:%d" % port, "--max-ms", 60000],
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        subs[dc] = sub
        threading.Thread(target=follow, args=(dc, sub, state, counts),
                         daemon=True).start()
    print("MoM publisher %s -> saltrelay-up -> Redis %s -> dc1 (via replica %s), dc2" %
          (mom, primary.url, replica.url))
    time.sleep(1)
    pub = h.spawn([h.tool("zpub"), mom, "--gen", 30, "--size", 64, "--rate", 3],
                  stderr=subprocess.DEVNULL)
    time.sleep(4)
    print("== stopping dc2's saltrelay-down for 3 s (its minions keep their connection attempts)")
    downs["dc2"].term()
    time.sleep(3)
    print("== starting dc2 again: it resumes right after its saved cursor")
    downs["dc2"].start()
    pub.wait(timeout=60)
    time.sleep(2)
    for d in list(downs.values()) + [up]:
        d.term()
    h.cleanup()
    print("== done: dc1 received %d, dc2 received %d of 30 publications" % (counts["dc1"], counts["dc2"]))
    return 0 if counts["dc1"] == counts["dc2"] == 30 else 1


if __name__ == "__main__":
    sys.exit(main())
