#!/usr/bin/env bash
# run.sh -- run the publication path benchmark: starts its own redis-server
# and saltrelay-up / saltrelay-down on free loopback ports, runs
# saltrelay-bench against them, then prints the daemons' memory (from /proc).
#   bench/run.sh BUILD_DIR [--ups N] [saltrelay-bench options, e.g. --count 200000]
# BUILD_DIR holds relay-up/, relay-down/ and bench/ (a release build).
# --ups 2 runs two saltrelay-ups with the same config (active-active, as the
# HA setup: each publication reaches Redis twice, stored once by the store
# script's dedup); the CPU line then counts the first.
set -euo pipefail
build=$(cd "${1:?usage: bench/run.sh BUILD_DIR [--ups N] [bench options]}" && pwd)
shift
ups=1
if [ "${1:-}" = --ups ]; then
  ups=${2:?--ups N}
  shift 2
fi
tmp=$(mktemp -d /tmp/saltrelay-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_log() { # FILE TEXT
  for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "bench: timed out waiting for '$2' in $1"; cat "$1"; exit 1
}
rss() { # PID NAME
  awk -v n="$2" '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{printf "%-15s RSS %6.1f MB (peak %6.1f MB)\n", n, r/1024, h/1024}' \
    "/proc/$1/status"
}

rport=$(free_port); mom=$(free_port); ret=$(free_port); dcpub=$(free_port); dcret=$(free_port); direct=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  --logfile "$tmp/redis.log" &
redis=$!; pids+=($redis)
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done

cat >"$tmp/up.yaml" <<EOT
cluster: bench
redis: redis://127.0.0.1:$rport
master_publish: tcp://127.0.0.1:$mom
master_ret: tcp://127.0.0.1:$ret
EOT
cat >"$tmp/down.yaml" <<EOT
cluster: bench
datacenter: dc1
redis: redis://127.0.0.1:$rport
publish_bind: tcp://127.0.0.1:$dcpub
ret_bind: tcp://127.0.0.1:$dcret
state_dir: $tmp
EOT
"$build/relay-up/saltrelay-up" -c "$tmp/up.yaml" 2>"$tmp/up.log" &
up=$!; pids+=($up)
for i in $(seq 2 "$ups"); do
  "$build/relay-up/saltrelay-up" -c "$tmp/up.yaml" 2>"$tmp/up$i.log" &
  pids+=($!)
done
"$build/relay-down/saltrelay-down" -c "$tmp/down.yaml" 2>"$tmp/down.log" &
down=$!; pids+=($down)
wait_log "$tmp/up.log" ready
for i in $(seq 2 "$ups"); do wait_log "$tmp/up$i.log" ready; done
wait_log "$tmp/down.log" ready
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
echo "redis: $(redis-server --version | grep -o 'v=[0-9.]*'), saltrelay $("$build/relay-up/saltrelay-up" --version), $ups saltrelay-up(s)"
echo "memory before:"; rss "$up" saltrelay-up; rss "$down" saltrelay-down
"$build/bench/saltrelay-bench" --redis "$rport" --mom "tcp://127.0.0.1:$mom" --dc "tcp://127.0.0.1:$dcpub" \
  --direct "tcp://127.0.0.1:$direct" --pids "redis=$redis,up=$up,down=$down" "$@"
echo "memory after:"; rss "$up" saltrelay-up; rss "$down" saltrelay-down
grep -hE 'dropp|error' "$tmp"/up*.log "$tmp/down.log" || true
echo "stored: $(redis-cli -p "$rport" INFO commandstats | grep -o 'cmdstat_evalsha:calls=[0-9]*' || echo 'no script call'), $(redis-cli -p "$rport" XLEN saltrelay:{bench}:pub) stream entries"
