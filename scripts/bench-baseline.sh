#!/bin/bash
# Builds the release executables of git revision $1 into directory $2 (reused when already built),
# for `make bench` to measure this build against, paired run by run. Prints the directory of the
# executables on stdout; prints nothing (and says why on stderr) when the revision is not available,
# so that the bench still runs, without the paired table.
set -euo pipefail
rev=$1
mkdir -p "$2"
# Absolute: the build below runs from inside the extracted tree.
dir=$(cd "$2" && pwd)
if ! commit=$(git rev-parse --verify --quiet "$rev^{commit}"); then
    echo "bench: baseline $rev is not in this clone's history: no paired table" >&2
    exit 0
fi
out=$dir/$commit
if [ ! -x "$out/target/release/check-mysql-master" ]; then
    echo "bench: building the baseline $rev (${commit:0:12}) into $out" >&2
    rm -rf "$out/src"
    mkdir -p "$out/src"
    git archive "$commit" | tar -x -C "$out/src"
    (cd "$out/src" && CARGO_TARGET_DIR="$out/target" cargo build --release --locked --bins >&2)
fi
echo "$(cd "$out/target/release" && pwd)"
