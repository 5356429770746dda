#!/usr/bin/env bash
# The one prepared GPU run (docs/gpu.md): on a machine with a CUDA JAX (pip install -e '.[gpu]'), in <= 8 min,
#   1. the device, jax / jaxlib versions (fails fast, exit 3, where JAX has no GPU backend);
#   2. bench_pi05.py --size full: prefix pass, one velocity step, whole chunk for none / stop / full at H = 50 and
#      100, peak device memory, and the prompt-bucket (prefix variants) table;
#   3. bench_startup.py: the inference node's start to first chunk, cold and warm compilation cache;
# and writes everything as JSON under OUT (default out/device_check). Usage: benchmarks/device_check.sh [OUT]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/device_check}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
step() {  # step NAME TIMEOUT_S CMD...: run with a time limit, report its status, never stop the whole check
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit} s)"
  local t0=$SECONDS
  timeout "$limit" "$@"; local rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s"
  echo "{\"step\": \"$name\", \"exit\": $rc, \"seconds\": $((SECONDS - t0))}" >> "$OUT/steps.jsonl"
}
: > "$OUT/steps.jsonl"
"$PY" - "$OUT/device.json" <<'PYEOF' || exit 3
import json, sys
import jax, jaxlib
backend = jax.default_backend()
devices = [f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices()]
info = {"backend": backend, "devices": devices, "jax": jax.__version__, "jaxlib": jaxlib.__version__}
print(json.dumps(info))
if backend != "gpu":
    sys.exit(f"device_check: JAX has no GPU backend here (backend {backend!r}, devices {devices}); install the CUDA "
             "JAX with `.venv/bin/pip install -e '.[gpu]'` on a machine with an NVIDIA driver")
json.dump(info, open(sys.argv[1], "w"), indent=2)
PYEOF
step bench_pi05_full 330 "$PY" benchmarks/bench_pi05.py --size full --horizons 50 100 --repeats 10 --json "$OUT/pi05_full.json"
step bench_startup 120 "$PY" benchmarks/bench_startup.py --repeats 1 --json "$OUT/startup.json"
echo "device_check: results in $OUT/"
