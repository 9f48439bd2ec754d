#!/usr/bin/env bash
# Times xbuild's layer create/apply against `tar | gzip` and `tar -xzf` on a ~500 MB tree.
# usage: bench/layer_bench.sh [path/to/xbuild-layer-bench]   (default: build/bench/xbuild-layer-bench)
# Temp data lives under a mktemp dir in /tmp (about 1.5 GB at peak) and is removed on exit.
set -euo pipefail

BIN=${1:-build/bench/xbuild-layer-bench}
[[ -x $BIN ]] || { echo "no bench binary at $BIN (configure with -DXBUILD_BENCH=ON)" >&2; exit 2; }
BIN=$(realpath "$BIN")
WORK=$(mktemp -d /tmp/xbuild-layer-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SRC=$WORK/src

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

echo "generating the tree in $SRC ..."
mkdir -p "$SRC"
# 4000 small files (0.5-8 KiB) of text: compressible, like source trees and /etc.
python3 - "$SRC" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(1)
words = [("%x" % rng.getrandbits(40)) for _ in range(2000)]
for d in range(40):
    dd = os.path.join(root, "pkg%02d" % d, "lib", "sub%d" % (d % 7))
    os.makedirs(dd, exist_ok=True)
    for f in range(100):
        n = rng.randint(512, 8192)
        text = " ".join(rng.choice(words) for _ in range(n // 8))[:n]
        with open(os.path.join(dd, "file%03d.txt" % f), "w") as fh:
            fh.write(text)
PY
mkdir -p "$SRC/blobs"
# 4 x 60 MiB of random bytes: incompressible (like already-compressed artifacts).
for i in 1 2 3 4; do head -c $((60 << 20)) /dev/urandom > "$SRC/blobs/random$i.bin"; done
# 4 x 60 MiB of a repeated text pattern: highly compressible (logs, zero-filled images).
for i in 1 2 3 4; do (yes "line $i of a very repetitive log file 0123456789" || true) | head -c $((60 << 20)) > "$SRC/blobs/text$i.log"; done
ln "$SRC/blobs/text1.log" "$SRC/blobs/text1.hardlink"
ln -s blobs/text1.log "$SRC/link"
sync
echo "tree: $(du -sh "$SRC" | cut -f1), $(find "$SRC" | wc -l) entries; $(nproc) cores"

t0=$(now); "$BIN" create "$SRC" "$WORK/xb.tar.gz" > /dev/null; t1=$(now)
tar -c -C "$SRC" . | gzip > "$WORK/tar.tar.gz"; t2=$(now)
xc=$(secs "$t0" "$t1"); tc=$(secs "$t1" "$t2")

t0=$(now); "$BIN" apply "$WORK/xb-out" "$WORK/xb.tar.gz" > /dev/null; t1=$(now)
mkdir "$WORK/tar-out"; tar -xzf "$WORK/tar.tar.gz" -C "$WORK/tar-out"; t2=$(now)
xa=$(secs "$t0" "$t1"); ta=$(secs "$t1" "$t2")

diff -r "$WORK/xb-out" "$SRC" > /dev/null && echo "round trip: identical content"
printf "%-34s %8s %8s %8s\n" "" "xbuild" "tar+gzip" "ratio"
printf "%-34s %7.2fs %7.2fs %8.2f\n" "create (tar.gz)" "$xc" "$tc" "$(echo "$xc / $tc" | bc -l)"
printf "%-34s %7.2fs %7.2fs %8.2f\n" "apply (tar -xzf)" "$xa" "$ta" "$(echo "$xa / $ta" | bc -l)"
printf "%-34s %8s %8s\n" "compressed size (MiB)" "$(( $(stat -c %s "$WORK/xb.tar.gz") >> 20 ))" "$(( $(stat -c %s "$WORK/tar.tar.gz") >> 20 ))"
