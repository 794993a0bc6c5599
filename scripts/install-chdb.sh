#!/usr/bin/env bash
# install-chdb.sh installs libchdb.so (ClickHouse 26.7 as an in-process
# library) to /usr/local/lib, where github.com/chdb-io/chdb-go loads it.
# The tests use it as the "modern ClickHouse" half of the two-version matrix
# (see docs/architecture.md, "ClickHouse versions"); Debian's clickhouse-server 18.16 is the other half.
#
# Idempotent: does nothing when the library is already installed.
#
# Environment:
#   CHDB_NPM_PACKAGE  npm package spec (default @chdb/lib-linux-x64-gnu@26.7.3-stable.1)
#   CHDB_LIB          destination path (default /usr/local/lib/libchdb.so)
set -euo pipefail

PKG="${CHDB_NPM_PACKAGE:-@chdb/lib-linux-x64-gnu@26.7.3-stable.1}"
DEST="${CHDB_LIB:-/usr/local/lib/libchdb.so}"

die() { echo "install-chdb: error: $*" >&2; exit 1; }
log() { echo "install-chdb: $*" >&2; }

if [[ -f "$DEST" ]]; then
	log "$DEST already exists; nothing to do"
	exit 0
fi

case "$(uname -s)/$(uname -m)" in
Linux/x86_64) ;;
*) die "this package ships a linux-x64 (glibc) library; this machine is $(uname -s)/$(uname -m)" ;;
esac

command -v npm >/dev/null 2>&1 || die "npm not found; install Node.js/npm (Debian: apt-get install -y npm)"
command -v tar >/dev/null 2>&1 || die "tar not found"

destdir="$(dirname "$DEST")"
mkdir -p "$destdir" 2>/dev/null || die "cannot create $destdir (run as root or set CHDB_LIB to a writable path)"
[[ -w "$destdir" ]] || die "$destdir is not writable (run as root or set CHDB_LIB to a writable path)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/install-chdb.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

start=$SECONDS
log "downloading $PKG with npm pack (about 570 MB unpacked; this may take a while)"
if ! (cd "$tmp" && npm pack --silent "$PKG" >npm-pack.out 2>npm-pack.err); then
	cat "$tmp/npm-pack.err" >&2 || true
	die "npm pack $PKG failed (is the npm registry reachable? see the npm output above)"
fi
tarball="$(find "$tmp" -maxdepth 1 -name '*.tgz' -print -quit)"
[[ -n "$tarball" ]] || die "npm pack $PKG produced no .tgz in $tmp"

log "extracting $(basename "$tarball")"
mkdir "$tmp/x"
tar -xzf "$tarball" -C "$tmp/x" || die "cannot extract $tarball"

lib="$(find "$tmp/x" -type f -name 'libchdb.so' -print -quit)"
[[ -n "$lib" ]] || die "$PKG contains no libchdb.so; files found: $(cd "$tmp/x" && find . -type f | head -20 | tr '\n' ' ')"

# Copy to a temporary name beside the destination and rename, so that an
# interrupted run never leaves a truncated library that the next run would
# take as installed.
install -m 0644 "$lib" "$DEST.tmp.$$" || die "cannot copy libchdb.so to $destdir"
mv -f "$DEST.tmp.$$" "$DEST" || { rm -f "$DEST.tmp.$$"; die "cannot move library into place at $DEST"; }

if command -v ldconfig >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
	ldconfig || log "warning: ldconfig failed (chdb-go opens the library by path, so this is not fatal)"
fi

log "installed $DEST ($(du -h "$DEST" | cut -f1)) in $((SECONDS - start))s"
