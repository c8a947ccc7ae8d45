#!/usr/bin/env bash
# Obtains yamllint and docker-compose (v1, Python) without installing anything system-wide:
# downloads the Debian/Ubuntu packages and their Python dependencies with `apt-get download`
# (no root needed) and unpacks them with `dpkg -x` under $1. They then run with the system's
# /usr/bin/python3 and PYTHONPATH=$1/usr/lib/python3/dist-packages.
# Used by tests/Deploy.Tests when the tools are not on PATH. Exits non-zero saying why.
set -euo pipefail
target="$1"
for tool in apt-get apt-cache dpkg /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (a Debian or Ubuntu system with python3)" >&2; exit 2; }
done

closure() {
  # The Python packages yamllint and docker-compose need, themselves included; the interpreter
  # and C libraries come from the system.
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances yamllint docker-compose 2>/dev/null \
    | grep -v '^ ' | grep -E '^(python3-|yamllint$|docker-compose$)' | grep -vx 'python3-minimal' | sort -u
}

work="$(mktemp -d "${target}.partial.XXXXXX")"
trap 'rm -rf "$work"' EXIT
packages="$(closure || true)"
if [ -z "$packages" ] && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >&2
  packages="$(closure || true)"
fi
[ -n "$packages" ] || { echo "apt-cache knows no yamllint/docker-compose packages (run apt-get update?)" >&2; exit 3; }
# shellcheck disable=SC2086
(cd "$work" && apt-get download -q $packages >&2)
for deb in "$work"/*.deb; do
  dpkg -x "$deb" "$work/root"
done
rm -rf "$target"
mv "$work/root" "$target"
