"""Offline RTC demonstration on the exact mixture field (no ROS, no robot): one chunk switch, three modes.

A previous chunk is drawn from a multimodal chunk distribution; the next chunk (conditioned s action steps
later) is sampled with ``none``, ``stop`` and ``full`` guidance toward the previous chunk's remainder, from the
same noise. Writes seed-style figures (one per guided mode) and a table: RMS mismatch over the frozen region
(i < d) and the jump at the switch (‖new[d] − Y[d]‖), mean over a batch of draws.

Run: ``python -m rtc_controller.tools.guidance_demo --out out/guidance`` (seed settings H=100, d=16, s=64, β=10).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from rtc_controller.action_space import action_names
from rtc_controller.chunk_timing import ChunkTiming
from rtc_controller.policy.mixture import GaussianMixture, make_mixture, mixture_velocity
from rtc_controller.rtc import build_prefix, prefix_weights, sample
from rtc_controller.tools.metrics import prefix_mismatch, switch_jump
from rtc_controller.tools.plots import plot_chunk_switch, save_figure

NUM_MODES = 3
MODE_SCALE = 0.05  # per-dimension std around each mode
PERIOD_RANGE_STEPS = (150.0, 300.0)  # periods of the modes' sinusoids [action steps]


# The inference-time modes: ``trained`` needs a velocity trained with a clean prefix (a flow time per action), which
# the analytic mixture does not have.
DEMO_MODES = ("none", "hard", "stop", "full")


def mode_means(*, horizon: int, dim: int, start_step: int, seed: int = 0) -> np.ndarray:
    """Means ``[K, H, D]`` of smooth modes μ_k(τ), τ = ``start_step`` + i, consistent across chunk starts."""
    rng = np.random.default_rng(seed)
    amp = rng.uniform(0.5, 1.5, size=(NUM_MODES, dim)) * rng.choice([-1, 1], size=(NUM_MODES, dim))
    period = rng.uniform(*PERIOD_RANGE_STEPS, size=dim)
    phase = rng.uniform(0, 2 * np.pi, size=(NUM_MODES, dim))
    tau = start_step + np.arange(horizon)[None, :, None]
    return amp[:, None] * np.sin(2 * np.pi * tau / period[None, None] + phase[:, None])


def velocity(mix: GaussianMixture, x_t, t):
    return mixture_velocity(mix, x_t, t)


def run(*, horizon: int, delay: int, execution_horizon: int, beta: float, num_steps: int, batch: int, seed: int):
    """Returns (previous [H, D], prefix (Y, valid), weights [H], chunks {mode: [batch, H, D]}, table {mode: metrics}).."""
    dim = len(action_names())
    dt = 1.0  # one action step; only ratios of times matter here
    prev_mix = make_mixture(mode_means(horizon=horizon, dim=dim, start_step=0, seed=seed), scales=MODE_SCALE)
    new_mix = make_mixture(
        mode_means(horizon=horizon, dim=dim, start_step=execution_horizon, seed=seed), scales=MODE_SCALE
    )
    k_prev, k_new = jax.random.split(jax.random.key(seed))
    previous = np.asarray(sample(velocity, jax.random.normal(k_prev, (1, horizon, dim)), context=prev_mix,
                                 num_steps=num_steps))[0]
    prefix = build_prefix(previous, t_obs_prev_s=0.0, t_obs_s=execution_horizon * dt, dt_s=dt)
    weights = np.asarray(prefix_weights(delay, horizon - execution_horizon, horizon)) * prefix.valid
    noise = jax.random.normal(k_new, (batch, horizon, dim))
    y = jnp.broadcast_to(jnp.asarray(prefix.actions), (batch, horizon, dim))
    frozen = (np.arange(horizon) < delay).astype(float)
    chunks, table = {}, {}
    for mode in DEMO_MODES:
        x = np.asarray(sample(velocity, noise, context=new_mix, num_steps=num_steps, prefix=y, weights=weights,
                              max_guidance_weight=beta, mode=mode))
        chunks[mode] = x
        table[mode] = {
            "frozen_mismatch": float(np.mean([prefix_mismatch(c, prefix.actions, frozen) for c in x])),
            "switch_jump": float(np.mean([switch_jump(c, prefix.actions, delay) for c in x])),
        }
    return previous, prefix, weights, chunks, table


def plot(out_dir: Path, *, previous_prefix, valid, chunks, delay: int, beta: float) -> list[Path]:
    """One seed-style figure per guided mode (``stop``, ``full``) with the unguided chunk from the same noise."""
    names = action_names()
    horizon = previous_prefix.shape[0]
    paths = []
    for mode in ("stop", "full"):
        fig = plot_chunk_switch(chunks[mode][0], previous_prefix, chunks["none"][0], delay, names=names, valid=valid,
                                units=["synthetic units"] * len(names),  # a mixture field, not a robot
                                title=f"{mode}, β={beta:g}, d={delay}, H={horizon} (3-mode mixture field)")
        paths.append(save_figure(fig, out_dir / f"guidance_{mode}.png"))
    return paths


def main(args=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/guidance"))
    p.add_argument("--horizon", type=int, default=100)
    p.add_argument("--delay", type=int, default=16)
    p.add_argument("--execution-horizon", type=int, default=64)
    p.add_argument("--beta", type=float, default=10.0)
    p.add_argument("--num-steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(args)
    try:
        timing = ChunkTiming(a.horizon, a.execution_horizon, 1.0)  # Δt: one action step, as in run()
    except ValueError as exc:
        p.error(str(exc))
    if not 0 <= a.delay <= timing.max_delay:
        p.error(f"need 0 <= delay <= horizon - execution_horizon ({timing.max_delay})")
    a.out.mkdir(parents=True, exist_ok=True)
    _, prefix, _, chunks, table = run(horizon=a.horizon, delay=a.delay, execution_horizon=a.execution_horizon,
                                      beta=a.beta, num_steps=a.num_steps, batch=a.batch, seed=a.seed)
    figures = plot(a.out, previous_prefix=prefix.actions, valid=prefix.valid, chunks=chunks, delay=a.delay,
                   beta=a.beta)
    (a.out / "guidance.json").write_text(json.dumps(table, indent=2))
    print(f"H={a.horizon} d={a.delay} s={a.execution_horizon} β={a.beta} n={a.num_steps}, mean over {a.batch} draws")
    print(f"{'mode':<6} {'frozen mismatch':>16} {'switch jump':>12}")
    for mode, row in table.items():
        print(f"{mode:<6} {row['frozen_mismatch']:>16.3f} {row['switch_jump']:>12.3f}")
    print("wrote " + ", ".join(str(f) for f in [*figures, a.out / "guidance.json"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
