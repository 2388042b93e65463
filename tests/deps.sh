#!/usr/bin/env bash
# deps.sh -- install what saltrelay needs to build and test, from Debian 12's
# packages only. Does nothing when everything is already installed.
# prometheus brings promtool and a real Prometheus for the alert rule and
# dashboard tests; tmux drives saltrelay-status --watch in its test; stunnel4
# and openssl run the encrypted-WAN recipe (test_ha.test_tls_wan); lintian,
# bash-completion and logrotate check the Debian package (test_package). The python3-*
# packages run real Salt from the source trees of ../shared/salt with
# Debian's python3 (tests/test_salt.py; python3-cherrypy3 for salt-api).
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libzmq3-dev libczmq-dev libhiredis-dev libmsgpack-dev libyaml-dev libsystemd-dev libmicrohttpd-dev
      redis-server python3 curl valgrind clang systemd dpkg-dev file prometheus tmux
      stunnel4 openssl lintian bash-completion logrotate
      python3-zmq python3-msgpack python3-tornado python3-jinja2 python3-markupsafe python3-yaml
      python3-cryptography python3-pycryptodome python3-distro python3-psutil python3-requests
      python3-packaging python3-jmespath python3-aiohttp python3-setproctitle python3-dateutil
      python3-croniter python3-xxhash python3-cherrypy3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  [ "$(id -u)" = 0 ] || { echo "deps.sh: run as root (apt-get install)" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
