"""Benchmark: the per-denoising-step RTC correction of ``stop`` vs ``full`` on a *learned* π0.5 (``bench_sampler``
prints the same for the exact mixture field).

Observations come from the twin: the scripted expert runs an episode of each seed (``sim.demos.expert_episode``, the
three cameras rendered at 10 Hz at the world's resolution, as ``rtc-eval`` renders them for the policy). At a few
action steps t of each episode (where a frame was rendered), the policy samples the previous chunk unguided from the
observation at t (as the inference node published it); then the chunk at t + s is sampled with RTC guidance toward
it, through ``rtc.sample`` with the policy's own prefix pass and velocity (the inference node's path:
``ChunkSampler``'s prefix and weights, ``build_guidance``), in ``stop`` and in ``full`` from the same noise, and the
trace's correction g(t)·J [model space: normalised actions] is recorded per denoising step.

Printed per denoising step (flow time t = 1 noise … 0.1): the mean ‖g(t)·J‖ over draws and horizon (norm over the
action dims) for stop and full and their ratio, then the frozen-prefix error and the jump at the switch index d of
each mode (physical units, all 14 dims; TCP in mm).

    python benchmarks/bench_correction.py --policy-config twin_pi05 --delay 24 --json out/bench/correction.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from rtc_controller.policy.base import Observation
from rtc_controller.policy.chunk_sampler import GuidanceSettings, PreviousChunk, build_guidance
from rtc_controller.rtc import sample

DT_S = 0.02
FRAME_RATE_HZ = 10.0
TCP_DIMS = ((0, 1, 2), (7, 8, 9))


def observations(seeds, steps, *, execution_horizon: int, twin_config: str = ""):
    """(observation at t, observation at t + s) pairs from expert episodes of the twin in the world ``twin_config``
    (t on the frame grid)."""
    from rtc_controller.control.executor_params import build_config
    from rtc_controller.sim.demos import expert_episode
    from rtc_controller.sim.twin_config import load_twin_config, twin_executor_values
    from rtc_controller.sim.world import TwinWorld

    scene, task = load_twin_config(twin_config)
    world = TwinWorld(scene=scene, task=task)
    executor = build_config(twin_executor_values(execution_horizon=min(10, execution_horizon)))
    pairs = []
    for seed in seeds:
        demo = expert_episode(seed, executor=executor, world=world, frame_rate_hz=FRAME_RATE_HZ)
        index = {int(k): i for i, k in enumerate(demo.frame_index)}

        def obs(t):
            return Observation(state=demo.state[t].astype(np.float64), stamp_s=t * DT_S, prompt=demo.prompt,
                               images={slot: f[index[t]] for slot, f in demo.frames.items()})

        for t in steps:
            if t in index and t + execution_horizon in index and t + execution_horizon < len(demo.state):
                pairs.append((obs(t), obs(t + execution_horizon)))
    return pairs


def measure(policy, pairs, *, delay: int, execution_horizon: int, beta: float, num_steps: int, draws: int) -> dict:
    """Per-step mean correction norms of stop and full, and the frozen error / jump at d of each mode."""
    h, dm = policy.horizon, policy.model_action_dim
    settings = GuidanceSettings(delay, execution_horizon, beta, "stop")
    norms = {"stop": [], "full": []}
    frozen = {"stop": [], "full": [], "none": []}
    jumps = {"stop": [], "full": [], "none": []}
    for n, (first, second) in enumerate(pairs):
        prev = policy.infer(first, num_steps=num_steps, seed=10_000 + n)
        g = build_guidance(PreviousChunk(prev, first.stamp_s), t_obs_s=second.stamp_s, dt_s=DT_S, settings=settings,
                           horizon=h)  # fmt: skip
        context = policy.prepare(second)
        prefix = jnp.asarray(policy.to_model(g.prefix[None], second), jnp.float32)
        for k in range(draws):
            noise = jax.random.normal(jax.random.key(n * draws + k), (1, h, dm), jnp.float32)
            for mode in ("stop", "full", "none"):
                x0, tr = sample(policy.velocity, noise, num_steps=num_steps, prefix=prefix, weights=g.weights,
                                max_guidance_weight=beta, mode=mode, context=context, return_trace=True)
                chunk = policy.to_physical(np.asarray(x0), second)[0]
                if mode != "none":
                    norms[mode].append(np.asarray(jnp.linalg.norm(tr.correction, axis=-1).mean(axis=(1, 2))))
                frozen[mode].append(float(np.sqrt(np.mean((chunk[:delay] - g.prefix[:delay]) ** 2))) if delay else np.nan)
                jumps[mode].append(max(float(np.linalg.norm(chunk[delay, list(a)] - g.prefix[delay, list(a)]))
                                       for a in TCP_DIMS))
    t = np.asarray(tr.t)
    return {"t": t.tolist(), "stop": np.mean(norms["stop"], axis=0).tolist(), "full": np.mean(norms["full"], axis=0).tolist(),
            "frozen_rms": {m: float(np.nanmean(v)) for m, v in frozen.items()},
            "tcp_jump_at_d_mm": {m: 1e3 * float(np.mean(v)) for m, v in jumps.items()},
            "samples": len(norms["stop"])}  # fmt: skip


def main(args=None) -> int:
    p = argparse.ArgumentParser(description="per-step RTC correction of stop vs full on a learned π0.5")
    p.add_argument("--policy-config", default="twin_pi05", help="π0.5 policy section (default twin_pi05)")
    p.add_argument("--delay", type=int, default=24, help="d [action steps] (default 24, the grid's largest)")
    p.add_argument("--execution-horizon", type=int, default=25, help="s [action steps]")
    p.add_argument("--beta", type=float, default=10.0)
    p.add_argument("--seeds", type=int, default=2, help="expert episodes (twin seeds 0 … N−1)")
    p.add_argument("--steps", default="0,50,100,150", help="action steps t of each episode (multiples of 5)")
    p.add_argument("--draws", type=int, default=4, help="noise draws per observation")
    p.add_argument("--twin-config", default="twin_world_learned.yaml",
                   help="world of the expert episodes (default: the one twin_pi05 was trained in)")
    p.add_argument("--json", type=Path)
    a = p.parse_args(args)
    from rtc_controller.config_files import world_file
    from rtc_controller.policy.pi05.policy import Pi05Policy
    from rtc_controller.policy.pi05.policy_section import load_policy_section

    policy = Pi05Policy(load_policy_section(a.policy_config))
    pairs = observations(range(a.seeds), [int(x) for x in a.steps.split(",") if x.strip()],
                         execution_horizon=a.execution_horizon, twin_config=world_file(a.twin_config))
    if not pairs:
        print("no observation pairs (steps must be on the 10 Hz frame grid: multiples of 5)", file=sys.stderr)
        return 2
    r = measure(policy, pairs, delay=a.delay, execution_horizon=a.execution_horizon, beta=a.beta,
                num_steps=policy.num_steps, draws=a.draws)
    print(f"learned π0.5 {a.policy_config}: H={policy.horizon}, d={a.delay}, s={a.execution_horizon}, β={a.beta}, "
          f"n={policy.num_steps}; {len(pairs)} observations x {a.draws} draws")
    print("mean ‖correction‖ = ‖g(t)·J‖ per denoising step (model space, normalised actions)")
    print(f"{'t':>5} {'stop':>9} {'full':>9} {'full/stop':>10}")
    for t, s, f in zip(r["t"], r["stop"], r["full"]):
        print(f"{t:>5.2f} {s:>9.4f} {f:>9.4f} {f / s if s else float('nan'):>10.3f}")
    print(f"{'mean':>5} {np.mean(r['stop']):>9.4f} {np.mean(r['full']):>9.4f} "
          f"{np.mean(r['full']) / np.mean(r['stop']):>10.3f}")
    print("\nat the switch: frozen-prefix RMS error (physical, all dims) and TCP jump at index d [mm]")
    for m in ("none", "stop", "full"):
        print(f"{m:<5} frozen RMS {r['frozen_rms'][m]:.4f}  TCP jump at d {r['tcp_jump_at_d_mm'][m]:.1f} mm")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({**r, "policy_config": a.policy_config, "delay": a.delay, "beta": a.beta}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
