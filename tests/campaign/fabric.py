"""fabric.py -- the campaign's network: hosts on loopback source addresses and
one fault Link (tests/faultproxy.py) per pair of hosts.

Every server that is reached from another host (each Redis, each Sentinel)
sits behind a front proxy, and announces the proxy's port (Redis
replica-announce-port, Sentinel announce-port), so that every connection to
it, whoever made it, crosses the proxy. The proxy tells the client's host by
its source address: Redis and Sentinels leave from their host's address
(bind-source-addr), saltrelay-down through tests/tools/srcbind.c, and what
runs on the MoM host from 127.0.0.1. A connection within one host crosses no
fault."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from faultproxy import FaultProxy, Link  # noqa: E402

# host name -> its loopback address; "mom" is the MoM host (saltrelay-ups, a
# Sentinel), "ca"/"cb" the core hosts of the two promotable Redis servers,
# "dc1"/"dc2" the datacenters (their Redis replica, saltrelay-down, minions).
HOSTS = {"mom": "127.0.0.1", "ca": "127.0.1.1", "cb": "127.0.1.2", "dc1": "127.0.1.11", "dc2": "127.0.1.12"}
CORE = ("mom", "ca", "cb")


class Fabric:
    def __init__(self):
        self.by_ip = {ip: h for h, ip in HOSTS.items()}
        self.links = {}
        self.lock = threading.Lock()
        self.local = Link()  # within a host: never faulted
        self.proxies = []

    def link(self, a, b):
        """The Link between hosts A and B (the same object either way)."""
        if a == b:
            return self.local
        key = tuple(sorted((a, b)))
        with self.lock:
            if key not in self.links:
                self.links[key] = Link()
            return self.links[key]

    def host_of(self, ip):
        return self.by_ip.get(ip, "mom")

    def front(self, port, host):
        """A proxy in front of PORT, a server on HOST."""
        p = FaultProxy(port, link_of=lambda addr: self.link(self.host_of(addr[0]), host))
        self.proxies.append(p)
        return p

    def links_of(self, spec):
        """The links a fault on SPEC hits: "dc1" (a DC's WAN: its links to
        every core host), "ca-cb" (one pair), "ca-cb,ca-dc1" (pairs),
        "isolate:ca" (a host from all)."""
        if "," in spec:
            return [l for part in spec.split(",") for l in self.links_of(part)]
        if spec.startswith("isolate:"):
            h = spec.split(":", 1)[1]
            return [self.link(h, o) for o in HOSTS if o != h]
        if "-" in spec:
            a, b = spec.split("-")
            return [self.link(a, b)]
        return [self.link(spec, c) for c in CORE]

    def close(self):
        for links in self.links.values():
            links.resume()
        for p in self.proxies:
            p.close()
