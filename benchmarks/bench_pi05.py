"""Benchmark π0.5 inference under RTC: prefix pass, one velocity step, whole chunk (none / stop / full), memory.

Random weights with the full π0.5 architecture (SigLIP So400m/14 + Gemma-2B + Gemma-300M action expert) in bf16,
3 cameras, a 200-token prompt budget, n denoising steps, H = 50 and 100. ``--size reduced`` runs the same
structure at CPU size (``rtc_controller.policy.pi05.testing.reduced_config``).

chunk_ms = prefix pass + guided sampler (host observation tensors in: uint8 224² images and tokens, as
``Pi05Policy.model_inputs`` makes them; model-space actions out), the latency that sets the RTC inference delay.
step_ms = one action-expert velocity evaluation against the KV cache.

The prefix table compares, interleaved (each repeat runs every variant once), the prefix pass as it was
(the whole ``max_token_len`` budget, float32 images) with prompt-length buckets and uint8 images converted on
the device (one stacked transfer). The context (and so the sampler) is the same in every variant.

    python benchmarks/bench_pi05.py                       # full size (GPU)
    python benchmarks/bench_pi05.py --size reduced --repeats 3 --json /tmp/pi05_cpu.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from rtc_controller.policy.pi05.config import IMAGE_KEYS, full_size_config
from rtc_controller.policy.pi05.model import Pi05Model
from rtc_controller.policy.pi05.params import random_params
from rtc_controller.policy.pi05.testing import reduced_config
from rtc_controller.rtc import prefix_weights, sample

MODES = ("none", "stop", "full")
PROMPT_TOKENS = 60  # valid tokens of the 200-token budget (task text + 14 state bins)
DELAY_STEPS = 5
EXECUTION_HORIZON_FRACTION = 0.5


def _timed(fn, repeats: int) -> float:
    """Median wall time [ms] of ``fn()`` (which must block), after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _inputs(cfg, batch: int, seed: int = 0, *, as_float: bool = False):
    """Host inputs as the policy makes them: uint8 images (or float32 in [-1, 1]), tokens padded to the budget."""
    rng = np.random.default_rng(seed)
    size = cfg.siglip.image_size
    images = {k: rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8) for k in IMAGE_KEYS}
    if as_float:
        images = {k: v.astype(np.float32) / 255.0 * 2.0 - 1.0 for k, v in images.items()}
    masks = {k: np.ones((batch,), bool) for k in IMAGE_KEYS}
    tokens = rng.integers(1, cfg.vocab_size, (batch, cfg.max_token_len)).astype(np.int32)
    token_mask = np.arange(cfg.max_token_len)[None].repeat(batch, 0) < PROMPT_TOKENS
    return images, masks, tokens, token_mask


PREFIX_VARIANTS = {  # name -> (prompt buckets: None = default, else the full budget only; float32 images?)
    "before: full budget, f32 images": ("full", True),
    "buckets, f32 images": (None, True),
    "after: buckets, uint8 images": (None, False),
}


def prefix_variants(cfg, params, batch: int, repeats: int) -> dict[str, float]:
    """Median prefix-pass time [ms] per variant (PREFIX_VARIANTS), interleaved, host inputs to device context."""
    models, inputs = {}, {}
    for name, (buckets, as_float) in PREFIX_VARIANTS.items():
        models[name] = Pi05Model(cfg, params, prompt_buckets=(cfg.max_token_len,) if buckets == "full" else None)
        inputs[name] = _inputs(cfg, batch, as_float=as_float)
        jax.block_until_ready(models[name].prepare(*inputs[name]))  # compile
    times: dict[str, list[float]] = {name: [] for name in PREFIX_VARIANTS}
    for _ in range(repeats):
        for name in PREFIX_VARIANTS:
            t0 = time.perf_counter()
            jax.block_until_ready(models[name].prepare(*inputs[name]))
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(v) for name, v in times.items()}


def _peak_memory_mb() -> tuple[float, str]:
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20, "device peak_bytes_in_use"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "host max RSS (CPU backend)"


