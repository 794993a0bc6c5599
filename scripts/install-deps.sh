#!/usr/bin/env bash
# Installs what eventpipe's run and test commands need and the machine lacks:
# clickhouse-server and clickhouse-client from Debian's packages, and etcd
# (Debian's etcd-server) for the tests that run a real kube-apiserver
# (internal/kubetest), and promtool (Debian's prometheus package) for the
# tests of the Helm chart's alert rules (test/observability), and chromium
# for the web UI's browser tests (test/ui), and zookeeper for the ClickHouse
# cluster tests. Go modules
# come from the module proxy through the go command itself; kube-apiserver
# and kubectl are built from it by scripts/build-test-tools.sh.
set -euo pipefail

need=()
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server)
command -v clickhouse-client >/dev/null 2>&1 || need+=(clickhouse-client)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# ZooKeeper (it brings the Java runtime) coordinates the ClickHouse cluster
# the cluster-mode tests start (internal/chserver, internal/zkserver).
[[ -e /usr/share/java/zookeeper.jar ]] && command -v java >/dev/null 2>&1 || need+=(zookeeper)
if ((${#need[@]} == 0)); then
  exit 0
fi

start=$SECONDS
echo "install-deps: installing ${need[*]} from Debian's packages (about a minute)" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "install-deps: ${need[*]} missing and not root (no sudo): run 'apt-get install -y ${need[*]}' as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# The prometheus package's postinst starts a Prometheus server (through its
# init script, or systemd). Only promtool is wanted: unless the machine has
# a policy already, forbid service starts for the length of the install
# (policy-rc.d exit 101, which invoke-rc.d and deb-systemd-invoke obey).
policy=""
if [[ " ${need[*]} " == *" prometheus "* && ! -e /usr/sbin/policy-rc.d ]]; then
  policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
if ! $sudo apt-get update -qq || ! $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
  echo "install-deps: could not install ${need[*]} with apt-get; install them by hand (Debian package names: ${need[*]})" >&2
  exit 1
fi
# eventpipe starts its own private clickhouse-server processes; the package's
# system service is not used (and on machines without systemd it never starts).
command -v clickhouse-server >/dev/null 2>&1 || { echo "install-deps: clickhouse-server still not on PATH after install" >&2; exit 1; }
# Likewise the tests start their own etcd on free ports with a temporary data
# directory; the package's etcd service (if systemd starts it) is not used.
command -v etcd >/dev/null 2>&1 || { echo "install-deps: etcd still not on PATH after installing etcd-server" >&2; exit 1; }
# The package also enables prometheus.service for the next boot on systemd
# machines; the tests only run promtool, so it may be disabled by hand.
command -v promtool >/dev/null 2>&1 || { echo "install-deps: promtool still not on PATH after installing prometheus" >&2; exit 1; }
command -v chromium >/dev/null 2>&1 || { echo "install-deps: chromium still not on PATH after install" >&2; exit 1; }
# The tests run ZooKeeper's jar with java directly on a free port; the
# package's own service (if systemd starts it) is not used.
[[ -e /usr/share/java/zookeeper.jar ]] || { echo "install-deps: /usr/share/java/zookeeper.jar missing after installing zookeeper" >&2; exit 1; }
echo "install-deps: done in $((SECONDS - start))s" >&2
