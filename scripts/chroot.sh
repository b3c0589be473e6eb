#!/usr/bin/env bash
# Builds (once) a Debian chroot of another release with some server packages, for the test matrix:
#   scripts/chroot.sh NAME RELEASE PACKAGE...
# e.g. `scripts/chroot.sh sid-mysql sid mysql-server` makes .cache/chroots/sid-mysql with MySQL 9.x.
# Another release's packages are never installed into this machine: each runs in its own chroot
# (its glibc is newer than ours). Servers started there share this machine's network (loopback).
#
# - debootstrap --variant=minbase from the mirror this machine's apt already uses;
# - apt inside with Acquire::Check-Valid-Until off (the clock may be past the archive's Valid-Until);
# - a policy-rc.d that exits 101, so that no service of the chroot ever starts;
# - no mount is left behind: /proc is mounted only for the package installation and always
#   unmounted (trap), and the servers run without it.
# The chroot is cached: .cache/chroots/NAME/.cdc-stamp records the release and the installed
# package versions; a chroot with a stamp for the same release and packages is used as it is.
# Prints the chroot's path. Needs root (chroot, debootstrap); otherwise says so and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: $0 NAME RELEASE PACKAGE..." >&2; exit 2; }
name=$1 release=$2
shift 2
packages=("$@")
root="$PWD/.cache/chroots/$name"
stamp="$root/.cdc-stamp"
wanted="release=$release packages=${packages[*]}"

# Makes the chroot usable from this machine's paths, every time (the checkout may have moved):
# - inside the chroot, this machine's path of the chroot is a link to its root, so that a file
#   under "$root/tmp" has the same name inside and out (tests put their files there with TMPDIR);
# - "$root-bin/PROGRAM" runs the chroot's PROGRAM (`exec chroot "$root" ...`, same pid, so that a
#   test's parent-death signal still reaches the server), for each server program it has.
expose() {
  local inside="$root$root"
  if [ "$(readlink "$inside" 2>/dev/null)" != "/" ]; then
    mkdir -p "$(dirname "$inside")"
    rm -f "$inside"
    ln -s / "$inside"
  fi
  mkdir -p "$root-bin"
  local p path
  for p in redis-server redis-sentinel valkey-server mariadbd mariadb-install-db mariadb mariadb-binlog \
    keepalived mysqld mysql; do
    for path in /usr/sbin/$p /usr/bin/$p; do
      # A link inside may be absolute (meant for the chroot's root): test for it as a link too.
      if [ -e "$root$path" ] || [ -L "$root$path" ]; then
        printf '#!/bin/sh\nexec chroot %q %q "$@"\n' "$root" "$path" >"$root-bin/$p"
        chmod 755 "$root-bin/$p"
        break
      fi
    done
  done
}

if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$wanted" ]; then
  [ "$(id -u)" -eq 0 ] && expose
  echo "$root"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chroot $name ($release: ${packages[*]}) is not built, and building it needs root: sudo $0 $name $release ${packages[*]}" >&2
  exit 1
fi
command -v debootstrap >/dev/null 2>&1 || {
  echo "installing debootstrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
}

# The mirror this machine's apt uses (deb822 sources first, then the one-line format).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "no Debian mirror found in this machine's apt sources" >&2; exit 1; }

start=$(date +%s)
work="$root.building"
mkdir -p "$(dirname "$root")"
cleanup() {
  if mountpoint -q "$work/proc" 2>/dev/null; then umount "$work/proc" || umount -l "$work/proc"; fi
}
# Never remove a tree with a file system still mounted in it.
remove_work() {
  cleanup
  if ! mountpoint -q "$work/proc" 2>/dev/null; then rm -rf "$work"; fi
}
remove_work
trap remove_work EXIT
trap 'exit 130' INT TERM
echo "building chroot $name: debootstrap $release, then ${packages[*]} (once; cached in $root)" >&2
debootstrap --variant=minbase "$release" "$work" "$mirror" >"$work.log" 2>&1 || {
  tail -n 20 "$work.log" >&2
  exit 1
}
printf '#!/bin/sh\nexit 101\n' >"$work/usr/sbin/policy-rc.d"
chmod 755 "$work/usr/sbin/policy-rc.d"
echo 'Acquire::Check-Valid-Until "false";' >"$work/etc/apt/apt.conf.d/99cdc-no-valid-until"
mount -t proc proc "$work/proc"
chroot "$work" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${packages[*]}" \
  >>"$work.log" 2>&1 || {
  tail -n 20 "$work.log" >&2
  exit 1
}
cleanup
chroot "$work" apt-get clean
versions=$(chroot "$work" dpkg-query -W -f '${Package}=${Version} ' "${packages[@]}")
printf '%s\n%s\nbuilt in %ss\n' "$wanted" "$versions" "$(($(date +%s) - start))" >"$work/.cdc-stamp"
rm -rf "$root" "$work.log"
mv "$work" "$root"
trap - EXIT
expose
echo "built chroot $name in $(($(date +%s) - start)) s: $versions" >&2
echo "$root"
