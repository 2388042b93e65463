#!/usr/bin/env bash
# demo.sh -- quick start: install what is missing, build, run a live demo on
# loopback (Redis + replica, saltrelay-up, two saltrelay-down DCs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec python3 tests/demo.py
