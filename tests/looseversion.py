"""looseversion.py -- a small stand-in for the `looseversion` module (on PyPI,
not packaged in Debian 12), which Salt's salt/utils/versions.py imports to
subclass LooseVersion. Our own code, only what Salt uses: the constructor,
parse(), .vstring, .version (numbers as int, words as str) and comparisons
through _cmp(), which Salt's subclass overrides for mixed parts.
tests/test_salt.py puts this directory on the PYTHONPATH of Salt's
processes when Salt runs from a source tree."""

import re

_PART = re.compile(r"(\d+|[a-z]+|\.)")


class LooseVersion:
    def __init__(self, vstring=None):
        if vstring:
            self.parse(vstring)

    def parse(self, vstring):
        self.vstring = vstring
        parts = [p for p in _PART.split(vstring) if p and p != "."]
        self.version = [int(p) if p.isdigit() else p for p in parts]

    def __str__(self):
        return self.vstring

    def __repr__(self):
        return "LooseVersion(%r)" % str(self)

    def _cmp(self, other):
        if isinstance(other, str):
            other = type(self)(other)
        elif not isinstance(other, LooseVersion):
            return NotImplemented
        if self.version == other.version:
            return 0
        return -1 if self.version < other.version else 1

    def _compare(self, other, test):
        c = self._cmp(other)
        return c if c is NotImplemented else test(c)

    def __eq__(self, other):
        return self._compare(other, lambda c: c == 0)

    def __lt__(self, other):
        return self._compare(other, lambda c: c < 0)

    def __le__(self, other):
        return self._compare(other, lambda c: c <= 0)

    def __gt__(self, other):
        return self._compare(other, lambda c: c > 0)

    def __ge__(self, other):
        return self._compare(other, lambda c: c >= 0)

    __hash__ = None  # mutable through parse(), like the original