def run(size: str, horizons: list[int], num_steps: int, repeats: int, batch: int, beta: float, *,
        prefix_only: bool = False) -> dict:
    make = full_size_config if size == "full" else reduced_config
    base = make(dtype="bfloat16")
    t0 = time.perf_counter()
    params = random_params(base, seed=0, dtype="bfloat16")
    jax.block_until_ready(params)
    print(f"# random bf16 weights ({size}): {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    results = {}
    for h in [] if prefix_only else horizons:
        cfg = make(dtype="bfloat16", action_horizon=h)
        model = Pi05Model(cfg, params)
        images, masks, tokens, token_mask = _inputs(cfg, batch)
        ctx = model.prepare(images, masks, tokens, token_mask)
        noise = jnp.asarray(np.random.default_rng(1).standard_normal((batch, h, cfg.action_dim)), jnp.float32)
        prefix = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, noise.shape), jnp.float32)
        weights = prefix_weights(DELAY_STEPS, int(h * EXECUTION_HORIZON_FRACTION), h, "exp")
        velocity = jax.jit(model.velocity)

        row = {
            "prefix_ms": _timed(lambda: jax.block_until_ready(model.prepare(images, masks, tokens, token_mask)),
                                repeats),
            "step_ms": _timed(lambda: velocity(ctx, noise, jnp.float32(0.5)).block_until_ready(), repeats),
            "chunk_ms": {},
            "sampler_ms": {},
        }
        for mode in MODES:
            def sampler_only(mode=mode, c=ctx):
                return sample(model.velocity, noise, context=c, num_steps=num_steps, prefix=prefix, weights=weights,
                              max_guidance_weight=beta, mode=mode).block_until_ready()

            def chunk(mode=mode):
                c = model.prepare(images, masks, tokens, token_mask)
                return sampler_only(mode, c)

            row["sampler_ms"][mode] = _timed(sampler_only, repeats)
            row["chunk_ms"][mode] = _timed(chunk, repeats)
        results[h] = row
    prefix = prefix_variants(make(dtype="bfloat16", action_horizon=horizons[0]), params, batch, repeats)
    peak, peak_kind = _peak_memory_mb()
    return {"results": results, "prefix_variants_ms": prefix, "peak_memory_mb": peak, "peak_memory_kind": peak_kind}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("full", "reduced"), default="full")
    ap.add_argument("--horizons", type=int, nargs="+", default=[50, 100])
    ap.add_argument("--num-steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--beta", type=float, default=10.0, help="max guidance weight")
    ap.add_argument("--prefix-only", action="store_true", help="only the interleaved prefix table")
    ap.add_argument("--json", metavar="PATH", help="write {device, chunk_ms, prefix_ms, step_ms, peak_memory_mb}")
    args = ap.parse_args(argv)

    out = run(args.size, args.horizons, args.num_steps, args.repeats, args.batch, args.beta,
              prefix_only=args.prefix_only)
    dev = jax.devices()[0]
    device = f"{dev.platform}:{getattr(dev, 'device_kind', '')}".rstrip(":")
    print(f"\nπ0.5 {args.size}-size, random bf16 weights, 3 cameras, {args.num_steps} steps, batch {args.batch}, "
          f"β={args.beta}, d={DELAY_STEPS}; device {device}; median of {args.repeats}")
    print(f"{'H':>4} {'prefix ms':>10} {'step ms':>8} " + " ".join(f"{'chunk ' + m:>11}" for m in MODES)
          + " " + " ".join(f"{'sampler ' + m:>13}" for m in MODES) + f" {'stop/none':>9}")
    for h, r in out["results"].items():
        ratio = r["chunk_ms"]["stop"] / r["chunk_ms"]["none"]
        print(f"{h:>4} {r['prefix_ms']:>10.1f} {r['step_ms']:>8.2f} "
              + " ".join(f"{r['chunk_ms'][m]:>11.1f}" for m in MODES) + " "
              + " ".join(f"{r['sampler_ms'][m]:>13.1f}" for m in MODES) + f" {ratio:>9.3f}")
    print(f"\nprefix pass, {PROMPT_TOKENS} valid prompt tokens of {200}, interleaved medians of {args.repeats}:")
    for name, ms in out["prefix_variants_ms"].items():
        print(f"  {name:<34} {ms:>9.1f} ms")
    print(f"peak memory: {out['peak_memory_mb']:.0f} MiB ({out['peak_memory_kind']})")

    if args.json and out["results"]:
        main_h = 50 if 50 in out["results"] else args.horizons[0]
        r = out["results"][main_h]
        doc = {
            "device": device,
            "chunk_ms": r["chunk_ms"],
            "prefix_ms": r["prefix_ms"],
            "step_ms": r["step_ms"],
            "peak_memory_mb": out["peak_memory_mb"],
            "size": args.size,
            "horizon": main_h,
            "num_steps": args.num_steps,
            "by_horizon": {str(h): v for h, v in out["results"].items()},
            "peak_memory_kind": out["peak_memory_kind"],
            "prefix_variants_ms": out["prefix_variants_ms"],
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
