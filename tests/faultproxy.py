"""faultproxy.py -- a user-space TCP fault proxy for the tests (these machines
have no tc netem): it listens on a free loopback port and forwards every
connection to a target port, and the test can make the link bad:

* latency: every chunk waits this long before it is forwarded (each direction
  in order, so the bytes keep their order, as on a long link);
* hold(pattern, seconds, count): the next COUNT client-to-server chunks
  holding PATTERN wait SECONDS (makes a command late, deterministically);
  with replies=True server-to-client chunks (a reply held back: a cut()
  meanwhile loses it, after the server executed the command);
* cut(): reset every connection (RST, as a router dropping state);
* partition(seconds): forward nothing for SECONDS (nothing is lost yet; new
  connections are taken but not connected), then reset every connection;
* stall() ... resume(): forward nothing meanwhile, then go on where it
  stopped (a link that stops without dropping any connection).

These faults belong to a Link. A proxy is one link by default; with LINK_OF
each connection crosses the Link that LINK_OF names for its client's address
(the random-fault campaign, tests/campaign/fabric.py, gives each pair of
hosts its own link and tells hosts apart by their loopback source address).

Threads, one per direction of each connection; every wait is bounded."""

import socket
import struct
import threading
import time

CHUNK = 65536


def _reset(sock):
    """Close SOCK with an RST (SO_LINGER 0), ignoring a socket already gone.
    SHUT_RD first wakes the pump blocked in recv() on it: a close() alone
    would leave the socket alive (and silent) until that recv() returned."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _reset_pairs(pairs):
    for pair in pairs:
        for s in pair:
            if s is not None:
                _reset(s)


class Link:
    """The faults of one link, suffered by every connection that crosses it."""

    def __init__(self):
        self.latency = 0.0
        self.holds = []  # [pattern bytes, seconds, chunks left, client-to-server]
        self.lock = threading.Lock()
        self.conns = []  # [client socket, server socket or None]
        self.flowing = threading.Event()
        self.flowing.set()
        self.cuts = 0

    def hold(self, pattern, seconds, count=1, replies=False):
        with self.lock:
            self.holds.append([pattern, seconds, count, not replies])

    def cut(self):
        """Reset every connection now."""
        with self.lock:
            conns, self.conns = self.conns, []
            self.cuts += 1
        _reset_pairs(conns)

    def stall(self):
        """Forward nothing (and connect nothing new) until resume()."""
        self.flowing.clear()

    def resume(self):
        self.flowing.set()

    def partition(self, seconds):
        """Forward nothing for SECONDS, then reset every connection."""
        self.stall()
        time.sleep(seconds)
        self.cut()
        self.resume()

    def partition_async(self, seconds):
        t = threading.Thread(target=self.partition, args=(seconds,), daemon=True)
        t.start()
        return t

    def _delay(self, data, upstream):
        d = self.latency
        with self.lock:
            for h in self.holds:
                if h[2] > 0 and h[3] == upstream and h[0] in data:
                    h[2] -= 1
                    d = max(d, h[1])
        return d


class FaultProxy(Link):
    def __init__(self, target_port, target_host="127.0.0.1", link_of=None):
        super().__init__()
        self.target = (target_host, target_port)
        self.link_of = link_of or (lambda addr: self)
        self.closed = False
        self.pairs = []  # every connection of this proxy, whichever link it crosses
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def url(self, scheme="redis"):
        return "%s://127.0.0.1:%d" % (scheme, self.port)

    def close(self):
        self.closed = True
        self.flowing.set()
        with self.lock:
            pairs, self.pairs = self.pairs, []
        _reset_pairs(pairs)
        self.thread.join(timeout=5)
        self.listener.close()

    def _accept_loop(self):
        while not self.closed:
            try:
                client, addr = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            link = self.link_of(addr)
            pair = [client, None]
            with link.lock:
                link.conns.append(pair)
            with self.lock:
                self.pairs = [p for p in self.pairs if p[0].fileno() >= 0 or (p[1] and p[1].fileno() >= 0)] + [pair]
            threading.Thread(target=self._connect, args=(pair, link), daemon=True).start()

    def _connect(self, pair, link):
        # a partition also stalls new connections (the SYN got through, nothing else)
        while not link.flowing.wait(0.2):
            if self.closed:
                return
        try:
            server = socket.create_connection(self.target, timeout=5)
            server.settimeout(None)
        except OSError:
            _reset(pair[0])
            return
        with link.lock:
            if pair not in link.conns:  # cut meanwhile
                _reset(server)
                return
            pair[1] = server
        threading.Thread(target=self._pump, args=(pair, True, link), daemon=True).start()
        threading.Thread(target=self._pump, args=(pair, False, link), daemon=True).start()

    def _pump(self, pair, upstream, link):
        src, dst = pair if upstream else pair[::-1]
        while True:
            try:
                data = src.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            d = link._delay(data, upstream)
            if d:
                time.sleep(d)
            while not link.flowing.wait(0.2):
                if self.closed:
                    break
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # the other direction ends too (its recv sees the shutdown); each
        # closes what it read from, so no descriptor outlives the connection
        src.close()
        with link.lock:
            if pair in link.conns:
                link.conns.remove(pair)
