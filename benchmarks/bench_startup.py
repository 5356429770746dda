"""Start-to-first-chunk of the inference worker, cold (empty compilation cache) vs warm (a restart).

Each start is a fresh Python process doing what the inference node's worker does before its first chunk: enable
the persistent compilation cache, load the policy, ``ChunkSampler.warmup()`` (every prompt bucket, every guidance
mode), then prepare and sample one ``stop``-guided chunk. The child reports its wall times and the XLA compile
requests split into compiles and cache hits (``CompileCounter``). The π0.5 policy is a random-weight checkpoint
(``--size reduced``: the full structure at CPU size; ``tiny``: the test stand-in; ``full``: the real size, GPU),
written once before the timed starts.

    python benchmarks/bench_startup.py --size reduced                      # cold, warm, warm
    python benchmarks/bench_startup.py --policy sim --json /tmp/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HORIZON, STATE_DIM = 50, 14


def _write_pi05(directory: Path, size: str) -> dict:
    """A random-weight π0.5 checkpoint + tokenizer under ``directory``; the make_policy parameters to load it."""
    from rtc_controller.policy.pi05.config import full_size_config
    from rtc_controller.policy.pi05.testing import (example_norm_stats, reduced_config, tiny_config,
                                                    write_checkpoint, write_tokenizer)

    if size == "tiny":
        cfg = tiny_config(action_dim=32, action_horizon=HORIZON, max_token_len=96)
    elif size == "reduced":
        cfg = reduced_config(action_horizon=HORIZON)
    else:
        cfg = full_size_config(action_horizon=HORIZON)
    write_checkpoint(directory / "checkpoint", cfg,
                     norm_stats=example_norm_stats(state_dim=STATE_DIM, action_dim=STATE_DIM))
    tokenizer = write_tokenizer(directory / "tokenizer.model", state_dim=STATE_DIM)
    return {"checkpoint_dir": str(directory / "checkpoint"), "tokenizer_path": str(tokenizer),
            "action_horizon": HORIZON, "max_token_len": cfg.max_token_len, "dtype": cfg.dtype}


def child(cache_dir: str, policy: str, policy_params: dict) -> dict:
    """One start in this process: times [s] and compile counts up to the first chunk."""
    t0 = time.perf_counter()
    import jax

    from rtc_controller.policy.chunk_sampler import ChunkSampler, GuidanceSettings, PreviousChunk
    from rtc_controller.policy.compilation_cache import CompileCounter, enable_compilation_cache
    from rtc_controller.app.policies import make_policy

    enable_compilation_cache(cache_dir, f"bench-{policy}")
    with CompileCounter() as counter:
        if policy == "sim":
            flow = make_policy("sim", horizon=HORIZON, dt_s=0.02)
        else:
            flow = make_policy("pi05", **policy_params)
        t_load = time.perf_counter()
        sampler = ChunkSampler(flow, dt_s=0.02, num_steps=10)
        sampler.warmup()
        t_warm = time.perf_counter()
        obs = flow.fake_observation(stamp_s=1.0)
        first = sampler.sample(obs, previous=None, settings=GuidanceSettings(0, HORIZON // 2),
                               key=jax.random.key(1))
        previous = PreviousChunk(first.actions, obs.stamp_s - 0.5)
        result = sampler.sample(obs, previous=previous, settings=GuidanceSettings(5, HORIZON // 2, mode="stop"),
                                key=jax.random.key(2))
        jax.block_until_ready(result.actions)
    t_end = time.perf_counter()
    return {"import_load_s": t_load - t0, "warmup_s": t_warm - t_load, "first_chunk_s": t_end - t_warm,
            "start_to_first_chunk_s": t_end - t0, "compile_requests": counter.requests,
            "compiled": counter.compiled, "cache_hits": counter.cache_hits, "compile_s": counter.compile_s,
            "backend": jax.default_backend()}


def start(cache_dir: str, policy: str, policy_params: dict, timeout_s: float = 1800) -> dict:
    """Run :func:`child` in a fresh process; its JSON result (plus the process wall time)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, "--child", "--cache-dir", cache_dir, "--policy", policy,
           "--policy-params", json.dumps(policy_params)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=os.environ.copy())
    if out.returncode != 0:
        raise RuntimeError(f"start failed (exit {out.returncode}): {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t0
    return result


def run(policy: str, size: str, warm_starts: int, cache_dir: str | None) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="rtc_startup_") as tmp:
        params = _write_pi05(Path(tmp) / "pi05", size) if policy == "pi05" else {}
        cache = cache_dir or str(Path(tmp) / "cache")
        rows = [{"start": "cold", **start(cache, policy, params)}]
        rows += [{"start": f"warm {i + 1}", **start(cache, policy, params)} for i in range(warm_starts)]
        rows.append({"start": "no cache", **start("", policy, params)})
    return rows


def print_table(rows: list[dict]) -> None:
    cols = ("process_s", "start_to_first_chunk_s", "import_load_s", "warmup_s", "first_chunk_s", "compiled",
            "cache_hits")
    print(f"{'start':<10}" + "".join(f"{c:>24}" for c in cols))
    for r in rows:
        print(f"{r['start']:<10}" + "".join(f"{r[c]:>24.2f}" if isinstance(r[c], float) else f"{r[c]:>24}"
                                            for c in cols))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", choices=("pi05", "sim"), default="pi05")
    ap.add_argument("--size", choices=("tiny", "reduced", "full"), default="reduced")
    ap.add_argument("--warm-starts", type=int, default=2)
    ap.add_argument("--cache-dir", default=None, help="cache base directory (default: a fresh temporary one)")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--policy-params", default="{}", help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    if ns.child:
        print(json.dumps(child(ns.cache_dir or "", ns.policy, json.loads(ns.policy_params))))
        return 0
    rows = run(ns.policy, ns.size, ns.warm_starts, ns.cache_dir)
    print(f"start-to-first-chunk, policy {ns.policy}" + (f" ({ns.size})" if ns.policy == "pi05" else "")
          + f", backend {rows[0]['backend']}, H = {HORIZON}, n = 10")
    print_table(rows)
    if ns.json:
        Path(ns.json).write_text(json.dumps({"policy": ns.policy, "size": ns.size, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
