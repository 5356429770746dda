#!/usr/bin/env bash
# One prepared GPU run (≤ 8 min): device, jax/jaxlib, bench_pi05.py --size full (prefix, one velocity step, chunk
# none/stop/full at H = 50 and 100, peak device memory, the prompt-bucket prefix table), start-up cold and warm;
# writes <out>/device_check.json. Exits 2 at once, saying why, when jax has no GPU backend.
#   benchmarks/device_check.sh [--out DIR] [--budget-s 480] [--startup-size full|reduced]
# Python: $PYTHON, else .venv/bin/python, else python3 (it needs CUDA JAX: pip install -e '.[gpu]').
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" benchmarks/device_check.py "$@"
