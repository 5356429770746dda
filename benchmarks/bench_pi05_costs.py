"""What costs time around one π0.5 chunk, measured one factor at a time (reduced size on the CPU; any size on a GPU).

Rows (each a median of ``--repeats`` after one warm-up call; compile = the first call minus the median):
- transfers: the prefix pass from host inputs (uint8 images + tokens, as the policy builds them each chunk) vs the
  same images already on the device; the bytes each chunk moves host -> device.
- prompt bucket: the first prefix pass on a prompt-length bucket not compiled yet vs the same call warm (what
  ``Pi05Policy.warmup`` pays at start so that a new prompt never stalls a chunk).
- sampler loop: ``lax.scan`` over the n steps (the sampler) vs fully unrolled (``unroll=True``), ``stop`` mode,
  context fixed: run time and compile time.
- matmul precision: the whole chunk (prefix + ``stop`` sampler) traced under ``jax.default_matmul_precision``
  ``bfloat16`` / ``tensorfloat32`` / ``float32`` (the weights are bf16 either way).

    python benchmarks/bench_pi05_costs.py --size reduced --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pi05 import DELAY_STEPS, _inputs  # noqa: E402

from rtc_controller.policy.pi05.config import full_size_config  # noqa: E402
from rtc_controller.policy.pi05.model import Pi05Model  # noqa: E402
from rtc_controller.policy.pi05.params import random_params  # noqa: E402
from rtc_controller.policy.pi05.testing import reduced_config  # noqa: E402
from rtc_controller.rtc import prefix_weights, sample  # noqa: E402


def _first_and_median(fn, repeats: int) -> tuple[float, float]:
    """(first call [ms], median of the next ``repeats`` [ms]); ``fn`` must block."""
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1e3
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return first, statistics.median(times)


@contextlib.contextmanager
def _unrolled_scan():
    """Trace ``lax.scan`` fully unrolled (the sampler's loop) inside the block."""
    original = jax.lax.scan
    jax.lax.scan = functools.partial(original, unroll=True)
    try:
        yield
    finally:
        jax.lax.scan = original


def run(size: str, horizon: int, num_steps: int, repeats: int) -> list[tuple[str, str, float, float]]:
    """Rows (factor, variant, median ms, compile ms)."""
    make = full_size_config if size == "full" else reduced_config
    cfg = make(dtype="bfloat16", action_horizon=horizon)
    params = random_params(cfg, seed=0, dtype="bfloat16")
    images, masks, tokens, token_mask = _inputs(cfg, 1)
    rows = []

    model = Pi05Model(cfg, params)
    dev_images = {k: jax.device_put(v) for k, v in images.items()}
    jax.block_until_ready(dev_images)
    nbytes = sum(v.nbytes for v in images.values()) + tokens.nbytes + token_mask.nbytes
    for name, imgs in ((f"host inputs ({nbytes / 1024:.0f} KiB/chunk)", images), ("images already on device", dev_images)):
        first, med = _first_and_median(lambda i=imgs: jax.block_until_ready(model.prepare(i, masks, tokens, token_mask)),
                                       repeats)
        rows.append(("transfers: prefix pass", name, med, first - med))

    long_mask = np.zeros_like(token_mask)
    long_mask[:, : model.prompt_buckets[-2] + 1] = True  # one token past the second-largest bucket: the last bucket
    first, med = _first_and_median(lambda: jax.block_until_ready(model.prepare(images, masks, tokens, long_mask)),
                                   repeats)
    rows.append(("prompt bucket: prefix pass", f"new bucket {model.prompt_buckets[-1]} (first call compiles)",
                 med, first - med))

    ctx = model.prepare(images, masks, tokens, token_mask)
    noise = jnp.asarray(np.random.default_rng(1).standard_normal((1, horizon, cfg.action_dim)), jnp.float32)
    prefix = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, noise.shape), jnp.float32)
    weights = prefix_weights(DELAY_STEPS, horizon // 2, horizon, "exp")
    for name, loop in (("lax.scan (the sampler)", contextlib.nullcontext), ("unrolled", _unrolled_scan)):
        velocity = functools.partial(Pi05Model.velocity, model)  # a new static argument: traced afresh

        def chunk(v=velocity, loop=loop):
            with loop():
                return sample(v, noise, context=ctx, num_steps=num_steps, prefix=prefix, weights=weights,
                              mode="stop").block_until_ready()

        first, med = _first_and_median(chunk, repeats)
        rows.append(("sampler loop, stop, n steps", name, med, first - med))

    for precision in ("bfloat16", "tensorfloat32", "float32"):
        m = Pi05Model(cfg, params)

        def full_chunk(m=m, precision=precision):
            with jax.default_matmul_precision(precision):
                c = m.prepare(images, masks, tokens, token_mask)
                return sample(m.velocity, noise, context=c, num_steps=num_steps, prefix=prefix, weights=weights,
                              mode="stop").block_until_ready()

        first, med = _first_and_median(full_chunk, repeats)
        rows.append(("matmul precision: chunk", precision, med, first - med))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("full", "reduced"), default="reduced")
    ap.add_argument("--horizon", type=int, default=50)
    ap.add_argument("--num-steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ns = ap.parse_args(argv)
    rows = run(ns.size, ns.horizon, ns.num_steps, ns.repeats)
    print(f"π0.5 {ns.size}-size, random bf16 weights, H = {ns.horizon}, n = {ns.num_steps}, device "
          f"{jax.devices()[0].platform}; median of {ns.repeats}")
    print(f"{'factor':<30} {'variant':<44} {'ms':>9} {'compile ms':>11}")
    for factor, variant, med, comp in rows:
        print(f"{factor:<30} {variant:<44} {med:>9.1f} {comp:>11.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
