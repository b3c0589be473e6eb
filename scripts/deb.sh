#!/usr/bin/env bash
# Builds target/deb/consul-db-checks_<version>_<arch>.deb with dpkg-deb: the executables, their man
# pages and bash/zsh completions, and consul.d-examples as documentation. Prints the package's path.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
bins=$(awk -F'"' '/^\[\[bin\]\]/ {b = 1} b && /^name/ {print $2; b = 0}' Cargo.toml)
. scripts/release-env.sh
RUSTFLAGS="$release_rustflags" cargo build --quiet --release --locked --target "$host" --bins >&2
RUSTFLAGS="$release_rustflags" cargo run --quiet --release --locked --target "$host" --example gen-docs -- target/docs >&2
root=target/deb/root
rm -rf "$root"
doc="$root/usr/share/doc/consul-db-checks"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" "$doc" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions"
for b in $bins; do
  install -m 0755 "$release_dir/$b" "$root/usr/bin/$b"
  gzip -9n < "target/docs/man/man1/$b.1" > "$root/usr/share/man/man1/$b.1.gz"
  install -m 0644 "target/docs/completions/bash/$b.bash" "$root/usr/share/bash-completion/completions/$b"
  install -m 0644 "target/docs/completions/zsh/_$b" "$root/usr/share/zsh/vendor-completions/_$b"
done
chmod 0644 "$root"/usr/share/man/man1/*.gz
if [ -n "$release_rustflags" ]; then
  # Static on purpose (scripts/release-env.sh): lintian's rule is for libraries a distribution patches.
  install -d "$root/usr/share/lintian/overrides"
  printf '# Linked statically for start-up time: see scripts/release-env.sh and the README, "Speed".\nconsul-db-checks: statically-linked-binary\n' \
    > "$root/usr/share/lintian/overrides/consul-db-checks"
  chmod 0644 "$root/usr/share/lintian/overrides/consul-db-checks"
fi
cp -r consul.d-examples "$doc/examples"
# The README and docs/ (the man pages point at them), links between them kept.
install -m 0644 README.md "$doc/README.md"
install -d "$doc/docs" && install -m 0644 docs/*.md "$doc/docs/"
# The directories the generated files point at: the secrets (group consul-db-checks, set by
# postinst) and the operators' drain files (root only).
install -d -m 0750 "$root/etc/consul-db-checks"
install -d -m 0755 "$root/var/lib/consul-db-checks/drain"
# One owner and mode for the secret files, for Consul, keepalived and serve-checks alike (README,
# "Secrets"): the group consul-db-checks reads them; keepalived's script user is in it.
cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  getent group consul-db-checks >/dev/null || groupadd --system consul-db-checks
  if ! getent passwd keepalived_script >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      --user-group --groups consul-db-checks keepalived_script
  fi
  chgrp consul-db-checks /etc/consul-db-checks
  chmod 0750 /etc/consul-db-checks
fi
POSTINST
chmod 0755 "$root/DEBIAN/postinst"
find "$doc/examples" -type d -exec chmod 0755 {} + && find "$doc/examples" -type f -exec chmod 0644 {} +
cat > "$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: consul-db-checks
License: MIT

Files: *
Copyright: 2026 the consul-db-checks authors
License: MIT
COPYRIGHT
printf 'consul-db-checks (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- consul-db-checks maintainers <maintainers@consul-db-checks.invalid>  %s\n' \
  "$version" "$version" "$(date -R -d @0)" | gzip -9n > "$doc/changelog.gz"
# The C library version the binaries need: the highest GLIBC_x.y symbol version they use; for static
# binaries, the version they were linked with (glibc loads NSS modules other than files and dns from
# the installed libc6, which must not be older).
glibc=$(for b in $bins; do objdump -T "$release_dir/$b" 2>/dev/null || true; done | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1 || true)
if [ -z "$glibc" ]; then
  glibc=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
fi
size=$(du -sk "$root/usr" | cut -f1)
# The executables, as the description lists them (the [[bin]] entries: the one list).
bin_list=$(echo $bins | sed 's/ /, /g' | fold -s -w 70 | sed 's/ *$//; 2,$s/^/ /')
cat > "$root/DEBIAN/control" <<CONTROL
Package: consul-db-checks
Version: $version
Architecture: $arch
Maintainer: consul-db-checks maintainers <maintainers@consul-db-checks.invalid>
Installed-Size: $size
Depends: libc6 (>= $glibc), passwd
Recommends: bash-completion
Suggests: consul, keepalived, haproxy
Section: admin
Priority: optional
Homepage: https://consul-db-checks.invalid
Description: health checks that decide which Redis or MySQL server takes writes
 Single-shot checks for Consul script and HTTP checks, keepalived vrrp_script
 and HAProxy: ${bin_list}
 (checks exit 0 passing, 1 warning, 2 critical; serve-checks answers them over
 HTTP; gen-consul-services writes the Consul, keepalived and HAProxy files).
CONTROL
deb="target/deb/consul-db-checks_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
