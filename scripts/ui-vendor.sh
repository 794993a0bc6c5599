#!/usr/bin/env bash
# Fetches the UI's third-party files from their npm package with `npm pack`
# (through npm's configured registry), checks the package tarball against
# the integrity the registry published for it, and copies the files the UI
# loads, with the package's LICENSE, into internal/ui/static/vendor/, then
# writes their sha256 sums to internal/ui/static/vendor/SHA256SUMS.
# internal/ui's TestVendoredFilesMatchChecksums checks the committed files
# against that list. Node is needed here only; `make run` does not need it.
set -euo pipefail

# name@version, the tarball's sha512 integrity as npm publishes it, and the
# files taken from the package (package-relative path -> vendor path).
pkg="uplot@1.6.32"
integrity="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="
files=(
  "package/LICENSE:uplot/LICENSE"
  "package/dist/uPlot.esm.js:uplot/uPlot.esm.js"
  "package/dist/uPlot.min.css:uplot/uPlot.min.css"
)

root=$(cd "$(dirname "$0")/.." && pwd)
vendor="$root/internal/ui/static/vendor"
command -v npm >/dev/null 2>&1 || { echo "ui-vendor: npm is needed to fetch $pkg (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [[ "$got" != "$integrity" ]]; then
  echo "ui-vendor: $pkg tarball integrity $got, want $integrity" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp"
for f in "${files[@]}"; do
  src=${f%%:*} dst=${f#*:}
  mkdir -p "$vendor/$(dirname "$dst")"
  cp "$tmp/$src" "$vendor/$dst"
done
(cd "$vendor" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum) > "$vendor/SHA256SUMS"
echo "ui-vendor: $pkg ($integrity) -> internal/ui/static/vendor; sums in SHA256SUMS" >&2
