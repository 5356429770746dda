"""Benchmark ``rtc-train``: the cost of one optimiser step for a few small π0.5 sizes, and how many steps fit in
a time budget (20 min on the 2-core CPU by default).

Per preset (``train/model_config.py: MODEL_PRESETS``), on a synthetic dataset shaped like the twin's
(3 cameras, H = 50, 14 action dims, 50 Hz): parameter count, preparation time (norm stats, tokenizer,
samples), compile time of the training step, median step time over ``--steps`` steps, and the steps that fit
in ``--budget-s`` after preparation and compilation (ignoring checkpoints and validation, a few %).

    python benchmarks/bench_train.py                                   # micro, tiny, small at batch 32
    python benchmarks/bench_train.py --presets tiny --batch-sizes 16,32,64 --steps 30 --json out/bench/train.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

from rtc_controller.train import loop as train_loop
from rtc_controller.train.config import DataConfig, LoopConfig, TrainConfig
from rtc_controller.train.model_config import MODEL_PRESETS
from rtc_controller.train.prepare import prepare_run
from rtc_controller.train.synthetic import SyntheticConfig, write_synthetic_dataset

DEFAULT_BUDGET_S = 20 * 60.0


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _names(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [n for n in names if n not in MODEL_PRESETS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown presets {bad}; known: {sorted(MODEL_PRESETS)}")
    return names


def measure(data: pathlib.Path, preset: str, batch: int, *, horizon: int, steps: int, budget_s: float) -> dict:
    cfg = TrainConfig(model=MODEL_PRESETS[preset], data=DataConfig(horizon=horizon, val_fraction=0.0),
                      loop=LoopConfig(num_steps=10**6, batch_size=batch))
    with tempfile.TemporaryDirectory() as run_dir:
        t0 = time.perf_counter()
        setup = prepare_run(cfg, data, run_dir, log=lambda _: None)
        prepare_s = time.perf_counter() - t0
        run = train_loop._Run(setup, cfg, pathlib.Path(run_dir), log=lambda _: None)
        state = train_loop.initial_state(setup, cfg, run.tx)
        batches = [setup.train_set.batch(train_loop.batch_indices(0, i, len(setup.train_set), batch))
                   for i in range(steps + 1)]
        t0 = time.perf_counter()
        state, info = run.train_step(state, batches[0])
        jax.block_until_ready(info)
        compile_s = time.perf_counter() - t0
        times = []
        for b in batches[1:]:
            t0 = time.perf_counter()
            state, info = run.train_step(state, b)
            jax.block_until_ready(info)
            times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(setup.init_params))
    return {"preset": preset, "batch": batch, "params_M": n_params / 1e6, "prepare_s": prepare_s,
            "compile_s": compile_s, "step_ms": step_s * 1e3, "p90_step_ms": float(np.percentile(times, 90)) * 1e3,
            "samples_per_s": batch / step_s, "steps_in_budget": int(max(0.0, budget_s - prepare_s - compile_s) / step_s),
            "loss_last": float(info["loss"]), "token_len": setup.model_config.max_token_len}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", type=_names, default=("micro", "tiny", "small"))
    p.add_argument("--batch-sizes", type=_ints, default=(32,))
    p.add_argument("--steps", type=int, default=20, help="timed steps per configuration (after the compiling one)")
    p.add_argument("--horizon", type=int, default=50)
    p.add_argument("--episodes", type=int, default=6, help="synthetic episodes (timing needs few)")
    p.add_argument("--image-size", type=_ints, default=(96, 128), help="camera frames HEIGHT,WIDTH [px]")
    p.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S)
    p.add_argument("--json", type=pathlib.Path)
    ns = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = pathlib.Path(tmp) / "data"
        write_synthetic_dataset(data, SyntheticConfig(num_episodes=ns.episodes, episode_steps=200,
                                                      image_height=ns.image_size[0], image_width=ns.image_size[1]))
        print(f"{'preset':<7} {'batch':>5} {'params':>8} {'prep s':>7} {'compile s':>9} {'step ms':>8} "
              f"{'p90 ms':>7} {'samples/s':>9} {'steps in ' + f'{ns.budget_s / 60:g} min':>16}")
        for preset in ns.presets:
            for batch in ns.batch_sizes:
                r = measure(data, preset, batch, horizon=ns.horizon, steps=ns.steps, budget_s=ns.budget_s)
                rows.append(r)
                print(f"{preset:<7} {batch:>5} {r['params_M']:>7.2f}M {r['prepare_s']:>7.1f} {r['compile_s']:>9.1f} "
                      f"{r['step_ms']:>8.1f} {r['p90_step_ms']:>7.1f} {r['samples_per_s']:>9.0f} "
                      f"{r['steps_in_budget']:>16d}", flush=True)
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps({"rows": rows, "jax": jax.__version__, "device": str(jax.devices()[0]),
                                       "budget_s": ns.budget_s}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
