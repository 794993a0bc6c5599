#!/usr/bin/env bash
# Installs what eventpipe's run and test commands need and the machine lacks:
# clickhouse-server and clickhouse-client from Debian's packages. Go modules
# come from the module proxy through the go command itself.
set -euo pipefail

need=()
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server)
command -v clickhouse-client >/dev/null 2>&1 || need+=(clickhouse-client)
if ((${#need[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${need[*]} from Debian's packages" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "install-deps: ${need[*]} missing and not root (no sudo): run 'apt-get install -y clickhouse-server clickhouse-client' as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get update -qq || ! $sudo apt-get install -y -qq --no-install-recommends clickhouse-server clickhouse-client >/dev/null; then
  echo "install-deps: could not install clickhouse-server/clickhouse-client with apt-get; install them by hand (Debian package names: clickhouse-server clickhouse-client)" >&2
  exit 1
fi
# eventpipe starts its own private clickhouse-server processes; the package's
# system service is not used (and on machines without systemd it never starts).
command -v clickhouse-server >/dev/null 2>&1 || { echo "install-deps: clickhouse-server still not on PATH after install" >&2; exit 1; }
echo "install-deps: done" >&2
