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
  connections are taken but not connected), then reset every connection.

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


class FaultProxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.latency = 0.0
        self.holds = []  # [pattern bytes, seconds, chunks left, client-to-server]
        self.lock = threading.Lock()
        self.conns = []  # [client socket, server socket or None]
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = False
        self.cuts = 0
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

    def hold(self, pattern, seconds, count=1, replies=False):
        with self.lock:
            self.holds.append([pattern, seconds, count, not replies])

    def cut(self):
        """Reset every connection now."""
        with self.lock:
            conns, self.conns = self.conns, []
            self.cuts += 1
        for pair in conns:
            for s in pair:
                if s is not None:
                    _reset(s)

    def partition(self, seconds):
        """Forward nothing for SECONDS, then reset every connection."""
        self.flowing.clear()
        time.sleep(seconds)
        self.cut()
        self.flowing.set()

    def partition_async(self, seconds):
        t = threading.Thread(target=self.partition, args=(seconds,), daemon=True)
        t.start()
        return t

    def close(self):
        self.closed = True
        self.flowing.set()
        self.cut()
        self.thread.join(timeout=5)
        self.listener.close()

    def _accept_loop(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            pair = [client, None]
            with self.lock:
                self.conns.append(pair)
            threading.Thread(target=self._connect, args=(pair,), daemon=True).start()

    def _connect(self, pair):
        # a partition also stalls new connections (the SYN got through, nothing else)
        while not self.flowing.wait(0.2):
            if self.closed:
                return
        try:
            server = socket.create_connection(self.target, timeout=5)
            server.settimeout(None)
        except OSError:
            _reset(pair[0])
            return
        with self.lock:
            if pair not in self.conns:  # cut meanwhile
                _reset(server)
                return
            pair[1] = server
        threading.Thread(target=self._pump, args=(pair[0], server, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, pair[0], False), daemon=True).start()

    def _delay(self, data, upstream):
        d = self.latency
        with self.lock:
            for h in self.holds:
                if h[2] > 0 and h[3] == upstream and h[0] in data:
                    h[2] -= 1
                    d = max(d, h[1])
        return d

    def _pump(self, src, dst, upstream):
        while True:
            try:
                data = src.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            d = self._delay(data, upstream)
            if d:
                time.sleep(d)
            while not self.flowing.wait(0.2):
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
