"""Benchmark: cost of RTC guidance per chunk (none / stop / full / hard / bid) and the size of the correction.

1. A jit-compiled velocity network of realistic shape (a 4-block transformer over the action horizon, ~7 M
   parameters; H = 50, D = 32, n = 10, batch 1) is sampled with ``none``, ``stop``, ``full``, ``hard`` and
   ``bid`` (N = 8 candidates): median wall time per chunk over many runs after warm-up, with ratios to ``none``
   (target: stop/none <= 1.05). ``trained`` costs what ``none`` costs (no guidance term) but needs a network that
   takes a flow time per action token, which this one does not.
2. On the exact mixture field (H = 100, d = 16, s = 64, β = 10), the mean norm of the correction g(t)·J per
   denoising step for ``stop`` vs ``full`` (the seed's claim: the VJP damps the guidance).

Run: ``.venv/bin/python benchmarks/bench_sampler.py [--runs 200] [--json out/bench_sampler.json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from rtc_controller.policy.mixture import mixture_velocity
from rtc_controller.rtc import build_prefix, prefix_weights, sample, sample_best_of_n
from rtc_controller.tools.guidance_demo import MODE_SCALE, mode_means
from rtc_controller.policy.mixture import make_mixture

HORIZON, ACTION_DIM, NUM_STEPS = 50, 32, 10
TIMED_MODES = ("none", "stop", "full", "hard", "bid")
BID_SAMPLES = 8
WIDTH, BLOCKS, HEADS, MLP = 384, 4, 6, 1536


def init_network(key) -> dict:
    """Random parameters of a small action transformer (time-conditioned, bidirectional over H)."""

    def dense(k, n_in, n_out):
        return jax.random.normal(k, (n_in, n_out), jnp.float32) / np.sqrt(n_in)

    keys = iter(jax.random.split(key, 4 + 4 * BLOCKS))
    params = {"in": dense(next(keys), ACTION_DIM, WIDTH), "time": dense(next(keys), 2 * WIDTH, WIDTH),
              "out": dense(next(keys), WIDTH, ACTION_DIM), "pos": jax.random.normal(next(keys), (HORIZON, WIDTH)) * 0.02,
              "blocks": []}
    for _ in range(BLOCKS):
        params["blocks"].append({"qkv": dense(next(keys), WIDTH, 3 * WIDTH), "proj": dense(next(keys), WIDTH, WIDTH),
                                 "up": dense(next(keys), WIDTH, MLP), "down": dense(next(keys), MLP, WIDTH)})
    return params


def _norm(x):
    return x * jax.lax.rsqrt(jnp.mean(x**2, axis=-1, keepdims=True) + 1e-6)


def network_velocity(params, x_t, t):
    """v ``[b, H, D]`` from x_t ``[b, H, D]`` and flow time t (sin-cos embedding added to every token)."""
    freq = jnp.exp(-jnp.arange(WIDTH) * (np.log(1e4) / WIDTH))
    temb = jnp.concatenate([jnp.sin(t * 1e3 * freq), jnp.cos(t * 1e3 * freq)]) @ params["time"]
    h = x_t @ params["in"] + params["pos"] + temb
    b = x_t.shape[0]
    for blk in params["blocks"]:
        q, k, v = jnp.split(_norm(h) @ blk["qkv"], 3, axis=-1)
        q, k, v = (z.reshape(b, HORIZON, HEADS, WIDTH // HEADS) for z in (q, k, v))
        att = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(WIDTH // HEADS), axis=-1)
        h = h + jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, HORIZON, WIDTH) @ blk["proj"]
        h = h + jax.nn.gelu(_norm(h) @ blk["up"]) @ blk["down"]
    return _norm(h) @ params["out"]


def time_modes(runs: int) -> dict[str, float]:
    params = init_network(jax.random.key(0))
    n_params = sum(x.size for x in jax.tree.leaves(params))
    noise = jax.random.normal(jax.random.key(1), (1, HORIZON, ACTION_DIM))
    prefix = jax.random.normal(jax.random.key(2), (1, HORIZON, ACTION_DIM))
    weights = prefix_weights(5, HORIZON - 25, HORIZON)
    candidates = jax.random.normal(jax.random.key(3), (BID_SAMPLES, HORIZON, ACTION_DIM))

    def chunk(mode):
        if mode == "bid":
            return sample_best_of_n(network_velocity, candidates, context=params, prefix=prefix, weights=weights,
                                    num_steps=NUM_STEPS).actions  # fmt: skip
        return sample(network_velocity, noise, context=params, prefix=prefix, weights=weights, mode=mode,
                      num_steps=NUM_STEPS)  # fmt: skip

    times: dict[str, list[float]] = {m: [] for m in TIMED_MODES}
    for mode in TIMED_MODES:  # compile + warm up
        for _ in range(3):
            chunk(mode).block_until_ready()
    for _ in range(runs):  # interleave the modes so load drifts hit all of them alike
        for mode in TIMED_MODES:
            t0 = time.perf_counter()
            chunk(mode).block_until_ready()
            times[mode].append(time.perf_counter() - t0)
    out = {f"{m}_ms": 1e3 * statistics.median(v) for m, v in times.items()}
    out["stop_over_none"] = out["stop_ms"] / out["none_ms"]
    out["full_over_none"] = out["full_ms"] / out["none_ms"]
    out["params_millions"] = n_params / 1e6
    return out


def correction_norms(beta: float = 10.0) -> dict[str, list[float]]:
    """Mean ‖g(t)·J‖ per step (over batch and horizon) on the mixture field at the seed's settings."""
    h, d, s, dim, batch = 100, 16, 64, 14, 64
    prev = make_mixture(mode_means(horizon=h, dim=dim, start_step=0), scales=MODE_SCALE)
    new = make_mixture(mode_means(horizon=h, dim=dim, start_step=s), scales=MODE_SCALE)
    vel = lambda m, x, t: mixture_velocity(m, x, t)  # noqa: E731
    previous = np.asarray(sample(vel, jax.random.normal(jax.random.key(3), (1, h, dim)), context=prev))[0]
    y = build_prefix(previous, t_obs_prev_s=0.0, t_obs_s=float(s), dt_s=1.0)
    w = np.asarray(prefix_weights(d, h - s, h)) * y.valid
    noise = jax.random.normal(jax.random.key(4), (batch, h, dim))
    prefix = jnp.broadcast_to(jnp.asarray(y.actions), noise.shape)
    out = {}
    for mode in ("stop", "full"):
        _, tr = sample(vel, noise, context=new, prefix=prefix, weights=w, max_guidance_weight=beta, mode=mode,
                       return_trace=True)
        out[mode] = np.asarray(jnp.linalg.norm(tr.correction, axis=-1).mean(axis=(1, 2))).tolist()
    out["t"] = np.asarray(tr.t).tolist()
    return out


