# Sourced by the Makefile and scripts/deb.sh: how the release executables are built on this host.
# On Linux with glibc they are linked statically and not position-independent: a check is a process
# of a few milliseconds, and the dynamic loader (three libraries, about 12,000 relocations) was a
# tenth of it (README, "Speed"). glibc resolves host names from /etc/hosts and DNS, and users from
# /etc/passwd, with its own code; other NSS services are loaded from the installed libc6.
host=$(rustc -vV | sed -n 's/^host: //p')
case "$host" in
    *-linux-gnu) release_rustflags="-C target-feature=+crt-static -C relocation-model=static" ;;
    *) release_rustflags="" ;;
esac
release_dir="target/$host/release"