def main(args=None) -> int:
    p = argparse.ArgumentParser(description="RTC guidance cost and correction size")
    p.add_argument("--runs", type=int, default=200, help="timed chunks per mode")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    a = p.parse_args(args)
    timing = time_modes(a.runs)
    norms = correction_norms()
    print(f"device: {jax.devices()[0].device_kind}; network {timing['params_millions']:.1f} M params, "
          f"H={HORIZON}, D={ACTION_DIM}, n={NUM_STEPS}, batch 1; median of {a.runs} chunks")
    print(f"{'mode':<6} {'chunk [ms]':>11} {'/ none':>8}")
    for m in TIMED_MODES:
        print(f"{m:<6} {timing[m + '_ms']:>11.3f} {timing[m + '_ms'] / timing['none_ms']:>8.3f}")
    print("\nmean ‖correction‖ per denoising step on the mixture field (H=100, d=16, s=64, β=10)")
    print(f"{'t':>5} {'stop':>9} {'full':>9}")
    for t, s, f in zip(norms["t"], norms["stop"], norms["full"]):
        print(f"{t:>5.2f} {s:>9.4f} {f:>9.4f}")
    print(f"{'mean':>5} {np.mean(norms['stop']):>9.4f} {np.mean(norms['full']):>9.4f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({**timing, "correction_norm": norms, "device": jax.devices()[0].device_kind},
                                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
